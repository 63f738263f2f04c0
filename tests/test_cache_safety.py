"""#10 items 1, 2, 3, 6, 11 (cache side): names never become paths outside the cache, hand-added files
are never taken for official ones, a second add replaces, bundle import is all-or-nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import zoo
import zoo.api  # noqa: F401  (the tests below use zoo.api.get_card; run alone, nothing else imports it)
from zoo import weights
from zoo.cli import cli
from zoo.weights import cache

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import HubServer  # noqa: E402
from test_weights import assert_loaded, official_checkpoint  # noqa: E402
from test_weights import env as _weights_env  # noqa: E402


@pytest.fixture
def env(tmp_path, monkeypatch):
    """test_weights' env: an isolated zoo home and HF cache, cards of the tiny wtest plugin."""
    yield from _weights_env.__wrapped__(tmp_path, monkeypatch)

run = CliRunner().invoke


def home() -> Path:
    return Path(os.environ["ZOO_HOME"])


def error_line(result) -> str:
    """The one line that says what was wrong (click may add its usage lines around a usage error)."""
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.lower().startswith("error")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def cached(env, tmp_path):
    """Card m (a source nobody can reach) with a hand-added entry, plus results.jsonl in the zoo home."""
    env.cards(m={"weights": [{"url": "http://127.0.0.1:9/w.pth"}]}, drive={"weights_note": "a Drive folder"})
    body, ours = official_checkpoint()
    (tmp_path / "w.pth").write_bytes(body)
    assert run(cli, ["cache", "add", "drive", str(tmp_path / "w.pth")]).exit_code == 0
    (home() / "results.jsonl").write_text('{"model": "drive"}\n')
    return ours


def snapshot() -> dict[str, bytes]:
    return {str(p.relative_to(home())): p.read_bytes() for p in home().rglob("*") if p.is_file()
            and "locks" not in p.parts}


# -- item 1: names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "..", ".", "/", "../zoo", "a/b", "weights/../..", "DRIVE/.."])
def test_rm_refuses_anything_but_a_model_name_and_removes_nothing(cached, name, tmp_path):
    before = snapshot()
    result = run(cli, ["cache", "rm", name])
    assert result.exit_code == 2
    line = error_line(result)
    assert "is not a model name" in line or "unknown model" in line
    assert snapshot() == before and (home() / "results.jsonl").is_file()


def test_rm_of_an_absolute_path_leaves_it_alone(cached, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    result = run(cli, ["cache", "rm", str(victim)])
    assert result.exit_code == 2 and "is not a model name" in error_line(result)
    assert (victim / "keep.txt").read_text() == "mine"


def test_rm_unknown_name_suggests_cards(cached):
    result = run(cli, ["cache", "rm", "drivee"])
    assert result.exit_code == 2 and "unknown model 'drivee'. Did you mean: drive?" in error_line(result)


def test_symlinked_model_folder_is_unlinked_never_followed(env, tmp_path):
    env.cards(m={"weights_note": "none"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.safetensors").write_bytes(b"x" * 100)
    (home() / "weights").mkdir(parents=True)
    (home() / "weights" / "m").symlink_to(outside, target_is_directory=True)
    assert cache.entries() == [] and cache.incomplete() == []  # listing does not follow it either
    with pytest.raises(zoo.errors.WeightsError, match="is a symbolic link; zoo never follows links"):
        cache.model_dir("m")
    result = run(cli, ["cache", "rm", "m"])
    assert result.exit_code == 0, result.output
    assert not (home() / "weights" / "m").exists() and (outside / "precious.safetensors").read_bytes() == b"x" * 100


def test_rm_all_keeps_the_rest_of_the_zoo_home(cached):
    assert run(cli, ["cache", "rm"]).exit_code == 2  # neither names nor --all
    result = run(cli, ["cache", "rm", "--all"])
    assert result.exit_code == 0 and result.output.startswith("removed ")
    assert cache.entries() == [] and (home() / "results.jsonl").read_text() == '{"model": "drive"}\n'


def test_rm_while_another_process_downloads_is_refused(cached):
    from filelock import FileLock

    before = snapshot()
    held = FileLock(str(home() / "locks" / "drive.lock"))
    held.acquire()
    try:
        result = run(cli, ["cache", "rm", "drive"])
    finally:
        held.release()
    assert result.exit_code == 1
    assert "drive is being downloaded by another process" in error_line(result)
    assert snapshot() == before
    assert run(cli, ["cache", "rm", "drive"]).exit_code == 0 and cache.entries() == []


# -- items 2 and 3: origins, the hand-added slot ----------------------------------------------------------


def test_hand_added_file_never_stands_in_for_official_weights(env, tmp_path):
    body, ours = official_checkpoint(seed=0)
    other, theirs = official_checkpoint(seed=1)
    with HubServer() as server:
        url, served = server.add_url("w.pth", body)
        env.cards(m={"weights": [{"url": url}]})
        (tmp_path / "w.pth").write_bytes(other)  # same name as the official file, other bytes
        added = run(cli, ["cache", "add", "m", str(tmp_path / "w.pth")])
        assert added.exit_code == 0 and "origin manual" in added.output
        assert "pretrained=True keeps using the card's sources" in added.output
        [entry] = cache.entries("m")
        assert (entry.key, entry.origin, entry.source) == ("manual", "manual", "manual:w.pth")
        assert cache.find(zoo.api.get_card("m")) is None
        result = run(cli, ["download", "m"])  # not "cached": the official file is fetched
        assert result.exit_code == 0 and result.output.startswith("m: downloaded ") and served.gets == 1
    card = zoo.api.get_card("m")
    assert_loaded(zoo.create_model("m", pretrained=True), ours)
    assert weights.provenance(card, pretrained=True) == {"origin": "official", "sha256": served.sha256,
                                                         "source": url}
    assert {e.origin for e in cache.entries("m")} == {"official", "manual"}


def test_unreachable_official_source_fails_instead_of_using_the_hand_added_file(env, tmp_path):
    env.cards(m={"weights": [{"url": "http://127.0.0.1:9/w.pth"}]})
    (tmp_path / "mine.pth").write_bytes(official_checkpoint(seed=1)[0])
    assert run(cli, ["cache", "add", "m", str(tmp_path / "mine.pth")]).exit_code == 0
    result = run(cli, ["download", "m"])
    assert result.exit_code == 1
    line = error_line(result)
    assert "the hand-added mine.pth is not the card's file" in line and "--checkpoint" in line
    with pytest.raises(zoo.errors.WeightsError):
        zoo.create_model("m", pretrained=True)


def test_a_file_with_the_cards_sha256_is_official(env, tmp_path):
    body, ours = official_checkpoint()
    sha = hashlib.sha256(body).hexdigest()
    env.cards(m={"weights": [{"url": "http://127.0.0.1:9/w.pth", "sha256": sha}]})
    (tmp_path / "renamed.bin").write_bytes(body)
    assert run(cli, ["cache", "add", "m", str(tmp_path / "renamed.bin")]).exit_code == 0
    [entry] = cache.entries("m")
    assert entry.origin == "official" and entry.source == "http://127.0.0.1:9/w.pth"
    assert run(cli, ["download", "m"]).output.startswith("m: cached ")
    assert weights.provenance(zoo.api.get_card("m"), pretrained=True)["origin"] == "official"


def test_manual_only_card_uses_its_hand_added_file_and_says_so(cached):
    card = zoo.api.get_card("drive")
    assert weights.provenance(card, pretrained=True)["origin"] == "manual"
    result = run(cli, ["download", "drive"])
    assert result.exit_code == 0 and "cached (added by hand: w.pth, origin manual)" in result.output


def test_second_add_replaces_the_first(cached, tmp_path):
    other, theirs = official_checkpoint(seed=3)
    (tmp_path / "second.pth").write_bytes(other)
    result = run(cli, ["cache", "add", "drive", str(tmp_path / "second.pth")])
    assert result.exit_code == 0
    assert result.output.startswith("drive: replaced the hand-added w.pth (sha256 ")
    [entry] = cache.entries("drive")
    assert entry.manifest["file"] == "second.pth"
    assert_loaded(zoo.create_model("drive", pretrained=True), theirs)


def test_legacy_hand_added_entries_are_chosen_by_date_not_hash(env, tmp_path):
    """Caches older than the manual slot may hold several hand-added entries; the newest wins."""
    env.cards(drive={"weights_note": "a Drive folder"})
    card = zoo.api.get_card("drive")
    made = []
    for seed, created in ((0, "2024-01-02T00:00:00"), (1, "2024-01-01T00:00:00")):
        body, ours = official_checkpoint(seed=seed)
        raw = tmp_path / f"{seed}.pth"
        raw.write_bytes(body)
        sha = hashlib.sha256(body).hexdigest()
        entry = cache.store(card, weights.WeightSource(file=raw.name), raw, sha, origin="official",
                            created=created)
        manifest = {**entry.manifest, "origin": None, "source": f"manual:{raw.name}"}  # as old caches wrote it
        (entry.path.with_suffix(".json")).write_text(json.dumps(manifest))
        made.append((entry.key, ours))
    assert cache.manual("drive").key == made[0][0]  # 2024-01-02, whatever the hashes' order
    assert_loaded(zoo.create_model("drive", pretrained=True), made[0][1])


# -- item 6: bundles ---------------------------------------------------------------------------------


def bundle_of(tmp_path: Path, name: str, index: object, members: dict[str, bytes], mode: str = "w") -> Path:
    path = tmp_path / name
    with tarfile.open(path, mode) as tar:
        for member, data in [("zoo-bundle.json", json.dumps(index).encode() if not isinstance(index, bytes)
                              else index), *members.items()]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def entry_of(model: str, payload: bytes, key: str | None = None, **manifest) -> dict:
    raw = hashlib.sha256(model.encode()).hexdigest()
    key = key or raw[:16]
    return {"model": model, "key": key, "size": len(payload),
            "manifest": {"sha256": raw, "source": "manual:x.pth", "origin": "manual",
                         "safetensors_sha256": hashlib.sha256(payload).hexdigest(), **manifest}}


def safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(tensors)


def assert_refused(result, *parts: str) -> None:
    assert result.exit_code in (1, 2), result.output
    line = error_line(result)
    for part in parts:
        assert part in line, line
    assert cache.entries() == []
    assert not list((home() / "weights").glob(".import-*")) if (home() / "weights").exists() else True


def test_export_import_round_trip_keeps_origins(cached, tmp_path, monkeypatch):
    bundle = tmp_path / "b.tar"
    assert run(cli, ["cache", "export", "drive", "-o", str(bundle)]).exit_code == 0
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "other"))
    result = run(cli, ["cache", "import", str(bundle)])
    assert result.exit_code == 0 and result.output.startswith("drive: imported w.pth") and "origin manual" in result.output
    [entry] = cache.entries("drive")
    assert entry.key == "manual" and entry.origin == "manual" and entry.manifest["imported_from"] == str(bundle)
    assert_loaded(zoo.create_model("drive", pretrained=True), cached)


@pytest.mark.parametrize("what", ["dev-null", "directory", "empty", "missing", "not-a-tar"])
def test_import_of_what_is_not_a_bundle_is_one_line(env, tmp_path, what):
    env.cards(drive={"weights_note": "x"})
    path = {"dev-null": Path("/dev/null"), "directory": tmp_path, "empty": tmp_path / "empty.tar",
            "missing": tmp_path / "nope.tar", "not-a-tar": tmp_path / "text.tar"}[what]
    if what == "empty":
        path.write_bytes(b"")
    if what == "not-a-tar":
        path.write_text("hello\n" * 100)
    result = run(cli, ["cache", "import", str(path)])
    assert_refused(result, "bundle")
    assert result.exit_code == 2, result.output  # not a bundle at all: the user's mistake


def test_malformed_indexes_are_refused(env, tmp_path):
    env.cards(drive={"weights_note": "x"})
    good = safetensors_bytes({"a": torch.zeros(2)})
    cases = {
        "not json": (b"{nope", "is not valid JSON"),
        "a list": ([1, 2], "is not a zoo bundle index"),
        "entries not a list": ({"format": 1, "entries": "x"}, "is not a zoo bundle index"),
        "no entries": ({"format": 1, "entries": []}, "holds no entries"),
        "entry not an object": ({"format": 1, "entries": [3]}, "is a int, expected an object"),
        "hostile model": ({"format": 1, "entries": [entry_of("../../etc", good)]}, "is not a model name"),
        "hostile key": ({"format": 1, "entries": [entry_of("drive", good, key="../../x")]}, "expected 16 hex"),
        "unknown model": ({"format": 1, "entries": [entry_of("nocard", good)]}, "no installed card is named"),
        "bad size": ({"format": 1, "entries": [{**entry_of("drive", good), "size": "big"}]}, "has size 'big'"),
        "no sha": ({"format": 1, "entries": [{**entry_of("drive", good), "manifest": {"source": "x"}}]},
                   "no valid safetensors_sha256"),
    }
    for label, (index, message) in cases.items():
        bundle = bundle_of(tmp_path, "b.tar", index, {})
        result = run(cli, ["cache", "import", str(bundle)])
        assert result.exit_code == 1, label
        assert message in error_line(result), (label, result.output)
        assert cache.entries() == []


def test_member_names_come_from_the_index_never_from_the_archive(env, tmp_path):
    env.cards(drive={"weights_note": "x"})
    payload = safetensors_bytes({"a": torch.zeros(2)})
    item = entry_of("drive", payload)
    bundle = bundle_of(tmp_path, "b.tar", {"format": 1, "entries": [item]},
                       {"../escaped.safetensors": payload, f"weights/drive/../../{item['key']}.safetensors": payload})
    assert_refused(run(cli, ["cache", "import", str(bundle)]), "has no weights/drive/")
    assert not (home().parent / "escaped.safetensors").exists() and not list(tmp_path.rglob("escaped*"))


def test_gzip_bomb_is_refused_before_writing_past_the_declared_size(env, tmp_path, monkeypatch):
    env.cards(drive={"weights_note": "x"})
    bomb = b"\0" * (64 << 20)  # 64 MiB of zeros: about 64 KB compressed
    item = entry_of("drive", b"0123456789")  # declares 10 bytes
    bundle = bundle_of(tmp_path, "b.tar.gz", {"format": 1, "entries": [item]},
                       {f"weights/drive/{item['key']}.safetensors": bomb}, mode="w:gz")
    assert bundle.stat().st_size < 1 << 20
    written = []
    real_open = open

    def spy(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if "x" in mode or "w" in mode:
            written.append(Path(path))
        return fh

    with monkeypatch.context() as patched:
        patched.setattr("builtins.open", spy)
        result = run(cli, ["cache", "import", str(bundle)])
    assert_refused(result, f"is {64 << 20} bytes, its index declares 10")
    assert not [p for p in written if p.suffix == ".safetensors"]  # refused before a byte was staged


def test_truncated_bundle_is_refused(cached, tmp_path, monkeypatch):
    bundle = tmp_path / "b.tar"
    assert run(cli, ["cache", "export", "drive", "-o", str(bundle)]).exit_code == 0
    data = bundle.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    gz = tmp_path / "cut.tar.gz"
    gz.write_bytes(gzip.compress(data)[:-200])
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "other"))
    for path in (cut, gz):
        result = run(cli, ["cache", "import", str(path)])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert cache.entries() == []


def test_self_consistent_junk_is_refused_at_import(env, tmp_path):
    env.cards(drive={"weights_note": "x"})
    junk = b"not a safetensors file at all" * 10
    item = entry_of("drive", junk)
    bundle = bundle_of(tmp_path, "b.tar", {"format": 1, "entries": [item]}, {f"weights/drive/{item['key']}.safetensors": junk})
    assert_refused(run(cli, ["cache", "import", str(bundle)]), "is not a valid safetensors file", "nothing imported")
    garbage = safetensors_bytes({"garbage.key": torch.zeros(3)})  # valid safetensors, wrong tensors for the model
    item = entry_of("drive", garbage)
    bundle = bundle_of(tmp_path, "b.tar", {"format": 1, "entries": [item]},
                       {f"weights/drive/{item['key']}.safetensors": garbage})
    assert_refused(run(cli, ["cache", "import", str(bundle)]), "does not fit its builder", "'bn.bias'")


def test_import_is_all_or_nothing(cached, tmp_path, monkeypatch):
    """A good first entry is not kept when a later one fails."""
    [cached_entry] = cache.entries("drive")
    good = cached_entry.path.read_bytes()
    first = entry_of("drive", good)
    junk = b"junk" * 50
    second = entry_of("m", junk)
    bundle = bundle_of(tmp_path, "b.tar", {"format": 1, "entries": [first, second]},
                       {f"weights/drive/{first['key']}.safetensors": good, f"weights/m/{second['key']}.safetensors": junk})
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "other"))
    assert_refused(run(cli, ["cache", "import", str(bundle)]), "m ", "not a valid safetensors file")
    assert not (tmp_path / "other" / "weights" / "drive").exists()


def test_a_failed_commit_step_rolls_back(cached, tmp_path, monkeypatch):
    bundle = tmp_path / "b.tar"
    assert run(cli, ["cache", "export", "drive", "-o", str(bundle)]).exit_code == 0
    before = snapshot()
    (tmp_path / "new.pth").write_bytes(official_checkpoint(seed=5)[0])
    calls = []

    def failing_move(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the tensors moved, the manifest fails
            raise OSError(28, "No space left on device")
        os.replace(src, dst)

    monkeypatch.setattr(cache, "_move", failing_move)
    result = run(cli, ["cache", "import", str(bundle)])
    assert result.exit_code == 1 and "No space left on device" in error_line(result)
    assert "nothing imported" in result.output
    assert snapshot() == before  # the entry that was there is back, byte for byte


def test_bundle_claiming_official_weights_of_another_source_is_refused(cached, tmp_path, monkeypatch):
    payload = (home() / "weights" / "drive" / "manual.safetensors").read_bytes()
    item = entry_of("m", payload, origin="official", source="https://evil.example/w.pth")
    bundle = bundle_of(tmp_path, "b.tar", {"format": 1, "entries": [item]},
                       {f"weights/m/{item['key']}.safetensors": payload})
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "other"))
    assert_refused(run(cli, ["cache", "import", str(bundle)]), "says its weights are official",
                   "none of the card's sources")


def test_a_replacing_add_that_fails_keeps_the_previous_hand_added_entry(cached, tmp_path, monkeypatch):
    from zoo.weights import checkpoint

    (tmp_path / "second.pth").write_bytes(official_checkpoint(seed=3)[0])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched, pytest.raises(OSError):
        patched.setattr(checkpoint, "save_safetensors", full_disk)
        weights.add_file(zoo.api.get_card("drive"), tmp_path / "second.pth")
    [entry] = cache.entries("drive")
    assert entry.manifest["file"] == "w.pth"
    assert_loaded(zoo.create_model("drive", pretrained=True), cached)


def test_a_full_disk_during_cache_add_names_zoo_home_and_leaves_nothing(env, tmp_path, monkeypatch):
    """safetensors reports ENOSPC as a SafetensorError; it must reach the user as the full ZOO_HOME."""
    from safetensors import SafetensorError

    env.cards(drive={"weights_note": "a Drive folder"})
    body, _ = official_checkpoint()
    (tmp_path / "w.pth").write_bytes(body)

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 10)  # what a disk that fills up mid-write leaves behind
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr("safetensors.torch.save_file", full)
    result = run(cli, ["cache", "add", "drive", str(tmp_path / "w.pth")])
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert line.startswith(f"Error: ZOO_HOME {home()} ") and "space" in line, line
    assert not [p for p in (home() / "weights").rglob("*") if p.is_file()], "a fragment was left in the cache"


def test_import_bundle_checks_the_header_against_the_shapes_its_caller_gives(env, tmp_path):
    """The weights layer builds no model (#11 layering): the caller names the tensors a bundle entry must hold."""
    env.cards(drive={"weights_note": "x"})
    body = safetensors_bytes({"w": torch.zeros(2, 3)})
    item = entry_of("drive", body)
    bundle = bundle_of(tmp_path, "b.tar", {"format": 1, "entries": [item]},
                       {f"weights/drive/{item['key']}.safetensors": body})
    with pytest.raises(zoo.errors.WeightsError, match=r"1 differently shaped tensors, e.g. 'w'\); nothing imported"):
        weights.import_bundle(bundle, shapes_of=lambda card: {"w": (3, 2)})
    assert cache.entries() == []
    asked = []
    [entry] = weights.import_bundle(bundle, shapes_of=lambda card: asked.append(card.name) or {"w": (2, 3)})
    assert asked == ["drive"] and entry.model == "drive"


def test_the_weights_layer_never_imports_the_models_layer():
    import grimp

    graph = grimp.build_graph("zoo")
    upward = sorted((module, imported) for module in graph.find_children("zoo.weights") | {"zoo.weights"}
                    for imported in graph.find_modules_directly_imported_by(module)
                    if imported.split(".")[:2] in (["zoo", "models"], ["zoo", "eval"], ["zoo", "cli"]))
    assert upward == []
