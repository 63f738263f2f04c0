"""``zoo.evaluate(name, dataset, **options)`` (this module is ``zoo.eval.evaluation``): the Python API under ``zoo eval``.

Task-generic: the card's task (a :class:`zoo.registry.tasks.Task` from ``zoo_tasks``) names the
evaluate callable, the metrics, the task's own options and the protocol a run is recorded with;
the dataset adapter (``zoo_datasets``) scans the data. This module builds the model with
:func:`zoo.models.build.create_model`, runs the task's evaluate with the shared
:class:`~zoo.eval.runtime.Runtime`, puts the paper's figure beside each measured metric (only
when the run's protocol is the claim's) and appends a :class:`~zoo.records.result.Result`.

Every check that depends only on the user's input (model, options, dataset, data directory,
layout, task, patch syntax, device) is :func:`prepare`, run before the model is built, so mistakes
fail in a second with one line; ``zoo eval --nproc N`` runs it (and :func:`preflight`) in the
parent before torchrun starts any worker (issue #10, item 11).

Recording is a separate step (:func:`record`), so the CLI prints the result first: a results file
that cannot be written (read-only or full zoo home) costs a warning, never the evaluation (item 5).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import (
    DataError,
    PluginError,
    UnknownDataset,
    UnknownPatch,
    UserError,
    ZooError,
    first_line,
)
from zoo.eval import distributed
from zoo.eval.data import EvalData, check_data
from zoo.eval.runtime import FP32_NAMES, Runtime, _count, check_options, device_type, precision_of  # noqa: F401

if TYPE_CHECKING:
    from zoo.records.result import Result
    from zoo.registry.cards import Card
    from zoo.registry.tasks import Task

#: keys of a task's answer that are the run's own figures, not details
_RUN_KEYS = ("images", "throughput_img_s")


class BadImages(ZooError):
    """Some images could not be decoded and ``skip_bad_images`` was not given (exit 1).

    ``result`` holds the run's summary, so the CLI can show it before the error.
    """

    def __init__(self, paths: list[str], result: dict[str, Any]) -> None:
        self.paths, self.result = paths, result
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        super().__init__(f"{len(paths)} unreadable image(s): {shown}; fix or remove them, or pass "
                         f"--skip-bad-images to score the other {result.get('images', 0)} (they are listed in the result)")


# -- everything that can be checked before a model is built ---------------------------------------


def data_root(dataset: str, arg: str, data_dir: str | Path | None) -> Path:
    """``NAME:PATH`` -> PATH; else ``--data-dir``; else ``$ZOO_DATA_DIR/<dataset>``."""
    if arg:
        return Path(arg).expanduser()
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("ZOO_DATA_DIR")
    if env:
        return Path(env).expanduser() / dataset
    if dataset == "folder":
        raise UserError("dataset 'folder' needs a path: --dataset folder:PATH (or --data-dir PATH)")
    raise UserError(f"dataset {dataset!r} needs --data-dir DIR (or ZOO_DATA_DIR, read as $ZOO_DATA_DIR/{dataset})")


def check_patch(spec: str | None) -> None:
    """``NAME:k=v,...`` parses, NAME is a registered patch, and the patch takes those options."""
    if not spec:
        return
    from zoo.models import build
    from zoo.registry import lookup, plugins

    patch_name, patch_options = build.parse_patch(spec)
    patches = lookup.hook_entries("zoo_patches")
    if patch_name not in patches:
        raise UnknownPatch(patch_name, patches)
    plugin, ref = patches[patch_name]
    build._check_patch_options(plugins.resolve(ref, plugin), patch_name, plugin, None, patch_options)


def is_bare(task: Task) -> bool:
    """A zoo 0.1 task: a bare evaluate reference, called as ``fn(model, card, dataset, options_dict)``."""
    return not task.metrics and task.options is None and not task.protocol


def dataset_option_names(task: Task) -> set[str]:
    """The task options handed to the dataset adapter: fields with ``metadata={"dataset": True}``
    (they choose what is scanned, e.g. ImageNet-C's corruption and severity)."""
    return {f.name for f in task.option_fields() if f.metadata.get("dataset")}


def split_options(task: Task, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` as (runtime options, task options); anything else is a one-line UserError naming it.

    ``None`` means "not given" and is dropped. An option of another installed task is refused
    with the task it belongs to, so ``--corruption`` on a detector says why.
    """
    runtime_names = Runtime.names()
    task_names = {f.name for f in task.option_fields()}
    runtime_opts: dict[str, Any] = {}
    task_opts: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key in runtime_names:
            runtime_opts[key] = value
        elif key in task_names:
            task_opts[key] = value
        else:
            raise UserError(_unknown_option(key, task, runtime_names | task_names))
    return runtime_opts, task_opts


def _unknown_option(key: str, task: Task, valid: set[str]) -> str:
    from zoo.registry import lookup

    owners = sorted(name for name, (_plugin, other) in lookup.tasks().items()
                    if other is not task and key in {f.name for f in other.option_fields()})
    flag = f"--{key.replace('_', '-')}"
    where = f" (it is an option of {', '.join(owners)})" if owners else ""
    return (f"option {flag} does not apply to task {task.name!r}{where}; valid options: "
            f"{', '.join(sorted(valid))}")


@dataclass
class Plan:
    """A checked evaluation: the card, its task, the scanned dataset, the options split, the device type."""

    card: Card
    dataset: str  #: the registered dataset name ("imagenet", "folder", ...)
    label: str  #: as recorded: the name, or ``folder:PATH``
    evalset: EvalData
    task: Callable[..., dict[str, Any]]  #: the task's evaluate callable
    device: str  #: "cpu" or "cuda"
    limit: int | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    spec: Task | None = None  #: the task spec (zoo_tasks)
    plugin: str = ""  #: the plugin that declares the task
    runtime: Runtime = field(default_factory=Runtime)
    task_options: Any = None  #: an instance of the task's options dataclass (None: it has none)
    runtime_options: dict[str, Any] = field(default_factory=dict)  #: as given (a zoo 0.1 hook gets these)
    protocol: dict[str, Any] = field(default_factory=dict)  #: what this run measures under (task-defined)

    @property
    def bare(self) -> bool:
        return self.spec is None or is_bare(self.spec)


def _protocol(task: Task, plugin: str, card: Card, dataset: str, options: Any) -> dict[str, Any]:
    """The task's protocol for (card, dataset, options), as plain JSON data; ``{}`` when it declares none."""
    if not task.protocol:
        return {}
    from zoo.registry import plugins

    fn = plugins.resolve(task.protocol, plugin)
    try:
        value = fn(card, dataset, options)
    except ValueError as exc:
        raise UserError(first_line(exc)) from None
    except ZooError:
        raise
    except Exception as exc:
        raise PluginError(plugin, f"protocol of task {task.name!r} failed: {first_line(exc)}") from exc
    if not isinstance(value, Mapping):
        raise PluginError(plugin, f"protocol of task {task.name!r} returned {type(value).__name__}, not a dict")
    try:
        return json.loads(json.dumps(dict(value), sort_keys=True))  # tuples -> lists: equal to what is read back
    except (TypeError, ValueError) as exc:
        raise PluginError(plugin, f"protocol of task {task.name!r} is not JSON data: {exc}") from None


def prepare(
    name: str,
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    patch: str | None = None,
    **options: Any,
) -> Plan:
    """Every check of :func:`evaluate` that needs no model: the card, its task, the options (runtime
    and task), the dataset, its directory and layout, the protocol, the patch syntax and the device."""
    from zoo.registry import lookup, plugins

    card = lookup.get_card(name)
    card.require_code()
    tasks = lookup.tasks()
    if card.task not in tasks:
        raise UserError(f"model {card.name!r} has task {card.task!r} and no installed plugin evaluates that task "
                        f"(tasks with an eval hook: {', '.join(sorted(tasks)) or 'none'})")
    task_plugin, task = tasks[card.task]
    runtime_opts, task_opts = split_options(task, options)
    runtime = Runtime.from_options(runtime_opts)
    device = device_type(runtime.device)
    try:
        task_options = task.make_options(task_opts) if not is_bare(task) else None
    except (ValueError, TypeError) as exc:
        raise UserError(first_line(exc)) from None
    check_patch(patch)
    if not isinstance(dataset, str) or not dataset.strip():
        raise UserError(f"--dataset: expected a dataset name, got {dataset!r}")
    ds_name, _, ds_arg = dataset.partition(":")
    adapters = lookup.hook_entries("zoo_datasets")
    if ds_name not in adapters and ds_name.lower() in adapters:  # names are canonical: ImageNet -> imagenet
        ds_name = ds_name.lower()
    if ds_name not in adapters:
        raise UnknownDataset(dataset, [*adapters, "folder:PATH"])
    owners = sorted(name for name, (_p, other) in tasks.items() if ds_name in other.datasets)
    if owners and card.task not in owners:  # another task's dataset: say so before scanning it
        raise UserError(f"dataset {ds_name!r} is for {', '.join(owners)}; model {card.name!r} has task {card.task!r}")
    protocol = _protocol(task, task_plugin, card, ds_name, task_options)
    root = data_root(ds_name, ds_arg, data_dir)
    ds_options = {k: v for k, v in task_opts.items() if k in dataset_option_names(task)}  # as given
    plugin, ref = adapters[ds_name]
    scanned = plugins.resolve(ref, plugin)(root, **ds_options)
    try:
        evalset = check_data(scanned, ds_name)
    except TypeError as exc:
        raise PluginError(plugin, str(exc)) from None
    if not getattr(evalset, "parts", None) and len(evalset) == 0:
        raise DataError(f"{dataset}: no images found in {root}")
    ds_task = getattr(evalset, "task", None)
    if ds_task is not None and ds_task != card.task:
        raise UserError(f"dataset {ds_name!r} is for {ds_task}; model {card.name!r} has task {card.task!r}")
    if ds_task is None and task.datasets and ds_name not in task.datasets:
        raise UserError(f"dataset {ds_name!r} is not one task {card.task!r} evaluates on "
                        f"({', '.join(task.datasets)})")
    limit = runtime.limit
    label = getattr(evalset, "label", None) or ds_name
    return Plan(card=card, dataset=ds_name, label=str(label), evalset=evalset.limited(limit),
                task=plugins.resolve(task.evaluate, task_plugin), device=device, limit=limit,
                dataset_options=ds_options, spec=task, plugin=task_plugin, runtime=runtime,
                task_options=task_options, runtime_options=runtime_opts, protocol=protocol)


def preflight(name: str, dataset: str, *, nproc: int, pretrained: bool = True,
              checkpoint: str | Path | None = None, **kwargs: Any) -> Plan:
    """What ``zoo eval --nproc N`` checks before torchrun starts a worker: :func:`prepare`, the
    process count for the device, the card's builder, and the weights (fetched once, here)."""
    from zoo.models import build

    _count({"nproc": nproc}, "nproc", 1, "a number of processes")
    plan = prepare(name, dataset, **kwargs)
    if plan.device == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        spec = str(kwargs.get("device") or "auto").strip().lower()
        if nproc > 1 and ":" in spec:  # every rank would take the same GPU (NCCL refuses duplicates)
            raise UserError(f"--device {spec} pins one GPU; with --nproc {nproc} use --device cuda "
                            "(rank r takes the r-th GPU; choose them with CUDA_VISIBLE_DEVICES)")
        if nproc > gpus:
            raise UserError(f"--nproc {nproc}: this machine has {gpus} CUDA device(s), one per process "
                            f"(use --nproc {gpus} or fewer, or --device cpu)")
    else:
        cores = os.cpu_count() or 1
        if nproc > cores:
            raise UserError(f"--nproc {nproc}: more processes than the {cores} CPU cores of this machine")
    build.get_builder(plan.card)  # the plugin is installed and has the builder
    if pretrained and checkpoint is None:
        from zoo import weights

        weights.ensure(plan.card)  # one download here, not one attempt per rank
    return plan


# -- the run -------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import torch

    from zoo import __version__

    return {"zoo": __version__, "torch": torch.__version__.split("+")[0]}


@dataclass
class Evaluation:
    """One finished run: ``output`` is what ``zoo eval`` prints (and :func:`evaluate` returns),
    ``result`` the record appended to the results file."""

    output: dict[str, Any]
    result: Result


def claims(plan: Plan, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The card's figures for this run's metrics on this dataset, ``{metric: figure}``: only when the
    run's protocol is the claim's (the task's protocol for the card and dataset, options at their
    defaults), so a ``--corruption fog`` run is not set beside the averaged ImageNet-C figure."""
    card, task = plan.card, plan.spec
    if card.reported is None or plan.label != plan.dataset or task is None:
        return {}
    table = None  # the run's protocol picks the figures: the top-level ones, or a claim_options table's
    for name, options in task.claim_options.items():
        if plan.protocol == _protocol(task, plan.plugin, card, plan.dataset, task.make_options(options)):
            table = name
            break
    if table is None and plan.protocol != _protocol(task, plan.plugin, card, plan.dataset, None):
        return {}
    prefix = f"{plan.dataset}.{table}." if table else f"{plan.dataset}."
    figures = {metric: value for claim, ds, metric, value in card.reported.figures()
               if ds == plan.dataset and claim == f"{prefix}{metric}"}
    if not figures:
        return {}
    names = [m.name for m in task.metrics] or [k for k in figures if k in metrics]
    return {name: figures[name] for name in names if name in figures}


def _metric_names(plan: Plan, metrics: Mapping[str, Any]) -> list[str]:
    if plan.spec is not None and plan.spec.metrics:
        return [m.name for m in plan.spec.metrics]
    number = (int, float)
    return [k for k, v in metrics.items()
            if k not in _RUN_KEYS and isinstance(v, number) and not isinstance(v, bool)]


def _primary(plan: Plan, names: list[str]) -> str | None:
    if plan.spec is not None and plan.spec.primary is not None:
        return plan.spec.primary.name
    return "top1" if "top1" in names else None  # a zoo 0.1 classification hook


def _output(plan: Plan, metrics: Mapping[str, Any], *, pretrained: bool, checkpoint: str | Path | None,
            patch: str | None) -> dict[str, Any]:
    """The printed result: model, dataset, each metric, images, img/s, ``reported_<m>``/``delta_<m>``,
    the source, then the task's other keys and the run's settings (the shape zoo 0.1 printed)."""
    from zoo.weights import provenance

    card = plan.card
    names = _metric_names(plan, metrics)
    primary = _primary(plan, names)
    figures = claims(plan, metrics)
    out: dict[str, Any] = {"model": card.name, "dataset": plan.label}
    out.update({name: metrics.get(name) for name in names})
    out.update({key: metrics.get(key) for key in _RUN_KEYS})
    for name in names:
        if name != primary and name not in figures:
            continue  # the primary metric's columns always; the others when the card has a figure
        figure, value = figures.get(name), metrics.get(name)
        out[f"reported_{name}"] = figure
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        out[f"delta_{name}"] = round(value - figure, 4) if number and figure is not None else None
    out["reported_source"] = card.reported.source if figures and card.reported else None
    out.update({k: v for k, v in metrics.items() if k not in out})
    out.update({
        "data_dir": str(plan.evalset.root),
        "limit": plan.limit,
        "dataset_options": plan.dataset_options or None,
        "pretrained": pretrained and checkpoint is None,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        # where the weights came from, judged by `zoo verify` (issue #10, item 2); hashed on rank 0 only
        "weights": (provenance(card, pretrained=pretrained, checkpoint=checkpoint)
                    if distributed.rank() == 0 else None),
        "patch": patch,
        "skipped_bad_images": bool(plan.runtime.skip_bad_images),
        "rank": distributed.rank(),
    })
    return out


#: printed keys that are Result fields (or derived from the card), not details
_NOT_DETAILS = {"model", "dataset", "images", "throughput_img_s", "reported_source", "limit", "pretrained",
                "checkpoint", "weights", "patch", "skipped_bad_images", "rank", "predictions", "precision",
                "device"}


def to_result(plan: Plan, output: Mapping[str, Any], names: list[str] | None = None) -> Result:
    """The record of a run: the task's metrics by name (``names``: those of the task's answer), the
    protocol, provenance; the rest in ``details``."""
    from zoo.records.result import Result

    names = names if names is not None else _metric_names(plan, output)
    metrics = {name: output.get(name) for name in names}
    # reported_<m>/delta_<m> stay in details: the paper's figure as this run was set beside it (zoo results)
    details = {k: v for k, v in output.items() if k not in _NOT_DETAILS and k not in metrics}
    return Result(
        model=plan.card.name, dataset=plan.label, task=plan.card.task, kind="eval", protocol=dict(plan.protocol),
        precision=str(output.get("precision") or precision_of(plan.runtime.amp, plan.device)),
        metrics=metrics, weights=output.get("weights"), images=output.get("images"),
        throughput_img_s=output.get("throughput_img_s"), limit=plan.limit, patch=output.get("patch"),
        pretrained=output.get("pretrained"), checkpoint=output.get("checkpoint"),
        skipped_bad_images=bool(output.get("skipped_bad_images")),
        device=str(output["device"]) if output.get("device") is not None else None,
        time=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), versions=_versions(), details=details,
    )


def record(result: Result | Evaluation | Mapping[str, Any]) -> Path | None:
    """Append ``result`` to the results file (rank 0 only) with :func:`zoo.records.results.append`.

    Takes the :class:`Result` (or the :class:`Evaluation` holding it). Returns the file, or None on
    other ranks. Raises :class:`zoo.records.results.ResultsWriteError` when the line cannot be
    written completely (nothing is left half-written).
    """
    if distributed.rank() != 0:
        return None
    from zoo.records import results

    if isinstance(result, Evaluation):
        result = result.result
    elif isinstance(result, Mapping):  # a zoo 0.1 caller's dict: as it was recorded then
        entry = {k: v for k, v in result.items() if k not in ("predictions", "rank")}
        entry.update({"versions": _versions(), "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")})
        return results.append(entry)
    return results.append(result)


def _prediction_writer(plan: Plan) -> Callable[..., Any]:
    """The task's ``write_predictions`` callable; a UserError when the task has none."""
    from zoo.registry import plugins

    if plan.spec is None or not plan.spec.write_predictions:
        raise UserError(f"--save-predictions: task {plan.card.task!r} does not write predictions")
    return plugins.resolve(plan.spec.write_predictions, plan.plugin)


def run(
    name: str,
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    pretrained: bool = True,
    checkpoint: str | Path | None = None,
    patch: str | None = None,
    save_predictions: str | Path | None = None,
    **options: Any,
) -> Evaluation:
    """Evaluate without recording: the printed output and the :class:`Result` (see :func:`evaluate`)."""
    from zoo.models import build

    plan = prepare(name, dataset, data_dir=data_dir, patch=patch, **options)
    card = plan.card
    writer = _prediction_writer(plan) if save_predictions is not None else None
    if writer is not None:
        plan.runtime.predictions = True
        plan.runtime_options["predictions"] = True
    started = distributed.init(plan.device)
    try:
        model = build.create_model(card.name, pretrained=pretrained, checkpoint=checkpoint, patch=patch)
        if plan.bare:  # zoo 0.1: fn(model, card, dataset, options_dict)
            metrics = plan.task(model, card, plan.evalset, dict(plan.runtime_options))
        else:
            metrics = plan.task(model, card, plan.evalset, plan.task_options, plan.runtime)
    finally:
        distributed.finish(started)
    if not isinstance(metrics, Mapping):
        raise PluginError(plan.plugin, f"evaluate of task {card.task!r} returned {type(metrics).__name__}, "
                                       "not a dict of metrics")
    if writer is not None and distributed.rank() == 0:
        metrics = dict(metrics)
        try:
            written = writer(metrics.pop("predictions", {}), Path(save_predictions))  # type: ignore[arg-type]
        except OSError as exc:
            raise UserError(f"--save-predictions {save_predictions}: {exc.strerror or exc}") from None
        metrics["predictions_file"] = str(written)
    output = _output(plan, metrics, pretrained=pretrained, checkpoint=checkpoint, patch=patch)
    bad = output.get("bad_images") or []
    if bad and not plan.runtime.skip_bad_images:
        raise BadImages(bad, output)
    result = to_result(plan, output, _metric_names(plan, metrics)) if distributed.rank() == 0 else None
    return Evaluation(output=output, result=result)  # type: ignore[arg-type]


def evaluate(
    name: str,
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    pretrained: bool = True,
    checkpoint: str | Path | None = None,
    patch: str | None = None,
    record: bool = True,
    save_predictions: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate model ``name`` on ``dataset``; return the result (also appended to the results file).

    :param dataset: a registered dataset of the card's task (``imagenet``, ``imagenet-c``, ...), or
        ``NAME:PATH`` (``folder:PATH``) for data at PATH.
    :param data_dir: where the data is; default ``$ZOO_DATA_DIR/<dataset>``.
    :param pretrained: load the card's weights (``False``: random init, for smoke tests).
    :param checkpoint: a local weights file instead of the card's.
    :param patch: a model patch, ``"NAME:k=v,..."`` (e.g. ``tome:r=13``).
    :param record: append the run to ``<zoo home>/results.jsonl`` (rank 0 only) with
        :func:`record`; a failed append is a :class:`RuntimeWarning`, not an error: the
        evaluation itself succeeded.
    :param save_predictions: write each sample's predictions to this file with the task's
        ``write_predictions`` (classification: JSON lines of top-5 class indices).
    :param options: the shared runtime's (:class:`~zoo.eval.runtime.Runtime`: ``device``,
        ``batch_size``, ``workers``, ``threads``, ``amp`` (default fp32), ``channels_last``,
        ``compile``, ``limit``, ``skip_bad_images``, ``progress``, ``predictions``) and the task's
        own (its options dataclass, e.g. classification's ``corruption`` and ``severity`` for
        ImageNet-C). Any other name is a :class:`~zoo.errors.UserError` naming it.
    :returns: ``model`` (the card's name), ``dataset``, each of the task's metrics (``top1``,
        ``top5``), ``images``, ``throughput_img_s``, ``reported_<metric>`` and ``delta_<metric>``
        (the primary metric always, the others when the card has a figure), ``reported_source``,
        ``weights`` (origin, sha256, source) and the run's settings (``precision``, ...).
    :raises BadImages: when images could not be decoded and ``skip_bad_images`` is false.
    """
    done = run(name, dataset, data_dir=data_dir, pretrained=pretrained, checkpoint=checkpoint, patch=patch,
               save_predictions=save_predictions, **options)
    if record:
        try:
            _append_run(done)
        except ZooError as exc:  # results.append: one ResultsWriteError for every OS failure
            warnings.warn(f"the result was not recorded: {first_line(exc)}", RuntimeWarning, stacklevel=2)
    return done.output


_append_run = record  # evaluate()'s ``record`` flag shadows the name
