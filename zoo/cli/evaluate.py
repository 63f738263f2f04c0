"""Evaluation commands: ``eval``, ``results``, ``demo-data``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from zoo.cli.taskoptions import TaskOptionsCommand
from zoo.errors import ZooError
from zoo.registry import lookup
from zoo.registry.tasks import Task
from zoo.report import render


def _fmt(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _metric_columns(result: dict[str, Any], task: Task | None) -> list[tuple[str, str]]:
    """(name, title) of the task's metrics the result measured; a zoo 0.1 task declares none: its
    numeric keys named like metrics are unknown, so only the declared ones are shown."""
    if task is None:
        return []
    # a metric the run could not measure (box AP of a mask-only model) is left out, not printed as "-"
    return [(m.name, m.title) for m in task.metrics if result.get(m.name) is not None]


def _pivot(parts: list[dict[str, Any]], primary: str) -> tuple[str, str, list[list[str]], list[str]] | None:
    """A two-level part table (e.g. ImageNet-C's corruption x severity): rows by the first option,
    columns by the second, cells the primary metric; None when the parts are not two-level."""
    keys = [list(part.get("options") or {}) for part in parts]
    if not keys or any(len(k) != 2 or k != keys[0] for k in keys):
        return None
    row_key, col_key = keys[0]
    by_row: dict[Any, dict[Any, Any]] = {}
    for part in parts:
        by_row.setdefault(part["options"][row_key], {})[part["options"][col_key]] = part.get(primary)
    columns = sorted({part["options"][col_key] for part in parts})
    rows = []
    for name, values in by_row.items():
        scores = [v for v in values.values() if v is not None]
        rows.append([str(name), *(_fmt(values.get(c)) for c in columns), _fmt(sum(scores) / len(scores) if scores else None)])
    return row_key, col_key, rows, [f"{col_key[:1]}{c}" for c in columns]


def _task_of(name: str) -> Task | None:
    try:
        return lookup.get_task(lookup.get_card(name).task)
    except ZooError:  # a result of a model whose card is gone: no metric columns
        return None


def summary_table(result: dict[str, Any], task: Task | None = None) -> str:
    """The final table of ``zoo eval``: the task's metrics, the paper's figure of its headline metric
    beside the measured one, and the run's size and speed. ``task``: default, the card's."""
    if task is None:
        task = _task_of(result["model"])
    columns = _metric_columns(result, task)
    primary = task.primary.name if task is not None and task.primary is not None else None
    head = next((title for name, title in columns if name == primary), primary or "")
    row = [result["model"], result["dataset"], *(_fmt(result.get(name)) for name, _ in columns),
           _fmt(result.get(f"reported_{primary}")), _fmt(result.get(f"delta_{primary}"), signed=True),
           str(result.get("images")), _fmt(result.get("throughput_img_s"), 1)]
    text = render.table([row], ["model", "dataset", *(title for _, title in columns), f"paper {head}".strip(), "delta",
                                "images", "img/s"], align="ll" + "r" * (len(columns) + 4))
    pivot = _pivot(result.get("parts") or [], primary or "")
    if pivot is not None:
        row_key, col_key, rows, titles = pivot
        text += "\n\n" + render.table(rows, [row_key, *titles, "mean"], align="l" + "r" * (len(titles) + 1))
        text += (f"\nmean {head} over {len(result['parts'])} {row_key} x {col_key} sets: "
                 f"{_fmt(result.get(primary))}")
    pre = result.get("preprocess") or {}
    if pre:
        text += (f"\n{pre.get('profile')}: {pre['input_size'][1]}x{pre['input_size'][2]}, crop_pct {pre['crop_pct']}, "
                 f"{pre['interpolation']}, {pre['crop_mode']}; {result.get('device')}, {result.get('precision')}, "
                 f"batch {result.get('batch_size')}")
    bad = result.get("bad_images") or []
    if bad:
        text += f"\nskipped {len(bad)} unreadable image(s), not scored: {', '.join(bad[:5])}" + (" ..." if len(bad) > 5 else "")
    return text


#: options of `zoo eval` itself; every other parameter is a task option (generated, see taskoptions)
_VALUE_OPTIONS = ("data_dir", "device", "batch_size", "workers", "threads", "amp", "limit", "checkpoint", "patch",
                  "save_predictions")
_FLAGS = {"compile": "--compile", "no_pretrained": "--no-pretrained", "skip_bad_images": "--skip-bad-images",
          "as_json": "--json"}
_OWN = {"name", "dataset", "suite", "nproc", "channels_last", *_VALUE_OPTIONS, *_FLAGS}


def _launch_args(params: dict[str, Any]) -> list[str]:
    """The ``zoo eval`` command line each torchrun worker runs (the same options, minus --nproc)."""
    args = ["eval", params["name"], "--dataset", params["dataset"]]
    for key in _VALUE_OPTIONS:
        if params.get(key) is not None:
            args += [f"--{key.replace('_', '-')}", str(params[key])]
    for key, value in _task_options(params).items():
        flag = key.replace("_", "-")
        args += ([f"--{flag}" if value else f"--no-{flag}"] if isinstance(value, bool) else [f"--{flag}", str(value)])
    args += [flag for key, flag in _FLAGS.items() if params.get(key)]
    args.append("--channels-last" if params.get("channels_last", True) else "--no-channels-last")
    return args


def _task_options(params: dict[str, Any]) -> dict[str, Any]:
    """The generated task options the user gave (None: not given)."""
    return {k: v for k, v in params.items() if k not in _OWN and v is not None}


@click.command("eval", cls=TaskOptionsCommand, short_help="Evaluate a model on a dataset; the paper's number beside it.")
@click.argument("name")
@click.option("--dataset", help="A dataset of the model's task (zoo plugins lists them): imagenet, "
              "imagenet-v2, imagenet-real, imagenet-sketch, imagenet-a, imagenet-r, imagenet-c, ..., or NAME:PATH "
              "(folder:PATH). Required unless --suite is given.")
@click.option("--suite", help="Instead of --dataset: the datasets of a paper's table, one row; each is looked for "
              "at ROOT/<dataset> under --data-dir ROOT. robustness: the ViT-LLaMA table, IN / IN-C / IN-A / IN-SK / "
              "IN-R top-1 (IN-C: mean over 15 corruptions x 5 severities, not mCE).")
@click.option("--data-dir", help="Where the dataset is (default: $ZOO_DATA_DIR/<dataset>).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--workers", type=int, help="Decoding processes (default: min(8, CPUs)).")
@click.option("--threads", type=int, help="CPU only: torch intra-op threads (default: torch's).")
@click.option("--amp", type=click.Choice(["bf16", "fp16", "none"]), is_flag=False, flag_value="bf16",
              help="Opt-in autocast precision (--amp alone: bf16). Default: fp32 on every device, as the papers "
                   "and timm's validate.py; zoo verify judges a paper's accuracy only with fp32 runs.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--compile", is_flag=True, help="torch.compile the model first.")
@click.option("--limit", type=int, help="Only the first N images, in the dataset's fixed order.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), help="Load this weights file.")
@click.option("--no-pretrained", is_flag=True, help="Random weights (smoke tests).")
@click.option("--patch", help="Model patch NAME[:k=v,...], e.g. tome:r=13.")
@click.option("--save-predictions", type=click.Path(dir_okay=False),
              help="Write each sample's predictions to this file, in the task's format.")
@click.option("--skip-bad-images", is_flag=True, help="Score without unreadable images (listed) instead of failing.")
@click.option("--nproc", type=int, help="Launch N processes with torchrun (one per GPU, or CPU shards).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def eval_command(name: str, dataset: str | None, suite: str | None, data_dir: str | None, device: str, batch_size: int, workers: int | None,
                 threads: int | None,
                 amp: str | None, channels_last: bool, compile: bool, limit: int | None, checkpoint: str | None,
                 no_pretrained: bool, patch: str | None, save_predictions: str | None,
                 skip_bad_images: bool, nproc: int | None, as_json: bool, **task_options: Any) -> None:
    """Evaluate NAME on a dataset: the task's metrics (top-1/top-5), the paper's figure and the difference.

    Options after --json are the installed tasks' own (the task each belongs to is in brackets);
    an option of another task than the model's is an error.

    The result is printed, then appended to results.jsonl in the zoo home (see `zoo results`); a
    results file that cannot be written is one warning line, and the exit code stays 0. Runs are
    fp32 unless --amp asks for autocast.

    \b
    Example:
      zoo eval fastervit-2 --dataset imagenet --data-dir /data/imagenet
      zoo eval efficientmod-xxs --dataset imagenet-c --corruption fog --severity 3 --json
      zoo eval efficientmod-xxs --dataset folder:./demo --no-pretrained --limit 32
      zoo eval fastervit-2 --dataset imagenet --nproc 8
      zoo eval --suite robustness vit-s-llama --data-dir /data --checkpoint vit_s_llama.pth
    """
    from zoo.errors import UserError, ZooError, first_line
    from zoo.eval import distributed, evaluation

    if suite is not None:
        _suite_command(suite, name, dataset, data_dir, nproc, save_predictions, as_json,
                       dict(pretrained=not no_pretrained, checkpoint=checkpoint, patch=patch, device=device,
                            batch_size=batch_size, workers=workers, threads=threads, amp=amp, limit=limit,
                            channels_last=channels_last, compile=compile, skip_bad_images=skip_bad_images,
                            **_task_options(task_options)))
        return
    if dataset is None:
        raise click.UsageError("Missing option '--dataset' (or --suite NAME).")

    kwargs = dict(data_dir=data_dir, patch=patch, device=device, batch_size=batch_size, workers=workers,
                  threads=threads, amp=amp, limit=limit, **_task_options(task_options))
    if nproc is not None and distributed.world_size() <= 1:
        # every user error is found here, before torchrun starts a worker (issue #10, item 11)
        plan = evaluation.preflight(name, dataset, nproc=nproc, pretrained=not no_pretrained, checkpoint=checkpoint,
                                    **kwargs)
        params = dict(click.get_current_context().params, name=plan.card.name)
        sys.exit(distributed.launch(nproc, _launch_args(params)))

    quiet = distributed.rank() != 0
    try:
        done = evaluation.run(name, dataset, pretrained=not no_pretrained, checkpoint=checkpoint,
                              channels_last=channels_last, compile=compile, skip_bad_images=skip_bad_images,
                              progress=False if as_json else None, save_predictions=save_predictions, **kwargs)
    except evaluation.BadImages as exc:
        if quiet:
            sys.exit(1)
        click.echo(json.dumps(exc.result, indent=2) if as_json else summary_table(exc.result, _task_of(name)))
        raise
    except ZooError as exc:
        if quiet:  # rank 0 reports it
            sys.exit(2 if isinstance(exc, UserError) else 1)
        raise
    if quiet:
        return
    # print first, then record: a full or read-only zoo home costs the record, never the result (item 5)
    result = done.output
    click.echo(json.dumps(result, indent=2) if as_json else summary_table(result, _task_of(name)))
    try:
        evaluation.record(done)
    except ZooError as exc:  # results.append: one ResultsWriteError for every OS failure
        click.echo(f"Warning: the result was not recorded: {first_line(exc)}", err=True)


def _suite_table(run: Any) -> str:
    """The suite's row as its paper prints it: measured, the paper's figure and the difference per
    column, then one line per column that could not be measured, and how the columns are computed."""
    titles = [cell.column.title for cell in run.cells]
    rows = [["measured", *(_fmt(cell.measured, 1) for cell in run.cells)],
            ["paper", *(_fmt(cell.reported, 1) for cell in run.cells)],
            ["delta", *(_fmt(cell.delta, 1, signed=True) for cell in run.cells)]]
    text = f"{run.suite.title}: {run.model}\n" + render.table(rows, [run.model, *titles], align="l" + "r" * len(titles))
    for cell in run.cells:
        if cell.error:
            text += f"\n{cell.column.title}: {cell.error}"
    if run.suite.note:
        text += f"\n{run.suite.note}"
    return text


def _suite_command(suite: str, name: str, dataset: str | None, data_dir: str | None, nproc: int | None,
                   save_predictions: str | None, as_json: bool, options: dict[str, Any]) -> None:
    """``zoo eval --suite``: every column's run recorded as a normal eval result, then the row."""
    from zoo.errors import UserError
    from zoo.eval import suites

    for given, flag in ((dataset, "--dataset"), (nproc, "--nproc"), (save_predictions, "--save-predictions")):
        if given is not None:
            raise UserError(f"--suite runs several datasets; {flag} cannot be combined with it")

    def progress(cell: Any) -> None:
        if not as_json:
            state = _fmt(cell.measured) if cell.measured is not None else cell.error
            click.echo(f"{cell.column.title} ({cell.column.dataset}): {state}", err=True)

    run = suites.run_suite(suite, name, data_dir=data_dir, progress=False if as_json else None, on_cell=progress,
                           **options)
    click.echo(json.dumps(run.as_dict(), indent=2) if as_json else _suite_table(run))
    for cell in run.cells:
        if cell.record_error:
            click.echo(f"Warning: the {cell.column.title} result was not recorded: {cell.record_error}", err=True)
    if all(cell.measured is None for cell in run.cells):
        raise UserError(f"--suite {run.suite.name}: no dataset could be evaluated under {suites.suite_root(data_dir)}")
    if any(cell.bad_images for cell in run.cells):  # as zoo eval: unreadable images are exit 1
        from zoo.errors import ZooError

        bad = ", ".join(cell.column.title for cell in run.cells if cell.bad_images)
        raise ZooError(f"--suite {run.suite.name}: {bad} stopped on unreadable images (see above; --skip-bad-images "
                       "scores the others)")
    unreadable = [cell.column.title for cell in run.cells if cell.error and not cell.missing]
    if unreadable:
        raise UserError(f"--suite {run.suite.name}: {', '.join(unreadable)} could not be evaluated (see above)")


@click.command("results", short_help="Show recorded evaluation runs.")
@click.option("--model", help="Only this model (any case; an unknown name is an error, with suggestions).")
@click.option("--dataset", help="Only this dataset (e.g. imagenet).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as a JSON list.")
def results_command(model: str | None, dataset: str | None, as_json: bool) -> None:
    """Show the runs recorded in results.jsonl (zoo home), oldest first.

    \b
    Example:
      zoo results --model efficientmod-xxs
      zoo results --dataset imagenet --json
    """
    from zoo import records as store
    from zoo.records import results

    records, skipped = store.read_results(model=model, dataset=dataset)
    if skipped:
        click.echo(results.skipped_note(skipped), err=True)
    if as_json:
        click.echo(json.dumps([r.flat() for r in records], indent=2))
        return
    columns: list[tuple[str, str]] = []
    for task_name in dict.fromkeys(r.task for r in records):  # each task's metrics, in the order first seen
        task = lookup.get_task(task_name)
        columns += [(m.name, m.title) for m in (task.metrics if task else ()) if (m.name, m.title) not in columns]
    click.echo(render.results_table(records, columns or [("top1", "top-1"), ("top5", "top-5")]))
    click.echo(f"{len(records)} run(s) in {results.results_path()}", err=True)


@click.command("demo-data", short_help="Write a small generated dataset of a task (no download).")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--task", "task_name", default="image-classification", show_default=True,
              help="The task whose demo data to write (its plugin's layout).")
@click.option("--images", "n_images", type=click.IntRange(1), help="How many images (default: the task's; 64 "
              "for image-classification).")
@click.option("--classes", "n_classes", type=click.IntRange(1, 1000), help="image-classification: class "
              "folders (default 8).")
@click.option("--seed", type=int, help="Random seed (default 0).")
def demo_data_command(directory: str, task_name: str, n_images: int | None, n_classes: int | None,
                      seed: int | None) -> None:
    """Write a small generated dataset for TASK under DIRECTORY, in the layout its datasets read.

    For image-classification: JPEGs in WordNet-id class folders, for `zoo eval --dataset folder:DIR`.

    \b
    Example:
      zoo demo-data /tmp/zoo-demo --images 32
      zoo eval efficientmod-xxs --dataset folder:/tmp/zoo-demo --no-pretrained
    """
    from zoo.eval import demo

    given = {k: v for k, v in (("n_images", n_images), ("n_classes", n_classes), ("seed", seed)) if v is not None}
    path = demo.make_demo_data(task_name, directory, **given)
    click.echo(f"wrote {task_name} demo data under {path}")
