"""The ``query-masks`` head: Mask2Former's instance inference, and masks as COCO RLE.

A query-based segmenter returns ``class_logits`` ``(B, Q, C + 1)`` (the last class is "no
object") and ``mask_logits`` ``(B, Q, h, w)`` at any resolution. Turning them into instances
follows ``facebookresearch/Mask2Former@9b0651c mask2former/maskformer_model.py`` at test time:

1. ``forward``: the mask logits are upsampled (bilinear, ``align_corners=False``) to the padded
   input size; with ``INSTANCE_ON`` ``sem_seg_postprocess_before_inference`` is true, so each
   image's masks are cropped to its region of the input and resized (bilinear) to its original size
   (``detectron2.modeling.postprocessing.sem_seg_postprocess``);
2. ``instance_inference``: softmax over the classes, "no object" dropped, the ``topk`` best of the
   ``Q x C`` (query, class) scores (``test_topk_per_image`` = ``TEST.DETECTIONS_PER_IMAGE``, 100);
   a mask is its query's logits ``> mask_threshold`` (0); the score is the class probability times
   the mean sigmoid inside the mask (``+ 1e-6`` in the denominator). The official code gives no
   boxes (``pred_boxes`` are zeros, boxes from masks are commented out), so neither does this.

``topk`` larger than ``Q x C`` keeps all (the official ``topk`` would raise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812


def query_output(output: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(class_logits, mask_logits)`` of a query-masks model's output (a pair or a dict with those keys)."""
    if isinstance(output, Mapping):
        missing = [k for k in ("class_logits", "mask_logits") if k not in output]
        if missing:
            raise ValueError(f"output dict has no {missing[0]!r} (expected keys class_logits, mask_logits)")
        return output["class_logits"], output["mask_logits"]
    if isinstance(output, list | tuple) and len(output) == 2:
        return output[0], output[1]
    raise ValueError(f"output is {type(output).__name__}, expected (class_logits, mask_logits) or a dict with "
                     "those keys")


def check_query_output(output: Any, batch_size: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair, checked: ``(B, Q, C + 1)`` and ``(B, Q, h, w)`` finite tensors; ValueError naming what differs."""
    cls, masks = query_output(output)
    for name, t in (("class_logits", cls), ("mask_logits", masks)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} is {type(t).__name__}, expected a tensor")
    if cls.ndim != 3 or cls.shape[0] != batch_size or cls.shape[2] != num_classes + 1:
        raise ValueError(f"class_logits shape {tuple(cls.shape)}, expected ({batch_size}, Q, {num_classes + 1}): "
                         "one logit per class and a last 'no object' logit")
    if masks.ndim != 4 or masks.shape[:2] != cls.shape[:2] or 0 in masks.shape[2:]:
        raise ValueError(f"mask_logits shape {tuple(masks.shape)}, expected ({batch_size}, {cls.shape[1]}, h, w)")
    if not (torch.isfinite(cls).all() and torch.isfinite(masks).all()):
        raise ValueError("output holds non-finite values")
    return cls, masks


def to_original(mask_logits: torch.Tensor, input_hw: tuple[int, int], region: tuple[int, int, int, int],
                shape: tuple[int, int]) -> torch.Tensor:
    """One image's ``(Q, h, w)`` mask logits -> ``(Q, h0, w0)``: upsampled to the padded input, cropped to
    the image's ``region`` (top, left, height, width) and resized to its original ``shape``."""
    top, left, height, width = region
    x = F.interpolate(mask_logits[None].float(), size=tuple(input_hw), mode="bilinear", align_corners=False)
    x = x[:, :, top:top + height, left:left + width]
    return F.interpolate(x, size=tuple(shape), mode="bilinear", align_corners=False)[0]


def instance_inference(class_logits: torch.Tensor, mask_logits: torch.Tensor, topk: int = 100,
                       mask_threshold: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(scores (k,), labels (k,), masks (k, h0, w0) bool)`` of one image, best score first.

    ``class_logits`` ``(Q, C + 1)``, ``mask_logits`` ``(Q, h0, w0)`` already at the original size.
    """
    queries, classes = class_logits.shape[0], class_logits.shape[1] - 1
    scores = F.softmax(class_logits.float(), dim=-1)[:, :-1]
    k = min(topk, queries * classes)
    top, index = scores.flatten().topk(k, sorted=True)
    labels = index % classes
    picked = mask_logits[index // classes]
    binary = picked > mask_threshold
    inside = binary.flatten(1).float()
    mask_score = (picked.sigmoid().flatten(1) * inside).sum(1) / (inside.sum(1) + 1e-6)
    final = top * mask_score
    order = final.argsort(descending=True, stable=True)
    return final[order], labels[order], binary[order]


def postprocess_queries(class_logits: torch.Tensor, mask_logits: torch.Tensor, post: Mapping[str, Any],
                        geometry: list[tuple[tuple[int, int], tuple[int, int, int, int], tuple[int, int]]]
                        ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per image ``(scores, labels, masks)`` in original pixels; ``geometry`` per image is
    ``(padded input (H, W), region (top, left, h, w), original (h0, w0))``."""
    out = []
    for cls, masks, (input_hw, region, shape) in zip(class_logits, mask_logits, geometry, strict=True):
        if 0 in shape:  # an unreadable image (reported or skipped by the caller): no instances
            out.append((cls.new_zeros(0), torch.zeros(0, dtype=torch.long), torch.zeros((0, 0, 0), dtype=torch.bool)))
            continue
        # only the queries that can reach the top k are brought to the original size (the same
        # instances as resizing all Q first, as the official code does, at a fraction of the memory)
        classes = cls.shape[1] - 1
        scores = F.softmax(cls.float(), dim=-1)[:, :-1].flatten()
        keep = (scores.topk(min(post["topk"], scores.numel())).indices // classes).unique()
        full = to_original(masks[keep], input_hw, region, shape)
        out.append(instance_inference(cls[keep], full, post["topk"], post["mask_threshold"]))
    return out


def encode_mask(mask: Any) -> dict[str, Any]:
    """One binary mask ``(h, w)`` as COCO RLE with ``counts`` a str (JSON), as Detectron2's
    ``instances_to_coco_json`` writes it (``pycocotools.mask.encode`` of a Fortran-ordered uint8 array)."""
    import numpy as np
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)[:, :, None]))[0]
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def to_coco_masks(scores: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, image_id: int,
                  ids: list[int | None]) -> list[dict[str, Any]]:
    """COCO results (image_id, category_id, segmentation RLE, score) of one image's instances."""
    results = []
    binary = masks.cpu().numpy()
    for score, label, mask in zip(scores.tolist(), labels.tolist(), binary, strict=True):
        category = ids[label] if label < len(ids) else None
        if category is None:  # a class the dataset does not have
            continue
        results.append({"image_id": image_id, "category_id": category, "segmentation": encode_mask(mask),
                        "score": float(score)})
    return results
