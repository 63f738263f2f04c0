"""The anomaly-detection eval hook: per category, fit (few-shot), score, smooth, measure.

Called by the core as ``evaluate(model, card, dataset, options, runtime)``. For each category: a
few-shot model is fitted on the k drawn normal training images (``model.fit(reference)`` under
``torch.no_grad()``); every test image is preprocessed as the card says and scored; each map is
upsampled (bilinear) to ``metric_size`` and smoothed (``gaussian_filter``, the card's sigma), as
AnomalyCLIP's test.py does; the category's metrics are computed on its maps and masks, and their plain
mean over categories is the run's figure (AnomalyCLIP's ``np.mean`` over objects).

Under torchrun (``zoo eval --nproc N``) each rank takes whole categories (round robin) and computes
their metrics exactly as one process would; the per-category rows are gathered and averaged once, so
the numbers equal the single-process run's.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from zoo.errors import DataError, PluginError, UserError
from zoo.eval import distributed
from zoo.eval.runtime import Progress, Runtime
from zoo_anomaly import images
from zoo_anomaly.task import TASK, card_fields, input_size, settings

if TYPE_CHECKING:
    from zoo_anomaly.data import AnomalySet, Category

METRICS = tuple(m.name for m in TASK.metrics)


class _Images(torch.utils.data.Dataset):
    """Decodes and preprocesses images in worker processes: ``(float CHW, index, ok)``."""

    def __init__(self, paths: list[str], pre: dict[str, Any]) -> None:
        self.paths, self.pre = paths, pre

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, bool]:
        try:
            return torch.from_numpy(images.to_array(self.paths[i], self.pre)), i, True
        except OSError:
            h, w = input_size(self.pre)
            return torch.zeros(3, h, w), i, False


def check_output(card: Any, output: Any, batch_size: int) -> None:
    """``{"score": (B,), "map": (B, h, w)}``, finite values (the task's model contract)."""
    if not isinstance(output, dict) or "score" not in output or "map" not in output:
        raise ValueError(f"output is {type(output).__name__}, expected a dict {{'score': ({batch_size},), "
                         f"'map': ({batch_size}, h, w)}}")
    score, amap = output["score"], output["map"]
    if not isinstance(score, torch.Tensor) or tuple(score.shape) != (batch_size,):
        raise ValueError(f"output['score'] is {_shape(score)}, expected ({batch_size},): one score per image")
    if not isinstance(amap, torch.Tensor) or amap.ndim != 3 or amap.shape[0] != batch_size:
        raise ValueError(f"output['map'] is {_shape(amap)}, expected ({batch_size}, h, w): one map per image")
    if not (torch.isfinite(score).all() and torch.isfinite(amap).all()):
        raise ValueError("output holds non-finite values")


def _shape(value: Any) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__


def example_inputs(card: Any, batch_size: int) -> torch.Tensor:
    """A batch at the model input size of the card's preprocessing (no protocol needed: bench, the kit)."""
    height, width = input_size(card_fields(card)["preprocess"])
    return torch.randn(batch_size, 3, height, width)


PREPARE_SHOTS = 2  # generated normal references a few-shot model fits on before bench/kit run it


def prepare(card: Any, model: torch.nn.Module) -> torch.nn.Module:
    """A few-shot card's model fitted on ``PREPARE_SHOTS`` generated references, seeded, so ``zoo bench``
    and the plugin kit can run it; a card whose default protocol is zero-shot gets its model as built."""
    fit = getattr(model, "fit", None)
    if not callable(fit) or card_fields(card)["protocols"][0] != "few-shot":  # as eval's default protocol
        return model
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    height, width = input_size(card_fields(card)["preprocess"])
    reference = torch.randn(PREPARE_SHOTS, 3, height, width, generator=generator).to(device)
    with torch.no_grad():
        fit(reference)
    return model


def smooth(maps: torch.Tensor, size: list[int], sigma: float) -> np.ndarray:
    """Maps ``(B, h, w)`` -> float32 ``(B, H, W)`` at ``size``: bilinear upsampling, then a Gaussian per map."""
    from scipy.ndimage import gaussian_filter

    maps = maps.detach().float().cpu()
    if list(maps.shape[1:]) != list(size):
        maps = torch.nn.functional.interpolate(maps[:, None], size=tuple(size), mode="bilinear",
                                               align_corners=False)[:, 0]
    out = maps.numpy().astype(np.float32, copy=True)
    if sigma > 0:
        for i in range(out.shape[0]):
            out[i] = gaussian_filter(out[i], sigma=sigma)
    return out


def load_reference(paths: list[str], pre: dict[str, Any]) -> torch.Tensor:
    """The k reference images as one ``(K, 3, H, W)`` batch; an unreadable one is a DataError naming it."""
    try:
        return torch.from_numpy(np.stack([images.to_array(p, pre) for p in paths]))
    except OSError as exc:
        raise DataError(f"reference image unreadable: {exc}") from None


def fit(model: torch.nn.Module, reference: torch.Tensor, name: str) -> None:
    """``model.fit(reference)`` under no_grad; a model without ``fit`` cannot do few-shot."""
    method = getattr(model, "fit", None)
    if not callable(method):
        raise UserError(f"model {name!r} has no fit(reference): it cannot be evaluated few-shot")
    with torch.no_grad():
        method(reference)


def score_batches(model: torch.nn.Module, card: Any, paths: list[str], conf: dict[str, Any], opts: Runtime,
                  device: torch.device) -> Iterable[tuple[list[int], list[bool], np.ndarray, np.ndarray]]:
    """Per batch: (indices, readable, scores (B,), smoothed maps (B, H, W) at metric_size)."""
    loader = torch.utils.data.DataLoader(_Images(paths, conf["preprocess"]), batch_size=opts.batch_size,
                                         shuffle=False, num_workers=opts.num_workers(),
                                         pin_memory=device.type == "cuda")
    for batch, index, ok in loader:
        batch = batch.to(device, non_blocking=True)
        if opts.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), opts.autocast(device):
            out = model(batch)
        try:
            check_output(card, out, batch.shape[0])
        except ValueError as exc:  # the model breaks the task's contract: its plugin's fault, one line
            raise PluginError(card.plugin, f"model {card.name!r}: {exc}") from None
        yield (index.tolist(), ok.tolist(), out["score"].detach().float().cpu().numpy(),
               smooth(out["map"], conf["metric_size"], conf["map_smoothing"]["sigma"]))


def relative(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _category(model: torch.nn.Module, card: Any, cat: Category, root: Path, conf: dict[str, Any], opts: Runtime,
              device: torch.device, maps_dir: Path | None, progress: Progress) -> dict[str, Any]:
    """One category: fit, score every test image, the metrics; the rows and readable counts."""
    from zoo_anomaly import overlay
    from zoo_anomaly.data import draw_reference
    from zoo_anomaly.metrics import category_metrics

    reference: list[str] = []
    if conf["protocol"] == "few-shot":
        reference = draw_reference(cat, conf["shots"], conf["seed"])
        fit(model, load_reference(reference, conf["preprocess"]).to(device), card.name)
    paths = [s.path for s in cat.test]
    scores = np.zeros(len(paths), dtype=np.float64)
    maps = np.zeros((len(paths), *conf["metric_size"]), dtype=np.float32)
    good = np.ones(len(paths), dtype=bool)
    for index, ok, batch_scores, batch_maps in score_batches(model, card, paths, conf, opts, device):
        scores[index], maps[index], good[index] = batch_scores, batch_maps, ok
        progress.update(len(index))
    masks = np.zeros(maps.shape, dtype=bool)
    bad: list[str] = []
    for i, sample in enumerate(cat.test):
        if not good[i]:
            bad.append(sample.path)
            continue
        try:
            masks[i] = images.mask_array(sample.mask, conf["preprocess"], conf["metric_size"], conf["gt_mask"])
        except OSError as exc:
            raise DataError(f"mask unreadable: {exc}") from None
    labels = [s.label for s in cat.test]
    keep = np.flatnonzero(good)
    row: dict[str, Any] = category_metrics([labels[i] for i in keep], scores[keep], masks[keep], maps[keep],
                                           conf["pro_definition"])
    records = [{"category": cat.name, "file": relative(cat.test[i].path, root), "label": labels[i],
                "score": float(scores[i])} for i in keep]
    if maps_dir is not None and keep.size:
        low, high = float(maps[keep].min()), float(maps[keep].max())
        for i in keep:
            shown = images.display(cat.test[i].path, conf["preprocess"], conf["metric_size"])
            overlay.write_png(overlay.render(shown, maps[i], masks[i], low, high),
                              overlay.map_path(maps_dir, records[int(np.searchsorted(keep, i))]["file"]))
    return {"category": cat.name, "metrics": row, "images": int(keep.size), "anomalous": int(sum(labels[i] for i in keep)),
            "reference": [relative(p, root) for p in reference], "records": records, "bad": bad}


def _maps_dir(value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"--save-maps {value}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--save-maps {value}: cannot create it: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"--save-maps {value}: not writable")
    return path


def _check_scores_file(value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        raise UserError(f"--save-scores {value}: is a directory, expected a file")
    if not path.parent.is_dir():
        raise UserError(f"--save-scores {value}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"--save-scores {value}: folder {path.parent} is not writable")
    return path


def evaluate(model: torch.nn.Module, card: Any, dataset: AnomalySet, options: Any = None,
             runtime: Runtime | None = None) -> dict[str, Any]:
    """Image/pixel AUROC, image AP and AU-PRO of ``model`` on ``dataset``, per category and their mean."""
    from zoo_anomaly.metrics import mean_over

    opts = runtime if runtime is not None else Runtime()
    conf = settings(card, dataset.name, options)
    scores_file = _check_scores_file(getattr(options, "save_scores", None))
    maps_dir = _maps_dir(getattr(options, "save_maps", None))
    device = opts.torch_device()
    rank, world = distributed.rank(), distributed.world_size()
    mine = list(dataset.categories)[rank::world]  # whole categories per rank: exact metrics
    if conf["protocol"] == "few-shot":
        for cat in mine:  # every draw checked before the first forward
            if conf["shots"] > len(cat.train):
                raise DataError(f"{dataset.label or dataset.name}: category {cat.name!r}: {conf['shots']}-shot needs "
                                f"{conf['shots']} normal training images, it has {len(cat.train)} (train/good)")
    model = model.to(device).eval()
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    threads_before = torch.get_num_threads()
    if device.type == "cpu" and opts.threads:
        torch.set_num_threads(opts.threads)
    progress = Progress(dataset.name, sum(len(c.test) for c in mine), opts.show_progress() and rank == 0)
    start = time.perf_counter()
    try:
        rows = [_category(model, card, cat, dataset.root, conf, opts, device, maps_dir, progress) for cat in mine]
    finally:
        torch.set_num_threads(threads_before)
        progress.close()
    elapsed = distributed.all_max(time.perf_counter() - start)
    order = {c.name: i for i, c in enumerate(dataset.categories)}
    rows = sorted(distributed.all_gather(rows), key=lambda r: order[r["category"]])
    if not rows:
        raise DataError(f"{dataset.label or dataset.name}: no category to evaluate")
    per_category = {r["category"]: {**r["metrics"], "images": r["images"], "anomalous": r["anomalous"]} for r in rows}
    records = [rec for r in rows for rec in r["records"]]
    bad = [p for r in rows for p in r["bad"]]
    scored = sum(r["images"] for r in rows)
    if scored == 0:
        raise DataError(f"{dataset.label or dataset.name}: no test image could be read")
    out: dict[str, Any] = {
        **mean_over([r["metrics"] for r in rows], METRICS),
        "images": scored,
        "decoded": scored + len(bad),
        "bad_images": bad,
        "protocol": conf["protocol"],  # zero-shot or few-shot; the whole recorded protocol is under "settings"
        "settings": conf,
        "shots": conf["shots"],
        "seed": conf["seed"],
        "categories": [r["category"] for r in rows],
        "per_category": per_category,
        "undefined": {m: [r["category"] for r in rows if r["metrics"][m] is None]
                      for m in METRICS if any(r["metrics"][m] is None for r in rows)} or None,
        "seconds": round(elapsed, 3),
        "throughput_img_s": round((scored + len(bad)) / elapsed, 2) if elapsed > 0 else None,
        "device": str(device) if world == 1 else f"{device.type} x{world}",
        "precision": opts.precision(device),
        "batch_size": opts.batch_size,
        "world_size": world,
    }
    if conf["protocol"] == "few-shot":
        out["reference_images"] = {r["category"]: r["reference"] for r in rows}
    if scores_file is not None and rank == 0:
        out["scores_file"] = str(write_predictions(records, scores_file))
    if opts.predictions:
        out["predictions"] = records
    return out


def write_predictions(predictions: list[dict[str, Any]], path: str | Path) -> Path:
    """JSON lines ``{category, file, label, score}``, one per test image, written atomically."""
    path = Path(path).expanduser()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".zoo-", suffix=".jsonl", dir=path.parent)
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for rec in predictions:
                fh.write(json.dumps(rec) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

