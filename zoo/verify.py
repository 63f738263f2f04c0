"""Every claim of a card beside its measurement, and whether it holds.

Statuses of one claim:

- ``holds``: the measurement is within the stated tolerance of the claim;
- ``off``: it is not (``diff_pct`` says by how much);
- ``explained``: it is off, and the card's ``deviations`` says why (e.g. the paper counts differently);
- ``not measurable``: the claim cannot be checked here (hardware differs from the paper's, ...);
- ``not measured``: it could be, but has not been (no eval result yet);
- ``unreported``: the paper gives no figure; the measurement is shown alone;
- ``not installed`` / ``error``: the card's plugin is missing, or building the model failed.

Tolerances: params to the precision the table prints (rounded or truncated: ``4.7`` holds for
4.65 to 4.8 M), MACs within 5 % or to the table's precision, accuracy within 0.1 points of the eval result in ``$ZOO_HOME/results.jsonl``, throughput and
latency within 10 % (and only on the paper's hardware class).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo import api
from zoo.cards import Card
from zoo.errors import NotInstalled, UserError, ZooError

MACS_TOLERANCE_PCT = 5.0
METRIC_TOLERANCE_POINTS = 0.1
SPEED_TOLERANCE_PCT = 10.0
FAILING = ("off", "error")

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


def decimals(value: float) -> int:
    """Digits after the point as the table printed them (``75.9`` -> 1, ``86.0`` -> 0)."""
    from decimal import Decimal

    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def within_precision(measured: float, reported: float) -> bool:
    """Whether ``reported`` is ``measured`` printed at the table's precision, rounded or truncated
    (papers do both: Twins-L's 99.27 M is printed 99.2, ConvNeXt-T's 28.59 M is printed 28)."""
    unit = 10.0 ** -decimals(reported)
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
    unit = 10.0 ** -decimals(reported)
    claim = Claim("params_m", reported, _sig(measured), "M", "", f"table precision ({unit:g} M, rounded or cut)",
                  _pct(measured, reported))
    return _judge(card, claim, within_precision(measured, reported))


def check_macs(card: Card, macs: int) -> Claim:
    measured = macs / 1e9
    reported = card.reported.gmacs if card.reported else None
    if reported is None:
        return Claim("gmacs", None, _sig(measured), "G", "unreported")
    diff = _pct(measured, reported)
    unit = 10.0 ** -decimals(reported)
    claim = Claim("gmacs", reported, _sig(measured), "G", "",
                  f"±{MACS_TOLERANCE_PCT:g}% or table precision ({unit:g} G)", diff)
    holds = (diff is not None and abs(diff) <= MACS_TOLERANCE_PCT) or within_precision(measured, reported)
    return _judge(card, claim, holds)


def results_path() -> Path:
    from zoo.paths import zoo_home

    return zoo_home() / "results.jsonl"


def load_results(path: str | Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest eval result per (model, dataset) from the append-only results file.

    Lines are JSON objects with at least ``model``, ``dataset`` and metric keys (``top1``; metrics
    may also sit under ``metrics``). Unreadable lines are skipped: the file is append-only and a
    crash may have cut its last line.
    """
    path = Path(path) if path is not None else results_path()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.is_file():
        return latest
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("model"), str) and isinstance(row.get("dataset"), str):
            if not tests_the_claim(row):
                continue
            metrics = {**row, **(row.get("metrics") or {})} if isinstance(row.get("metrics"), dict) else row
            latest[(row["model"], row["dataset"])] = metrics
    return latest


def tests_the_claim(row: Mapping[str, Any]) -> bool:
    """Can this eval run confirm or refute a paper's accuracy? Not with random weights, a --limit
    subset, a model patch (ToMe trades accuracy for speed) or images skipped from the denominator."""
    random_weights = row.get("pretrained") is False and not row.get("checkpoint")
    return not (random_weights or row.get("limit") or row.get("patch") or row.get("skipped_bad_images"))


def check_metrics(card: Card, results: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[Claim]:
    out = []
    for dataset, metrics in (card.reported.metrics if card.reported else {}).items():
        row = results.get((card.name, dataset))
        for metric, reported in metrics.items():
            name = f"{dataset}.{metric}"
            value = row.get(metric) if row else None
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                note = f"no eval result yet: zoo eval {card.name} --dataset {dataset}"
                out.append(Claim(name, reported, None, "%", "not measured", note=note))
                continue
            claim = Claim(name, reported, round(float(value), 3), "%", "", f"±{METRIC_TOLERANCE_POINTS:g} points",
                          _pct(float(value), reported))
            out.append(_judge(card, claim, abs(float(value) - reported) <= METRIC_TOLERANCE_POINTS + 1e-9))
    return out


def check_speed(card: Card, here: str, measure: Any | None = None) -> list[Claim]:
    """Throughput and latency claims: measurable only on the paper's hardware class.

    ``measure(kind, spec)`` returns the measured value (img/s or ms) when called; it is only called
    for claims whose hardware matches ``here``.
    """
    from zoo.bench import same_hardware

    specs: list[tuple[str, Mapping[str, Any], str]] = []
    if card.reported and card.reported.throughput:
        specs.append(("throughput", card.reported.throughput, "img/s"))
    for item in card.reported.latency if card.reported else ():
        specs.append((f"latency@{item['device']}", item, "ms"))
    out = []
    for name, spec, unit in specs:
        reported = float(spec["value"])
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
    from zoo import bench

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

    from zoo.bench import cpu_name

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu_name()


def verify_card(
    card: Card,
    results: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    *,
    here: str | None = None,
    speed: bool = False,
    meta: bool = True,
) -> dict[str, Any]:
    """One card's report: ``{model, paper, plugin, status, claims: [...], counted_on}``."""
    from zoo.bench import static_counts

    results = load_results() if results is None else results
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
    claims += check_metrics(card, results)
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
) -> list[dict[str, Any]]:
    """Reports for the named cards, or for every card when ``names`` is empty/None."""
    cat = api.catalog()
    names = list(names or [])
    cards = [cat.get(name) for name in names] if names else cat.select()
    if not cards:
        raise UserError("no cards to verify (the catalog is empty)")
    results = load_results(results_file)
    here = this_hardware()
    return [verify_card(card, results, here=here, speed=speed) for card in cards]


def failures(reports: Iterable[Mapping[str, Any]]) -> list[str]:
    """``model: claim`` for every measurable claim that failed."""
    return [f"{r['model']}: {claim}" for r in reports for claim in r["failed"]]
