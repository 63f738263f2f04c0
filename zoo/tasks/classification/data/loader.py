"""Decoding in worker processes, uint8 batches, and sharding across ranks without padding.

Every sample yields ``(image uint8 CHW, label, index, ok)``. An unreadable file gives a zero
image and ``ok=False``: the caller counts and names it, nothing is substituted (timm's
``ImageDataset`` silently returns the next sample instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from zoo.tasks.classification.data.transforms import EvalTransform


class ImageDataset(Dataset):
    """``samples[indices[i]]`` decoded with PIL (``.convert('RGB')``) and transformed."""

    def __init__(self, samples: Sequence[tuple[str, int]], transform: EvalTransform,
                 indices: Sequence[int] | None = None) -> None:
        self.samples = samples
        self.transform = transform
        self.indices = list(range(len(samples))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, bool]:
        from PIL import Image

        index = self.indices[i]
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                image = self.transform(img.convert("RGB"))
            return image, label, index, True
        except Exception:  # unreadable/truncated/not an image: reported by the caller, never dropped
            c, h, w = (3, *self.transform.pre.crop)
            return torch.zeros((c, h, w), dtype=torch.uint8), label, index, False


def shard(n: int, rank: int, world: int) -> list[int]:
    """Strided indices of rank ``rank``: every sample on exactly one rank, no padding."""
    return list(range(rank, n, world))


def make_loader(dataset: ImageDataset, batch_size: int, workers: int, pin_memory: bool) -> DataLoader:
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(prefetch_factor=4, persistent_workers=False)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=pin_memory, drop_last=False, **kwargs)
