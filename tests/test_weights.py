"""Weights: fetch from a local Hub-protocol server with the real huggingface_hub client and from plain
URLs, verify, convert, cache, load strictly; failures, offline mode, air-gapped bundles."""

from __future__ import annotations

import functools
import io
import json
import os
import socket
import subprocess
import sys
import time
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import OfflineError, WeightsError
from zoo.registry import lookup
from zoo.registry.catalog import build_catalog
from zoo.weights import cache

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import COMMIT, HubServer  # noqa: E402
from weights_testplugin import tiny  # noqa: E402

TESTS = Path(__file__).parent
REPO = "facebook/deit-tiny-patch16-224"


def official_checkpoint(seed: int = 0, drop: str | None = None) -> tuple[bytes, dict[str, torch.Tensor]]:
    """A builder's own weights, saved the way official repos do: wrapped, renamed, `module.` prefixed."""
    torch.manual_seed(seed)
    ours = {k: v.clone() for k, v in tiny(num_classes=10).state_dict().items()}
    for value in ours.values():
        if value.is_floating_point():
            value.normal_()
    renamed = {("module." + ("backbone." + k if not k.startswith("head.") else k)): v for k, v in ours.items()}
    if drop:
        renamed = {k: v for k, v in renamed.items() if not k.endswith(drop)}
    buf = io.BytesIO()
    torch.save({"state_dict": renamed, "epoch": 300, "arch": "tiny"}, buf)
    return buf.getvalue(), ours


def assert_loaded(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    got = model.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


class Env:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp, self.mp = tmp_path, monkeypatch
        self.registry = tmp_path / "registry.yaml"

    def cards(self, **models: dict) -> None:
        """Write a registry of ``models`` (plugin wtest, builder tiny) and make it the catalog."""
        doc = {
            "papers": {"wt": {"title": "Weights test", "venue": "ICLR 2024"}},
            "models": {name: {"paper": "wt", "task": "image-classification", "plugin": "wtest", "builder": "tiny",
                              "num_classes": 10, **fields} for name, fields in models.items()},
        }
        self.registry.write_text(yaml.safe_dump(doc))
        cat = build_catalog(registry=self.registry, eps=[EntryPoint("wtest", "weights_testplugin", "zoo")])
        assert not cat.errors, cat.errors
        self.mp.setattr(lookup, "catalog", functools.cache(lambda: cat))  # keeps api.reset() working

    def place_in_hub_cache(self, repo: str, filename: str, body: bytes) -> Path:
        """Lay out a file the way huggingface_hub caches it (blobs/<sha256>, snapshot symlink, refs/main)."""
        import hashlib

        root = Path(os.environ["HF_HOME"]) / "hub" / f"models--{repo.replace('/', '--')}"
        blob = root / "blobs" / hashlib.sha256(body).hexdigest()
        blob.parent.mkdir(parents=True)
        blob.write_bytes(body)
        snap = root / "snapshots" / COMMIT / filename
        snap.parent.mkdir(parents=True)
        snap.symlink_to(os.path.relpath(blob, snap.parent))
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text(COMMIT)
        return snap


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_OFFLINE", "ZOO_OFFLINE", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub backs off up to 23 s on HTTP 500; its retries still happen, without the waits
    import huggingface_hub.file_download as hf_download
    import huggingface_hub.utils._http as hf_http

    no_wait = types.SimpleNamespace(**{**vars(time), "sleep": lambda s: None})
    monkeypatch.setattr(hf_http, "time", no_wait)
    monkeypatch.setattr(hf_download, "time", no_wait)
    yield Env(tmp_path, monkeypatch)


@pytest.fixture
def hub(env):
    with HubServer() as server:
        env.mp.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def zoo_files() -> list[str]:
    """Weight files in the zoo home (locks and the parsed-cards cache are not weights)."""
    root = Path(os.environ["ZOO_HOME"])
    skip = {"locks", "cards-cache"}
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not skip & set(p.parts))


# -- success paths ---------------------------------------------------------------------------------


def test_hub_download_converts_once_and_later_loads_read_safetensors(env, hub):
    body, ours = official_checkpoint()
    hub.add_hub(REPO, "deit_tiny.pth", body)
    env.cards(**{"deit-t": {"weights": [{"hub": REPO, "file": "deit_tiny.pth"}]}})
    model = zoo.create_model("deit-t", pretrained=True)
    assert_loaded(model, ours)
    [entry] = cache.entries("deit-t")
    assert entry.path.suffix == ".safetensors" and entry.key == entry.sha256[:16]
    assert entry.manifest["source"] == f"hf://{REPO}/deit_tiny.pth" and entry.manifest["size"] == len(body)
    # the raw file stays in the Hugging Face cache, where HF_HOME says
    assert list((Path(os.environ["HF_HOME"]) / "hub").rglob("snapshots/*/deit_tiny.pth"))
    requests = len(hub.log)
    assert_loaded(zoo.create_model("deit-t", pretrained=True), ours)
    assert len(hub.log) == requests  # second load: from the safetensors file, no request


def test_hf_token_is_sent_to_the_hub(env, hub, monkeypatch):
    body, ours = official_checkpoint()
    hub.add_hub(REPO, "deit_tiny.pth", body)
    env.cards(**{"deit-t": {"weights": [{"hub": REPO, "file": "deit_tiny.pth"}]}})
    monkeypatch.setenv("HF_TOKEN", "hf_zootest123")  # set after huggingface_hub was imported
    assert_loaded(zoo.create_model("deit-t", pretrained=True), ours)
    assert hub.authorizations and set(hub.authorizations) == {"Bearer hf_zootest123"}


def test_url_download_resumes_with_range_after_a_dropped_connection(env, hub):
    body, ours = official_checkpoint()
    url, served = hub.add_url("w.pth", body, drop_first_at=700)
    env.cards(m={"weights": [{"url": url}]})
    assert_loaded(zoo.create_model("m", pretrained=True), ours)
    assert hub.requests("GET") == [("GET", "/files/w.pth", None), ("GET", "/files/w.pth", "bytes=700-")]
    assert zoo_files() == [f"weights/m/{cache.entries('m')[0].key}.{ext}" for ext in ("json", "safetensors")]


def test_truncated_body_fails_keeps_part_and_the_next_run_resumes(env, hub):
    body, ours = official_checkpoint()
    url, served = hub.add_url("w.pth", body, truncate_at=900)
    env.cards(m={"weights": [{"url": url}]})
    with pytest.raises(WeightsError, match=r"connection closed after 900 of \d+ bytes"):
        zoo.create_model("m", pretrained=True)
    # only the partial file (and its resume record, if zoo.weights.fetch keeps one), never a complete-looking one
    assert "downloads/m/w.pth.part" in zoo_files()
    assert all(f.startswith("downloads/m/w.pth.part") for f in zoo_files()), zoo_files()
    served.truncate_at = None
    assert_loaded(zoo.create_model("m", pretrained=True), ours)
    assert hub.requests("GET")[-1] == ("GET", "/files/w.pth", "bytes=900-")


def test_hub_resume_after_dropped_connection_and_truncated_hub_body(env, hub):
    body, ours = official_checkpoint()
    hub.add_hub(REPO, "ok.pth", body, drop_first_at=500)
    hub.add_hub(REPO, "cut.pth", official_checkpoint(seed=1)[0], truncate_at=500)  # another blob
    env.cards(a={"weights": [{"hub": REPO, "file": "ok.pth"}]}, b={"weights": [{"hub": REPO, "file": "cut.pth"}]})
    assert_loaded(zoo.create_model("a", pretrained=True), ours)  # huggingface_hub retried the GET itself
    with pytest.raises(WeightsError) as info:
        zoo.create_model("b", pretrained=True)
    assert "\n" not in str(info.value) and "cut.pth" in str(info.value)
    assert not cache.entries("b")


# -- integrity ---------------------------------------------------------------------------------------


def test_corrupted_hub_bytes_fail_against_the_lfs_etag_and_leave_nothing(env, hub):
    body, _ = official_checkpoint()
    served = hub.add_hub(REPO, "w.pth", body, corrupt=True)
    env.cards(m={"weights": [{"hub": REPO, "file": "w.pth"}]})
    with pytest.raises(WeightsError, match=f"sha256 mismatch: got [0-9a-f]{{64}}, the server's ETag is {served.sha256}"):
        zoo.create_model("m", pretrained=True)
    hf_files = [p for p in (Path(os.environ["HF_HOME"]) / "hub").rglob("*") if p.is_file() or p.is_symlink()]
    assert not [p for p in hf_files if "blobs" in p.parts or "snapshots" in p.parts]
    assert zoo_files() == []


def test_corrupted_url_bytes_fail_against_the_card_sha256(env, hub):
    body, _ = official_checkpoint()
    url, served = hub.add_url("w.pth", body, corrupt=True)
    env.cards(m={"weights": [{"url": url, "sha256": served.sha256}]})
    with pytest.raises(WeightsError, match="the card's is " + served.sha256):
        zoo.create_model("m", pretrained=True)
    assert zoo_files() == []


def test_failing_sources_are_each_reported_and_the_next_one_is_tried(env, hub):
    body, ours = official_checkpoint()
    hub.add_hub(REPO, "gated.pth", body, status=403)
    hub.add_hub(REPO, "down.pth", body, status=500)
    url, _ = hub.add_url("w.pth", body)
    bad = [{"hub": REPO, "file": "missing.pth"}, {"hub": REPO, "file": "gated.pth"}, {"hub": REPO, "file": "down.pth"}]
    env.cards(good={"weights": [*bad, {"url": url}]}, bad={"weights": bad})
    assert_loaded(zoo.create_model("good", pretrained=True), ours)
    assert {path for _, path, _ in hub.log} >= {f"/{REPO}/resolve/main/{f}" for f in ("missing.pth", "gated.pth", "down.pth")}
    result = CliRunner().invoke(cli, ["download", "bad"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert "no weight source worked" in line
    assert "[1] hf://facebook/deit-tiny-patch16-224/missing.pth: HTTP 404" in line
    assert "[2] hf://facebook/deit-tiny-patch16-224/gated.pth: HTTP 403: the repository is gated" in line
    assert "[3] hf://facebook/deit-tiny-patch16-224/down.pth: HTTP 500" in line


def test_two_processes_downloading_at_once_end_with_one_good_file(env, hub):
    body, ours = official_checkpoint()
    url, served = hub.add_url("w.pth", body, delay_s=0.5)
    env.cards(m={"weights": [{"url": url}]})
    script = (
        "import sys; from importlib.metadata import EntryPoint; from zoo import weights; from zoo.registry import lookup;"
        "from zoo.registry.catalog import build_catalog;"
        f"cat = build_catalog(registry={str(env.registry)!r}, eps=[EntryPoint('wtest', 'weights_testplugin', 'zoo')]);"
        "lookup.catalog = lambda: cat; d = weights.ensure(cat.get('m')); print(d.fetched, d.entry.path)"
    )
    child_env = {**os.environ, "PYTHONPATH": str(TESTS)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(out.split()[0] for out, _ in outs) == ["False", "True"]  # one fetched, the other waited
    assert served.gets == 1
    assert len(cache.entries("m")) == 1
    assert_loaded(zoo.create_model("m", pretrained=True), ours)


# -- safety and strict loading -------------------------------------------------------------------------


class _RunsCode:
    def __init__(self, sentinel: str) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (self.sentinel, "w"))  # unpickling this would create the sentinel file


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(env, hub, tmp_path):
    sentinel = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"state_dict": {"head.weight": torch.zeros(1)}, "payload": _RunsCode(str(sentinel))}, buf)
    (tmp_path / "evil.pth").write_bytes(buf.getvalue())
    url, _ = hub.add_url("evil.pth", buf.getvalue())
    env.cards(m={"weights": [{"url": url}]})
    with pytest.raises(WeightsError, match="refusing to load .*evil.pth.* never runs pickled code .*Unsupported global: GLOBAL io.open"):
        zoo.create_model("m", checkpoint=tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="refusing to load"):
        zoo.create_model("m", pretrained=True)
    assert not sentinel.exists()
    assert zoo_files() == []


def test_official_wrapper_converts_and_loads_strictly_and_a_missing_key_is_named(env, tmp_path):
    env.cards(m={"weights": [{"url": "https://example.invalid/w.pth"}]})
    body, ours = official_checkpoint()
    (tmp_path / "w.pth.tar").write_bytes(body)
    assert_loaded(zoo.create_model("m", checkpoint=tmp_path / "w.pth.tar"), ours)
    broken, _ = official_checkpoint(drop="bn.running_var")
    (tmp_path / "broken.pth").write_bytes(broken)
    with pytest.raises(WeightsError, match=r"do not fit the model: 1 missing keys: bn\.running_var$"):
        zoo.create_model("m", checkpoint=tmp_path / "broken.pth")


def test_training_checkpoint_with_argparse_namespace_loads(env, tmp_path):
    """Full training checkpoints (timm/EfficientMod train.py) carry their argparse args; those load, nothing else."""
    import argparse

    env.cards(m={"weights": [{"url": "https://example.invalid/w.pth"}]})
    _, ours = official_checkpoint()
    renamed = {f"module.backbone.{k}" if not k.startswith("head.") else f"module.{k}": v for k, v in ours.items()}
    buf = io.BytesIO()
    torch.save({"state_dict": renamed, "args": argparse.Namespace(lr=1e-3, model="tiny"), "epoch": 299}, buf)
    (tmp_path / "train.pth.tar").write_bytes(buf.getvalue())
    assert_loaded(zoo.create_model("m", checkpoint=tmp_path / "train.pth.tar"), ours)


def test_container_choice_follows_official_eval_unless_the_card_names_one(env, tmp_path):
    _, ours = official_checkpoint()
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in ours.items()}
    wrap = lambda sd: {f"module.backbone.{k}" if not k.startswith("head.") else f"module.{k}": v for k, v in sd.items()}  # noqa: E731
    buf = io.BytesIO()
    torch.save({"state_dict": wrap(ours), "state_dict_ema": wrap(ema), "epoch": 1}, buf)
    (tmp_path / "both.pth").write_bytes(buf.getvalue())
    env.cards(raw={}, avg={"weights_key": "state_dict_ema"}, bad={"weights_key": "model_ema"})
    assert_loaded(zoo.create_model("raw", checkpoint=tmp_path / "both.pth"), ours)  # validate.py's default
    assert_loaded(zoo.create_model("avg", checkpoint=tmp_path / "both.pth"), ema)
    with pytest.raises(WeightsError, match=r"checkpoint has no 'model_ema' entry \(the card's weights_key\); it has: state_dict, state_dict_ema, epoch"):
        zoo.create_model("bad", checkpoint=tmp_path / "both.pth")


def test_safetensors_checkpoint_and_mismatch_report(env, tmp_path):
    from safetensors.torch import save_file

    env.cards(m={})
    _, ours = official_checkpoint()
    save_file(ours, tmp_path / "ours.safetensors")
    assert_loaded(zoo.create_model("m", checkpoint=tmp_path / "ours.safetensors"), ours)
    other = {**{k: v for k, v in ours.items() if k != "head.bias"}, "head.weight": torch.zeros(3, 8), "extra": torch.ones(1)}
    save_file(other, tmp_path / "other.safetensors")
    with pytest.raises(WeightsError) as info:
        zoo.create_model("m", checkpoint=tmp_path / "other.safetensors")
    message = str(info.value)
    assert "1 missing keys: head.bias" in message and "1 unexpected keys: extra" in message
    assert "1 shape differences: head.weight (3, 8) vs model (10, 8)" in message
    with pytest.raises(WeightsError, match="built with num_classes=4 but its weights .* have 10 classes"):
        zoo.create_model("m", checkpoint=tmp_path / "ours.safetensors", num_classes=4)
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(WeightsError, match="unsupported file type"):
        zoo.create_model("m", checkpoint=tmp_path / "w.npz")


# -- offline and air-gapped --------------------------------------------------------------------------


@pytest.fixture
def no_sockets(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"a socket was opened in offline mode: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_offline_empty_cache_then_file_in_hub_cache_layout(env, no_sockets):
    env.mp.setenv("HF_HUB_OFFLINE", "1")
    env.mp.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # would fail loudly if anything tried it
    env.cards(**{"deit-t": {"weights": [{"hub": REPO, "file": "deit_tiny.pth"}, {"url": "https://example.invalid/x.pth"}]}})
    result = CliRunner().invoke(cli, ["download", "deit-t"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    for part in ("'deit-t'", "deit_tiny.pth, x.pth", "offline", "zoo download deit-t", "zoo cache import", "--checkpoint"):
        assert part in line
    body, ours = official_checkpoint()
    env.place_in_hub_cache(REPO, "deit_tiny.pth", body)
    result = CliRunner().invoke(cli, ["download", "deit-t"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deit-t: downloaded ")
    assert_loaded(zoo.create_model("deit-t", pretrained=True), ours)


def test_offline_hash_check_uses_the_blob_name(env, no_sockets):
    env.mp.setenv("ZOO_OFFLINE", "1")
    env.cards(m={"weights": [{"hub": REPO, "file": "w.pth"}]})
    body, _ = official_checkpoint()
    snap = env.place_in_hub_cache(REPO, "w.pth", body)
    blob = snap.resolve()
    blob.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))  # corrupted on disk after download
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        zoo.create_model("m", pretrained=True)
    assert not blob.exists()


def test_export_import_moves_verified_weights_to_an_offline_machine(env, hub, tmp_path, monkeypatch):
    body, ours = official_checkpoint()
    url, served = hub.add_url("w.pth", body)
    env.cards(m={"weights": [{"url": url, "sha256": served.sha256}]}, empty={"weights_note": "none released"})
    runner = CliRunner()
    result = runner.invoke(cli, ["download", "m", "--print-hashes"])
    assert result.exit_code == 0 and result.output.split("\t")[:3] == ["m", "w.pth", f"sha256: {served.sha256}"]
    bundle = tmp_path / "bundle.tar"
    assert runner.invoke(cli, ["cache", "export", "m", "-o", str(bundle)]).exit_code == 0
    # the air-gapped machine: a fresh zoo home, offline
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "other"))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(OfflineError):
        zoo.create_model("m", pretrained=True)
    result = runner.invoke(cli, ["cache", "import", str(bundle)])
    assert result.exit_code == 0 and result.output.startswith("m: imported w.pth")
    assert_loaded(zoo.create_model("m", pretrained=True), ours)
    listing = json.loads(runner.invoke(cli, ["cache", "ls", "--json"]).output)
    assert [(e["model"], e["sha256"]) for e in listing] == [("m", served.sha256)]
    # a bundle whose tensor bytes were altered is refused, and nothing is imported
    import tarfile

    bad = tmp_path / "bad.tar"
    with tarfile.open(bundle) as src, tarfile.open(bad, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.endswith(".safetensors"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "third"))
    result = runner.invoke(cli, ["cache", "import", str(bad)])
    assert result.exit_code == 1 and "nothing imported" in result.output and "Traceback" not in result.output
    assert cache.entries() == []


def test_cache_add_rm_path_and_no_weights(env, tmp_path):
    body, ours = official_checkpoint()
    import hashlib

    sha = hashlib.sha256(body).hexdigest()
    env.cards(m={"weights": [{"url": "https://example.invalid/w.pth", "sha256": sha}]},
              empty={"weights_note": "the authors released none"},
              g={"weights": [{"gdrive": "1AbC", "file": "g.pth"}]})
    runner = CliRunner()
    (tmp_path / "wrong.pth").write_bytes(official_checkpoint(seed=1)[0])
    result = runner.invoke(cli, ["cache", "add", "m", str(tmp_path / "wrong.pth")])
    assert result.exit_code == 1 and f"the card expects {sha}" in result.output and cache.entries() == []
    (tmp_path / "w.pth").write_bytes(body)
    assert runner.invoke(cli, ["cache", "add", "m", str(tmp_path / "w.pth")]).exit_code == 0
    assert_loaded(zoo.create_model("m", pretrained=True), ours)
    assert "m " in runner.invoke(cli, ["cache", "ls"]).output
    assert runner.invoke(cli, ["cache", "path", "m"]).output.strip() == str(Path(os.environ["ZOO_HOME"]) / "weights" / "m")
    assert runner.invoke(cli, ["cache", "rm", "m"]).output.startswith("m: removed")
    assert cache.entries() == []
    result = runner.invoke(cli, ["download", "empty"])
    assert result.exit_code == 1 and "has no published weights: the authors released none" in result.output
    result = runner.invoke(cli, ["download", "g"])
    assert result.exit_code == 1 and "pip install 'zoo-core[gdrive]'" in result.output
    assert "Traceback" not in result.output
    # a card without any scriptable source (weights in a Drive folder): a file fetched by hand is registered
    (tmp_path / "by_hand.pth.tar").write_bytes(body)
    added = runner.invoke(cli, ["cache", "add", "empty", str(tmp_path / "by_hand.pth.tar")])
    assert added.exit_code == 0, added.output
    assert [e.source for e in cache.entries("empty")] == ["manual:by_hand.pth.tar"]
    assert_loaded(zoo.create_model("empty", pretrained=True), ours)
    assert runner.invoke(cli, ["download", "empty"]).exit_code == 0  # already cached: nothing to fetch


@pytest.mark.parametrize("args", [["download"], ["cache"], ["cache", "ls"], ["cache", "rm"], ["cache", "path"],
                                  ["cache", "export"], ["cache", "import"], ["cache", "add"]])
def test_help(args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
