"""Image classification as a :class:`~zoo.registry.tasks.Task`: the spec the core reads (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.registry.tasks import Metric, Task


@dataclass
class ClassificationOptions:
    """Options of `zoo eval` for image classification (one CLI option each)."""

    corruption: str | None = None  #: ImageNet-C only: a corruption name, comma list or ``all``
    severity: str | None = None  #: ImageNet-C only: 1-5, comma list or ``all``


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
    protocol="zoo.tasks.classification.protocol:protocol",
    demo_data="zoo.tasks.classification.data.demo:make_demo_folder",
)
