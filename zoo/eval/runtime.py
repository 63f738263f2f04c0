"""The runtime every task and ``zoo bench`` share: device, precision, batch, workers, threads, progress.

One set of rules for the options all runs have (``--device``, ``--amp``, ``--batch-size``,
``--workers``, ``--threads``, ``--limit``, ``--channels-last``, ``--compile``, ``--progress``),
checked before a model is built. fp32 is the default precision everywhere (issue #10, item 16).
Task-specific options live in the task's own options dataclass (:class:`zoo.registry.tasks.Task`).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError

if TYPE_CHECKING:
    import torch


@dataclass
class Runtime:
    """The options every run shares. Built by :meth:`from_options`, which refuses unknown names."""

    device: str = "auto"  #: auto | cpu | cuda | cuda:N
    batch_size: int = 128
    workers: int | None = None  #: data-loading processes; None: min(8, CPUs)
    amp: str | None = None  #: bf16 | fp16 | none; None: fp32 (autocast is opt-in)
    channels_last: bool = True
    compile: bool = False
    threads: int | None = None  #: CPU only: torch intra-op threads; None: torch's default
    limit: int | None = None  #: first N samples in the dataset's fixed order
    skip_bad_images: bool = False
    progress: bool | None = None  #: None: when stderr is a terminal
    predictions: bool = False  #: also return per-sample predictions (tests, --save-predictions)

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Runtime:
        """Check ``options`` (:func:`check_options`) and build the runtime; ``None`` values mean the default.

        :raises UserError: an option no run has (a task's own options are split off before), or a bad value.
        """
        unknown = sorted(set(options) - cls.names())
        if unknown:
            raise UserError(f"unknown option {unknown[0]!r} (runtime options: {', '.join(sorted(cls.names()))})")
        check_options(options)
        return cls(**{k: v for k, v in options.items() if v is not None})

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def precision(self, device: torch.device | None = None) -> str:
        """``fp32``, ``bf16`` or ``fp16``."""
        return precision_of(self.amp, (device or self.torch_device()).type)

    def autocast(self, device: torch.device):  # type: ignore[no-untyped-def]
        """The autocast context of this precision (a no-op for fp32)."""
        import contextlib

        import torch

        precision = self.precision(device)
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[precision])

    def num_workers(self) -> int:
        from zoo.eval import distributed

        return self.workers if self.workers is not None else min(8, distributed.cpu_count())

    def show_progress(self) -> bool:
        return bool(self.progress if self.progress is not None else sys.stderr.isatty())


#: ``--amp`` values meaning "no autocast"
FP32_NAMES = ("none", "fp32", "off", "false")


def _count(options: Mapping[str, Any], key: str, minimum: int, what: str, maximum: int | None = None,
           why_max: str = "") -> None:
    value = options.get(key)
    if value is None:
        return
    flag = f"--{key.replace('_', '-')}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{flag}: expected {what} (an integer >= {minimum}), got {value!r}")
    if value < minimum:
        raise UserError(f"{flag}: expected {what} >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UserError(f"{flag}: {value} is more than {maximum}{why_max}")


def device_type(spec: str | None) -> str:
    """``auto``/``cpu``/``cuda``/``cuda:N`` -> ``"cpu"`` or ``"cuda"``; a UserError for anything
    else, for CUDA on a machine without it, or for a GPU index the machine does not have."""
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    match = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", text)
    if not match:
        raise UserError(f"--device: expected auto, cpu, cuda or cuda:N, got {spec!r}")
    if match[1] == "cpu":
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise UserError(f"--device {text}: CUDA is not available on this machine")
    if match[2] is not None and int(match[2]) >= torch.cuda.device_count():
        raise UserError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return "cuda"


def precision_of(amp: str | None, device: str) -> str:
    """The precision a run computes in: ``fp32`` unless bf16/fp16 autocast is asked for.

    fp32 is the default everywhere (issue #10, item 16): the papers and timm's ``validate.py``
    evaluate in fp32, and autocast moves top-1 by up to a few tenths.
    """
    if amp is None:
        return "fp32"
    text = str(amp).strip().lower()
    if text in FP32_NAMES:
        return "fp32"
    if text not in ("bf16", "fp16"):
        raise UserError(f"--amp: expected bf16, fp16 or none, got {amp!r}")
    if text == "fp16" and device == "cpu":
        raise UserError("--amp fp16 is for CUDA; use --amp bf16 on the CPU")
    return text


def check_options(options: Mapping[str, Any]) -> str:
    """Check the runtime options every task hook shares; return the device type they resolve to."""
    cores = os.cpu_count() or 1
    _count(options, "batch_size", 1, "a batch size")
    _count(options, "workers", 0, "a number of decoding processes", 4 * cores,
           f" (4 per CPU core on this {cores}-core machine): more cannot decode faster")
    _count(options, "threads", 1, "a number of CPU threads", cores, ", the CPU cores of this machine")
    _count(options, "limit", 1, "a number of images")
    device = device_type(options.get("device"))
    precision_of(options.get("amp"), device)
    return device


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the local rank's GPU when there is one, else the CPU (checked by
    :func:`device_type`, the one rule for ``--device``)."""
    import torch

    kind = device_type(spec)
    text = "auto" if spec is None else spec.strip().lower()
    device = torch.device(kind if text == "auto" else text)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", _local_rank() % torch.cuda.device_count())
    return device


def resolve_precision(amp: str | None, device: torch.device) -> str:
    """The autocast dtype name, or ``fp32`` (the default on every device, issue #10 item 16)."""
    return precision_of(amp, device.type)


class Progress:
    """A one-line progress bar with img/s on stderr."""

    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.done, self.start, self.last = 0, time.perf_counter(), 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.2 and self.done < self.total):
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                         f"{rate:7.1f} img/s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _local_rank() -> int:
    from zoo.eval import distributed

    return distributed.local_rank()
