"""ViG: keys/shapes against the official manifest, outputs against the official tiny reference."""

from __future__ import annotations

import json

import pytest
import torch
from reference import MANIFEST, TINY, TINY_REFERENCE, TINY_SEED, randomise, tiny_input
from zoo_graphcore.model import graphcore_vig_ti
from zoo_graphcore.vig import VisionGNN, knn_indices, vig_ti_224_gelu


def shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(t.shape) for k, t in model.state_dict().items()}


def test_vig_ti_keys_and_shapes_equal_the_official_manifest():
    manifest = json.loads(MANIFEST.read_text())
    assert len(manifest) == 465
    assert shapes(vig_ti_224_gelu()) == manifest
    # GraphCore is the same module plus a memory bank outside the state dict: the checkpoint loads strictly
    model = graphcore_vig_ti()
    assert shapes(model) == manifest
    assert list(model.state_dict()) == list(manifest)  # same order too


def test_vig_ti_knn_schedule_is_the_official_one():
    model = vig_ti_224_gelu()
    # the official DeepGCN prints these for vig_ti_224_gelu (int(linspace(9, 18, 12)), min(i // 4 + 1, 196 // 18))
    assert model.num_knn == [9, 9, 10, 11, 12, 13, 13, 14, 15, 16, 17, 18]
    assert model.dilations == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert [b[0].graph_conv.k for b in model.backbone] == model.num_knn


def test_tiny_outputs_equal_the_official_module():
    ref = json.loads(TINY_REFERENCE.read_text())
    assert ref["config"] == TINY and ref["weights_seed"] == TINY_SEED
    model = VisionGNN(**TINY).eval()
    randomise(model, seed=TINY_SEED)
    model.double()  # float64, as the reference: the kNN graph must not flip on a float32 near-tie
    x = tiny_input().double()
    with torch.no_grad():
        got = {"logits": model(x)}
        got["block3"], got["block4"] = model.block_outputs(x, [3, 4])
    for name, tensor in got.items():
        want = torch.tensor(ref[name], dtype=torch.float64).view(ref["shapes"][name])
        assert tensor.shape == want.shape, name
        assert (tensor - want).abs().max().item() < 1e-4, name
    # the reference is informative: outputs vary, and block 4 is not block 3
    assert torch.tensor(ref["logits"]).std() > 0.1
    assert (got["block3"] - got["block4"]).abs().max() > 0.1


def test_knn_takes_the_nearest_nodes_itself_first():
    angles = torch.tensor([0.0, 0.1, 0.3, 0.7])  # unit vectors: distance grows with the angle between them
    x = torch.stack([angles.cos(), angles.sin()]).reshape(1, 2, 4, 1)
    idx = knn_indices(x, 2)
    assert idx[0, :, 0].tolist() == [0, 1, 2, 3]
    assert idx[0, :, 1].tolist() == [1, 0, 1, 2]


def test_block_outputs_stop_early_and_refuse_bad_indices():
    model = VisionGNN(channels=8, n_blocks=5, k=4, img_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        b3, b4 = model.block_outputs(x, [3, 4])
        full = model.forward_features(x)
        y = model.embed(x)
        for i in range(5):
            y = model.backbone[i](y)
    assert torch.equal(b4, y) and torch.equal(b4, full)
    with pytest.raises(ValueError, match="block indices must lie in 0..4"):
        model.block_outputs(x, [5])


@pytest.mark.parametrize("kwargs, message", [
    ({"channels": 12}, "channels must be a positive multiple of 8"),
    ({"img_size": 100}, "img_size must be a multiple of 16"),
])
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VisionGNN(**kwargs)


def test_an_image_of_another_size_is_one_line_error():
    model = VisionGNN(channels=8, n_blocks=2, k=4, img_size=64)
    with pytest.raises(ValueError, match=r"expected images of 64x64 \(the position embedding is a fixed 4x4 grid\), got \(32, 32\)"):
        model(torch.randn(1, 3, 32, 32))
