"""The core's own plugin: what zoo itself contributes through the same hooks plugins use.

Registered first by :func:`zoo.plugins.load_plugins` under the name ``zoo-core``.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def zoo_tasks() -> dict[str, str]:
    return {"image-classification": "zoo.tasks.classification:evaluate"}


@hookimpl
def zoo_datasets() -> dict[str, str]:
    from zoo.data.datasets import ADAPTERS  # light: lists names, imports no torch

    return dict(ADAPTERS)
