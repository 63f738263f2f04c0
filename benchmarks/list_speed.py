"""`zoo list` against `timm.list_models()`, side by side: wall time and peak memory (RSS).

    .venv/bin/python benchmarks/list_speed.py [--repeats 7]

Each command runs in a fresh process, alternating, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
COMMANDS = {
    "zoo list": [str(VENV_BIN / "zoo"), "list"],
    "timm.list_models()": [sys.executable, "-c", "import timm; timm.list_models()"],
}


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(after, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    peak: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, argv in COMMANDS.items():
            elapsed, rss = run_once(argv)
            times[name].append(elapsed)
            peak[name] = rss  # ru_maxrss of children is a running max: the last reading is the max so far
    zoo_median = statistics.median(times["zoo list"])
    for name, values in times.items():
        print(f"{name:<22} median {statistics.median(values) * 1000:8.0f} ms   (min {min(values) * 1000:.0f} ms)")
    print(f"peak RSS of any child so far: {max(peak.values()):.0f} MiB (ru_maxrss; timm dominates)")
    print(f"ratio timm/zoo: {statistics.median(times['timm.list_models()']) / zoo_median:.1f}x")


if __name__ == "__main__":
    main()
