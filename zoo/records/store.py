"""The one writer and the one reader of zoo's records: eval runs (``results.jsonl``) and bench runs
(``bench.jsonl``), both as :class:`~zoo.records.result.Result` lines.

:func:`append` writes a Result (a plain dict from an older caller is migrated first) with the atomic,
locked, all-or-nothing :func:`zoo.records.results.append_jsonl`. :func:`scan` reads a file back as
Results: lines written by an older zoo (schema 1: flat ``top1``/``top5`` eval lines, flat bench lines)
are migrated by :func:`from_json`; a line that does not decode, has the wrong types or comes from a
newer zoo (an unknown schema) is skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from zoo.records.result import KINDS, SCHEMA, Result
from zoo.records.results import ResultsError, append_jsonl, results_path, valid

# schema-1 eval lines: these fields become Result fields; metrics and protocol are built apart; the rest -> details
_V1_KEPT = ("images", "throughput_img_s", "limit", "patch", "pretrained", "checkpoint", "skipped_bad_images",
            "device", "time", "versions", "weights")
_V1_METRICS = ("top1", "top5")
# schema-1 bench lines (zoo.report.plot.record_bench): numbers that become metrics
_BENCH_METRICS = ("params_m", "gmacs", "throughput_img_s", "throughput_wall_img_s", "peak_memory_mb")
_BENCH_KEPT = ("device", "patch", "checkpoint", "time", "versions")


def bench_path() -> Path:
    from zoo.paths import zoo_home

    return zoo_home() / "bench.jsonl"


# -- schema-2 field types (None allowed where the field's default is None) ---------------------------------

_NUM = (int, float)
_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {  # field -> (types, None allowed)
    "model": ((str,), False), "dataset": ((str,), False), "task": ((str,), False), "kind": ((str,), False),
    "protocol": ((dict,), False), "precision": ((str,), False), "metrics": ((dict,), False),
    "weights": ((dict,), True), "images": ((int,), True), "throughput_img_s": (_NUM, True),
    "limit": ((int,), True), "patch": ((str,), True), "pretrained": ((bool,), True),
    "checkpoint": ((str,), True), "skipped_bad_images": ((bool,), False), "device": ((str,), True),
    "time": ((str,), True), "versions": ((dict,), False), "details": ((dict,), False), "schema": ((int,), False),
}
_FIELDS = {f.name for f in fields(Result)}


def _typed(name: str, value: Any) -> bool:
    types, none_ok = _TYPES[name]
    if value is None:
        return none_ok
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))


def from_json(obj: Any) -> Result | None:
    """The Result a decoded line holds, or None when it cannot be one (not an object, wrong types, a
    schema this zoo does not know). Schema-1 lines (no ``schema`` field) are migrated."""
    if not isinstance(obj, dict):
        return None
    schema = obj.get("schema", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or not 1 <= schema <= SCHEMA:
        return None
    if schema == 1:
        return _from_v1_bench(obj) if obj.get("kind") == "bench" else _from_v1(obj)
    return _from_v2(obj)


def _from_v2(obj: dict[str, Any]) -> Result | None:
    if not all(name in obj for name in ("model", "dataset")):
        return None
    values = {k: v for k, v in obj.items() if k in _FIELDS}
    if not all(_typed(k, v) for k, v in values.items()):
        return None
    if values.get("kind", "eval") not in KINDS:
        return None
    metrics = values.get("metrics", {})
    if not all(isinstance(k, str) and _number_or_none(v) for k, v in metrics.items()):
        return None
    extra = {k: v for k, v in obj.items() if k not in _FIELDS}  # a newer minor field: kept, not lost
    details = {**extra, **values.get("details", {})} if extra else values.get("details", {})
    return Result(**{**values, "details": details})


def _protocol_v1(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The classification protocol of a zoo 0.1 line: its preprocessing, and for ImageNet-C the
    corruption and severity it ran (strings, "all" when not given)."""
    protocol: dict[str, Any] = {}
    if isinstance(obj.get("preprocess"), dict):
        protocol["preprocess"] = obj["preprocess"]
    if obj["dataset"] == "imagenet-c":
        options = obj.get("dataset_options") if isinstance(obj.get("dataset_options"), dict) else {}
        for key in ("corruption", "severity"):
            value = options.get(key)
            protocol[key] = "all" if value is None else str(value)
    return protocol


def _from_v1(obj: dict[str, Any]) -> Result | None:
    if not valid(obj):
        return None
    kept = {k: obj[k] for k in _V1_KEPT if obj.get(k) is not None}
    if not all(_typed(k, v) for k, v in kept.items()):
        return None
    metrics: dict[str, float | None] = {}
    if isinstance(obj.get("metrics"), dict):  # an older hook's nested metrics, lifted as verify did
        metrics.update({k: v for k, v in obj["metrics"].items() if isinstance(k, str) and _number_or_none(v)})
    metrics.update({k: obj[k] for k in _V1_METRICS if k in obj})
    skip = {"model", "dataset", "precision", "metrics", "preprocess", "schema", *_V1_METRICS, *_V1_KEPT}
    details = {k: v for k, v in obj.items() if k not in skip}
    if "preprocess" in obj:
        details["preprocess"] = obj["preprocess"]
    precision = obj.get("precision")
    return Result(model=obj["model"], dataset=obj["dataset"], task="image-classification", kind="eval",
                  protocol=_protocol_v1(obj), precision=precision if isinstance(precision, str) else "unknown",
                  metrics=metrics, details=details, schema=SCHEMA, **kept)


def _from_v1_bench(obj: dict[str, Any]) -> Result | None:
    """A bench line of zoo 0.1 (``zoo.report.plot.record_bench``): numbers -> metrics, the rest -> details."""
    if not isinstance(obj.get("model"), str):
        return None
    kept = {k: obj[k] for k in _BENCH_KEPT if obj.get(k) is not None}
    if not all(_typed(k, v) for k, v in kept.items()):
        return None
    metrics = {k: obj[k] for k in _BENCH_METRICS if k in obj}
    latency = obj.get("latency_ms")
    if isinstance(latency, dict):
        metrics["latency_ms"] = latency.get("median")
        metrics["latency_p90_ms"] = latency.get("p90")
    elif latency is not None:
        return None
    if not all(_number_or_none(v) for v in metrics.values()):
        return None
    precision = obj.get("precision") or obj.get("amp") or "fp32"
    skip = {"model", "kind", "task", "dataset", "precision", "latency_ms", *_BENCH_METRICS, *_BENCH_KEPT}
    details = {k: v for k, v in obj.items() if k not in skip}
    task = obj.get("task") if isinstance(obj.get("task"), str) else "image-classification"
    return Result(model=obj["model"], dataset=str(obj.get("dataset") or "synthetic"), task=task, kind="bench",
                  precision=str(precision), metrics=metrics, details=details, schema=SCHEMA, **kept)


def bench_result(raw: Mapping[str, Any]) -> Result:
    """The Result of a ``zoo.measure.bench.benchmark`` dict (what ``zoo bench`` records). A figure
    that is not a finite number (a timer that read zero) is recorded as None, not refused."""
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in raw.items()}
    result = _from_v1_bench({**clean, "kind": "bench"})
    if result is None:
        raise ValueError(f"not a bench result: {sorted(raw)[:8]}")
    return result


def _as_result(record: Result | Mapping[str, Any], kind: str) -> Result:
    if isinstance(record, Result):
        return record
    if not isinstance(record, Mapping):
        raise TypeError(f"a record is a Result or a dict, not {type(record).__name__}")
    if kind == "bench":
        return bench_result(record)
    result = from_json(dict(record))
    if result is None:
        raise ValueError("not a results record: it needs string 'model' and 'dataset' and numbers for its metrics")
    return result


def append(result: Result | Mapping[str, Any], path: str | Path | None = None) -> Path:
    """Append one eval Result to the results file (default ``$ZOO_HOME/results.jsonl``): the whole line,
    fsync'd, or nothing (:class:`~zoo.records.results.ResultsWriteError`). A dict (a zoo 0.1 eval
    line) is accepted and written as the Result it migrates to."""
    record = _as_result(result, "eval")
    return append_jsonl(Path(path) if path is not None else results_path(), record.to_json())


def append_bench(result: Result | Mapping[str, Any], path: str | Path | None = None) -> Path:
    """Append one bench Result (or a ``zoo.measure.bench.benchmark`` dict) to ``$ZOO_HOME/bench.jsonl``."""
    record = _as_result(result, "bench")
    if record.kind != "bench":
        raise ValueError(f"a bench record has kind 'bench', not {record.kind!r}")
    return append_jsonl(Path(path) if path is not None else bench_path(), record.to_json())


def _read_bytes(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ResultsError(f"cannot read {path}: it is a directory") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None


def scan(path: str | Path | None = None, *, kind: str | None = None) -> tuple[list[Result], int]:
    """Every Result of ``path`` (default: the results file), oldest first, and how many non-blank
    lines were skipped (undecodable, wrongly typed, an unknown schema). ``kind`` keeps only that kind.
    Raises :class:`~zoo.records.results.ResultsError` when the file exists but cannot be read."""
    return _scan(Path(path) if path is not None else results_path(), kind, legacy_kind="eval")


def _scan(path: Path, kind: str | None, legacy_kind: str) -> tuple[list[Result], int]:
    data = _read_bytes(path)
    if data is None:
        return [], 0
    records: list[Result] = []
    skipped = 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            skipped += 1
            continue
        if legacy_kind == "bench" and isinstance(obj, dict) and "schema" not in obj:
            obj = {**obj, "kind": "bench"}  # zoo 0.1 bench lines carry no kind
        result = from_json(obj)
        if result is None:
            skipped += 1
        elif kind is None or result.kind == kind:
            records.append(result)
    return records, skipped


def scan_bench(path: str | Path | None = None) -> tuple[list[Result], int]:
    """Every bench Result of the bench log (default ``$ZOO_HOME/bench.jsonl``), and the lines skipped."""
    return _scan(Path(path) if path is not None else bench_path(), "bench", legacy_kind="bench")


def latest_bench(path: str | Path | None = None) -> dict[str, Result]:
    """The latest bench Result per model name (as recorded)."""
    return {r.model: r for r in scan_bench(path)[0]}
