"""Evaluation suites: the datasets of one paper table, run as one row (``zoo eval --suite NAME``).

A suite is data: columns, each a dataset the card's task evaluates and the metric the table
prints. Each column is an ordinary :func:`zoo.eval.evaluation.run` (same checks, same results
line in results.jsonl), looked for at ``ROOT/<dataset>``; a column whose folder is absent or
unreadable is reported on its own line and the others still run.

``robustness`` is the table of ViT-LLaMA (Pang et al., "Frozen Transformers in Language Models
Are Effective Visual Encoder Layers", ICLR 2024): ImageNet top-1 on IN, IN-C, IN-A, IN-SK and
IN-R. Its IN-C figure is the mean top-1 accuracy over the 15 corruptions x 5 severities, not mCE:
the official ``image_classification/main.py`` (ziqipang/LM4VisualEncoding @ e34e919, lines
472-489) averages each corruption's 5 severities, then the 15 corruptions, and prints
"Corruption Top1 accuracy" beside mCE; the table's IN-C values are accuracies (ViT-T-LLaMA 45.8,
higher than its baseline's 43.9). zoo's ``imagenet-c`` result is that mean: its ``top1`` is the
mean of the 75 corruption x severity parts, which equals the mean of per-corruption means when
every corruption has all 5 severities, as the dataset adapter requires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import DataError, UnknownName, UserError, ZooError, first_line

if TYPE_CHECKING:
    from zoo.eval.evaluation import Evaluation


class UnknownSuite(UnknownName):
    kind = "suite"


@dataclass(frozen=True)
class Column:
    title: str  #: the table's heading ("IN-C")
    dataset: str  #: a registered dataset, looked for at ROOT/<dataset>
    metric: str = "top1"  #: the metric the table prints


@dataclass(frozen=True)
class Suite:
    name: str
    task: str  #: the card task the suite evaluates
    title: str  #: where the table comes from
    columns: tuple[Column, ...]
    note: str = ""  #: how a column is computed, with its source


SUITES: dict[str, Suite] = {
    "robustness": Suite(
        name="robustness",
        task="image-classification",
        title="ViT-LLaMA robustness table (top-1 %)",
        columns=(Column("IN", "imagenet"), Column("IN-C", "imagenet-c"), Column("IN-A", "imagenet-a"),
                 Column("IN-SK", "imagenet-sketch"), Column("IN-R", "imagenet-r")),
        note="IN-C: mean top-1 over 15 corruptions x 5 severities (not mCE), as "
             "ziqipang/LM4VisualEncoding@e34e919 image_classification/main.py:472-489",
    ),
}


def get_suite(name: str) -> Suite:
    """The suite called ``name``; an unknown name is one line with the close ones."""
    if name not in SUITES:
        raise UnknownSuite(name, SUITES)
    return SUITES[name]


@dataclass
class Cell:
    """One column of a suite run: the paper's figure, the measured one, or why there is none."""

    column: Column
    root: Path
    reported: float | None = None
    measured: float | None = None
    error: str | None = None  #: "not found at ROOT/imagenet-a", or the dataset's first error line
    missing: bool = False  #: the folder does not exist (the user has not got that dataset)
    bad_images: bool = False  #: the run stopped on unreadable images
    output: dict[str, Any] | None = None  #: the evaluation's printed result
    record_error: str | None = None  #: results.jsonl could not be written

    @property
    def delta(self) -> float | None:
        if self.measured is None or self.reported is None:
            return None
        return round(self.measured - self.reported, 4)

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column.title, "dataset": self.column.dataset, "metric": self.column.metric,
                "root": str(self.root), "reported": self.reported, "measured": self.measured, "delta": self.delta,
                "error": self.error, "result": self.output, "record_error": self.record_error}


@dataclass
class SuiteRun:
    suite: Suite
    model: str
    cells: list[Cell] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"suite": self.suite.name, "title": self.suite.title, "model": self.model, "note": self.suite.note,
                "columns": [cell.as_dict() for cell in self.cells]}


def _reported(card: Any, dataset: str, metric: str) -> float | None:
    """The card's top-level figure for ``dataset.metric`` (not a nested table's)."""
    if card.reported is None:
        return None
    return next((float(value) for claim, ds, m, value in card.reported.figures()
                 if ds == dataset and m == metric and claim == f"{ds}.{metric}"), None)


def suite_root(data_dir: str | Path | None) -> Path:
    """ROOT of the suite's datasets: ``--data-dir``, else ``$ZOO_DATA_DIR``."""
    import os

    if data_dir is not None and str(data_dir).strip():
        return Path(data_dir).expanduser()
    env = os.environ.get("ZOO_DATA_DIR")
    if env:
        return Path(env).expanduser()
    raise UserError("--suite needs --data-dir ROOT (or ZOO_DATA_DIR), with each dataset in ROOT/<dataset>")


def run_suite(
    suite: str,
    name: str,
    *,
    data_dir: str | Path | None = None,
    pretrained: bool = True,
    checkpoint: str | Path | None = None,
    patch: str | None = None,
    record: bool = True,
    on_cell: Callable[[Cell], None] | None = None,
    **options: Any,
) -> SuiteRun:
    """Evaluate model ``name`` on every column of ``suite``, each dataset at ``data_dir/<dataset>``.

    :param options: the runtime options of :func:`zoo.eval.evaluation.evaluate` (``device``,
        ``batch_size``, ``limit``, ...); task options are refused: each column runs the dataset
        the way the paper's table does (IN-C: every corruption and severity).
    :param record: append each column's result to results.jsonl as it finishes, as ``zoo eval``
        does; a results file that cannot be written is noted on the cell, not raised.
    :param on_cell: called with each finished cell (progress).
    :raises UserError: unknown suite or model, a model of another task, no data root, a bad option.
    """
    from zoo.eval import evaluation
    from zoo.registry import lookup

    spec = get_suite(suite)
    card = lookup.get_card(name)
    if card.task != spec.task:
        raise UserError(f"--suite {spec.name}: model {card.name!r} has task {card.task!r}; "
                        f"the suite evaluates {spec.task} models")
    tasks = lookup.tasks()
    if card.task in tasks:
        own = {f.name for f in tasks[card.task][1].option_fields()}
        given = sorted(k for k, v in options.items() if k in own and v is not None)
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UserError(f"--suite {spec.name} runs each dataset as the paper's table does; {flags} cannot "
                            "be combined with it")
    root = suite_root(data_dir)
    run = SuiteRun(spec, card.name)
    for column in spec.columns:
        cell = Cell(column, root / column.dataset, reported=_reported(card, column.dataset, column.metric))
        run.cells.append(cell)
        if not cell.root.exists():
            cell.error, cell.missing = f"not found at {cell.root}", True
        else:
            try:
                done: Evaluation = evaluation.run(card.name, column.dataset, data_dir=cell.root, pretrained=pretrained,
                                                  checkpoint=checkpoint, patch=patch, **options)
            except DataError as exc:  # this dataset's folder is not what it should be: the others still run
                cell.error = first_line(exc)
            except evaluation.BadImages as exc:
                cell.error, cell.bad_images, cell.output = first_line(exc), True, exc.result
            else:
                cell.output = done.output
                value = done.output.get(column.metric)
                cell.measured = float(value) if value is not None else None
                if record:
                    try:
                        evaluation.record(done)
                    except ZooError as exc:
                        cell.record_error = first_line(exc)
        if on_cell is not None:
            on_cell(cell)
    return run
