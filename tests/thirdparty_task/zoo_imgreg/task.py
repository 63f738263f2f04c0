"""The image-regression Task: what the core reads about it (torch-free: ``zoo list`` may import it).

A model predicts one number per image. The card field ``target: {scale, offset}`` says how the
model's raw output maps to the target's unit (``value = output * scale + offset``); the targets of
the ``imgreg`` layout are mean brightness in [0, 255] ("px").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zoo.registry.tasks import Metric, Task

NAME = "image-regression"
TARGET_FIELDS = ("scale", "offset")


@dataclass
class RegressionOptions:
    """Options of ``zoo eval`` for image regression (one CLI option each)."""

    clip: bool = field(default=False, metadata={"help": "Clamp predictions to the card's target range."})


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def parse_fields(fields: Mapping[str, Any], card: Any = None) -> dict[str, Any]:
    """Validate ``target: {scale, offset}``; returns ``{"target": {"scale": float, "offset": float}}``."""
    target = fields.get("target")
    if target is None:
        raise ValueError("target: required field is missing (e.g. target: {scale: 255, offset: 0})")
    if not isinstance(target, Mapping):
        raise ValueError(f"target: expected a mapping {{scale, offset}}, got {type(target).__name__} {target!r}")
    unknown = sorted(str(k) for k in target if k not in TARGET_FIELDS)
    if unknown:
        raise ValueError(f"target.{unknown[0]}: unknown field (allowed: {', '.join(TARGET_FIELDS)})")
    if "scale" not in target:
        raise ValueError("target.scale: required field is missing")
    scale = _number(target["scale"], "target.scale")
    if scale <= 0:
        raise ValueError(f"target.scale: expected a number > 0, got {target['scale']!r}")
    offset = _number(target.get("offset", 0), "target.offset")
    return {"target": {"scale": scale, "offset": offset}}


def protocol(card: Any, dataset: str, options: RegressionOptions | None) -> dict[str, Any]:
    """What a measurement depends on: the input resolution, the target mapping, and clipping."""
    target = dict((getattr(card, "fields", None) or {}).get("target") or {})
    size = list(card.input_size[1:]) if getattr(card, "input_size", None) else None
    return {"resize": size, "target": target, "clip": bool(options.clip) if options is not None else False}


TASK = Task(
    name=NAME,
    summary="one number per image (mean absolute / root-mean-square error against targets.csv)",
    metrics=(
        Metric(name="mae", label="MAE", unit="px", direction="lower", tolerance=0.5, primary=True),
        Metric(name="rmse", label="RMSE", unit="px", direction="lower", tolerance=5.0, relative=True),
    ),
    datasets=("imgreg",),
    options=RegressionOptions,
    card_fields={"target": "how the model's output maps to the target: {scale, offset} (value = out * scale + offset)"},
    defaults={"input_size": (3, 16, 16)},
    evaluate="zoo_imgreg.run:evaluate",
    example_inputs="zoo_imgreg.run:example_inputs",
    check_output="zoo_imgreg.run:check_output",
    protocol="zoo_imgreg.task:protocol",
    postprocess="zoo_imgreg.run:postprocess",
    write_predictions="zoo_imgreg.run:write_predictions",
    demo_data="zoo_imgreg.data:make_demo",
    parse_fields=parse_fields,
)
