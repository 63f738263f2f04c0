"""Every claim of a card beside its measurement, and whether it holds.

Statuses of one claim:

- ``holds``: the measurement is within the stated tolerance of the claim;
- ``off``: it is not (``diff_pct`` says by how much);
- ``explained``: it is off, and the card's ``deviations`` says why (e.g. the paper counts differently);
- ``not measurable``: the claim cannot be checked here (hardware differs from the paper's, ...);
- ``not measured``: it could be, but has not been (no eval result yet);
- ``not judged``: eval runs exist, but none can test the claim; the note says why (a bf16 run,
  weights that are not the card's, a ``--limit`` subset, a run recorded without its weights'
  provenance, ...; see :func:`why_not_evidence`);
- ``not testable``: a figure the card quotes for other weights than its own
  (``reported.other_weights``, e.g. a 300-epoch row when only 450-epoch weights were released);
  shown with the card's ``why`` as the note, never judged, even when a run exists;
- ``unreported``: the paper gives no figure; the measurement is shown alone;
- ``not installed`` / ``error``: the card's plugin (or task) is missing, building the model failed,
  the card reports a metric its task does not declare (a typo), or the task's protocol failed.

Only ``off`` and ``error`` fail (``zoo verify --strict``).

Tolerances, at the precision the source printed (:func:`zoo.registry.cards.printed_decimals` reads the
card's text: ``14.0`` is printed to 0.1 M, ``14`` to 1 M): params to that precision, rounded or
truncated (``4.7`` holds for 4.65 to 4.8 M); MACs within 5 % or to that precision; every reported
metric within its task's :class:`~zoo.registry.tasks.Metric` tolerance (in the metric's unit, or a
percent of the figure when ``relative``; classification: 0.1 points), widened to half the printed
unit for a figure printed coarser, of the latest eval result in ``$ZOO_HOME/results.jsonl`` that can
test it; throughput and latency within 10 % (and only on the paper's hardware class).

A run tests a claim only when it measured the same thing: runs are grouped by
:attr:`Result.key <zoo.records.result.Result.key>` (model, dataset, protocol), and the claim's
protocol is the task's ``protocol(card, dataset, None)`` (classification: the card's preprocessing
for that dataset and, for ImageNet-C, every corruption at every severity). It must also have run the
card's own weights (origin ``official``, a sha256 the card states, or a hand-added file when the card
has no scriptable source) at the claim's precision (fp32 unless the card says otherwise), on the
whole dataset, unpatched, with every image scored (issue #10, items 2, 16, 18, 19; issue #11).
This module never imports a task: it reaches them through ``zoo_tasks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import NotInstalled, PluginError, UserError, ZooError, first_line
from zoo.records.result import Result
from zoo.registry import lookup
from zoo.registry.cards import Card, printed_decimals
from zoo.registry.tasks import Metric, Task

MACS_TOLERANCE_PCT = 5.0
METRIC_TOLERANCE_POINTS = 0.1
SPEED_TOLERANCE_PCT = 10.0
FAILING = ("off", "error")  # never "not judged" or "not testable": those are not measurements

# claim -> keys a card's ``deviations`` may use for it
_DEVIATION_KEYS = {
    "params_m": ("params_m", "params"),
    "gmacs": ("gmacs", "macs", "flops", "gflops"),
    "throughput": ("throughput",),
    "latency": ("latency",),
}


@dataclass
class Claim:
    claim: str  # params_m, gmacs, imagenet.top1, throughput, latency@<device>
    reported: float | None
    measured: float | None
    unit: str
    status: str
    tolerance: str = ""
    diff_pct: float | None = None  # (measured - reported) / reported * 100
    note: str = ""
    direction: str | None = None  # a metric's better direction (higher/lower): shown, never used to judge

    @property
    def failed(self) -> bool:
        return self.status in FAILING


def within_precision(measured: float, reported: float) -> bool:
    """Whether ``reported`` is ``measured`` printed at the source's precision, rounded or truncated
    (papers do both: Twins-L's 99.27 M is printed 99.2, ConvNeXt-T's 28.59 M is printed 28).
    The precision is the printed one (:func:`zoo.registry.cards.printed_decimals`): ``Figure(14.0, "14.0")``
    is 0.1, so 14.66 is not 14.0; ``Figure(14.0, "14")`` is 1, so 14.66 is 14."""
    unit = 10.0 ** -printed_decimals(reported)
    return reported - unit / 2 - 1e-9 <= measured < reported + unit + 1e-9


def _sig(value: float) -> float:
    """Six significant digits: enough for tiny test nets and for 1,360 M-parameter models alike."""
    return float(f"{value:.6g}")


def _pct(measured: float, reported: float) -> float | None:
    return None if reported == 0 else round(100 * (measured - reported) / reported, 2)


def _deviation(card: Card, claim: str) -> str | None:
    keys = _DEVIATION_KEYS.get(claim.split("@")[0], (claim, claim.split(".")[-1]))
    for key in keys:
        if key in card.deviations:
            return card.deviations[key]
    return None


def _judge(card: Card, claim: Claim, holds: bool) -> Claim:
    why = _deviation(card, claim.claim)
    if holds:
        claim.status = "holds"
    elif why:
        claim.status, claim.note = "explained", why
    else:
        claim.status = "off"
    return claim


def check_params(card: Card, params: int) -> Claim:
    measured = params / 1e6
    reported = card.reported.params_m if card.reported else None
    if reported is None:
        return Claim("params_m", None, _sig(measured), "M", "unreported")
    unit = 10.0 ** -printed_decimals(reported)
    claim = Claim("params_m", reported, _sig(measured), "M", "", f"table precision ({unit:g} M, rounded or cut)",
                  _pct(measured, reported))
    return _judge(card, claim, within_precision(measured, reported))


def check_macs(card: Card, macs: int) -> Claim:
    measured = macs / 1e9
    reported = card.reported.gmacs if card.reported else None
    if reported is None:
        return Claim("gmacs", None, _sig(measured), "G", "unreported")
    diff = _pct(measured, reported)
    unit = 10.0 ** -printed_decimals(reported)
    claim = Claim("gmacs", reported, _sig(measured), "G", "",
                  f"±{MACS_TOLERANCE_PCT:g}% or table precision ({unit:g} G)", diff)
    holds = (diff is not None and abs(diff) <= MACS_TOLERANCE_PCT) or within_precision(measured, reported)
    return _judge(card, claim, holds)


def results_path() -> Path:
    from zoo.records import results_path as path

    return path()


@dataclass
class Runs:
    """The recorded eval runs (oldest first), grouped by :attr:`Result.key <zoo.records.result.Result.key>`
    = (model in lower case, dataset, protocol key), and the unreadable lines skipped."""

    by_key: dict[tuple[str, str, str], list[Result]] = field(default_factory=dict)
    skipped: int = 0
    path: Path | None = None
    rows: list[Result] = field(default_factory=list)  #: every run, in file order

    @classmethod
    def of(cls, results: Iterable[Result], skipped: int = 0, path: Path | None = None) -> Runs:
        runs = cls(skipped=skipped, path=path)
        for result in results:
            runs.rows.append(result)
            runs.by_key.setdefault(result.key, []).append(result)
        return runs

    def on(self, model: str, dataset: str) -> list[Result]:
        """Every run of ``model`` (any case) on ``dataset``, whatever its protocol, oldest first."""
        return [r for r in self.rows if r.model.lower() == model.lower() and r.dataset == dataset]


def read_runs(path: str | Path | None = None) -> Runs:
    """Every readable eval run of the results file, read by :func:`zoo.records.read_results` (the one reader)."""
    from zoo.records import read_results

    path = Path(path) if path is not None else results_path()
    rows, skipped = read_results(path=path)
    return Runs.of(rows, skipped, path)


def _short(sha: Any) -> str:
    return f"sha256 {sha[:12]}…" if isinstance(sha, str) and sha else "sha256 unknown"


def _weights_problem(card: Card, weights: Mapping[str, Any]) -> str | None:
    """None when ``weights`` (a run's provenance) are the card's own weights, else what they are."""
    origin, sha = weights.get("origin"), weights.get("sha256")
    known = {s.sha256 for s in card.weights if s.sha256}
    if isinstance(sha, str) and sha in known:
        return None
    if origin == "official":
        if known and all(s.sha256 for s in card.weights):  # the card names every file: this is another one
            return f"weights whose {_short(sha)} is none of the card's"
        return None
    if origin == "manual":
        if not card.weights:  # the card's only source is a manual one (a Drive folder, box.com)
            return None
        return f"hand-added weights ({_short(sha)}), not from the card's source"
    if origin == "checkpoint":
        return f"other weights (--checkpoint {weights.get('source')}, {_short(sha)})"
    if origin == "random":
        return "random weights"
    return f"weights of unknown origin {origin!r}"


# -- the claim's protocol and precision ---------------------------------------------------------------------

_LABELS = {"preprocess": "preprocessing"}  # how a protocol key reads in a note


def _show(value: Any) -> str:
    return str(value)


def protocol_problem(run: Mapping[str, Any], claim: Mapping[str, Any], label: str = "") -> str | None:
    """None when the protocols are equal, else the first setting that differs, named as a note reads:
    ``corruption fog, the claim's is all``, ``preprocessing crop_pct 0.95, the claim's is 0.875``.
    Keys are taken in the claim's order, then the run's own extra ones."""
    for key in [*claim, *(k for k in run if k not in claim)]:
        name = f"{label}{_LABELS.get(str(key), key)}"
        if key not in run:
            return f"{name} not recorded, the claim's is {_show(claim[key])}"
        if key not in claim:
            return f"{name} {_show(run[key])}, the claim has none"
        mine, theirs = claim[key], run[key]
        if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
            problem = protocol_problem(theirs, mine, f"{name} ")
            if problem:
                return problem
        elif mine != theirs:
            return f"{name} {_show(theirs)}, the claim's is {_show(mine)}"
    return None


def claim_precision(card: Card) -> str:
    """The precision a card's figures were measured at: fp32 unless its ``reported`` block says otherwise."""
    precision = getattr(card.reported, "precision", None) if card.reported else None
    return str(precision) if precision else "fp32"


def task_of(card: Card) -> tuple[str, Task] | None:
    """(plugin, Task) of the card's task, or None when no installed plugin declares it."""
    return lookup.tasks().get(card.task)


def claim_protocol(card: Card, dataset: str, task: tuple[str, Task] | None = None,
                   table: str | None = None) -> dict[str, Any]:
    """The protocol the card's figures on ``dataset`` were measured with: the task's
    ``protocol(card, dataset, None)`` ({} for a task without one), as plain JSON data; for the figures
    of a reported ``table`` the task names in ``claim_options``, with those options (``--ms``).

    :raises ZooError: the task is not installed, or its protocol cannot be imported, raises or is no mapping.
    """
    import json

    from zoo.registry.plugins import resolve

    entry = task if task is not None else task_of(card)
    if entry is None:
        raise NotInstalled(f"no installed plugin declares task {card.task!r}")
    plugin, spec = entry
    if not spec.protocol:
        return {}
    fn = resolve(spec.protocol, plugin)
    try:
        options = spec.make_options(spec.claim_options[table]) if table is not None else None
        protocol = fn(card, dataset, options)
    except Exception as exc:  # a plugin's bug: one line, charged to the plugin
        raise PluginError(plugin, f"protocol of task {spec.name!r} failed for {card.name} on {dataset}: "
                                  f"{type(exc).__name__}: {first_line(exc)}") from None
    if not isinstance(protocol, Mapping):
        raise PluginError(plugin, f"protocol of task {spec.name!r} returned {type(protocol).__name__}, not a mapping")
    try:
        return json.loads(json.dumps(protocol))  # tuples as lists: as a record reads back
    except (TypeError, ValueError) as exc:
        raise PluginError(plugin, f"protocol of task {spec.name!r} is not JSON data: {exc}") from None


def why_not_evidence(run: Result, card: Card, dataset: str, protocol: Mapping[str, Any] | None = None,
                     precision: str = "fp32") -> str | None:
    """None if this eval run can confirm or refute the card's claim on ``dataset``, else why not.

    Not with random weights, weights that are not the card's, a run recorded without the weights'
    provenance (older zoo), another precision than the claim's (fp32 unless the card says: the
    papers and timm's validate.py), a --limit subset, a patch (ToMe trades accuracy for speed),
    images left out of the denominator, or another protocol than the claim's (``protocol``, default
    :func:`claim_protocol`): other preprocessing, part of ImageNet-C, other test-time settings.
    """
    if run.pretrained is False and not run.checkpoint:
        return "random weights (--no-pretrained)"
    if run.limit:
        return f"a --limit {run.limit} subset"
    if run.patch:
        return f"a patched model ({run.patch})"
    if run.skipped_bad_images:
        return "unreadable images left out of the score"
    if not isinstance(run.weights, Mapping):
        return "no record of its weights (an older zoo): run zoo eval again"
    problem = _weights_problem(card, run.weights)
    if problem:
        return problem
    if run.precision != precision:
        shown = run.precision if run.precision != "unknown" else "unknown"
        if precision == "fp32":
            return f"{shown} precision (only fp32 runs judge a claim: zoo eval without --amp)"
        return f"{shown} precision (the claim was measured at {precision})"
    return protocol_problem(run.protocol, protocol if protocol is not None else claim_protocol(card, dataset))


def evidence(card: Card, dataset: str, runs: Sequence[Result], protocol: Mapping[str, Any] | None = None,
             precision: str | None = None) -> tuple[Result | None, list[str]]:
    """The latest run that can test the card's claim on ``dataset``, and why each later one cannot."""
    protocol = protocol if protocol is not None else claim_protocol(card, dataset)
    precision = precision or claim_precision(card)
    reasons: list[str] = []
    for run in reversed(runs):
        why = why_not_evidence(run, card, dataset, protocol, precision)
        if why is None:
            return run, reasons
        if why not in reasons:
            reasons.append(why)
    return None, reasons


def load_results(path: str | Path | None = None) -> dict[tuple[str, str], Result]:
    """The latest run per (card name, dataset) that can test the card's claims there (plot, compare).

    Runs of models with no card are left out: without the card their weights cannot be judged; so
    are runs of a card whose task's protocol cannot be computed.
    """
    cat = lookup.catalog()
    runs = read_runs(path)
    latest: dict[tuple[str, str], Result] = {}
    for model, dataset in dict.fromkeys((r.model.lower(), r.dataset) for r in runs.rows):
        try:
            card = cat.get(model)
            row, _ = evidence(card, dataset, runs.on(model, dataset))
        except ZooError:
            continue
        if row is not None:
            latest[(card.name, dataset)] = row
    return latest


def metric_tolerance(reported: float, metric: Metric | None = None) -> float:
    """The metric's tolerance in its unit (``relative``: that percent of ``reported``), widened to half
    the printed unit for a figure printed coarser (``81`` -> 0.5). Default metric: 0.1 points."""
    half_unit = 10.0 ** -printed_decimals(reported) / 2
    if metric is None:
        return max(METRIC_TOLERANCE_POINTS, half_unit)
    base = metric.tolerance * abs(float(reported)) / 100 if metric.relative else metric.tolerance
    return max(base, half_unit)


def _tolerance_text(tolerance: float, metric: Metric) -> str:
    unit = "points" if metric.unit == "%" else metric.unit
    if metric.relative:
        return f"±{metric.tolerance:g}% (±{tolerance:.4g} {unit})".rstrip()
    return f"±{tolerance:g} {unit}".rstrip()


def _value(run: Result, claim: str, dataset: str, metric: str) -> float | None:
    """The run's figure for ``claim``: ``metrics[metric]``, or for a nested claim
    (``mvtec-ad.per_category.bottle.image_auroc``) the same path in its metrics or details."""
    path = claim[len(dataset) + 1:] if claim.startswith(dataset + ".") else metric
    value: Any = run.metrics.get(path)
    if value is None and path != metric:
        value = run.details
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def check_metrics(card: Card, runs: Runs | None = None, task: tuple[str, Task] | None = None) -> list[Claim]:
    """Every reported figure of the card beside the latest run that can test it, judged with the
    task's metric (its unit and tolerance) at the claim's protocol and precision."""
    runs = runs if runs is not None else read_runs()
    figures = card.reported.figures() if card.reported else []
    if not figures:
        return []
    entry = task if task is not None else task_of(card)
    out: list[Claim] = []
    protocols: dict[tuple[str, str | None], dict[str, Any] | ZooError] = {}
    precision = claim_precision(card)
    for name, dataset, metric_name, reported in figures:
        if entry is None:
            out.append(Claim(name, reported, None, "", "not installed",
                             note=f"no installed plugin declares task {card.task!r}"))
            continue
        spec = entry[1]
        metric = spec.metric(metric_name) if spec.metrics else Metric(name=metric_name)  # zoo 0.1 bare task
        if metric is None:
            known = ", ".join(m.name for m in spec.metrics)
            out.append(Claim(name, reported, None, "", "error",
                             note=f"task {spec.name} has no metric {metric_name!r} (its metrics: {known})"))
            continue
        key = (dataset, spec.claim_table(name, dataset))  # an ms_flip figure is judged by --ms runs
        if key not in protocols:
            try:
                protocols[key] = claim_protocol(card, dataset, entry, key[1])
            except ZooError as exc:
                protocols[key] = exc
        protocol = protocols[key]
        if isinstance(protocol, ZooError):
            out.append(Claim(name, reported, None, metric.unit, "error", note=first_line(protocol)))
            continue
        usable = [r for r in runs.on(card.name, dataset) if _value(r, name, dataset, metric_name) is not None]
        run, reasons = evidence(card, dataset, usable, protocol, precision)
        if run is None:
            if reasons:
                note = f"runs exist only with {'; '.join(reasons)}"
                out.append(Claim(name, reported, None, metric.unit, "not judged", note=note))
            else:
                note = f"no eval result yet: zoo eval {card.name} --dataset {dataset}"
                out.append(Claim(name, reported, None, metric.unit, "not measured", note=note))
            continue
        value = _value(run, name, dataset, metric_name)
        assert value is not None
        tolerance = metric_tolerance(reported, metric)
        claim = Claim(name, reported, round(value, 3), metric.unit, "", _tolerance_text(tolerance, metric),
                      _pct(value, reported), direction=metric.direction)
        out.append(_judge(card, claim, abs(value - float(reported)) <= tolerance + 1e-9))
    return out


_UNITS = {"params_m": "M", "gmacs": "G", "throughput": "img/s", "latency": "ms"}


def check_other_weights(card: Card) -> list[Claim]:
    """Figures the card quotes for other weights than its own: shown, never judged."""
    out = []
    for item in card.reported.other_weights if card.reported else ():
        claim = str(item["claim"])
        unit = _UNITS.get(claim.split("@")[0].split(".")[0], "%")
        out.append(Claim(claim, item["value"], None, unit, "not testable", note=str(item.get("why") or "")))
    return out


def check_speed(card: Card, here: str, measure: Any | None = None) -> list[Claim]:
    """Throughput and latency claims: measurable only on the paper's hardware class.

    ``measure(kind, spec)`` returns the measured value (img/s or ms) when called; it is only called
    for claims whose hardware matches ``here``.
    """
    from zoo.measure.bench import same_hardware

    specs: list[tuple[str, Mapping[str, Any], str]] = []
    if card.reported and card.reported.throughput:
        specs.append(("throughput", card.reported.throughput, "img/s"))
    for item in card.reported.latency if card.reported else ():
        specs.append((f"latency@{item['device']}", item, "ms"))
    out = []
    for name, spec, unit in specs:
        reported = spec["value"]  # a Figure: shown as printed, compared as the float it is
        device = str(spec["device"])
        if not same_hardware(device, here):
            out.append(Claim(name, reported, None, unit, "not measurable",
                             note=f"not measurable here: paper used {device}, this is {here}"))
            continue
        if measure is None:
            out.append(Claim(name, reported, None, unit, "not measured",
                             note=f"same hardware class ({device}): run with --speed to measure"))
            continue
        value = float(measure(name.split("@")[0], spec))
        diff = _pct(value, reported)
        claim = Claim(name, reported, round(value, 2), unit, "", f"±{SPEED_TOLERANCE_PCT:g}%", diff)
        out.append(_judge(card, claim, diff is not None and abs(diff) <= SPEED_TOLERANCE_PCT))
    return out


def _speed_measurer(card: Card) -> Any:
    from zoo.measure import bench

    def measure(kind: str, spec: Mapping[str, Any]) -> float:
        batch = int(spec.get("batch_size") or (1 if kind == "latency" else bench.DEFAULT_BATCH_SIZE))
        amp = {"fp16": "fp16", "float16": "fp16", "amp": "fp16", "bf16": "bf16"}.get(str(spec.get("precision", "")))
        if kind == "throughput":
            return bench.benchmark(card.name, batch_size=batch, amp=amp, latency=False)["throughput_img_s"]
        result = bench.benchmark(card.name, batch_size=batch, amp=amp, throughput=False, latency=True)
        return result["latency_ms"]["median"]

    return measure


def this_hardware() -> str:
    import torch

    from zoo.measure.bench import cpu_name

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu_name()


def verify_card(
    card: Card,
    runs: Runs | None = None,
    *,
    here: str | None = None,
    speed: bool = False,
    meta: bool = True,
) -> dict[str, Any]:
    """One card's report: ``{model, paper, plugin, status, claims: [...], counted_on}``.

    ``runs``: the recorded eval runs (:func:`read_runs`; default: the results file).
    """
    from zoo.measure.bench import static_counts

    runs = read_runs() if runs is None else runs
    report: dict[str, Any] = {"model": card.name, "paper": card.paper, "plugin": card.plugin,
                              "source": card.reported.source if card.reported else None}
    claims: list[Claim] = []
    if card.card_only:  # nothing to build or evaluate: every claim is cited, none can be measured here
        report.update(status="card-only", note=card.card_only)
        figures = [(name, value) for name, _ds, _metric, value in card.reported.figures()] if card.reported else []
        for claim in ("params_m", "gmacs"):
            value = getattr(card.reported, claim, None) if card.reported else None
            if value is not None:
                figures.insert(0, (claim, value))
        claims = [Claim(name, value, None, "", "card-only") for name, value in figures]
        report["claims"] = [asdict(c) for c in claims]
        report["failed"] = []
        return report
    try:
        counts = static_counts(card.name, meta=meta)
    except NotInstalled as exc:
        report.update(status="not installed", note=str(exc))
        counts = None
        for claim in ("params_m", "gmacs"):
            value = getattr(card.reported, claim, None) if card.reported else None
            claims.append(Claim(claim, value, None, "M" if claim == "params_m" else "G", "not installed"))
    except ZooError as exc:
        report.update(status="error", note=str(exc))
        counts = None
        claims.append(Claim("build", None, None, "", "error", note=str(exc)))
    except Exception as exc:  # a plugin's bug must not hide the other cards' reports
        report.update(status="error", note=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        counts = None
        claims.append(Claim("build", None, None, "", "error", note=report["note"]))
    if counts is not None:
        report.update(status="checked", counted_on=counts["counted_on"])
        claims += [check_params(card, counts["params"]), check_macs(card, counts["macs"])]
    claims += check_metrics(card, runs)
    claims += check_other_weights(card)
    if counts is not None:
        claims += check_speed(card, here or this_hardware(), _speed_measurer(card) if speed else None)
    else:
        claims += [Claim(c.claim, c.reported, None, c.unit, report["status"]) for c in check_speed(card, "-")]
    report["claims"] = [asdict(c) for c in claims]
    report["failed"] = [c.claim for c in claims if c.failed]
    return report


def verify(
    names: Iterable[str] | None = None,
    *,
    speed: bool = False,
    results_file: str | Path | None = None,
    runs: Runs | None = None,
) -> list[dict[str, Any]]:
    """Reports for the named cards, or for every card when ``names`` is empty/None.

    ``runs``: already read eval runs (:func:`read_runs`), else read from ``results_file``.
    """
    cat = lookup.catalog()
    names = list(names or [])
    cards = [cat.get(name) for name in names] if names else cat.select()
    if not cards:
        raise UserError("no cards to verify (the catalog is empty)")
    runs = read_runs(results_file) if runs is None else runs
    here = this_hardware()
    return [verify_card(card, runs, here=here, speed=speed) for card in cards]


def failures(reports: Iterable[Mapping[str, Any]]) -> list[str]:
    """``model: claim`` for every measurable claim that failed."""
    return [f"{r['model']}: {claim}" for r in reports for claim in r["failed"]]
