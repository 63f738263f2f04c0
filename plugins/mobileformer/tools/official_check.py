"""Compare zoo's Mobile-Former with the AAboys/MobileFormer port; write the key/shape manifest.

Run outside the zoo tree (the port's code is not vendored):

    git clone https://github.com/AAboys/MobileFormer /tmp/aaboys-mobileformer
    python plugins/mobileformer/tools/official_check.py /tmp/aaboys-mobileformer \
        --manifest plugins/mobileformer/tests/data/official_shapes.json

The port's ``mobile_former.py`` and ``dna_blocks.py`` were written as modules inside timm 0.3.4
(relative imports of ``.helpers``, ``.registry``, ``.layers``). This script copies the two files into
a temporary package next to three small stand-ins for those timm modules, builds each variant (random
init, seed 0), checks its keys/shapes/order against ours, loads its weights into ours with
``strict=True`` and prints the largest absolute logits difference on a random 224x224 batch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo_mobileformer import mobileformer as ours  # noqa: E402

_SHIMS = {
    "__init__.py": "",
    "helpers.py": (
        "def build_model_with_cfg(model_cls, variant, pretrained, default_cfg=None, **kwargs):\n"
        "    return model_cls(**kwargs)\n"
        "def default_cfg_for_features(cfg):\n"
        "    return cfg\n"
    ),
    "registry.py": "def register_model(fn):\n    return fn\n",
    "layers.py": "from timm.layers import DropPath  # noqa: F401\n",
}


def load_port(repo: Path, workdir: Path):
    package = workdir / "aaboys_mobileformer"
    package.mkdir()
    for name in ("mobile_former.py", "dna_blocks.py"):
        shutil.copy(repo / name, package / name)
    for name, text in _SHIMS.items():
        (package / name).write_text(text)
    sys.path.insert(0, str(workdir))
    return importlib.import_module("aaboys_mobileformer.mobile_former")


def format_manifest(manifest: dict[str, dict[str, list[int]]]) -> str:
    """JSON with one ``"key": [shape]`` per line, so diffs of the manifest stay readable."""
    blocks = []
    for variant, shapes in manifest.items():
        rows = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in shapes.items())
        blocks.append(f"  {json.dumps(variant)}: {{\n{rows}\n  }}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="checkout of AAboys/MobileFormer")
    parser.add_argument("--manifest", type=Path, help="write {variant: {key: shape}} here")
    args = parser.parse_args()
    manifest, ok = {}, True
    with tempfile.TemporaryDirectory() as tmp:
        port = load_port(args.repo, Path(tmp))
        for variant in ours.VARIANTS:
            torch.manual_seed(0)
            with contextlib.redirect_stdout(io.StringIO()):  # the port prints every block it builds
                ref = getattr(port, variant)().eval()
            ref_sd = ref.state_dict()
            # BatchNorm running stats are 0/1 at init: give them values so eval-mode BN is exercised;
            # linear weights are initialised tiny (std 0.01-0.02): scale them so attention is far from uniform
            for key, value in ref_sd.items():
                if key.endswith("running_mean"):
                    value.copy_(torch.randn_like(value) * 0.1)
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
