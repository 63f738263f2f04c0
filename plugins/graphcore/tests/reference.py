"""Shared by the tests and tools/official_check.py: seeded weights, and the tiny reference configuration.

The tiny reference is the official ``DeepGCN`` with 8 channels, 5 blocks and a 10-class head at 224 (the
official code fixes the 14 x 14 grid): small enough to commit its outputs, the same code paths as ViG-Ti.
"""

from __future__ import annotations

from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / "data"
MANIFEST = DATA / "official_vig_ti_224_gelu.json"
TINY_REFERENCE = DATA / "tiny_reference.json"
TINY = {"channels": 8, "n_blocks": 5, "k": 9, "num_classes": 10}
TINY_SEED, INPUT_SEED = 7, 11


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Give every floating tensor a seeded value, in state-dict order (the official order): BN statistics
    too (running_var positive), norm weights around 1, conv weights scaled by fan-in so 12 blocks stay finite."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() == 1 and name.endswith("weight"):
                t.copy_(1 + 0.2 * torch.randn(t.shape, generator=gen))
            elif t.dim() == 4 and name != "pos_embed":
                t.copy_(torch.randn(t.shape, generator=gen) / t[0].numel() ** 0.5)
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))


def tiny_input() -> torch.Tensor:
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(INPUT_SEED))
