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
- ``not installed`` / ``error``: the card's plugin is missing, or building the model failed.

Only ``off`` and ``error`` fail (``zoo verify --strict``).

Tolerances, at the precision the source printed (:func:`zoo.registry.cards.printed_decimals` reads the
card's text: ``14.0`` is printed to 0.1 M, ``14`` to 1 M): params to that precision, rounded or
truncated (``4.7`` holds for 4.65 to 4.8 M); MACs within 5 % or to that precision; accuracy within
0.1 points (or half the printed unit, for a figure printed coarser) of the latest eval result in
``$ZOO_HOME/results.jsonl`` that can test it; throughput and latency within 10 % (and only on the
paper's hardware class).

An eval run tests an accuracy claim only when it ran the card's own weights (origin ``official``,
a sha256 the card states, or a hand-added file when the card has no scriptable source), in fp32,
on the whole dataset, unpatched, with every image scored and the preprocessing the card gives for
that dataset (issue #10, items 2, 16, 18, 19).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import NotInstalled, UserError, ZooError
from zoo.registry import lookup
from zoo.registry.cards import Card, printed_decimals

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
    from zoo.paths import zoo_home

    return zoo_home() / "results.jsonl"


@dataclass
class Runs:
    """The recorded eval runs by (model, dataset), oldest first, and the unreadable lines skipped."""

    by_key: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    skipped: int = 0
    path: Path | None = None


def read_runs(path: str | Path | None = None) -> Runs:
    """Every readable run of the results file (:func:`zoo.eval.evaluation.read_results`, the one reader),
    keyed by the model's canonical (lower-case) name and the dataset. Metrics nested under
    ``metrics`` are lifted to the top level."""
    from zoo.eval.evaluation import read_results

    path = Path(path) if path is not None else results_path()
    rows, skipped = read_results(path=path)
    runs = Runs(skipped=skipped, path=path)
    for row in rows:
        if isinstance(row.get("metrics"), dict):
            row = {**row, **row["metrics"]}
        runs.by_key.setdefault((row["model"].lower(), row["dataset"]), []).append(row)
    return runs


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


_PREPROCESS_KEYS = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")


def _preprocess_problem(card: Card, dataset: str, used: Any) -> str | None:
    if used is None:  # a task that records no preprocessing: nothing to compare
        return None
    from zoo.tasks.classification.data.transforms import EvalPreprocess

    if not isinstance(used, Mapping):
        return "preprocessing not readable in the record"
    claim = EvalPreprocess.from_card(card, dataset).as_dict()
    for key in _PREPROCESS_KEYS:
        mine, theirs = claim[key], used.get(key)
        if isinstance(mine, tuple):
            mine = list(mine)
        if mine != theirs:
            return f"preprocessing {key} {theirs}, the claim's is {mine}"
    return None


def why_not_evidence(row: Mapping[str, Any], card: Card, dataset: str) -> str | None:
    """None if this eval run can confirm or refute the card's accuracy claim on ``dataset``, else why not.

    Not with random weights, weights that are not the card's, a run recorded without the weights'
    provenance (older zoo), autocast (only fp32 runs, as the papers and timm's validate.py), a
    --limit subset, a patch (ToMe trades accuracy for speed), images left out of the denominator,
    part of ImageNet-C, or other preprocessing than the card gives for ``dataset``.
    """
    if row.get("pretrained") is False and not row.get("checkpoint"):
        return "random weights (--no-pretrained)"
    if row.get("limit"):
        return f"a --limit {row['limit']} subset"
    if row.get("patch"):
        return f"a patched model ({row['patch']})"
    if row.get("skipped_bad_images"):
        return "unreadable images left out of the score"
    options = row.get("dataset_options")
    if isinstance(options, Mapping) and any(str(v) != "all" for v in options.values()):
        return "part of the dataset (" + ", ".join(f"{k} {v}" for k, v in options.items()) + ")"
    weights = row.get("weights")
    if not isinstance(weights, Mapping):
        return "no record of its weights (an older zoo): run zoo eval again"
    problem = _weights_problem(card, weights)
    if problem:
        return problem
    precision = row.get("precision")
    if precision != "fp32":
        return f"{precision or 'unknown'} precision (only fp32 runs judge a claim: zoo eval without --amp)"
    return _preprocess_problem(card, dataset, row.get("preprocess"))


def evidence(card: Card, dataset: str, rows: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any] | None, list[str]]:
    """The latest run that can test the card's claim on ``dataset``, and why each later one cannot."""
    reasons: list[str] = []
    for row in reversed(rows):
        why = why_not_evidence(row, card, dataset)
        if why is None:
            return row, reasons
        if why not in reasons:
            reasons.append(why)
    return None, reasons


def _runs_by_key(runs: Runs | Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] | None,
                 ) -> Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]:
    if runs is None:
        runs = read_runs()
    return runs.by_key if isinstance(runs, Runs) else runs


def load_results(path: str | Path | None = None) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The latest run per (model, dataset) that can test the card's claim there (plot, compare).

    Runs of models with no card are left out: without the card their weights cannot be judged.
    """
    cat = lookup.catalog()
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for (model, dataset), rows in read_runs(path).by_key.items():
        try:
            card = cat.get(model)
        except ZooError:
            continue
        row, _ = evidence(card, dataset, rows)
        if row is not None:
            latest[(card.name, dataset)] = row
    return latest


def metric_tolerance(reported: float) -> float:
    """0.1 points, or half the printed unit for a figure printed coarser (``81`` -> 0.5)."""
    return max(METRIC_TOLERANCE_POINTS, 10.0 ** -printed_decimals(reported) / 2)


def check_metrics(card: Card, runs: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]) -> list[Claim]:
    out = []
    for dataset, metrics in (card.reported.metrics if card.reported else {}).items():
        rows = runs.get((card.name, dataset), ())
        for metric, reported in metrics.items():
            name = f"{dataset}.{metric}"
            usable = [r for r in rows if isinstance(r.get(metric), (int, float)) and not isinstance(r.get(metric), bool)]
            row, reasons = evidence(card, dataset, usable)
            if row is None:
                if reasons:
                    note = f"runs exist only with {'; '.join(reasons)}"
                    out.append(Claim(name, reported, None, "%", "not judged", note=note))
                else:
                    note = f"no eval result yet: zoo eval {card.name} --dataset {dataset}"
                    out.append(Claim(name, reported, None, "%", "not measured", note=note))
                continue
            value = float(row[metric])
            tolerance = metric_tolerance(reported)
            claim = Claim(name, reported, round(value, 3), "%", "", f"±{tolerance:g} points", _pct(value, reported))
            out.append(_judge(card, claim, abs(value - reported) <= tolerance + 1e-9))
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
    runs: Runs | Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] | None = None,
    *,
    here: str | None = None,
    speed: bool = False,
    meta: bool = True,
) -> dict[str, Any]:
    """One card's report: ``{model, paper, plugin, status, claims: [...], counted_on}``.

    ``runs``: the recorded eval runs (:func:`read_runs`; default: the results file).
    """
    from zoo.measure.bench import static_counts

    by_key = _runs_by_key(runs)
    report: dict[str, Any] = {"model": card.name, "paper": card.paper, "plugin": card.plugin,
                              "source": card.reported.source if card.reported else None}
    claims: list[Claim] = []
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
    claims += check_metrics(card, by_key)
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
