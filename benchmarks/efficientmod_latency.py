"""Batch-1 CPU latency of every model of the EfficientMod paper's latency table, beside the table.

    python benchmarks/efficientmod_latency.py [--repeats 20] [--warmup 5] [--threads N] [--write]

The table's CPU column (the cards' `reported.latency` entry whose device starts with "CPU") was
measured on hardware the paper/deck does not name, so absolute numbers are not comparable; the
ranking is. We report each model's median/p90 here and Spearman's rank correlation between the
two columns. Cards whose plugin is not installed are listed as skipped. With --write the table goes
to docs/benchmarks.md (section "efficientmod-latency").
"""

from __future__ import annotations

import argparse
import os
import sys

from _sections import write_section  # benchmarks/ is the running script's folder

from zoo.measure.ranking import spearman

PATTERNS = ("mobilenetv2-*", "fasternet-*", "edgevit-*", "mobileone-*", "mobilevit*", "efficientformer*", "deit-t",
            "efficientnet-b0", "poolformer-s12", "mobileformer-508m", "efficientmod-*")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import torch

    from zoo import api
    from zoo.measure import bench

    cat = api.catalog()
    cards = {c.name: c for pattern in PATTERNS  # a plain name is exact ('deit-t', not 'tome-deit-t')
             for c in (cat.select(pattern) if "*" in pattern else [cat.cards[pattern]] if pattern in cat.cards else [])}
    load_before = os.getloadavg()[0]
    rows, skipped = [], []
    for name, card in sorted(cards.items(), key=lambda kv: kv[0]):
        cpu = next((item for item in (card.reported.latency if card.reported else ())
                    if str(item["device"]).upper().startswith("CPU")), None)
        if cpu is None:
            skipped.append((name, "no CPU latency on the card"))
            continue
        if not cat.installed(card):
            skipped.append((name, f"plugin {card.plugin} not installed"))
            continue
        r = bench.benchmark(name, device="cpu", throughput=False, latency=True, reparam=True, warmup=args.warmup,
                            latency_repeats=args.repeats, threads=args.threads)
        rows.append((name, float(cpu["value"]), r["latency_ms"]["median"], r["latency_ms"]["p90"],
                     card.input_size[1]))
        print(f"{name}: table {cpu['value']} ms, here {r['latency_ms']['median']:.2f} ms", file=sys.stderr)
    load_after = os.getloadavg()[0]
    rho = spearman([r[1] for r in rows], [r[2] for r in rows]) if len(rows) > 2 else float("nan")
    lines = [
        "## EfficientMod latency table: batch-1 CPU latency",
        "",
        f"`python benchmarks/efficientmod_latency.py --repeats {args.repeats} --warmup {args.warmup}"
        f"{f' --threads {args.threads}' if args.threads else ''}`: "
        f"re-parameterised where timm can fold (MobileOne), random weights, fp32, batch 1, {bench.device_name(torch.device('cpu'))}, torch {torch.__version__}. "
        f"Load average {load_before:.1f} before and {load_after:.1f} after: the 2 cores are shared with other "
        "processes, so medians are noisy and absolute values are not the paper's (its CPU is not named).",
        "",
        f"**Spearman rank correlation (table CPU ms vs measured median ms), {len(rows)} models: {rho:.3f}**",
        "",
        "| model | input | table CPU ms | here median ms | here p90 ms | here / table |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, table, median, p90, size in sorted(rows, key=lambda r: r[1]):
        lines.append(f"| `{name}` | {size} | {table:.1f} | {median:.2f} | {p90:.2f} | {median / table:.2f} |")
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"`{n}` ({why})" for n, why in skipped) + "."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        print(f"wrote {write_section('efficientmod-latency', text)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
