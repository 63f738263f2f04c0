"""YOLOv6 v3.0 networks (N/S/M/L at 640, N6/S6/M6/L6 at 1280), written for zoo in the layout of
meituan/YOLOv6 release 0.4.0.

The module tree mirrors the official ``yolov6.models.yolo.Model`` (``backbone``, ``neck``, ``detect``)
so the official checkpoints (pickled whole models under ``model``) load with ``strict=True``; the
committed manifests in ``tests/data`` are the official model's state-dict keys and shapes.

Facts taken from the official code (read, not copied): configs/yolov6{n,s,m,l}.py, yolov6/models/
yolo.py (``build_network``: repeats ``max(round(n * depth), 1)``, channels rounded up to a multiple
of 8), efficientrep.py, reppan.py, effidehead.py, heads/effidehead_distill_ns.py, layers/common.py.
The released N/S checkpoints are self-distilled and so carry the ``distill_ns`` head (an extra
``reg_preds_dist`` branch, unused in eval); M/L use the DFL head (``reg_max`` 16); L is trained
in ``conv_silu`` mode (plain Conv-BN-SiLU blocks, nothing to re-parameterise but BN).

P6 (configs/yolov6{n6,s6,m6,l6}.py): one more backbone stage (ERBlock_6, stride 64) and a neck with
three top-down BiFusions (RepBiFPANNeck6 for N6/S6, CSPRepBiFPANNeck_P6 for M6/L6, models/reppan.py)
feeding a four-level head (strides 8/16/32/64, effidehead.py ``build_effidehead_layer`` with
``num_layers=4``). N6/S6 are not distilled (plain head, ``reg_max`` 0); M6 uses RepVGG blocks and the
DFL head, L6 ``conv_silu`` and the DFL head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["YOLOv6", "yolov6_n", "yolov6_s", "yolov6_m", "yolov6_l", "yolov6_n6", "yolov6_s6", "yolov6_m6",
           "yolov6_l6", "fold_model", "VARIANTS"]


def _fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one convolution computing ``bn(conv(x))`` in eval mode (tensors only)."""
    with torch.no_grad():
        std = (bn.running_var + bn.eps).sqrt()
        scale = bn.weight / std
        bias = bias if bias is not None else torch.zeros_like(bn.running_mean)
        return weight * scale.reshape(-1, 1, 1, 1), bn.bias + (bias - bn.running_mean) * scale


class _FoldedConv2d(nn.Conv2d):
    """A Conv2d whose weight and bias are set right after construction: no random init to throw away."""

    def reset_parameters(self) -> None:
        pass


def _biased_conv(like: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """``like``'s geometry with the given weight and bias (folding stays cheap on big models)."""
    conv = _FoldedConv2d(like.in_channels, like.out_channels, like.kernel_size, like.stride, like.padding,
                         like.dilation, like.groups, bias=True, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


def _fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One convolution with a bias computing ``bn(conv(x))`` in eval mode."""
    return _biased_conv(conv, *_fold_bn(conv.weight, conv.bias, bn))


class ConvModule(nn.Module):
    """Conv -> BN -> activation (``act`` None: no activation); ``fuse()`` folds the BN into the conv."""

    def __init__(self, cin: int, cout: int, k: int, s: int, act: str | None, padding: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2 if padding is None else padding, bias=False)
        self.bn: nn.BatchNorm2d | None = nn.BatchNorm2d(cout)
        self.act = {"relu": nn.ReLU(), "silu": nn.SiLU(), None: nn.Identity()}[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.act(x if self.bn is None else self.bn(x))

    def fuse(self) -> None:
        if self.bn is not None:
            self.conv = _fuse_conv_bn(self.conv, self.bn)
            self.bn = None


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.block = ConvModule(cin, cout, kernel_size, stride, "relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class ConvBNSiLU(ConvBNReLU):
    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1) -> None:
        nn.Module.__init__(self)
        self.block = ConvModule(cin, cout, kernel_size, stride, "silu")


class RepVGGBlock(nn.Module):
    """3x3 conv-BN + 1x1 conv-BN (+ BN identity when shapes allow), then ReLU; ``switch_to_deploy()``
    folds the branches into one biased 3x3 convolution ``rbr_reparam`` (RepVGG)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        assert kernel_size == 3
        self.in_channels, self.out_channels, self.stride = cin, cout, stride
        self.nonlinearity = nn.ReLU()
        self.rbr_identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.rbr_dense = ConvModule(cin, cout, 3, stride, None, padding=1)
        self.rbr_1x1 = ConvModule(cin, cout, 1, stride, None, padding=0)
        self.rbr_reparam: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rbr_reparam is not None:
            return self.nonlinearity(self.rbr_reparam(x))
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            out = out + self.rbr_identity(x)
        return self.nonlinearity(out)

    def switch_to_deploy(self) -> None:
        if self.rbr_reparam is not None:
            return
        dense_w, dense_b = _fold_bn(self.rbr_dense.conv.weight, None, self.rbr_dense.bn)
        one_w, one_b = _fold_bn(self.rbr_1x1.conv.weight, None, self.rbr_1x1.bn)
        weight, bias = dense_w + F.pad(one_w, [1, 1, 1, 1]), dense_b + one_b
        if self.rbr_identity is not None:
            eye = torch.zeros_like(dense_w)
            eye[torch.arange(self.in_channels), torch.arange(self.in_channels), 1, 1] = 1.0
            ident_w, ident_b = _fold_bn(eye, None, self.rbr_identity)
            weight, bias = weight + ident_w, bias + ident_b
        self.rbr_reparam = _biased_conv(self.rbr_dense.conv, weight, bias)
        del self.rbr_dense, self.rbr_1x1, self.rbr_identity
        self.rbr_identity = None


class BottleRep(nn.Module):
    """Two basic blocks with a learnt-weight (``alpha``) residual when the channels match."""

    def __init__(self, cin: int, cout: int, basic_block: type[nn.Module]) -> None:
        super().__init__()
        self.conv1 = basic_block(cin, cout)
        self.conv2 = basic_block(cout, cout)
        self.shortcut = cin == cout
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + self.alpha * x if self.shortcut else out


class RepBlock(nn.Module):
    """``n`` basic blocks (``conv1`` then ``block``); with BottleRep, ``n // 2`` BottleReps."""

    def __init__(self, cin: int, cout: int, n: int, block: type[nn.Module], basic_block: type[nn.Module] | None = None) -> None:
        super().__init__()
        if block is BottleRep:
            self.conv1: nn.Module = BottleRep(cin, cout, basic_block)
            n = n // 2
            self.block = nn.Sequential(*(BottleRep(cout, cout, basic_block) for _ in range(n - 1))) if n > 1 else None
        else:
            self.conv1 = block(cin, cout)
            self.block = nn.Sequential(*(block(cout, cout) for _ in range(n - 1))) if n > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return x if self.block is None else self.block(x)


class BepC3(nn.Module):
    """CSP stage of M/L: two 1x1 branches, one through BottleReps, merged by a 1x1 conv."""

    def __init__(self, cin: int, cout: int, n: int, e: float, block: type[nn.Module]) -> None:
        super().__init__()
        hidden = int(cout * e)
        conv = ConvBNSiLU if block is ConvBNSiLU else ConvBNReLU
        self.cv1 = conv(cin, hidden, 1, 1)
        self.cv2 = conv(cin, hidden, 1, 1)
        self.cv3 = conv(2 * hidden, cout, 1, 1)
        self.m = RepBlock(hidden, hidden, n, BottleRep, basic_block=block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class _SPPFModule(nn.Module):
    def __init__(self, cin: int, cout: int, conv: type[nn.Module]) -> None:
        super().__init__()
        hidden = cin // 2
        self.cv1 = conv(cin, hidden, 1, 1)
        self.cv2 = conv(hidden * 4, cout, 1, 1)
        self.m = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat([x, y1, y2, self.m(y2)], 1))


class _CSPSPPFModule(nn.Module):
    def __init__(self, cin: int, cout: int, conv: type[nn.Module]) -> None:
        super().__init__()
        hidden = int(cout * 0.5)
        self.cv1 = conv(cin, hidden, 1, 1)
        self.cv2 = conv(cin, hidden, 1, 1)
        self.cv3 = conv(hidden, hidden, 3, 1)
        self.cv4 = conv(hidden, hidden, 1, 1)
        self.m = nn.MaxPool2d(5, 1, 2)
        self.cv5 = conv(4 * hidden, hidden, 1, 1)
        self.cv6 = conv(hidden, hidden, 3, 1)
        self.cv7 = conv(2 * hidden, cout, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.cv4(self.cv3(self.cv1(x)))
        y1 = self.m(x1)
        y2 = self.m(y1)
        y3 = self.cv6(self.cv5(torch.cat([x1, y1, y2, self.m(y2)], 1)))
        return self.cv7(torch.cat((self.cv2(x), y3), 1))


class SPPF(nn.Module):
    """SPPF (SiLU) / SimSPPF (ReLU): the official wrappers hold the module as ``sppf``."""

    def __init__(self, cin: int, cout: int, conv: type[nn.Module]) -> None:
        super().__init__()
        self.sppf = _SPPFModule(cin, cout, conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sppf(x)


class CSPSPPF(nn.Module):
    """CSPSPPF (SiLU) / SimCSPSPPF (ReLU), held as ``cspsppf``."""

    def __init__(self, cin: int, cout: int, conv: type[nn.Module]) -> None:
        super().__init__()
        self.cspsppf = _CSPSPPFModule(cin, cout, conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cspsppf(x)


class Transpose(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.upsample_transpose = nn.ConvTranspose2d(cin, cout, 2, 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample_transpose(x)


class BiFusion(nn.Module):
    """Fuses the upsampled top feature, the same-level one and the downsampled lower one."""

    def __init__(self, cins: tuple[int, int], cout: int) -> None:
        super().__init__()
        self.cv1 = ConvBNReLU(cins[0], cout, 1, 1)
        self.cv2 = ConvBNReLU(cins[1], cout, 1, 1)
        self.cv3 = ConvBNReLU(cout * 3, cout, 1, 1)
        self.upsample = Transpose(cout, cout)
        self.downsample = ConvBNReLU(cout, cout, 3, 2)

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return self.cv3(torch.cat((self.upsample(x[0]), self.cv1(x[1]), self.downsample(self.cv2(x[2]))), 1))


@dataclass(frozen=True)
class Variant:
    depth: float
    width: float
    csp_e: float | None     # None: EfficientRep(6) + RepBiFPANNeck(6); else CSPBepBackbone(_P6) + CSPRepBiFPANNeck(_P6)
    cspsppf: bool
    block: str              # official training_mode: "repvgg" or "conv_silu"
    distill_ns: bool        # the N/S self-distillation head (reg_preds_dist + reg_preds)
    reg_max: int            # 0: plain box regression; 16: DFL
    p6: bool = False        # four output levels (strides 8..64), the 1280 models


VARIANTS: dict[str, Variant] = {  # configs/yolov6{n,s,m,l,n6,s6,m6,l6}.py @ 0.4.0
    "n": Variant(0.33, 0.25, None, True, "repvgg", True, 0),
    "s": Variant(0.33, 0.50, None, True, "repvgg", True, 0),
    "m": Variant(0.60, 0.75, 2 / 3, False, "repvgg", False, 16),
    "l": Variant(1.0, 1.0, 1 / 2, False, "conv_silu", False, 16),
    "n6": Variant(0.33, 0.25, None, True, "repvgg", False, 0, p6=True),
    "s6": Variant(0.33, 0.50, None, True, "repvgg", False, 0, p6=True),
    "m6": Variant(0.60, 0.75, 2 / 3, False, "repvgg", False, 16, p6=True),
    "l6": Variant(1.0, 1.0, 1 / 2, False, "conv_silu", False, 16, p6=True),
}
# (backbone repeats, backbone channels, neck repeats, neck channels) before the depth/width multipliers
_P5 = ((1, 6, 12, 18, 6), (64, 128, 256, 512, 1024), (12, 12, 12, 12), (256, 128, 128, 256, 256, 512))
_P6 = ((1, 6, 12, 18, 6, 6), (64, 128, 256, 512, 768, 1024), (12,) * 6, (512, 256, 128, 256, 512, 1024))


class Backbone(nn.Module):
    """EfficientRep(6) (``csp_e`` None) or CSPBepBackbone(_P6): a stem, then one ERBlock per channel
    entry after the first (four for P5, five for P6), the last ending in the SPPF merge; returns
    every ERBlock's output from ERBlock_2 on (``fuse_P2``: the BiFPAN necks use the stride-4 map)."""

    def __init__(self, ch: list[int], reps: list[int], block: type[nn.Module], csp_e: float | None, cspsppf: bool) -> None:
        super().__init__()

        def stage(c: int, n: int) -> nn.Module:
            return RepBlock(c, c, n, block) if csp_e is None else BepC3(c, c, n, csp_e, block)

        conv = ConvBNSiLU if block is ConvBNSiLU else ConvBNReLU
        merge = CSPSPPF if cspsppf else SPPF
        self.stem = block(3, ch[0], 3, 2)
        self.stages = len(ch) - 1
        for i in range(1, len(ch)):
            layers = [block(ch[i - 1], ch[i], 3, 2), stage(ch[i], reps[i])]
            if i == len(ch) - 1:
                layers.append(merge(ch[i], ch[i], conv))
            self.add_module(f"ERBlock_{i + 1}", nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i in range(2, self.stages + 2):
            x = getattr(self, f"ERBlock_{i}")(x)
            outs.append(x)
        return tuple(outs)


class Neck(nn.Module):
    """RepBiFPANNeck (``csp_e`` None) or CSPRepBiFPANNeck; returns the P3, P4, P5 outputs."""

    def __init__(self, ch: list[int], reps: list[int], block: type[nn.Module], csp_e: float | None) -> None:
        super().__init__()

        def stage(cin: int, cout: int, n: int) -> nn.Module:
            return RepBlock(cin, cout, n, block) if csp_e is None else BepC3(cin, cout, n, csp_e, block)

        self.reduce_layer0 = ConvBNReLU(ch[4], ch[5], 1, 1)
        self.Bifusion0 = BiFusion((ch[3], ch[2]), ch[5])
        self.Rep_p4 = stage(ch[5], ch[5], reps[5])
        self.reduce_layer1 = ConvBNReLU(ch[5], ch[6], 1, 1)
        self.Bifusion1 = BiFusion((ch[2], ch[1]), ch[6])
        self.Rep_p3 = stage(ch[6], ch[6], reps[6])
        self.downsample2 = ConvBNReLU(ch[6], ch[7], 3, 2)
        self.Rep_n3 = stage(ch[6] + ch[7], ch[8], reps[7])
        self.downsample1 = ConvBNReLU(ch[8], ch[9], 3, 2)
        self.Rep_n4 = stage(ch[5] + ch[9], ch[10], reps[8])

    def forward(self, feats: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        x3, x2, x1, x0 = feats
        fpn_out0 = self.reduce_layer0(x0)
        fpn_out1 = self.reduce_layer1(self.Rep_p4(self.Bifusion0([fpn_out0, x1, x2])))
        pan_out2 = self.Rep_p3(self.Bifusion1([fpn_out1, x2, x3]))
        pan_out1 = self.Rep_n3(torch.cat([self.downsample2(pan_out2), fpn_out1], 1))
        pan_out0 = self.Rep_n4(torch.cat([self.downsample1(pan_out1), fpn_out0], 1))
        return [pan_out2, pan_out1, pan_out0]


class Neck6(nn.Module):
    """RepBiFPANNeck6 (``csp_e`` None) or CSPRepBiFPANNeck_P6: three top-down BiFusions (P5, P4, P3),
    three stride-2 convs back up; returns the P3, P4, P5, P6 outputs. Channel indices as the official
    code names them (``channels_list`` = backbone + neck)."""

    def __init__(self, ch: list[int], reps: list[int], block: type[nn.Module], csp_e: float | None) -> None:
        super().__init__()

        def stage(cin: int, cout: int, n: int) -> nn.Module:
            return RepBlock(cin, cout, n, block) if csp_e is None else BepC3(cin, cout, n, csp_e, block)

        self.reduce_layer0 = ConvBNReLU(ch[5], ch[6], 1, 1)
        self.Bifusion0 = BiFusion((ch[4], ch[6]), ch[6])
        self.Rep_p5 = stage(ch[6], ch[6], reps[6])
        self.reduce_layer1 = ConvBNReLU(ch[6], ch[7], 1, 1)
        self.Bifusion1 = BiFusion((ch[3], ch[7]), ch[7])
        self.Rep_p4 = stage(ch[7], ch[7], reps[7])
        self.reduce_layer2 = ConvBNReLU(ch[7], ch[8], 1, 1)
        self.Bifusion2 = BiFusion((ch[2], ch[8]), ch[8])
        self.Rep_p3 = stage(ch[8], ch[8], reps[8])
        self.downsample2 = ConvBNReLU(ch[8], ch[8], 3, 2)
        self.Rep_n4 = stage(ch[8] + ch[8], ch[9], reps[9])
        self.downsample1 = ConvBNReLU(ch[9], ch[9], 3, 2)
        self.Rep_n5 = stage(ch[7] + ch[9], ch[10], reps[10])
        self.downsample0 = ConvBNReLU(ch[10], ch[10], 3, 2)
        self.Rep_n6 = stage(ch[6] + ch[10], ch[11], reps[11])

    def forward(self, feats: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        x4, x3, x2, x1, x0 = feats
        fpn_out0 = self.reduce_layer0(x0)
        fpn_out1 = self.reduce_layer1(self.Rep_p5(self.Bifusion0([fpn_out0, x1, x2])))
        fpn_out2 = self.reduce_layer2(self.Rep_p4(self.Bifusion1([fpn_out1, x2, x3])))
        pan_out3 = self.Rep_p3(self.Bifusion2([fpn_out2, x3, x4]))
        pan_out2 = self.Rep_n4(torch.cat([self.downsample2(pan_out3), fpn_out2], 1))
        pan_out1 = self.Rep_n5(torch.cat([self.downsample1(pan_out2), fpn_out1], 1))
        pan_out0 = self.Rep_n6(torch.cat([self.downsample0(pan_out1), fpn_out0], 1))
        return [pan_out3, pan_out2, pan_out1, pan_out0]


class Detect(nn.Module):
    """Efficient decoupled head (anchor-free). Eval mode returns ``(B, N, 5 + classes)``: box centre x,
    y, width, height in input pixels, objectness 1, class probabilities (the official eval output)."""

    def __init__(self, ch: list[int], num_classes: int, reg_max: int, distill_ns: bool) -> None:
        super().__init__()
        self.nc, self.nl = num_classes, len(ch)
        self.use_dfl = reg_max > 0
        self.reg_max = reg_max if self.use_dfl else 16  # the official Detect's default sizes proj/proj_conv
        self.strides = (8, 16, 32, 64)[: len(ch)]
        self.stems = nn.ModuleList(ConvBNSiLU(c, c, 1, 1) for c in ch)
        self.cls_convs = nn.ModuleList(ConvBNSiLU(c, c, 3, 1) for c in ch)
        self.reg_convs = nn.ModuleList(ConvBNSiLU(c, c, 3, 1) for c in ch)
        self.cls_preds = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in ch)
        if distill_ns:  # the distillation branch (4 * (reg_max + 1) outputs, reg_max 0 here): train-only
            self.reg_preds_dist = nn.ModuleList(nn.Conv2d(c, 4 * (reg_max + 1), 1) for c in ch)
        self.reg_preds = nn.ModuleList(nn.Conv2d(c, 4 if distill_ns else 4 * (reg_max + 1), 1) for c in ch)
        proj = torch.linspace(0, self.reg_max, self.reg_max + 1)
        self.proj = nn.Parameter(proj, requires_grad=False)
        self.proj_conv = nn.Conv2d(self.reg_max + 1, 1, 1, bias=False)
        self.proj_conv.weight.data = proj.view(1, -1, 1, 1).clone()
        self.proj_conv.weight.requires_grad_(False)
        prior = -math.log((1 - 1e-2) / 1e-2)
        for conv in self.cls_preds:
            nn.init.zeros_(conv.weight)
            nn.init.constant_(conv.bias, prior)
        for conv in [*self.reg_preds, *getattr(self, "reg_preds_dist", [])]:
            nn.init.zeros_(conv.weight)
            nn.init.constant_(conv.bias, 1.0)

    def _levels(self, feats: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for i, x in enumerate(feats):
            x = self.stems[i](x)
            reg_feat = self.reg_convs[i](x)
            out.append((self.cls_preds[i](self.cls_convs[i](x)), self.reg_preds[i](reg_feat)))
        return out

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        scores, dists, points, strides = [], [], [], []
        for (cls, reg), stride in zip(self._levels(feats), self.strides, strict=True):
            b, _, h, w = cls.shape
            if self.use_dfl:
                reg = reg.reshape(b, 4, self.reg_max + 1, h * w).permute(0, 2, 1, 3)
                reg = self.proj_conv(F.softmax(reg, dim=1))
            scores.append(cls.sigmoid().reshape(b, self.nc, h * w))
            dists.append(reg.reshape(b, 4, h * w))
            ys, xs = torch.meshgrid(torch.arange(h, device=cls.device) + 0.5,
                                    torch.arange(w, device=cls.device) + 0.5, indexing="ij")
            points.append(torch.stack([xs, ys], -1).reshape(-1, 2).to(cls.dtype))
            strides.append(torch.full((h * w, 1), float(stride), dtype=cls.dtype, device=cls.device))
        score = torch.cat(scores, -1).permute(0, 2, 1)
        dist = torch.cat(dists, -1).permute(0, 2, 1)
        anchor, stride = torch.cat(points), torch.cat(strides)
        lt, rb = dist.split(2, -1)
        x1y1, x2y2 = anchor - lt, anchor + rb
        boxes = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], -1) * stride
        return torch.cat([boxes, torch.ones_like(boxes[..., :1]), score], -1)


class YOLOv6(nn.Module):
    """Backbone, neck and head named as the official ``Model`` names them (``backbone``, ``neck``, ``detect``)."""

    def __init__(self, variant: Variant, num_classes: int = 80) -> None:
        super().__init__()
        back_reps, back_ch, neck_reps, neck_ch = _P6 if variant.p6 else _P5
        reps = [max(round(n * variant.depth), 1) if n > 1 else n for n in back_reps + neck_reps]
        ch = [math.ceil(c * variant.width / 8) * 8 for c in back_ch + neck_ch]
        block = RepVGGBlock if variant.block == "repvgg" else ConvBNSiLU
        nb = len(back_ch)
        self.num_classes = num_classes
        self.backbone = Backbone(ch[:nb], reps[:nb], block, variant.csp_e, variant.cspsppf)
        self.neck = (Neck6 if variant.p6 else Neck)(ch, reps, block, variant.csp_e)
        head = [ch[8], ch[9], ch[10], ch[11]] if variant.p6 else [ch[6], ch[8], ch[10]]  # effidehead chx
        self.detect = Detect(head, num_classes, variant.reg_max, variant.distill_ns)
        for m in self.modules():  # the official initialize_weights: BN eps 1e-3, momentum 0.03
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.03

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.detect(self.neck(self.backbone(x)))

    def switch_to_deploy(self) -> YOLOv6:
        """Fold in place as the official deploy path does: every RepVGG block into one 3x3 conv
        (``switch_to_deploy``) and every Conv-BN pair into one biased conv (``fuse_model``)."""
        return fold_model(self)


def fold_model(model: nn.Module) -> nn.Module:
    for m in list(model.modules()):
        if isinstance(m, RepVGGBlock):
            m.switch_to_deploy()
    for m in model.modules():
        if isinstance(m, ConvModule):
            m.fuse()
    return model


def _build(name: str, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    if kwargs:
        raise TypeError(f"yolov6_{name}() got unexpected arguments {sorted(kwargs)}")
    return YOLOv6(VARIANTS[name], num_classes=num_classes)


def yolov6_n(*, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    return _build("n", num_classes, **kwargs)


def yolov6_s(*, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    return _build("s", num_classes, **kwargs)


def yolov6_m(*, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    return _build("m", num_classes, **kwargs)


def yolov6_l(*, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    return _build("l", num_classes, **kwargs)


def yolov6_n6(*, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    return _build("n6", num_classes, **kwargs)


def yolov6_s6(*, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    return _build("s6", num_classes, **kwargs)


def yolov6_m6(*, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    return _build("m6", num_classes, **kwargs)


def yolov6_l6(*, num_classes: int = 80, **kwargs: object) -> YOLOv6:
    return _build("l6", num_classes, **kwargs)
