"""EdgeViT: official layout, sizes against the papers, interface, checkpoint conversion."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import zoo_edgevit
from torch.utils.flop_counter import FlopCounterMode
from zoo_edgevit import edgevit

MANIFEST = json.loads((Path(__file__).parent / "data" / "official_shapes.json").read_text())

# (params M, GMACs) as printed in the EdgeViT paper (arXiv 2205.03436, ImageNet-1k table), and the
# params M quoted for the same models in the EfficientMod paper's latency table (ICLR 2024)
PAPER = {"edgevit_xxs": (4.1, 0.6), "edgevit_xs": (6.7, 1.1), "edgevit_s": (11.1, 1.9)}
EFFICIENTMOD_PARAMS = {"edgevit_xxs": 4.1, "edgevit_xs": 6.8, "edgevit_s": 13.1}


def _build(name: str, **kwargs) -> torch.nn.Module:
    return getattr(edgevit, name)(**kwargs).eval()


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(edgevit.VARIANTS))
def test_keys_and_shapes_equal_official_manifest(name):
    sd = _build(name).state_dict()
    assert {k: list(v.shape) for k, v in sd.items()} == MANIFEST[name]


def test_builders_hook_names_every_variant_and_resolves():
    builders = zoo_edgevit.zoo_builders()
    assert sorted(builders) == sorted(edgevit.VARIANTS) == sorted(MANIFEST)
    for name, target in builders.items():
        module, attr = target.split(":")
        assert module == "zoo_edgevit.edgevit" and getattr(edgevit, attr).__name__ == name


@pytest.mark.parametrize("name", list(edgevit.VARIANTS))
def test_params_match_efficientmod_table_to_its_precision(name):
    # the official code builds 4.07 / 6.77 / 13.11 M, which is what the EfficientMod table prints
    assert round(_n_params(_build(name)) / 1e6, 1) == EFFICIENTMOD_PARAMS[name]


@pytest.mark.parametrize("name", ["edgevit_xxs", "edgevit_xs"])
def test_params_within_5_percent_of_edgevit_paper(name):
    assert _n_params(_build(name)) / 1e6 == pytest.approx(PAPER[name][0], rel=0.05)


def test_edgevit_s_params_are_the_official_codes_not_the_papers():
    # Known discrepancy: the EdgeViT paper prints 11.1 M for EdgeViT-S, but the official builder
    # (depths 1-2-5-3, widths 48-96-240-384), whose layout the manifest pins, has 13.1 M.
    params = _n_params(_build("edgevit_s")) / 1e6
    assert params == pytest.approx(13.108168, abs=1e-6)
    assert params / PAPER["edgevit_s"][0] - 1 > 0.15


@pytest.mark.parametrize("name", list(edgevit.VARIANTS))
def test_macs_match_paper(name):
    model = _build(name)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    gmacs = counter.get_total_flops() / 2 / 1e9
    paper = PAPER[name][1]
    # the paper prints one decimal; XXS is 0.551 G (fvcore, the authors' counter: 0.557 G), which
    # is 8 % under 0.6 yet rounds to it, so the test is "rounds to the paper's figure"
    assert round(gmacs, 1) == paper
    if name != "edgevit_xxs":
        assert gmacs == pytest.approx(paper, rel=0.05)


def test_forward_shapes_and_interface():
    model = _build("edgevit_xxs")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (1, 288, 7, 7)
        assert model.forward_head(feats, pre_logits=True).shape == (1, 288)
        logits = model(x)
    assert logits.shape == (1, 1000)
    assert torch.allclose(logits, model.forward_head(feats), atol=1e-6)


def test_num_classes_and_reset_classifier():
    model = _build("edgevit_xxs", num_classes=10)
    assert model.head.out_features == 10 and model.num_classes == 10
    x = torch.randn(1, 3, 64, 64)  # any multiple of 32 works; the official model only takes 224
    with torch.no_grad():
        assert model(x).shape == (1, 10)
        model.reset_classifier(0)
        assert model(x).shape == (1, 288)
        model.reset_classifier(5)
        assert model(x).shape == (1, 5)


def test_unknown_builder_kwarg_is_an_error():
    with pytest.raises(TypeError, match="pretrained"):
        edgevit.edgevit_xxs(pretrained=True)


def test_converter_loads_strictly_and_is_idempotent(tmp_path):
    card = SimpleNamespace(name="edgevit-xxs", plugin="edgevit", builder="edgevit_xxs")
    source = _build("edgevit_xxs")
    # an "official" checkpoint as the training script leaves it, read back safely
    torch.save(source.state_dict(), tmp_path / "checkpoint.pth")
    official = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    converted = zoo_edgevit.zoo_convert_checkpoint(card=card, state_dict=official)
    assert converted is not official and list(converted) == list(official)
    target = _build("edgevit_xxs")
    result = target.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))
    again = zoo_edgevit.zoo_convert_checkpoint(card=card, state_dict=converted)
    assert list(again) == list(converted)
    assert all(torch.equal(again[k], converted[k]) for k in converted)


def test_converter_ignores_other_plugins_cards():
    card = SimpleNamespace(name="efficientmod-xxs", plugin="efficientmod", builder="efficientmod_xxs")
    assert zoo_edgevit.zoo_convert_checkpoint(card=card, state_dict={}) is None


def test_strict_load_names_a_foreign_key():
    sd = _build("edgevit_xxs").state_dict()
    sd["blocks1.0.LocalAgg.extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="blocks1.0.LocalAgg.extra"):
        _build("edgevit_xxs").load_state_dict(sd, strict=True)
