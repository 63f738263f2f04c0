"""The object-detection Task and the card fields both COCO tasks share (torch-free: ``zoo list`` may import it).

The instance-segmentation Task (:mod:`zoo_detection.instance`) parses the same fields with its own
head (``query-masks``); ``resize`` (Detectron2's test input, :mod:`zoo_detection.resize`) and
``normalize`` (``{mean, std}`` in 0-255 units) are open to both tasks, ``resize`` or ``letterbox``.

A detector's protocol is card data (issue #12): how images are letterboxed to the network input,
how raw outputs are turned into detections (NMS thresholds, max detections, class-agnostic or
not) and what the raw output looks like (``head``). The defaults are those of YOLOv6's official
``tools/eval.py`` (release 0.4.0) for its README numbers:

- letterbox (``yolov6/data/data_augment.py:letterbox``, called by the val dataset with
  ``auto=False, scaleup=False`` after ``load_image`` resized the long side to ``img_size``):
  ``size`` 640, ``stride`` 32, ``pad_value`` 114, ``auto`` false, ``scaleup`` false, ``shrink`` 0;
  ``shrink`` is ``--shrink_size``: ``load_image`` resizes the long side to ``size - shrink`` before
  the letterbox pads to ``size``. ``tools/eval.py --reproduce_640_eval`` (how the README's numbers
  were measured) takes it per model from ``configs/experiment/eval_640_repro.py`` (yolov6n 4,
  yolov6s 6, yolov6m 4, yolov6l 4, other names 2) together with ``infer_on_rect`` false;
- post-processing (``yolov6/utils/nms.py:non_max_suppression`` as ``Evaler.predict_model`` calls
  it): ``conf_thres`` 0.03, ``iou_thres`` 0.65, ``max_det`` 300, ``agnostic`` false,
  ``multi_label`` true;
- ``head: yolo``: the model returns ``(B, N, 5 + C)`` (or a list/tuple whose first item is that
  tensor, as YOLOv6's ``Model.forward`` returns ``[x, featmaps]``): ``cx, cy, w, h`` in input
  pixels, an objectness column (YOLOv6's anchor-free head writes ones there) and ``C`` class
  scores in [0, 1] (already sigmoid-activated).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zoo.registry.tasks import Metric, Task

NAME = "object-detection"
INSTANCE = "instance-segmentation"
HEADS = ("yolo",)  #: object-detection heads (the first is the default)
INSTANCE_HEADS = ("query-masks",)  #: instance-segmentation heads

#: YOLOv6 0.4.0 tools/eval.py + yolov6/core/evaler.py (the README protocol)
LETTERBOX_DEFAULTS: dict[str, Any] = {"size": 640, "stride": 32, "pad_value": 114, "auto": False, "scaleup": False,
                                      "shrink": 0}
POSTPROCESS_DEFAULTS: dict[str, Any] = {"conf_thres": 0.03, "iou_thres": 0.65, "max_det": 300, "agnostic": False,
                                        "multi_label": True}
#: Mask2Former (facebookresearch/Mask2Former@9b0651c maskformer_model.py instance_inference):
#: test_topk_per_image = TEST.DETECTIONS_PER_IMAGE (Detectron2 default 100), masks binary at logit > 0
QUERY_POSTPROCESS_DEFAULTS: dict[str, Any] = {"topk": 100, "mask_threshold": 0.0}
#: Detectron2 test-time ResizeShortestEdge(MIN_SIZE_TEST 800, MAX_SIZE_TEST 1333) and ImageList.from_tensors
#: padding (Mask2Former's SIZE_DIVISIBILITY 32, pad value 0 on the normalized tensor)
RESIZE_DEFAULTS: dict[str, Any] = {"shortest_edge": 800, "max_size": 1333, "size_divisibility": 32, "pad_value": 0}


@dataclass
class DetectionOptions:
    """Options of ``zoo eval`` for object detection (one CLI option each).

    Any override changes the protocol: such a run is recorded with it and never judges the
    paper's claim (which was measured with the card's settings).
    """

    conf_thres: float | None = field(default=None, metadata={
        "help": "object-detection: score threshold before NMS (default: the card's postprocess.conf_thres)."})
    iou_thres: float | None = field(default=None, metadata={
        "help": "object-detection: NMS IoU threshold (default: the card's postprocess.iou_thres)."})
    max_det: int | None = field(default=None, metadata={
        "help": "object-detection: detections kept per image (default: the card's postprocess.max_det)."})


def _number(value: Any, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{where}: expected a number in [{low}, {high}], got {value!r}")
    return float(value)


def _int(value: Any, where: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{where}: expected an integer >= {low}, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _block(fields: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    value = fields.get(name)
    if value is None:
        return dict(defaults)
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected a mapping ({', '.join(defaults)}), got {type(value).__name__} {value!r:.60}")
    unknown = sorted(str(k) for k in value if k not in defaults)
    if unknown:
        raise ValueError(f"{name}.{unknown[0]}: unknown field (allowed: {', '.join(defaults)})")
    return {**defaults, **value}


def parse_letterbox(fields: Mapping[str, Any]) -> dict[str, Any]:
    box = _block(fields, "letterbox", LETTERBOX_DEFAULTS)
    size = box["size"]
    if isinstance(size, list | tuple):
        if len(size) != 2:
            raise ValueError(f"letterbox.size: expected one integer or [height, width], got {size!r}")
        size = [_int(s, "letterbox.size", 1) for s in size]
    else:
        size = [_int(size, "letterbox.size", 1)] * 2
    out = {
        "size": size,
        "stride": _int(box["stride"], "letterbox.stride", 1),
        "pad_value": int(_number(box["pad_value"], "letterbox.pad_value", 0, 255)),
        "auto": _flag(box["auto"], "letterbox.auto"),
        "scaleup": _flag(box["scaleup"], "letterbox.scaleup"),
        "shrink": _int(box["shrink"], "letterbox.shrink", 0),
    }
    if out["shrink"] >= max(size):
        raise ValueError(f"letterbox.shrink: {out['shrink']} leaves no image (the long side is resized to "
                         f"max(size) - shrink = {max(size) - out['shrink']} px)")
    if any(s % out["stride"] for s in size):
        raise ValueError(f"letterbox.size: {size} is not a multiple of letterbox.stride {out['stride']}")
    return out


def parse_postprocess(fields: Mapping[str, Any]) -> dict[str, Any]:
    post = _block(fields, "postprocess", POSTPROCESS_DEFAULTS)
    return {
        "conf_thres": _number(post["conf_thres"], "postprocess.conf_thres", 0, 1),
        "iou_thres": _number(post["iou_thres"], "postprocess.iou_thres", 0, 1),
        "max_det": _int(post["max_det"], "postprocess.max_det", 1),
        "agnostic": _flag(post["agnostic"], "postprocess.agnostic"),
        "multi_label": _flag(post["multi_label"], "postprocess.multi_label"),
    }


def parse_query_postprocess(fields: Mapping[str, Any]) -> dict[str, Any]:
    post = _block(fields, "postprocess", QUERY_POSTPROCESS_DEFAULTS)
    return {"topk": _int(post["topk"], "postprocess.topk", 1),
            "mask_threshold": _number(post["mask_threshold"], "postprocess.mask_threshold")}


def parse_resize(fields: Mapping[str, Any]) -> dict[str, Any]:
    box = _block(fields, "resize", RESIZE_DEFAULTS)
    out = {"shortest_edge": _int(box["shortest_edge"], "resize.shortest_edge", 1),
           "max_size": _int(box["max_size"], "resize.max_size", 1),
           "size_divisibility": _int(box["size_divisibility"], "resize.size_divisibility", 0),
           "pad_value": _number(box["pad_value"], "resize.pad_value")}
    if out["shortest_edge"] > 100_000 or out["max_size"] > 100_000:
        raise ValueError("resize: shortest_edge and max_size must be at most 100000 px")
    if out["size_divisibility"] > 4096:
        raise ValueError(f"resize.size_divisibility: expected at most 4096, got {out['size_divisibility']}")
    return out


def parse_normalize(fields: Mapping[str, Any]) -> dict[str, list[float]] | None:
    value = fields.get("normalize")
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"mean", "std"}:
        raise ValueError(f"normalize: expected {{mean: [r, g, b], std: [r, g, b]}} in 0-255 units, got {value!r:.80}")
    out = {}
    for key in ("mean", "std"):
        seq = value[key]
        if not isinstance(seq, list | tuple) or len(seq) != 3:
            raise ValueError(f"normalize.{key}: expected three numbers (R, G, B, 0-255 units), got {seq!r:.60}")
        out[key] = [_number(v, f"normalize.{key}", 0 if key == "mean" else None, 255) for v in seq]
    if any(v <= 0 for v in out["std"]):
        raise ValueError(f"normalize.std: expected numbers > 0, got {out['std']}")
    return out


def _parse(fields: Mapping[str, Any], heads: tuple[str, ...]) -> dict[str, Any]:
    head = fields.get("head", heads[0])
    if head not in heads:
        raise ValueError(f"head: expected one of {', '.join(heads)}, got {head!r}")
    if fields.get("letterbox") is not None and fields.get("resize") is not None:
        raise ValueError("resize: give letterbox (YOLO) or resize (Detectron2), not both")
    out: dict[str, Any] = {}
    if fields.get("resize") is not None or (head == "query-masks" and fields.get("letterbox") is None):
        out["resize"] = parse_resize(fields)
    else:
        out["letterbox"] = parse_letterbox(fields)
    out["normalize"] = parse_normalize(fields)
    out["postprocess"] = parse_query_postprocess(fields) if head == "query-masks" else parse_postprocess(fields)
    out["head"] = head
    return out


def parse_fields(fields: Mapping[str, Any], card: Any = None) -> dict[str, Any]:
    """object-detection: validate ``letterbox``/``resize``, ``normalize``, ``postprocess`` and ``head``;
    missing ones take YOLOv6's eval defaults."""
    return _parse(fields, HEADS)


def parse_instance_fields(fields: Mapping[str, Any], card: Any = None) -> dict[str, Any]:
    """instance-segmentation: as :func:`parse_fields` with the ``query-masks`` head, whose defaults
    are Mask2Former's Detectron2 test protocol (``resize``, ``topk``, ``mask_threshold``)."""
    return _parse(fields, INSTANCE_HEADS)


def settings(card: Any, options: DetectionOptions | None = None) -> dict[str, Any]:
    """The card's parsed fields with ``options`` applied: ``{letterbox, postprocess, head}``."""
    parse = parse_instance_fields if getattr(card, "task", None) == INSTANCE else parse_fields
    parsed = parse(getattr(card, "fields", None) or {}, card)
    if options is not None and parsed["head"] == "yolo":
        post = parsed["postprocess"]
        if options.conf_thres is not None:
            post["conf_thres"] = _number(options.conf_thres, "--conf-thres", 0, 1)
        if options.iou_thres is not None:
            post["iou_thres"] = _number(options.iou_thres, "--iou-thres", 0, 1)
        if options.max_det is not None:
            post["max_det"] = _int(options.max_det, "--max-det", 1)
    return parsed


def protocol(card: Any, dataset: str, options: DetectionOptions | None) -> dict[str, Any]:
    """What a measurement depends on: the letterbox, the post-processing (with overrides) and the head."""
    return settings(card, options)


TASK = Task(
    name=NAME,
    summary="COCO box AP (pycocotools) of a detector on COCO val2017 or any COCO-format set",
    metrics=(
        Metric(name="map", label="AP", unit="%", tolerance=0.1, primary=True),
        Metric(name="map50", label="AP50", unit="%", tolerance=0.1),
        Metric(name="map75", label="AP75", unit="%", tolerance=0.1),
        Metric(name="map_small", label="APs", unit="%", tolerance=0.1),
        Metric(name="map_medium", label="APm", unit="%", tolerance=0.1),
        Metric(name="map_large", label="APl", unit="%", tolerance=0.1),
    ),
    datasets=("coco", "coco-json"),
    options=DetectionOptions,
    card_fields={
        "letterbox": "how images are fitted to the input: {size, stride, pad_value, auto, scaleup, shrink} "
                     "(default: YOLOv6 0.4.0 eval: 640, 32, 114, false, false, 0); shrink: the long side is "
                     "first resized to max(size) - shrink px (YOLOv6 --shrink_size)",
        "postprocess": "NMS: {conf_thres, iou_thres, max_det, agnostic, multi_label} "
                       "(default: YOLOv6 0.4.0 eval: 0.03, 0.65, 300, false, true)",
        "head": "the model's output format: yolo = (B, N, 5 + C): cx, cy, w, h (input px), objectness, class scores",
        "resize": "Detectron2 test resize instead of letterbox: {shortest_edge, max_size, size_divisibility, "
                  "pad_value}",
        "normalize": "{mean: [r, g, b], std: [r, g, b]} in 0-255 units (default: x / 255, YOLOv6's)",
    },
    defaults={"input_size": (3, 640, 640), "num_classes": 80},
    evaluate="zoo_detection.evaluate:evaluate",
    example_inputs="zoo_detection.evaluate:example_inputs",
    check_output="zoo_detection.evaluate:check_output",
    protocol="zoo_detection.task:protocol",
    postprocess="zoo_detection.evaluate:postprocess",
    write_predictions="zoo_detection.evaluate:write_predictions",
    demo_data="zoo_detection.demo:make_demo",
    parse_fields=parse_fields,
)
