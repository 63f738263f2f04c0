"""Plugin discovery through the entry-point group ``zoo``, with one broken plugin isolated.

Nothing happens at import: :func:`load_plugins` builds a plugin manager when asked. Each entry
point is loaded in its own ``try``; a plugin that fails to import or to register is recorded
with its error and skipped, and the rest keeps working.

Environment switches (read when plugins are loaded, not at import):

- ``ZOO_PLUGINS=a,b``: load only these plugins (empty: none); the core's own hooks always load.
- ``ZOO_DISABLE_PLUGINS=a,b``: never load these.
- ``ZOO_TRACE_PLUGINS=1``: print each plugin's import time and every hook call to stderr.
- ``ZOO_PLUGIN_SLOW_S=1.0``: a plugin whose import takes longer is flagged as slow by `zoo plugins`.

A plugin is isolated at every step (issue #10, item 8): importing it (``Exception`` and
``SystemExit``; Ctrl-C still stops zoo), registering it, and calling each of its hooks, whose
return value is checked against :data:`HOOK_SHAPES`. A failure drops that plugin's contribution
only and is recorded against the plugin by name.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from zoo.errors import PluginError, UserError, first_line
from zoo.registry import hookspecs
from zoo.registry.entrypoints import entry_points

if TYPE_CHECKING:
    from zoo.registry.entrypoints import EntryPoint  # importlib.metadata's EntryPoint works the same

GROUP = "zoo"
CORE = "zoo-core"  # plugin name of the core's own hooks (the classification task and its datasets)
CORE_MODULE = "zoo.tasks.classification.plugin"
SLOW_IMPORT_S = 1.0  # default of ZOO_PLUGIN_SLOW_S


@dataclass
class PluginStatus:
    """What `zoo plugins` reports for one plugin."""

    name: str  #: entry-point name; cards refer to it in ``plugin:``
    module: str  #: the entry point's value
    dist: str | None = None  #: distribution that ships it
    version: str | None = None
    error: str | None = None  #: first line of the error that broke it, or None when ok
    hooks: list[str] = field(default_factory=list)
    import_s: float | None = None  #: seconds its entry point took to import
    slow: bool = False  #: import_s over the ZOO_PLUGIN_SLOW_S threshold
    #: hooks whose result was dropped ("zoo_builders() raised ..."); the plugin's other hooks still count
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Loaded; its hooks may still have :attr:`problems`."""
        return self.error is None

    @property
    def state(self) -> str:
        """``ok``, ``error`` (did not load) or ``degraded`` (loaded, some hook results dropped)."""
        return "error" if self.error is not None else "degraded" if self.problems else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "dist": self.dist,
            "version": self.version,
            "status": self.state,
            "error": self.error,
            "problems": self.problems,
            "hooks": self.hooks,
            "import_s": None if self.import_s is None else round(self.import_s, 3),
            "slow": self.slow,
        }


def describe_error(exc: BaseException) -> str:
    """``Type: first line of message``: what `zoo plugins` shows for a broken plugin."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: called sys.exit({'' if exc.code is None else repr(exc.code)})"
    message = first_line(exc)
    return type(exc).__name__ if message == type(exc).__name__ else f"{type(exc).__name__}: {message}"


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def slow_import_threshold() -> float:
    """Seconds over which a plugin's import is reported as slow (``ZOO_PLUGIN_SLOW_S``, default 1)."""
    value = os.environ.get("ZOO_PLUGIN_SLOW_S", "").strip()
    if not value:
        return SLOW_IMPORT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise UserError(f"ZOO_PLUGIN_SLOW_S: expected a number of seconds >= 0, got {value!r}")
    return seconds


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
    if pm.get_plugin(CORE) is None:  # the core's own hooks (the classification task), imported by name:
        pm.register(importlib.import_module(CORE_MODULE), name=CORE)  # the registry never imports a task
    only = _env_list("ZOO_PLUGINS") if only is None else only
    blocked = (_env_list("ZOO_DISABLE_PLUGINS") or set()) if blocked is None else blocked
    threshold = slow_import_threshold()
    trace = bool(os.environ.get("ZOO_TRACE_PLUGINS"))
    statuses = []
    for ep in zoo_entry_points() if eps is None else eps:
        if ep.name in blocked or (only is not None and ep.name not in only) or ep.name == CORE:
            continue
        status = PluginStatus(name=ep.name, module=ep.value)
        if getattr(ep, "dist", None) is not None:
            status.dist, status.version = ep.dist.name, ep.dist.version
        plugin = None
        started = time.perf_counter()
        try:
            try:
                plugin = ep.load()
            finally:  # a failed import is timed too: a plugin can be slow and then fail
                status.import_s = time.perf_counter() - started
            pm.register(plugin, name=ep.name)  # PluginValidationError on a bad signature
        except (Exception, SystemExit) as exc:  # one broken plugin must not stop zoo; Ctrl-C still does
            if plugin is not None and pm.get_plugin(ep.name) is plugin:
                pm.unregister(plugin)  # roll back a half-done registration
            status.error = describe_error(exc)
        else:
            status.hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        status.slow = status.import_s > threshold
        if trace:
            flag = f" (slow: over {threshold:g} s, see ZOO_PLUGIN_SLOW_S)" if status.slow else ""
            sys.stderr.write(f"zoo: plugin {ep.name!r} ({ep.value}) imported in {status.import_s:.3f} s{flag}\n")
        statuses.append(status)
    if trace:
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return statuses


def _table_item(key: Any, value: Any) -> bool:
    module, sep, attr = value.partition(":") if isinstance(value, str) else ("", "", "")
    return isinstance(key, str) and bool(key.strip()) and bool(sep and module.strip() and attr.strip())


def _card_item(_index: Any, item: Any) -> bool:
    from importlib.resources.abc import Traversable

    if isinstance(item, str):
        return bool(item.strip())
    return isinstance(item, (os.PathLike, Mapping, Traversable))


_TABLE = "a dict of name -> 'module:callable'"
_TASKS = "a dict of name -> zoo.registry.tasks.Task (or a bare 'module:callable' evaluate hook, zoo 0.1)"


def _task_item(key: Any, value: Any) -> bool:
    from zoo.registry.tasks import Metric, Task

    if isinstance(value, Task):  # its own __post_init__ checked names and refs; the containers are checked here
        return (isinstance(key, str) and key == value.name
                and isinstance(value.metrics, tuple | list) and all(isinstance(m, Metric) for m in value.metrics)
                and isinstance(value.datasets, tuple | list) and all(isinstance(d, str) and d for d in value.datasets)
                and isinstance(value.card_fields, Mapping) and isinstance(value.defaults, Mapping)
                and (value.parse_fields is None or callable(value.parse_fields)))
    return _table_item(key, value)

#: What each 1:N hook must return: (description, accepted container types, check of one item).
#: The one place where hook results are validated; a result that fails is dropped for that plugin only.
HOOK_SHAPES: dict[str, tuple[str, tuple[type, ...], Callable[[Any, Any], bool]]] = {
    "zoo_cards": ("a list of card file paths or parsed card documents (mappings)", (list, tuple), _card_item),
    "zoo_builders": (_TABLE, (Mapping,), _table_item),
    "zoo_patches": (_TABLE, (Mapping,), _table_item),
    "zoo_tasks": (_TASKS, (Mapping,), _task_item),
    "zoo_datasets": (_TABLE, (Mapping,), _table_item),
    "zoo_commands": (_TABLE, (Mapping,), _table_item),
}


def _describe_value(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def check_result(hook: str, value: Any) -> str | None:
    """Why ``value`` is not a valid result of ``hook`` (one line naming the bad item), or None."""
    expected, kinds, item_ok = HOOK_SHAPES[hook]
    if not isinstance(value, kinds):
        return f"{hook}() returned {_describe_value(value)}; expected {expected}"
    is_table = isinstance(value, Mapping)
    for key, item in value.items() if is_table else enumerate(value):
        if not item_ok(key, item):
            where = f"entry {key!r}" if is_table else f"item {key}"
            return f"{hook}() returned an invalid {where}: {_describe_value(item)}; expected {expected}"
    return None


def collect(
    pm: pluggy.PluginManager, hook: str, errors: list[PluginError] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Call a 1:N hook one implementation at a time: ``{plugin_name: result}``.

    A plugin whose implementation raises (or exits), or returns something :data:`HOOK_SHAPES`
    does not allow, is left out, and its error is appended to ``errors`` (so the right plugin is
    blamed, and the others still answer).
    """
    results: dict[str, Any] = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        problem = None
        try:
            value = impl.function(*[kwargs[arg] for arg in impl.argnames])
        except (Exception, SystemExit) as exc:  # a plugin's bug must not take the catalog down
            problem = f"{hook}() raised {describe_error(exc)}"
        else:
            if value is None:
                continue
            if hook in HOOK_SHAPES:
                try:
                    problem = check_result(hook, value)
                except Exception as exc:  # a result whose own methods raise (a hostile Mapping)
                    problem = f"{hook}() returned {type(value).__name__} that cannot be read: {describe_error(exc)}"
        if problem is not None:
            if errors is not None:
                errors.append(PluginError(impl.plugin_name, problem))
            continue
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
    except (Exception, SystemExit) as exc:  # its module may fail, or exit, at import
        raise PluginError(plugin, f"cannot import {ref!r}: {describe_error(exc)}") from exc
    if not callable(obj):
        raise PluginError(plugin, f"{ref!r} is not callable")
    return obj
