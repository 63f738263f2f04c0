"""Compare zoo's YOLOv6 with the official meituan/YOLOv6 code at release 0.4.0; (re)write the manifests.

Run outside the repository's test suite, where the official code is, e.g.::

    git -C YOLOv6 checkout 0.4.0              # or: git archive 0.4.0 yolov6 configs | tar -x -C /tmp/y6
    pip install --target /tmp/y6/deps addict requests   # the official package imports them
    python plugins/yolov6/tools/official_check.py --official /tmp/y6 --deps /tmp/y6/deps

For each variant it builds the official ``Model`` as tools/train.py does (``training_mode``
'repvgg' unless the config sets one; ``distill_ns`` for N/S, as yolov6/core/engine.py does for
self-distilled N/S; never for the P6 models, whose 4-level head build_network refuses to distill),
writes ``tests/data/official_<variant>.json`` (``{key: shape}``), gives every
floating tensor of the official model a seeded random value (BN statistics too, running_var
positive), loads the same state dict strictly into zoo's model and compares the eval outputs on a
seeded 1x3x320x320 input (float64), unfolded, and after both sides fold (in float32, as the official
fuse does; compared in float64) (official: ``fuse_model``
then RepVGG ``switch_to_deploy``; zoo: ``switch_to_deploy``).

Patch needed at 0.4.0 (M6/L6 only): ``build_network`` (yolov6/models/yolo.py) passes
``stage_block_type`` to every backbone and neck whose type contains "CSP", but
``CSPBepBackbone_P6.__init__`` and ``CSPRepBiFPANNeck_P6.__init__`` take no such argument, so
``yolov6m6``/``yolov6l6`` raise ``TypeError: ... unexpected keyword argument 'stage_block_type'``.
The official files are left untouched: :func:`patch_p6_csp` replaces the two names in
``yolov6.models.yolo``'s namespace (where ``build_network`` ``eval``s the config's type) with
subclasses that accept ``stage_block_type`` and drop it after checking it is the default "BepC3"
(what those classes build anyway). Nothing else changes: module names, and so state-dict keys, are
the official classes' own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
VARIANTS = ("n", "s", "m", "l", "n6", "s6", "m6", "l6")


def patch_p6_csp() -> None:
    """Let 0.4.0's build_network build M6/L6 (see the module docstring); idempotent."""
    import yolov6.models.yolo as yolo

    for name in ("CSPBepBackbone_P6", "CSPRepBiFPANNeck_P6"):
        base = getattr(yolo, name)
        if getattr(base, "_zoo_patched", False):
            continue

        def __init__(self, *args, stage_block_type="BepC3", _base=base, **kwargs):  # noqa: N807
            if stage_block_type != "BepC3":
                raise ValueError(f"{_base.__name__} builds BepC3 stages only, got {stage_block_type!r}")
            _base.__init__(self, *args, **kwargs)

        setattr(yolo, name, type(name, (base,), {"__init__": __init__, "_zoo_patched": True}))


def official_model(variant: str):
    from yolov6.models.yolo import build_model
    from yolov6.utils.config import Config

    cfg = Config.fromfile(str(OFFICIAL / "configs" / f"yolov6{variant}.py"))
    if not hasattr(cfg, "training_mode"):
        cfg.training_mode = "repvgg"
    if variant in ("m6", "l6"):
        patch_p6_csp()
    return build_model(cfg, 80, "cpu", fuse_ab=False, distill_ns=variant in ("n", "s"))


def randomise(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or name.endswith(("proj", "proj_conv.weight")):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith("bn.weight") or ".rbr_identity.weight" in name or name.endswith("alpha"):
                t.copy_(1 + 0.2 * torch.randn(t.shape, generator=gen))
            elif t.dim() == 4:  # conv weights scaled by fan-in, so 100+ stacked layers stay finite
                t.copy_(torch.randn(t.shape, generator=gen) / t[0].numel() ** 0.5)
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))


def main() -> int:
    global OFFICIAL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="a checkout of meituan/YOLOv6 at 0.4.0")
    parser.add_argument("--deps", type=Path, help="extra sys.path entry (addict, requests)")
    parser.add_argument("--variants", nargs="*", default=VARIANTS)
    args = parser.parse_args()
    OFFICIAL = args.official
    sys.path[:0] = [str(args.official)] + ([str(args.deps)] if args.deps else [])
    from yolov6.layers.common import RepVGGBlock
    from yolov6.utils.torch_utils import fuse_model
    from zoo_yolov6 import model as ours

    ok = True
    for v in args.variants:
        off = official_model(v).eval()
        randomise(off, seed=sum(map(ord, v)))  # ord(v) for the one-letter P5 names
        sd = off.state_dict()
        DATA.mkdir(parents=True, exist_ok=True)
        manifest = {k: list(t.shape) for k, t in sd.items()}
        (DATA / f"official_yolov6{v}.json").write_text(
            "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(s)}" for k, s in manifest.items()) + "\n}\n")
        mine = getattr(ours, f"yolov6_{v}")().eval()
        mine.load_state_dict(sd, strict=True)
        x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        off.double()
        mine.double()
        with torch.no_grad():
            want = off(x.clone())[0]
            got = mine(x.clone())
            diff = (want - got).abs().max().item()
            off.float()  # the official fuse_conv_and_bn builds float32 convolutions
            mine.float()
            off = fuse_model(off)  # tools/eval.py order: load_checkpoint fuses Conv-BN, then RepVGG folds
            for m in off.modules():
                if isinstance(m, RepVGGBlock):
                    m.switch_to_deploy()
            mine.switch_to_deploy()
            off.double()
            mine.double()
            want_f, got_f = off(x.clone())[0], mine(x.clone())
            diff_f = ((want_f - got_f).abs().max() / want_f.abs().max().clamp(min=1)).item()
            ndeploy = sum(p.numel() for p in mine.parameters())
            nofficial = sum(p.numel() for p in off.parameters())
        good = diff < 1e-4 and diff_f < 1e-4 and ndeploy == nofficial
        ok &= good
        print(f"yolov6-{v}: {len(sd)} keys; max|official - zoo| {diff:.3g} (train form), {diff_f:.3g} (deploy, relative to max|output|); "
              f"deploy params zoo {ndeploy} official {nofficial}: {'OK' if good else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
