"""`zoo eval` end to end: parity with timm's pipeline, bad input, bad images, results, 2-process gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.records import results

sys.path.insert(0, str(Path(__file__).parent))
from imagegen import CARDS, PLUGIN_ENTRY_POINTS, PLUGIN_FILES, make_demo_folder, write_bad_image  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """2 shared cores: intra-op threads fighting the neighbours' processes cost 40x here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def evalt(install_plugin):
    """The eval-test plugin installed (cards built by timm test architectures)."""
    return install_plugin("zoo-thirdparty-evalt", PLUGIN_ENTRY_POINTS, PLUGIN_FILES)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo_folder(tmp_path_factory.mktemp("demo") / "images", n_images=21, n_classes=5, seed=1)


def _timm_model(card: str, seed: int):
    import timm

    spec = CARDS[card]
    torch.manual_seed(seed)
    model = timm.create_model(spec["builder"], pretrained=False).eval()
    pre = spec["preprocess"]
    presets = {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), "inception": ((0.5,) * 3, (0.5,) * 3),
               "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))}
    model.pretrained_cfg = dict(model.pretrained_cfg, input_size=tuple(spec["input_size"]),
                                interpolation=pre["interpolation"], crop_pct=pre["crop_pct"],
                                crop_mode=pre.get("crop_mode", "center"),
                                mean=presets[pre.get("mean", "imagenet")][0], std=presets[pre.get("std", "imagenet")][1])
    return model


def _timm_predictions(model, folder: Path) -> dict[str, list[int]]:
    """timm's own pipeline: resolve_data_config + create_transform + the model, image by image."""
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    transform = create_transform(**resolve_data_config({}, model=model), is_training=False)
    paths = sorted(str(p) for p in folder.rglob("*.JPEG"))
    with torch.inference_mode():
        x = torch.stack([transform(Image.open(path).convert("RGB")) for path in paths])
        top5 = model(x).topk(5, dim=1).indices.tolist()
    return dict(zip(paths, top5, strict=True))


@pytest.mark.parametrize("card", ["evt-resnet", "evt-convnext", "evt-effnet"])
def test_predictions_equal_timm_pipeline_image_by_image(evalt, demo, tmp_path, card):
    from safetensors.torch import save_file

    model = _timm_model(card, seed=7)
    with torch.no_grad():  # random weights give near-uniform logits: sharpen the classifier so ranks are stable
        head = model.get_classifier()
        head.weight.mul_(50.0)
    ckpt = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    result = zoo.evaluate(card, f"folder:{demo}", checkpoint=ckpt, workers=0, batch_size=8,
                          predictions=True, record=False)
    expected = _timm_predictions(model, demo)
    assert result["images"] == len(expected) == 21
    assert list(result["predictions"]) == list(expected)  # same images, same fixed order
    top1 = {p: v[0] for p, v in result["predictions"].items()}
    assert top1 == {p: v[0] for p, v in expected.items()}
    assert len({v[0] for v in expected.values()}) > 1  # the check is not vacuous: predictions differ by image
    agree = sum(v == expected[p] for p, v in result["predictions"].items())
    assert agree == len(expected)
    assert result["preprocess"]["crop_pct"] == CARDS[card]["preprocess"]["crop_pct"]


def _invoke(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _one_line_exit2(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_bad_input_is_one_line_exit_2(evalt, demo, tmp_path, monkeypatch):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    _one_line_exit2(_invoke(["eval", "evt-resnet", "--dataset", "imagenet-x", "--no-pretrained"]),
                    "unknown dataset 'imagenet-x'", "imagenet-a")
    _one_line_exit2(_invoke(["eval", "evt-resnet", "--dataset", "imagenet", "--no-pretrained"]),
                    "needs --data-dir", "ZOO_DATA_DIR")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_exit2(_invoke(["eval", "evt-resnet", "--dataset", f"folder:{empty}", "--no-pretrained"]),
                    "expected one sub-folder per class", "found an empty directory")
    wrong = tmp_path / "wrong"
    for wnid in ("n01440764", "n01443537", "n01484850"):
        (wrong / wnid).mkdir(parents=True)
    _one_line_exit2(_invoke(["eval", "evt-resnet", "--dataset", "imagenet", "--data-dir", str(wrong), "--no-pretrained"]),
                    "expected 1000 class folders named by WordNet id", "found 3")
    _one_line_exit2(_invoke(["eval", "evt-resnet", "--dataset", "imagenet-v2", "--data-dir", str(wrong), "--no-pretrained"]),
                    "expected 1000 class folders named 0..999", "found 0 numeric of 3")
    _one_line_exit2(_invoke(["eval", "evt-detector", "--dataset", f"folder:{demo}", "--no-pretrained"]),
                    "has task 'object-detection'", "image-classification")
    _one_line_exit2(_invoke(["eval", "evt-resnet", "--dataset", f"folder:{demo}", "--no-pretrained", "--limit", "-1"]),
                    "--limit", "-1")
    assert not results.read()  # nothing was recorded


def test_eval_json_limit_and_results_file(evalt, demo):
    out = _invoke(["eval", "evt-resnet", "--dataset", f"folder:{demo}", "--no-pretrained", "--limit", "10",
                   "--workers", "1", "--batch-size", "4", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    for key in ("model", "dataset", "top1", "top5", "images", "throughput_img_s", "reported_top1", "delta_top1"):
        assert key in data
    assert data["model"] == "evt-resnet" and data["dataset"] == f"folder:{demo}"
    assert data["images"] == 10 and data["reported_top1"] is None  # no paper number for a folder
    assert 0.0 <= data["top1"] <= data["top5"] <= 100.0
    records = results.read(model="evt-resnet")
    assert len(records) == 1
    rec = records[0]
    assert rec["images"] == 10 and rec["device"] == "cpu" and rec["precision"] == "fp32" and rec["batch_size"] == 4
    assert rec["versions"]["torch"] == torch.__version__.split("+")[0] and rec["versions"]["zoo"] == zoo.__version__
    assert rec["weights"] == {"origin": "random", "sha256": None, "source": None} and "time" in rec
    table = _invoke(["results", "--model", "evt-resnet"])
    assert table.exit_code == 0 and "evt-resnet" in table.output and "folder:" in table.output
    assert json.loads(_invoke(["results", "--model", "EVT-ResNet", "--json"]).output) == records  # canonical names
    _one_line_exit2(_invoke(["results", "--model", "evt-resnett", "--json"]),
                    "unknown model 'evt-resnett'", "Did you mean: evt-resnet")


def test_reported_number_and_checkpoint_hash_are_recorded(evalt, tmp_path):
    from safetensors.torch import save_file

    from zoo.weights.fetch import sha256_file

    data = make_demo_folder(tmp_path / "imagenet", n_images=4, n_classes=2)
    for wnid in __import__("zoo.tasks.classification.data.synsets", fromlist=["x"]).imagenet_wnids():
        (data / wnid).mkdir(exist_ok=True)  # the full 1000-folder layout, images in two of them
    ckpt = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in _timm_model("evt-resnet", 0).state_dict().items()}, str(ckpt))
    result = zoo.evaluate("evt-resnet", "imagenet", data_dir=data, checkpoint=ckpt, workers=0)
    assert result["reported_top1"] == 50.0
    assert result["delta_top1"] == pytest.approx(result["top1"] - 50.0)
    assert result["precision"] == "fp32"  # the default everywhere, recorded with the run
    assert results.read(dataset="imagenet")[0]["weights"] == {"origin": "checkpoint", "sha256": sha256_file(ckpt),
                                                                "source": str(ckpt)}


def test_bad_images_are_counted_named_and_fail_unless_skipped(evalt, tmp_path):
    data = make_demo_folder(tmp_path / "d", n_images=6, n_classes=2)
    bad = write_bad_image(data / "n01440764" / "broken.jpg")
    cut = write_bad_image(data / "n01440764" / "truncated.jpg", kind="truncated")
    args = ["eval", "evt-resnet", "--dataset", f"folder:{data}", "--no-pretrained", "--workers", "0"]
    out = _invoke(args)
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "2 unreadable image(s)" in out.output and str(bad) in out.output and str(cut) in out.output
    assert not results.read()
    out = _invoke([*args, "--skip-bad-images", "--json"])
    assert out.exit_code == 0, out.output
    data_out = json.loads(out.output)
    assert data_out["images"] == 6 and data_out["decoded"] == 8
    assert sorted(data_out["bad_images"]) == sorted([str(bad), str(cut)])
    assert results.read()[0]["bad_images"] == data_out["bad_images"]


def test_two_gloo_processes_equal_one(evalt, tmp_path):
    data = make_demo_folder(tmp_path / "odd", n_images=13, n_classes=3, seed=3)
    ckpt = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    model = _timm_model("evt-convnext", 3)
    with torch.no_grad():
        model.get_classifier().weight.mul_(50.0)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    common = ["eval", "evt-convnext", "--dataset", f"folder:{data}", "--checkpoint", str(ckpt),
              "--device", "cpu", "--workers", "0", "--batch-size", "4", "--json"]
    one = zoo.evaluate("evt-convnext", f"folder:{data}", checkpoint=ckpt, device="cpu", workers=0, batch_size=4)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "zoo", *common, "--nproc", "2"], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = json.loads(proc.stdout)  # only rank 0 printed: stdout is one JSON object
    assert two["world_size"] == 2 and one["world_size"] == 1 and two["device"] == "cpu x2"
    assert (two["images"], two["top1"], two["top5"]) == (one["images"], one["top1"], one["top5"]) and one["images"] == 13
    assert len(results.read()) == 2  # one record per run: rank 1 wrote nothing


def test_imagenet_c_table_per_corruption_and_mean(evalt, tmp_path):
    from zoo.tasks.classification.data.synsets import imagenet_wnids

    for corruption in ("fog", "snow"):
        part = tmp_path / corruption / "2"
        for wnid in imagenet_wnids():
            (part / wnid).mkdir(parents=True)
        make_demo_folder(part, n_images=3, n_classes=2, seed=len(corruption))
    out = _invoke(["eval", "evt-resnet", "--dataset", "imagenet-c", "--data-dir", str(tmp_path), "--corruption", "fog,snow",
                   "--severity", "2", "--no-pretrained", "--workers", "0", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [(p["corruption"], p["severity"], p["images"]) for p in data["parts"]] == [("fog", 2, 3), ("snow", 2, 3)]
    assert data["top1"] == pytest.approx(sum(p["top1"] for p in data["parts"]) / 2, abs=1e-4) and data["images"] == 6
    assert data["reported_top1"] is None  # a subset of ImageNet-C is not the paper's number
    from zoo.cli.evaluate import summary_table

    table = summary_table(data)
    assert "corruption" in table and "s2" in table and "fog" in table and "mean top-1 over 2" in table
