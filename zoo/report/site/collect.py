"""What the site shows, gathered once: every card, its claims judged by :mod:`zoo.claims.verify`, its
eval runs (:func:`zoo.records.read_results`, the one reader) and its bench records
(:func:`zoo.records.scan_bench`).

Claims are judged by verify's own functions: :func:`~zoo.claims.verify.check_metrics` for every
metric, :func:`~zoo.claims.verify.check_params` / :func:`~zoo.claims.verify.check_macs` on the
counts of the latest ``zoo bench`` record (the report builds no model unless asked: ``count=True``
counts the cards with no record as ``zoo verify`` does),
:func:`~zoo.claims.verify.check_speed` with that record's timings, and
:func:`~zoo.claims.verify.check_other_weights`. Where no record exists the claim is ``not measured``
and the note gives the command that measures it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.claims import verify
from zoo.claims.verify import Claim
from zoo.errors import ZooError, first_line
from zoo.records import Result, read_results, scan_bench
from zoo.registry import lookup
from zoo.registry.cards import Card, Paper

#: a row's summary status, worst first: the colour the catalog shows
SUMMARY_ORDER = ("off", "error", "explained", "holds", "not measured")


class _NoRecord(Exception):
    """No bench record measured what this speed claim states (batch size, precision)."""


@dataclass
class ModelEntry:
    """One card and everything measured about it."""

    card: Card
    paper: Paper
    installed: bool
    license: str | None
    slug: str
    claims: list[Claim]
    runs: list[Result]  #: eval runs, oldest first
    bench: list[Result]  #: bench records, oldest first
    headline: dict[str, Any] = field(default_factory=dict)  #: title, reported, measured, status of the primary claim
    paper_slug: str = ""

    @property
    def counts(self) -> list[tuple[str, int]]:
        """(status, how many claims have it), by status name."""
        return sorted(Counter(c.status for c in self.claims).items())

    @property
    def status(self) -> str:
        return summary_status(self.claims)

    @property
    def weights(self) -> str:
        return "card-only" if self.card.card_only else "available" if self.card.weights else "none"


@dataclass
class SiteData:
    models: list[ModelEntry]
    papers: dict[str, Paper]
    results_path: Path
    bench_path: Path
    skipped: int = 0  #: unreadable lines of the results file
    bench_skipped: int = 0
    orphans: list[Result] = field(default_factory=list)  #: runs of models with no card

    def by_paper(self) -> dict[str, list[ModelEntry]]:
        out: dict[str, list[ModelEntry]] = {}
        for entry in self.models:
            out.setdefault(entry.card.paper, []).append(entry)
        return out


def summary_status(claims: list[Claim]) -> str:
    """The one status a catalog row is coloured by: ``off``/``error`` when any claim failed, else
    ``explained`` or ``holds`` when something was measured and held, else ``not measured``."""
    statuses = {c.status for c in claims}
    for status in SUMMARY_ORDER[:-1]:
        if status in statuses:
            return status
    return "not measured"


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(name: str) -> str:
    """A file name for ``name``: safe characters kept, the rest replaced, a hash added when anything changed
    (so ``a/b`` and ``a_b`` stay two pages)."""
    safe = _SAFE.sub("_", name).strip("._") or "x"
    if safe != name:
        safe = f"{safe[:80]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return safe


def paper_slug(key: str) -> str:
    """The file name of a paper's page: its slug, except ``index`` (``papers/index.html`` lists the papers)."""
    name = slug(key)
    return f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:8]}" if name == "index" else name


# -- judging, with verify's functions ------------------------------------------------------------------


def latest_bench(card: Card, bench: list[Result]) -> Result | None:
    """The latest bench record of the card's own model (no extra --patch; weights change neither the
    counts nor the speed, so a --checkpoint record counts)."""
    own = [r for r in bench if not r.patch]
    return own[-1] if own else None


# how cards write a speed claim's precision -> how zoo bench records it (verify's _speed_measurer reads them alike)
_PRECISIONS = {"fp32": "fp32", "float32": "fp32", "fp16": "fp16", "float16": "fp16", "amp": "fp16", "bf16": "bf16"}


def _measurer(record: Result) -> Any:
    def measure(kind: str, spec: Mapping[str, Any]) -> float:
        batch = spec.get("batch_size")
        precision = _PRECISIONS.get(str(spec.get("precision") or "fp32"), str(spec.get("precision")))
        if record.precision != precision:
            raise _NoRecord(f"the bench record ran {record.precision}, the claim {precision}")
        value: Any
        if kind == "throughput":
            if batch is not None and record.details.get("batch_size") != batch:
                raise _NoRecord(f"the bench record ran batch {record.details.get('batch_size')}, the claim batch {batch}")
            value = record.metrics.get("throughput_img_s")
        else:
            if batch not in (None, 1):
                raise _NoRecord(f"zoo bench times latency at batch 1, the claim at batch {batch}")
            value = record.metrics.get("latency_ms")
        if value is None:
            raise _NoRecord(f"the bench record has no {kind}")
        return float(value)

    return measure


def _not_measured(claims: list[Claim], note: str, statuses: tuple[str, ...] = ("not measured",)) -> list[Claim]:
    for claim in claims:
        if claim.status in statuses and claim.measured is None:
            claim.status, claim.note = "not measured", note
    return claims


def speed_claims(card: Card, record: Result | None) -> list[Claim]:
    """Throughput/latency claims judged by :func:`verify.check_speed` with the bench record's timings
    (on the record's hardware), or not measured when no record can test them."""
    if record is None:
        return _not_measured(verify.check_speed(card, "", None),
                             f"no bench record: zoo bench {card.name} on the paper's hardware",
                             ("not measured", "not measurable"))
    here = record.device or ""
    try:
        return verify.check_speed(card, here, _measurer(record))
    except _NoRecord as exc:
        return _not_measured(verify.check_speed(card, here, None), f"not measured: {exc}")


def _counted(card: Card) -> list[Claim]:
    """Params and MACs counted now by :func:`zoo.measure.bench.static_counts` (the model built on the
    meta device), as ``zoo verify`` counts them; a build that fails is an error claim, as there."""
    from zoo.measure.bench import static_counts

    try:
        counts = static_counts(card.name)
    except ZooError as exc:
        return [Claim("build", None, None, "", "error", note=first_line(exc))]
    except Exception as exc:  # a plugin's bug: charged to this card only
        return [Claim("build", None, None, "", "error", note=f"{type(exc).__name__}: {first_line(exc)}")]
    return [verify.check_params(card, counts["params"]), verify.check_macs(card, counts["macs"])]


def count_claims(card: Card, record: Result | None, installed: bool, count: bool = False) -> list[Claim]:
    """Params and MACs judged by :func:`verify.check_params` / :func:`verify.check_macs` on the bench
    record's counts; without one, counted now when ``count`` (:func:`_counted`), else the reported
    figures with the command that counts them."""
    reported = card.reported
    if record is not None and record.metrics.get("params_m") is not None and record.metrics.get("gmacs") is not None:
        return [verify.check_params(card, round(float(record.metrics["params_m"]) * 1e6)),
                verify.check_macs(card, round(float(record.metrics["gmacs"]) * 1e9))]
    if count and installed and not card.card_only:
        return _counted(card)
    out = []
    for name, unit in (("params_m", "M"), ("gmacs", "G")):
        value = getattr(reported, name, None) if reported else None
        if value is None:
            continue
        if card.card_only:
            out.append(Claim(name, value, None, unit, "not measurable", note=f"card-only: {card.card_only}"))
        elif not installed:
            out.append(Claim(name, value, None, unit, "not installed", note=f"plugin {card.plugin!r} is not installed"))
        else:
            out.append(Claim(name, value, None, unit, "not measured",
                             note=f"no bench record: zoo bench {card.name} (or zoo verify {card.name})"))
    return out


def judge(card: Card, runs: verify.Runs, bench: list[Result], installed: bool, count: bool = False) -> list[Claim]:
    """Every claim of the card, judged by verify's functions (see the module docstring)."""
    record = latest_bench(card, bench)
    claims = count_claims(card, record, installed, count)
    claims += verify.check_metrics(card, runs)
    claims += verify.check_other_weights(card)
    speed = speed_claims(card, record)
    if card.card_only:
        speed = [Claim(c.claim, c.reported, None, c.unit, "not measurable", note=f"card-only: {card.card_only}")
                 for c in speed]
    return claims + speed


def headline(card: Card, claims: list[Claim]) -> dict[str, Any]:
    """The card's primary claim (:func:`lookup.primary_claim`) and its judged measurement."""
    title, value = lookup.primary_claim(card)
    out: dict[str, Any] = {"title": title, "reported": value, "measured": None, "status": None, "claim": None}
    if value is None or card.reported is None:
        return out
    task = lookup.get_task(card.task)
    metric = task.primary.name if task is not None and task.primary is not None else None
    # the first figure of the primary metric, in the card's order: the one primary_claim returned
    out["claim"] = next((name for name, _, metric_name, _ in card.reported.figures() if metric_name == metric), None)
    for claim in claims:
        if claim.claim == out["claim"] and claim.status != "not testable":  # not a figure of other weights
            out.update(measured=claim.measured, status=claim.status)
            break
    return out


def collect(results_file: str | Path | None = None, bench_file: str | Path | None = None, *,
            count: bool = False) -> SiteData:
    """Every card with its judged claims, runs and bench records; ``count``: count the params and MACs
    of cards with no bench record, as ``zoo verify`` does (a build per card: slow).

    :raises ResultsError: a results or bench file exists but cannot be read.
    """
    from zoo.records import bench_path, results_path

    results_path_ = Path(results_file) if results_file is not None else results_path()
    bench_path_ = Path(bench_file) if bench_file is not None else bench_path()
    rows, skipped = read_results(path=results_path_)
    runs = verify.Runs.of(rows, skipped, results_path_)
    bench_rows, bench_skipped = scan_bench(bench_path_)
    cat = lookup.catalog()
    cards = cat.select()
    by_model: dict[str, list[Result]] = {}
    for row in runs.rows:
        by_model.setdefault(row.model.lower(), []).append(row)
    bench_by_model: dict[str, list[Result]] = {}
    for row in bench_rows:
        bench_by_model.setdefault(row.model.lower(), []).append(row)
    known = {card.name.lower() for card in cards}
    models = []
    for card in cards:
        installed = cat.installed(card)
        bench = bench_by_model.get(card.name.lower(), [])
        own = by_model.get(card.name.lower(), [])
        try:  # verify judges from the card's own runs (Runs.on scans them all: one pass per card, not per claim)
            claims = judge(card, verify.Runs.of(own, skipped, results_path_), bench, installed, count)
        except ZooError as exc:  # a plugin's protocol failed: shown on the card's row, the others go on
            claims = [Claim("claims", None, None, "", "error", note=first_line(exc))]
        except Exception as exc:  # a plugin's bug must not hide the other cards (as in verify_card)
            claims = [Claim("claims", None, None, "", "error", note=f"{type(exc).__name__}: {first_line(exc)}")]
        models.append(ModelEntry(card=card, paper=cat.paper_of(card), installed=installed,
                                 license=cat.license_of(card), slug=slug(card.name), claims=claims,
                                 runs=own, bench=bench,
                                 headline=headline(card, claims), paper_slug=paper_slug(card.paper)))
    orphans = [row for row in runs.rows if row.model.lower() not in known]
    used = {m.card.paper for m in models}
    papers = {key: paper for key, paper in cat.papers.items() if key in used}
    return SiteData(models=models, papers=papers, results_path=results_path_, bench_path=bench_path_,
                    skipped=skipped, bench_skipped=bench_skipped, orphans=orphans)
