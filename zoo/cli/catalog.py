"""Read-only catalog commands: list, info, plugins. They never import torch."""

from __future__ import annotations

import json

import click

from zoo import api, render


def _warn_catalog_problems() -> None:
    cat = api.catalog()
    for error in cat.errors:
        click.secho(f"warning: {error}", fg="yellow", err=True)
    broken = [status for status in cat.plugins if not status.ok]
    if broken:
        names = ", ".join(f"{s.name} ({s.error})" for s in broken)
        click.secho(f"warning: {len(broken)} plugin(s) failed to load: {names}; see `zoo plugins`", fg="yellow", err=True)


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
    cat = api.catalog()
    cards = cat.select(pattern, task=task, paper=paper, venue=venue, license=license_, plugin=plugin, installed=installed)
    _warn_catalog_problems()
    if as_json:
        rows = [render.card_summary(c, cat.paper_of(c), cat.installed(c), cat.license_of(c)) for c in cards]
        click.echo(json.dumps(rows, indent=2))
        return
    rows = []
    for c in cards:
        r = c.reported
        rows.append([
            c.name, c.paper, cat.paper_of(c).venue, c.task,
            r.params_m if r else None, r.gmacs if r else None, r.top1() if r else None,
            c.has_weights, cat.installed(c),
        ])
    click.echo(render.table(rows, ["name", "paper", "venue", "task", "params M", "MACs G", "top-1", "weights", "installed"],
                            align="llllrrrll"))
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
    cat = api.catalog()
    card = api.get_card(name)
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
    """Show every installed zoo plugin: distribution, version, cards, hooks, status.

    A plugin that failed to import is shown with its error; the others keep working.

    \b
    Example:
      zoo plugins --json
    """
    cat = api.catalog()
    counts = {status.name: 0 for status in cat.plugins}
    for card in cat.cards.values():
        if card.plugin in counts:
            counts[card.plugin] += 1
    if as_json:
        click.echo(json.dumps([{**s.as_dict(), "cards": counts[s.name]} for s in cat.plugins], indent=2))
        return
    rows = [[s.name, s.dist or "-", s.version or "-", counts[s.name], "ok" if s.ok else f"error: {s.error}"] for s in cat.plugins]
    click.echo(render.table(rows, ["plugin", "distribution", "version", "cards", "status"], align="lllrl"))
