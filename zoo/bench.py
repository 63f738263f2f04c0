"""Measure what papers claim, the same way for every card: params, MACs, throughput, latency, memory.

- **Params**: ``sum(p.numel() for p in model.parameters())`` (buffers excluded, as timm counts).
- **MACs**: one per multiply-add (what most papers call FLOPs), counted by torch's own
  :class:`torch.utils.flop_counter.FlopCounterMode` (which counts 2 flops per multiply-add) at batch 1
  and the card's input size. Like fvcore, it counts matmuls, convolutions and attention, not
  element-wise ops or norms. Counting runs on the ``meta`` device when the model allows it (no
  compute, no memory), else on the CPU.
- **Throughput** (img/s at ``batch_size``), following timm's ``benchmark.py``: random-init model in
  eval mode, synthetic ``randn`` input, warm-up steps, then timed steps; each step synchronises the
  device before reading the clock. We report ``batch_size / median(step time)``, which is robust to
  the odd slow step on a shared machine, and also timm's ``samples / wall time``.
- **Latency** at batch 1: median and 90th percentile of per-step times, in ms.
- **Peak memory**: ``torch.cuda.max_memory_allocated`` during the throughput run (GPU only).

Models are built with random weights: nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from zoo import api
from zoo.cards import Card
from zoo.errors import UserError

if TYPE_CHECKING:
    import torch
    from torch import nn

AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
DEFAULT_BATCH_SIZE = 128


# -- static counts --------------------------------------------------------------------------------


def count_params(model: nn.Module) -> int:
    """Number of parameters (not buffers), as timm and the papers count them."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, int, int], batch_size: int = 1) -> int:
    """Multiply-adds of one forward pass at ``(batch_size, *input_size)``: FlopCounterMode flops / 2.

    The input is created on the model's device (``meta`` works and costs nothing). Attention runs
    on SDPA's math backend while counting: FlopCounterMode has no formula for the fused CPU
    kernel and would silently count attention as zero (DeiT-Ti: 1.07 instead of 1.25 GMACs).
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn(batch_size, *input_size, device=device)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops()) // 2


def static_counts(name: str, patch: str | None = None, *, meta: bool = True) -> dict[str, Any]:
    """Params and MACs of card ``name`` at its input size, without weights and without timing.

    With ``meta=True`` the model is built and run on the meta device when it can be; a model whose
    construction needs real values (``.item()`` on a drop-path schedule) is built with only its
    big tensors on meta (:class:`zoo.lightbuild.light_build`); one whose forward needs real values
    (data-dependent shapes) is counted on the CPU. ``counted_on`` says which was used.
    """
    import torch

    card = api.get_card(name)
    attempts = ["meta", "params-on-meta", "cpu"] if meta else ["cpu"]
    last: Exception | None = None
    for how in attempts:
        try:
            if how == "meta":
                with torch.device("meta"):
                    model = api.create_model(name, patch=patch)
            elif how == "params-on-meta":
                from zoo.lightbuild import light_build

                with light_build():
                    model = api.create_model(name, patch=patch)
                model = model.to("meta")
            else:
                model = api.create_model(name, patch=patch)
            params = count_params(model)
            macs = count_macs(model, card.input_size)
        except (RuntimeError, NotImplementedError, TypeError, ValueError, IndexError) as exc:
            if how == "cpu":
                raise
            last = exc
            continue
        return {"params": params, "macs": macs, "counted_on": how, "input_size": list(card.input_size)}
    raise AssertionError(f"unreachable: {last}")  # the cpu attempt either returns or raises


# -- devices and precision ------------------------------------------------------------------------


def resolve_device(device: str | None) -> torch.device:
    """``None`` -> cuda when available, else cpu. An unavailable device is a user error."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"--device: expected cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"--device: expected cpu, cuda or cuda:N, got {device!r}")
    return dev


def cpu_supports(amp: str) -> bool:
    """Whether this CPU computes ``amp`` natively (emulated fp16 is orders of magnitude slower)."""
    import torch

    if amp == "bf16":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return bool(getattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)())


def resolve_amp(amp: str | None, device: torch.device) -> torch.dtype | None:
    import torch

    if amp is None:
        return None
    if amp not in AMP_DTYPES:
        raise UserError(f"--amp: expected one of {', '.join(AMP_DTYPES)}, got {amp!r}")
    if device.type == "cpu" and not cpu_supports(amp):
        raise UserError(f"--amp {amp}: this CPU ({cpu_name()}) has no native {amp} support; use --amp bf16 or none")
    if device.type == "cuda" and amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError(f"--amp bf16: {torch.cuda.get_device_name(device)} does not support bfloat16")
    return getattr(torch, AMP_DTYPES[amp])


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({torch.get_num_threads()} threads)"


_GPU_RE = re.compile(r"\b(A100|A10G?|A30|A40|A6000|H100|H200|H20|L4|L40S?|T4|V100|P100|K80|TITAN ?\w+|"
                     r"(?:RTX|GTX) ?\d{4}(?: ?Ti)?|Jetson ?\w+|MI\d+\w*)\b", re.IGNORECASE)


def hardware_class(name: str) -> str:
    """A coarse class for comparing devices: the GPU model ('A100', 'RTX 3090') or the CPU name."""
    text = name.strip()
    if text.lower() in ("cpu", "gpu", "cuda"):
        return text.lower()
    match = _GPU_RE.search(text)
    if match:
        gpu = re.sub(r"^(RTX|GTX) ?", r"\1 ", match.group(1).upper())
        return re.sub(r"\s+", " ", gpu).strip()
    text = re.sub(r"\((r|tm)\)|\bcpu\b|@.*$|\(\d+ threads\)", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def same_hardware(reported_device: str, measured_device: str) -> bool:
    """True only when the paper's hardware and ours are the same class (GPU model, or CPU model)."""
    a, b = hardware_class(reported_device), hardware_class(measured_device)
    if a in ("cpu", "gpu", "cuda") or not any(ch.isdigit() for ch in a):  # no model named: not comparable
        return False
    return a == b or (len(a) > 3 and a in b.lower()) or (len(b) > 3 and b in a.lower())


# -- timing ---------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> tuple[list[float], float]:
    """Per-step seconds of ``repeats`` timed calls after ``warmup`` untimed ones, and the total wall time.

    Each step synchronises the device before reading the clock, as timm's benchmark.py does.
    """
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), ``q`` in [0, 100]."""
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@contextlib.contextmanager
def _autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    import torch

    if dtype is None:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


def measure_speed(
    model: nn.Module,
    input_size: tuple[int, int, int],
    batch_size: int,
    device: torch.device,
    *,
    amp: torch.dtype | None = None,
    channels_last: bool = False,
    warmup: int = 10,
    repeats: int = 40,
) -> dict[str, Any]:
    """Time ``model`` on ``randn(batch_size, *input_size)``; returns step times and derived figures."""
    import torch

    x = torch.randn(batch_size, *input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with _autocast(device, amp):
            model(x)

    with torch.inference_mode():
        times, wall = time_steps(step, device, warmup, repeats)
    median = statistics.median(times)
    return {
        "median_s": median,
        "p90_s": percentile(times, 90),
        "mean_s": statistics.fmean(times),
        "wall_s": wall,
        "img_s": batch_size / median,
        "wall_img_s": batch_size * repeats / wall,  # timm's samples_per_sec
        "steps": repeats,
    }


# -- the public entry point -----------------------------------------------------------------------


def reported_summary(card: Card) -> dict[str, Any] | None:
    r = card.reported
    if r is None:
        return None
    return {
        "source": r.source,
        "params_m": r.params_m,
        "gmacs": r.gmacs,
        "top1": r.top1(),
        "throughput": dict(r.throughput) if r.throughput else None,
        "latency": [dict(item) for item in r.latency],
    }


def _check_positive(option: str, value: int, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        expected = "a non-negative integer" if allow_zero else "a positive integer"
        raise UserError(f"{option}: expected {expected}, got {value!r}")


def benchmark(
    name: str,
    *,
    device: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    amp: str | None = None,
    channels_last: bool = False,
    compile: bool = False,
    patch: str | None = None,
    checkpoint: str | None = None,
    reparam: bool = False,
    warmup: int = 10,
    repeats: int = 40,
    latency_repeats: int | None = None,
    throughput: bool = True,
    latency: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Benchmark card ``name`` (random weights) and return a JSON-able dict beside the card's claims.

    :param device: ``cpu``, ``cuda`` or ``cuda:N``; default cuda when available.
    :param batch_size: batch for the throughput run (latency always uses batch 1).
    :param amp: ``bf16`` or ``fp16`` autocast; refused on a CPU that lacks native support.
    :param warmup: untimed steps before each timed run; ``repeats``: timed steps (throughput);
        ``latency_repeats``: timed steps at batch 1 (default ``max(repeats, 20)``).
    :param throughput: / ``latency``: switch either measurement off (params and MACs always run).
    :param threads: ``torch.set_num_threads`` for the run (CPU).
    """
    import torch

    _check_positive("--batch-size", batch_size)
    _check_positive("--repeats", repeats)
    _check_positive("--warmup", warmup, allow_zero=True)
    if latency_repeats is not None:
        _check_positive("--latency-repeats", latency_repeats)
    card = api.get_card(name)
    dev = resolve_device(device)
    amp_dtype = resolve_amp(amp, dev)
    if threads is not None:
        _check_positive("--threads", threads)
        torch.set_num_threads(threads)

    counts = static_counts(name, patch=patch)
    result: dict[str, Any] = {
        "model": card.name,
        "paper": card.paper,
        "params": counts["params"],
        "params_m": counts["params"] / 1e6,
        "macs": counts["macs"],
        "gmacs": counts["macs"] / 1e9,
        "input_size": list(card.input_size),
        "device": device_name(dev),
        "device_type": dev.type,
        "hardware_class": "cpu" if dev.type == "cpu" else hardware_class(device_name(dev)),
        "batch_size": batch_size,
        "amp": amp,
        "channels_last": channels_last,
        "reparam": reparam,
        "compile": compile,
        "patch": patch,
        "throughput_img_s": None,
        "throughput_wall_img_s": None,
        "latency_ms": None,
        "peak_memory_mb": None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "reported": reported_summary(card),
    }
    if not (throughput or latency):
        return result

    model = api.create_model(name, checkpoint=checkpoint, patch=patch).to(dev)  # weights do not change speed
    if reparam:  # fold train-time branches (MobileOne, RepVGG, FastViT) as the papers time them
        from timm.utils.model import reparameterize_model

        model = reparameterize_model(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    speed = {"amp": amp_dtype, "channels_last": channels_last, "warmup": warmup}
    if throughput:
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        run = measure_speed(model, card.input_size, batch_size, dev, repeats=repeats, **speed)
        result["throughput_img_s"] = round(run["img_s"], 2)
        result["throughput_wall_img_s"] = round(run["wall_img_s"], 2)
        result["step_ms"] = {"median": round(1000 * run["median_s"], 3), "p90": round(1000 * run["p90_s"], 3)}
        if dev.type == "cuda":
            result["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    if latency:
        run = measure_speed(model, card.input_size, 1, dev, repeats=latency_repeats or max(repeats, 20), **speed)
        result["latency_ms"] = {"median": round(1000 * run["median_s"], 3), "p90": round(1000 * run["p90_s"], 3)}
    return result
