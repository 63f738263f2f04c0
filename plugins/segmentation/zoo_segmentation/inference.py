"""mmseg 0.x's test-time pipeline and inference, one function per step (used by eval and ``zoo segment``).

Per image, as ``mmseg/datasets/pipelines`` and ``mmseg/models/segmentors/encoder_decoder.py`` do:

1. decode with OpenCV (``mmcv.imread``: BGR uint8, EXIF orientation applied);
2. resize the uint8 image with OpenCV bilinear to :func:`scaled_size` (``mmcv.imrescale`` with
   ``keep_ratio``, else ``mmcv.imresize`` to the scale), then to a multiple of ``size_divisor``
   (``ResizeToMultiple``: sides rounded up, bilinear) when the card has one;
3. flip horizontally for the flipped augmentations (``RandomFlip``);
4. normalise: float32, BGR -> RGB when ``to_rgb``, minus mean, divided by std (``mmcv.imnormalize``);
5. logits: the model's ``(B, C, h, w)`` resized bilinearly (``align_corners=False``) to the input
   size, for the whole image or each window of :func:`windows` (summed, divided by the count);
6. resized bilinearly to the original image size, softmax, flip undone; ``--ms`` averages these
   probabilities over every scale x flip, then argmax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def load_bgr(path: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR as ``mmcv.imread(path)`` (OpenCV, ``IMREAD_COLOR``) gives it.

    :raises OSError: not an image OpenCV can read.
    """
    import cv2

    try:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # e.g. over OpenCV's pixel limit
        raise OSError(f"{path}: {exc}") from None
    if image is None:
        raise OSError(f"{path}: not an image OpenCV can read")
    return image


def scaled_size(width: int, height: int, resize: dict[str, Any] | None, ratio: float = 1.0,
                size_divisor: int | None = None) -> tuple[int, int]:
    """``(width, height)`` of the network input for a ``width x height`` image.

    ``resize.scale`` is mmseg's ``img_scale``; an ``--ms`` ratio multiplies it first, truncating
    (``MultiScaleFlipAug``: ``int(scale * ratio)``). With ``keep_ratio`` the factor is
    min(long / long side, short / short side) and each side becomes ``int(side * factor + 0.5)``
    (``mmcv.rescale_size``); without, the image is stretched to ``(scale[0], scale[1])`` as
    (width, height). No ``resize``: the image's own size (times ``ratio`` under ``--ms``, as
    MultiScaleFlipAug's ratio-only mode). Then ``ResizeToMultiple`` rounds each side up to a
    multiple of ``size_divisor``.
    """
    if resize is None:
        scale, keep = ((width, height), True) if ratio == 1.0 else ((int(width * ratio), int(height * ratio)), True)
    else:
        scale, keep = (int(resize["scale"][0] * ratio), int(resize["scale"][1] * ratio)), resize["keep_ratio"]
    if keep:
        factor = min(max(scale) / max(width, height), min(scale) / min(width, height))
        new_w, new_h = int(width * factor + 0.5), int(height * factor + 0.5)
    else:
        new_w, new_h = scale
    if size_divisor:
        new_w = -(-new_w // size_divisor) * size_divisor
        new_h = -(-new_h // size_divisor) * size_divisor
    return max(new_w, 1), max(new_h, 1)


def resize_image(image: np.ndarray, test: dict[str, Any], ratio: float = 1.0) -> np.ndarray:
    """The uint8 image resized as the test pipeline does (OpenCV bilinear, on uint8: rounding included)."""
    import cv2

    height, width = image.shape[:2]
    if test["resize"] is not None or ratio != 1.0:
        size = scaled_size(width, height, test["resize"], ratio)
        if size != (width, height):
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    divisor = test["size_divisor"]
    if divisor:
        height, width = image.shape[:2]
        size = (-(-width // divisor) * divisor, -(-height // divisor) * divisor)
        if size != (width, height):
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return image


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HWC uint8 -> CHW uint8 tensor (still BGR)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def normalize(batch: torch.Tensor, norm: dict[str, Any]) -> torch.Tensor:
    """``(B, 3, H, W)`` uint8 BGR -> float32, RGB when ``to_rgb``, ``(x - mean) / std`` (0-255 units)."""
    x = batch.float()
    if norm["to_rgb"]:
        x = x.flip(1)
    mean = torch.tensor(norm["mean"], dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(norm["std"], dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def windows(height: int, width: int, crop: list[int], stride: list[int]) -> list[tuple[int, int, int, int]]:
    """``(y1, y2, x1, x2)`` of mmseg 0.x ``slide_inference``: a grid every ``stride``, windows of
    ``crop`` clamped to the border (shifted back inside, never padded; a crop bigger than the image
    is the image)."""
    h_crop, w_crop = crop
    h_stride, w_stride = stride
    h_grids = max(height - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(width - w_crop + w_stride - 1, 0) // w_stride + 1
    out = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2 = min(h_idx * h_stride + h_crop, height)
            x2 = min(w_idx * w_stride + w_crop, width)
            out.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return out


def resize_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, ``align_corners=False`` (mmseg ``resize``); the same size is returned as is."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


Forward = Callable[[torch.Tensor], torch.Tensor]


def whole_logits(forward: Forward, x: torch.Tensor) -> torch.Tensor:
    """``encode_decode``: the model's logits resized to the input size."""
    return resize_logits(forward(x), x.shape[-2:])


def slide_logits(forward: Forward, x: torch.Tensor, num_classes: int, crop: list[int], stride: list[int],
                 batch_size: int = 1) -> torch.Tensor:
    """``slide_inference`` of one image ``(1, 3, H, W)``: each window's logits at the window size, summed
    where windows overlap and divided by the count. Windows run ``batch_size`` at a time (all have
    the same size)."""
    _, _, height, width = x.shape
    boxes = windows(height, width, crop, stride)
    total = x.new_zeros((1, num_classes, height, width), dtype=torch.float32)
    count = x.new_zeros((1, 1, height, width), dtype=torch.float32)
    for start in range(0, len(boxes), max(1, batch_size)):
        chunk = boxes[start:start + max(1, batch_size)]
        crops = torch.cat([x[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in chunk])
        logits = whole_logits(forward, crops)
        for i, (y1, y2, x1, x2) in enumerate(chunk):
            total[:, :, y1:y2, x1:x2] += logits[i:i + 1]
            count[:, :, y1:y2, x1:x2] += 1
    return total / count


def logits_at_input(forward: Forward, x: torch.Tensor, test: dict[str, Any], num_classes: int,
                    batch_size: int = 1) -> torch.Tensor:
    """Whole-image or sliding-window logits of one normalised image, at its input size."""
    if test["mode"] == "slide":
        return slide_logits(forward, x, num_classes, test["crop_size"], test["stride"], batch_size)
    return whole_logits(forward, x)


def augmentations(ms: dict[str, Any] | None) -> list[tuple[float, bool]]:
    """``(ratio, flip)`` in MultiScaleFlipAug's order (scales outer, flip inner); single scale: ``[(1.0, False)]``."""
    if ms is None:
        return [(1.0, False)]
    flips = (False, True) if ms["flip"] else (False,)
    return [(ratio, flip) for ratio in ms["ratios"] for flip in flips]


def probabilities(forward: Forward, images: list[torch.Tensor], flips: list[bool], ori: tuple[int, int],
                  cfg: dict[str, Any], num_classes: int, batch_size: int = 1) -> torch.Tensor:
    """``(1, C, H0, W0)`` class probabilities of one image: per augmentation (a uint8 BGR ``(1, 3, H, W)``
    resized image and whether it is flipped) logits at the input size, resized to the original
    size, softmax, flip undone; the mean over augmentations (``aug_test``)."""
    out: torch.Tensor | None = None
    for image, flip in zip(images, flips, strict=True):
        x = normalize(image.flip(-1) if flip else image, cfg["normalize"])
        logits = logits_at_input(forward, x, cfg["test"], num_classes, batch_size)
        prob = F.softmax(resize_logits(logits.float(), ori), dim=1)
        if flip:
            prob = prob.flip(-1)
        out = prob if out is None else out.add_(prob)
    assert out is not None
    if len(images) > 1:
        out /= len(images)
    return out
