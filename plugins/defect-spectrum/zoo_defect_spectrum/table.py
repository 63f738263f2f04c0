"""The paper's table as card data, Spearman's rank correlation, and the rendered comparison (torch-free).

The table is never written in code: its rows are the cards of paper ``defect-spectrum`` that
report a latency on the table's device, each with the milliseconds its card cites.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zoo.measure.ranking import ranks, spearman  # noqa: F401 - part of this module's API (bench, tests)

PAPER = "defect-spectrum"
DEVICE = "RTX 3090"  #: the table's device, as the cards' reported latency names it


@dataclass(frozen=True)
class Row:
    """One column of the paper's table beside what was measured here."""

    name: str
    table_ms: float  #: the card's reported latency on the table's device
    median_ms: float
    p90_ms: float
    params_m: float


def table_latency(card: Any, device: str = DEVICE) -> float | None:
    """The card's reported latency (ms) on ``device``, or None when it reports none there."""
    reported = getattr(card, "reported", None)
    for item in (reported.latency if reported is not None else ()):
        if str(item.get("device", "")).strip().lower() == device.lower():
            return float(item["value"])
    return None


def table_cards(cards: Iterable[Any], paper: str = PAPER, device: str = DEVICE) -> list[tuple[str, float]]:
    """``(card name, table ms)`` for every card of ``paper`` with a latency on ``device``, in the given order."""
    rows = []
    for card in cards:
        if card.paper != paper or card.card_only:
            continue
        ms = table_latency(card, device)
        if ms is not None:
            rows.append((card.name, ms))
    return rows


def _rho(rho: float | None) -> str:
    return "undefined (a column is constant)" if rho is None or math.isnan(rho) else f"{rho:.3f}"


def render_text(rows: Sequence[Row], rho: float | None, setup: str) -> str:
    """The table, fastest first by the paper, with both rank columns and rho below it."""
    from zoo.report import render

    table_rank, here_rank = ranks([r.table_ms for r in rows]), ranks([r.median_ms for r in rows])
    body = [[r.name, f"{r.table_ms:g}", f"{table_rank[i]:g}", f"{r.median_ms:.2f}", f"{r.p90_ms:.2f}",
             f"{here_rank[i]:g}", f"{r.params_m:.2f}"]
            for i, r in sorted(enumerate(rows), key=lambda ir: ir[1].table_ms)]
    head = ["model", f"table ms ({DEVICE})", "table rank", "here median ms", "here p90 ms", "here rank", "params M"]
    return (f"{setup}\n" + render.table(body, head, align="lrrrrrr")
            + f"\nSpearman rank correlation (table {DEVICE} ms vs measured median ms), {len(rows)} models: {_rho(rho)}")


def render_markdown(rows: Sequence[Row], rho: float | None, setup: str) -> str:
    """The same comparison as a Markdown table (for a README)."""
    table_rank, here_rank = ranks([r.table_ms for r in rows]), ranks([r.median_ms for r in rows])
    lines = [setup, "", f"**Spearman rank correlation (table {DEVICE} ms vs measured median ms), "
                        f"{len(rows)} models: {_rho(rho)}**", "",
             f"| model | table ms ({DEVICE}) | table rank | here median ms | here p90 ms | here rank | params M |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for i, r in sorted(enumerate(rows), key=lambda ir: ir[1].table_ms):
        lines.append(f"| `{r.name}` | {r.table_ms:g} | {table_rank[i]:g} | {r.median_ms:.2f} | {r.p90_ms:.2f} | "
                     f"{here_rank[i]:g} | {r.params_m:.2f} |")
    return "\n".join(lines)
