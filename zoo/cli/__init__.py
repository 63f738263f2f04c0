"""The `zoo` command: a thin shell that parses, calls the Python API and renders.

Commands live in small modules and are imported only when invoked (``LAZY_COMMANDS``), so
``zoo list`` never pays for torch. Errors are translated here, in one place: a ``UserError``
exits 2, any other ``ZooError`` exits 1, both as one line without a traceback; anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from zoo._version import __version__
from zoo.errors import UserError, ZooError

# command name -> "module:function"; each module owns its commands
LAZY_COMMANDS: dict[str, str] = {
    "list": "zoo.cli.catalog:list_command",
    "info": "zoo.cli.catalog:info_command",
    "plugins": "zoo.cli.catalog:plugins_command",
    "plugin": "zoo.cli.plugin:plugin_command",
    "eval": "zoo.cli.evaluate:eval_command",
    "results": "zoo.cli.evaluate:results_command",
    "demo-data": "zoo.cli.evaluate:demo_data_command",
    "download": "zoo.cli.weights:download_command",
    "cache": "zoo.cli.weights:cache_group",
    "bench": "zoo.cli.claims:bench_command",
    "verify": "zoo.cli.claims:verify_command",
    "plot": "zoo.cli.claims:plot_command",
    "compare": "zoo.cli.claims:compare_command",
}


class ZooGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:  # the user typed something wrong: exit 2
            raise click.UsageError(str(exc)) from None
        except ZooError as exc:  # the world is not as expected: exit 1
            raise click.ClickException(str(exc)) from None


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "ZOO"})
@click.version_option(__version__, "--version", prog_name="zoo")
def cli() -> None:
    """A registry of published vision models: list, download, evaluate, benchmark, verify.

    \b
    Example:
      zoo list fastervit
      zoo info fastervit-2
    """


def main() -> None:
    cli(prog_name="zoo")
