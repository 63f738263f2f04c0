"""Compare zoo_context_cluster with the official Context Cluster code; optionally write the manifest.

Not a test: it needs the official code, which is never committed here. See README.md ("Fidelity")
for the setup (official ``models/context_cluster.py`` with its one-line timm>=1.0 import fix, einops
installed outside the project venv). Usage:

    python tools/compare_official.py --official-dir DIR [--manifest tests/data/official_shapes.json]

For every variant it checks that key order, keys and shapes are equal, then loads the official
model's random-init state_dict into ours and prints the largest logit difference, in both
aggregation modes, on a square and a non-square input; a second round sets every layer scale to 1
(random init leaves them at 1e-5, which would hide a wrong token mixer) and perturbs the norms and
the similarity scale/shift.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from pathlib import Path

import torch

VARIANTS = ["coc_tiny", "coc_tiny_plain", "coc_small", "coc_medium"]


def _perturb(sd: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for k, v in sd.items():
            if "layer_scale" in k:
                v.fill_(1.0)
            elif "sim_alpha" in k:
                v.uniform_(0.5, 2.0)
            elif "sim_beta" in k:
                v.uniform_(-1.0, 1.0)
            elif "norm" in k and k.endswith("weight"):
                v.uniform_(0.5, 1.5)
            elif "norm" in k and k.endswith("bias"):
                v.uniform_(-0.1, 0.1)


def main() -> None:
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

    torch.manual_seed(0)
    inputs = {"224x224": torch.randn(2, 3, 224, 224), "224x192": torch.randn(2, 3, 224, 192)}
    manifest: dict[str, dict[str, list[int]]] = {}
    for name in args.variants:
        ref = getattr(official, name)().eval()
        sd = ref.state_dict()
        manifest[name] = {k: list(v.shape) for k, v in sd.items()}
        models = {mode: getattr(ours, name)(reference_ops=mode == "reference_ops").eval()
                  for mode in ("matmul", "reference_ops")}
        for model in models.values():
            mine = model.state_dict()
            if list(mine) != list(sd) or any(mine[k].shape != sd[k].shape for k in sd):
                raise SystemExit(f"{name}: keys/shapes differ: {sorted(set(mine) ^ set(sd))}")
        print(f"{name}: {len(sd)} tensors, {sum(v.numel() for v in sd.values())} parameters, keys+shapes equal")
        for weights in ("random-init", "layer-scale=1"):
            if weights == "layer-scale=1":
                _perturb(sd)
                ref.load_state_dict(sd, strict=True)
            for mode, model in models.items():
                model.load_state_dict(sd, strict=True)
                for size, x in inputs.items():
                    with torch.no_grad():
                        a, b = ref(x), model(x)
                    print(f"  {weights:13s} {mode:13s} {size}: max|diff| {(a - b).abs().max().item():.3e}"
                          f"  (max|logit| {a.abs().max().item():.3f})")
    if args.manifest:
        # One key per line, shapes inline: readable diffs when the official code changes.
        lines = []
        for variant, shapes in manifest.items():
            body = ",\n".join(f"    {json.dumps(k)}: {json.dumps(s)}" for k, s in shapes.items())
            lines.append(f"  {json.dumps(variant)}: {{\n{body}\n  }}")
        args.manifest.write_text("{\n" + ",\n".join(lines) + "\n}\n")
        print(f"wrote {args.manifest}")


if __name__ == "__main__":
    main()
