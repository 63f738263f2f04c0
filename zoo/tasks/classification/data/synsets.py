"""ImageNet label spaces: the 1000 WordNet ids and the 200-class subsets of ImageNet-A and -R.

The lists are read from the files timm ships (``timm/data/_info/``), found without importing
timm (importing it costs seconds). The 1k order is the sorted WordNet ids, the order every
ImageNet-1k classifier uses; ImageNet-A/-R are scored on the logits of their 200 classes.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

from zoo.errors import DataError


@functools.cache
def _info_dir() -> Path:
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the ImageNet class lists come from timm's package data: timm is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of ``path`` (a BOM is dropped), whatever the locale says.

    :raises DataError: one line naming the file and, for text that is not UTF-8, the byte offset.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                        f"({exc.reason})") from None


def _lines(name: str) -> list[str]:
    path = _info_dir() / name
    if not path.is_file():
        raise DataError(f"missing {path} (expected in timm's package data)")
    return [line.strip() for line in read_text(path, "class list").splitlines() if line.strip()]


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids in class-index order."""
    return tuple(_lines("imagenet_synsets.txt"))


@functools.cache
def imagenet_index() -> dict[str, int]:
    return {wnid: i for i, wnid in enumerate(imagenet_wnids())}


@functools.cache
def subset_wnids(name: str) -> tuple[str, ...]:
    """The 200 WordNet ids of ``imagenet-a`` or ``imagenet-r``, in their class order."""
    return tuple(_lines({"imagenet-a": "imagenet_a_synsets.txt", "imagenet-r": "imagenet_r_synsets.txt"}[name]))


def subset_indices(name: str) -> list[int]:
    """Where the subset's classes sit among the 1000 logits."""
    index = imagenet_index()
    return [index[wnid] for wnid in subset_wnids(name)]


def real_labels(path: Path | None = None) -> list[list[int]]:
    """ReaL labels (Beyer et al. 2020): one list of 1k indices per val image, in file-number order."""
    path = path or _info_dir() / "imagenet_real_labels.json"
    text = read_text(path, "ReaL labels")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DataError(f"ReaL labels {path}: invalid JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(x, list) for x in data):
        raise DataError(f"ReaL labels {path}: expected a JSON list of lists of class indices")
    return data
