"""The entry module (hooks) and checkpoint conversion of the vit-llama plugin."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import torch
import zoo_vit_llama
from zoo_vit_llama import vit_llama as vl

from zoo import api
from zoo.errors import WeightsError
from zoo.weights import checkpoint

SMALL_LLAMA = {"dim": 64, "n_heads": 4, "multiple_of": 32}


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return vl.vit_llama_tiny_patch16_224(llama=SMALL_LLAMA, img_size=32).eval()


def official_checkpoint(model: torch.nn.Module, with_llama: bool = True) -> dict:
    """Shaped like the official main.py writes it: {'model', 'optimizer', 'lr_scheduler', 'epoch',
    'model_ema', 'scaler', 'args'}; 'model' is model.state_dict(), the frozen block included."""
    sd = {k: v.clone() for k, v in model.state_dict().items() if with_llama or not k.startswith("llama.")}
    return {
        "model": sd,
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]},
        "lr_scheduler": {"last_epoch": 299},
        "epoch": 299,
        "model_ema": {k: v + 1.0 for k, v in sd.items()},  # timm's get_state_dict(model_ema): not evaluated
        "scaler": {"scale": 65536.0},
        "args": argparse.Namespace(model="vit_llama_small_patch16_224", llama_path="/tmp/7B/"),
    }


def fake_consolidated(path, dim: int = 64, layers: int = 32) -> dict[str, torch.Tensor]:
    """A LLaMA v1 consolidated.00.pth in miniature: float16, every layer, top-level norm/embeddings."""
    g = torch.Generator().manual_seed(3)
    hidden = vl.FeedForward(dim, SMALL_LLAMA["multiple_of"]).w1.out_features
    shapes = {"attention.wq.weight": (dim, dim), "attention.wk.weight": (dim, dim), "attention.wv.weight": (dim, dim),
              "attention.wo.weight": (dim, dim), "feed_forward.w1.weight": (hidden, dim),
              "feed_forward.w2.weight": (dim, hidden), "feed_forward.w3.weight": (hidden, dim),
              "attention_norm.weight": (dim,), "ffn_norm.weight": (dim,)}
    sd = {"tok_embeddings.weight": torch.randn(50, dim, generator=g).half(),
          "norm.weight": torch.full((dim,), 2.0).half(), "output.weight": torch.randn(50, dim, generator=g).half(),
          "rope.freqs": torch.randn(dim // 8, generator=g).half()}
    for i in range(layers - 2, layers):  # two layers are enough to tell 31 from 30
        sd.update({f"layers.{i}.{k}": torch.randn(s, generator=g).half() for k, s in shapes.items()})
    torch.save(sd, path)
    return sd


def test_builders_hook_names_every_builder_and_they_resolve():
    builders = zoo_vit_llama.zoo_builders()
    assert sorted(builders) == ["vit_llama_base_patch16_224", "vit_llama_small_patch16_224",
                                "vit_llama_tiny_patch16_224"]
    for name, ref in builders.items():
        module, _, attr = ref.partition(":")
        assert module == "zoo_vit_llama.vit_llama" and attr == name and callable(getattr(vl, attr))


def test_entry_point_is_registered_and_cards_use_it():
    eps = [ep for ep in entry_points(group="zoo") if ep.name == "vit-llama"]
    assert [ep.value for ep in eps] == ["zoo_vit_llama"]
    assert eps[0].dist is not None and eps[0].dist.name == "zoo-vit-llama"
    cards = {c.name: c.builder for c in api.catalog().cards.values() if c.plugin == "vit-llama"}
    assert cards == {"vit-t-llama": "vit_llama_tiny_patch16_224", "vit-s-llama": "vit_llama_small_patch16_224",
                     "vit-b-llama": "vit_llama_base_patch16_224"}


def test_entry_module_does_not_import_torch():
    code = "import sys, zoo_vit_llama; zoo_vit_llama.zoo_builders(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_converter_ignores_other_plugins_cards():
    other = api.get_card("efficientmod-xxs") if "efficientmod-xxs" in api.catalog().cards else None
    card = other or type("C", (), {"plugin": "someone-else", "name": "x", "builder": "y"})()
    assert zoo_vit_llama.zoo_convert_checkpoint(card=card, state_dict={"a": torch.zeros(1)}) is None


def test_official_checkpoint_file_loads_strictly_through_the_core(tmp_path):
    """torch.save'd like main.py, read by zoo.weights.checkpoint: 'model' is taken (not 'model_ema'), as eval does."""
    model = small_model()
    path = tmp_path / "checkpoint.pth"
    torch.save(official_checkpoint(model), path)
    card = api.get_card("vit-s-llama")
    converted = checkpoint.load_converted(card, path)
    fresh = vl.vit_llama_tiny_patch16_224(llama=SMALL_LLAMA, img_size=32)
    checkpoint.load_strict(fresh, converted, card, origin="test")
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key


def test_conversion_is_pure_and_idempotent():
    sd = official_checkpoint(small_model())["model"]
    before = {k: v.clone() for k, v in sd.items()}
    once = vl.convert_official(sd)
    twice = vl.convert_official(once)
    assert once is not sd and twice is not once
    assert list(once) == list(twice) == list(before)
    assert all(torch.equal(once[k], twice[k]) and torch.equal(sd[k], before[k]) for k in once)


def test_missing_llama_block_without_llama_path_names_the_env_var(monkeypatch):
    monkeypatch.delenv("ZOO_LLAMA_PATH", raising=False)
    sd = official_checkpoint(small_model(), with_llama=False)["model"]
    with pytest.raises(WeightsError, match=r"no frozen LLaMA block .* set ZOO_LLAMA_PATH to LLaMA-7B v1's consolidated"):
        vl.convert_official(sd)
    # through the core: the converter's verdict on the user's file reaches them as is (not "plugin ... raised")
    with pytest.raises(WeightsError, match=r"^this checkpoint has no frozen LLaMA block .* set ZOO_LLAMA_PATH"):
        checkpoint.convert(api.get_card("vit-s-llama"), sd)


@pytest.mark.parametrize("as_folder", [False, True])
def test_missing_llama_block_is_taken_from_layer_31_of_zoo_llama_path(tmp_path, monkeypatch, as_folder):
    llama = fake_consolidated(tmp_path / "consolidated.00.pth")
    monkeypatch.setenv("ZOO_LLAMA_PATH", str(tmp_path if as_folder else tmp_path / "consolidated.00.pth"))
    model = small_model()
    sd = official_checkpoint(model, with_llama=False)["model"]
    converted = checkpoint.convert(api.get_card("vit-s-llama"), sd)
    assert list(converted) == list(sd) + [k for k in model.state_dict() if k.startswith("llama.")]
    fresh = vl.vit_llama_tiny_patch16_224(llama=SMALL_LLAMA, img_size=32)
    fresh.load_state_dict(converted, strict=True)
    block = fresh.state_dict()
    for key in ("attention.wq.weight", "attention.wk.weight", "feed_forward.w2.weight", "ffn_norm.weight"):
        got = block[f"llama.layers.0.{key}"]
        assert got.dtype == torch.float32 and torch.equal(got, llama[f"layers.31.{key}"].float()), key
    # the official llama.norm is never loaded from LLaMA: it stays ones, LLaMA's norm.weight (2.0) is not taken
    assert torch.equal(block["llama.norm.weight"], torch.ones(64))
    assert vl.convert_official(converted).keys() == converted.keys()  # idempotent: the block is present now


def test_llama_path_errors_are_one_line(tmp_path):
    sd = official_checkpoint(small_model(), with_llama=False)["model"]
    with pytest.raises(WeightsError, match="does not exist"):
        vl.convert_official(sd, llama_path=tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match=r"folder holds no \*\.pth"):
        vl.convert_official(sd, llama_path=tmp_path)
    torch.save({"tok_embeddings.weight": torch.zeros(2, 64)}, tmp_path / "x.pth")
    with pytest.raises(WeightsError, match=r"has no keys 'layers.31.\*' \(9 missing"):
        vl.convert_official(sd, llama_path=tmp_path / "x.pth")
    fake_consolidated(tmp_path / "wide.pth", dim=96)
    with pytest.raises(WeightsError, match="layer width 96, expected 64"):
        vl.convert_official(sd, llama_path=tmp_path / "wide.pth")
