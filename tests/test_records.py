"""zoo.records: one typed, versioned record (Result), one writer (append), one reader (scan) that
migrates the lines older zoo versions wrote and skips, and counts, what it cannot read (#11)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from zoo import records
from zoo.records import Result, from_json, store
from zoo.records.result import SCHEMA, protocol_key

PRE = {"input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center",
       "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

# a line exactly as zoo 0.1's `zoo eval deit-t --dataset imagenet-c --corruption fog --severity 3` wrote it
V1_LINE = {
    "model": "deit-t", "dataset": "imagenet-c", "top1": 41.25, "top5": 63.5, "images": 400,
    "throughput_img_s": 812.3, "reported_top1": None, "delta_top1": None, "reported_source": None,
    "decoded": 400, "bad_images": [], "seconds": 0.49, "device": "cpu", "precision": "fp32", "batch_size": 32,
    "channels_last": False, "compile": False, "world_size": 1, "preprocess": PRE,
    "parts": [{"name": "fog/3", "corruption": "fog", "severity": 3, "top1": 41.25}],
    "data_dir": "/data/imagenet-c", "limit": None, "dataset_options": {"corruption": "fog", "severity": "3"},
    "pretrained": True, "checkpoint": None,
    "weights": {"origin": "official", "sha256": "ab" * 32, "source": "hf://timm/deit"},
    "patch": None, "skipped_bad_images": False, "rank": 0, "versions": {"zoo": "0.1.0", "torch": "2.14.1"},
    "time": "2026-11-28T10:00:00+00:00",
}


def test_a_zoo_0_1_line_migrates_to_a_result():
    r = from_json(V1_LINE)
    assert r is not None and r.schema == SCHEMA == 2
    assert (r.model, r.dataset, r.task, r.kind, r.precision) == ("deit-t", "imagenet-c", "image-classification",
                                                                 "eval", "fp32")
    assert r.metrics == {"top1": 41.25, "top5": 63.5}
    assert r.protocol == {"preprocess": PRE, "corruption": "fog", "severity": "3"}
    assert r.weights == V1_LINE["weights"] and r.pretrained is True and r.checkpoint is None
    assert (r.images, r.throughput_img_s, r.limit, r.patch, r.skipped_bad_images) == (400, 812.3, None, None, False)
    assert r.versions == {"zoo": "0.1.0", "torch": "2.14.1"} and r.time == V1_LINE["time"] and r.device == "cpu"
    assert r.details["batch_size"] == 32 and r.details["parts"] == V1_LINE["parts"]
    assert r.details["dataset_options"] == {"corruption": "fog", "severity": "3"}
    assert r.key == ("deit-t", "imagenet-c", protocol_key(r.protocol))
    # the flat view gives back what zoo 0.1 wrote (less its null fields), and the protocol
    nulls = {"limit", "patch", "checkpoint", "skipped_bad_images"}  # at their defaults
    assert r.flat() == {**{k: v for k, v in V1_LINE.items() if k not in nulls}, "protocol": r.protocol}


def test_imagenet_c_without_options_is_the_whole_benchmark_and_other_datasets_have_no_part():
    whole = from_json({**V1_LINE, "dataset_options": None})
    assert whole.protocol == {"preprocess": PRE, "corruption": "all", "severity": "all"}
    partial = from_json({**V1_LINE, "dataset_options": {"corruption": "fog"}})
    assert partial.protocol["corruption"] == "fog" and partial.protocol["severity"] == "all"
    plain = from_json({**V1_LINE, "dataset": "imagenet", "dataset_options": None})
    assert plain.protocol == {"preprocess": PRE}


def test_a_line_without_precision_is_of_unknown_precision_never_fp32():
    line = {k: v for k, v in V1_LINE.items() if k != "precision"}  # zoo before #10 autocast by default
    assert from_json(line).precision == "unknown"


def test_a_result_round_trips_through_the_file():
    r = Result(model="yolov6-n", dataset="coco", task="object-detection", protocol={"conf_thres": 0.03},
               metrics={"box_ap": 37.5, "ap50": None}, precision="fp16", details={"per_class": {"person": 50.1}},
               weights={"origin": "official", "sha256": None, "source": "x"})
    path = records.append(r)
    assert path == records.results_path()
    (back,), skipped = records.scan()
    assert back == r and skipped == 0
    assert json.loads(path.read_text())["schema"] == 2


@pytest.mark.parametrize("line", [
    {**Result(model="m", dataset="d").to_json(), "schema": 99},  # a newer zoo's record
    {**Result(model="m", dataset="d").to_json(), "schema": 0},
    {**Result(model="m", dataset="d").to_json(), "schema": "2"},
    {**Result(model="m", dataset="d").to_json(), "schema": True},
    {**Result(model="m", dataset="d").to_json(), "metrics": {"top1": "72"}},
    {**Result(model="m", dataset="d").to_json(), "metrics": {"top1": True}},
    {**Result(model="m", dataset="d").to_json(), "metrics": [72.0]},
    {**Result(model="m", dataset="d").to_json(), "protocol": ["crop"]},
    {**Result(model="m", dataset="d").to_json(), "kind": "train"},
    {**Result(model="m", dataset="d").to_json(), "precision": None},
    {**Result(model="m", dataset="d").to_json(), "model": None},
    {**Result(model="m", dataset="d").to_json(), "images": 1.5},
    {**Result(model="m", dataset="d").to_json(), "skipped_bad_images": "no"},
    {"schema": 2, "dataset": "d"},
    {**V1_LINE, "top1": "41"},
    {**V1_LINE, "weights": "official"},
])
def test_unknown_schemas_and_wrong_types_are_not_results(line):
    assert from_json(line) is None


def test_a_newer_schema_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "results.jsonl"
    good = Result(model="m", dataset="d", metrics={"top1": 1.0})
    lines = [json.dumps(good.to_json()), json.dumps({**good.to_json(), "schema": 99, "new_field": {"x": 1}}),
             json.dumps(V1_LINE), json.dumps({**V1_LINE, "schema": 99})]
    path.write_text("\n".join(lines) + "\n")
    found, skipped = records.scan(path)
    assert found == [good, from_json(V1_LINE)] and skipped == 2


def test_unknown_fields_of_a_known_schema_are_kept_in_details():
    r = from_json({**Result(model="m", dataset="d").to_json(), "seed": 3})
    assert r is not None and r.details == {"seed": 3}


def test_a_dict_is_appended_as_the_result_it_migrates_to_and_bad_ones_are_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    records.append(V1_LINE, path)
    assert json.loads(path.read_text()) == from_json(V1_LINE).to_json()
    with pytest.raises(ValueError, match="not a results record"):
        records.append({"model": "m"}, path)
    with pytest.raises(TypeError, match="a record is a Result or a dict, not list"):
        records.append(["m"], path)  # type: ignore[arg-type]
    assert len(path.read_text().splitlines()) == 1


def test_read_results_canonicalises_the_model_and_filters_the_dataset(tmp_path):
    path = tmp_path / "r.jsonl"
    for dataset in ("imagenet", "imagenet-c"):
        records.append({**V1_LINE, "model": "DeiT-T", "dataset": dataset}, path)
    found, skipped = records.read_results(model="deit-t", dataset="imagenet", path=path)
    assert [(r.model, r.dataset) for r in found] == [("DeiT-T", "imagenet")] and skipped == 0
    from zoo.errors import UnknownModel

    with pytest.raises(UnknownModel, match="unknown model 'deit-tt'"):
        records.read_results(model="deit-tt", path=path)


# -- bench records: the same record, the same writer and reader ---------------------------------------------

OLD_BENCH = {"model": "deit-t", "paper": "deit", "params": 5717416, "params_m": 5.717416, "macs": 1_258_000_000,
             "gmacs": 1.258, "form": "train", "input_size": [3, 224, 224], "device": "cpu", "device_type": "cpu",
             "hardware_class": "cpu", "batch_size": 8, "amp": None, "precision": "fp32", "channels_last": False,
             "reparam": False, "folded_by": None, "compile": False, "patch": None, "throughput_img_s": 120.5,
             "throughput_wall_img_s": 118.0, "latency_ms": {"median": 9.5, "p90": 10.25}, "peak_memory_mb": None,
             "torch": "2.14.1", "threads": 2, "load_avg": [0.1, 0.2, 0.3], "reported": {"source": "Table 1"}}


def test_old_bench_lines_read_as_bench_results():
    path = store.bench_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(OLD_BENCH) + "\n" + json.dumps({**OLD_BENCH, "latency_ms": "fast"}) + "\n")
    (r,), skipped = records.scan_bench()
    assert skipped == 1
    assert r.kind == "bench" and r.model == "deit-t" and r.precision == "fp32" and r.device == "cpu"
    assert r.metrics == {"params_m": 5.717416, "gmacs": 1.258, "throughput_img_s": 120.5,
                         "throughput_wall_img_s": 118.0, "peak_memory_mb": None, "latency_ms": 9.5,
                         "latency_p90_ms": 10.25}
    assert r.details["batch_size"] == 8 and r.details["load_avg"] == [0.1, 0.2, 0.3] and "latency_ms" not in r.details
    records.append_bench({**OLD_BENCH, "model": "other", "amp": "bf16", "precision": "bf16"})
    latest = records.latest_bench()
    assert set(latest) == {"deit-t", "other"} and latest["other"].precision == "bf16"
    assert json.loads(path.read_text().splitlines()[-1])["schema"] == 2
    with pytest.raises(ValueError, match="a bench record has kind 'bench', not 'eval'"):
        records.append_bench(Result(model="m", dataset="d"))


def test_a_bench_figure_that_is_not_finite_is_recorded_as_none():
    r = store.bench_result({**OLD_BENCH, "throughput_img_s": float("inf"), "gmacs": float("nan")})
    assert r.metrics["throughput_img_s"] is None and r.metrics["gmacs"] is None and r.metrics["params_m"] == 5.717416
    with pytest.raises(ValueError, match="not a bench result"):
        store.bench_result({"model": 3})


def test_eval_and_bench_records_do_not_mix(tmp_path):
    records.append(V1_LINE)
    records.append_bench(OLD_BENCH)
    assert [r.kind for r in records.scan()[0]] == ["eval"]
    assert [r.kind for r in records.scan_bench()[0]] == ["bench"]


# -- two processes appending at once -----------------------------------------------------------------------


def test_two_processes_appending_at_once_leave_whole_lines(tmp_path):
    path = tmp_path / "results.jsonl"
    script = textwrap.dedent(f"""
        import sys
        from zoo.records import Result, append
        tag = sys.argv[1]
        for i in range(150):
            append(Result(model=tag, dataset="d", metrics={{"top1": float(i)}}, details={{"pad": "x" * (i * 131 % 9000)}}),
                   {str(path)!r})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag]) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    found, skipped = records.scan(path)
    assert skipped == 0 and len(found) == 300
    for tag in ("a", "b"):
        assert [r.metrics["top1"] for r in found if r.model == tag] == [float(i) for i in range(150)]
