"""Compare zoo's UPerNets with the official mmsegmentation 0.x code; (re)write the key/shape manifests.

Run outside the test suite, where the official code is. Nothing here is imported by the plugin.
No mmcv build is needed: mmcv 1.x "lite" (pure Python, no compiled ops) is enough for these
models; its ``mmcv.ops`` (compiled; imported by mmseg's losses and point head only) is replaced
by a stub that raises if anything calls it::

    mkdir -p /tmp/up && cd /tmp/up
    pip download --no-deps mmcv==1.7.2 mmsegmentation==0.30.0   # the sdist needs setuptools<70 + wheel
    tar xzf mmcv-1.7.2.tar.gz && mkdir lib && cp -r mmcv-1.7.2/mmcv lib/
    unzip -q mmsegmentation-0.30.0-py3-none-any.whl -d lib
    pip install --target deps yapf addict
    git -C <Swin-Transformer-Semantic-Segmentation> archive 87e6f90 | tar -x -C swinseg
    git -C <ConvNeXt> archive 048efce semantic_segmentation | tar -x -C convnext
    python plugins/upernet/tools/official_check.py --lib lib --deps deps \
        --swin swinseg --convnext convnext/semantic_segmentation

What is official here:

- UPerNet-Swin-T: ``SwinTransformer`` from the Swin seg repo's own
  ``mmseg/models/backbones/swin_transformer.py`` @ 87e6f90 (imported from that file), with its
  config ``configs/swin/upernet_swin_tiny_patch4_window7_512x512_160k_ade20k.py``;
- UPerNet-ConvNeXt-T: ``ConvNeXt`` from ``semantic_segmentation/backbone/convnext.py`` @ 048efce,
  config ``upernet_convnext_tiny_512_160k_ade20k_ss.py`` (its missing ``_base_/datasets/ade20k.py``
  and schedule are taken from the Swin repo, both mmseg 0.11 files; only the model part is used);
- UPerNet-Twins-SVT-B: mmsegmentation 0.30.0's ``SVT`` and config
  ``configs/twins/twins_svt-b_uperhead_8x2_512x512_160k_ade20k.py``;
- the heads: mmsegmentation 0.30.0's ``UPerHead`` and ``FCNHead`` (built from each config with
  ``build_head``; the heads' code is the same in the 0.11 forks), with mmcv's ``ConvModule``.
  ``SyncBN`` becomes ``BN`` (CPU; identical at inference).

The backbone files of the two forks register into a registry; they are imported with the
registry's ``register_module`` made a no-op so they do not clash with mmseg 0.30's own classes.
For each model the script writes ``tests/data/official_<name>.json`` ({key: shape} of the
official segmentor, auxiliary head included), then runs ``zoo.devkit.parity`` with the card's
conversion path (core unwrapping + this plugin's ``zoo_convert_checkpoint``) on seeded random
weights, in float64 (``--dtype float32`` too), on a square and a non-square input whose feature maps need window padding.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"


def _stub_mmcv_ops() -> None:
    class _Ops(types.ModuleType):
        def __getattr__(self, name: str):
            if name.startswith("__"):
                raise AttributeError(name)

            def missing(*_a, **_k):
                raise RuntimeError(f"mmcv.ops.{name} is compiled; mmcv lite has none")

            return type(name, (), {"__init__": missing}) if name[:1].isupper() else missing

    sys.modules["mmcv.ops"] = _Ops("mmcv.ops")


def _import_file(name: str, path: Path, package: str | None = None):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if package:
        module.__package__ = package
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _no_register():
    from mmseg.models.builder import BACKBONES

    original = BACKBONES.register_module
    BACKBONES.register_module = lambda *a, **k: (lambda cls: cls)
    return BACKBONES, original


def _bn(cfg) -> None:
    for head in ("decode_head", "auxiliary_head"):
        cfg.model[head].norm_cfg = dict(type="BN", requires_grad=True)


class Official(nn.Module):
    """backbone + decode_head + auxiliary_head as mmseg's EncoderDecoder names them; forward = decode_head logits."""

    def __init__(self, backbone: nn.Module, cfg) -> None:
        super().__init__()
        from mmseg.models import build_head

        self.backbone = backbone
        self.decode_head = build_head(cfg.model.decode_head)
        self.auxiliary_head = build_head(cfg.model.auxiliary_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_head(list(self.backbone(x)))


def official_swin_t(swin: Path) -> nn.Module:
    from mmcv import Config

    sys.modules.setdefault("mmcv_custom", types.SimpleNamespace(load_checkpoint=None))
    registry, original = _no_register()
    try:
        mod = _import_file("mmseg.models.backbones._official_swin", swin / "mmseg/models/backbones/swin_transformer.py",
                           "mmseg.models.backbones")
    finally:
        registry.register_module = original
    cfg = Config.fromfile(str(swin / "configs/swin/upernet_swin_tiny_patch4_window7_512x512_160k_ade20k.py"))
    _bn(cfg)
    args = {k: v for k, v in cfg.model.backbone.items() if k != "type"}
    return Official(mod.SwinTransformer(**args), cfg)


def official_convnext_t(convnext: Path, swin: Path, work: Path) -> nn.Module:
    import shutil

    from mmcv import Config

    sys.modules.setdefault("mmcv_custom", types.SimpleNamespace(load_checkpoint=None))
    registry, original = _no_register()
    try:
        mod = _import_file("_official_convnext", convnext / "backbone/convnext.py")
    finally:
        registry.register_module = original
    configs = work / "convnext_configs"
    if configs.exists():
        shutil.rmtree(configs)
    shutil.copytree(convnext / "configs", configs)
    for missing in ("_base_/datasets/ade20k.py", "_base_/schedules/schedule_160k.py"):
        target = configs / missing
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy(swin / "configs" / missing, target)
    cfg = Config.fromfile(str(configs / "convnext/upernet_convnext_tiny_512_160k_ade20k_ss.py"))
    _bn(cfg)
    args = {k: v for k, v in cfg.model.backbone.items() if k != "type"}
    return Official(mod.ConvNeXt(**args), cfg)


def official_twins_svt_b(lib: Path) -> nn.Module:
    from mmcv import Config
    from mmseg.models import build_backbone

    cfg = Config.fromfile(str(lib / "mmseg/.mim/configs/twins/twins_svt-b_uperhead_8x2_512x512_160k_ade20k.py"))
    _bn(cfg)
    cfg.model.backbone.init_cfg = None
    cfg.model.pretrained = None
    return Official(build_backbone(cfg.model.backbone), cfg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", type=Path, required=True, help="folder holding mmcv (lite) and mmseg 0.30")
    ap.add_argument("--deps", type=Path, required=True, help="folder holding yapf and addict")
    ap.add_argument("--swin", type=Path, required=True, help="Swin-Transformer-Semantic-Segmentation @ 87e6f90")
    ap.add_argument("--convnext", type=Path, required=True, help="ConvNeXt @ 048efce semantic_segmentation/")
    ap.add_argument("--work", type=Path, default=Path("/tmp/upernet_official_check"))
    ap.add_argument("--only", choices=("swin_t", "convnext_t", "twins_svt_b"))
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                    help="float64 separates real differences from float32 rounding (default)")
    args = ap.parse_args()
    sys.path[:0] = [str(args.lib), str(args.deps)]
    args.work.mkdir(parents=True, exist_ok=True)
    _stub_mmcv_ops()

    from zoo_upernet import model as ours

    from zoo.devkit.parity import card_for, parity

    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, 3, 256, 256, generator=gen), torch.randn(1, 3, 200, 328, generator=gen)]
    officials = {
        "swin_t": lambda: official_swin_t(args.swin),
        "convnext_t": lambda: official_convnext_t(args.convnext, args.swin, args.work),
        "twins_svt_b": lambda: official_twins_svt_b(args.lib),
    }
    ok = True
    for name, build in officials.items():
        if args.only and name != args.only:
            continue
        builder = f"upernet_{name}"
        report = parity(getattr(ours, builder), build, convert=card_for("upernet", builder), name=f"upernet_{name}",
                        inputs=inputs, dtype=getattr(torch, args.dtype), atol=1e-4, rtol=0.0,
                        manifest_path=DATA / f"official_upernet_{name}.json")
        print(report)
        ok = ok and report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
