"""Classification's example inputs, output check and prediction writer (the Task's refs for bench, kit, eval)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from zoo.registry.cards import Card


def example_inputs(card: Card, batch_size: int) -> torch.Tensor:
    """A batch of normalised-looking images at the card's input size: ``randn(batch, C, H, W)``."""
    import torch

    return torch.randn(batch_size, *card.input_size)


def check_output(card: Card, output: Any, batch_size: int) -> None:
    """Logits of shape ``(batch_size, card.num_classes)``, finite; else a one-line ValueError."""
    import torch

    expected = (batch_size, card.num_classes)
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    if shape != expected:
        raise ValueError(f"output shape {shape}, expected {expected}")
    if not output.is_floating_point() or not bool(torch.isfinite(output).all()):
        raise ValueError("the logits are not all finite floating-point numbers")


def write_predictions(predictions: Mapping[str, Sequence[int]], path: str | Path) -> Path:
    """One JSON line per image, in the run's order: ``{"image": PATH, "top5": [class indices]}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for image, top in predictions.items():
            fh.write(json.dumps({"image": str(image), "top5": [int(c) for c in top]}) + "\n")
    return path
