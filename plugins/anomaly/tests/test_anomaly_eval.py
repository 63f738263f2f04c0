"""anomaly-detection through ``zoo demo-data``, ``zoo eval``, ``zoo verify`` and ``zoo anomaly``, with the toy
models of ``anomtoy_plugin`` (the colour-distance maps find the demo's bright defects)."""

from __future__ import annotations

import functools
import json
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.eval import evaluation
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog
from zoo.registry.plugins import zoo_entry_points

sys.path.insert(0, str(Path(__file__).parent))
from anomtoy_plugin import GAIN_SHA256  # noqa: E402

METRICS = ("image_auroc", "image_ap", "pixel_auroc", "aupro")


@functools.cache
def _catalog():  # noqa: ANN202 - built once for the module: the cards do not change between tests
    return build_catalog(eps=[*zoo_entry_points(), EntryPoint("anomtoy", "anomtoy_plugin", "zoo")])


@pytest.fixture
def catalog(monkeypatch):
    """The installed plugins plus the toy models' (``anomtoy_plugin``)."""
    monkeypatch.setattr(lookup, "catalog", _catalog)
    return _catalog()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from zoo_anomaly.demo import make_demo

    return make_demo(tmp_path_factory.mktemp("anomaly") / "demo", n_images=6, n_train=3, size=48)


def zoo(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def one_line_error(result, code: int, *needles: str) -> str:
    err = result.stderr.strip()
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("Error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def run(name: str, dataset: str, **kw):
    done = evaluation.run(name, dataset, pretrained=False, device="cpu", workers=0, batch_size=4, **kw)
    return {**done.output, "recorded_protocol": done.result.protocol}


def test_cli_demo_eval_scores_maps_results_and_verify(catalog, tmp_path):
    """demo-data -> eval on anomaly-folder (metrics vs sklearn on the saved scores, maps, results.jsonl) ->
    eval on mvtec-ad with the card's weights -> verify judges the claims (one holds, one is off)."""
    from PIL import Image
    from safetensors.torch import save_file
    from sklearn.metrics import average_precision_score, roc_auc_score

    made = zoo("demo-data", "--task", "anomaly-detection", str(tmp_path / "d"), "--images", "6")
    assert made.exit_code == 0, made.output
    data = tmp_path / "d"
    assert sorted(p.name for p in data.iterdir()) == ["checker", "stripes"]
    scores, maps = tmp_path / "scores.jsonl", tmp_path / "maps"
    out = zoo("eval", "anomtoy-zs", "--dataset", f"anomaly-folder:{data}", "--no-pretrained", "--device", "cpu",
              "--workers", "0", "--batch-size", "4", "--save-scores", str(scores), "--save-maps", str(maps), "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["images"] == 12 and result["categories"] == ["checker", "stripes"]
    assert result["protocol"] == "zero-shot" and result["settings"]["protocol"] == "zero-shot" and result["shots"] is None
    lines = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(lines) == 12 and set(lines[0]) == {"category", "file", "label", "score"}
    for cat in ("checker", "stripes"):
        rows = [r for r in lines if r["category"] == cat]
        labels, values = [r["label"] for r in rows], [r["score"] for r in rows]
        per = result["per_category"][cat]
        assert per["image_auroc"] == pytest.approx(100 * roc_auc_score(labels, values), abs=1e-9)
        assert per["image_ap"] == pytest.approx(100 * average_precision_score(labels, values), abs=1e-9)
        assert per["images"] == 6 and per["anomalous"] == 3
    for m in METRICS:  # the papers' figure: the plain mean over categories
        assert result[m] == pytest.approx((result["per_category"]["checker"][m] + result["per_category"]["stripes"][m]) / 2)
    assert result["image_auroc"] == 100.0 and result["pixel_auroc"] > 95 and result["aupro"] > 90, result
    pngs = sorted(p.relative_to(maps).as_posix() for p in maps.rglob("*.png"))
    assert pngs == sorted(r["file"] for r in lines)  # one overlay per test image, named as in the scores file
    with Image.open(maps / lines[0]["file"]) as im:
        assert im.size == (96, 48) and im.mode == "RGB"  # image | heat map at metric_size 48x48

    from zoo.records import results

    recorded = [json.loads(line) for line in results.results_path().read_text().splitlines()]
    [rec] = recorded
    assert rec["task"] == "anomaly-detection" and rec["dataset"] == f"anomaly-folder:{data.resolve()}"
    assert set(rec["metrics"]) == set(METRICS) and rec["metrics"]["image_auroc"] == 100.0
    assert rec["protocol"]["categories"] == "all" and rec["protocol"]["preprocess"]["resize"] == [48, 48]
    assert rec["details"]["per_category"]["stripes"]["image_auroc"] == 100.0

    weights = tmp_path / "gain.safetensors"
    import torch

    save_file({"gain": torch.ones(1)}, str(weights))
    import hashlib

    assert hashlib.sha256(weights.read_bytes()).hexdigest() == GAIN_SHA256  # the card's weights
    judged = zoo("eval", "anomtoy-zs", "--dataset", "mvtec-ad", "--data-dir", str(data), "--checkpoint", str(weights),
                 "--device", "cpu", "--workers", "0", "--json")
    assert judged.exit_code == 0, judged.output
    assert json.loads(judged.stdout)["reported_image_auroc"] == 100.0
    report = json.loads(zoo("verify", "anomtoy-zs", "--json").stdout)[0]
    claims = {c["claim"]: c for c in report["claims"]}
    assert claims["mvtec-ad.image_auroc"]["status"] == "holds", claims
    assert claims["mvtec-ad.per_category.stripes.image_auroc"]["status"] == "holds", claims
    assert claims["mvtec-ad.pixel_auroc"]["status"] == "off", claims  # the fixture claims 50.0


def test_few_shot_fits_on_the_seeded_draw_and_records_it(catalog, demo):
    from zoo_anomaly.data import draw_reference, mvtec_ad

    out = run("anomtoy-fs", "mvtec-ad", data_dir=str(demo))  # the card's claim protocol: 2-shot, seed 5
    assert out["recorded_protocol"]["protocol"] == "few-shot" and (out["shots"], out["seed"]) == (2, 5)
    assert out["recorded_protocol"]["pro_definition"] == "anomalyclip"  # the card's pro_definition field
    ds = mvtec_ad(demo)
    expected = {c.name: [Path(p).relative_to(demo).as_posix() for p in draw_reference(c, 2, 5)] for c in ds.categories}
    assert out["reference_images"] == expected
    assert out["reported_image_auroc"] == 100.0 and out["image_auroc"] == 100.0
    preds = demo.parent / "preds.jsonl"
    other = run("anomtoy-fs", "mvtec-ad", data_dir=str(demo), shots=1, seed=3, category="stripes",
                save_predictions=str(preds))
    assert [json.loads(line)["file"] for line in preds.read_text().splitlines()] == [
        s.path[len(str(demo)) + 1:] for s in ds.categories[1].test]  # --save-predictions: the scores file
    assert other["recorded_protocol"]["shots"] == 1 and other["recorded_protocol"]["categories"] == ["stripes"]
    assert other["reported_image_auroc"] is None  # another protocol: not set beside the paper's figure
    assert list(other["per_category"]) == ["stripes"] and len(other["reference_images"]["stripes"]) == 1


def test_a_limit_without_defects_leaves_the_image_metrics_undefined(catalog, demo):
    out = run("anomtoy-zs", "mvtec-ad", data_dir=str(demo), limit=2)  # checker's two blob images only
    assert out["images"] == 2 and out["categories"] == ["checker"]
    assert out["image_auroc"] is None and out["image_ap"] is None and out["pixel_auroc"] > 90
    assert out["undefined"] == {"image_auroc": ["checker"], "image_ap": ["checker"]}


def test_bad_runs_are_one_line(catalog, demo, tmp_path):
    common = ["--no-pretrained", "--device", "cpu", "--workers", "0"]
    one_line_error(zoo("eval", "anomtoy-zs", "--dataset", "visa", "--data-dir", str(tmp_path), *common), 2,
                   "trained on visa: evaluating it there is not zero-shot")
    one_line_error(zoo("eval", "anomtoy-fs", "--dataset", "mvtec-ad", "--data-dir", str(demo), "--shots", "9", *common),
                   2, "'checker': 9-shot needs 9 normal training images, it has 3")
    one_line_error(zoo("eval", "anomtoy-zs", "--dataset", "mvtec-ad", "--data-dir", str(demo), "--shots", "2", *common),
                   2, "--shots 2: only with --protocol few-shot")
    one_line_error(zoo("eval", "anomtoy-zs", "--dataset", "mvtec-ad", "--data-dir", str(demo), "--category", "chekcer",
                       *common), 2, "no category 'chekcer'", "Did you mean: checker?")
    one_line_error(zoo("eval", "anomtoy-zs", "--dataset", f"anomaly-folder:{tmp_path / 'nope'}", *common), 2,
                   "is not a directory")
    one_line_error(zoo("eval", "anomtoy-bad", "--dataset", "mvtec-ad", "--data-dir", str(demo), *common), 1,
                   "plugin 'anomtoy'", "output is Tensor, expected a dict")
    (tmp_path / "file").write_text("x")
    one_line_error(zoo("eval", "anomtoy-zs", "--dataset", "mvtec-ad", "--data-dir", str(demo), "--save-maps",
                       str(tmp_path / "file"), *common), 2, "--save-maps", "exists and is not a directory")
    one_line_error(zoo("eval", "anomtoy-zs", "--dataset", "mvtec-ad", "--data-dir", str(demo), "--save-scores",
                       str(tmp_path / "no" / "s.jsonl"), *common), 2, "--save-scores", "does not exist")
    assert not (tmp_path / "no").exists()


def test_an_unreadable_test_image_is_reported_or_skipped(catalog, demo, tmp_path):
    import shutil

    from zoo.eval.evaluation import BadImages

    copy = tmp_path / "copy"
    shutil.copytree(demo / "stripes", copy / "stripes")
    bad = copy / "stripes" / "test" / "good" / "000.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(BadImages, match="1 unreadable image"):
        run("anomtoy-zs", f"anomaly-folder:{copy}")
    out = run("anomtoy-zs", f"anomaly-folder:{copy}", skip_bad_images=True)
    assert out["images"] == 5 and out["decoded"] == 6 and out["bad_images"] == [str(bad)]


def test_two_ranks_split_categories_and_give_the_single_process_numbers(catalog, demo, monkeypatch):
    """``--nproc 2``: each rank evaluates whole categories; gathering their rows gives exactly one process's
    numbers (the gather is simulated: rank 1's rows are handed to rank 0's all_gather)."""
    from zoo_anomaly.data import mvtec_ad
    from zoo_anomaly.evaluate import evaluate
    from zoo_anomaly.task import AnomalyOptions

    from zoo.eval import distributed

    card = lookup.get_card("anomtoy-zs")
    from anomtoy_plugin import zero_shot

    from zoo.eval.runtime import Runtime

    model = zero_shot()

    runtime = Runtime(device="cpu", workers=0, batch_size=4)
    one = evaluate(model, card, mvtec_ad(demo), AnomalyOptions(), runtime)
    shards: dict[int, list] = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "all_max", lambda v: v)
    for rank in (1, 0):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setattr(distributed, "all_gather",
                            lambda rows, rank=rank: (shards.setdefault(rank, rows), shards.get(0, []) + shards.get(1, []))[1])
        two = evaluate(model, card, mvtec_ad(demo), AnomalyOptions(), runtime)
    assert [r["category"] for r in shards[0]] == ["checker"] and [r["category"] for r in shards[1]] == ["stripes"]
    assert two["world_size"] == 2 and two["categories"] == one["categories"] == ["checker", "stripes"]
    for key in (*METRICS, "per_category", "images"):
        assert two[key] == one[key], key


def test_zoo_anomaly_scores_own_images_zero_shot_and_few_shot(catalog, demo, tmp_path):
    good = demo / "stripes" / "test" / "good" / "000.png"
    blob = demo / "stripes" / "test" / "blob" / "000.png"
    shown = zoo("anomaly", "anomtoy-zs", str(good), str(blob), "--out", str(tmp_path / "o"), "--no-pretrained",
                "--device", "cpu", "--json")
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [Path(r["image"]).name for r in rows] == ["000.png", "000.png"]
    assert rows[1]["score"] > rows[0]["score"] + 0.3  # the defect scores clearly higher
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["000-2.png", "000.png"]  # no overwrite
    fs = zoo("anomaly", "anomtoy-fs", str(good), str(blob), "--reference", str(demo / "stripes" / "train" / "good"),
             "--shots", "2", "--no-pretrained", "--device", "cpu")
    assert fs.exit_code == 0, fs.output
    assert "000.png" in fs.stdout and "score" in fs.stdout.splitlines()[0]
    one_line_error(zoo("anomaly", "anomtoy-fs", str(good), "--no-pretrained", "--device", "cpu"), 2,
                   "model 'anomtoy-fs' is few-shot: give --reference DIR")
    one_line_error(zoo("anomaly", "anomtoy-zs", str(tmp_path / "missing.png"), "--no-pretrained"), 2,
                   "IMAGE", "missing.png: no such file or folder")
    one_line_error(zoo("anomaly", "anomtoy-fs", str(good), "--reference", str(demo / "stripes" / "train" / "good"),
                       "--shots", "7", "--no-pretrained"), 2, "--shots 7", "has 3 image(s)")
    (tmp_path / "empty").mkdir()
    one_line_error(zoo("anomaly", "anomtoy-fs", str(good), "--reference", str(tmp_path / "empty"), "--no-pretrained"),
                   2, "--reference", "no image")
    (tmp_path / "afile").write_text("x")
    one_line_error(zoo("anomaly", "anomtoy-zs", str(good), "--out", str(tmp_path / "afile"), "--no-pretrained"), 2,
                   "--out", "exists and is not a directory")
    assert "Score IMAGE files" in zoo("anomaly", "--help").output


def test_bench_inputs_need_no_protocol_and_check_output_names_the_contract(catalog):
    import torch
    from zoo_anomaly.evaluate import check_output, example_inputs

    card = lookup.get_card("anomtoy-fs")  # few-shot, no shots given: bench and the kit still get a batch
    assert tuple(example_inputs(card, 2).shape) == (2, 3, 48, 48)
    check_output(card, {"score": torch.zeros(2), "map": torch.zeros(2, 5, 5)}, 2)
    with pytest.raises(ValueError, match=r"output\['score'\] is shape \(2, 1\), expected \(2,\)"):
        check_output(card, {"score": torch.zeros(2, 1), "map": torch.zeros(2, 5, 5)}, 2)
    with pytest.raises(ValueError, match=r"output\['map'\] is shape \(2, 1, 5, 5\), expected \(2, h, w\)"):
        check_output(card, {"score": torch.zeros(2), "map": torch.zeros(2, 1, 5, 5)}, 2)
    with pytest.raises(ValueError, match="non-finite"):
        check_output(card, {"score": torch.tensor([0.0, float("nan")]), "map": torch.zeros(2, 5, 5)}, 2)


def test_an_interrupted_scores_file_leaves_nothing_behind(tmp_path):
    from zoo_anomaly.evaluate import write_predictions

    target = tmp_path / "scores.jsonl"
    with pytest.raises(TypeError):
        write_predictions([{"category": "a", "score": 0.5}, {"category": "b", "score": object()}], target)
    assert list(tmp_path.iterdir()) == []  # neither a half file nor the temporary one
    write_predictions([{"category": "a", "file": "a/x.png", "label": 1, "score": 0.5}], target)
    assert json.loads(target.read_text()) == {"category": "a", "file": "a/x.png", "label": 1, "score": 0.5}


def test_shifted_masks_are_a_control_the_pixel_metrics_fail(catalog, demo, tmp_path):
    """The pixel metrics cannot pass by accident: the same maps against masks rolled by half the image
    score near chance, while the image metrics (no masks involved) do not move."""
    import shutil

    import numpy as np
    from PIL import Image

    shifted = tmp_path / "shifted"
    shutil.copytree(demo, shifted)
    for mask in shifted.rglob("*_mask.png"):
        pixels = np.asarray(Image.open(mask))
        Image.fromarray(np.roll(pixels, (pixels.shape[0] // 2, pixels.shape[1] // 2), axis=(0, 1))).save(mask)
    right = run("anomtoy-zs", "mvtec-ad", data_dir=str(demo))
    wrong = run("anomtoy-zs", "mvtec-ad", data_dir=str(shifted))
    assert right["pixel_auroc"] > 95 and right["aupro"] > 90
    assert 30 < wrong["pixel_auroc"] < 70 and wrong["aupro"] < 40, wrong
    assert wrong["image_auroc"] == right["image_auroc"] == 100.0


def test_bench_and_the_kit_fit_a_few_shot_model_first(catalog):
    """Task.prepare: a few-shot model raises when scored before fit(); bench, MACs and the kit fit it
    on generated references first (untimed), a zero-shot one is left as built."""
    from zoo_anomaly.evaluate import PREPARE_SHOTS

    from zoo.devkit import kit
    from zoo.measure import bench
    from zoo.models import build

    model = build.create_model("anomtoy-fs")
    assert bench.prepare(lookup.get_card("anomtoy-fs"), model) is model and model.fits == 1
    assert tuple(model.reference.shape) == (3,)
    zero_shot = build.create_model("anomtoy-zs")
    assert bench.prepare(lookup.get_card("anomtoy-zs"), zero_shot) is zero_shot and zero_shot.fits == 0
    result = bench.benchmark("anomtoy-fs", device="cpu", batch_size=2, warmup=0, repeats=1, latency_repeats=1)
    assert result["throughput_img_s"] > 0 and result["macs"] == 0  # counted (no conv): the forward ran after a fit
    report = kit.check_plugin("anomtoy")
    outputs = {f.subject: f for f in report.findings if f.check == "output"}
    assert outputs["anomtoy-fs"].ok, outputs["anomtoy-fs"]
    assert PREPARE_SHOTS >= 1
