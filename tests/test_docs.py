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
    assert set(names) == {"zoo_cards", "zoo_builders", "zoo_convert_checkpoint", "zoo_fold", "zoo_patches", "zoo_tasks",
                         "zoo_datasets"}
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
