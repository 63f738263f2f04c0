"""Compare zoo_efficientmod with the official code and regenerate tests/data (not run by the tests).

Usage (the official file is read from a checkout outside this repository, never copied into it):

    git --git-dir=<EfficientMod mirror> show HEAD:models/EfficientMod.py > /tmp/em/EfficientMod_official.py
    python plugins/efficientmod/tools/official_check.py /tmp/em/EfficientMod_official.py [--write]

For every variant it prints: key/shape equality, parameter count, and the max |logit| difference
between the official model and ours (same state dict, eval mode, 2x3x224x224) in float32 and in
float64, at the official random init and with every tensor perturbed (random init leaves the
layer scales at 1e-4, where the blocks barely change the output). ``--write`` rewrites
``tests/data/official_shapes.json`` and ``tests/data/official_logits.json``.
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


def dump_shapes(manifest: dict[str, dict[str, list[int]]]) -> str:
    """One key per line, so a diff of the manifest reads like a diff of the architecture."""
    parts = []
    for variant, shapes in manifest.items():
        body = ",\n".join(f"    {json.dumps(k)}: {json.dumps(s)}" for k, s in shapes.items())
        parts.append(f"  {json.dumps(variant)}: {{\n{body}\n  }}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("official", help="path to the official models/EfficientMod.py")
    parser.add_argument("--write", action="store_true", help="rewrite tests/data/*.json")
    args = parser.parse_args()
    official = load_official(args.official)
    torch.manual_seed(0)
    shapes, logits = {}, {}
    x_small = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for mine, theirs in PAIRS.items():
        ref = getattr(official, theirs)().eval()
        model = getattr(ours, mine)().eval()
        sd = {k: v.clone() for k, v in ref.state_dict().items()}  # the random init, kept
        shapes[mine] = {k: list(v.shape) for k, v in sd.items()}
        assert {k: list(v.shape) for k, v in model.state_dict().items()} == shapes[mine], mine
        n = sum(p.numel() for p in model.parameters())
        report = [f"{mine}: {len(sd)} keys equal, {n} params"]
        for dtype in (torch.float32, torch.float64):
            ref.to(dtype), model.to(dtype)
            x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0), dtype=dtype)
            for label, weights in (("random init", sd), ("perturbed", fill(sd))):
                ref.load_state_dict(weights)
                model.load_state_dict(ref.state_dict(), strict=True)
                with torch.no_grad():
                    a, b = ref(x), model(x)
                report.append(f"{str(dtype)[6:]} {label}: max|diff| {(a - b).abs().max().item():.2e} "
                              f"(max|logit| {a.abs().max().item():.2f})")
        ref.double().load_state_dict(fill(sd))
        with torch.no_grad():
            y = ref(x_small)[0]
        logits[mine] = {"first16": y[:16].tolist(), "sum": y.sum().item(), "l2": y.norm().item(),
                        "argmax": int(y.argmax())}
        print("; ".join(report), flush=True)
    if args.write:
        data = HERE / "tests" / "data"
        (data / "official_shapes.json").write_text(dump_shapes(shapes))
        doc = {"input": "torch.randn(1, 3, 64, 64, generator=manual_seed(1), dtype=float64)",
               "weights": "fill(): seed 0, 0.1*randn per key in state-dict order, +1 for 1-D .weight and gamma_1",
               "logits": logits}
        (data / "official_logits.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
