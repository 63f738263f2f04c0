"""Compare zoo's EdgeViT with the official saic-fi/edgevit model; write the key/shape manifest.

Run from a scratch directory, never inside the zoo tree (the official code is not vendored):

    git clone https://github.com/saic-fi/edgevit /tmp/edgevit-official
    python plugins/edgevit/tools/official_check.py /tmp/edgevit-official/src/edgevit.py \
        --manifest plugins/edgevit/tests/data/official_shapes.json

For every variant this builds the official model (random init, seed 0), checks that its state-dict
keys and shapes equal ours, loads its weights into ours with ``strict=True`` and prints the largest
absolute difference of the logits on a random 224x224 batch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo_edgevit import edgevit as ours  # noqa: E402


def load_official(path: Path):
    spec = importlib.util.spec_from_file_location("edgevit_official", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # timm's register_model looks the module up there
    spec.loader.exec_module(module)
    return module


def format_manifest(manifest: dict[str, dict[str, list[int]]]) -> str:
    """JSON with one ``"key": [shape]`` per line, so diffs of the manifest stay readable."""
    blocks = []
    for variant, shapes in manifest.items():
        rows = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in shapes.items())
        blocks.append(f"  {json.dumps(variant)}: {{\n{rows}\n  }}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="path to the official src/edgevit.py")
    parser.add_argument("--manifest", type=Path, help="write {variant: {key: shape}} here")
    args = parser.parse_args()
    official = load_official(args.official)
    manifest, ok = {}, True
    for variant in ours.VARIANTS:
        torch.manual_seed(0)
        ref = getattr(official, variant)().eval()
        ref_sd = ref.state_dict()
        # BatchNorm running stats are 0/1 at init: give them values so eval-mode BN is exercised;
        # linear weights are initialised tiny (std 0.01-0.02): scale them so attention is far from uniform
        for key, value in ref_sd.items():
            if key.endswith("running_mean"):
                value.copy_(torch.randn_like(value))
            elif key.endswith("running_var"):
                value.copy_(torch.rand_like(value) + 0.5)
            elif key.endswith("weight") and value.dim() == 2:
                value.mul_(10.0)
        manifest[variant] = {k: list(v.shape) for k, v in ref_sd.items()}
        model = getattr(ours, variant)().eval()
        mine = {k: list(v.shape) for k, v in model.state_dict().items()}
        same = mine == manifest[variant] and list(mine) == list(manifest[variant])
        model.load_state_dict(ours.checkpoint_filter_fn(ref_sd), strict=True)
        x = torch.randn(2, 3, 224, 224)
        with torch.no_grad():
            ref_out, out = ref(x), model(x)
        diff = (ref_out - out).abs().max().item()
        scale = ref_out.abs().max().item()
        n_params = sum(p.numel() for p in ref.parameters())
        print(f"{variant}: keys+shapes+order equal={same} params={n_params} "
              f"max|logits diff|={diff:.3e} (max|logit|={scale:.3e})")
        ok &= same and diff <= 1e-5 * max(1.0, scale)
    if args.manifest:
        args.manifest.write_text(format_manifest(manifest))
        print(f"wrote {args.manifest}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
