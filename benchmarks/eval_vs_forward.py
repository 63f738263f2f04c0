"""Is data loading the bottleneck of `zoo eval`? Its img/s beside the model's pure forward img/s.

Issue #4's GPU target: on a GPU, `zoo eval` should reach at least 0.9 of the model's forward-only
throughput at the same batch size and precision. Both sides run here, one after the other:

- forward: `zoo.bench.measure_speed` on a resident `randn` batch (what `zoo bench` reports);
- eval: `zoo.evaluate` on a generated JPEG folder of ImageNet-like sizes (decoding in worker
  processes, pinned memory, uint8 batches normalised on the device, channels_last, autocast).

    python benchmarks/eval_vs_forward.py --model deit-s --device cuda --amp bf16 --batch-size 256 \
        --images 4096 --workers 12 [--write]

With --write the result goes to docs/evaluation.md (section "eval-vs-forward"). Random weights: the
speed does not depend on them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _sections import write_section  # benchmarks/ is the running script's folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="deit-s")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30, help="timed forward steps")
    parser.add_argument("--data", type=Path, help="an existing image folder (default: generate one)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import torch

    import zoo
    from zoo import api, bench
    from zoo.data.demo import make_demo_folder

    device = torch.device(args.device)
    card = api.get_card(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or make_demo_folder(Path(tmp) / "images", args.images, n_classes=50,
                                               min_side=330, max_side=500)  # ImageNet val-like sizes
        model = api.create_model(args.model).to(device).to(memory_format=torch.channels_last)
        forward = bench.measure_speed(model, card.input_size, args.batch_size, device,
                                      amp=bench.resolve_amp(args.amp, device), channels_last=True,
                                      warmup=10, repeats=args.repeats)
        del model
        result = zoo.evaluate(args.model, f"folder:{folder}", pretrained=False, record=False, progress=False,
                              device=args.device, batch_size=args.batch_size, workers=args.workers,
                              amp=args.amp or ("none" if device.type == "cpu" else "bf16"), channels_last=True)
    ratio = result["throughput_img_s"] / forward["img_s"]
    lines = [
        "## `zoo eval` beside the model's forward throughput",
        "",
        f"`python benchmarks/eval_vs_forward.py --model {args.model} --device {args.device} "
        f"--amp {args.amp or 'none'} --batch-size {args.batch_size} --images {result['images']} "
        f"--workers {args.workers}` on {bench.device_name(device)}, torch {torch.__version__}:",
        "",
        "| figure | img/s |",
        "|---|---:|",
        f"| forward only (resident batch) | {forward['img_s']:.1f} |",
        f"| `zoo eval` (decode + transfer + forward) | {result['throughput_img_s']:.1f} |",
        f"| ratio (target >= 0.9 on a GPU) | {ratio:.2f} |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        print(f"wrote {write_section('eval-vs-forward', text, page='evaluation.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
