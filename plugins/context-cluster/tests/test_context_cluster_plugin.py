"""Context Cluster plugin: the entry module, its hooks, and checkpoint conversion."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
import zoo_context_cluster as plugin
from zoo_context_cluster.context_cluster import coc_tiny, convert_official

MANIFEST = json.loads((Path(__file__).parent / "data" / "official_shapes.json").read_text())


def _card(builder: str, plugin_name: str = "context-cluster") -> SimpleNamespace:
    return SimpleNamespace(name=builder.replace("_", "-"), plugin=plugin_name, builder=builder)


def _official_checkpoint(variant: str) -> dict:
    """A file as the official timm train.py saves it: wrapped, DDP-prefixed, with training extras."""
    gen = torch.Generator().manual_seed(0)
    tensors = {f"module.{k}": torch.randn(shape, generator=gen) for k, shape in MANIFEST[variant].items()}
    return {"epoch": 299, "arch": "contextcluster", "state_dict": tensors, "version": 2, "metric": 73.2}


def test_entry_point_is_registered():
    eps = importlib.metadata.entry_points(group="zoo")
    assert [ep.value for ep in eps if ep.name == "context-cluster"] == ["zoo_context_cluster"]


def test_entry_module_does_not_import_torch_or_timm():
    code = "import sys, zoo_context_cluster; print(sorted({'torch', 'timm'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_builders_name_importable_callables():
    builders = plugin.zoo_builders()
    assert sorted(builders) == ["coc_medium", "coc_small", "coc_tiny", "coc_tiny_plain"]
    for target in builders.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), target
    module, _, attr = builders["coc_tiny_plain"].partition(":")
    model = getattr(importlib.import_module(module), attr)(num_classes=5)
    assert model.head.out_features == 5


def test_converter_makes_official_checkpoint_load_strictly():
    raw = _official_checkpoint("coc_tiny")
    # what the core hands over: the container removed, prefixes left to whoever handles them
    state = dict(raw["state_dict"])
    state["some_counter"] = 3  # non-tensor entries are dropped
    converted = plugin.zoo_convert_checkpoint(card=_card("coc_tiny"), state_dict=state)
    model = coc_tiny()
    result = model.load_state_dict(converted, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    key = "network.4.3.token_mixer.f.weight"  # stage 3, fourth block
    assert torch.equal(model.state_dict()[key], raw["state_dict"][f"module.{key}"])
    assert "some_counter" in state and "module.patch_embed.proj.weight" in state  # input left untouched


def test_converter_is_idempotent_and_returns_a_new_dict():
    state = {k.removeprefix("module."): v for k, v in _official_checkpoint("coc_tiny")["state_dict"].items()}
    once = convert_official(state)
    twice = convert_official(once)
    assert once is not state and twice is not once
    assert list(once) == list(state) == list(twice)
    assert all(twice[k] is once[k] for k in once)


def test_converter_answers_only_for_this_plugin():
    state = {"head.weight": torch.zeros(2, 2)}
    assert plugin.zoo_convert_checkpoint(card=_card("faster_vit_0", "fastervit"), state_dict=state) is None
