"""The restricted unpickler (zoo.weights.unpickle) and the zoo_read_checkpoint hook (issue #11, #12).

Checkpoints are made here the way YOLOv6 makes its official ``.pt``: a whole module of a class that
lives in the training repo, pickled with ``torch.save``. The class's module is then removed from
sys.modules, sys.path and the disk, so nothing can import it while zoo reads the file.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import textwrap
import zipfile
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch
import yaml

import zoo
from zoo.errors import PluginError, WeightsError
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog
from zoo.weights import unpickle

sys.path.insert(0, str(Path(__file__).parent))

OFFICIAL = '''
import os, subprocess, builtins
import torch
from torch import nn

class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.SiLU()

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(Conv(), Conv())
        self.register_buffer("stride", torch.tensor([8.0, 16.0]))
        self.register_buffer("grid", torch.zeros(2), persistent=False)
        self.names = ["person", "car"]

class Tiny(nn.Module):  # the layout of weights_testplugin.tiny
    def __init__(self):
        super().__init__()
        self.num_classes = 10
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 10)

class Evil:
    def __init__(self, call, *args):
        self.call, self.args = call, args
    def __reduce__(self):
        return (self.call, self.args)
'''


@pytest.fixture
def official(tmp_path, monkeypatch):
    """``make(build) -> path``: ``build(module)`` returns the object to torch.save; the module then vanishes."""
    src = tmp_path / "officialsrc"
    src.mkdir()
    name = f"yolov6_official_{os.getpid()}_{len(os.listdir(tmp_path))}"
    (src / f"{name}.py").write_text(OFFICIAL)
    made = iter(range(100))

    def make(build, filename: str = "w.pt") -> Path:
        sys.path.insert(0, str(src))
        try:
            module = __import__(name)
            torch.manual_seed(next(made))
            obj = build(module)
            path = tmp_path / filename
            torch.save(obj, path)
            return path
        finally:
            sys.modules.pop(name, None)
            sys.path.remove(str(src))

    yield make
    sys.modules.pop(name, None)


def gone(path: Path) -> None:
    """Nothing of the official code is importable any more."""
    for item in path.parent.glob("officialsrc/*.py"):
        item.unlink()


def randomized(model: torch.nn.Module) -> torch.nn.Module:
    for value in model.state_dict().values():
        if value.is_floating_point():
            value.normal_()
    return model


def test_a_whole_pickled_module_is_read_into_its_state_dict_without_importing_its_class(official):
    expected = {}

    def build(m):
        model = randomized(m.Model()).half()
        expected.update({k: v.clone() for k, v in model.state_dict().items()})
        return {"model": model, "ema": None, "epoch": 3, "optimizer": None}

    path = official(build)
    gone(path)
    got = unpickle.read_module_checkpoint(path)
    assert set(got) == set(expected) == {
        "stride", *(f"backbone.{i}.{k}" for i in (0, 1) for k in (
            "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
            "bn.num_batches_tracked"))}
    assert "grid" not in got  # a non-persistent buffer is not part of a state dict
    for key, value in expected.items():
        assert got[key].dtype == value.dtype and torch.equal(got[key], value), key
    assert not any(name.startswith("yolov6_official") for name in sys.modules)


def test_the_key_picks_the_ema_module_and_a_missing_one_is_named(official):
    def build(m):
        return {"model": randomized(m.Model()), "ema": randomized(m.Model())}

    path = official(build)
    model, ema = unpickle.read_module_checkpoint(path), unpickle.read_module_checkpoint(path, key="ema")
    assert not torch.equal(model["stride"] * 0 + model["backbone.0.conv.weight"].sum(),
                           ema["stride"] * 0 + ema["backbone.0.conv.weight"].sum())
    with pytest.raises(WeightsError, match=r"w.pt.*has no 'teacher' entry \(the card's weights_key\)"):
        unpickle.read_module_checkpoint(path, key="teacher")
    with pytest.raises(WeightsError, match=r"its 'epoch' entry is a int, not a pickled module"):
        official(lambda m: {"model": m.Model(), "epoch": 1}, "e.pt")
        unpickle.read_module_checkpoint(path.with_name("e.pt"), key="epoch")


@pytest.mark.parametrize("call", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen", "builtins.open"])
def test_a_reduce_that_would_run_code_builds_nothing(official, tmp_path, call):
    marker = tmp_path / "pwned"
    command = {"os.system": f"touch {marker}", "builtins.eval": f"open({str(marker)!r}, 'w')",
               "builtins.exec": f"open({str(marker)!r}, 'w')", "subprocess.Popen": ["touch", str(marker)],
               "builtins.open": str(marker)}[call]

    def build(m):
        target = {"os.system": os.system, "builtins.eval": eval, "builtins.exec": exec,
                  "subprocess.Popen": subprocess.Popen}.get(call, open)
        args = (command, "w") if call == "builtins.open" else (command,)
        model = m.Model()
        model.payload = m.Evil(target, *args)  # in the module's __dict__, as any attribute would be
        return {"model": model, "payload": m.Evil(target, *args)}

    path = official(build)
    assert not marker.exists()
    got = unpickle.read_module_checkpoint(path)
    assert "backbone.0.conv.weight" in got
    obj = unpickle.load(path)
    assert isinstance(obj["payload"], unpickle.StandIn) and not marker.exists()


def test_a_module_tree_that_contains_itself_or_explodes_is_one_line(official):
    def recursive(m):
        model = m.Model()
        model.backbone[0].add_module("loop", model)
        return {"model": model}

    with pytest.raises(WeightsError, match=r"w.pt.*module tree is recursive: backbone.0.loop contains itself"):
        unpickle.read_module_checkpoint(official(recursive))

    def exploding(m):  # 2**60 paths through 60 modules: the memo makes the file tiny
        node = m.Tiny()
        for _ in range(60):
            parent = torch.nn.Module()
            parent.add_module("a", node)
            parent.add_module("b", node)
            node = parent
        return {"model": node}

    path = official(exploding, "x.pt")
    assert path.stat().st_size < 1 << 20
    with pytest.raises(WeightsError, match=r"x.pt.*module tree is deeper than 200 or larger than 1000000"):
        unpickle.read_module_checkpoint(path)


def rewrite(path: Path, edit) -> Path:
    """A copy of the zip at ``path`` with ``edit(name, data) -> data | None`` applied to each record."""
    out = path.with_name("edited.pt")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = edit(info.filename, src.read(info))
            if data is not None:
                dst.writestr(info, data)
    return out


def test_broken_files_are_one_located_line(official, tmp_path):
    path = official(lambda m: {"model": m.Model()})
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"cut.pt.*not a torch zip checkpoint"):
        unpickle.read_module_checkpoint(cut)
    missing = rewrite(path, lambda name, body: None if name.endswith("/data/0") else body)
    with pytest.raises(WeightsError, match=r"edited.pt.*storage record '.*data/0' is missing"):
        unpickle.read_module_checkpoint(missing)
    short = rewrite(path, lambda name, body: body[:3] if name.endswith("/data/0") else body)
    with pytest.raises(WeightsError, match=r"edited.pt.*storage record '.*data/0' holds 3 bytes, \d+ needed"):
        unpickle.read_module_checkpoint(short)
    garbage = rewrite(path, lambda name, body: b"\x80\x02garbage" if name.endswith("data.pkl") else body)
    with pytest.raises(WeightsError, match=r"edited.pt.*cannot read it as a pickled torch checkpoint"):
        unpickle.read_module_checkpoint(garbage)
    nothing = official(lambda m: {"model": None, "epoch": 1}, "n.pt")
    with pytest.raises(WeightsError, match=r"n.pt.*holds no pickled module under 'model' or 'ema'"):
        unpickle.read_module_checkpoint(nothing)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
@pytest.mark.parametrize("kind, make", [
    ("sparse", lambda: torch.eye(3).to_sparse()),
    ("quantized", lambda: torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.qint8)),
])
def test_sparse_and_quantized_tensors_are_refused(official, kind, make):
    def build(m):
        model = m.Model()
        model.register_buffer("odd", make())
        return {"model": model}

    with pytest.raises(WeightsError, match=rf"w.pt.*{kind} tensor; zoo reads dense tensors only"):
        unpickle.read_module_checkpoint(official(build))


def test_a_tensor_reaching_past_its_storage_is_refused(official):
    def build(m):
        model = m.Model()
        model.register_buffer("view", torch.arange(10.0)[2:4])
        return {"model": model}

    path = official(build)
    # make the 2-element view claim 20 elements of its 10-element storage
    body = zipfile.ZipFile(path).read([n for n in zipfile.ZipFile(path).namelist() if n.endswith("data.pkl")][0])
    assert body.count(b"K\x02K\x02\x85") == 1  # offset 2, size (2,)
    bad = rewrite(path, lambda name, data: data.replace(b"K\x02K\x02\x85", b"K\x02K\x14\x85")
                  if name.endswith("data.pkl") else data)
    with pytest.raises(WeightsError, match=r"edited.pt.*a tensor of size \(20,\) reaches element 21 of a storage "
                                           r"record holding 10"):
        unpickle.read_module_checkpoint(bad)


# -- through the core: zoo_read_checkpoint and the core's own fallback ------------------------------------------

PLUGIN = '''
import os
from zoo import hookimpl

@hookimpl
def zoo_builders():
    return {"tiny": "weights_testplugin:tiny"}

@hookimpl
def zoo_read_checkpoint(card, path):
    mode = os.environ.get("RC_MODE", "none")
    if mode == "none":
        return None
    if mode == "raise":
        raise RuntimeError("cannot parse this")
    if mode == "exit":
        raise SystemExit(3)
    if mode == "list":
        return [1, 2]
    if mode == "empty":
        return {}
    if mode == "junk":
        return {"stem.weight": "not a tensor"}
    from zoo.weights.unpickle import read_module_checkpoint
    state = read_module_checkpoint(path, key="ema")
    os.environ["RC_ASKED"] = card.name
    return state
'''

OTHER = '''
from zoo import hookimpl

@hookimpl
def zoo_read_checkpoint(card, path):
    raise RuntimeError("the other plugin must never be asked")
'''


@pytest.fixture
def core(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo"))
    monkeypatch.delenv("RC_ASKED", raising=False)
    site = tmp_path / "site"
    site.mkdir()
    (site / "rc_plugin.py").write_text(PLUGIN)
    (site / "rc_other.py").write_text(OTHER)
    monkeypatch.syspath_prepend(str(site))
    registry = tmp_path / "registry.yaml"

    def cards(**fields):
        doc = {"papers": {"rc": {"title": "Read checkpoint", "venue": "ICLR 2024"}},
               "models": {"rc-tiny": {"paper": "rc", "task": "image-classification", "plugin": "rc",
                                      "builder": "tiny", "num_classes": 10, **fields}}}
        registry.write_text(yaml.safe_dump(doc))
        cat = build_catalog(registry=registry, eps=[EntryPoint("rc", "rc_plugin", "zoo"),
                                                    EntryPoint("other", "rc_other", "zoo")])
        monkeypatch.setattr(lookup, "catalog", functools.cache(lambda: cat))

    cards()
    return cards


def tiny_checkpoint(official, ema: bool = False) -> tuple[Path, dict[str, torch.Tensor]]:
    expected: dict[str, torch.Tensor] = {}

    def build(m):
        model, other = randomized(m.Tiny()), randomized(m.Tiny())
        expected.update({k: v.clone() for k, v in (other if ema else model).state_dict().items()})
        return {"model": model, "ema": other if ema else None, "epoch": 300}

    return official(build), expected


def weight_files() -> list[Path]:
    return [p for p in Path(os.environ["ZOO_HOME"]).rglob("*.safetensors")]


def test_the_core_reads_a_pickled_module_itself_when_the_plugin_does_not(core, official, monkeypatch):
    path, expected = tiny_checkpoint(official)
    gone(path)
    model = zoo.create_model("rc-tiny", checkpoint=path)
    for key, value in expected.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert os.environ.get("RC_ASKED") is None  # the plugin was asked, said None


def test_the_plugins_reader_answers_first(core, official, monkeypatch):
    monkeypatch.setenv("RC_MODE", "read")
    path, expected = tiny_checkpoint(official, ema=True)
    model = zoo.create_model("rc-tiny", checkpoint=path)
    assert os.environ["RC_ASKED"] == "rc-tiny"
    for key, value in expected.items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("mode, message", [
    ("raise", "zoo_read_checkpoint for 'rc-tiny' raised RuntimeError: cannot parse this"),
    ("exit", "zoo_read_checkpoint for 'rc-tiny' raised SystemExit: 3"),
    ("list", "zoo_read_checkpoint for 'rc-tiny' returned list, expected a dict"),
    ("empty", "zoo_read_checkpoint for 'rc-tiny' returned an empty dict"),
    ("junk", "zoo_read_checkpoint for 'rc-tiny' returned a dict with 'stem.weight' -> str, expected names -> tensors"),
])
def test_a_failing_reader_is_charged_to_its_plugin_and_nothing_is_cached(core, official, monkeypatch, tmp_path,
                                                                         mode, message):
    from click.testing import CliRunner

    from zoo.cli import cli

    monkeypatch.setenv("RC_MODE", mode)
    path, _ = tiny_checkpoint(official)
    with pytest.raises(PluginError, match=message.replace("(", r"\(")) as info:
        zoo.create_model("rc-tiny", checkpoint=path)
    assert info.value.plugin == "rc"
    result = CliRunner().invoke(cli, ["cache", "add", "rc-tiny", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert message in result.output and "'rc'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert weight_files() == []


def test_a_refused_pickle_without_a_module_keeps_torchs_refusal(core, official, tmp_path):
    marker = tmp_path / "pwned"
    path = official(lambda m: {"state_dict": {"stem.weight": torch.zeros(1)}, "x": m.Evil(os.system, f"touch {marker}")})
    with pytest.raises(WeightsError, match="refusing to load .*w.pt.* never runs pickled code"):
        zoo.create_model("rc-tiny", checkpoint=path)
    assert not marker.exists() and weight_files() == []


def test_the_cards_weights_key_picks_the_module(core, official):
    core(weights_key="ema")
    path, expected = tiny_checkpoint(official, ema=True)
    model = zoo.create_model("rc-tiny", checkpoint=path)
    for key, value in expected.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_legacy_format_is_named_not_read(tmp_path):
    path = tmp_path / "old.pt"
    buf = io.BytesIO()
    torch.save({"a": torch.zeros(1)}, buf, _use_new_zipfile_serialization=False)
    path.write_bytes(buf.getvalue())
    with pytest.raises(WeightsError, match=textwrap.dedent(r"old.pt.*legacy pre-1.6 format")):
        unpickle.read_module_checkpoint(path)
