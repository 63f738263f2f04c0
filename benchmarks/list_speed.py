"""`zoo list` against `timm.list_models()`, side by side: wall time and peak memory (RSS).

    .venv/bin/python benchmarks/list_speed.py [--repeats 7]

Each command runs in a fresh process, alternating, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
COMMANDS = {
    "zoo list": [str(VENV_BIN / "zoo"), "list"],
    "timm.list_models()": [sys.executable, "-c", "import timm; timm.list_models()"],
}


# a launcher process whose only child is the command, so its RUSAGE_CHILDREN is that command's peak RSS
_LAUNCHER = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh process."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], check=True, capture_output=True, text=True)
    elapsed, rss_kib = out.stdout.split()
    return float(elapsed), int(rss_kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    peak: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, argv in COMMANDS.items():
            elapsed, rss = run_once(argv)
            times[name].append(elapsed)
            peak[name].append(rss)
    zoo_median = statistics.median(times["zoo list"])
    for name, values in times.items():
        print(f"{name:<22} median {statistics.median(values) * 1000:7.0f} ms  (min {min(values) * 1000:.0f} ms)"
              f"  peak RSS {max(peak[name]):.0f} MiB")
    print(f"ratio timm/zoo: {statistics.median(times['timm.list_models()']) / zoo_median:.1f}x")


if __name__ == "__main__":
    main()
