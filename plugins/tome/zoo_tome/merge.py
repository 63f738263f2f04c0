"""Bipartite soft matching, the token-merging step of ToMe.

Method: Bolya et al., "Token Merging: Your ViT but Faster", ICLR 2023 (arXiv 2210.09461);
official code facebookresearch/ToMe (``tome/merge.py``, CC-BY-NC 4.0). Written for zoo from the
paper's description; the token partition (alternating tokens, protected class/distillation
tokens) and the output order follow the official code so that ToMe-trained checkpoints see the
same merges they were trained with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Matching", "bipartite_soft_matching", "merge_tokens", "merge_source"]


@dataclass(frozen=True)
class Matching:
    """Which tokens of set A (even positions) merge into which tokens of set B (odd positions).

    ``src``: (B, r) indices into A of the tokens that are merged away; ``dst``: (B, r) indices into
    B they are merged into; ``keep``: (B, |A| - r) indices into A that survive, in ascending order;
    ``distill_token``: the distillation token (B[0]) is moved back to position 1 after merging.
    """

    src: torch.Tensor
    dst: torch.Tensor
    keep: torch.Tensor
    distill_token: bool

    @property
    def r(self) -> int:
        return self.src.shape[1]

    def apply(self, x: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
        """Merge ``x`` (B, N, C) with this matching; merged tokens are combined with ``reduce``."""
        a, b = x[:, ::2], x[:, 1::2]
        channels = x.shape[-1]
        kept = a.gather(1, self.keep[..., None].expand(-1, -1, channels))
        moved = a.gather(1, self.src[..., None].expand(-1, -1, channels))
        b = b.scatter_reduce(1, self.dst[..., None].expand(-1, -1, channels), moved, reduce=reduce)
        if self.distill_token:  # order: class token, distillation token, the rest
            return torch.cat([kept[:, :1], b[:, :1], kept[:, 1:], b[:, 1:]], dim=1)
        return torch.cat([kept, b], dim=1)


def bipartite_soft_matching(
    metric: torch.Tensor, r: int, class_token: bool = True, distill_token: bool = False
) -> Matching | None:
    """Match the ``r`` most similar (A, B) token pairs by cosine similarity of ``metric`` (B, N, C).

    Tokens alternate between A (even positions) and B (odd positions); each A token is paired
    with its most similar B token and the ``r`` best pairs are merged. At most half of the
    unprotected tokens can merge in one step, so ``r`` is clamped to ``(N - protected) // 2``.
    The class token (position 0, in A) is never merged away; the distillation token (position 1,
    B[0]) never receives a merge. Returns ``None`` when nothing merges.
    """
    n_tokens = metric.shape[1]
    protected = int(class_token) + int(distill_token)
    r = min(r, (n_tokens - protected) // 2)
    if r <= 0:
        return None
    with torch.no_grad():
        metric = metric / metric.norm(dim=-1, keepdim=True)
        scores = metric[:, ::2] @ metric[:, 1::2].transpose(1, 2)
        if class_token:
            scores[:, 0, :] = -torch.inf
        if distill_token:
            scores[:, :, 0] = -torch.inf
        best_score, best_dst = scores.max(dim=-1)
        order = best_score.argsort(dim=-1, descending=True)
        src = order[:, :r]
        keep = order[:, r:].sort(dim=-1).values
        dst = best_dst.gather(1, src)
    return Matching(src=src, dst=dst, keep=keep, distill_token=distill_token)


def merge_tokens(
    matching: Matching, x: torch.Tensor, size: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Size-weighted average of merged tokens; returns the merged ``x`` and the new sizes (B, N', 1).

    ``size`` counts the patches each token stands for (``None``: every token is one patch). Values
    and sizes go through a single gather/scatter by concatenating them along the channels.
    """
    if size is None:
        size = x.new_ones(x.shape[0], x.shape[1], 1)
    merged = matching.apply(torch.cat([x * size, size], dim=-1), reduce="sum")
    new_size = merged[..., -1:]
    return merged[..., :-1] / new_size, new_size


def merge_source(matching: Matching, source: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """Track which input tokens each merged token covers: a (B, N', N0) 0/1 map (for visualisation)."""
    if source is None:
        batch, n_tokens = x.shape[0], x.shape[1]
        source = torch.eye(n_tokens, device=x.device, dtype=x.dtype)[None].expand(batch, -1, -1)
    return matching.apply(source, reduce="amax")
