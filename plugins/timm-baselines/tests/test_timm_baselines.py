"""timm-baselines: every card of the plugin builds, and its parameter count is the card's claim.

Models are built on the meta device (no memory, no weights), so the whole file runs in seconds.
"""

from __future__ import annotations

import math
import subprocess
import sys
from decimal import Decimal

import pytest
import torch
import zoo_timm_baselines
from zoo_timm_baselines import builders

from zoo.registry.catalog import build_catalog, core_registry_path

PLUGIN = "timm-baselines"


def _cards():
    catalog = build_catalog(registry=core_registry_path())
    return sorted((c for c in catalog.cards.values() if c.plugin == PLUGIN), key=lambda c: c.name)


CARDS = _cards()


#: ``params_m`` as written in registry.yaml: card figures keep their printed text ('15.0' is not '15')
RAW_PARAMS = {c.name: c.reported.params_m.text for c in CARDS if c.reported and c.reported.params_m is not None}


def _matches_to_precision(count_m: float, reported: str) -> bool:
    """True when ``count_m`` rounded or truncated to ``reported``'s decimals equals it.

    Papers print parameter counts rounded (Swin-S 49.6 -> "50M") or truncated (DeiT-B 86.57 -> "86M").
    """
    decimals = max(0, -Decimal(reported).as_tuple().exponent)
    scale = 10**decimals
    target = round(float(reported) * scale)
    return round(count_m * scale) == target or math.floor(count_m * scale) == target


def _count_params_m(builder_name: str, num_classes: int) -> float:
    with torch.device("meta"):
        model = getattr(builders, builder_name)(num_classes=num_classes)
    return sum(p.numel() for p in model.parameters()) / 1e6


def test_plugin_has_cards() -> None:
    assert len(CARDS) >= 30, [c.name for c in CARDS]


def test_every_card_builder_is_offered() -> None:
    offered = zoo_timm_baselines.zoo_builders()
    missing = sorted(c.builder for c in CARDS if c.builder not in offered)
    assert missing == []
    assert all(ref == f"zoo_timm_baselines.builders:{arch}" for arch, ref in offered.items())


def test_every_offered_builder_has_a_card() -> None:
    assert sorted(zoo_timm_baselines.ARCHS) == sorted({c.builder for c in CARDS})


@pytest.mark.parametrize("card", CARDS, ids=[c.name for c in CARDS])
def test_card_builds_with_reported_params(card) -> None:
    count_m = _count_params_m(card.builder, card.num_classes)
    reported = RAW_PARAMS.get(card.name)
    if reported is None:
        assert "params_m" in card.deviations, f"{card.name}: no reported params_m and no deviation saying why"
        return
    if "params_m" in card.deviations:
        # the deviation must still be needed: a count that now matches means the note is stale
        assert not _matches_to_precision(count_m, reported), f"{card.name}: {count_m:.3f} M matches {reported}"
    else:
        assert _matches_to_precision(count_m, reported), f"{card.name}: built {count_m:.3f} M, card says {reported} M"


def test_weights_are_timm_hub_files() -> None:
    for card in CARDS:
        assert len(card.weights) == 1, card.name
        source = card.weights[0]
        assert source.hub is not None and source.hub.startswith("timm/"), (card.name, source.hub)
        assert source.file == "model.safetensors", card.name


@pytest.mark.parametrize("card", CARDS, ids=[c.name for c in CARDS])
def test_builder_is_the_architecture_and_tag_of_the_cards_weights(card) -> None:
    """timm's pretrained_cfg for the builder's ``<arch>.<tag>`` names the card's hub repo; and no
    builder is an architecture timm itself says is the wrong one for these weights (CLIP: QuickGELU)."""
    from timm.models import get_pretrained_cfg

    model_name = zoo_timm_baselines.MODELS[card.builder]
    arch, _, tag = model_name.partition(".")
    assert arch == card.builder and tag, model_name
    cfg = get_pretrained_cfg(model_name, allow_unregistered=False)
    assert cfg is not None and cfg.tag == tag, model_name
    assert cfg.hf_hub_id == card.weights[0].hub, (card.name, cfg.hf_hub_id, card.weights[0].hub)
    if any("quickgelu model variant" in note for note in (cfg.notes or ())):
        assert "quickgelu" in arch, (card.name, arch, cfg.notes)
    assert cfg.num_classes == card.num_classes, (card.name, cfg.num_classes)


def test_built_model_carries_its_weights_tag() -> None:
    with torch.device("meta"):
        convnext = builders.convnext_tiny()
        clip = builders.vit_base_patch16_clip_quickgelu_224(num_classes=512)
    # timm's default tag for convnext_tiny is in12k_ft_in1k (crop 0.95); the card's weights are fb_in1k (0.875)
    assert (convnext.pretrained_cfg["tag"], convnext.pretrained_cfg["crop_pct"]) == ("fb_in1k", 0.875)
    assert clip.pretrained_cfg["hf_hub_id"] == "timm/vit_base_patch16_clip_224.openai"
    assert type(clip.blocks[0].mlp.act).__name__ == "QuickGELU"


@pytest.mark.parametrize(
    ("count_m", "reported", "expected"),
    [(86.568, "86", True), (49.606, "50", True), (14.983, "15.0", True), (7.885, "7.8", True),
     (14.951, "14.8", False), (304.327, "307", False), (5.57, "5.3", False)],
)
def test_precision_rule(count_m: float, reported: str, expected: bool) -> None:
    assert _matches_to_precision(count_m, reported) is expected


def test_builder_forwards_num_classes_and_timm_kwargs() -> None:
    with torch.device("meta"):
        model = builders.deit_tiny_distilled_patch16_224(num_classes=10, drop_path_rate=0.1)
    assert model.num_classes == 10
    assert model.head.out_features == 10 and model.head_dist.out_features == 10
    assert model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)


def test_builder_output_shape_on_cpu() -> None:
    model = builders.mobilenetv2_100(num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 7)


def test_unknown_builder_is_attribute_error() -> None:
    with pytest.raises(AttributeError, match="resnet50.*not one of the plugin's ARCHS"):
        builders.resnet50  # noqa: B018


def test_entry_module_is_light() -> None:
    code = "import sys, zoo_timm_baselines; sys.exit(int(any(m in sys.modules for m in ('torch', 'timm'))))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
