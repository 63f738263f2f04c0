"""The semantic-segmentation Task: what the core reads about it (torch-free: ``zoo list`` may import it).

A segmenter's test protocol is card data (issue #14), as mmsegmentation 0.x keeps it in config
data. The defaults are mmseg 0.x's ADE20K test pipeline and ``tools/test.py --aug-test``
(``configs/_base_/datasets/ade20k.py`` at SwinTransformer/Swin-Transformer-Semantic-Segmentation@87e6f90):

- ``normalize``: mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375) in 0-255 units,
  ``to_rgb`` true (images are decoded BGR by OpenCV, as mmcv does, and turned to RGB);
- ``test.resize``: ``Resize(keep_ratio=True)`` to ``img_scale`` (2048, 512), i.e. ``mmcv.imrescale``:
  scale factor min(long / long_side, short / short_side), OpenCV bilinear;
- ``test.size_divisor``: ViT-Adapter's ``ResizeToMultiple`` after the resize (null: none);
- ``test.mode``: ``whole`` (the image at once) or ``slide`` (windows of ``crop_size`` every
  ``stride``, clamped to the border, logits summed and divided by the window count);
- ``ms``: the multi-scale + flip protocol of ``--ms``: ``img_ratios`` (0.5 ... 1.75) of the resize
  scale, each with and without a horizontal flip; softmax per augmentation, flips undone,
  probabilities averaged, argmax (``EncoderDecoder.aug_test``);
- ``reduce_zero_label`` (ADE20K: label 0 is "other" -> ignored, label k -> class k - 1) and
  ``ignore_index`` (255).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.registry.tasks import Metric, Task

NAME = "semantic-segmentation"
MODES = ("whole", "slide")

#: mmseg 0.x ADE20K img_norm_cfg (0-255 units)
NORMALIZE_DEFAULTS: dict[str, Any] = {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
                                      "to_rgb": True}
#: mmseg 0.x ADE20K test pipeline and test_cfg
TEST_DEFAULTS: dict[str, Any] = {"resize": {"scale": [2048, 512], "keep_ratio": True}, "size_divisor": None,
                                 "mode": "whole", "crop_size": None, "stride": None}
RESIZE_DEFAULTS: dict[str, Any] = {"scale": [2048, 512], "keep_ratio": True}
#: mmseg 0.x tools/test.py --aug-test
MS_DEFAULTS: dict[str, Any] = {"ratios": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75], "flip": True}
MAX_SIDE = 16384  #: a resize scale, crop or stride beyond this is a typo, not a protocol


@dataclass
class SegmentationOptions:
    """Options of ``zoo eval`` for semantic segmentation (one CLI option each).

    ``--ms`` changes the protocol (recorded as ``ms``; the card's single-scale figure is then not
    set beside it); ``--save-masks`` only writes files.
    """

    ms: bool = field(default=False, metadata={
        "help": "semantic-segmentation: multi-scale + flip test (the card's ms ratios; mmseg --aug-test)."})
    save_masks: str | None = field(default=None, metadata={
        "help": "semantic-segmentation: write each image's predicted label PNG (the dataset's label encoding) "
                "under DIR/masks and a colour overlay under DIR/overlays."})


def _number(value: Any, where: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r:.60}")
    if positive and value <= 0:
        raise ValueError(f"{where}: expected a number > 0, got {value!r}")
    return float(value)


def _int(value: Any, where: str, low: int = 1, high: int = MAX_SIDE) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where}: expected an integer in {low}..{high}, got {value!r:.60}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r:.60}")
    return value


def _pair(value: Any, where: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"{where}: expected [height, width] (two integers) or one integer, got {value!r:.60}")
    return [_int(v, where) for v in value]


def _triple(value: Any, where: str, positive: bool) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"{where}: expected three numbers (one per channel), got {value!r:.60}")
    return [_number(v, where, positive) for v in value]


def _block(value: Any, name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if value is None:
        return dict(defaults)
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected a mapping ({', '.join(defaults)}), got {type(value).__name__} {value!r:.60}")
    unknown = sorted(str(k) for k in value if k not in defaults)
    if unknown:
        raise ValueError(f"{name}.{unknown[0]}: unknown field (allowed: {', '.join(defaults)})")
    return {**defaults, **value}


def parse_normalize(value: Any) -> dict[str, Any]:
    norm = _block(value, "normalize", NORMALIZE_DEFAULTS)
    return {"mean": _triple(norm["mean"], "normalize.mean", False),
            "std": _triple(norm["std"], "normalize.std", True),
            "to_rgb": _flag(norm["to_rgb"], "normalize.to_rgb")}


def parse_test(value: Any) -> dict[str, Any]:
    test = _block(value, "test", TEST_DEFAULTS)
    resize = test["resize"]
    if resize is not None:
        resize = _block(resize, "test.resize", RESIZE_DEFAULTS)
        scale = resize["scale"]
        if not isinstance(scale, list | tuple) or len(scale) != 2:
            raise ValueError(f"test.resize.scale: expected [long, short] (mmseg img_scale, two integers), "
                             f"got {scale!r:.60}")
        resize = {"scale": [_int(s, "test.resize.scale") for s in scale],
                  "keep_ratio": _flag(resize["keep_ratio"], "test.resize.keep_ratio")}
    divisor = test["size_divisor"]
    if divisor is not None:
        divisor = _int(divisor, "test.size_divisor", 1, 1024)
    mode = test["mode"]
    if mode not in MODES:
        raise ValueError(f"test.mode: expected one of {', '.join(MODES)}, got {mode!r:.60}")
    crop, stride = test["crop_size"], test["stride"]
    if mode == "slide":
        if crop is None or stride is None:
            raise ValueError(f"test.{'crop_size' if crop is None else 'stride'}: mode slide needs crop_size and stride "
                             "(mmseg ADE20K: [512, 512] and [341, 341])")
        crop, stride = _pair(crop, "test.crop_size"), _pair(stride, "test.stride")
    elif crop is not None or stride is not None:
        raise ValueError(f"test.{'crop_size' if crop is not None else 'stride'}: only mode slide uses it "
                         "(this card's mode is whole)")
    return {"resize": resize, "size_divisor": divisor, "mode": mode, "crop_size": crop, "stride": stride}


def parse_ms(value: Any) -> dict[str, Any]:
    ms = _block(value, "ms", MS_DEFAULTS)
    ratios = ms["ratios"]
    if not isinstance(ratios, list | tuple) or not ratios or len(ratios) > 32:
        raise ValueError(f"ms.ratios: expected a list of 1..32 scale ratios, got {ratios!r:.60}")
    ratios = [_number(r, "ms.ratios", positive=True) for r in ratios]
    if any(r > 8 for r in ratios):
        raise ValueError(f"ms.ratios: expected ratios in (0, 8], got {ratios}")
    return {"ratios": ratios, "flip": _flag(ms["flip"], "ms.flip")}


CLASS_SETS = ("ade20k",)  #: class lists a card can name instead of listing them


def parse_classes(value: Any, card: Any) -> str | list[str] | None:
    """``classes``: ``ade20k`` (its 150 names) or a list of names, one per class of the model."""
    if value is None:
        return None
    expected = getattr(card, "num_classes", None)
    if isinstance(value, str):
        if value not in CLASS_SETS:
            raise ValueError(f"classes: expected a list of names or one of {', '.join(CLASS_SETS)}, got {value!r:.60}")
        if expected is not None and expected != 150:
            raise ValueError(f"classes: ade20k has 150 classes, the card's num_classes is {expected}")
        return value
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"classes: expected a non-empty list of names or ade20k, got {value!r:.60}")
    bad = next((i for i, n in enumerate(value) if not isinstance(n, str) or not n.strip()), None)
    if bad is not None:
        raise ValueError(f"classes: item {bad} is not a name: {value[bad]!r:.40}")
    if expected is not None and len(value) != expected:
        raise ValueError(f"classes: {len(value)} names, the card's num_classes is {expected}")
    return list(value)


def parse_fields(fields: Mapping[str, Any], card: Any = None) -> dict[str, Any]:
    """Validate ``normalize``, ``test``, ``ms``, ``reduce_zero_label``, ``ignore_index`` and
    ``classes``; missing ones take mmseg 0.x's ADE20K defaults (``classes``: none)."""
    ignore = fields.get("ignore_index", 255)
    return {
        "classes": parse_classes(fields.get("classes"), card),
        "normalize": parse_normalize(fields.get("normalize")),
        "test": parse_test(fields.get("test")),
        "ms": parse_ms(fields.get("ms")),
        "reduce_zero_label": _flag(fields.get("reduce_zero_label", True), "reduce_zero_label"),
        "ignore_index": _int(ignore, "ignore_index", 0, 65535),
    }


def settings(card: Any) -> dict[str, Any]:
    """The card's parsed task fields (defaults filled in)."""
    return parse_fields(getattr(card, "fields", None) or {}, card)


def check_save_masks(value: str | None) -> Path | None:
    """``--save-masks DIR``: a directory (made if missing), never an existing file."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"--save-masks: expected a directory, got {value!r}")
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--save-masks {value}: exists and is not a directory")
    return path


def protocol(card: Any, dataset: str, options: SegmentationOptions | None) -> dict[str, Any]:
    """What a measurement depends on: ``ss`` or ``ms``, normalisation, the test pipeline, the
    multi-scale settings (``ms`` runs only) and the label encoding."""
    parsed = settings(card)
    classes = getattr(card, "num_classes", None) or 150
    if dataset == "ade20k" and classes != 150:  # said before the model is built (and downloaded)
        raise ValueError(f"ade20k has 150 classes, but model {getattr(card, 'name', '?')!r} predicts {classes} "
                         "(num_classes on its card)")
    ms = bool(options is not None and options.ms)
    if options is not None:
        check_save_masks(options.save_masks)
    out = {"protocol": "ms" if ms else "ss", "normalize": parsed["normalize"], "test": parsed["test"],
           "reduce_zero_label": parsed["reduce_zero_label"], "ignore_index": parsed["ignore_index"]}
    if ms:
        out["ms"] = parsed["ms"]
    return out


TASK = Task(
    name=NAME,
    summary="mIoU/mAcc/aAcc (mmsegmentation's definitions) of a semantic segmenter on ADE20K or image/mask pairs",
    metrics=(
        Metric(name="miou", label="mIoU", unit="%", tolerance=0.1, primary=True),
        Metric(name="macc", label="mAcc", unit="%", tolerance=0.1),
        Metric(name="aacc", label="aAcc", unit="%", tolerance=0.1),
    ),
    datasets=("ade20k", "seg-folder"),
    options=SegmentationOptions,
    card_fields={
        "normalize": "{mean, std, to_rgb}: 0-255 units (default mmseg ADE20K: 123.675/116.28/103.53, "
                     "58.395/57.12/57.375, true)",
        "test": "{resize: {scale: [long, short], keep_ratio}, size_divisor, mode: whole|slide, crop_size, stride} "
                "(default mmseg ADE20K: [2048, 512], keep_ratio true, no divisor, whole)",
        "ms": "{ratios, flip}: the --ms protocol (default mmseg --aug-test: 0.5..1.75, flip true)",
        "reduce_zero_label": "label 0 is ignored and label k is class k - 1 (ADE20K: true, the default)",
        "ignore_index": "the label value never scored (default 255)",
        "classes": "the class names: ade20k or a list, one per class (tables and seg-folder sets without a class list)",
    },
    defaults={"input_size": (3, 512, 512), "num_classes": 150},
    claim_options={"ms_flip": {"ms": True}},  # reported.<dataset>.ms_flip.<metric>: judged by --ms runs
    evaluate="zoo_segmentation.evaluate:evaluate",
    example_inputs="zoo_segmentation.evaluate:example_inputs",
    check_output="zoo_segmentation.evaluate:check_output",
    postprocess="zoo_segmentation.evaluate:postprocess",
    protocol="zoo_segmentation.task:protocol",
    demo_data="zoo_segmentation.demo:make_demo",
    parse_fields=parse_fields,
)
