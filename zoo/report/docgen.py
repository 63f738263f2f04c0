"""Generated parts of docs/plugins.md: the hook reference and the card reference.

Both come from the code (the hookspec docstrings and the card dataclasses with their field
comments), so they cannot drift; ``tests/test_docs.py`` fails when the page is stale.

    python -m zoo.report.docgen            # rewrite the generated blocks of docs/plugins.md in place
    python -m zoo.report.docgen --check    # exit 1 if they are stale
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path

from zoo.registry import cards, hookspecs, tasks

PAGE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (\w+) -->\n)(.*?)(<!-- END GENERATED: \2 -->)", re.S)


def hook_names() -> list[str]:
    return [name for name, fn in vars(hookspecs).items() if name.startswith("zoo_") and callable(fn)]


def hook_reference() -> str:
    parts = []
    for name in hook_names():
        fn = getattr(hookspecs, name)
        opts = getattr(fn, "zoo_spec", {}) or {}
        signature = f"{name}{inspect.signature(fn)}".replace("'", "")
        kind = "firstresult: the first non-None answer wins" if opts.get("firstresult") else "1:N: every plugin answers"
        doc = inspect.cleandoc(fn.__doc__ or "")
        parts.append(f"### `{signature}`\n\n*{kind}*\n\n{doc}\n")
    return "\n".join(parts)


_FIELD_LINE = re.compile(r"^\s+(\w+): .*?(?:#\s*(.*))?$")


_COMMENT_LINE = re.compile(r"^\s+#:\s*(.*)$")


def _field_comments(cls: type) -> dict[str, str]:
    """A dataclass's field docs: a trailing ``# ...``/``#: ...`` comment, or a ``#:`` line just above the field."""
    comments = {}
    above = ""
    for line in inspect.getsource(cls).splitlines():
        comment = _COMMENT_LINE.match(line)
        if comment:
            above = comment.group(1).strip()
            continue
        match = _FIELD_LINE.match(line)
        if match and (match.group(2) or above):
            comments[match.group(1)] = (match.group(2) or above).strip().removeprefix(":").strip()
        above = ""
    return comments


def _type_text(tp: object) -> str:
    text = str(tp).replace("typing.", "").replace("collections.abc.", "").replace("zoo.registry.cards.", "")
    text = text.replace("zoo.registry.tasks.", "")
    text = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text.replace("|", "\\|")  # a pipe would end the table cell


def card_reference() -> str:
    sections = [
        ("Paper (under `papers:`, keyed by paper name)", cards.Paper, {"key"}),
        ("Model card (under `models:`, keyed by model name)", cards.Card, {"name", "source"}),
        ("`preprocess:`", cards.Preprocess, set()),
        ("`weights:` (a list; sources are tried in order)", cards.WeightSource, set()),
        ("`reported:`", cards.Reported, {"metrics"}),
    ]
    out = []
    for title, cls, skip in sections:
        hints = typing.get_type_hints(cls)
        comments = _field_comments(cls)
        rows = ["| field | type | required / default | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            if f.default is not dataclasses.MISSING:
                default = "optional" if f.default in (None, ()) else f"default `{f.default}`"
            elif f.default_factory is not dataclasses.MISSING:
                default = "optional"
            else:
                default = "**required**"
            rows.append(f"| `{f.name}` | `{_type_text(hints[f.name])}` | {default} | {comments.get(f.name, '')} |")
        out.append(f"#### {title}\n\n" + "\n".join(rows) + "\n")
    out.append(
        "Any other key under `reported:` is a dataset name mapping metric names to numbers, e.g.\n"
        "`imagenet: {top1: 84.2, top5: 96.8}`. `throughput` needs `value` and `device`; `latency` is one\n"
        "such mapping or a list of them. Mean/std presets: "
        + ", ".join(f"`{name}`" for name in cards.MEAN_STD_PRESETS)
        + f". Interpolations: {', '.join(cards.INTERPOLATIONS)}. Crop modes: {', '.join(cards.CROP_MODES)}.\n"
    )
    return "\n".join(out)


def _field_table(cls: type, skip: set[str] = frozenset()) -> str:
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    comments = _field_comments(cls)
    rows = ["| field | type | required / default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.default is not dataclasses.MISSING:
            default = "optional" if f.default in (None, (), "") else f"default `{f.default}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = "optional"
        else:
            default = "**required**"
        meaning = comments.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{_type_text(hints[f.name])}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def task_reference() -> str:
    """The fields of the objects ``zoo_tasks`` returns (zoo.registry.tasks), from their comments."""
    return "\n".join(f"#### `{cls.__name__}` (`zoo.registry.tasks.{cls.__name__}`)\n\n"
                     f"{inspect.cleandoc(cls.__doc__ or '').splitlines()[0]}\n\n{_field_table(cls)}"
                     for cls in (tasks.Task, tasks.Metric))


def hook_and_task_reference() -> str:
    return hook_reference() + "\n### Task and Metric fields\n\n" + task_reference()


GENERATORS = {"hooks": hook_and_task_reference, "cards": card_reference}


def render(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + GENERATORS[m.group(2)]() + m.group(4), text)


def main(argv: list[str]) -> int:
    text = PAGE.read_text()
    new = render(text)
    if "--check" in argv:
        if new != text:
            print(f"{PAGE} is stale: run python -m zoo.report.docgen", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
