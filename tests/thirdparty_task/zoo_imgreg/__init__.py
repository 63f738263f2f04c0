"""zoo plugin ``imgreg``: the image-regression task, its dataset layout, and two toy models.

Imported by ``zoo list``: nothing heavy here (no torch, no PIL). Code is named by "module:callable"
strings and imported when it runs.
"""

from importlib import resources

from zoo import hookimpl


@hookimpl
def zoo_cards():
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders():
    return {"brightness_net": "zoo_imgreg.model:brightness_net"}


@hookimpl
def zoo_tasks():
    from zoo_imgreg.task import TASK  # torch-free: the Task spec only

    return {TASK.name: TASK}


@hookimpl
def zoo_datasets():
    return {"imgreg": "zoo_imgreg.data:imgreg"}
