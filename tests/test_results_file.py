"""The results file loses nothing and is never glued together: complete, checked, fsync'd appends
that leave no fragment on failure; readers skip and count what they cannot use (#10 item 5)."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest

from zoo.records import read_results, results, store
from zoo.records.results import ResultsError, ResultsWriteError, append_jsonl
from zoo.records.store import append, from_json, scan

GOOD = {"model": "deit-t", "dataset": "imagenet", "top1": 72.2, "top5": 91.1, "images": 50000, "time": "t0"}


def record(i: int) -> dict:
    return {**GOOD, "top1": float(i), "time": f"t{i}"}


def R(line: dict):  # noqa: N802 (the Result a zoo 0.1 line migrates to)
    result = from_json(line)
    assert result is not None, line
    return result


def lines(path: Path) -> list[str]:
    return path.read_bytes().decode().split("\n")


@pytest.fixture
def path() -> Path:
    return results.results_path()


class FlakyDisk:
    """``os.write`` for the results file only: short writes, then ENOSPC after ``fail_after`` bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, target: Path, fail_after: int | None = None) -> None:
        self.real_write, self.target, self.fail_after, self.written, self.calls = os.write, target, fail_after, 0, 0
        monkeypatch.setattr(os, "write", self)

    def __call__(self, fd: int, data) -> int:
        try:
            ours = os.path.samefile(f"/proc/self/fd/{fd}", self.target)
        except OSError:
            ours = False
        if not ours:
            return self.real_write(fd, data)
        self.calls += 1
        if self.fail_after is not None and self.written >= self.fail_after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = bytes(data)
        chunk = data[: max(1, len(data) // 2)]  # the kernel may take less than it was given
        if self.fail_after is not None:
            chunk = chunk[: self.fail_after - self.written]
        n = self.real_write(fd, chunk)
        self.written += n
        return n


# -- writing ---------------------------------------------------------------------------------------------


def test_short_writes_are_continued_until_the_whole_line_is_written(path, monkeypatch):
    append(record(1))
    disk = FlakyDisk(monkeypatch, path)
    big = {**record(2), "notes": "x" * 200_000}
    append(big)
    assert disk.calls > 10  # many short writes...
    assert [from_json(json.loads(line)) for line in lines(path) if line] == [R(record(1)), R(big)]  # ...one complete line
    assert json.loads(lines(path)[1])["details"] == {"notes": "x" * 200_000}


def test_a_full_disk_leaves_no_fragment_and_says_so_in_one_line(path, monkeypatch):
    append(record(1))
    before = path.read_bytes()
    disk = FlakyDisk(monkeypatch, path, fail_after=40)  # part of the record gets onto the disk, then ENOSPC
    with pytest.raises(ResultsWriteError) as info:
        append(record(2))
    assert disk.written == 40
    assert str(info.value) == f"could not append to {path}: No space left on device"
    assert path.read_bytes() == before  # cut back: no half record for the next one to be glued onto
    monkeypatch.setattr(os, "write", disk.real_write)
    append(record(3))
    assert scan() == ([R(record(1)), R(record(3))], 0)


def test_a_failing_fsync_cuts_the_record_back(path, monkeypatch):
    append(record(1))
    before = path.read_bytes()
    real_fsync, calls = os.fsync, []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(ResultsWriteError, match=r"could not append to .*results.jsonl: Input/output error$"):
        append(record(2))
    assert path.read_bytes() == before and len(calls) == 2  # the cut-back was fsync'd too


def test_a_fragment_at_the_end_of_the_file_does_not_swallow_the_next_record(path):
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record(1)) + "\n" + '{"model": "deit-t", "data')  # crash of an older zoo
    append(record(2))
    assert lines(path)[-2:] == [json.dumps(R(record(2)).to_json()), ""]
    assert scan() == ([R(record(1)), R(record(2))], 1)


def test_a_read_only_home_is_one_line_and_creates_nothing(tmp_path, monkeypatch):
    home = tmp_path / "ro"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    target = home / "results.jsonl"
    if os.geteuid() == 0:  # root writes anywhere: make the file system refuse instead
        real_open = os.open

        def refusing_open(file, flags, *args, **kwargs):
            if Path(file) == target:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
            return real_open(file, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    else:
        home.chmod(0o555)
    try:
        with pytest.raises(ResultsWriteError) as info:
            append(record(1))
    finally:
        home.chmod(0o755)
    assert str(info.value) == f"could not append to {target}: Permission denied"
    assert not target.exists()


def test_a_home_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "file"))
    with pytest.raises(ResultsWriteError, match=r"^could not append to .*file/results.jsonl: (File exists|Not a directory)$"):
        append(record(1))
    assert (tmp_path / "file").read_text() == "not a folder"


def test_concurrent_appends_never_interleave(path):
    def writer(base: int) -> None:
        for i in range(100):
            append({**record(base + i), "pad": "y" * (i * 97 % 5000)})

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found, skipped = scan()
    assert skipped == 0 and sorted(r.metrics["top1"] for r in found) == sorted(float(k * 1000 + i) for k in range(4) for i in range(100))


def test_only_dicts_are_records(path):
    with pytest.raises(TypeError):
        append_jsonl(path, ["not", "a", "dict"])  # type: ignore[arg-type]
    assert not path.exists()


# -- the bench log uses the same append -----------------------------------------------------------------------


def test_bench_records_use_the_checked_append(monkeypatch):
    bench = store.bench_path()
    store.append_bench({"model": "a", "device": "cpu", "throughput_img_s": 10.0})
    before = bench.read_bytes()
    disk = FlakyDisk(monkeypatch, bench, fail_after=60)
    with pytest.raises(ResultsWriteError, match=f"could not append to {bench}: No space left on device"):
        store.append_bench({"model": "b", "device": "cpu", "throughput_img_s": 20.0, "pad": "z" * 500})
    assert bench.read_bytes() == before
    monkeypatch.setattr(os, "write", disk.real_write)
    bench.write_bytes(before + b'{"model": "c"')  # a fragment
    store.append_bench({"model": "d", "device": "cpu", "throughput_img_s": 30.0})
    assert set(store.latest_bench()) == {"a", "d"}
    d = store.bench_result({"model": "d", "device": "cpu", "throughput_img_s": 30.0})
    assert d.kind == "bench" and d.metrics == {"throughput_img_s": 30.0} and d.device == "cpu"
    assert bench.read_bytes().endswith(b'{"model": "c"\n' + json.dumps(d.to_json()).encode() + b"\n")


# -- reading ------------------------------------------------------------------------------------------------


BAD_LINES = [
    b"\xff\xfe not utf-8 \x00",
    b"{not json",
    b'{"model": "deit-t", "dataset": "imagenet", "top1": 7',  # a fragment
    b"[1, 2]",
    b"null",
    b'"a string"',
    b"{}",
    b'{"model": 1, "dataset": "imagenet"}',
    b'{"model": "deit-t", "dataset": ["imagenet"]}',
    b'{"model": "deit-t", "dataset": "imagenet", "top1": "72.2"}',
    b'{"model": "deit-t", "dataset": "imagenet", "top1": true}',
    b'{"model": "deit-t", "dataset": "imagenet", "top5": {"v": 1}}',
    b'{"model": "deit-t", "dataset": "imagenet", "images": 12.5}',
    b'{"model": "deit-t", "dataset": "imagenet", "images": "50000"}',
    b'{"model": "deit-t", "dataset": "imagenet", "metrics": [1]}',
    b'{"model": "deit-t", "dataset": "imagenet", "time": 5}',
    b"[" * 100_000,  # nesting deeper than the decoder's recursion limit
]


def test_undecodable_and_wrongly_typed_lines_are_skipped_and_counted(path):
    path.parent.mkdir(parents=True)
    fine = [record(1), {**record(2), "dataset": "imagenet-v2", "top1": None, "images": 10}, {**record(3), "top1": 80}]
    body = [json.dumps(fine[0]).encode(), *BAD_LINES[:8], json.dumps(fine[1]).encode(), *BAD_LINES[8:], b"", b"  ",
            json.dumps(fine[2]).encode()]
    path.write_bytes(b"\n".join(body) + b"\n")
    assert scan() == ([R(f) for f in fine], len(BAD_LINES))
    assert read_results() == ([R(f) for f in fine], len(BAD_LINES))
    assert read_results(model="DeiT-T", dataset="imagenet")[0] == [R(fine[0]), R(fine[2])]
    assert read_results(dataset="imagenet-v2") == ([R(fine[1])], len(BAD_LINES))  # skipped counts the whole file
    assert results.read(model="deit-t", dataset="imagenet") == [R(fine[0]).flat(), R(fine[2]).flat()]  # the old view
    assert results.read()[0]["top1"] == 1.0 and results.read()[0]["time"] == "t1"
    assert results.skipped_note(len(BAD_LINES)) == f"skipped {len(BAD_LINES)} unreadable line(s) in {path}"
    assert results.skipped_note(0) is None


def test_a_missing_file_is_empty_and_an_unreadable_one_is_one_line(path):
    assert scan() == ([], 0) and read_results() == ([], 0)
    path.mkdir(parents=True)
    with pytest.raises(ResultsError, match=r"^cannot read .*results.jsonl: it is a directory$"):
        scan()
