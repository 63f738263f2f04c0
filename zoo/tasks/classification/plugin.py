"""The core's own plugin: image classification, registered through the same hooks plugins use.

Registered first by :func:`zoo.registry.plugins.load_plugins` under the name ``zoo-core``, by
module name, so that the registry never imports a task.
"""

from __future__ import annotations

from zoo.registry.hookspecs import hookimpl
from zoo.registry.tasks import Task


@hookimpl
def zoo_tasks() -> dict[str, Task]:
    from zoo.tasks.classification.task import TASK

    return {TASK.name: TASK}


@hookimpl
def zoo_datasets() -> dict[str, str]:
    from zoo.tasks.classification.data.datasets import ADAPTERS  # light: lists names, imports no torch

    return dict(ADAPTERS)
