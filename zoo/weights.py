"""Weights: fetch (hub / url / gdrive), verify sha256, convert once to safetensors, load strictly.

The flow for ``create_model(name, pretrained=True)``:

1. :func:`ensure` looks for the card's converted entry in zoo's cache (:mod:`zoo.cache`); if there
   is none it tries the card's sources in order (:mod:`zoo.fetch`), checks the bytes' sha256
   (the card's, else the Hub's LFS ETag: ``hf_hub_download`` itself does not check them), converts
   the checkpoint (:mod:`zoo.checkpoint`) and stores it as one safetensors file.
2. :func:`load_into` reads that safetensors file and loads it with ``strict=True``.

Offline (``HF_HUB_OFFLINE=1`` or ``ZOO_OFFLINE=1``) nothing opens a socket: cached files load,
and a missing one is a one-line :class:`~zoo.errors.OfflineError` saying how to get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import cache, checkpoint, fetch
from zoo.cards import Card, WeightSource
from zoo.errors import OfflineError, WeightsError
from zoo.paths import offline

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Downloaded", "add_file", "ensure", "load_into", "no_weights_message", "provenance"]


@dataclass(frozen=True)
class Downloaded:
    entry: cache.Entry
    fetched: bool  # False when it was already in the cache


def no_weights_message(card: Card) -> str:
    note = f": {card.weights_note}" if card.weights_note else ""
    return f"model {card.name!r} has no published weights{note}"


def ensure(card: Card, force: bool = False) -> Downloaded:
    """The cached, verified, converted weights of ``card``, fetching them if needed."""
    from zoo import api

    if not force:
        entry = cache.find(card)
        if entry is not None:
            return Downloaded(entry, fetched=False)
    if not card.weights:
        raise WeightsError(no_weights_message(card))
    api.catalog().require_installed(card)  # the plugin's converter must run before anything is cached
    with cache.lock(card.name):  # a second process waits here, then finds the entry
        if not force:
            entry = cache.find(card)
            if entry is not None:
                return Downloaded(entry, fetched=False)
        failures: list[str] = []
        not_cached: list[WeightSource] = []
        for source in card.weights:
            try:
                return Downloaded(_fetch_verify_store(card, source, force), fetched=True)
            except fetch.NotCached:
                not_cached.append(source)
            except WeightsError as exc:
                failures.append(f"{source.describe()}: {exc}")
        if offline() and not failures:
            files = ", ".join(sorted({s.filename for s in not_cached}))
            raise OfflineError(
                f"model {card.name!r}: weights file {files} is not in the cache and offline mode is on "
                f"(HF_HUB_OFFLINE/ZOO_OFFLINE); run `zoo download {card.name}` on a connected machine, "
                f"or bring them with `zoo cache import BUNDLE`, or pass --checkpoint PATH"
            )
        if len(failures) == 1:
            raise WeightsError(f"model {card.name!r}: {failures[0]}")
        attempts = "; ".join(f"[{i}] {text}" for i, text in enumerate(failures, 1))
        raise WeightsError(f"model {card.name!r}: no weight source worked: {attempts}")


def _fetch_verify_store(card: Card, source: WeightSource, force: bool) -> cache.Entry:
    got = fetch.fetch(card, source, force=force)
    actual = fetch.sha256_file(got.path)
    expected = source.sha256 or got.expected_sha256
    if expected and actual != expected:
        fetch.discard(got)
        whose = "the card's" if source.sha256 else "the server's ETag"
        raise fetch.FetchError(f"sha256 mismatch: got {actual}, {whose} is {expected}; the file was removed")
    try:
        entry = cache.store(card, source, got.path, actual)
    except BaseException:
        if got.owned:  # a file that cannot be converted is of no use; a hub file stays in HF's cache
            got.path.unlink(missing_ok=True)
        raise
    if got.owned:  # the safetensors file replaces our own raw download; hub files stay in HF's cache
        got.path.unlink(missing_ok=True)
    return entry


def add_file(card: Card, path: str | Path) -> cache.Entry:
    """Register a file downloaded by hand: hash-checked when the card has a sha256, then converted."""
    from zoo import api

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{str(path)!r} does not exist")
    api.catalog().require_installed(card)
    if not card.weights:  # no scriptable source (a Drive folder, a box.com link): keep it as a manual entry
        source = WeightSource(file=path.name)
    else:
        source = next((s for s in card.weights if s.filename == path.name), card.weights[0])
    actual = fetch.sha256_file(path)
    known = [s for s in card.weights if s.sha256]
    if known and source.sha256 is None:  # a file of another name: it must match one of the card's hashes
        source = next((s for s in known if s.sha256 == actual), source)
    if source.sha256 and actual != source.sha256:
        raise WeightsError(
            f"model {card.name!r}: {path.name} has sha256 {actual}, the card expects {source.sha256} "
            f"({source.describe()}); not added"
        )
    with cache.lock(card.name):
        return cache.store(card, source, path, actual, added_from=str(path.resolve()))


def provenance(card: Card, *, pretrained: bool, checkpoint: str | Path | None = None) -> dict[str, object]:
    """Where the weights of a run came from, as recorded with every result.

    ``origin`` is ``official`` (bytes from one of the card's sources, or a file whose sha256 is the
    card's), ``manual`` (a file added by hand with `zoo cache add`), ``checkpoint`` (a local file
    passed by the user), or ``random`` (no weights). ``sha256`` is the raw file's hash.
    """
    if checkpoint is not None:
        actual = fetch.sha256_file(checkpoint)
        known = {s.sha256 for s in card.weights if s.sha256}
        return {"origin": "official" if actual in known else "checkpoint", "sha256": actual,
                "source": str(checkpoint)}
    if not pretrained:
        return {"origin": "random", "sha256": None, "source": None}
    entry = ensure(card).entry
    origin = "manual" if entry.source.startswith("manual:") else "official"
    return {"origin": origin, "sha256": entry.sha256 or None, "source": entry.source}


def load_into(model: nn.Module, card: Card, checkpoint: str | Path | None = None) -> nn.Module:
    """Load ``checkpoint`` (a local file) or the card's own weights into ``model``, strictly."""
    if checkpoint is not None:
        from zoo import checkpoint as ckpt

        state_dict = ckpt.load_converted(card, checkpoint)
        ckpt.load_strict(model, state_dict, card, origin=repr(str(checkpoint)))
        return model
    from safetensors.torch import load_file

    entry = ensure(card).entry
    _checkpoint().load_strict(model, load_file(str(entry.path)), card, origin=f"from {entry.source}")
    return model


def _checkpoint():  # the module, shadowed by load_into's argument name
    return checkpoint
