"""The classification protocol: what a top-1 depends on, recorded with every run and matched against claims.

``{"preprocess": EvalPreprocess.from_card(card, dataset).as_dict()}``, plus for ImageNet-C the part
of the benchmark measured, ``{"corruption": NAME | "all", "severity": "1".."5" | "all"}`` as
strings. A claim's protocol is ``protocol(card, dataset, None)``: the card's preprocessing and the
whole benchmark, so a single ``--corruption fog`` run never stands for the averaged figure.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from zoo.tasks.classification.data.transforms import EvalPreprocess

if TYPE_CHECKING:
    from zoo.registry.cards import Card
    from zoo.tasks.classification.task import ClassificationOptions


def protocol(card: Card, dataset: str, options: ClassificationOptions | None) -> dict[str, Any]:
    """The protocol of a run of ``card`` on ``dataset`` with ``options`` (None: a claim's).

    :raises ValueError: ``corruption``/``severity`` given for a dataset other than ImageNet-C.
    """
    corruption = getattr(options, "corruption", None)
    severity = getattr(options, "severity", None)
    out: dict[str, Any] = {"preprocess": EvalPreprocess.from_card(card, dataset).as_dict()}
    if dataset == "imagenet-c":
        out["corruption"] = "all" if corruption is None else str(corruption)
        out["severity"] = "all" if severity is None else str(severity)
    elif corruption is not None or severity is not None:
        raise ValueError(f"--corruption/--severity apply to imagenet-c, not {dataset}")
    return json.loads(json.dumps(out))  # tuples as lists: equal to the protocol read back from a record
