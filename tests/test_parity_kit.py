"""zoo.devkit.kit.parity (#10 item 22): two tiny models, an "official" one and ours with renamed keys."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from zoo import api
from zoo.devkit import kit
from zoo.errors import UserError


class Official(nn.Module):
    """conv + BN + layer scale (init 1e-5, as ConvNeXt/PoolFormer) + a square mixer + head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.gamma = nn.Parameter(1e-5 * torch.ones(8))
        self.mix = nn.Linear(8, 8)
        self.fc = nn.Linear(8, 5)
        self.register_buffer("index", torch.arange(8))

    def forward(self, x):
        x = self.bn(self.conv(x)).mean((2, 3))
        x = x + self.gamma * self.mix(x)
        return self.fc(x[:, self.index])


class Ours(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.layer_scale = nn.Parameter(torch.ones(8))
        self.mixer = nn.Linear(8, 8)
        self.head = nn.Linear(8, 5)
        self.register_buffer("index", torch.arange(8))

    def forward(self, x):
        x = self.stem(x).mean((2, 3))
        x = x + self.layer_scale * self.mixer(x)
        return self.head(x[:, self.index])


RENAMES = {"conv.": "stem.0.", "bn.": "stem.1.", "gamma": "layer_scale", "mix.": "mixer.", "fc.": "head."}


def convert(sd):
    out = {}
    for key, value in sd.items():
        for old, new in RENAMES.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


SMALL = {"input_size": (3, 8, 8)}


def test_a_right_converter_passes():
    report = kit.parity(Ours, Official, convert=convert, name="tiny", **SMALL)
    assert report.ok and report.keys_ok and report.outputs_ok and report.same_order is True
    assert report.missing == report.unexpected == report.shapes == [] and report.error is None
    assert report.keys == 13 and report.params_official == report.params_ours == 3 * 8 * 9 + 8 + 16 + 8 + 72 + 45
    assert report.max_abs_diff == 0.0 and report.max_abs_output > 0.1
    assert "  outputs equal: max |diff| 0" in report.lines()[-1]
    json.dumps(report.as_dict())


def test_every_float_tensor_is_randomised_including_norm_statistics_and_layer_scales():
    official = Official()
    before = copy.deepcopy(official.state_dict())
    report = kit.parity(Ours, official, convert=convert, name="tiny", **SMALL)
    after = official.state_dict()
    for key, value in before.items():
        if value.is_floating_point():
            assert not torch.equal(after[key], value), f"{key} kept its initial value"
    assert (after["bn.running_var"] > 0).all() and not torch.allclose(after["bn.running_var"], torch.ones(8))
    assert after["bn.running_mean"].abs().max() > 0
    assert after["gamma"].abs().min() > 0.5  # the layer scale now matters (it was 1e-5)
    assert torch.equal(after["index"], torch.arange(8)) and torch.equal(after["bn.num_batches_tracked"], torch.tensor(0))
    assert report.kept == ["index", "bn.num_batches_tracked"]  # state-dict order
    assert report.randomized == {"weight": 3, "bias/running_mean": 5, "running_var": 1,
                                 "scale (norm weight, layer scale)": 2}
    # seeded: the same weights every run
    again = Official()
    kit.randomize_state(again, seed=0)
    assert all(torch.equal(again.state_dict()[k], after[k]) for k in after)


def test_a_missed_key_is_named():
    def drops(sd):
        out = convert(sd)
        del out["stem.1.running_var"]
        return out

    report = kit.parity(Ours, Official, convert=drops, name="tiny", **SMALL)
    assert not report.ok and report.missing == ["stem.1.running_var"] and report.unexpected == []
    assert "  missing from the converted state dict: stem.1.running_var" in report.lines()
    assert report.max_abs_diff is None  # not loadable strictly: no outputs compared


def test_a_wrong_shape_and_an_unexpected_key_are_named():
    def wrong(sd):
        out = convert(sd)
        out["head.weight"] = out["head.weight"][:4]
        out["head.extra"] = torch.zeros(1)
        return out

    report = kit.parity(Ours, Official, convert=wrong, name="tiny", **SMALL)
    assert report.shapes == ["head.weight: ours (5, 8) vs converted (4, 8)"]
    assert report.unexpected == ["head.extra"]
    lines = report.lines()
    assert "  shape differs: head.weight: ours (5, 8) vs converted (4, 8)" in lines
    assert "  unexpected in the converted state dict: head.extra" in lines


def test_a_permuted_weight_is_caught_by_the_outputs_and_pointed_at():
    def transposes(sd):
        out = convert(sd)
        out["mixer.weight"] = out["mixer.weight"].t().contiguous()  # same shape, wrong layout
        return out

    report = kit.parity(Ours, Official, convert=transposes, name="tiny", **SMALL)
    assert report.keys_ok and not report.outputs_ok and not report.ok
    assert report.suspects == ["mixer.weight: holds official 'mix.weight''s values in another order "
                               "(transposed or permuted?)"]
    lines = report.lines()
    assert any(line.startswith("  outputs DIFFER: max |diff|") for line in lines)
    assert lines[-1] == "  suspect: " + report.suspects[0]


def test_layer_scale_at_its_init_would_hide_the_permutation():
    """Why the kit randomises: with the official init (gamma = 1e-5) the transposed mixer passes."""
    def transposes(sd):
        out = convert(sd)
        out["mixer.weight"] = out["mixer.weight"].t().contiguous()
        return out

    hidden = kit.parity(Ours, Official, convert=transposes, randomize=False, atol=1e-4, rtol=1e-4, **SMALL)
    assert hidden.ok
    assert not kit.parity(Ours, Official, convert=transposes, atol=1e-4, rtol=1e-4, **SMALL).ok


def test_a_converter_that_raises_is_one_line():
    def broken(sd):
        raise KeyError("conv.weight")

    report = kit.parity(Ours, Official, convert=broken, name="tiny", **SMALL)
    assert not report.ok and report.error == "the converter raised KeyError: 'conv.weight'"
    assert report.lines()[1] == "  error: the converter raised KeyError: 'conv.weight'"


def test_inputs_dtype_and_same_order():
    x = [torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 6)]  # square and non-square
    report = kit.parity(Official, Official, inputs=x, dtype=torch.float64)
    assert report.ok and report.same_order is True and report.name == "Official"


def test_manifest_is_written_one_key_per_line_and_merged(tmp_path):
    path = tmp_path / "data" / "official_shapes.json"
    kit.parity(Ours, Official, convert=convert, name="tiny-a", manifest_path=path, **SMALL)
    kit.parity(Ours, Official, convert=convert, name="tiny-b", manifest_path=path, **SMALL)
    manifest = json.loads(path.read_text())
    assert list(manifest) == ["tiny-a", "tiny-b"]
    assert manifest["tiny-a"] == {k: list(v.shape) for k, v in Official().state_dict().items()}
    assert '    "conv.weight": [8, 3, 3, 3],\n' in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["official_shapes.json"]  # no temporary file left


def test_a_manifest_that_is_not_json_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "official_shapes.json"
    path.write_text("not json")
    with pytest.raises(UserError, match="is not a JSON manifest"):
        kit.parity(Ours, Official, convert=convert, manifest_path=path, **SMALL)
    assert path.read_text() == "not json"


def test_keys_and_shapes_only_for_models_too_big_to_run():
    from zoo.models.lightbuild import light_build

    with light_build():
        report = kit.parity(Ours(), Official(), convert=convert, compare_outputs=False, **SMALL)
    assert report.keys_ok and report.max_abs_diff is None and not report.ok
    assert report.lines()[-1] == "  outputs not compared"


PLUGIN = '''
from zoo import hookimpl

@hookimpl
def zoo_builders():
    return {"ours": "zoo_thirdparty_parity.nets:Ours"}

@hookimpl
def zoo_convert_checkpoint(card, state_dict):
    if card.plugin != "parity":
        return None
    from zoo_thirdparty_parity.nets import convert
    return convert(state_dict)
'''

REGISTRY = '''
papers:
  p: {title: "P", venue: "ICLR 2024", license: MIT}
models:
  parity-tiny:
    paper: p
    task: image-classification
    plugin: parity
    builder: ours
    input_size: [3, 8, 8]
    num_classes: 5
    weights_key: state_dict_ema
'''


def test_the_cards_conversion_path_is_used(install_plugin, tmp_path, monkeypatch):
    import inspect

    nets = inspect.getsource(Official) + inspect.getsource(Ours) + f"RENAMES = {RENAMES!r}\n" + inspect.getsource(convert)
    install_plugin("zoo-thirdparty-parity", {"parity": "zoo_thirdparty_parity"},
                   {"zoo_thirdparty_parity/__init__.py": PLUGIN,
                    "zoo_thirdparty_parity/nets.py": "import torch\nfrom torch import nn\n\n" + nets})
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    api.reset()
    assert kit.parity(Ours, Official, convert="parity-tiny", **SMALL).ok
    card = kit.card_for("parity", "ours")
    assert card.name == "parity-tiny" and kit.parity(Ours, Official, convert=card, **SMALL).ok
    # without the plugin's converter the official keys do not fit ours: the path really ran the hook
    identity = kit.parity(Ours, Official, **SMALL)
    assert "conv.weight" in identity.unexpected and "stem.0.weight" in identity.missing
    with pytest.raises(UserError, match="no card of plugin 'parity' uses builder 'nope'"):
        kit.card_for("parity", "nope")
