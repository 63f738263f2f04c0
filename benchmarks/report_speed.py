"""`zoo report` on every card and 1,000 generated eval records: generation time, and how long the site
takes to load in headless Chromium (issue #15: under 5 s and under 2 s).

    .venv/bin/python benchmarks/report_speed.py [--lines 1000] [--repeats 3] [--write-docs]

Records are written with zoo.records' own writer into a temporary zoo home: for each card's
figures, runs at the claim's protocol (judged), bf16 and --limit runs (not judged) and runs of
no-card models, plus one bench record per card. Generation is timed in a fresh ``zoo report``
process (imports included) and in-process. Load time is the page's own mark: ``performance.now()``
when its script has finished (the catalog filtered and sorted, the chart drawn by plotly), read from
``--dump-dom``; the Chromium start-up around it is printed apart (about:blank in the same way).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATION_LIMIT_S, LOAD_LIMIT_MS = 5.0, 2000.0


def write_records(lines: int, seed: int = 0) -> tuple[int, int]:
    """``lines`` eval records and one bench record per runnable card, in ``$ZOO_HOME``."""
    from zoo.claims import verify
    from zoo.errors import ZooError
    from zoo.records import Result, append, append_bench
    from zoo.registry import lookup

    rng = random.Random(seed)
    cards = lookup.catalog().select()
    figures = [(card, dataset, metric, float(value)) for card in cards if card.reported
               for claim, dataset, metric, value in card.reported.figures() if claim == f"{dataset}.{metric}"]
    protocols: dict[tuple[str, str], dict] = {}
    written = 0
    while written < lines:
        card, dataset, metric, value = rng.choice(figures)
        key = (card.name, dataset)
        if key not in protocols:
            try:
                protocols[key] = verify.claim_protocol(card, dataset)
            except ZooError:
                protocols[key] = {}
        kind = rng.random()
        result = Result(model=card.name if kind > 0.05 else f"gone-{written}", dataset=dataset, task=card.task,
                        protocol=protocols[key], metrics={metric: round(value + rng.gauss(0, 0.3), 2)},
                        weights={"origin": "official" if card.weights else "manual"}, images=50000,
                        precision="bf16" if 0.05 < kind < 0.2 else "fp32", limit=100 if 0.2 < kind < 0.3 else None,
                        device="NVIDIA H100", time=f"2026-11-{1 + written % 28:02d}T00:00:00Z")
        append(result)
        written += 1
    benched = 0
    for card in cards:
        r = card.reported
        if card.card_only or r is None or r.params_m is None:
            continue
        append_bench(Result(model=card.name, dataset="synthetic", kind="bench", device="NVIDIA H100",
                            metrics={"params_m": float(r.params_m) * rng.uniform(0.98, 1.02),
                                     "gmacs": float(r.gmacs or 1.0) * rng.uniform(0.9, 1.1),
                                     "throughput_img_s": rng.uniform(200, 5000), "latency_ms": rng.uniform(1, 30)},
                            details={"batch_size": 128, "device_type": "cuda"}))
        benched += 1
    return written, benched


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    sys.exit("no chromium binary on PATH (Debian: apt-get install chromium)")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant (chromium's too)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the process and its children) and stdout of one fresh process."""
    cpu, start = _cpu(), time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)
    return time.perf_counter() - start, _cpu() - cpu, out.stdout


def dump(browser: str, url: str, profile: Path) -> tuple[float, float, str]:
    return timed([browser, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}",
                  "--window-size=1280,900", "--dump-dom", url])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true", help="Write the figures into docs/report.md.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-report-speed-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    try:
        lines, benched = write_records(args.lines)
        from zoo.registry import lookup
        from zoo.report.site import build_site

        n_cards = len(lookup.catalog().select())
        fresh, fresh_cpu = [], []
        for i in range(args.repeats):  # a fresh process: imports, catalog, judging, rendering
            wall, cpu, _ = timed([str(Path(sys.executable).parent / "zoo"), "report", "-o", str(work / f"cli{i}")])
            fresh.append(wall)
            fresh_cpu.append(cpu)
        warm = []
        for i in range(args.repeats):
            start = time.perf_counter()
            build_site(work / f"site{i}")
            warm.append(time.perf_counter() - start)
        site = work / "site0"
        browser = chromium()
        blank = [dump(browser, "about:blank", work / "profile")[:2] for _ in range(args.repeats)]
        loads: dict[str, list[float]] = {}
        walls: dict[str, list[tuple[float, float]]] = {}
        for page in ("index.html", "charts.html", "papers/fastervit.html"):
            for _ in range(args.repeats):
                wall, cpu, dom = dump(browser, (site / page).as_uri(), work / "profile")
                mark = re.search(r'data-load-ms="([0-9.]+)"', dom)
                if mark is None:
                    sys.exit(f"{page}: no load mark in the dumped DOM (the page script did not finish)")
                loads.setdefault(page, []).append(float(mark.group(1)))
                walls.setdefault(page, []).append((wall, cpu))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [f"{n_cards} cards, {lines} eval records, {benched} bench records; {os.cpu_count()} CPUs, "
            f"load average {load:.1f}; median of {args.repeats}",
            "",
            "| step | median wall | CPU | limit |", "|---|---:|---:|---:|",
            f"| `zoo report` in a fresh process | {statistics.median(fresh):.2f} s | "
            f"{statistics.median(fresh_cpu):.2f} s | {GENERATION_LIMIT_S:g} s |",
            f"| `build_site()` in-process (imports done) | {statistics.median(warm):.2f} s | | |"]
    for page, values in loads.items():
        rows.append(f"| load `{page}` (page's own mark, script done) | {statistics.median(values):.0f} ms | | "
                    f"{LOAD_LIMIT_MS:g} ms |")
    for page, pairs in [*walls.items(), ("about:blank", blank)]:
        rows.append(f"| `chromium --dump-dom {page}` (start-up included) | {statistics.median(w for w, _ in pairs):.2f} s"
                    f" | {statistics.median(c for _, c in pairs):.2f} s | |")
    text = "\n".join(rows)
    print(text)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).parent))
        from _sections import write_section

        print(f"wrote {write_section('report-speed', text, page='report.md')}")
    slow = statistics.median(fresh) > GENERATION_LIMIT_S or any(
        statistics.median(v) > LOAD_LIMIT_MS for v in loads.values())
    sys.exit(1 if slow else 0)


if __name__ == "__main__":
    main()
