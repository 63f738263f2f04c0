"""#10 items 7 and 8 (conversion): hostile checkpoints are one line each and cost no more memory
than the file holds; shared storage is written once; a killed `cache add` leaves a visible,
removable temporary file; a plugin's converter only ever converts its own cards."""

from __future__ import annotations

import functools
import io
import os
import pickle
import signal
import subprocess
import sys
import zipfile
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import PluginError, WeightsError
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog
from zoo.weights import cache, checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_weights import assert_loaded, official_checkpoint  # noqa: E402
from test_weights import env as _weights_env  # noqa: E402

TESTS = Path(__file__).parent
run = CliRunner().invoke


@pytest.fixture
def env(tmp_path, monkeypatch):
    yield from _weights_env.__wrapped__(tmp_path, monkeypatch)


def saved(obj: object, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def legacy_bomb() -> bytes:
    """A pre-zip torch file whose pickle declares a 32 GiB float storage and holds 64 bytes."""

    marker = object()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 2**33) if obj is marker else None

    class Rebuild:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (marker, 0, (2**33,), (1,), False, {}))

    buf = io.BytesIO()
    for part in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                                "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(part, buf, protocol=2)
    Pickler(buf, protocol=2).dump({"state_dict": {"w": Rebuild()}})
    pickle.dump(["0"], buf, protocol=2)
    buf.write((2**33).to_bytes(8, "little") + b"\0" * 64)
    return buf.getvalue()


def zip_bomb() -> bytes:
    """A torch zip whose storage member is deflated: 64 MiB of zeros in about 70 KB."""
    src = zipfile.ZipFile(io.BytesIO(saved({"state_dict": {"w": torch.zeros(1 << 24)}})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return out.getvalue()


def hostile() -> dict[str, tuple[bytes, str]]:
    base = torch.randn(1 << 20)  # 4 MiB
    return {
        "sparse": (saved({"state_dict": {"w": torch.sparse_coo_tensor([[0]], [1.0], (3,))}}), "'w' is a sparse tensor"),
        "meta": (saved({"state_dict": {"w": torch.empty(3, device="meta")}}), "'w' is a meta tensor"),
        "quantized": (saved({"state_dict": {"w": torch.quantize_per_tensor(torch.randn(3), 0.1, 0, torch.qint8)}}),
                      "'w' is a quantized tensor"),
        "nested list": (saved({"state_dict": {"blocks": [torch.randn(2), torch.randn(2)]}}),
                        "entry 'blocks' holds tensors inside a list"),
        "nested dict": (saved({"state_dict": {"w": torch.zeros(1), "blocks": {"0": {"w": torch.randn(2)}}}}),
                        "entry 'blocks' holds tensors inside a dict"),
        "plain pickle": (pickle.dumps(101), "cannot read checkpoint"),
        "saved int": (saved(101), "checkpoint holds a int"),
        "saved list": (saved([torch.randn(2)]), "checkpoint holds a list"),
        "expanded stride": (saved({"state_dict": {"w": torch.empty(1).expand(2**33)}}),
                            "would take 34359738368 bytes as dense copies from 4 bytes of storage"),
        "overlapping views": (saved({"state_dict": {f"v{i}": base[i:i + (1 << 20) - 300] for i in range(300)}}),
                              "from 4194304 bytes of storage"),
        "legacy bomb": (legacy_bomb(), "its storages declare 34359738368 bytes"),
        "zip bomb": (zip_bomb(), "its zip members expand to"),
    }


def test_hostile_checkpoints_are_one_line_each_and_leave_nothing(env, tmp_path):
    env.cards(m={"weights_note": "by hand"})
    for label, (data, message) in hostile().items():
        path = tmp_path / "bad.pth"
        path.write_bytes(data)
        assert len(data) < 5 << 20, label  # every one is small: what it asks for is what is refused
        result = run(cli, ["cache", "add", "m", str(path)])
        assert result.exit_code == 1, (label, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, (label, result.output)
        assert message in result.output, (label, result.output)
        with pytest.raises(WeightsError, match="^[^\n]*$"):  # the same one line through --checkpoint
            zoo.create_model("m", checkpoint=path)
        folder = Path(os.environ["ZOO_HOME"]) / "weights" / "m"
        assert not (folder.exists() and list(folder.iterdir())), (label, list(folder.iterdir()))


def test_tied_weights_are_stored_once_and_come_back_under_both_names(tmp_path):
    shared = torch.randn(256, 256)  # 256 KiB
    state = {"embed.weight": shared, "head.weight": shared, "first_rows": shared[:2], "bias": torch.zeros(3)}
    path = tmp_path / "w.safetensors"
    checkpoint.save_safetensors(state, path)
    assert path.stat().st_size < shared.numel() * 4 + 64 * 1024  # one copy (+ two rows), not two
    back = checkpoint.read_safetensors(path)
    assert set(back) == set(state) and all(torch.equal(back[k], v) for k, v in state.items())


def test_a_4mb_file_of_views_is_refused_not_written_as_gigabytes(env, tmp_path):
    env.cards(m={"weights_note": "by hand"})
    base = torch.randn(1 << 20)  # 4 MiB, viewed 300 times at offsets: 1.26 GB as dense copies
    (tmp_path / "views.pth").write_bytes(saved({"state_dict": {f"v{i}": base[i:i + (1 << 20) - 300] for i in range(300)}}))
    assert (tmp_path / "views.pth").stat().st_size < 5 << 20
    result = run(cli, ["cache", "add", "m", str(tmp_path / "views.pth")])
    assert result.exit_code == 1 and "overlapping views are not weights" in result.output
    assert cache.entries() == []


KILLED_ADD = """
import sys, time
from importlib.metadata import EntryPoint
import safetensors.torch
from zoo import weights
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog

def slow_save(tensors, path, metadata=None):
    with open(path, "wb") as fh:
        fh.write(b"x" * 4096)
        fh.flush()
    print("writing", flush=True)
    time.sleep(120)

safetensors.torch.save_file = slow_save
cat = build_catalog(registry=sys.argv[1], eps=[EntryPoint("wtest", "weights_testplugin", "zoo")])
lookup.catalog = lambda: cat
weights.add_file(cat.get("m"), sys.argv[2])
"""


def test_kill_9_during_cache_add_leaves_a_visible_removable_temporary(env, tmp_path):
    env.cards(m={"weights_note": "by hand"})
    body, ours = official_checkpoint()
    (tmp_path / "w.pth").write_bytes(body)
    child = subprocess.Popen([sys.executable, "-c", KILLED_ADD, str(env.registry), str(tmp_path / "w.pth")],
                             env={**os.environ, "PYTHONPATH": str(TESTS)}, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    folder = Path(os.environ["ZOO_HOME"]) / "weights" / "m"
    [orphan] = list(folder.iterdir())
    assert orphan.name.startswith(".manual.safetensors.") and orphan.name.endswith(".tmp")
    assert cache.entries() == []
    listing = run(cli, ["cache", "ls"])
    assert listing.exit_code == 0 and orphan.name in listing.output and "incomplete" in listing.output
    removed = run(cli, ["cache", "rm", "m"])  # the dead process's lock is free
    assert removed.exit_code == 0 and removed.output.startswith("m: removed ") and not folder.exists()
    assert run(cli, ["cache", "add", "m", str(tmp_path / "w.pth")]).exit_code == 0
    assert_loaded(zoo.create_model("m", pretrained=True), ours)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


GREEDY = '''
from zoo import hookimpl


@hookimpl
def zoo_builders():
    return {"tiny": "weights_testplugin:tiny"}


@hookimpl
def zoo_convert_checkpoint(card, state_dict):
    """Answers for every card, with garbage (a plugin bug), or a verdict on the file (not a bug)."""
    if card.name == "greedy-verdict":
        from zoo.errors import WeightsError
        raise WeightsError(f"{card.name}: this is not an mmseg checkpoint (no decode_head.* keys)")
    return {"list": [1, 2]} if card.name == "greedy-list" else {"x": 1} if card.name != "greedy-none" else None
'''


def test_a_converter_only_converts_its_own_plugins_cards(env, tmp_path, install_plugin):
    import yaml

    install_plugin("zoo-thirdparty-greedy", {"greedy": "zoo_thirdparty_greedy"},
                   {"zoo_thirdparty_greedy/__init__.py": GREEDY})
    body, ours = official_checkpoint()
    (tmp_path / "w.pth").write_bytes(body)
    own = {"paper": "wt", "task": "image-classification", "builder": "tiny", "num_classes": 10}
    doc = {"papers": {"wt": {"title": "Weights test", "venue": "ICLR 2024"}},
           "models": {"m": {**own, "plugin": "wtest"}, "greedy-dict": {**own, "plugin": "greedy"},
                      "greedy-list": {**own, "plugin": "greedy"}, "greedy-verdict": {**own, "plugin": "greedy"}}}
    env.registry.write_text(yaml.safe_dump(doc))
    eps = [EntryPoint("wtest", "weights_testplugin", "zoo"), EntryPoint("greedy", "zoo_thirdparty_greedy", "zoo")]
    cat = build_catalog(registry=env.registry, eps=eps)
    assert not cat.errors, cat.errors
    env.mp.setattr(lookup, "catalog", functools.cache(lambda: cat))
    assert_loaded(zoo.create_model("m", checkpoint=tmp_path / "w.pth"), ours)  # wtest's card: wtest's converter
    with pytest.raises(PluginError, match=r"^plugin 'greedy': zoo_convert_checkpoint for 'greedy-dict' returned a "
                                          r"dict with 'x' -> int, expected names -> tensors$"):
        zoo.create_model("greedy-dict", checkpoint=tmp_path / "w.pth")
    result = run(cli, ["cache", "add", "greedy-list", str(tmp_path / "w.pth")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "'list' -> list, expected names -> tensors" in result.output
    assert cache.entries() == []
    # a converter's WeightsError is its verdict on the user's file, passed on as is (not "plugin ... raised")
    with pytest.raises(WeightsError, match=r"^greedy-verdict: this is not an mmseg checkpoint \(no decode_head"):
        zoo.create_model("greedy-verdict", checkpoint=tmp_path / "w.pth")
