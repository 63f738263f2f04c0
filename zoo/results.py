"""The results file: one JSON object per ``zoo eval`` run, appended to ``<zoo home>/results.jsonl``.

Append-only: a run never rewrites earlier lines. A line that does not parse (e.g. a run killed
mid-write on an unusual filesystem) is skipped when reading, never fatal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zoo.paths import zoo_home


def results_path() -> Path:
    return zoo_home() / "results.jsonl"


def append(record: dict[str, Any], path: Path | None = None) -> Path:
    """Append ``record`` as one line (a single ``write`` on an ``O_APPEND`` file)."""
    path = path or results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=False, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return path


def scan(path: Path | None = None) -> tuple[list[dict[str, Any]], int]:
    """Every decodable record (a JSON object), oldest first, and how many lines were skipped."""
    path = path or results_path()
    if not path.is_file():
        return [], 0
    records, skipped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if not isinstance(record, dict):
            skipped += 1
            continue
        records.append(record)
    return records, skipped


def read(model: str | None = None, dataset: str | None = None, path: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded run, oldest first, filtered by exact model and dataset names."""
    path = path or results_path()
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if model is not None and record.get("model") != model:
            continue
        if dataset is not None and record.get("dataset") != dataset:
            continue
        out.append(record)
    return out
