"""The semantic-segmentation eval hook: mmseg 0.x's test pipeline, then mIoU/mAcc/aAcc.

Called by the core as ``evaluate(model, card, dataset, options, runtime)``. Images are decoded and
resized in worker processes (uint8, OpenCV, as mmseg's pipeline does) and go through the model one
at a time, as mmseg tests them (``samples_per_gpu=1``: every image has its own size); sliding
windows of one image run ``--batch-size`` at a time. Under ``torch.distributed`` each rank takes a
strided shard; the per-class area sums are added across ranks (``all_sum``), so the numbers are the
single process's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from zoo.errors import DataError, PluginError, UserError
from zoo.eval import distributed
from zoo.eval.runtime import Progress, Runtime
from zoo_segmentation import inference, masks
from zoo_segmentation.metrics import areas, reduce_zero_label, summarize
from zoo_segmentation.task import check_save_masks, settings

if TYPE_CHECKING:
    from zoo_segmentation.datasets import SegSet

MS_TABLE = "ms_flip"  #: the result's (and a card's reported) table of the multi-scale + flip figures


def read_label(path: str) -> np.ndarray:
    """A label PNG's values as stored (``mmcv.imread(flag='unchanged', backend='pillow')``)."""
    from PIL import Image

    with Image.open(path) as im:
        array = np.array(im)
    if array.ndim != 2:
        raise OSError(f"{path}: mask has {array.shape[-1]} channels; expected one channel of class indices")
    return array


class SegImages(torch.utils.data.Dataset):
    """Decodes an image (and its mask) and resizes it per scale ratio, in worker processes."""

    def __init__(self, pairs: list[Any], indices: list[int], test: dict[str, Any], ratios: list[float],
                 with_labels: bool = True) -> None:
        self.pairs, self.indices, self.test, self.ratios, self.with_labels = pairs, indices, test, ratios, with_labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = self.indices[i]
        pair = self.pairs[index]
        try:
            image = inference.load_bgr(pair.image)
        except OSError:
            return {"index": index, "bad": pair.image}
        label = None
        if self.with_labels:
            try:
                label = torch.from_numpy(read_label(pair.mask).astype(np.int64))
            except OSError:
                return {"index": index, "bad": pair.mask}
            if tuple(label.shape) != image.shape[:2]:
                return {"index": index, "bad": pair.mask}
        return {"index": index, "bad": None, "image": image, "label": label,
                "inputs": [inference.to_tensor(inference.resize_image(image, self.test, r)) for r in self.ratios]}


def _identity(item: Any) -> Any:
    return item


@contextlib.contextmanager
def _writing(folder: Path, option: str) -> Iterator[None]:
    """An OSError while writing masks is one line naming the option and the folder."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise UserError(f"{option} {folder}: cannot write{where}: {exc.strerror or exc}") from None


def card_classes(card: Any, num_classes: int) -> list[str]:
    """The card's ``classes`` (``ade20k`` or a list), else ``class k``."""
    named = settings(card)["classes"]
    if named == "ade20k":
        from zoo_segmentation.datasets import ade20k_classes

        return list(ade20k_classes()[0])
    return list(named) if named else [f"class {k}" for k in range(num_classes)]


def class_names(card: Any, dataset: SegSet | None, num_classes: int) -> list[str]:
    """The dataset's class list (it must have the model's class count), else the card's."""
    names = getattr(dataset, "classes", None)
    if names is None:
        return card_classes(card, num_classes)
    if len(names) != num_classes:
        raise DataError(f"{dataset.label or dataset.name}: {len(names)} classes, but model {card.name!r} predicts "
                        f"{num_classes} (num_classes on its card)")
    return list(names)


def make_forward(model: torch.nn.Module, card: Any, runtime: Runtime, device: torch.device) -> inference.Forward:
    """``x -> logits`` under the runtime's precision, with the output checked."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        if runtime.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with runtime.autocast(device):
            out = model(x)
        try:
            check_output(card, out, x.shape[0])
        except ValueError as exc:
            raise PluginError(card.plugin, f"model {card.name!r}: {exc}") from None
        return out.float()
    return forward


def evaluate(model: torch.nn.Module, card: Any, dataset: SegSet, options: Any = None,
             runtime: Runtime | None = None) -> dict[str, Any]:
    """mIoU/mAcc/aAcc of ``model`` on ``dataset`` under the card's test protocol (``--ms``: multi-scale + flip)."""
    opts = runtime if runtime is not None else Runtime()
    device = opts.torch_device()
    rank, world = distributed.rank(), distributed.world_size()
    cfg = settings(card)
    ms = bool(options is not None and options.ms)
    save_dir = check_save_masks(options.save_masks if options is not None else None)
    num_classes = card.num_classes or 150
    reduce = dataset.reduce_zero_label if dataset.reduce_zero_label is not None else cfg["reduce_zero_label"]
    ignore = dataset.ignore_index if dataset.ignore_index is not None else cfg["ignore_index"]
    names = class_names(card, dataset, num_classes)
    augs = inference.augmentations(cfg["ms"] if ms else None)
    ratios = list(dict.fromkeys(r for r, _ in augs))
    colours = masks.palette(num_classes) if save_dir is not None else None
    if save_dir is not None and rank == 0:
        with _writing(save_dir, "--save-masks"):
            masks.write_classes(save_dir, names, reduce, ignore)
    indices = list(range(rank, len(dataset.pairs), world))
    loader = torch.utils.data.DataLoader(SegImages(dataset.pairs, indices, cfg["test"], ratios), batch_size=None,
                                         shuffle=False, num_workers=opts.num_workers(), collate_fn=_identity)
    model = model.to(device).eval()
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = make_forward(model, card, opts, device)
    threads_before = torch.get_num_threads()
    if device.type == "cpu" and opts.threads:
        torch.set_num_threads(opts.threads)
    total = torch.zeros(5, num_classes, dtype=torch.int64, device=device)
    bad: list[str] = []
    decoded = 0
    forward_s = 0.0
    progress = Progress(dataset.name, len(indices), opts.show_progress() and rank == 0)
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            for item in loader:
                decoded += 1
                progress.update(1)
                if item["bad"] is not None:
                    bad.append(item["bad"])
                    continue
                t0 = time.perf_counter()
                images = [item["inputs"][ratios.index(r)].to(device)[None] for r, _ in augs]
                prob = inference.probabilities(forward, images, [f for _, f in augs], item["label"].shape, cfg,
                                               num_classes, opts.batch_size)
                pred = prob.argmax(1)[0]
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                forward_s += time.perf_counter() - t0
                label = item["label"].to(device)
                if reduce:
                    label = reduce_zero_label(label)
                total += areas(pred, label, num_classes, ignore)
                if save_dir is not None:
                    pair = dataset.pairs[item["index"]]
                    with _writing(save_dir, "--save-masks"):
                        masks.save(save_dir, pair.stem, item["image"], pred.cpu().numpy(), reduce, colours)
    finally:
        torch.set_num_threads(threads_before)
        progress.close()
    elapsed = time.perf_counter() - start
    total = distributed.all_sum(total)
    bad = sorted(distributed.all_gather(bad))
    elapsed = distributed.all_max(elapsed)
    decoded = int(distributed.all_sum(torch.tensor([decoded], dtype=torch.int64, device=device)).item())
    scored = len(dataset.pairs) - len(bad)
    if rank == 0 and scored == 0:
        raise DataError(f"{dataset.label or dataset.name}: no image/mask pair could be read")
    out: dict[str, Any] = {"images": scored, "decoded": decoded, "bad_images": bad, "protocol": "ms" if ms else "ss"}
    out.update(summarize(total, names))
    if ms:  # where a card's multi-scale figures are: reported.<dataset>.ms_flip.<metric> (see docs/segmentation.md)
        out[MS_TABLE] = {key: out[key] for key in ("miou", "macc", "aacc")}
    out.update({
        "label_encoding": {"reduce_zero_label": reduce, "ignore_index": ignore},
        "seconds": round(elapsed, 3),
        "forward_s": round(distributed.all_max(forward_s), 3),
        "throughput_img_s": round(decoded / elapsed, 2) if elapsed > 0 else None,
        "device": str(device) if world == 1 else f"{device.type} x{world}",
        "precision": opts.precision(device),
        "world_size": world,
    })
    if save_dir is not None:
        out["masks_dir"] = str(save_dir / "masks")
        out["overlays_dir"] = str(save_dir / "overlays")
    return out


def example_inputs(card: Any, batch_size: int) -> torch.Tensor:
    """A normalised batch at the card's input size (default 3 x 512 x 512, the ADE20K crop)."""
    channels, height, width = card.input_size or (3, 512, 512)
    return torch.randn(batch_size, channels, height, width)


def check_output(card: Any, output: Any, batch_size: int) -> None:
    """Logits ``(batch, num_classes, h, w)`` of finite values, at any resolution."""
    classes = card.num_classes or 150
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"output is {type(output).__name__}, expected a tensor of logits ({batch_size}, {classes}, h, w)")
    if output.ndim != 4 or output.shape[0] != batch_size or output.shape[1] != classes:
        raise ValueError(f"output shape {tuple(output.shape)}, expected ({batch_size}, {classes}, h, w): "
                         "one logit map per class")
    if not torch.isfinite(output).all():
        raise ValueError("output holds non-finite values")


def postprocess(card: Any, output: torch.Tensor) -> torch.Tensor:
    """Logits -> label map at the card's input size (bilinear, then argmax), what a user of the model pays for."""
    _, height, width = card.input_size or (3, 512, 512)
    return inference.resize_logits(output.float(), (height, width)).argmax(1)


def segment(model: torch.nn.Module, card: Any, paths: list[str], out: Path, device: torch.device) -> list[dict[str, Any]]:
    """Single-scale predictions of the card's protocol for a user's images, written with :mod:`masks`."""
    cfg = settings(card)
    num_classes = card.num_classes or 150
    colours = masks.palette(num_classes)
    with _writing(out, "--out"):
        masks.write_classes(out, card_classes(card, num_classes), cfg["reduce_zero_label"], cfg["ignore_index"])
    forward = make_forward(model.to(device).eval(), card, Runtime(device=str(device), channels_last=False), device)
    written = []
    with torch.inference_mode():
        for path in paths:
            image = inference.load_bgr(path)
            x = inference.to_tensor(inference.resize_image(image, cfg["test"]))[None].to(device)
            prob = inference.probabilities(forward, [x], [False], image.shape[:2], cfg, num_classes)
            pred = prob.argmax(1)[0].cpu().numpy()
            with _writing(out, "--out"):
                mask_path, overlay_path = masks.save(out, Path(path).stem, image, pred, cfg["reduce_zero_label"],
                                                     colours)
            written.append({"image": path, "mask": str(mask_path), "overlay": str(overlay_path),
                            "classes": sorted(int(c) for c in np.unique(pred))})
    return written
