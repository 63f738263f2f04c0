"""instance-segmentation through the full ``zoo eval`` path, with the colour test segmenter.

A model that predicts the ground-truth masks scores mask AP 100 through the CLI, beside the card's
reported mask AP; a set labelled with a model's own (coarse) masks scores 100 for that model and a
wrong-resize control clearly less; ``zoo verify`` judges mask AP with its tolerance (0.1).
"""

from __future__ import annotations

import dataclasses
import functools
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
    """The installed plugins plus the test segmenter's (``instfake_plugin``)."""
    cat = build_catalog(eps=[*zoo_entry_points(), EntryPoint("segfake", "instfake_plugin", "zoo")])
    monkeypatch.setattr(lookup, "catalog", functools.cache(lambda: cat))
    return cat


@pytest.fixture
def demo(tmp_path):
    from zoo_detection.demo import make_instance_demo

    return make_instance_demo(tmp_path / "coco", n_images=8, n_classes=3, seed=1)


def run(name: str, dataset: str, **kw):
    done = evaluation.run(name, dataset, pretrained=False, device="cpu", workers=0, batch_size=4, **kw)
    return done


def test_cli_demo_data_and_eval_score_the_drawn_masks_100(catalog, tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    runner = CliRunner()
    data = tmp_path / "d"
    made = runner.invoke(cli, ["demo-data", "--task", "instance-segmentation", str(data), "--images", "6",
                               "--classes", "3"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    assert len(list((data / "val2017").glob("*.png"))) == 6
    preds = tmp_path / "preds.json"
    out = runner.invoke(cli, ["eval", "segfake-color", "--dataset", "coco", "--data-dir", str(data), "--no-pretrained",
                              "--device", "cpu", "--workers", "0", "--json", "--save-predictions", str(preds)],
                        catch_exceptions=False)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["model"] == "segfake-color" and result["images"] == 6
    assert result["mask_map"] == result["mask_map50"] == result["mask_map75"] == 100.0, result
    assert result["reported_mask_map"] == 100.0 and result["delta_mask_map"] == 0.0
    assert result["map"] is None  # a query-masks head gives no boxes (Mask2Former writes none)
    assert [row["name"] for row in result["per_class"]] == ["red", "green", "blue"]
    # the saved predictions: COCO results with RLE masks in original pixels, read by loadRes
    saved = json.loads(preds.read_text())
    first = saved[0]
    assert set(first) == {"image_id", "category_id", "segmentation", "score"}
    assert isinstance(first["segmentation"]["counts"], str)
    doc = json.loads((data / "annotations" / "instances_val2017.json").read_text())
    sizes = {im["id"]: [im["height"], im["width"]] for im in doc["images"]}
    assert all(p["segmentation"]["size"] == sizes[p["image_id"]] for p in saved)
    table = runner.invoke(cli, ["eval", "segfake-color", "--dataset", "coco", "--data-dir", str(data),
                                "--no-pretrained", "--device", "cpu", "--workers", "0"], catch_exceptions=False)
    assert table.exit_code == 0 and "mask AP" in table.output, table.output
    # an object-detection model on the same data is its own task; a set without masks is one line
    for ann in doc["annotations"]:
        del ann["segmentation"]
    (data / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    failed = runner.invoke(cli, ["eval", "segfake-color", "--dataset", "coco", "--data-dir", str(data),
                                 "--no-pretrained", "--device", "cpu"], catch_exceptions=False)
    assert failed.exit_code == 2
    err = failed.stderr.strip()
    assert len(err.splitlines()) == 1 and "annotations[0].segmentation: missing" in err, err


def test_self_labelled_set_scores_100_and_a_wrong_resize_clearly_less(catalog, demo, tmp_path):
    from pycocotools import mask as mask_utils

    preds = tmp_path / "preds.json"
    coarse = run("segfake-coarse", "coco", data_dir=str(demo), save_predictions=str(preds)).output
    assert 90 < coarse["mask_map"] < 100, coarse  # quarter-resolution masks: right, not to the pixel
    doc = json.loads((demo / "annotations" / "instances_val2017.json").read_text())
    own = [p for p in json.loads(preds.read_text()) if p["score"] > 0.5]
    doc["annotations"] = [{"id": i + 1, "image_id": p["image_id"], "category_id": p["category_id"],
                           "segmentation": p["segmentation"], "area": float(mask_utils.area(p["segmentation"])),
                           "bbox": [float(v) for v in mask_utils.toBbox(p["segmentation"])], "iscrowd": 0}
                          for i, p in enumerate(own)]
    labels = tmp_path / "self.json"
    labels.write_text(json.dumps(doc))
    spec = f"coco-json:{demo / 'val2017'},{labels}"
    right = run("segfake-coarse", spec)
    assert right.output["mask_map"] == 100.0, right.output
    wrong = run("segfake-coarse-small", spec)
    assert wrong.output["mask_map"] < 75.0, wrong.output  # half-size input: masks off at the edges
    assert wrong.result.protocol["resize"]["shortest_edge"] == 24 != right.result.protocol["resize"]["shortest_edge"]


def test_verify_judges_mask_ap_with_its_tolerance(catalog, demo):
    """A run with the card's own weights (provenance set as a pretrained run records it) is evidence:
    mask AP 100.0 against the card's 100.0 holds; against 99.8 (off by more than 0.1) it does not."""
    from zoo.claims.verify import Runs, check_metrics

    done = run("segfake-color", "coco", data_dir=str(demo))
    assert done.result.metrics["mask_map"] == 100.0 and done.result.task == "instance-segmentation"
    official = dataclasses.replace(done.result, pretrained=True, weights={"origin": "official", "sha256": "ab" * 32})
    runs = Runs.of([official, dataclasses.replace(official, model="segfake-color-off")])
    held = check_metrics(lookup.get_card("segfake-color"), runs)
    assert [(c.claim, c.status, c.measured, c.reported) for c in held] == [("coco.mask_map", "holds", 100.0, 100.0)]
    off = check_metrics(lookup.get_card("segfake-color-off"), runs)
    assert [(c.claim, c.status) for c in off] == [("coco.mask_map", "off")]
    random_weights = check_metrics(lookup.get_card("segfake-color"), Runs.of([done.result]))
    assert random_weights[0].status == "not judged"


def test_bench_times_the_postprocessing_of_both_heads(catalog, monkeypatch):
    """``Task.postprocess`` of both tasks: zoo bench reports ``postprocess_ms`` apart from the forward pass."""
    import detfake_plugin

    from zoo.measure.bench import benchmark

    cat = build_catalog(eps=[*zoo_entry_points(), EntryPoint("segfake", "instfake_plugin", "zoo"),
                             EntryPoint("detfake", "detfake_plugin", "zoo")])
    monkeypatch.setattr(lookup, "catalog", functools.cache(lambda: cat))
    assert detfake_plugin.CARDS
    for name in ("segfake-color", "detfake-color"):
        out = benchmark(name, device="cpu", batch_size=1, warmup=1, repeats=2, latency=True, latency_repeats=2)
        assert out["postprocess_ms"]["median"] > 0, out
        assert out["latency_ms"]["median"] > 0


def test_an_unreadable_image_is_reported_or_skipped(catalog, demo):
    from zoo.eval.evaluation import BadImages

    bad = sorted((demo / "val2017").glob("*.png"))[1]
    bad.write_bytes(b"not a png")
    with pytest.raises(BadImages, match="1 unreadable image"):
        run("segfake-color", "coco", data_dir=str(demo))
    out = run("segfake-color", "coco", data_dir=str(demo), skip_bad_images=True).output
    assert out["images"] == 7 and out["decoded"] == 8 and out["bad_images"] == [str(bad)]
    assert out["mask_map"] == 100.0  # the other images' masks, scored on those images only
