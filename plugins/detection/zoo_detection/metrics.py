"""COCO box and mask AP by pycocotools' own ``COCOeval`` (the field's standard implementation).

Mask AP (``iou_type="segm"``) is reported as ``mask_map``, ``mask_map50``, ...; as Detectron2's
``COCOEvaluator`` does, a result's ``bbox`` is dropped before a segm evaluation so that the area
ranges (small/medium/large) use the mask's area, not the box's.

The metrics are ``cocoEval.stats[0:6]`` x 100, rounded to 4 decimals; ``None`` where COCOeval has no
ground truth to score (it writes -1 there). Per-class AP is the mean of the precision array over
IoU thresholds and recall points for area ``all`` and 100 detections (as detectron2 reports it).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

STATS = ("map", "map50", "map75", "map_small", "map_medium", "map_large")
MASK_STATS = tuple(f"mask_{name}" for name in STATS)


def _percent(value: float) -> float | None:
    return None if value < 0 else round(100.0 * float(value), 4)


def coco_ground_truth(doc: dict[str, Any]) -> Any:
    """A pycocotools ``COCO`` over an already parsed instances document (no file read, no print)."""
    from pycocotools.coco import COCO

    gt = COCO()
    gt.dataset = doc
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def coco_metrics(doc: dict[str, Any], detections: Sequence[dict[str, Any]], image_ids: Sequence[int],
                 names: dict[int, str] | None = None, iou_type: str = "bbox") -> dict[str, Any]:
    """Box AP (``iou_type`` bbox) or mask AP (segm) of ``detections`` (COCO results: image_id,
    category_id, score, bbox x,y,w,h or segmentation) on the images ``image_ids`` of ``doc``;
    returns the six metrics (``map``... or ``mask_map``...) and a ``per_class`` table."""
    import numpy as np
    from pycocotools.cocoeval import COCOeval

    gt = coco_ground_truth(doc)
    with contextlib.redirect_stdout(io.StringIO()):
        if detections:  # loadRes adds area/id to what it is given: copies
            if iou_type == "segm":
                dt = gt.loadRes([{k: v for k, v in d.items() if k != "bbox"} for d in detections])
            else:
                dt = gt.loadRes([dict(d) for d in detections])
        else:  # loadRes refuses an empty list; no detection scores 0 wherever there is ground truth
            dt = coco_ground_truth({"images": doc["images"], "categories": doc["categories"], "annotations": []})
        ev = COCOeval(gt, dt, iou_type)
        ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = MASK_STATS if iou_type == "segm" else STATS
    out: dict[str, Any] = {name: _percent(v) for name, v in zip(stats, ev.stats[:6], strict=True)}
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    names = names or {c["id"]: c.get("name", str(c["id"])) for c in doc["categories"]}
    table = []
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        table.append({"category_id": int(cat_id), "name": names.get(cat_id, str(cat_id)),
                      "ap": round(100.0 * float(np.mean(p)), 4) if p.size else None})
    out["per_class"] = table
    return out
