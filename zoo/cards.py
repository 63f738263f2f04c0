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
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from zoo.errors import CardError

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
    # how the *weights* expect inputs (timm's validation transforms, number for number)
    interpolation: str = "bicubic"  # one of INTERPOLATIONS
    crop_pct: float = 0.875  # resize short side to floor(size / crop_pct), then center-crop
    crop_mode: str = "center"  # one of CROP_MODES
    mean: tuple[float, float, float] = MEAN_STD_PRESETS["imagenet"][0]  # 3 numbers or a preset name
    std: tuple[float, float, float] = MEAN_STD_PRESETS["imagenet"][1]  # 3 numbers or a preset name


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
    params_m: float | None = None  # parameters, millions
    gmacs: float | None = None  # multiply-adds, G (papers often call them FLOPs)
    throughput: Mapping[str, Any] | None = None  # {value, unit, device, batch_size, precision}
    latency: tuple[Mapping[str, Any], ...] = ()  # [{value (ms), device, batch_size}]
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # {dataset: {top1, ...}}
    notes: str | None = None  # e.g. "distilled", "paper counts FLOPs as 2 x MACs"
    form: str | None = None  # which form params/MACs describe: "deploy" (branches folded) or "train"
    # figures for other weights than the card's (e.g. the 300-epoch row when only 450-epoch weights
    # exist): [{claim, value, source, why}]; shown, never judged against these weights
    other_weights: tuple[Mapping[str, Any], ...] = ()

    def top1(self, dataset: str = "imagenet") -> float | None:
        value = self.metrics.get(dataset, {}).get("top1")
        return float(value) if value is not None else None


@dataclass(frozen=True, kw_only=True)
class Card:
    name: str
    paper: str  # key into papers
    task: str  # "image-classification", ...
    plugin: str  # entry-point name of the plugin that builds it
    builder: str  # plugin-local builder name
    input_size: tuple[int, int, int] = (3, 224, 224)  # [C, H, W] the weights were evaluated at
    num_classes: int = 1000  # outputs of the classifier the weights carry
    preprocess: Preprocess = field(default_factory=Preprocess)  # see `preprocess:` below
    weights: tuple[WeightSource, ...] = ()  # tried in order
    weights_note: str | None = None  # e.g. why there are none
    weights_key: str | None = None  # container holding the evaluated weights, e.g. state_dict_ema
    patch: str | None = None  # model patch applied at build time, "tome:r=13"
    license: str | None = None  # overrides the paper's license for these weights
    reported: Reported | None = None  # the paper's claims, see `reported:` below
    deviations: Mapping[str, str] = field(default_factory=dict)  # claim -> why the code differs
    notes: str | None = None  # e.g. how these weights differ from the paper's row
    source: str = ""  # file the card came from (set by the loader)

    @property
    def has_weights(self) -> bool:
        return bool(self.weights)

    def preprocess_for(self, dataset: str) -> Preprocess:
        """The preprocessing that produced the card's claim on ``dataset`` (default: ``preprocess``)."""
        return self.preprocess


# -- validation -----------------------------------------------------------------------------------


class _Entry:
    """Field readers for one YAML entry, raising CardError located at path/entry/field."""

    def __init__(self, path: str, entry: str, data: Any, allowed: set[str], prefix: str = "") -> None:
        self.path, self.entry, self.prefix = path, entry, prefix
        if not isinstance(data, Mapping):
            self.fail("", f"expected a mapping, got {type(data).__name__}")
        self.data = dict(data)
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            self.fail(unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def fail(self, name: str, problem: str) -> None:
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
            self.fail(name, f"expected {_typename(types)}, got {type(value).__name__} {value!r}")
        return value

    def number(self, name: str, required: bool = False) -> float | None:
        value = self.get(name, (int, float), required)
        return None if value is None else float(value)


def _typename(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "number", float: "number", str: "string", list: "list", dict: "mapping"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


_PAPER_FIELDS = {f.name for f in fields(Paper)} - {"key"}
_CARD_FIELDS = {f.name for f in fields(Card)} - {"name", "source"}
_PREPROCESS_FIELDS = {f.name for f in fields(Preprocess)}
_WEIGHT_FIELDS = {f.name for f in fields(WeightSource)}
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


def parse_preprocess(e: _Entry) -> Preprocess:
    default = Preprocess()
    interpolation = e.get("interpolation", str, default=default.interpolation)
    if interpolation not in INTERPOLATIONS:
        e.fail("interpolation", f"expected one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    crop_mode = e.get("crop_mode", str, default=default.crop_mode)
    if crop_mode not in CROP_MODES:
        e.fail("crop_mode", f"expected one of {', '.join(CROP_MODES)}, got {crop_mode!r}")
    crop_pct = e.number("crop_pct")
    crop_pct = default.crop_pct if crop_pct is None else crop_pct
    if not 0 < crop_pct <= 1.0:
        e.fail("crop_pct", f"expected a number in (0, 1], got {crop_pct}")
    return Preprocess(
        interpolation=interpolation,
        crop_pct=crop_pct,
        crop_mode=crop_mode,
        mean=_mean_std(e, "mean", default.mean, 0),
        std=_mean_std(e, "std", default.std, 1),
    )


def parse_weight(e: _Entry) -> WeightSource:
    values = {name: e.get(name, str) for name in _WEIGHT_FIELDS}
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
    s.number("value", required=True)
    s.get("device", str, required=True)
    s.get("batch_size", int)
    return dict(s.data)


def parse_reported(e: _Entry) -> Reported:
    source = e.get("source", str, required=True)
    throughput = e.data.get("throughput")
    latency = e.data.get("latency") or []
    if isinstance(latency, Mapping):
        latency = [latency]
    if not isinstance(latency, list):
        e.fail("latency", "expected a mapping or a list of mappings")
    metrics: dict[str, dict[str, float]] = {}
    for dataset, values in e.data.items():
        if dataset in _REPORTED_KNOWN:
            continue
        if not isinstance(values, Mapping) or not values:
            e.fail(dataset, "expected a mapping of metric -> number (e.g. imagenet: {top1: 84.2})")
        for metric, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                e.fail(f"{dataset}.{metric}", f"expected a number, got {value!r}")
        metrics[dataset] = {str(k): float(v) for k, v in values.items()}
    form = e.get("form", str)
    if form is not None and form not in FORMS:
        e.fail("form", f"expected one of {', '.join(FORMS)}, got {form!r}")
    others = e.get("other_weights", list, default=[])
    other_weights = []
    for i, item in enumerate(others):
        o = _Entry(e.path, e.entry, item, _OTHER_WEIGHTS_FIELDS, prefix=f"{e.prefix}other_weights[{i}].")
        o.get("claim", str, required=True)
        o.number("value", required=True)
        o.get("source", str, required=True)
        o.get("why", str, required=True)
        other_weights.append(dict(o.data))
    return Reported(
        form=form,
        other_weights=tuple(other_weights),
        source=source,
        params_m=e.number("params_m"),
        gmacs=e.number("gmacs"),
        throughput=_speed(e, "throughput", throughput) if throughput is not None else None,
        latency=tuple(_speed(e, "latency", item) for item in latency),
        metrics=metrics,
        notes=e.get("notes", str),
    )


def parse_card(path: str, name: str, data: Any, papers: Mapping[str, Paper]) -> Card:
    e = _Entry(path, name, data, _CARD_FIELDS)
    if not NAME_RE.match(name):
        e.fail("", "model names are lower case letters, digits, '.', '_' and '-'")
    paper = e.get("paper", str, required=True)
    if paper not in papers:
        e.fail("paper", f"unknown paper {paper!r} (not in any papers: section)")
    input_size = e.get("input_size", list, default=[3, 224, 224])
    if len(input_size) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size):
        e.fail("input_size", f"expected [channels, height, width] as 3 positive integers, got {input_size!r}")
    num_classes = e.get("num_classes", int, default=1000)
    if num_classes <= 0:
        e.fail("num_classes", f"expected a positive integer, got {num_classes}")
    weights = e.get("weights", list, default=[])
    deviations = e.get("deviations", dict, default={})
    for key, why in deviations.items():
        if not isinstance(why, str):
            e.fail(f"deviations.{key}", "expected a string explaining the difference")
    return Card(
        name=name,
        paper=paper,
        task=e.get("task", str, required=True),
        plugin=e.get("plugin", str, required=True),
        builder=e.get("builder", str, required=True),
        input_size=tuple(input_size),  # type: ignore[arg-type]
        num_classes=num_classes,
        preprocess=parse_preprocess(e.sub("preprocess", _PREPROCESS_FIELDS)) if "preprocess" in e.data else Preprocess(),
        weights=tuple(parse_weight(_Entry(path, name, w, _WEIGHT_FIELDS, prefix=f"weights[{i}].")) for i, w in enumerate(weights)),
        weights_note=e.get("weights_note", str),
        weights_key=e.get("weights_key", str),
        patch=e.get("patch", str),
        license=e.get("license", str),
        reported=_parse_reported_field(e),
        deviations=dict(deviations),
        notes=e.get("notes", str),
        source=path,
    )


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


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML card file; a syntax error becomes a CardError naming the file and line.

    Parsed files are cached as JSON in the zoo home, keyed by path, size and mtime: loading JSON takes
    about 1 ms where importing and running the YAML parser takes about 50 ms, and `zoo list` reads
    cards on every call.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise CardError(path, "", "", f"cannot read: {exc.strerror or exc}") from None
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    cached = _cache_file(path)
    try:
        saved = json.loads(cached.read_text(encoding="utf-8"))
        if saved["stamp"] == stamp:
            return saved["data"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache yet, or an unreadable one: parse the YAML
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError(path, "", "", f"cannot read: {exc.strerror or exc}") from None
    data = _parse_yaml(path, text)
    _save_cache(cached, stamp, data)
    return data


def _parse_yaml(path: Path, text: str) -> Any:
    import yaml  # imported on a cache miss only

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CardError(path, "", where, f"invalid YAML: {problem}") from None


def _cache_file(path: Path) -> Path:
    from zoo.paths import zoo_home

    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    return zoo_home() / "cards-cache" / f"{key}.json"


def _save_cache(cached: Path, stamp: str, data: Any) -> None:
    """Best effort and atomic: a cache that cannot be written only costs speed."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"stamp": stamp, "data": data}), encoding="utf-8")
        os.replace(tmp, cached)
    except (OSError, TypeError, ValueError):  # read-only home, or YAML values JSON cannot hold
        pass


def parse_document(path: str, data: Any, known_papers: Mapping[str, Paper] | None = None) -> Document:
    """Validate one parsed card document. Never raises for bad data."""
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
            doc.cards[str(name)] = parse_card(path, str(name), entry, papers)
        except CardError as exc:
            doc.errors.append(exc)
    return doc
