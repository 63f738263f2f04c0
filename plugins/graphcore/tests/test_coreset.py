"""Greedy k-center coreset, the projection it runs on, and bounded (chunked) distance computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from zoo_graphcore import coreset
from zoo_graphcore.coreset import coreset_size, greedy_kcenter, project, row_chunks, select_coreset


def brute_force_kcenter(points: np.ndarray, n_select: int) -> list[int]:
    """The definition, with the whole distance matrix: start at 0, then the point farthest from the chosen."""
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    chosen = [0]
    while len(chosen) < n_select:
        chosen.append(int(np.argmax(dist[:, chosen].min(axis=1))))
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_the_brute_force_definition(seed):
    points = np.random.default_rng(seed).standard_normal((60, 5))
    assert greedy_kcenter(points, 15) == brute_force_kcenter(points, 15)


def test_each_step_takes_the_farthest_point_and_ties_take_the_lowest_index():
    # two exact duplicates of the farthest point: the lower index wins, as np.argmax does in open-iad
    points = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [5.0, 5.0], [0.0, 2.0]])
    assert greedy_kcenter(points, 3) == [0, 2, 4]
    # once every point is a center the distances are all 0 and argmax returns index 0 again (open-iad too)
    assert greedy_kcenter(points, 5)[:4] == [0, 2, 4, 1]


def test_greedy_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="cannot select 0 of 3 points"):
        greedy_kcenter(np.zeros((3, 2)), 0)
    with pytest.raises(ValueError, match="cannot select 4 of 3 points"):
        greedy_kcenter(np.zeros((3, 2)), 4)


@pytest.mark.parametrize("n, pct, size", [(196, 0.001, 1), (3136, 0.001, 3), (784, 0.1, 78), (10, 1.0, 10)])
def test_coreset_size_is_open_iads_with_a_floor_of_one(n, pct, size):
    assert coreset_size(n, pct) == size == min(n, max(1, int(n * pct)))


@pytest.mark.parametrize("pct", [0, -0.1, 1.5, float("nan")])
def test_coreset_size_refuses_bad_percentages(pct):
    with pytest.raises(ValueError, match=r"sampler_percentage must be in \(0, 1\]"):
        coreset_size(100, pct)


def test_projection_has_the_johnson_lindenstrauss_dimension_and_is_seeded():
    x = np.random.default_rng(0).standard_normal((1000, 384)).astype(np.float32)
    eps = 0.9
    want = int(4 * math.log(1000) / (eps**2 / 2 - eps**3 / 3))  # Dasgupta & Gupta's bound, as sklearn writes it
    a, b, c = project(x, seed=0), project(x, seed=0), project(x, seed=1)
    assert a.shape == (1000, want) and a.dtype == np.float64
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # distances are roughly kept: that is the projection's point
    d_orig = np.linalg.norm(x[:50, None] - x[None, :50], axis=-1)[np.triu_indices(50, 1)]
    d_proj = np.linalg.norm(a[:50, None] - a[None, :50], axis=-1)[np.triu_indices(50, 1)]
    assert 0.8 < np.median(d_proj / d_orig) < 1.2


def test_projection_is_skipped_when_the_bound_exceeds_the_feature_size():
    x = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
    assert np.array_equal(project(x), x.astype(np.float64))


def test_select_coreset_keeps_everything_at_one_and_is_reproducible():
    feats = torch.randn(400, 16)
    assert torch.equal(select_coreset(feats, 1.0), torch.arange(400))
    a, b = select_coreset(feats, 0.05, seed=3), select_coreset(feats, 0.05, seed=3)
    assert a.tolist() == b.tolist() and len(a) == 20 and a[0] == 0 and len(set(a.tolist())) == 20


def test_distances_are_computed_in_bounded_chunks(monkeypatch):
    """Above the chunk size the rows are split: no step handles more than `chunk` rows at once, and the
    result equals one pass over everything (so no N x N, or even N x d, temporary is needed)."""
    seen: list[tuple[int, int]] = []
    real = coreset.row_chunks

    def spy(n, chunk):
        out = real(n, chunk)
        seen.extend(out)
        return out

    points = np.random.default_rng(5).standard_normal((1000, 8))
    whole = greedy_kcenter(points, 12, chunk=10_000)
    monkeypatch.setattr(coreset, "row_chunks", spy)
    chunked = greedy_kcenter(points, 12, chunk=64)
    assert chunked == whole
    assert seen and max(stop - start for start, stop in seen) == 64
    assert len(seen) == 12 * math.ceil(1000 / 64)  # every step walks all rows in chunks


def test_row_chunks_cover_every_row_once():
    assert row_chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert row_chunks(0, 4) == []
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        row_chunks(10, 0)
