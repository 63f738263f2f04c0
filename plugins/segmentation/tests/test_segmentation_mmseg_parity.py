"""Parity with mmsegmentation 0.30's own code: reference outputs made by ``tools/mmseg_reference.py``
(mmseg's pipeline classes, ``EncoderDecoder``'s inference/aug_test and its metric functions, run
outside the repository) and committed as ``data/mmseg_reference.npz``.

The same seeded network and images go through this plugin's pipeline; the input sizes, the class
probabilities (whole, slide, slide + ResizeToMultiple, multi-scale + flip whole and slide) and the
label maps must equal mmseg's, and the metrics mmseg's ``intersect_and_union`` +
``total_area_to_metrics`` on random label maps (ignore index, reduce_zero_label, labels outside
the classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from zoo_segmentation import inference
from zoo_segmentation.metrics import areas, reduce_zero_label, summarize
from zoo_segmentation.task import parse_fields

DATA = Path(__file__).parent / "data" / "mmseg_reference.npz"
SLIDE = {"mode": "slide", "crop_size": [16, 20], "stride": [10, 12]}
PROTOCOLS = {  # as tools/mmseg_reference.py: (test fields, ms fields or None)
    "whole": ({"mode": "whole"}, None),
    "slide": (SLIDE, None),
    "slide_div32": ({**SLIDE, "size_divisor": 32}, None),
    "ms_whole": ({"mode": "whole"}, {"ratios": [0.5, 1.0, 1.5], "flip": True}),
    "ms_slide": (SLIDE, {"ratios": [0.75, 1.25], "flip": True}),
}


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(DATA))


@pytest.mark.parametrize("name", PROTOCOLS)
def test_probabilities_and_label_maps_equal_mmseg(ref, name, tmp_path):
    import cv2

    conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    conv.weight.data, conv.bias.data = torch.from_numpy(ref["weight"]), torch.from_numpy(ref["bias"])
    model = torch.nn.Sequential(conv, torch.nn.AvgPool2d(2, ceil_mode=True)).eval()
    test, ms = PROTOCOLS[name]
    cfg = parse_fields({"test": {"resize": {"scale": [64, 32], "keep_ratio": True}, **test}, "ms": ms})
    augs = inference.augmentations(cfg["ms"] if ms else None)
    for i in range(2):
        path = tmp_path / f"im{i}.png"
        cv2.imwrite(str(path), ref[f"image{i}"])
        image = inference.load_bgr(str(path))
        resized = [inference.resize_image(image, cfg["test"], r) for r, _ in augs]
        assert [list(r.shape[:2]) for r in resized] == ref[f"{name}/input_shapes{i}"].tolist()
        with torch.no_grad():
            prob = inference.probabilities(model, [inference.to_tensor(r)[None] for r in resized],
                                           [f for _, f in augs], image.shape[:2], cfg, 5, batch_size=4)
        expected = torch.from_numpy(ref[f"{name}/prob{i}"])
        assert prob.shape[1:] == expected.shape
        assert torch.allclose(prob[0], expected, atol=2e-6, rtol=0), (prob[0] - expected).abs().max()
        assert np.array_equal(prob.argmax(1)[0].numpy(), ref[f"{name}/pred{i}"])


@pytest.mark.parametrize("reduce", [0, 1])
def test_metrics_equal_mmseg(ref, reduce):
    total = torch.zeros(5, 6, dtype=torch.int64)
    for k in range(3):
        label = torch.from_numpy(ref[f"metrics{reduce}/label{k}"].astype(np.int64))
        total += areas(torch.from_numpy(ref[f"metrics{reduce}/pred{k}"]), reduce_zero_label(label) if reduce else label,
                       6, 255)
    assert total[:4].tolist() == ref[f"metrics{reduce}/areas"].astype(np.int64).tolist()
    out = summarize(total)
    miou, macc, aacc = ref[f"metrics{reduce}/summary"]
    assert (out["miou"], out["macc"], out["aacc"]) == pytest.approx((miou, macc, aacc), abs=1e-4)
