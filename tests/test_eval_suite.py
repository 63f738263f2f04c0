"""zoo eval --suite robustness: the ViT-LLaMA table's five datasets in their real layouts, one row.

The data is generated: one JPEG or a few per class folder, in each adapter's layout (IN: the flat
val folder with LOC_val_solution.csv; IN-C: <corruption>/<severity>/<wnid>/ for 15 x 5 parts; IN-A: 200
folders; IN-SK: sketch/ of 1000; IN-R: imagenet-r/ of 200). The 1000-folder trees are written
twice and linked where a layout repeats them (each IN-C part, IN-SK's sketch/): 75,000
folders would take minutes on a slow disk. The ImageNet-C adapter's scan costs ~0.2-0.6 s per part
(a realpath per class folder), so the test narrows the adapter's list of the 15 benchmark corruptions
to one (5 parts): the suite itself asks for no corruption or severity, so it gets every part the
adapter has, which the test checks. The model is a constant: its logits fall with the class
index, so it always answers class 0 (a 200-class subset: its first class), and each accuracy is
known from where the images are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.paths import zoo_home
from zoo.tasks.classification.data import datasets, synsets

CORRUPTIONS = datasets.CORRUPTIONS[:1]  # the test's benchmark (see the module docstring)

PLUGIN = '''
from zoo import hookimpl


@hookimpl
def zoo_cards():
    reported = {"source": "test", "imagenet": {"top1": 51.0}, "imagenet-c": {"top1": 45.0},
                "imagenet-a": {"top1": 24.0}, "imagenet-sketch": {"top1": 20.0}, "imagenet-r": {"top1": 41.5}}
    return [{"papers": {"suitepaper": {"title": "Suite test", "venue": "Test 2024"}},
             "models": {"const-net": {"paper": "suitepaper", "task": "image-classification", "plugin": "suite",
                                      "builder": "const", "input_size": [3, 16, 16], "reported": reported},
                        "const-det": {"paper": "suitepaper", "task": "object-detection", "plugin": "suite",
                                      "builder": "const"}}}]


@hookimpl
def zoo_builders():
    return {"const": "zoo_thirdparty_suite.nets:const"}
'''

NETS = '''
import torch
from torch import nn


class Const(nn.Module):
    """Logits -0, -1, ..., -999 whatever the image: class 0 wins, and the first class of any subset."""

    def __init__(self, num_classes):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.register_buffer("order", -torch.arange(num_classes, dtype=torch.float32))

    def forward(self, x):
        return self.scale * self.order.expand(x.shape[0], -1) + 0 * x.mean()


def const(*, num_classes=1000, **kwargs):
    return Const(num_classes)
'''

ARGS = ["--no-pretrained", "--device", "cpu", "--workers", "0", "--batch-size", "8"]


@pytest.fixture
def suite_zoo(install_plugin):
    install_plugin("zoo-thirdparty-suite", {"suite": "zoo_thirdparty_suite"},
                   {"zoo_thirdparty_suite/__init__.py": PLUGIN, "zoo_thirdparty_suite/nets.py": NETS})


def _jpeg(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 16), (30, 120, 200)).save(path, "JPEG")


def _tree(root: Path, wnids, right: int, wrong: int) -> Path:
    """Class folders for ``wnids``; ``right`` images in the first (the model's answer), ``wrong`` in the second."""
    for wnid in wnids:
        (root / wnid).mkdir(parents=True, exist_ok=True)
    for i in range(right):
        _jpeg(root / wnids[0] / f"r{i}.JPEG")
    for i in range(wrong):
        _jpeg(root / wnids[1] / f"w{i}.JPEG")
    return root


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link, target_is_directory=True)


def _subset(root: Path, name: str, right: int, wrong: int) -> None:
    """A 200-class set; the model's answer is the subset class with the lowest ImageNet index."""
    wnids = list(synsets.subset_wnids(name))
    first = min(wnids, key=lambda w: synsets.imagenet_index()[w])
    _tree(root, [first, *[w for w in wnids if w != first]], right, wrong)


@pytest.fixture(scope="module")
def robustness_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("suite")
    wnids = list(synsets.imagenet_wnids())
    a = _tree(base / "tree-a", wnids, right=1, wrong=1)  # 50 %
    b = _tree(base / "tree-b", wnids, right=1, wrong=4)  # 20 %
    root = base / "data"
    flat = root / "imagenet" / "val"  # 2 images, the first of class 0: 50 %
    for i in (1, 2):
        _jpeg(flat / f"ILSVRC2012_val_{i:08d}.JPEG")
    (flat / "LOC_val_solution.csv").write_text(f"ImageId,PredictionString\nILSVRC2012_val_00000001,{wnids[0]} 1 2 3 4\n"
                                               f"ILSVRC2012_val_00000002,{wnids[5]} 1 2 3 4\n")
    for corruption in CORRUPTIONS:  # severities 1-4 at 50 %, 5 at 20 %: a mean of the parts, 44.0
        for severity in range(1, 6):
            _link(a if severity < 5 else b, root / "imagenet-c" / corruption / str(severity))
    _subset(root / "imagenet-a", "imagenet-a", right=1, wrong=3)  # 25 %
    _link(b, root / "imagenet-sketch" / "sketch")  # 20 %
    _subset(root / "imagenet-r" / "imagenet-r", "imagenet-r", right=2, wrong=3)  # 40 %
    return root


def test_robustness_row_measured_beside_the_paper_and_recorded(suite_zoo, robustness_root, monkeypatch):
    monkeypatch.setattr(datasets, "CORRUPTIONS", CORRUPTIONS)
    result = CliRunner().invoke(cli, ["eval", "--suite", "robustness", "const-net", "--data-dir", str(robustness_root),
                                      *ARGS, "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    cells = {c["column"]: c for c in run["columns"]}
    assert list(cells) == ["IN", "IN-C", "IN-A", "IN-SK", "IN-R"]
    assert {k: c["measured"] for k, c in cells.items()} == {"IN": 50.0, "IN-C": 44.0, "IN-A": 25.0, "IN-SK": 20.0,
                                                           "IN-R": 40.0}
    # 44.0 is the mean of the parts (4 severities at 50 %, 1 at 20 %); pooling their images: 5 / 13 = 38.46
    parts = cells["IN-C"]["result"]["parts"]
    assert sorted((p["corruption"], p["severity"]) for p in parts) == [(c, s) for c in CORRUPTIONS for s in range(1, 6)]
    assert {k: c["reported"] for k, c in cells.items()} == {"IN": 51.0, "IN-C": 45.0, "IN-A": 24.0, "IN-SK": 20.0,
                                                           "IN-R": 41.5}
    assert {k: c["delta"] for k, c in cells.items()} == {"IN": -1.0, "IN-C": -1.0, "IN-A": 1.0, "IN-SK": 0.0,
                                                        "IN-R": -1.5}
    assert "not mCE" in run["note"] and "main.py:472-489" in run["note"]
    lines = [json.loads(line) for line in (zoo_home() / "results.jsonl").read_text().splitlines()]
    assert [(r["model"], r["dataset"], r["metrics"]["top1"] if "metrics" in r else r["top1"]) for r in lines] == [
        ("const-net", "imagenet", 50.0), ("const-net", "imagenet-c", 44.0), ("const-net", "imagenet-a", 25.0),
        ("const-net", "imagenet-sketch", 20.0), ("const-net", "imagenet-r", 40.0)]
    # the same runs as the table a person reads, from the records alone
    shown = CliRunner().invoke(cli, ["results", "--model", "const-net"])
    assert shown.exit_code == 0 and shown.output.count("const-net") == 5


def test_missing_and_broken_columns_are_reported_and_the_rest_run(suite_zoo, tmp_path):
    root = tmp_path / "data"
    _subset(root / "imagenet-a", "imagenet-a", right=1, wrong=1)
    result = CliRunner().invoke(cli, ["eval", "--suite", "robustness", "const-net", "--data-dir", str(root), *ARGS])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for title, dataset in (("IN", "imagenet"), ("IN-C", "imagenet-c"), ("IN-SK", "imagenet-sketch"),
                           ("IN-R", "imagenet-r")):
        assert f"{title}: not found at {root / dataset}\n" in out
    row = next(line for line in out.splitlines() if line.startswith("measured"))
    assert row.split() == ["measured", "-", "-", "50.0", "-", "-"]
    paper = next(line for line in out.splitlines() if line.startswith("paper"))
    assert paper.split() == ["paper", "51.0", "45.0", "24.0", "20.0", "41.5"]
    assert "IN-A: " not in out and "Traceback" not in result.output
    # a folder that is there but not in the dataset's layout: its own line, the others still run, exit 2
    (root / "imagenet" / "cats").mkdir(parents=True)
    (root / "imagenet-sketch").write_text("a file where a folder belongs")
    broken = CliRunner().invoke(cli, ["eval", "--suite", "robustness", "const-net", "--data-dir", str(root), *ARGS])
    assert broken.exit_code == 2, broken.output
    assert "IN: imagenet: expected 1000 class folders named by WordNet id" in broken.stdout
    assert f"IN-SK: imagenet-sketch: {root / 'imagenet-sketch'} is not a directory\n" in broken.stdout
    assert "50.0" in broken.stdout
    assert broken.output.strip().splitlines()[-1] == (
        "Error: --suite robustness: IN, IN-SK could not be evaluated (see above)")
    assert "Traceback" not in broken.output
    lines = (zoo_home() / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["dataset"] for line in lines] == ["imagenet-a", "imagenet-a"]  # one per run that ran


def test_suite_input_errors_are_one_line(suite_zoo, tmp_path, monkeypatch):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    cases = [
        (["--suite", "robustnes", "const-net", "--data-dir", str(tmp_path)],
         "Error: unknown suite 'robustnes'. Did you mean: robustness?"),
        (["--suite", "", "const-net", "--data-dir", str(tmp_path)], "Error: unknown suite ''. Did you mean: robustness?"),
        (["--suite", "robustness", "const-net"],
         "Error: --suite needs --data-dir ROOT (or ZOO_DATA_DIR), with each dataset in ROOT/<dataset>"),
        (["--suite", "robustness", "const-net", "--data-dir", str(tmp_path), "--dataset", "imagenet"],
         "Error: --suite runs several datasets; --dataset cannot be combined with it"),
        (["--suite", "robustness", "const-net", "--data-dir", str(tmp_path), "--corruption", "fog"],
         "Error: --suite robustness runs each dataset as the paper's table does; --corruption cannot be combined "
         "with it"),
        (["--suite", "robustness", "const-det", "--data-dir", str(tmp_path)],
         "Error: --suite robustness: model 'const-det' has task 'object-detection'; the suite evaluates "
         "image-classification models"),
        (["--suite", "robustness", "const-net", "--data-dir", str(tmp_path / "nothing")],
         f"Error: --suite robustness: no dataset could be evaluated under {tmp_path / 'nothing'}"),
        (["const-net"], "Error: Missing option '--dataset' (or --suite NAME). (see zoo eval --help)"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(cli, ["eval", *args, *ARGS])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.strip().splitlines()[-1] == message, (args, result.output)
        assert "Traceback" not in result.output
    assert not (zoo_home() / "results.jsonl").exists()  # nothing ran, nothing recorded


def test_a_results_file_that_cannot_be_written_costs_a_warning_not_the_row(suite_zoo, tmp_path, monkeypatch):
    root = tmp_path / "data"
    _subset(root / "imagenet-a", "imagenet-a", right=1, wrong=1)
    (tmp_path / "home").write_text("a file where the zoo home belongs")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home" / "zoo"))
    result = CliRunner().invoke(cli, ["eval", "--suite", "robustness", "const-net", "--data-dir", str(root), *ARGS])
    assert result.exit_code == 0, result.output
    assert "measured" in result.stdout and "50.0" in result.stdout
    warning = next(line for line in result.stderr.splitlines() if line.startswith("Warning:"))
    assert warning.startswith("Warning: the IN-A result was not recorded: ")
