"""Plugin discovery through the entry-point group ``zoo``, with one broken plugin isolated.

Nothing happens at import: :func:`load_plugins` builds a plugin manager when asked. Each entry
point is loaded in its own ``try``; a plugin that fails to import or to register is recorded
with its error and skipped, and the rest keeps working.

Environment switches (read when plugins are loaded, not at import):

- ``ZOO_PLUGINS=a,b``: load only these plugins (empty: none); the core's own hooks always load.
- ``ZOO_DISABLE_PLUGINS=a,b``: never load these.
- ``ZOO_TRACE_PLUGINS=1``: print every hook call to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import PluginError, first_line

GROUP = "zoo"
CORE = "zoo-core"  # name of the core's own plugin module (tasks, datasets)


@dataclass
class PluginStatus:
    """What `zoo plugins` reports for one plugin."""

    name: str  #: entry-point name; cards refer to it in ``plugin:``
    module: str  #: the entry point's value
    dist: str | None = None  #: distribution that ships it
    version: str | None = None
    error: str | None = None  #: first line of the error that broke it, or None when ok
    hooks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "dist": self.dist,
            "version": self.version,
            "status": "ok" if self.ok else "error",
            "error": self.error,
            "hooks": self.hooks,
        }


def describe_error(exc: BaseException) -> str:
    """``Type: first line of message``: what `zoo plugins` shows for a broken plugin."""
    message = first_line(exc)
    return type(exc).__name__ if message == type(exc).__name__ else f"{type(exc).__name__}: {message}"


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def zoo_entry_points() -> list[EntryPoint]:
    """Entry points of the group, one per name (the first distribution wins, as importlib orders them)."""
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    pm: pluggy.PluginManager,
    eps: Iterable[EntryPoint] | None = None,
    only: set[str] | None = None,
    blocked: set[str] | None = None,
) -> list[PluginStatus]:
    """Register the core and every ``zoo`` entry point; a plugin that fails is reported, not raised."""
    from zoo import builtin  # the core's own hooks: tasks and datasets

    if pm.get_plugin(CORE) is None:
        pm.register(builtin, name=CORE)
    only = _env_list("ZOO_PLUGINS") if only is None else only
    blocked = (_env_list("ZOO_DISABLE_PLUGINS") or set()) if blocked is None else blocked
    statuses = []
    for ep in zoo_entry_points() if eps is None else eps:
        if ep.name in blocked or (only is not None and ep.name not in only) or ep.name == CORE:
            continue
        status = PluginStatus(name=ep.name, module=ep.value)
        if ep.dist is not None:
            status.dist, status.version = ep.dist.name, ep.dist.version
        plugin = None
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)  # PluginValidationError on a bad signature
        except Exception as exc:  # one broken plugin must not stop zoo
            if plugin is not None and pm.get_plugin(ep.name) is plugin:
                pm.unregister(plugin)  # roll back a half-done registration
            status.error = describe_error(exc)
        else:
            status.hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        statuses.append(status)
    if os.environ.get("ZOO_TRACE_PLUGINS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return statuses


def collect(
    pm: pluggy.PluginManager, hook: str, errors: list[PluginError] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Call a 1:N hook one implementation at a time: ``{plugin_name: result}``.

    A plugin whose implementation raises is left out, and its error is appended to ``errors``
    (so the right plugin is blamed, and the others still answer).
    """
    results: dict[str, Any] = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        try:
            value = impl.function(*[kwargs[arg] for arg in impl.argnames])
        except Exception as exc:  # a plugin's bug must not take the catalog down
            if errors is not None:
                errors.append(PluginError(impl.plugin_name, f"{hook}() raised {describe_error(exc)}"))
            continue
        if value is not None:
            results[impl.plugin_name] = value
    return results


def resolve(ref: str, plugin: str) -> Callable[..., Any]:
    """Import ``"module:attribute"`` named by ``plugin``; errors name the plugin and the reference."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise PluginError(plugin, f"expected 'module:callable', got {ref!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise PluginError(plugin, f"cannot import {ref!r}: {describe_error(exc)}") from None
    if not callable(obj):
        raise PluginError(plugin, f"{ref!r} is not callable")
    return obj
