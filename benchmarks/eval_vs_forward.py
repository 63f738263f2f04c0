"""Is data loading the bottleneck of `zoo eval`? Its img/s beside the model's pure forward img/s.

Issue #4's GPU target: on a GPU, `zoo eval` should reach at least 0.9 of the model's forward-only
throughput at the same batch size and precision. Both sides run here, one after the other:

- forward: `zoo.measure.bench.measure_speed` on a resident `randn` batch (what `zoo bench` reports);
- eval: `zoo.evaluate` on a generated JPEG folder of ImageNet-like sizes (decoding in worker
  processes, pinned memory, uint8 batches normalised on the device, channels_last; fp32 unless
  --amp asks for autocast, as `zoo eval` does).

    python benchmarks/eval_vs_forward.py --model deit-s --device cuda --amp bf16 --batch-size 256 \
        --images 4096 --workers 12 [--write]

With --write the result goes to docs/evaluation.md (section "eval-vs-forward"). Random weights: the
speed does not depend on them. `benchmarks/gpu_check.py` calls :func:`measure` for three cards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _sections import write_section  # benchmarks/ is the running script's folder


def measure(model_name: str, folder: Path, *, device: str, amp: str | None, batch_size: int, workers: int,
            repeats: int = 30, warmup: int = 10, limit: int | None = None) -> dict[str, Any]:
    """Forward img/s (resident batch) and `zoo eval` img/s of one card at one precision, same batch.

    :returns: ``forward_img_s``, ``eval_img_s``, ``ratio``, ``precision`` (as eval recorded it),
        ``images`` and, on CUDA, ``peak_memory_mb`` of the eval run.
    """
    import torch

    import zoo
    from zoo import api
    from zoo.measure import bench

    dev = torch.device(device)
    card = api.get_card(model_name)
    model = api.create_model(model_name).to(dev).to(memory_format=torch.channels_last)
    forward = bench.measure_speed(model, card.input_size, batch_size, dev, amp=bench.resolve_amp(amp, dev),
                                  channels_last=True, warmup=warmup, repeats=repeats)
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    result = zoo.evaluate(model_name, f"folder:{folder}", pretrained=False, record=False, progress=False,
                          device=device, batch_size=batch_size, workers=workers, amp=amp, channels_last=True,
                          limit=limit)
    return {
        "model": card.name,
        "precision": result.get("precision", amp or "fp32"),
        "forward_img_s": forward["img_s"],
        "eval_img_s": result["throughput_img_s"],
        "ratio": result["throughput_img_s"] / forward["img_s"],
        "images": result["images"],
        "peak_memory_mb": round(torch.cuda.max_memory_allocated(dev) / 2**20, 1) if dev.type == "cuda" else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="deit-s")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast (default: fp32)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30, help="timed forward steps")
    parser.add_argument("--data", type=Path, help="an existing image folder (default: generate one)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import torch

    from zoo.measure import bench
    from zoo.tasks.classification.data.demo import make_demo_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or make_demo_folder(Path(tmp) / "images", args.images, n_classes=50,
                                               min_side=330, max_side=500)  # ImageNet val-like sizes
        r = measure(args.model, folder, device=args.device, amp=args.amp, batch_size=args.batch_size,
                    workers=args.workers, repeats=args.repeats)
    lines = [
        "## `zoo eval` beside the model's forward throughput",
        "",
        f"`python benchmarks/eval_vs_forward.py --model {args.model} --device {args.device} "
        f"--amp {args.amp or 'none'} --batch-size {args.batch_size} --images {r['images']} "
        f"--workers {args.workers}` on {bench.device_name(torch.device(args.device))}, torch {torch.__version__}, "
        f"{r['precision']}:",
        "",
        "| figure | img/s |",
        "|---|---:|",
        f"| forward only (resident batch) | {r['forward_img_s']:.1f} |",
        f"| `zoo eval` (decode + transfer + forward) | {r['eval_img_s']:.1f} |",
        f"| ratio (target >= 0.9 on a GPU) | {r['ratio']:.2f} |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        print(f"wrote {write_section('eval-vs-forward', text, page='evaluation.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
