"""A paper's latency table re-timed here: which cards form it, and how well the ranking holds.

Absolute milliseconds depend on the device; the order of the models is what another machine can
reproduce. ``zoo bench --task T`` (optionally ``--paper P``) times every card of the task that reports a
latency and puts each group of one paper and one reported device beside the measured column with
Spearman's rank correlation (torch-free).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from zoo.registry.cards import Card


def table_cards(cards: Iterable[Card]) -> list[tuple[Card, dict[str, Any]]]:
    """``(card, its first reported latency)`` for every card that reports one and can run here."""
    out = []
    for card in cards:
        latency = card.reported.latency if card.reported is not None else ()
        if card.card_only or not latency:
            continue
        out.append((card, dict(latency[0])))
    return out


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (scipy's ``rankdata(method='average')``)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho (Pearson's correlation of average-tie ranks); NaN when a side is constant.

    :raises ValueError: fewer than two pairs, or sequences of different lengths.
    """
    if len(a) != len(b):
        raise ValueError(f"spearman: {len(a)} values against {len(b)}")
    if len(a) < 2:
        raise ValueError(f"spearman: needs at least two pairs, got {len(a)}")
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(var) if var > 0 else math.nan


def compare(rows: Iterable[tuple[Card, dict[str, Any], float]]) -> list[dict[str, Any]]:
    """Group ``(card, reported latency, measured median ms)`` by (paper, reported device): each group's
    rows in the paper's order (fastest first), both ranks, and rho (None below two rows)."""
    groups: dict[tuple[str, str], list[tuple[Card, dict[str, Any], float]]] = {}
    for card, reported, measured in rows:
        groups.setdefault((card.paper, str(reported.get("device") or "-")), []).append((card, reported, measured))
    out = []
    for (paper, device), members in groups.items():
        members.sort(key=lambda m: float(m[1]["value"]))
        paper_ms = [float(m[1]["value"]) for m in members]
        here_ms = [m[2] for m in members]
        rho = spearman(paper_ms, here_ms) if len(members) >= 2 else None
        out.append({
            "paper": paper, "device": device,
            "spearman": None if rho is None or math.isnan(rho) else round(rho, 3),
            "rows": [{"model": m[0].name, "reported_ms": p, "measured_ms": round(h, 3), "paper_rank": rp, "here_rank": rh}
                     for m, p, h, rp, rh in zip(members, paper_ms, here_ms, ranks(paper_ms), ranks(here_ms), strict=True)],
        })
    return out
