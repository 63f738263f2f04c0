"""semantic-segmentation through the full CLI, with the colour test segmenter (``segfake_plugin``).

Issue #14, must hold: a set labelled with a model's own single-scale predictions (its
``--save-masks`` files, read back as ``seg-folder``) scores mIoU 100 for that model and clearly less
under a wrong normalisation; the JSON result has the issue's fields; ``--ms`` is recorded as its own
protocol; two torchrun ranks give the one-process numbers; ``zoo segment`` writes what eval writes.
"""

from __future__ import annotations

import functools
import json
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog
from zoo.registry.plugins import zoo_entry_points

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def catalog(monkeypatch):
    """The installed plugins plus the test segmenter's."""
    cat = build_catalog(eps=[*zoo_entry_points(), EntryPoint("segfake", "segfake_plugin", "zoo")])
    monkeypatch.setattr(lookup, "catalog", functools.cache(lambda: cat))
    return cat


def zoo(*args: str) -> dict | str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def failing(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("Error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


EVAL = ("--no-pretrained", "--device", "cpu", "--workers", "0", "--threads", "1", "--json")
FIELDS = ("model", "dataset", "images", "miou", "macc", "aacc", "protocol", "reported_miou", "delta_miou",
          "throughput_img_s")


def test_eval_save_masks_self_labelled_ms_results_verify_and_segment(catalog, tmp_path):
    from PIL import Image

    demo = tmp_path / "ade"
    zoo("demo-data", "--task", "semantic-segmentation", str(demo), "--images", "4", "--classes", "3")
    out = tmp_path / "out"
    ss = zoo("eval", "segfake-colour", "--dataset", "ade20k", "--data-dir", str(demo), "--save-masks", str(out), *EVAL)
    assert all(key in ss for key in FIELDS), sorted(ss)
    assert ss["model"] == "segfake-colour" and ss["dataset"] == "ade20k" and ss["images"] == 4
    assert ss["protocol"] == "ss" and ss["miou"] == 100.0 and ss["aacc"] == 100.0  # the colours are far apart
    assert ss["reported_miou"] == 90.0 and ss["delta_miou"] == 10.0
    assert [row["name"] for row in ss["per_class"][:3]] == ["wall", "building", "sky"]
    assert ss["per_class"][3]["iou"] is None  # no such region in the demo: out of the mean

    # --save-masks: the dataset's encoding (class k written k + 1), the overlay, a class list to read it back
    stems = sorted(p.stem for p in (demo / "images" / "validation").glob("*.jpg"))
    assert sorted(p.stem for p in (out / "masks").glob("*.png")) == stems
    assert sorted(p.stem for p in (out / "overlays").glob("*.png")) == stems
    truth = np.array(Image.open(demo / "annotations" / "validation" / f"{stems[0]}.png"))
    saved = np.array(Image.open(out / "masks" / f"{stems[0]}.png"))
    assert saved.dtype == np.uint8 and saved.shape == truth.shape
    assert np.array_equal(saved[truth > 0], truth[truth > 0])  # regions: the same label values
    assert set(np.unique(saved)) <= {1, 2, 3} and (truth == 0).any()  # "other" pixels got a class too
    overlay = Image.open(out / "overlays" / f"{stems[0]}.png")
    assert overlay.mode == "RGB" and overlay.size == (truth.shape[1], truth.shape[0])

    # self-labelled: the saved masks as ground truth (background included now) score 100; the BGR control does not
    spec = f"seg-folder:{demo / 'images' / 'validation'},{out / 'masks'}"
    self_labelled = zoo("eval", "segfake-colour", "--dataset", spec, *EVAL)
    assert self_labelled["miou"] == 100.0 and self_labelled["aacc"] == 100.0
    assert self_labelled["labelled_pixels"] > ss["labelled_pixels"]  # every pixel is labelled now
    assert self_labelled["reported_miou"] is None  # not the card's dataset: nothing to set beside
    control = zoo("eval", "segfake-colour-bgr", "--dataset", spec, *EVAL)
    assert control["miou"] < 60.0, control["miou"]  # red and blue swapped: about a third right

    ms = zoo("eval", "segfake-colour", "--dataset", "ade20k", "--data-dir", str(demo), "--ms", "--limit", "2", *EVAL)
    assert ms["protocol"] == "ms" and ms["miou"] > 95.0
    # the card's multi-scale figure (reported.ade20k.ms_flip.miou, Task.claim_options) is set beside an --ms run
    assert ms["reported_miou"] == 92.0 and ms["delta_miou"] == round(ms["miou"] - 92.0, 4)
    assert ms["ms_flip"] == {"miou": ms["miou"], "macc": ms["macc"], "aacc": ms["aacc"]} and "ms_flip" not in ss

    records = zoo("results", "--model", "segfake-colour", "--json")
    assert [(r["protocol"], r["miou"]) for r in records if r["dataset"] == "ade20k"] == [("ss", 100.0), ("ms", ms["miou"])]
    from zoo.paths import zoo_home

    lines = [json.loads(line) for line in (zoo_home() / "results.jsonl").read_text().splitlines()]
    protocols = [r["protocol"] for r in lines if r["model"] == "segfake-colour" and r["dataset"] == "ade20k"]
    assert [p["protocol"] for p in protocols] == ["ss", "ms"]  # the record's protocol: what the run depended on
    assert protocols[1]["ms"] == {"ratios": [0.75, 1.0, 1.25], "flip": True} and "ms" not in protocols[0]
    assert protocols[0]["test"]["mode"] == "slide" and protocols[0]["test"]["crop_size"] == [48, 48]
    verified = zoo("verify", "segfake-colour", "--json")
    claim = next(c for c in verified[0]["claims"] if c["claim"] == "ade20k.miou")
    assert claim["status"] == "not judged" and claim["note"] == "runs exist only with random weights (--no-pretrained)"
    from zoo.claims.verify import claim_protocol, protocol_problem

    card_protocol = claim_protocol(lookup.get_card("segfake-colour"), "ade20k")
    assert protocol_problem(protocols[0], card_protocol) is None  # the ss run could judge the card's figure
    assert protocol_problem(protocols[1], card_protocol) == "protocol ms, the claim's is ss"  # the ms run never
    ms_protocol = claim_protocol(lookup.get_card("segfake-colour"), "ade20k", table="ms_flip")
    assert protocol_problem(protocols[1], ms_protocol) is None  # ... but it can judge the ms_flip figure
    ms_claim = next(c for c in verified[0]["claims"] if c["claim"] == "ade20k.ms_flip.miou")
    assert ms_claim["status"] == "not judged" and "random weights" in ms_claim["note"]  # found; weights are random

    # zoo segment: the single-scale protocol, the same files as --save-masks
    seg_out = tmp_path / "seg"
    image = demo / "images" / "validation" / f"{stems[0]}.jpg"
    written = zoo("segment", "segfake-colour", str(image), "--out", str(seg_out), "--no-pretrained", "--device", "cpu",
                  "--json")
    assert written[0]["mask"] == str(seg_out / "masks" / f"{stems[0]}.png") and written[0]["classes"] == [0, 1, 2]
    assert np.array_equal(np.array(Image.open(written[0]["mask"])), saved)
    assert Path(written[0]["overlay"]).is_file()
    assert json.loads((seg_out / "masks" / "classes.json").read_text())["classes"][:2] == ["wall", "building"]


def test_bad_inputs_are_one_line_exit_2(catalog, tmp_path):
    demo = tmp_path / "ade"
    zoo("demo-data", "--task", "semantic-segmentation", str(demo), "--images", "2")
    (tmp_path / "file").write_text("x")
    err = failing("eval", "segfake-colour", "--dataset", "ade20k", "--data-dir", str(demo), "--save-masks",
                  str(tmp_path / "file"), *EVAL)
    assert "--save-masks" in err and "is not a directory" in err
    err = failing("eval", "segfake-colour-3", "--dataset", "ade20k", "--data-dir", str(demo), *EVAL)
    assert err == "Error: ade20k has 150 classes, but model 'segfake-colour-3' predicts 3 (num_classes on its card)"
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "masks").write_text("a file where the masks folder goes")
    err = failing("eval", "segfake-colour", "--dataset", "ade20k", "--data-dir", str(demo), "--save-masks",
                  str(blocked), *EVAL)
    assert err.startswith(f"Error: --save-masks {blocked}: cannot write") and "exists" in err, err
    err = failing("eval", "segfake-colour", "--dataset", f"seg-folder:{demo}", *EVAL)
    assert "seg-folder: expected IMAGES,MASKS" in err
    err = failing("segment", "segfake-colour", str(tmp_path / "nope.jpg"), "--no-pretrained")
    assert err == f"Error: {tmp_path / 'nope.jpg'}: no such image file"
    err = failing("segment", "segfake-colour", str(tmp_path / "file"), "--no-pretrained", "--out", str(tmp_path))
    assert err == f"Error: {tmp_path / 'file'}: not an image OpenCV can read"
    assert not (tmp_path / "masks").exists()  # nothing written before every input is checked
    (tmp_path / "two").mkdir()
    first = demo / "images" / "validation" / "ADE_val_00000001.jpg"
    (tmp_path / "two" / "ADE_val_00000001.png").write_bytes(first.read_bytes())
    err = failing("segment", "segfake-colour", str(first), str(tmp_path / "two" / "ADE_val_00000001.png"),
                  "--no-pretrained", "--out", str(tmp_path / "o"))
    assert "same file name stem as" in err and not (tmp_path / "o").exists()
    assert failing("segment", "segfake-colour", "--no-pretrained") == "Error: zoo segment: give at least one IMAGE"
    err = failing("segment", "segfake-colour", str(demo / "images" / "validation" / "ADE_val_00000001.jpg"),
                  "--out", str(tmp_path / "file"), "--no-pretrained")
    assert "'--out'" in err and "is a file" in err


RANK1 = """
import functools, sys
from importlib.metadata import EntryPoint
sys.path.insert(0, sys.argv[1])
from zoo.eval import evaluation
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog
from zoo.registry.plugins import zoo_entry_points
cat = build_catalog(eps=[*zoo_entry_points(), EntryPoint("segfake", "segfake_plugin", "zoo")])
lookup.catalog = functools.cache(lambda: cat)
evaluation.run("segfake-colour-bgr", "ade20k", data_dir=sys.argv[2], pretrained=False, device="cpu", workers=0,
               threads=1)
"""


def test_two_ranks_give_the_single_process_numbers(catalog, tmp_path, monkeypatch):
    """2 CPU ranks (gloo) with the environment torchrun gives them: rank 0 is this process (one
    torch start-up fewer), rank 1 a child. Strided shards, per-class areas summed across ranks."""
    import datetime
    import os
    import socket
    import subprocess

    import torch.distributed as dist
    from zoo_segmentation.demo import make_demo

    from zoo.eval import evaluation

    demo = make_demo(tmp_path / "ade", n_images=5, n_classes=3, seed=2)
    script = tmp_path / "rank1.py"
    script.write_text(RANK1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    common = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    child = subprocess.Popen([sys.executable, str(script), str(Path(__file__).parent), str(demo)],
                             env={**os.environ, **common, "RANK": "1", "LOCAL_RANK": "1", "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with monkeypatch.context() as env:
            for key, value in {**common, "RANK": "0", "LOCAL_RANK": "0"}.items():
                env.setenv(key, value)
            # joined here with a timeout, so a child that dies early fails the test instead of hanging it
            dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
            try:
                two = evaluation.run("segfake-colour-bgr", "ade20k", data_dir=str(demo), pretrained=False,
                                     device="cpu", workers=0, threads=1).output
            finally:
                dist.destroy_process_group()
    except BaseException:
        child.kill()  # it would wait for this rank forever
        raise
    finally:
        _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err[-2000:]
    one = evaluation.run("segfake-colour-bgr", "ade20k", data_dir=str(demo), pretrained=False, device="cpu",
                         workers=0, threads=1).output
    assert two["world_size"] == 2 and two["device"] == "cpu x2" and two["decoded"] == 5
    assert one["world_size"] == 1 and 0 < one["miou"] < 100  # errors in it: a lost or doubled shard would show
    for key in ("images", "miou", "macc", "aacc", "per_class", "labelled_pixels"):
        assert two[key] == one[key], key


def test_bench_times_the_forward_and_the_argmax_apart(catalog):
    from zoo.measure.bench import benchmark

    out = benchmark("segfake-colour", device="cpu", batch_size=2, warmup=1, repeats=2, latency_repeats=2)
    assert out["model"] == "segfake-colour" and out["throughput_img_s"] > 0, out
    assert out["postprocess_ms"] is not None and out["postprocess_ms"]["median"] > 0, out


def test_the_plugin_and_its_task_spec_import_nothing_heavy():
    import subprocess

    code = ("import sys, zoo_segmentation, zoo_segmentation.task, zoo_segmentation.datasets; "
            "heavy = sorted(m for m in ('torch', 'cv2', 'numpy', 'PIL') if m in sys.modules); print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
