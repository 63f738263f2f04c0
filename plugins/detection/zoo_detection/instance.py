"""The instance-segmentation Task (torch-free: ``zoo list`` may import it).

It shares the detection plugin's datasets (``coco``, ``coco-json``: segmentations as polygons or
RLE), category mapping and COCO evaluator (pycocotools ``COCOeval``, ``iouType="segm"``). The
protocol is card data, parsed by :func:`zoo_detection.task.parse_instance_fields`:

- ``head: query-masks`` (Mask2Former and other query-based segmenters): the model returns
  ``(class_logits, mask_logits)`` or ``{"class_logits": ..., "mask_logits": ...}``: class_logits
  ``(B, Q, C + 1)`` whose last class is "no object", mask_logits ``(B, Q, h, w)`` at any resolution;
- ``resize`` (default Detectron2's test ``ResizeShortestEdge(800, 1333)``, PIL bilinear on uint8,
  then padding bottom/right to a multiple of ``size_divisibility`` 32 with ``pad_value`` 0 on the
  normalized tensor) or ``letterbox`` (YOLO), not both;
- ``normalize``: ``{mean, std}`` in 0-255 units, RGB (default: /255);
- ``postprocess``: ``{topk, mask_threshold}`` as Mask2Former's ``instance_inference``.
"""

from __future__ import annotations

from zoo.registry.tasks import Metric, Task
from zoo_detection.task import INSTANCE, parse_instance_fields

MASK_STATS = ("mask_map", "mask_map50", "mask_map75", "mask_map_small", "mask_map_medium", "mask_map_large")
BOX_STATS = ("map", "map50", "map75", "map_small", "map_medium", "map_large")

TASK = Task(
    name=INSTANCE,
    summary="COCO mask AP (pycocotools, segm) of an instance segmenter on COCO val2017 or any COCO-format set",
    metrics=(
        Metric(name="mask_map", label="mask AP", unit="%", tolerance=0.1, primary=True),
        Metric(name="mask_map50", label="mask AP50", unit="%", tolerance=0.1),
        Metric(name="mask_map75", label="mask AP75", unit="%", tolerance=0.1),
        Metric(name="mask_map_small", label="mask APs", unit="%", tolerance=0.1),
        Metric(name="mask_map_medium", label="mask APm", unit="%", tolerance=0.1),
        Metric(name="mask_map_large", label="mask APl", unit="%", tolerance=0.1),
        # box AP: only when the model gives boxes (a query-masks head does not: Mask2Former writes none)
        Metric(name="map", label="box AP", unit="%", tolerance=0.1),
        Metric(name="map50", label="box AP50", unit="%", tolerance=0.1),
        Metric(name="map75", label="box AP75", unit="%", tolerance=0.1),
        Metric(name="map_small", label="box APs", unit="%", tolerance=0.1),
        Metric(name="map_medium", label="box APm", unit="%", tolerance=0.1),
        Metric(name="map_large", label="box APl", unit="%", tolerance=0.1),
    ),
    datasets=("coco", "coco-json"),
    options=None,
    card_fields={
        "head": "the model's output: query-masks = (class_logits (B, Q, C+1), last class no-object; "
                "mask_logits (B, Q, h, w)) or a dict with those keys",
        "resize": "Detectron2 test resize: {shortest_edge, max_size, size_divisibility, pad_value} "
                  "(default 800, 1333, 32, 0); not with letterbox",
        "letterbox": "YOLO letterbox instead of resize: {size, stride, pad_value, auto, scaleup, shrink}",
        "normalize": "{mean: [r, g, b], std: [r, g, b]} in 0-255 units (default: x / 255)",
        "postprocess": "query-masks: {topk, mask_threshold} (default 100, 0.0: Mask2Former instance_inference)",
    },
    # input_size: what the default resize makes of COCO's usual 640x480 image (800x1067, padded to 32)
    defaults={"input_size": (3, 800, 1088), "num_classes": 80},
    evaluate="zoo_detection.evaluate:evaluate",
    example_inputs="zoo_detection.evaluate:example_inputs",
    check_output="zoo_detection.evaluate:check_output",
    protocol="zoo_detection.task:protocol",
    postprocess="zoo_detection.evaluate:postprocess",
    write_predictions="zoo_detection.evaluate:write_predictions",
    demo_data="zoo_detection.demo:make_instance_demo",
    parse_fields=parse_instance_fields,
)
