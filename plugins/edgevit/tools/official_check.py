"""Compare zoo's EdgeViT with the official saic-fi/edgevit model; write the key/shape manifest.

Run from a scratch directory, never inside the zoo tree (the official code is not vendored):

    git clone https://github.com/saic-fi/edgevit /tmp/edgevit-official
    python plugins/edgevit/tools/official_check.py /tmp/edgevit-official/src/edgevit.py \
        --manifest plugins/edgevit/tests/data/official_shapes.json

For every variant, :func:`zoo.devkit.kit.parity` builds the official model and ours, randomises every
official weight and buffer (BatchNorm statistics included), loads them through the card's
conversion path (``zoo_convert_checkpoint``), compares keys and shapes, and prints the largest
logits difference on a random 224x224 batch. Exit status 1 when a variant differs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo_edgevit import edgevit as ours  # noqa: E402

from zoo.devkit.kit import card_for, parity  # noqa: E402


def load_official(path: Path):
    spec = importlib.util.spec_from_file_location("edgevit_official", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # timm's register_model looks the module up there
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="path to the official src/edgevit.py")
    parser.add_argument("--manifest", type=Path, help="write {variant: {key: shape}} here")
    args = parser.parse_args()
    official = load_official(args.official)
    ok = True
    for variant in ours.VARIANTS:
        report = parity(getattr(ours, variant), getattr(official, variant), convert=card_for("edgevit", variant),
                        name=variant, manifest_path=args.manifest)
        print(report, flush=True)
        ok &= report.ok and report.same_order is not False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
