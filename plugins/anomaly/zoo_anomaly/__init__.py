"""zoo plugin ``anomaly``: the ``anomaly-detection`` task, the ``mvtec-ad``/``visa``/``anomaly-folder``
datasets and the ``zoo anomaly`` command.

Imported by ``zoo list``: nothing heavy here (no torch, no scikit-learn, no scipy). Code is named by
"module:callable" strings and imported when it runs.
"""

from zoo import hookimpl


@hookimpl
def zoo_tasks():
    from zoo_anomaly.task import TASK  # torch-free: the Task spec only

    return {TASK.name: TASK}


@hookimpl
def zoo_datasets():
    return {"mvtec-ad": "zoo_anomaly.data:mvtec_ad", "visa": "zoo_anomaly.data:visa",
            "anomaly-folder": "zoo_anomaly.data:anomaly_folder"}


@hookimpl
def zoo_commands():
    return {"anomaly": "zoo_anomaly.cli:anomaly_command"}
