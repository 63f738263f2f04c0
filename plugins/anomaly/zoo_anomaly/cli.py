"""``zoo anomaly NAME IMAGE...``: score your own images, zero-shot or against a few good ones.

Offered through the ``zoo_commands`` hook; it only parses, calls :func:`zoo_anomaly.predict.score_images`
and renders.
"""

from __future__ import annotations

import json

import click


@click.command("anomaly", short_help="Score your own images for anomalies (zero-shot or k-shot), with overlays.")
@click.argument("name")
@click.argument("images", nargs=-1, required=True)
@click.option("--reference", help="A folder of normal (good) images: the model is fitted on them (few-shot).")
@click.option("--shots", type=int, help="Use K of the reference images, drawn with --seed (default: all).")
@click.option("--seed", type=int, help="Seed of the draw of --shots (default 66).")
@click.option("--out", help="Write an overlay PNG per image here (image | heat map).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), help="Load this weights file.")
@click.option("--no-pretrained", is_flag=True, help="Random weights (smoke tests).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def anomaly_command(name: str, images: tuple[str, ...], reference: str | None, shots: int | None, seed: int | None,
                    out: str | None, device: str, batch_size: int, checkpoint: str | None, no_pretrained: bool,
                    as_json: bool) -> None:
    """Score IMAGE files (or folders of images) with anomaly model NAME; higher = more anomalous.

    \b
    Example:
      zoo anomaly anomalyclip-visa part1.png part2.png --out maps/
      zoo anomaly graphcore ./line3/*.png --reference ./line3-good --shots 4
    """
    from zoo.report import render
    from zoo_anomaly import predict

    rows = predict.score_images(name, list(images), reference=reference, shots=shots, seed=seed, out=out,
                                device=device, batch_size=batch_size, pretrained=not no_pretrained,
                                checkpoint=checkpoint)
    if as_json:
        click.echo(json.dumps(predict.as_json(rows), indent=2))
        return
    click.echo(render.table([[r.image, f"{r.score:.4f}", r.overlay or "-"] for r in rows],
                            ["image", "score", "overlay"], align="lrl"))
