"""zoo plot: points, the Pareto front, the drawing, and its errors."""

from __future__ import annotations

import builtins
import importlib.util
import json
from pathlib import Path

from click.testing import CliRunner

import zoo
from zoo import records
from zoo.cli import cli
from zoo.paths import zoo_home
from zoo.report import plot


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_zoo_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


claims_zoo = _sibling("test_bench").claims_zoo


def test_pareto_front_lower_x_is_better():
    P = plot.Point
    points = [P("a", "p", 1.0, 70.0), P("b", "p", 2.0, 75.0), P("c", "q", 3.0, 74.0), P("d", "q", 4.0, 80.0),
              P("e", "q", 2.0, 72.0)]
    assert [p.model for p in plot.pareto_front(points, x_higher_better=False)] == ["a", "b", "d"]
    # throughput: higher x is better, so 'a' (slow and worst) and 'c' drop out the other way
    assert [p.model for p in plot.pareto_front(points, x_higher_better=True)] == ["d"]


def test_reported_points_and_svg(claims_zoo, tmp_path):
    points = {p.model: p for p in plot.collect_points("gmacs", "top1", "reported")}
    assert set(points) == {"tiny-net", "tiny-off", "tiny-explained", "mobilenetv2-100", "deit-t"}
    assert points["deit-t"].x == 1.3 and points["deit-t"].y == 72.2 and points["deit-t"].paper == "deit"
    out = tmp_path / "tradeoff.svg"
    result = CliRunner().invoke(cli, ["plot", "--x", "gmacs", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["points"]) == 5 and "deit-t" in data["front"]
    svg = out.read_text()
    assert svg.startswith("<?xml") and "mobilenetv2-100" in svg and "Pareto front" in svg


def test_measured_points_come_from_bench_and_eval_records(claims_zoo, tmp_path):
    home = zoo_home()
    home.mkdir(parents=True, exist_ok=True)
    from zoo.api import get_card
    from zoo.tasks.classification.data.transforms import EvalPreprocess

    run = {"model": "tiny-net", "dataset": "imagenet", "top1": 51.0, "precision": "fp32",
           "weights": {"origin": "official", "sha256": None},  # a zoo 0.1 line of a run that can test the claim:
           "preprocess": EvalPreprocess.from_card(get_card("tiny-net"), "imagenet").as_dict()}  # the card's protocol
    (home / "results.jsonl").write_text(json.dumps(run) + "\n")
    records.append_bench({"model": "tiny-net", "latency_ms": {"median": 0.5, "p90": 0.6}, "device": "cpu"})
    points = plot.collect_points("latency", "top1", "measured")
    assert [(p.model, p.x, p.y, p.hardware) for p in points] == [("tiny-net", 0.5, 51.0, "cpu")]
    out = tmp_path / "m.png"
    result = CliRunner().invoke(cli, ["plot", "--x", "latency", "--source", "measured", "-o", str(out)])
    assert result.exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"


def test_plot_with_no_data_is_exit_2(claims_zoo, tmp_path):
    result = CliRunner().invoke(cli, ["plot", "--x", "throughput", "--source", "measured", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "nothing to plot: no card has both throughput and top1 (measured figures)" in result.output
    assert "Traceback" not in result.output


def test_plot_bad_suffix_is_exit_2(claims_zoo, tmp_path):
    result = CliRunner().invoke(cli, ["plot", "-o", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and "expected a .png, .svg or .pdf" in result.output


def test_missing_matplotlib_is_one_clear_line(claims_zoo, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = CliRunner().invoke(cli, ["plot", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: zoo plot needs matplotlib, which is not installed: pip install 'zoo-core[plot]'")
    assert not (tmp_path / "x.png").exists()


def test_pareto_front_of_a_lower_is_better_metric():
    """An error metric (MAE, latency-like) keeps the points no other beats with less x and less y."""
    points = [plot.Point("a", "p", 1.0, 5.0), plot.Point("b", "p", 2.0, 3.0), plot.Point("c", "p", 3.0, 4.0),
              plot.Point("d", "p", 4.0, 1.0)]
    front = plot.pareto_front(points, x_higher_better=False, y_higher_better=False)
    assert [p.model for p in front] == ["a", "b", "d"]
    assert [p.model for p in plot.pareto_front(points, x_higher_better=False)] == ["a"]  # higher y: a beats all


def test_cards_of_several_tasks_plot_the_metric_of_one(tmp_path):
    """The catalog holds classification and detection cards: without --y the task most cards have is
    drawn (its primary metric); --y picks the cards whose task measures that metric."""
    default = CliRunner().invoke(cli, ["plot", "--x", "params", "-o", str(tmp_path / "a.svg"), "--json"])
    assert default.exit_code == 0, default.output
    points = json.loads(default.output[default.output.index("{"):])["points"]
    tasks = {zoo.get_card(p["model"]).task for p in points}
    assert tasks == {"image-classification"} and len(points) > 20
    assert "top-1 (%)" in (tmp_path / "a.svg").read_text()
    detection = CliRunner().invoke(cli, ["plot", "--y", "map", "--x", "params", "-o", str(tmp_path / "b.svg"), "--json"])
    assert detection.exit_code == 0, detection.output
    drawn = json.loads(detection.output[detection.output.index("{"):])["points"]
    drawn_names = {p["model"] for p in drawn}  # the P5 models, and the P6 ones where the cards have them
    assert {"yolov6-n", "yolov6-s", "yolov6-m", "yolov6-l"} <= drawn_names
    assert {zoo.get_card(n).task for n in drawn_names} == {"object-detection"}
    assert {p["model"]: p["y"] for p in drawn}["yolov6-n"] == 37.5  # README @ 0.4.0, the card's figure


# -- issue #15: a plot a person can read --------------------------------------------------------------


def _crowd() -> list[plot.Point]:
    """25 papers, 50 models, most of them packed into one corner as the decks' small models are."""
    import random

    rng = random.Random(0)
    points = [plot.Point(f"net-{i}" + "-wide" * (i % 3), f"paper-{i % 25}", 1 + rng.random() * 0.3,
                         75 + rng.random() * 0.6) for i in range(44)]
    points += [plot.Point(f"big-{i}", f"paper-{i}", 5.0 + i, 80.0 + i / 3) for i in range(6)]
    return points


def test_labels_overlap_neither_each_other_nor_a_marker():
    from matplotlib.text import Text

    points = _crowd()
    fig = plot.draw(points, plot.pareto_front(points, x_higher_better=False), x_label="MACs (G)", y_label="top-1",
                    title="crowded")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if isinstance(t, Text)]
    assert sorted(t.get_text() for t in labels) == sorted(p.model for p in points)
    boxes = [t.get_window_extent(renderer) for t in labels]
    clashes = [(labels[i].get_text(), labels[j].get_text()) for i in range(len(boxes)) for j in range(i)
               if boxes[i].overlaps(boxes[j])]
    assert clashes == []
    centres = ax.transData.transform([(p.x, p.y) for p in points])
    for box in boxes:  # no label covers a marker's centre
        assert not any(box.x0 < cx < box.x1 and box.y0 < cy < box.y1 for cx, cy in centres)
    # the control: labels at the default offset, as zoo plot drew them before, do collide here
    naive = [ax.annotate(p.model, (p.x, p.y), textcoords="offset points", xytext=(4, 3), fontsize=7) for p in points]
    fig.canvas.draw()
    naive_boxes = [t.get_window_extent(renderer) for t in naive]
    assert any(naive_boxes[i].overlaps(naive_boxes[j]) for i in range(len(naive)) for j in range(i))
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_palette_gives_25_papers_25_styles_fixed_by_name():
    papers = [f"paper-{i}" for i in range(25)]
    styles = plot.palette(papers)
    assert len({(s.colour, s.marker) for s in styles.values()}) == 25
    assert all(s.colour in plot.COLOURS and s.marker in plot.MARKERS for s in styles.values())
    assert len({s.colour for s in styles.values()}) == 20  # every colour before any colour twice
    assert len({s.colour for s in plot.palette(papers[:17]).values()}) == 17  # the 17 papers of the decks
    # the same paper keeps its style in a plot of fewer papers when both share the catalog's universe
    subset = plot.palette(papers[3:7], universe=papers)
    assert subset == {p: styles[p] for p in papers[3:7]}
    assert plot.palette(reversed(papers)) == styles  # order of appearance does not matter
    # two names that hash to the same slot still get two styles (the second moves on)
    seen: dict[int, str] = {}
    pair = next((seen[s], n) for n in (f"p{i}" for i in range(10_000)) if (s := plot._slot(n)) in seen
                or seen.setdefault(s, n) is None)
    both = plot.palette(pair)
    assert both[pair[0]] != both[pair[1]]
    # past 200 papers there are no more pairs: styles repeat rather than fail
    assert len(plot.palette(f"q{i}" for i in range(210))) == 210


def test_front_is_drawn_through_the_front_points():
    points = [plot.Point("a", "p", 1.0, 70.0), plot.Point("b", "q", 2.0, 75.0), plot.Point("c", "q", 3.0, 74.0)]
    front = plot.pareto_front(points, x_higher_better=False)
    fig = plot.draw(points, front, x_label="x", y_label="y")
    line = next(line for line in fig.axes[0].get_lines() if line.get_label() == "Pareto front")
    assert list(line.get_xdata()) == [1.0, 2.0] and list(line.get_ydata()) == [70.0, 75.0]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_png_and_svg_by_suffix_svg_text_stays_text(claims_zoo, tmp_path):
    svg, png = tmp_path / "out" / "t.svg", tmp_path / "out" / "t.PNG"
    for out in (svg, png):
        result = CliRunner().invoke(cli, ["plot", "tiny-net", "deit-t", "mobilenetv2-100", "-o", str(out), "--json"])
        assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "<svg" in text and ">deit-t</text>" in text  # real text elements, not glyph paths
    styles = json.loads(result.stdout)["styles"]
    assert set(styles) == {"tinypaper", "deit", "mbv2"} and len({tuple(s.values()) for s in styles.values()}) == 3
    assert sorted(p.name for p in svg.parent.iterdir()) == ["t.PNG", "t.svg"]  # no temporary file left


def test_output_attacks_are_one_line_and_write_nothing(claims_zoo, tmp_path, monkeypatch):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "folder.png").mkdir()
    cases = {str(tmp_path / "afile" / "x.png"): "afile is a file, not a folder",
             str(tmp_path / "folder.png"): "is a folder; expected a .png, .svg or .pdf file name",
             "": "expected a .png, .svg or .pdf file name"}
    for output, message in cases.items():
        result = CliRunner().invoke(cli, ["plot", "-o", output])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    # a save that fails half-way (disk full) keeps the previous image and leaves no partial file
    out = tmp_path / "keep.png"
    out.write_bytes(b"old image")
    from matplotlib.figure import Figure

    def disk_full(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    result = CliRunner().invoke(cli, ["plot", "tiny-net", "deit-t", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: -o {out}: cannot write: No space left on device"
    assert out.read_bytes() == b"old image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder.png", "keep.png"]
