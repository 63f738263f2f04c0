"""A machine that cannot reach the Hub or a URL's host at all fails fast, in one line that names the
way out (ZOO_OFFLINE=1, a mirror through HF_ENDPOINT); HTTP 5xx and timeouts keep their retries (#10 item 12)."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
import types
import urllib.error
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from zoo.registry import lookup
from zoo.registry.cards import WeightSource
from zoo.weights import fetch
from zoo.weights.fetch import FetchError, probe, unreachable

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import COMMIT, HubServer  # noqa: E402

REPO = "org/tiny"
CARD = types.SimpleNamespace(name="m")
HUB_SOURCE = WeightSource(hub=REPO, file="w.pth")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


UNREACHABLE = {
    "unresolvable": ("http://nonexistent.invalid", "nonexistent.invalid:80: name resolution failed"),
    "refused": (None, "127.0.0.1:PORT: connection refused"),
}


@pytest.fixture(params=sorted(UNREACHABLE))
def dead_endpoint(request, monkeypatch):
    endpoint, why = UNREACHABLE[request.param]
    if endpoint is None:
        port = closed_port()
        endpoint, why = f"http://127.0.0.1:{port}", why.replace("PORT", str(port))
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return endpoint, why


@pytest.fixture
def no_hub_sleep(monkeypatch):
    """huggingface_hub's back-off sleeps, recorded instead of slept (its retries still happen)."""
    import huggingface_hub.file_download as hf_download
    import huggingface_hub.utils._http as hf_http

    slept: list[float] = []
    no_wait = types.SimpleNamespace(**{**vars(time), "sleep": slept.append})
    monkeypatch.setattr(hf_http, "time", no_wait)
    monkeypatch.setattr(hf_download, "time", no_wait)
    return slept


def place_in_hub_cache(repo: str, filename: str, body: bytes) -> Path:
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


# -- fail fast ------------------------------------------------------------------------------------------


def test_an_unreachable_hub_fails_fast_in_one_line_naming_the_way_out(dead_endpoint, capfd):
    endpoint, why = dead_endpoint
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch.fetch(CARD, HUB_SOURCE)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert "\n" not in message and message.startswith(f"cannot reach the Hub at {why}")
    assert "ZOO_OFFLINE=1" in message and "HF_ENDPOINT" in message
    assert "Retrying" not in capfd.readouterr().err  # huggingface_hub never started its back-off


def test_zoo_download_says_it_in_one_line(dead_endpoint, tmp_path, monkeypatch, capfd):
    registry = tmp_path / "registry.yaml"
    card = {"paper": "wt", "task": "image-classification", "plugin": "wtest", "builder": "tiny", "num_classes": 10,
            "weights": [{"hub": REPO, "file": "w.pth"}]}
    registry.write_text(yaml.safe_dump({"papers": {"wt": {"title": "T", "venue": "ICLR 2024"}}, "models": {"m": card}}))
    from zoo.cli import cli
    from zoo.registry.catalog import build_catalog

    cat = build_catalog(registry=registry, eps=[EntryPoint("wtest", "weights_testplugin", "zoo")])
    monkeypatch.setattr(lookup, "catalog", lambda: cat)
    monkeypatch.setattr(lookup, "reset", lambda: None)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["download", "m"])
    assert time.monotonic() - started < 5
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert "model 'm': hf://org/tiny/w.pth: cannot reach the Hub at " in line and dead_endpoint[1] in line and "ZOO_OFFLINE=1" in line
    assert "Retrying" not in capfd.readouterr().err


def test_a_file_already_in_the_hf_cache_is_still_used_when_the_hub_is_unreachable(dead_endpoint):
    place_in_hub_cache(REPO, "w.pth", b"weights")
    got = fetch.fetch(CARD, HUB_SOURCE)  # type: ignore[arg-type]
    assert got.path.read_bytes() == b"weights" and got.expected_sha256 == hashlib.sha256(b"weights").hexdigest()
    with pytest.raises(FetchError, match="cannot reach the Hub at .*ZOO_OFFLINE=1"):
        fetch.fetch(CARD, HUB_SOURCE, force=True)  # type: ignore[arg-type]  # --force cannot be honoured


@pytest.mark.parametrize("kind", sorted(UNREACHABLE))
def test_an_unreachable_url_fails_fast_in_one_line(kind, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    host = "nonexistent.invalid" if kind == "unresolvable" else f"127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch.fetch(CARD, WeightSource(url=f"http://{host}/w.pth"))  # type: ignore[arg-type]
    assert time.monotonic() - started < 5
    why = {"unresolvable": "name resolution failed", "refused": "connection refused"}[kind]
    message = str(info.value)
    assert message.startswith(f"cannot reach {host.split(':')[0]}: {why}")
    assert "ZOO_OFFLINE=1" in message and "\n" not in message


# -- what is worth retrying keeps its retries ---------------------------------------------------------------


def test_http_5xx_is_still_retried(no_hub_sleep, monkeypatch):
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        hub.add_hub(REPO, "w.pth", b"x", status=503)
        with pytest.raises(FetchError, match="HTTP 503"):
            fetch.fetch(CARD, HUB_SOURCE)  # type: ignore[arg-type]
        heads = [entry for entry in hub.requests("HEAD") if entry[1] == f"/{REPO}/resolve/main/w.pth"]
    assert len(heads) == 7  # one quick try, then huggingface_hub's own 1 + 5 retries
    assert no_hub_sleep == [1, 2, 4, 8, 8]


def test_a_reachable_hub_is_probed_without_a_request(monkeypatch):
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        hub.add_hub(REPO, "w.pth", b"weights")
        assert probe(hub.endpoint) is None
        assert fetch.fetch(CARD, HUB_SOURCE).path.read_bytes() == b"weights"  # type: ignore[arg-type]
        assert [method for method, _, _ in hub.log] == ["HEAD", "GET"]


def test_a_slow_name_lookup_is_left_to_the_client(monkeypatch):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: time.sleep(5))
    started = time.monotonic()
    assert probe("https://huggingface.co", timeout=0.2) is None  # slow is not "unreachable": retries apply
    assert time.monotonic() - started < 2


def test_a_proxy_is_probed_instead_of_the_host(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert probe("https://nonexistent.invalid") == f"127.0.0.1:{port}: connection refused"


def test_which_errors_are_definitive():
    import httpx2

    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def wrapped(outer: BaseException, inner: BaseException) -> BaseException:
        outer.__cause__ = inner
        return outer

    assert unreachable(wrapped(httpx2.ConnectError("x"), gai)) == "name resolution failed: Name or service not known"
    assert unreachable(urllib.error.URLError(gai)) == "name resolution failed: Name or service not known"
    assert unreachable(urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))) == "connection refused"
    assert unreachable(OSError(101, "Network is unreachable")) == "network is unreachable"
    text_only = Exception("HTTPSConnectionPool: Failed to resolve 'x' ([Errno -3] Temporary failure in name resolution)")
    assert unreachable(text_only) and unreachable(text_only).startswith("name resolution failed")
    for transient in (httpx2.ConnectTimeout("timed out"), httpx2.ReadTimeout("timed out"), TimeoutError(),
                      ConnectionResetError(104, "Connection reset by peer"), httpx2.RemoteProtocolError("closed"),
                      wrapped(httpx2.ConnectError("x"), TimeoutError("timed out"))):
        assert unreachable(transient) is None, transient
