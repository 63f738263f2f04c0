"""Detectron2's test-time input: ``ResizeShortestEdge`` with PIL bilinear, then padding to a multiple.

Mask2Former (and every Detectron2 model) is evaluated on images read by
``detectron2.data.detection_utils.read_image(path, "RGB")`` (PIL, EXIF orientation applied,
``convert("RGB")``), resized by ``ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST, "choice")``
(``facebookresearch/detectron2 data/transforms/augmentation_impl.py``: the short side to
``shortest_edge``, unless the long side would pass ``max_size``; sizes rounded with
``int(x + 0.5)``) with ``ResizeTransform.apply_image`` (``PIL.Image.resize(..., BILINEAR)`` on
uint8), normalized in the model (``(x - pixel_mean) / pixel_std``) and padded at the bottom/right
to a multiple of ``size_divisibility`` with ``pad_value`` by ``ImageList.from_tensors`` (batch 1 in
Detectron2's test loader: each image to its own multiple; in a batch, to the batch's largest).
"""

from __future__ import annotations

from typing import Any

import torch


def resize_shape(h0: int, w0: int, spec: dict[str, Any]) -> tuple[int, int]:
    """``ResizeShortestEdge.get_output_shape(h0, w0, shortest_edge, max_size)``: ``(new_h, new_w)``."""
    size = spec["shortest_edge"] * 1.0
    scale = size / min(h0, w0)
    if h0 < w0:
        newh, neww = size, scale * w0
    else:
        newh, neww = scale * h0, size
    if max(newh, neww) > spec["max_size"]:
        scale = spec["max_size"] * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def padded_shape(height: int, width: int, divisibility: int) -> tuple[int, int]:
    """``ImageList.from_tensors``: the size rounded up to a multiple of ``divisibility`` (when > 1)."""
    if divisibility > 1:
        height = (height + divisibility - 1) // divisibility * divisibility
        width = (width + divisibility - 1) // divisibility * divisibility
    return height, width


def load_resized(path: str, spec: dict[str, Any]) -> tuple[torch.Tensor, tuple[int, int]]:
    """One image as Detectron2's test mapper gives it: ``(uint8 RGB CHW at resize_shape, (h0, w0))``.

    :raises OSError: the file is not an image PIL can read.
    """
    import numpy as np
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise OSError(f"{path}: not an image PIL can read ({type(exc).__name__})") from None
    w0, h0 = im.size
    newh, neww = resize_shape(h0, w0, spec)
    if newh < 1 or neww < 1:  # Detectron2 would fail in PIL here: say which image
        raise OSError(f"{path}: a {w0}x{h0} image resizes to {neww}x{newh} px")
    im = im.resize((neww, newh), Image.BILINEAR)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(im).transpose(2, 0, 1))), (h0, w0)
