"""Tasks as data: what a task family (classification, detection, ...) tells the core about itself.

A plugin returns :class:`Task` objects from ``zoo_tasks``. A task is a torch-free spec: the card
fields it owns, the datasets it accepts, its metrics (unit, direction, tolerance, which one is
primary), its options (a dataclass: ``zoo eval`` makes one CLI option per field) and the code it
runs, named by ``"module:callable"`` strings that are imported only when used. The core reads
nothing else about a task: ``zoo list`` shows a card's primary metric, ``zoo eval`` records the
metrics the evaluate callable returns, ``zoo verify`` judges each reported metric with that
metric's tolerance against runs of the claim's protocol, ``zoo bench`` and the plugin kit feed
``example_inputs`` and check the output with ``check_output``.

This module must stay light: it is imported by ``zoo list``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One number a task measures, and how a paper's figure for it is judged."""

    name: str  #: key in results and in a card's ``reported.<dataset>`` block, e.g. ``top1``, ``box_ap``
    label: str = ""  #: column title (default: the name)
    unit: str = "%"  #: shown after values: ``%``, ``AP``, ``mIoU``, ``px``
    direction: str = "higher"  #: ``higher`` or ``lower`` is better
    tolerance: float = 0.1  #: a claim holds when |measured - reported| <= tolerance (in ``unit``) ...
    relative: bool = False  #: ... or, when True, <= tolerance percent of the reported value
    primary: bool = False  #: the task's headline metric (``zoo list``'s column, the report's sort key)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a metric needs a name")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if not isinstance(self.tolerance, (int, float)) or isinstance(self.tolerance, bool) \
                or not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise ValueError(f"metric {self.name!r}: tolerance must be a finite number >= 0, got {self.tolerance!r}")

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True, kw_only=True)
class Task:
    """A task family, as a plugin declares it through ``zoo_tasks``.

    Every ``"module:callable"`` reference is imported when used, never by ``zoo list``:

    - ``evaluate(model, card, dataset, options, runtime) -> dict``: the metrics of ``model`` on
      ``dataset`` (what the dataset adapter returned); ``options`` is an instance of ``options``
      (the task's dataclass), ``runtime`` the shared :class:`zoo.eval.runtime.Runtime` (device,
      precision, batch size, workers, threads, progress). The dict holds at least every metric the
      dataset measures (by :attr:`Metric.name`), ``images`` (samples scored) and may hold
      ``per_class``/``parts`` tables and anything else worth recording.
    - ``example_inputs(card, batch_size) -> tensor | tuple``: a batch the model accepts (``zoo
      bench`` times it, the plugin kit runs it); default: ``randn(batch, *card.input_size)``.
    - ``check_output(card, output, batch_size) -> None``: raises ``ValueError`` with one line
      when the model's output is not what the task expects (the kit's check).
    - ``protocol(card, dataset, options) -> dict``: the settings a measurement depends on
      (preprocessing, test-time scales, thresholds, the part of a dataset), as plain JSON data.
      A run is recorded with its protocol; a claim is judged only by runs whose protocol equals
      the one the card gives for that dataset (options at their defaults).
    - ``prepare(card, model) -> model``: readies a freshly built model for ``example_inputs`` where
      building is not enough (a few-shot anomaly model fits its memory bank on generated normal
      images); ``zoo bench`` and the plugin kit call it before running the model, untimed.
    - ``postprocess(card, output) -> Any``: what turns the model's raw output into the task's
      predictions (NMS, top-k masks, argmax); ``zoo bench`` times it apart from the forward pass
      (``postprocess_ms``), since for a detector it is part of the latency a user sees.
    - ``write_predictions(predictions, path) -> Path``: the per-sample output in the field's
      format (``zoo eval --save-predictions``).
    - ``demo_data(root, **kwargs) -> Path``: a small generated dataset in a layout one of
      ``datasets`` reads (``zoo demo-data``, tests).
    - ``parse_fields(fields, card) -> dict``: validates the card fields this task owns
      (``card_fields``) and returns them parsed; raises ``ValueError("field: problem")``. Torch-free.
    """

    name: str  #: the ``task:`` value of a card, e.g. ``image-classification``
    summary: str = ""  #: one line for ``zoo tasks`` and the docs
    metrics: tuple[Metric, ...] = ()  #: what the task measures (see Metric); one may be ``primary``
    datasets: tuple[str, ...] = ()  #: dataset names (``zoo_datasets``) this task evaluates on
    options: type | None = None  #: a dataclass of task options with defaults; None: no options
    card_fields: Mapping[str, str] = field(default_factory=dict)  #: task-owned card field -> one-line doc
    defaults: Mapping[str, Any] = field(default_factory=dict)  #: common card fields' defaults (input_size, num_classes)
    claim_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  #: reported table -> options of the runs that test it: ``{"ms_flip": {"ms": True}}``
    evaluate: str = ""  #: ``fn(model, card, dataset, options, runtime) -> dict`` of metrics
    example_inputs: str | None = None  #: ``fn(card, batch_size)``: a batch for bench/kit (default randn)
    check_output: str | None = None  #: ``fn(card, output, batch_size)``: ValueError when the output is wrong
    protocol: str | None = None  #: ``fn(card, dataset, options) -> dict``: recorded with runs, matched by claims
    prepare: str | None = None  #: ``fn(card, model) -> model``: ready a built model for example inputs (few-shot fit)
    postprocess: str | None = None  #: ``fn(card, output)``: raw output -> predictions; bench times it apart
    write_predictions: str | None = None  #: ``fn(predictions, path) -> Path`` in the field's format
    demo_data: str | None = None  #: ``fn(root, **kwargs) -> Path``: a small generated dataset
    #: ``fn(fields, card) -> dict``: validates the task-owned card fields (torch-free, in-process)
    parse_fields: Callable[[Mapping[str, Any], Any], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a task needs a name")
        bad = next((m for m in self.metrics if not isinstance(m, Metric)), None) \
            if isinstance(self.metrics, tuple | list) else self.metrics
        if bad is not None:
            raise ValueError(f"task {self.name!r}: metrics must be Metric objects, got {bad!r:.60}")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r}: metric names repeat: {names}")
        if sum(m.primary for m in self.metrics) > 1:
            raise ValueError(f"task {self.name!r}: more than one primary metric")
        if self.options is not None and not dataclasses.is_dataclass(self.options):
            raise ValueError(f"task {self.name!r}: options must be a dataclass, got {self.options!r}")
        for ref_name in ("evaluate", "example_inputs", "check_output", "protocol", "prepare", "postprocess", "write_predictions",
                         "demo_data"):
            ref = getattr(self, ref_name)
            if ref is not None and ref != "" and (not isinstance(ref, str) or ":" not in ref):
                raise ValueError(f"task {self.name!r}: {ref_name} must be 'module:callable', got {ref!r}")

    def claim_table(self, claim: str, dataset: str) -> str | None:
        """The ``claim_options`` table a claim path (``ade20k.ms_flip.miou``) sits under, or None."""
        parts = claim[len(dataset) + 1:].split(".")[:-1] if claim.startswith(dataset + ".") else []
        return next((part for part in parts if part in self.claim_options), None)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def primary(self) -> Metric | None:
        return next((m for m in self.metrics if m.primary), self.metrics[0] if self.metrics else None)

    def option_fields(self) -> list[dataclasses.Field[Any]]:
        return list(dataclasses.fields(self.options)) if self.options is not None else []

    def make_options(self, values: Mapping[str, Any] | None = None) -> Any:
        """The task's options dataclass from ``values``; an unknown name is a ValueError naming it."""
        values = dict(values or {})
        if self.options is None:
            if values:
                raise ValueError(f"task {self.name!r} takes no options, got {', '.join(sorted(values))}")
            return None
        known = {f.name for f in self.option_fields()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"task {self.name!r} has no option {unknown[0]!r} "
                             f"(its options: {', '.join(sorted(known)) or 'none'})")
        return self.options(**{k: v for k, v in values.items() if v is not None})
