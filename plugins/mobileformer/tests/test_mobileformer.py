"""Mobile-Former-508M: port layout, size against the paper, interface, checkpoint conversion."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import zoo_mobileformer
from torch.utils.flop_counter import FlopCounterMode
from zoo_mobileformer import mobileformer

MANIFEST = json.loads((Path(__file__).parent / "data" / "official_shapes.json").read_text())

# Mobile-Former paper (arXiv 2108.05895), ImageNet table: Mobile-Former-508M has 14.0 M params and
# 508 M MACs (79.3 % top-1); the AAboys/MobileFormer README repeats the same three numbers
PAPER_PARAMS_M, PAPER_GMACS = 14.0, 0.508


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return mobileformer.mobile_former_508m().eval()


def test_keys_and_shapes_equal_port_manifest(model):
    assert sorted(MANIFEST) == sorted(mobileformer.VARIANTS) == ["mobile_former_508m"]
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == MANIFEST["mobile_former_508m"]


def test_builders_hook_resolves():
    builders = zoo_mobileformer.zoo_builders()
    assert builders == {"mobile_former_508m": "zoo_mobileformer.mobileformer:mobile_former_508m"}


def test_params_match_paper(model):
    params = sum(p.numel() for p in model.parameters())
    assert params == 13_976_976  # the port builds exactly this many
    assert round(params / 1e6, 1) == PAPER_PARAMS_M


def test_macs_within_5_percent_of_paper(model):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    gmacs = counter.get_total_flops() / 2 / 1e9
    assert gmacs == pytest.approx(PAPER_GMACS, rel=0.05)  # 0.498: conv/linear/matmul, BN not counted


def test_forward_shapes_and_interface(model):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        features, tokens = model.forward_features(x)
        assert features.shape == (1, 240, 7, 7) and tokens.shape == (1, 6, 192)
        assert model.forward_head((features, tokens), pre_logits=True).shape == (1, 1920)
        logits = model(x)
    assert logits.shape == (1, 1000)
    assert torch.allclose(logits, model.forward_head((features, tokens)), atol=1e-6)


def test_num_classes_reset_classifier_and_training_step():
    model = mobileformer.mobile_former_508m(num_classes=10)
    assert model.get_classifier().out_features == 10
    x = torch.randn(2, 3, 64, 64)  # BatchNorm1d in the head needs a batch of 2 in training mode
    loss = model(x).logsumexp(dim=1).mean()
    loss.backward()
    assert model.tokens.weight.grad is not None and model.tokens.weight.grad.abs().sum() > 0
    model.eval().reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (2, 1920)
        model.reset_classifier(3)
        assert model(x).shape == (2, 3)


def test_unknown_builder_kwarg_is_an_error():
    with pytest.raises(TypeError, match="pretrained"):
        mobileformer.mobile_former_508m(pretrained=True)


def test_converter_loads_strictly_and_is_idempotent(model, tmp_path):
    card = SimpleNamespace(name="mobileformer-508m", plugin="mobileformer", builder="mobile_former_508m")
    torch.save(model.state_dict(), tmp_path / "mobile-former-508m.pth")
    checkpoint = torch.load(tmp_path / "mobile-former-508m.pth", weights_only=True)
    converted = zoo_mobileformer.zoo_convert_checkpoint(card=card, state_dict=checkpoint)
    assert converted is not checkpoint and list(converted) == list(checkpoint)
    target = mobileformer.mobile_former_508m().eval()
    result = target.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(target(x), model(x))
    again = zoo_mobileformer.zoo_convert_checkpoint(card=card, state_dict=converted)
    assert list(again) == list(converted) and all(torch.equal(again[k], converted[k]) for k in converted)


def test_converter_ignores_other_plugins_cards():
    card = SimpleNamespace(name="edgevit-s", plugin="edgevit", builder="edgevit_s")
    assert zoo_mobileformer.zoo_convert_checkpoint(card=card, state_dict={}) is None


def test_unknown_block_kind_is_named():
    bad = (mobileformer.BlockCfg("fancy", 2, 24, 1),)
    with pytest.raises(ValueError, match="block 0: unknown kind 'fancy'"):
        mobileformer.MobileFormer(bad)
