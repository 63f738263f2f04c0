"""``zoo.evaluate(name, dataset, **options)`` (this module is ``zoo.evaluation``): the Python API under ``zoo eval``.

It resolves the card, the card's task hook (``zoo_tasks``) and the dataset adapter
(``zoo_datasets``), builds the model with :func:`zoo.api.create_model`, runs the hook, puts the
paper's number beside the measured one and appends the run to the results file. Every check
that depends only on the user's input (model, dataset, data directory, layout, task, limit)
runs before the model is built, so mistakes fail in a second with one line.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

from zoo import distributed
from zoo.errors import DataError, UnknownDataset, UserError, ZooError


class BadImages(ZooError):
    """Some images could not be decoded and ``skip_bad_images`` was not given (exit 1).

    ``result`` holds the run's summary, so the CLI can show it before the error.
    """

    def __init__(self, paths: list[str], result: dict[str, Any]) -> None:
        self.paths, self.result = paths, result
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        super().__init__(f"{len(paths)} unreadable image(s): {shown}; fix or remove them, or pass "
                         f"--skip-bad-images to score the other {result.get('images', 0)} (they are listed in the result)")


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


def _device_type(device: str | None) -> str:
    spec = (device or "auto").lower()
    if spec == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if spec.startswith("cuda") else "cpu"


def _versions() -> dict[str, str]:
    import torch

    from zoo import __version__

    return {"zoo": __version__, "torch": torch.__version__.split("+")[0]}


def _weights_sha256(card: Any, pretrained: bool, checkpoint: str | Path | None) -> str | None:
    if checkpoint is not None:
        from zoo.fetch import sha256_file

        return sha256_file(checkpoint)
    if pretrained:
        from zoo import weights

        return weights.ensure(card).entry.sha256 or None
    return None


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
    :param record: append the run to ``<zoo home>/results.jsonl`` (rank 0 only).
    :param options: for the task hook: ``device``, ``batch_size``, ``workers``, ``amp``,
        ``channels_last``, ``compile``, ``limit``, ``skip_bad_images``, ``progress``, ``predictions``.
    :returns: ``model``, ``dataset``, ``top1``, ``top5``, ``images``, ``throughput_img_s``,
        ``reported_top1``, ``delta_top1`` and the run's settings.
    :raises BadImages: when images could not be decoded and ``skip_bad_images`` is false.
    """
    from zoo import api, plugins

    card = api.get_card(name)
    limit = options.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise UserError(f"--limit: expected a number of images >= 0, got {limit!r}")
    tasks = api.hook_entries("zoo_tasks")
    if card.task not in tasks:
        raise UserError(f"model {name!r} has task {card.task!r} and no installed plugin evaluates that task "
                        f"(tasks with an eval hook: {', '.join(sorted(tasks)) or 'none'})")
    ds_name, _, ds_arg = dataset.partition(":")
    adapters = api.hook_entries("zoo_datasets")
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
        raise UserError(f"dataset {ds_name!r} is for {ds_task}; model {name!r} has task {card.task!r}")
    evalset = evalset.limited(limit)

    task_plugin, task_ref = tasks[card.task]
    task_fn = plugins.resolve(task_ref, task_plugin)
    started = distributed.init(_device_type(options.get("device")))
    try:
        model = api.create_model(name, pretrained=pretrained, checkpoint=checkpoint, patch=patch)
        metrics = task_fn(model, card, evalset, dict(options))
    finally:
        distributed.finish(started)

    label = f"folder:{root}" if ds_name == "folder" else ds_name
    whole = ds_name != "imagenet-c" or (str(corruption or "all") == "all" and str(severity or "all") == "all")
    reported = card.reported.top1(ds_name) if card.reported and whole and ds_name != "folder" else None
    top1 = metrics.get("top1")
    result: dict[str, Any] = {
        "model": name,
        "dataset": label,
        "top1": top1,
        "top5": metrics.get("top5"),
        "images": metrics.get("images"),
        "throughput_img_s": metrics.get("throughput_img_s"),
        "reported_top1": reported,
        "delta_top1": round(top1 - reported, 4) if top1 is not None and reported is not None else None,
        "reported_source": card.reported.source if reported is not None and card.reported else None,
        **{k: v for k, v in metrics.items() if k not in ("top1", "top5", "images", "throughput_img_s")},
        "data_dir": str(evalset.root),
        "limit": limit,
        "dataset_options": ds_options or None,
        "pretrained": pretrained and checkpoint is None,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "patch": patch,
        "skipped_bad_images": bool(options.get("skip_bad_images")),
        "rank": distributed.rank(),
    }
    bad = result.get("bad_images") or []
    if bad and not options.get("skip_bad_images"):
        raise BadImages(bad, result)
    if record and distributed.rank() == 0:
        from zoo import results

        entry = {k: v for k, v in result.items() if k not in ("predictions", "rank")}
        entry.update({
            "checkpoint_sha256": _weights_sha256(card, pretrained, checkpoint),
            "versions": _versions(),
            "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        })
        results.append(entry)
    return result

