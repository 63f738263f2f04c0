"""Context Cluster: structure equals the official model's, forward contract, building blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from zoo_context_cluster import context_cluster as coc

MANIFEST = json.loads((Path(__file__).parent / "data" / "official_shapes.json").read_text())
VARIANTS = ["coc_tiny", "coc_tiny_plain", "coc_small", "coc_medium"]

# Parameter counts of the official code (models/context_cluster.py, run with timm 1.0.31). The README
# table rounds these in units of 2**20 (its own __main__ prints numel / 1024**2): 5.3 / 5.3 / 14.0 / 27.9.
OFFICIAL_PARAMS = {"coc_tiny": 5_570_584, "coc_tiny_plain": 5_570_584, "coc_small": 14_657_024, "coc_medium": 29_290_520}
README_PARAMS_M = {"coc_tiny": 5.3, "coc_tiny_plain": 5.3, "coc_small": 14.0, "coc_medium": 27.9}


@pytest.fixture(scope="module")
def structures() -> dict[str, torch.nn.Module]:
    """Built on the meta device: real shapes, no memory or init cost."""
    with torch.device("meta"):
        return {name: getattr(coc, name)() for name in VARIANTS}


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {name: getattr(coc, name)().eval() for name in VARIANTS}


def test_manifest_covers_every_variant():
    assert sorted(MANIFEST) == sorted(VARIANTS)


@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_equals_official_manifest(structures, name):
    mine = {k: list(v.shape) for k, v in structures[name].state_dict().items()}
    official = MANIFEST[name]
    assert sorted(set(mine) - set(official)) == [], "keys the official model does not have"
    assert sorted(set(official) - set(mine)) == [], "official keys this model lacks"
    wrong = {k: (mine[k], official[k]) for k in official if mine[k] != official[k]}
    assert wrong == {}
    assert list(mine) == list(official)  # same order too: state_dict() walks the same module tree


@pytest.mark.parametrize("name", VARIANTS)
def test_parameter_count_matches_official_code_and_readme(structures, name):
    count = sum(p.numel() for p in structures[name].parameters())
    assert count == OFFICIAL_PARAMS[name]
    assert count == sum(torch.Size(s).numel() for s in MANIFEST[name].values())
    assert round(count / 2**20, 1) == README_PARAMS_M[name]


def test_forward_224_gives_1000_logits(models):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = models["coc_tiny"].forward_features(x)
        logits = models["coc_tiny"](x)
    assert feats.shape == (1, 320, 7, 7)
    assert logits.shape == (1, 1000)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(models["coc_tiny"].forward_head(feats), logits)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_runs_at_the_smallest_foldable_size(models, name):
    # 64 px: stage maps 16, 8, 4, 2 are divisible by the folds 8, 4, 2, 1.
    with torch.no_grad():
        out = models[name](torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_input_not_divisible_into_regions_is_a_clear_error(models):
    with pytest.raises(ValueError, match=r"not divisible into 8x8 regions"):
        models["coc_tiny"](torch.randn(1, 3, 48, 48))


def test_num_classes_and_reset_classifier():
    model = coc.coc_tiny(num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (2, 10)
        assert model.head.weight.shape == (10, 320)
        model.reset_classifier(0)
        pooled = model(x)
        assert pooled.shape == (2, 320)
        torch.testing.assert_close(pooled, model.forward_head(model.forward_features(x), pre_logits=True))
        model.reset_classifier(7)
        assert model(x).shape == (2, 7) and model.get_classifier().out_features == 7


def test_reference_ops_give_the_same_model():
    torch.manual_seed(1)
    fast = coc.coc_tiny_plain().eval()
    ref = coc.coc_tiny_plain(reference_ops=True).eval()
    state = fast.state_dict()
    for key, value in state.items():  # make the token mixers matter (layer scale starts at 1e-5)
        if "layer_scale" in key:
            value.fill_(1.0)
    fast.load_state_dict(state)
    ref.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), ref(x), rtol=1e-4, atol=1e-5)


def test_regions_split_and_merge_in_row_column_order():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    regions = coc._to_regions(x, 2, 3)  # 2 x 3 regions of 4 x 4
    assert regions.shape == (12, 3, 4, 4)
    # batch item 1, region (row 1, column 2) comes 1*6 + 1*3 + 2 = 11th
    torch.testing.assert_close(regions[11], x[1, :, 4:8, 8:12])
    torch.testing.assert_close(regions[1], x[0, :, 0:4, 4:8])
    torch.testing.assert_close(coc._from_regions(regions, 2, 3), x)


def test_coordinates_are_appended_as_row_then_column():
    x = torch.zeros(2, 3, 5, 9)
    out = coc.ContextCluster._with_coordinates(x)
    assert out.shape == (2, 5, 5, 9)
    assert torch.equal(out[:, :3], x)
    rows, cols = out[0, 3], out[0, 4]
    torch.testing.assert_close(rows[:, 0], torch.linspace(-0.5, 0.5, 5))
    torch.testing.assert_close(cols[0, :], torch.linspace(-0.5, 0.5, 9))
    assert torch.equal(rows, rows[:, :1].expand(5, 9)) and torch.equal(cols, cols[:1].expand(5, 9))


def test_each_point_is_dispatched_from_exactly_one_centre():
    """With v = identity-like values, every output point equals sim * its own cluster's aggregate."""
    torch.manual_seed(2)
    mixer = coc.Cluster(dim=4, out_dim=4, proposal_w=2, proposal_h=2, fold_w=1, fold_h=1, heads=1, head_dim=4)
    captured = {}
    mixer.proj.register_forward_hook(lambda mod, inp, out: captured.update(pre=inp[0]))
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        mixer(x)
        feats = mixer.f(x).flatten(2).transpose(1, 2)[0]  # [N, d]
        values = mixer.v(x).flatten(2).transpose(1, 2)[0]
        centres = mixer.centers_proposal(mixer.f(x)).flatten(2).transpose(1, 2)[0]  # [M, d]
        vcentres = mixer.centers_proposal(mixer.v(x)).flatten(2).transpose(1, 2)[0]
    cos = torch.nn.functional.cosine_similarity(centres[:, None], feats[None], dim=-1)  # [M, N]
    sim = torch.sigmoid(mixer.sim_beta + mixer.sim_alpha * cos).detach()
    best = sim.argmax(0)
    expected = torch.empty_like(values)
    for m in range(4):
        members = best == m
        s = sim[m, members]
        agg = (s[:, None] * values[members]).sum(0) + vcentres[m]
        agg = agg / (s.sum() + 1.0)
        expected[members] = s[:, None] * agg
    got = captured["pre"][0].flatten(1).T
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
