"""Compare zoo_vit_llama with the official code and regenerate tests/data (not run by the tests).

Usage (the official files are read from a checkout outside this repository, never copied into it):

    mkdir -p /tmp/vl/models && touch /tmp/vl/models/__init__.py
    for f in llama vit vit_llama; do
        git --git-dir=<LM4VisualEncoding mirror> show HEAD:image_classification/models/$f.py > /tmp/vl/models/$f.py
    done
    python plugins/vit-llama/tools/official_check.py /tmp/vl [--logits] [--write]

For every variant :func:`zoo.devkit.kit.parity` builds the official model and ours at the real sizes
(LLaMA-7B's last block, ~202 M params) and checks key names, order and shapes (sized without
allocating weights), and that the same parameters are frozen. ``--logits`` builds them for real,
randomises every official weight and buffer, loads them through the card's conversion path and
prints the max |logit| difference on a 2x3x224x224 input (eval, float32; about a minute per
variant on 2 CPU cores, 2 GB of memory). ``--write`` rewrites ``tests/data/official_shapes.json``
(through the kit) and ``tests/data/official_logits.json``: the official models' logits at
``img_size=32`` (5 tokens) with every tensor set by :func:`fill` (the test suite has the same
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("official_root", help="folder holding models/{llama,vit,vit_llama}.py of the official repo")
    parser.add_argument("--logits", action="store_true", help="also compare logits on randomised weights")
    parser.add_argument("--write", action="store_true", help="rewrite tests/data/official_shapes.json")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    official = load_official(args.official_root)
    from zoo.devkit.kit import card_for, parity
    from zoo.measure.bench import count_params
    from zoo.models.lightbuild import light_build

    manifest = HERE / "tests" / "data" / "official_shapes.json" if args.write else None
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    ok = True
    for name in args.variants:
        if args.logits:  # real tensors, every one randomised (the LLaMA block's norms included)
            ref, mine = getattr(official, name), getattr(ours, name)
        else:  # keys and shapes only: sized without allocating the 202 M weights
            with light_build():
                ref, mine = getattr(official, name)(), getattr(ours, name)()
        t0 = time.time()
        report = parity(mine, ref, convert=card_for("vit-llama", name), name=name, inputs=x, atol=1e-4,
                        compare_outputs=args.logits, manifest_path=manifest)
        print(f"{report}\n  ({time.time() - t0:.0f} s)", flush=True)
        ok &= report.keys_ok and report.same_order is not False and (report.ok or not args.logits)
        if not args.logits:  # the frozen LLaMA block must be frozen in ours too
            frozen = sum(p.numel() for p in mine.parameters() if not p.requires_grad)
            frozen_ref = sum(p.numel() for p in ref.parameters() if not p.requires_grad)
            print(f"  {count_params(mine):,} params, {frozen:,} frozen (official: {frozen_ref:,})")
            ok &= frozen == frozen_ref
        del ref, mine
    if args.write:
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
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
