"""The command line that reproduces a figure: a claim (how to measure it) or a record (how it was run)."""

from __future__ import annotations

import shlex

from zoo.claims.verify import Claim
from zoo.records import Result
from zoo.registry.cards import Card


def _join(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def claim_command(card: Card, claim: Claim) -> str:
    """How ``claim`` is measured here: ``zoo eval`` for a metric, ``zoo bench`` for counts and speed."""
    name = claim.claim
    if card.card_only or claim.status == "not testable":  # nothing here can measure it
        return ""
    if name in ("params_m", "gmacs"):
        return _join(["zoo", "bench", card.name, "--no-throughput", "--no-latency"])
    if name == "throughput":
        spec = card.reported.throughput if card.reported and card.reported.throughput else {}
        words = ["zoo", "bench", card.name, "--device", "cuda", "--no-latency"]
        if spec.get("batch_size"):
            words += ["--batch-size", str(spec["batch_size"])]
        if str(spec.get("precision", "")) in ("fp16", "bf16"):
            words += ["--amp", str(spec["precision"])]
        return _join(words)
    if name.startswith("latency@"):
        return _join(["zoo", "bench", card.name, "--no-throughput"])
    if card.reported:
        for figure, dataset, _metric, _value in card.reported.figures():
            if figure == name:
                return _join(["zoo", "eval", card.name, "--dataset", dataset])
    return ""


def eval_command(run: Result) -> str:
    """The ``zoo eval`` line that made an eval record, from what the record keeps (the data directory
    is the default ``$ZOO_DATA_DIR/<dataset>`` unless the dataset names its path)."""
    words = ["zoo", "eval", run.model, "--dataset", run.dataset]
    if run.precision in ("bf16", "fp16"):
        words += ["--amp", run.precision]
    if run.limit:
        words += ["--limit", str(run.limit)]
    if run.patch:
        words += ["--patch", run.patch]
    if run.checkpoint:
        words += ["--checkpoint", run.checkpoint]
    elif run.pretrained is False:
        words.append("--no-pretrained")
    if run.skipped_bad_images:
        words.append("--skip-bad-images")
    return _join(words)


def bench_command(record: Result) -> str:
    """The ``zoo bench`` line that made a bench record."""
    details = record.details
    device = details.get("device_type") or ("cpu" if (record.device or "").lower().find("nvidia") < 0 else "cuda")
    words = ["zoo", "bench", record.model, "--device", str(device)]
    if details.get("batch_size"):
        words += ["--batch-size", str(details["batch_size"])]
    if details.get("amp"):
        words += ["--amp", str(details["amp"])]
    if details.get("channels_last"):
        words.append("--channels-last")
    if details.get("compile"):
        words.append("--compile")
    if record.patch:
        words += ["--patch", record.patch]
    if record.checkpoint:
        words += ["--checkpoint", record.checkpoint]
    return _join(words)
