"""The ``zoo`` entry points of the installed distributions, found without ``importlib.metadata``.

``zoo list`` runs on every call and must start fast: importing ``importlib.metadata`` (it pulls in
``email``, ``zipfile`` and ``csv``) costs about 55 ms here, more than reading the few
``entry_points.txt`` files it would read. This module reads them itself, the way
``importlib.metadata`` finds them: every ``*.dist-info`` / ``*.egg-info`` folder of every
``sys.path`` directory, in ``sys.path`` order, the first distribution of a name winning. Where a
``sys.path`` entry is not a plain directory (a zip, an egg file), it asks ``importlib.metadata``
instead, so nothing it would find is missed.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any, NamedTuple


class Distribution(NamedTuple):
    name: str  #: as its metadata spells it ("zoo-efficientmod")
    version: str


class EntryPoint(NamedTuple):
    """What zoo needs of an entry point: ``importlib.metadata.EntryPoint`` offers the same."""

    name: str
    value: str  #: "module:attribute"
    group: str
    dist: Distribution | None = None

    def load(self) -> Any:
        module, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


_SECTION = re.compile(r"^\[\s*(.+?)\s*\]$")
_EXTRAS = re.compile(r"\s*\[.*\]\s*$")  # "module:attr [extra]": extras do not change what loads


def entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group``: ``sys.path`` order, distributions sorted by folder name within a
    directory (``importlib.metadata`` takes the directory's listing order, which the OS decides)."""
    if any(os.path.isfile(entry) for entry in sys.path if entry):  # a zip on sys.path: ask the library
        from importlib.metadata import entry_points as library_entry_points

        return list(library_entry_points(group=group))
    found: list[EntryPoint] = []
    seen_dists: set[str] = set()
    for entry in sys.path:
        for info in _metadata_dirs(entry or "."):
            dist = _distribution(info)
            key = _normalise(dist.name)
            if key in seen_dists:
                continue
            seen_dists.add(key)
            found += _read_group(os.path.join(info, "entry_points.txt"), group, dist)
    return found


def _metadata_dirs(directory: str) -> list[str]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:  # missing or unreadable path entries are skipped, as importlib does
        return []
    return [os.path.join(directory, n) for n in names if n.endswith((".dist-info", ".egg-info"))]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution(info: str) -> Distribution:
    """Name and version from METADATA (PKG-INFO for eggs), else from the folder's name."""
    stem = os.path.basename(info).rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    headers: dict[str, str] = {}
    for file in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(info, file), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if not line.strip():
                        break  # the headers end at the first blank line
                    key, sep, value = line.partition(":")
                    if sep and key in ("Name", "Version"):
                        headers.setdefault(key, value.strip())
            break
        except OSError:
            continue
    return Distribution(headers.get("Name", name), headers.get("Version", version))


def _read_group(path: str, group: str, dist: Distribution) -> list[EntryPoint]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    out, section = [], None
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = _SECTION.match(line)
        if header:
            section = header.group(1)
            continue
        name, sep, value = line.partition("=")
        if section == group and sep and name.strip():
            out.append(EntryPoint(name.strip(), _EXTRAS.sub("", value).strip(), group, dist))
    return out
