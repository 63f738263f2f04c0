"""zoo verify is task-generic (#11): each reported figure is judged with its task's Metric (unit,
absolute or relative tolerance), only by runs of the claim's protocol and precision."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo import api, records
from zoo.claims import verify
from zoo.cli import cli
from zoo.records import Result
from zoo.registry.cards import Card, Figure, Reported
from zoo.registry.tasks import Metric, Task


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_zoo_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_rules = _sibling("test_verify_rules")
rules_zoo = _rules.rules_zoo  # cards w-sha (imagenet 50.0, imagenet-c 30.0), w-nosha, w-manual, coarse
SHA_A = _rules.SHA_A


def result(model: str, dataset: str, top1: float, **fields) -> Result:
    """A Result as `zoo eval` records it, by default one that can test the card's claim on ``dataset``."""
    card = api.get_card(model)
    base = dict(model=card.name, dataset=dataset, task=card.task, protocol=verify.claim_protocol(card, dataset),
                precision="fp32", metrics={"top1": top1, "top5": 90.0}, pretrained=True,
                weights={"origin": "official", "sha256": SHA_A, "source": "hf://org/w"})
    return Result(**{**base, **fields})


def judged(model: str, claim: str):
    report = verify.verify_card(api.get_card(model), here="cpu")
    (c,) = [c for c in report["claims"] if c["claim"] == claim and c["status"] != "not testable"]
    return c


# -- the must-holds ------------------------------------------------------------------------------


def test_a_single_corruption_run_does_not_confirm_the_averaged_imagenet_c_claim(rules_zoo):
    claim = verify.claim_protocol(api.get_card("w-sha"), "imagenet-c")
    assert claim["corruption"] == "all" and claim["severity"] == "all"
    records.append(result("w-sha", "imagenet-c", 30.0, protocol={**claim, "corruption": "fog"}))  # = the claim
    c = judged("w-sha", "imagenet-c.top1")
    assert c["status"] == "not judged" and c["measured"] is None
    assert c["note"] == "runs exist only with corruption fog, the claim's is all"
    records.append(result("w-sha", "imagenet-c", 29.0, protocol={**claim, "severity": "3"}))
    assert judged("w-sha", "imagenet-c.top1")["note"] == ("runs exist only with severity 3, the claim's is all; "
                                                          "corruption fog, the claim's is all")
    records.append(result("w-sha", "imagenet-c", 30.04))  # the whole benchmark: judges
    records.append(result("w-sha", "imagenet-c", 10.0, protocol={**claim, "corruption": "fog"}))  # later, partial
    c = judged("w-sha", "imagenet-c.top1")
    assert c["status"] == "holds" and c["measured"] == 30.04


def test_a_bf16_run_does_not_confirm_an_fp32_claim(rules_zoo):
    records.append(result("w-sha", "imagenet", 50.0, precision="bf16"))  # exactly the paper's figure
    c = judged("w-sha", "imagenet.top1")
    assert c["status"] == "not judged"
    assert c["note"] == "runs exist only with bf16 precision (only fp32 runs judge a claim: zoo eval without --amp)"
    records.append(result("w-sha", "imagenet", 49.0))
    c = judged("w-sha", "imagenet.top1")
    assert c["status"] == "off" and c["measured"] == 49.0  # the fp32 run, not the later-or-earlier bf16 one


def test_other_preprocessing_names_the_setting(rules_zoo):
    claim = verify.claim_protocol(api.get_card("w-sha"), "imagenet")
    other = {**claim, "preprocess": {**claim["preprocess"], "crop_pct": 0.95}}
    records.append(result("w-sha", "imagenet", 50.0, protocol=other))
    assert judged("w-sha", "imagenet.top1")["note"] == (
        "runs exist only with preprocessing crop_pct 0.95, the claim's is 0.875")


def test_zoo_0_1_lines_judge_as_before(rules_zoo):
    """Lines with the exact field set zoo 0.1 wrote, migrated on read, give the verdicts they gave."""
    line = {**_sibling("test_records").V1_LINE, "model": "w-sha", "dataset": "imagenet", "dataset_options": None,
            "weights": {"origin": "official", "sha256": SHA_A, "source": "hf://org/w"},
            "preprocess": verify.claim_protocol(api.get_card("w-sha"), "imagenet")["preprocess"]}
    c_line = {**line, "dataset": "imagenet-c", "top1": 30.0, "dataset_options": {"corruption": "fog", "severity": "3"}}
    _rules.write([{**line, "top1": 50.04}, c_line, {**line, "top1": 50.0, "precision": "bf16"}])
    c = judged("w-sha", "imagenet.top1")
    assert (c["status"], c["measured"], c["tolerance"], c["unit"]) == ("holds", 50.04, "±0.1 points", "%")
    c = judged("w-sha", "imagenet-c.top1")
    assert c["status"] == "not judged" and c["note"] == "runs exist only with corruption fog, the claim's is all"


def test_the_cli_reports_a_newer_schema_line_as_skipped(rules_zoo):
    records.append(result("w-sha", "imagenet", 50.0))
    path = records.results_path()
    with open(path, "a") as fh:
        fh.write(json.dumps({**result("w-sha", "imagenet", 1.0).to_json(), "schema": 99}) + "\n")
    out = CliRunner().invoke(cli, ["verify", "w-sha", "--json"])
    assert out.exit_code == 0, out.output
    assert out.stderr.strip() == f"skipped 1 unreadable line(s) in {path}"
    (report,) = json.loads(out.stdout)
    (c,) = [c for c in report["claims"] if c["claim"] == "imagenet.top1" and c["status"] != "not testable"]
    assert c["status"] == "holds" and c["measured"] == 50.0  # the schema-99 line (1.0) was not read


# -- a task's own metrics and tolerances -------------------------------------------------------------------

TOY = Task(name="toy-regression", metrics=(
    Metric(name="mae", unit="px", direction="lower", tolerance=0.5, primary=True),
    Metric(name="rmse", unit="px", direction="lower", tolerance=5.0, relative=True),
))


def toy_card(**metrics: Figure) -> Card:
    return Card(name="toy", paper="p", task="toy-regression", plugin="toyplug", builder="b",
                reported=Reported(source="test", metrics={"toyset": metrics}))


def toy_runs(*values: dict[str, float], protocol=None) -> verify.Runs:
    return verify.Runs.of([Result(model="toy", dataset="toyset", task="toy-regression", metrics=v,
                                  protocol=protocol or {}, weights={"origin": "manual", "sha256": None})
                           for v in values])


def by_claim(claims):
    return {c.claim: c for c in claims}


def test_a_relative_tolerance_is_a_percent_of_the_figure():
    card = toy_card(rmse=Figure(40.0, "40.0"), mae=Figure(3.0, "3.0"))
    got = by_claim(verify.check_metrics(card, toy_runs({"rmse": 41.9, "mae": 3.45}), ("toyplug", TOY)))
    assert got["toyset.rmse"].status == "holds" and got["toyset.rmse"].tolerance == "±5% (±2 px)"  # 5 % of 40
    assert got["toyset.rmse"].unit == "px" and got["toyset.rmse"].direction == "lower"
    assert got["toyset.mae"].status == "holds" and got["toyset.mae"].tolerance == "±0.5 px"  # absolute
    got = by_claim(verify.check_metrics(card, toy_runs({"rmse": 42.1, "mae": 3.55}), ("toyplug", TOY)))
    assert got["toyset.rmse"].status == "off" and got["toyset.rmse"].diff_pct == pytest.approx(5.25)
    assert got["toyset.mae"].status == "off"
    # a relative tolerance on a small figure is still widened to half its printed unit
    small = toy_card(rmse=Figure(2.0, "2"))
    got = by_claim(verify.check_metrics(small, toy_runs({"rmse": 2.45}), ("toyplug", TOY)))
    assert got["toyset.rmse"].status == "holds" and verify.metric_tolerance(Figure(2.0, "2"), TOY.metric("rmse")) == 0.5


def test_a_metric_the_task_does_not_declare_is_an_error_naming_the_tasks_metrics():
    card = toy_card(top1=Figure(80.0, "80.0"), mae=Figure(3.0, "3.0"))
    got = by_claim(verify.check_metrics(card, toy_runs({"top1": 80.0, "mae": 3.0}), ("toyplug", TOY)))
    assert got["toyset.top1"].status == "error" and got["toyset.top1"].failed
    assert got["toyset.top1"].note == "task toy-regression has no metric 'top1' (its metrics: mae, rmse)"
    assert got["toyset.mae"].status == "holds"


def test_a_card_whose_task_is_not_installed_is_not_installed(rules_zoo):
    card = toy_card(mae=Figure(3.0, "3.0"))
    (c,) = verify.check_metrics(card, toy_runs({"mae": 3.0}))
    assert c.status == "not installed" and c.note == "no installed plugin declares task 'toy-regression'"


def test_runs_of_another_protocol_of_any_task_are_not_judged(tmp_path, monkeypatch):
    (tmp_path / "toyproto.py").write_text(
        "def protocol(card, dataset, options):\n    return {'clip': False, 'scales': (1.0, 0.5)}\n"
        "def broken(card, dataset, options):\n    raise KeyError('scales')\n"
        "def wrong(card, dataset, options):\n    return ['clip']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    task = Task(name="toy-regression", metrics=TOY.metrics, protocol="toyproto:protocol")
    card = toy_card(mae=Figure(3.0, "3.0"))
    (c,) = verify.check_metrics(card, toy_runs({"mae": 3.0}, protocol={"clip": True, "scales": [1.0, 0.5]}),
                                ("toyplug", task))
    assert c.status == "not judged" and c.note == "runs exist only with clip True, the claim's is False"
    (c,) = verify.check_metrics(card, toy_runs({"mae": 3.0}, protocol={"clip": False}), ("toyplug", task))
    assert c.note == "runs exist only with scales not recorded, the claim's is [1.0, 0.5]"
    (c,) = verify.check_metrics(card, toy_runs({"mae": 3.0}, protocol={"clip": False, "scales": [1.0, 0.5]}),
                                ("toyplug", task))
    assert c.status == "holds"  # the tuple the task returned equals the list the record holds
    for ref, message in [("toyproto:broken", "protocol of task 'toy-regression' failed for toy on toyset: "
                                             "KeyError: 'scales'"),
                         ("toyproto:wrong", "protocol of task 'toy-regression' returned list, not a mapping"),
                         ("toyproto_missing:protocol", "cannot import 'toyproto_missing:protocol'")]:
        broken = Task(name="toy-regression", metrics=TOY.metrics, protocol=ref)
        (c,) = verify.check_metrics(card, toy_runs({"mae": 3.0}), ("toyplug", broken))
        assert c.status == "error" and c.note.startswith("plugin 'toyplug': ") and message in c.note, c.note


@pytest.mark.parametrize("run, claim, note", [
    ({"a": 1}, {"a": 1}, None),
    ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}, None),
    ({"a": 2}, {"a": 1}, "a 2, the claim's is 1"),
    ({}, {"a": 1}, "a not recorded, the claim's is 1"),
    ({"a": 1, "z": 0}, {"a": 1}, "z 0, the claim has none"),
    ({"preprocess": {"crop_pct": 1.0}}, {"preprocess": {"crop_pct": 0.875}}, "preprocessing crop_pct 1.0, the claim's is 0.875"),
    ({"preprocess": "bicubic"}, {"preprocess": {"crop_pct": 0.875}},
     "preprocessing bicubic, the claim's is {'crop_pct': 0.875}"),
    ({"b": 1, "a": 2}, {"a": 1, "b": 2}, "a 2, the claim's is 1"),  # the claim's order
])
def test_protocol_problem_names_the_first_setting_that_differs(run, claim, note):
    assert verify.protocol_problem(run, claim) == note
