"""Deploy-form claims (#10 item 14): bench, verify and the plugin kit count the folded model, one rule."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from zoo import api
from zoo.claims import verify
from zoo.cli import cli
from zoo.devkit.kit import check_plugin
from zoo.errors import PluginError
from zoo.measure import bench

PLUGIN = '''
from zoo import hookimpl

@hookimpl
def zoo_builders():
    names = ("mobileone_s0", "rep_net", "self_folding", "plain", "bad_fold", "broken", "needs_values")
    return {n: f"zoo_thirdparty_rep.nets:{n}" for n in names}

@hookimpl
def zoo_fold(card, model):
    if card.builder == "rep_net":
        from zoo_thirdparty_rep.nets import fold_rep_net
        return fold_rep_net(model)
    if card.builder == "bad_fold":
        raise ZeroDivisionError("cannot fold this one")
    return None
'''

# Another plugin's zoo_fold must never be asked about the cards of the plugin above.
INTRUDER = '''
from zoo import hookimpl

@hookimpl
def zoo_fold(card, model):
    raise AssertionError("asked to fold " + card.name)
'''

NETS = '''
import torch
from torch import nn


def mobileone_s0(*, num_classes=1000, **kwargs):
    import timm
    return timm.create_model("mobileone_s0", num_classes=num_classes)


class RepBlock(nn.Module):
    """A RepVGG-style block: 3x3 and 1x1 branches, summed; folds into one 3x3 conv (no fold method)."""

    def __init__(self, channels):
        super().__init__()
        self.conv3 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return self.conv3(x) + self.conv1(x)


class RepNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = RepBlock(8)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.block(torch.relu(self.stem(x)))
        return self.head(x.mean((2, 3)))


def rep_net(*, num_classes=10, **kwargs):
    return RepNet(num_classes)


def fold_rep_net(model):
    """The plugin's own folding: a module swap, which timm's reparameterize_model cannot do."""
    block = model.block
    fused = nn.Conv2d(8, 8, 3, padding=1)
    with torch.no_grad():
        fused.weight.copy_(block.conv3.weight + nn.functional.pad(block.conv1.weight, [1, 1, 1, 1]))
        fused.bias.copy_(block.conv3.bias + block.conv1.bias)
    model.block = fused
    return model


class SelfFolding(RepNet):
    """Follows the method convention: the model folds itself."""

    def reparameterize(self):
        fold_rep_net(self)


def self_folding(*, num_classes=10, **kwargs):
    return SelfFolding(num_classes)


def plain(*, num_classes=10, **kwargs):
    return RepNet(num_classes)


def bad_fold(*, num_classes=10, **kwargs):
    return RepNet(num_classes)


def broken(*, num_classes=10, **kwargs):
    raise ZeroDivisionError("division by zero in the builder")


def needs_values(*, num_classes=10, **kwargs):
    """Reads a tensor's value while building (as FasterViT's drop-path schedule does): fails on meta."""
    depth = int(torch.linspace(0, 3, 4)[-1].item())
    return nn.Sequential(*[nn.Conv2d(3, 3, 1) for _ in range(depth)], nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(3, num_classes))
'''

# RepNet: stem 3*8*9+8 = 224, block 8*8*9+8 + 8*8+8 = 656 (folded: 584), head 8*10+10 = 90.
UNFOLDED, FOLDED = 224 + 656 + 90, 224 + 584 + 90


def _card(name: str, builder: str, params_m: float, form: str | None, size: int = 16, classes: int = 10) -> str:
    form_line = f", form: {form}" if form else ""
    return (f"  {name}:\n    paper: rep\n    task: image-classification\n    plugin: rep\n    builder: {builder}\n"
            f"    input_size: [3, {size}, {size}]\n    num_classes: {classes}\n"
            f"    reported: {{source: \"test\", params_m: {params_m}{form_line}}}\n")


HEAD = "papers:\n  rep: {title: \"Rep\", venue: \"ICLR 2024\", license: MIT}\nmodels:\n"
MOBILEONE = HEAD + "".join([
    _card("mobileone-s0", "mobileone_s0", 2.1, "deploy", size=64, classes=1000),   # MobileOne README: 2.1 M
    _card("mobileone-s0-train", "mobileone_s0", 5.3, None, size=64, classes=1000),
])
REGISTRY = HEAD + "".join([
    _card("rep-net", "rep_net", FOLDED / 1e6, "deploy"),
    _card("rep-net-train", "rep_net", UNFOLDED / 1e6, "train"),
    _card("self-folding", "self_folding", FOLDED / 1e6, "deploy"),
    _card("plain-deploy", "plain", FOLDED / 1e6, "deploy"),
    _card("plain-train", "plain", UNFOLDED / 1e6, None),
    _card("bad-fold", "bad_fold", FOLDED / 1e6, "deploy"),
])


def _install(install_plugin, tmp_path, monkeypatch, text):
    install_plugin("zoo-thirdparty-rep", {"rep": "zoo_thirdparty_rep"},
                   {"zoo_thirdparty_rep/__init__.py": PLUGIN, "zoo_thirdparty_rep/nets.py": NETS})
    install_plugin("zoo-thirdparty-intruder", {"intruder": "zoo_thirdparty_intruder"},
                   {"zoo_thirdparty_intruder/__init__.py": INTRUDER})
    registry = tmp_path / "registry.yaml"
    registry.write_text(text)
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    api.reset()
    return registry


@pytest.fixture
def rep_zoo(install_plugin, tmp_path, monkeypatch):
    """Tiny RepVGG-style nets with a plugin fold, the method convention, none, and a failing fold."""
    return _install(install_plugin, tmp_path, monkeypatch, REGISTRY)


@pytest.fixture
def mobileone_zoo(install_plugin, tmp_path, monkeypatch):
    """timm's MobileOne-S0 behind a third-party card, in deploy and train form."""
    return _install(install_plugin, tmp_path, monkeypatch, MOBILEONE)


def test_mobileone_deploy_card_counts_timms_reparameterized_model(mobileone_zoo):
    import timm
    from timm.utils.model import reparameterize_model

    folded = bench.static_counts("mobileone-s0")
    unfolded = bench.static_counts("mobileone-s0-train")
    reference = reparameterize_model(timm.create_model("mobileone_s0").eval())
    assert folded["params"] == sum(p.numel() for p in reference.parameters()) == 2_078_504
    assert unfolded["params"] == 5_293_272 > folded["params"]
    assert folded["macs"] == bench.count_macs(reference, (3, 64, 64)) < unfolded["macs"]
    assert folded["form"] == "deploy" and folded["folded_by"] == "timm reparameterize_model"
    assert unfolded["form"] == "train" and unfolded["folded_by"] is None


def test_third_party_fold_hook_is_used_by_static_counts(rep_zoo):
    counts = bench.static_counts("rep-net")
    assert counts["params"] == FOLDED and counts["folded_by"] == "zoo_fold of plugin 'rep'"
    assert bench.static_counts("rep-net-train")["params"] == UNFOLDED
    # MACs at 16x16: stem 256*8*27, one folded 3x3 block 256*8*72 (unfolded adds 256*8*8), head 80
    assert counts["macs"] == 256 * 8 * 27 + 256 * 8 * 72 + 80
    assert bench.static_counts("rep-net-train")["macs"] == 256 * 8 * 27 + 256 * 8 * 80 + 80


def test_verify_judges_deploy_params_on_the_folded_model(rep_zoo):
    reports = {r["model"]: r for r in verify.verify(["rep-net", "self-folding"])}
    for name in ("rep-net", "self-folding"):  # reported 898 params; the unfolded 970 would be off by 8 %
        params = next(c for c in reports[name]["claims"] if c["claim"] == "params_m")
        assert params["status"] == "holds" and params["measured"] == pytest.approx(FOLDED / 1e6), params


def test_method_convention_folds_without_a_hook(rep_zoo):
    counts = bench.static_counts("self-folding")
    assert counts["params"] == FOLDED and counts["folded_by"] == "model.reparameterize()"


def test_deploy_card_that_nothing_folds_is_one_error_everywhere(rep_zoo):
    with pytest.raises(bench.CannotFold, match="nothing folds it: plugin 'rep' implements no zoo_fold hook"):
        bench.static_counts("plain-deploy")
    [report] = verify.verify(["plain-deploy"])
    assert report["status"] == "error" and "folded (deploy) model" in report["note"]
    assert [c["status"] for c in report["claims"] if c["claim"] == "build"] == ["error"]
    result = CliRunner().invoke(cli, ["bench", "plain-deploy", "--device", "cpu", "--no-record"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert "model 'plain-deploy': the card's params/MACs describe the folded (deploy) model" in line


def test_a_plugins_failing_fold_is_blamed_on_the_plugin(rep_zoo):
    with pytest.raises(PluginError, match=r"plugin 'rep': zoo_fold for 'bad-fold' raised ZeroDivisionError"):
        bench.static_counts("bad-fold")


def test_bench_times_and_counts_the_folded_model(rep_zoo):
    result = bench.benchmark("rep-net", device="cpu", batch_size=2, warmup=0, repeats=1, latency_repeats=1)
    assert result["params"] == FOLDED and result["form"] == "deploy"
    assert result["folded_by"] == "zoo_fold of plugin 'rep'" and result["reparam"] is True
    train = bench.benchmark("rep-net-train", device="cpu", batch_size=2, warmup=0, repeats=1, latency_repeats=1)
    assert train["params"] == UNFOLDED and train["folded_by"] is None and train["reparam"] is False
    # --reparam folds a train-form card for timing too, and counts what it times
    forced = bench.benchmark("self-folding", device="cpu", batch_size=2, warmup=0, repeats=1, latency=False,
                             reparam=True)
    assert forced["params"] == FOLDED and forced["folded_by"] == "model.reparameterize()"


def test_reparam_on_a_model_with_nothing_to_fold_times_it_unchanged(rep_zoo):
    result = bench.benchmark("plain-train", device="cpu", batch_size=2, warmup=0, repeats=1, latency=False,
                             reparam=True)
    assert result["params"] == UNFOLDED and result["folded_by"] is None and result["form"] == "train"


def test_kit_counts_the_folded_model_and_checks_its_logits(rep_zoo):
    report = check_plugin("rep")
    findings = {(f.check, f.subject): f for f in report.findings}
    assert findings[("fold", "rep-net")].ok and "folded: 970 -> 898 params, same logits" in findings[("fold", "rep-net")].message
    assert findings[("params", "rep-net")].ok and findings[("params", "rep-net-train")].ok
    assert ("fold", "rep-net-train") not in findings  # train-form cards are not folded
    assert findings[("fold", "self-folding")].ok
    failed = {(f.check, f.subject): f.message for f in report.failures}
    assert "nothing folds it" in failed[("fold", "plain-deploy")]
    assert "zoo_fold for 'bad-fold' raised ZeroDivisionError: cannot fold this one" in failed[("fold", "bad-fold")]
    assert ("params", "plain-deploy") not in findings  # never the unfolded count in its place
    assert len(report.failures) == 2, report.failures


def test_kit_reports_a_fold_that_changes_the_logits(rep_zoo, monkeypatch):
    import zoo_thirdparty_rep.nets as nets

    right = nets.fold_rep_net

    def wrong(model):  # a fold that gets the 1x1 branch's bias wrong
        model.block.conv1.bias.data.add_(1.0)
        return right(model)

    monkeypatch.setattr(nets, "fold_rep_net", wrong)
    report = check_plugin("rep")
    [message] = [f.message for f in report.failures if f.subject == "rep-net"]
    assert message.startswith("the folded model's logits differ from the unfolded one's by")


def test_kit_names_the_plugin_and_builder_that_raise(rep_zoo, tmp_path):
    registry = rep_zoo
    registry.write_text(registry.read_text() + _card("broken-net", "broken", 0.001, None))
    api.reset()
    report = check_plugin("rep")
    [message] = [f.message for f in report.failures if f.subject == "broken-net"]
    assert message == "plugin 'rep': builder 'broken' raised ZeroDivisionError: division by zero in the builder"


def test_bench_json_records_precision_fp32_by_default(rep_zoo):
    result = CliRunner().invoke(cli, ["bench", "rep-net-train", "--device", "cpu", "-b", "2", "--warmup", "0",
                                      "--repeats", "1", "--no-latency", "--no-record", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["precision"] == "fp32" and row["amp"] is None


def test_bench_default_runs_without_autocast(rep_zoo, monkeypatch):
    entered = []
    real = torch.autocast

    class Spy(real):
        def __enter__(self):
            entered.append(self.fast_dtype)
            return super().__enter__()

    monkeypatch.setattr(torch, "autocast", Spy)
    bench.benchmark("rep-net-train", device="cpu", batch_size=2, warmup=0, repeats=1, latency=False)
    assert entered == []
    monkeypatch.setattr(bench, "cpu_supports", lambda amp: True)
    result = bench.benchmark("rep-net-train", device="cpu", batch_size=2, warmup=0, repeats=1, latency=False, amp="bf16")
    assert entered == [torch.bfloat16] and result["precision"] == "bf16"


def test_bench_of_a_builder_that_raises_is_one_line_naming_plugin_and_builder(rep_zoo):
    rep_zoo.write_text(rep_zoo.read_text() + _card("broken-net", "broken", 0.001, None))
    api.reset()
    result = CliRunner().invoke(cli, ["bench", "broken-net", "--device", "cpu", "--no-record"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert "builder 'broken' of plugin 'rep' raised ZeroDivisionError: division by zero in the builder" in line


def test_a_builder_that_needs_real_values_is_counted_off_meta(rep_zoo):
    """create_model turns the builder's meta-device failure into a BuildError: counting falls back."""
    rep_zoo.write_text(rep_zoo.read_text() + _card("needs-values", "needs_values", 0.0001, None))
    api.reset()
    counts = bench.static_counts("needs-values")
    assert counts["counted_on"] == "params-on-meta" and counts["params"] == 3 * 12 + 3 * 10 + 10
