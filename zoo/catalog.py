"""The catalog: every paper and card, from ``registry.yaml`` and from plugins, with lookups.

Building it reads YAML and imports plugin entry modules (which are light by contract); it never
imports torch. A bad card or a broken plugin becomes an entry in :attr:`Catalog.errors`;
every valid card is still listed.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pluggy

from zoo import plugins
from zoo.cards import Card, Paper, parse_document, read_yaml
from zoo.errors import CardError, NotInstalled, PluginError, UnknownModel, ZooError


def core_registry_path() -> Path:
    """``registry.yaml``: packaged inside ``zoo`` in a wheel, beside it in a source checkout."""
    override = os.environ.get("ZOO_REGISTRY")
    if override:
        return Path(override)
    packaged = resources.files("zoo") / "registry.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "registry.yaml"


@dataclass
class Catalog:
    papers: dict[str, Paper] = field(default_factory=dict)
    cards: dict[str, Card] = field(default_factory=dict)
    plugins: list[plugins.PluginStatus] = field(default_factory=list)
    errors: list[ZooError] = field(default_factory=list)
    pm: pluggy.PluginManager | None = None

    # -- building --------------------------------------------------------------------------------

    def add_document(self, path: str, data: Any, owner: str) -> None:
        """Merge one card document; a name already taken is an error naming both sources."""
        doc = parse_document(path, data, self.papers)
        self.errors.extend(doc.errors)
        for key, paper in doc.papers.items():
            if key in self.papers and self.papers[key] != paper:
                self.errors.append(CardError(path, key, "", f"paper {key!r} is already defined differently by {owner!r}'s sources"))
                continue
            self.papers[key] = paper
        for name, card in doc.cards.items():
            if name in self.cards:
                first = self.cards[name]
                self.errors.append(
                    CardError(path, name, "", f"duplicate model name: already defined in {first.source} (plugin {first.plugin!r})")
                )
                continue
            self.cards[name] = card

    @property
    def loaded_plugins(self) -> set[str]:
        return {status.name for status in self.plugins if status.ok}

    def installed(self, card: Card) -> bool:
        return card.plugin in self.loaded_plugins

    def plugin_status(self, name: str) -> plugins.PluginStatus | None:
        return next((status for status in self.plugins if status.name == name), None)

    # -- lookups ---------------------------------------------------------------------------------

    def get(self, name: str) -> Card:
        try:
            return self.cards[name]
        except KeyError:
            lowered = name.lower()
            if lowered in self.cards:
                return self.cards[lowered]
            raise UnknownModel(name, self.cards) from None

    def paper_of(self, card: Card) -> Paper:
        return self.papers[card.paper]

    def license_of(self, card: Card) -> str | None:
        return card.license or self.papers[card.paper].license

    def require_installed(self, card: Card) -> None:
        """Raise NotInstalled saying which plugin to install (or why it failed to load)."""
        if self.installed(card):
            return
        status = self.plugin_status(card.plugin)
        if status is not None:
            raise NotInstalled(f"model {card.name!r}: plugin {card.plugin!r} failed to load: {status.error}")
        raise NotInstalled(
            f"model {card.name!r} needs the plugin {card.plugin!r}, which is not installed "
            f"(first-party: pip install ./plugins/{card.plugin})"
        )

    def select(
        self,
        pattern: str | None = None,
        *,
        task: str | None = None,
        paper: str | None = None,
        venue: str | None = None,
        license: str | None = None,
        plugin: str | None = None,
        installed: bool | None = None,
    ) -> list[Card]:
        """Cards matching every given filter, in name order.

        ``pattern`` is a glob (``fastervit-*``) or a substring; text filters are case-insensitive
        substrings (``license``: at the start of a word, so 'NC' does not match 'License'), except
        ``task`` and ``plugin`` which must match exactly.
        """
        out = []
        for card in self.cards.values():
            paper_entry = self.papers[card.paper]
            if pattern and not _matches(card.name, pattern):
                continue
            if task and card.task != task:
                continue
            if plugin and card.plugin != plugin:
                continue
            if paper and not (_contains(card.paper, paper) or _contains(paper_entry.title, paper)):
                continue
            if venue and not _contains(paper_entry.venue, venue):
                continue
            if license and not _word_match(self.license_of(card) or "", license):
                continue
            if installed is not None and self.installed(card) != installed:
                continue
            out.append(card)
        return sorted(out, key=lambda c: _natural_key(c.name))


def _contains(text: str, needle: str) -> bool:
    return needle.lower() in text.lower()


def _word_match(text: str, needle: str) -> bool:
    """``needle`` at the start of a word of ``text``: 'NC' finds 'License-NC' but not 'License'."""
    import re

    text = re.sub(r"non-?commercial", r"\g<0> nc", text.lower())  # 'NC' also finds "non-commercial"
    return re.search(rf"(?<![a-z0-9]){re.escape(needle.lower())}", text) is not None


def _matches(name: str, pattern: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern.lower())
    return pattern.lower() in name


def _natural_key(text: str) -> list[Any]:
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def build_catalog(
    registry: str | Path | None = None,
    pm: pluggy.PluginManager | None = None,
    eps: Iterable[Any] | None = None,
) -> Catalog:
    """Read the core registry and every plugin's cards. Never raises for bad cards or plugins."""
    catalog = Catalog()
    path = Path(registry) if registry is not None else core_registry_path()
    try:
        catalog.add_document(str(path), read_yaml(path), owner="zoo-core")
    except CardError as exc:
        catalog.errors.append(exc)
    catalog.pm = pm if pm is not None else plugins.new_plugin_manager()
    catalog.plugins = plugins.load_plugins(catalog.pm, eps=eps)
    plugin_errors: list[PluginError] = []
    for plugin_name, items in plugins.collect(catalog.pm, "zoo_cards", plugin_errors).items():
        for item in items:
            if isinstance(item, Mapping):
                catalog.add_document(f"<{plugin_name} cards>", item, owner=plugin_name)
                continue
            try:
                catalog.add_document(str(item), read_yaml(item), owner=plugin_name)
            except CardError as exc:
                catalog.errors.append(exc)
    catalog.errors.extend(plugin_errors)
    return catalog
