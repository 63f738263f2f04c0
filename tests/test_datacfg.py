"""Every model zoo builds carries its card's data config (#10 item 15).

``timm.data.resolve_data_config({}, model=zoo.create_model(name))`` must give the card's
preprocessing for every card, timm's or not. Models are built with their big tensors on the meta
device and weight initialisation skipped (the data config does not depend on weights), so the
whole file runs in seconds per card.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
from timm.data import resolve_data_config
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

import zoo
from zoo.api import catalog
from zoo.errors import ZooWarning
from zoo.models.datacfg import apply_card_cfg
from zoo.registry.cards import Card, Preprocess


class _cheap_build(TorchFunctionMode):  # noqa: N801 - a context manager, like torch.device("meta")
    """Big tensors on the meta device, small ones real (builders that call ``.item()`` still work);
    in-place initialisers on meta tensors are skipped (timm's trunc_normal_ on meta is slow)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get("device") is None:
            out = func(*args, **{**kwargs, "device": "meta"})
            return func(*args, **kwargs) if out.numel() <= 4096 else out
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__") and args and isinstance(args[0], torch.Tensor) \
                and args[0].is_meta:
            return args[0]
        return func(*args, **kwargs)


def _installed_cards() -> list[str]:
    cat = catalog()
    names = []
    for name, card in sorted(cat.cards.items()):
        if card.card_only:  # nothing to build: its claims are cited only
            continue
        try:
            cat.require_installed(card)
        except zoo.errors.ZooError:
            continue
        names.append(name)
    return names


CARDS = _installed_cards()


def _expected(card: Card) -> dict:
    pre = card.preprocess
    return {"input_size": tuple(card.input_size), "interpolation": pre.interpolation, "crop_pct": pre.crop_pct,
            "crop_mode": pre.crop_mode, "mean": tuple(pre.mean), "std": tuple(pre.std)}


def test_first_party_cards_are_all_here():
    # every first-party plugin is installed in this checkout (make install): the test covers them all
    assert len(CARDS) >= 60 and {"convnext-t", "fastervit-2", "tome-vit-s-16", "vit-t-llama"} <= set(CARDS)


@pytest.mark.parametrize("name", CARDS)
def test_resolve_data_config_of_a_built_model_is_the_cards(name):
    card = zoo.get_card(name)
    with warnings.catch_warnings(), _cheap_build():
        warnings.simplefilter("ignore", FutureWarning)  # the official fastervit package's timm imports
        model = zoo.create_model(name)
    assert resolve_data_config({}, model=model) == _expected(card)
    # timm's test-size keys of another tag must not override the card either
    assert resolve_data_config({}, model=model, use_test_size=True) == _expected(card)
    assert model.default_cfg == model.pretrained_cfg
    assert model.pretrained_cfg.get("num_classes") == card.num_classes  # absent: no classifier (AnomalyCLIP)


def test_convnext_t_is_built_with_its_weights_tag():
    """The issue's example: timm's default convnext_tiny tag is in12k_ft_in1k (crop 0.95); the card's weights are fb_in1k."""
    with _cheap_build():
        model = zoo.create_model("convnext-t")
    cfg = model.pretrained_cfg
    assert (cfg["tag"], cfg["hf_hub_id"], cfg["crop_pct"]) == ("fb_in1k", "timm/convnext_tiny.fb_in1k", 0.875)
    assert "test_input_size" not in cfg and "test_crop_pct" not in cfg  # fb_in1k's 288 test size is not the card's


def test_builder_num_classes_wins_over_the_card():
    with _cheap_build():
        model = zoo.create_model("deit-t", num_classes=10)
    assert model.pretrained_cfg["num_classes"] == 10


def _card(**preprocess) -> Card:
    return Card(name="demo", paper="p", task="image-classification", plugin="x", builder="tiny",
                input_size=(3, 160, 160), num_classes=7, preprocess=Preprocess(**preprocess))


def test_a_model_that_is_not_timms_gets_a_data_config():
    card = _card(interpolation="bilinear", crop_pct=0.95, crop_mode="squash", mean=(0.5, 0.5, 0.5))
    model = apply_card_cfg(nn.Linear(3, 7), card)
    assert resolve_data_config({}, model=model) == {
        "input_size": (3, 160, 160), "interpolation": "bilinear", "crop_pct": 0.95, "crop_mode": "squash",
        "mean": (0.5, 0.5, 0.5), "std": (0.229, 0.224, 0.225)}
    assert model.pretrained_cfg["num_classes"] == 7 and model.pretrained_cfg["architecture"] == "tiny"


def test_a_read_only_pretrained_cfg_is_a_warning_not_a_crash():
    class Frozen(nn.Module):
        @property
        def pretrained_cfg(self):
            return {"crop_pct": 0.5}

    with pytest.warns(ZooWarning, match="model 'demo': cannot set pretrained_cfg on Frozen"):
        model = apply_card_cfg(Frozen(), _card())
    assert isinstance(model, Frozen)
