"""zoo plugin ``segmentation``: the ``semantic-segmentation`` task, the ``ade20k``/``seg-folder``
datasets and the ``zoo segment`` command.

Imported by ``zoo list``: nothing heavy here (no torch, no OpenCV). Code is named by
"module:callable" strings and imported when it runs.
"""

from zoo import hookimpl


@hookimpl
def zoo_tasks():
    from zoo_segmentation.task import TASK  # torch-free: the Task spec only

    return {TASK.name: TASK}


@hookimpl
def zoo_datasets():
    return {"ade20k": "zoo_segmentation.datasets:ade20k", "seg-folder": "zoo_segmentation.datasets:seg_folder"}


@hookimpl
def zoo_commands():
    return {"segment": "zoo_segmentation.cli:segment_command"}
