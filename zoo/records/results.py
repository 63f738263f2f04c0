"""The results file: one JSON object per ``zoo eval`` run, appended to ``<zoo home>/results.jsonl``.

This module holds the file mechanics (the atomic append, the errors, the schema-1 field check);
:mod:`zoo.records.store` is the one writer and reader of :class:`~zoo.records.result.Result` lines.

Append-only: a run never rewrites earlier lines. Every append is complete or absent: it is written
in full (short writes are continued), fsync'd, and on any failure the file is cut back to its
length before the append, so no fragment is left for the next record to be glued onto. A line that
does not decode, or a record whose fields have the wrong types (a hand-edited file, a fragment
left by an older version), is skipped and counted when reading, never fatal.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.paths import zoo_home

# fields whose type the readers (zoo results, zoo verify, zoo plot) rely on; None is always allowed
_NUMBER = (int, float)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "top1": _NUMBER,
    "top5": _NUMBER,
    "images": (int,),
    "throughput_img_s": _NUMBER,
    "reported_top1": _NUMBER,
    "delta_top1": _NUMBER,
    "time": (str,),
    "device": (str,),
    "precision": (str,),
    "metrics": (dict,),
}


class ResultsError(ZooError):
    """The results file (or another zoo JSON-lines log) cannot be read or written."""


class ResultsWriteError(ResultsError):
    """A record could not be appended; the file was left as it was before the attempt."""


def results_path() -> Path:
    return zoo_home() / "results.jsonl"


def append(record: Any, path: Path | None = None) -> Path:
    """Append one eval record (a :class:`~zoo.records.result.Result`, or a zoo 0.1 dict, migrated) to
    the results file: :func:`zoo.records.store.append`, the one writer. Raises :class:`ResultsWriteError`."""
    from zoo.records import store

    return store.append(record, path)


def append_jsonl(path: str | Path, record: dict[str, Any], *, sort_keys: bool = False) -> Path:
    """Append ``record`` as one JSON line to ``path``: all of it, fsync'd, or nothing.

    Writers are serialised with an advisory lock, so a failed append can cut the file back to its
    previous length without touching another process's record. A file that does not end with a
    newline (a fragment left by a crash or an older zoo) gets one first, so the new record starts
    on its own line. Every failure (read-only or full disk, a home that is a file) is one
    :class:`ResultsWriteError` line naming the file and the OS error.
    """
    if not isinstance(record, dict):
        raise TypeError(f"a record is a dict, not {type(record).__name__}")
    path = Path(path)
    line = (json.dumps(record, default=str, sort_keys=sort_keys) + "\n").encode("utf-8")  # ASCII, one line: json escapes newlines
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ResultsWriteError(_message(path, exc)) from None
    try:
        with _locked(fd):
            before = os.fstat(fd).st_size
            if before and _last_byte(fd, before) != b"\n":
                line = b"\n" + line
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError as exc:
                _cut_back(fd, before)
                raise ResultsWriteError(_message(path, exc)) from None
    except OSError as exc:  # fstat / read / lock
        raise ResultsWriteError(_message(path, exc)) from None
    finally:
        os.close(fd)
    return path


def _last_byte(fd: int, size: int) -> bytes:
    os.lseek(fd, size - 1, os.SEEK_SET)  # O_APPEND still sends every write to the end
    return os.read(fd, 1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # a regular file that takes nothing: treat it as full
            raise OSError(28, os.strerror(28))  # ENOSPC
        view = view[written:]


def _cut_back(fd: int, size: int) -> None:
    """Remove whatever part of the record reached the file (best effort: the disk may be failing)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, size)
        os.fsync(fd)


@contextlib.contextmanager
def _locked(fd: int):  # type: ignore[no-untyped-def]
    try:
        import fcntl
    except ImportError:  # Windows: O_APPEND alone
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _message(path: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"could not append to {path}: {reason}"


# -- reading ------------------------------------------------------------------------------------------


def valid(record: Any) -> bool:
    """A JSON object with string ``model`` and ``dataset`` and the known fields of the right types."""
    if not isinstance(record, dict):
        return False
    if not isinstance(record.get("model"), str) or not isinstance(record.get("dataset"), str):
        return False
    for key, types in FIELD_TYPES.items():
        value = record.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            return False
    return True


def scan(path: Path | None = None, *, model: str | None = None,
         dataset: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """Deprecated flat view of :func:`zoo.records.store.scan` (the one reader): every record as
    :meth:`Result.flat <zoo.records.result.Result.flat>` (oldest first, filtered by exact model and
    dataset names) and how many non-blank lines were skipped (filtered-out records are not counted).
    For callers not yet switched to Result; raises :class:`ResultsError` when the file cannot be read."""
    from zoo.records import store

    records, skipped = store.scan(path, kind="eval")
    return [r.flat() for r in records
            if (model is None or r.model == model) and (dataset is None or r.dataset == dataset)], skipped


def read(model: str | None = None, dataset: str | None = None, path: Path | None = None) -> list[dict[str, Any]]:
    """Deprecated: every recorded run as a flat dict, oldest first (see :func:`scan`)."""
    return scan(path, model=model, dataset=dataset)[0]


def skipped_note(skipped: int, path: Path | None = None) -> str | None:
    """The one line a command prints when lines were skipped, or None."""
    if not skipped:
        return None
    return f"skipped {skipped} unreadable line(s) in {path or results_path()}"
