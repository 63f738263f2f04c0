"""Generate ``docs/models.md`` from the cards: ``python -m zoo.report.modeltable > docs/models.md``.

Only card data goes in (no measurement, no torch import), so the page is reproducible and a test
can check that the committed page is current.
"""

from __future__ import annotations

from zoo.registry import lookup
from zoo.registry.cards import Card

HEADER = """# Models

Generated from the cards by `python -m zoo.report.modeltable > docs/models.md` (`make docs`); do not edit by
hand. Figures are the papers' own (`reported` in the cards); `zoo verify` puts each beside a
measurement. MACs count one per multiply-add (what most papers call FLOPs).
"""


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


def _weights(card: Card) -> str:
    if card.card_only:
        return "card-only"
    if not card.weights:
        return "none" + (f" ({card.weights_note})" if card.weights_note and len(card.weights_note) < 60 else "")
    w = card.weights[0]
    if w.hub:
        return f"[hf: {w.hub}](https://huggingface.co/{w.hub})"
    if w.url:
        return f"[url]({w.url})"
    return "Google Drive"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _claim_title(cards: list) -> str:
    """The column of a task's headline claim: its primary metric's title (classification: top-1)."""
    titles = {lookup.primary_claim(c)[0] for c in cards} - {None}
    return titles.pop() if len(titles) == 1 else "claim"


def generate() -> str:
    """The whole page as Markdown: one section per task, one row per card, sorted by paper then name."""
    cat = lookup.catalog()
    cards = cat.select()
    lines = [HEADER]
    for task in sorted({c.task for c in cards}):
        group = sorted((c for c in cards if c.task == task), key=lambda c: (cat.paper_of(c).title.lower(), c.name))
        lines += [f"## {task} ({len(group)})", "",
                  f"| model | paper | venue | params (M) | MACs (G) | {_claim_title(group)} | weights | license | plugin |",
                  "|---|---|---|---:|---:|---:|---|---|---|"]
        for c in group:
            paper, r = cat.paper_of(c), c.reported
            title = f"[{paper.title}](https://arxiv.org/abs/{paper.arxiv})" if paper.arxiv else paper.title
            claim = lookup.primary_claim(c)[1]
            lines.append("| " + " | ".join(_cell(x) for x in (
                f"`{c.name}`", title, paper.venue,
                _num(r.params_m, 2) if r else "–", _num(r.gmacs, 2) if r else "–",
                _num(claim, 2), _weights(c), cat.license_of(c) or "–", c.plugin,
            )) + " |")
        lines.append("")
    lines.append(f"{len(cards)} models from {len({c.paper for c in cards})} papers.")
    return "\n".join(lines) + "\n"


def main() -> None:
    import sys

    sys.stdout.write(generate())


if __name__ == "__main__":
    main()
