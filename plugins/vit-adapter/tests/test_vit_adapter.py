"""ViT-Adapter plugin: official key layout (manifest from the official code), strict loading of synthetic
mmseg checkpoints through the core's path, deformable attention against an independent sampler,
padding of inputs that are not multiples of 32, cards against the segmentation task."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from zoo_upernet.head import FCNHead
from zoo_vit_adapter import model as M
from zoo_vit_adapter import zoo_convert_checkpoint
from zoo_vit_adapter.adapter import deform_inputs, reference_points
from zoo_vit_adapter.backbone import ViTAdapter
from zoo_vit_adapter.convert import convert_mmseg
from zoo_vit_adapter.msda import MSDeformAttn, ms_deform_attn

from zoo.errors import WeightsError
from zoo.registry.lookup import get_card
from zoo.weights.checkpoint import load_converted, load_strict

DATA = Path(__file__).parent / "data"
VARIANTS = ("t", "s", "b")
# every part of the real model at a fraction of its width: 4 interactions of one block each,
# 6 deformable heads over 48 channels, deform_ratio 0.5 (B's narrow value projection)
TINY = {"embed_dim": 48, "depth": 4, "num_heads": 3, "deform_num_heads": 6, "deform_ratio": 0.5,
        "conv_inplane": 8, "interaction_indexes": [[0, 0], [1, 1], [2, 2], [3, 3]], "drop_path_rate": 0.0}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The models here are tiny: one thread avoids thread hand-off costs that dominate on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _manifest(variant: str) -> dict[str, list[int]]:
    return json.loads((DATA / "official_vit_adapter.json").read_text())[f"vit_adapter_{variant}"]


def _tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = M.vit_adapter_t(channels=16, **TINY)  # ADE20K's 150 classes, as the card
    with torch.no_grad():  # non-trivial norms, gammas and offsets, so a misplaced tensor shows
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape) + 0.5)
            elif name.endswith(("running_mean", "gamma", "bias")):
                t.copy_(0.2 * torch.randn(t.shape))
            elif name.endswith("sampling_offsets.weight"):
                t.copy_(0.5 * torch.randn(t.shape))
    return model.eval()


def _official_checkpoint(model: torch.nn.Module) -> dict:
    """What mmseg 0.20 saves: {'meta', 'state_dict'} with backbone./decode_head./auxiliary_head. keys."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    aux = FCNHead(model.backbone.embed_dim, channels=8, num_classes=150)
    sd.update({f"auxiliary_head.{k}": v for k, v in aux.state_dict().items()})
    meta = {"mmseg_version": "0.20.2+", "config": "model = dict(type='EncoderDecoder')", "CLASSES": ["c"] * 150,
            "PALETTE": [[120, 120, 120]] * 150, "iter": 160000}
    return {"meta": meta, "state_dict": sd}


# -- fidelity: keys and shapes of the official models ---------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_official_keys_convert_to_ours_exactly(variant):
    """The official segmentor's keys (manifest, aux head included) -> the plugin's hook -> ours, shape for shape."""
    manifest = _manifest(variant)
    assert any(k.startswith("auxiliary_head.") for k in manifest)
    card = get_card(f"vit-adapter-{variant}")
    official = {k: torch.empty(shape, device="meta") for k, shape in manifest.items()}
    converted = zoo_convert_checkpoint(card=card, state_dict=official)
    with torch.device("meta"):
        model = getattr(M, f"vit_adapter_{variant}")()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(converted) ^ set(ours)) == []
    assert {k: list(v.shape) for k, v in converted.items()} == ours
    assert list(converted) == list(ours)  # same registration order as the official module
    model.load_state_dict(converted, strict=True, assign=True)
    assert zoo_convert_checkpoint(card=card, state_dict=converted).keys() == converted.keys()  # idempotent


def test_manifest_holds_the_configs_architecture():
    """Config facts read off the official manifests: widths, deform_ratio, cffn_ratio, n_points, extra extractors."""
    for variant, dim, heads, value in (("t", 192, 6, 192), ("s", 384, 6, 384), ("b", 768, 12, 384)):
        m = _manifest(variant)
        assert m["backbone.pos_embed"] == [1, 197, dim] and m["backbone.level_embed"] == [3, dim]
        attn = "backbone.interactions.0.injector.attn"
        assert m[f"{attn}.sampling_offsets.weight"] == [heads * 3 * 4 * 2, dim]  # 3 levels x 4 points x (x, y)
        assert m[f"{attn}.value_proj.weight"] == [value, dim]  # int(dim * deform_ratio)
        assert m["backbone.interactions.0.extractor.attn.attention_weights.weight"] == [heads * 4, dim]
        assert m["backbone.interactions.1.extractor.ffn.fc1.weight"] == [dim // 4, dim]  # cffn_ratio 0.25
        assert m["backbone.blocks.11.gamma2"] == [dim] and "backbone.blocks.12.gamma2" not in m
        assert sorted({k.split(".")[2] for k in m if ".extra_extractors." in k}) == ["3"]  # last interaction only
        assert m["backbone.norm4.running_var"] == [dim] and m["backbone.up.weight"] == [dim, dim, 2, 2]
        assert m["decode_head.conv_seg.weight"] == [150, 512, 1, 1]


def test_auxiliary_head_is_dropped_deliberately_and_is_an_fcn_head():
    manifest = _manifest("s")
    aux = {k[len("auxiliary_head."):]: v for k, v in manifest.items() if k.startswith("auxiliary_head.")}
    head = FCNHead(384, channels=256, num_classes=150)
    assert {k: list(v.shape) for k, v in head.state_dict().items()} == aux
    converted = convert_mmseg({k: torch.zeros(1) for k in manifest})
    assert not any(k.startswith("auxiliary_head.") for k in converted)
    assert len(converted) == len(manifest) - len(aux)


def test_hook_leaves_other_plugins_cards_alone():
    assert zoo_convert_checkpoint(card=get_card("upernet-swin-t"), state_dict={"auxiliary_head.x": 1}) is None


# -- strict loading of synthetic checkpoints through the core, tiny models --------------------------

@pytest.mark.parametrize("suffix", [".pth", ".pth.tar"])  # the release mixes both (S is .pth, T and B .pth.tar)
def test_mmseg_checkpoint_file_loads_strictly_and_reproduces_outputs(suffix, tmp_path):
    source = _tiny(seed=1)
    path = tmp_path / f"upernet_deit_adapter_tiny_512_160_ade20k{suffix}"
    torch.save(_official_checkpoint(source), path)
    card = get_card("vit-adapter-t")
    state = load_converted(card, path)
    target = _tiny(seed=2)
    load_strict(target, state, card, str(path))
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        want, got = source(x), target(x)
    assert got.shape == (2, 150, 16, 24)
    assert torch.equal(got, want)


class _Hostile:
    """Unpickling this would run ``touch MARKER`` if any reader executed pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        import os

        return (os.system, (f"touch {self.marker}",))


def test_mmcv_meta_with_numpy_scalars_is_read_without_running_pickled_code(tmp_path):
    """mmcv's save_best meta holds numpy scalars: torch's safe loader refuses the file; the plugin's
    zoo_read_checkpoint reads its state_dict with the core's restricted unpickler, running nothing."""
    import numpy as np

    source = _tiny(seed=1)
    ckpt = _official_checkpoint(source)
    marker = tmp_path / "ran"
    ckpt["meta"]["hook_msgs"] = {"best_score": np.float64(0.426), "best_ckpt": "best_mIoU_iter_160000.pth",
                                 "hostile": _Hostile(marker)}
    path = tmp_path / "upernet_deit_adapter_base_512_160k_ade20k.pth.tar"
    torch.save(ckpt, path)
    with pytest.raises(Exception, match="weights_only"):
        torch.load(path, weights_only=True)
    card = get_card("vit-adapter-t")
    target = _tiny(seed=2)
    load_strict(target, load_converted(card, path), card, str(path))
    assert not marker.exists()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))
    del ckpt["state_dict"]
    torch.save(ckpt, path)
    with pytest.raises(WeightsError, match="no mmseg 'state_dict' mapping in it \\(it has: meta\\)"):
        load_converted(card, path)
    assert not marker.exists()


@pytest.mark.parametrize("attack", ["missing", "extra", "shape"])
def test_bad_checkpoint_is_one_located_line(attack, tmp_path):
    ckpt = _official_checkpoint(_tiny())
    sd = ckpt["state_dict"]
    if attack == "missing":
        del sd["backbone.interactions.3.extra_extractors.1.ffn.dwconv.dwconv.weight"]
        needle = "1 missing keys: backbone.interactions.3.extra_extractors.1.ffn.dwconv.dwconv.weight"
    elif attack == "extra":
        sd["backbone.cls_token"] = torch.zeros(1, 1, 48)  # a DeiT key the adapter does not have
        needle = "1 unexpected keys: backbone.cls_token"
    else:
        sd["backbone.level_embed"] = torch.zeros(4, 48)
        needle = "1 shape differences: backbone.level_embed (4, 48) vs model (3, 48)"
    path = tmp_path / "bad.pth"
    torch.save(ckpt, path)
    card = get_card("vit-adapter-t")
    with pytest.raises(WeightsError) as err:
        load_strict(_tiny(), load_converted(card, path), card, str(path))
    message = str(err.value)
    assert needle in message and "\n" not in message and str(path) in message


# -- deformable attention ---------------------------------------------------------------------------

def _bilinear_zeros(img: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Sample (D, H, W) at normalised (x, y), pixel centres at (i + 0.5) / size, zeros outside: written
    point by point, independently of grid_sample."""
    _, h, w = img.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(img.shape[0], dtype=img.dtype)
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * img[:, yy, xx]
    return out


def test_ms_deform_attn_equals_a_point_by_point_sampler():
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 6), (2, 3)]
    n, m, d, q, p = 2, 2, 3, 5, 3
    value = torch.randn(n, sum(h * w for h, w in shapes), m, d, generator=gen, dtype=torch.float64)
    loc = torch.rand(n, q, m, len(shapes), p, 2, generator=gen, dtype=torch.float64) * 1.4 - 0.2  # some outside
    weights = torch.rand(n, q, m, len(shapes), p, generator=gen, dtype=torch.float64)
    got = ms_deform_attn(value, shapes, loc, weights)
    assert got.shape == (n, q, m * d)
    want = torch.zeros(n, q, m, d, dtype=torch.float64)
    for b in range(n):
        start = 0
        for level, (h, w) in enumerate(shapes):
            for head in range(m):
                img = value[b, start:start + h * w, head].T.reshape(d, h, w)
                for i in range(q):
                    for k in range(p):
                        x, y = loc[b, i, head, level, k].tolist()
                        want[b, i, head] += weights[b, i, head, level, k] * _bilinear_zeros(img, x, y)
            start += h * w
    assert torch.allclose(got, want.reshape(n, q, m * d), atol=1e-12)
    with pytest.raises(ValueError, match="2 levels in the sampling locations, 1 level shapes"):
        ms_deform_attn(value, shapes[:1], loc, weights)


def test_msdeformattn_init_and_token_count_check():
    attn = MSDeformAttn(d_model=48, n_levels=3, n_heads=6, n_points=4, ratio=0.5)
    assert attn.value_proj.weight.shape == (24, 48)
    bias = attn.sampling_offsets.bias.view(6, 3, 4, 2)
    assert torch.allclose(bias[0, 1, :, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))  # head 0 points along +x, 1..P
    assert torch.allclose(bias[0, 0, :, 1], torch.zeros(4), atol=1e-6)
    with pytest.raises(ValueError, match="not divisible by n_heads 5"):
        MSDeformAttn(d_model=48, n_heads=5)
    with pytest.raises(ValueError, match="20 input tokens, levels"):
        attn(torch.randn(1, 4, 48), torch.rand(1, 4, 1, 2), torch.randn(1, 20, 48), [(4, 4), (2, 2), (1, 1)])


def test_deform_inputs_levels_and_reference_points():
    (ref_i, shapes_i), (ref_e, shapes_e) = deform_inputs(64, 96)
    assert shapes_i == [(8, 12), (4, 6), (2, 3)] and shapes_e == [(4, 6)]
    assert ref_i.shape == (1, 24, 1, 2) and ref_e.shape == (1, 96 + 24 + 6, 1, 2)
    assert torch.allclose(reference_points([(2, 4)])[0, :, 0], torch.tensor(
        [[0.125, 0.25], [0.375, 0.25], [0.625, 0.25], [0.875, 0.25],
         [0.125, 0.75], [0.375, 0.75], [0.625, 0.75], [0.875, 0.75]]))


# -- the backbone -------------------------------------------------------------------------------------

def test_backbone_maps_and_padding_of_any_size():
    """Multiples of 32 run as the official code; other sizes are zero-padded and cropped to ceil(side/stride)."""
    model = _tiny()
    backbone = model.backbone
    x = torch.randn(1, 3, 50, 70)
    with torch.no_grad():
        feats = backbone(x)
        padded = backbone(torch.nn.functional.pad(x, (0, 26, 0, 14)))
        logits = model(x)
    assert [tuple(f.shape) for f in feats] == [(1, 48, 13, 18), (1, 48, 7, 9), (1, 48, 4, 5), (1, 48, 2, 3)]
    assert [tuple(f.shape) for f in padded] == [(1, 48, 16, 24), (1, 48, 8, 12), (1, 48, 4, 6), (1, 48, 2, 3)]
    for f, p in zip(feats, padded, strict=True):
        assert torch.equal(f, p[:, :, :f.shape[2], :f.shape[3]])
    assert logits.shape == (1, 150, 13, 18)


def test_backbone_uses_position_table_and_rejects_bad_config():
    model = _tiny().backbone
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[2]
        model.pos_embed.add_(1.0)
        after = model(x)[2]
    assert not torch.allclose(before, after)  # the resized table reaches the maps
    with pytest.raises(ValueError, match="must be four \\[first, last\\] pairs"):
        ViTAdapter(**{**TINY, "interaction_indexes": [[0, 1], [2, 3]]})
    with pytest.raises(ValueError, match="below depth 4"):
        ViTAdapter(**{**TINY, "interaction_indexes": [[0, 0], [1, 1], [2, 2], [3, 4]]})
    with pytest.raises(TypeError, match="unknown argument 'window_attn'"):
        M.vit_adapter_b(window_attn=True)
    with pytest.raises(ValueError, match="unknown ViT-Adapter variant 'l'"):
        M.upernet_vit_adapter("l")


# -- cards and the plugin's entry module --------------------------------------------------------------

def test_cards_validate_against_the_segmentation_task():
    from zoo_segmentation.evaluate import check_output
    from zoo_segmentation.task import settings

    assets = {"t": "upernet_deit_adapter_tiny_512_160_ade20k.pth.tar",
              "s": "upernet_deit_adapter_small_512_160k_ade20k.pth",
              "b": "upernet_deit_adapter_base_512_160k_ade20k.pth.tar"}
    figures = {"t": (42.6, 43.6, 36), "s": (46.2, 47.1, 58), "b": (48.8, 49.7, 134)}
    for variant in VARIANTS:
        card = get_card(f"vit-adapter-{variant}")
        cfg = settings(card)
        assert card.task == "semantic-segmentation" and card.num_classes == 150 and card.license == "Apache-2.0"
        assert cfg["normalize"] == {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": True}
        assert cfg["test"] == {"resize": {"scale": [2048, 512], "keep_ratio": True}, "size_divisor": 32,
                               "mode": "slide", "crop_size": [512, 512], "stride": [341, 341]}
        assert cfg["ms"] == {"ratios": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75], "flip": True}
        assert cfg["reduce_zero_label"] and cfg["ignore_index"] == 255
        assert [w.url for w in card.weights] == [
            f"https://github.com/czczup/ViT-Adapter/releases/download/v0.3.1/{assets[variant]}"]
        claims = {claim: figure for claim, _, _, figure in card.reported.figures()}
        ss, ms, params = figures[variant]
        assert claims == {"ade20k.miou": ss, "ade20k.ms_flip.miou": ms} and card.reported.params_m == params
        assert "fd64a51" in card.reported.source and "README" in card.reported.source
    with torch.no_grad():
        out = _tiny()(torch.randn(2, 3, 64, 64))
    check_output(get_card("vit-adapter-t"), out, 2)  # the task's output contract
    with pytest.raises(ValueError, match="expected \\(2, 5, h, w\\)"):
        check_output(type("C", (), {"num_classes": 5})(), out, 2)


def test_entry_module_imports_nothing_heavy():
    code = "import sys, zoo_vit_adapter; print(sorted({'torch', 'timm', 'zoo_upernet'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- through the segmentation task: slide windows, ResizeToMultiple, self-labelled parity ---------------

def _scaled_card(mode: str = "slide", **normalize: object):
    """The vit-adapter-t card's protocol scaled to the demo images: keep-ratio resize, ResizeToMultiple(32), slide."""
    from types import SimpleNamespace

    card = get_card("vit-adapter-t")
    slide = {"crop_size": [32, 32], "stride": [21, 21]} if mode == "slide" else {}
    fields = {**card.fields, "test": {"resize": {"scale": [100, 50], "keep_ratio": True}, "size_divisor": 32,
                                      "mode": mode, **slide}}
    if normalize:
        fields["normalize"] = {**fields["normalize"], **normalize}
    return SimpleNamespace(name=card.name, plugin=card.plugin, num_classes=150, input_size=(3, 64, 64),
                           fields=fields, classes=None)


def test_self_labelled_demo_scores_100_and_wrong_protocols_do_not(tmp_path):
    """The card's protocol (scaled down) end to end through the task: predictions saved as labels score 100."""
    from zoo_segmentation.datasets import ade20k, seg_folder
    from zoo_segmentation.demo import make_demo
    from zoo_segmentation.task import SegmentationOptions

    from zoo.eval.runtime import Runtime

    demo = make_demo(tmp_path / "ade", n_images=2, n_classes=3)
    model, runtime = _tiny(seed=1), Runtime(device="cpu", workers=0, threads=1, progress=False)
    first = evaluate_seg(model, _scaled_card(), ade20k(demo), SegmentationOptions(save_masks=str(tmp_path / "out")),
                         runtime)
    assert first["images"] == 2 and first["protocol"] == "ss"
    own = seg_folder(f"{demo / 'images' / 'validation'},{tmp_path / 'out' / 'masks'}")
    again = evaluate_seg(model, _scaled_card(), own, None, runtime)
    assert again["miou"] == 100.0 and again["aacc"] == 100.0
    # controls that must fail: BGR fed as RGB (seed 1: mIoU 64.7), whole image instead of the windows (39.5)
    control = evaluate_seg(model, _scaled_card(to_rgb=False), own, None, runtime)
    assert control["miou"] < 90.0, control["miou"]
    whole = evaluate_seg(model, _scaled_card("whole"), own, None, runtime)
    assert whole["miou"] < 90.0, whole["miou"]


def evaluate_seg(*args):  # noqa: ANN001, ANN201
    from zoo_segmentation.evaluate import evaluate

    return evaluate(*args)
