"""Compare zoo_efficientmod with the official code and regenerate tests/data (not run by the tests).

Usage (the official file is read from a checkout outside this repository, never copied into it):

    git --git-dir=<EfficientMod mirror> show HEAD:models/EfficientMod.py > /tmp/em/EfficientMod_official.py
    python plugins/efficientmod/tools/official_check.py /tmp/em/EfficientMod_official.py [--write]

For every variant :func:`zoo.devkit.kit.parity` builds the official model and ours, randomises every
official weight and buffer (layer scales included: their 1e-4 init would hide a wrong block), loads
them through the card's conversion path and compares keys, shapes and logits (2x3x224x224, eval),
in float32 and in float64. ``--write`` rewrites ``tests/data/official_shapes.json`` (through the kit)
and ``tests/data/official_logits.json``: the official models' logits with the weights of
:func:`fill` (the test suite has the same helper) on a fixed 1x3x64x64 float64 input.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
from zoo_efficientmod import efficientmod as ours  # noqa: E402

from zoo.devkit.kit import card_for, parity  # noqa: E402

PAIRS = {"efficientmod_xxs": "efficientMod_xxs", "efficientmod_xs": "efficientMod_xs",
         "efficientmod_s": "efficientMod_s", "efficientmod_s_conv": "efficientMod_s_Conv"}


def fill(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Deterministic weights from the key list alone (the test suite has the same helper)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, v in sd.items():
        noise = 0.1 * torch.randn(v.shape, generator=g, dtype=torch.float64)
        ones = k.endswith(".weight") and v.ndim == 1 or k.endswith("gamma_1")  # norms, layer scales
        out[k] = noise + 1.0 if ones else noise
    return out


def load_official(path: str):
    spec = importlib.util.spec_from_file_location("EfficientMod_official", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # timm's register_model looks the module up there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecated timm.models.layers imports
        spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("official", help="path to the official models/EfficientMod.py")
    parser.add_argument("--write", action="store_true", help="rewrite tests/data/*.json")
    args = parser.parse_args()
    official = load_official(args.official)
    data = HERE / "tests" / "data"
    ok, logits = True, {}
    for mine, theirs in PAIRS.items():
        card = card_for("efficientmod", mine)
        for dtype in (torch.float32, torch.float64):
            report = parity(getattr(ours, mine), getattr(official, theirs), convert=card, name=mine, dtype=dtype,
                            atol=1e-4 if dtype == torch.float32 else 1e-10, rtol=1e-5 if dtype == torch.float32 else 1e-10,
                            manifest_path=data / "official_shapes.json" if args.write else None)
            print(f"[{str(dtype)[6:]}] {report}", flush=True)
            ok &= report.ok and report.same_order is not False
        ref = getattr(official, theirs)().double().eval()
        ref.load_state_dict(fill(ref.state_dict()))
        x_small = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        with torch.no_grad():
            y = ref(x_small)[0]
        logits[mine] = {"first16": y[:16].tolist(), "sum": y.sum().item(), "l2": y.norm().item(),
                        "argmax": int(y.argmax())}
    if args.write:
        doc = {"input": "torch.randn(1, 3, 64, 64, generator=manual_seed(1), dtype=float64)",
               "weights": "fill(): seed 0, 0.1*randn per key in state-dict order, +1 for 1-D .weight and gamma_1",
               "logits": logits}
        (data / "official_logits.json").write_text(json.dumps(doc, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
