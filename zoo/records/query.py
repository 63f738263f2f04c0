"""Asking the results file for runs: by model (any case, canonicalised against the catalog) and dataset."""

from __future__ import annotations

from pathlib import Path

from zoo.errors import UnknownModel
from zoo.records.result import Result


def canonical_model(name: str, recorded: list[str] | None = None) -> str:
    """The card's name for ``name`` (``EfficientMod-XXS`` -> ``efficientmod-xxs``).

    A name with no card (its plugin was removed) is still accepted when runs were recorded under
    it, case-insensitively; anything else is an unknown model, with close names suggested.
    """
    from zoo.registry import lookup

    try:
        return lookup.get_card(name).name
    except UnknownModel:
        known = {m.lower(): m for m in recorded or []}
        if name.lower() in known:
            return known[name.lower()]
        raise UnknownModel(name, [*lookup.list_models(), *known.values()]) from None


def read_results(model: str | None = None, dataset: str | None = None,
                 path: str | Path | None = None) -> tuple[list[Result], int]:
    """The recorded eval runs, oldest first, filtered by model (canonicalised, see
    :func:`canonical_model`) and exact dataset, and how many lines :func:`zoo.records.store.scan`
    (the one reader) skipped: not JSON, not an object, wrongly typed, or of a newer schema."""
    from zoo.records import store

    good, skipped = store.scan(path, kind="eval")
    if model is not None:
        wanted = canonical_model(model, [r.model for r in good]).lower()
        good = [r for r in good if r.model.lower() == wanted]
    if dataset is not None:
        good = [r for r in good if r.dataset == dataset]
    return good, skipped
