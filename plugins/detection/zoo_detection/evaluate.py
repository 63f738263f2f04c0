"""The eval hook of object-detection and instance-segmentation: fit, forward, post-process, COCOeval.

Object detection (``head: yolo``): letterbox, forward, NMS, COCO box AP. Instance segmentation
(``head: query-masks``): Detectron2's resize (:mod:`zoo_detection.resize`), forward, Mask2Former's
instance inference (:mod:`zoo_detection.queries`), COCO mask AP. Called by the core as ``evaluate(model, card, dataset, options, runtime)``. It does what YOLOv6's
``tools/eval.py`` does for its README numbers (see :mod:`zoo_detection.task` for the protocol and
its source), images decoded, resized and padded by OpenCV as its val dataset does, with these
differences: images travel from worker processes as uint8 (scaled to [0, 1] on the device), NMS is
``torchvision.ops.batched_nms`` (the same boxes as the official class-offset ``nms`` whenever boxes
are under 4096 px), and under ``torch.distributed`` each rank takes a strided shard; the detections
are gathered and COCOeval runs once, on rank 0.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from zoo.errors import DataError
from zoo.eval import distributed
from zoo.eval.runtime import Progress, Runtime
from zoo_detection.task import INSTANCE, settings

if TYPE_CHECKING:
    from zoo_detection.coco import CocoSet

MAX_NMS = 30000  #: boxes kept (by score) before NMS, as yolov6/utils/nms.py


# -- preprocessing ------------------------------------------------------------------------------


class Geometry(NamedTuple):
    """Where an image lands in the network input (:func:`letterbox_geometry`)."""

    resized: tuple[int, int]  #: (h, w) of the image inside the input
    padding: tuple[int, int, int, int]  #: (top, bottom, left, right) pixels of pad_value
    input: tuple[int, int]  #: (h, w) of the input
    gain: tuple[float, float]  #: (x, y): input pixels per original pixel
    offset: tuple[int, int]  #: (left, top): a point maps to ``x * gain[0] + left``, ``y * gain[1] + top``


def load_size(h0: int, w0: int, box: dict[str, Any]) -> tuple[int, int]:
    """``TrainValDataset.load_image``'s shape: the long side resized to ``max(size) - shrink`` (truncating)."""
    r = (max(box["size"]) - box.get("shrink", 0)) / max(h0, w0)
    return (int(h0 * r), int(w0 * r)) if r != 1 else (h0, w0)


def letterbox_geometry(h0: int, w0: int, box: dict[str, Any]) -> Geometry:
    """Where an ``h0 x w0`` image lands in the network input, as YOLOv6 0.4.0's eval computes it.

    Step 1 (``TrainValDataset.load_image``): the long side is resized to ``max(size) - shrink``
    (truncating; ``shrink`` is ``--shrink_size``, 0 by default).
    Step 2 (``letterbox(..., auto, scaleup)``): fit into ``size`` (scaled down only unless
    ``scaleup``), padding to a multiple of ``stride`` when ``auto``, else to ``size``; the padding
    is split between both sides with YOLOv6's ``round(d -/+ 0.1)``.
    Mapping back (``Evaler.scale_coords`` with the dataset's ``shapes``): subtract ``(left, top)``
    (letterbox returns the integer padding), divide x by ``w1 * r / w0`` and y by ``h1 * r / h0``.
    """
    height, width = box["size"]
    h1, w1 = load_size(h0, w0, box)
    r = min(height / h1, width / w1)
    if not box["scaleup"]:
        r = min(r, 1.0)
    h2, w2 = int(round(h1 * r)), int(round(w1 * r))
    dw, dh = width - w2, height - h2
    if box["auto"]:
        dw, dh = dw % box["stride"], dh % box["stride"]
    dw, dh = dw / 2, dh / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return Geometry((h2, w2), (top, bottom, left, right), (h2 + top + bottom, w2 + left + right),
                    (w1 * r / w0, h1 * r / h0), (left, top))


def load_letterboxed(path: str, box: dict[str, Any]) -> tuple[torch.Tensor, tuple[int, int]]:
    """One image as YOLOv6's val dataset feeds it: ``(uint8 RGB CHW at the input size, (h0, w0))``.

    The official sequence with OpenCV: ``cv2.imread`` (BGR, EXIF orientation applied), then
    ``TrainValDataset.load_image`` resizes the long side to ``size - shrink`` (``int`` truncation) with
    ``INTER_AREA`` when shrinking and ``INTER_LINEAR`` when enlarging (eval never augments), then
    ``letterbox`` resizes with ``INTER_LINEAR`` if its own ratio changes the shape (only with a
    non-square ``size`` or ``scaleup``) and pads with ``copyMakeBorder``; finally BGR -> RGB.

    :raises OSError: the file is not an image OpenCV can read.
    """
    import cv2
    import numpy as np

    try:
        im = cv2.imread(path)  # BGR, 3 channels (grey and 16-bit images converted as YOLOv6 gets them)
    except cv2.error as exc:  # e.g. over OpenCV's pixel limit
        raise OSError(f"{path}: {exc}") from None
    if im is None:
        raise OSError(f"{path}: not an image OpenCV can read")
    h0, w0 = im.shape[:2]
    h1, w1 = load_size(h0, w0, box)
    if h1 < 1 or w1 < 1:  # YOLOv6's cv2.resize would fail: say which image
        raise OSError(f"{path}: a {w0}x{h0} image resizes to {w1}x{h1} px")
    (h2, w2), (top, bottom, left, right), *_ = letterbox_geometry(h0, w0, box)
    if h2 < 1 or w2 < 1:
        raise OSError(f"{path}: a {w0}x{h0} image letterboxes to {w2}x{h2} px")
    r = (max(box["size"]) - box.get("shrink", 0)) / max(h0, w0)
    if r != 1:  # load_image, to load_size's shape
        im = cv2.resize(im, (w1, h1), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    if im.shape[:2] != (h2, w2):  # letterbox's own resize
        im = cv2.resize(im, (w2, h2), interpolation=cv2.INTER_LINEAR)
    pad = box["pad_value"]
    im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad, pad, pad))
    return torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)[::-1])), (h0, w0)


def load_input(path: str, prep: dict[str, Any]) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int, int, int]]:
    """One image as the protocol feeds it: ``(uint8 RGB CHW, (h0, w0), region (top, left, h, w))``,
    ``region`` being where the image lies in the input (the rest is padding)."""
    if "resize" in prep:
        from zoo_detection.resize import load_resized

        im, shape = load_resized(path, prep["resize"])
        return im, shape, (0, 0, im.shape[1], im.shape[2])
    im, shape = load_letterboxed(path, prep["letterbox"])
    (h2, w2), (top, _b, left, _r), *_ = letterbox_geometry(shape[0], shape[1], prep["letterbox"])
    return im, shape, (top, left, h2, w2)


class InputImages(torch.utils.data.Dataset):
    """Decodes and fits images (:func:`load_input`) in worker processes: ``(uint8 CHW, index, ok, (h0, w0), region)``."""

    def __init__(self, paths: list[str], indices: list[int], prep: dict[str, Any]) -> None:
        self.paths, self.indices, self.prep = paths, indices, prep

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, bool, tuple[int, int], tuple[int, int, int, int]]:
        index = self.indices[i]
        try:
            out, shape, region = load_input(str(self.paths[index]), self.prep)
        except OSError:
            return self._placeholder(), index, False, (0, 0), (0, 0, 1, 1)
        return out, index, True, shape, region

    def _placeholder(self) -> torch.Tensor:
        if "resize" in self.prep:
            return torch.zeros((3, 1, 1), dtype=torch.uint8)
        h, w = self.prep["letterbox"]["size"]
        return torch.full((3, h, w), self.prep["letterbox"]["pad_value"], dtype=torch.uint8)


class _Collate:
    """Stacks images padded at the bottom/right to the batch's largest (rounded up to ``divisibility``)."""

    def __init__(self, pad_value: int, divisibility: int = 0) -> None:
        self.pad_value, self.divisibility = pad_value, divisibility

    def __call__(self, items: list[tuple[Any, ...]]):  # noqa: ANN204
        from zoo_detection.resize import padded_shape

        h, w = padded_shape(max(t.shape[1] for t, *_ in items), max(t.shape[2] for t, *_ in items),
                            self.divisibility)
        batch = torch.full((len(items), 3, h, w), self.pad_value, dtype=torch.uint8)
        for i, (t, *_rest) in enumerate(items):
            batch[i, :, :t.shape[1], :t.shape[2]] = t
        return (batch, torch.tensor([it[1] for it in items]), torch.tensor([it[2] for it in items]),
                [it[3] for it in items], [it[4] for it in items])


def collate_for(prep: dict[str, Any]) -> _Collate:
    if "resize" in prep:  # padded after normalization (to_input), as ImageList.from_tensors
        return _Collate(0, prep["resize"]["size_divisibility"])
    return _Collate(prep["letterbox"]["pad_value"])


def to_input(images: torch.Tensor, prep: dict[str, Any], regions: list[tuple[int, int, int, int]] | None = None
             ) -> torch.Tensor:
    """uint8 batch -> the model's float input: ``/ 255``, or ``(x - mean) / std`` with the card's
    ``normalize`` (0-255 units); with ``resize`` the padding outside each region is ``pad_value``."""
    x = images.float()
    norm = prep.get("normalize")
    if norm is None:
        x = x.div_(255)
    else:
        mean = torch.tensor(norm["mean"], device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(norm["std"], device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
    if "resize" in prep and regions is not None:
        pad = prep["resize"]["pad_value"]
        for i, (_t, _l, h, w) in enumerate(regions):
            x[i, :, h:, :] = pad
            x[i, :, :h, w:] = pad
    return x


class LetterboxImages(InputImages):
    """Letterboxed images only (the object-detection loader before ``resize`` existed)."""

    def __init__(self, paths: list[str], indices: list[int], box: dict[str, Any]) -> None:
        super().__init__(paths, indices, {"letterbox": box})


# -- post-processing -----------------------------------------------------------------------------


def head_output(output: Any) -> torch.Tensor:
    """The ``(B, N, 5 + C)`` tensor of a ``yolo`` head (YOLOv6 returns ``[x, featmaps]`` in eval mode)."""
    if isinstance(output, list | tuple) and output and isinstance(output[0], torch.Tensor):
        output = output[0]
    return output


def non_max_suppression(pred: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int = 300,
                        agnostic: bool = False, multi_label: bool = True) -> list[torch.Tensor]:
    """YOLOv6's ``non_max_suppression`` semantics: per image ``(n, 6)`` rows ``x1, y1, x2, y2, score, class``.

    Candidates have objectness > ``conf_thres``; a class score is ``cls * obj``; with
    ``multi_label`` every (box, class) over ``conf_thres`` is a candidate, else the best class
    only; at most ``MAX_NMS`` by score enter NMS (per class unless ``agnostic``), ``max_det`` leave.
    """
    from torchvision.ops import batched_nms

    num_classes = pred.shape[2] - 5
    multi_label = multi_label and num_classes > 1
    out = []
    for x in pred:
        x = x[x[:, 4] > conf_thres]
        if not x.shape[0]:
            out.append(x.new_zeros((0, 6)))
            continue
        scores = x[:, 5:] * x[:, 4:5]
        xy, wh = x[:, :2], x[:, 2:4] / 2
        box = torch.cat((xy - wh, xy + wh), 1)
        if multi_label:
            i, j = (scores > conf_thres).nonzero(as_tuple=False).T
            det = torch.cat((box[i], scores[i, j, None], j[:, None].float()), 1)
        else:
            conf, j = scores.max(1, keepdim=True)
            det = torch.cat((box, conf, j.float()), 1)[conf.view(-1) > conf_thres]
        if det.shape[0] > MAX_NMS:
            det = det[det[:, 4].argsort(descending=True)[:MAX_NMS]]
        if not det.shape[0]:
            out.append(det)
            continue
        groups = torch.zeros_like(det[:, 5]) if agnostic else det[:, 5]
        keep = batched_nms(det[:, :4], det[:, 4], groups, iou_thres)[:max_det]
        out.append(det[keep])
    return out


def to_coco(det: torch.Tensor, gain: tuple[float, float], pad: tuple[float, float], shape: tuple[int, int],
            image_id: int, ids: list[int | None]) -> list[dict[str, Any]]:
    """Detections in input pixels -> COCO results in original pixels (YOLOv6 ``scale_coords`` and
    ``convert_to_coco_format``: (x, y) gains and (left, top) offsets, clamp to the image, x,y,w,h
    rounded to 3 decimals, score to 5)."""
    h0, w0 = shape
    boxes = det[:, :4].clone()
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - pad[0]) / gain[0]).clamp(0, w0)
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - pad[1]) / gain[1]).clamp(0, h0)
    boxes[:, 2:] -= boxes[:, :2]
    results = []
    for b, score, cls in zip(boxes.tolist(), det[:, 4].tolist(), det[:, 5].tolist(), strict=True):
        category = ids[int(cls)] if int(cls) < len(ids) else None
        if category is None:  # a class the dataset does not have
            continue
        results.append({"image_id": image_id, "category_id": category, "bbox": [round(v, 3) for v in b],
                        "score": round(score, 5)})
    return results


# -- the hook ------------------------------------------------------------------------------------

#: the input a bench or kit run feeds a ``resize`` card: COCO's usual 640x480 (w x h) image
EXAMPLE_IMAGE = (480, 640)


def _geometry(shapes: list[tuple[int, int]], regions: list[tuple[int, int, int, int]], input_hw: tuple[int, int]
              ) -> list[tuple[tuple[int, int], tuple[int, int, int, int], tuple[int, int]]]:
    return [(input_hw, region, shape) for shape, region in zip(shapes, regions, strict=True)]


def run_postprocess(protocol: dict[str, Any], output: Any, batch_size: int, num_classes: int,
                    geometry: list[tuple[tuple[int, int], tuple[int, int, int, int], tuple[int, int]]]) -> list[Any]:
    """The head's post-processing of a batch: per image, NMS rows ``(n, 6)`` (yolo) or
    ``(scores, labels, masks)`` in original pixels (query-masks)."""
    post = protocol["postprocess"]
    if protocol["head"] == "query-masks":
        from zoo_detection.queries import check_query_output, postprocess_queries

        cls, masks = check_query_output(output, batch_size, num_classes)
        return postprocess_queries(cls, masks, post, geometry)
    pred = head_output(output)
    _check_yolo(pred, batch_size, num_classes)
    return non_max_suppression(pred.float(), post["conf_thres"], post["iou_thres"], post["max_det"],
                               post["agnostic"], post["multi_label"])


def postprocess(card: Any, output: Any) -> list[Any]:
    """``Task.postprocess``: the card's head post-processing of ``output`` for :func:`example_inputs`'s
    batch (``zoo bench`` times it apart from the forward pass): NMS, or Mask2Former's instance
    inference with the masks brought back to :data:`EXAMPLE_IMAGE` (letterbox: the letterbox size)."""
    protocol = settings(card)
    batch = _batch_size(protocol["head"], output)
    input_hw, region, shape = _example_geometry(protocol)
    return run_postprocess(protocol, output, batch, card.num_classes or 80, [(input_hw, region, shape)] * batch)


def _batch_size(head: str, output: Any) -> int:
    if head == "query-masks":
        from zoo_detection.queries import query_output

        return int(query_output(output)[0].shape[0])
    return int(head_output(output).shape[0])


def _example_geometry(protocol: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int, int, int], tuple[int, int]]:
    if "resize" in protocol:
        from zoo_detection.resize import padded_shape, resize_shape

        spec = protocol["resize"]
        h, w = resize_shape(*EXAMPLE_IMAGE, spec)
        return padded_shape(h, w, spec["size_divisibility"]), (0, 0, h, w), EXAMPLE_IMAGE
    h, w = protocol["letterbox"]["size"]
    return (h, w), (0, 0, h, w), (h, w)


def _results(protocol: dict[str, Any], item: Any, shape: tuple[int, int], region: tuple[int, int, int, int],
             image_id: int, ids: list[int | None]) -> list[dict[str, Any]]:
    """One image's post-processed output as COCO results in original pixels."""
    if protocol["head"] == "query-masks":
        from zoo_detection.queries import to_coco_masks

        return to_coco_masks(*item, image_id, ids)
    if "resize" in protocol:  # Detectron2's detector_postprocess: scale by original / resized size
        _top, _left, height, width = region
        gain, pad = (width / shape[1], height / shape[0]), (0, 0)
    else:
        *_, gain, pad = letterbox_geometry(shape[0], shape[1], protocol["letterbox"])
    return to_coco(item.cpu(), gain, pad, shape, image_id, ids)


def deploy_form(model: torch.nn.Module, card: Any) -> torch.nn.Module:
    """The folded model when the card's claims describe it (``reported.form: deploy``), as YOLOv6's
    evaluator runs it (``load_checkpoint(fuse=True)`` + ``switch_to_deploy``): the same detections up to
    float rounding, in half the time; any other card's model as it is."""
    from zoo.measure.bench import card_form, fold

    if card_form(card) != "deploy":
        return model
    return fold(model, card)[0]


def evaluate(model: torch.nn.Module, card: Any, dataset: CocoSet, options: Any = None,
             runtime: Runtime | None = None) -> dict[str, Any]:
    """COCO box AP (object-detection) or mask AP (instance-segmentation) of ``model`` on ``dataset``
    under the card's protocol (and ``options``)."""
    from zoo_detection.metrics import coco_metrics

    opts = runtime if runtime is not None else Runtime()
    device = opts.torch_device()
    rank, world = distributed.rank(), distributed.world_size()
    protocol = settings(card, options)
    segm = getattr(card, "task", None) == INSTANCE
    if segm:
        dataset.require_segmentation()
    num_classes = card.num_classes or 80
    ids = dataset.categories.for_model(num_classes, dataset.label or dataset.name)
    paths = [im.path for im in dataset.images]
    indices = list(range(rank, len(paths), world))
    loader = torch.utils.data.DataLoader(
        InputImages(paths, indices, protocol), batch_size=opts.batch_size, shuffle=False,
        num_workers=opts.num_workers(), collate_fn=collate_for(protocol), pin_memory=device.type == "cuda")
    model = deploy_form(model.eval(), card).to(device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    threads_before = torch.get_num_threads()
    if device.type == "cpu" and opts.threads:
        torch.set_num_threads(opts.threads)
    detections: list[dict[str, Any]] = []
    bad: list[int] = []
    decoded = 0
    forward_s = post_s = 0.0
    progress = Progress(dataset.name, len(indices), opts.show_progress() and rank == 0)
    start = time.perf_counter()
    with torch.inference_mode():
        for images, index, ok, shapes, regions in loader:
            images = images.to(device, non_blocking=True)
            x = to_input(images, protocol, regions)
            if opts.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            t0 = time.perf_counter()
            with opts.autocast(device):
                raw = model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t1 = time.perf_counter()
            items = run_postprocess(protocol, raw, images.shape[0], num_classes,
                                    _geometry(shapes, regions, tuple(images.shape[2:])))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            post_s += time.perf_counter() - t1
            forward_s += t1 - t0
            for item, i, good, shape, region in zip(items, index.tolist(), ok.tolist(), shapes, regions, strict=True):
                decoded += 1
                if not good:
                    bad.append(i)
                    continue
                detections.extend(_results(protocol, item, shape, region, dataset.images[i].id, ids))
            progress.update(len(index))
    elapsed = time.perf_counter() - start
    torch.set_num_threads(threads_before)
    progress.close()
    detections = distributed.all_gather(detections)
    bad = sorted(distributed.all_gather(bad))
    elapsed = distributed.all_max(elapsed)
    decoded = int(distributed.all_sum(torch.tensor([decoded], dtype=torch.float64)).item())
    scored_ids = [im.id for i, im in enumerate(dataset.images) if i not in set(bad)]
    out: dict[str, Any] = {
        "images": len(scored_ids),
        "decoded": decoded,
        "bad_images": [dataset.images[i].path for i in bad],
        "detections": len(detections),
        "seconds": round(elapsed, 3),
        "forward_s": round(distributed.all_max(forward_s), 3),
        "postprocess_s": round(distributed.all_max(post_s), 3),
        "throughput_img_s": round(decoded / elapsed, 2) if elapsed > 0 else None,
        "device": str(device) if world == 1 else f"{device.type} x{world}",
        "precision": opts.precision(device),
        "batch_size": opts.batch_size,
        "world_size": world,
    }
    if rank == 0:  # COCOeval once, on the gathered detections
        if not scored_ids:
            raise DataError(f"{dataset.label or dataset.name}: no image could be read")
        if segm:
            out.update(coco_metrics(dataset.gt, detections, scored_ids, iou_type="segm"))
            if detections and all("bbox" in d for d in detections):  # a head that also gives boxes
                boxes = coco_metrics(dataset.gt, detections, scored_ids)
                out.update({k: v for k, v in boxes.items() if k != "per_class"})
                out["box_per_class"] = boxes["per_class"]
        else:
            out.update(coco_metrics(dataset.gt, detections, scored_ids))
    if opts.predictions:
        out["predictions"] = detections
    return out


def example_inputs(card: Any, batch_size: int) -> torch.Tensor:
    """A batch at the input size the protocol feeds (letterbox size, or the resized and padded
    :data:`EXAMPLE_IMAGE`), normalized as evaluate normalizes."""
    protocol = settings(card)
    (height, width), region, _shape = _example_geometry(protocol)
    images = torch.randint(0, 256, (batch_size, 3, height, width), dtype=torch.uint8)
    return to_input(images, protocol, [region] * batch_size)


def _check_yolo(output: Any, batch_size: int, classes: int) -> None:
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"output is {type(output).__name__}, expected a tensor (batch, N, {5 + classes})")
    if output.ndim != 3 or output.shape[0] != batch_size or output.shape[2] != 5 + classes:
        raise ValueError(f"output shape {tuple(output.shape)}, expected ({batch_size}, N, {5 + classes}): "
                         "cx, cy, w, h, objectness and one score per class")
    if not torch.isfinite(output).all():
        raise ValueError("output holds non-finite values")


def check_output(card: Any, output: Any, batch_size: int) -> None:
    """The card's head: ``yolo`` ``(batch, N, 5 + num_classes)`` (or a list/tuple led by it);
    ``query-masks`` ``(class_logits (batch, Q, C + 1), mask_logits (batch, Q, h, w))``; finite values."""
    classes = card.num_classes or 80
    if settings(card)["head"] == "query-masks":
        from zoo_detection.queries import check_query_output

        check_query_output(output, batch_size, classes)
        return
    _check_yolo(head_output(output), batch_size, classes)


def write_predictions(predictions: list[dict[str, Any]], path: str | Path) -> Path:
    """The COCO results file ``loadRes`` reads: a JSON list of image_id, category_id, score and
    bbox x,y,w,h (detections) or segmentation (RLE, ``counts`` a str; instance segmentation)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        json.dump(list(predictions), fh)
    return path
