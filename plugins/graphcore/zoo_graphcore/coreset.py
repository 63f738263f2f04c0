"""Greedy k-center coreset of a patch-feature memory bank, as open-iad's GraphCore selects it.

open-iad (``arch/graphcore.py`` and ``models/_patchcore/kcenter_greedy.py`` @ 05044fe) fits
``sklearn.random_projection.SparseRandomProjection(n_components='auto', eps=0.9)`` on the bank, then runs
``KCenterGreedy.select_batch`` on the projected features for ``int(N * sampler_percentage)`` steps: each
step takes the point farthest (Euclidean, in the projected space) from every point chosen so far. The
bank keeps the chosen points' *original* features.

Two facts of that code this module reproduces:

- the first point is index 0, not a random one: ``KCenterGreedy`` starts with ``already_selected = []``
  (never ``None``), so its random-start branch is never taken and ``np.argmax(None)`` gives 0;
- the projection is random; open-iad leaves its ``random_state`` unset (the global NumPy state, seeded
  once per run), zoo seeds it explicitly so a fit is reproducible.

Memory: the projected features (N x d, d ~ 200 for eps 0.9) and one N-vector of distances; each step
adds one point's distances, computed in row chunks, so no N x N matrix is ever built.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["CHUNK_ROWS", "coreset_size", "greedy_kcenter", "project", "row_chunks", "select_coreset"]

#: rows of features handled at once by the distance computations (bounded temporaries)
CHUNK_ROWS = 16384


def row_chunks(n: int, chunk: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in pieces of at most ``chunk`` rows."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    return [(start, min(n, start + chunk)) for start in range(0, n, chunk)]


def coreset_size(n: int, percentage: float) -> int:
    """``int(n * percentage)`` as open-iad computes it, but at least one point (open-iad would build an
    empty index: every test patch then scores FLT_MAX); never more than ``n``."""
    if not 0 < percentage <= 1:
        raise ValueError(f"sampler_percentage must be in (0, 1], got {percentage!r}")
    return min(n, max(1, int(n * percentage)))


def project(features: np.ndarray, eps: float = 0.9, seed: int = 0) -> np.ndarray:
    """Sparse random projection to the Johnson-Lindenstrauss dimension for ``eps`` (scikit-learn's
    ``SparseRandomProjection(n_components='auto', eps=eps)``, seeded), as float64."""
    from sklearn.random_projection import SparseRandomProjection, johnson_lindenstrauss_min_dim

    n, dim = features.shape
    if int(johnson_lindenstrauss_min_dim(n, eps=eps)) > dim:  # sklearn refuses; project nothing then
        return features.astype(np.float64)
    projector = SparseRandomProjection(n_components="auto", eps=eps, random_state=seed).fit(features)
    return np.asarray(projector.transform(features), dtype=np.float64)


def _distances_to(points: Tensor, sq_norms: Tensor, center: Tensor, chunk: int) -> Tensor:
    """Euclidean distance of every row of ``points`` to ``center``, chunk by chunk, as sklearn's
    ``euclidean_distances`` writes it: sqrt(max(|x|^2 - 2 x.c + |c|^2, 0))."""
    c_sq = (center * center).sum()
    out = torch.empty(points.shape[0], dtype=points.dtype)
    for start, stop in row_chunks(points.shape[0], chunk):
        d = sq_norms[start:stop] - 2 * (points[start:stop] @ center) + c_sq
        out[start:stop] = d.clamp_min_(0).sqrt_()
    return out


def greedy_kcenter(points: np.ndarray | Tensor, n_select: int, chunk: int = CHUNK_ROWS) -> list[int]:
    """Indices of ``n_select`` points chosen greedily, starting at index 0: each next one is the point
    farthest from those already chosen (ties: the lowest index, as ``np.argmax``)."""
    x = torch.as_tensor(points, dtype=torch.float64)
    n = x.shape[0]
    if not 0 < n_select <= n:
        raise ValueError(f"cannot select {n_select} of {n} points")
    sq_norms = (x * x).sum(dim=1)
    chosen = [0]
    min_dist = _distances_to(x, sq_norms, x[0], chunk)
    while len(chosen) < n_select:
        ind = int(torch.argmax(min_dist))
        chosen.append(ind)
        torch.minimum(min_dist, _distances_to(x, sq_norms, x[ind], chunk), out=min_dist)
    return chosen


def select_coreset(features: Tensor, percentage: float, eps: float = 0.9, seed: int = 0,
                   chunk: int = CHUNK_ROWS) -> Tensor:
    """The coreset's indices into ``features`` (N, D): greedy k-center on the seeded projection."""
    n = features.shape[0]
    size = coreset_size(n, percentage)
    if size == n:
        return torch.arange(n)
    projected = project(features.detach().cpu().float().numpy(), eps=eps, seed=seed)
    return torch.tensor(greedy_kcenter(projected, size, chunk=chunk), dtype=torch.long)
