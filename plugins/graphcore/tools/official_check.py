"""Compare zoo's ViG and GraphCore pieces with the official code; (re)write the committed test data.

Run outside the test suite, where the official code is (never inside the repository)::

    git --git-dir=<Efficient-AI-Backbones git dir> archive HEAD vig_pytorch | tar -x -C /tmp/vig
    git --git-dir=<open-iad git dir> archive HEAD models/_patchcore | tar -x -C /tmp/oiad
    python plugins/graphcore/tools/official_check.py --vig /tmp/vig/vig_pytorch --open-iad /tmp/oiad

It needs timm (the official vig.py imports it) and scikit-learn. Checks, each printed on one line:

1. ViG-Ti (``vig_ti_224_gelu``): the official state dict's keys and shapes, written to
   ``tests/data/official_vig_ti_224_gelu.json``; with seeded random weights loaded strictly into zoo's
   model, the logits and the outputs of ``backbone[3]`` and ``backbone[4]`` (GraphCore's features) on a
   seeded 2 x 3 x 224 x 224 input, in float32 (max abs difference, must be < 1e-4);
2. the tiny reference (official ``DeepGCN``, 8 channels, 5 blocks, 10 classes): the same in float64, and
   its outputs are written to ``tests/data/tiny_reference.json`` so the suite checks them without the
   official code. float64 because the kNN graph is discrete: in float32 another thread count or BLAS
   can reorder a sum, flip a near-tied neighbour and move one node's output by ~1e-2 (seen here: 1 vs 2
   threads), which says nothing about the architecture;
3. coreset: open-iad's ``KCenterGreedy.select_batch`` (models/_patchcore/kcenter_greedy.py) with a seeded
   ``SparseRandomProjection(eps=0.9)`` against ``zoo_graphcore.coreset`` on the same projection: the
   same indices, in the same order.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from reference import INPUT_SEED, MANIFEST, TINY, TINY_REFERENCE, TINY_SEED, randomise, tiny_input  # noqa: E402


def official_tiny(vig: types.ModuleType) -> torch.nn.Module:
    class Opt:  # the fields DeepGCN reads, as vig_ti_224_gelu's OptInit sets them
        k, conv, act, norm, bias, n_blocks, n_filters = TINY["k"], "mr", "gelu", "batch", True, TINY["n_blocks"], TINY["channels"]
        n_classes, dropout, use_dilation, epsilon, use_stochastic, drop_path = TINY["num_classes"], 0.0, True, 0.2, False, 0.0

    return vig.DeepGCN(Opt())


def compare(official: torch.nn.Module, mine: torch.nn.Module, x: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
    feats: list[torch.Tensor] = []
    hooks = [official.backbone[i][-1].register_forward_hook(lambda m, i, o: feats.append(o)) for i in (3, 4)]
    with torch.no_grad():
        want = official(x)
        got = mine(x)
        mine3, mine4 = mine.block_outputs(x, [3, 4])
    for h in hooks:
        h.remove()
    diff = max((want - got).abs().max().item(), (feats[0] - mine3).abs().max().item(),
               (feats[1] - mine4).abs().max().item())
    return diff, {"logits": want, "block3": feats[0], "block4": feats[1]}


def check_coreset(open_iad: Path) -> bool:
    sys.path.insert(0, str(open_iad))
    from models._patchcore.kcenter_greedy import KCenterGreedy
    from sklearn.random_projection import SparseRandomProjection
    from zoo_graphcore.coreset import greedy_kcenter

    ok = True
    for n, dim, pct, seed in ((3136, 384, 0.01, 0), (784, 384, 0.1, 1), (2000, 256, 0.05, 2)):
        x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
        projector = SparseRandomProjection(n_components="auto", eps=0.9, random_state=seed).fit(x)
        size = int(n * pct)
        theirs = KCenterGreedy(X=x, y=0).select_batch(model=projector, already_selected=[], N=size)
        mine = greedy_kcenter(projector.transform(x), size)
        same = [int(i) for i in theirs] == mine
        ok &= same
        print(f"coreset N={n} D={dim} keep {size}: open-iad KCenterGreedy {'==' if same else '!='} zoo greedy_kcenter")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vig", type=Path, required=True, help="huawei-noah/Efficient-AI-Backbones vig_pytorch folder")
    parser.add_argument("--open-iad", type=Path, required=True, help="M-3LAB/open-iad checkout (models/_patchcore)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.vig))
    import vig as official
    from zoo_graphcore import vig as ours

    torch.manual_seed(0)
    ok = True
    off = official.vig_ti_224_gelu().eval()
    randomise(off, seed=0)
    sd = off.state_dict()
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(list(t.shape))}" for k, t in sd.items()) + "\n}\n")
    mine = ours.vig_ti_224_gelu().eval()
    mine.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(INPUT_SEED))
    diff, _ = compare(off, mine, x)
    ok &= diff < 1e-4
    print(f"vig_ti_224_gelu: {len(sd)} keys, {sum(p.numel() for p in off.parameters())} params; "
          f"max|official - zoo| {diff:.3g} (logits, backbone[3], backbone[4])")

    off = official_tiny(official).eval()
    randomise(off, seed=TINY_SEED)
    mine = ours.VisionGNN(**TINY).eval()
    mine.load_state_dict(off.state_dict(), strict=True)
    diff, outs = compare(off.double(), mine.double(), tiny_input().double())
    ok &= diff < 1e-4
    TINY_REFERENCE.write_text(json.dumps({
        "config": TINY, "weights_seed": TINY_SEED, "input_seed": INPUT_SEED,
        "source": "official vig_pytorch DeepGCN @ huawei-noah/Efficient-AI-Backbones f90e129 (tools/official_check.py)",
        **{k: [float(f"{v:.12g}") for v in t.flatten().tolist()] for k, t in outs.items()},
        "shapes": {k: list(t.shape) for k, t in outs.items()}}) + "\n")
    print(f"tiny DeepGCN {TINY}: max|official - zoo| {diff:.3g}; wrote {TINY_REFERENCE.name}")
    ok &= check_coreset(args.open_iad)
    print("OK" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
