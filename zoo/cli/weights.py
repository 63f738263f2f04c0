"""Weight commands: ``zoo download`` and the ``zoo cache`` group (ls, rm, path, export, import, add)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from zoo.errors import UnknownModel, WeightsError, first_line
from zoo.registry import lookup
from zoo.report import render

if TYPE_CHECKING:
    from zoo.registry.cards import Card


def _model_name(name: str) -> str:
    """A card's name (canonical), or the name of a model the cache holds whose card is gone; refuses
    anything else (paths, '..', '') with one line before any path is made from it."""
    from zoo.weights import cache

    try:
        return lookup.get_card(name).name
    except UnknownModel:
        checked = cache.check_name(name)  # '', '..', '/abs', 'a/b': one line, exit 2
        if (cache.weights_dir() / checked).exists() or (cache.weights_dir() / checked).is_symlink():
            return checked  # cached weights of a card that is no longer installed
        raise


@click.command("download", short_help="Fetch, verify and convert models' weights into the cache.")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every card that has weights.")
@click.option("--force", is_flag=True, help="Fetch again even if cached.")
@click.option("--print-hashes", is_flag=True, help="Print the sha256 of each fetched file (to fill cards in).")
def download_command(names: tuple[str, ...], all_: bool, force: bool, print_hashes: bool) -> None:
    """Download the weights of NAMES (or --all), check their sha256, convert them to safetensors.

    Offline (HF_HUB_OFFLINE=1 or ZOO_OFFLINE=1) it only checks the caches, opening no socket.

    \b
    Example:
      zoo download deit-t fastervit-2
      zoo download --all --print-hashes
    """
    from zoo import weights

    if not names and not all_:
        raise click.UsageError("name at least one model, or pass --all")
    cat = lookup.catalog()
    cards = [card for card in cat.select() if card.has_weights] if all_ else [lookup.get_card(n) for n in names]
    failed = []
    for card in cards:
        try:  # a card without sources still succeeds when a file was added by hand (zoo cache add)
            done = weights.ensure(card, force=force)
        except WeightsError as exc:
            if len(cards) == 1:
                raise
            failed.append(str(exc))
            click.echo(f"Error: {exc}", err=True)
            continue
        entry = done.entry
        state = "downloaded" if done.fetched else "cached"
        if entry.origin == "manual":  # a card whose weights no script can fetch: say it is the hand-added file
            state = f"cached (added by hand: {entry.manifest.get('file')}, origin manual)"
        if print_hashes:
            click.echo(f"{card.name}\t{entry.manifest.get('file')}\tsha256: {entry.sha256}\t{entry.source}")
        else:
            click.echo(f"{card.name}: {state} {entry.path} ({render.fmt(entry.path.stat().st_size / 1e6)} MB)")
    if failed:
        raise WeightsError(f"{len(failed)} of {len(cards)} model(s) failed; see the lines above")


@click.group("cache", short_help="Inspect and move zoo's weight cache (ls, rm, path, export, import, add).")
def cache_group() -> None:
    """zoo's weight cache: converted safetensors files, keyed by model and source sha256.

    \b
    Example:
      zoo cache ls
      zoo cache export deit-t -o bundle.tar     # on a connected machine
      zoo cache import bundle.tar               # on the air-gapped one
    """


@cache_group.command("ls", short_help="List cached weights.")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def cache_ls_command(name: str | None, as_json: bool) -> None:
    """List cached weights (of NAME only, if given).

    \b
    Example:
      zoo cache ls --json
    """
    from zoo.weights import cache

    model = _model_name(name) if name else None
    found = cache.entries(model)
    partial = cache.incomplete(model)
    if as_json:
        rows = [{"model": e.model, "path": str(e.path), "size": e.path.stat().st_size, **e.manifest,
                 "origin": e.origin} for e in found]
        rows += [{"model": m, "path": str(p), "size": _size(p), "incomplete": why} for m, p, why in partial]
        click.echo(json.dumps(rows, indent=2))
        return
    rows = [[e.model, e.manifest.get("file"), render.fmt(e.path.stat().st_size / 1e6), e.sha256[:12], e.origin,
             e.source] for e in found]
    rows += [[m, p.name, render.fmt(_size(p) / 1e6), "", why.split(" (")[0], why] for m, p, why in partial]
    click.echo(render.table(rows, ["model", "file", "MB", "sha256", "origin", "source"], align="llrlll"))
    if partial:
        click.echo(f"{len(partial)} incomplete file(s): `zoo cache rm NAME` (or --all) removes them", err=True)


def _size(path: Path) -> int:
    from zoo.weights.cache import _tree_size

    return _tree_size(path) if path.is_dir() else path.stat().st_size if path.exists() else 0


@cache_group.command("rm", short_help="Remove a model's cached weights.")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every model's cached weights and unfinished imports.")
def cache_rm_command(names: tuple[str, ...], all_: bool) -> None:
    """Remove everything zoo caches for NAMES, model names only (the Hugging Face cache is left alone:
    `hf cache`). Incomplete files of a killed download or `cache add` go too. Refused while another
    process is downloading the model.

    \b
    Example:
      zoo cache rm deit-t
      zoo cache rm --all
    """
    from zoo.weights import cache

    if all_ == bool(names):
        raise click.UsageError("name the models to remove, or pass --all (not both)")
    if all_:
        click.echo(f"removed {render.fmt(cache.remove_all() / 1e6)} MB")
        return
    models = [_model_name(name) for name in names]  # every name is checked before anything is removed
    for model in models:
        freed = cache.remove(model)
        click.echo(f"{model}: removed {render.fmt(freed / 1e6)} MB" if freed else f"{model}: nothing cached")


@cache_group.command("path", short_help="Print where the cache is.")
@click.argument("name", required=False)
def cache_path_command(name: str | None) -> None:
    """Print the cache folder ($ZOO_HOME/weights), or NAME's folder in it.

    \b
    Example:
      ls "$(zoo cache path deit-t)"
    """
    from zoo.weights import cache

    click.echo(str(cache.model_dir(_model_name(name)) if name else cache.weights_dir()))


@cache_group.command("export", short_help="Bundle cached weights for an air-gapped machine.")
@click.argument("names", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Bundle (.tar).")
def cache_export_command(names: tuple[str, ...], output: Path) -> None:
    """Write the cached weights of NAMES, with their hashes, to one tar file.

    \b
    Example:
      zoo download deit-t && zoo cache export deit-t -o bundle.tar
    """
    from zoo.weights import cache

    found = []
    for name in names:
        card = lookup.get_card(name)
        entry = cache.find(card) or cache.manual(card.name)  # a hand-added entry travels as one (origin kept)
        if entry is None:
            raise WeightsError(f"model {name!r} is not in the cache; run `zoo download {name}` first")
        found.append(entry)
    cache.export(found, output)
    click.echo(f"wrote {output} ({len(found)} model(s), {render.fmt(output.stat().st_size / 1e6)} MB)")


@cache_group.command("import", short_help="Unpack a bundle made by `zoo cache export`.")
@click.argument("bundle", type=click.Path(path_type=Path))
def cache_import_command(bundle: Path) -> None:
    """Import BUNDLE's weights into the cache: all of them or none. Every file's size, sha256 and
    safetensors header (and, with the model's plugin installed, its tensor names and shapes) are
    checked before the first one is moved into place.

    \b
    Example:
      zoo cache import bundle.tar
    """
    from zoo import weights

    for entry in weights.import_bundle(bundle, shapes_of=_builder_shapes):
        click.echo(f"{entry.model}: imported {entry.manifest.get('file')} (sha256 {entry.sha256[:12]}, "
                   f"origin {entry.origin})")


@cache_group.command("add", short_help="Register a weights file downloaded by hand.")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def cache_add_command(name: str, file: Path) -> None:
    """Check FILE against NAME's card (sha256 when the card has one), convert it, cache it.

    A file whose sha256 the card states is the official file. Any other file is kept as NAME's one
    hand-added entry (origin manual; a second add replaces it), which pretrained=True uses only when
    the card has no source a script can fetch.

    \b
    Example:
      zoo cache add fastervit-2 ~/Downloads/fastervit_2_224_1k.pth.tar
    """
    from zoo import weights

    card = lookup.get_card(name)
    added = weights.add_file(card, file)
    entry = added.entry
    if added.replaced is not None:
        click.echo(f"{card.name}: replaced the hand-added {added.replaced.manifest.get('file')} "
                   f"(sha256 {added.replaced.sha256[:12]})")
    click.echo(f"{card.name}: added {entry.path} (source sha256 {entry.sha256}, origin {entry.origin})")
    if not added.used_by_pretrained:
        click.echo(f"note: {file.name} is not the card's own file (its sha256 is none the card states), so "
                   f"pretrained=True keeps using the card's sources; evaluate it with --checkpoint {entry.path}",
                   err=True)


def _builder_shapes(card: Card) -> dict[str, tuple[int, ...]]:
    """The names and shapes of ``card``'s builder (built on the meta device): what a bundle entry must hold."""
    from zoo.models import build
    from zoo.models.lightbuild import light_build

    try:
        with light_build():
            model = build.create_model(card.name, pretrained=False)
    except Exception as exc:  # a builder that cannot run here: say so, import nothing
        raise WeightsError(f"bundle entry for {card.name!r}: cannot build the model to check its tensors "
                           f"({type(exc).__name__}: {first_line(exc)}); nothing imported") from None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
