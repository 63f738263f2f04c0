"""The field's anomaly metrics, per category, in percent.

- image AUROC / AP: scikit-learn ``roc_auc_score`` / ``average_precision_score`` of the image scores
  against the labels (as AnomalyCLIP's metrics.py and open-iad compute them);
- pixel AUROC: ``roc_auc_score`` over every pixel of the category at ``metric_size``;
- AU-PRO, ``mvtec`` (default): the MVTec AD evaluation code's definition (Bergmann et al., IJCV 2021;
  ``pro_curve_util.compute_pro`` + ``generic_util.trapezoid``): ground-truth regions are the
  8-connected components of each mask; at every distinct score threshold ``t`` (pixels ``>= t`` are
  positive), PRO is the mean over all regions of the set of the fraction of the region found, FPR the
  fraction of normal pixels found; the curve from (0, 0) to (1, 1) is integrated with the trapezoid
  rule up to FPR 0.3 (the end point linearly interpolated) and divided by 0.3;
- AU-PRO, ``anomalyclip``: AnomalyCLIP's ``metrics.cal_pro_score`` (from cflow-ad): 200 thresholds
  ``np.arange(min, max, (max - min) / 200)``, pixels ``> t`` positive, the same PRO and FPR, points with
  FPR < 0.3 kept, their FPRs min-max rescaled to [0, 1], ``sklearn.metrics.auc``.

A metric a category cannot define (one class only, no defect pixel) is None and left out of the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PRO_LIMIT = 0.3
ANOMALYCLIP_STEPS = 200
_EIGHT = np.ones((3, 3), dtype=int)  # 8-connectivity, as both references label regions


def _both(labels: np.ndarray) -> bool:
    return bool(labels.any()) and not bool(labels.all())


def image_metrics(labels: Sequence[int], scores: Sequence[float]) -> dict[str, float | None]:
    """``image_auroc`` and ``image_ap`` in percent (None when the labels are all one class)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, s = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    if not _both(y):
        return {"image_auroc": None, "image_ap": None}
    return {"image_auroc": 100.0 * float(roc_auc_score(y, s)), "image_ap": 100.0 * float(average_precision_score(y, s))}


def pixel_auroc(masks: np.ndarray, maps: np.ndarray) -> float | None:
    """Pixel AUROC in percent over all pixels (None without both normal and defect pixels)."""
    from sklearn.metrics import roc_auc_score

    if not _both(masks):
        return None
    return 100.0 * float(roc_auc_score(masks.ravel(), maps.ravel()))


def _regions(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-pixel weight 1 / (region size) inside each 8-connected region (0 outside), and the region count."""
    from scipy.ndimage import label

    weights = np.zeros(masks.shape, dtype=np.float64)
    count = 0
    for i, mask in enumerate(masks):
        labeled, n = label(mask, structure=_EIGHT)
        if n:
            sizes = np.bincount(labeled.ravel())
            inside = labeled > 0
            weights[i][inside] = 1.0 / sizes[labeled[inside]]
            count += n
    return weights, count


def integrate(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoid area under ``y(x)`` (``x`` ascending) from ``x[0]`` to ``limit``, ``y(limit)`` interpolated."""
    inside = int(np.searchsorted(x, limit, side="right"))
    xs, ys = x[:inside], y[:inside]
    area = float(np.sum(0.5 * (ys[1:] + ys[:-1]) * np.diff(xs)))
    if inside < len(x) and xs[-1] < limit:
        x0, x1, y0, y1 = x[inside - 1], x[inside], y[inside - 1], y[inside]
        y_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_limit) * (limit - x0)
    return area


def aupro_mvtec(masks: np.ndarray, maps: np.ndarray, limit: float = PRO_LIMIT) -> float | None:
    """AU-PRO up to FPR ``limit``, normalised by ``limit`` (0..1), as the MVTec AD evaluation defines it."""
    masks = np.asarray(masks, dtype=bool)
    weights, regions = _regions(masks)
    normal = int((~masks).sum())
    if regions == 0 or normal == 0:
        return None
    scores = np.asarray(maps, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    fprs = np.cumsum((~masks).ravel()[order], dtype=np.float64) / normal
    pros = np.cumsum(weights.ravel()[order]) / regions
    last = np.append(np.diff(ranked) != 0, True)  # one point per distinct threshold, after all its ties
    x = np.concatenate(([0.0], np.minimum(fprs[last], 1.0), [1.0]))
    y = np.concatenate(([0.0], np.minimum(pros[last], 1.0), [1.0]))
    return integrate(x, y, limit) / limit


def aupro_anomalyclip(masks: np.ndarray, maps: np.ndarray, steps: int = ANOMALYCLIP_STEPS,
                      expect_fpr: float = PRO_LIMIT) -> float | None:
    """AnomalyCLIP's ``cal_pro_score`` (0..1): see the module docstring; None where it would be NaN."""
    from scipy.ndimage import label
    from sklearn.metrics import auc

    masks = np.asarray(masks, dtype=bool)
    maps = np.asarray(maps)
    low, high = maps.min(), maps.max()
    delta = (high - low) / steps
    normal_scores = np.sort(maps[~masks])
    if not delta > 0 or normal_scores.size == 0:
        return None
    region_scores = []
    for mask, amap in zip(masks, maps, strict=True):
        labeled, n = label(mask, structure=_EIGHT)
        region_scores += [np.sort(amap[labeled == k]) for k in range(1, n + 1)]
    if not region_scores:
        return None
    thresholds = np.arange(low, high, delta)
    fprs = (normal_scores.size - np.searchsorted(normal_scores, thresholds, side="right")) / normal_scores.size
    pros = np.mean([(r.size - np.searchsorted(r, thresholds, side="right")) / r.size for r in region_scores], axis=0)
    keep = fprs < expect_fpr
    if keep.sum() < 2:
        return None
    kept = fprs[keep]
    span = kept.max() - kept.min()
    if span == 0:
        return None
    return float(auc((kept - kept.min()) / span, pros[keep]))


AUPRO = {"mvtec": aupro_mvtec, "anomalyclip": aupro_anomalyclip}


def category_metrics(labels: Sequence[int], scores: Sequence[float], masks: np.ndarray, maps: np.ndarray,
                     aupro: str = "mvtec") -> dict[str, float | None]:
    """The four metrics of one category, in percent."""
    out: dict[str, Any] = image_metrics(labels, scores)
    out["pixel_auroc"] = pixel_auroc(masks, maps)
    pro = AUPRO[aupro](masks, maps)
    out["aupro"] = None if pro is None else 100.0 * pro
    return out


def mean_over(per_category: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, float | None]:
    """The papers' figure: the plain mean over categories of each metric (categories without it left out)."""
    out: dict[str, float | None] = {}
    for name in names:
        values = [row[name] for row in per_category if row.get(name) is not None]
        out[name] = float(np.mean(values)) if values else None
    return out
