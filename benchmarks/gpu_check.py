"""The GPU check (`make gpu-check`): what zoo promises on a GPU, measured in one run of a few minutes.

On one CUDA device, for three cards (default deit-t, efficientmod-xxs, convnext-t: a ViT, the demo
card, a CNN), in fp32 and bf16:

1. `zoo eval` on a generated image folder (what `zoo demo-data` writes, ImageNet-like sizes) beside
   the model's pure forward img/s at the same batch and precision (target: eval >= 0.9 x forward),
   with the eval run's peak GPU memory (`benchmarks/eval_vs_forward.py`'s `measure`);
2. `zoo bench` throughput beside timm's benchmark.py loop. timm's `benchmark.py` is not in the
   timm wheel and nothing can be downloaded on the check machine, so the loop of its
   `InferenceBenchmarkRunner.run` is written inline here (no_grad, autocast, unsynchronised start and
   synchronised end per step, samples / wall time), on the same model object;
3. `zoo bench --compile` beside eager `zoo bench` (torch.compile with the default inductor backend).

Weights are random: no weights can be downloaded on the check machine, and speed does not depend on
them; accuracy is not measured. The Markdown section it prints (dated, with the GPU's name) is also
written to ``--out`` (default ``$OUT/gpu-check.md`` when ``$OUT`` is set, else
``benchmarks/out/gpu-check.md``), ready to paste into docs/benchmarks.md.

    python benchmarks/gpu_check.py                  # the GPU check (exit 2 without a CUDA device)
    python benchmarks/gpu_check.py --dry-run        # the same steps on the CPU at tiny sizes (< 1 min)

Exit status: 0 when every eval/forward ratio meets the target (always on a dry run), 1 when one
does not (the report is written first), 2 without a CUDA device.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts
from eval_vs_forward import measure  # noqa: E402

MODELS = ("deit-t", "efficientmod-xxs", "convnext-t")
TARGET = 0.9  # eval img/s / forward img/s on a GPU


@dataclass
class Sizes:
    batch_size: int
    images: int  #: files in the folder ...
    distinct: int  #: ... copies of this many generated pictures (generating one costs ~50 ms)
    min_side: int
    max_side: int
    workers: int
    warmup: int
    repeats: int


FULL = Sizes(batch_size=256, images=8192, distinct=512, min_side=330, max_side=500, workers=min(12, os.cpu_count() or 1),
             warmup=10, repeats=30)
TINY = Sizes(batch_size=2, images=6, distinct=4, min_side=40, max_side=72, workers=0, warmup=0, repeats=1)


def make_folder(root: Path, sizes: Sizes) -> Path:
    """A class-per-folder set of ``sizes.images`` JPEGs: ``sizes.distinct`` generated, the rest copies.

    Every file is decoded on its own, so copies load the eval pipeline exactly as distinct pictures
    do, at a fraction of the generation time (8192 images: one startup batch in 32, not in 8).
    """
    import shutil

    from zoo.tasks.classification.data.demo import make_demo_folder

    make_demo_folder(root, min(sizes.distinct, sizes.images), n_classes=10, min_side=sizes.min_side,
                     max_side=sizes.max_side)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for i in range(sizes.images - len(files)):
        source = files[i % len(files)]
        shutil.copyfile(source, source.with_name(f"{source.stem}_copy{i}{source.suffix}"))
    return root


def timm_style_throughput(model: Any, input_size: tuple[int, ...], batch_size: int, device: Any,
                          amp: Any, warmup: int, steps: int) -> float:
    """samples/s as timm's benchmark.py ``InferenceBenchmarkRunner.run`` measures it, inline."""
    import torch

    def timestamp(sync: bool = False) -> float:
        if sync and device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    def step() -> None:
        if amp is None:
            model(x)
        else:
            with torch.autocast(device_type=device.type, dtype=amp):
                model(x)

    x = torch.randn((batch_size, *input_size), device=device)
    with torch.no_grad():
        for _ in range(warmup):
            step()
            timestamp(True)
        start = timestamp()
        for _ in range(steps):
            step()
            timestamp(True)
        elapsed = timestamp(True) - start
    return batch_size * steps / elapsed


def fail(message: str) -> int:
    print(f"error: gpu_check: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> tuple[str, bool]:
    """Every measurement; returns the Markdown section and whether the eval target holds."""
    import torch

    from zoo import __version__, api
    from zoo.measure import bench

    sizes = TINY if args.tiny else FULL
    batch = args.batch_size or sizes.batch_size
    dev = torch.device(args.device)
    amps: list[str | None] = [None]
    notes = []
    if dev.type == "cuda" or bench.cpu_supports("bf16"):
        amps.append("bf16")
    else:
        notes.append(f"bf16 skipped: this CPU ({bench.cpu_name()}) has no native bf16.")
    compile_backend: bool | str = True if dev.type == "cuda" else "eager"
    if compile_backend == "eager":
        notes.append("`--compile` ran with the `eager` backend on the CPU dry run (inductor takes minutes there).")
    started = time.perf_counter()
    eval_rows, bench_rows, compile_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "images", sizes)
        for name in args.models:
            card = api.get_card(name)
            for amp in amps:
                r = measure(name, folder, device=args.device, amp=amp, batch_size=batch, workers=sizes.workers,
                            repeats=sizes.repeats, warmup=sizes.warmup)
                eval_rows.append(r)
                print(f"eval {name} {r['precision']}: forward {r['forward_img_s']:.1f} img/s, eval "
                      f"{r['eval_img_s']:.1f} img/s, ratio {r['ratio']:.2f}", file=sys.stderr, flush=True)
                z = bench.benchmark(name, device=args.device, batch_size=batch, amp=amp, warmup=sizes.warmup,
                                    repeats=sizes.repeats, latency=False)
                model = api.create_model(name).to(dev)
                t = timm_style_throughput(model, card.input_size, batch, dev, bench.resolve_amp(amp, dev),
                                          sizes.warmup, sizes.repeats)
                del model
                bench_rows.append({"model": name, "precision": z["precision"], "zoo": z["throughput_img_s"],
                                   "zoo_wall": z["throughput_wall_img_s"], "timm": t,
                                   "peak_memory_mb": z["peak_memory_mb"]})
                print(f"bench {name} {z['precision']}: zoo {z['throughput_img_s']:.1f} img/s, timm loop {t:.1f}",
                      file=sys.stderr, flush=True)
            if time.perf_counter() - started > args.budget_s:
                notes.append(f"`--compile` of {name} skipped: past the {args.budget_s:g} s budget.")
                continue
            c = bench.benchmark(name, device=args.device, batch_size=batch, compile=compile_backend,
                                warmup=max(sizes.warmup, 3), repeats=sizes.repeats, latency=False)
            eager = next(row["zoo"] for row in bench_rows if row["model"] == name and row["precision"] == "fp32")
            compile_rows.append({"model": name, "eager": eager, "compiled": c["throughput_img_s"],
                                 "peak_memory_mb": c["peak_memory_mb"]})
            print(f"compile {name}: {c['throughput_img_s']:.1f} img/s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    target_ok = dev.type != "cuda" or all(r["ratio"] >= TARGET for r in eval_rows)
    return render(args, dev, batch, sizes, eval_rows, bench_rows, compile_rows, notes, elapsed, __version__), target_ok


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render(args: argparse.Namespace, dev: Any, batch: int, sizes: Sizes, eval_rows: list[dict], bench_rows: list[dict],
           compile_rows: list[dict], notes: list[str], elapsed: float, version: str) -> str:
    import timm
    import torch

    from zoo.measure import bench

    mode = "dry run on the CPU at tiny sizes: the figures exercise the script, they measure nothing" if args.tiny \
        else "random weights (nothing can be downloaded on the check machine): speed only, no accuracy"
    lines = [
        f"## GPU check, {_dt.date.today().isoformat()}, {bench.device_name(dev)}",
        "",
        f"`python benchmarks/gpu_check.py{' --dry-run' if args.tiny else ''}` ({mode}); torch {torch.__version__}, "
        f"timm {timm.__version__}, zoo {version}; batch {batch}, {sizes.images} JPEGs "
        f"({sizes.distinct} generated pictures, {sizes.min_side}-{sizes.max_side} px, and copies), {sizes.workers} decode workers, {sizes.repeats} timed steps; "
        f"{elapsed:.0f} s in all.",
        "",
        "### `zoo eval` beside the model's forward",
        "",
        f"| model | precision | forward img/s | `zoo eval` img/s | eval / forward (target >= {TARGET}) | peak memory MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['model']} | {r['precision']} | {r['forward_img_s']:.1f} | {r['eval_img_s']:.1f} | {r['ratio']:.2f} | "
              f"{_mb(r['peak_memory_mb'])} |" for r in eval_rows]
    lines += [
        "",
        "### `zoo bench` beside timm's benchmark.py loop",
        "",
        "| model | precision | zoo bench img/s (median step) | zoo bench img/s (wall) | timm loop img/s | "
        "zoo wall / timm | peak memory MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['model']} | {r['precision']} | {r['zoo']:.1f} | {r['zoo_wall']:.1f} | {r['timm']:.1f} | "
              f"{r['zoo_wall'] / r['timm']:.3f} | {_mb(r['peak_memory_mb'])} |" for r in bench_rows]
    lines += [
        "",
        "### `zoo bench --compile` (fp32)",
        "",
        "| model | eager img/s | compiled img/s | compiled / eager | peak memory MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['model']} | {r['eager']:.1f} | {r['compiled']:.1f} | {r['compiled'] / r['eager']:.2f} | "
              f"{_mb(r['peak_memory_mb'])} |" for r in compile_rows]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    if dev.type == "cuda":
        met = sum(r["ratio"] >= TARGET for r in eval_rows)
        lines += ["", f"eval / forward >= {TARGET}: {met} of {len(eval_rows)} runs."]
    return "\n".join(lines) + "\n"


def default_out() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "gpu-check.md" if out else Path(__file__).resolve().parent / "out" / "gpu-check.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu with --tiny")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a rehearsal, not a measurement)")
    parser.add_argument("--dry-run", action="store_true", help="same as --device cpu --tiny")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="cards to check (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, help="override the batch size (default 256; 2 with --tiny)")
    parser.add_argument("--budget-s", type=float, default=360.0,
                        help="skip the remaining --compile runs past this many seconds (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the Markdown here (default: $OUT/gpu-check.md or "
                                                 "benchmarks/out/gpu-check.md)")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.tiny = "cpu", True
    if args.batch_size is not None and args.batch_size < 1:
        return fail(f"--batch-size: expected a positive integer, got {args.batch_size}")

    import torch

    from zoo.errors import ZooError, first_line

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        return fail("no CUDA device on this machine: run it where a GPU is lent, or --dry-run for the CPU rehearsal")
    if args.device == "cpu" and not args.tiny:
        return fail("--device cpu measures nothing useful at GPU sizes: add --tiny (or use --dry-run)")
    try:
        text, target_ok = run(args)
    except ZooError as exc:
        return fail(first_line(exc))
    print(text)
    out = args.out or default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    if not target_ok:
        print(f"gpu_check: eval / forward below {TARGET} in at least one run (see the table)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
