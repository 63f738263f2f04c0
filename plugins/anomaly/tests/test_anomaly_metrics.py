"""The anomaly metrics against scikit-learn and against direct implementations of their definitions.

AU-PRO is checked twice on generated masks (several 8-connected regions per image, regions touching
only diagonally, normal images, ties in the scores): the MVTec AD definition against a loop over every
distinct threshold (connected components with ``scipy.ndimage.label``, the curve closed at (0, 0) and
(1, 1), integrated with ``np.interp`` at FPR 0.3), and AnomalyCLIP's ``cal_pro_score`` against a
transcription of its loop (200 ``np.arange`` thresholds, ``> t``, min-max rescaled FPRs, ``auc``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import label
from sklearn.metrics import auc, average_precision_score, roc_auc_score
from zoo_anomaly.metrics import (
    aupro_anomalyclip,
    aupro_mvtec,
    category_metrics,
    image_metrics,
    mean_over,
    pixel_auroc,
)

EIGHT = np.ones((3, 3), dtype=int)


def generated(seed: int, n: int = 5, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Masks with rectangles and diagonal-touching squares (one 8-connected region), and noisy maps that
    score defects higher, quantised so that many pixels tie."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(1, n):  # image 0 stays normal
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, size - 6, 2)
            h, w = rng.integers(2, 7, 2)
            masks[i, y:y + h, x:x + w] = True
    masks[2, 0:2, 0:2] = masks[2, 2:4, 2:4] = True  # touching at a corner: one region for 8-connectivity
    maps = rng.normal(0, 1, masks.shape) + 1.5 * masks
    return masks, (np.round(maps * 4) / 4).astype(np.float32)


def direct_mvtec(masks: np.ndarray, maps: np.ndarray, limit: float = 0.3) -> float:
    regions = [(i, labeled == k) for i, m in enumerate(masks) for labeled, n in [label(m, EIGHT)]
               for k in range(1, n + 1)]
    normal = ~masks
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        found = maps >= t
        fpr = (found & normal).sum() / normal.sum()
        pro = np.mean([found[i][r].mean() for i, r in regions])
        points.append((fpr, pro))
    points.append((1.0, 1.0))
    x, y = np.array(points).T
    inside = x <= limit
    xs = np.append(x[inside], limit)
    ys = np.append(y[inside], np.interp(limit, x, y))  # x ascending; duplicates: the last value at x
    # np.interp at a repeated x takes one of its values; limit never equals a repeated x here (checked below)
    return float(np.trapezoid(ys, xs)) / limit


def direct_anomalyclip(masks: np.ndarray, maps: np.ndarray) -> float:
    low, high = maps.min(), maps.max()
    delta = (high - low) / 200
    pros, fprs = [], []
    for th in np.arange(low, high, delta):
        binary = maps > th
        pro = []
        for b, m in zip(binary, masks, strict=True):
            labeled, n = label(m, EIGHT)
            for k in range(1, n + 1):
                region = labeled == k
                pro.append(b[region].sum() / region.sum())
        inverse = ~masks
        fprs.append(np.logical_and(inverse, binary).sum() / inverse.sum())
        pros.append(np.mean(pro))
    pros, fprs = np.array(pros), np.array(fprs)
    keep = fprs < 0.3
    f = fprs[keep]
    return float(auc((f - f.min()) / (f.max() - f.min()), pros[keep]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aupro_mvtec_equals_a_direct_implementation_of_the_definition(seed):
    masks, maps = generated(seed)
    x_values = {float(((maps >= t) & ~masks).sum() / (~masks).sum()) for t in np.unique(maps)}
    assert 0.3 not in x_values  # the interpolated end point is well defined in the direct version
    ours, direct = aupro_mvtec(masks, maps), direct_mvtec(masks, maps)
    assert ours == pytest.approx(direct, abs=1e-6)
    assert 0.05 < ours < 0.95  # neither trivially perfect nor empty


def test_aupro_mvtec_bounds_and_undefined_cases():
    masks, _ = generated(3)
    assert aupro_mvtec(masks, masks.astype(np.float32)) == pytest.approx(1.0)  # defects scored highest
    assert aupro_mvtec(masks, (~masks).astype(np.float32)) == pytest.approx(0.0)  # defects scored lowest
    assert aupro_mvtec(np.zeros((2, 4, 4), bool), np.zeros((2, 4, 4))) is None  # no region: undefined
    assert aupro_mvtec(np.ones((1, 4, 4), bool), np.zeros((1, 4, 4))) is None  # no normal pixel


@pytest.mark.parametrize("seed", [0, 4])
def test_aupro_anomalyclip_equals_a_transcription_of_cal_pro_score(seed):
    masks, maps = generated(seed)
    maps = maps + np.random.default_rng(seed).normal(0, 0.01, maps.shape).astype(np.float32)  # no ties
    assert aupro_anomalyclip(masks, maps) == pytest.approx(direct_anomalyclip(masks, maps), abs=1e-9)
    # the two definitions differ on the same maps (rescaled FPRs, 200 thresholds): both are needed
    assert abs(aupro_anomalyclip(masks, maps) - aupro_mvtec(masks, maps)) > 1e-3


def test_image_and_pixel_metrics_are_sklearns_in_percent():
    masks, maps = generated(5)
    labels = masks.reshape(len(masks), -1).any(1).astype(int)
    scores = maps.reshape(len(maps), -1).max(1)
    got = image_metrics(labels, scores)
    assert got["image_auroc"] == pytest.approx(100 * roc_auc_score(labels, scores), abs=1e-12)
    assert got["image_ap"] == pytest.approx(100 * average_precision_score(labels, scores), abs=1e-12)
    assert pixel_auroc(masks, maps) == pytest.approx(100 * roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)
    assert image_metrics([1, 1], [0.2, 0.3]) == {"image_auroc": None, "image_ap": None}
    assert pixel_auroc(np.zeros((1, 3, 3), bool), np.ones((1, 3, 3))) is None
    row = category_metrics(labels, scores, masks, maps, "anomalyclip")
    assert row["aupro"] == pytest.approx(100 * aupro_anomalyclip(masks, maps))


def test_the_mean_is_over_categories_that_define_the_metric():
    rows = [{"image_auroc": 90.0, "aupro": None}, {"image_auroc": 80.0, "aupro": 70.0}]
    assert mean_over(rows, ["image_auroc", "aupro", "image_ap"]) == {
        "image_auroc": 85.0, "aupro": 70.0, "image_ap": None}


REFERENCE = Path(__file__).parent / "data" / "aupro_reference.npz"


@pytest.mark.parametrize("case", [0, 1, 2])
def test_both_aupros_equal_the_official_code_on_committed_cases(case):
    """Values computed by the official code outside the repo (tools/official_aupro.py): the MVTec AD
    evaluation's compute_pro + trapezoid, and AnomalyCLIP's metrics.cal_pro_score (scikit-image labels)."""
    ref = np.load(REFERENCE)
    masks, maps = ref[f"masks{case}"], ref[f"maps{case}"]
    assert aupro_mvtec(masks, maps) == pytest.approx(float(ref[f"mvtec{case}"]), abs=1e-6)
    assert aupro_anomalyclip(masks, maps) == pytest.approx(float(ref[f"anomalyclip{case}"]), abs=1e-6)
