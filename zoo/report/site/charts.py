"""The data of the interactive trade-off charts: per task, per x axis, reported and measured points
with their Pareto front, and one colour + marker per paper.

Reported points are :func:`zoo.report.plot.collect_points` (what ``zoo plot`` draws); measured points
pair the headline metric verify judged (the run it would judge the claim by) with the latest bench
record's params, MACs, throughput or latency. The front is :func:`zoo.report.plot.pareto_front`, the
styles are :func:`zoo.report.plot.palette`'s.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import ZooError
from zoo.registry import lookup
from zoo.report import plot
from zoo.report.site.collect import ModelEntry, latest_bench

#: zoo plot's matplotlib markers as plotly names them
PLOTLY_SYMBOLS = {"o": "circle", "s": "square", "^": "triangle-up", "D": "diamond", "v": "triangle-down", "P": "cross",
                  "X": "x", "*": "star", "<": "triangle-left", ">": "triangle-right"}
_BENCH_KEYS = {"params": "params_m", "gmacs": "gmacs", "throughput": "throughput_img_s", "latency": "latency_ms"}


def palette(keys: list[str]) -> dict[str, dict[str, str]]:
    """``zoo plot``'s style of each paper (:func:`zoo.report.plot.palette`: fixed by the paper's name,
    no (colour, marker) pair repeated over ``keys``), as plotly names it: a paper looks the same in
    the site and in ``zoo plot``'s PNG/SVG when ``keys`` are the catalog's papers."""
    styles = plot.palette(keys, universe=keys)
    return {key: {"color": style.colour, "symbol": PLOTLY_SYMBOLS.get(style.marker, "circle")}
            for key, style in styles.items()}


def _point(entry: ModelEntry, x: float, y: float, hardware: str | None) -> dict[str, Any]:
    return {"model": entry.card.name, "paper": entry.card.paper, "x": x, "y": y, "hardware": hardware,
            "url": f"models/{entry.slug}.html"}


def _front(points: list[dict[str, Any]], x_higher: bool, y_higher: bool) -> list[str]:
    pts = [plot.Point(p["model"], p["paper"], p["x"], p["y"], p["hardware"]) for p in points]
    return [p.model for p in plot.pareto_front(pts, x_higher, y_higher)]


def chart_data(entries: list[ModelEntry]) -> dict[str, Any]:
    """``{task: {y_label, axes: {x: {label, reported: {points, front}, measured: {...}}}}}`` for every
    task whose cards report its primary metric."""
    by_name = {e.card.name: e for e in entries}
    out: dict[str, Any] = {}
    for task_name in sorted({e.card.task for e in entries}):
        task = lookup.get_task(task_name)
        if task is None or task.primary is None:
            continue
        try:
            y, y_label, y_higher, _ = plot.y_axis(None, task_name, [e.card for e in entries if e.card.task == task_name])
        except ZooError:
            continue
        axes = {}
        for x, (x_label, x_higher) in plot.X_AXES.items():
            reported = [_point(by_name[p.model], p.x, p.y, p.hardware)
                        for p in plot.collect_points(x, y, "reported", task_name) if p.model in by_name]
            measured = []
            for entry in entries:
                if entry.card.task != task_name or entry.headline.get("measured") is None:
                    continue
                record = latest_bench(entry.card, entry.bench)
                value = record.metrics.get(_BENCH_KEYS[x]) if record is not None else None
                if value is not None:
                    hardware = record.device if x in ("throughput", "latency") and record is not None else None
                    measured.append(_point(entry, float(value), float(entry.headline["measured"]), hardware))
            axes[x] = {"label": x_label, "reported": {"points": reported, "front": _front(reported, x_higher, y_higher)},
                       "measured": {"points": measured, "front": _front(measured, x_higher, y_higher)}}
        out[task_name] = {"y": y, "y_label": y_label, "axes": axes}
    return out
