"""The anomaly-detection Task: what the core reads about it (torch-free: ``zoo list`` may import it).

A model of this task takes a batch ``(B, 3, H, W)`` preprocessed as its card says and returns
``{"score": (B,), "map": (B, h, w)}`` (higher = more anomalous; the map at any resolution). A
few-shot model also has ``fit(reference)``: ``reference`` is ``(K, 3, H, W)``, the k normal training
images of the category about to be scored, called once per category under ``torch.no_grad()``.

The protocol is card data (issue #13), recorded with every result:

- ``protocols``: ``[zero-shot]`` or ``[few-shot]``: what the model supports;
- ``preprocess``: how images become the model input. ``{resize, interpolation, keep_ratio, center_crop,
  mean, std}`` (0-1 units) when the core hands the raw mapping to the task; until then the core's own
  ``preprocess`` (``crop_mode: squash`` = no kept ratio, ``crop_pct``, ``interpolation``, ``mean``,
  ``std``) with ``input_size`` is read into the same form (see :func:`preprocess_from_card`);
- ``map_smoothing: {sigma}``: the Gaussian ``scipy.ndimage.gaussian_filter`` applies to each map once
  it is upsampled to ``metric_size`` (AnomalyCLIP's test.py: sigma 4; 0: none);
- ``metric_size: [H, W]``: the resolution maps and masks are compared at (default: the model input);
- ``gt_mask: {interpolation, threshold}``: how a ground-truth mask reaches ``metric_size``: binarised
  (> 0), resized and cropped as the image is but with this filter (PIL, 0-255), then ``> threshold * 255``.
  The defaults are AnomalyCLIP's (``transforms.Resize`` default bilinear, ``gt_mask > 0.5``);
- ``trained_on``: a zero-shot model's training set; evaluating it there is refused (not zero-shot);
- ``pro_definition``: ``mvtec`` (the MVTec AD evaluation code's AU-PRO, default) or ``anomalyclip`` (its
  metrics.py ``cal_pro_score``), so either paper's numbers can be reproduced.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.registry.tasks import Metric, Task

NAME = "anomaly-detection"
PROTOCOLS = ("zero-shot", "few-shot")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
AUPRO_KINDS = ("mvtec", "anomalyclip")
TRAINED_ON = ("visa", "mvtec-ad")
DEFAULT_SEED = 66  #: open-iad's graphcore config seed (configuration/1_model_base/graphcore.yaml)
MAX_SHOTS = 1024
#: how the k reference images are drawn: random.Random(seed).sample(sorted train names, k), per category
DRAW = "random.Random(seed).sample(sorted(train_good), k)"
_CATEGORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")


@dataclass
class AnomalyOptions:
    """Options of ``zoo eval`` for anomaly detection (one CLI option each).

    ``protocol``, ``shots``, ``seed``, ``category`` and ``pro_definition`` are part of the protocol: a run with
    any of them changed from the claim's is recorded with it and never judges the paper's figure.
    """

    protocol: Literal["zero-shot", "few-shot"] | None = field(default=None, metadata={
        "help": "anomaly-detection: zero-shot (no image of the target set) or few-shot (k normal train images "
                "per category; default: the card's protocols)."})
    shots: int | None = field(default=None, metadata={
        "help": "anomaly-detection: k of the few-shot protocol (the papers use 1, 2, 4, 8, 16; default: the "
                "card's reported protocol)."})
    seed: int | None = field(default=None, metadata={
        "help": f"anomaly-detection: seed of the k-shot draw (default {DEFAULT_SEED}; {DRAW})."})
    category: str | None = field(default=None, metadata={
        "dataset": True, "help": "anomaly-detection: only these categories, comma-separated (default: all)."})
    save_scores: str | None = field(default=None, metadata={
        "help": "anomaly-detection: write JSON lines {category, file, label, score}, one per test image."})
    save_maps: str | None = field(default=None, metadata={
        "help": "anomaly-detection: write a PNG per test image (image, heat map, ground-truth contour) here."})
    pro_definition: Literal["mvtec", "anomalyclip"] | None = field(default=None, metadata={
        "help": "anomaly-detection: AU-PRO as the MVTec AD evaluation defines it, or AnomalyCLIP's "
                "metrics.py variant (default: the card's pro_definition)."})


# -- card fields ---------------------------------------------------------------------------------------


def _number(value: Any, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r:.60}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{where}: expected a number in [{low}, {high}], got {value!r}")
    return float(value)


def _int(value: Any, where: str, low: int = 1, high: int = 16384) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where}: expected an integer in {low}..{high}, got {value!r:.60}")
    return value


def _size(value: Any, where: str) -> list[int]:
    """``N`` or ``[H, W]`` -> ``[H, W]``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{where}: expected [height, width], got {value!r:.60}")
        return [_int(v, where) for v in value]
    return [_int(value, where)] * 2


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{where}: expected one of {', '.join(choices)}, got {value!r:.60}")
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


def _mean_std(value: Any, where: str, index: int) -> list[float]:
    from zoo.registry.cards import MEAN_STD_PRESETS

    if isinstance(value, str):
        if value not in MEAN_STD_PRESETS:
            raise ValueError(f"{where}: unknown preset {value!r} (presets: {', '.join(MEAN_STD_PRESETS)})")
        return list(MEAN_STD_PRESETS[value][index])
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError(f"{where}: expected 3 numbers (0-1 units) or a preset name, got {value!r:.60}")
    out = [_number(v, where, 0, 1) for v in value]
    if index == 1 and min(out) <= 0:
        raise ValueError(f"{where}: expected numbers > 0, got {value!r}")
    return out


PREPROCESS_DEFAULTS: dict[str, Any] = {"resize": None, "interpolation": "bicubic", "keep_ratio": False,
                                       "center_crop": None, "mean": "clip", "std": "clip", "source": None}


def parse_preprocess(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The task's ``preprocess`` mapping: ``{resize, interpolation, keep_ratio, center_crop, mean, std}``.

    ``keep_ratio: false``: ``resize`` is ``[H, W]`` (or N for N x N), the image is squashed to it;
    ``keep_ratio: true``: ``resize`` is one integer, the short side (torchvision ``Resize(int)``), and a
    ``center_crop`` is required (the input size must not depend on the image).
    """
    pre = _block({"preprocess": raw}, "preprocess", PREPROCESS_DEFAULTS)
    if pre["resize"] is None:
        raise ValueError("preprocess.resize: required, e.g. [518, 518]")
    if not isinstance(pre["keep_ratio"], bool):
        raise ValueError(f"preprocess.keep_ratio: expected true or false, got {pre['keep_ratio']!r:.60}")
    if pre["keep_ratio"]:
        if isinstance(pre["resize"], (list, tuple)):
            raise ValueError("preprocess.resize: with keep_ratio: true give one integer (the short side), "
                             f"got {pre['resize']!r:.60}")
        resize: int | list[int] = _int(pre["resize"], "preprocess.resize")
        if pre["center_crop"] is None:
            raise ValueError("preprocess.center_crop: required with keep_ratio: true (else sizes vary by image)")
    else:
        resize = _size(pre["resize"], "preprocess.resize")
    crop = None if pre["center_crop"] is None else _size(pre["center_crop"], "preprocess.center_crop")
    source = pre["source"]
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise ValueError("preprocess.source: expected a non-empty string")
    return {"resize": resize, "keep_ratio": pre["keep_ratio"], "center_crop": crop,
            "interpolation": _choice(pre["interpolation"], "preprocess.interpolation", INTERPOLATIONS),
            "mean": _mean_std(pre["mean"], "preprocess.mean", 0), "std": _mean_std(pre["std"], "preprocess.std", 1)}


def preprocess_from_card(card: Any) -> dict[str, Any]:
    """The core's ``preprocess`` + ``input_size`` read as the task's preprocess (until the core lets a task
    own ``preprocess``): ``crop_mode: squash`` resizes to ``input_size / crop_pct`` without keeping the ratio,
    ``center`` resizes the short side to ``floor(size / crop_pct)``; both then crop ``input_size`` (no crop
    when ``crop_pct`` is 1 and the mode is squash). AnomalyCLIP: ``input_size [3, 518, 518]``, ``crop_mode:
    squash``, ``crop_pct: 1.0``, ``interpolation: bicubic``, ``mean/std: clip``."""
    size = getattr(card, "input_size", None)
    pre = getattr(card, "preprocess", None)
    if size is None or pre is None:
        raise ValueError("preprocess: give the card's input_size [3, H, W] (the model input) and preprocess")
    height, width = int(size[1]), int(size[2])
    pct = float(pre.crop_pct)
    if pre.crop_mode == "squash":
        resize = [int(math.floor(height / pct)), int(math.floor(width / pct))]
        crop = None if resize == [height, width] else [height, width]
        keep: bool = False
    elif pre.crop_mode == "center":
        resize, crop, keep = int(math.floor(min(height, width) / pct)), [height, width], True  # type: ignore[assignment]
    else:
        raise ValueError(f"preprocess.crop_mode: {pre.crop_mode!r} is not supported by anomaly-detection "
                         "(squash or center)")
    return {"resize": resize, "keep_ratio": keep, "center_crop": crop,
            "interpolation": _choice(pre.interpolation, "preprocess.interpolation", INTERPOLATIONS),
            "mean": [float(v) for v in pre.mean], "std": [float(v) for v in pre.std]}


_CORE_FORM = ("interpolation", "crop_pct", "crop_mode", "mean", "std", "source")


def _core_form(raw: Mapping[str, Any], card: Any) -> Any:
    """A raw ``preprocess`` mapping in the core's form (``crop_mode``, ``crop_pct``, ...), as the card object
    :func:`preprocess_from_card` reads: should the core hand ``preprocess`` to the task, cards written in
    the core's form keep working."""
    from types import SimpleNamespace

    unknown = sorted(str(k) for k in raw if k not in _CORE_FORM)
    if unknown:
        raise ValueError(f"preprocess.{unknown[0]}: unknown field (the task's form: {', '.join(PREPROCESS_DEFAULTS)}; "
                         f"the core's: {', '.join(_CORE_FORM)})")
    pct = _number(raw.get("crop_pct", 0.875), "preprocess.crop_pct", 0, 1)
    if pct <= 0:
        raise ValueError("preprocess.crop_pct: expected a number in (0, 1]")
    pre = SimpleNamespace(crop_pct=pct, crop_mode=raw.get("crop_mode", "center"),
                          interpolation=raw.get("interpolation", "bicubic"),
                          mean=_mean_std(raw.get("mean", "imagenet"), "preprocess.mean", 0),
                          std=_mean_std(raw.get("std", "imagenet"), "preprocess.std", 1))
    return SimpleNamespace(input_size=getattr(card, "input_size", None), preprocess=pre)


def input_size(pre: Mapping[str, Any]) -> list[int]:
    """``[H, W]`` of the model input a parsed preprocess gives."""
    return list(pre["center_crop"] or pre["resize"])


def parse_fields(fields: Mapping[str, Any], card: Any = None) -> dict[str, Any]:
    """Validate the task's card fields (see the module docstring); missing ones take the defaults."""
    protocols = fields.get("protocols")
    if not isinstance(protocols, (list, tuple)) or not protocols:
        raise ValueError(f"protocols: required, a list of {' or '.join(PROTOCOLS)} (what the model supports), "
                         f"got {protocols!r:.60}")
    protocols = [_choice(p, "protocols", PROTOCOLS) for p in protocols]
    if len(set(protocols)) != len(protocols):
        raise ValueError(f"protocols: {protocols} repeats a protocol")
    raw = fields.get("preprocess")
    if raw is None:
        pre = preprocess_from_card(card)
    elif isinstance(raw, Mapping) and "resize" not in raw:  # the core's form, handed over raw
        pre = preprocess_from_card(_core_form(raw, card))
    else:
        pre = parse_preprocess(raw)
    smoothing = _block(fields, "map_smoothing", {"sigma": 4})
    sigma = _number(smoothing["sigma"], "map_smoothing.sigma", 0, 64)
    metric = fields.get("metric_size")
    metric_size = input_size(pre) if metric is None else _size(metric, "metric_size")
    gt = _block(fields, "gt_mask", {"interpolation": "bilinear", "threshold": 0.5})
    trained_on = fields.get("trained_on")
    if trained_on is not None:
        _choice(trained_on, "trained_on", TRAINED_ON)
        if "zero-shot" not in protocols:
            raise ValueError("trained_on: only for zero-shot models (the set their prompts were trained on)")
    return {
        "protocols": protocols,
        "preprocess": pre,
        "map_smoothing": {"sigma": sigma},
        "metric_size": metric_size,
        "gt_mask": {"interpolation": _choice(gt["interpolation"], "gt_mask.interpolation", INTERPOLATIONS),
                    "threshold": _number(gt["threshold"], "gt_mask.threshold", 0, 1)},
        "trained_on": trained_on,
        "pro_definition": _choice(fields.get("pro_definition", "mvtec"), "pro_definition", AUPRO_KINDS),
    }


def card_fields(card: Any) -> dict[str, Any]:
    """The card's parsed fields (parsing is idempotent: parsed fields parse to themselves)."""
    return parse_fields(dict(getattr(card, "fields", None) or {}), card)


# -- the protocol ----------------------------------------------------------------------------------------


def parse_categories(text: str | None) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]`` (order kept, repeats dropped); None/"" -> None (all categories)."""
    if text is None:
        return None
    names = [n.strip() for n in str(text).split(",")]
    if not any(names):
        raise ValueError("--category: expected category names, comma-separated, got an empty value")
    bad = next((n for n in names if not _CATEGORY_RE.match(n)), None)
    if bad is not None:
        raise ValueError(f"--category: {bad!r} is not a category name (letters, digits, '_', '.', '+', '-')")
    return list(dict.fromkeys(names))


def settings(card: Any, dataset: str | None = None, options: AnomalyOptions | None = None) -> dict[str, Any]:
    """What a run on ``dataset`` measures under: the card's fields with ``options`` applied, and the
    claim's settings (``reported.<dataset>.protocol``: protocol, shots, seed) where options leave them.

    :raises ValueError: a protocol the card does not support, shots without few-shot, a zero-shot run
        on the model's own training set, or few-shot without a k.
    """
    fields = card_fields(card)
    claimed: Mapping[str, Any] = {}
    if dataset and getattr(card, "reported", None) is not None:
        claimed = card.reported.protocol(dataset)
    opts = options if options is not None else AnomalyOptions()
    protocol = opts.protocol or claimed.get("protocol") or fields["protocols"][0]
    if protocol not in fields["protocols"]:
        raise ValueError(f"--protocol {protocol}: model {card.name!r} supports {', '.join(fields['protocols'])} "
                         "(its card's protocols)")
    shots = seed = None
    if protocol == "few-shot":
        shots = opts.shots if opts.shots is not None else claimed.get("shots")
        if shots is None:
            raise ValueError(f"few-shot needs --shots K (1, 2, 4, 8 or 16; the card of {card.name!r} states no "
                             f"shots for {dataset or 'this dataset'})")
        shots = _int(shots, "--shots", 1, MAX_SHOTS)
        seed = opts.seed if opts.seed is not None else claimed.get("seed", DEFAULT_SEED)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"--seed: expected an integer, got {seed!r:.60}")
    else:
        if opts.shots is not None:
            raise ValueError(f"--shots {opts.shots}: only with --protocol few-shot (this run is zero-shot)")
        if opts.seed is not None:
            raise ValueError(f"--seed {opts.seed}: only with --protocol few-shot (nothing is drawn zero-shot)")
        if dataset and fields.get("trained_on") == dataset:
            raise ValueError(f"model {card.name!r} was trained on {dataset}: evaluating it there is not zero-shot "
                             f"(its card's trained_on)")
    categories = parse_categories(opts.category)
    return {
        "protocol": protocol,
        "shots": shots,
        "seed": seed,
        "draw": DRAW if protocol == "few-shot" else None,
        "categories": categories or "all",
        "preprocess": fields["preprocess"],
        "map_smoothing": fields["map_smoothing"],
        "metric_size": fields["metric_size"],
        "gt_mask": fields["gt_mask"],
        "pro_definition": opts.pro_definition or fields["pro_definition"],
    }


def protocol(card: Any, dataset: str, options: AnomalyOptions | None) -> dict[str, Any]:
    """The settings a measurement depends on (see :func:`settings`), recorded with every run."""
    return settings(card, dataset, options)


TASK = Task(
    name=NAME,
    summary="industrial anomaly detection: image AUROC/AP, pixel AUROC and AU-PRO per category (MVTec AD, VisA)",
    metrics=(
        Metric(name="image_auroc", label="I-AUROC", unit="%", tolerance=0.1, primary=True),
        Metric(name="image_ap", label="I-AP", unit="%", tolerance=0.1),
        Metric(name="pixel_auroc", label="P-AUROC", unit="%", tolerance=0.1),
        Metric(name="aupro", label="AUPRO", unit="%", tolerance=0.1),
    ),
    datasets=("mvtec-ad", "visa", "anomaly-folder"),
    options=AnomalyOptions,
    card_fields={
        "protocols": "what the model supports: [zero-shot] or [few-shot] (few-shot models have fit(reference))",
        "preprocess": "task form {resize, interpolation, keep_ratio, center_crop, mean, std} (when the core hands "
                      "it over; else the core's preprocess + input_size)",
        "map_smoothing": "{sigma}: Gaussian (scipy.ndimage.gaussian_filter) on each upsampled map (default 4)",
        "metric_size": "[H, W] maps and ground-truth masks are compared at (default: the model input)",
        "gt_mask": "{interpolation, threshold}: how a mask is resized and re-binarised (default bilinear, 0.5: "
                   "AnomalyCLIP's)",
        "trained_on": "zero-shot models: the set the prompts were trained on (visa or mvtec-ad); evaluating there "
                      "is refused",
        "pro_definition": "mvtec (the MVTec AD evaluation's AU-PRO, default) or anomalyclip (its metrics.py cal_pro_score)",
    },
    evaluate="zoo_anomaly.evaluate:evaluate",
    example_inputs="zoo_anomaly.evaluate:example_inputs",
    prepare="zoo_anomaly.evaluate:prepare",
    check_output="zoo_anomaly.evaluate:check_output",
    protocol="zoo_anomaly.task:protocol",
    write_predictions="zoo_anomaly.evaluate:write_predictions",
    demo_data="zoo_anomaly.demo:make_demo",
    parse_fields=parse_fields,
)
