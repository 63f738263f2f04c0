"""`zoo bench --task T [--paper P]`: a paper's latency table re-timed here, ranked, with Spearman's rho."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_isolation import run  # noqa: E402
from test_plugins import install_acme  # noqa: E402

from zoo.measure import ranking  # noqa: E402

TABLE = "".join(f'''
  acme-{n}:
    paper: acme
    task: image-classification
    plugin: acme
    builder: acme_tiny
    input_size: [3, 32, 32]
    num_classes: 10
    reported: {{source: "ACME paper, Table 5", latency: [{{value: {ms}, device: RTX 3090, batch_size: 1}}]}}
''' for n, ms in (("a", 10), ("b", 20), ("c", 30))) + '''
  acme-ghost:
    paper: acme
    task: image-classification
    plugin: acme
    card_only: "no code"
    reported: {source: "ACME paper, Table 5", latency: [{value: 5, device: RTX 3090, batch_size: 1}]}
'''
HERE_MS = {"acme-a": 5.0, "acme-b": 3.0, "acme-c": 9.0}  # here: b < a < c; the paper: a < b < c


@pytest.fixture
def table(install_plugin, monkeypatch):
    from zoo.measure import bench

    install_acme(install_plugin, TABLE)
    timed = []

    def fake_benchmark(name, **kwargs):
        timed.append((name, kwargs["throughput"]))
        return {"model": name, "params_m": 0.0, "gmacs": 0.0, "input_size": [3, 32, 32], "throughput_img_s": None,
                "latency_ms": {"median": HERE_MS[name], "p90": HERE_MS[name]}, "peak_memory_mb": None,
                "device": "cpu", "batch_size": 1, "amp": None, "channels_last": False, "compile": False,
                "reported": {}, "load_avg": None, "threads": 1}

    monkeypatch.setattr(bench, "benchmark", fake_benchmark)
    return timed


def test_the_tasks_latency_table_is_re_ranked_with_spearman(table):
    result = run("bench", "--task", "image-classification", "--paper", "acme", "--no-record", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert table == [("acme-a", False), ("acme-b", False), ("acme-c", False)]  # card-only ghost never timed
    [group] = out["tables"]
    assert (group["paper"], group["device"]) == ("acme", "RTX 3090")
    assert [(r["model"], r["paper_rank"], r["here_rank"]) for r in group["rows"]] == [
        ("acme-a", 1, 2), ("acme-b", 2, 1), ("acme-c", 3, 3)]
    assert group["spearman"] == 0.5  # 1 - 6 * (1 + 1 + 0) / (3 * 8)
    text = run("bench", "--task", "image-classification", "--paper", "acme", "--no-record")
    assert "acme: latency table (RTX 3090) re-timed here; Spearman's rho +0.50" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["--task", "image-clasification"], "Error: unknown task 'image-clasification'. Did you mean: image-classification?"),
    (["--task", "image-classification", "--paper", "nobody"],
     "Error: no installed card of task 'image-classification', paper 'nobody' reports a latency: nothing to re-time"),
    (["acme-a", "--task", "image-classification"], "Error: give model NAMES or --task, not both"),
    (["--paper", "acme"], "Error: --paper goes with --task"),
    ([], "Error: give one or more model NAMES, or --task TASK"),
])
def test_bad_table_requests_are_one_line(table, args, message):
    result = run("bench", *args, "--no-record")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(message), result.output
    assert table == []


def test_spearman_ties_and_bad_input():
    assert ranking.ranks([3.0, 1.0, 3.0]) == [2.5, 1.0, 2.5]
    assert ranking.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert ranking.spearman([1, 2, 3], [5, 5, 5]) != ranking.spearman([1, 2, 3], [5, 5, 5])  # NaN: a constant side
    with pytest.raises(ValueError, match="needs at least two pairs"):
        ranking.spearman([1], [1])
    with pytest.raises(ValueError, match="3 values against 2"):
        ranking.spearman([1, 2, 3], [1, 2])
