"""mIoU, mAcc and aAcc as mmsegmentation 0.x computes them (``mmseg/core/evaluation/metrics.py``).

Per image, :func:`areas` counts per class the intersection, the predicted area and the labelled
area of the pixels whose label is not ``ignore_index`` (after ``reduce_zero_label``: label 0 ->
ignored, k -> k - 1); the four vectors are summed over the set (and over ranks), then
:func:`summarize`: IoU = intersect / union, Acc = intersect / label area, aAcc = total intersect /
total label area, mIoU and mAcc the nanmean over classes (a class absent from both labels and
predictions is NaN and left out), all in percent. A label value outside ``0..C-1`` that is not
``ignore_index`` is counted as mmseg 0.x's ``torch.histc`` does: its pixel's prediction counts in
the predicted area, the label in no class (the result reports how many such pixels there were).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DIGITS = 4  #: rounding of the percentages (mmseg prints 2)


def reduce_zero_label(label: torch.Tensor) -> torch.Tensor:
    """ADE20K's encoding: 0 -> 255 (ignored), k -> k - 1, 255 stays 255 (mmseg's uint8 sequence)."""
    import torch

    label = label.to(torch.int64)
    label = torch.where(label == 0, 255, label) - 1
    return torch.where(label == 254, 255, label)


def areas(pred: torch.Tensor, label: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """``(5, C)`` int64: intersect, union, predicted and labelled area per class, and (row 4, column
    0) the count of scored pixels whose label is no class (see the module doc). ``label`` is already
    in class indices (``reduce_zero_label`` applied); ``pred`` holds 0..C-1."""
    import torch

    pred, label = pred.reshape(-1).to(torch.int64), label.reshape(-1).to(torch.int64)
    keep = label != ignore_index
    pred, label = pred[keep], label[keep]
    in_range = (label >= 0) & (label < num_classes)
    hit = pred[(pred == label) & in_range]
    out = torch.zeros(5, num_classes, dtype=torch.int64, device=pred.device)
    out[0] = torch.bincount(hit, minlength=num_classes)[:num_classes]
    out[2] = torch.bincount(pred.clamp(0, num_classes - 1), minlength=num_classes)[:num_classes]
    out[3] = torch.bincount(label[in_range], minlength=num_classes)[:num_classes]
    out[1] = out[2] + out[3] - out[0]
    out[4, 0] = int((~in_range).sum())
    return out


def _percent(value: float) -> float | None:
    return None if math.isnan(value) else round(100.0 * value, DIGITS)


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def summarize(total: torch.Tensor, names: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """``miou``, ``macc``, ``aacc`` (percent) and the ``per_class`` table from summed :func:`areas`."""
    rows = total.double().cpu().tolist()
    intersect, union, _pred, label = rows[0], rows[1], rows[2], rows[3]
    iou = [i / u if u else math.nan for i, u in zip(intersect, union, strict=True)]
    acc = [i / a if a else math.nan for i, a in zip(intersect, label, strict=True)]
    labelled = sum(label)
    names = list(names) if names is not None else [f"class {k}" for k in range(len(iou))]
    return {
        "miou": _percent(_nanmean(iou)),
        "macc": _percent(_nanmean(acc)),
        "aacc": _percent(sum(intersect) / labelled if labelled else math.nan),
        "per_class": [{"class": k, "name": names[k] if k < len(names) else f"class {k}", "iou": _percent(i),
                       "acc": _percent(a), "pixels": int(p)}
                      for k, (i, a, p) in enumerate(zip(iou, acc, label, strict=True))],
        "labelled_pixels": int(labelled),
        "unknown_label_pixels": int(rows[4][0]),
    }
