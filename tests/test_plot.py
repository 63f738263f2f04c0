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
    assert {p["model"] for p in drawn} == {"yolov6-n", "yolov6-s", "yolov6-m", "yolov6-l"}
    assert {p["model"]: p["y"] for p in drawn}["yolov6-n"] == 37.5  # README @ 0.4.0, the card's figure
