"""zoo plugin ``detection``: the ``object-detection`` task and the ``coco``/``coco-json`` datasets.

Imported by ``zoo list``: nothing heavy here (no torch, no pycocotools). Code is named by
"module:callable" strings and imported when it runs.
"""

from zoo import hookimpl


@hookimpl
def zoo_tasks():
    from zoo_detection.task import TASK  # torch-free: the Task spec only

    return {TASK.name: TASK}


@hookimpl
def zoo_datasets():
    return {"coco": "zoo_detection.coco:coco", "coco-json": "zoo_detection.coco:coco_json"}
