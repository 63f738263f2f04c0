"""Compare zoo_context_cluster with the official Context Cluster code; optionally write the manifest.

Not a test: it needs the official code, which is never committed here. See README.md ("Fidelity")
for the setup (official ``models/context_cluster.py`` with its one-line timm>=1.0 import fix, einops
installed outside the project venv). Usage:

    python tools/compare_official.py --official-dir DIR [--manifest tests/data/official_shapes.json]

For every variant and both aggregation modes of ours, :func:`zoo.devkit.kit.parity` randomises every
weight and buffer of the official model (the layer scales, 1e-5 at init, would hide a wrong token
mixer; the norms and the similarity scale/shift too), loads them through the card's conversion
path, compares keys, shapes and order, and prints the largest logit difference on a square and a
non-square input. Exit status 1 when a variant differs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path

import torch

VARIANTS = ["coc_tiny", "coc_tiny_plain", "coc_small", "coc_medium"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--official-dir", required=True, help="folder holding the patched official module")
    parser.add_argument("--module", default="official_coc", help="its module name")
    parser.add_argument("--manifest", type=Path, help="write {variant: {key: shape}} here")
    parser.add_argument("--variants", nargs="*", default=VARIANTS)
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    sys.path.insert(0, args.official_dir)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    official = importlib.import_module(args.module)
    from zoo_context_cluster import context_cluster as ours

    from zoo.devkit.kit import card_for, parity

    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(2, 3, 224, 224, generator=gen), torch.randn(2, 3, 224, 192, generator=gen)]
    ok = True
    for name in args.variants:
        for mode in ("matmul", "reference_ops"):
            report = parity(lambda name=name, mode=mode: getattr(ours, name)(reference_ops=mode == "reference_ops"),
                            getattr(official, name), convert=card_for("context-cluster", name), name=name,
                            inputs=inputs, atol=1e-4, manifest_path=args.manifest if mode == "matmul" else None)
            print(f"[{mode}] {report}", flush=True)
            ok &= report.ok and report.same_order is not False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
