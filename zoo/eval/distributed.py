"""torch.distributed glue for ``zoo eval`` under ``torchrun``: rank, reductions, launch.

Outside torchrun (no ``WORLD_SIZE`` in the environment) every helper is the identity and
nothing is initialised. Under torchrun, :func:`init` starts a process group (``nccl`` on CUDA,
``gloo`` on the CPU) and only rank 0 prints and writes results.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def cpu_count() -> int:
    """The cores this process may use: its share when torchrun starts several on this machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def _active() -> bool:
    if world_size() <= 1:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init(device_type: str) -> bool:
    """Join the torchrun process group if there is one; True if this call started it."""
    if world_size() <= 1:
        return False
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank() % torch.cuda.device_count())
    dist.init_process_group(backend=backend)
    return True


def finish(started: bool) -> None:
    if started:
        import torch.distributed as dist

        dist.destroy_process_group()  # no barrier: the reductions already synchronised, and a failed rank must not hang


def all_sum(tensor: Any) -> Any:
    if _active():
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_max(value: float) -> float:
    if not _active():
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def all_gather(items: list[Any]) -> list[Any]:
    """Concatenate a small Python list across ranks (bad images, predictions)."""
    if not _active():
        return list(items)
    import torch.distributed as dist

    gathered: list[list[Any] | None] = [None] * world_size()
    dist.all_gather_object(gathered, items)
    return [x for part in gathered for x in (part or [])]


def launch(nproc: int, args: Sequence[str]) -> int:
    """Run ``zoo <args>`` under ``torchrun --standalone --nproc-per-node nproc``; its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "zoo", *args]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, cpu_count() // nproc)))  # torchrun's own default is 1
    return subprocess.call(cmd, env=env)
