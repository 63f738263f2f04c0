"""Image classification as a :class:`~zoo.registry.tasks.Task`: the spec the core reads (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.registry.tasks import Metric, Task


@dataclass
class ClassificationOptions:
    """Options of `zoo eval` for image classification (one CLI option each).

    ``metadata["dataset"]``: the option is handed to the dataset adapter (it chooses what is scanned).
    """

    corruption: str | None = field(default=None, metadata={
        "help": "imagenet-c: a corruption name, comma list, or all (default).", "dataset": True})
    severity: str | None = field(default=None, metadata={
        "help": "imagenet-c: 1-5, comma list, or all (default).", "dataset": True})


TASK = Task(
    name="image-classification",
    summary="top-1/top-5 accuracy on ImageNet and its variants, or on a folder of class folders",
    metrics=(
        Metric(name="top1", label="top-1", unit="%", tolerance=0.1, primary=True),
        Metric(name="top5", label="top-5", unit="%", tolerance=0.1),
    ),
    datasets=("imagenet", "imagenet-v2", "imagenet-real", "imagenet-sketch", "imagenet-a", "imagenet-r",
              "imagenet-c", "folder"),
    options=ClassificationOptions,
    defaults={"input_size": (3, 224, 224), "num_classes": 1000},
    evaluate="zoo.tasks.classification.evaluate:evaluate",
    example_inputs="zoo.tasks.classification.checks:example_inputs",
    check_output="zoo.tasks.classification.checks:check_output",
    protocol="zoo.tasks.classification.protocol:protocol",
    write_predictions="zoo.tasks.classification.checks:write_predictions",
    demo_data="zoo.tasks.classification.data.demo:make_demo_folder",
)
