"""``zoo eval``'s task options, generated from every installed task's options dataclass.

One click option per dataclass field: ``name`` -> ``--kebab-case``, the type from the field's
annotation (``bool`` -> ``--x/--no-x``, ``int``, ``float``, ``Literal[...]`` -> a choice, anything
else a string), the help from ``field(metadata={"help": ...})`` or the field's ``#:`` comment. The
click default is always None ("not given"), so an option given for a model whose task lacks it
can be refused by name (:func:`zoo.eval.evaluation.split_options`); the dataclass default is shown.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from typing import Any

import click


def _field_type(options: type, f: dataclasses.Field[Any]) -> Any:
    try:
        hint = typing.get_type_hints(options).get(f.name, f.type)
    except Exception:  # a hint that does not resolve here: fall back on the default's type
        hint = type(f.default) if f.default not in (None, dataclasses.MISSING) else str
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    if typing.get_origin(hint) is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(hint)])
    return {bool: bool, int: click.INT, float: click.FLOAT}.get(hint, click.STRING)


def _comment(options: type, name: str) -> str:
    try:
        source = inspect.getsource(options)
    except (OSError, TypeError):
        return ""
    match = re.search(rf"^\s*{re.escape(name)}\s*:[^\n]*?#:?\s*(.+)$", source, re.MULTILINE)
    return match.group(1).strip() if match else ""


def task_options(taken: set[str]) -> list[click.Option]:
    """The options of every installed task, in task order; a name already taken (a core option or an
    earlier task's) is not added twice."""
    from zoo.registry import lookup

    made: list[click.Option] = []
    owners: dict[str, list[str]] = {}
    for task_name, (_plugin, task) in sorted(lookup.tasks().items()):
        for f in task.option_fields():
            owners.setdefault(f.name, []).append(task_name)
            if f.name in taken:
                continue
            taken.add(f.name)
            kind = _field_type(task.options, f)  # type: ignore[arg-type]
            help_text = str(f.metadata.get("help") or _comment(task.options, f.name))  # type: ignore[arg-type]
            default = f.default if f.default is not dataclasses.MISSING else None
            flag = f"--{f.name.replace('_', '-')}"
            extra = f" Default: {default}." if default not in (None, False) else ""
            made.append(click.Option(
                [f"{flag}/--no-{f.name.replace('_', '-')}" if kind is bool else flag, f.name],
                type=None if kind is bool else kind, default=None, show_default=False,
                help=f"{help_text}{extra} [{{tasks}}]"))
    for option in made:
        option.help = (option.help or "").replace("{tasks}", ", ".join(owners[option.name or ""]))
    return made


class TaskOptionsCommand(click.Command):
    """A command whose parameters are its own plus the installed tasks' options, read at each use
    (the installed plugins may differ between two invocations in one process: tests, notebooks)."""

    _base: list[click.Parameter] | None = None

    def _add_task_options(self) -> None:
        if self._base is None:
            self._base = list(self.params)
        self.params = [*self._base, *task_options({p.name for p in self._base if p.name})]

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        self._add_task_options()
        return super().get_params(ctx)

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        self._add_task_options()
        return super().make_context(*args, **kwargs)
