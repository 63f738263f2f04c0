"""YOLOv6 plugin (P5 and P6): official key layout, folding, output format, checkpoint loading, deployed
params and MACs, the README eval settings on the cards."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from zoo_detection.evaluate import letterbox_geometry
from zoo_detection.task import settings
from zoo_yolov6 import model as M

from zoo.measure.bench import count_macs, count_params, static_counts
from zoo.models.build import create_model
from zoo.registry.lookup import get_card

DATA = Path(__file__).parent / "data"


P5, P6 = ["n", "s", "m", "l"], ["n6", "s6", "m6", "l6"]
CARDS = [f"yolov6-{v}" for v in P5 + P6]
#: configs/experiment/eval_640_repro.py @ 0.4.0, keyed by the weight file's stem (tools/eval.py --reproduce_640_eval)
SHRINK = {"n": 4, "s": 6, "m": 4, "l": 4, "n6": 17, "s6": 8, "m6": 64, "l6": 41}


@pytest.mark.parametrize("variant", P5 + P6)
def test_state_dict_equals_official_manifest(variant):
    manifest = json.loads((DATA / f"official_yolov6{variant}.json").read_text())
    with torch.device("meta"):  # shapes only: the big P6 models build in a blink
        ours = {k: list(v.shape) for k, v in getattr(M, f"yolov6_{variant}")().state_dict().items()}
    assert sorted(set(manifest) - set(ours)) == [] and sorted(set(ours) - set(manifest)) == []
    assert ours == manifest


def _randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith(("proj", "proj_conv.weight")):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() == 4:
                t.copy_(torch.randn(t.shape, generator=gen) / t[0].numel() ** 0.5)
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
    return model.eval()


def _fold_error(model: torch.nn.Module, x: torch.Tensor) -> float:
    """max |folded - unfolded| relative to max |output| (at least 1), after ``switch_to_deploy``."""
    with torch.no_grad():
        want = model(x)
        model.switch_to_deploy()
        got = model(x)
    keys = list(model.state_dict())
    assert not any("rbr_dense" in k or "rbr_1x1" in k or ".bn." in k for k in keys)
    return ((got - want).abs().max() / want.abs().max().clamp(min=1)).item()


@pytest.mark.parametrize("variant", ["n", "m"])
def test_folded_model_equals_unfolded(variant):
    model = _randomised(getattr(M, f"yolov6_{variant}")())
    x = torch.randn(1, 3, 128, 96, generator=torch.Generator().manual_seed(1))
    assert _fold_error(model, x) < 1e-4
    if variant == "n":
        assert "backbone.stem.rbr_reparam.weight" in model.state_dict()


@pytest.mark.parametrize("variant,narrow", [("n6", False), ("m6", True), ("l6", True)])
def test_p6_folded_model_equals_unfolded(variant, narrow):
    """P6 (four levels; input a multiple of 64). N6 at full size; M6 (RepVGG + BepC3) and L6 (conv_silu
    + BepC3) with their own block/CSP/DFL settings at N6's width and depth, to stay fast: the full-size
    M6/L6 equal the official code before and after folding (tools/official_check.py)."""
    v = M.VARIANTS[variant]
    model = _randomised(M.YOLOv6(dataclasses.replace(v, width=0.25, depth=0.33) if narrow else v))
    assert len(model.detect.stems) == 4 and model.detect.strides == (8, 16, 32, 64)
    x = torch.randn(1, 3, 128, 64, generator=torch.Generator().manual_seed(1))
    assert _fold_error(model, x) < 1e-4
    if v.block == "repvgg":
        assert "backbone.ERBlock_6.0.rbr_reparam.weight" in model.state_dict()


def test_eval_output_is_yolo_format():
    model = M.yolov6_n().eval()  # fresh head: reg bias 1, class prior 0.01
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 64, 96))
    n = (8 * 12) + (4 * 6) + (2 * 3)
    assert out.shape == (2, n, 85)
    assert torch.all(out[..., 4] == 1)
    assert torch.allclose(out[..., 5:], torch.full_like(out[..., 5:], 0.01), atol=1e-6)
    # every box is lrtb = 1 grid cell around its cell centre: first cell of stride 8 -> (4, 4, 16, 16)
    assert out[0, 0, :4].tolist() == [4.0, 4.0, 16.0, 16.0]
    assert out[0, n - 1, :4].tolist() == [80.0, 48.0, 64.0, 64.0]  # last cell of stride 32 at (2, 1)


def test_p6_eval_output_has_four_levels():
    model = M.yolov6_n6().eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 128, 64))
    n = (16 * 8) + (8 * 4) + (4 * 2) + (2 * 1)
    assert out.shape == (1, n, 85)
    assert out[0, n - 1, :4].tolist() == [32.0, 96.0, 128.0, 128.0]  # the stride-64 cell at row 1, column 0
    assert torch.allclose(out[..., 5:], torch.full_like(out[..., 5:], 0.01), atol=1e-6)


def test_cards_protocol_and_weights():
    for name in CARDS:
        card = get_card(name)
        p6 = name.endswith("6")
        assert card.task == "object-detection" and card.weights_key == "model"
        assert card.weights[0].url == f"https://github.com/meituan/YOLOv6/releases/download/0.4.0/{name.replace('-', '')}.pt"
        assert card.reported.form == "deploy"
        assert list(card.input_size) == [3, 1280, 1280] if p6 else [3, 640, 640]
        box = settings(card)["letterbox"]
        assert box["size"] == ([1280, 1280] if p6 else [640, 640]) and box["stride"] == (64 if p6 else 32)
        assert (box["auto"], box["scaleup"], box["pad_value"]) == (False, False, 114)


@pytest.mark.parametrize("card_name", CARDS)
def test_cards_carry_reproduce_640_eval_shrink(card_name):
    """The README numbers' resize: long side to img_size - shrink_size, then a square letterbox."""
    box = settings(get_card(card_name))["letterbox"]
    assert box["shrink"] == SHRINK[card_name.removeprefix("yolov6-")]
    size = box["size"][0]
    geo = letterbox_geometry(480 * size // 640, size, box)  # a 4:3 landscape image already at the input size
    assert max(geo.resized) == size - box["shrink"] and geo.input == (size, size)


def test_yolov6_s_letterbox_gives_634_px_long_side():
    geo = letterbox_geometry(480, 640, settings(get_card("yolov6-s"))["letterbox"])
    assert geo.resized == (475, 634)  # int(480 * 634 / 640), 634; letterbox never scales up
    assert geo.input == (640, 640) and geo.padding == (82, 83, 3, 3)


def test_official_style_checkpoint_loads(tmp_path, monkeypatch):
    """A whole model of a throwaway class, pickled under ``model`` in half precision (engine.py /
    strip_optimizer), is read through zoo's restricted reader into the builder's tensors."""
    ours = _randomised(M.yolov6_n())
    throwaway = types.ModuleType("yolov6_throwaway")

    class Model(torch.nn.Module):
        pass

    Model.__module__, Model.__qualname__ = "yolov6_throwaway", "Model"
    throwaway.Model = Model
    monkeypatch.setitem(sys.modules, "yolov6_throwaway", throwaway)
    wrapped = Model()
    for name, child in ours.named_children():
        wrapped.add_module(name, child)
    path = tmp_path / "yolov6n.pt"
    torch.save({"model": wrapped.half(), "optimizer": None, "epoch": 299}, path)
    monkeypatch.delitem(sys.modules, "yolov6_throwaway")
    del Model, throwaway
    with pytest.raises((pickle.UnpicklingError, AttributeError, ModuleNotFoundError, RuntimeError)):
        torch.load(path, weights_only=False)
    loaded = create_model("yolov6-n", checkpoint=str(path)).eval()
    want = ours.float().state_dict()
    got = loaded.state_dict()
    assert set(got) == set(want)
    for k, v in want.items():
        assert torch.equal(got[k], v.half().float()), k


def _deployed_counts(name: str) -> tuple[int, int, int]:
    """(params, MACs, MACs of the ConvTranspose2d layers) of card ``name``'s folded model at its input size.

    Built, folded and run on the meta device (shapes only, no arithmetic: L6 at 1280 costs what N at 640
    does), counted as ``zoo bench`` counts (count_macs, FlopCounterMode)."""
    card = get_card(name)
    with torch.device("meta"):
        model = create_model(name).eval()
        model.switch_to_deploy()
    found: list[int] = []

    def hook(mod, inputs, _out):
        assert mod.kernel_size == mod.stride == (2, 2)  # thop's output-based rule is then 4x the real count
        found.append(inputs[0].numel() * (mod.out_channels // mod.groups) * 4)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    macs = count_macs(model, tuple(card.input_size))
    for h in handles:
        h.remove()
    assert len(found) == (3 if name.endswith("6") else 2), found  # one upsampler per BiFusion
    return count_params(model), macs, sum(found)


@pytest.mark.parametrize("card_name", CARDS)
def test_deployed_counts_match_readme(card_name):
    """README @ 0.4.0 params and FLOPs ("estimated on deployed models") vs the folded model at the card's size.

    Params: to the README's precision (YOLOv6-N's 4.648 M prints 4.7 there; its card says why).
    FLOPs: the README's are thop's (get_model_info @ 0.4.0), which counts a ConvTranspose2d as output
    pixels x C_in x k^2: 4x the real count for the neck's k2 s2 upsamplers. zoo's count (FlopCounterMode)
    is real, so it sits below the README; adding thop's 3 extra shares of the transposed convs gives the
    README's number to its printed precision, and the card's deviations.gmacs says so."""
    card = get_card(card_name)
    params, macs, transposed = _deployed_counts(card_name)
    if card_name == "yolov6-n":  # 4.647882 M: the README prints 4.7; the card says why it differs
        assert params == 4_647_882 and "params_m" in card.deviations and card.reported.params_m == 4.7
    else:
        assert round(params / 1e6, 1) == card.reported.params_m
    [readme] = re.findall(r"README FLOPs ([0-9.]+) G", card.reported.notes)
    assert round(2 * macs / 1e9, 1) < float(readme)  # the real count is lower: not the README's
    assert f"{2 * (macs + 3 * transposed) / 1e9:.1f}" == readme
    assert "ConvTranspose2d" in card.deviations["gmacs"] and readme in card.deviations["gmacs"]
    assert f"{macs / 1e9:.4g} G MACs" in card.deviations["gmacs"]


def test_bench_counts_p6_folded_at_1280():
    """What ``zoo bench``/``zoo verify`` count for a P6 card: the folded model, on meta, at 1280."""
    counts = static_counts("yolov6-n6")
    assert counts["form"] == "deploy" and counts["folded_by"] == "model.switch_to_deploy()"
    assert counts["input_size"] == [3, 1280, 1280]
    assert (counts["params"], counts["macs"]) == _deployed_counts("yolov6-n6")[:2]


def test_plugin_check_passes_end_to_end():
    """`zoo plugin check yolov6 --json` (a subprocess, as a user runs it): builds each card; for the models up to
    6 M parameters (YOLOv6-N) it runs the detection task's example inputs and output check, folds (same
    outputs) and converts a checkpoint; for the rest it counts the folded model on meta (forwards at 640 and
    1280 on CPU are what made this test slow; the other tests here cover folding and loading)."""
    done = subprocess.run([sys.executable, "-m", "zoo", "plugin", "check", "yolov6", "--json",
                           "--max-forward-params", "6"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["plugin"] == "yolov6"
    by_check: dict[str, set[str]] = {}
    for f in report["findings"]:
        assert f["ok"], f
        by_check.setdefault(f["check"], set()).add(f["subject"])
    for check in ("card", "builder", "output", "params"):
        assert by_check[check] == set(CARDS), check
    assert by_check["fold"] == by_check["convert"] == {"yolov6-n"}
    assert by_check["import-light"] == {"yolov6"} and by_check["loads"] == {"yolov6"}
    messages = {(f["check"], f["subject"]): f["message"] for f in report["findings"]}
    assert "5,059,178 -> 4,647,882 params" in messages["fold", "yolov6-n"]
    assert messages["output", "yolov6-l6"].startswith("not run")
    assert messages["params", "yolov6-l6"].startswith("140.4 M = reported 140.4 M")


def test_detection_eval_runs_the_folded_model_of_a_deploy_card():
    """zoo eval runs YOLOv6 folded, as the official evaluator does (load_checkpoint(fuse=True) +
    switch_to_deploy): same outputs within 1e-4; a card whose claims describe the trained form is left as is."""
    from dataclasses import replace

    from zoo_detection.evaluate import deploy_form

    import zoo

    card = zoo.get_card("yolov6-n")
    torch.manual_seed(0)
    model = zoo.create_model("yolov6-n").eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[0].clone()
        folded = deploy_form(model, card)
        after = folded(x)[0]
    assert not any(type(m).__name__ == "BatchNorm2d" for m in folded.modules())
    assert all(m.rbr_reparam is not None for m in folded.modules() if hasattr(m, "rbr_reparam"))
    assert torch.allclose(before, after, rtol=1e-4, atol=1e-4)
    trained = replace(card, reported=replace(card.reported, form=None))
    fresh = zoo.create_model("yolov6-n")
    assert deploy_form(fresh, trained) is fresh and any(type(m).__name__ == "BatchNorm2d" for m in fresh.modules())
