"""object-detection through the full ``zoo eval`` path, with the colour-box test detector.

Parity (issue #12, must hold): a set labelled with a model's own predictions scores AP = 100 for
that model, a wrong-letterbox control scores clearly less; the saved predictions are the COCO
results file pycocotools' ``loadRes`` reads, and COCOeval run directly on it gives our numbers.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from zoo.eval import evaluation
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog
from zoo.registry.plugins import zoo_entry_points

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def catalog(monkeypatch):
    """The installed plugins plus the test detector's (``detfake_plugin``)."""
    eps = [*zoo_entry_points(), EntryPoint("detfake", "detfake_plugin", "zoo")]
    cat = build_catalog(eps=eps)
    monkeypatch.setattr(lookup, "catalog", functools.cache(lambda: cat))
    return cat


@pytest.fixture
def demo(tmp_path):
    from zoo_detection.demo import make_demo

    return make_demo(tmp_path / "coco", n_images=10, n_classes=3, seed=1)


def run(name: str, dataset: str, **kw):
    """The printed output of ``zoo eval``, with the recorded protocol under ``protocol``."""
    done = evaluation.run(name, dataset, pretrained=False, device="cpu", workers=0, batch_size=4, **kw)
    return {**done.output, "protocol": done.result.protocol}


def cocoeval_direct(ann: Path, results: Path) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(str(results)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [round(100 * float(v), 4) if v >= 0 else None for v in ev.stats[:6]]


def self_labelled(ann: Path, predictions: Path, out: Path) -> Path:
    """The set's annotations replaced by a model's own predictions (score dropped)."""
    doc = json.loads(ann.read_text())
    doc["annotations"] = [{"id": i + 1, "image_id": p["image_id"], "category_id": p["category_id"],
                           "bbox": p["bbox"], "area": p["bbox"][2] * p["bbox"][3], "iscrowd": 0}
                          for i, p in enumerate(json.loads(predictions.read_text()))]
    out.write_text(json.dumps(doc))
    return out


def test_the_colour_detector_finds_the_drawn_objects(catalog, demo, tmp_path):
    preds = tmp_path / "preds.json"
    out = run("detfake-color", "coco", data_dir=str(demo), save_predictions=str(preds))
    assert out["images"] == 10 and out["dataset"] == "coco"
    # JPEG blurs an edge pixel here and there: boxes are right within a pixel, so AP50 is exact
    assert out["map50"] == 100.0 and out["map"] > 90.0, out
    assert [row["name"] for row in out["per_class"]] == ["red", "green", "blue"]
    assert [row["category_id"] for row in out["per_class"]] == [1, 3, 18]
    ann = demo / "annotations" / "instances_val2017.json"
    assert cocoeval_direct(ann, preds) == [out[k] for k in ("map", "map50", "map75", "map_small", "map_medium",
                                                              "map_large")]


def test_self_labelled_set_scores_100_and_a_wrong_letterbox_clearly_less(catalog, demo, tmp_path):
    preds = tmp_path / "preds.json"
    run("detfake-color", "coco", data_dir=str(demo), save_predictions=str(preds))
    labels = self_labelled(demo / "annotations" / "instances_val2017.json", preds, tmp_path / "self.json")
    spec = f"coco-json:{demo / 'val2017'},{labels}"
    right = run("detfake-color", spec)
    assert right["map"] == 100.0 and right["map50"] == 100.0 and right["map75"] == 100.0, right
    assert right["dataset"] == f"coco-json:{(demo / 'val2017').resolve()},{labels.resolve()}"
    wrong = run("detfake-color-small", spec)
    assert wrong["map"] < 75.0, wrong  # a 32-px letterbox: boxes off by a pixel or more (66.4 here)
    assert wrong["protocol"]["letterbox"]["size"] == [32, 32] != right["protocol"]["letterbox"]["size"]


def test_a_threshold_override_changes_the_protocol(catalog, demo):
    default = run("detfake-color", "coco", data_dir=str(demo))
    strict = run("detfake-color", "coco", data_dir=str(demo), conf_thres=0.5)
    assert default["protocol"]["postprocess"]["conf_thres"] == 0.03
    assert strict["protocol"]["postprocess"]["conf_thres"] == 0.5
    assert strict["protocol"] != default["protocol"]


DISTRIBUTED = """
import functools, json, sys
from importlib.metadata import EntryPoint
sys.path.insert(0, sys.argv[1])
from zoo.eval import distributed, evaluation
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog
from zoo.registry.plugins import zoo_entry_points
cat = build_catalog(eps=[*zoo_entry_points(), EntryPoint("detfake", "detfake_plugin", "zoo")])
lookup.catalog = functools.cache(lambda: cat)
done = evaluation.run("detfake-color", "coco", data_dir=sys.argv[2], pretrained=False, device="cpu", workers=0,
                      batch_size=2, threads=1)
if distributed.rank() == 0:
    out = {k: v for k, v in done.output.items() if k != "weights"}
    open(sys.argv[3], "w").write(json.dumps(out))
"""


def test_two_ranks_give_the_single_process_numbers(catalog, demo, tmp_path):
    """torchrun, 2 CPU ranks (gloo): each takes a strided shard, COCOeval runs once on the gathered detections."""
    import os
    import subprocess

    script = tmp_path / "dist.py"
    script.write_text(DISTRIBUTED)
    out = tmp_path / "out.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(script), str(Path(__file__).parent), str(demo), str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = json.loads(out.read_text())
    one = run("detfake-color", "coco", data_dir=str(demo))
    assert two["world_size"] == 2 and two["device"] == "cpu x2"
    assert two["images"] == one["images"] == 10 and two["decoded"] == 10
    assert two["detections"] == one["detections"]
    for key in ("map", "map50", "map75", "map_small", "map_medium", "map_large", "per_class"):
        assert two[key] == one[key], key


def test_an_unreadable_image_is_reported_or_skipped(catalog, demo):
    from zoo.eval.evaluation import BadImages

    bad = demo / "val2017" / "000000001007.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(BadImages, match="1 unreadable image"):
        run("detfake-color", "coco", data_dir=str(demo))
    out = run("detfake-color", "coco", data_dir=str(demo), skip_bad_images=True)
    assert out["images"] == 9 and out["decoded"] == 10 and out["bad_images"] == [str(bad)]


def test_cli_demo_data_eval_json_and_errors(catalog, tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    runner = CliRunner()
    made = runner.invoke(cli, ["demo-data", "--task", "object-detection", str(tmp_path / "d"), "--images", "5",
                               "--classes", "3"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    assert len(list((tmp_path / "d" / "val2017").glob("*.jpg"))) == 5
    out = runner.invoke(cli, ["eval", "detfake-color", "--dataset", "coco", "--data-dir", str(tmp_path / "d"),
                              "--no-pretrained", "--device", "cpu", "--workers", "0", "--json"],
                        catch_exceptions=False)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["map50"] == 100.0 and result["images"] == 5
    assert [row["name"] for row in result["per_class"]] == ["red", "green", "blue"]
    ann = tmp_path / "d" / "annotations" / "instances_val2017.json"
    ann.write_text('{"images": [}')
    failed = runner.invoke(cli, ["eval", "detfake-color", "--dataset", "coco", "--data-dir", str(tmp_path / "d"),
                                 "--no-pretrained", "--device", "cpu"], catch_exceptions=False)
    assert failed.exit_code == 2
    err = failed.stderr.strip()
    assert err.startswith("Error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "instances_val2017.json:1:13: not valid JSON" in err


def test_bench_feeds_the_letterbox_size_and_checks_the_head(catalog):
    from zoo.measure.bench import benchmark

    out = benchmark("detfake-color", device="cpu", batch_size=2, warmup=1, repeats=2, latency=False)
    assert out["model"] == "detfake-color" and out["throughput_img_s"] > 0, out


def test_check_output_names_the_expected_shape(catalog):
    import torch
    from zoo_detection.evaluate import check_output, example_inputs

    card = lookup.get_card("detfake-color")
    assert tuple(example_inputs(card, 2).shape) == (2, 3, 96, 96)
    check_output(card, [torch.zeros(2, 5, 8), None], 2)
    with pytest.raises(ValueError, match=r"output shape \(2, 5, 85\), expected \(2, N, 8\)"):
        check_output(card, torch.zeros(2, 5, 85), 2)
    with pytest.raises(ValueError, match="non-finite"):
        check_output(card, torch.full((2, 5, 8), float("nan")), 2)


def test_limit_scores_only_the_first_images(catalog, demo, tmp_path):
    preds = tmp_path / "p.json"
    out = run("detfake-color", "coco", data_dir=str(demo), limit=3, save_predictions=str(preds))
    assert out["images"] == 3 and out["decoded"] == 3
    assert sorted({p["image_id"] for p in json.loads(preds.read_text())}) == [1000, 1007, 1014]


def test_a_yolo_head_behind_detectron2_resize_maps_boxes_back(catalog, demo):
    """resize instead of letterbox: boxes are scaled back by original / resized size (detector_postprocess)."""
    out = run("detfake-color-resize", "coco", data_dir=str(demo))
    assert out["map50"] == 100.0 and out["map"] > 85.0, out
    assert out["protocol"]["resize"]["shortest_edge"] == 96 and "letterbox" not in out["protocol"]
