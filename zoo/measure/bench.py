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
- **Precision**: fp32 unless ``amp`` asks for bf16/fp16 autocast; recorded as ``precision``.
- **Form**: a card whose ``reported.form`` is ``deploy`` (RepVGG, MobileOne, YOLOv6 tables) is counted
  and timed folded, by :func:`fold`, the one folding rule of bench, verify and the plugin kit.

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

from zoo.errors import BuildError, PluginError, UserError
from zoo.models import build
from zoo.registry import lookup
from zoo.registry.cards import Card

if TYPE_CHECKING:
    import torch
    from torch import nn

AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
DEFAULT_BATCH_SIZE = 128


# -- static counts --------------------------------------------------------------------------------


def count_params(model: nn.Module) -> int:
    """Number of parameters (not buffers), as timm and the papers count them."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, ...] | None, batch_size: int = 1,
               inputs: Callable[[int], Any] | None = None) -> int:
    """Multiply-adds of one forward pass at ``(batch_size, *input_size)``: FlopCounterMode flops / 2.

    ``inputs(batch_size)`` (the task's example inputs: a tensor or a tuple of them) replaces the
    ``randn``. Inputs are moved to the model's device (``meta`` works and costs nothing). Attention
    runs on SDPA's math backend while counting: FlopCounterMode has no formula for the fused CPU
    kernel and would silently count attention as zero (DeiT-Ti: 1.07 instead of 1.25 GMACs).
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    if inputs is not None:
        given = inputs(batch_size)
        args = tuple(a.to(device) for a in given) if isinstance(given, tuple) else (given.to(device),)
    elif input_size is None:
        raise UserError("the card has no input_size and its task gives no example_inputs: nothing to count MACs on")
    else:
        args = (torch.randn(batch_size, *input_size, device=device),)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*args)
    return int(counter.get_total_flops()) // 2


def card_form(card: Card) -> str:
    """``"deploy"`` when the card's params/MACs describe the folded model (``reported.form``), else ``"train"``."""
    return "deploy" if card.reported is not None and card.reported.form == "deploy" else "train"


FOLD_METHODS = ("fuse", "reparameterize", "switch_to_deploy")  # what timm's reparameterize_model calls


class CannotFold(BuildError):
    """A card's claims describe the folded (deploy) model and nothing can fold it."""


def _plugin_fold(card: Card, model: nn.Module) -> nn.Module | None:
    """The ``zoo_fold`` answer of the card's own plugin (never another plugin's), or ``None``."""
    from zoo.registry.plugins import describe_error

    pm = lookup.catalog().pm
    if pm is None:
        return None
    from torch import nn

    for impl in pm.hook.zoo_fold.get_hookimpls():
        if impl.plugin_name != card.plugin:
            continue
        args = {"card": card, "model": model}
        try:
            folded = impl.function(*[args[name] for name in impl.argnames])
        except Exception as exc:  # third-party code: blame the plugin in one line
            raise PluginError(card.plugin, f"zoo_fold for {card.name!r} raised {describe_error(exc)}") from None
        if folded is None:
            continue
        if not isinstance(folded, nn.Module):
            raise PluginError(card.plugin, f"zoo_fold for {card.name!r} returned {type(folded).__name__}, "
                                           "expected a torch.nn.Module or None")
        return folded
    return None


def fold(model: nn.Module, card: Card, *, required: bool | None = None) -> tuple[nn.Module, str | None]:
    """Fold re-parameterisable branches (RepVGG, MobileOne, YOLOv6) into the deploy model.

    The one rule used by ``zoo bench`` (timing and counts), ``zoo verify`` (through
    :func:`static_counts`) and ``zoo plugin check``. In order:

    1. the card's own plugin answers ``zoo_fold(card, model)`` (see ``zoo/hookspecs.py``);
    2. a model that defines ``reparameterize()`` or ``switch_to_deploy()`` itself folds itself;
    3. timm's ``reparameterize_model`` walks the modules and calls ``fuse()``, ``reparameterize()``
       or ``switch_to_deploy()`` on each that has one (timm's MobileOne, RepVGG, FastViT, and any
       third-party module following that convention).

    :param required: fail when nothing folds; default: when the card's form is ``deploy``.
    :returns: ``(model, how)``; ``how`` is ``None`` when there was nothing to fold. The model may be
        folded in place.
    :raises CannotFold: ``required`` and nothing can fold the model.
    """
    required = card_form(card) == "deploy" if required is None else required
    folded = _plugin_fold(card, model)
    if folded is not None:
        return folded, f"zoo_fold of plugin {card.plugin!r}"
    for method in ("reparameterize", "switch_to_deploy"):
        if callable(getattr(model, method, None)):
            out = getattr(model, method)()  # in place, or returns the folded model
            return (out if _is_module(out) else model), f"model.{method}()"
    if any(callable(getattr(m, name, None)) for m in model.modules() for name in FOLD_METHODS):
        import timm.utils.model

        return timm.utils.model.reparameterize_model(model, inplace=True), "timm reparameterize_model"
    if required:
        raise CannotFold(
            f"model {card.name!r}: the card's params/MACs describe the folded (deploy) model, but nothing "
            f"folds it: plugin {card.plugin!r} implements no zoo_fold hook and no module of the model has "
            "fuse(), reparameterize() or switch_to_deploy()"
        )
    return model, None


def _is_module(obj: Any) -> bool:
    from torch import nn

    return isinstance(obj, nn.Module)


def static_counts(
    name: str, patch: str | None = None, *, meta: bool = True, fold_branches: bool | None = None
) -> dict[str, Any]:
    """Params and MACs of card ``name`` at its input size, without weights and without timing.

    With ``meta=True`` the model is built and run on the meta device when it can be; a model whose
    construction needs real values (``.item()`` on a drop-path schedule) is built with only its
    big tensors on meta (:class:`zoo.models.lightbuild.light_build`); one whose forward (or folding) needs
    real values is counted on the CPU. ``counted_on`` says which was used.

    :param fold_branches: count the folded model (:func:`fold`); default: when the card's
        ``reported.form`` is ``deploy``, as the papers count RepVGG, MobileOne and YOLOv6.
    """
    import torch

    card = lookup.get_card(name)
    card.require_code()
    folding = card_form(card) == "deploy" if fold_branches is None else fold_branches
    attempts = ["meta", "params-on-meta", "cpu"] if meta else ["cpu"]
    for how in attempts:
        try:
            folded_by = None
            # fold inside the build's device context: modules a fold creates land on the same device
            if how == "meta":
                with torch.device("meta"):
                    model = build.create_model(name, patch=patch)
                    if folding:
                        model, folded_by = fold(model, card)
            elif how == "params-on-meta":
                from zoo.models.lightbuild import light_build

                with light_build():
                    model = build.create_model(name, patch=patch)
                model = model.to("meta")
                if folding:
                    with torch.device("meta"):
                        model, folded_by = fold(model, card)
            else:
                model = build.create_model(name, patch=patch)
                if folding:
                    model, folded_by = fold(model, card)
            params = count_params(model)
            model = prepare(card, model)  # a few-shot model fits before it can run
            macs = count_macs(model, card.input_size, inputs=example_inputs(card))
        except CannotFold:
            raise  # the same answer on every device
        except (BuildError, PluginError, RuntimeError, NotImplementedError, TypeError, ValueError, IndexError):
            # a builder or a fold that needs real values: try the next, more concrete, device
            if how == "cpu":
                raise
            continue
        return {"params": params, "macs": macs, "counted_on": how,
                "input_size": list(card.input_size) if card.input_size else None,
                "form": "deploy" if folded_by else "train", "folded_by": folded_by}
    raise AssertionError("unreachable: the cpu attempt either returns or raises")


# -- devices and precision ------------------------------------------------------------------------


def resolve_device(device: str | None) -> torch.device:
    """``None``/``auto`` -> cuda when available, else cpu: the one ``--device`` rule of every run
    (:func:`zoo.eval.runtime.resolve_device`); an unavailable device is a user error."""
    from zoo.eval.runtime import resolve_device as _resolve

    return _resolve("auto" if device is None else device)


def cpu_supports(amp: str) -> bool:
    """Whether this CPU computes ``amp`` natively (emulated fp16 is orders of magnitude slower)."""
    import torch

    if amp == "bf16":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return bool(getattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)())


def resolve_amp(amp: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp`` on ``device``, or None for fp32 (the default, as in ``zoo eval``).

    ``amp`` is parsed by :func:`zoo.eval.runtime.precision_of`, the one rule of every run (``none``
    and ``fp32`` are fp32, fp16 is for CUDA); bench adds one check of its own: a CPU that would
    emulate bf16 is refused, since timing an emulation measures nothing a paper reports.
    """
    import torch

    from zoo.eval.runtime import precision_of

    precision = precision_of(amp, device.type)
    if precision == "fp32":
        return None
    if device.type == "cpu" and not cpu_supports(precision):
        raise UserError(f"--amp {precision}: this CPU ({cpu_name()}) has no native {precision} support; "
                        "use --amp none")
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError(f"--amp bf16: {torch.cuda.get_device_name(device)} does not support bfloat16")
    return getattr(torch, AMP_DTYPES[precision])


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
    inputs: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Time ``model`` on ``inputs(batch_size)`` (default ``randn(batch_size, *input_size)``); returns
    step times and derived figures. A tuple of inputs is passed as positional arguments."""
    import torch

    x = inputs(batch_size) if inputs is not None else torch.randn(batch_size, *input_size)
    x = tuple(_to(t, device, channels_last) for t in x) if isinstance(x, tuple) else _to(x, device, channels_last)

    def step() -> None:
        with _autocast(device, amp):
            model(*x) if isinstance(x, tuple) else model(x)

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


def _to(x: Any, device: torch.device, channels_last: bool) -> Any:
    import torch

    if not isinstance(x, torch.Tensor):
        return x
    x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def example_inputs(card: Card) -> Callable[[int], Any] | None:
    """``batch -> inputs`` from the card's task (``Task.example_inputs``), or None: ``randn`` at the
    card's input size."""
    from zoo.registry import plugins

    entry = lookup.tasks().get(card.task)
    if entry is None or not entry[1].example_inputs:
        return None
    plugin, task = entry
    fn = plugins.resolve(task.example_inputs, plugin)
    return lambda batch: fn(card, batch)


def postprocess_fn(card: Card) -> Callable[[Any], Any] | None:
    """``output -> predictions`` from the card's task (``Task.postprocess``), or None."""
    fn = lookup.task_code(card, "postprocess")
    return None if fn is None else (lambda output: fn(card, output))


def prepare(card: Card, model: nn.Module) -> nn.Module:
    """``model`` readied by its task for example inputs (``Task.prepare``: a few-shot fit); as is without one."""
    fn = lookup.task_code(card, "prepare")
    return model if fn is None else fn(card, model)


def measure_postprocess(
    model: nn.Module,
    post: Callable[[Any], Any],
    input_size: tuple[int, int, int],
    device: torch.device,
    *,
    amp: torch.dtype | None = None,
    channels_last: bool = False,
    warmup: int = 10,
    repeats: int = 40,
    inputs: Callable[[int], Any] | None = None,
) -> dict[str, float]:
    """Time ``post`` on one batch-1 output of ``model``: the post-processing apart from the forward pass."""
    import torch

    x = inputs(1) if inputs is not None else torch.randn(1, *input_size)
    x = tuple(_to(t, device, channels_last) for t in x) if isinstance(x, tuple) else _to(x, device, channels_last)
    with torch.inference_mode():
        with _autocast(device, amp):
            output = model(*x) if isinstance(x, tuple) else model(x)
        times, _ = time_steps(lambda: post(output), device, warmup, repeats)
    return {"median": round(1000 * statistics.median(times), 3), "p90": round(1000 * percentile(times, 90), 3)}


# -- the public entry point -----------------------------------------------------------------------


def _headline(card: Card) -> dict[str, Any] | None:
    """The card's headline claim (its task's primary metric), for the bench table's last row."""
    title, value = lookup.primary_claim(card)
    if title is None:
        return None
    task = lookup.get_task(card.task)
    unit = task.primary.unit if task is not None and task.primary is not None else ""
    return {"title": title, "value": value, "unit": unit}


def reported_summary(card: Card) -> dict[str, Any] | None:
    r = card.reported
    if r is None:
        return None
    return {
        "source": r.source,
        "params_m": r.params_m,
        "gmacs": r.gmacs,
        "top1": r.top1(),  # zoo 0.1 key, kept for readers of bench --json
        "claim": _headline(card),
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
    compile: bool | str = False,
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
    :param amp: ``bf16`` or ``fp16`` autocast; refused on a CPU that lacks native support. ``None``
        (the default) is plain fp32, recorded as ``precision: fp32``.
    :param reparam: fold re-parameterisable branches before timing (:func:`fold`); a card whose
        ``reported.form`` is ``deploy`` is always folded, for the counts and the timing.
    :param warmup: untimed steps before each timed run; ``repeats``: timed steps (throughput);
        ``latency_repeats``: timed steps at batch 1 (default ``max(repeats, 20)``).
    :param compile: ``torch.compile`` the model first (a string picks the backend).
    :param throughput: / ``latency``: switch either measurement off (params and MACs always run).
    :param threads: ``torch.set_num_threads`` for the run (CPU).
    """
    import torch

    _check_positive("--batch-size", batch_size)
    _check_positive("--repeats", repeats)
    _check_positive("--warmup", warmup, allow_zero=True)
    if latency_repeats is not None:
        _check_positive("--latency-repeats", latency_repeats)
    card = lookup.get_card(name)
    card.require_code()
    dev = resolve_device(device)
    amp_dtype = resolve_amp(amp, dev)
    if threads is not None:
        _check_positive("--threads", threads)
        torch.set_num_threads(threads)

    folding = reparam or card_form(card) == "deploy"  # time and count what the paper describes
    counts = static_counts(name, patch=patch, fold_branches=folding)
    result: dict[str, Any] = {
        "model": card.name,
        "paper": card.paper,
        "params": counts["params"],
        "params_m": counts["params"] / 1e6,
        "macs": counts["macs"],
        "gmacs": counts["macs"] / 1e9,
        "form": counts["form"],
        "input_size": list(card.input_size) if card.input_size else None,
        "device": device_name(dev),
        "device_type": dev.type,
        "hardware_class": "cpu" if dev.type == "cpu" else hardware_class(device_name(dev)),
        "batch_size": batch_size,
        "amp": amp,
        "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype],  # as eval says it
        "channels_last": channels_last,
        "reparam": folding,
        "folded_by": None,
        "compile": compile,
        "patch": patch,
        "throughput_img_s": None,
        "throughput_wall_img_s": None,
        "latency_ms": None,
        "postprocess_ms": None,
        "peak_memory_mb": None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "reported": reported_summary(card),
    }
    if not (throughput or latency):
        result["folded_by"] = counts["folded_by"]
        return result

    model = build.create_model(name, checkpoint=checkpoint, patch=patch)  # weights do not change speed
    if folding:  # fold train-time branches (MobileOne, RepVGG, FastViT) as the papers time them
        model, result["folded_by"] = fold(model, card)
    model = model.to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = prepare(card, model)  # untimed: a few-shot model fits its bank on generated references
    if compile:  # True: torch's default backend (inductor); a string names another (e.g. "eager")
        model = torch.compile(model) if compile is True else torch.compile(model, backend=compile)
    speed = {"amp": amp_dtype, "channels_last": channels_last, "warmup": warmup, "inputs": example_inputs(card)}
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
        post = postprocess_fn(card)
        if post is not None:  # NMS, mask top-k: part of what a user waits for, timed apart from the forward
            result["postprocess_ms"] = measure_postprocess(model, post, card.input_size, dev,
                                                           repeats=latency_repeats or max(repeats, 20), **speed)
    return result
