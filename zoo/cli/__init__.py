"""The `zoo` command: a thin shell that parses, calls the Python API and renders.

Commands live in small modules and are imported only when invoked (``LAZY_COMMANDS``), so
``zoo list`` never pays for torch.

Every error is rendered here, in one place, as ONE line on stderr starting with ``Error:``:

- a usage error (click's ``UsageError``/``BadParameter``, or zoo's ``UserError``) exits 2, with
  no usage block (a click usage error ends with "(see zoo CMD --help)");
- any other ``ZooError`` exits 1; an ``OSError`` about a file in ``ZOO_HOME`` becomes a
  :class:`~zoo.errors.HomeError` naming ``ZOO_HOME`` and the problem (exit 2);
- anything else is a bug: "internal error in zoo CMD: Type: message", exit 1;
- Ctrl-C prints "Aborted!" and exits 130.

``zoo --debug ...`` (or ``ZOO_DEBUG=1``) prints the full traceback of any error before its line.
Warnings from the core (:class:`~zoo.errors.ZooWarning`: a bad card, a broken plugin hook) are
printed as one ``Warning:`` line each.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import warnings
from typing import Any

import click

from zoo._version import __version__
from zoo.errors import HomeError, UserError, ZooError, ZooWarning, first_line

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
    "report": "zoo.cli.report:report_command",
}

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
_state: dict[str, Any] = {"debug": False, "command": ""}  # for the renderer, after click's contexts are closed


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """``warnings.showwarning``'s signature: (message, category, filename, lineno, file, line)."""
    if issubclass(category, ZooWarning):
        click.secho(f"Warning: {message}", fg="yellow", err=True)
    else:  # a library's own warning (torch, timm): as Python shows it, it is not ours to reword
        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


def _error(line: str, exit_code: int, exc: BaseException | None = None) -> int:
    """Print one error line (after the traceback under --debug); return the exit code."""
    if exc is not None and _state["debug"]:
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"Error: {line}", err=True)
    return exit_code


def _usage_line(exc: click.UsageError) -> str:
    where = exc.ctx.command_path if exc.ctx is not None else "zoo"
    return f"{exc.format_message()} (see {where} --help)"


def render_exception(exc: BaseException) -> int:
    """Print ``exc`` the one way zoo prints errors; return the exit code."""
    if isinstance(exc, OSError) and not isinstance(exc, ZooError):
        from zoo.paths import home_problem

        problem = home_problem(exc)
        if problem is not None:
            home_error = HomeError(problem)
            home_error.__cause__ = exc
            exc = home_error
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # bare `zoo` or `zoo cache`: the help itself
        exc.show()
        return exc.exit_code
    if isinstance(exc, click.UsageError):
        return _error(_usage_line(exc), exc.exit_code, exc)
    if isinstance(exc, click.ClickException):
        return _error(exc.format_message(), exc.exit_code, exc)
    if isinstance(exc, click.Abort) or isinstance(exc, KeyboardInterrupt):
        interrupted = isinstance(exc, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("Aborted!", err=True)
        return EXIT_INTERRUPTED if interrupted else 1
    if isinstance(exc, UserError):
        return _error(str(exc), 2, exc)
    if isinstance(exc, ZooError):
        return _error(str(exc), 1, exc)
    command = " ".join(filter(None, ("zoo", _state["command"])))
    message = first_line(exc)
    text = type(exc).__name__ if message == type(exc).__name__ else f"{type(exc).__name__}: {message}"
    hint = "" if _state["debug"] else " (rerun with --debug for the traceback)"
    return _error(f"internal error in {command}: {text}{hint}", 1, exc)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    _state["debug"] = _state["debug"] or bool(value)
    return value


def plugin_commands() -> dict[str, tuple[str, str]]:
    """``{name: (plugin, "module:command")}`` offered through ``zoo_commands``; a name the core
    owns stays the core's, and the offer is warned about, charged to its plugin."""
    from zoo.registry import lookup

    out: dict[str, tuple[str, str]] = {}
    for name, (plugin, ref) in lookup.hook_entries("zoo_commands").items():
        if name in LAZY_COMMANDS:
            warnings.warn(ZooWarning(f"plugin {plugin!r}: zoo_commands: {name!r} is a core command; ignored"),
                          stacklevel=2)
        else:
            out[name] = (plugin, ref)
    return out


def _load_plugin_command(name: str, plugin: str, ref: str) -> click.Command:
    from zoo.errors import PluginError

    module, _, attr = ref.partition(":")
    try:
        command = getattr(importlib.import_module(module), attr)
    except Exception as exc:
        raise PluginError(plugin, f"zoo_commands: {name!r} -> {ref!r} cannot be loaded: {first_line(exc)}") from exc
    if not isinstance(command, click.Command):
        raise PluginError(plugin, f"zoo_commands: {name!r} -> {ref!r} is {type(command).__name__}, not a click command")
    return command


class ZooGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS) | set(plugin_commands()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            return getattr(importlib.import_module(module), attr)
        command = super().get_command(ctx, cmd_name)
        if command is None:
            offered = plugin_commands().get(cmd_name)
            if offered is not None:
                return _load_plugin_command(cmd_name, *offered)
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        path = [name or ""]
        if isinstance(command, click.Group):  # `cache rm`: name the sub-command too
            sub = next((arg for arg in rest if not arg.startswith("-")), None)
            if sub is not None and command.get_command(ctx, sub) is not None:
                path.append(sub)
        _state["command"] = " ".join(path)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        super().invoke(ctx)
        return None  # the exit code comes from the command's exit or error, never from a return value

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Run the command; errors end as one line and an exit code (see the module docstring)."""
        if not standalone_mode:  # a caller that handles exceptions itself
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _state.update(debug=_truthy(os.environ.get("ZOO_DEBUG")), command="")
        with warnings.catch_warnings():
            warnings.simplefilter("always", ZooWarning)  # the catalog already warns once per problem
            warnings.showwarning = _show_warning
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except Exception as exc:  # the one place that renders every error
                code = render_exception(exc)
            except KeyboardInterrupt as exc:  # arrived outside click's own handling
                code = render_exception(exc)
        sys.exit(code if isinstance(code, int) else 0)


@click.group("zoo", cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "ZOO"})
@click.version_option(__version__, "--version", prog_name="zoo")
@click.option("--debug", is_flag=True, is_eager=True, expose_value=False, callback=_set_debug, envvar="ZOO_DEBUG",
              help="Show the full traceback of any error (also ZOO_DEBUG=1).")
def cli() -> None:
    """A registry of published vision models: list, download, evaluate, benchmark, verify.

    \b
    Example:
      zoo list fastervit
      zoo info fastervit-2
      zoo --debug eval deit-t --dataset folder:./demo --no-pretrained
    """


def main() -> None:
    cli(prog_name="zoo")
