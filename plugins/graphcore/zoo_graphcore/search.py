"""Nearest-neighbour distance of query patches to the memory bank: faiss when installed, torch otherwise.

open-iad scores with ``faiss.IndexFlatL2(bank).search(queries, k=9)`` and keeps column 0: the squared
Euclidean distance to the nearest bank feature (faiss's L2 index returns squared distances). Both
backends here return that same number, as float32; the torch backend works in float64 chunks of
query rows, so its temporaries stay at ``chunk x bank`` whatever the number of queries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo_graphcore import coreset

__all__ = ["NearestNeighbours", "faiss_available"]

#: query rows scored at once by the torch backend
QUERY_CHUNK = 4096


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class NearestNeighbours:
    """An exact L2 index over ``bank`` (M, D); ``backend`` is ``"faiss"``, ``"torch"`` or ``None`` (faiss
    when importable)."""

    def __init__(self, bank: Tensor, backend: str | None = None, chunk: int = QUERY_CHUNK) -> None:
        if bank.ndim != 2 or bank.shape[0] == 0:
            raise ValueError(f"the memory bank must be a non-empty (M, D) matrix, got shape {tuple(bank.shape)}")
        if backend not in (None, "faiss", "torch"):
            raise ValueError(f"backend must be 'faiss', 'torch' or None, got {backend!r}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.backend = backend or ("faiss" if faiss_available() else "torch")
        self.chunk = chunk
        self.bank = bank.detach()
        self._index: Any = None
        if self.backend == "faiss":
            import faiss

            self._index = faiss.IndexFlatL2(bank.shape[1])
            self._index.add(np.ascontiguousarray(bank.detach().cpu().float().numpy()))
        else:
            self._bank64 = self.bank.to(torch.float64)
            self._bank_sq = (self._bank64 * self._bank64).sum(dim=1)

    def __len__(self) -> int:
        return int(self.bank.shape[0])

    def search(self, queries: Tensor) -> Tensor:
        """Squared L2 distance (N,) of each query row (N, D) to its nearest bank row, float32, on the
        queries' device."""
        if queries.ndim != 2 or queries.shape[1] != self.bank.shape[1]:
            raise ValueError(f"queries must be (N, {self.bank.shape[1]}), got {tuple(queries.shape)}")
        if self.backend == "faiss":
            dist, _ = self._index.search(np.ascontiguousarray(queries.detach().cpu().float().numpy()), 1)
            return torch.from_numpy(dist[:, 0].copy()).to(queries.device)
        bank = self._bank64.to(queries.device)
        bank_sq = self._bank_sq.to(queries.device)
        out = torch.empty(queries.shape[0], dtype=torch.float64, device=queries.device)
        for start, stop in coreset.row_chunks(queries.shape[0], self.chunk):
            q = queries[start:stop].to(torch.float64)
            d = (q * q).sum(dim=1, keepdim=True) - 2 * (q @ bank.T) + bank_sq
            out[start:stop] = d.amin(dim=1).clamp_min_(0)
        return out.float()
