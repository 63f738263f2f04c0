"""``zoo.evaluate(name, dataset, **options)`` (this module is ``zoo.eval.evaluation``): the Python API under ``zoo eval``.

It resolves the card, the card's task hook (``zoo_tasks``) and the dataset adapter
(``zoo_datasets``), builds the model with :func:`zoo.build.create_model`, runs the hook, puts the
paper's number beside the measured one and appends the run to the results file.

Every check that depends only on the user's input (model, options, dataset, data directory,
layout, task, patch syntax, device) is :func:`prepare`, run before the model is built, so mistakes
fail in a second with one line; ``zoo eval --nproc N`` runs it (and :func:`preflight`) in the
parent before torchrun starts any worker (issue #10, item 11).

Recording is a separate step (:func:`record`), so the CLI prints the result first: a results file
that cannot be written (read-only or full zoo home) costs a warning, never the evaluation (item 5).
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import DataError, UnknownDataset, UnknownModel, UnknownPatch, UserError, ZooError, first_line
from zoo.eval import distributed
from zoo.eval.runtime import FP32_NAMES, _count, check_options, device_type, precision_of  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from zoo.registry.cards import Card
    from zoo.tasks.classification.data.datasets import EvalSet


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
    """``folder:PATH`` -> PATH; else ``--data-dir``; else ``$ZOO_DATA_DIR/<dataset>``."""
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


@dataclass
class Plan:
    """A checked evaluation: the card, the scanned dataset, the task hook, the device type."""

    card: Card
    dataset: str  #: the registered dataset name ("imagenet", "folder", ...)
    label: str  #: as recorded: the name, or ``folder:PATH``
    evalset: EvalSet
    task: Callable[..., dict[str, Any]]
    device: str  #: "cpu" or "cuda"
    limit: int | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)


def prepare(
    name: str,
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    patch: str | None = None,
    corruption: str | None = None,
    severity: str | int | None = None,
    **options: Any,
) -> Plan:
    """Every check of :func:`evaluate` that needs no model: the card, the options, the task hook,
    the dataset, its directory and layout, the patch syntax and the device."""
    from zoo.registry import lookup, plugins

    card = lookup.get_card(name)
    device = check_options(options)
    tasks = lookup.tasks()
    if card.task not in tasks:
        raise UserError(f"model {card.name!r} has task {card.task!r} and no installed plugin evaluates that task "
                        f"(tasks with an eval hook: {', '.join(sorted(tasks)) or 'none'})")
    check_patch(patch)
    ds_name, _, ds_arg = dataset.partition(":")
    adapters = lookup.hook_entries("zoo_datasets")
    if ds_name not in adapters and ds_name.lower() in adapters:  # names are canonical: ImageNet -> imagenet
        ds_name = ds_name.lower()
    if ds_name not in adapters:
        raise UnknownDataset(dataset, [*adapters, "folder:PATH"])
    if ds_arg and ds_name != "folder":
        raise UserError(f"dataset {dataset!r}: only folder takes a path after ':'; use --data-dir for {ds_name}")
    root = data_root(ds_name, ds_arg, data_dir)
    ds_options = {k: v for k, v in (("corruption", corruption), ("severity", severity)) if v is not None}
    if ds_options and ds_name != "imagenet-c":
        raise UserError(f"--corruption/--severity apply to imagenet-c, not {ds_name}")
    plugin, ref = adapters[ds_name]
    evalset = plugins.resolve(ref, plugin)(root, **ds_options)
    if not evalset.parts and len(evalset) == 0:
        raise DataError(f"{dataset}: no images found in {root}")
    ds_task = getattr(evalset, "task", card.task)
    if ds_task != card.task:
        raise UserError(f"dataset {ds_name!r} is for {ds_task}; model {card.name!r} has task {card.task!r}")
    limit = options.get("limit")
    task_plugin, task_ref = tasks[card.task]
    return Plan(card=card, dataset=ds_name, label=f"folder:{root}" if ds_name == "folder" else ds_name,
                evalset=evalset.limited(limit), task=plugins.resolve(task_ref.evaluate, task_plugin), device=device,
                limit=limit, dataset_options=ds_options)


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


def record(result: Mapping[str, Any]) -> Path | None:
    """Append ``result`` to the results file, with the versions and the time; rank 0 only.

    Returns the file, or None on other ranks. Raises :class:`zoo.records.results.ResultsWriteError` when
    the line cannot be written completely (nothing is left half-written).
    """
    if distributed.rank() != 0:
        return None
    from zoo.records import results

    entry = {k: v for k, v in result.items() if k not in ("predictions", "rank")}
    entry.update({"versions": _versions(), "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")})
    return results.append(entry)


_append_run = record  # evaluate()'s ``record`` flag shadows the name


def evaluate(
    name: str,
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    pretrained: bool = True,
    checkpoint: str | Path | None = None,
    patch: str | None = None,
    corruption: str | None = None,
    severity: str | int | None = None,
    record: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate model ``name`` on ``dataset``; return the result (also appended to the results file).

    :param dataset: a registered dataset (``imagenet``, ``imagenet-v2``, ``imagenet-real``,
        ``imagenet-sketch``, ``imagenet-a``, ``imagenet-r``, ``imagenet-c``) or ``folder:PATH``.
    :param data_dir: where the data is; default ``$ZOO_DATA_DIR/<dataset>``.
    :param pretrained: load the card's weights (``False``: random init, for smoke tests).
    :param checkpoint: a local weights file instead of the card's.
    :param patch: a model patch, ``"NAME:k=v,..."`` (e.g. ``tome:r=13``).
    :param corruption: ImageNet-C only: a corruption name, comma list or ``all``.
    :param severity: ImageNet-C only: 1-5, comma list or ``all``.
    :param record: append the run to ``<zoo home>/results.jsonl`` (rank 0 only) with
        :func:`record`; a failed append is a :class:`RuntimeWarning`, not an error: the
        evaluation itself succeeded.
    :param options: for the task hook: ``device``, ``batch_size``, ``workers``, ``threads``,
        ``amp`` (default fp32), ``channels_last``, ``compile``, ``limit``, ``skip_bad_images``,
        ``progress``, ``predictions``.
    :returns: ``model`` (the card's name), ``dataset``, ``top1``, ``top5``, ``images``,
        ``throughput_img_s``, ``reported_top1``, ``delta_top1``, ``weights`` (origin, sha256,
        source) and the run's settings (``precision``, ``preprocess``, ...).
    :raises BadImages: when images could not be decoded and ``skip_bad_images`` is false.
    """
    from zoo.models import build
    from zoo.weights import provenance

    plan = prepare(name, dataset, data_dir=data_dir, patch=patch, corruption=corruption, severity=severity,
                   **options)
    card = plan.card
    started = distributed.init(plan.device)
    try:
        model = build.create_model(card.name, pretrained=pretrained, checkpoint=checkpoint, patch=patch)
        metrics = plan.task(model, card, plan.evalset, dict(options))
    finally:
        distributed.finish(started)

    ds_options = plan.dataset_options
    whole = plan.dataset != "imagenet-c" or (str(corruption or "all") == "all" and str(severity or "all") == "all")
    reported = card.reported.top1(plan.dataset) if card.reported and whole and plan.dataset != "folder" else None
    top1 = metrics.get("top1")
    result: dict[str, Any] = {
        "model": card.name,
        "dataset": plan.label,
        "top1": top1,
        "top5": metrics.get("top5"),
        "images": metrics.get("images"),
        "throughput_img_s": metrics.get("throughput_img_s"),
        "reported_top1": reported,
        "delta_top1": round(top1 - reported, 4) if top1 is not None and reported is not None else None,
        "reported_source": card.reported.source if reported is not None and card.reported else None,
        **{k: v for k, v in metrics.items() if k not in ("top1", "top5", "images", "throughput_img_s")},
        "data_dir": str(plan.evalset.root),
        "limit": plan.limit,
        "dataset_options": ds_options or None,
        "pretrained": pretrained and checkpoint is None,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        # where the weights came from, judged by `zoo verify` (issue #10, item 2); hashed on rank 0 only
        "weights": (provenance(card, pretrained=pretrained, checkpoint=checkpoint)
                    if distributed.rank() == 0 else None),
        "patch": patch,
        "skipped_bad_images": bool(options.get("skip_bad_images")),
        "rank": distributed.rank(),
    }
    bad = result.get("bad_images") or []
    if bad and not options.get("skip_bad_images"):
        raise BadImages(bad, result)
    if record:
        try:
            _append_run(result)
        except ZooError as exc:  # results.append: one ResultsWriteError for every OS failure
            warnings.warn(f"the result was not recorded: {first_line(exc)}", RuntimeWarning, stacklevel=2)
    return result


# -- reading the results back ---------------------------------------------------------------------

def canonical_model(name: str, recorded: list[str] | None = None) -> str:
    """The card's name for ``name`` (``EfficientMod-XXS`` -> ``efficientmod-xxs``).

    A name with no card (its plugin was removed) is still accepted when runs were recorded under
    it, case-insensitively; anything else is an unknown model, with close names suggested.
    """
    from zoo.registry import lookup

    try:
        return lookup.get_card(name).name
    except UnknownModel:
        known = {m.lower(): m for m in recorded or []}
        if name.lower() in known:
            return known[name.lower()]
        raise UnknownModel(name, [*lookup.list_models(), *known.values()]) from None


def read_results(model: str | None = None, dataset: str | None = None,
                 path: str | Path | None = None) -> tuple[list[dict[str, Any]], int]:
    """The recorded runs, oldest first, filtered by model (canonicalised, see
    :func:`canonical_model`) and exact dataset, and how many lines :func:`zoo.records.results.scan` (the
    one reader) skipped as unreadable: not JSON, not an object, or wrongly typed."""
    from zoo.records import results

    good, skipped = results.scan(Path(path) if path is not None else None)
    if model is not None:
        wanted = canonical_model(model, [r["model"] for r in good]).lower()
        good = [r for r in good if r["model"].lower() == wanted]
    if dataset is not None:
        good = [r for r in good if r["dataset"] == dataset]
    return good, skipped
