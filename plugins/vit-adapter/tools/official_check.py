"""Compare zoo's ViT-Adapter segmentors with the official code; (re)write the key/shape manifests.

Run outside the test suite, where the official code is. Nothing here is imported by the plugin.
No mmcv build and no CUDA op are needed::

    mkdir -p /tmp/va && cd /tmp/va
    pip download --no-deps mmcv==1.7.2 mmsegmentation==0.30.0   # mmcv's sdist is pure Python ("lite")
    tar xzf mmcv-1.7.2.tar.gz && mkdir lib && cp -r mmcv-1.7.2/mmcv lib/
    unzip -q mmsegmentation-0.30.0-py3-none-any.whl -d lib
    pip install --target lib yapf addict
    git -C <czczup/ViT-Adapter> archive fd64a51 segmentation detection/ops | tar -x -C vitadapter
    python plugins/vit-adapter/tools/official_check.py --lib lib --repo vitadapter

What is official here, and the shims around it:

- the backbone: ``ViTAdapter`` imported from ``segmentation/mmseg_custom/models/backbones/
  vit_adapter.py`` @ fd64a51 (with its ``adapter_modules.py`` and ``base/vit.py``), built with the
  ``model.backbone`` arguments of ``configs/ade20k/upernet_deit_adapter_{tiny,small,base}_512_160k_ade20k.py``
  (read by mmcv's ``Config``, ``_base_`` files included). The backbone package is imported file by
  file (its ``__init__`` pulls in BEiT and Uni-Perceiver code that is not needed); ``mmcv_custom``
  (checkpoint loading, unused with ``pretrained=None``) is a stub;
- the deformable attention: the official ``ops.modules.MSDeformAttn`` (``detection/ops/modules/
  ms_deform_attn.py``) with its compiled ``MSDeformAttnFunction`` replaced by the official
  pure-PyTorch ``ms_deform_attn_core_pytorch`` from ``detection/ops/functions/ms_deform_attn_func.py``
  (the ``MultiScaleDeformableAttention`` extension module is a stub that is never called);
- the heads: mmsegmentation 0.30.0's ``UPerHead`` and ``FCNHead`` built from the config (the
  heads' code is the same in mmseg 0.20.2, which the official code pins);
- ``mmcv.ops`` (compiled; imported by mmseg's losses only) is a stub that raises if called;
- SyncBatchNorm becomes BatchNorm (the backbone's ``nn.SyncBatchNorm`` modules are swapped, the heads'
  ``norm_cfg`` set to BN): CPU, inference, same keys.

For each of T/S/B it writes ``tests/data/official_vit_adapter.json`` ({variant: {key: shape}} of the
official segmentor, auxiliary head included), then runs ``zoo.devkit.parity`` with the card's
conversion path (core unwrapping + this plugin's ``zoo_convert_checkpoint``) on seeded random
weights, comparing the four backbone maps and the logits, on a square and a non-square input, in
float64 (real differences) and float32 (what users run).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
CONFIGS = {"t": "tiny", "s": "small", "b": "base"}


def _package(name: str, path: Path) -> None:
    """Register ``name`` as a package at ``path`` without running its ``__init__``."""
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    sys.modules[name] = module


def _stub_mmcv_ops() -> None:
    """mmcv lite has no compiled ``mmcv.ops``; mmseg's losses import names from it that nothing here calls."""

    class Ops(types.ModuleType):
        def __getattr__(self, name: str):  # noqa: ANN204
            if name.startswith("__"):
                raise AttributeError(name)

            def compiled(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
                raise RuntimeError(f"mmcv.ops.{name} is a compiled op (not in mmcv lite)")

            return compiled

    sys.modules["mmcv.ops"] = Ops("mmcv.ops")


def _shim_official(repo: Path) -> None:
    _stub_mmcv_ops()
    sys.modules["MultiScaleDeformableAttention"] = types.ModuleType("MultiScaleDeformableAttention")
    sys.modules.setdefault("mmcv_custom", types.SimpleNamespace(my_load_checkpoint=None, load_checkpoint=None))
    sys.path.insert(0, str(repo / "detection"))  # `ops` (the segmentation README symlinks it)
    funcs = importlib.import_module("ops.functions.ms_deform_attn_func")
    modules = importlib.import_module("ops.modules.ms_deform_attn")

    class PyTorchCore:
        @staticmethod
        def apply(value, shapes, level_start, locations, weights, im2col_step):  # noqa: ANN001, ANN205
            return funcs.ms_deform_attn_core_pytorch(value, shapes, locations, weights)

    modules.MSDeformAttnFunction = PyTorchCore
    _package("va_backbones", repo / "segmentation/mmseg_custom/models/backbones")
    _package("va_backbones.base", repo / "segmentation/mmseg_custom/models/backbones/base")


def _sync_to_bn(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.SyncBatchNorm):
            bn = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                child.track_running_stats)
            bn.load_state_dict(child.state_dict())
            setattr(module, name, bn)
        else:
            _sync_to_bn(child)
    return module


class Official(nn.Module):
    """backbone + decode_head + auxiliary_head, as mmseg's EncoderDecoder names them."""

    def __init__(self, repo: Path, variant: str) -> None:
        super().__init__()
        from mmcv import Config
        from mmseg.models import build_head
        from mmseg.models.builder import BACKBONES

        original = BACKBONES.register_module
        BACKBONES.register_module = lambda *a, **k: (lambda cls: cls)
        try:
            vit_adapter = importlib.import_module("va_backbones.vit_adapter")
        finally:
            BACKBONES.register_module = original
        cfg = Config.fromfile(str(repo / f"segmentation/configs/ade20k/upernet_deit_adapter_{CONFIGS[variant]}"
                                         "_512_160k_ade20k.py"))
        for head in ("decode_head", "auxiliary_head"):
            cfg.model[head].norm_cfg = dict(type="BN", requires_grad=True)
        args = {k: v for k, v in cfg.model.backbone.items() if k not in ("type", "_delete_")}
        self.backbone = _sync_to_bn(vit_adapter.ViTAdapter(pretrained=None, **args))
        self.decode_head = build_head(cfg.model.decode_head)
        self.auxiliary_head = build_head(cfg.model.auxiliary_head)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = list(self.backbone(x))
        return [*feats, self.decode_head(feats)]


class Ours(nn.Module):
    """Our segmentor's parts under the same names; forward returns the maps and the logits."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        from zoo_vit_adapter import model

        segmentor = getattr(model, f"vit_adapter_{variant}")()
        self.backbone, self.decode_head = segmentor.backbone, segmentor.decode_head

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone(x)
        return [*feats, self.decode_head(feats)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", type=Path, required=True, help="folder holding mmcv 1.7.2 (lite), mmseg 0.30, yapf, addict")
    ap.add_argument("--repo", type=Path, required=True, help="czczup/ViT-Adapter @ fd64a51 (segmentation/, detection/ops/)")
    ap.add_argument("--only", choices=tuple(CONFIGS))
    ap.add_argument("--no-manifest", action="store_true", help="compare only; leave tests/data as it is")
    args = ap.parse_args()
    sys.path[:0] = [str(args.lib)]
    _shim_official(args.repo)

    from zoo.devkit.parity import card_for, parity

    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, 3, 128, 128, generator=gen), torch.randn(2, 3, 96, 160, generator=gen)]
    ok = True
    for variant in CONFIGS:
        if args.only and variant != args.only:
            continue
        card = card_for("vit-adapter", f"vit_adapter_{variant}")
        for dtype in (torch.float64, torch.float32):
            manifest = None if args.no_manifest or dtype is torch.float32 else DATA / "official_vit_adapter.json"
            report = parity(lambda v=variant: Ours(v), lambda v=variant: Official(args.repo, v), convert=card,
                            name=f"vit_adapter_{variant}", inputs=inputs, dtype=dtype, atol=1e-4, rtol=0.0,
                            manifest_path=manifest)
            print(f"[{dtype}]", report, flush=True)
            ok = ok and report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
