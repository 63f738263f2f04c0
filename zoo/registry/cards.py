"""Cards: the schema of papers and model cards, and their validation.

A card file is YAML with two sections::

    papers:   {key: {title, venue, arxiv, code, license, ...}}
    models:   {name: {paper, task, plugin, builder, input_size, preprocess, weights, reported, ...}}

Parsing never raises for bad data: :func:`parse_document` returns every valid paper and card
plus one :class:`~zoo.errors.CardError` per invalid entry, located by file, entry and field.
The schema below is the reference; ``docs/cards.md`` is generated from it.
This module must stay light: ``zoo list`` imports it, and it must never import torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from zoo.errors import CardError, UserError

if TYPE_CHECKING:
    from zoo.registry.tasks import Task

MEAN_STD_PRESETS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "zero-one": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # no normalisation (MobileViT)
}
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
CROP_MODES = ("center", "squash", "border")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# -- schema ---------------------------------------------------------------------------------------


class Figure(float):
    """A number from a card that remembers how it was printed (``14.0`` is not ``14``).

    Papers print figures at a precision; a claim is judged at that precision, so ``text`` keeps
    the characters as written in the card (``"14.0"``). Arithmetic gives plain floats.
    """

    text: str

    def __new__(cls, value: float | str, text: str | None = None) -> Figure:
        obj = super().__new__(cls, value)
        obj.text = text if text is not None else (value if isinstance(value, str) else repr(float(value)))
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (Figure, (float(self), self.text))

    def __str__(self) -> str:  # shown as the source printed it ("3161 img/s", "14.0 M"); repr stays float's
        return self.text


def printed_decimals(value: float) -> int:
    """Digits after the point as the source printed them (``75.9`` -> 1, ``"14.0"`` -> 1, ``86`` -> 0)."""
    text = value.text if isinstance(value, Figure) else repr(float(value))
    text = text.strip().lower()
    if "e" in text:  # 1e-3: fall back to the value's own digits
        from decimal import Decimal

        return max(0, -int(Decimal(repr(float(value))).normalize().as_tuple().exponent))
    if "." not in text:
        return 0
    if isinstance(value, Figure):
        return len(text.split(".", 1)[1])
    return len(text.split(".", 1)[1].rstrip("0"))


@dataclass(frozen=True, kw_only=True)
class Paper:
    key: str
    title: str  # as printed on the paper
    venue: str  # "ICLR 2024", "CVPR 2022", ...
    arxiv: str | None = None  # arXiv id, e.g. "2306.06189"
    code: str | None = None  # official repository URL
    license: str | None = None  # license of the official code/weights
    deck: str | None = None  # which seed round-up surveys it: "iclr2023" or "iclr2024"
    notes: str | None = None  # anything a user should know about the paper


@dataclass(frozen=True, kw_only=True)
class Preprocess:
    # how the *weights* expect inputs: the official evaluation's settings (they produced the claims)
    interpolation: str = "bicubic"  # resampling filter of the resize, one of INTERPOLATIONS
    crop_pct: float = 0.875  # resize the short side to floor(size / crop_pct), then crop size x size
    crop_mode: str = "center"  # one of CROP_MODES (timm's eval transforms: center, squash, border)
    mean: tuple[float, float, float] = MEAN_STD_PRESETS["imagenet"][0]  # 3 numbers or a preset name
    std: tuple[float, float, float] = MEAN_STD_PRESETS["imagenet"][1]  # 3 numbers or a preset name
    resize_size: int | None = None  # short side before the crop, instead of crop_pct (square input_size only)
    source: str | None = None  # where these values come from, e.g. "deit main.py build_transform: Resize(256)"
    timm: Preprocess | None = None  # the fields of timm's pretrained_cfg that differ (recorded, never used for claims)
    by_dataset: Mapping[str, Preprocess] = field(default_factory=dict)  # dataset -> fields that differ for its claims

    def as_timm_cfg(self) -> dict[str, Any]:
        """The fields timm's ``resolve_data_config`` reads (besides ``input_size``)."""
        return {"interpolation": self.interpolation, "crop_pct": self.crop_pct, "crop_mode": self.crop_mode,
                "mean": tuple(self.mean), "std": tuple(self.std)}


@dataclass(frozen=True, kw_only=True)
class WeightSource:
    # exactly one of hub / url / gdrive says where the file lives
    hub: str | None = None  # Hugging Face Hub repo id
    url: str | None = None  # plain HTTP(S) URL (GitHub release, CDN)
    gdrive: str | None = None  # Google Drive file id (needs the optional `gdown`)
    file: str | None = None  # file name in the hub repo / name to store a URL download under
    revision: str | None = None  # hub revision (branch, tag or commit); default "main"
    sha256: str | None = None  # verified when present; a mismatch is an error
    origin: str | None = None  # where the official code names this file (repo:path)
    # one builder, several weights (Mask2Former COCO vs ADE20K): a named entry may differ from the card in
    # these; entries of the same name are mirrors of one file. Name every entry or none.
    name: str | None = None  # e.g. "coco", "ade20k": create_model(card, weights="ade20k")
    num_classes: int | None = None  # outputs of these weights' classifier, when not the card's
    input_size: tuple[int, int, int] | None = None  # [C, H, W] these weights were evaluated at, when not the card's
    preprocess: Preprocess | None = None  # the card's preprocess with these weights' fields written over it

    @property
    def kind(self) -> str:
        # "manual": a file a user registered by hand (`zoo cache add`); never written in a card
        return "hub" if self.hub else "url" if self.url else "gdrive" if self.gdrive else "manual"

    @property
    def filename(self) -> str:
        if self.file:
            return self.file
        assert self.url is not None  # validated: a url source without file has a url
        return self.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]

    def describe(self) -> str:
        if self.hub:
            return f"hf://{self.hub}/{self.filename}" + (f"@{self.revision}" if self.revision else "")
        if self.url:
            return self.url
        if self.gdrive:
            return f"gdrive://{self.gdrive}/{self.file}"
        return f"manual:{self.file}"


@dataclass(frozen=True, kw_only=True)
class Reported:
    # numbers copied from the paper or the official repository; never measured here
    source: str  # where they come from: "FasterViT paper, Table 1", "README @ <commit>"
    params_m: float | None = None  # parameters, millions, as printed: 14.0 keeps its one decimal ("14.0" works too)
    gmacs: float | None = None  # multiply-adds, G (papers often call them FLOPs); as printed, like every number here
    throughput: Mapping[str, Any] | None = None  # {value, unit, device, batch_size, precision}
    latency: tuple[Mapping[str, Any], ...] = ()  # [{value (ms), device, batch_size}]
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # {dataset: {top1, ...}}
    #: {dataset: {table: {row: {metric: figure}}}}: nested figures, e.g. per_category: {bottle: {image_auroc: 98.0}}
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: {dataset: {setting: value}}: what the figures were measured with, e.g. {conf_thres: 0.03, iou_thres: 0.65}
    protocols: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    notes: str | None = None  # e.g. "distilled", "paper counts FLOPs as 2 x MACs"
    form: str | None = None  # params/MACs are of the "deploy" (branches folded) or the "train" model; default train
    other_weights: tuple[Mapping[str, Any], ...] = ()  # [{claim, value, source, why}]: figures of other weights, never judged

    def top1(self, dataset: str = "imagenet") -> float | None:
        return self.metrics.get(dataset, {}).get("top1")  # a Figure: keeps its printed precision

    def figures(self) -> list[tuple[str, str, str, Figure]]:
        """``(claim, dataset, metric, figure)`` for every reported metric, e.g.
        ``("imagenet.top1", "imagenet", "top1", Figure(81.2))``; ``claim`` names it in verify's report.

        Figures of nested tables follow their dataset's own, with the table path in the claim:
        ``("mvtec-ad.per_category.bottle.image_auroc", "mvtec-ad", "image_auroc", Figure(98.0))``.
        """
        out = [(f"{dataset}.{metric}", dataset, metric, value)
               for dataset, values in self.metrics.items() for metric, value in values.items()]
        for dataset, tables in self.tables.items():
            out += [(f"{dataset}.{path}", dataset, metric, value) for path, metric, value in _walk(tables)]
        return out

    def protocol(self, dataset: str) -> dict[str, Any]:
        """The card's ``reported.<dataset>.protocol`` settings (a copy; ``{}`` when none are given)."""
        return {key: list(value) if isinstance(value, (list, tuple)) else value
                for key, value in self.protocols.get(dataset, {}).items()}


def _walk(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str, Figure]]:
    """``(dotted path, leaf metric, figure)`` of a nested table, in order."""
    out: list[tuple[str, str, Figure]] = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            out += _walk(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", key, value))
    return out


@dataclass(frozen=True, kw_only=True)
class Card:
    name: str
    paper: str  # key into papers
    task: str  # "image-classification", ...
    plugin: str  # entry-point name of the plugin that builds it
    builder: str  # plugin-local builder name (none on a card-only card)
    # [C, H, W] the weights were evaluated at; None when neither the card nor its task's defaults give one
    input_size: tuple[int, int, int] | None = None
    num_classes: int | None = None  # outputs of the classifier the weights carry; None: no classifier (AnomalyCLIP)
    preprocess: Preprocess = field(default_factory=Preprocess)  # see `preprocess:` below
    weights: tuple[WeightSource, ...] = ()  # tried in order
    weights_note: str | None = None  # e.g. why there are none
    card_only: str | None = None  # why nothing runs here (no code/weights published, no port yet): cited, never measured
    weights_key: str | None = None  # container holding the evaluated weights, e.g. state_dict_ema
    patch: str | None = None  # model patch applied at build time, "tome:r=13"
    license: str | None = None  # overrides the paper's license for these weights
    reported: Reported | None = None  # the paper's claims, see `reported:` below
    deviations: Mapping[str, str] = field(default_factory=dict)  # claim -> why the code differs
    notes: str | None = None  # e.g. how these weights differ from the paper's row
    source: str = ""  # file the card came from (set by the loader)
    #: task-owned fields (any other key of the entry), as the card's Task parsed them; raw when the task is
    #: not installed (nothing validated them then)
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_weights(self) -> bool:
        return bool(self.weights)

    def require_code(self) -> None:
        """Raise a UserError saying why when the card is card-only (nothing here can build or load it)."""
        if self.card_only:
            raise UserError(f"model {self.name!r} is card-only (its claims are cited, nothing runs here): "
                            f"{self.card_only}")

    @property
    def weights_names(self) -> tuple[str, ...]:
        """Names of the card's weights (named entries), the default first; ``()`` when entries are unnamed."""
        return tuple(dict.fromkeys(w.name for w in self.weights if w.name))

    def for_weights(self, name: str | None = None) -> Card:
        """The card as seen with its weights ``name``: only that entry's sources, and its ``num_classes``,
        ``input_size`` and ``preprocess`` where it gives them. ``None``: the default (first) named weights,
        or the card itself when its entries are unnamed.

        :raises UserError: the card has no weights called ``name`` (the message lists the names).
        """
        names = self.weights_names
        if name is None:
            if not names:
                return self
            name = names[0]
        if name not in names:
            raise UserError(f"model {self.name!r} has no weights {name!r} "
                            f"(its weights: {', '.join(names) or 'none named'})")
        chosen = tuple(w for w in self.weights if w.name == name)
        first = chosen[0]
        return replace(
            self,
            weights=chosen,
            num_classes=first.num_classes if first.num_classes is not None else self.num_classes,
            input_size=first.input_size if first.input_size is not None else self.input_size,
            preprocess=first.preprocess if first.preprocess is not None else self.preprocess,
        )

    def preprocess_for(self, dataset: str | None) -> Preprocess:
        """The preprocessing that produced the card's claims on ``dataset``: ``preprocess`` merged with
        ``preprocess.by_dataset[dataset]`` (already merged when the card was parsed)."""
        if dataset is None:
            return self.preprocess
        return self.preprocess.by_dataset.get(dataset, self.preprocess)


# -- validation -----------------------------------------------------------------------------------


class _Entry:
    """Field readers for one YAML entry, raising CardError located at path/entry/field."""

    def __init__(self, path: str, entry: str, data: Any, allowed: set[str] | None, prefix: str = "") -> None:
        self.path, self.entry, self.prefix = path, entry, prefix
        if not isinstance(data, Mapping):
            self.fail("", f"expected a mapping, got {type(data).__name__}")
        self.data = dict(data)
        unknown = sorted(map(str, set(self.data) - allowed)) if allowed is not None else []
        if unknown:
            self.fail(unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def fail(self, name: str, problem: str) -> NoReturn:
        raise CardError(self.path, self.entry, self.prefix + name, problem)

    def sub(self, name: str, allowed: set[str]) -> _Entry:
        return _Entry(self.path, self.entry, self.data[name], allowed, prefix=f"{self.prefix}{name}.")

    def get(self, name: str, types: type | tuple[type, ...], required: bool = False, default: Any = None) -> Any:
        if name not in self.data or self.data[name] is None:
            if required:
                self.fail(name, "required field is missing")
            return default
        value = self.data[name]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            self.fail(name, f"expected {_typename(types)}, got bool")
        if not isinstance(value, types):
            self.fail(name, f"expected {_typename(types)}, got {_kind(value)} {value!r}")
        return value

    def number(self, name: str, required: bool = False) -> float | None:
        value = self.get(name, (int, float), required)
        return None if value is None else float(value)

    def figure(self, name: str, required: bool = False) -> Figure | None:
        """A reported number, keeping the text it was printed with (``14.0``, or the string ``"14.0"``)."""
        if name not in self.data or self.data[name] is None:
            if required:
                self.fail(name, "required field is missing")
            return None
        try:
            return to_figure(self.data[name])
        except ValueError as exc:
            self.fail(name, str(exc))


_DECIMAL_RE = re.compile(r"^[-+]?(\d[\d_]*)?\.?\d*([eE][-+]?\d+)?$")


def to_figure(value: Any) -> Figure:
    """A card number as a :class:`Figure`: YAML numbers keep their text, ``"14.0"`` is accepted too.

    :raises ValueError: ``value`` is not a finite number (a bool, a word, ``.inf``/``.nan``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected number, got {_kind(value)} {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not text or not _DECIMAL_RE.match(text) or not any(c.isdigit() for c in text):
            raise ValueError(f"expected number, got str {value!r}")
        try:
            number = float(text)
        except ValueError:  # "1__0": the pattern lets it through, float() does not
            raise ValueError(f"expected number, got str {value!r}") from None
    elif isinstance(value, Figure):
        text, number = value.text, float(value)
    else:  # a YAML int, or a float from a parsed mapping a plugin handed over
        text, number = (str(value) if isinstance(value, int) else repr(float(value))), float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {text!r}")
    return Figure(number, text)


def _kind(value: Any) -> str:
    return "float" if isinstance(value, Figure) else type(value).__name__  # a Figure is the YAML float


def _typename(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "number", float: "number", str: "string", list: "list", dict: "mapping"}
    if types == (int,):
        return "integer"
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


_PAPER_FIELDS = {f.name for f in fields(Paper)} - {"key"}
_CARD_FIELDS = {f.name for f in fields(Card)} - {"name", "source", "fields"}  # common to every task
_PREPROCESS_FIELDS = {f.name for f in fields(Preprocess)}
_WEIGHT_FIELDS = {f.name for f in fields(WeightSource)}
_WEIGHT_LOCATION = {"hub", "url", "gdrive", "file", "revision", "sha256", "origin"}
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+-]{0,127}$")  # a table row, metric or protocol setting
MAX_TABLE_DEPTH = 3  # reported.<dataset>.<table>.<row>.<metric>: a table of tables at most
_REPORTED_KNOWN = {"source", "params_m", "gmacs", "throughput", "latency", "notes", "form", "other_weights"}
FORMS = ("deploy", "train")
_OTHER_WEIGHTS_FIELDS = {"claim", "value", "source", "why"}
_SPEED_FIELDS = {"value", "unit", "device", "batch_size", "precision", "notes", "resolution"}


def parse_paper(path: str, key: str, data: Any) -> Paper:
    e = _Entry(path, key, data, _PAPER_FIELDS)
    if e.get("arxiv", (str, int, float)) is not None and not isinstance(e.data["arxiv"], str):
        e.fail("arxiv", "expected a string (quote it: arxiv: \"2306.06189\")")
    return Paper(key=key, **{name: e.get(name, str, required=name in ("title", "venue")) for name in _PAPER_FIELDS})


def _mean_std(e: _Entry, name: str, default: tuple[float, float, float], index: int) -> tuple[float, float, float]:
    value = e.get(name, (str, list))
    if value is None:
        return default
    if isinstance(value, str):
        if value not in MEAN_STD_PRESETS:
            e.fail(name, f"unknown preset {value!r} (known: {', '.join(MEAN_STD_PRESETS)})")
        return MEAN_STD_PRESETS[value][index]
    if len(value) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        e.fail(name, f"expected 3 numbers, got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


_PREPROCESS_VALUES = _PREPROCESS_FIELDS - {"timm", "by_dataset"}  # what timm: and by_dataset: entries may set


def crop_pct_for_resize(size: int, resize_size: int) -> float:
    """The crop_pct for which timm's ``floor(size / crop_pct)`` is exactly ``resize_size``.

    ``size / resize_size`` alone is off by one pixel for some pairs (33 and 54), so nudge it by one ulp.
    """
    crop_pct = size / resize_size
    for _ in range(4):
        scaled = math.floor(size / crop_pct)
        if scaled == resize_size:
            return crop_pct
        crop_pct = math.nextafter(crop_pct, 0.0 if scaled < resize_size else 2.0)
    raise ValueError(f"no crop_pct gives a resize to {resize_size} for size {size}")  # pragma: no cover


def parse_preprocess(e: _Entry, input_size: tuple[int, ...] | None = (3, 224, 224), nested: bool = False) -> Preprocess:
    """The card's ``preprocess:`` mapping (``nested``: a ``timm:``/``by_dataset:`` entry, already merged)."""
    default = Preprocess()
    interpolation = e.get("interpolation", str, default=default.interpolation)
    if interpolation not in INTERPOLATIONS:
        e.fail("interpolation", f"expected one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    crop_mode = e.get("crop_mode", str, default=default.crop_mode)
    if crop_mode not in CROP_MODES:
        e.fail("crop_mode", f"expected one of {', '.join(CROP_MODES)}, got {crop_mode!r}")
    crop_pct = e.number("crop_pct")
    resize_size = e.get("resize_size", int)
    if resize_size is not None:
        if crop_pct is not None:
            e.fail("resize_size", "give crop_pct or resize_size, not both")
        if input_size is None:
            e.fail("resize_size", "needs the card's input_size (the crop size); use crop_pct")
        height, width = input_size[1], input_size[2]
        if height != width:
            e.fail("resize_size", f"needs a square input_size (got {height}x{width}); use crop_pct")
        if resize_size < height:
            e.fail("resize_size", f"expected at least the crop size {height}, got {resize_size}")
        crop_pct = crop_pct_for_resize(height, resize_size)
    crop_pct = default.crop_pct if crop_pct is None else crop_pct
    if not 0 < crop_pct <= 1.0:
        e.fail("crop_pct", f"expected a number in (0, 1], got {crop_pct}")
    source = e.get("source", str)
    if source is not None and not source.strip():
        e.fail("source", "expected a non-empty string")
    timm = by_dataset = None
    if not nested:
        timm = _nested_preprocess(e, "timm", e.data.get("timm"), input_size, inherit_source=False)
        by_dataset = {}
        overrides = e.get("by_dataset", dict, default={})
        for dataset, values in overrides.items():
            if not isinstance(dataset, str) or not NAME_RE.match(dataset):
                e.fail(f"by_dataset.{dataset}", "expected a dataset name (lower case, e.g. imagenet-a)")
            by_dataset[dataset] = _nested_preprocess(e, f"by_dataset.{dataset}", values, input_size, inherit_source=True)
    return Preprocess(
        interpolation=interpolation,
        crop_pct=crop_pct,
        crop_mode=crop_mode,
        mean=_mean_std(e, "mean", default.mean, 0),
        std=_mean_std(e, "std", default.std, 1),
        resize_size=resize_size,
        source=source,
        timm=timm,
        by_dataset=by_dataset or {},
    )


def _nested_preprocess(e: _Entry, name: str, values: Any, input_size: tuple[int, ...] | None,
                       inherit_source: bool) -> Preprocess | None:
    """A partial ``preprocess`` mapping merged over the card's own values, validated as a whole."""
    if values is None:
        return None
    sub = _Entry(e.path, e.entry, values, _PREPROCESS_VALUES, prefix=f"{e.prefix}{name}.")
    if not sub.data:
        sub.fail("", "expected the fields that differ, e.g. {crop_pct: 0.875}")
    base = {k: v for k, v in e.data.items() if k in _PREPROCESS_VALUES and v is not None}
    if not inherit_source:
        base.pop("source", None)
    if "crop_pct" in sub.data:  # one of the two sizes decides; the override's wins
        base.pop("resize_size", None)
    if "resize_size" in sub.data:
        base.pop("crop_pct", None)
    merged = _Entry(e.path, e.entry, {**base, **sub.data}, _PREPROCESS_VALUES, prefix=sub.prefix)
    return parse_preprocess(merged, input_size, nested=True)


def _input_size(e: _Entry, name: str, value: Any) -> tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3 \
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 20 for v in value):
        e.fail(name, f"expected [channels, height, width] as 3 positive integers, got {value!r}")
    return tuple(value)  # type: ignore[return-value]


def _num_classes(e: _Entry, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        e.fail(name, f"expected a positive integer, got {_kind(value)} {value!r}")
    return value


def parse_weight(e: _Entry, card_preprocess: Mapping[str, Any] | None = None,
                 card_input_size: tuple[int, int, int] | None = None) -> WeightSource:
    """One ``weights:`` entry; ``card_preprocess`` is the card's raw ``preprocess:`` mapping, which an
    entry's own ``preprocess:`` is written over (give only the fields that differ)."""
    values: dict[str, Any] = {name: e.get(name, str) for name in _WEIGHT_LOCATION | {"name"}}
    if values["name"] is not None and not NAME_RE.match(values["name"]):
        e.fail("name", f"expected a weights name (lower case letters, digits, '.', '_', '-'), got {values['name']!r}")
    if e.data.get("num_classes") is not None:
        values["num_classes"] = _num_classes(e, "num_classes", e.data["num_classes"])
    if e.data.get("input_size") is not None:
        values["input_size"] = _input_size(e, "input_size", e.data["input_size"])
    if e.data.get("preprocess") is not None:
        own = e.sub("preprocess", _PREPROCESS_FIELDS)
        if not own.data:
            own.fail("", "expected the fields that differ from the card's preprocess, e.g. {crop_pct: 1.0}")
        merged = {**(card_preprocess or {}), **own.data}
        if "crop_pct" in own.data:  # one of the two sizes decides; the entry's wins
            merged.pop("resize_size", None)
        if "resize_size" in own.data:
            merged.pop("crop_pct", None)
        size = values.get("input_size") or card_input_size
        values["preprocess"] = parse_preprocess(
            _Entry(e.path, e.entry, merged, _PREPROCESS_FIELDS, prefix=own.prefix), size)
    where = [k for k in ("hub", "url", "gdrive") if values[k]]
    if len(where) != 1:
        e.fail("", f"expected exactly one of hub, url, gdrive; got {', '.join(where) or 'none'}")
    if (values["hub"] or values["gdrive"]) and not values["file"]:
        e.fail("file", f"required with {where[0]}")
    if values["url"] and not re.match(r"^https?://", values["url"]):
        e.fail("url", f"expected an http(s) URL, got {values['url']!r}")
    if values["sha256"] is not None:
        values["sha256"] = values["sha256"].lower()
        if not SHA256_RE.match(values["sha256"]):
            e.fail("sha256", "expected 64 hex digits")
    return WeightSource(**values)


def _speed(e: _Entry, name: str, data: Any) -> Mapping[str, Any]:
    s = _Entry(e.path, e.entry, data, _SPEED_FIELDS, prefix=f"{e.prefix}{name}.")
    value = s.figure("value", required=True)
    s.get("device", str, required=True)
    s.get("batch_size", int)
    return {**s.data, "value": value}


def parse_reported(e: _Entry) -> Reported:
    source = e.get("source", str, required=True)
    throughput = e.data.get("throughput")
    latency = e.data.get("latency") or []
    if isinstance(latency, Mapping):
        latency = [latency]
    if not isinstance(latency, list):
        e.fail("latency", "expected a mapping or a list of mappings")
    metrics: dict[str, dict[str, Figure]] = {}
    tables: dict[str, dict[str, Any]] = {}
    protocols: dict[str, dict[str, Any]] = {}
    for dataset, values in e.data.items():
        if dataset in _REPORTED_KNOWN:
            continue
        if not isinstance(values, Mapping) or not values:
            e.fail(str(dataset), "expected a mapping of metric -> number (e.g. imagenet: {top1: 84.2})")
        dataset = str(dataset)
        metrics[dataset] = {}
        for metric, value in values.items():
            where = f"{dataset}.{metric}"
            if metric == "protocol":
                protocols[dataset] = _protocol(e, where, value)
            elif isinstance(value, Mapping):
                _check_key(e, where, metric)
                tables.setdefault(dataset, {})[str(metric)] = _table(e, where, value, 1)
            else:
                try:
                    metrics[dataset][str(metric)] = to_figure(value)
                except ValueError as exc:
                    e.fail(where, str(exc))
        if not metrics[dataset] and dataset not in tables:
            e.fail(dataset, "expected at least one figure beside protocol: (e.g. {box_ap: 52.8, protocol: {...}})")
    form = e.get("form", str)
    if form is not None and form not in FORMS:
        e.fail("form", f"expected one of {', '.join(FORMS)}, got {form!r}")
    others = e.get("other_weights", list, default=[])
    other_weights = []
    for i, item in enumerate(others):
        o = _Entry(e.path, e.entry, item, _OTHER_WEIGHTS_FIELDS, prefix=f"{e.prefix}other_weights[{i}].")
        o.get("claim", str, required=True)
        value = o.figure("value", required=True)
        o.get("source", str, required=True)
        o.get("why", str, required=True)
        other_weights.append({**o.data, "value": value})
    return Reported(
        form=form,
        other_weights=tuple(other_weights),
        source=source,
        params_m=e.figure("params_m"),
        gmacs=e.figure("gmacs"),
        throughput=_speed(e, "throughput", throughput) if throughput is not None else None,
        latency=tuple(_speed(e, "latency", item) for item in latency),
        metrics=metrics,
        tables=tables,
        protocols=protocols,
        notes=e.get("notes", str),
    )


def _check_key(e: _Entry, where: str, key: Any) -> None:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        e.fail(where, f"expected a name of letters, digits, '_', '+' or '-' (at most 128), got {_kind(key)} {key!r}")


def _table(e: _Entry, where: str, table: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    """A nested table of figures (``per_category: {bottle: {image_auroc: 98.0}}``), validated."""
    if not table:
        e.fail(where, "expected a table of figures, got an empty mapping")
    if depth > MAX_TABLE_DEPTH:
        e.fail(where, f"tables nest at most {MAX_TABLE_DEPTH} levels under a dataset")
    out: dict[str, Any] = {}
    for key, value in table.items():
        _check_key(e, f"{where}.{key}", key)
        if isinstance(value, Mapping):
            out[key] = _table(e, f"{where}.{key}", value, depth + 1)
        else:
            try:
                out[key] = to_figure(value)
            except ValueError as exc:
                e.fail(f"{where}.{key}", str(exc))
    return out


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int)) or value is None


def _protocol(e: _Entry, where: str, value: Any) -> dict[str, Any]:
    """``protocol:``: scalar settings (or lists of scalars) the figures were measured with, as plain JSON data."""
    if not isinstance(value, Mapping) or not value:
        e.fail(where, f"expected a mapping of settings (e.g. {{conf_thres: 0.03, iou_thres: 0.65}}), "
                      f"got {_kind(value)} {value!r}"[:300])
    out: dict[str, Any] = {}
    for key, setting in value.items():
        _check_key(e, f"{where}.{key}", key)
        items = setting if isinstance(setting, list) else [setting]
        if (isinstance(setting, list) and not setting) or not all(_scalar(item) for item in items):
            e.fail(f"{where}.{key}", f"expected a number, string, bool or a non-empty list of them, "
                                     f"got {_kind(setting)} {setting!r}"[:300])
        plain = [float(item) if isinstance(item, float) else item for item in items]  # a Figure is a float here
        out[key] = plain if isinstance(setting, list) else plain[0]
    return out


def parse_card(path: str, name: str, data: Any, papers: Mapping[str, Paper],
               tasks: Mapping[str, Task] | None = None) -> Card:
    """One model card. ``tasks`` (name -> installed :class:`~zoo.registry.tasks.Task`) lets the card's
    task validate what it owns: its fields, its metric names, its defaults for ``input_size`` and
    ``num_classes``. A card whose task is not in ``tasks`` keeps its other fields as written, unvalidated."""
    e = _Entry(path, name, data, None)
    if not NAME_RE.match(name):
        e.fail("", "model names are lower case letters, digits, '.', '_' and '-'")
    task_name = e.get("task", str, required=True)
    task = (tasks or {}).get(task_name)
    extra = {str(k): v for k, v in e.data.items() if k not in _CARD_FIELDS}
    if task is not None:
        declared = sorted(task.card_fields)
        undeclared = sorted(set(extra) - set(declared))
        if undeclared:
            e.fail(undeclared[0], f"unknown field (allowed: {', '.join(sorted(_CARD_FIELDS))}; "
                                  f"task {task.name!r} fields: {', '.join(declared) or 'none'})")
    paper = e.get("paper", str, required=True)
    if paper not in papers:
        e.fail("paper", f"unknown paper {paper!r} (not in any papers: section)")
    defaults = task.defaults if task is not None else {}
    input_size = num_classes = None
    if e.data.get("input_size") is not None:
        input_size = _input_size(e, "input_size", e.data["input_size"])
    elif defaults.get("input_size") is not None:
        input_size = _input_size(e, "input_size", defaults["input_size"])  # a task's bad default: this card's error
    if e.data.get("num_classes") is not None:
        num_classes = _num_classes(e, "num_classes", e.data["num_classes"])
    elif defaults.get("num_classes") is not None:
        num_classes = _num_classes(e, "num_classes", defaults["num_classes"])
    weights = e.get("weights", list, default=[])
    deviations = e.get("deviations", dict, default={})
    for key, why in deviations.items():
        if not isinstance(why, str):
            e.fail(f"deviations.{key}", "expected a string explaining the difference")
    preprocess = Preprocess()
    raw_preprocess = e.data.get("preprocess")
    if raw_preprocess is not None:
        preprocess = parse_preprocess(e.sub("preprocess", _PREPROCESS_FIELDS), input_size)
    reported = _parse_reported_field(e)
    claimed = set(reported.metrics) if reported is not None else set()
    for dataset in preprocess.by_dataset:
        if dataset not in claimed:  # a typo would silently evaluate with the defaults
            e.fail(f"preprocess.by_dataset.{dataset}",
                   f"no claim on {dataset!r} under reported: (claims: {', '.join(sorted(claimed)) or 'none'})")
    if task is not None and task.metrics and reported is not None:
        known = [m.name for m in task.metrics]
        for claim, _dataset, metric, _value in reported.figures():
            if metric not in known:
                e.fail(f"reported.{claim}", f"unknown metric {metric!r} for task {task.name!r} "
                                            f"(its metrics: {', '.join(known)})")
    card_only = e.get("card_only", str)
    if card_only is not None and not card_only.strip():
        e.fail("card_only", "say why there is no code or weights here (one line), or leave the field out")
    if card_only is not None and weights:
        e.fail("card_only", "a card-only card has no weights: drop `weights:` or `card_only:`")
    sources = tuple(parse_weight(_Entry(path, name, w, _WEIGHT_FIELDS, prefix=f"weights[{i}]."),
                                 raw_preprocess if isinstance(raw_preprocess, Mapping) else None, input_size)
                    for i, w in enumerate(weights))
    _check_weight_names(e, sources)
    card = Card(
        name=name,
        paper=paper,
        task=task_name,
        plugin=e.get("plugin", str, required=True),
        builder=e.get("builder", str, required=card_only is None) or "",
        card_only=card_only,
        input_size=input_size,
        num_classes=num_classes,
        preprocess=preprocess,
        weights=sources,
        weights_note=e.get("weights_note", str),
        weights_key=e.get("weights_key", str),
        patch=e.get("patch", str),
        license=e.get("license", str),
        reported=reported,
        deviations=dict(deviations),
        notes=e.get("notes", str),
        source=path,
        fields=extra,
    )
    if task is not None and task.parse_fields is not None:
        card = replace(card, fields=_task_fields(e, task, extra, card))
    return card


def _check_weight_names(e: _Entry, sources: tuple[WeightSource, ...]) -> None:
    named = [w.name for w in sources if w.name]
    if named and len(named) != len(sources):
        i = next(i for i, w in enumerate(sources) if not w.name)
        e.fail(f"weights[{i}].name", "name every weights entry or none (entries of one name are mirrors)")
    first: dict[str, WeightSource] = {}
    for i, w in enumerate(sources):
        if w.name is None:
            continue
        seen = first.setdefault(w.name, w)
        if (seen.num_classes, seen.input_size, seen.preprocess) != (w.num_classes, w.input_size, w.preprocess):
            e.fail(f"weights[{i}]", f"a mirror of weights {w.name!r} must give the same num_classes, input_size "
                                    "and preprocess as its first entry")


_FIELD_RE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.\[\]-]*): (.+)$", re.DOTALL)


def _task_fields(e: _Entry, task: Task, fields_: dict[str, Any], card: Card) -> Mapping[str, Any]:
    """``task.parse_fields(fields, card)``; its ``ValueError("field: problem")`` is located at that field."""
    try:
        parsed = task.parse_fields(fields_, card)  # type: ignore[misc]
    except ValueError as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        match = _FIELD_RE.match(text)
        if match:
            e.fail(match.group(1), match.group(2))
        e.fail("", f"task {task.name!r} rejected its fields: {text}")
    except (Exception, SystemExit) as exc:  # a bug in the task's plugin: this card's problem, never the catalog's
        e.fail("", f"task {task.name!r} could not check its fields: parse_fields raised "
                   f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    if not isinstance(parsed, Mapping):
        e.fail("", f"task {task.name!r}: parse_fields returned {_kind(parsed)}, expected a mapping")
    return dict(parsed)


def _parse_reported_field(e: _Entry) -> Reported | None:
    data = e.data.get("reported")
    if data is None:
        return None
    extra = set(data) if isinstance(data, Mapping) else set()  # dataset names are free-form keys
    return parse_reported(e.sub("reported", _REPORTED_KNOWN | extra))


@dataclass
class Document:
    """What one card file yields: valid papers and cards, and one error per invalid entry."""

    papers: dict[str, Paper] = field(default_factory=dict)
    cards: dict[str, Card] = field(default_factory=dict)
    errors: list[CardError] = field(default_factory=list)


CACHE_FORMAT = 2  # bump when the cached JSON changes meaning: older caches are then ignored
MAX_CARD_FILE_BYTES = 16 << 20  # the core registry is ~100 KB; a bigger card file is a mistake or an attack
MAX_ALIAS_NODES = 10_000  # nodes that YAML aliases may add by repeating others (billion laughs: 10^9)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML card file; every problem becomes one CardError naming the file.

    Floats and ints keep the text they were written with (:class:`Figure`), so ``14.0`` stays
    one decimal. Aliases that would expand the document by more than ``MAX_ALIAS_NODES`` nodes are
    refused before anything is built. Parsed files are cached as JSON in the zoo home, keyed by
    path, size and mtime: loading JSON takes about 1 ms where the YAML parser takes about 50 ms,
    and `zoo list` reads cards on every call.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise CardError(path, "", "", f"cannot read: {exc.strerror or exc}") from None
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    cached = _cache_file(path)
    try:
        saved = json.loads(cached.read_text(encoding="utf-8"), object_hook=_decode_cached)
        if saved["format"] == CACHE_FORMAT and saved["stamp"] == stamp:
            return saved["data"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass  # no cache yet, an older format or an unreadable one: parse the YAML
    if stat.st_size > MAX_CARD_FILE_BYTES:
        raise CardError(path, "", "", f"card file is {stat.st_size} bytes; the limit is {MAX_CARD_FILE_BYTES}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CardError(path, "", "", f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CardError(path, "", "", f"not UTF-8 at byte {exc.start}") from None
    data = _parse_yaml(path, text)
    _save_cache(cached, stamp, data)
    return data


_LOADER: Any = None


def _loader() -> Any:
    """A safe YAML loader (libyaml's when available) whose numbers remember their text."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class CardLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
            pass

        def construct_float(loader: Any, node: Any) -> Figure:
            return Figure(loader.construct_yaml_float(node), node.value)

        CardLoader.add_constructor("tag:yaml.org,2002:float", construct_float)
        _LOADER = CardLoader
    return _LOADER


def _parse_yaml(path: Path, text: str) -> Any:
    import yaml  # imported on a cache miss only

    loader = _loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(path, node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CardError(path, "", where, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise CardError(path, "", "", "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):  # sequence: nodes; mapping: (key, value) pairs
        return [n for item in value for n in (item if isinstance(item, tuple) else (item,))]
    return []


def _check_aliases(path: Path, root: Any) -> None:
    """Refuse a composed YAML graph whose aliases repeat more than MAX_ALIAS_NODES nodes, or loop.

    An alias is the same node object reached twice; the expanded size is counted per distinct node
    (memoised), so a billion-laughs file is measured in microseconds without expanding anything.
    """
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    distinct = 0
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
            continue
        if key in expanded:
            continue
        if key in open_nodes:
            raise CardError(path, "", "", "YAML alias refers to itself (a recursive alias); refused")
        open_nodes.add(key)
        distinct += 1
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    extra = expanded[id(root)] - distinct
    if extra > MAX_ALIAS_NODES:
        raise CardError(path, "", "", f"YAML aliases would repeat {extra} nodes (limit {MAX_ALIAS_NODES}); refused")


def _cache_file(path: Path) -> Path:
    from zoo.paths import zoo_home

    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    return zoo_home() / "cards-cache" / f"{key}.json"


_MARKERS = ({"__figure__"}, {"__map__"})


def _encode_cached(value: Any) -> Any:
    """Parsed YAML -> JSON-able data; a Figure becomes ``{"__figure__": [value, text]}``."""
    if isinstance(value, Figure):
        return {"__figure__": [float(value), value.text]}
    if isinstance(value, Mapping):
        if set(value) in _MARKERS:  # a real mapping that looks like a marker: store it as pairs
            return {"__map__": [[k, _encode_cached(v)] for k, v in value.items()]}
        return {k: _encode_cached(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_cached(v) for v in value]
    return value


def _decode_cached(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "__figure__" in obj:
        number, text = obj["__figure__"]
        if not isinstance(text, str) or not isinstance(number, (int, float)):
            raise ValueError("malformed figure in the cards cache")
        return Figure(float(number), text)
    if len(obj) == 1 and "__map__" in obj:
        return {k: v for k, v in obj["__map__"]}
    return obj


def _save_cache(cached: Path, stamp: str, data: Any) -> None:
    """Best effort and atomic: a cache that cannot be written only costs speed."""
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": CACHE_FORMAT, "stamp": stamp, "data": _encode_cached(data)}
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(tmp, cached)
    except (OSError, TypeError, ValueError, RecursionError):  # read-only home, or values JSON cannot hold
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def parse_document(path: str, data: Any, known_papers: Mapping[str, Paper] | None = None,
                   tasks: Mapping[str, Task] | None = None) -> Document:
    """Validate one parsed card document (``tasks``: see :func:`parse_card`). Never raises for bad data."""
    doc = Document()
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        doc.errors.append(CardError(path, "", "", f"expected a mapping with papers:/models:, got {type(data).__name__}"))
        return doc
    for section in sorted(set(data) - {"papers", "models"}):
        doc.errors.append(CardError(path, "", section, "unknown section (expected papers: and models:)"))
    for section in ("papers", "models"):
        if not isinstance(data.get(section) or {}, Mapping):
            doc.errors.append(CardError(path, "", section, "expected a mapping of name -> entry"))
            return doc
    for key, entry in (data.get("papers") or {}).items():
        try:
            doc.papers[str(key)] = parse_paper(path, str(key), entry)
        except CardError as exc:
            doc.errors.append(exc)
    papers = {**(known_papers or {}), **doc.papers}
    for name, entry in (data.get("models") or {}).items():
        try:
            doc.cards[str(name)] = parse_card(path, str(name), entry, papers, tasks)
        except CardError as exc:
            doc.errors.append(exc)
    return doc
