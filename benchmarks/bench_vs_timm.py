"""Throughput of `zoo bench` beside timm's own benchmark.py, same model, batch, precision and device.

timm's `benchmark.py` is not in the timm wheel: pass the file from a timm checkout (the copy this
was written against is huggingface/pytorch-image-models@aa4b5850):

    python benchmarks/bench_vs_timm.py --timm-benchmark /path/to/timm/benchmark.py \
        --model resnet-50 --batch-size 32 --rounds 5 [--write]

The two runs alternate (zoo, timm, zoo, timm, ...) so that load from other processes hits both
alike; the medians over rounds are compared. timm reports samples / wall time over its timed
steps; zoo reports batch / median step time and the same wall-time figure. With --write the
table goes to docs/benchmarks.md (section "bench-vs-timm").
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
from pathlib import Path

from _sections import write_section  # benchmarks/ is the running script's folder

PRECISION = {None: "float32", "bf16": "amp_bfloat16", "fp16": "amp"}


def load_timm_benchmark(path: str):
    spec = importlib.util.spec_from_file_location("timm_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm-benchmark", default=os.environ.get("TIMM_BENCHMARK"), required=False)
    parser.add_argument("--model", default="resnet-50", help="zoo card built by the timm-baselines plugin")
    parser.add_argument("--timm-model", help="timm architecture (default: the card's builder)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--amp", choices=["bf16", "fp16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run (timm needs >= 5)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = parser.parse_args()
    if not args.timm_benchmark or not Path(args.timm_benchmark).is_file():
        print("error: pass --timm-benchmark PATH (benchmark.py from a timm checkout) or set TIMM_BENCHMARK",
              file=sys.stderr)
        return 2

    import torch

    from zoo import api
    from zoo.measure import bench

    card = api.get_card(args.model)
    arch = args.timm_model or card.builder
    timm_bench = load_timm_benchmark(args.timm_benchmark)
    runner = timm_bench.InferenceBenchmarkRunner(
        arch, device=args.device, precision=PRECISION[args.amp], num_warm_iter=args.warmup,
        num_bench_iter=args.steps, batch_size=args.batch_size, gp="avg",  # timm's default 'fast' pool differs
    )
    zoo_median, zoo_wall, timm_wall = [], [], []
    for _ in range(args.rounds):
        r = bench.benchmark(card.name, device=args.device, batch_size=args.batch_size, amp=args.amp,
                            warmup=args.warmup, repeats=args.steps, latency=False)
        zoo_median.append(r["throughput_img_s"])
        zoo_wall.append(r["throughput_wall_img_s"])
        timm_wall.append(runner.run()["samples_per_sec"])
    z, zw, t = (statistics.median(v) for v in (zoo_median, zoo_wall, timm_wall))
    load = os.getloadavg()[0]
    lines = [
        "## `zoo bench` vs timm's benchmark.py",
        "",
        f"`python benchmarks/bench_vs_timm.py --model {card.name} --batch-size {args.batch_size} "
        f"--rounds {args.rounds} --steps {args.steps}`: card `{card.name}` (timm `{arch}`), "
        f"{PRECISION[args.amp]}, {bench.device_name(torch.device(args.device))}, torch {torch.__version__}, "
        f"load average {load:.1f} at the end (the machine is shared). Medians of {args.rounds} alternating rounds.",
        "",
        "| figure | zoo bench | timm benchmark.py | zoo / timm |",
        "|---|---:|---:|---:|",
        f"| img/s, batch / median step (zoo's headline) | {z:.1f} | – | {z / t:.3f} |",
        f"| img/s, samples / wall time (timm's figure) | {zw:.1f} | {t:.1f} | {zw / t:.3f} |",
        "",
        f"Per round, zoo (median step): {', '.join(f'{v:.1f}' for v in zoo_median)}; "
        f"zoo (wall): {', '.join(f'{v:.1f}' for v in zoo_wall)}; timm: {', '.join(f'{v:.1f}' for v in timm_wall)}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        print(f"wrote {write_section('bench-vs-timm', text)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
