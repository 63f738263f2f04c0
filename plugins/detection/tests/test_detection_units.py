"""The detection plugin's parts: card fields, category ids, dataset errors, metrics, NMS, letterbox."""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from zoo_detection import coco as cocomod
from zoo_detection.coco import COCO80_IDS, Categories, coco, coco_json
from zoo_detection.demo import make_demo
from zoo_detection.evaluate import letterbox_geometry, non_max_suppression, write_predictions
from zoo_detection.metrics import coco_metrics
from zoo_detection.task import TASK, parse_fields

from zoo.errors import DataError, UserError


def test_entry_module_is_light():
    code = "import sys, zoo_detection; zoo_detection.zoo_tasks(); zoo_detection.zoo_datasets(); " \
           "print(sorted({'torch', 'pycocotools', 'numpy', 'PIL'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- card fields ----------------------------------------------------------------------------------


def test_fields_default_to_yolov6_eval():
    assert parse_fields({}) == {
        "letterbox": {"size": [640, 640], "stride": 32, "pad_value": 114, "auto": False, "scaleup": False,
                      "shrink": 0},
        "normalize": None,
        "postprocess": {"conf_thres": 0.03, "iou_thres": 0.65, "max_det": 300, "agnostic": False,
                        "multi_label": True},
        "head": "yolo"}
    assert parse_fields({"letterbox": {"size": 1280}})["letterbox"]["size"] == [1280, 1280]
    assert TASK.primary.name == "map" and [m.name for m in TASK.metrics] == [
        "map", "map50", "map75", "map_small", "map_medium", "map_large"]


@pytest.mark.parametrize("fields, message", [
    ({"letterbox": {"size": 650}}, "letterbox.size: [650, 650] is not a multiple of letterbox.stride 32"),
    ({"letterbox": {"sise": 640}}, "letterbox.sise: unknown field"),
    ({"letterbox": 640}, "letterbox: expected a mapping"),
    ({"letterbox": {"auto": "yes"}}, "letterbox.auto: expected true or false, got 'yes'"),
    ({"postprocess": {"iou_thres": 1.5}}, "postprocess.iou_thres: expected a number in [0, 1], got 1.5"),
    ({"postprocess": {"max_det": 0}}, "postprocess.max_det: expected an integer >= 1, got 0"),
    ({"head": "detr"}, "head: expected one of yolo, got 'detr'"),
    ({"letterbox": {"shrink": -1}}, "letterbox.shrink: expected an integer >= 0, got -1"),
    ({"letterbox": {"shrink": 2.5}}, "letterbox.shrink: expected an integer >= 0, got 2.5"),
    ({"letterbox": {"shrink": True}}, "letterbox.shrink: expected an integer >= 0, got True"),
    ({"letterbox": {"shrink": "6"}}, "letterbox.shrink: expected an integer >= 0, got '6'"),
    ({"letterbox": {"shrink": 640}}, "letterbox.shrink: 640 leaves no image"),
    ({"letterbox": {"size": [320, 640], "shrink": 10**9}}, "letterbox.shrink: 1000000000 leaves no image"),
])
def test_bad_fields_name_the_field(fields, message):
    with pytest.raises(ValueError) as err:
        parse_fields(fields)
    assert message in str(err.value)


# -- category ids ---------------------------------------------------------------------------------


def test_category_mapping():
    cats = Categories.from_json([{"id": 42, "name": "c"}, {"id": 5, "name": "a"}, {"id": 17, "name": "b"}])
    assert cats.ids == (5, 17, 42) and cats.names == ("a", "b", "c")
    assert [cats.to_id(k) for k in range(3)] == [5, 17, 42]
    assert cats.to_index(42) == 2
    with pytest.raises(KeyError):
        cats.to_index(6)
    with pytest.raises(IndexError):
        cats.to_id(3)
    assert cats.for_model(3) == [5, 17, 42]
    # COCO's own 80 classes: sorted ids are YOLOv6's coco80_to_coco91_class table
    full = Categories.from_json([{"id": i} for i in reversed(COCO80_IDS)])
    assert full.for_model(80) == list(COCO80_IDS) and full.to_id(11) == 13 and full.to_id(79) == 90
    # an 80-class COCO model on a set with fewer (COCO) classes: its other classes are dropped
    subset = Categories.from_json([{"id": 1}, {"id": 3}, {"id": 90}])
    mapped = subset.for_model(80)
    assert mapped[0] == 1 and mapped[2] == 3 and mapped[79] == 90 and mapped.count(None) == 77
    with pytest.raises(DataError, match=r"3 categories \(ids \[5, 12, 42\]\), but the model has 80 classes"):
        Categories.from_json([{"id": 5}, {"id": 12}, {"id": 42}]).for_model(80)  # 12 is not a COCO class id
    with pytest.raises(DataError, match="but the model has 2 classes"):
        subset.for_model(2)


# -- datasets -------------------------------------------------------------------------------------


def test_coco_layouts(tmp_path):
    root = make_demo(tmp_path / "c", n_images=4, n_classes=2)
    ds = coco(root)
    assert len(ds) == 4 and ds.task is None and ds.categories.ids == (1, 3)  # both tasks list coco
    assert [im.id for im in ds.limited(2).images] == [1000, 1007] and len(ds) == 4
    nested = tmp_path / "n"
    (nested / "images").mkdir(parents=True)
    (root / "val2017").rename(nested / "images" / "val2017")
    (root / "annotations").rename(nested / "annotations")
    assert len(coco(nested)) == 4 and coco(nested).root == nested / "images" / "val2017"
    spec = f"{nested / 'images' / 'val2017'},{nested / 'annotations' / 'instances_val2017.json'}"
    assert len(coco_json(Path(spec))) == 4


def _broken(tmp_path: Path, edit) -> str:
    root = make_demo(tmp_path / "b", n_images=3, n_classes=2)
    ann = root / "annotations" / "instances_val2017.json"
    doc = json.loads(ann.read_text())
    text = edit(doc)
    ann.write_text(text if isinstance(text, str) else json.dumps(doc))
    with pytest.raises(DataError) as err:
        coco(root)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("edit, needle", [
    (lambda d: "", "instances_val2017.json: annotation file is empty"),
    (lambda d: '{"images": [', "instances_val2017.json:1:13: not valid JSON"),
    (lambda d: "[1, 2]", "expected a JSON object with images, annotations, categories; got list"),
    (lambda d: d.update(images=[]), "images: the list is empty"),
    (lambda d: d.pop("categories"), "categories: expected a list, got nothing"),
    (lambda d: d["images"][1].update(id="x"), "images[1].id: expected an integer id, got 'x'"),
    (lambda d: d["images"][2].update(id=d["images"][0]["id"]), "images[2].id: id 1000 repeats"),
    (lambda d: d["images"][0].update(file_name="../../etc/passwd"), "images[0].file_name: expected a relative path"),
    (lambda d: d["images"][0].update(file_name="missing.jpg"), "images[0].file_name: "),
    (lambda d: d["images"][0].update(width=0), "images[0].width: expected an integer >= 1, got 0"),
    (lambda d: d["annotations"][0].update(image_id=5), "annotations[0].image_id: 5 is not the id of an entry of images"),
    (lambda d: d["annotations"][0].update(category_id=2), "annotations[0].category_id: 2 is not the id"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, -1, 3]), "annotations[0].bbox: expected [x, y, width, height]"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, float("nan"), 3]), "annotations[0].bbox"),
    (lambda d: d["annotations"][0].update(iscrowd=2), "annotations[0].iscrowd: expected 0 or 1, got 2"),
    (lambda d: d["categories"].append({"id": 1}), "categories[2].id: id 1 repeats"),
])
def test_bad_annotation_files_are_one_located_error(tmp_path, edit, needle):
    message = _broken(tmp_path, edit)
    assert "instances_val2017.json" in message and needle in message, message


def test_huge_and_missing_files(tmp_path, monkeypatch):
    root = make_demo(tmp_path / "h", n_images=2, n_classes=1)
    monkeypatch.setattr(cocomod, "MAX_BYTES", 100)
    with pytest.raises(DataError, match=r"annotation file is \d+ bytes, over the 100 bytes"):
        coco(root)
    with pytest.raises(DataError, match="coco: no image folder in .* \\(expected val2017/ or images/val2017/\\)"):
        coco(tmp_path)
    with pytest.raises(DataError, match="coco-json: expected IMAGES_DIR,ANNOTATIONS.json"):
        coco_json(tmp_path / "only-a-dir")
    with pytest.raises(DataError, match="annotation file not found"):
        coco_json(Path(f"{root / 'val2017'},{tmp_path / 'nope.json'}"))
    assert issubclass(DataError, UserError)


def test_missing_area_and_iscrowd_are_filled(tmp_path):
    root = make_demo(tmp_path / "a", n_images=2, n_classes=1)
    ann = root / "annotations" / "instances_val2017.json"
    doc = json.loads(ann.read_text())
    for a in doc["annotations"]:
        del a["area"], a["iscrowd"], a["id"]
    ann.write_text(json.dumps(doc))
    a = coco(root).gt["annotations"][0]
    assert a["area"] == a["bbox"][2] * a["bbox"][3] and a["iscrowd"] == 0 and a["id"] == 1


# -- metrics: equal to COCOeval run directly (and to faster-coco-eval) ----------------------------


def _detections(doc, seed=0):
    """Jittered, dropped, duplicated and invented detections of the ground truth, random scores."""
    rng = random.Random(seed)
    dets = []
    for a in doc["annotations"]:
        if rng.random() < 0.15:
            continue
        x, y, w, h = a["bbox"]
        for _ in range(rng.choice([1, 1, 2])):
            j = [rng.uniform(-3, 3) for _ in range(4)]
            dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                         "bbox": [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])],
                         "score": round(rng.random(), 5)})
    for im in doc["images"][::2]:
        dets.append({"image_id": im["id"], "category_id": doc["categories"][0]["id"],
                     "bbox": [1.0, 1.0, 8.0, 8.0], "score": 0.3})
    return dets


def _cocoeval(ann: Path, dets_file: Path, module: str) -> list[float]:
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(str(dets_file)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [round(100 * float(v), 4) if v >= 0 else None for v in ev.stats[:6]]


def test_metrics_equal_cocoeval_run_directly(tmp_path):
    root = make_demo(tmp_path / "m", n_images=24, n_classes=4, seed=3)
    ann = root / "annotations" / "instances_val2017.json"
    ds = coco(root)
    dets = _detections(ds.gt)
    ours = coco_metrics(ds.gt, dets, [im.id for im in ds.images])
    path = write_predictions(dets, tmp_path / "dets.json")  # the --save-predictions file, read by loadRes
    direct = _cocoeval(ann, path, "pycocotools")
    names = ("map", "map50", "map75", "map_small", "map_medium", "map_large")
    assert [ours[k] for k in names] == direct
    assert 20 < ours["map"] < 95  # a real mix of hits and misses, not a degenerate 0 or 100
    assert [row["category_id"] for row in ours["per_class"]] == [1, 3, 18, 44]
    assert all(0 <= row["ap"] <= 100 for row in ours["per_class"])


def test_faster_coco_eval_gives_the_same_numbers(tmp_path):
    root = make_demo(tmp_path / "f", n_images=24, n_classes=4, seed=5)
    ann = root / "annotations" / "instances_val2017.json"
    path = write_predictions(_detections(coco(root).gt, seed=7), tmp_path / "dets.json")
    assert _cocoeval(ann, path, "faster_coco_eval") == _cocoeval(ann, path, "pycocotools")


def test_no_detection_scores_zero(tmp_path):
    ds = coco(make_demo(tmp_path / "z", n_images=3, n_classes=2))
    out = coco_metrics(ds.gt, [], [im.id for im in ds.images])
    assert out["map"] == 0.0 and out["map50"] == 0.0


# -- letterbox and NMS ----------------------------------------------------------------------------


def test_letterbox_geometry_matches_yolov6():
    box = parse_fields({})["letterbox"]
    # COCO's 640x480 (w x h): no resize, 80 px of padding above and below
    assert letterbox_geometry(480, 640, box) == ((480, 640), (80, 80, 0, 0), (640, 640), (1.0, 1.0), (0, 80))
    # 427x640 -> 427 rows, 213 px of padding: YOLOv6 puts round(106.5 - .1) = 106 above, 107 below,
    # and maps back from the integer offset letterbox returns (0, 106)
    assert letterbox_geometry(427, 640, box)[1] == (106, 107, 0, 0)
    assert letterbox_geometry(427, 640, box).offset == (0, 106)
    # a small image is first enlarged to 640 on its long side (load_image), then padded
    (h, w), pad, size, gain, _ = letterbox_geometry(240, 320, box)
    assert (h, w) == (480, 640) and pad == (80, 80, 0, 0) and size == (640, 640) and gain == (2.0, 2.0)
    # truncation makes the two gains differ: 333x500 -> 426x640 (x 1.28, y 426/333)
    assert letterbox_geometry(333, 500, box).gain == (1.28, 426 / 333)
    # YOLOv6-S's --reproduce_640_eval: shrink 6, the long side is 634 px, 3 px of padding each side
    s6 = parse_fields({"letterbox": {"shrink": 6}})["letterbox"]
    assert letterbox_geometry(480, 640, s6).resized == (475, 634)
    assert letterbox_geometry(480, 640, s6).padding == (82, 83, 3, 3)
    auto = parse_fields({"letterbox": {"auto": True}})["letterbox"]
    assert letterbox_geometry(427, 640, auto)[2] == (448, 640)  # padded to a multiple of 32 only


def _pred(rows, num_classes=3):
    return torch.tensor([rows], dtype=torch.float32).reshape(1, len(rows), 5 + num_classes)


def test_nms_follows_yolov6_semantics():
    rows = [
        [50, 50, 20, 20, 1.0, 0.9, 0.6, 0.0],   # class 0 (0.9) and, multi-label, class 1 (0.6)
        [51, 50, 20, 20, 1.0, 0.8, 0.0, 0.0],   # overlaps the first, class 0: suppressed
        [10, 10, 8, 8, 0.5, 0.0, 0.0, 0.9],     # score = 0.9 * objectness 0.5 = 0.45
        [90, 90, 8, 8, 0.02, 0.0, 0.0, 1.0],    # objectness under conf_thres: not a candidate
    ]
    det = non_max_suppression(_pred(rows), 0.03, 0.65, multi_label=True)[0]
    assert det[:, 5].tolist() == [0.0, 1.0, 2.0]
    assert det[:, 4].tolist() == pytest.approx([0.9, 0.6, 0.45])
    assert det[0, :4].tolist() == [40.0, 40.0, 60.0, 60.0]
    single = non_max_suppression(_pred(rows), 0.03, 0.65, multi_label=False)[0]
    assert single[:, 5].tolist() == [0.0, 2.0]
    agnostic = non_max_suppression(_pred(rows), 0.03, 0.65, multi_label=True, agnostic=True)[0]
    assert agnostic[:, 5].tolist() == [0.0, 2.0]  # class 1's copy of the same box is suppressed too
    assert len(non_max_suppression(_pred(rows), 0.03, 0.65, max_det=1)[0]) == 1
    assert non_max_suppression(_pred(rows), 0.99, 0.65)[0].shape == (0, 6)


def test_the_protocol_records_shrink():
    from types import SimpleNamespace

    from zoo_detection.task import protocol

    card = SimpleNamespace(task="object-detection", fields={"letterbox": {"size": 640, "shrink": 6}})
    recorded = protocol(card, "coco", None)
    assert recorded["letterbox"]["shrink"] == 6 and recorded["letterbox"]["size"] == [640, 640]
    plain = protocol(SimpleNamespace(task="object-detection", fields={}), "coco", None)
    assert plain["letterbox"]["shrink"] == 0 and plain != recorded  # a shrink-6 run is another protocol
