"""zoo plugin for YOLOv6 v3.0 (meituan/YOLOv6 release 0.4.0): builders and cards of YOLOv6-N/S/M/L (640) and N6/S6/M6/L6 (1280).

Entry module: kept light (no torch); the network lives in ``zoo_yolov6.model``. The official
checkpoints pickle the whole model under ``model``; the core's restricted reader
(``zoo.weights.unpickle``) turns them into a state dict whose keys are already the builder's, so
no converter is needed. Folding for ``reported.form: deploy`` is the model's own
``switch_to_deploy()`` (RepVGG blocks and Conv-BN pairs, as the official eval does).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from zoo import hookimpl

PLUGIN = "yolov6"
_BUILDERS = ("yolov6_n", "yolov6_s", "yolov6_m", "yolov6_l", "yolov6_n6", "yolov6_s6", "yolov6_m6", "yolov6_l6")


@hookimpl
def zoo_cards() -> list[Any]:
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"zoo_yolov6.model:{name}" for name in _BUILDERS}
