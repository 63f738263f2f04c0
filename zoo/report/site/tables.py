"""One paper's table as the decks print it, with a "measured here" column beside each reported one.

Rows are the paper's cards, columns every top-level claim its cards make (params, MACs, each
``dataset.metric``, throughput, latency per device), in the order the cards give them, so the
FasterViT ImageNet table, the ViT-LLaMA robustness columns (IN / IN-C / IN-A / IN-SK / IN-R), the
YOLOv6 COCO rows and the anomaly and segmentation tables all come out of the cards' own figures.
Per-category figures (nested tables) stay on the model pages.

A speed figure measured on other hardware than the paper's cannot be judged (verify says "not
measurable"), but the bench record's value is still shown, greyed, and used for the Spearman rank
correlation of that column (EfficientMod's latency table: do the paper's speed ranks hold here?).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo.claims.verify import Claim
from zoo.registry import lookup
from zoo.report.site.collect import ModelEntry, latest_bench

_FIXED = {"params_m": "params (M)", "gmacs": "MACs (G)", "throughput": "throughput (img/s)"}


@dataclass
class Cell:
    reported: Any = None
    measured: float | None = None
    status: str = ""
    note: str = ""
    unjudged: bool = False  #: a bench value shown although no claim is judged by it (other hardware)


@dataclass
class Column:
    claim: str
    title: str


@dataclass
class PaperTable:
    columns: list[Column]
    rows: list[tuple[ModelEntry, dict[str, Cell]]]
    correlations: list[dict[str, Any]] = field(default_factory=list)
    nested: int = 0  #: per-category figures left to the model pages


def _title(claim: str, entry: ModelEntry) -> str:
    if claim in _FIXED:
        return _FIXED[claim]
    if claim.startswith("latency@"):
        return f"latency {claim.split('@', 1)[1]} (ms)"
    dataset, _, metric = claim.rpartition(".")
    task = lookup.get_task(entry.card.task)
    spec = task.metric(metric) if task is not None and task.metrics else None
    unit = f" ({spec.unit})" if spec is not None and spec.unit and spec.unit != "%" else ""
    return f"{dataset} {spec.title if spec else metric}{unit}"


def _nested(entry: ModelEntry) -> set[str]:
    figures = entry.card.reported.figures() if entry.card.reported else []
    return {claim for claim, dataset, metric, _ in figures if claim != f"{dataset}.{metric}"}


def _bench_value(entry: ModelEntry, claim: str) -> float | None:
    record = latest_bench(entry.card, entry.bench)
    if record is None:
        return None
    key = "throughput_img_s" if claim == "throughput" else "latency_ms" if claim.startswith("latency@") else None
    value = record.metrics.get(key) if key else None
    return float(value) if value is not None else None


def _cell(entry: ModelEntry, claim: Claim) -> Cell:
    cell = Cell(claim.reported, claim.measured, claim.status, claim.note)
    if cell.measured is None and claim.claim.split("@")[0] in ("throughput", "latency"):
        value = _bench_value(entry, claim.claim)
        if value is not None:
            record = latest_bench(entry.card, entry.bench)
            cell.measured, cell.unjudged = value, True
            cell.note = f"measured on {record.device if record else '?'}, not the paper's hardware: shown, not judged"
    return cell


def spearman(pairs: list[tuple[float, float]]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None under 3 pairs or a constant side."""
    import math

    from zoo.measure.ranking import spearman as rho

    if len(pairs) < 3:
        return None
    value = rho([p[0] for p in pairs], [p[1] for p in pairs])
    return None if math.isnan(value) else value


def paper_table(entries: list[ModelEntry]) -> PaperTable:
    """The table of one paper's cards (see the module docstring)."""
    columns: dict[str, Column] = {}
    rows = []
    nested = 0
    for entry in entries:
        skip = _nested(entry)
        nested += len(skip)
        cells = {}
        for claim in entry.claims:
            if claim.claim in skip or claim.claim == "claims" or claim.status == "not testable":
                continue
            if claim.claim not in columns:
                columns[claim.claim] = Column(claim.claim, _title(claim.claim, entry))
            cells[claim.claim] = _cell(entry, claim)
        rows.append((entry, cells))
    correlations = []
    for column in columns.values():
        pairs = [(float(cells[column.claim].reported), float(cells[column.claim].measured))
                 for _, cells in rows if column.claim in cells
                 and cells[column.claim].reported is not None and cells[column.claim].measured is not None]
        rho = spearman(pairs)
        if rho is not None:
            correlations.append({"column": column.title, "rho": rho, "n": len(pairs)})
    return PaperTable(list(columns.values()), rows, correlations, nested)
