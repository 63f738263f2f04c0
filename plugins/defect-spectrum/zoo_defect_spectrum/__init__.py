"""zoo plugin ``defect-spectrum``: the eight segmenters of Defect Spectrum's inference-time table.

Entry module: kept light (no torch, timm, smp or transformers): ``zoo list`` imports it. Builders are
named by "module:callable" strings (``zoo_defect_spectrum.models``, ``zoo_defect_spectrum.bisenet``);
``zoo defect-spectrum-bench`` (``zoo_defect_spectrum.cli``) times the table's models here and
prints Spearman's rank correlation with the paper's RTX 3090 column.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from zoo import hookimpl

PLUGIN = "defect-spectrum"
BUILDERS = {
    "unet": "zoo_defect_spectrum.models:unet",
    "pspnet": "zoo_defect_spectrum.models:pspnet",
    "deeplabv3plus": "zoo_defect_spectrum.models:deeplabv3plus",
    "hrnet_w18_small": "zoo_defect_spectrum.models:hrnet_w18_small",
    "bisenet": "zoo_defect_spectrum.bisenet:bisenet",
    "vit_t": "zoo_defect_spectrum.models:vit_t",
    "mit_b0": "zoo_defect_spectrum.models:mit_b0",
    "mask2former": "zoo_defect_spectrum.models:mask2former",
}


@hookimpl
def zoo_cards() -> list[Any]:
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders() -> dict[str, str]:
    return dict(BUILDERS)


@hookimpl
def zoo_commands() -> dict[str, str]:
    return {"defect-spectrum-bench": "zoo_defect_spectrum.cli:bench_command"}
