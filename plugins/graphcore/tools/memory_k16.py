"""Peak memory and time of GraphCore's k-shot fit and scoring at 224 (ViG-Ti, random weights, CPU).

    python plugins/graphcore/tools/memory_k16.py --shots 16 --percentage 0.001 --test 8

Run in a fresh process: the peak resident set size (``resource.getrusage``) is the process's. Printed:
the RSS after building the model (the baseline), the peak during the first ``fit`` (scikit-learn is imported there) and
after scoring, the bank size, and tracemalloc's peak of the Python-side (NumPy/scikit-learn projection)
allocations in a second, traced ``fit``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo_graphcore.model import graphcore_vig_ti  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--percentage", type=float, default=0.001)
    parser.add_argument("--test", type=int, default=8, help="test images scored (batch 1, as open-iad)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", choices=("faiss", "torch"), default=None, help="default: faiss when importable")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = graphcore_vig_ti(sampler_percentage=args.percentage, backend=args.backend).eval()
    reference = torch.randn(args.shots, 3, 224, 224)
    base = rss_mib()
    t = time.perf_counter()
    with torch.no_grad():
        model.fit(reference)
    fit_s = time.perf_counter() - t
    fit_peak = rss_mib()
    tracemalloc.start()  # a second fit, traced (tracing slows it down, so it is not the timed one)
    with torch.no_grad():
        model.fit(reference)
    py_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    t = time.perf_counter()
    with torch.no_grad():
        for _ in range(args.test):
            model(torch.randn(1, 3, 224, 224))
    score_s = (time.perf_counter() - t) / max(1, args.test)
    print(f"k={args.shots} sampler_percentage={args.percentage} backend={model.index.backend}: "
          f"{model.bank_source} reference patches -> bank {tuple(model.memory_bank.shape)}")
    print(f"RSS after build {base:.0f} MiB; peak during fit {fit_peak:.0f} MiB (+{fit_peak - base:.0f}); "
          f"peak after scoring {rss_mib():.0f} MiB; tracemalloc peak in fit (NumPy/sklearn) {py_peak:.1f} MiB")
    print(f"fit {fit_s:.2f} s, scoring {score_s * 1000:.0f} ms/image ({args.threads} thread(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
