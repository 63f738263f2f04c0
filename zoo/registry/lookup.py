"""Looking cards up: the process-wide catalog and the plugins' hook tables (never imports torch)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from zoo.registry import plugins
from zoo.registry.cards import Card, Figure, Paper
from zoo.registry.catalog import Catalog, build_catalog
from zoo.registry.tasks import Task


@functools.cache
def catalog() -> Catalog:
    """The process-wide catalog, built on first use."""
    return build_catalog()


def reset() -> None:
    """Forget the cached catalog and hook results (tests and long-lived processes)."""
    catalog.cache_clear()  # hook tables live on the catalog


def list_models(pattern: str | None = None, **filters: Any) -> list[str]:
    """Names of the cards matching ``pattern`` (glob or substring) and ``filters``.

    Filters: ``task``, ``paper``, ``venue``, ``license``, ``plugin``, ``installed``.
    """
    return [card.name for card in catalog().select(pattern, **filters)]


def get_card(name: str) -> Card:
    """The card called ``name`` (any case); its ``.name`` is the canonical name to record and show.

    :raises UnknownModel: with did-you-mean suggestions.
    :raises InvalidCard: the card exists but does not validate (file, entry, field).
    """
    return catalog().get(name)


def get_paper(card_or_name: Card | str) -> Paper:
    card = get_card(card_or_name) if isinstance(card_or_name, str) else card_or_name
    return catalog().paper_of(card)


def _hook_table(hook: str) -> dict[str, dict[str, str]]:
    """``{plugin: {name: "module:callable"}}`` of a name-table hook; broken plugins left out (and named)."""
    return catalog().hook_table(hook)


def hook_entries(hook: str) -> dict[str, tuple[str, str]]:
    """``{name: (plugin, "module:callable")}`` across plugins; a name offered twice keeps its first provider."""
    return catalog().hook_entries(hook)


def tasks() -> dict[str, tuple[str, Task]]:
    """``{task name: (plugin, Task)}`` of every installed task; a zoo 0.1 bare evaluate reference
    becomes a :class:`Task` with that ``evaluate`` and nothing else declared."""
    out: dict[str, tuple[str, Task]] = {}
    for name, (plugin, value) in hook_entries("zoo_tasks").items():
        out[name] = (plugin, value if isinstance(value, Task) else Task(name=name, evaluate=value))
    return out


def get_task(name: str) -> Task | None:
    """The installed task called ``name``, or None when no installed plugin declares it."""
    entry = tasks().get(name)
    return entry[1] if entry else None


def task_code(card: Card, ref: str) -> Callable[..., Any] | None:
    """The callable named by ``ref`` (``"prepare"``, ``"postprocess"``, ...) of the card's task, imported
    from the plugin that declared it; None when the task is not installed or does not declare it."""
    entry = tasks().get(card.task)
    name = getattr(entry[1], ref, None) if entry is not None else None
    if not name:
        return None
    return plugins.resolve(name, entry[0])


def primary_claim(card: Card) -> tuple[str | None, Figure | None]:
    """(title, figure) of the card's headline claim: its task's primary metric on the first dataset
    reporting it, in the card's order (cards lead with the paper's headline dataset); (None, None) when none."""
    task = get_task(card.task)
    metric = task.primary if task is not None else None
    if metric is None or card.reported is None:
        return None, None
    figures = [(dataset, value) for _, dataset, name, value in card.reported.figures() if name == metric.name]
    return (metric.title, figures[0][1]) if figures else (metric.title, None)
