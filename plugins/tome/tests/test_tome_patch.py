"""ToMe patch: parity at r=0, exact token schedule, proportional attention, refusals, option parsing."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn as nn
from zoo_tome.merge import bipartite_soft_matching, merge_tokens
from zoo_tome.patch import ToMeConfig, apply, token_schedule

from zoo.errors import PatchError


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is faster, and far faster on a shared, loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# small random-init timm ViTs (224 input keeps the real 197-token sequence)
TINY = dict(embed_dim=64, depth=4, num_heads=2)


def _vit(name: str = "vit_tiny_patch16_224", **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, **{**TINY, **kwargs}).eval()


def _images(batch: int = 2, size: int = 224) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def _token_counts(model: nn.Module, x: torch.Tensor) -> tuple[list[int], list[int]]:
    """Tokens entering each block's attention and its MLP (after the merge), read with hooks."""
    before, after = [], []
    hooks = []
    for block in model.blocks:
        hooks.append(block.norm1.register_forward_hook(lambda m, i, o: before.append(i[0].shape[1])))
        hooks.append(block.norm2.register_forward_hook(lambda m, i, o: after.append(i[0].shape[1])))
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return before, after


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("vit_tiny_patch16_224", {}),
        ("vit_small_patch16_224", dict(depth=2)),  # real ViT-S width, 2 blocks
        ("deit_tiny_distilled_patch16_224", {}),
        ("vit_tiny_patch16_224", dict(init_values=0.3, qk_norm=True)),  # LayerScale + q/k norm
        ("vit_tiny_patch16_224", dict(global_pool="avg", fc_norm=True)),  # MAE fine-tune layout
    ],
)
def test_r0_reproduces_unpatched_logits(name: str, kwargs: dict) -> None:
    model = _vit(name, img_size=112, **kwargs)
    if kwargs.get("init_values"):  # make LayerScale and q/k norm non-trivial so that skipping them shows
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim == 1:
                    p.add_(torch.rand_like(p) * 0.5)
    x = _images(size=112)
    with torch.no_grad():
        ref = model(x)
        out = apply(model, r=0, prop_attn=True)(x)
    assert type(model).__name__.startswith("ToMe")
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_r13_merges_exactly_r_tokens_per_block() -> None:
    model = apply(_vit(depth=6), r=13)
    before, after = _token_counts(model, _images())
    assert before == [197, 184, 171, 158, 145, 132]
    assert after == [184, 171, 158, 145, 132, 119]
    assert model.tome_size.shape == (2, 119, 1)
    # every patch is counted exactly once: sizes sum to the 196 patches + the class token
    assert torch.all(model.tome_size.sum(dim=1) == 197)
    assert torch.all(model.tome_size[:, 0] == 1)  # the class token is never merged


def test_large_r_is_clamped_to_half_of_the_mergeable_tokens() -> None:
    model = apply(_vit(depth=12, embed_dim=32), r=100)
    before, after = _token_counts(model, _images(1))
    assert after == [99, 50, 26, 14, 8, 5, 3, 2, 2, 2, 2, 2]
    assert before == [197] + after[:-1]
    assert token_schedule(197, 12, 100) == before + [after[-1]]


def test_distillation_token_is_protected() -> None:
    model = apply(_vit("deit_tiny_distilled_patch16_224"), r=40)
    before, after = _token_counts(model, _images())
    # 198 tokens, two protected: at most (198 - 2) // 2 merge per block
    assert after == [158, 118, 78, 40]
    assert torch.all(model.tome_size[:, :2] == 1)
    assert torch.all(model.tome_size.sum(dim=1) == 198)


def test_constant_schedule_matches_token_schedule_for_vit_s() -> None:
    assert token_schedule(197, 12, 13) == [197 - 13 * i for i in range(13)]
    assert token_schedule(198, 2, 200, protected=2) == [198, 100, 51]


def test_prop_attn_changes_the_output_and_r_changes_it_more() -> None:
    model = _vit(img_size=112)
    x = _images(size=112)
    with torch.no_grad():
        ref = model(x)
        apply(model, r=16, prop_attn=False)
        plain = model(x)
        apply(model, r=16, prop_attn=True)
        prop = model(x)
    assert (plain - ref).abs().max() > 1e-3
    assert (prop - plain).abs().max() > 1e-4


def test_avg_pool_is_weighted_by_token_size() -> None:
    model = apply(_vit(global_pool="avg", fc_norm=True, img_size=112), r=10)
    x = _images(size=112)
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
    size = model.tome_size
    weighted = (feats[:, 1:] * size[:, 1:]).sum(1) / 49
    torch.testing.assert_close(pooled, model.fc_norm(weighted))
    assert not torch.allclose(pooled, model.fc_norm(feats[:, 1:].mean(1)), atol=1e-4)


def test_merge_is_a_size_weighted_average() -> None:
    # tokens 0 (class), 1, 2, 3: token 2 (A) is identical to token 3 (B) and must merge into it
    metric = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]]])
    matching = bipartite_soft_matching(metric, r=1, class_token=True)
    assert matching is not None and matching.src.tolist() == [[1]] and matching.dst.tolist() == [[1]]
    x = torch.tensor([[[0.0], [10.0], [2.0], [5.0]]])
    size = torch.tensor([[[1.0], [1.0], [3.0], [1.0]]])
    merged, new_size = merge_tokens(matching, x, size)
    # kept A tokens first (class token), then B tokens; B[1] = (3 * 2 + 1 * 5) / 4
    assert merged.flatten().tolist() == [0.0, 10.0, 2.75]
    assert new_size.flatten().tolist() == [1.0, 1.0, 4.0]
    assert bipartite_soft_matching(metric, r=0) is None


def test_trace_source_maps_outputs_to_input_patches() -> None:
    model = apply(_vit(depth=2), r=20, trace_source="true")
    with torch.no_grad():
        model(_images())
    source = model.tome_source
    assert source.shape == (2, 157, 197)
    assert torch.all(source.sum(dim=-1) == model.tome_size[..., 0])  # a token covers `size` patches
    assert torch.all(source.sum(dim=1) == 1)  # each input patch ends up in exactly one token


def test_layerscale_and_qk_norm_are_applied_when_merging() -> None:
    """With r > 0 the patched block must still use ls1/ls2 and q/k norm: zeroing them changes the output."""
    model = apply(_vit(init_values=0.5, qk_norm=True, img_size=112), r=8)
    x = _images(size=112)
    with torch.no_grad():
        out = model(x)
        for block in model.blocks:
            block.ls2.gamma.mul_(2.0)
            block.attn.k_norm.weight.mul_(3.0)
        changed = model(x)
    assert (changed - out).abs().max() > 1e-3


def test_defaults_are_the_official_timm_patchs() -> None:
    """facebookresearch/ToMe tome/patch/timm.py: apply_patch(model, trace_source=False, prop_attn=True); model.r = 0."""
    assert ToMeConfig() == ToMeConfig(r=0, prop_attn=True, trace_source=False)
    model = apply(_vit(img_size=112))
    assert (model.r, model._tome.prop_attn, model._tome.trace_source) == (0, True, False)


def test_default_patch_gives_the_logits_of_prop_attn_true() -> None:
    x = _images(size=112)
    with torch.no_grad():
        default = apply(_vit(img_size=112), r=16)(x)
        official = apply(_vit(img_size=112), r=16, prop_attn=True)(x)
        plain = apply(_vit(img_size=112), r=16, prop_attn=False)(x)
    torch.testing.assert_close(default, official, rtol=0, atol=0)
    assert (default - plain).abs().max() > 1e-4  # the option matters, so the default is tested


def test_patching_again_changes_only_the_options_given() -> None:
    model = apply(_vit(), r=13, prop_attn=False, trace_source=True)
    apply(model, r=8)  # e.g. --patch tome:r=8 over a card's own patch
    assert (model.r, model._tome.prop_attn, model._tome.trace_source) == (8, False, True)


def test_zoo_patch_spec_uses_the_official_defaults() -> None:
    from zoo.api import parse_patch

    name, options = parse_patch("tome:r=13")
    model = apply(_vit(), **options)
    assert (name, model.r, model._tome.prop_attn, model._tome.trace_source) == ("tome", 13, True, False)


def test_options_are_parsed_from_strings() -> None:
    model = apply(_vit(), r="13", prop_attn="True", trace_source="0")
    assert (model.r, model._tome.prop_attn, model._tome.trace_source) == (13, True, False)
    apply(model, r=4.0, prop_attn="off")  # re-applying only updates the options
    assert (model.r, model._tome.prop_attn) == (4, False)
    model.r = "7"
    assert model.r == 7
    for bad in (dict(r="many"), dict(r=-1), dict(r=2.5), dict(r=True), dict(prop_attn="maybe")):
        with pytest.raises(PatchError, match="tome: option"):
            apply(model, **bad)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: nn.Linear(2, 2), "Linear is not supported: ToMe patches timm VisionTransformer"),
        (lambda: _vit(reg_tokens=4, global_pool="avg"), "with 4 register tokens"),
        (lambda: _vit(global_pool="map"), "global_pool='map' is not supported"),
        (lambda: _vit(global_pool="max"), "global_pool='max' is not supported"),
        (lambda: _vit("vit_small_patch16_224", depth=2, block_fn=_parallel()),
         "blocks.0 is a ParallelScalingBlock"),
        (lambda: _vit(block_fn=_res_post()), "blocks.0 is a ResPostBlock"),
        (lambda: _vit(attn_layer="diff"), "blocks.0.attn is a DiffAttention"),
        (lambda: timm.create_model("eva02_tiny_patch14_224", depth=1), "Eva is not supported"),
    ],
)
def test_unsupported_models_are_refused(build, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        apply(build(), r=8)


def _parallel():
    from timm.models.vision_transformer import ParallelScalingBlock

    return ParallelScalingBlock


def _res_post():
    from timm.models.vision_transformer import ResPostBlock

    return ResPostBlock


def test_attention_mask_is_refused_while_merging() -> None:
    model = apply(_vit(), r=4)
    with pytest.raises(PatchError, match="attn_mask"):
        model.forward_features(_images(1), attn_mask=torch.zeros(197, 197))
