"""Turning API results into text: tables, card pages, JSON. No logic, no I/O beyond strings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from zoo.registry.cards import Card, Figure, Paper, Preprocess


def to_jsonable(value: Any) -> Any:
    """Dataclasses, mappings, tuples -> plain JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2)


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Figure):  # a card's figure: as its source printed it, never re-rounded
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], align: str | None = None) -> str:
    """A plain aligned table; ``align`` is one char per column, 'l' or 'r' (default: left)."""
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)
    lines = []
    for n, row in enumerate(cells):
        parts = [cell.rjust(w) if a == "r" else cell.ljust(w) for cell, w, a in zip(row, widths, align, strict=True)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plugins_table(rows: Sequence[dict[str, Any]]) -> str:
    """`zoo plugins`: one row per plugin (the dicts `zoo plugins --json` prints), problems below it."""
    lines = []
    for row in rows:
        import_s = "-" if row.get("import_s") is None else f"{row['import_s']:.2f}" + (" slow" if row.get("slow") else "")
        if row["status"] == "error":
            status = f"error: {row['error']}"
        elif row["status"] == "degraded":
            status = f"degraded: {len(row['problems'])} problem(s)"
        else:
            status = "ok"
        lines.append([row["name"], row.get("dist") or "-", row.get("version") or "-", row["cards"],
                      row["invalid_cards"], import_s, status])
    text = table(lines, ["plugin", "distribution", "version", "cards", "invalid", "import s", "status"],
                 align="lllrrrl")
    problems = [f"  {row['name']}: {problem}" for row in rows for problem in row.get("problems") or []]
    return text + ("\n\nproblems:\n" + "\n".join(problems) if problems else "")


def card_summary(card: Card, paper: Paper, installed: bool, license: str | None) -> dict[str, Any]:
    """The row `zoo list --json` prints for one card."""
    reported = card.reported
    return {
        "name": card.name,
        "paper": card.paper,
        "title": paper.title,
        "venue": paper.venue,
        "task": card.task,
        "plugin": card.plugin,
        "installed": installed,
        "license": license,
        "weights": [w.describe() for w in card.weights],
        "card_only": card.card_only,
        "reported": to_jsonable(reported) if reported else None,
    }


def card_page(card: Card, paper: Paper, installed: bool, license: str | None) -> str:
    """`zoo info NAME`: the whole card, readable."""
    pre = card.preprocess
    lines = [
        f"{card.name}  ({card.task}, plugin {card.plugin}: {'installed' if installed else 'not installed'})",
        "",
        f"paper     {paper.title}",
        f"venue     {paper.venue}" + (f"   arXiv {paper.arxiv}" if paper.arxiv else ""),
        f"code      {paper.code or '-'}",
        f"license   {license or '-'}",
        "",
        (f"builder   none: card-only ({card.card_only})" if card.card_only else
         f"builder   {card.plugin}:{card.builder}" + (f"   patch {card.patch}" if card.patch else "")),
        f"input     {'x'.join(map(str, card.input_size)) if card.input_size else '-'}, "
        f"{card.num_classes if card.num_classes is not None else 'no'} classes",
    ]
    if card.task == "image-classification" or pre != Preprocess():  # other tasks write theirs in their own fields
        lines += [
            f"preproc   resize {resize_size(card) or '-'} ({pre.interpolation}, crop_pct {pre.crop_pct}, "
            f"{pre.crop_mode}), crop {'x'.join(map(str, card.input_size[1:])) if card.input_size else '-'}",
            f"          mean {list(pre.mean)}  std {list(pre.std)}",
        ]
    for key, value in card.fields.items():  # task-owned fields (as written when the task is not installed)
        lines.append(f"{key:<9} {value}")
    if card.weights:
        lines.append("weights   " + "\n          ".join(
            w.describe() + (f"  sha256 {w.sha256[:12]}…" if w.sha256 else "  (no sha256 on the card)") for w in card.weights
        ))
    else:
        lines.append("weights   none" + (f": {card.weights_note}" if card.weights_note else ""))
    if card.weights and card.weights_note:
        lines.append(f"          {card.weights_note}")
    if card.reported:
        r = card.reported
        lines += ["", f"reported  ({r.source})"]
        for dataset, metrics in r.metrics.items():
            lines.append(f"  {dataset:<12} " + ", ".join(f"{k} {fmt(v, 2)}" for k, v in metrics.items()))
            if r.protocol(dataset):
                lines.append(f"  {'':<12} protocol " + ", ".join(f"{k} {v}" for k, v in r.protocol(dataset).items()))
        for claim, _dataset, _metric, value in r.figures()[sum(len(m) for m in r.metrics.values()):]:
            lines.append(f"  {claim} {fmt(value, 2)}")  # nested tables (per-category figures)
        if r.params_m is not None:
            lines.append(f"  {'params':<12} {fmt(r.params_m, 2)} M")
        if r.gmacs is not None:
            lines.append(f"  {'MACs':<12} {fmt(r.gmacs, 2)} G")
        if r.throughput:
            t = r.throughput
            lines.append(f"  {'throughput':<12} {t['value']} {t.get('unit', 'img/s')} on {t['device']}"
                         + (f", batch {t['batch_size']}" if t.get("batch_size") else ""))
        for lat in r.latency:
            lines.append(f"  {'latency':<12} {lat['value']} ms on {lat['device']}"
                         + (f", batch {lat['batch_size']}" if lat.get("batch_size") else ""))
        if r.notes:
            lines.append(f"  notes        {r.notes}")
    for claim, why in card.deviations.items():
        lines.append(f"deviation {claim}: {why}")
    if card.notes:
        lines += ["", f"notes     {card.notes}"]
    lines.append(f"card      {card.source}")
    return "\n".join(lines)


def resize_size(card: Card) -> int | None:
    """Short side before the center crop, as timm computes it: floor(size / crop_pct); None without input_size."""
    import math

    if card.input_size is None:
        return None
    size = card.input_size[1]
    return size if card.preprocess.crop_pct >= 1.0 else math.floor(size / card.preprocess.crop_pct)


def _num(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def results_table(results: Sequence[Any], metrics: Sequence[tuple[str, str]] = (("top1", "top-1"), ("top5", "top-5"))
                  ) -> str:
    """`zoo results`: one row per :class:`~zoo.records.result.Result`, oldest first: its ``metrics``
    (name, column title; the first is the headline, shown beside the paper's figure and the delta
    that ``zoo eval`` recorded as ``reported_<name>``/``delta_<name>``), images, throughput, device
    and precision. With the default columns, a classification table reads as zoo 0.1 printed it."""
    head = metrics[0][0] if metrics else None
    rows = []
    for r in results:
        details = r.details
        rows.append([r.time or "-", r.model, r.dataset, *[_num(r.metrics.get(name)) for name, _ in metrics],
                     _num(details.get(f"reported_{head}")), _num(details.get(f"delta_{head}"), signed=True),
                     str(r.images), _num(r.throughput_img_s, 1), r.device or "-", r.precision or "-"])
    headers = ["time", "model", "dataset", *[title for _, title in metrics], "paper", "delta", "images", "img/s",
               "device", "precision"]
    return table(rows, headers, align="lll" + "r" * (len(metrics) + 4) + "ll")
