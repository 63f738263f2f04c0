"""`zoo eval` inputs and records (issue #10, items 5, 11, 16, 19): one line and exit 2 for every bad
input, all of them found before torchrun is launched; canonical names; print first, then record."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import ZooError
from zoo.eval import distributed, evaluation
from zoo.records import results

sys.path.insert(0, str(Path(__file__).parent))
from imagegen import PLUGIN_ENTRY_POINTS, PLUGIN_FILES, make_demo_folder  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def evalt(install_plugin):
    return install_plugin("zoo-thirdparty-evalt", PLUGIN_ENTRY_POINTS, PLUGIN_FILES)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo_folder(tmp_path_factory.mktemp("demo") / "images", n_images=6, n_classes=2, seed=2)


@pytest.fixture
def no_launch(monkeypatch):
    """torchrun must not start: record the launches instead (a launch means a check came too late)."""
    launched: list[list[str]] = []

    def launch(nproc, args):
        launched.append([str(nproc), *args])
        return 0

    monkeypatch.setattr(distributed, "launch", launch)
    return launched


def _run(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _one_line(result, code: int, *needles: str) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


BAD = [
    (["--workers", "-1"], "--workers: expected a number of decoding processes >= 0, got -1"),
    (["--workers", "100000"], "--workers: 100000 is more than"),
    (["--batch-size", "0"], "--batch-size: expected a batch size >= 1, got 0"),
    (["--batch-size", "-3"], "--batch-size: expected a batch size >= 1, got -3"),
    (["--limit", "0"], "--limit: expected a number of images >= 1, got 0"),
    (["--limit", "-1"], "--limit: expected a number of images >= 1, got -1"),
    (["--threads", "0"], "--threads: expected a number of CPU threads >= 1, got 0"),
    (["--threads", "100000"], "--threads: 100000 is more than"),
    (["--device", "mps"], "--device: expected auto, cpu, cuda or cuda:N, got 'mps'"),
    (["--device", "cuda:x"], "--device: expected auto, cpu, cuda or cuda:N"),
    (["--device", ""], "--device: expected auto, cpu, cuda or cuda:N"),
    (["--patch", "tome:zz"], "patch 'tome:zz': expected NAME:key=value"),
    (["--patch", "nope:r=1"], "unknown patch 'nope'"),
    (["--corruption", "fog"], "--corruption/--severity apply to imagenet-c, not folder"),
]


@pytest.mark.parametrize("extra, message", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_option_is_one_line_exit_2_and_nothing_is_recorded(evalt, demo, extra, message):
    out = _run(["eval", "evt-resnet", "--dataset", f"folder:{demo}", "--no-pretrained", "--workers", "0", *extra])
    _one_line(out, 2, message)
    assert results.scan()[0] == []


def test_cuda_on_a_machine_without_it_is_one_line(evalt, demo, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = _run(["eval", "evt-resnet", "--dataset", f"folder:{demo}", "--no-pretrained", "--device", "cuda:0"])
    _one_line(out, 2, "--device cuda:0: CUDA is not available on this machine")


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 0}, "--limit: expected a number of images >= 1, got 0"),
    ({"batch_size": "8"}, "--batch-size: expected a batch size (an integer >= 1), got '8'"),
    ({"workers": True}, "--workers: expected a number of decoding processes (an integer >= 0), got True"),
    ({"amp": "fp8"}, "--amp: expected bf16, fp16 or none, got 'fp8'"),
    ({"amp": "fp16", "device": "cpu"}, "--amp fp16 is for CUDA"),
])
def test_python_api_checks_the_same_rules(evalt, demo, kwargs, message):
    with pytest.raises(zoo.errors.UserError) as info:
        zoo.evaluate("evt-resnet", f"folder:{demo}", pretrained=False, **kwargs)
    assert str(info.value).startswith(message)
    assert results.scan()[0] == []


NPROC_BAD = [
    (["evt-resnett", "--dataset", "folder:{demo}"], 2, "unknown model 'evt-resnett'"),
    (["evt-resnet", "--dataset", "imagenet-x"], 2, "unknown dataset 'imagenet-x'"),
    (["evt-resnet", "--dataset", "imagenet"], 2, "needs --data-dir"),
    (["evt-resnet", "--dataset", "imagenet", "--data-dir", "{demo}"], 2, "expected 1000 class folders"),
    (["evt-resnet", "--dataset", "folder:{demo}", "--workers", "-1"], 2, "--workers"),
    (["evt-resnet", "--dataset", "folder:{demo}", "--limit", "0"], 2, "--limit"),
    (["evt-resnet", "--dataset", "folder:{demo}", "--patch", "tome:zz"], 2, "patch 'tome:zz'"),
    (["evt-resnet", "--dataset", "folder:{demo}", "--patch", "tome:zz=1"], 2, "does not take the option 'zz'"),
    (["evt-resnet", "--dataset", "folder:{demo}", "--device", "tpu"], 2, "--device"),
    (["evt-detector", "--dataset", "folder:{demo}"], 2, "has task 'object-detection'"),
    (["evt-resnet", "--dataset", "folder:{demo}", "--nproc", "0"], 2, "--nproc: expected a number of processes >= 1"),
    (["evt-resnet", "--dataset", "folder:{demo}", "--nproc", "100000"], 2, "--nproc 100000: more processes than"),
]


@pytest.mark.parametrize("args, code, message", NPROC_BAD, ids=[" ".join(a[0][:1] + a[0][2:]) for a in NPROC_BAD])
def test_nproc_finds_every_user_error_before_torchrun(evalt, demo, no_launch, monkeypatch, args, code, message):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    args = [a.format(demo=demo) for a in args]
    nproc = [] if "--nproc" in args else ["--nproc", "2"]
    out = _run(["eval", *args, "--no-pretrained", *nproc])
    _one_line(out, code, message)
    assert no_launch == []


@pytest.mark.parametrize("device, nproc, message", [
    ("cuda", "3", "--nproc 3: this machine has 2 CUDA device(s), one per process"),
    ("auto", "3", "--nproc 3: this machine has 2 CUDA device(s), one per process"),
    ("cuda:1", "2", "--device cuda:1 pins one GPU; with --nproc 2 use --device cuda"),
    ("cuda:2", "2", "--device cuda:2: this machine has 2 CUDA device(s)"),
])
def test_nproc_on_gpus_is_checked_before_torchrun(evalt, demo, no_launch, monkeypatch, device, nproc, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a 2-GPU machine, as far as the checks see
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    out = _run(["eval", "evt-resnet", "--dataset", f"folder:{demo}", "--no-pretrained", "--device", device,
                "--nproc", nproc])
    _one_line(out, 2, message)
    assert no_launch == []
    ok = _run(["eval", "evt-resnet", "--dataset", f"folder:{demo}", "--no-pretrained", "--device", "cuda", "--nproc", "2"])
    assert ok.exit_code == 0 and len(no_launch) == 1


def test_nproc_missing_weights_fail_before_torchrun(evalt, demo, no_launch):
    out = _run(["eval", "evt-resnet", "--dataset", f"folder:{demo}", "--nproc", "2"])  # pretrained: no weights
    _one_line(out, 1, "model 'evt-resnet' has no published weights")
    assert no_launch == []


def test_nproc_launches_the_canonical_name_once_checked(evalt, demo, no_launch):
    out = _run(["eval", "EVT-ResNet", "--dataset", f"folder:{demo}", "--no-pretrained", "--nproc", "2",
                "--workers", "0", "--limit", "3"])
    assert out.exit_code == 0, out.output
    assert len(no_launch) == 1
    assert no_launch[0][:4] == ["2", "eval", "evt-resnet", "--dataset"]
    assert "--limit" in no_launch[0] and "--nproc" not in no_launch[0]


def test_names_are_canonical_in_records_and_in_results(evalt, demo):
    out = _run(["eval", "EVT-ResNet", "--dataset", f"folder:{demo}", "--no-pretrained", "--workers", "0",
                "--limit", "2", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["model"] == "evt-resnet"
    (record,), skipped = results.scan()
    assert record["model"] == "evt-resnet" and skipped == 0
    for typed in ("evt-resnet", "EVT-RESNET", "Evt-ResNet"):
        shown = _run(["results", "--model", typed, "--json"])
        assert shown.exit_code == 0 and [r["model"] for r in json.loads(shown.stdout)] == ["evt-resnet"]
    _one_line(_run(["results", "--model", "evt-resnett"]), 2, "unknown model 'evt-resnett'", "evt-resnet")


def test_results_of_a_model_whose_card_is_gone_are_still_found_case_insensitively(evalt):
    results.append({"model": "old-model", "dataset": "imagenet", "top1": 70.0})
    shown = _run(["results", "--model", "Old-Model", "--json"])
    assert shown.exit_code == 0 and len(json.loads(shown.stdout)) == 1


def _results_unwritable(monkeypatch, how: str) -> None:
    if how == "directory":  # a real failure: results.jsonl is a directory
        path = results.results_path()
        path.mkdir(parents=True)
    elif how == "home-is-a-file":
        home = results.results_path().parent
        home.parent.mkdir(parents=True, exist_ok=True)
        home.write_text("not a directory")
    else:  # the disk is full: what a checked append reports
        def full(record, path=None):
            raise ZooError("cannot write the results file: [Errno 28] No space left on device")

        monkeypatch.setattr(results, "append", full)


@pytest.mark.parametrize("how", ["directory", "home-is-a-file", "disk-full"])
def test_result_is_printed_even_when_it_cannot_be_recorded(evalt, demo, monkeypatch, how):
    _results_unwritable(monkeypatch, how)
    runner = CliRunner()
    out = runner.invoke(cli, ["eval", "evt-resnet", "--dataset", f"folder:{demo}", "--no-pretrained", "--workers", "0",
                              "--limit", "4", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["images"] == 4  # the whole result, on stdout
    warning = [line for line in out.stderr.splitlines() if line]
    assert len(warning) == 1 and warning[0].startswith("Warning: the result was not recorded: "), out.stderr
    assert "Traceback" not in out.output


def test_python_api_warns_instead_of_raising_when_the_record_fails(evalt, demo, monkeypatch):
    _results_unwritable(monkeypatch, "disk-full")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = zoo.evaluate("evt-resnet", f"folder:{demo}", pretrained=False, workers=0, limit=2)
    assert result["images"] == 2
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert messages == ["the result was not recorded: cannot write the results file: [Errno 28] No space left on device"]


def test_results_skips_and_counts_unreadable_lines(evalt):
    path = results.results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    good = {"model": "evt-resnet", "dataset": "imagenet", "top1": 51.0, "top5": 80.0, "images": 10,
            "time": "2024-01-01T00:00:00+00:00", "device": "cpu", "precision": "fp32"}
    lines = [json.dumps(good), "{cut in the mid", "[1, 2]", json.dumps({"model": 5, "dataset": "imagenet"}),
             json.dumps({**good, "top1": "high"}), json.dumps({**good, "images": "ten"}),
             json.dumps({**good, "device": ["cpu"]}), "\ufffd\x00garbage"]
    path.write_text("\n".join(lines) + "\n")
    out = _run(["results"])
    assert out.exit_code == 0, out.output
    assert f"skipped 7 unreadable line(s) in {path}" in out.stderr
    assert "51.00" in out.stdout and "1 run(s)" in out.stderr
    as_json = _run(["results", "--json"])
    assert json.loads(as_json.stdout) == [good]


def test_fp32_is_the_default_on_cuda_too(monkeypatch):
    from zoo.tasks.classification import evaluate as classification

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert classification.resolve_precision(None, torch.device("cuda")) == "fp32"
    assert classification.resolve_precision("bf16", torch.device("cuda")) == "bf16"
    assert classification.resolve_precision("none", torch.device("cuda")) == "fp32"
    assert evaluation.precision_of(None, "cpu") == "fp32"
    help_text = _run(["eval", "--help"]).output
    assert "Default: fp32 on every device" in help_text


def test_run_records_precision_weights_and_the_datasets_preprocessing(evalt, demo, monkeypatch):
    """The hook takes the card's preprocessing for the dataset evaluated (preprocess_for), and records it."""
    from dataclasses import replace

    from zoo.registry.cards import Card

    asked: list[str | None] = []
    original = Card.preprocess_for

    def preprocess_for(self, dataset):
        asked.append(dataset)
        pre = original(self, dataset)
        return replace(pre, crop_pct=0.5) if dataset == "folder" else pre

    monkeypatch.setattr(Card, "preprocess_for", preprocess_for)
    result = zoo.evaluate("evt-resnet", f"folder:{demo}", pretrained=False, workers=0, limit=2)
    assert "folder" in asked
    assert result["preprocess"]["crop_pct"] == 0.5 and result["precision"] == "fp32"
    (record,), _ = results.scan()
    assert record["preprocess"]["crop_pct"] == 0.5 and record["precision"] == "fp32"
    assert record["weights"] == {"origin": "random", "sha256": None, "source": None}
    assert "checkpoint_sha256" not in record
