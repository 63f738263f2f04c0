"""The one record of a measurement: what ``zoo eval`` and ``zoo bench`` append and everything else reads.

A :class:`Result` is task-generic: the task and dataset it was measured on, the ``protocol`` the
measurement depends on (as the task's ``protocol`` callable states it), the precision, the metrics
by name, and where the weights came from. Claims are judged only by results of the same
(model, dataset, protocol) and of the precision the claim was made at.

Lines written before this record existed (schema 1: flat ``top1``/``top5`` fields) are migrated
when read (:func:`zoo.records.results.from_json`); nothing rewrites the file.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

SCHEMA = 2  #: the version written now; 1 = the flat classification lines of zoo 0.1
KINDS = ("eval", "bench")


def protocol_key(protocol: Any) -> str:
    """A protocol as one canonical string (sorted keys, no spaces): equal protocols, equal keys."""
    return json.dumps(protocol or {}, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(kw_only=True)
class Result:
    """One measurement. ``metrics`` holds numbers only; tables go to ``details``."""

    model: str  #: the card's canonical name
    dataset: str  #: the registered dataset name, or ``folder:PATH`` / ``<name>:<arg>`` for a path-bound one
    task: str = "image-classification"
    kind: str = "eval"  #: ``eval`` or ``bench``
    protocol: dict[str, Any] = field(default_factory=dict)  #: what the measurement depends on (task-defined)
    precision: str = "fp32"  #: fp32 | bf16 | fp16
    metrics: dict[str, float | None] = field(default_factory=dict)  #: metric name -> value (task's units)
    weights: dict[str, Any] | None = None  #: provenance: origin, sha256, source (None: not recorded)
    images: int | None = None  #: samples scored
    throughput_img_s: float | None = None
    limit: int | None = None  #: a --limit subset
    patch: str | None = None
    pretrained: bool | None = None
    checkpoint: str | None = None
    skipped_bad_images: bool = False
    device: str | None = None
    time: str | None = None  #: ISO 8601, UTC
    versions: dict[str, str] = field(default_factory=dict)  #: zoo, torch, ...
    details: dict[str, Any] = field(default_factory=dict)  #: per-class / per-part tables, settings, anything else
    schema: int = SCHEMA

    @property
    def key(self) -> tuple[str, str, str]:
        """(model in lower case, dataset, protocol key): the runs that measure the same thing."""
        return (self.model.lower(), self.dataset, protocol_key(self.protocol))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """The record as one flat dict in the shape zoo 0.1 wrote (``top1`` beside ``model``), for
        ``zoo results`` and callers not yet switched to Result: ``model``, ``dataset``,
        ``precision`` and every other field not at its default (a migrated schema-1 line reads back
        as it was written, less its null fields), then the metrics and the details (an earlier one
        wins a name), and ``protocol`` when there is one."""
        out: dict[str, Any] = {"model": self.model, "dataset": self.dataset, "precision": self.precision}
        for f in fields(self):
            if f.name in out or f.name in ("metrics", "details", "protocol", "schema"):
                continue
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            value = getattr(self, f.name)
            if value != default:
                out[f.name] = value
        for part in (self.metrics, self.details):
            for key, value in part.items():
                out.setdefault(key, value)
        if self.protocol:
            out.setdefault("protocol", self.protocol)
        return out
