"""A plugin adds `zoo NAME` commands through ``zoo_commands``; the core's names stay the core's."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_isolation import install_bad, run  # noqa: E402

COMMAND = '''
import click
from zoo.errors import UserError


@click.command("greet")
@click.argument("name")
def greet(name):
    """Say hello."""
    if not name.strip():
        raise UserError("greet: NAME is empty")
    click.echo(f"hello {name}")


not_a_command = 42
'''


def _install(install_plugin, table: str) -> None:
    install_bad(install_plugin, f"@hookimpl\ndef zoo_commands():\n    return {table}\n",
                files={"zoo_thirdparty_bad/cmd.py": COMMAND})


def test_a_plugin_command_runs_and_is_listed_in_help(install_plugin):
    _install(install_plugin, "{'greet': 'zoo_thirdparty_bad.cmd:greet'}")
    result = run("greet", "world")
    assert result.exit_code == 0, result.output
    assert result.output == "hello world\n"
    assert "greet" in run("--help").output


def test_a_plugin_commands_user_error_is_one_line_exit_2(install_plugin):
    _install(install_plugin, "{'greet': 'zoo_thirdparty_bad.cmd:greet'}")
    result = run("greet", " ")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["Error: greet: NAME is empty"]


def test_a_core_command_name_stays_the_cores(install_plugin):
    _install(install_plugin, "{'list': 'zoo_thirdparty_bad.cmd:greet', 'greet': 'zoo_thirdparty_bad.cmd:greet'}")
    result = run("--help")
    assert "Warning: plugin 'bad': zoo_commands: 'list' is a core command; ignored" in result.output
    listed = run("list", "--json")
    assert listed.exit_code == 0 and listed.output.lstrip().startswith("[")


def test_a_reference_that_is_not_a_command_is_charged_to_its_plugin(install_plugin):
    _install(install_plugin, "{'num': 'zoo_thirdparty_bad.cmd:not_a_command', 'gone': 'zoo_thirdparty_bad.nope:x'}")
    result = run("num")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: plugin 'bad': zoo_commands: 'num' -> 'zoo_thirdparty_bad.cmd:not_a_command' is int, not a click command")
    result = run("gone")
    assert result.exit_code == 1
    assert "Error: plugin 'bad': zoo_commands: 'gone' -> 'zoo_thirdparty_bad.nope:x' cannot be loaded: " in result.output
    assert "Traceback" not in result.output


def test_a_hook_returning_junk_leaves_the_core_working(install_plugin):
    _install(install_plugin, "['greet']")
    result = run("--help")
    assert result.exit_code == 0 and "eval" in result.output
    unknown = run("greet", "x")
    assert unknown.exit_code == 2 and "No such command 'greet'" in unknown.output
