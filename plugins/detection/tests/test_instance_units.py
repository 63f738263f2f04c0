"""The instance-segmentation parts: card fields, Detectron2's resize, Mask2Former's instance inference,
RLE results, mask AP equal to COCOeval run directly (and to faster-coco-eval), segmentation checks.

The references are transcriptions of the official code (facebookresearch/Mask2Former@9b0651c
``maskformer_model.py``; facebookresearch/detectron2 ``ResizeShortestEdge``, ``ResizeTransform``,
``ImageList.from_tensors``, ``sem_seg_postprocess``), kept apart from zoo's code so the two can disagree.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from pycocotools import mask as mask_utils
from zoo_detection.coco import coco, coco_json
from zoo_detection.demo import make_instance_demo
from zoo_detection.evaluate import collate_for, example_inputs, postprocess, to_input, write_predictions
from zoo_detection.instance import TASK
from zoo_detection.metrics import coco_metrics
from zoo_detection.queries import check_query_output, encode_mask, postprocess_queries
from zoo_detection.resize import load_resized, resize_shape
from zoo_detection.task import parse_fields, parse_instance_fields

from zoo.errors import DataError

# -- official transcriptions --------------------------------------------------------------------


def official_get_output_shape(oldh, oldw, short_edge_length, max_size):
    h, w = oldh, oldw
    size = short_edge_length * 1.0
    scale = size / min(h, w)
    if h < w:
        newh, neww = size, scale * w
    else:
        newh, neww = scale * h, size
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh = newh * scale
        neww = neww * scale
    neww = int(neww + 0.5)
    newh = int(newh + 0.5)
    return (newh, neww)


def official_test_input(path, short, max_size):
    """read_image(path, "RGB") -> ResizeShortestEdge -> ResizeTransform.apply_image -> CHW uint8."""
    image = np.asarray(Image.open(path).convert("RGB"))
    h, w = image.shape[:2]
    newh, neww = official_get_output_shape(h, w, short, max_size)
    ret = np.asarray(Image.fromarray(image).resize((neww, newh), Image.BILINEAR))
    return torch.as_tensor(np.ascontiguousarray(ret.transpose(2, 0, 1)))


def official_image_list(tensors, size_divisibility, pad_value=0.0):
    max_size = torch.tensor([max(t.shape[-2] for t in tensors), max(t.shape[-1] for t in tensors)])
    if size_divisibility > 1:
        stride = size_divisibility
        max_size = (max_size + (stride - 1)).div(stride, rounding_mode="floor") * stride
    batch = tensors[0].new_full([len(tensors), *tensors[0].shape[:-2], *max_size.tolist()], pad_value)
    for i, img in enumerate(tensors):
        batch[i, ..., : img.shape[-2], : img.shape[-1]].copy_(img)
    return batch


def official_sem_seg_postprocess(result, img_size, output_height, output_width):
    result = result[:, : img_size[0], : img_size[1]].expand(1, -1, -1, -1)
    return F.interpolate(result, size=(output_height, output_width), mode="bilinear", align_corners=False)[0]


def official_instance_inference(mask_cls, mask_pred, num_classes, num_queries, test_topk_per_image):
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]
    labels = torch.arange(num_classes).unsqueeze(0).repeat(num_queries, 1).flatten(0, 1)
    scores_per_image, topk_indices = scores.flatten(0, 1).topk(test_topk_per_image, sorted=False)
    labels_per_image = labels[topk_indices]
    topk_indices = topk_indices // num_classes
    mask_pred = mask_pred[topk_indices]
    pred_masks = (mask_pred > 0).float()
    mask_scores_per_image = (mask_pred.sigmoid().flatten(1) * pred_masks.flatten(1)).sum(1) / (
        pred_masks.flatten(1).sum(1) + 1e-6)
    return scores_per_image * mask_scores_per_image, labels_per_image, pred_masks


def official_forward_inference(mask_cls_results, mask_pred_results, padded_hw, image_sizes, originals, topk):
    """MaskFormer.forward at test (INSTANCE_ON: sem_seg_postprocess_before_inference) for a batch."""
    mask_pred_results = F.interpolate(mask_pred_results, size=padded_hw, mode="bilinear", align_corners=False)
    out = []
    for mask_cls, mask_pred, image_size, (height, width) in zip(mask_cls_results, mask_pred_results, image_sizes,
                                                                originals, strict=True):
        mask_pred = official_sem_seg_postprocess(mask_pred, image_size, height, width)
        q, c = mask_cls.shape[0], mask_cls.shape[1] - 1
        out.append(official_instance_inference(mask_cls, mask_pred, c, q, topk))
    return out


def _by_score(scores, labels, masks):
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), int(labels[i])))
    return scores[order], labels[order], masks[order].bool()


# -- post-processing ------------------------------------------------------------------------------


def test_instance_inference_equals_mask2former():
    torch.manual_seed(0)
    cls = torch.randn(2, 7, 5) * 3  # Q 7, C 4 (+ no object)
    masks = torch.randn(2, 7, 13, 17) * 4  # any resolution: 1/4 of the padded input here
    padded, sizes, originals = (52, 68), [(50, 61), (37, 68)], [(97, 123), (40, 71)]
    for topk in (10, 28):
        ref = official_forward_inference(cls, masks, padded, sizes, originals, topk)
        ours = postprocess_queries(cls, masks, {"topk": topk, "mask_threshold": 0.0},
                                   [(padded, (0, 0, *size), shape) for size, shape in zip(sizes, originals,
                                                                                         strict=True)])
        for out, r in zip(ours, ref, strict=True):
            assert torch.all(out[0][:-1] >= out[0][1:])  # best first
            (s, lab, m), (rs, rl, rm) = _by_score(*out), _by_score(*r)
            assert m.shape == (topk, *m.shape[1:]) and m.dtype == torch.bool
            assert torch.equal(lab, rl) and torch.equal(m, rm)
            assert torch.allclose(s, rs, rtol=0, atol=1e-7)
    # a letterboxed image: the region is offset, the rest of the input is padding
    full = postprocess_queries(cls[:1], masks[:1], {"topk": 5, "mask_threshold": 0.0},
                               [((52, 68), (3, 5, 40, 60), (40, 60))])[0]
    crop = F.interpolate(masks[:1], size=(52, 68), mode="bilinear", align_corners=False)[0, :, 3:43, 5:65]
    assert torch.equal(_by_score(*full)[2], _by_score(*official_instance_inference(cls[0], crop, 4, 7, 5))[2])
    # topk over Q x C keeps all pairs; a threshold moves the mask edge
    assert len(postprocess_queries(cls[:1], masks[:1], {"topk": 1000, "mask_threshold": 0.0},
                                   [(padded, (0, 0, 50, 61), (50, 61))])[0][0]) == 28
    low = postprocess_queries(cls[:1], masks[:1], {"topk": 3, "mask_threshold": -2.0}, [(padded, (0, 0, 50, 61),
                                                                                         (50, 61))])[0]
    high = postprocess_queries(cls[:1], masks[:1], {"topk": 3, "mask_threshold": 0.0}, [(padded, (0, 0, 50, 61),
                                                                                         (50, 61))])[0]
    assert low[2].sum() > high[2].sum()


def test_query_output_forms_and_errors():
    cls, masks = torch.zeros(2, 4, 4), torch.zeros(2, 4, 8, 8)
    assert check_query_output((cls, masks), 2, 3)[0] is cls
    assert check_query_output({"class_logits": cls, "mask_logits": masks, "aux": 1}, 2, 3)[1] is masks
    for output, message in [
        ({"class_logits": cls}, "output dict has no 'mask_logits'"),
        (cls, "output is Tensor, expected (class_logits, mask_logits)"),
        ((cls, None), "mask_logits is NoneType, expected a tensor"),
        ((torch.zeros(2, 4, 3), masks), "class_logits shape (2, 4, 3), expected (2, Q, 4)"),
        ((cls, torch.zeros(2, 5, 8, 8)), "mask_logits shape (2, 5, 8, 8), expected (2, 4, h, w)"),
        ((cls, torch.full((2, 4, 8, 8), float("nan"))), "non-finite"),
    ]:
        with pytest.raises(ValueError) as err:
            check_query_output(output, 2, 3)
        assert message in str(err.value)


def test_postprocess_hook_for_both_heads():
    class Card:
        task, num_classes = "instance-segmentation", 3
        fields = {"head": "query-masks"}

    out = postprocess(Card(), (torch.randn(1, 2, 4), torch.randn(1, 2, 200, 272)))
    assert len(out) == 1 and out[0][2].shape == (6, 480, 640)  # back to the example 640x480 image

    class Yolo:
        task, num_classes, fields = "object-detection", 2, {}

    rows = torch.zeros(1, 3, 7)
    rows[0, 0] = torch.tensor([50, 50, 20, 20, 1.0, 0.9, 0.01])
    det = postprocess(Yolo(), [rows, None])
    assert det[0].shape == (1, 6) and det[0][0, 4].item() == pytest.approx(0.9)
    assert tuple(example_inputs(Card(), 2).shape) == (2, 3, 800, 1088)  # 480x640 -> 800x1067, padded to 32


# -- preprocessing ---------------------------------------------------------------------------------


def _noise_image(path, h, w):
    rng = np.random.default_rng(h * 31 + w)
    yy, xx = np.mgrid[0:h, 0:w]
    im = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1) + rng.integers(-40, 41, (h, w, 3))
    Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize(("h", "w", "short", "max_size"), [
    (427, 640, 800, 1333),   # COCO landscape: 800 x 1199
    (640, 361, 800, 1333),   # portrait: the long side hits max_size
    (97, 301, 800, 1333),    # odd sizes, long side capped
    (333, 333, 64, 1333),    # shrink
])
def test_resize_equals_detectron2(tmp_path, h, w, short, max_size):
    path = _noise_image(tmp_path / "im.png", h, w)
    spec = {"shortest_edge": short, "max_size": max_size, "size_divisibility": 32, "pad_value": 0}
    assert resize_shape(h, w, spec) == official_get_output_shape(h, w, short, max_size)
    ours, shape = load_resized(path, spec)
    ref = official_test_input(path, short, max_size)
    assert shape == (h, w) and ours.dtype == torch.uint8 and torch.equal(ours, ref)


def test_a_sliver_image_is_unreadable_not_a_crash(tmp_path):
    """A 1-px-high, very wide image rounds to 0 rows: one OSError naming it (reported or skipped by eval)."""
    from zoo_detection.evaluate import load_input

    path = _noise_image(tmp_path / "sliver.png", 1, 5000)
    for prep in (parse_instance_fields({}), parse_fields({})):
        with pytest.raises(OSError, match=r"sliver\.png: a 5000x1 image resizes to \d+x0 px"):
            load_input(path, prep)


def test_normalize_and_padding_equal_image_list(tmp_path):
    spec = parse_instance_fields({"normalize": {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]},
                                  "resize": {"shortest_edge": 40, "max_size": 100, "pad_value": -1.5}})
    images = [load_resized(_noise_image(tmp_path / f"{i}.png", h, w), spec["resize"])[0]
              for i, (h, w) in enumerate([(30, 50), (61, 33)])]
    batch, _, _, _, _ = collate_for(spec)([(im, i, True, (0, 0), (0, 0, *im.shape[1:])) for i, im in enumerate(images)])
    ours = to_input(batch, spec, [(0, 0, *im.shape[1:]) for im in images])
    mean, std = torch.tensor(spec["normalize"]["mean"]).view(3, 1, 1), torch.tensor(spec["normalize"]["std"]).view(3, 1, 1)
    ref = official_image_list([(im.float() - mean) / std for im in images], 32, -1.5)
    assert ours.shape == ref.shape == (2, 3, 96, 96)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-6)
    plain = to_input(batch, parse_fields({}), None)  # the yolo default: / 255, no mean/std
    assert torch.equal(plain, batch.float() / 255)


# -- card fields --------------------------------------------------------------------------------------


def test_instance_fields_default_to_mask2former_test():
    assert parse_instance_fields({}) == {
        "resize": {"shortest_edge": 800, "max_size": 1333, "size_divisibility": 32, "pad_value": 0.0},
        "normalize": None, "postprocess": {"topk": 100, "mask_threshold": 0.0}, "head": "query-masks"}
    with_box = parse_instance_fields({"letterbox": {"size": 320}})
    assert "resize" not in with_box and with_box["letterbox"]["size"] == [320, 320]
    again = parse_instance_fields(parse_instance_fields({"normalize": {"mean": [1, 2, 3], "std": [4, 5, 6]}}))
    assert again["normalize"] == {"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0]}  # parsed fields parse again
    assert TASK.primary.name == "mask_map" and TASK.primary.label == "mask AP"
    assert [m.name for m in TASK.metrics][:6] == ["mask_map", "mask_map50", "mask_map75", "mask_map_small",
                                                  "mask_map_medium", "mask_map_large"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"letterbox": {"size": 640}, "resize": {"shortest_edge": 800}}, "resize: give letterbox (YOLO) or resize"),
    ({"head": "yolo"}, "head: expected one of query-masks, got 'yolo'"),
    ({"postprocess": {"conf_thres": 0.5}}, "postprocess.conf_thres: unknown field (allowed: topk, mask_threshold)"),
    ({"postprocess": {"topk": 0}}, "postprocess.topk: expected an integer >= 1, got 0"),
    ({"postprocess": {"mask_threshold": float("nan")}}, "postprocess.mask_threshold: expected a finite number"),
    ({"resize": {"shortest_edge": -800}}, "resize.shortest_edge: expected an integer >= 1, got -800"),
    ({"resize": {"max_size": 10**9}}, "resize: shortest_edge and max_size must be at most 100000"),
    ({"resize": {"size_divisibility": "32"}}, "resize.size_divisibility: expected an integer >= 0, got '32'"),
    ({"resize": {"short": 800}}, "resize.short: unknown field"),
    ({"resize": {"size_divisibility": 10**9}}, "resize.size_divisibility: expected at most 4096"),
    ({"normalize": {"mean": [0, 0, 0]}}, "normalize: expected {mean: [r, g, b], std: [r, g, b]}"),
    ({"normalize": {"mean": [0, 0], "std": [1, 1, 1]}}, "normalize.mean: expected three numbers"),
    ({"normalize": {"mean": [0, 0, 0], "std": [1, 0, 1]}}, "normalize.std: expected numbers > 0"),
    ({"normalize": {"mean": [0, 0, 300], "std": [1, 1, 1]}}, "normalize.mean: expected a number in [0, 255]"),
    ({"normalize": "imagenet"}, "normalize: expected {mean"),
])
def test_bad_instance_fields_name_the_field(fields, message):
    with pytest.raises(ValueError) as err:
        parse_instance_fields(fields)
    assert message in str(err.value)


def test_object_detection_postprocess_keys_are_the_yolo_heads():
    with pytest.raises(ValueError, match=r"postprocess.topk: unknown field \(allowed: conf_thres"):
        parse_fields({"postprocess": {"topk": 100}})
    with pytest.raises(ValueError, match="resize: give letterbox"):
        parse_fields({"letterbox": {}, "resize": {}})


# -- metrics --------------------------------------------------------------------------------------


def _mask_results(doc, seed=0):
    """Eroded/dilated, shifted, dropped, duplicated and invented masks of the ground truth, as RLE."""
    rng = random.Random(seed)
    sizes = {im["id"]: (im["height"], im["width"]) for im in doc["images"]}
    out = []
    for a in doc["annotations"]:
        if rng.random() < 0.15:
            continue
        h, w = sizes[a["image_id"]]
        mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w))).astype(bool)
        for _ in range(rng.choice([1, 1, 2])):
            m = np.roll(mask, (rng.randint(-2, 2), rng.randint(-2, 2)), (0, 1))
            if rng.random() < 0.5:
                m = m & np.roll(m, 1, 0)
            out.append({"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": encode_mask(m),
                        "score": round(rng.random(), 5)})
    for im in doc["images"][::2]:
        m = np.zeros((im["height"], im["width"]), bool)
        m[1:9, 1:9] = True
        out.append({"image_id": im["id"], "category_id": doc["categories"][0]["id"], "segmentation": encode_mask(m),
                    "score": 0.3})
    return out


def _cocoeval_segm(ann, results_file, module):
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(str(results_file)), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [round(100 * float(v), 4) if v >= 0 else None for v in ev.stats[:6]]


def test_mask_ap_equals_cocoeval_and_faster_coco_eval(tmp_path):
    root = make_instance_demo(tmp_path / "m", n_images=16, n_classes=4, seed=3)
    ann = root / "annotations" / "instances_val2017.json"
    ds = coco(root)
    results = _mask_results(ds.gt)
    ours = coco_metrics(ds.gt, results, [im.id for im in ds.images], iou_type="segm")
    path = write_predictions(results, tmp_path / "segm.json")  # the --save-predictions file
    direct = _cocoeval_segm(ann, path, "pycocotools")
    names = ("mask_map", "mask_map50", "mask_map75", "mask_map_small", "mask_map_medium", "mask_map_large")
    assert [ours[k] for k in names] == direct
    assert 20 < ours["mask_map"] < 95, ours  # a real mix of hits and misses
    assert "map" not in ours and [row["category_id"] for row in ours["per_class"]] == [1, 3, 18, 44]
    assert _cocoeval_segm(ann, path, "faster_coco_eval") == direct
    # a result's bbox does not change mask AP (dropped as Detectron2 does: areas are the masks')
    boxed = [{**r, "bbox": [0.0, 0.0, 1.0, 1.0]} for r in results]
    assert coco_metrics(ds.gt, boxed, [im.id for im in ds.images], iou_type="segm")["mask_map"] == ours["mask_map"]
    assert coco_metrics(ds.gt, [], [im.id for im in ds.images], iou_type="segm")["mask_map"] == 0.0


def test_written_rle_is_what_loadres_reads(tmp_path):
    rng = np.random.default_rng(0)
    mask = rng.random((37, 53)) > 0.6
    rle = encode_mask(mask)
    assert rle["size"] == [37, 53] and isinstance(rle["counts"], str)
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 53, "height": 37}],
           "annotations": [], "categories": [{"id": 7, "name": "x"}]}
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    path = write_predictions([{"image_id": 1, "category_id": 7, "segmentation": rle, "score": 0.5}],
                             tmp_path / "p.json")
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        res = COCO(str(tmp_path / "gt.json")).loadRes(str(path))
    ann = res.loadAnns(res.getAnnIds())[0]
    assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), mask)
    assert ann["area"] == mask.sum()


# -- segmentation annotations: one located error each -------------------------------------------------


def _doc(segmentation, size=(10, 12)):
    return {"images": [{"id": 1, "file_name": "a.png", "height": size[0], "width": size[1]}],
            "categories": [{"id": 1, "name": "a"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2],
                             "segmentation": segmentation}]}


@pytest.mark.parametrize(("segmentation", "message"), [
    ([], "annotations[0].segmentation: expected at least one polygon"),
    ([[1, 2, 3, 4]], "segmentation[0]: expected a polygon"),
    ([[1, 2, 3, 4, 5]], "segmentation[0]: expected a polygon"),
    ([[1, 2, 3, 4, 5, float("inf")]], "segmentation[0]: expected a polygon"),
    ([[0, 0, 1e12, 0, 0, 5]], "segmentation[0]: expected a polygon"),
    ("polygon", "segmentation: expected polygons (a list) or RLE"),
    ({"size": [10, 13], "counts": [120]}, "segmentation.size: expected [height, width] of the image, [10, 12]"),
    ({"size": [10, 12], "counts": [100]}, "segmentation.counts: the runs cover 100 pixels, the image has 120"),
    ({"size": [10, 12], "counts": [-1, 121]}, "segmentation.counts: expected a COCO RLE string or a list"),
    ({"size": [10, 12], "counts": "\x00\x7f"}, "is not a COCO RLE character"),
    ({"size": [10, 12], "counts": "P"}, "the RLE string ends inside a number"),
    ({"size": [10, 12], "counts": "0000`0"}, "segmentation.counts: the runs cover"),  # hostile: would overflow
])
def test_bad_segmentation_is_one_located_error(tmp_path, segmentation, message):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "ann.json").write_text(json.dumps(_doc(segmentation)))
    with pytest.raises(DataError) as err:
        coco_json(f"{tmp_path},{tmp_path / 'ann.json'}")
    assert message in str(err.value) and "ann.json: annotations[0].segmentation" in str(err.value)


def test_good_segmentations_pass_and_a_missing_one_is_named(tmp_path):
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    (tmp_path / "a.png").write_bytes(b"")
    for seg in (encode_mask(mask), {"size": [10, 12], "counts": [20, 3, 7, 3, 87]}, [[1, 1, 5, 1, 5, 5]]):
        (tmp_path / "ann.json").write_text(json.dumps(_doc(seg)))
        coco_json(f"{tmp_path},{tmp_path / 'ann.json'}").require_segmentation()
    doc = _doc(None)
    del doc["annotations"][0]["segmentation"]
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"ann.json: annotations\[0\].segmentation: missing"):
        coco_json(f"{tmp_path},{tmp_path / 'ann.json'}").require_segmentation()


def test_instance_demo_masks_are_the_drawn_pixels(tmp_path):
    root = make_instance_demo(tmp_path / "d", n_images=4, n_classes=3, seed=2)
    ds = coco(root)
    for im in ds.images:
        pixels = np.asarray(Image.open(im.path).convert("RGB"))
        drawn = (pixels != 40).any(-1)
        anns = [a for a in ds.gt["annotations"] if a["image_id"] == im.id]
        union = np.zeros_like(drawn)
        for a in anns:
            m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], im.height, im.width)))
            assert a["area"] == m.sum() > 0
            union |= m.astype(bool)
        assert np.array_equal(union, drawn)
        assert min(im.height, im.width) == 48  # the fake segmenter's exact 2x resize relies on it
    assert "zoo_detection" in sys.modules
