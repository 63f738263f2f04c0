"""FasterViT plugin: sizes against the cards, official checkpoint layout, forward at 224."""

from __future__ import annotations

import pytest
import torch

import zoo.api
from zoo.measure.bench import count_params
from zoo.models.lightbuild import light_build
from zoo.weights import checkpoint

FASTERVIT_CARDS = [f"fastervit-{n}" for n in range(7)] + [f"fastervit-4-21k-{s}" for s in (224, 384, 512, 768)]


@pytest.mark.parametrize("name", FASTERVIT_CARDS)
def test_params_match_the_card_or_the_card_explains(name):
    card = zoo.api.get_card(name)
    with light_build():
        model = zoo.api.get_builder(card)(num_classes=card.num_classes)
    measured = count_params(model) / 1e6
    if abs(measured - card.reported.params_m) <= 0.05:
        return
    assert "params_m" in card.deviations, f"{name}: builds {measured:.2f} M, card reports {card.reported.params_m} M"


def test_fastervit_4_records_the_readme_vs_code_difference():
    card = zoo.api.get_card("fastervit-4")
    assert card.reported.params_m == 424.6
    assert "365.5" in card.deviations["params_m"] or "365.6" in card.deviations["params_m"]


def test_official_checkpoint_layout_loads_strictly_and_predicts():
    card = zoo.api.get_card("fastervit-0")
    torch.manual_seed(0)
    model = zoo.api.create_model("fastervit-0")
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        expected = model(x)
    assert expected.shape == (1, 1000)
    # the official training script saves {'state_dict': ...} from DDP; some files wrap an encoder
    official = {"state_dict": {f"module.encoder.{k}": v.clone() for k, v in model.state_dict().items()}, "epoch": 310}
    state = checkpoint.convert(card, checkpoint.unwrap(official))
    assert checkpoint.convert(card, dict(state)).keys() == state.keys()  # idempotent
    fresh = zoo.api.create_model("fastervit-0")
    checkpoint.load_strict(fresh, state, card, origin="test checkpoint")
    with torch.inference_mode():
        assert torch.equal(fresh(x), expected)
    del state["head.weight"]
    with pytest.raises(Exception, match="1 missing keys: head.weight"):
        checkpoint.load_strict(zoo.api.create_model("fastervit-0"), state, card, origin="test checkpoint")


def test_builder_never_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the official builder tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    model = zoo.api.get_builder(zoo.api.get_card("fastervit-0"))(pretrained=True, model_path="/nonexistent")
    assert sum(p.numel() for p in model.parameters()) > 0
