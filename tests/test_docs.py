"""Docs stay true: the plugin guide's generated blocks are current and cover every hook."""

from __future__ import annotations

import inspect

from zoo.registry import hookspecs
from zoo.report import docgen


def test_plugin_guide_is_current():
    text = docgen.PAGE.read_text()
    assert docgen.render(text) == text, "docs/plugins.md is stale: run python -m zoo.report.docgen"


def test_every_hook_is_documented_with_its_signature():
    text = docgen.PAGE.read_text()
    names = docgen.hook_names()
    assert set(names) == {"zoo_cards", "zoo_builders", "zoo_read_checkpoint", "zoo_convert_checkpoint", "zoo_fold",
                         "zoo_patches", "zoo_tasks", "zoo_datasets", "zoo_commands"}
    for name in names:
        [heading] = [line for line in text.splitlines() if line.startswith(f"### `{name}(")]
        for arg in inspect.signature(getattr(hookspecs, name)).parameters:
            assert f"{arg}: " in heading, f"hook {name}: argument {arg} missing from its heading"


def test_every_card_field_is_in_the_card_reference():
    from dataclasses import fields

    from zoo.registry import cards

    text = docgen.PAGE.read_text()
    for cls in (cards.Paper, cards.Card, cards.Preprocess, cards.WeightSource, cards.Reported):
        for f in fields(cls):
            if f.name not in {"key", "name", "source", "metrics"}:
                assert f"| `{f.name}` |" in text, f"{cls.__name__}.{f.name} missing from docs/plugins.md"


def test_every_task_and_metric_field_is_documented_with_a_meaning():
    from dataclasses import fields

    from zoo.registry import tasks

    text = docgen.PAGE.read_text()
    for cls in (tasks.Task, tasks.Metric):
        assert f"#### `{cls.__name__}` (`zoo.registry.tasks.{cls.__name__}`)" in text
        for f in fields(cls):
            [row] = [line for line in text.splitlines() if line.startswith(f"| `{f.name}` |")
                     and text.index(line) > text.index(f"#### `{cls.__name__}`")][:1]
            meaning = row.rstrip(" |").rsplit(" | ", 1)[-1]
            assert meaning and not meaning.startswith("|"), f"{cls.__name__}.{f.name} has no meaning in docs/plugins.md"


def test_hook_returns_are_typed_with_the_contracts_own_types():
    import typing
    from pathlib import Path

    from torch import Tensor, nn

    from zoo.registry.cards import Card
    from zoo.registry.tasks import Task

    hints = {name: typing.get_type_hints(getattr(hookspecs, name), {"Card": Card, "Task": Task, "Tensor": Tensor,
                                                                      "nn": nn, "Path": Path, **vars(hookspecs)})
             for name in docgen.hook_names()}
    assert hints["zoo_tasks"]["return"] == dict[str, Task]
    assert hints["zoo_read_checkpoint"]["return"] == dict[str, Tensor] | None
    assert hints["zoo_convert_checkpoint"]["state_dict"] == dict[str, Tensor]
    assert hints["zoo_fold"]["return"] == nn.Module | None
