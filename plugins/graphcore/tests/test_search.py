"""Nearest-neighbour scores: torch against the definition, faiss against torch, and the backend choice."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from zoo_graphcore import coreset
from zoo_graphcore.search import NearestNeighbours, faiss_available


def definition(queries: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    return (torch.cdist(queries.double(), bank.double()) ** 2).amin(dim=1).float()


def test_torch_backend_gives_squared_l2_to_the_nearest_bank_row():
    gen = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(300, 24, generator=gen), torch.randn(50, 24, generator=gen)
    got = NearestNeighbours(bank, backend="torch").search(queries)
    assert got.dtype == torch.float32 and got.shape == (50,)
    assert torch.allclose(got, definition(queries, bank), rtol=1e-6, atol=1e-6)
    assert NearestNeighbours(bank, backend="torch").search(bank[:7]).abs().max() < 1e-5  # in the bank: 0


def test_torch_backend_scores_queries_in_chunks(monkeypatch):
    seen: list[tuple[int, int]] = []
    real = coreset.row_chunks
    monkeypatch.setattr(coreset, "row_chunks", lambda n, c: seen.extend(real(n, c)) or real(n, c))
    bank, queries = torch.randn(100, 8), torch.randn(1000, 8)
    chunked = NearestNeighbours(bank, backend="torch", chunk=128).search(queries)
    assert max(b - a for a, b in seen) == 128 and len(seen) == 8
    assert torch.equal(chunked, NearestNeighbours(bank, backend="torch", chunk=10_000).search(queries))


def test_faiss_and_torch_give_the_same_distances():
    pytest.importorskip("faiss", reason="faiss-cpu is the optional [faiss] extra")
    gen = torch.Generator().manual_seed(1)
    bank, queries = torch.randn(3136 // 4, 384, generator=gen), torch.randn(196, 384, generator=gen)
    a = NearestNeighbours(bank, backend="faiss").search(queries)
    b = NearestNeighbours(bank, backend="torch").search(queries)
    assert NearestNeighbours(bank).backend == "faiss"
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-4)


class FakeIndexFlatL2:
    """A stand-in for faiss.IndexFlatL2 (squared L2, k nearest), to test the dispatch without faiss."""

    def __init__(self, dim: int) -> None:
        self.dim, self.rows = dim, np.zeros((0, dim), np.float32)

    def add(self, x: np.ndarray) -> None:
        assert x.dtype == np.float32 and x.flags.c_contiguous
        self.rows = np.concatenate([self.rows, x])

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        d = ((q[:, None, :].astype(np.float64) - self.rows[None]) ** 2).sum(-1)
        idx = np.argsort(d, axis=1)[:, :k]
        return np.take_along_axis(d, idx, 1).astype(np.float32), idx


def test_backend_is_faiss_when_importable_else_torch(monkeypatch):
    bank, queries = torch.randn(40, 6), torch.randn(9, 6)
    monkeypatch.setitem(sys.modules, "faiss", types.SimpleNamespace(IndexFlatL2=FakeIndexFlatL2))
    assert faiss_available()
    nn_faiss = NearestNeighbours(bank)
    assert nn_faiss.backend == "faiss" and len(nn_faiss) == 40
    assert torch.allclose(nn_faiss.search(queries), definition(queries, bank), rtol=1e-5)
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss raises ImportError
    assert not faiss_available() and NearestNeighbours(bank).backend == "torch"


@pytest.mark.parametrize("bank, kwargs, message", [
    (torch.zeros(0, 4), {}, r"non-empty \(M, D\) matrix, got shape \(0, 4\)"),
    (torch.zeros(4), {}, r"non-empty \(M, D\) matrix, got shape \(4,\)"),
    (torch.zeros(3, 4), {"backend": "annoy"}, "backend must be 'faiss', 'torch' or None, got 'annoy'"),
    (torch.zeros(3, 4), {"chunk": 0}, "chunk must be >= 1, got 0"),
])
def test_bad_banks_and_options_are_refused(bank, kwargs, message):
    with pytest.raises(ValueError, match=message):
        NearestNeighbours(bank, **kwargs)


def test_queries_of_another_width_are_refused():
    with pytest.raises(ValueError, match=r"queries must be \(N, 4\), got \(2, 5\)"):
        NearestNeighbours(torch.zeros(3, 4), backend="torch").search(torch.zeros(2, 5))
