"""What the core needs of a dataset adapter's answer, whatever the task.

A ``zoo_datasets`` adapter is called as ``fn(root, **dataset_options)`` and returns an object
with the attributes below; everything else about it (samples, labels, annotations) is between
the adapter and its task's evaluate callable. The core only scans, limits and labels it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class EvalData(Protocol):
    """A scanned dataset: ``name``, ``root``, ``len()`` samples, ``limited(n)``, optional ``parts``.

    Optional attributes the core reads with ``getattr``: ``task`` (the task the data is for, when
    the dataset is not listed in the task's ``datasets``) and ``label`` (how a run on it is
    recorded, e.g. ``folder:/data/x``; default: the dataset's registered name).
    """

    name: str
    root: Path
    parts: Sequence[Any]

    def __len__(self) -> int: ...

    def limited(self, limit: int | None) -> Any: ...


def check_data(obj: Any, dataset: str) -> EvalData:
    """``obj`` as an :class:`EvalData`, or a TypeError naming what the adapter of ``dataset`` lacks."""
    missing = [attr for attr in ("name", "root", "limited", "__len__") if not hasattr(obj, attr)]
    if missing:
        raise TypeError(f"the adapter of dataset {dataset!r} returned a {type(obj).__name__} without "
                        f"{', '.join(missing)}")
    return obj
