"""Writing predictions for people and tools: the label PNG and the colour overlay.

``DIR/masks/<stem>.png`` holds the predicted class of each pixel in the dataset's own label
encoding (class k is written k + 1 under ``reduce_zero_label``, as ADE20K's annotations are), so
the folder can be scored as ground truth (``--dataset seg-folder:IMAGES,DIR/masks``; its
``classes.json`` says how it is encoded). 8-bit grey when every value fits, else 16-bit.
``DIR/overlays/<stem>.png`` is the image blended half and half with each class's colour (mmseg's
ADE20K palette for 150 classes, else a fixed palette of distinct colours). Every file is written
under a temporary name and renamed, so none is ever half-written.
"""

from __future__ import annotations

import colorsys
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ADE20K_CLASSES = 150


def palette(num_classes: int) -> np.ndarray:
    """``(C, 3)`` uint8 RGB: mmseg's ADE20K palette for 150 classes, else golden-ratio hues."""
    if num_classes == ADE20K_CLASSES:
        from zoo_segmentation.datasets import ade20k_classes

        return np.array(ade20k_classes()[1], dtype=np.uint8)
    colours = []
    for k in range(num_classes):
        hue = (k * 0.618033988749895) % 1.0
        value = 0.95 if k % 2 == 0 else 0.7
        colours.append([round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, value)])
    return np.array(colours, dtype=np.uint8)


def encode(pred: np.ndarray, reduce_zero_label: bool) -> np.ndarray:
    """Class indices -> the dataset's label values (``+1`` under ``reduce_zero_label``)."""
    values = pred.astype(np.int64) + (1 if reduce_zero_label else 0)
    return values.astype(np.uint8 if values.max(initial=0) < 256 else np.uint16)


def _write_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        Image.fromarray(array).save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def overlay(image_bgr: np.ndarray, pred: np.ndarray, colours: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The RGB image blended with each pixel's class colour (``alpha`` of the colour)."""
    rgb = image_bgr[..., ::-1].astype(np.float32)
    blended = rgb * (1 - alpha) + colours[pred].astype(np.float32) * alpha
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def save(out: Path, stem: str, image_bgr: np.ndarray, pred: np.ndarray, reduce_zero_label: bool,
         colours: np.ndarray) -> tuple[Path, Path]:
    """Write ``out/masks/<stem>.png`` and ``out/overlays/<stem>.png``; returns both paths."""
    mask_path, overlay_path = out / "masks" / f"{stem}.png", out / "overlays" / f"{stem}.png"
    _write_png(encode(pred, reduce_zero_label), mask_path)
    _write_png(overlay(image_bgr, pred, colours), overlay_path)
    return mask_path, overlay_path


def write_classes(out: Path, names: Sequence[str], reduce_zero_label: bool, ignore_index: int) -> Path:
    """``out/masks/classes.json``: the class list and label encoding ``seg-folder`` reads back."""
    path = out / "masks" / "classes.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".classes.", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"classes": list(names), "reduce_zero_label": reduce_zero_label, "ignore_index": ignore_index},
                  fh, indent=1)
    os.replace(tmp, path)
    return path
