"""The task contract v2 seen from zoo eval/bench/demo-data (issue #11): a third-party Task's options become
CLI options and reach its evaluate with the shared Runtime; unknown and other tasks' options are one-line
errors; the claim is set beside a run only under the claim's protocol; a zoo 0.1 bare hook still runs."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import UserError
from zoo.records import results

_INIT = '''
from dataclasses import dataclass, field

from zoo import hookimpl
from zoo.registry.tasks import Metric, Task


@dataclass
class ToyOptions:
    scale: float = field(default=1.0, metadata={"help": "Multiply every prediction by this."})
    clamp: bool = False  #: clamp predictions to the target range


TASK = Task(name="toy-count", summary="count things", metrics=(Metric(name="mae", unit="px", direction="lower",
            tolerance=0.5, primary=True),), datasets=("toyset",), options=ToyOptions,
            evaluate="zoo_thirdparty_toytask.run:evaluate", protocol="zoo_thirdparty_toytask.run:protocol",
            example_inputs="zoo_thirdparty_toytask.run:example_inputs",
            demo_data="zoo_thirdparty_toytask.run:demo")


@hookimpl
def zoo_tasks():
    return {"toy-count": TASK, "legacy-task": "zoo_thirdparty_toytask.run:legacy_evaluate"}


@hookimpl
def zoo_datasets():
    return {"toyset": "zoo_thirdparty_toytask.run:toyset", "legacyset": "zoo_thirdparty_toytask.run:toyset"}


@hookimpl
def zoo_builders():
    return {"tiny": "zoo_thirdparty_toytask.run:tiny"}


@hookimpl
def zoo_cards():
    models = {
        "toy-net": dict(paper="toy", task="toy-count", plugin="toytask", builder="tiny", input_size=[3, 8, 8],
                        reported=dict(source="test fixture", toyset=dict(mae=2.0))),
        "legacy-net": dict(paper="toy", task="legacy-task", plugin="toytask", builder="tiny", input_size=[3, 8, 8],
                           reported=dict(source="test fixture", legacyset=dict(top1=40.0))),
    }
    return [{"papers": {"toy": {"title": "Toy", "venue": "Test 2024"}}, "models": models}]
'''

_RUN = '''
from pathlib import Path

import torch

SEEN = []
CALLS = []


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(5, 1))

    def forward(self, x):
        SEEN.append(tuple(x.shape))
        return x @ self.w if x.dim() == 2 else x.flatten(1).mean(1, keepdim=True)


def tiny(**kwargs):
    return Net()


class ToySet:
    def __init__(self, root, n):
        self.name, self.root, self.parts, self.n = "toyset", Path(root), [], n

    def __len__(self):
        return self.n

    def limited(self, limit):
        return self if limit is None else ToySet(self.root, min(self.n, limit))


def toyset(root, **options):
    return ToySet(root, len(list(Path(root).glob("*.txt"))))


def evaluate(model, card, dataset, options, runtime):
    CALLS.append((options, runtime))
    return {"mae": 1.0 * options.scale, "images": len(dataset), "seen_scale": options.scale,
            "seen_clamp": options.clamp, "device": str(runtime.torch_device()), "batch_size": runtime.batch_size}


def protocol(card, dataset, options):
    return {"scale": options.scale if options is not None else 1.0}


def example_inputs(card, batch_size):
    return torch.randn(batch_size, 5)


def legacy_evaluate(model, card, dataset, options):
    CALLS.append(dict(options))
    return {"top1": 42.0, "images": len(dataset)}


def demo(root, n_images=3, seed=0):
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        (root / f"{i}.txt").write_text(str(i))
    return root
'''


@pytest.fixture
def toy(install_plugin, tmp_path):
    install_plugin("zoo-thirdparty-toytask", {"toytask": "zoo_thirdparty_toytask"},
                   {"zoo_thirdparty_toytask/__init__.py": textwrap.dedent(_INIT),
                    "zoo_thirdparty_toytask/run.py": textwrap.dedent(_RUN)})
    data = tmp_path / "toydata"
    data.mkdir()
    for i in range(4):
        (data / f"{i}.txt").write_text("x")
    return data


def _run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _one_line_exit_2(out, *needles):
    assert out.exit_code == 2, out.output
    errors = [line for line in out.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in out.output, out.output
    for needle in needles:
        assert needle in errors[0], errors[0]


def _last_record():
    return json.loads(results.results_path().read_text().splitlines()[-1])


def test_a_plugin_tasks_options_are_cli_options_and_reach_its_evaluate(toy):
    help_text = _run(["eval", "--help"]).output
    assert "--scale FLOAT" in help_text and "Multiply every prediction by this." in help_text
    assert "--clamp / --no-clamp" in help_text and "clamp predictions to the target range" in help_text
    assert "[toy-count]" in help_text and "--corruption" in help_text  # classification's, generated too
    out = _run(["eval", "toy-net", "--dataset", f"toyset:{toy}", "--no-pretrained", "--device", "cpu",
                "--batch-size", "3", "--scale", "2.5", "--clamp", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["mae"], data["seen_scale"], data["seen_clamp"], data["images"]) == (2.5, 2.5, True, 4)
    assert data["batch_size"] == 3 and data["device"] == "cpu"  # the shared Runtime reached the task
    assert data["reported_mae"] is None and data["delta_mae"] is None  # another protocol than the claim's
    record = _last_record()
    assert record["task"] == "toy-count" and record["metrics"] == {"mae": 2.5}
    assert record["protocol"] == {"scale": 2.5} and record["dataset"] == "toyset" and record["schema"] == 2


def test_the_claim_is_set_beside_a_run_of_its_protocol(toy):
    result = zoo.evaluate("toy-net", f"toyset:{toy}", pretrained=False, device="cpu")
    assert result["mae"] == 1.0 and result["reported_mae"] == 2.0 and result["delta_mae"] == -1.0
    assert result["reported_source"] == "test fixture"
    assert "top1" not in result and "reported_top1" not in result  # nothing of classification


def test_unknown_option_is_one_line_naming_it(toy):
    with pytest.raises(UserError) as info:
        zoo.evaluate("toy-net", f"toyset:{toy}", pretrained=False, colour="red")
    message = str(info.value)
    assert message.startswith("option --colour does not apply to task 'toy-count'; valid options: ")
    assert "scale" in message and "batch_size" in message and "\n" not in message
    _one_line_exit_2(_run(["eval", "toy-net", "--dataset", f"toyset:{toy}", "--colour", "red"]), "--colour")
    assert not results.results_path().exists()


def test_an_option_of_another_task_is_refused(toy):
    out = _run(["eval", "toy-net", "--dataset", f"toyset:{toy}", "--no-pretrained", "--corruption", "fog"])
    _one_line_exit_2(out, "option --corruption does not apply to task 'toy-count' "
                          "(it is an option of image-classification)")
    with pytest.raises(UserError, match="option --scale does not apply to task 'image-classification' "
                                        r"\(it is an option of toy-count\)"):
        zoo.evaluate("deit-t", "folder:/nonexistent", pretrained=False, scale=2.0)
    _one_line_exit_2(_run(["eval", "toy-net", "--dataset", f"toyset:{toy}", "--scale", "big"]), "--scale")
    assert not results.results_path().exists()


def test_a_dataset_of_another_task_is_refused(toy):
    with pytest.raises(UserError, match="dataset 'folder' is for image-classification; model 'toy-net' has task "
                                        "'toy-count'"):
        zoo.evaluate("toy-net", f"folder:{toy}", pretrained=False)


def test_a_zoo_01_bare_hook_still_evaluates(toy):
    from zoo_thirdparty_toytask import run

    result = zoo.evaluate("legacy-net", f"legacyset:{toy}", pretrained=False, batch_size=4, device="cpu")
    assert run.CALLS[-1] == {"batch_size": 4, "device": "cpu"}  # the options dict, as zoo 0.1 passed it
    assert result["top1"] == 42.0 and result["images"] == 4
    assert result["reported_top1"] == 40.0 and result["delta_top1"] == 2.0
    assert _last_record()["metrics"] == {"top1": 42.0}


def test_demo_data_of_a_plugin_task(toy, tmp_path):
    out = _run(["demo-data", str(tmp_path / "d"), "--task", "toy-count", "--images", "2"])
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["0.txt", "1.txt"]
    assert f"wrote toy-count demo data under {tmp_path / 'd'}" in out.output
    _one_line_exit_2(_run(["demo-data", str(tmp_path / "e"), "--task", "toy-count", "--classes", "3"]),
                     "demo data of task 'toy-count' takes no --classes option")
    _one_line_exit_2(_run(["demo-data", str(tmp_path / "e"), "--task", "toy-cout"]), "unknown task 'toy-cout'",
                     "toy-count")


def test_bench_feeds_the_tasks_example_inputs(toy):
    from zoo_thirdparty_toytask import run

    from zoo.measure import bench

    bench.benchmark("toy-net", device="cpu", batch_size=2, warmup=0, repeats=1, latency_repeats=1)
    assert (2, 5) in run.SEEN and (1, 5) in run.SEEN  # the task's inputs, not randn(2, 3, 8, 8)
    assert torch.Size([2, 3, 8, 8]) not in [torch.Size(s) for s in run.SEEN if s[0] == 2 and len(s) == 4]
