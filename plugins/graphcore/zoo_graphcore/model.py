"""GraphCore (Xie et al., ICLR 2023, arXiv 2301.12082): few-shot anomaly detection with ViG patch features.

There is no official code release. This follows the authors' lab benchmark M-3LAB/open-iad
(``arch/graphcore.py``, ``configuration/1_model_base/graphcore.yaml`` @ 05044fe; no licence), read for facts:

- features: the outputs of ``backbone[3][-1]`` and ``backbone[4][-1]`` of ViG-Ti (forward hooks on the FFN
  that ends blocks 3 and 4, 0-based: the block outputs), both 192 x 14 x 14, concatenated per patch
  (``embedding_concate`` with equal grids is a plain channel concatenation) into 384-d patch features,
  ordered image, row, column; ``local_smoothing: False`` (no 3x3 average pooling);
- memory bank (``fit``): greedy k-center coreset of ``int(N * sampler_percentage)`` of the N reference
  patches (0.001 in the config) on a sparse random projection (eps 0.9), see :mod:`zoo_graphcore.coreset`;
- scores (``forward``): each test patch's squared L2 distance to its nearest bank feature (faiss
  ``IndexFlatL2``, column 0); image score = the largest patch distance; map = the 14 x 14 distances
  (the task upsamples them to 224 and smooths them with a Gaussian of sigma 4, as open-iad does).

The blocks after 4 and the classifier do not change these features, so they are not run; their
weights stay in the module so that the official ViG-Ti checkpoint loads strictly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo_graphcore.coreset import CHUNK_ROWS, select_coreset
from zoo_graphcore.search import QUERY_CHUNK, NearestNeighbours
from zoo_graphcore.vig import VisionGNN

__all__ = ["GraphCore", "check_batch", "graphcore_vig_ti"]

#: open-iad graphcore.yaml: layer_num_1, layer_num_2, sampler_percentage; train_batch_size for fit's forward passes
LAYERS = (3, 4)
SAMPLER_PERCENTAGE = 0.001
PROJECTION_EPS = 0.9
FIT_BATCH = 32


def check_batch(name: str, images: Tensor) -> None:
    """A (B, 3, H, W) floating, finite, non-empty batch, else a one-line ValueError naming ``name``."""
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[1] != 3:
        raise ValueError(f"{name} must be a non-empty (B, 3, H, W) batch, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be floating point (preprocessed images), got {images.dtype}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} holds NaN or infinite values")


class GraphCore(VisionGNN):
    """A ViG whose ``forward`` scores images against a memory bank built by ``fit`` from normal images.

    ``model.fit(reference)`` with (K, 3, H, W) normal images builds the bank; ``model(images)`` returns
    ``{"score": (B,), "map": (B, h, w)}``, higher = more anomalous. The bank is not part of the state dict.
    """

    def __init__(self, *, layers: Sequence[int] = LAYERS, sampler_percentage: float = SAMPLER_PERCENTAGE,
                 projection_eps: float = PROJECTION_EPS, seed: int = 0, backend: str | None = None,
                 chunk_rows: int = CHUNK_ROWS, query_chunk: int = QUERY_CHUNK, fit_batch: int = FIT_BATCH,
                 **vig: int) -> None:
        super().__init__(**vig)
        if not layers or any(not 0 <= i < len(self.backbone) for i in layers):
            raise ValueError(f"layers must be block indices in 0..{len(self.backbone) - 1}, got {list(layers)}")
        if not 0 < sampler_percentage <= 1:
            raise ValueError(f"sampler_percentage must be in (0, 1], got {sampler_percentage!r}")
        self.layers = tuple(layers)
        self.sampler_percentage = sampler_percentage
        self.projection_eps = projection_eps
        self.seed = seed
        self.backend = backend
        self.chunk_rows = chunk_rows
        self.query_chunk = query_chunk
        if fit_batch < 1:
            raise ValueError(f"fit_batch must be >= 1, got {fit_batch}")
        self.fit_batch = fit_batch
        self.index: NearestNeighbours | None = None
        self.bank_source = 0  # reference patches the bank was selected from

    def patch_features(self, images: Tensor) -> Tensor:
        """(B, D, h, w): the hooked blocks' outputs concatenated along channels."""
        return torch.cat(self.block_outputs(images, self.layers), dim=1)

    @torch.no_grad()
    def fit(self, reference: Tensor) -> GraphCore:
        """Build the memory bank from ``reference`` (K, 3, H, W) normal images of one category.

        The forward passes take ``fit_batch`` images at a time (open-iad's train_batch_size), so a large k
        never holds more than one batch of activations. The previous bank stays until the new one is
        complete: a fit that fails leaves the model as it was.
        """
        check_batch("reference", reference)
        patches = torch.cat([self._patches(reference[i:i + self.fit_batch])
                             for i in range(0, reference.shape[0], self.fit_batch)])
        keep = select_coreset(patches, self.sampler_percentage, eps=self.projection_eps, seed=self.seed,
                              chunk=self.chunk_rows)
        self.index = NearestNeighbours(patches[keep.to(patches.device)], backend=self.backend, chunk=self.query_chunk)
        self.bank_source = patches.shape[0]
        return self

    def _patches(self, images: Tensor) -> Tensor:
        feats = self.patch_features(images)
        return feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])  # image, row, column order

    @property
    def memory_bank(self) -> Tensor | None:
        return None if self.index is None else self.index.bank

    def forward(self, images: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
        if self.index is None:
            raise RuntimeError("GraphCore has no memory bank: call model.fit(reference) with normal images first")
        check_batch("images", images)
        feats = self.patch_features(images)
        b, d, h, w = feats.shape
        dist = self.index.search(feats.permute(0, 2, 3, 1).reshape(-1, d)).view(b, h, w)
        return {"score": dist.flatten(1).amax(dim=1), "map": dist}


def graphcore_vig_ti(*, num_classes: int = 1000, **kwargs: object) -> GraphCore:
    """GraphCore on ViG-Ti (``vig_ti_224_gelu``), open-iad's configuration."""
    return GraphCore(channels=192, n_blocks=12, k=9, img_size=224, num_classes=num_classes, **kwargs)  # type: ignore[arg-type]
