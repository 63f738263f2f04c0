"""Read-only catalog commands: list, info, plugins. They never import torch."""

from __future__ import annotations

import json
import warnings

import click

from zoo.errors import ZooWarning
from zoo.registry import lookup, plugins
from zoo.report import render


@click.command("list", short_help="List models and what their papers claim.")
@click.argument("pattern", required=False)
@click.option("--task", help="Only this task, e.g. image-classification.")
@click.option("--paper", help="Paper key or words of its title.")
@click.option("--venue", help="Venue, e.g. 'ICLR 2024' or 'ICLR'.")
@click.option("--license", "license_", help="License text, e.g. 'apache' or 'NC'.")
@click.option("--plugin", help="Only cards of this plugin.")
@click.option("--installed/--not-installed", default=None, help="Only cards whose plugin is (not) installed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(pattern, task, paper, venue, license_, plugin, installed, as_json) -> None:
    """List the cards matching PATTERN (a glob like 'fastervit-*' or a substring).

    \b
    Example:
      zoo list
      zoo list 'efficientmod-*' --json
      zoo list --venue 'ICLR 2024' --license apache
    """
    cat = lookup.catalog()
    cards = cat.select(pattern, task=task, paper=paper, venue=venue, license=license_, plugin=plugin, installed=installed)
    if as_json:
        rows = [render.card_summary(c, cat.paper_of(c), cat.installed(c), cat.license_of(c)) for c in cards]
        click.echo(json.dumps(rows, indent=2))
        return
    claims = [lookup.primary_claim(c) for c in cards]
    titles = {title for title, _ in claims if title}
    shared = titles.pop() if len(titles) == 1 else None  # one task's metric: its name heads the column
    rows = []
    for c, (title, value) in zip(cards, claims, strict=True):
        r = c.reported
        shown = value if shared or value is None else f"{title} {value}"
        rows.append([
            c.name, c.paper, cat.paper_of(c).venue, c.task,
            r.params_m if r else None, r.gmacs if r else None, shown,
            "card-only" if c.card_only else c.has_weights, cat.installed(c),
        ])
    click.echo(render.table(rows, ["name", "paper", "venue", "task", "params M", "MACs G", shared or "claim", "weights",
                                   "installed"], align="llllrrrll"))
    click.echo(f"{len(cards)} model(s)", err=True)


@click.command("info", short_help="Show one model's card.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_command(name: str, as_json: bool) -> None:
    """Show the card of NAME: paper, license, claims, weights, preprocessing.

    \b
    Example:
      zoo info fastervit-2
      zoo info deit-t --json
    """
    cat = lookup.catalog()
    card = lookup.get_card(name)
    paper, installed, license_ = cat.paper_of(card), cat.installed(card), cat.license_of(card)
    if as_json:
        data = {**render.to_jsonable(card), "installed": installed, "license": license_,
                "paper": render.to_jsonable(paper), "resize": render.resize_size(card)}
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render.card_page(card, paper, installed, license_))


@click.command("plugins", short_help="List installed plugins and their status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """Show the core and every installed zoo plugin: distribution, version, cards (valid and
    invalid), import time, hooks and status.

    A plugin that failed to import is shown with its error ("error"); one whose hooks returned
    something unusable, or whose cards are invalid, is "degraded" and its problems are listed. The
    others keep working. An import slower than ZOO_PLUGIN_SLOW_S seconds (default 1) is flagged.

    \b
    Example:
      zoo plugins --json
      ZOO_TRACE_PLUGINS=1 zoo plugins
    """
    with warnings.catch_warnings():  # the problems are the table's subject, not warnings
        warnings.simplefilter("ignore", ZooWarning)
        cat = lookup.catalog()
        cat.check_hooks()
    rows = []
    for status in [cat.core, *cat.plugins]:
        if status is cat.core:
            cards = sum(1 for card in cat.cards.values() if card.source == cat.core_source)
            invalid = cat.invalid_count(source=cat.core_source)
        else:
            cards = sum(1 for card in cat.cards.values() if card.plugin == status.name)
            invalid = cat.invalid_count(plugin=status.name)
        rows.append({**status.as_dict(), "cards": cards, "invalid_cards": invalid})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(render.plugins_table(rows))
    slow = [row["name"] for row in rows if row["slow"]]
    if slow:
        click.echo(f"slow to import (over {plugins.slow_import_threshold():g} s, ZOO_PLUGIN_SLOW_S): {', '.join(slow)}",
                   err=True)
