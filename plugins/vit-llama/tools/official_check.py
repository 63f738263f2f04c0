"""Compare zoo_vit_llama with the official code and regenerate tests/data (not run by the tests).

Usage (the official files are read from a checkout outside this repository, never copied into it):

    mkdir -p /tmp/vl/models && touch /tmp/vl/models/__init__.py
    for f in llama vit vit_llama; do
        git --git-dir=<LM4VisualEncoding mirror> show HEAD:image_classification/models/$f.py > /tmp/vl/models/$f.py
    done
    python plugins/vit-llama/tools/official_check.py /tmp/vl [--logits] [--write]

For every variant it builds the official model and ours at the real sizes (LLaMA-7B's last block,
~202 M params) and checks key names, order and shapes. ``--logits`` also loads the official random
init into ours and prints the max |logit| difference on a 2x3x224x224 input (eval, float32; about
a minute per variant on 2 CPU cores, 2 GB of memory). ``--write`` rewrites
``tests/data/official_shapes.json`` and ``tests/data/official_logits.json``: the official models'
logits at ``img_size=32`` (5 tokens) with every tensor set by :func:`fill` (the test suite has the same
helper), on a fixed 2x3x32x32 input; the full-size LLaMA block is kept, so this is cheap to rerun.

The official files need timm 0.4.12 (their requirements.txt); under timm 1.x only the module
``timm.models.layers.helpers`` is gone, so a stand-in exposing ``to_2tuple`` is installed first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
from zoo_vit_llama import vit_llama as ours  # noqa: E402

VARIANTS = ("vit_llama_tiny_patch16_224", "vit_llama_small_patch16_224", "vit_llama_base_patch16_224")


def load_official(root: str) -> types.ModuleType:
    import timm.layers

    shim = types.ModuleType("timm.models.layers.helpers")
    shim.to_2tuple = timm.layers.to_2tuple
    sys.modules.setdefault("timm.models.layers.helpers", shim)
    sys.path.insert(0, root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated timm imports, re-registered model names
        import models.vit_llama as official
    return official


def fill(shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Deterministic, cheap weights from the key list alone (no RNG: 210 M values in about a second).

    Norm weights ~ 1 + 0.1 sin, everything else 0.05 sin of a per-key frequency and phase, with the
    argument kept small (index mod a prime) so float32 rounding is the same everywhere.
    """
    out = {}
    for i, (k, shape) in enumerate(shapes.items()):
        n = 1
        for d in shape:
            n *= d
        arg = (torch.arange(n, dtype=torch.int64) % 9973).to(torch.float32) * (0.37 + 0.011 * i) + 0.5 * i
        values = torch.sin(arg).reshape(shape)
        norm = k.endswith(".weight") and len(shape) == 1
        out[k] = values.mul_(0.1).add_(1.0) if norm else values.mul_(0.05)
    return out


def small_input() -> torch.Tensor:
    return torch.linspace(-2.0, 2.0, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32).sin()


def dump_shapes(manifest: dict[str, dict[str, list[int]]]) -> str:
    """One key per line, so a diff of the manifest reads like a diff of the architecture."""
    parts = []
    for variant, shapes in manifest.items():
        body = ",\n".join(f"    {json.dumps(k)}: {json.dumps(s)}" for k, s in shapes.items())
        parts.append(f"  {json.dumps(variant)}: {{\n{body}\n  }}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("official_root", help="folder holding models/{llama,vit,vit_llama}.py of the official repo")
    parser.add_argument("--logits", action="store_true", help="also compare logits at the official random init")
    parser.add_argument("--write", action="store_true", help="rewrite tests/data/official_shapes.json")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    official = load_official(args.official_root)
    from zoo.bench import count_params
    from zoo.lightbuild import light_build

    manifest = {}
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    for name in args.variants:
        if args.logits:
            torch.manual_seed(0)
            ref, mine = getattr(official, name)().eval(), getattr(ours, name)().eval()
        else:
            with light_build():
                ref, mine = getattr(official, name)(), getattr(ours, name)()
        theirs = {k: list(v.shape) for k, v in ref.state_dict().items()}
        got = {k: list(v.shape) for k, v in mine.state_dict().items()}
        assert list(got.items()) == list(theirs.items()), f"{name}: keys/shapes/order differ"
        n_ref, n_ours = count_params(ref), count_params(mine)
        frozen = sum(p.numel() for p in mine.parameters() if not p.requires_grad)
        frozen_ref = sum(p.numel() for p in ref.parameters() if not p.requires_grad)
        assert n_ref == n_ours and frozen == frozen_ref, (n_ref, n_ours, frozen, frozen_ref)
        line = f"{name}: {len(got)} keys equal (same order), {n_ours} params ({frozen} frozen)"
        if args.logits:
            mine.load_state_dict(ref.state_dict(), strict=True)
            t0 = time.time()
            with torch.inference_mode():
                a, b = ref(x), mine(x)
            line += f", max |logit diff| {(a - b).abs().max().item():.3g} (|logit| max {a.abs().max().item():.3g}, "
            line += f"{time.time() - t0:.0f} s)"
        print(line, flush=True)
        manifest[name] = theirs
        del ref, mine
    if args.write:
        out = HERE / "tests" / "data" / "official_shapes.json"
        out.write_text(dump_shapes(manifest))
        print(f"wrote {out}")
        logits = {}
        for name in args.variants:
            with light_build():
                ref = getattr(official, name)(img_size=32)
            shapes = {k: v.shape for k, v in ref.state_dict().items()}
            ref.load_state_dict(fill(shapes), strict=True, assign=True)
            mine = getattr(ours, name)(img_size=32)
            mine.load_state_dict(ref.state_dict(), strict=True)
            with torch.inference_mode():
                a, b = ref.eval()(small_input()), mine.eval()(small_input())
            print(f"{name} at 32x32, filled weights: max |logit diff| {(a - b).abs().max().item():.3g} "
                  f"(|logit| max {a.abs().max().item():.3g})")
            logits[name] = {"input": "small_input() 2x3x32x32", "first10": [row[:10].tolist() for row in a],
                            "argmax": a.argmax(-1).tolist(), "sum": a.sum(-1).tolist()}
            del ref, mine
        out = HERE / "tests" / "data" / "official_logits.json"
        out.write_text("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in logits.items()) + "\n}\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
