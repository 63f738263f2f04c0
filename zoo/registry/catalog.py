"""The catalog: every paper and card, from ``registry.yaml`` and from plugins, with lookups.

Building it reads YAML and imports plugin entry modules (which are light by contract); it never
imports torch. A bad card or a broken plugin becomes an entry in :attr:`Catalog.errors`, is
recorded against the plugin it belongs to (``zoo plugins`` shows it) and is warned once
(:class:`~zoo.errors.ZooWarning`); every valid card is still listed. An invalid card keeps its
name: asking for it by name says the card is invalid and why, not that the model is unknown.

Hook results other than cards (builders, datasets, tasks, patches) are collected lazily, once
per catalog, with the same isolation: :meth:`Catalog.hook_table`.
"""

from __future__ import annotations

import fnmatch
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pluggy

from zoo.errors import CardError, InvalidCard, NotInstalled, PluginError, UnknownModel, ZooError, ZooWarning
from zoo.registry import plugins
from zoo.registry.cards import Card, Paper, parse_document, read_yaml
from zoo.registry.tasks import Task


def core_registry_path() -> Path:
    """``registry.yaml``: packaged inside ``zoo`` in a wheel, beside it in a source checkout."""
    override = os.environ.get("ZOO_REGISTRY")
    if override:
        return Path(override)
    packaged = resources.files("zoo") / "registry.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "registry.yaml"


def canonical_name(name: str) -> str:
    """The form card names are registered in: model names are lower case (``EfficientMod-XXS`` works)."""
    return name.strip().lower()


@dataclass
class Catalog:
    papers: dict[str, Paper] = field(default_factory=dict)
    cards: dict[str, Card] = field(default_factory=dict)
    plugins: list[plugins.PluginStatus] = field(default_factory=list)
    errors: list[ZooError] = field(default_factory=list)
    pm: pluggy.PluginManager | None = None
    #: the core's own row in `zoo plugins`: the core registry file and the core's hooks
    core: plugins.PluginStatus = field(default_factory=lambda: plugins.PluginStatus(plugins.CORE, plugins.CORE_MODULE))
    core_source: str = ""  #: path of the core registry
    #: canonical name of a card that did not validate -> (its error, the plugin it names or its owner)
    invalid: dict[str, tuple[CardError, str]] = field(default_factory=dict)
    _tables: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict, repr=False)
    _entries: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict, repr=False)
    _card_tasks: dict[str, Task] | None = field(default=None, repr=False)

    # -- building --------------------------------------------------------------------------------

    def add_document(self, path: str, data: Any, owner: str) -> None:
        """Merge one card document; a name already taken is an error naming both sources.

        Each card is validated by its task when an installed plugin declares that task
        (:meth:`card_tasks`); a card of a task nobody declares keeps its task fields unvalidated.
        """
        doc = parse_document(path, data, self.papers, self.card_tasks())
        models = data.get("models") if isinstance(data, Mapping) else None
        entries = models if isinstance(models, Mapping) else {}
        invalid_entries: dict[str, str] = {}  # name -> plugin the entry says it belongs to (else owner)
        for name, entry in entries.items():
            if str(name) not in doc.cards:
                named = entry.get("plugin") if isinstance(entry, Mapping) else None
                invalid_entries[str(name)] = named if isinstance(named, str) and named else owner
        for error in doc.errors:
            blamed = owner
            if isinstance(error, CardError) and error.entry in invalid_entries:
                blamed = invalid_entries[error.entry]
                self.invalid.setdefault(canonical_name(error.entry), (error, blamed))
            self.record_problem(blamed, error)
        for key, paper in doc.papers.items():
            if key in self.papers and self.papers[key] != paper:
                self.record_problem(owner, CardError(path, key, "", f"paper {key!r} is already defined differently by {owner!r}'s sources"))
                continue
            self.papers[key] = paper
        for name, card in doc.cards.items():
            if name in self.cards:
                first = self.cards[name]
                self.record_problem(owner, CardError(
                    path, name, "", f"duplicate model name: already defined in {first.source} (plugin {first.plugin!r})"
                ))
                continue
            self.cards[name] = card

    def record_problem(self, plugin: str, error: ZooError) -> None:
        """Keep ``error``, charge it to ``plugin`` (shown by `zoo plugins`) and warn once."""
        self.errors.append(error)
        status = self.plugin_status(plugin)
        if status is not None:
            status.problems.append(str(error))
        warnings.warn(str(error), ZooWarning, stacklevel=2)

    def invalid_count(self, plugin: str | None = None, source: str | None = None) -> int:
        """Invalid cards charged to ``plugin``, or found in the card file ``source``."""
        return sum(1 for error, blamed in self.invalid.values()
                   if (plugin is None or blamed == plugin) and (source is None or error.path == source))

    def card_tasks(self) -> dict[str, Task]:
        """``{task name: Task}`` of the installed tasks, for validating cards (collected once, isolated like
        every hook table); a zoo 0.1 bare ``"module:callable"`` is a Task that declares nothing."""
        if self._card_tasks is None:
            tasks: dict[str, Task] = {}
            for name, (_plugin, value) in self.hook_entries("zoo_tasks").items():
                if isinstance(value, Task):
                    tasks[name] = value
                elif isinstance(value, str):
                    try:
                        tasks[name] = Task(name=name, evaluate=value)
                    except ValueError:  # a malformed reference: the task is unusable, its cards unvalidated
                        continue
            self._card_tasks = tasks
        return self._card_tasks

    # -- hook tables -----------------------------------------------------------------------------

    def hook_table(self, hook: str) -> dict[str, dict[str, str]]:
        """``{plugin: {name: "module:callable"}}`` of a name-table hook, collected once.

        A plugin whose hook raises or returns the wrong shape is left out and charged with the
        problem; every other plugin's entries are kept.
        """
        if hook not in self._tables:
            errors: list[PluginError] = []
            self._tables[hook] = plugins.collect(self.pm, hook, errors) if self.pm is not None else {}
            for error in errors:
                self.record_problem(error.plugin, error)
        return self._tables[hook]

    def hook_entries(self, hook: str) -> dict[str, tuple[str, str]]:
        """``{name: (plugin, "module:callable")}`` across plugins.

        A name offered twice keeps its first provider (the core first, then plugins in load order);
        the later offer is dropped and charged to the plugin that made it.
        """
        if hook in self._entries:  # merged once, so a clash is charged and warned once
            return self._entries[hook]
        merged: dict[str, tuple[str, str]] = {}
        for plugin_name, entries in self.hook_table(hook).items():
            for name, ref in entries.items():
                if name in merged:
                    if merged[name][0] != plugin_name:
                        self.record_problem(plugin_name, PluginError(
                            plugin_name, f"{hook}: {name!r} is already provided by plugin {merged[name][0]!r}; ignored"
                        ))
                    continue
                merged[name] = (plugin_name, ref)
        self._entries[hook] = merged
        return merged

    def check_hooks(self) -> None:
        """Collect every name-table hook now, so `zoo plugins` can show their problems."""
        for hook in plugins.HOOK_SHAPES:
            if hook != "zoo_cards":
                self.hook_entries(hook)

    @property
    def loaded_plugins(self) -> set[str]:
        return {status.name for status in self.plugins if status.ok}

    def installed(self, card: Card) -> bool:
        return card.plugin in self.loaded_plugins

    def plugin_status(self, name: str) -> plugins.PluginStatus | None:
        """The status of plugin ``name`` (``zoo-core``: the core's own), or None."""
        if name == self.core.name:
            return self.core
        return next((status for status in self.plugins if status.name == name), None)

    # -- lookups ---------------------------------------------------------------------------------

    def get(self, name: str) -> Card:
        """The card registered as ``name`` in any case (its ``.name`` is the canonical one).

        :raises InvalidCard: the card exists but does not validate (with file, entry and field).
        :raises UnknownModel: no card has that name (with suggestions).
        """
        card = self.cards.get(name) or self.cards.get(canonical_name(name))
        if card is not None:
            return card
        if canonical_name(name) in self.invalid:
            raise InvalidCard(canonical_name(name), self.invalid[canonical_name(name)][0])
        raise UnknownModel(name, [*self.cards, *self.invalid])

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
    from zoo._version import __version__

    catalog = Catalog()
    catalog.core.dist, catalog.core.version = "zoo-core", __version__
    catalog.pm = pm if pm is not None else plugins.new_plugin_manager()
    catalog.plugins = plugins.load_plugins(catalog.pm, eps=eps)  # first, so card problems can be charged
    catalog.core.hooks = sorted(c.name for c in catalog.pm.get_hookcallers(catalog.pm.get_plugin(plugins.CORE)) or [])
    for status in catalog.plugins:
        if not status.ok:
            warnings.warn(f"plugin {status.name!r} failed to load: {status.error}; see `zoo plugins`", ZooWarning,
                          stacklevel=2)
    path = Path(registry) if registry is not None else core_registry_path()
    catalog.core_source = str(path)
    try:
        catalog.add_document(str(path), read_yaml(path), owner=plugins.CORE)
    except CardError as exc:
        catalog.record_problem(plugins.CORE, exc)
    plugin_errors: list[PluginError] = []
    for plugin_name, items in plugins.collect(catalog.pm, "zoo_cards", plugin_errors).items():
        for item in items:
            source = f"<{plugin_name} cards>" if isinstance(item, Mapping) else str(item)  # str: also a Traversable
            try:
                catalog.add_document(source, item if isinstance(item, Mapping) else read_yaml(source), owner=plugin_name)
            except CardError as exc:
                catalog.record_problem(plugin_name, exc)
            except Exception as exc:  # a hostile document (a mapping that raises) stays this plugin's problem
                catalog.record_problem(plugin_name, PluginError(
                    plugin_name, f"card document {source} could not be read: {plugins.describe_error(exc)}"))
    for error in plugin_errors:
        catalog.record_problem(error.plugin, error)
    return catalog
