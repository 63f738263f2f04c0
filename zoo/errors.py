"""Errors raised by zoo. The core raises these; only the CLI turns them into exit codes.

Two families, as the CLI treats them:

- :class:`UserError` — the user asked for something that does not exist or makes no sense
  (unknown model, bad option). The CLI exits 2.
- every other :class:`ZooError` — the world is not as expected (bad card, failed download,
  hash mismatch, checkpoint that does not fit). The CLI exits 1.

Messages are one line: what, where, expected vs got.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ZooError(Exception):
    """Base class of every error zoo reports to a user."""


class UserError(ZooError):
    """The user's input is wrong (CLI exit code 2)."""


def _did_you_mean(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=n, cutoff=0.6)
    if not close:  # 'fastervit' -> 'fastervit-0', 'fastervit-1', ...
        close = [k for k in sorted(known) if k.startswith(name)][:n]
    return close


class UnknownName(UserError, LookupError):
    """A name (model, dataset, patch, task, plugin) that is not registered."""

    kind = "name"

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.suggestions = _did_you_mean(name, known)
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown {self.kind} {name!r}.{hint}")


class UnknownModel(UnknownName):
    kind = "model"


class UnknownDataset(UnknownName):
    kind = "dataset"


class UnknownPatch(UnknownName):
    kind = "patch"


class UnknownTask(UnknownName):
    kind = "task"


class UnknownPlugin(UnknownName):
    kind = "plugin"


class CardError(ZooError):
    """A card that does not validate, located by file, entry and field."""

    def __init__(self, path: str | Path, entry: str, field: str, problem: str) -> None:
        self.path, self.entry, self.field, self.problem = str(path), entry, field, problem
        where = ": ".join(part for part in (self.path, entry, field) if part)
        super().__init__(f"{where}: {problem}")


class InvalidCard(ZooError):
    """A card that exists but does not validate; asked for by name (CLI exit 1)."""

    def __init__(self, name: str, error: CardError) -> None:
        self.name, self.card_error = name, error
        super().__init__(f"model {name!r} has an invalid card: {error}")


class PluginError(ZooError):
    """A plugin that failed to load or returned something the contract does not allow."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class NotInstalled(ZooError):
    """A card whose plugin is not installed (or failed to load)."""


class BuildError(ZooError):
    """A builder could not be resolved or raised while building."""


class PatchError(ZooError):
    """A model patch (e.g. ToMe) cannot be applied to this model."""


class WeightsError(ZooError):
    """Weights could not be fetched, verified, converted or loaded."""


class OfflineError(WeightsError):
    """Offline mode is on and the file is not in the cache."""


class DataError(UserError):
    """A dataset is missing, empty or laid out differently from what was expected."""


class HomeError(UserError):
    """``ZOO_HOME`` cannot hold zoo's files: not a directory, not writable, or its disk is full."""


class ZooWarning(UserWarning):
    """Something non-fatal the user should see once (a bad card, a broken plugin hook).

    The core warns with :func:`warnings.warn`; the CLI prints each as one ``warning:`` line.
    """
