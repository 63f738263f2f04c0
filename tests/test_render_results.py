"""render.results_table: `zoo results` for typed Results, any task's metrics; zoo 0.1 lines print as before."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from click.testing import CliRunner

from zoo import records
from zoo.cli import cli
from zoo.records import Result
from zoo.report import render


def _v1_line() -> dict:
    spec = importlib.util.spec_from_file_location("_zoo_tests_records", Path(__file__).with_name("test_records.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.V1_LINE


def test_zoo_0_1_lines_print_as_zoo_results_printed_them():
    line = _v1_line()
    path = records.results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(line) + "\n" + json.dumps({**line, "dataset": "imagenet", "reported_top1": 72.2,
                                                          "delta_top1": -0.95, "top1": 71.25}) + "\n")
    out = CliRunner().invoke(cli, ["results"])
    assert out.exit_code == 0, out.output
    text = render.results_table(records.scan()[0])
    assert out.stdout == text + "\n"
    last = text.splitlines()[-1].split()
    assert last[:7] == ["2026-11-28T10:00:00+00:00", "deit-t", "imagenet", "71.25", "63.50", "72.20", "-0.95"]
    assert last[7:] == ["400", "812.3", "cpu", "fp32"]


def test_another_tasks_metrics_are_columns():
    r = Result(model="m", dataset="coco", task="object-detection", metrics={"box_ap": 37.512, "ap50": None},
               details={"reported_box_ap": 37.5, "delta_box_ap": 0.012}, images=5, precision="fp16")
    text = render.results_table([r], metrics=[("box_ap", "box AP"), ("ap50", "AP50")])
    header, _, row = text.splitlines()
    assert header.split() == ["time", "model", "dataset", "box", "AP", "AP50", "paper", "delta", "images", "img/s",
                              "device", "precision"]
    assert row.split() == ["-", "m", "coco", "37.51", "-", "37.50", "+0.01", "5", "-", "-", "fp16"]
