"""Weights: fetch (hub / url / gdrive), verify sha256, convert once to safetensors, load strictly.

The flow for ``create_model(name, pretrained=True)``:

1. :func:`ensure` looks for the card's converted entry in zoo's cache (:mod:`zoo.weights.cache`); if there
   is none it tries the card's sources in order (:mod:`zoo.weights.fetch`), checks the bytes' sha256
   (the card's, else the Hub's LFS ETag: ``hf_hub_download`` itself does not check them), converts
   the checkpoint (:mod:`zoo.weights.checkpoint`) and stores it as one safetensors file.
2. :func:`load_into` reads that safetensors file and loads it with ``strict=True``.

Offline (``HF_HUB_OFFLINE=1`` or ``ZOO_OFFLINE=1``) nothing opens a socket: cached files load,
and a missing one is a one-line :class:`~zoo.errors.OfflineError` saying how to get it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import OfflineError, UserError, WeightsError
from zoo.paths import offline
from zoo.registry.cards import Card, WeightSource
from zoo.weights import cache, checkpoint, fetch

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Added", "Downloaded", "add_file", "ensure", "import_bundle", "load_into", "no_weights_message",
           "provenance"]


@dataclass(frozen=True)
class Downloaded:
    entry: cache.Entry
    fetched: bool  # False when it was already in the cache


def no_weights_message(card: Card) -> str:
    if card.card_only:
        return f"model {card.name!r} is card-only (its claims are cited, nothing runs here): {card.card_only}"
    note = f": {card.weights_note}" if card.weights_note else ""
    return f"model {card.name!r} has no published weights{note}"


def ensure(card: Card, force: bool = False) -> Downloaded:
    """The cached, verified, converted weights of ``card``, fetching them if needed."""
    from zoo.registry import lookup

    if not force:
        entry = cache.find(card)
        if entry is not None:
            return Downloaded(entry, fetched=False)
    if not card.weights:
        raise WeightsError(no_weights_message(card))
    lookup.catalog().require_installed(card)  # the plugin's converter must run before anything is cached
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
        by_hand = cache.manual(card.name)
        note = (f" (the hand-added {by_hand.manifest.get('file')} is not the card's file; to use it pass "
                f"--checkpoint {by_hand.path})") if by_hand is not None else ""
        if offline() and not failures:
            files = ", ".join(sorted({s.filename for s in not_cached}))
            raise OfflineError(
                f"model {card.name!r}: weights file {files} is not in the cache and offline mode is on "
                f"(HF_HUB_OFFLINE/ZOO_OFFLINE); run `zoo download {card.name}` on a connected machine, "
                f"or bring them with `zoo cache import BUNDLE`, or pass --checkpoint PATH{note}"
            )
        if len(failures) == 1:
            raise WeightsError(f"model {card.name!r}: {failures[0]}{note}")
        attempts = "; ".join(f"[{i}] {text}" for i, text in enumerate(failures, 1))
        raise WeightsError(f"model {card.name!r}: no weight source worked: {attempts}{note}")


def _fetch_verify_store(card: Card, source: WeightSource, force: bool) -> cache.Entry:
    got = fetch.fetch(card, source, force=force)
    actual = fetch.sha256_file(got.path)
    expected = source.sha256 or got.expected_sha256
    if expected and actual != expected:
        fetch.discard(got)
        whose = "the card's" if source.sha256 else "the server's ETag"
        raise fetch.FetchError(f"sha256 mismatch: got {actual}, {whose} is {expected}; the file was removed")
    try:
        entry = cache.store(card, source, got.path, actual, origin="official")
    except BaseException:
        if got.owned:  # a file that cannot be converted is of no use; a hub file stays in HF's cache
            got.path.unlink(missing_ok=True)
        raise
    if got.owned:  # the safetensors file replaces our own raw download; hub files stay in HF's cache
        got.path.unlink(missing_ok=True)
    return entry


@dataclass(frozen=True)
class Added:
    entry: cache.Entry
    replaced: cache.Entry | None  # the hand-added entry this one replaced
    used_by_pretrained: bool  # whether create_model(pretrained=True) now loads it


def add_file(card: Card, path: str | Path) -> Added:
    """Register a file downloaded by hand.

    A file whose sha256 is one the card states *is* the card's file: it is stored as an official
    entry. Any other file is refused when the card states a sha256 for that file name, and otherwise
    kept as the model's one hand-added (``manual``) entry, replacing the previous one. A manual entry
    is what ``pretrained=True`` loads only for a card without any scriptable source (weights in a
    Drive folder, on box.com); for the others it never stands in for the official weights.
    """
    from zoo.registry import lookup

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{str(path)!r} is not a file")
    lookup.catalog().require_installed(card)
    actual = fetch.sha256_file(path)
    official = next((s for s in card.weights if s.sha256 == actual), None)
    if official is not None:
        with cache.lock(card.name):
            entry = cache.store(card, official, path, actual, origin="official", added_from=str(path.resolve()))
        return Added(entry, None, used_by_pretrained=True)
    named = next((s for s in card.weights if s.filename == path.name), None)
    expected = named if named is not None else next((s for s in card.weights if s.sha256), None)
    if expected is not None and expected.sha256:
        raise WeightsError(
            f"model {card.name!r}: {path.name} has sha256 {actual}, the card expects {expected.sha256} "
            f"({expected.describe()}); not added"
        )
    with cache.lock(card.name):
        previous = cache.manual(card.name)
        entry = cache.store(card, WeightSource(file=path.name), path, actual, origin="manual",
                            added_from=str(path.resolve()))
    replaced = previous if previous is not None and previous.sha256 != actual else None
    return Added(entry, replaced, used_by_pretrained=not card.weights)


#: ``shapes_of(card)``: the tensor names and shapes ``card``'s builder makes, or None when it cannot be
#: built here; given by a caller above the weights layer (the weights layer never builds a model).
ShapesOf = Callable[[Card], Mapping[str, tuple[int, ...]] | None]


def import_bundle(bundle: str | Path, shapes_of: ShapesOf | None = None) -> list[cache.Entry]:
    """Import a bundle made by `zoo cache export` (all of it or nothing; see :func:`zoo.weights.cache.import_bundle`).

    Each entry must name an installed card. With ``shapes_of`` (the CLI passes one that builds the
    model on the meta device), each file's tensor names and shapes, read from its safetensors header
    only, must be exactly the builder's, so a self-consistent bundle of the wrong tensors is refused.
    """
    from zoo.errors import UnknownName
    from zoo.registry import lookup

    def card_of(name: str) -> Card | None:
        try:
            card = lookup.get_card(name)
        except UnknownName:
            return None
        return card if card.name == name else None

    def check(card: Card, path: Path) -> None:
        if shapes_of is not None and lookup.catalog().installed(card):
            expected = shapes_of(card)
            if expected is not None:
                check_header(card, path, expected)

    return cache.import_bundle(Path(bundle), card_of, check=check)


def check_header(card: Card, path: Path, expected: Mapping[str, tuple[int, ...]]) -> None:
    """The safetensors header at ``path`` must hold exactly ``expected``'s names and shapes (no tensor is read)."""
    from safetensors import safe_open

    own = {str(k): tuple(v) for k, v in expected.items()}
    with safe_open(str(path), framework="pt") as fh:
        aliases = json.loads((fh.metadata() or {}).get(checkpoint.ALIASES, "{}"))
        got = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    got.update({alias: got.get(name, ()) for alias, name in aliases.items()})
    missing = sorted(set(own) - set(got))
    unexpected = sorted(set(got) - set(own))
    shapes = sorted(k for k in set(own) & set(got) if own[k] != got[k])
    if missing or unexpected or shapes:
        first = (missing or unexpected or shapes)[0]
        raise WeightsError(
            f"bundle entry for {card.name!r} does not fit its builder ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(shapes)} differently shaped tensors, e.g. {first!r}); nothing imported"
        )


def provenance(card: Card, *, pretrained: bool, checkpoint: str | Path | None = None) -> dict[str, object]:
    """Where the weights of a run came from, as recorded with every result.

    ``origin`` is ``official`` (bytes from one of the card's sources, or a file whose sha256 is one the
    card states), ``manual`` (a file added by hand with `zoo cache add`: used by ``pretrained=True``
    only for a card whose weights no script can fetch), ``checkpoint`` (a local file passed by the
    user), or ``random`` (no weights). ``sha256`` is the raw (original) file's hash; ``source`` says
    where it came from (the card's source, ``manual:<file>``, or the checkpoint's path).
    """
    if checkpoint is not None:
        actual = fetch.sha256_file(checkpoint)
        known = {s.sha256 for s in card.weights if s.sha256}
        return {"origin": "official" if actual in known else "checkpoint", "sha256": actual,
                "source": str(checkpoint)}
    if not pretrained:
        return {"origin": "random", "sha256": None, "source": None}
    entry = ensure(card).entry
    return {"origin": entry.origin, "sha256": entry.sha256 or None, "source": entry.source}


def load_into(model: nn.Module, card: Card, checkpoint: str | Path | None = None) -> nn.Module:
    """Load ``checkpoint`` (a local file) or the card's own weights into ``model``, strictly."""
    if checkpoint is not None:
        from zoo.weights import checkpoint as ckpt

        state_dict = ckpt.load_converted(card, checkpoint)
        ckpt.load_strict(model, state_dict, card, origin=repr(str(checkpoint)))
        return model
    entry = ensure(card).entry
    ckpt = _checkpoint()
    ckpt.load_strict(model, ckpt.read_safetensors(entry.path), card, origin=f"from {entry.source}")
    return model


def _checkpoint():  # the module, shadowed by load_into's argument name
    return checkpoint
