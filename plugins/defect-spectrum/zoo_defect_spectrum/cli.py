"""``zoo defect-spectrum-bench``: the paper's inference-time table re-timed here, with Spearman's rho.

Offered through ``zoo_commands``: it parses, calls :func:`zoo_defect_spectrum.bench.measure_table`
and renders; every bad option is one ``Error:`` line before any model is built.
"""

from __future__ import annotations

import json

import click


@click.command("defect-spectrum-bench",
               short_help="Time Defect Spectrum's table models here; Spearman's rho against its RTX 3090 column.")
@click.option("--model", "models", multiple=True, help="Only these cards of the table (repeatable; at least two).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--size", type=int, default=512, show_default=True,
              help="Square input side (a multiple of 32); the cards' input is 512.")
@click.option("--warmup", type=int, default=2, show_default=True, help="Untimed steps per model and round.")
@click.option("--repeats", type=int, default=5, show_default=True, help="Timed batch-1 steps per model and round.")
@click.option("--rounds", type=int, default=3, show_default=True,
              help="Interleaved rounds over all models (a load burst then hits every model, not one).")
@click.option("--threads", type=int, help="CPU threads (torch.set_num_threads).")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (for a README).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench_command(models, device, size, warmup, repeats, rounds, threads, markdown, as_json) -> None:
    """Time every model of Defect Spectrum's inference-time table (random weights, batch 1) and put
    each beside the paper's RTX 3090 milliseconds, with Spearman's rank correlation of the two
    columns: absolute times differ with the device, the ranking is what can be reproduced.

    \b
    Example:
      zoo defect-spectrum-bench --device cpu --threads 2
      zoo defect-spectrum-bench --model defect-spectrum-unet --model defect-spectrum-mit-b0 --size 256
    """
    from zoo_defect_spectrum import bench, table

    result = bench.measure_table(list(models) or None, device=device, size=size, warmup=warmup, repeats=repeats,
                                 rounds=rounds, threads=threads, progress=None if as_json else lambda line: click.echo(line, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    rows = [table.Row(**row) for row in result["rows"]]
    render = table.render_markdown if markdown else table.render_text
    click.echo(render(rows, result["spearman"], bench.setup_line(result)))
