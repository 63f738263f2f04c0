"""Which eval runs may judge a paper's accuracy claim (issue #10, items 2, 5, 13, 16, 18, 19):
the card's own weights, fp32, the whole dataset, the card's preprocessing; other-weights figures
are shown and never judged; figures are judged at the precision the source printed."""

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
from zoo.registry.cards import Card, Figure, Reported
from zoo.tasks.classification.data.transforms import EvalPreprocess


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_zoo_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench = _sibling("test_bench")  # the throwaway plugin with the hand-countable tiny net

SHA_A, SHA_B, SHA_X = "a" * 64, "b" * 64, "c" * 64

REGISTRY = f'''
papers:
  p: {{title: "A paper", venue: "ICLR 2024", license: MIT}}
models:
  w-sha:
    paper: p
    task: image-classification
    plugin: claims
    builder: tiny
    input_size: [3, 8, 8]
    num_classes: 10
    weights:
      - {{hub: org/w, file: w.safetensors, sha256: "{SHA_A}"}}
      - {{url: "https://example.org/w.pth", sha256: "{SHA_B}"}}
    reported:
      source: "Table 1"
      imagenet: {{top1: 50.0}}
      imagenet-c: {{top1: 30.0}}
      other_weights:
        - {{claim: imagenet.top1, value: 48.5, source: "deck", why: "the 300-epoch model; only 450-epoch weights exist"}}
        - {{claim: params_m, value: 9.9, source: "deck", why: "the distilled variant"}}
  w-nosha:
    paper: p
    task: image-classification
    plugin: claims
    builder: tiny
    input_size: [3, 8, 8]
    num_classes: 10
    weights:
      - {{hub: org/w2, file: w.safetensors}}
    reported: {{source: "Table 1", imagenet: {{top1: 50.0}}}}
  w-manual:
    paper: p
    task: image-classification
    plugin: claims
    builder: tiny
    input_size: [3, 8, 8]
    num_classes: 10
    weights_note: "a Google Drive folder: download by hand and zoo cache add"
    reported: {{source: "Table 1", imagenet: {{top1: 50.0}}}}
  coarse:
    paper: p
    task: image-classification
    plugin: claims
    builder: tiny
    input_size: [3, 8, 8]
    num_classes: 10
    reported: {{source: "Table 1", imagenet: {{top1: 81}}, imagenet-r: {{top1: 81.0}}}}
'''


@pytest.fixture
def rules_zoo(install_plugin, tmp_path, monkeypatch):
    install_plugin("zoo-thirdparty-claims", {"claims": "zoo_thirdparty_claims"},
                   {"zoo_thirdparty_claims/__init__.py": _bench.PLUGIN, "zoo_thirdparty_claims/nets.py": _bench.NETS})
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    api.reset()
    return registry


def run(model: str, top1: float, dataset: str = "imagenet", *, origin: str = "official", sha256: str | None = SHA_A,
        **fields):
    """A results line as `zoo eval` writes it; by default one that can test the card's claim."""
    row = {"model": model, "dataset": dataset, "top1": top1, "pretrained": origin in ("official", "manual"),
           "checkpoint": "somewhere" if origin == "checkpoint" else None, "precision": "fp32", "weights": {"origin": origin, "sha256": sha256, "source": "somewhere"},
           "preprocess": EvalPreprocess.from_card(api.get_card(model), dataset).as_dict(),
           "limit": None, "patch": None, "skipped_bad_images": False, "dataset_options": None}
    row.update(fields)
    return row


def write(rows, extra_lines=()):
    path = zoo_home() / "results.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in extra_lines))
    return path


def claims(name: str, dataset_claim: str = "imagenet.top1"):
    report = verify.verify_card(api.get_card(name), here="cpu")
    return [c for c in report["claims"] if c["claim"] == dataset_claim], report


def judged(name: str, claim: str = "imagenet.top1"):
    found, _ = claims(name, claim)
    (c,) = [c for c in found if c["status"] != "not testable"]
    return c


# -- item 2: weights provenance --------------------------------------------------------------------


def test_hand_added_weights_do_not_judge_a_card_with_a_source(rules_zoo):
    write([run("w-sha", 10.0, origin="manual", sha256=SHA_X)])
    c = judged("w-sha")
    assert c["status"] == "not judged" and c["measured"] is None
    assert c["note"] == f"runs exist only with hand-added weights (sha256 {SHA_X[:12]}…), not from the card's source"


@pytest.mark.parametrize("origin, sha", [("manual", SHA_B), ("checkpoint", SHA_A), ("official", SHA_A)])
def test_weights_whose_sha256_the_card_states_judge(rules_zoo, origin, sha):
    write([run("w-sha", 10.0, origin=origin, sha256=sha)])
    c = judged("w-sha")
    assert c["status"] == "off" and c["measured"] == 10.0


def test_other_weights_never_judge(rules_zoo):
    write([run("w-sha", 50.0, origin="checkpoint", sha256=SHA_X),
           run("w-sha", 50.0, origin="official", sha256=SHA_X),  # a file the card does not name
           run("w-nosha", 50.0, origin="checkpoint", sha256=SHA_X)])
    c = judged("w-sha")
    assert c["status"] == "not judged"
    assert f"weights whose sha256 {SHA_X[:12]}… is none of the card's" in c["note"]
    assert "other weights (--checkpoint somewhere" in c["note"]
    c = judged("w-nosha")
    assert c["status"] == "not judged" and "other weights" in c["note"]


def test_official_download_judges_a_card_without_sha256(rules_zoo):
    write([run("w-nosha", 50.05, sha256=SHA_X)])
    assert judged("w-nosha")["status"] == "holds"


def test_manual_weights_judge_a_card_whose_only_source_is_manual(rules_zoo):
    write([run("w-manual", 50.0, origin="manual", sha256=SHA_X)])
    assert judged("w-manual")["status"] == "holds"


def test_runs_recorded_without_provenance_are_not_evidence(rules_zoo):
    old = run("w-nosha", 50.0)
    del old["weights"]
    old["checkpoint_sha256"] = SHA_A  # what an older zoo wrote
    write([old])
    c = judged("w-nosha")
    assert c["status"] == "not judged" and "no record of its weights (an older zoo)" in c["note"]


def test_a_later_untrusted_run_does_not_replace_the_evidence(rules_zoo):
    write([run("w-sha", 50.02), run("w-sha", 10.0, origin="manual", sha256=SHA_X), run("w-sha", 10.0, precision="bf16")])
    c = judged("w-sha")
    assert c["status"] == "holds" and c["measured"] == 50.02


# -- item 16: precision ----------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bf16", "fp16", None])
def test_only_fp32_runs_judge_accuracy(rules_zoo, precision):
    write([run("w-sha", 50.0, precision=precision)])
    c = judged("w-sha")
    assert c["status"] == "not judged"
    assert c["note"] == (f"runs exist only with {precision or 'unknown'} precision "
                         "(only fp32 runs judge a claim: zoo eval without --amp)")


# -- item 19 (verify side) and the other run kinds --------------------------------------------------


def test_runs_with_other_preprocessing_or_on_part_of_the_data_do_not_judge(rules_zoo):
    pre = EvalPreprocess.from_card(api.get_card("w-sha"), "imagenet").as_dict()
    write([run("w-sha", 50.0, preprocess={**pre, "crop_pct": 1.0}),
           run("w-sha", 30.0, "imagenet-c", dataset_options={"corruption": "fog"}),
           run("w-sha", 10.0, limit=5), run("w-sha", 10.0, patch="tome:r=8")])
    c = judged("w-sha")
    assert c["status"] == "not judged"
    assert c["note"] == ("runs exist only with a patched model (tome:r=8); a --limit 5 subset; "
                         "preprocessing crop_pct 1.0, the claim's is 0.875")
    c = judged("w-sha", "imagenet-c.top1")
    assert c["status"] == "not judged"  # one corruption is part of the benchmark, not the averaged figure
    assert c["note"] == "runs exist only with corruption fog, the claim's is all"


def test_no_run_at_all_is_not_measured(rules_zoo):
    write([])
    c = judged("w-sha")
    assert c["status"] == "not measured" and c["note"] == "no eval result yet: zoo eval w-sha --dataset imagenet"


# -- item 18: figures for other weights --------------------------------------------------------------


def test_other_weights_figures_are_not_testable_even_with_a_result(rules_zoo):
    write([run("w-sha", 48.5)])  # a run that equals the other-weights figure must not "confirm" it
    found, report = claims("w-sha")
    statuses = sorted(c["status"] for c in found)
    assert statuses == ["not testable", "off"]
    other = next(c for c in found if c["status"] == "not testable")
    assert other["reported"] == 48.5 and other["measured"] is None
    assert other["note"] == "the 300-epoch model; only 450-epoch weights exist"
    params = [c for c in report["claims"] if c["claim"] == "params_m" and c["status"] == "not testable"]
    assert params and params[0]["unit"] == "M" and params[0]["note"] == "the distilled variant"
    assert "not testable" not in verify.FAILING
    assert report["failed"] == ["imagenet.top1"]  # the card's own claim, not the other-weights one


def test_strict_does_not_fail_on_other_weights_figures(rules_zoo):
    write([run("w-sha", 50.0)])
    out = CliRunner().invoke(cli, ["verify", "w-sha", "--strict"])
    assert out.exit_code == 0, out.output
    assert "not testable" in out.stdout and "the 300-epoch model" in out.stdout


# -- item 13: the printed precision --------------------------------------------------------------------


def _card(params: Figure, deviations=None) -> Card:
    return Card(name="fig", paper="p", task="image-classification", plugin="claims", builder="tiny",
                reported=Reported(source="README", params_m=params), deviations=deviations or {})


def test_params_printed_14_0_is_not_14_66():
    c = verify.check_params(_card(Figure(14.0, "14.0")), 14_657_024)
    assert c.status == "off" and c.tolerance.startswith("table precision (0.1 M")
    c = verify.check_params(_card(Figure(14.0, "14.0"), {"params_m": "the README's M is 2^20"}), 14_657_024)
    assert c.status == "explained" and c.note == "the README's M is 2^20"
    c = verify.check_params(_card(Figure(14.0, "14")), 14_657_024)  # printed as an integer: 1 M precision
    assert c.status == "holds" and c.tolerance.startswith("table precision (1 M")


def test_macs_printed_precision():
    card = Card(name="fig", paper="p", task="image-classification", plugin="claims", builder="tiny",
                reported=Reported(source="x", gmacs=Figure(2.0, "2.0")))
    assert verify.check_macs(card, 2_180_000_000).status == "off"  # +9 %, and not 2.0 at 0.1 G
    card = Card(name="fig", paper="p", task="image-classification", plugin="claims", builder="tiny",
                reported=Reported(source="x", gmacs=Figure(2.0, "2")))
    assert verify.check_macs(card, 2_180_000_000).status == "holds"  # printed "2": 2.18 G is 2


def test_accuracy_tolerance_follows_the_printed_precision(rules_zoo):
    write([run("coarse", 80.6), run("coarse", 80.6, "imagenet-r")])
    integer = judged("coarse")
    assert integer["status"] == "holds" and integer["tolerance"] == "±0.5 points"  # printed "81"
    tenth = judged("coarse", "imagenet-r.top1")
    assert tenth["status"] == "off" and tenth["tolerance"] == "±0.1 points"  # printed "81.0"


def test_real_coc_small_params_are_explained_not_holds():
    """The README prints 14.0 (M = 2^20); coc_small has 14.66 M parameters: the card's deviation explains it."""
    card = api.get_card("coc-small")
    assert card.reported.params_m.text == "14.0"
    report = verify.verify_card(card, verify.Runs(), here="cpu")
    (params,) = [c for c in report["claims"] if c["claim"] == "params_m"]
    assert params["status"] == "explained", params
    assert params["measured"] == pytest.approx(14.657, abs=1e-3)
    assert "2^20" in params["note"]
    out = CliRunner().invoke(cli, ["verify", "coc-small"])  # the table prints the figure as its source did
    assert out.exit_code == 0, out.output
    row = next(line for line in out.stdout.splitlines() if " params_m " in line)
    assert row.split()[:4] == ["coc-small", "params_m", "14.0", "M"] and " explained " in row


# -- item 5: unreadable lines ------------------------------------------------------------------------


def test_verify_skips_and_counts_unreadable_lines(rules_zoo):
    path = write([run("w-sha", 50.0)], extra_lines=[
        "{cut", "[1, 2, 3]", "null", json.dumps({"model": "w-sha", "dataset": "imagenet", "top1": "50"}),
        json.dumps({"model": ["w-sha"], "dataset": "imagenet", "top1": 50.0}),
    ])
    out = CliRunner().invoke(cli, ["verify", "w-sha", "--json"])
    assert out.exit_code == 0, out.output
    assert out.stderr.strip() == f"skipped 5 unreadable line(s) in {path}"
    (report,) = json.loads(out.stdout)
    (c,) = [c for c in report["claims"] if c["claim"] == "imagenet.top1" and c["status"] != "not testable"]
    assert c["status"] == "holds" and c["measured"] == 50.0


def test_load_results_gives_plot_and_compare_only_evidence(rules_zoo):
    write([run("w-sha", 50.0), run("w-sha", 10.0, precision="bf16"), run("W-Nosha", 49.0, origin="manual", sha256=SHA_X),
           run("w-manual", 47.0, origin="manual", sha256=SHA_X), {"model": "gone", "dataset": "imagenet", "top1": 1.0}])
    latest = verify.load_results()
    assert {k: v.metrics["top1"] for k, v in latest.items()} == {("w-sha", "imagenet"): 50.0, ("w-manual", "imagenet"): 47.0}


def test_compare_shows_evidence_and_printed_figures(rules_zoo):
    write([run("w-sha", 50.0), run("w-sha", 10.0, precision="bf16")])
    out = CliRunner().invoke(cli, ["compare", "w-sha", "--json"])
    assert out.exit_code == 0, out.output
    (column,) = json.loads(out.stdout)
    assert column["measured top-1"] == 50.0  # the fp32 run of the card's weights, not the later bf16 one
    table = CliRunner().invoke(cli, ["compare", "w-sha"])
    row = next(line for line in table.stdout.splitlines() if line.startswith("reported top-1"))
    assert row.split()[-1] == "50.0"  # as the card prints it
