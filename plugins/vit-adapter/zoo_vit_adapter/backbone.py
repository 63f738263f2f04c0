"""The ViT-Adapter backbone: a plain DeiT ViT plus the adapter, giving four maps at strides 4, 8, 16, 32.

``ViTAdapter`` of czczup/ViT-Adapter@fd64a51 ``segmentation/mmseg_custom/models/backbones/vit_adapter.py``
with ``add_vit_feature`` and ``use_extra_extractor`` on (their defaults, used by every DeiT config):

1. the spatial prior module gives c1 (stride 4, a map) and c2, c3, c4 (strides 8, 16, 32, tokens),
   each plus its ``level_embed`` row, concatenated into one prior sequence ``c``;
2. the ViT's patch tokens get the bicubically resized position table (pretraining grid 224/16);
3. for each interaction ``[first, last]`` of ``interaction_indexes``: injector, blocks
   first..last, extractor(s); the ViT tokens after each interaction are kept;
4. c is split back into maps; c1 += ``up``(c2) (2x2 transposed conv); each ViT output is resized
   bilinearly to the map of its index (x4, x2, x1, x0.5) and added;
5. ``norm1..norm4`` (BatchNorm; SyncBatchNorm in training).

The official forward needs sides that are multiples of 32 (its token views fail otherwise; the
ADE20K test pipeline's ``ResizeToMultiple(32)`` ensures it). Inputs of other sizes are padded
with zeros at the bottom and right here (zero is the normalised mean colour, as mmseg's
``Pad`` after ``Normalize``), and the maps are cropped back to ceil(side / stride).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo_vit_adapter.adapter import InteractionBlock, SpatialPriorModule, deform_inputs
from zoo_vit_adapter.vit import Block, PatchEmbed, resize_pos_embed

__all__ = ["ViTAdapter"]

MULTIPLE = 32


class ViTAdapter(nn.Module):
    """DeiT ViT + adapter; ``forward`` returns four ``embed_dim``-wide maps, finest first.

    :param embed_dim: / ``depth`` / ``num_heads`` / ``mlp_ratio``: the DeiT ViT.
    :param pretrain_size: the ViT's pretraining resolution (its position table is (size/16)^2 + 1 long).
    :param conv_inplane: width of the spatial prior module's stem.
    :param deform_num_heads: / ``n_points`` / ``deform_ratio``: the deformable attention of injector
        and extractor (``deform_ratio`` scales the value projection).
    :param cffn_ratio: hidden width of the extractor's ConvFFN over ``embed_dim``.
    :param interaction_indexes: ``[first, last]`` ViT block of each of the four interactions (the ViT
        tokens after interaction i are added to map i, as the official ``add_vit_feature``).
    :param init_values: initial injector ``gamma`` (0: the adapter starts as an identity on the ViT).
    :param drop_path_rate: stochastic depth, linear over the ViT blocks (training only).
    """

    def __init__(
        self,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        patch_size: int = 16,
        pretrain_size: int = 224,
        conv_inplane: int = 64,
        n_points: int = 4,
        deform_num_heads: int = 6,
        deform_ratio: float = 1.0,
        cffn_ratio: float = 0.25,
        interaction_indexes: Sequence[Sequence[int]] = ((0, 2), (3, 5), (6, 8), (9, 11)),
        init_values: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if patch_size != 16:
            raise ValueError(f"ViTAdapter: patch_size {patch_size}; the adapter's strides assume 16")
        indexes = [tuple(int(i) for i in pair) for pair in interaction_indexes]
        if len(indexes) != 4 or any(len(p) != 2 or not 0 <= p[0] <= p[1] < depth for p in indexes):
            raise ValueError(f"ViTAdapter: interaction_indexes {interaction_indexes!r} must be four [first, last] "
                             f"pairs of block indexes below depth {depth} (one ViT output per map)")
        self.embed_dim = embed_dim
        self.pretrain_grid = pretrain_size // patch_size
        self.interaction_indexes = indexes
        self.num_features = [embed_dim] * 4
        # official registration order: the ViT (patch_embed, pos_embed, blocks), then the adapter
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pretrain_grid**2 + 1, embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # torch.linspace(0, rate, depth)
        self.blocks = nn.Sequential(*(Block(embed_dim, num_heads, mlp_ratio, rates[i]) for i in range(depth)))
        self.level_embed = nn.Parameter(torch.zeros(3, embed_dim))
        self.spm = SpatialPriorModule(conv_inplane, embed_dim)
        self.interactions = nn.Sequential(*(
            InteractionBlock(embed_dim, deform_num_heads, n_points, deform_ratio, cffn_ratio, init_values,
                             drop_path_rate, extra_extractor=i == len(indexes) - 1)
            for i in range(len(indexes))
        ))
        self.up = nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2)
        self.norm1 = nn.BatchNorm2d(embed_dim)
        self.norm2 = nn.BatchNorm2d(embed_dim)
        self.norm3 = nn.BatchNorm2d(embed_dim)
        self.norm4 = nn.BatchNorm2d(embed_dim)
        nn.init.normal_(self.level_embed)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        height, width = x.shape[2:]
        pad_h, pad_w = -height % MULTIPLE, -width % MULTIPLE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        feats = self._forward(x)
        if pad_h or pad_w:
            feats = [f[:, :, :-(-height // s), :-(-width // s)] for f, s in zip(feats, (4, 8, 16, 32), strict=True)]
        return feats

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        inject, extract = deform_inputs(x.shape[2], x.shape[3], x.device)
        c1, c2, c3, c4 = self.spm(x)
        c2, c3, c4 = c2 + self.level_embed[0], c3 + self.level_embed[1], c4 + self.level_embed[2]
        sizes = (c2.shape[1], c3.shape[1], c4.shape[1])
        c = torch.cat([c2, c3, c4], dim=1)

        x, h, w = self.patch_embed(x)
        b, _, dim = x.shape
        x = x + resize_pos_embed(self.pos_embed[:, 1:], self.pretrain_grid, h, w)

        outs = []
        for (first, last), layer in zip(self.interaction_indexes, self.interactions, strict=True):
            x, c = layer(x, c, self.blocks[first:last + 1], inject, extract, h, w)
            outs.append(x.transpose(1, 2).reshape(b, dim, h, w))

        c2, c3, c4 = torch.split(c, sizes, dim=1)
        c2 = c2.transpose(1, 2).reshape(b, dim, 2 * h, 2 * w)
        c3 = c3.transpose(1, 2).reshape(b, dim, h, w)
        c4 = c4.transpose(1, 2).reshape(b, dim, h // 2, w // 2)
        c1 = self.up(c2) + c1

        x1, x2, x3, x4 = outs
        c1 = c1 + F.interpolate(x1, scale_factor=4, mode="bilinear", align_corners=False)
        c2 = c2 + F.interpolate(x2, scale_factor=2, mode="bilinear", align_corners=False)
        c3 = c3 + x3
        c4 = c4 + F.interpolate(x4, scale_factor=0.5, mode="bilinear", align_corners=False)
        return [self.norm1(c1), self.norm2(c2), self.norm3(c3), self.norm4(c4)]
