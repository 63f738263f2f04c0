"""zoo plugin ``detection``: the ``object-detection`` and ``instance-segmentation`` tasks and the
``coco``/``coco-json`` datasets they share.

Imported by ``zoo list``: nothing heavy here (no torch, no pycocotools). Code is named by
"module:callable" strings and imported when it runs.
"""

from zoo import hookimpl


@hookimpl
def zoo_tasks():
    from zoo_detection.instance import TASK as INSTANCE  # torch-free: the Task specs only
    from zoo_detection.task import TASK

    return {TASK.name: TASK, INSTANCE.name: INSTANCE}


@hookimpl
def zoo_datasets():
    return {"coco": "zoo_detection.coco:coco", "coco-json": "zoo_detection.coco:coco_json"}
