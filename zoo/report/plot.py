"""The trade-off scatter the papers draw: accuracy against speed or cost, one point per model.

Points come from the cards (``source="reported"``) or from measurements (``source="measured"``:
params and MACs counted now, throughput/latency from ``zoo bench`` runs recorded in
``$ZOO_HOME/bench.jsonl``, accuracy from ``$ZOO_HOME/results.jsonl``, both read by :mod:`zoo.records`). matplotlib is optional
(``pip install 'zoo-core[plot]'``); everything but drawing works without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import NotInstalled, UserError
from zoo.registry import lookup
from zoo.registry.cards import Card

if TYPE_CHECKING:
    from zoo.records.result import Result

X_AXES = {  # name -> (label, higher is better)
    "throughput": ("throughput (img/s)", True),
    "latency": ("latency (ms)", False),
    "gmacs": ("MACs (G)", False),
    "params": ("parameters (M)", False),
}

SOURCES = ("reported", "measured")


@dataclass(frozen=True)
class Point:
    model: str
    paper: str
    x: float
    y: float
    hardware: str | None = None  # device of a speed figure


def bench_path() -> Path:
    from zoo.records import bench_path as path

    return path()


def record_bench(result: Mapping[str, Any] | Result, path: str | Path | None = None) -> Path:
    """Deprecated alias of :func:`zoo.records.append_bench` (the one writer of bench records)."""
    from zoo.records import append_bench

    return append_bench(result, path)


def load_bench(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Deprecated: the latest bench result per model as a flat dict (:func:`zoo.records.latest_bench`)."""
    from zoo.records import latest_bench

    return {model: result.flat() for model, result in latest_bench(path).items()}


def _reported_x(card: Card, x: str) -> tuple[float | None, str | None]:
    r = card.reported
    if r is None:
        return None, None
    if x == "params":
        return r.params_m, None
    if x == "gmacs":
        return r.gmacs, None
    if x == "throughput":
        return (float(r.throughput["value"]), str(r.throughput["device"])) if r.throughput else (None, None)
    if r.latency:
        return float(r.latency[0]["value"]), str(r.latency[0]["device"])
    return None, None


def _measured_x(card: Card, x: str, bench: Mapping[str, Result]) -> tuple[float | None, str | None]:
    row = bench.get(card.name)
    if x in ("params", "gmacs"):
        value = row.metrics.get("params_m" if x == "params" else "gmacs") if row is not None else None
        if value is not None:
            return value, None
        from zoo.measure.bench import static_counts

        counts = static_counts(card.name)
        return (counts["params"] / 1e6 if x == "params" else counts["macs"] / 1e9), None
    if row is None:
        return None, None
    return row.metrics.get("throughput_img_s" if x == "throughput" else "latency_ms"), row.device


def y_axis(y: str | None, task: str | None, cards: list[Card]) -> tuple[str, str, bool, set[str]]:
    """(metric name, axis label, higher is better, tasks plotted) of ``y``: a metric of the cards'
    task (``task``; else, with several, the tasks that declare ``y``, or without ``y`` the task most
    of the cards have); default the task's primary metric (classification: top-1)."""
    from collections import Counter

    names = [task] if task else [name for name, _ in Counter(card.task for card in cards).most_common()]
    specs = {name: spec for name in names if (spec := lookup.get_task(name)) is not None and spec.metrics}
    if y is None:
        if not specs:
            raise UserError(f"--y: no installed task of these cards declares metrics ({', '.join(names) or 'no cards'})")
        name, spec = next(iter(specs.items()))  # the task most cards have (ties: the first listed)
        assert spec.primary is not None  # a task with metrics has a primary one
        y, chosen = spec.primary.name, {name}
    else:
        chosen = {name for name, spec in specs.items() if spec.metric(y) is not None}
        if not chosen:
            known = sorted({m.name for spec in specs.values() for m in spec.metrics})
            raise UserError(f"--y: expected a metric of the cards' task ({', '.join(known) or 'none'}), got {y!r}")
    metric = next(specs[name].metric(y) for name in specs if name in chosen)
    assert metric is not None
    unit = f" ({metric.unit})" if metric.unit else ""
    return y, f"{metric.title}{unit}", metric.direction == "higher", chosen


def _reported_y(card: Card, y: str, dataset: str | None) -> float | None:
    """The card's figure for metric ``y`` on ``dataset`` (default: the first dataset reporting it)."""
    if card.reported is None:
        return None
    for claim, ds, metric, value in card.reported.figures():
        if metric == y and claim == f"{ds}.{metric}" and (dataset is None or ds == dataset):
            return value
    return None


def collect_points(
    x: str = "gmacs",
    y: str | None = None,
    source: str = "reported",
    task: str | None = None,
    names: list[str] | None = None,
    dataset: str | None = None,
) -> list[Point]:
    """One point per card that has both coordinates; the others are left out.

    ``y``: a metric of the cards' task (default its primary one, classification: top-1);
    ``dataset``: where that metric was measured (default: the first dataset the card reports it on,
    and for measured points the one run verify would judge it by)."""
    if x not in X_AXES:
        raise UserError(f"--x: expected one of {', '.join(X_AXES)}, got {x!r}")
    if source not in SOURCES:
        raise UserError(f"--source: expected one of {', '.join(SOURCES)}, got {source!r}")
    cat = lookup.catalog()
    cards = [cat.get(n) for n in names] if names else cat.select(task=task)
    y, _, _, tasks = y_axis(y, task, cards)
    cards = [card for card in cards if card.task in tasks]  # one axis: cards of the tasks that measure y
    if source == "measured":
        from zoo.claims.verify import load_results
        from zoo.errors import ZooError
        from zoo.records import latest_bench

        results, bench = load_results(), latest_bench()
    points = []
    for card in cards:
        if source == "reported":
            xv, hw = _reported_x(card, x)
            yv = _reported_y(card, y, dataset)
        else:
            claimed = [ds for claim, ds, metric, _ in (card.reported.figures() if card.reported else ())
                       if metric == y and claim == f"{ds}.{metric}"]
            wanted = [dataset] if dataset else claimed  # the card's datasets, in its order
            rows = [results.get((card.name, ds)) for ds in wanted]
            yv = next((row.metrics.get(y) for row in rows if row is not None and row.metrics.get(y) is not None), None)
            if yv is None:
                continue  # no eval yet: skip before paying for a build
            try:
                xv, hw = _measured_x(card, x, bench)
            except ZooError:  # not installed / cannot build: no measured point
                continue
        if xv is not None and yv is not None:
            points.append(Point(card.name, card.paper, float(xv), float(yv), hw))
    return points


def pareto_front(points: list[Point], x_higher_better: bool, y_higher_better: bool = True) -> list[Point]:
    """Points no other point beats on both axes, sorted by x."""
    def better_or_equal(a: Point, b: Point) -> bool:
        return ((a.x >= b.x if x_higher_better else a.x <= b.x)
                and (a.y >= b.y if y_higher_better else a.y <= b.y))

    front = [p for p in points
             if not any(better_or_equal(q, p) and (q.x, q.y) != (p.x, p.y) for q in points)]
    return sorted(front, key=lambda p: p.x)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise NotInstalled("zoo plot needs matplotlib, which is not installed: pip install 'zoo-core[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(
    output: str | Path,
    *,
    x: str = "gmacs",
    y: str | None = None,
    source: str = "reported",
    task: str | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """Draw the scatter to ``output`` (.png, .svg or .pdf); returns the points and the front."""
    output = Path(output)
    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"-o {output}: expected a .png, .svg or .pdf file name")
    plt = _pyplot()  # fail on a missing matplotlib before any build
    cat = lookup.catalog()
    y, y_label, y_higher, _ = y_axis(y, task, [cat.get(n) for n in names] if names else cat.select(task=task))
    points = collect_points(x, y, source, task, names)
    if not points:
        raise UserError(f"nothing to plot: no card has both {x} and {y} ({source} figures"
                        + (f", task {task}" if task else "") + ")")
    front = pareto_front(points, X_AXES[x][1], y_higher)
    fig, ax = plt.subplots(figsize=(8, 6))
    papers = sorted({p.paper for p in points})
    for paper in papers:
        group = [p for p in points if p.paper == paper]
        ax.scatter([p.x for p in group], [p.y for p in group], label=paper, s=28)
        for p in group:
            ax.annotate(p.model, (p.x, p.y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.plot([p.x for p in front], [p.y for p in front], "k--", linewidth=1, label="Pareto front")
    hardware = sorted({p.hardware for p in points if p.hardware})
    title = f"{y_label} vs {X_AXES[x][0]} ({source})"
    if len(hardware) > 1:
        title += f"\nmixed hardware: {', '.join(hardware)}"
    elif hardware:
        title += f" on {hardware[0]}"
    ax.set(xlabel=X_AXES[x][0], ylabel=y_label, title=title)
    if x in ("gmacs", "params", "throughput") and max(p.x for p in points) > 20 * min(p.x for p in points):
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, bbox_inches="tight")
    plt.close(fig)
    return {"output": str(output), "points": [vars(p) for p in points], "front": [p.model for p in front]}
