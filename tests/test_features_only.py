"""Backbones built as feature extractors (timm's ``features_only``/``out_indices``, #11), and the card's
weights loading into them (remapped onto the extractor's names, strictly; no download: a generated
checkpoint)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import zoo.api
from zoo.errors import UserError, WeightsError


@pytest.fixture(scope="module")
def convnext_checkpoint(tmp_path_factory):
    """convnext-t as the card's classifier, with random weights saved as its checkpoint (built once)."""
    torch.manual_seed(0)
    full = zoo.api.create_model("convnext-t")
    path = tmp_path_factory.mktemp("weights") / "convnext_t.safetensors"
    state = {k: v.contiguous() for k, v in full.state_dict().items()}
    save_file(state, str(path))
    return full, path, state


def test_card_weights_load_into_the_feature_extractor(convnext_checkpoint):
    full, path, _ = convnext_checkpoint
    features = zoo.api.create_model("convnext-t", features_only=True, out_indices=(1, 2, 3), checkpoint=path)
    assert features.feature_info.channels() == [192, 384, 768]  # timm's feature_info for convnext_tiny
    assert features.feature_info.reduction() == [8, 16, 32]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = full.forward_intermediates(x, indices=[1, 2, 3], intermediates_only=True)
        got = features(x)
    assert isinstance(got, list) and [f.shape[1] for f in got] == features.feature_info.channels()
    assert [224 // f.shape[2] for f in got] == features.feature_info.reduction()
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert not features.training and features.pretrained_cfg["crop_pct"] == zoo.api.get_card("convnext-t").preprocess.crop_pct


def test_a_checkpoint_missing_a_backbone_tensor_is_refused_by_name(convnext_checkpoint, tmp_path):
    _, _, state = convnext_checkpoint
    path = tmp_path / "partial.safetensors"
    save_file({k: v for k, v in state.items() if k != "stages.2.downsample.1.weight"}, str(path))
    with pytest.raises(WeightsError) as info:
        zoo.api.create_model("convnext-t", features_only=True, checkpoint=path)
    assert "1 missing keys: stages_2.downsample.1.weight" in str(info.value) and "\n" not in str(info.value)


def test_swin_card_builds_a_feature_extractor_with_timms_channels():
    model = zoo.api.create_model("swin-t", features_only=True, out_indices=(2, 3))
    with torch.no_grad():
        features = model(torch.randn(1, 3, 224, 224))
    assert model.feature_info.channels() == [384, 768]
    assert [f.shape[-1] for f in features] == [384, 768]  # timm's swin features are NHWC
    assert [224 // f.shape[1] for f in features] == model.feature_info.reduction() == [16, 32]


@pytest.mark.parametrize("kwargs, message", [
    ({"out_indices": (1, 2)}, "out_indices is given without features_only=True"),
    ({"features_only": True, "out_indices": []}, "out_indices: expected an int or a non-empty list of ints, got list []"),
    ({"features_only": True, "out_indices": "1,2"}, "expected an int or a non-empty list of ints, got str '1,2'"),
    ({"features_only": True, "out_indices": (1, True)}, "got tuple (1, True)"),
    ({"features_only": True, "out_indices": [1.0]}, "got list [1.0]"),
])
def test_bad_out_indices_is_a_user_error(kwargs, message):
    with pytest.raises(UserError) as info:
        zoo.api.create_model("convnext-t", **kwargs)
    assert message in str(info.value)
