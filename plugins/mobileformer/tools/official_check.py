"""Compare zoo's Mobile-Former with the AAboys/MobileFormer port; write the key/shape manifest.

Run outside the zoo tree (the port's code is not vendored):

    git clone https://github.com/AAboys/MobileFormer /tmp/aaboys-mobileformer
    python plugins/mobileformer/tools/official_check.py /tmp/aaboys-mobileformer \
        --manifest plugins/mobileformer/tests/data/official_shapes.json

The port's ``mobile_former.py`` and ``dna_blocks.py`` were written as modules inside timm 0.3.4
(relative imports of ``.helpers``, ``.registry``, ``.layers``). This script copies the two files into
a temporary package next to three small stand-ins for those timm modules; then
:func:`zoo.devkit.kit.parity` builds each variant and ours, randomises every weight and buffer of the port
(BatchNorm statistics included), loads them through the card's conversion path, compares keys and
shapes, and prints the largest logits difference on a random 224x224 batch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo_mobileformer import mobileformer as ours  # noqa: E402

from zoo.devkit.kit import card_for, parity  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="checkout of AAboys/MobileFormer")
    parser.add_argument("--manifest", type=Path, help="write {variant: {key: shape}} here")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        port = load_port(args.repo, Path(tmp))
        for variant in ours.VARIANTS:
            def official(variant=variant):
                with contextlib.redirect_stdout(io.StringIO()):  # the port prints every block it builds
                    return getattr(port, variant)()

            report = parity(getattr(ours, variant), official, convert=card_for("mobileformer", variant),
                            name=variant, manifest_path=args.manifest)
            print(report, flush=True)
            ok &= report.ok and report.same_order is not False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
