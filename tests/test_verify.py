"""zoo verify: each claim beside its measurement, statuses, tolerances, --strict, the real catalog."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo import api
from zoo.claims import verify
from zoo.cli import cli
from zoo.paths import zoo_home
from zoo.registry.cards import Figure, printed_decimals


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_zoo_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


claims_zoo = _sibling("test_bench").claims_zoo  # the shared fixture: test cards + a throwaway plugin


def _claims(report):
    return {c["claim"]: c for c in report["claims"]}


def _write_results(rows):
    path = zoo_home() / "results.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{truncated line\n")
    return path


@pytest.mark.parametrize("value, places", [(75.9, 1), (86.0, 0), (0.000314, 6), (4.74, 2), (3.0, 0), (2.7808e-05, 9), (100.0, 0),
                                           (Figure(14.0, "14.0"), 1), (Figure(14.0, "14"), 0), (Figure(0.3, "0.30"), 2)])
def test_printed_decimals(value, places):
    assert printed_decimals(value) == places


@pytest.mark.parametrize("measured, reported, holds", [
    (99.271, 99.2, True),   # truncated
    (4.74, 4.7, True),      # rounded
    (4.66, 4.7, True),      # rounded up
    (4.64, 4.7, False),
    (4.81, 4.7, False),
    (28.59, 28.0, True),    # printed "28"
    (29.01, 28.0, False),
    (14.66, Figure(14.0, "14.0"), False),  # printed "14.0": precision 0.1 M (issue #10, item 13)
    (14.04, Figure(14.0, "14.0"), True),
    (13.94, Figure(14.0, "14.0"), False),
    (14.66, Figure(14.0, "14"), True),     # printed "14": precision 1 M, rounded or truncated
    (13.5, Figure(14.0, "14"), True),
    (15.01, Figure(14.0, "14"), False),
])
def test_within_precision(measured, reported, holds):
    assert verify.within_precision(measured, reported) is holds


def run_row(model: str, top1: float, dataset: str = "imagenet", **fields):
    """A results line as `zoo eval` writes it for a run that can test the card's claim: the card's
    own weights, fp32, the card's preprocessing for the dataset. ``fields`` override."""
    from zoo.tasks.classification.data.transforms import EvalPreprocess

    row = {"model": model, "dataset": dataset, "top1": top1, "pretrained": True, "precision": "fp32",
           "weights": {"origin": "official", "sha256": "ab" * 32, "source": "hf://org/w"},
           "preprocess": EvalPreprocess.from_card(api.get_card(model), dataset).as_dict()}
    row.update(fields)
    return row


def test_statuses_of_every_kind(claims_zoo):  # noqa: F811
    _write_results([
        run_row("tiny-net", 49.95),
        run_row("tiny-off", 10.0),
        run_row("tiny-off", 59.0),  # the latest result counts
        # runs that cannot test a paper's accuracy never replace one that can
        run_row("tiny-net", 0.1, pretrained=False, checkpoint=None),
        run_row("tiny-net", 12.5, limit=8),
        run_row("tiny-net", 47.0, patch="tome:r=13"),
        run_row("tiny-net", 51.0, skipped_bad_images=True),
    ])
    reports = {r["model"]: r for r in verify.verify(["tiny-net", "tiny-off", "tiny-explained", "needs-plugin"])}

    ok = _claims(reports["tiny-net"])
    assert ok["params_m"]["status"] == "holds" and ok["params_m"]["measured"] == pytest.approx(0.000314)
    assert ok["gmacs"]["status"] == "holds" and ok["gmacs"]["measured"] == pytest.approx(1.3904e-5, rel=1e-3)
    assert ok["imagenet.top1"]["status"] == "holds" and ok["imagenet.top1"]["measured"] == 49.95
    assert ok["imagenet.top1"]["tolerance"] == "±0.1 points"
    assert ok["throughput"]["status"] == "not measurable"
    assert ok["throughput"]["note"].startswith("not measurable here: paper used A100, this is ")
    assert ok["latency@Intel Xeon Gold 6248"]["status"] == "not measurable"
    assert reports["tiny-net"]["failed"] == []

    off = _claims(reports["tiny-off"])
    assert off["params_m"]["status"] == "off" and off["params_m"]["diff_pct"] == pytest.approx(-21.5)
    assert off["imagenet.top1"]["status"] == "off" and off["imagenet.top1"]["measured"] == 59.0
    assert set(reports["tiny-off"]["failed"]) == {"params_m", "imagenet.top1"}

    explained = _claims(reports["tiny-explained"])
    assert explained["gmacs"]["status"] == "explained"
    assert explained["gmacs"]["note"] == "the paper counts 2 FLOPs per multiply-add"
    assert explained["imagenet.top1"]["status"] == "not measured"
    assert "zoo eval tiny-explained --dataset imagenet" in explained["imagenet.top1"]["note"]

    missing = reports["needs-plugin"]
    assert missing["status"] == "not installed" and "notinstalled" in missing["note"]
    assert {c["status"] for c in missing["claims"]} == {"not installed"}


def test_cli_verify_all_json_reports_every_card_and_strict_fails(claims_zoo, monkeypatch):  # noqa: F811
    from zoo.measure import bench

    monkeypatch.setattr(bench, "static_counts", lambda name, **kw: {
        "params": 314, "macs": 13_904, "counted_on": "stub", "input_size": [3, 8, 8]})
    runner = CliRunner()
    result = runner.invoke(cli, ["verify", "--all", "--json"])
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)
    assert sorted(r["model"] for r in reports) == sorted(api.list_models())
    strict = runner.invoke(cli, ["verify", "--all", "--strict"])
    assert strict.exit_code == 1
    assert "claim(s) failed" in strict.output and "tiny-off: params_m" in strict.output
    assert "Traceback" not in strict.output
    assert runner.invoke(cli, ["verify", "tiny-net", "--strict"]).exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["verify"], "give model NAMES or --all"),
    (["verify", "tiny-net", "--all"], "give model NAMES or --all (not both)"),
    (["verify", "tiny-nett"], "unknown model 'tiny-nett'. Did you mean: tiny-net"),
])
def test_cli_verify_bad_input(claims_zoo, args, message):  # noqa: F811
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_real_catalog_every_card_is_reported_and_its_counts_hold_or_are_explained():
    """`zoo verify --all --json` on the shipped registry, no weights: every card is in the report,
    and for every card with a builder, params and MACs hold or the card's deviations explain why."""
    result = CliRunner().invoke(cli, ["verify", "--all", "--json"])
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)
    assert sorted(r["model"] for r in reports) == sorted(api.list_models())
    problems = [f"{r['model']}: {r.get('note')}" for r in reports if r["status"] == "error"]
    for r in reports:
        if r["status"] == "checked":
            problems += [f"{r['model']} {c['claim']}: reported {c['reported']}, measured {c['measured']}"
                         for c in r["claims"] if c["claim"] in ("params_m", "gmacs") and c["status"] == "off"]
    assert not problems, "\n".join(problems)
