"""The ViT-LLaMA builders against data generated from the official code (tests/data, see README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from zoo_vit_llama import vit_llama as vl

from zoo.measure.bench import count_params
from zoo.models.lightbuild import light_build

DATA = Path(__file__).parent / "data"
SHAPES: dict[str, dict[str, list[int]]] = json.loads((DATA / "official_shapes.json").read_text())
LOGITS = json.loads((DATA / "official_logits.json").read_text())
VARIANTS = ["vit_llama_tiny_patch16_224", "vit_llama_small_patch16_224", "vit_llama_base_patch16_224"]
WIDTH = {"vit_llama_tiny_patch16_224": 192, "vit_llama_small_patch16_224": 384, "vit_llama_base_patch16_224": 768}
SMALL_LLAMA = {"dim": 64, "n_heads": 4, "multiple_of": 32}  # a shrunk block for cheap forwards

# LLaMA-7B's last layer: 4 attention maps 4096^2, SwiGLU 3 x 4096 x 11008, 2 RMSNorms; + the final RMSNorm
LLAMA_BLOCK = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096 + 4096


def fill(shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Deterministic weights, the same function tests/data/official_logits.json was made with."""
    out = {}
    for i, (k, shape) in enumerate(shapes.items()):
        n = 1
        for d in shape:
            n *= d
        arg = (torch.arange(n, dtype=torch.int64) % 9973).to(torch.float32) * (0.37 + 0.011 * i) + 0.5 * i
        values = torch.sin(arg).reshape(shape)
        norm = k.endswith(".weight") and len(shape) == 1
        out[k] = values.mul_(0.1).add_(1.0) if norm else values.mul_(0.05)
    return out


def small_input() -> torch.Tensor:
    return torch.linspace(-2.0, 2.0, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32).sin()


def sized(name: str, **kwargs) -> torch.nn.Module:
    with light_build():
        return getattr(vl, name)(**kwargs)


def test_manifest_covers_every_variant():
    assert sorted(SHAPES) == sorted(VARIANTS) == sorted(LOGITS)


@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_equals_official_keys_order_and_shapes(name):
    ours = [(k, list(v.shape)) for k, v in sized(name).state_dict().items()]
    assert ours == list(SHAPES[name].items())


@pytest.mark.parametrize("name", VARIANTS)
def test_param_counts_and_frozen_block(name):
    model = sized(name)
    d = WIDTH[name]
    vit = d + 197 * d + (768 * d + d) + 12 * (2 * 2 * d + 3 * d * d + 3 * d + d * d + d + 8 * d * d + 5 * d) + 2 * d
    head = 1000 * d + 1000
    mappers = 2 * 4096 * d
    assert count_params(model) == vit + head + mappers + LLAMA_BLOCK
    assert count_params(model) == sum(torch.Size(s).numel() for s in SHAPES[name].values())
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert frozen == LLAMA_BLOCK == 202_387_456
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("llama."))


def test_logits_equal_the_official_model_at_full_llama_size():
    """ViT-T-LLaMA with the real LLaMA-7B block dims, at 32x32 (5 tokens) to stay cheap."""
    name = "vit_llama_tiny_patch16_224"
    model = sized(name, img_size=32)
    model.load_state_dict(fill({k: v.shape for k, v in model.state_dict().items()}), strict=True, assign=True)
    with torch.inference_mode():
        out = model.eval()(small_input())
    ref = LOGITS[name]
    assert out.argmax(-1).tolist() == ref["argmax"]
    torch.testing.assert_close(out[:, :10], torch.tensor(ref["first10"]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.sum(-1), torch.tensor(ref["sum"]), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_shapes_with_a_shrunk_llama_block(name):
    torch.manual_seed(0)
    model = getattr(vl, name)(num_classes=10, llama=SMALL_LLAMA).eval()
    assert model.llama.layers[0].feed_forward.w1.weight.shape == (192, 64)  # 2/3 * 256 = 170 -> 192
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        feats = model.forward_features(x)
        pre = model.forward_head(feats, pre_logits=True)
        out = model(x)
        head = model.head(pre)
    assert feats.shape == (2, 197, WIDTH[name])
    assert pre.shape == (2, WIDTH[name]) and out.shape == (2, 10)
    torch.testing.assert_close(out, head)
    model.reset_classifier(3)
    with torch.inference_mode():
        assert model(x).shape == (2, 3)


def test_the_block_sits_between_the_vit_blocks_and_the_final_norm():
    """Zeroing mapper2 removes the block's contribution: features = norm(0) = the LayerNorm's bias."""
    model = vl.vit_llama_tiny_patch16_224(llama=SMALL_LLAMA, img_size=32).eval()
    with torch.no_grad():
        model.llama_dim_mapper2.weight.zero_()
        model.norm.bias.uniform_()
        feats = model.forward_features(small_input())
    torch.testing.assert_close(feats, model.norm.bias.detach().expand_as(feats))


def test_wrong_input_size_is_a_clear_error():
    model = vl.vit_llama_tiny_patch16_224(llama=SMALL_LLAMA, img_size=32)
    with pytest.raises(ValueError, match=r"input size \(64, 64\) does not match the model's \(32, 32\)"):
        model(torch.zeros(1, 3, 64, 64))
