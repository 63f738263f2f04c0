"""Claims made checkable: bench, verify, plot, compare. Heavy imports happen inside the commands."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from zoo.errors import UserError
from zoo.registry import lookup
from zoo.report import render


def _fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    """A measurement to ``digits`` decimals; a card's figure as its source printed it (4.7, not 4.70)."""
    from zoo.registry.cards import Figure

    if value is None:
        return "-"
    if isinstance(value, Figure):
        return f"{value.text}{unit}"
    return f"{value:.{digits}f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _num(value: float | None, unit: str = "") -> str:
    """Up to 4 significant digits, never rounding a small figure to zero."""
    return "-" if value is None else f"{value:.4g}{unit}" if abs(value) < 1000 else f"{value:.0f}{unit}"


def _printed(value: Any) -> str:
    """A card's figure as its source printed it (``Figure.text``), anything else as str()."""
    from zoo.registry.cards import Figure

    return value.text if isinstance(value, Figure) else str(value)


def _speed(spec: dict[str, Any] | None, unit: str) -> str:
    if not spec:
        return "-"
    extra = ", ".join(str(v) for v in (spec.get("device"), spec.get("batch_size") and f"batch {spec['batch_size']}",
                                         spec.get("precision")) if v)
    return f"{_printed(spec['value'])} {unit}" + (f" ({extra})" if extra else "")


def bench_text(result: dict[str, Any]) -> str:
    rep = result.get("reported") or {}
    lat = result.get("latency_ms")
    setup = [result["device"], f"batch {result['batch_size']}", result["amp"] or "fp32"]
    setup += [s for s, on in (("channels-last", result["channels_last"]), ("compiled", result["compile"])) if on]
    if result.get("patch"):
        setup.append(f"patch {result['patch']}")
    rows = [
        ["params", f"{result['params_m']:.3f} M", _fmt(rep.get("params_m"), 2, " M")],
        [f"MACs @{'x'.join(map(str, result['input_size'][1:]))}" if result.get("input_size") else "MACs",
         f"{result['gmacs']:.3f} G",
         _fmt(rep.get("gmacs"), 2, " G")],
        ["throughput", _fmt(result["throughput_img_s"], 1, " img/s"), _speed(rep.get("throughput"), "img/s")],
        ["latency b1", f"{lat['median']:.2f} ms (p90 {lat['p90']:.2f})" if lat else "-",
         "; ".join(_speed(item, "ms") for item in rep.get("latency") or []) or "-"],
        ["peak memory", _fmt(result["peak_memory_mb"], 0, " MiB"), "-"],
    ]
    post = result.get("postprocess_ms")
    if post:  # the task's post-processing (NMS, mask top-k), timed apart from the forward pass
        rows.insert(4, ["post-processing b1", f"{post['median']:.2f} ms (p90 {post['p90']:.2f})", "-"])
    claim = rep.get("claim")
    if claim:  # the task's headline metric: reported only, zoo eval measures it
        rows.append([claim["title"], "-", _fmt(claim["value"], 2, f" {claim['unit']}" if claim["unit"] else "")])
    head = f"{result['model']}  on {', '.join(setup)}" + (f"   reported: {rep['source']}" if rep.get("source") else "")
    return head + "\n" + render.table(rows, ["figure", "measured", "reported (paper's hardware)"])


@click.command("bench", short_help="Measure params, MACs, throughput and latency beside the paper's figures.")
@click.argument("names", nargs=-1)
@click.option("--task", "table_task", help="Time every card of this task that reports a latency (a paper's speed "
                                            "table) and print each table's rank correlation with the paper.")
@click.option("--paper", "table_paper", help="With --task: only this paper's cards.")
@click.option("--device", help="cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--batch-size", "-b", type=int, default=128, show_default=True, help="Batch size of the throughput run.")
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), help="Autocast precision (default: fp32).")
@click.option("--channels-last", is_flag=True, help="Run in channels_last memory format.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model first.")
@click.option("--patch", help="Model patch to apply, e.g. 'tome:r=13'.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False),
              help="Time the model with these weights (one NAME only); default: random weights.")
@click.option("--reparam", is_flag=True, help="Fold re-parameterisable branches first (MobileOne, RepVGG), as papers time them.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed steps before each timed run.")
@click.option("--repeats", type=int, default=40, show_default=True, help="Timed steps of the throughput run.")
@click.option("--latency-repeats", type=int, help="Timed steps at batch 1 (default: max(repeats, 20)).")
@click.option("--no-throughput", is_flag=True, help="Skip the throughput run.")
@click.option("--no-latency", is_flag=True, help="Skip the batch-1 latency run.")
@click.option("--threads", type=int, help="CPU threads (torch.set_num_threads).")
@click.option("--no-record", is_flag=True, help="Do not append the result to $ZOO_HOME/bench.jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per model.")
def bench_command(names, table_task, table_paper, device, batch_size, amp, channels_last, compile_, patch, checkpoint,
                  reparam, warmup, repeats, latency_repeats, no_throughput, no_latency, threads, no_record,
                  as_json) -> None:
    """Benchmark NAMES with random weights: params, MACs at the card's input size, throughput
    (img/s), batch-1 latency (median and p90 ms) and peak GPU memory, each beside the card's
    reported figure and the hardware the paper used.

    \b
    Example:
      zoo bench deit-t --device cpu --batch-size 32 --repeats 10
      zoo bench fastervit-2 --device cuda --amp bf16 --channels-last --json
      zoo bench --task semantic-segmentation --device cpu    # a paper's latency table, re-ranked here
    """
    from zoo.measure import bench

    table = None
    if table_task:
        if names:
            raise click.UsageError("give model NAMES or --task, not both")
        names, table = _table_names(table_task, table_paper)
        no_throughput = True  # the tables compare batch-1 latency
    elif table_paper:
        raise click.UsageError("--paper goes with --task")
    elif not names:
        raise click.UsageError("give one or more model NAMES, or --task TASK")
    for name in names:  # unknown names fail before any timing
        lookup.get_card(name)
    if checkpoint and len(names) > 1:
        raise click.UsageError("--checkpoint goes with one model name")
    results = []
    for name in names:
        result = bench.benchmark(
            name, device=device, batch_size=batch_size, amp=amp, channels_last=channels_last, compile=compile_,
            patch=patch, checkpoint=checkpoint, reparam=reparam, warmup=warmup, repeats=repeats, latency_repeats=latency_repeats,
            throughput=not no_throughput, latency=not no_latency, threads=threads,
        )
        results.append(result)
        if not as_json:  # shown first: a bench record that cannot be written must not cost the measurement
            click.echo(bench_text(result) + ("\n" if name != names[-1] else ""))
    groups = None
    if table is not None:
        from zoo.measure import ranking

        measured = {r["model"]: r["latency_ms"]["median"] for r in results if r.get("latency_ms")}
        groups = ranking.compare((card, reported, measured[card.name]) for card, reported in table
                                 if card.name in measured)
    if as_json:
        click.echo(json.dumps({"results": results, "tables": groups} if groups is not None else results, indent=2))
    elif groups is not None:
        click.echo("\n" + "\n\n".join(_table_text(group) for group in groups))
    if not no_record:
        from zoo.records import ResultsWriteError, append_bench

        for result in results:
            try:
                append_bench(result)
            except ResultsWriteError as exc:  # the measurement succeeded: warn, exit 0
                click.echo(f"Warning: the bench result of {result['model']} was not recorded: {exc}", err=True)
    elif results and results[0].get("load_avg"):
        click.echo(f"load average {results[0]['load_avg'][0]:.2f} on {results[0]['threads']} thread(s): "
                   "timings on a busy machine are noisy", err=True)


def _table_names(task: str, paper: str | None) -> tuple[tuple[str, ...], list[tuple[Any, dict[str, Any]]]]:
    """The cards of ``task`` (and ``paper``) that report a latency and can run here, with that latency."""
    from zoo.errors import UserError
    from zoo.measure import ranking

    known = sorted(lookup.tasks())
    if task not in known:
        from zoo.errors import UnknownTask

        raise UnknownTask(task, known)
    cat = lookup.catalog()
    table = ranking.table_cards(cat.select(task=task, paper=paper, installed=True))
    if not table:
        where = f"task {task!r}" + (f", paper {paper!r}" if paper else "")
        raise UserError(f"no installed card of {where} reports a latency: nothing to re-time")
    return tuple(card.name for card, _ in table), table


def _table_text(group: dict[str, Any]) -> str:
    rows = [[r["model"], f"{r['reported_ms']:g}", f"{r['measured_ms']:.2f}", f"{r['paper_rank']:g}", f"{r['here_rank']:g}"]
            for r in group["rows"]]
    rho = group["spearman"]
    head = (f"{group['paper']}: latency table ({group['device']}) re-timed here; Spearman's rho "
            + (f"{rho:+.2f}" if rho is not None else "- (needs two models)"))
    return head + "\n" + render.table(rows, ["model", f"paper ms ({group['device']})", "here ms", "paper rank",
                                             "here rank"], align="lrrrr")


def _claim_row(model: str, c: dict[str, Any]) -> list[str]:
    if c["status"] == "off" and c["diff_pct"] is not None:
        status = f"off by {c['diff_pct']:+.1f}%"
    else:
        status = c["status"]
    unit = f" {c['unit']}" if c["unit"] else ""
    from zoo.registry.cards import Figure

    # a card's figure as its source printed it ("14.0", not "14"): the precision it is judged at
    reported = f"{_printed(c['reported'])}{unit}" if isinstance(c["reported"], Figure) else _num(c["reported"], unit)
    return [model, c["claim"], reported, _num(c["measured"], unit), status, c["tolerance"] or "-", c["note"]]


@click.command("verify", short_help="Put every claim of the cards beside its measurement.")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every card in the catalog.")
@click.option("--speed", is_flag=True, help="Also time throughput/latency where the paper's hardware class matches.")
@click.option("--strict", is_flag=True, help="Exit 1 when a measurable claim fails (off, or the build fails).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one report per card.")
def verify_command(names, all_, speed, strict, as_json) -> None:
    """For each card (NAMES, or --all), each reported claim beside its measurement: params and MACs
    (built with random weights, no download), every metric of the card's task from the eval results
    file (with that metric's tolerance), throughput and latency only on the paper's hardware class.
    Each claim holds, is off by X%, is explained by the card's deviations, or is not measurable here
    (and why). A metric is judged only with runs of the card's own weights at the claim's precision
    (fp32) and protocol (preprocessing, the whole ImageNet-C, ...): "not judged" says why a run
    cannot test it; figures the card quotes for other weights are "not testable" and never fail.

    \b
    Example:
      zoo verify --all
      zoo verify efficientmod-xxs deit-t --json --strict
    """
    from zoo.claims import verify

    if bool(names) == all_:
        raise UserError("give model NAMES or --all (not both)" if names else "give model NAMES or --all")
    runs = verify.read_runs()
    if runs.skipped:
        from zoo.records import skipped_note

        click.echo(skipped_note(runs.skipped, runs.path), err=True)
    reports = verify.verify(names, speed=speed, runs=runs)
    if as_json:
        click.echo(json.dumps(reports, indent=2))
    else:
        rows = [_claim_row(r["model"], c) for r in reports for c in r["claims"]]
        click.echo(render.table(rows, ["model", "claim", "reported", "measured", "status", "tolerance", "note"]))
        counts: dict[str, int] = {}
        for r in reports:
            for c in r["claims"]:
                counts[c["status"]] = counts.get(c["status"], 0) + 1
        click.echo(f"{len(reports)} card(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), err=True)
    failed = verify.failures(reports)
    if strict and failed:
        click.echo(f"Error: {len(failed)} claim(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


@click.command("plot", short_help="Draw the accuracy trade-off scatter with its Pareto front.")
@click.argument("names", nargs=-1)
@click.option("--x", "x", type=click.Choice(["throughput", "latency", "gmacs", "params"]), default="gmacs",
              show_default=True, help="Horizontal axis.")
@click.option("--y", "y", help="Vertical axis: a metric of the cards' task (default: its primary one, e.g. top1).")
@click.option("--source", type=click.Choice(["reported", "measured"]), default="reported", show_default=True,
              help="Papers' figures, or measurements (zoo bench / zoo eval records).")
@click.option("--task", help="Only cards of this task.")
@click.option("-o", "--output", required=True, help="Output file: .png, .svg or .pdf (the format follows the suffix).")
@click.option("--json", "as_json", is_flag=True, help="Also print the points and the front as JSON.")
def plot_command(names, x, y, source, task, output, as_json) -> None:
    """Scatter one labelled point per model (NAMES, or every card), grouped by paper, with the
    Pareto front marked. Labels are placed where they overlap no other label or marker; each paper
    keeps one colour and marker, distinct from every other paper's. The format follows the -o
    suffix (.png, .svg, .pdf). Needs matplotlib: pip install 'zoo-core[plot]'.

    \b
    Example:
      zoo plot --x gmacs --y top1 -o tradeoff.svg
      zoo plot --x latency --source measured -o measured.png
    """
    from zoo.report import plot

    out = plot.plot(output, x=x, y=y, source=source, task=task, names=list(names) or None)
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(f"wrote {out['output']}: {len(out['points'])} point(s), Pareto front: {', '.join(out['front'])}")


def _metric_cells(card: Any, results: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """``reported <metric>`` / ``measured <metric>`` for the card's task's headline metric on its first
    dataset (always shown: classification's ``top-1``), then for every other figure the card reports
    (``... on <dataset>`` when not the first dataset); measured = the run verify would judge it with."""
    from zoo.claims import verify

    entry = verify.task_of(card)
    task = entry[1] if entry else None
    first = task.datasets[0] if task and task.datasets else None
    figures = [(dataset, metric, value) for claim, dataset, metric, value in (card.reported.figures() if card.reported else [])
               if claim == f"{dataset}.{metric}"]  # nested tables (per-category) stay in zoo verify
    primary = task.primary if task else None
    if primary is not None and first and not any(d == first and m == primary.name for d, m, _ in figures):
        figures.insert(0, (first, primary.name, None))
    cells: dict[str, Any] = {}
    for dataset, metric, value in figures:
        spec = task.metric(metric) if task else None
        name = (spec.title if spec else metric) + ("" if dataset == first else f" on {dataset}")
        run = results.get((card.name, dataset))
        cells[f"reported {name}"] = value
        cells[f"measured {name}"] = run.metrics.get(metric) if run is not None else None
    return cells


@click.command("compare", short_help="Show cards and measurements side by side.")
@click.argument("names", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def compare_command(names, as_json) -> None:
    """Side by side: paper, venue, license, input and preprocessing, reported claims, and what was
    measured here (params and MACs now; latest zoo bench and zoo eval records).

    \b
    Example:
      zoo compare efficientmod-xxs mobilenetv2-100 fasternet-t0
    """
    from zoo.claims import verify
    from zoo.errors import ZooError
    from zoo.measure.bench import static_counts
    from zoo.records import latest_bench

    cat = lookup.catalog()
    cards = [lookup.get_card(n) for n in names]
    results, bench = verify.load_results(), latest_bench()
    columns = []
    for card in cards:
        paper, r = cat.paper_of(card), card.reported
        try:
            counts = static_counts(card.name)
            params_m, gmacs = round(counts["params"] / 1e6, 3), round(counts["macs"] / 1e9, 3)
        except ZooError as exc:
            params_m = gmacs = None
            note = str(exc)
        else:
            note = ""
        b = bench[card.name].flat() if card.name in bench else {}
        columns.append({
            "model": card.name, "paper": paper.title, "venue": paper.venue, "license": cat.license_of(card),
            "installed": cat.installed(card),
            "input": "x".join(map(str, card.input_size)) if card.input_size else None,
            "preprocess": f"{card.preprocess.interpolation}, crop {card.preprocess.crop_pct}",
            "weights": card.weights[0].describe() if card.weights else None,
            "reported params M": r.params_m if r else None, "measured params M": params_m,
            "reported MACs G": r.gmacs if r else None, "measured MACs G": gmacs,
            **_metric_cells(card, results),
            "reported throughput": _speed(dict(r.throughput) if r and r.throughput else None, "img/s"),
            "measured throughput": (f"{b['throughput_img_s']} img/s ({b['device']}, batch {b['batch_size']})"
                                    if b.get("throughput_img_s") else None),
            "reported latency": "; ".join(_speed(dict(i), "ms") for i in r.latency) if r and r.latency else None,
            "measured latency": (f"{b['latency_ms']} ms ({b['device']})" if b.get("latency_ms") else None),
            "note": note or None,
        })
    if as_json:
        click.echo(json.dumps(columns, indent=2))
        return
    fields = [k for k in dict.fromkeys(k for c in columns for k in c) if k != "model"]  # every card's rows
    from zoo.registry.cards import Figure

    def cell(value: Any) -> str:
        if isinstance(value, Figure):  # a card's figure, as printed
            return _printed(value)
        return _fmt(value, 3) if isinstance(value, float) else render.fmt(value)

    rows = [[f] + [cell(c.get(f)) for c in columns] for f in fields]
    click.echo(render.table(rows, [""] + [c["model"] for c in columns]))
