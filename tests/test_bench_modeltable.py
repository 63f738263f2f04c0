"""docs/models.md is generated from the cards and must be current (the CI check)."""

from __future__ import annotations

from pathlib import Path

from zoo import api
from zoo.report import modeltable

DOC = Path(__file__).resolve().parent.parent / "docs" / "models.md"


def test_models_page_is_current():
    expected = modeltable.generate()
    assert DOC.read_text(encoding="utf-8") == expected, (
        "docs/models.md is stale: run `python -m zoo.report.modeltable > docs/models.md` (make docs)")


def test_every_card_has_a_row_with_its_reported_figures():
    text = modeltable.generate()
    for name in api.list_models():
        assert f"| `{name}` |" in text
    card = api.get_card(api.list_models()[0])
    row = next(line for line in text.splitlines() if line.startswith(f"| `{card.name}` |"))
    assert api.get_paper(card).venue in row and card.plugin in row
