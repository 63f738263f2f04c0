"""The read-only commands as a user runs them: list, info, plugins, --help, --version."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from zoo import __version__
from zoo.cli import LAZY_COMMANDS, cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"zoo, version {__version__}"


def _all_commands() -> list[tuple[str, ...]]:
    """Every command and sub-command path, e.g. ('cache', 'ls')."""
    import click

    paths = []
    for name in sorted(LAZY_COMMANDS):
        command = cli.get_command(None, name)
        paths.append((name,))
        if isinstance(command, click.Group):
            paths += [(name, sub) for sub in sorted(command.commands)]
    return paths


@pytest.mark.parametrize("path", _all_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout and f"zoo {' '.join(path)}" in result.stdout


def test_unknown_model_suggests_close_names():
    result = run("info", "fastervit-22")
    assert result.exit_code == 2
    assert "unknown model 'fastervit-22'. Did you mean: fastervit-2" in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_list_json_has_the_promised_fields():
    result = run("list", "deit-*", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["deit-b", "deit-s", "deit-t"]
    for row in rows:
        assert {"name", "paper", "task", "plugin", "installed", "reported"} <= set(row)
        assert row["task"] == "image-classification" and row["reported"]["source"]


def test_list_filters():
    iclr24 = json.loads(run("list", "--venue", "ICLR 2024", "--json").stdout)
    assert iclr24 and all(row["venue"] == "ICLR 2024" for row in iclr24)
    assert "fastervit-2" in {row["name"] for row in iclr24}
    nc = {row["name"] for row in json.loads(run("list", "--license", "NC", "--json").stdout)}
    assert {"fastervit-2", "tome-deit-s", "vit-s-llama"} <= nc  # License-NC, CC-BY-NC, "non-commercial"
    assert "deit-t" not in nc and "swin-t" not in nc  # 'NC' is not found inside "License" or "Apache"
    assert json.loads(run("list", "--paper", "fastervit", "--json").stdout)
    assert json.loads(run("list", "--task", "no-such-task", "--json").stdout) == []


def test_list_table_columns():
    result = run("list", "fastervit-2", "--task", "image-classification")  # not upernet-fastervit-2 (mIoU)
    header = result.stdout.splitlines()[0].split()
    assert header == ["name", "paper", "venue", "task", "params", "M", "MACs", "G", "top-1", "weights", "installed"]
    assert "fastervit-2" in result.stdout


def test_info_shows_paper_license_and_preprocessing():
    result = run("info", "fastervit-2")
    assert result.exit_code == 0
    for text in ("FasterViT: Fast Vision Transformers with Hierarchical Attention", "ICLR 2024", "2306.06189",
                 "NVIDIA", "crop_pct", "reported"):
        assert text in result.stdout
    data = json.loads(run("info", "fastervit-2", "--json").stdout)
    assert data["paper"]["arxiv"] == "2306.06189" and data["name"] == "fastervit-2"


def _imported_modules(*args: str) -> set[str]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['zoo', *{list(args)!r}]\n"
        "try:\n    runpy.run_module('zoo', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    return set(out.stderr.split())


@pytest.mark.parametrize("args", [("list",), ("info", "fastervit-2"), ("plugins",), ("list", "--json")])
def test_read_commands_never_import_torch(args):
    modules = _imported_modules(*args)
    assert "zoo.cli.catalog" in modules  # the command really ran
    assert not {"torch", "timm", "torchvision"} & modules


def test_core_works_without_any_plugin(monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "")  # an empty allow-list: no plugin loads
    result = run("list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert len(rows) >= 64 and not any(row["installed"] for row in rows)
    assert run("info", "fastervit-2").exit_code == 0
    result = run("bench", "deit-t", "--device", "cpu")
    assert result.exit_code == 1 and "needs the plugin 'timm-baselines', which is not installed" in result.output
    assert "Traceback" not in result.output
