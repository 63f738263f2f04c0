"""UPerNet plugin: official key layout (manifests from the official code), strict loading of
synthetic mmseg 0.x checkpoints through the core's path, head shapes, conversion errors, cards."""

from __future__ import annotations

import json
import re
from pathlib import Path
from unittest import mock

import pytest
import torch
from zoo_upernet import model as M
from zoo_upernet import zoo_convert_checkpoint
from zoo_upernet.convert import convert_mmseg, family_of
from zoo_upernet.head import FCNHead, UPerHead

from zoo.errors import WeightsError
from zoo.registry.lookup import get_card
from zoo.weights.checkpoint import load_converted, load_strict

DATA = Path(__file__).parent / "data"
OFFICIAL = ("swin_t", "convnext_t", "twins_svt_b")
TINY = {
    "swin": {"embed_dim": 8, "depths": (2, 2, 2, 2), "num_heads": (1, 2, 2, 4), "window_size": 7},
    "convnext": {"depths": (1, 1, 2, 1), "dims": (8, 16, 24, 32)},
    "twins_svt": {"embed_dims": (8, 16, 24, 32), "num_heads": (1, 2, 2, 4), "depths": (2, 2, 2, 2)},
}
TINY_CARD = {"swin": "upernet-swin-t", "convnext": "upernet-convnext-t", "twins_svt": "upernet-twins-svt-b"}


def _manifest(name: str) -> dict[str, list[int]]:
    return json.loads((DATA / f"official_upernet_{name}.json").read_text())[f"upernet_{name}"]


def _meta_model(builder: str) -> torch.nn.Module:
    # timm's trunc_normal_ init is slow on the meta device (decomposed op by op); the weights are
    # never used here, so ConvNeXt's init is skipped
    if "convnext" not in builder:
        with torch.device("meta"):
            return getattr(M, builder)()
    with mock.patch("timm.models.convnext.named_apply", lambda *a, **k: None), torch.device("meta"):
        return getattr(M, builder)()


def _tiny(family: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = getattr(M, f"upernet_{family}")(num_classes=150, channels=16, **TINY[family])
    with torch.no_grad():  # non-trivial BN statistics and layer scales, so a misplaced tensor shows
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape) + 0.5)
            elif name.endswith(("running_mean", "gamma")) or (name.endswith("bias") and t.dim() == 1):
                t.copy_(0.2 * torch.randn(t.shape))
    return model.eval()


# ConvNeXt's official names, written out independently of the plugin's regex rules
def _convnext_official(key: str) -> str:
    rules = [
        (r"^backbone\.stem\.(\d)\.", r"backbone.downsample_layers.0.\1."),
        (r"^backbone\.stages\.(\d)\.downsample\.(\d)\.", r"backbone.downsample_layers.\1.\2."),
        (r"^backbone\.stages\.(\d)\.blocks\.(\d+)\.conv_dw\.", r"backbone.stages.\1.\2.dwconv."),
        (r"^backbone\.stages\.(\d)\.blocks\.(\d+)\.mlp\.fc1\.", r"backbone.stages.\1.\2.pwconv1."),
        (r"^backbone\.stages\.(\d)\.blocks\.(\d+)\.mlp\.fc2\.", r"backbone.stages.\1.\2.pwconv2."),
        (r"^backbone\.stages\.(\d)\.blocks\.(\d+)\.", r"backbone.stages.\1.\2."),
    ]
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def _official_checkpoint(model: torch.nn.Module, family: str) -> dict:
    """What mmseg 0.x saves: {'meta', 'state_dict'} with backbone./decode_head./auxiliary_head. keys."""
    sd = {(_convnext_official(k) if family == "convnext" else k): v.clone() for k, v in model.state_dict().items()}
    aux = FCNHead(model.backbone.num_features[2], channels=8, num_classes=150)
    sd.update({f"auxiliary_head.{k}": v for k, v in aux.state_dict().items()})
    return {"meta": {"mmseg_version": "0.11.0", "CLASSES": ["c"] * 150}, "state_dict": sd}


# -- fidelity: keys and shapes of the official models ---------------------------------------------

@pytest.mark.parametrize("name", OFFICIAL)
def test_synthetic_official_checkpoint_converts_to_our_keys_and_loads_strictly(name):
    """The official segmentor's keys (manifest, aux head included) -> the plugin's hook -> ours, exactly.

    Meta tensors keep this fast at full size; the core's whole path (file, container, hook, strict
    load) runs on tiny models in test_mmseg_checkpoint_file_loads_strictly_and_reproduces_outputs."""
    manifest = _manifest(name)
    assert any(k.startswith("auxiliary_head.") for k in manifest)
    card = get_card(f"upernet-{name.replace('_', '-')}")
    official = {k: torch.empty(shape, device="meta") for k, shape in manifest.items()}
    converted = zoo_convert_checkpoint(card=card, state_dict=official)
    model = _meta_model(f"upernet_{name}")
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(converted) - set(ours)) == [] and sorted(set(ours) - set(converted)) == []
    assert {k: list(v.shape) for k, v in converted.items()} == ours
    model.load_state_dict(converted, strict=True, assign=True)
    assert zoo_convert_checkpoint(card=card, state_dict=converted).keys() == converted.keys()  # idempotent


@pytest.mark.parametrize("name", OFFICIAL)
def test_auxiliary_head_is_dropped_deliberately_and_is_an_fcn_head(name):
    """The checkpoints' auxiliary_head.* is mmseg's FCNHead (our FCNHead has its keys); the converter drops it."""
    manifest = _manifest(name)
    aux = {k[len("auxiliary_head."):]: v for k, v in manifest.items() if k.startswith("auxiliary_head.")}
    in_ch = aux["convs.0.conv.weight"][1]
    head = FCNHead(in_ch, channels=256, num_classes=150)
    assert {k: list(v.shape) for k, v in head.state_dict().items()} == aux
    converted = convert_mmseg({k: torch.zeros(1) for k in manifest}, family_of(f"upernet_{name}"))
    assert not any(k.startswith("auxiliary_head.") for k in converted)
    assert len(converted) == len(manifest) - len(aux)


# -- strict loading of synthetic checkpoints through the core, tiny models --------------------------

@pytest.mark.parametrize("family", list(TINY))
def test_mmseg_checkpoint_file_loads_strictly_and_reproduces_outputs(family, tmp_path):
    source = _tiny(family, seed=1)
    path = tmp_path / "ckpt.pth"
    torch.save(_official_checkpoint(source, family), path)
    card = get_card(TINY_CARD[family])
    state = load_converted(card, path)
    target = _tiny(family, seed=2)
    load_strict(target, state, card, str(path))
    x = torch.randn(2, 3, 60, 76)  # stage maps 15x19, 8x10, 4x5, 2x3: window, merge and patch padding
    with torch.no_grad():
        want, got = source(x), target(x)
    assert got.shape == (2, 150, 15, 19)
    assert torch.equal(got, want)


def test_convnext_key_map_names_every_official_key():
    source = _tiny("convnext")
    official = _official_checkpoint(source, "convnext")["state_dict"]
    assert "backbone.downsample_layers.0.0.weight" in official
    assert "backbone.stages.2.1.pwconv1.weight" in official and "backbone.stages.2.1.gamma" in official
    converted = convert_mmseg(official, "convnext")
    assert set(converted) == set(source.state_dict())
    assert torch.equal(converted["backbone.stages.2.blocks.1.mlp.fc1.weight"], official["backbone.stages.2.1.pwconv1.weight"])


# -- conversion errors: one located line ----------------------------------------------------------

@pytest.mark.parametrize("attack", ["missing", "extra", "shape"])
def test_bad_checkpoint_is_one_located_line(attack, tmp_path):
    source = _tiny("swin")
    ckpt = _official_checkpoint(source, "swin")
    sd = ckpt["state_dict"]
    if attack == "missing":
        del sd["decode_head.fpn_bottleneck.conv.weight"]
        needle = "1 missing keys: decode_head.fpn_bottleneck.conv.weight"
    elif attack == "extra":
        sd["backbone.layers.9.blocks.0.norm1.weight"] = torch.zeros(8)
        needle = "1 unexpected keys: backbone.layers.9.blocks.0.norm1.weight"
    else:
        sd["backbone.norm0.weight"] = torch.zeros(9)
        needle = "1 shape differences: backbone.norm0.weight (9,) vs model (8,)"
    path = tmp_path / "bad.pth"
    torch.save(ckpt, path)
    card = get_card("upernet-swin-t")
    with pytest.raises(WeightsError) as err:
        load_strict(_tiny("swin"), load_converted(card, path), card, str(path))
    message = str(err.value)
    assert needle in message and "\n" not in message and str(path) in message


def test_wrong_family_and_aux_only_checkpoints_are_located_lines(tmp_path):
    card = get_card("upernet-convnext-t")
    swin_file, aux_file = tmp_path / "swin.pth", tmp_path / "aux.pth"
    torch.save(_official_checkpoint(_tiny("swin"), "swin"), swin_file)
    aux_only = _official_checkpoint(_tiny("swin"), "swin")
    aux_only["state_dict"] = {k: v for k, v in aux_only["state_dict"].items() if k.startswith("auxiliary_head.")}
    torch.save(aux_only, aux_file)
    for path in (swin_file, aux_file):
        with pytest.raises(WeightsError) as err:
            load_strict(_tiny("convnext"), load_converted(card, path), card, str(path))
        message = str(err.value)
        assert "missing keys: backbone.stem.0.weight" in message and "unexpected keys: " in message
        assert "\n" not in message


def test_convert_rejects_unknown_family_and_builder():
    with pytest.raises(ValueError, match="unknown UPerNet family 'resnet'"):
        convert_mmseg({}, "resnet")
    with pytest.raises(ValueError, match="builder 'upernet_resnet50' is not an UPerNet builder"):
        family_of("upernet_resnet50")


# -- the head ----------------------------------------------------------------------------------------

def test_uperhead_shapes_and_train_only_dropout():
    torch.manual_seed(0)
    head = UPerHead([4, 8, 12, 16], channels=8, num_classes=3)
    feats = [torch.randn(2, c, s, s + 1) for c, s in zip([4, 8, 12, 16], [16, 8, 4, 2], strict=True)]
    head.eval()
    with torch.no_grad():
        a, b = head(feats), head(feats)
    assert a.shape == (2, 3, 16, 17) and torch.equal(a, b)
    assert [m.output_size for m in (seq[0] for seq in head.psp_modules)] == [1, 2, 3, 6]
    keys = set(head.state_dict())
    assert {"psp_modules.3.1.conv.weight", "bottleneck.bn.running_var", "lateral_convs.2.conv.weight",
            "fpn_convs.0.bn.weight", "fpn_bottleneck.conv.weight", "conv_seg.bias"} <= keys
    assert not any(k.endswith("conv.bias") for k in keys)  # ConvModule: no conv bias before BN
    head.train()
    torch.manual_seed(1)
    assert not torch.equal(head(feats), head(feats))  # Dropout2d(0.1) acts in training only
    with pytest.raises(ValueError, match="expects 4 feature maps, got 3"):
        head(feats[:3])


def test_fcn_head_reads_its_input_index():
    head = FCNHead(12, channels=8, num_classes=3).eval()
    feats = [torch.randn(1, c, s, s) for c, s in zip([4, 8, 12, 16], [16, 8, 4, 2], strict=True)]
    assert head(feats).shape == (1, 3, 4, 4)


# -- cards against the semantic-segmentation task ------------------------------------------------------

def test_cards_validate_against_the_segmentation_task():
    from zoo_segmentation.evaluate import check_output
    from zoo_segmentation.task import settings

    names = [f"upernet-{n}" for n in ("swin-t", "swin-s", "swin-b", "convnext-t", "convnext-s", "convnext-b",
                                      "twins-svt-b", "twins-svt-l", "fastervit-2", "fastervit-3", "fastervit-4")]
    for name in names:
        card = get_card(name)
        cfg = settings(card)
        assert card.task == "semantic-segmentation" and card.num_classes == 150
        assert cfg["normalize"] == {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": True}
        assert cfg["ms"] == {"ratios": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75], "flip": True}
        assert cfg["reduce_zero_label"] and cfg["ignore_index"] == 255
        assert cfg["test"]["resize"] == {"scale": [2048, 512], "keep_ratio": True}
        slide = name.startswith("upernet-convnext")  # the _ss configs slide; Swin and Twins test whole images
        assert cfg["test"]["mode"] == ("slide" if slide else "whole")
        assert cfg["test"]["crop_size"] == ([512, 512] if slide else None)
        assert cfg["test"]["stride"] == ([341, 341] if slide else None)
        claims = {claim for claim, *_ in card.reported.figures()}
        assert claims == {"ade20k.miou", "ade20k.ms_flip.miou"}
        if name.startswith("upernet-twins"):  # the authors' Google Drive checkpoints: cited, never judged
            assert [w["claim"] for w in card.reported.other_weights] == ["ade20k.miou", "ade20k.ms_flip.miou"]
            assert card.weights[0].url.startswith("https://download.openmmlab.com/mmsegmentation/v0.5/twins/")
        if name.startswith("upernet-fastervit"):
            assert card.card_only and not card.weights
        else:
            assert len(card.weights) == 1 and card.weights[0].url.endswith(".pth")
    model = _tiny("swin")
    card = get_card("upernet-swin-t")
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    check_output(card, out, 2)  # the task's output contract: (B, 150, h, w) logits
    with pytest.raises(ValueError, match="expected \\(3, 150, h, w\\)"):
        check_output(card, out, 3)
