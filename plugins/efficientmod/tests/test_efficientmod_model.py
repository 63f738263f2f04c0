"""The EfficientMod builders against data generated from the official code (tests/data, see README)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from zoo_efficientmod import efficientmod as em

DATA = Path(__file__).parent / "data"
SHAPES: dict[str, dict[str, list[int]]] = json.loads((DATA / "official_shapes.json").read_text())
LOGITS = json.loads((DATA / "official_logits.json").read_text())["logits"]
VARIANTS = ["efficientmod_xxs", "efficientmod_xs", "efficientmod_s", "efficientmod_s_conv"]

# parameters in millions as printed by the paper (Table: xxs/xs/s) and the README (s-Conv)
PAPER_PARAMS_M = {"efficientmod_xxs": 4.7, "efficientmod_xs": 6.6, "efficientmod_s": 12.9,
                  "efficientmod_s_conv": 12.9}
LAST_DIM = {"efficientmod_xxs": 256, "efficientmod_xs": 288, "efficientmod_s": 312, "efficientmod_s_conv": 344}


def build(name: str, **kwargs) -> torch.nn.Module:
    return getattr(em, name)(**kwargs).eval()


def fill(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Deterministic weights, the same function tests/data/official_logits.json was made with."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, v in sd.items():
        noise = 0.1 * torch.randn(v.shape, generator=g, dtype=torch.float64)
        ones = k.endswith(".weight") and v.ndim == 1 or k.endswith("gamma_1")
        out[k] = noise + 1.0 if ones else noise
    return out


def test_manifest_covers_every_variant():
    assert sorted(SHAPES) == sorted(VARIANTS) == sorted(LOGITS)


@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_equals_official_keys_and_shapes(name):
    ours = {k: list(v.shape) for k, v in build(name).state_dict().items()}
    official = SHAPES[name]
    assert sorted(set(official) - set(ours)) == [], "keys missing from ours"
    assert sorted(set(ours) - set(official)) == [], "keys the official model does not have"
    wrong = {k: (ours[k], official[k]) for k in official if ours[k] != official[k]}
    assert wrong == {}
    assert list(ours) == list(official)  # same registration order, too


@pytest.mark.parametrize("name", VARIANTS)
def test_params_match_paper(name):
    n = sum(p.numel() for p in build(name).parameters())
    assert n == sum(math.prod(s) for s in SHAPES[name].values())  # no buffers, every key a parameter
    assert round(n / 1e6, 1) == PAPER_PARAMS_M[name]


@pytest.mark.parametrize("name", VARIANTS)
def test_logits_equal_official_code(name):
    model = build(name).double()
    model.load_state_dict(fill(model.state_dict()), strict=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        y = model(x)[0]
    ref = LOGITS[name]
    torch.testing.assert_close(y[:16], torch.tensor(ref["first16"], dtype=torch.float64), rtol=0, atol=1e-9)
    assert y.sum().item() == pytest.approx(ref["sum"], abs=1e-8)
    assert y.norm().item() == pytest.approx(ref["l2"], rel=1e-10)
    assert int(y.argmax()) == ref["argmax"]


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_shapes(name):
    model = build(name)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (1, LAST_DIM[name], 7, 7)
        assert model.forward_head(feats, pre_logits=True).shape == (1, LAST_DIM[name])
        logits = model(x)
    assert logits.shape == (1, 1000)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, model.forward_head(feats))


def test_num_classes_and_reset_classifier():
    model = build("efficientmod_xxs", num_classes=10)
    assert model.num_classes == 10 and model.head.weight.shape == (10, 256)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (2, 10)
        model.reset_classifier(0)
        assert isinstance(model.head, torch.nn.Identity) and model(x).shape == (2, 256)
        model.reset_classifier(5)
        assert model.num_classes == 5 and model(x).shape == (2, 5)
    with pytest.raises(ValueError, match="global_pool='avg' only, got 'max'"):
        model.reset_classifier(5, global_pool="max")


def test_headless_builder_has_no_head_keys():
    keys = set(build("efficientmod_xs", num_classes=0).state_dict())
    assert keys == set(SHAPES["efficientmod_xs"]) - {"head.weight", "head.bias"}


def test_unknown_kwarg_is_rejected():
    with pytest.raises(TypeError, match="img_size"):
        em.efficientmod_xxs(img_size=256)


def test_drop_path_defaults_follow_official_builders_and_act_in_training_only():
    # the official efficientMod_s / _s_Conv fix drop_path_rate=0.02, xxs / xs 0.0
    def rates(model):
        return [m.p for m in model.modules() if isinstance(m, em.DropPath)]

    assert max(rates(build("efficientmod_xxs"))) == 0.0
    assert max(rates(build("efficientmod_s"))) == pytest.approx(0.02)
    model = build("efficientmod_xxs", drop_path_rate=0.5)
    assert max(rates(model)) == pytest.approx(0.5) and rates(model)[0] == 0.0
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        torch.manual_seed(0)
        assert torch.equal(model(x), model(x))  # eval: deterministic
        model.train()
        assert not torch.equal(model(x), model(x))  # training: blocks dropped at random
