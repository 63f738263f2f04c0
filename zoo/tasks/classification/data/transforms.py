"""Evaluation preprocessing, identical to timm's validation transforms (``timm-eval-v1``).

The steps, as ``timm.data.transforms_imagenet_eval`` does them for a PIL image:

1. resize: ``scale = floor(size / crop_pct)`` per edge. ``center`` mode with a square target
   resizes the short side to ``scale`` (long side ``int(scale * long / short)``); a non-square
   target keeps the aspect ratio so that both edges cover the target (``round`` per edge).
   ``squash`` resizes to ``(scale, scale)``; ``border`` fits the long side and pads.
   PIL's antialiased filters do the resampling (torchvision's functional ``resize`` on PIL).
2. center crop (offsets ``int(round((H - S) / 2))``), or crop-or-pad with ``round(255 * mean)``
   for ``border``.
3. ``uint8`` CHW tensor. Normalisation happens on the batch, on the device
   (:func:`normalize`), as ``x / 255``, ``- mean``, ``/ std`` in float32: bit for bit what
   ``ToTensor()`` + ``Normalize()`` give, and 4x less data through the loader's workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from zoo.registry.cards import Card

PROFILE = "timm-eval-v1"


@dataclass(frozen=True)
class EvalPreprocess:
    """Everything the eval transform needs; built from a card by :meth:`from_card`."""

    input_size: tuple[int, int, int] = (3, 224, 224)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    crop_mode: str = "center"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @classmethod
    def from_card(cls, card: Card, dataset: str | None = None) -> EvalPreprocess:
        """The card's preprocessing for claims on ``dataset`` (its ``preprocess.by_dataset`` entry, if any)."""
        pre = card.preprocess_for(dataset)
        return cls(
            input_size=tuple(card.input_size),  # type: ignore[arg-type]
            interpolation=pre.interpolation,
            crop_pct=pre.crop_pct,
            crop_mode=pre.crop_mode,
            mean=tuple(pre.mean),  # type: ignore[arg-type]
            std=tuple(pre.std),  # type: ignore[arg-type]
        )

    @property
    def crop(self) -> tuple[int, int]:
        return self.input_size[1], self.input_size[2]

    @property
    def scale(self) -> tuple[int, int]:
        """The resize target before cropping: ``floor(edge / crop_pct)`` per edge."""
        return math.floor(self.input_size[1] / self.crop_pct), math.floor(self.input_size[2] / self.crop_pct)

    def as_dict(self) -> dict[str, Any]:
        return {"profile": PROFILE, **asdict(self)}

    def describe(self) -> str:
        h, w = self.crop
        return (f"resize {self.scale[0]}x{self.scale[1]} ({self.interpolation}, crop_pct {self.crop_pct}, "
                f"{self.crop_mode}), crop {h}x{w}, mean {list(self.mean)} std {list(self.std)}")


def _interp(name: str) -> Any:
    from torchvision.transforms import InterpolationMode

    return {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
            "nearest": InterpolationMode.NEAREST}[name]


def _keep_ratio_size(height: int, width: int, target: Sequence[int], longest: float) -> list[int]:
    """Edges scaled by one ratio, mixing the short (``longest=0``) and long (``1``) edge fits."""
    ratio_h, ratio_w = height / target[0], width / target[1]
    ratio = max(ratio_h, ratio_w) * longest + min(ratio_h, ratio_w) * (1.0 - longest)
    return [round(height / ratio), round(width / ratio)]


def _crop_or_pad(img: torch.Tensor, size: tuple[int, int], fill: Sequence[int]) -> torch.Tensor:
    """Center crop a CHW uint8 tensor, padding with ``fill`` (per channel) where it is too small."""
    import torch

    _, h, w = img.shape
    ch, cw = size
    if ch > h or cw > w:
        top, left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
        canvas = torch.tensor(list(fill), dtype=img.dtype).view(-1, 1, 1).expand(img.shape[0], max(h, ch), max(w, cw))
        canvas = canvas.clone()
        canvas[:, top:top + h, left:left + w] = img
        img, h, w = canvas, canvas.shape[1], canvas.shape[2]
    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
    return img[:, top:top + ch, left:left + cw]


class EvalTransform:
    """PIL RGB image -> uint8 CHW tensor of the card's crop. Picklable (loader workers)."""

    def __init__(self, pre: EvalPreprocess) -> None:
        self.pre = pre

    def resize_crop(self, img: Image.Image) -> Image.Image | torch.Tensor:
        from torchvision.transforms import functional as F

        pre, interp = self.pre, _interp(self.pre.interpolation)
        crop, scale = pre.crop, pre.scale
        if pre.crop_mode == "squash":
            return F.center_crop(F.resize(img, list(scale), interp), list(crop))
        if pre.crop_mode == "border":
            img = F.resize(img, _keep_ratio_size(img.height, img.width, scale, longest=1.0), interp)
            return _crop_or_pad(F.pil_to_tensor(img), crop, [round(255 * v) for v in pre.mean])
        if scale[0] == scale[1]:
            img = F.resize(img, scale[0], interp)  # short side -> scale
        else:
            img = F.resize(img, _keep_ratio_size(img.height, img.width, scale, longest=0.0), interp)
        return F.center_crop(img, list(crop))

    def __call__(self, img: Image.Image) -> torch.Tensor:
        from torchvision.transforms import functional as F

        out = self.resize_crop(img)
        return out if not hasattr(out, "getbands") else F.pil_to_tensor(out)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"EvalTransform({self.pre.describe()})"


def normalize(batch: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float32, normalised exactly as ``ToTensor()`` + ``Normalize()`` would."""
    return batch.float().div_(255).sub_(mean).div_(std)


def stats(pre: EvalPreprocess, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    mean = torch.tensor(pre.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(pre.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return mean, std
