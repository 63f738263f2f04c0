"""`zoo report`: the static site of every card's claims beside what was measured here."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("report", short_help="Write a static web site of the papers' claims beside the measurements.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Folder to write the site to (new, empty, "
              "or an earlier zoo report, which is replaced).")
@click.option("--results", "results_file", type=click.Path(dir_okay=False),
              help="Eval results file (default: $ZOO_HOME/results.jsonl).")
@click.option("--bench", "bench_file", type=click.Path(dir_okay=False),
              help="Bench records file (default: $ZOO_HOME/bench.jsonl).")
@click.option("--count", is_flag=True, help="Count params and MACs of cards with no bench record, as zoo verify "
              "does (builds every model on the meta device: minutes).")
def report_command(output: str, results_file: str | None, bench_file: str | None, count: bool) -> None:
    """Write DIR/index.html (every card, filterable and sortable, with its headline figure reported
    and measured and its verify status), one page per model (card, claims, runs, bench records, the
    command behind each figure), one page per paper (its table with "measured here" beside each
    reported column) and interactive trade-off charts. Claims are judged by zoo verify's functions;
    params and MACs come from zoo bench records (or, with --count, are counted as zoo verify counts
    them). Opens offline: every script ships inside DIR.

    \b
    Example:
      zoo report -o report && xdg-open report/index.html
      zoo report -o /tmp/site --results runs.jsonl --count
    """
    from zoo.records import skipped_note
    from zoo.report.site import build_site

    start = time.perf_counter()
    summary = build_site(output, results_file=results_file, bench_file=bench_file, count=count)
    if summary["skipped"]:
        click.echo(skipped_note(summary["skipped"], summary["results_path"]), err=True)
    click.echo(f"wrote {summary['models']} model page(s), {summary['papers']} paper page(s) from "
               f"{summary['runs']} run(s) and {summary['bench']} bench record(s) in {time.perf_counter() - start:.1f} s")
    click.echo(f"open {Path(summary['index']).resolve().as_uri()}")
