"""The pipeline check of issue #13 on one generated category: GraphCore as its card builds it (ViG-Ti,
random weights, open-iad's 0.001 bank share), k = 4, through the anomaly-detection task's own image,
mask, smoothing and metric code; and a control with the masks shifted by half the image.

The control is judged inside the defective images. Pooled over all test images, shifted masks still score
a pixel AUROC of about 0.71 here: a defective image's whole map sits higher than a good image's (its
features change everywhere), so any pixel of a defective image outranks the good images' pixels. Within
the defective images only localisation counts: 0.92 with the true masks, 0.48 with the shifted ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

anomaly = pytest.importorskip("zoo_anomaly", reason="the anomaly-detection task is the zoo-anomaly plugin")


def test_obvious_defects_are_found_and_shifted_masks_are_not(tmp_path):
    from sklearn.metrics import roc_auc_score
    from zoo_anomaly.demo import make_demo
    from zoo_anomaly.evaluate import smooth
    from zoo_anomaly.images import mask_array, to_array
    from zoo_graphcore.model import graphcore_vig_ti

    import zoo

    card = zoo.get_card("graphcore")
    fields = card.fields
    pre = fields["preprocess"]
    root = make_demo(tmp_path / "ad", n_images=6, n_train=4, size=64, seed=1) / "checker"
    train = sorted((root / "train" / "good").glob("*.png"))
    tests = sorted(p for p in (root / "test").rglob("*.png"))
    labels = [int(p.parent.name != "good") for p in tests]
    masks = np.stack([mask_array(str(root / "ground_truth" / p.parent.name / f"{p.stem}_mask.png")
                                 if label else None, pre, fields["metric_size"], fields["gt_mask"])
                      for p, label in zip(tests, labels, strict=True)])
    torch.manual_seed(0)
    model = graphcore_vig_ti(backend="torch").eval()
    with torch.no_grad():
        model.fit(torch.from_numpy(np.stack([to_array(str(p), pre) for p in train])))
        out = model(torch.from_numpy(np.stack([to_array(str(p), pre) for p in tests])))
    assert model.memory_bank.shape == (1, 384)  # int(4 x 196 x 0.001) = 0 -> the floor of one patch
    maps = smooth(out["map"], fields["metric_size"], fields["map_smoothing"]["sigma"])
    assert roc_auc_score(labels, out["score"].numpy()) >= 0.95
    assert roc_auc_score(masks.ravel(), maps.ravel()) >= 0.9
    bad = np.array(labels) == 1
    shifted = np.roll(masks, shift=(112, 112), axis=(1, 2))
    assert roc_auc_score(masks[bad].ravel(), maps[bad].ravel()) >= 0.85
    assert abs(roc_auc_score(shifted[bad].ravel(), maps[bad].ravel()) - 0.5) < 0.15
