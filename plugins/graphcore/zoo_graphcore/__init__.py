"""zoo plugin for GraphCore (ICLR 2023): the card ``graphcore`` and its builder.

Entry module: kept light (no torch); the model lives in ``zoo_graphcore.model`` (GraphCore on the ViG
of ``zoo_graphcore.vig``). The official ViG-Ti checkpoint is a plain state dict whose keys are the
builder's, so no converter is needed. The task (``anomaly-detection``) is the zoo-anomaly plugin's.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from zoo import hookimpl

PLUGIN = "graphcore"


@hookimpl
def zoo_cards() -> list[Any]:
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {"graphcore_vig_ti": "zoo_graphcore.model:graphcore_vig_ti"}
