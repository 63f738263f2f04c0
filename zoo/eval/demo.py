"""``zoo demo-data --task T``: a task's generated demo set, through the task's ``demo_data`` reference."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from zoo.errors import PluginError, UnknownTask, UserError


def make_demo_data(task_name: str, directory: str | Path, **options: Any) -> Path:
    """Write task ``task_name``'s demo data under ``directory``; returns where it is.

    :raises UnknownTask: no installed plugin declares the task (close names suggested).
    :raises UserError: the task has no demo data, or its generator takes no such option.
    """
    from zoo.registry import lookup, plugins

    tasks = lookup.tasks()
    if task_name not in tasks:
        raise UnknownTask(task_name, tasks)
    plugin, task = tasks[task_name]
    if not task.demo_data:
        raise UserError(f"task {task_name!r} has no demo data (its plugin {plugin!r} declares no demo_data)")
    fn = plugins.resolve(task.demo_data, plugin)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    if params and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            flags = {"n_images": "--images", "n_classes": "--classes"}
            raise UserError(f"demo data of task {task_name!r} takes no {flags.get(unknown[0], '--' + unknown[0])} "
                            "option")
    path = fn(directory, **options)
    if not isinstance(path, (str, Path)):
        raise PluginError(plugin, f"demo_data of task {task_name!r} returned {type(path).__name__}, not a path")
    return Path(path)
