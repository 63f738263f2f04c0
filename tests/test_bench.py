"""zoo bench: params, MACs against independent counts, timing, devices, and the CLI's errors."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from zoo import api
from zoo.cli import cli
from zoo.measure import bench

PLUGIN = '''
from zoo import hookimpl

@hookimpl
def zoo_builders():
    names = ("tiny", "mbv2", "deit_t", "mvit_xs")
    return {n: f"zoo_thirdparty_claims.nets:{n}" for n in names}
'''

NETS = '''
from torch import nn

def tiny(*, num_classes=10, **kwargs):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, num_classes))

def _timm(name, num_classes):
    import timm
    return timm.create_model(name, num_classes=num_classes)

def mbv2(*, num_classes=1000, **kwargs):
    return _timm("mobilenetv2_100", num_classes)

def deit_t(*, num_classes=1000, **kwargs):
    return _timm("deit_tiny_patch16_224", num_classes)

def mvit_xs(*, num_classes=1000, **kwargs):
    return _timm("mobilevit_xs", num_classes)
'''

# Card figures for the tiny net are hand-computed: conv 8*8 px * 8 out * 3 in * 3*3 = 13,824 MACs,
# linear 8*10 = 80 MACs; params 3*8*9 + 8 + 8*10 + 10 = 314.
REGISTRY = '''
papers:
  tinypaper: {title: "A tiny paper", venue: "ICLR 2024", license: MIT}
  mbv2: {title: "MobileNetV2", venue: "CVPR 2018", license: Apache-2.0}
  deit: {title: "DeiT", venue: "ICML 2021", license: Apache-2.0}
models:
  tiny-net:
    paper: tinypaper
    task: image-classification
    plugin: claims
    builder: tiny
    input_size: [3, 8, 8]
    num_classes: 10
    reported:
      source: "hand count"
      params_m: 0.000314
      gmacs: 0.000013904
      imagenet: {top1: 50.0}
      throughput: {value: 100, device: A100, batch_size: 128}
      latency: {value: 1.0, device: "Intel Xeon Gold 6248", batch_size: 1}
  tiny-off:
    paper: tinypaper
    task: image-classification
    plugin: claims
    builder: tiny
    input_size: [3, 8, 8]
    num_classes: 10
    reported: {source: "wrong on purpose", params_m: 0.0004, gmacs: 0.000013904, imagenet: {top1: 60.0}}
  tiny-explained:
    paper: tinypaper
    task: image-classification
    plugin: claims
    builder: tiny
    input_size: [3, 8, 8]
    num_classes: 10
    reported: {source: "counts FLOPs", params_m: 0.000314, gmacs: 0.000027808, imagenet: {top1: 55.0}}
    deviations: {gmacs: "the paper counts 2 FLOPs per multiply-add"}
  mobilenetv2-100:
    paper: mbv2
    task: image-classification
    plugin: claims
    builder: mbv2
    reported: {source: "EfficientMod Table 3", params_m: 3.5, gmacs: 0.3, imagenet: {top1: 71.8}}
  deit-t:
    paper: deit
    task: image-classification
    plugin: claims
    builder: deit_t
    reported: {source: "DeiT Table 1", params_m: 5.7, gmacs: 1.3, imagenet: {top1: 72.2},
               throughput: {value: 2536, device: V100, batch_size: 256}}
  mobilevit-xs:
    paper: tinypaper
    task: image-classification
    plugin: claims
    builder: mvit_xs
    input_size: [3, 256, 256]
    reported: {source: "MobileViT Table", params_m: 2.3, gmacs: 1.1}
  needs-plugin:
    paper: deit
    task: image-classification
    plugin: notinstalled
    builder: foo
    reported: {source: "somewhere", params_m: 1.0, gmacs: 0.5}
'''


@pytest.fixture
def claims_zoo(install_plugin, tmp_path, monkeypatch):
    """A catalog of test cards built by a throwaway plugin (timm architectures + a hand-countable net)."""
    install_plugin("zoo-thirdparty-claims", {"claims": "zoo_thirdparty_claims"},
                   {"zoo_thirdparty_claims/__init__.py": PLUGIN, "zoo_thirdparty_claims/nets.py": NETS})
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    api.reset()
    return registry


def _hook_macs(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """An independent count (thop/fvcore convention): forward hooks on conv, linear and attention."""
    from timm.models.vision_transformer import Attention

    total = 0

    def conv(m, inputs, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, inputs, out):
        nonlocal total
        total += out.numel() * m.in_features

    def attention(m, inputs, out):  # q @ k^T and attn @ v: 2 * N * N * C per image
        nonlocal total
        b, n, c = inputs[0].shape
        total += 2 * b * n * n * c

    hooks = []
    for module in model.modules():
        fn = conv if isinstance(module, nn.Conv2d) else linear if isinstance(module, nn.Linear) else \
            attention if isinstance(module, Attention) else None
        if fn is not None:
            hooks.append(module.register_forward_hook(fn))
    with torch.no_grad():
        model(torch.randn(1, *input_size))
    for h in hooks:
        h.remove()
    return total


def test_tiny_net_params_and_macs_equal_the_hand_count(claims_zoo):
    counts = bench.static_counts("tiny-net")
    assert counts["params"] == 314
    assert counts["macs"] == 13_824 + 80
    model = api.create_model("tiny-net")
    assert bench.count_params(model) == sum(p.numel() for p in model.parameters()) == 314


@pytest.mark.parametrize("name", ["mobilenetv2-100", "deit-t", "mobilevit-xs"])  # CNN, ViT, hybrid
def test_macs_match_an_independent_count_within_one_percent(claims_zoo, name):
    card = api.get_card(name)
    counts = bench.static_counts(name)
    model = api.create_model(name)
    assert counts["params"] == sum(p.numel() for p in model.parameters())
    independent = _hook_macs(model, card.input_size)
    assert abs(counts["macs"] - independent) / independent < 0.01, (counts["macs"], independent)
    # the same count on CPU as on meta: fused CPU attention must not be counted as zero
    assert bench.count_macs(model, card.input_size) == counts["macs"]


def test_deit_macs_include_attention():
    import timm

    model = timm.create_model("deit_tiny_patch16_224").eval()
    macs = bench.count_macs(model, (3, 224, 224))
    assert 1.25e9 < macs < 1.26e9  # timm's table: 1.26 GMACs; without attention it would be 1.07


def test_benchmark_result_shape_and_figures(claims_zoo):
    result = bench.benchmark("tiny-net", device="cpu", batch_size=4, warmup=1, repeats=3, latency_repeats=5)
    assert result["model"] == "tiny-net" and result["batch_size"] == 4 and result["device_type"] == "cpu"
    assert result["params_m"] == pytest.approx(0.000314) and result["gmacs"] == pytest.approx(1.39e-5, abs=1e-6)
    assert result["throughput_img_s"] > 0
    assert 0 < result["latency_ms"]["median"] <= result["latency_ms"]["p90"]
    assert result["peak_memory_mb"] is None  # CPU
    assert result["postprocess_ms"] is None  # classification declares no post-processing
    assert result["reported"]["throughput"] == {"value": 100, "device": "A100", "batch_size": 128}
    assert result["reported"]["top1"] == 50.0
    json.dumps(result)  # JSON-able


def test_postprocess_is_timed_on_the_models_own_batch1_output():
    import time

    seen = []

    def post(output):
        seen.append(tuple(output.shape))
        time.sleep(0.002)

    timed = bench.measure_postprocess(nn.Linear(3, 2), post, (3,), torch.device("cpu"), warmup=1, repeats=4)
    assert seen == [(1, 2)] * 5  # warmup + repeats, each on the forward's batch-1 output
    assert 2.0 <= timed["median"] <= timed["p90"] < 1000


def test_no_timing_options_skip_the_runs(claims_zoo):
    result = bench.benchmark("tiny-net", device="cpu", throughput=False, latency=False)
    assert result["throughput_img_s"] is None and result["latency_ms"] is None and result["params"] == 314


def test_percentile_matches_numpy_linear():
    values = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0]
    assert bench.percentile(values, 50) == statistics.median(values)
    assert bench.percentile(values, 90) == pytest.approx(7.5)  # numpy.percentile(values, 90)
    assert bench.percentile([2.0], 90) == 2.0


def test_time_steps_counts_warmup_and_repeats():
    calls = []
    times, wall = bench.time_steps(lambda: calls.append(1), torch.device("cpu"), warmup=3, repeats=7)
    assert len(calls) == 10 and len(times) == 7 and wall >= sum(times)


@pytest.mark.parametrize("paper, here, same", [
    ("A100", "NVIDIA A100-SXM4-80GB", True),
    ("RTX 3090", "NVIDIA GeForce RTX 3090", True),
    ("V100", "NVIDIA A100-SXM4-80GB", False),
    ("A100", "AMD EPYC 7B13", False),
    ("Intel Xeon Gold 6248", "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", True),
    ("Intel Xeon Gold 6248", "AMD EPYC 7B13 (2 threads)", False),
    ("cpu", "AMD EPYC 7B13", False),  # unnamed hardware is never comparable
    ("Intel CPU", "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", False),
])
def test_same_hardware(paper, here, same):
    assert bench.same_hardware(paper, here) is same


def test_cli_bench_json(claims_zoo):
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "--device", "cpu", "-b", "2", "--warmup", "0",
                                      "--repeats", "2", "--latency-repeats", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == ["tiny-net"]
    for key in ("model", "params_m", "gmacs", "throughput_img_s", "latency_ms", "device", "batch_size", "reported"):
        assert key in rows[0]
    from zoo.report.plot import load_bench

    assert load_bench()["tiny-net"]["batch_size"] == 2  # recorded for zoo plot --source measured


def test_cli_bench_text_shows_reported_beside_measured(claims_zoo):
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "--device", "cpu", "--no-throughput", "--warmup", "0",
                                      "--latency-repeats", "2", "--no-record"])
    assert result.exit_code == 0, result.output
    assert "100 img/s (A100, batch 128)" in result.output and "0.000 M" in result.output
    assert "latency b1" in result.output


def test_cli_bench_prints_first_and_an_unwritable_record_is_one_warning(claims_zoo):
    from zoo.report import plot

    plot.bench_path().parent.mkdir(parents=True, exist_ok=True)
    plot.bench_path().mkdir()  # bench.jsonl cannot be written: a directory stands in its place
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "--device", "cpu", "--no-throughput", "--warmup", "0",
                                      "--latency-repeats", "2"])
    assert result.exit_code == 0, result.output
    assert "latency b1" in result.output and "Traceback" not in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "tiny-net was not recorded" in warnings[0], result.output
    assert result.output.index("latency b1") < result.output.index("Warning:")


def test_reparam_folds_train_time_branches_before_timing(claims_zoo, monkeypatch):
    folded = []

    def fold(model, card):  # stands in for bench.fold: record which model is folded, keep it runnable
        folded.append((type(model).__name__, card.name))
        return model, "test fold"

    monkeypatch.setattr(bench, "fold", fold)
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "--device", "cpu", "--no-throughput", "--warmup", "0",
                                      "--latency-repeats", "2", "--no-record", "--reparam", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["reparam"] is True and row["folded_by"] == "test fold"
    assert folded == [("Sequential", "tiny-net")] * 2  # folded for the counts (on meta), then for timing
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "--device", "cpu", "--no-throughput", "--warmup", "0",
                                      "--latency-repeats", "2", "--no-record", "--json"])
    assert len(folded) == 2 and json.loads(result.stdout)[0]["reparam"] is False


def test_cli_bench_checkpoint_is_loaded_strictly(claims_zoo, tmp_path):
    import torch

    bad = tmp_path / "other.pth"
    torch.save({"state_dict": {"not.a.key": torch.zeros(1)}}, bad)
    args = ["bench", "tiny-net", "--device", "cpu", "--no-throughput", "--latency-repeats", "2", "--warmup", "0",
            "--no-record", "--checkpoint", str(bad)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "do not fit the model" in result.output and "not.a.key" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "tiny-net", "--checkpoint", str(bad)])
    assert result.exit_code == 2 and "--checkpoint goes with one model name" in result.output


@pytest.mark.parametrize("args, message", [
    (["bench", "no-such-model"], "unknown model 'no-such-model'"),
    (["bench", "tiny-net", "--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
    (["bench", "tiny-net", "--repeats", "-1"], "--repeats: expected a positive integer, got -1"),
    (["bench", "tiny-net", "--device", "tpu"], "--device: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
])
def test_cli_bench_bad_input_is_one_line_exit_2(claims_zoo, args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1


def test_cli_bench_amp_on_a_cpu_without_support(claims_zoo, monkeypatch):
    monkeypatch.setattr(bench, "cpu_supports", lambda amp: False)
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "--device", "cpu", "--amp", "bf16"])
    assert result.exit_code == 2
    assert "--amp bf16: this CPU" in result.output and "has no native bf16 support" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "--device", "cpu", "--amp", "fp16"])  # eval's rule
    assert result.exit_code == 2 and "--amp fp16 is for CUDA; use --amp bf16 on the CPU" in result.output


def test_bench_and_eval_share_one_device_and_precision_rule(monkeypatch):
    """One parser of --device and --amp (issue #11): bench's helpers are the runtime's, amp=None is fp32."""
    from zoo.errors import UserError
    from zoo.eval import runtime

    assert bench.resolve_amp(None, torch.device("cpu")) is None  # fp32, no autocast
    assert runtime.Runtime.from_options({}).precision(torch.device("cpu")) == "fp32"
    assert runtime.precision_of(None, "cuda") == "fp32"
    for spec in ("tpu", "cuda:x", ""):
        with pytest.raises(UserError) as eval_error:
            runtime.resolve_device(spec)
        with pytest.raises(UserError) as bench_error:
            bench.resolve_device(spec)
        assert str(bench_error.value) == str(eval_error.value)
    assert bench.resolve_device(None) == runtime.resolve_device("auto")
    monkeypatch.setattr(bench, "cpu_supports", lambda amp: True)
    assert bench.resolve_amp("none", torch.device("cpu")) is None  # as eval reads it
    assert bench.resolve_amp("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(UserError, match="--amp: expected bf16, fp16 or none, got 'fp8'"):
        bench.resolve_amp("fp8", torch.device("cpu"))


def test_bench_times_the_tasks_example_inputs(claims_zoo, monkeypatch):
    """zoo bench feeds what the card's task says a model takes (Task.example_inputs), not a fixed randn."""
    seen: list[tuple[int, ...]] = []
    real = bench.measure_speed

    def spy(model, input_size, batch_size, device, **kwargs):
        make = kwargs["inputs"]
        seen.append(tuple(make(batch_size).shape))
        return real(model, input_size, batch_size, device, **kwargs)

    monkeypatch.setattr(bench, "measure_speed", spy)
    bench.benchmark("tiny-net", device="cpu", batch_size=3, warmup=0, repeats=1, latency_repeats=1)
    card = api.get_card("tiny-net")
    assert seen == [(3, *card.input_size), (1, *card.input_size)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cli_bench_cuda_without_cuda(claims_zoo):
    result = CliRunner().invoke(cli, ["bench", "tiny-net", "--device", "cuda"])
    assert result.exit_code == 2 and "CUDA is not available on this machine" in result.output


def test_cli_bench_bf16_runs_where_supported(claims_zoo, monkeypatch):
    monkeypatch.setattr(bench, "cpu_supports", lambda amp: True)
    result = bench.benchmark("tiny-net", device="cpu", amp="bf16", batch_size=2, warmup=0, repeats=1,
                             latency=False)
    assert result["amp"] == "bf16" and result["throughput_img_s"] > 0


def test_not_installed_card_is_an_error_naming_the_plugin(claims_zoo):
    result = CliRunner().invoke(cli, ["bench", "needs-plugin", "--device", "cpu"])
    assert result.exit_code == 1 and "notinstalled" in result.output and "Traceback" not in result.output


def test_bench_and_verify_show_a_cards_figures_as_printed():
    from zoo.claims.verify import check_speed
    from zoo.cli.claims import _claim_row, _fmt
    from zoo.registry.cards import Figure

    assert _fmt(Figure(4.7, "4.7"), 2, " M") == "4.7 M" and _fmt(4.7, 2, " M") == "4.70 M"
    card = api.get_card("efficientmod-xxs")  # latency printed "3.0" ms in the paper's table
    [gpu, _cpu] = check_speed(card, here="a CPU")
    assert isinstance(gpu.reported, Figure) and gpu.reported.text == "3.0"
    assert _claim_row(card.name, gpu.__dict__)[2] == "3.0 ms"


def test_macs_are_counted_on_the_tasks_example_inputs():
    """A detector or a two-input model is counted on what its task feeds it, not on randn(input_size)."""
    import torch
    from torch import nn

    from zoo.errors import UserError
    from zoo.measure.bench import count_macs

    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 4), nn.Linear(6, 2)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.a(x), self.b(y)], dim=1)

    model = TwoInputs()
    assert count_macs(model, None, batch_size=3, inputs=lambda b: (torch.randn(b, 8), torch.randn(b, 6))) == 3 * (32 + 12)
    single = nn.Linear(5, 7)
    assert count_macs(single, (5,), batch_size=2) == 2 * 35  # randn at the card's input size
    assert count_macs(single.to("meta"), None, inputs=lambda b: torch.randn(b, 5)) == 35  # moved to the meta model
    with pytest.raises(UserError, match="no input_size and its task gives no example_inputs"):
        count_macs(single, None)
