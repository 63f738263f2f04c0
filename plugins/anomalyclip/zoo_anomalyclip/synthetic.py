"""Deterministic stand-in weights and images for parity checks against the official code.

The values come from a closed formula (an integer hash of the tensor's name and the element index),
not from a random generator, so the suite can rebuild exactly the weights that ``tools/official_check.py``
gave the official model, on any torch version, without storing them. Norm weights sit around 1 and
other tensors are scaled by their fan-in, so 24 stacked blocks stay finite and every tensor matters.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import torch

__all__ = ["formula_images", "formula_state_dict", "formula_tensor"]

_MASK = 0xFFFFFFFF


def formula_tensor(name: str, shape: tuple[int, ...] | torch.Size, scale: float = 1.0) -> torch.Tensor:
    """Values in [-scale, scale) from an integer hash of (``name``, element index), as float32.

    The hash is exact 64-bit integer arithmetic (a multiply-xorshift mix, kept to 32 bits), so every
    platform and torch version gives the same bits, and it costs a few integer operations per element.
    """
    seed = zlib.crc32(name.encode())
    x = torch.arange(int(torch.Size(shape).numel()), dtype=torch.int64) * 0x9E3779B1 + seed
    x = x & _MASK
    for multiplier, shift in ((0x85EBCA6B, 13), (0xC2B2AE35, 16)):
        x = ((x ^ (x >> shift)) * multiplier) & _MASK
    x = x ^ (x >> 16)
    u = x.to(torch.float64) / 2.0**32
    return ((2 * u - 1) * scale).to(torch.float32).reshape(shape)


def _value(name: str, t: torch.Tensor) -> torch.Tensor:
    leaf = name.rsplit(".", 1)[-1]
    is_norm = ".ln_" in f".{name}" or name.startswith(("ln_", "visual.ln_")) or "ln_final" in name
    if is_norm and leaf == "weight":
        return 1 + formula_tensor(name, t.shape, 0.2)
    if leaf == "bias" or is_norm:
        return formula_tensor(name, t.shape, 0.1)
    if name.endswith("logit_scale"):
        return torch.full_like(t, 4.6052, dtype=torch.float32)
    fan_in = t.shape[-1] if t.dim() >= 2 else max(t.numel(), 1)
    if name.endswith(("proj", "text_projection")) and t.dim() == 2:
        fan_in = t.shape[0]  # used as x @ proj: the first dimension is the input
    if t.dim() == 4:
        fan_in = t[0].numel()
    return formula_tensor(name, t.shape, 1.7 / fan_in ** 0.5)


def formula_state_dict(shapes: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A formula value for every floating tensor of ``shapes`` (a state dict); integer buffers are kept."""
    return {name: (_value(name, t) if t.is_floating_point() else t.clone()) for name, t in shapes.items()}


def formula_images(batch: int, size: int) -> torch.Tensor:
    """``(batch, 3, size, size)`` inputs in the range of CLIP-normalised images."""
    return formula_tensor("images", (batch, 3, size, size), 2.0)
