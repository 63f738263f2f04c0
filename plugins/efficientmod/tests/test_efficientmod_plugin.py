"""The entry module (hooks) and checkpoint conversion of the efficientmod plugin."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from types import SimpleNamespace

import pytest
import torch
import zoo_efficientmod
from zoo_efficientmod import efficientmod as em

from zoo.registry import lookup

CARD = SimpleNamespace(name="efficientmod-xxs", plugin="efficientmod", builder="efficientmod_xxs")


def official_checkpoint(model: torch.nn.Module, prefix: str = "") -> dict:
    """A checkpoint shaped like the official train.py writes (timm CheckpointSaver._save), minus the
    pickled argparse.Namespace under 'args', which a weights_only load refuses (see README)."""
    raw = {prefix + k: v.clone() for k, v in model.state_dict().items()}
    ema = {prefix + k: v + 1.0 for k, v in model.state_dict().items()}  # distinguishable from raw
    return {
        "epoch": 299,
        "arch": "efficientMod_xxs",
        "state_dict": raw,
        "optimizer": {"state": {}, "param_groups": [{"lr": 4e-3, "params": [0, 1]}]},
        "version": 2,
        "amp_scaler": {"scale": 65536.0, "growth_factor": 2.0},
        "state_dict_ema": ema,
        "metric": 77.1,
    }


def test_builders_hook_names_every_builder_and_they_resolve():
    builders = zoo_efficientmod.zoo_builders()
    assert sorted(builders) == ["efficientmod_s", "efficientmod_s_conv", "efficientmod_xs", "efficientmod_xxs"]
    for name, ref in builders.items():
        module, _, attr = ref.partition(":")
        assert module == "zoo_efficientmod.efficientmod" and attr == name
        assert callable(getattr(em, attr))


def test_entry_point_is_registered():
    eps = [ep for ep in entry_points(group="zoo") if ep.name == "efficientmod"]
    assert [ep.value for ep in eps] == ["zoo_efficientmod"]
    assert eps[0].dist is not None and eps[0].dist.name == "zoo-efficientmod"


def test_entry_module_does_not_import_torch():
    code = "import sys, zoo_efficientmod; zoo_efficientmod.zoo_builders(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_checkpoint_converts_and_loads_strictly(prefix):
    model = em.efficientmod_xxs()
    ckpt = official_checkpoint(model, prefix)
    converted = em.convert_official(ckpt)
    assert set(converted) == set(model.state_dict())
    fresh = em.efficientmod_xxs()
    result = fresh.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # the core's rule: 'state_dict' (what the README's validate.py command loads), values unchanged
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    # a card's weights_key picks the EMA copy, through the same core function
    ema = em.convert_official(ckpt, weights_key="state_dict_ema")
    assert all(torch.equal(ema[k], model.state_dict()[k] + 1.0) for k in model.state_dict())


def test_conversion_is_pure_and_idempotent():
    model = em.efficientmod_xxs()
    ckpt = official_checkpoint(model, "module.")
    before = {k: v.clone() for k, v in ckpt["state_dict_ema"].items()}
    once = em.convert_official(ckpt)
    twice = em.convert_official(once)
    assert once is not ckpt and twice is not once
    assert list(once) == list(twice) and all(torch.equal(once[k], twice[k]) for k in once)
    assert list(ckpt["state_dict_ema"]) == list(before)  # input untouched
    assert all(torch.equal(ckpt["state_dict_ema"][k], v) for k, v in before.items())


def test_bare_state_dict_and_raw_only_checkpoint():
    model = em.efficientmod_xxs()
    sd = model.state_dict()
    assert set(em.convert_official(sd)) == set(sd)  # already ours (what the core hands over)
    raw_only = {"epoch": 1, "state_dict": {k: v + 2.0 for k, v in sd.items()}}
    out = em.convert_official(raw_only)
    assert all(torch.equal(out[k], sd[k] + 2.0) for k in sd)


def test_convert_hook_answers_for_own_cards_only():
    model = em.efficientmod_xxs()
    sd = {"module." + k: v for k, v in model.state_dict().items()}
    other = SimpleNamespace(name="fastervit-2", plugin="fastervit", builder="faster_vit_2")
    assert zoo_efficientmod.zoo_convert_checkpoint(other, sd) is None
    out = zoo_efficientmod.zoo_convert_checkpoint(CARD, sd)
    assert out is not sd and set(out) == set(model.state_dict())
    em.efficientmod_xxs().load_state_dict(out, strict=True)


def test_official_file_round_trip_through_torch_save(tmp_path):
    """What the core does: weights_only load, then convert; no pickled code runs."""
    model = em.efficientmod_xs()
    path = tmp_path / "model_best.pth.tar"
    torch.save(official_checkpoint(model), path)
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    em.efficientmod_xs().load_state_dict(em.convert_official(loaded), strict=True)


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("weights_key", [None, "state_dict_ema"])
def test_one_container_rule_on_every_path(tmp_path, monkeypatch, weights_key):
    """#10 item 17: --checkpoint, `zoo cache add` + pretrained=True and the plugin's own converter take
    the same container: the card's weights_key, else 'state_dict' (validate.py without --use-ema)."""
    import functools

    import yaml
    from click.testing import CliRunner

    import zoo
    from zoo.cli import cli
    from zoo.registry.catalog import build_catalog

    card = {"paper": "em", "task": "image-classification", "plugin": "efficientmod", "builder": "efficientmod_xxs"}
    if weights_key:
        card["weights_key"] = weights_key
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump({"papers": {"em": {"title": "EfficientMod", "venue": "ICLR 2024"}},
                                        "models": {"em-xxs": card}}))
    cat = build_catalog(registry=registry)
    monkeypatch.setattr(lookup, "catalog", functools.cache(lambda: cat))
    torch.manual_seed(0)
    model = em.efficientmod_xxs()
    ckpt = official_checkpoint(model, "module.")
    path = tmp_path / "model_best.pth.tar"
    torch.save(ckpt, path)
    container = weights_key or "state_dict"
    expected = {k.removeprefix("module."): v for k, v in ckpt[container].items()}

    via_checkpoint = zoo.create_model("em-xxs", checkpoint=path).state_dict()
    result = CliRunner().invoke(cli, ["cache", "add", "em-xxs", str(path)])
    assert result.exit_code == 0, result.output
    via_cache = zoo.create_model("em-xxs", pretrained=True).state_dict()
    via_plugin = em.convert_official(torch.load(path, weights_only=True), weights_key=weights_key)
    assert _same(via_checkpoint, expected) and _same(via_cache, expected) and _same(via_plugin, expected)
