"""The data of the interactive trade-off charts: per task, per x axis, reported and measured points
with their Pareto front, and one colour + marker per paper.

Reported points are :func:`zoo.report.plot.collect_points` (what ``zoo plot`` draws); measured points
pair the headline metric verify judged (the run it would judge the claim by) with the latest bench
record's params, MACs, throughput or latency. The front is :func:`zoo.report.plot.pareto_front`.
"""

from __future__ import annotations

import colorsys
from typing import Any

from zoo.errors import ZooError
from zoo.registry import lookup
from zoo.report import plot
from zoo.report.site.collect import ModelEntry, latest_bench

#: plotly marker symbols, cycled; with the colours below, (colour, marker) never repeats
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "triangle-down", "pentagon",
           "hexagon", "star-triangle-up", "hourglass")
_BENCH_KEYS = {"params": "params_m", "gmacs": "gmacs", "throughput": "throughput_img_s", "latency": "latency_ms"}


#: Kelly's 22 colours of maximum contrast, less white and black (Kelly 1965; Green-Armytage 2010)
KELLY = ("#f3c300", "#875692", "#f38400", "#a1caf1", "#be0032", "#c2b280", "#848482", "#008856", "#e68fac",
         "#0067a5", "#f99379", "#604e97", "#f6a600", "#b3446c", "#dcd300", "#882d17", "#8db600", "#654522",
         "#e25822", "#2b3d26")


def palette(keys: list[str]) -> dict[str, dict[str, str]]:
    """A colour and a marker per key, in the given order: Kelly's 20 contrasting colours first, then
    hues a golden angle apart (never repeating), markers cycled on a period (12) prime to neither,
    so no two keys share a colour, and neighbours differ in marker too."""
    out = {}
    for i, key in enumerate(keys):
        if i < len(KELLY):
            color = KELLY[i]
        else:
            hue = (i * 0.618033988749895) % 1.0
            r, g, b = colorsys.hls_to_rgb(hue, 0.42 if i % 2 else 0.55, 0.7)
            color = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        out[key] = {"color": color, "symbol": SYMBOLS[i % len(SYMBOLS)]}
    return out


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
