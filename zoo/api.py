"""The Python API under the CLI, shaped like timm's: list, look up, build.

``zoo.list_models`` and ``zoo.get_card`` read cards only; ``zoo.create_model`` imports torch
and the card's plugin code when it is called.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import plugins
from zoo.cards import Card, Paper
from zoo.catalog import Catalog, build_catalog
from zoo.errors import BuildError, PluginError, UnknownPatch, UserError

if TYPE_CHECKING:
    from torch import nn


@functools.cache
def catalog() -> Catalog:
    """The process-wide catalog, built on first use."""
    return build_catalog()


def reset() -> None:
    """Forget the cached catalog and hook results (tests and long-lived processes)."""
    catalog.cache_clear()
    _hook_table.cache_clear()


def list_models(pattern: str | None = None, **filters: Any) -> list[str]:
    """Names of the cards matching ``pattern`` (glob or substring) and ``filters``.

    Filters: ``task``, ``paper``, ``venue``, ``license``, ``plugin``, ``installed``.
    """
    return [card.name for card in catalog().select(pattern, **filters)]


def get_card(name: str) -> Card:
    """The card called ``name``; raises ``UnknownModel`` with did-you-mean suggestions."""
    return catalog().get(name)


def get_paper(card_or_name: Card | str) -> Paper:
    card = get_card(card_or_name) if isinstance(card_or_name, str) else card_or_name
    return catalog().paper_of(card)


@functools.cache
def _hook_table(hook: str) -> dict[str, dict[str, str]]:
    """``{plugin: {name: "module:callable"}}`` for a 1:N name-table hook, validated."""
    errors: list[PluginError] = []
    table = plugins.collect(catalog().pm, hook, errors)
    for plugin_name, entries in table.items():
        if not isinstance(entries, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items()):
            raise PluginError(plugin_name, f"{hook}() must return a dict of name -> 'module:callable'")
    if errors:
        raise errors[0]
    return table


def hook_entries(hook: str) -> dict[str, tuple[str, str]]:
    """``{name: (plugin, "module:callable")}`` across plugins; a name offered twice is an error."""
    merged: dict[str, tuple[str, str]] = {}
    for plugin_name, entries in _hook_table(hook).items():
        for name, ref in entries.items():
            if name in merged:
                raise PluginError(plugin_name, f"{hook}: {name!r} is already provided by plugin {merged[name][0]!r}")
            merged[name] = (plugin_name, ref)
    return merged


def get_builder(card: Card) -> Any:
    """The callable that builds ``card``'s architecture (imports the plugin's model code)."""
    cat = catalog()
    cat.require_installed(card)
    builders = _hook_table("zoo_builders").get(card.plugin, {})
    if card.builder not in builders:
        raise BuildError(
            f"model {card.name!r}: plugin {card.plugin!r} has no builder {card.builder!r} "
            f"(it offers: {', '.join(sorted(builders)) or 'none'})"
        )
    return plugins.resolve(builders[card.builder], card.plugin)


def parse_patch(spec: str) -> tuple[str, dict[str, Any]]:
    """``"tome:r=13,prop_attn=true"`` -> ``("tome", {"r": 13, "prop_attn": True})``."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"patch {spec!r}: expected NAME:key=value,..., got {item!r}")
        options[key.strip()] = _typed(value.strip())
    if not name:
        raise UserError(f"patch {spec!r}: missing patch name")
    return name, options


def _typed(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def apply_patch(model: nn.Module, spec: str) -> nn.Module:
    """Apply a plugin's model patch (e.g. ``tome:r=13``) to ``model``."""
    name, options = parse_patch(spec)
    patches = hook_entries("zoo_patches")
    if name not in patches:
        raise UnknownPatch(name, patches)
    plugin_name, ref = patches[name]
    return plugins.resolve(ref, plugin_name)(model, **options)


def create_model(
    name: str,
    pretrained: bool = False,
    *,
    checkpoint: str | Path | None = None,
    patch: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build the model of card ``name``, in eval mode.

    :param pretrained: load the card's weights (downloaded and verified on first use).
    :param checkpoint: load this local file instead (``.safetensors``, ``.pth``, ``.pth.tar``, ``.pt``, ``.bin``).
    :param patch: a model patch applied after loading, ``"NAME:k=v,..."``; the card's own
        ``patch:`` is applied first.
    :param kwargs: passed to the builder (e.g. ``num_classes``).
    """
    card = get_card(name)
    builder = get_builder(card)
    kwargs.setdefault("num_classes", card.num_classes)
    try:  # check the arguments first, so a TypeError raised inside the builder stays a visible bug
        inspect.signature(builder).bind(**kwargs)
    except TypeError as exc:
        raise BuildError(f"model {card.name!r}: builder {card.builder!r} rejected its arguments: {exc}") from None
    except ValueError:  # no introspectable signature (a C callable): let the call itself decide
        pass
    model = builder(**kwargs)
    if checkpoint is not None or pretrained:
        from zoo import weights

        weights.load_into(model, card, checkpoint=checkpoint)
    for spec in filter(None, (card.patch, patch)):
        model = apply_patch(model, spec)
    from zoo.datacfg import apply_card_cfg

    return apply_card_cfg(model, card).eval()
