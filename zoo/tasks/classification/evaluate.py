"""The image-classification eval hook: top-1/top-5 of a model on an :class:`~zoo.tasks.classification.data.EvalSet`.

Registered by the core through ``zoo_tasks`` as ``image-classification``. Called as
``evaluate(model, card, dataset, options, runtime)`` (options: :class:`ClassificationOptions`, which
already chose the ImageNet-C parts when the dataset was scanned; runtime: the shared
:class:`~zoo.eval.runtime.Runtime`); returns a dict of metrics. It does what timm's
``validate.py`` does (same transforms, ``inference_mode``, ``topk``, no dropped last batch) with
three differences: unreadable images are reported instead of replaced by the next one, batches
travel as uint8 and are normalised on the device, and under ``torch.distributed`` each rank takes
a strided shard and the counts are summed (no sampler padding, so nothing is counted twice).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from zoo.errors import DataError
from zoo.eval import distributed
from zoo.eval.runtime import Progress, Runtime, resolve_device, resolve_precision  # noqa: F401 (re-exported)
from zoo.tasks.classification.data.loader import ImageDataset, make_loader, shard
from zoo.tasks.classification.data.transforms import EvalPreprocess, EvalTransform, normalize, stats

if TYPE_CHECKING:
    from torch import nn

    from zoo.registry.cards import Card
    from zoo.tasks.classification.data.datasets import EvalSet
    from zoo.tasks.classification.task import ClassificationOptions


def _score(evalset: EvalSet, model: nn.Module, pre: EvalPreprocess, opts: Runtime, device: torch.device,
           rank: int, world: int) -> dict[str, Any]:
    indices = shard(len(evalset), rank, world)
    dataset = ImageDataset(evalset.samples, EvalTransform(pre), indices)
    loader = make_loader(dataset, opts.batch_size, opts.num_workers(), pin_memory=device.type == "cuda")
    mean, std = stats(pre, device)
    subset = None if evalset.logit_indices is None else torch.tensor(evalset.logit_indices, device=device)
    multi = evalset.multi_labels
    autocast = opts.autocast(device)
    counts = torch.zeros(4, dtype=torch.float64, device=device)  # top1 hits, top5 hits, scored, decoded
    bad: list[int] = []
    preds: dict[int, list[int]] = {}
    threads_before = torch.get_num_threads()
    if device.type == "cpu" and opts.threads:  # on a loaded machine fewer threads can be much faster
        torch.set_num_threads(opts.threads)
    progress = Progress(evalset.name, len(evalset), opts.show_progress() and rank == 0)
    start = time.perf_counter()
    with torch.inference_mode():
        for images, labels, index, ok in loader:
            images = images.to(device, non_blocking=True)
            if opts.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast:
                logits = model(normalize(images, mean, std))
            logits = logits.float()
            if subset is not None:
                logits = logits.index_select(1, subset)
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            if multi is None:
                labels, ok_dev = labels.to(device, non_blocking=True), ok.to(device, non_blocking=True)
                hits = top == labels[:, None]
                counts[0] += (hits[:, 0] & ok_dev).sum()
                counts[1] += (hits.any(1) & ok_dev).sum()
                counts[2] += ok_dev.sum()
            else:  # ReaL: correct if in the image's label set; images without labels are not scored
                top_cpu = top.cpu().tolist()
                for row, i, good in zip(top_cpu, index.tolist(), ok.tolist(), strict=True):
                    real = set(multi[i])
                    if good and real:
                        counts[0] += row[0] in real
                        counts[1] += any(p in real for p in row)
                        counts[2] += 1
            counts[3] += len(index)
            if not bool(ok.all()):
                bad.extend(index[~ok].tolist())
            if opts.predictions:
                preds.update(zip(index.tolist(), top.cpu().tolist(), strict=True))
            progress.update(len(index))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    torch.set_num_threads(threads_before)
    progress.close()
    counts = distributed.all_sum(counts)
    elapsed = distributed.all_max(elapsed)
    bad = sorted(distributed.all_gather(bad))
    hit1, hit5, scored, decoded = (int(v) for v in counts.tolist())
    out: dict[str, Any] = {
        "top1": round(100.0 * hit1 / scored, 4) if scored else None,
        "top5": round(100.0 * hit5 / scored, 4) if scored else None,
        "images": scored,
        "decoded": decoded,
        "bad_images": [evalset.samples[i][0] for i in bad],
        "seconds": round(elapsed, 3),
        "throughput_img_s": round(decoded / elapsed, 2) if elapsed > 0 else None,
    }
    if opts.predictions:
        merged = distributed.all_gather(list(preds.items()))
        out["predictions"] = {evalset.samples[i][0]: top5 for i, top5 in sorted(merged)}
    return out


def _check_labels(evalset: EvalSet, card: Card) -> None:
    if evalset.label_space == "imagenet-1k" and card.num_classes != 1000:
        raise DataError(f"{evalset.name}: labels are ImageNet-1k classes; model {card.name!r} has "
                        f"{card.num_classes} outputs (expected 1000)")
    n_classes = len(evalset.classes) if evalset.label_space is None else 0
    if n_classes > card.num_classes:
        raise DataError(f"{evalset.name}: {n_classes} class folders, but model {card.name!r} has only "
                        f"{card.num_classes} outputs")


def evaluate(model: nn.Module, card: Card, dataset: EvalSet, options: ClassificationOptions | None = None,
             runtime: Runtime | None = None) -> dict[str, Any]:
    """Top-1/top-5 of ``model`` on ``dataset`` (each part of it in turn, for ImageNet-C).

    ``options`` are not read here: corruption and severity chose ``dataset``'s parts when it was
    scanned. A caller of zoo 0.1's form, ``evaluate(model, card, dataset, {"device": ...})``, gets
    its dict checked by :meth:`Runtime.from_options` (an unknown name is an error).
    """
    if isinstance(options, Mapping):  # zoo 0.1: the runtime options as a dict
        runtime, options = Runtime.from_options(options), None
    opts = runtime if runtime is not None else Runtime()
    device = opts.torch_device()
    precision = opts.precision(device)
    rank, world = distributed.rank(), distributed.world_size()
    pre = EvalPreprocess.from_card(card, dataset.name)
    parts = dataset.parts or [dataset]
    for part in parts:
        _check_labels(part, card)
    model = model.to(device).eval()
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if opts.compile:
        model = torch.compile(model)
    results = [_score(part, model, pre, opts, device, rank, world) for part in parts]
    out: dict[str, Any] = {
        "device": str(device) if world == 1 else f"{device.type} x{world}",
        "precision": precision,
        "batch_size": opts.batch_size,
        "channels_last": opts.channels_last,
        "compile": opts.compile,
        "world_size": world,
        "preprocess": pre.as_dict(),
    }
    if not dataset.parts:
        out.update(results[0])
        return out
    seconds = sum(r["seconds"] for r in results)
    decoded = sum(r["decoded"] for r in results)
    top1s = [r["top1"] for r in results if r["top1"] is not None]
    top5s = [r["top5"] for r in results if r["top5"] is not None]
    out.update({
        "top1": round(sum(top1s) / len(top1s), 4) if top1s else None,  # mean over corruptions x severities
        "top5": round(sum(top5s) / len(top5s), 4) if top5s else None,
        "images": sum(r["images"] for r in results),
        "decoded": decoded,
        "bad_images": [p for r in results for p in r["bad_images"]],
        "seconds": round(seconds, 3),
        "throughput_img_s": round(decoded / seconds, 2) if seconds > 0 else None,
        "parts": [{"name": part.name, **part.options, "options": dict(part.options),
                   **{k: v for k, v in r.items() if k != "predictions"}}
                  for part, r in zip(parts, results, strict=True)],
    })
    if opts.predictions:
        out["predictions"] = {k: v for r in results for k, v in r.get("predictions", {}).items()}
    return out
