"""Token Merging speed-up on CPU: timm vit_small_patch16_224 (random init) unpatched vs ToMe r=13.

Both models run interleaved (A, B, A, B, ...) so that load from other processes on a shared
machine hits both alike; each repeat times a few batches and the median per model is reported.

    .venv/bin/python benchmarks/tome_speedup.py [--batch-size 32 --threads 2 --repeats 7 --r 13]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_small_patch16_224")
    parser.add_argument("--r", type=int, default=13)
    parser.add_argument("--prop-attn", action="store_true", help="proportional attention (the timm-card setting)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, default=2, help="batches timed per repeat")
    args = parser.parse_args()

    import timm
    import torch
    from zoo_tome.patch import apply

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = timm.create_model(args.model, pretrained=False).eval()
    tome = apply(copy.deepcopy(base), r=args.r, prop_attn=args.prop_attn)
    x = torch.randn(args.batch_size, 3, *base.patch_embed.img_size)
    models = {"unpatched": base, f"tome r={args.r}": tome}

    def seconds_per_batch(model: torch.nn.Module) -> float:
        start = time.perf_counter()
        for _ in range(args.batches):
            model(x)
        return (time.perf_counter() - start) / args.batches

    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():  # warm-up
            model(x)
        for _ in range(args.repeats):
            for name, model in models.items():
                times[name].append(seconds_per_batch(model))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model}, batch {args.batch_size}, {args.threads} threads, torch {torch.__version__}, "
          f"timm {timm.__version__}, {args.repeats} interleaved repeats x {args.batches} batches, "
          f"load average (1 min) {load:.1f} on {os.cpu_count()} CPUs")
    medians = {}
    for name, values in times.items():
        medians[name] = statistics.median(values)
        spread = f"min {min(values):.3f} s, max {max(values):.3f} s"
        print(f"  {name:12s} median {medians[name]:.3f} s/batch = {args.batch_size / medians[name]:7.1f} img/s ({spread})")
    base_t, tome_t = medians.values()
    print(f"  speed-up (median unpatched / median ToMe): {base_t / tome_t:.2f}x")


if __name__ == "__main__":
    main()
