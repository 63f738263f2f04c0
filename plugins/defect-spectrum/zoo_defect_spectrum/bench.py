"""Time every model of Defect Spectrum's table on this machine, beside the paper's RTX 3090 column.

Absolute milliseconds cannot match (another device, and the paper states neither resolution nor
precision); the ranking can, so the result carries Spearman's rank correlation between the table's
column and the measured medians. Timing is ``zoo bench``'s own loop
(:func:`zoo.measure.bench.time_steps`: random-init model in eval mode, ``randn`` input, warm-up
steps, per-step synchronised clock, median and p90 at batch 1), run in interleaved rounds; only the input size is chosen here
(default: the cards' 512 x 512), so a quick look at a smaller size is possible.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from zoo.errors import UserError
from zoo_defect_spectrum.table import DEVICE, Row, spearman, table_cards

MAX_SIZE = 2048
STRIDE = 32  #: every model's total stride (UNet, Mask2Former and the smp encoders need a multiple of 32)


def check_settings(size: int, warmup: int, repeats: int, threads: int | None) -> None:
    """One ``UserError`` line per bad setting, before anything is built."""
    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not integer(size) or not STRIDE <= size <= MAX_SIZE or size % STRIDE:
        raise UserError(f"--size {size!r}: expected a multiple of {STRIDE} in {STRIDE}..{MAX_SIZE} "
                        "(the models' total stride)")
    if not integer(warmup) or warmup < 0:
        raise UserError(f"--warmup {warmup!r}: expected a non-negative integer")
    if not integer(repeats) or repeats < 1:
        raise UserError(f"--repeats {repeats!r}: expected a positive integer")
    if threads is not None and (not integer(threads) or threads < 1):
        raise UserError(f"--threads {threads!r}: expected a positive integer")


def select(names: Sequence[str] | None) -> list[tuple[str, float]]:
    """The table's ``(card, ms)`` rows from the installed cards, or the named subset (in the table's order)."""
    from zoo.registry import lookup

    rows = table_cards(lookup.catalog().cards.values())
    if not rows:
        raise UserError(f"no card of paper 'defect-spectrum' reports a latency on {DEVICE}: is the plugin installed?")
    if not names:
        return rows
    known = {name for name, _ in rows}
    for name in names:
        if name not in known:
            raise UserError(f"--model {name}: not a model of Defect Spectrum's table (its models: "
                            f"{', '.join(n for n, _ in rows)})")
    if len(set(names)) < 2:
        raise UserError("--model: give at least two different models (a rank correlation needs two)")
    return [row for row in rows if row[0] in set(names)]


def measure_table(names: Sequence[str] | None = None, *, device: str = "cpu", size: int = 512, warmup: int = 3,
                  repeats: int = 10, rounds: int = 3, threads: int | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Batch-1 latency of each table model at ``size`` x ``size`` on ``device``, and Spearman's rho.

    The models are timed in ``rounds`` interleaved rounds (each round: every model, ``warmup`` untimed
    then ``repeats`` timed steps), so a burst of load on a shared machine falls on all of them rather
    than on one; median and p90 are over the pooled steps of all rounds.

    :returns: a JSON-able dict: ``rows`` (model, table_ms, median_ms, p90_ms, params_m), ``spearman``,
        the setup (device, size, rounds, threads, torch, load average before and after).
    """
    import torch

    from zoo.measure import bench
    from zoo.models import build

    check_settings(size, warmup, repeats, threads)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise UserError(f"--rounds {rounds!r}: expected a positive integer")
    chosen = select(names)
    dev = bench.resolve_device(device)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    try:
        models = {name: build.create_model(name).to(dev) for name, _ in chosen}
        x = torch.randn(1, 3, size, size, device=dev)
        steps: dict[str, list[float]] = {name: [] for name in models}
        with torch.inference_mode():
            for r in range(rounds):
                for name, model in models.items():
                    times, _ = bench.time_steps(lambda model=model: model(x), dev, warmup, repeats)
                    steps[name] += times
                    if progress is not None:
                        progress(f"round {r + 1}/{rounds} {name}: median {1000 * statistics.median(times):.2f} ms")
        rows = [Row(name=name, table_ms=table_ms, median_ms=1000 * statistics.median(steps[name]),
                    p90_ms=1000 * bench.percentile(steps[name], 90), params_m=bench.count_params(models[name]) / 1e6)
                for name, table_ms in chosen]
        used_threads = torch.get_num_threads()
    finally:  # a caller's (or a test session's) thread setting outlives this call
        torch.set_num_threads(previous_threads)
    return {
        "paper": "defect-spectrum",
        "table_device": DEVICE,
        "device": bench.device_name(dev),
        "input_size": [3, size, size],
        "batch_size": 1,
        "precision": "fp32",
        "warmup": warmup,
        "repeats": repeats,
        "rounds": rounds,
        "threads": used_threads,
        "torch": torch.__version__,
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [vars(r) for r in rows],
        "spearman": _finite(spearman([r.table_ms for r in rows], [r.median_ms for r in rows])),
    }


def _finite(value: float) -> float | None:
    """None for NaN (a constant column): JSON has no NaN."""
    return None if math.isnan(value) else value


def setup_line(result: dict[str, Any]) -> str:
    """One line saying what was timed, where, and how loaded the machine was."""
    load = result.get("load_avg_before"), result.get("load_avg_after")
    text = (f"Batch-1 latency, random weights, fp32, {result['input_size'][1]}x{result['input_size'][2]}, "
            f"{result['device']}, torch {result['torch']}, {result['rounds']} interleaved round(s) of "
            f"{result['warmup']} warm-up + {result['repeats']} timed steps per model")
    if None not in load:
        text += f"; load average {load[0]:.1f} before, {load[1]:.1f} after"
    return text
