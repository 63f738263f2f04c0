"""The plugin's entry module and builders."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import zoo_tome
from zoo_tome import models
from zoo_tome.patch import ToMeVisionTransformer


def test_entry_module_is_light() -> None:
    code = "import sys, zoo_tome; print(sorted({'torch', 'timm'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_hooks_name_importable_callables() -> None:
    assert zoo_tome.zoo_patches() == {"tome": "zoo_tome.patch:apply"}
    builders = zoo_tome.zoo_builders()
    assert set(builders) == set(models.VARIANTS)
    for name, ref in builders.items():
        module, _, attr = ref.partition(":")
        assert module == "zoo_tome.models" and callable(getattr(models, attr)), name


@pytest.mark.parametrize(
    "name, r, params, first_keys",
    [
        # DeiT-S: timm deit_small_patch16_224 has 22,050,664 parameters; ToMe adds none
        ("deit_small_patch16_224_tome", 13, 22_050_664, ["cls_token", "pos_embed", "patch_embed.proj.weight"]),
        ("deit_tiny_patch16_224_tome", 13, 5_717_416, ["cls_token", "pos_embed", "patch_embed.proj.weight"]),
    ],
)
def test_deit_builders_are_patched_timm_models(name: str, r: int, params: int, first_keys: list[str]) -> None:
    model = getattr(models, name)(device="meta")
    assert isinstance(model, ToMeVisionTransformer)
    assert (model.r, model._tome.prop_attn) == (r, True)
    state = model.state_dict()
    assert list(state)[:3] == first_keys and "norm.weight" in state and "fc_norm.weight" not in state
    assert sum(v.numel() for v in state.values()) == params


def test_mae_builder_has_the_mae_finetune_key_layout() -> None:
    """facebookresearch/mae models_vit.py (global_pool=True) adds fc_norm and deletes norm."""
    model = models.mae_vit_large_patch16_tome(device="meta")
    state = model.state_dict()
    assert [k for k in state if not k.startswith("blocks.")] == [
        "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
        "fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias",
    ]
    assert len([k for k in state if k.startswith("blocks.")]) == 24 * 12
    assert state["pos_embed"].shape == (1, 197, 1024) and state["head.weight"].shape == (1000, 1024)
    assert model.fc_norm.eps == 1e-6 and model.global_pool == "avg"
    assert (model.r, model._tome.prop_attn) == (8, True)


def test_builder_options_override_the_paper_defaults() -> None:
    model = models.deit_tiny_patch16_224_tome(num_classes=10, r=0, prop_attn="false", depth=2)
    assert (model.r, model._tome.prop_attn, model.head.out_features, len(model.blocks)) == (0, False, 10, 2)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 10)
