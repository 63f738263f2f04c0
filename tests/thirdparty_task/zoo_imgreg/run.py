"""The image-regression code the core calls by reference: evaluate, example inputs, output check, predictions."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

import torch

from zoo.errors import DataError
from zoo.eval.runtime import Progress


def _target(card: Any) -> tuple[float, float]:
    target = (getattr(card, "fields", None) or {}).get("target") or {}
    return float(target.get("scale", 1.0)), float(target.get("offset", 0.0))


def _load(path: str, size: tuple[int, int]) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    except OSError as exc:
        raise DataError(f"imgreg: cannot read {path}: {exc}") from None
    return data.view(size[0], size[1], 3).permute(2, 0, 1)


def evaluate(model: torch.nn.Module, card: Any, dataset: Any, options: Any, runtime: Any) -> dict[str, Any]:
    """MAE and RMSE of ``model``'s predictions (``out * scale + offset``) against the dataset's targets."""
    device = runtime.torch_device()
    if runtime.threads and device.type == "cpu":
        torch.set_num_threads(runtime.threads)
    scale, offset = _target(card)
    clip = bool(getattr(options, "clip", False))
    size = tuple(card.input_size[1:])
    model = model.eval().to(device)
    errors: list[float] = []
    predictions: list[dict[str, Any]] = []
    progress = Progress(f"{card.name} on {dataset.name}", len(dataset), runtime.show_progress())
    start = time.perf_counter()
    with torch.inference_mode(), runtime.autocast(device):
        for first in range(0, len(dataset), runtime.batch_size):
            batch = dataset.samples[first:first + runtime.batch_size]
            x = torch.stack([_load(path, size) for path, _ in batch]).to(device).float().div_(255)
            out = model(x).float()
            check_output(card, out, len(batch))
            values = out[:, 0] * scale + offset
            if clip:
                values = values.clamp(offset, offset + scale)
            for (path, target), value in zip(batch, values.tolist(), strict=True):
                errors.append(value - target)
                predictions.append({"file": Path(path).name, "target": target, "prediction": value})
            progress.update(len(batch))
    progress.close()
    seconds = time.perf_counter() - start
    n = len(errors)
    result: dict[str, Any] = {
        "mae": round(sum(abs(e) for e in errors) / n, 4),
        "rmse": round(math.sqrt(sum(e * e for e in errors) / n), 4),
        "images": n,
        "throughput_img_s": round(n / seconds, 1) if seconds > 0 else None,
        "device": str(device),
        "precision": runtime.precision(device),
        "batch_size": runtime.batch_size,
    }
    if runtime.predictions:
        result["predictions"] = predictions
    return result


def example_inputs(card: Any, batch_size: int) -> torch.Tensor:
    """A batch of images in [0, 1] at the card's input size (what evaluate feeds)."""
    return torch.rand(batch_size, *card.input_size)


def postprocess(card: Any, output: torch.Tensor) -> list[float]:
    """The model's raw ``(batch, 1)`` output as target values (``out * scale + offset``)."""
    scale, offset = _target(card)
    return (output[:, 0] * scale + offset).tolist()


def check_output(card: Any, output: Any, batch_size: int) -> None:
    """One finite number per image: a ``(batch, 1)`` tensor."""
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"output is {type(output).__name__}, expected a tensor of shape ({batch_size}, 1)")
    if tuple(output.shape) != (batch_size, 1):
        raise ValueError(f"output shape {tuple(output.shape)}, expected ({batch_size}, 1)")
    if not torch.isfinite(output).all():
        raise ValueError("output holds non-finite values")


def write_predictions(predictions: list[dict[str, Any]], path: str | Path) -> Path:
    """``file,target,prediction`` rows: the format of targets.csv plus the prediction."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "target", "prediction"])
        writer.writerows([p["file"], repr(p["target"]), repr(p["prediction"])] for p in predictions)
    return path
