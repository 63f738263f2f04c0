"""A resumed URL download appends only bytes the server proves belong to the same file (#10 item 4),
and a downloaded file's name can never point outside ``downloads/<model>/``."""

from __future__ import annotations

import json
import os
import random
import sys
import types
from pathlib import Path

import pytest

from zoo.registry import lookup
from zoo.registry.cards import WeightSource
from zoo.weights import fetch
from zoo.weights.fetch import FetchError, download_url

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import HubServer  # noqa: E402

SIZE, CUT = 5000, 2000


def payload(seed: int, size: int = SIZE) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture
def part(tmp_path) -> Path:
    return tmp_path / "w.pth.part"


def meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def gets(hub: HubServer) -> list[tuple[str | None, str | None]]:
    """(Range, If-Range) of every GET the server saw."""
    return [(h.get("Range"), h.get("If-Range")) for (method, _, _), h in zip(hub.log, hub.headers, strict=True) if method == "GET"]


def interrupted_first_run(hub: HubServer, part: Path, **behaviour: object):
    """A first run that ends at CUT bytes, leaving the partial file (and its record) behind."""
    url, served = hub.add_url("w.pth", payload(0), truncate_at=CUT, **behaviour)
    with pytest.raises(FetchError, match=f"connection closed after {CUT} of {SIZE} bytes"):
        download_url(url, part)
    served.truncate_at = None
    return url, served


# -- the server proves it is the same file: resume -----------------------------------------------------


def test_same_etag_resumes_and_only_the_tail_is_transferred(hub, part):
    url, served = interrupted_first_run(hub, part)
    assert part.read_bytes() == served.body[:CUT]
    assert json.loads(meta(part).read_text()) == {"url": url, "validator": f'"{served.sha256}"', "total": SIZE}
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert not meta(part).exists()  # the record goes with the finished file
    etag = f'"{served.sha256}"'
    assert gets(hub)[-1] == (f"bytes={CUT}-", etag)  # the second run asked for the tail only, for this version


def test_a_dropped_connection_resumes_within_one_run_with_if_range(hub, part):
    url, served = hub.add_url("w.pth", payload(0), drop_first_at=CUT)
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert gets(hub) == [(None, None), (f"bytes={CUT}-", f'"{served.sha256}"')]


def test_last_modified_is_the_validator_when_there_is_no_etag(hub, part):
    url, served = interrupted_first_run(hub, part, validators="last-modified")
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert gets(hub)[-1] == (f"bytes={CUT}-", "Tue, 14 Nov 2023 22:13:20 GMT")


# -- anything else: start again from zero, never a splice ------------------------------------------------


@pytest.mark.parametrize("validators", ["etag", "last-modified"])
@pytest.mark.parametrize("new_size", [SIZE, SIZE + 777, CUT + 10])
def test_a_file_that_changed_is_downloaded_again_whole(hub, part, validators, new_size):
    url, served = interrupted_first_run(hub, part, validators=validators)
    old_validator = json.loads(meta(part).read_text())["validator"]
    served.set_body(payload(1, new_size))
    download_url(url, part)
    assert part.read_bytes() == served.body  # the new file, not old[:CUT] + new[CUT:]
    assert gets(hub)[-1] == (f"bytes={CUT}-", old_validator)  # asked for the old version; got a 200


def test_a_server_ignoring_if_range_is_caught_by_the_changed_etag(hub, part):
    url, served = interrupted_first_run(hub, part, ignore_if_range=True)
    served.set_body(payload(1))  # same size, new ETag; the server still answers 206 with the new bytes
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert gets(hub)[-2:] == [(f"bytes={CUT}-", f'"{payload_sha(0)}"'), (None, None)]  # refused, then whole


def test_a_server_keeping_a_stale_etag_is_caught_by_the_changed_total(hub, part):
    url, served = interrupted_first_run(hub, part, ignore_if_range=True, etag='"v1"')
    served.set_body(payload(1, SIZE + 300))  # ETag stays "v1": only Content-Range's total tells
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert gets(hub)[-2:] == [(f"bytes={CUT}-", '"v1"'), (None, None)]


def test_a_server_ignoring_range_restarts_from_zero(hub, part):
    url, served = interrupted_first_run(hub, part, ignore_range=True)
    before = len(gets(hub))
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert gets(hub)[before:] == [(f"bytes={CUT}-", f'"{served.sha256}"')]  # its 200 body was used as is


@pytest.mark.parametrize("shift", [100, -100])
def test_a_206_that_starts_elsewhere_is_not_appended(hub, part, shift):
    url, served = interrupted_first_run(hub, part, range_shift=shift)
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert gets(hub)[-2:] == [(f"bytes={CUT}-", f'"{served.sha256}"'), (None, None)]


def test_no_validator_means_no_resume(hub, part):
    url, served = hub.add_url("w.pth", payload(0), truncate_at=CUT, validators="none")
    with pytest.raises(FetchError, match="names no ETag or Last-Modified, so the next run starts over"):
        download_url(url, part)
    assert not part.exists() and not meta(part).exists()  # nothing kept that could never be resumed
    served.truncate_at, served.drop_first_at, served.gets = None, CUT, 0
    download_url(url, part)  # dropped once mid-file: fetched again whole, never with Range
    assert part.read_bytes() == served.body
    assert all(r == (None, None) for r in gets(hub))


@pytest.mark.parametrize("record", [None, "not json", '["a"]', '{"url": "http://elsewhere/w.pth", "validator": "\\"x\\""}',
                                    '{"url": "URL", "validator": null, "total": 5000}',
                                    '{"url": "URL", "validator": "\\"x\\"\\r\\nX-Evil: 1", "total": 5000}',
                                    '{"url": "URL", "validator": "\\"x\\"", "total": "many"}'])
def test_a_partial_file_without_a_usable_record_is_never_resumed(hub, part, record):
    url, served = hub.add_url("w.pth", payload(0))
    part.write_bytes(payload(1)[:CUT])  # left by an older zoo, or by a crash before its record was written
    if record is not None:
        meta(part).write_text(record.replace("URL", url))
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert gets(hub) == [(None, None)]


@pytest.mark.parametrize(("ranges", "size"), [(True, str(SIZE)), (False, "an unknown number of")])
def test_a_cut_body_of_unannounced_length_is_not_taken_for_the_whole_file(hub, part, ranges, size):
    url, served = hub.add_url("w.pth", payload(0), chunked=True, truncate_at=CUT, ignore_range=not ranges)
    with pytest.raises(FetchError, match=f"connection closed after {CUT} of {size} bytes"):  # a 206 tells the size
        download_url(url, part)
    served.ignore_range = False
    assert part.read_bytes() == served.body[:CUT] and meta(part).exists()  # kept for the next run, not "done"
    served.truncate_at = None
    download_url(url, part)
    assert part.read_bytes() == served.body
    assert gets(hub)[-1] == (f"bytes={CUT}-", f'"{served.sha256}"')


def test_whole_chunked_body_is_complete(hub, part):
    url, served = hub.add_url("w.pth", payload(0), chunked=True)
    download_url(url, part)
    assert part.read_bytes() == served.body and not meta(part).exists()


def test_a_broken_partial_record_is_one_line(hub):
    url, _ = hub.add_url("w.pth", payload(0))
    folder = fetch.zoo_home() / "downloads" / "m"
    folder.mkdir(parents=True)
    (folder / "w.pth.part").write_bytes(b"old")
    (folder / "w.pth.part.json").mkdir()  # not a file: cannot be read, removed or replaced
    with pytest.raises(FetchError, match=r"^cannot write in .*downloads/m: Is a directory$"):
        fetch.fetch(types.SimpleNamespace(name="m"), WeightSource(url=url))  # type: ignore[arg-type]


def test_a_partial_file_longer_than_the_file_starts_over(hub, part):
    url, served = hub.add_url("w.pth", payload(0))
    part.write_bytes(payload(1, SIZE + 10))
    meta(part).write_text(json.dumps({"url": url, "validator": f'"{served.sha256}"', "total": SIZE + 10}))
    download_url(url, part)  # 416, then the whole file
    assert part.read_bytes() == served.body
    assert gets(hub) == [(f"bytes={SIZE + 10}-", f'"{served.sha256}"'), (None, None)]


def payload_sha(seed: int) -> str:
    import hashlib

    return hashlib.sha256(payload(seed)).hexdigest()


# -- file names from cards never leave downloads/<model>/ ---------------------------------------------------


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "a/b", "..", ".", "..\\x", "x\0y", "w.pth.part"])
def test_a_hostile_file_name_is_refused_and_nothing_is_written(hub, tmp_path, monkeypatch, name):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home" / "zoo"))
    url, _ = hub.add_url("w.pth", payload(0))
    card = types.SimpleNamespace(name="m")
    with pytest.raises(FetchError, match=r"weights file name .* is not a plain file name; refusing to store it"):
        fetch.fetch(card, WeightSource(url=url, file=name))  # type: ignore[arg-type]
    assert files_under(tmp_path) == set() and hub.requests() == []


@pytest.mark.parametrize("url_tail", ["..", "x/..", "a?b=/..", ".", "?only=query"])
def test_a_hostile_url_basename_is_refused(hub, tmp_path, url_tail):
    card = types.SimpleNamespace(name="m")
    with pytest.raises(FetchError, match="is not a plain file name"):
        fetch.fetch(card, WeightSource(url=f"{hub.endpoint}/files/{url_tail}"))  # type: ignore[arg-type]
    assert hub.requests() == []


def test_a_url_basename_that_only_looks_odd_is_stored_inside_downloads(hub):
    url, served = hub.add_url("%2e%2e", payload(0))
    got = fetch.fetch(types.SimpleNamespace(name="m"), WeightSource(url=url))  # type: ignore[arg-type]
    assert got.path == fetch.zoo_home() / "downloads" / "m" / "%2e%2e" and got.path.read_bytes() == served.body


def test_a_downloads_folder_linked_elsewhere_is_not_written_through(hub, tmp_path):
    url, _ = hub.add_url("w.pth", payload(0))
    outside = tmp_path / "outside"
    outside.mkdir()
    (fetch.zoo_home() / "downloads").mkdir(parents=True)
    os.symlink(outside, fetch.zoo_home() / "downloads" / "m")
    with pytest.raises(FetchError, match="is not a folder inside .*downloads; refusing to write through it"):
        fetch.fetch(types.SimpleNamespace(name="m"), WeightSource(url=url))  # type: ignore[arg-type]
    assert list(outside.iterdir()) == []


def test_a_card_with_a_hostile_file_name_fails_in_one_line_and_the_next_source_is_used(hub, tmp_path, monkeypatch):
    """End to end: the card is data from outside; its bad source is named and skipped, the good one used."""
    import functools
    import io
    from importlib.metadata import EntryPoint

    import torch
    import yaml
    from click.testing import CliRunner

    from zoo import api
    from zoo.cli import cli
    from zoo.registry.catalog import build_catalog

    sys.path.insert(0, str(Path(__file__).parent))
    from weights_testplugin import tiny

    buf = io.BytesIO()
    torch.save(tiny(num_classes=10).state_dict(), buf)
    url, _ = hub.add_url("w.pth", buf.getvalue())
    registry = tmp_path / "registry.yaml"
    card = {"paper": "wt", "task": "image-classification", "plugin": "wtest", "builder": "tiny", "num_classes": 10,
            "weights": [{"url": url, "file": "../../../evil.pth"}, {"url": url}]}
    registry.write_text(yaml.safe_dump({"papers": {"wt": {"title": "T", "venue": "ICLR 2024"}}, "models": {"m": card}}))
    cat = build_catalog(registry=registry, eps=[EntryPoint("wtest", "weights_testplugin", "zoo")])
    monkeypatch.setattr(lookup, "catalog", functools.cache(lambda: cat))  # api.reset() clears it
    result = CliRunner().invoke(cli, ["download", "m"])
    assert result.exit_code == 0, result.output
    assert not list(tmp_path.rglob("evil.pth*"))
    card["weights"] = card["weights"][:1]
    registry.write_text(yaml.safe_dump({"papers": {"wt": {"title": "T", "venue": "ICLR 2024"}}, "models": {"m": card}}))
    cat = build_catalog(registry=registry, eps=[EntryPoint("wtest", "weights_testplugin", "zoo")])
    api.reset()
    result = CliRunner().invoke(cli, ["download", "m", "--force"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert "weights file name '../../../evil.pth' is not a plain file name" in line
    assert not list(tmp_path.rglob("evil.pth*"))


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "a/../../x", "a//b", "./x", "a\\..\\x", "x\0"])
def test_a_hostile_hub_file_name_is_one_line_and_asks_nothing(hub, monkeypatch, name):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.add_hub("org/r", "x", b"abc")
    with pytest.raises(FetchError, match="is not a relative path inside the repository; refusing it"):
        fetch.fetch(types.SimpleNamespace(name="m"), WeightSource(hub="org/r", file=name))  # type: ignore[arg-type]
    assert hub.requests() == []


@pytest.mark.parametrize("repo", ["../x", "a/b/c", "org/r/../.."])
def test_a_hostile_hub_repo_id_is_one_line(hub, monkeypatch, repo):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    with pytest.raises(FetchError, match="^invalid Hub reference: Repo id must"):
        fetch.fetch(types.SimpleNamespace(name="m"), WeightSource(hub=repo, file="x"))  # type: ignore[arg-type]
    assert hub.requests() == []
