"""benchmarks/gpu_check.py: its CPU dry run exercises every step; without CUDA it is one line, exit 2."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from zoo import api

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"

PLUGIN = '''
from zoo import hookimpl

@hookimpl
def zoo_builders():
    return {"tiny": "zoo_thirdparty_gpucheck.nets:tiny"}
'''

NETS = '''
from torch import nn

def tiny(*, num_classes=10, **kwargs):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, num_classes))
'''

REGISTRY = '''
papers:
  t: {title: "T", venue: "ICLR 2024", license: MIT}
models:
  tiny-a:
    paper: t
    task: image-classification
    plugin: gpucheck
    builder: tiny
    input_size: [3, 16, 16]
    num_classes: 1000
  tiny-b:
    paper: t
    task: image-classification
    plugin: gpucheck
    builder: tiny
    input_size: [3, 24, 24]
    num_classes: 1000
'''


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gpu_check(install_plugin, tmp_path, monkeypatch):
    install_plugin("zoo-thirdparty-gpucheck", {"gpucheck": "zoo_thirdparty_gpucheck"},
                   {"zoo_thirdparty_gpucheck/__init__.py": PLUGIN, "zoo_thirdparty_gpucheck/nets.py": NETS})
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    api.reset()
    module = _load()
    yield module
    for name in ("gpu_check", "eval_vs_forward", "_sections"):
        sys.modules.pop(name, None)


def test_dry_run_exercises_every_step_and_writes_the_section(gpu_check, tmp_path, capsys):
    out = tmp_path / "report" / "gpu-check.md"
    assert gpu_check.main(["--dry-run", "--models", "tiny-a", "tiny-b", "--out", str(out)]) == 0
    text = out.read_text()
    assert text in capsys.readouterr().out  # printed, and written
    assert text.startswith("## GPU check, ") and "`python benchmarks/gpu_check.py --dry-run` (dry run on the CPU" in text
    for heading in ("### `zoo eval` beside the model's forward", "### `zoo bench` beside timm's benchmark.py loop",
                    "### `zoo bench --compile` (fp32)"):
        assert heading in text
    rows = [line for line in text.splitlines() if line.startswith("| tiny-")]
    precisions = ["fp32", "bf16"] if "bf16 skipped" not in text else ["fp32"]
    # per card: one eval row and one bench row per precision, one compile row
    assert len(rows) == 2 * (2 * len(precisions) + 1), rows
    eval_rows = [r for r in rows if r.count("|") == 7]
    assert [r.split("|")[2].strip() for r in eval_rows] == precisions * 2  # fp32 is the first, default run
    for row in eval_rows:
        forward, evaluated, ratio = (float(cell) for cell in row.split("|")[3:6])
        assert forward > 0 and evaluated > 0 and ratio == pytest.approx(evaluated / forward, abs=0.01)
    assert "eval / forward >=" not in text  # the CPU rehearsal judges nothing


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_without_cuda_it_is_one_line_and_exit_2(gpu_check, tmp_path, capsys):
    out = tmp_path / "gpu-check.md"
    assert gpu_check.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: gpu_check: no CUDA device on this machine: run it where a GPU is lent, "
                   "or --dry-run for the CPU rehearsal\n")
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--device", "cpu"], "--device cpu measures nothing useful at GPU sizes"),
    (["--dry-run", "--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
    (["--dry-run", "--models", "no-such-card"], "unknown model 'no-such-card'"),
])
def test_bad_input_is_one_line_exit_2(gpu_check, args, message, capsys):
    assert gpu_check.main(args) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: gpu_check: ") and message in line


def test_timm_style_loop_counts_samples_over_wall_time():
    calls = []

    def model(x):
        calls.append(x.shape)
        return x

    img_s = _load().timm_style_throughput(model, (3, 4, 4), 5, torch.device("cpu"), None, warmup=2, steps=3)
    assert calls == [(5, 3, 4, 4)] * 5 and img_s > 0
    for name in ("gpu_check", "eval_vs_forward", "_sections"):
        sys.modules.pop(name, None)
