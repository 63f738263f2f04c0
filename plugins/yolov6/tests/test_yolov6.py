"""YOLOv6 plugin: official key layout, folding, output format, checkpoint loading, deployed params."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from zoo_yolov6 import model as M

from zoo.measure.bench import static_counts
from zoo.models.build import create_model
from zoo.registry.lookup import get_card

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("variant", ["n", "s", "m", "l"])
def test_state_dict_equals_official_manifest(variant):
    manifest = json.loads((DATA / f"official_yolov6{variant}.json").read_text())
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


@pytest.mark.parametrize("variant", ["n", "m"])
def test_folded_model_equals_unfolded(variant):
    model = _randomised(getattr(M, f"yolov6_{variant}")())
    x = torch.randn(1, 3, 128, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(x)
        model.switch_to_deploy()
        got = model(x)
    keys = list(model.state_dict())
    assert not any("rbr_dense" in k or "rbr_1x1" in k or ".bn." in k for k in keys)
    if variant == "n":
        assert "backbone.stem.rbr_reparam.weight" in keys
    scale = want.abs().max().clamp(min=1)
    assert ((got - want).abs().max() / scale).item() < 1e-4


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


@pytest.mark.parametrize("card_name,millions", [("yolov6-n", 4.7), ("yolov6-s", 18.5), ("yolov6-m", 34.9), ("yolov6-l", 59.6)])
def test_deployed_params_match_readme(card_name, millions):
    card = get_card(card_name)
    model = create_model(card_name, pretrained=False).eval()
    model.switch_to_deploy()
    n = sum(p.numel() for p in model.parameters())
    assert float(card.reported.params_m) == millions
    if card_name == "yolov6-n":  # 4.647882 M: the README prints 4.7; the card says why it differs
        assert n == 4_647_882 and "params_m" in card.deviations
    else:
        assert round(n / 1e6, 1) == millions


def test_cards_protocol_and_weights():
    for name in ("yolov6-n", "yolov6-s", "yolov6-m", "yolov6-l"):
        card = get_card(name)
        assert card.task == "object-detection" and card.weights_key == "model"
        assert card.weights[0].url == f"https://github.com/meituan/YOLOv6/releases/download/0.4.0/{name.replace('-', '')}.pt"
        assert card.reported.form == "deploy"


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


def _transposed_conv_macs(name: str) -> int:
    """Real multiply-adds of the folded model's ConvTranspose2d layers at 640 (meta device: shapes only)."""
    with torch.device("meta"):
        model = create_model(name).eval()
        model.switch_to_deploy()
    found: list[int] = []

    def hook(mod, inputs, _out):
        assert mod.kernel_size == mod.stride == (2, 2)  # thop's output-based rule is then 4x the real count
        found.append(inputs[0].numel() * (mod.out_channels // mod.groups) * 4)

    for mod in model.modules():
        if isinstance(mod, torch.nn.ConvTranspose2d):
            mod.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, 640, 640, device="meta"))
    assert len(found) == 2, found
    return sum(found)


@pytest.mark.parametrize("card_name", ["yolov6-n", "yolov6-s", "yolov6-m", "yolov6-l"])
def test_macs_match_readme_flops(card_name):
    """README @ 0.4.0 FLOPs (kept in the card's notes) vs zoo's MACs of the folded model at 640.

    The README's figure is thop's (get_model_info @ 0.4.0), which counts a ConvTranspose2d as output
    pixels x C_in x k^2: 4x the real count for the neck's k2 s2 upsamplers. zoo's count (FlopCounterMode)
    is real, so it sits below the README; adding thop's 3 extra shares of the transposed convs gives the
    README's number to its printed precision, and the card's deviations.gmacs says so."""
    card = get_card(card_name)
    [readme] = re.findall(r"README FLOPs ([0-9.]+) G", card.reported.notes)
    counts = static_counts(card_name)
    assert counts["form"] == "deploy" and counts["folded_by"] == "model.switch_to_deploy()"
    macs = counts["macs"]
    assert round(2 * macs / 1e9, 1) < float(readme)  # the real count is lower: not the README's
    thop_like = macs + 3 * _transposed_conv_macs(card_name)
    assert f"{2 * thop_like / 1e9:.1f}" == readme
    assert "ConvTranspose2d" in card.deviations["gmacs"] and readme in card.deviations["gmacs"]


def test_plugin_check_passes_end_to_end():
    """`zoo plugin check yolov6 --json` (a subprocess, as a user runs it): builds each card, runs the detection
    task's example inputs and output check, folds (same outputs), params to the README's precision or explained,
    checkpoint conversion."""
    done = subprocess.run([sys.executable, "-m", "zoo", "plugin", "check", "yolov6", "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["plugin"] == "yolov6"
    by_check: dict[str, set[str]] = {}
    for f in report["findings"]:
        assert f["ok"], f
        by_check.setdefault(f["check"], set()).add(f["subject"])
    cards = {"yolov6-n", "yolov6-s", "yolov6-m", "yolov6-l"}
    for check in ("card", "builder", "output", "fold", "params", "convert"):
        assert by_check[check] == cards, check
    assert by_check["import-light"] == {"yolov6"} and by_check["loads"] == {"yolov6"}
    fold_n = next(f for f in report["findings"] if f["check"] == "fold" and f["subject"] == "yolov6-n")
    assert "5,059,178 -> 4,647,882 params" in fold_n["message"]
