"""Images and masks as the card's preprocessing makes them (PIL + numpy, torchvision's PIL semantics).

The image path is AnomalyCLIP's ``utils.get_transform`` written with PIL directly: ``Resize`` (PIL's
``resize`` with the card's filter; torchvision ``Resize(int)`` arithmetic for a kept ratio), ``CenterCrop``
(torchvision's rounding, zero padding when the crop is larger), RGB, ``/ 255``, normalise. A mask takes
the same geometry: binarised (``> 0``, as AnomalyCLIP's dataset.py), resized as an 8-bit image with the
card's ``gt_mask.interpolation``, cropped, resized to ``metric_size`` if that differs from the model
input, and thresholded at ``gt_mask.threshold * 255`` (AnomalyCLIP: ``ToTensor`` then ``> 0.5``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
            "nearest": Image.Resampling.NEAREST}
MAX_PIXELS = 1 << 27  #: refuse decompression bombs from the header (PIL itself refuses above 2 x 89 M pixels)


def open_image(path: str, mode: str = "RGB") -> Image.Image:
    """The decoded image in ``mode``; OSError (one line, naming the file) when it cannot be read."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise OSError(f"{path}: {im.width}x{im.height} pixels is over the {MAX_PIXELS} this reader accepts")
            return im.convert(mode)
    except OSError as exc:
        raise OSError(f"{path}: {exc}" if path not in str(exc) else str(exc)) from None
    except (ValueError, Image.DecompressionBombError) as exc:
        raise OSError(f"{path}: {exc}") from None


def geometry(im: Image.Image, pre: dict[str, Any], interpolation: str) -> Image.Image:
    """``resize`` (squash, or short side with ``keep_ratio``) then ``center_crop`` (torchvision rounding)."""
    filt = _FILTERS[interpolation]
    w, h = im.size
    if pre["keep_ratio"]:
        short = int(pre["resize"])
        if w <= h:
            size = (short, int(short * h / w))
        else:
            size = (int(short * w / h), short)
    else:
        size = (pre["resize"][1], pre["resize"][0])
    if size != (w, h):
        im = im.resize(size, filt)
    if pre["center_crop"] is not None:
        im = center_crop(im, pre["center_crop"])
    return im


def center_crop(im: Image.Image, crop: list[int]) -> Image.Image:
    """torchvision ``CenterCrop`` on a PIL image: zero padding when the crop is larger, round((h - th) / 2)."""
    th, tw = crop
    w, h = im.size
    if th > h or tw > w:
        padded = Image.new(im.mode, (max(w, tw), max(h, th)), 0)
        padded.paste(im, ((max(w, tw) - w) // 2, (max(h, th) - h) // 2))
        im, (w, h) = padded, padded.size
    top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
    return im.crop((left, top, left + tw, top + th))


def to_array(path: str, pre: dict[str, Any]) -> np.ndarray:
    """The model input of one image: float32 ``(3, H, W)``, normalised with the card's mean and std."""
    im = geometry(open_image(path), pre, pre["interpolation"])
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - np.asarray(pre["mean"], dtype=np.float32)) / np.asarray(pre["std"], dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def display(path: str, pre: dict[str, Any], size: list[int]) -> np.ndarray:
    """The preprocessed image (before normalisation) at ``size``, uint8 ``(H, W, 3)``: what the overlay shows."""
    im = geometry(open_image(path), pre, pre["interpolation"])
    if list(im.size[::-1]) != list(size):
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def mask_array(path: str | None, pre: dict[str, Any], metric_size: list[int], gt: dict[str, Any]) -> np.ndarray:
    """The ground truth at ``metric_size`` as a bool ``(H, W)`` array (all False without a mask)."""
    if path is None:
        return np.zeros(metric_size, dtype=bool)
    binary = np.asarray(open_image(path, "L")) > 0
    im = geometry(Image.fromarray(binary.astype(np.uint8) * 255), pre, gt["interpolation"])
    if list(im.size[::-1]) != list(metric_size):
        im = im.resize((metric_size[1], metric_size[0]), _FILTERS[gt["interpolation"]])
    return np.asarray(im, dtype=np.float32) > gt["threshold"] * 255.0
