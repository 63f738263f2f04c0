"""One bad plugin or card never takes the others down, and is always named (issue #10, items 8-10).

Every fault is a real throwaway plugin distribution (the ``install_plugin`` fixture), discovered
through its entry point; the CLI is run as a user runs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo.api
from zoo.cli import cli
from zoo.errors import BuildError, InvalidCard, UnknownModel, UserError

sys.path.insert(0, str(Path(__file__).parent))
# A healthy plugin beside every broken one: its card and builder must keep working.
from test_plugins import ACME_CARDS, install_acme  # noqa: E402


def run(*args: str, **env: str):
    """The CLI as in a fresh process: catalog rebuilt (problems warned once), plugins imported anew."""
    zoo.api.reset()
    for module in [m for m in sys.modules if m.startswith("zoo_thirdparty")]:
        del sys.modules[module]
    return CliRunner().invoke(cli, list(args), env=env or None)


def install_bad(install_plugin, hooks: str, name: str = "bad", files: dict[str, str] | None = None):
    """A plugin ``name`` whose package ``__init__`` is ``hooks``."""
    module = f"zoo_thirdparty_{name}"
    return install_plugin(f"zoo-thirdparty-{name}", {name: module},
                          {f"{module}/__init__.py": "from zoo import hookimpl\n\n" + hooks, **(files or {})})


def plugin_rows(*env_args: str) -> dict[str, dict]:
    result = run("plugins", "--json")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


# -- item 8: zoo_cards of the wrong shape ---------------------------------------------------------


@pytest.mark.parametrize("returned, expected", [
    ("'cards.yaml'", "zoo_cards() returned str 'cards.yaml'; expected a list of card file paths or parsed card"),
    ("{'models': {}}", "zoo_cards() returned dict {'models': {}}; expected a list"),
    ("[42]", "zoo_cards() returned an invalid item 0: int 42; expected a list"),
    ("[None, 'x.yaml']", "zoo_cards() returned an invalid item 0: NoneType None; expected a list"),
])
def test_cards_hook_of_the_wrong_shape_is_named_and_the_rest_works(install_plugin, returned, expected):
    install_acme(install_plugin)
    install_bad(install_plugin, f"@hookimpl\ndef zoo_cards():\n    return {returned}\n")
    rows = plugin_rows()
    assert rows["acme"]["status"] == "ok" and rows["acme"]["cards"] == 1
    assert rows["bad"]["status"] == "degraded"
    [problem] = rows["bad"]["problems"]
    assert problem.startswith(f"plugin 'bad': {expected}")
    result = run("list", "acme")
    assert result.exit_code == 0 and "acme-tiny" in result.stdout
    assert f"Warning: plugin 'bad': {expected}" in result.stderr
    assert "Traceback" not in result.output


# -- item 8: a bad builders/datasets/tasks/patches hook breaks nobody else ------------------------

HOOKS = ["zoo_builders", "zoo_datasets", "zoo_tasks", "zoo_patches", "zoo_commands"]


@pytest.mark.parametrize("body, expected", [
    ("raise RuntimeError('hook broke')", "() raised RuntimeError: hook broke"),
    ("raise SystemExit(4)", "() raised SystemExit: called sys.exit(4)"),
    ("return ['not', 'a', 'dict']", "() returned list ['not', 'a', 'dict']; expected a dict of name -> "),
    ("return {'x': 42}", "() returned an invalid entry 'x': int 42; expected a dict"),
    ("return {'x': 'no_colon'}", "() returned an invalid entry 'x': str 'no_colon'; expected a dict"),
])
@pytest.mark.parametrize("hook", HOOKS)
def test_bad_name_table_hook_drops_only_that_plugin(install_plugin, hook, body, expected):
    install_acme(install_plugin)
    install_bad(install_plugin, f"@hookimpl\ndef {hook}():\n    {body}\n")
    # the other plugins' builders and the core's datasets and tasks still answer
    assert zoo.api.get_builder(zoo.api.get_card("acme-tiny")).__name__ == "acme_tiny"
    assert {"imagenet", "folder"} <= set(zoo.api.hook_entries("zoo_datasets"))
    assert "image-classification" in zoo.api.hook_entries("zoo_tasks")
    zoo.api.hook_entries("zoo_patches")
    zoo.api.hook_entries("zoo_commands")
    status = zoo.api.catalog().plugin_status("bad")
    assert status.ok and len(status.problems) == 1  # charged to it once, however often the table is used
    assert status.problems[0].startswith(f"plugin 'bad': {hook}{expected}")
    rows = plugin_rows()  # `zoo plugins` collects every hook, so it shows the problem too
    assert rows["bad"]["status"] == "degraded" and rows["bad"]["problems"][0].startswith(f"plugin 'bad': {hook}{expected}")
    assert rows["acme"]["status"] == "ok"


def test_raising_builders_hook_does_not_break_building_another_plugins_model(install_plugin):
    """The issue's example: one plugin whose zoo_builders raises broke create_model for everyone."""
    install_acme(install_plugin)
    install_bad(install_plugin, "@hookimpl\ndef zoo_builders():\n    raise ValueError('no builders today')\n")
    with pytest.warns(UserWarning, match="plugin 'bad': zoo_builders\\(\\) raised ValueError: no builders today"):
        model = zoo.api.create_model("acme-tiny")
    assert model[-1].out_features == 10


def test_dataset_name_taken_by_the_core_stays_the_cores(install_plugin):
    install_bad(install_plugin, "@hookimpl\ndef zoo_datasets():\n    return {'imagenet': 'zoo_thirdparty_bad:x', 'mine': 'zoo_thirdparty_bad:y'}\n")
    entries = zoo.api.hook_entries("zoo_datasets")
    assert entries["imagenet"] == ("zoo-core", "zoo.tasks.classification.data.datasets:imagenet")
    assert entries["mine"] == ("bad", "zoo_thirdparty_bad:y")  # the rest of its table is kept
    [problem] = zoo.api.catalog().plugin_status("bad").problems
    assert problem == "plugin 'bad': zoo_datasets: 'imagenet' is already provided by plugin 'zoo-core'; ignored"


# -- item 8: SystemExit at import, slow imports ---------------------------------------------------


def test_sys_exit_at_plugin_import_is_reported_not_obeyed(install_plugin):
    install_acme(install_plugin)
    install_bad(install_plugin, "import sys\nsys.exit(3)\n")
    rows = plugin_rows()
    assert rows["bad"]["status"] == "error" and rows["bad"]["error"] == "SystemExit: called sys.exit(3)"
    assert rows["acme"]["status"] == "ok"
    result = run("list", "acme")
    assert result.exit_code == 0 and "acme-tiny" in result.stdout
    assert "Warning: plugin 'bad' failed to load: SystemExit: called sys.exit(3)" in result.stderr


def test_keyboard_interrupt_at_plugin_import_still_stops_zoo(install_plugin):
    install_bad(install_plugin, "raise KeyboardInterrupt\n")
    result = run("list")
    assert result.exit_code == 130 and result.stderr.strip().splitlines()[-1] == "Aborted!"


def test_slow_plugin_import_is_named(install_plugin):
    install_acme(install_plugin)
    install_bad(install_plugin, "import time\ntime.sleep(0.5)\n", name="sluggish")
    result = run("plugins", "--json", ZOO_PLUGIN_SLOW_S="0.3")
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["sluggish"]["slow"] is True and rows["sluggish"]["import_s"] >= 0.5
    assert rows["sluggish"]["status"] == "ok"  # slow is not broken
    assert rows["acme"]["slow"] is (rows["acme"]["import_s"] > 0.3)  # the same rule for every plugin
    assert rows["acme"]["import_s"] < rows["sluggish"]["import_s"]
    table = run("plugins", ZOO_PLUGIN_SLOW_S="0.3")
    line = next(line for line in table.stdout.splitlines() if line.startswith("sluggish"))
    assert line.split()[-2:] == ["slow", "ok"]
    assert "slow to import (over 0.3 s, ZOO_PLUGIN_SLOW_S): sluggish" in table.stderr
    traced = run("list", "acme", ZOO_TRACE_PLUGINS="1", ZOO_PLUGIN_SLOW_S="0.3")
    assert "zoo: plugin 'sluggish' (zoo_thirdparty_sluggish) imported in 0.5" in traced.stderr
    assert "(slow: over 0.3 s, see ZOO_PLUGIN_SLOW_S)" in traced.stderr
    assert "zoo: plugin 'acme' (zoo_thirdparty_acme) imported in" in traced.stderr


def test_slow_threshold_must_be_a_number(install_plugin):
    result = run("list", ZOO_PLUGIN_SLOW_S="soon")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: ZOO_PLUGIN_SLOW_S: expected a number of seconds >= 0, got 'soon'"


# -- item 9: an invalid card is not an unknown model ----------------------------------------------

BAD_CARD = '''
  acme-bad:
    paper: acme
    task: image-classification
    plugin: acme
    builder: acme_tiny
    colour: blue
'''


def test_invalid_card_is_named_as_invalid_not_unknown(install_plugin):
    site = install_acme(install_plugin, extra_cards=BAD_CARD)
    cards_file = site / "zoo_thirdparty_acme" / "cards.yaml"
    for name in ("acme-bad", "ACME-Bad", " acme-bad"):
        with pytest.raises(InvalidCard) as info:
            zoo.api.get_card(name)
        assert str(info.value).startswith(f"model 'acme-bad' has an invalid card: {cards_file}: acme-bad: colour: unknown field")
    for command in (["info", "acme-bad"], ["eval", "acme-bad", "--dataset", "folder:/nowhere", "--no-pretrained"]):
        result = run(*command)
        assert result.exit_code == 1, result.output
        [line] = [line for line in result.stderr.splitlines() if not line.startswith("Warning:")]
        assert line.startswith(f"Error: model 'acme-bad' has an invalid card: {cards_file}: acme-bad: colour: unknown field")
        assert "unknown model" not in result.output and "Traceback" not in result.output
    with pytest.raises(UnknownModel):
        zoo.api.get_card("acme-nothing")
    rows = plugin_rows()
    assert rows["acme"]["cards"] == 1 and rows["acme"]["invalid_cards"] == 1
    assert rows["acme"]["status"] == "degraded" and "acme-bad: colour: unknown field" in rows["acme"]["problems"][0]
    assert rows["zoo-core"]["invalid_cards"] == 0


def test_invalid_card_in_the_core_registry_is_counted_for_the_core(tmp_path, monkeypatch):
    registry = tmp_path / "registry.yaml"
    registry.write_text(ACME_CARDS.replace("plugin: acme", "plugin: nowhere") + BAD_CARD.replace("acme-bad", "core-bad"))
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    rows = plugin_rows()
    assert rows["zoo-core"]["cards"] == 1 and rows["zoo-core"]["invalid_cards"] == 1
    result = run("info", "core-bad")
    assert result.exit_code == 1 and f"has an invalid card: {registry}: core-bad: colour" in result.stderr


# -- item 10: a builder or patch that raises is one line ------------------------------------------

RAISING_MODEL = '''
def acme_tiny(*, num_classes=10):
    raise RuntimeError("weights of the universe not found\\nsecond line of detail")
'''

PATCH_INIT = '''
@hookimpl
def zoo_patches():
    return {"shrink": "zoo_thirdparty_patcher.patch:shrink", "crash": "zoo_thirdparty_patcher.patch:crash"}
'''

PATCH_CODE = '''
def shrink(model, *, factor=2, verbose=False):
    return model


def crash(model):
    raise ZeroDivisionError("division by zero in the patch")
'''


def install_raising_acme(install_plugin):
    site = install_acme(install_plugin)
    (site / "zoo_thirdparty_acme" / "model.py").write_text(RAISING_MODEL)
    return site


def test_builder_exception_becomes_one_build_error_naming_model_plugin_builder(install_plugin):
    install_raising_acme(install_plugin)
    with pytest.raises(BuildError) as info:
        zoo.api.create_model("acme-tiny")
    assert str(info.value) == ("model 'acme-tiny': builder 'acme_tiny' of plugin 'acme' raised "
                               "RuntimeError: weights of the universe not found")
    assert isinstance(info.value.__cause__, RuntimeError)  # the original, for --debug


@pytest.mark.parametrize("command", [
    ["eval", "acme-tiny", "--dataset", "folder:{data}", "--no-pretrained", "--device", "cpu"],
    ["bench", "acme-tiny", "--device", "cpu", "--no-record"],
])
def test_builder_exception_is_one_line_in_eval_and_bench_and_a_traceback_with_debug(install_plugin, tmp_path, command):
    from zoo.tasks.classification.data.demo import make_demo_folder

    install_raising_acme(install_plugin)
    data = make_demo_folder(tmp_path / "demo", n_images=4, n_classes=2, min_side=32, max_side=40)
    command = [arg.format(data=data) for arg in command]
    result = run(*command)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "Error: model 'acme-tiny': builder 'acme_tiny' of plugin 'acme' raised RuntimeError: weights of the universe not found"
    ]
    debug = run("--debug", *command)
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "second line of detail" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("Error: model 'acme-tiny': builder 'acme_tiny'")
    assert "Traceback" in run(*command, ZOO_DEBUG="1").stderr


def test_patch_options_are_checked_against_the_patch_signature(install_plugin):
    install_acme(install_plugin)
    install_plugin("zoo-thirdparty-patcher", {"patcher": "zoo_thirdparty_patcher"},
                   {"zoo_thirdparty_patcher/__init__.py": "from zoo import hookimpl\n" + PATCH_INIT,
                    "zoo_thirdparty_patcher/patch.py": PATCH_CODE})
    with pytest.raises(UserError) as info:
        zoo.api.create_model("acme-tiny", patch="shrink:zz=1")
    assert str(info.value) == ("patch 'shrink' (plugin 'patcher') does not take the option 'zz' "
                               "(accepted: factor, verbose)")
    with pytest.raises(BuildError) as info:
        zoo.api.create_model("acme-tiny", patch="crash")
    assert str(info.value) == ("model 'acme-tiny': patch 'crash' (plugin 'patcher', zoo_thirdparty_patcher.patch:crash) "
                               "raised ZeroDivisionError: division by zero in the patch")
    assert zoo.api.create_model("acme-tiny", patch="shrink:factor=3") is not None
    result = run("bench", "acme-tiny", "--device", "cpu", "--no-record", "--patch", "shrink:zz=1,yy=2")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("Error: patch 'shrink' (plugin 'patcher') does not take the options 'zz', 'yy' "
                                     "(accepted: factor, verbose)")


HOSTILE = '''
from collections.abc import Mapping


class Hostile(Mapping):
    def __getitem__(self, key):
        raise KeyError(key)

    def __iter__(self):
        raise RuntimeError("cannot iterate me")

    def __len__(self):
        return 1
'''


def test_hostile_results_stay_the_plugins_problem(install_plugin):
    """A result whose own methods raise (as card document or as name table) is charged to its plugin."""
    install_acme(install_plugin)
    install_bad(install_plugin, HOSTILE + "\n@hookimpl\ndef zoo_cards():\n    return [Hostile()]\n\n"
                "@hookimpl\ndef zoo_datasets():\n    return Hostile()\n")
    assert zoo.api.get_card("acme-tiny").plugin == "acme"
    assert "imagenet" in zoo.api.hook_entries("zoo_datasets")
    problems = zoo.api.catalog().plugin_status("bad").problems
    assert problems == [
        "plugin 'bad': card document <bad cards> could not be read: RuntimeError: cannot iterate me",
        "plugin 'bad': zoo_datasets() returned Hostile that cannot be read: RuntimeError: cannot iterate me",
    ]


def test_name_clash_is_charged_once_however_often_the_table_is_used(install_plugin):
    install_bad(install_plugin, "@hookimpl\ndef zoo_tasks():\n    return {'image-classification': 'zoo_thirdparty_bad:x'}\n")
    for _ in range(3):
        assert zoo.api.hook_entries("zoo_tasks")["image-classification"][0] == "zoo-core"
    assert len(zoo.api.catalog().plugin_status("bad").problems) == 1


def test_sys_exit_in_a_builder_is_a_build_error_not_an_exit(install_plugin):
    site = install_acme(install_plugin)
    (site / "zoo_thirdparty_acme" / "model.py").write_text("import sys\n\ndef acme_tiny(*, num_classes=10):\n    sys.exit(0)\n")
    with pytest.raises(BuildError, match=r"^model 'acme-tiny': builder 'acme_tiny' of plugin 'acme' raised "
                                         r"SystemExit: called sys.exit\(0\)$"):
        zoo.api.create_model("acme-tiny")
    (site / "zoo_thirdparty_acme" / "model.py").write_text("import sys\nsys.exit(5)\n")
    del sys.modules["zoo_thirdparty_acme.model"]
    zoo.api.reset()
    with pytest.raises(Exception, match=r"plugin 'acme': cannot import 'zoo_thirdparty_acme.model:acme_tiny': "
                                        r"SystemExit: called sys.exit\(5\)"):
        zoo.api.create_model("acme-tiny")


# -- issue #11: tasks are objects; zoo_fold and zoo_read_checkpoint are per card -------------------

TASK_HEAD = "from zoo.registry.tasks import Metric, Task\n\n@hookimpl\ndef zoo_tasks():\n    "


@pytest.mark.parametrize("body, expected", [
    ("return {'counting': Task(name='regression', evaluate='m:f')}",
     "zoo_tasks() returned an invalid entry 'counting': Task"),
    ("return {'counting': Task(name='counting', metrics=('mae',), evaluate='m:f')}",
     "zoo_tasks() raised ValueError: task 'counting': metrics must be Metric objects, got 'mae'"),
    ("return {'counting': Task(name='counting', datasets='folder', evaluate='m:f')}",
     "zoo_tasks() returned an invalid entry 'counting': Task"),
    ("return {'counting': Task(name='counting', evaluate='no_colon')}",
     "zoo_tasks() raised ValueError: task 'counting': evaluate must be 'module:callable'"),
    ("return {'counting': Task(name='counting', metrics=(Metric(name='mae', tolerance=-1),))}",
     "zoo_tasks() raised ValueError: metric 'mae': tolerance must be a finite number >= 0"),
])
def test_a_bad_task_object_is_charged_to_its_plugin_only(install_plugin, body, expected):
    install_acme(install_plugin)
    install_bad(install_plugin, TASK_HEAD + body + "\n")
    assert "counting" not in zoo.api.hook_entries("zoo_tasks") and "regression" not in zoo.api.hook_entries("zoo_tasks")
    from zoo.registry import lookup

    assert lookup.get_task("image-classification") is not None
    assert zoo.api.get_builder(zoo.api.get_card("acme-tiny")).__name__ == "acme_tiny"
    [problem] = zoo.api.catalog().plugin_status("bad").problems
    assert problem.startswith(f"plugin 'bad': {expected}"), problem
    rows = plugin_rows()
    assert rows["bad"]["status"] == "degraded" and rows["acme"]["status"] == "ok"
    result = run("list", "acme")
    assert result.exit_code == 0 and "acme-tiny" in result.stdout and "Traceback" not in result.output


def test_a_good_task_object_is_installed_under_its_name(install_plugin):
    install_bad(install_plugin, TASK_HEAD + "return {'counting': Task(name='counting', evaluate='m:f', "
                "metrics=(Metric(name='mae', direction='lower', primary=True),))}\n", name="good")
    from zoo.registry import lookup

    task = lookup.get_task("counting")
    assert task is not None and task.primary.name == "mae"
    assert zoo.api.catalog().plugin_status("good").problems == []


def test_a_raising_fold_hook_of_another_plugin_never_touches_acmes_cards(install_plugin):
    from zoo.measure import bench
    from zoo.weights import checkpoint

    install_acme(install_plugin)
    install_bad(install_plugin, "@hookimpl\ndef zoo_fold(card, model):\n    raise RuntimeError('fold broke')\n"
                "@hookimpl\ndef zoo_read_checkpoint(card, path):\n    raise RuntimeError('read broke')\n")
    card = zoo.api.get_card("acme-tiny")
    model = zoo.api.create_model("acme-tiny")
    assert bench.fold(model, card, required=False)[1] is None  # bad's zoo_fold is never asked for acme's card
    assert checkpoint._call_own(card, "zoo_read_checkpoint", card=card, path=Path("x.pt")) is None
    assert zoo.api.catalog().plugin_status("bad").problems == []
