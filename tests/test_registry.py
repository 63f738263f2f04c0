"""The shipped registry.yaml: valid, complete for both decks, and every claim sourced."""

from __future__ import annotations

import re

import pytest

from zoo.cards import parse_document, read_yaml
from zoo.catalog import core_registry_path

FIRST_PARTY_PLUGINS = {
    "fastervit", "efficientmod", "context-cluster", "edgevit", "mobileformer", "tome", "vit-llama", "timm-baselines",
}

EXPECTED_MODELS = [
    *(f"fastervit-{i}" for i in range(7)),
    *(f"fastervit-4-21k-{size}" for size in (224, 384, 512, 768)),
    "efficientmod-xxs", "efficientmod-xs", "efficientmod-s", "efficientmod-s-conv",
    "coc-tiny", "coc-tiny-plain", "coc-small", "coc-medium",
    "deit-t", "deit-s", "deit-b", "vit-s-16", "vit-b-16", "vit-l-16", "clip-vit-b-16",
    "swin-t", "swin-s", "swin-b", "convnext-t", "convnext-s", "convnext-b", "twins-svt-b", "twins-svt-l",
    "mobilenetv2-1.0", "mobilenetv2-1.4", "fasternet-t0", "fasternet-t1", "fasternet-t2",
    "mobileone-s1", "mobileone-s2", "mobileone-s4", "mobilevit-xs", "mobilevitv2-1.0", "mobilevitv2-1.5",
    "efficientformerv2-s0", "efficientformerv2-s1", "efficientformerv2-s2", "efficientformer-l1",
    "efficientnet-b0", "poolformer-s12", "edgevit-xxs", "edgevit-xs", "edgevit-s", "mobileformer-508m",
    "vit-t-llama", "vit-s-llama", "vit-b-llama",
    "tome-deit-s", "tome-deit-t", "tome-vit-s-16", "tome-vit-b-16", "tome-vit-l-16", "tome-mae-vit-l-16",
]

# every paper of the two round-ups (seeds/iclr2023-potpourri.txt, seeds/iclr2024-potpourri.txt)
DECK_PAPERS = {
    "iclr2023": {"vtm", "vit-adapter", "graphcore", "tome", "ligo", "pudnet", "part-aware-ssl", "pixel", "context-cluster"},
    "iclr2024": {
        "vit-llama", "minigpt-v2", "minigpt-4", "seed", "linguistic-image-understanding", "mask-frozen-detr",
        "sgd-finetune", "subtuning", "fastervit", "efficientmod", "defect-spectrum", "slime", "anomalyclip",
        "yolov6", "learning-to-prompt-sam", "sam-clip", "all-seeing", "semi-supervised-defense",
        "simplifying-ssl-detection", "opro", "image-compression-ssl", "autovp",
    },
}
BASELINE_PAPERS = {
    "swin", "convnext", "twins", "mobilenetv2", "fasternet", "mobileone", "mobilevit", "mobilevitv2",
    "efficientformer", "efficientformerv2", "deit", "vit", "efficientnet", "poolformer", "edgevit",
    "mobileformer", "clip", "mae",
}


@pytest.fixture(scope="module")
def doc():
    path = core_registry_path()
    return parse_document(str(path), read_yaml(path))


def test_registry_validates_without_errors(doc) -> None:
    assert [str(e) for e in doc.errors] == []


def test_every_expected_model_exists(doc) -> None:
    assert sorted(set(EXPECTED_MODELS) - set(doc.cards)) == []
    assert len(EXPECTED_MODELS) == len(set(EXPECTED_MODELS)) == 64


def test_every_card_paper_exists(doc) -> None:
    assert sorted(c.name for c in doc.cards.values() if c.paper not in doc.papers) == []


def test_every_reported_block_has_a_source(doc) -> None:
    for card in doc.cards.values():
        if card.reported is not None:
            assert len(card.reported.source.strip()) > 10, card.name


def test_every_plugin_is_first_party(doc) -> None:
    assert {c.name: c.plugin for c in doc.cards.values() if c.plugin not in FIRST_PARTY_PLUGINS} == {}


@pytest.mark.parametrize("deck", sorted(DECK_PAPERS))
def test_every_deck_paper_is_present_and_tagged(doc, deck: str) -> None:
    present = {key for key, paper in doc.papers.items() if paper.deck == deck}
    assert sorted(DECK_PAPERS[deck] - present) == []
    assert sorted(present - DECK_PAPERS[deck]) == []


def test_baseline_papers_present(doc) -> None:
    assert sorted(BASELINE_PAPERS - set(doc.papers)) == []


def test_arxiv_ids_are_well_formed(doc) -> None:
    bad = {k: p.arxiv for k, p in doc.papers.items() if p.arxiv is not None and not re.fullmatch(r"\d{4}\.\d{4,5}", p.arxiv)}
    assert bad == {}


def test_speed_claims_name_device_and_unit(doc) -> None:
    for card in doc.cards.values():
        if card.reported is None:
            continue
        speeds = [card.reported.throughput] if card.reported.throughput else []
        for entry in [*speeds, *card.reported.latency]:
            assert entry.get("device") and entry.get("unit") in ("img/s", "ms"), (card.name, entry)


def test_every_card_has_weights_or_says_why_not(doc) -> None:
    assert sorted(c.name for c in doc.cards.values() if not c.weights and not c.weights_note) == []


def test_deviations_explain_claims_that_exist(doc) -> None:
    # a deviation names a claim of the card (params_m, gmacs, ...) and explains it in a sentence
    for card in doc.cards.values():
        for claim, why in card.deviations.items():
            assert claim in {"params_m", "gmacs", "throughput", "latency"}, (card.name, claim)
            assert len(why) > 40, (card.name, claim)


def test_tome_cards_restate_the_readme_r(doc) -> None:
    expected = {
        "tome-deit-s": 13, "tome-deit-t": 13, "tome-vit-s-16": 13, "tome-vit-b-16": 13,
        "tome-vit-l-16": 7, "tome-mae-vit-l-16": 8,
    }
    got = {name: doc.cards[name].patch for name in expected}
    assert got == {name: f"tome:r={r},prop_attn=true" for name, r in expected.items()}
