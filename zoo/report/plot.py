"""The trade-off scatter the papers draw: accuracy against speed or cost, one point per model.

Points come from the cards (``source="reported"``) or from measurements (``source="measured"``:
params and MACs counted now, throughput/latency from ``zoo bench`` runs recorded in
``$ZOO_HOME/bench.jsonl``, accuracy from ``$ZOO_HOME/results.jsonl``, both read by :mod:`zoo.records`). matplotlib is optional
(``pip install 'zoo-core[plot]'``); everything but drawing works without it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
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


# -- styles: a colour and a marker per paper, fixed by the paper's name ---------------------------

#: matplotlib's tab20 (ten hues, each dark then light): the most colours that stay distinguishable
COLOURS = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
           "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
           "#17becf", "#9edae5")
#: filled markers that read apart at 5 pt; with the colours, 200 (colour, marker) styles
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str


def _slot(name: str) -> int:
    """Where a name starts in the colour x marker grid (CRC-32: the same in every process, unlike
    ``hash``); colour is the slot mod 20, marker the slot div 20."""
    return zlib.crc32(name.encode("utf-8")) % (len(COLOURS) * len(MARKERS))


def palette(papers: Iterable[str], universe: Iterable[str] = ()) -> dict[str, Style]:
    """A (colour, marker) per paper that never repeats within ``papers`` + ``universe`` (up to 200).

    Papers are styled in name order, each from the slot its name hashes to onwards, taking the first
    free slot whose colour is least used so far (then whose marker is): up to 20 papers get 20
    colours, and a colour used twice comes with another marker. The choice depends only on the
    names, so pass every catalog paper as ``universe``: a paper then keeps its style whichever
    subset a plot shows. Past 200 papers, styles repeat (there are no more distinguishable pairs)."""
    wanted = set(papers)
    names = sorted(wanted | set(universe))
    size = len(COLOURS) * len(MARKERS)
    taken: set[int] = set()
    colour_uses = [0] * len(COLOURS)
    marker_uses = [0] * len(MARKERS)
    out: dict[str, Style] = {}
    for name in names:
        start = _slot(name)
        if len(taken) >= size:  # all 200 used: start over
            taken.clear()
        free = [(start + k) % size for k in range(size) if (start + k) % size not in taken]
        slot = min(free, key=lambda s: (colour_uses[s % len(COLOURS)], marker_uses[s // len(COLOURS)]))
        taken.add(slot)
        colour_uses[slot % len(COLOURS)] += 1
        marker_uses[slot // len(COLOURS)] += 1
        out[name] = Style(COLOURS[slot % len(COLOURS)], MARKERS[slot // len(COLOURS)])
    return {name: style for name, style in out.items() if name in wanted}


# -- labels that overlap neither each other nor a marker -------------------------------------------

#: directions tried around a point, in order of preference (degrees; up-right first, as papers do)
_ANGLES = (45, 0, 90, 135, 315, 180, 270, 225, 22.5, 67.5, 112.5, 157.5, 202.5, 247.5, 292.5, 337.5)


def _overlaps(boxes: Any, obstacles: Any) -> Any:
    """(K,) bool: does each of K boxes (x0, y0, x1, y1) intersect any of the obstacles (M, 4)?"""
    import numpy as np

    if len(obstacles) == 0:
        return np.zeros(len(boxes), dtype=bool)
    b, o = boxes[:, None, :], obstacles[None, :, :]
    hit = (b[..., 0] < o[..., 2]) & (o[..., 0] < b[..., 2]) & (b[..., 1] < o[..., 3]) & (o[..., 1] < b[..., 3])
    return hit.any(axis=1)


def place_labels(ax: Any, points: list[Point], marker_size: float = 28.0, fontsize: float = 7.0) -> list[Any]:
    """Label each point with its model name where the text box intersects no other label and no
    marker (matplotlib's own text extents, in display pixels); returns the label Texts.

    Candidates ring each point at growing distances in :data:`_ANGLES` order; the first free box
    inside the axes wins, else the first free one outside them. The rings grow until they clear
    every obstacle, so a free place always exists: overlap-free by construction, not by relaxation
    (adjustText's approach, which can stop with overlaps left). A label away from its point gets a
    thin leader line. Call after the axes limits are final (display space depends on them)."""
    import numpy as np

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_data = ax.transData.inverted()
    centres = ax.transData.transform(np.array([(p.x, p.y) for p in points], dtype=float))
    radius = (marker_size ** 0.5) / 2 * fig.dpi / 72.0 + 1.0  # the marker's radius in pixels, plus one
    obstacles = np.concatenate([centres - radius, centres + radius], axis=1)
    for artist in (ax.title, ax.get_legend()):  # a label pushed out of the axes must not cover these
        if artist is not None and artist.get_visible():
            b = artist.get_window_extent(renderer)
            obstacles = np.vstack([obstacles, [[b.x0, b.y0, b.x1, b.y1]]])
    frame = ax.get_window_extent(renderer)
    corners = np.array([[frame.x0, frame.y0], [frame.x1, frame.y1]])
    span = float(np.ptp(np.concatenate([centres, corners]), axis=0).max())
    angles = np.radians(np.array(_ANGLES))
    labels = []
    order = sorted(range(len(points)), key=lambda i: (centres[i][0], centres[i][1], points[i].model))
    for i in order:
        text = ax.text(points[i].x, points[i].y, points[i].model.replace("$", r"\$"), ha="center", va="center",
                       fontsize=fontsize, zorder=4,  # a light backing keeps grid and front lines off the text
                       bbox=dict(boxstyle="square,pad=0.05", facecolor="white", edgecolor="none", alpha=0.7))
        extent = text.get_window_extent(renderer)
        half = np.array([extent.width / 2 + 1.0, extent.height / 2 + 1.0])  # a pixel of air around it
        r, inside_only = 1.0, True
        while True:
            mids = centres[i] + np.stack([(r + half[0]) * np.cos(angles), (r + half[1]) * np.sin(angles)], axis=1)
            boxes = np.concatenate([mids - half, mids + half], axis=1)
            free = ~_overlaps(boxes, obstacles)
            if inside_only:
                free &= ((boxes[:, 0] >= frame.x0) & (boxes[:, 2] <= frame.x1)
                         & (boxes[:, 1] >= frame.y0) & (boxes[:, 3] <= frame.y1))
            if free.any():
                k = int(np.argmax(free))
                break
            r = r * 1.25 + 3.0
            if inside_only and r > span:  # no room inside the axes: again, outside allowed
                inside_only, r = False, 1.0
        mid = mids[k]
        text.set_position(tuple(to_data.transform(mid)))
        if r > 8.0:  # a leader from the marker's edge to the label's edge
            d = mid - centres[i]
            start = centres[i] + d / np.hypot(*d) * radius
            end = mid - d * min(half[0] / max(abs(d[0]), 1e-9), half[1] / max(abs(d[1]), 1e-9))
            (sx, sy), (ex, ey) = to_data.transform(np.array([start, end]))
            ax.plot([sx, ex], [sy, ey], color="0.55", linewidth=0.5, zorder=2.5, clip_on=False)
        obstacles = np.vstack([obstacles, boxes[k][None, :]])
        labels.append(text)
    return labels


# -- the figure ------------------------------------------------------------------------------------


def draw(points: list[Point], front: list[Point], *, x_label: str, y_label: str, title: str = "",
         log_x: bool = False, styles: Mapping[str, Style] | None = None) -> Any:
    """The scatter as a matplotlib Figure: one style per paper (legend outside the axes), the
    Pareto front dashed, a label per point placed by :func:`place_labels`."""
    plt = _pyplot()
    styles = styles if styles is not None else palette(p.paper for p in points)
    big = len(points) > 40
    fig, ax = plt.subplots(figsize=(12, 8) if big else (9, 6))
    papers = sorted({p.paper for p in points})
    for paper in papers:
        group = [p for p in points if p.paper == paper]
        style = styles[paper]
        ax.scatter([p.x for p in group], [p.y for p in group], label=paper, s=28, color=style.colour,
                   marker=style.marker, edgecolors="0.2", linewidths=0.4, zorder=3)
    if front:
        ax.plot([p.x for p in front], [p.y for p in front], "k--", linewidth=1, label="Pareto front", zorder=2)
    ax.set(xlabel=x_label, ylabel=y_label, title=title)
    if log_x:
        ax.set_xscale("log")
    ax.margins(0.08)
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())  # freeze the limits: label places are computed in display space
    ax.set_ylim(ax.get_ylim())
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              ncol=2 if len(papers) > 30 else 1, title="paper", title_fontsize=7)
    place_labels(ax, points)
    return fig


def _check_output(output: Path) -> None:
    """Refuse an output that cannot be written before anything is drawn: one line naming it."""
    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"-o {output}: expected a .png, .svg or .pdf file name")
    if output.is_dir():
        raise UserError(f"-o {output}: is a folder; expected a .png, .svg or .pdf file name")
    blocker = next((p for p in output.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"-o {output}: {blocker} is a file, not a folder")


def _save(fig: Any, output: Path) -> None:
    """Write through a temporary file in the same folder, then rename: an interrupted or failed
    save never leaves a half-written image under ``output``."""
    import os

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"-o {output}: cannot create the folder {output.parent}: {exc.strerror or exc}") from None
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format=output.suffix.lower()[1:], bbox_inches="tight", dpi=150,
                    metadata={"Date": None} if output.suffix.lower() == ".svg" else None)
        os.replace(tmp, output)
    except OSError as exc:
        raise UserError(f"-o {output}: cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _busiest_task(x: str, source: str, names: list[str] | None) -> str | None:
    """Without --y and --task: the task whose primary metric gives the most points against ``x``;
    ties (none at all included) go to image-classification, the core's task and the decks' axis,
    then to the task more cards have. Counting cards alone picked a task with nothing to draw once
    plugins brought more segmentation cards than a catalog had classification ones."""
    from collections import Counter

    cat = lookup.catalog()
    cards = [cat.get(n) for n in names] if names else cat.select()
    ranked = []
    for rank, (task, _) in enumerate(Counter(card.task for card in cards).most_common()):
        try:
            count = len(collect_points(x, None, source, task, names))
        except UserError:  # a task that declares no metrics
            continue
        ranked.append((-count, task != "image-classification", rank, task))
    return min(ranked)[3] if ranked else None


def plot(
    output: str | Path,
    *,
    x: str = "gmacs",
    y: str | None = None,
    source: str = "reported",
    task: str | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """Draw the scatter to ``output`` (the format from its suffix: .png, .svg or .pdf); returns the
    points, the front and each paper's style."""
    output = Path(output)
    _check_output(output)
    plt = _pyplot()  # fail on a missing matplotlib before any build
    cat = lookup.catalog()
    asked = task
    if y is None and task is None:
        task = _busiest_task(x, source, names)
    y, y_label, y_higher, _ = y_axis(y, task, [cat.get(n) for n in names] if names else cat.select(task=task))
    points = collect_points(x, y, source, task, names)
    if not points:
        raise UserError(f"nothing to plot: no card has both {x} and {y} ({source} figures"
                        + (f", task {asked}" if asked else "") + ")")
    front = pareto_front(points, X_AXES[x][1], y_higher)
    styles = palette({p.paper for p in points}, universe=[card.paper for card in cat.select()])
    hardware = sorted({p.hardware for p in points if p.hardware})
    title = f"{y_label} vs {X_AXES[x][0]} ({source})"
    if len(hardware) > 1:
        title += f"\nmixed hardware: {', '.join(hardware)}"
    elif hardware:
        title += f" on {hardware[0]}"
    log_x = x in ("gmacs", "params", "throughput") and max(p.x for p in points) > 20 * min(p.x for p in points)
    with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, selectable
        fig = draw(points, front, x_label=X_AXES[x][0], y_label=y_label, title=title, log_x=log_x, styles=styles)
        try:
            _save(fig, output)
        finally:
            plt.close(fig)
    return {"output": str(output), "points": [vars(p) for p in points], "front": [p.model for p in front],
            "styles": {paper: {"colour": s.colour, "marker": s.marker} for paper, s in sorted(styles.items())}}
