"""semantic-segmentation pieces on their own: card fields, metrics, the test pipeline's geometry,
sliding windows, multi-scale averaging, dataset pairing and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from zoo_segmentation import inference
from zoo_segmentation.datasets import ade20k, seg_folder
from zoo_segmentation.metrics import areas, reduce_zero_label, summarize
from zoo_segmentation.task import TASK, parse_fields

from zoo.errors import DataError

# -- card fields ----------------------------------------------------------------------------------


def test_defaults_are_mmseg_ade20k():
    parsed = parse_fields({})
    assert parsed["normalize"] == {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": True}
    assert parsed["test"] == {"resize": {"scale": [2048, 512], "keep_ratio": True}, "size_divisor": None,
                              "mode": "whole", "crop_size": None, "stride": None}
    assert parsed["ms"] == {"ratios": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75], "flip": True}
    assert parsed["reduce_zero_label"] is True and parsed["ignore_index"] == 255 and parsed["classes"] is None
    slide = parse_fields({"test": {"mode": "slide", "crop_size": 512, "stride": [341, 341], "size_divisor": 32}})
    assert slide["test"]["crop_size"] == [512, 512] and slide["test"]["size_divisor"] == 32
    assert parse_fields(slide) == slide  # parsing is idempotent (the core parses cards once, tasks read them again)


@pytest.mark.parametrize("fields, message", [
    ({"test": {"mode": "tiles"}}, "test.mode: expected one of whole, slide, got 'tiles'"),
    ({"test": {"mode": "slide", "stride": [341, 341]}}, "test.crop_size: mode slide needs crop_size and stride"),
    ({"test": {"crop_size": [512, 512]}}, "test.crop_size: only mode slide uses it"),
    ({"test": {"resize": {"scale": [2048]}}}, "test.resize.scale: expected [long, short]"),
    ({"test": {"resize": {"scale": [2048, 0]}}}, "test.resize.scale: expected an integer in 1..16384, got 0"),
    ({"test": {"resize": {"scale": [2048, 512], "keep": True}}}, "test.resize.keep: unknown field"),
    ({"test": {"size_divisor": -32}}, "test.size_divisor: expected an integer in 1..1024, got -32"),
    ({"test": {"mode": "slide", "crop_size": [512, 512], "stride": [0, 341]}}, "test.stride: expected an integer"),
    ({"test": "whole"}, "test: expected a mapping"),
    ({"normalize": {"std": [58.395, 0, 57.375]}}, "normalize.std: expected a number > 0, got 0"),
    ({"normalize": {"mean": [1, 2]}}, "normalize.mean: expected three numbers"),
    ({"normalize": {"mean": [float("nan"), 1, 2]}}, "normalize.mean: expected a finite number"),
    ({"normalize": {"to_rgb": "yes"}}, "normalize.to_rgb: expected true or false, got 'yes'"),
    ({"ms": {"ratios": []}}, "ms.ratios: expected a list of 1..32 scale ratios"),
    ({"ms": {"ratios": [0.5, -1.0]}}, "ms.ratios: expected a number > 0, got -1.0"),
    ({"ms": {"ratios": [1e9]}}, "ms.ratios: expected ratios in (0, 8]"),
    ({"reduce_zero_label": 1}, "reduce_zero_label: expected true or false, got 1"),
    ({"ignore_index": 70000}, "ignore_index: expected an integer in 0..65535, got 70000"),
    ({"classes": "coco"}, "classes: expected a list of names or one of ade20k, got 'coco'"),
    ({"classes": []}, "classes: expected a non-empty list of names or ade20k"),
    ({"classes": ["sky", " "]}, "classes: item 1 is not a name"),
])
def test_a_bad_field_is_one_located_line(fields, message):
    with pytest.raises(ValueError) as info:
        parse_fields(fields)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_bad_card_is_reported_with_file_entry_and_field():
    from zoo.errors import CardError
    from zoo.registry.cards import parse_card, parse_paper

    papers = {"p": parse_paper("cards.yaml", "p", {"title": "T", "venue": "V"})}
    card = {"paper": "p", "task": TASK.name, "plugin": "x", "builder": "b", "test": {"mode": "slide"}}
    with pytest.raises(CardError) as info:
        parse_card("cards.yaml", "seg-bad", card, papers, {TASK.name: TASK})
    assert str(info.value).startswith("cards.yaml: seg-bad: test.crop_size: mode slide needs crop_size")
    good = parse_card("cards.yaml", "seg-ok", {**card, "test": {"mode": "whole"}}, papers, {TASK.name: TASK})
    assert good.num_classes == 150 and good.fields["test"]["mode"] == "whole" and good.fields["classes"] is None
    with pytest.raises(CardError, match="seg-bad: classes: 2 names, the card's num_classes is 3"):
        parse_card("cards.yaml", "seg-bad", {**card, "test": None, "num_classes": 3, "classes": ["a", "b"]}, papers,
                   {TASK.name: TASK})
    with pytest.raises(CardError, match="seg-bad: classes: ade20k has 150 classes, the card's num_classes is 19"):
        parse_card("cards.yaml", "seg-bad", {**card, "test": None, "num_classes": 19, "classes": "ade20k"}, papers,
                   {TASK.name: TASK})


def test_class_names_come_from_the_dataset_else_the_card():
    from types import SimpleNamespace

    from zoo_segmentation.evaluate import class_names

    card = SimpleNamespace(name="m", fields={"classes": ["sky", "road"]})
    assert class_names(card, SimpleNamespace(classes=None), 2) == ["sky", "road"]
    assert class_names(card, SimpleNamespace(classes=("a", "b")), 2) == ["a", "b"]
    assert class_names(SimpleNamespace(name="m", fields={}), SimpleNamespace(classes=None), 2) == ["class 0", "class 1"]
    assert class_names(SimpleNamespace(name="m", fields={"classes": "ade20k"}), None, 150)[149] == "flag"
    with pytest.raises(DataError, match="x: 3 classes, but model 'm' predicts 2"):
        class_names(card, SimpleNamespace(classes=("a", "b", "c"), label="x", name="x"), 2)


# -- metrics ----------------------------------------------------------------------------------------


def confusion_reference(preds, labels, num_classes, ignore_index, reduce_zero):
    """mmseg's definition, written as a confusion matrix: rows = label (row C: a label that is no
    class), columns = prediction, over every non-ignored pixel of every image."""
    cm = np.zeros((num_classes + 1, num_classes), dtype=np.int64)
    for pred, label in zip(preds, labels, strict=True):
        label = label.astype(np.int64).copy()
        if reduce_zero:
            label[label == 0] = 256
            label -= 1
            label[label == 254] = 255  # 255 (ignored) stays ignored
        keep = label != ignore_index
        rows = np.where((label[keep] >= 0) & (label[keep] < num_classes), label[keep], num_classes)
        np.add.at(cm, (rows, pred[keep]), 1)
    diag = np.diag(cm[:num_classes])
    label_area, pred_area = cm[:num_classes].sum(1), cm.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = diag / (label_area + pred_area - diag)
        acc = diag / label_area
    return 100 * np.nanmean(iou), 100 * np.nanmean(acc), 100 * diag.sum() / label_area.sum(), iou, acc


@pytest.mark.parametrize("reduce_zero", [True, False])
def test_metrics_equal_an_independent_confusion_matrix(reduce_zero):
    rng = np.random.default_rng(3)
    num_classes, ignore = 6, 255
    preds, labels = [], []
    for shape in ((7, 9), (12, 5), (4, 4)):
        pred = rng.integers(0, num_classes - 1, shape)  # class 5 never predicted
        label = rng.integers(0, num_classes + 1 if reduce_zero else num_classes, shape).astype(np.uint8)
        label[rng.random(shape) < 0.2] = ignore
        label[0, 0] = 9  # a label that is no class: its prediction still counts (mmseg's histc)
        label[label == 4 + reduce_zero] = 3  # class 4 never labelled
        pred[pred == pred[1, 1]] = pred[1, 1]
        preds.append(pred)
        labels.append(label)
    total = torch.zeros(5, num_classes, dtype=torch.int64)
    for pred, label in zip(preds, labels, strict=True):
        lab = torch.from_numpy(label.astype(np.int64))
        total += areas(torch.from_numpy(pred), reduce_zero_label(lab) if reduce_zero else lab, num_classes, ignore)
    got = summarize(total)
    miou, macc, aacc, iou, acc = confusion_reference(preds, labels, num_classes, ignore, reduce_zero)
    assert got["miou"] == pytest.approx(miou, abs=1e-4) and got["macc"] == pytest.approx(macc, abs=1e-4)
    assert got["aacc"] == pytest.approx(aacc, abs=1e-4)
    assert [row["iou"] for row in got["per_class"]] == [None if np.isnan(v) else round(100 * v, 4) for v in iou]
    assert [row["acc"] for row in got["per_class"]] == [None if np.isnan(v) else round(100 * v, 4) for v in acc]
    assert got["per_class"][4]["acc"] is None  # never labelled: out of mAcc
    assert got["unknown_label_pixels"] == 3


def test_metrics_by_hand():
    """2 classes, 6 pixels: label [0, 0, 1, 1, 255, 1], prediction [0, 1, 1, 1, 0, 0]."""
    out = summarize(areas(torch.tensor([0, 1, 1, 1, 0, 0]), torch.tensor([0, 0, 1, 1, 255, 1]), 2, 255),
                    ["a", "b"])
    # class 0: I=1, pred 2, label 2 -> IoU 1/3, Acc 1/2; class 1: I=2, pred 3, label 3 -> IoU 2/4, Acc 2/3
    assert out["miou"] == round(100 * (1 / 3 + 1 / 2) / 2, 4) == 41.6667
    assert out["macc"] == round(100 * (1 / 2 + 2 / 3) / 2, 4)
    assert out["aacc"] == 60.0 and out["labelled_pixels"] == 5
    assert [r["name"] for r in out["per_class"]] == ["a", "b"]


def test_reduce_zero_label_is_adeS_encoding():
    assert reduce_zero_label(torch.tensor([0, 1, 2, 150, 255])).tolist() == [255, 0, 1, 149, 255]


# -- the test pipeline ------------------------------------------------------------------------------


def test_scaled_size_follows_mmcv_rescale_and_resize_to_multiple():
    keep = {"scale": [2048, 512], "keep_ratio": True}
    assert inference.scaled_size(683, 512, keep) == (683, 512)  # factor min(2048/683, 512/512) = 1
    assert inference.scaled_size(300, 200, keep) == (768, 512)  # factor 2.56
    assert inference.scaled_size(512, 2000, keep) == (512, 2000)  # factor min(2048/2000, 512/512) = 1
    assert inference.scaled_size(2000, 1500, keep) == (683, 512)  # factor 512/1500: int(682.67 + .5)
    assert inference.scaled_size(4000, 600, keep) == (2048, 307)  # the long side binds: 0.512
    assert inference.scaled_size(500, 375, keep, size_divisor=32) == (704, 512)  # 683 x 512 -> up to 32s
    assert inference.scaled_size(683, 512, keep, ratio=0.75) == (512, 384)  # scale int(2048*.75), int(512*.75)
    assert inference.scaled_size(683, 512, keep, ratio=1.75) == (1195, 896)
    assert inference.scaled_size(683, 512, {"scale": [640, 480], "keep_ratio": False}) == (640, 480)
    assert inference.scaled_size(100, 60, None) == (100, 60)
    assert inference.scaled_size(100, 60, None, ratio=0.5) == (50, 30)


def test_resize_image_is_opencv_bilinear_on_uint8():
    import cv2

    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    test = {"resize": {"scale": [140, 100], "keep_ratio": True}, "size_divisor": 32}
    out = inference.resize_image(image, test)
    step = cv2.resize(image, (140, 100), interpolation=cv2.INTER_LINEAR)
    assert out.shape == (128, 160, 3) and out.dtype == np.uint8
    assert np.array_equal(out, cv2.resize(step, (160, 128), interpolation=cv2.INTER_LINEAR))


def test_windows_are_clamped_to_the_border():
    # 700 x 1000, crop 512, stride 341: rows at 0 and 188 (341 + 512 > 700: shifted back), columns 0, 341, 488
    boxes = inference.windows(700, 1000, [512, 512], [341, 341])
    assert boxes == [(0, 512, 0, 512), (0, 512, 341, 853), (0, 512, 488, 1000),
                     (188, 700, 0, 512), (188, 700, 341, 853), (188, 700, 488, 1000)]
    assert inference.windows(300, 200, [512, 512], [341, 341]) == [(0, 300, 0, 200)]  # the image, unpadded


def test_slide_averages_overlaps_and_equals_whole_for_a_pixelwise_model():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 1)
    x = torch.randn(1, 3, 37, 53)
    whole = inference.whole_logits(conv, x)
    slide = inference.slide_logits(conv, x, 4, [16, 20], [10, 12], batch_size=3)
    assert torch.allclose(slide, whole, atol=1e-5)

    def half_res_ones(t):
        return torch.ones(t.shape[0], 2, t.shape[2] // 2, t.shape[3] // 2)

    assert torch.equal(inference.slide_logits(half_res_ones, x, 2, [16, 20], [10, 12]), torch.ones(1, 2, 37, 53))


def test_multi_scale_flip_averages_softmax_with_flips_undone():
    """aug_test written out step by step with OpenCV and numpy, against inference.probabilities."""
    import cv2
    import torch.nn.functional as F

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.AvgPool2d(2))
    image = np.random.default_rng(1).integers(0, 256, (30, 44, 3), dtype=np.uint8)
    cfg = parse_fields({"test": {"resize": {"scale": [64, 32], "keep_ratio": True}},
                        "ms": {"ratios": [0.5, 1.0, 1.5], "flip": True}})
    augs = inference.augmentations(cfg["ms"])
    assert augs == [(0.5, False), (0.5, True), (1.0, False), (1.0, True), (1.5, False), (1.5, True)]
    images = [inference.to_tensor(inference.resize_image(image, cfg["test"], r))[None] for r, _ in augs]
    with torch.no_grad():
        got = inference.probabilities(model, images, [f for _, f in augs], (30, 44), cfg, 5)
        expected = []
        for ratio, flip in augs:
            w, h = int(64 * ratio), int(32 * ratio)
            factor = min(w / 44, h / 30)
            size = (int(44 * factor + 0.5), int(30 * factor + 0.5))
            im = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            im = im[:, ::-1] if flip else im
            rgb = (im[..., ::-1].astype(np.float32) - np.float32([123.675, 116.28, 103.53])) / np.float32(
                [58.395, 57.12, 57.375])
            x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
            logits = F.interpolate(model(x), size=x.shape[2:], mode="bilinear", align_corners=False)
            prob = F.softmax(F.interpolate(logits, size=(30, 44), mode="bilinear", align_corners=False), 1)
            expected.append(prob.flip(-1) if flip else prob)
    assert got.shape == (1, 5, 30, 44)
    assert torch.allclose(got, torch.stack(expected).mean(0), atol=1e-6)


# -- datasets -------------------------------------------------------------------------------------


def _pair(root, stem, size=(8, 6), mode="L", image_ext=".jpg"):
    from PIL import Image

    (root / "img").mkdir(exist_ok=True)
    (root / "ann").mkdir(exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(root / "img" / f"{stem}{image_ext}")
    Image.new(mode, size, 0).save(root / "ann" / f"{stem}.png")


def test_seg_folder_pairs_by_stem_and_reads_the_class_list(tmp_path):
    _pair(tmp_path, "b")
    _pair(tmp_path, "a", image_ext=".png")
    (tmp_path / "ann" / "classes.json").write_text(json.dumps({"classes": ["x", "y"], "reduce_zero_label": False}))
    ds = seg_folder(f"{tmp_path / 'img'},{tmp_path / 'ann'}")
    assert [p.stem for p in ds.pairs] == ["a", "b"] and ds.classes == ("x", "y")
    assert ds.reduce_zero_label is False and ds.ignore_index is None and len(ds.limited(1)) == 1
    (tmp_path / "ann" / "classes.json").unlink()
    (tmp_path / "ann" / "classes.txt").write_text("x\n\ny\nz\n")
    assert seg_folder(f"{tmp_path / 'img'},{tmp_path / 'ann'}").classes == ("x", "y", "z")


@pytest.mark.parametrize("attack, message", [
    ("missing-mask", "c.jpg: no mask c.png in"),
    ("orphan-mask", "d.png: no image named d.* in"),
    ("size", "a.png: mask is 9x6 but its image a.jpg is 8x6"),
    ("rgb-mask", "a.png: mask mode RGB (3 channels); expected one channel"),
    ("duplicate", ": a second image named 'a'"),
    ("not-an-image", "a.jpg: not an image this reader can open"),
    ("bad-json", "classes.json:1:2: not valid JSON"),
    ("json-key", "classes.json: colour: unknown key"),
    ("json-empty", "classes.json: classes: expected a non-empty list of names"),
    ("json-name", "classes.json: classes[1]: expected a non-empty name"),
    ("json-ignore", "classes.json: ignore_index: expected an integer in 0..65535"),
    ("txt-empty", "classes.txt: no class names"),
    ("both", "both classes.json and classes.txt"),
    ("spec", "seg-folder: expected IMAGES,MASKS"),
    ("no-dir", "seg-folder: mask folder"),
    ("empty", "no images (.jpg"),
    ("huge-classes", "classes.txt: 1048577 bytes, over the 1048576 a class list may have"),
    ("huge-image", "a.jpg: Image size (48 pixels) exceeds limit of 20 pixels"),
])
def test_seg_folder_attacks_are_one_located_line(tmp_path, monkeypatch, attack, message):
    from PIL import Image

    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    img, ann = tmp_path / "img", tmp_path / "ann"
    spec = f"{img},{ann}"
    if attack == "missing-mask":
        Image.new("RGB", (8, 6)).save(img / "c.jpg")
    elif attack == "orphan-mask":
        Image.new("L", (8, 6)).save(ann / "d.png")
    elif attack == "size":
        Image.new("L", (9, 6)).save(ann / "a.png")
    elif attack == "rgb-mask":
        Image.new("RGB", (8, 6)).save(ann / "a.png")
    elif attack == "duplicate":
        Image.new("RGB", (8, 6)).save(img / "a.png")
    elif attack == "not-an-image":
        (img / "a.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    elif attack.startswith("json") or attack == "bad-json":
        text = {"bad-json": "[}", "json-key": '{"classes": ["x"], "colour": 1}', "json-empty": "[]",
                "json-name": '["x", ""]', "json-ignore": '{"classes": ["x"], "ignore_index": -1}'}[attack]
        (ann / "classes.json").write_text(text)
    elif attack == "txt-empty":
        (ann / "classes.txt").write_text("\n \n")
    elif attack == "both":
        (ann / "classes.txt").write_text("x\n")
        (ann / "classes.json").write_text('["x"]')
    elif attack == "spec":
        spec = str(img)
    elif attack == "no-dir":
        spec = f"{img},{tmp_path / 'nope'}"
    elif attack == "huge-classes":
        (ann / "classes.txt").write_text("x" * (1 << 20) + "\n")
    elif attack == "huge-image":  # a decompression bomb: over twice Pillow's pixel limit
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    elif attack == "empty":
        (tmp_path / "e1").mkdir()
        (tmp_path / "e2").mkdir()
        spec = f"{tmp_path / 'e1'},{tmp_path / 'e2'}"
    with pytest.raises(DataError) as info:
        seg_folder(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_ade20k_layout_and_its_errors(tmp_path):
    from zoo_segmentation.demo import make_demo

    root = make_demo(tmp_path / "ade", n_images=3, n_classes=2)
    ds = ade20k(root)
    assert len(ds) == 3 and len(ds.classes) == 150 and ds.classes[:3] == ("wall", "building", "sky")
    assert ds.reduce_zero_label is True and ds.label == "ade20k"
    assert [p.stem for p in ds.pairs] == ["ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003"]
    with pytest.raises(DataError, match="no images/validation/ folder in"):
        ade20k(tmp_path)
    (tmp_path / "images" / "validation").mkdir(parents=True)
    with pytest.raises(DataError, match="no annotations/validation/ folder in"):
        ade20k(tmp_path)
    (root / "annotations" / "validation" / "ADE_val_00000002.png").unlink()
    with pytest.raises(DataError, match="ADE_val_00000002.jpg: no mask ADE_val_00000002.png"):
        ade20k(root)
    with pytest.raises(DataError, match="takes no dataset options"):
        ade20k(root, split="train")


def test_demo_data_refuses_bad_counts(tmp_path):
    from zoo_segmentation.demo import make_demo

    with pytest.raises(DataError, match="expected a number of classes in 1..6, got 7"):
        make_demo(tmp_path, n_classes=7)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="exists and is not a directory"):
        make_demo(tmp_path / "file")


# -- bench hooks -----------------------------------------------------------------------------------


def test_example_inputs_check_output_and_postprocess():
    from types import SimpleNamespace

    from zoo_segmentation.evaluate import check_output, example_inputs, postprocess

    card = SimpleNamespace(input_size=(3, 512, 512), num_classes=150, name="m", plugin="p")
    assert tuple(example_inputs(card, 1).shape) == (1, 3, 512, 512)
    check_output(card, torch.zeros(2, 150, 128, 128), 2)
    with pytest.raises(ValueError, match=r"output shape \(2, 19, 128, 128\), expected \(2, 150, h, w\)"):
        check_output(card, torch.zeros(2, 19, 128, 128), 2)
    with pytest.raises(ValueError, match="output is tuple, expected a tensor of logits"):
        check_output(card, (torch.zeros(2, 150, 4, 4),), 2)
    with pytest.raises(ValueError, match="non-finite"):
        check_output(card, torch.full((1, 150, 4, 4), float("inf")), 1)
    small = SimpleNamespace(input_size=(3, 64, 48), num_classes=150, name="m", plugin="p")
    logits = torch.zeros(1, 150, 16, 12)
    logits[:, 7] = 1.0
    pred = postprocess(small, logits)
    assert pred.shape == (1, 64, 48) and bool((pred == 7).all())


def test_a_mask_file_is_never_half_written(tmp_path, monkeypatch):
    """A failure while a PNG is written (disk full, interrupt) leaves neither a partial file nor the temporary."""
    from pathlib import Path

    from PIL import Image
    from zoo_segmentation import masks

    image = np.zeros((6, 8, 3), dtype=np.uint8)
    pred = np.full((6, 8), 2, dtype=np.int64)
    mask_path, overlay_path = masks.save(tmp_path, "a", image, pred, True, masks.palette(3))
    assert np.array(Image.open(mask_path)).tolist() == [[3] * 8] * 6  # class 2 written as label 3
    assert np.array(Image.open(overlay_path)).shape == (6, 8, 3)

    def fail(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(OSError, match="No space left"):
        masks.save(tmp_path, "b", image, pred, True, masks.palette(3))
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a.png"]
    assert masks.encode(np.array([[300]]), False).dtype == np.uint16  # more than 8 bits: 16-bit PNG
