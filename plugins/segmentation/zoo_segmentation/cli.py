"""``zoo segment NAME IMAGE... [--out DIR]``: label maps and overlays for a user's own images.

Offered through ``zoo_commands``; it parses, calls :func:`segment_images` and prints where the
files are. Every input is checked before the model is built, each problem one ``Error:`` line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from zoo.errors import UserError

TASK = "semantic-segmentation"


def check_inputs(images: tuple[str, ...] | list[str], out: str) -> tuple[list[str], Path]:
    """The image paths (files, distinct stems) and the output folder (not a file); UserError otherwise."""
    if not images:
        raise UserError("zoo segment: give at least one IMAGE")
    seen: dict[str, str] = {}
    for image in images:
        path = Path(image).expanduser()
        if not path.is_file():
            raise UserError(f"{image}: no such image file")
        if path.stem in seen and seen[path.stem] != str(path.resolve()):
            raise UserError(f"{image}: same file name stem as {seen[path.stem]}; its mask would overwrite that one's")
        seen[path.stem] = str(path.resolve())
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    return [str(Path(i).expanduser()) for i in dict.fromkeys(images)], folder


def segment_images(name: str, images: tuple[str, ...] | list[str], out: str, *, device: str = "auto",
                   pretrained: bool = True, checkpoint: str | None = None) -> list[dict[str, Any]]:
    """Segment ``images`` with model ``name`` (its card's single-scale protocol); write masks and overlays under ``out``."""
    from zoo.eval.runtime import resolve_device
    from zoo.models.build import create_model
    from zoo.registry import lookup
    from zoo_segmentation import inference
    from zoo_segmentation.evaluate import segment

    card = lookup.get_card(name)
    if card.task != TASK:
        raise UserError(f"zoo segment: model {card.name!r} has task {card.task!r}, not {TASK}")
    paths, folder = check_inputs(images, out)
    for path in paths:  # every image decodes before the model is built
        try:
            inference.load_bgr(path)
        except OSError:
            raise UserError(f"{path}: not an image OpenCV can read") from None
    torch_device = resolve_device(device)
    model = create_model(card.name, pretrained=pretrained, checkpoint=checkpoint)
    return segment(model, card, paths, folder, torch_device)


@click.command("segment", short_help="Segment your own images: label PNGs and colour overlays.")
@click.argument("name")
@click.argument("images", nargs=-1)
@click.option("--out", default="zoo-segment", show_default=True, type=click.Path(file_okay=False),
              help="Folder for masks/<stem>.png (label values as the card's dataset encodes them) and "
                   "overlays/<stem>.png.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), help="Load this weights file.")
@click.option("--no-pretrained", is_flag=True, help="Random weights (smoke tests).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def segment_command(name: str, images: tuple[str, ...], out: str, device: str, checkpoint: str | None,
                    no_pretrained: bool, as_json: bool) -> None:
    """Segment IMAGES with model NAME, as its card's single-scale test protocol does.

    \b
    Example:
      zoo segment upernet-swin-t photo.jpg street.png --out seg/
    """
    written = segment_images(name, images, out, device=device, pretrained=not no_pretrained, checkpoint=checkpoint)
    if as_json:
        click.echo(json.dumps(written, indent=2))
        return
    for row in written:
        click.echo(f"{row['image']}: {row['mask']}, {row['overlay']} ({len(row['classes'])} classes)")
