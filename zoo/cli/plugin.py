"""`zoo plugin new|check`: the plugin author's commands."""

from __future__ import annotations

import json

import click

from zoo.report import render


@click.group("plugin", short_help="Write and check plugins.")
def plugin_command() -> None:
    """Write a new plugin from a template, or check one with the conformance kit.

    \b
    Example:
      zoo plugin new acme --dir ~/src
      zoo plugin check acme
    """


@plugin_command.command("new", short_help="Write a working plugin distribution.")
@click.argument("name")
@click.option("--dir", "directory", default=".", type=click.Path(file_okay=False), help="Where to create zoo-NAME/.")
def new_command(name: str, directory: str) -> None:
    """Write the plugin distribution zoo-NAME: pyproject, hooks, a card, a builder, a test, a README.

    \b
    Example:
      zoo plugin new acme --dir /tmp && pip install -e /tmp/zoo-acme && zoo list acme
    """
    from zoo.devkit.scaffold import new_plugin

    root = new_plugin(name, directory)
    click.echo(f"wrote {root}\nnext: pip install -e {root} && zoo list {name} && zoo plugin check {name}")


@plugin_command.command("check", short_help="Run the conformance kit on a plugin.")
@click.argument("name_or_path")
@click.option("--max-forward-params", default=100, show_default=True, type=click.IntRange(min=0),
              help="Run a forward pass only on models up to this many million parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_command(name_or_path: str, max_forward_params: int, as_json: bool) -> None:
    """Check an installed plugin (by name) or a plugin source folder: cards, builders, output shapes,
    parameter counts, checkpoint conversion, and that importing it stays light. Exits 1 on a failure.

    \b
    Example:
      zoo plugin check efficientmod
      zoo plugin check ./zoo-acme --json
    """
    from zoo.devkit.kit import check_plugin

    report = check_plugin(name_or_path, max_forward_params=max_forward_params * 1_000_000)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        rows = [[f.check, f.subject, "ok" if f.ok else "FAIL", f.message] for f in report.findings]
        click.echo(render.table(rows, ["check", "subject", "result", "detail"]))
        failed = len(report.failures)
        click.echo(f"plugin {report.plugin}: " + ("all checks pass" if not failed else f"{failed} check(s) failed"))
    if not report.ok:
        raise SystemExit(1)
