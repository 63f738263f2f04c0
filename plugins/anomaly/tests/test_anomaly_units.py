"""Card fields, protocol settings, dataset layouts (MVTec AD, VisA's split CSV) with their one-line
errors, the k-shot draw, and preprocessing equal to AnomalyCLIP's torchvision transforms."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from zoo_anomaly import data, images
from zoo_anomaly.demo import make_demo
from zoo_anomaly.task import AnomalyOptions, parse_fields, settings

from zoo.errors import DataError, UserError
from zoo.registry.cards import Preprocess

CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def card(fields: dict, name: str = "m", reported=None, size=(3, 32, 32), pre: Preprocess | None = None):
    """A stand-in for a parsed Card: what parse_fields and settings read."""
    pre = pre or Preprocess(crop_mode="squash", crop_pct=1.0, interpolation="bicubic", mean=CLIP[0], std=CLIP[1])
    c = SimpleNamespace(name=name, input_size=size, preprocess=pre, reported=reported, fields={})
    c.fields = parse_fields(fields, c)
    return c


# -- card fields and settings --------------------------------------------------------------------------


def test_fields_default_to_anomalyclips_protocol_and_read_the_cores_preprocess():
    c = card({"protocols": ["zero-shot"], "trained_on": "visa"}, size=(3, 518, 518))
    assert c.fields["preprocess"] == {"resize": [518, 518], "keep_ratio": False, "center_crop": None,
                                      "interpolation": "bicubic", "mean": list(CLIP[0]), "std": list(CLIP[1])}
    assert c.fields["map_smoothing"] == {"sigma": 4.0} and c.fields["metric_size"] == [518, 518]
    assert c.fields["gt_mask"] == {"interpolation": "bilinear", "threshold": 0.5} and c.fields["pro_definition"] == "mvtec"
    assert parse_fields(c.fields, c) == c.fields  # parsing is idempotent
    centre = card({"protocols": ["few-shot"]}, size=(3, 224, 224), pre=Preprocess(crop_pct=0.875))
    assert centre.fields["preprocess"]["resize"] == 256 and centre.fields["preprocess"]["keep_ratio"] is True
    assert centre.fields["preprocess"]["center_crop"] == [224, 224]


def test_the_task_form_of_preprocess_is_parsed_when_handed_over():
    c = card({"protocols": ["zero-shot"], "preprocess": {"resize": [518, 518], "interpolation": "bicubic",
                                                         "keep_ratio": False, "center_crop": 518, "mean": "clip",
                                                         "std": list(CLIP[1])}, "metric_size": 256})
    assert c.fields["preprocess"]["center_crop"] == [518, 518] and c.fields["metric_size"] == [256, 256]


@pytest.mark.parametrize("fields, message", [
    ({}, "protocols: required"),
    ({"protocols": ["one-shot"]}, "protocols: expected one of zero-shot, few-shot, got 'one-shot'"),
    ({"protocols": ["few-shot"], "trained_on": "visa"}, "trained_on: only for zero-shot models"),
    ({"protocols": ["zero-shot"], "trained_on": "coco"}, "trained_on: expected one of visa, mvtec-ad"),
    ({"protocols": ["zero-shot"], "pro_definition": "pro"}, "pro_definition: expected one of mvtec, anomalyclip"),
    ({"protocols": ["zero-shot"], "map_smoothing": {"sigma": -1}}, "map_smoothing.sigma: expected a number in"),
    ({"protocols": ["zero-shot"], "map_smoothing": {"size": 3}}, "map_smoothing.size: unknown field"),
    ({"protocols": ["zero-shot"], "metric_size": [1, 2, 3]}, "metric_size: expected [height, width]"),
    ({"protocols": ["zero-shot"], "preprocess": {"resize": [8, 8], "keep_ratio": True}},
     "preprocess.resize: with keep_ratio: true give one integer"),
    ({"protocols": ["zero-shot"], "preprocess": {"resize": 8, "keep_ratio": True}}, "preprocess.center_crop: required"),
    ({"protocols": ["zero-shot"], "preprocess": {"resize": 8, "mean": [2, 0, 0]}}, "preprocess.mean: expected a number"),
])
def test_bad_fields_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        card(fields)


def test_settings_apply_options_and_the_claims_protocol():
    reported = SimpleNamespace(protocol=lambda ds: {"protocol": "few-shot", "shots": 4, "seed": 7} if ds == "visa" else {})
    fs = card({"protocols": ["few-shot"]}, reported=reported)
    claim = settings(fs, "visa", None)
    assert (claim["protocol"], claim["shots"], claim["seed"], claim["categories"]) == ("few-shot", 4, 7, "all")
    run = settings(fs, "visa", AnomalyOptions(shots=8, category="pcb1,candle,pcb1", pro_definition="anomalyclip"))
    assert (run["shots"], run["seed"], run["categories"], run["pro_definition"]) == (8, 7, ["pcb1", "candle"], "anomalyclip")
    assert settings(fs, "mvtec-ad", AnomalyOptions(shots=1))["seed"] == 66  # the documented default
    with pytest.raises(ValueError, match="few-shot needs --shots K"):
        settings(fs, "mvtec-ad", None)
    with pytest.raises(ValueError, match="--protocol zero-shot: model 'm' supports few-shot"):
        settings(fs, "visa", AnomalyOptions(protocol="zero-shot"))
    zs = card({"protocols": ["zero-shot"], "trained_on": "visa"})
    assert settings(zs, "mvtec-ad", None)["shots"] is None
    with pytest.raises(ValueError, match="trained on visa: evaluating it there is not zero-shot"):
        settings(zs, "visa", None)
    with pytest.raises(ValueError, match="--shots 4: only with --protocol few-shot"):
        settings(zs, "mvtec-ad", AnomalyOptions(shots=4))
    with pytest.raises(ValueError, match="--category: 'a/b' is not a category name"):
        settings(zs, "mvtec-ad", AnomalyOptions(category="a/b"))


# -- datasets -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("anomaly") / "demo", n_images=4, n_train=3, size=24)


def test_the_mvtec_layout_is_read_in_a_fixed_order_with_masks(demo):
    ds = data.mvtec_ad(demo)
    assert [c.name for c in ds.categories] == ["checker", "stripes"] and len(ds) == 8
    checker = ds.categories[0]
    assert [s.name for s in checker.test] == ["test/blob/000.png", "test/good/000.png", "test/good/001.png",
                                              "test/scratch/001.png"]
    assert [s.label for s in checker.test] == [1, 0, 0, 1]
    assert checker.test[0].mask.endswith("checker/ground_truth/blob/000_mask.png") and checker.test[1].mask is None
    assert len(checker.train) == 3
    assert [len(c.test) for c in ds.limited(5).categories] == [4, 1]
    folder = data.anomaly_folder(demo, category="stripes")
    assert folder.label == f"anomaly-folder:{demo.resolve()}" and [c.name for c in folder.categories] == ["stripes"]


def test_layout_errors_are_one_located_line(demo, tmp_path):
    with pytest.raises(UserError, match=r"no category 'stripe' \(its categories: checker, stripes\)\. Did you mean: "
                                        r"stripes\?"):
        data.mvtec_ad(demo, category="stripe")
    with pytest.raises(DataError, match="no category in .* the MVTec AD layout"):
        data.mvtec_ad(tmp_path)
    broken = tmp_path / "set"
    (broken / "bottle" / "test" / "crack").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(broken / "bottle" / "test" / "crack" / "000.png")
    with pytest.raises(DataError, match="bottle/test/crack/000.png: no mask bottle/ground_truth/crack/000_mask.png"):
        data.mvtec_ad(broken)
    (broken / "bottle" / "test" / "crack" / "000.png").unlink()
    with pytest.raises(DataError, match="category 'bottle' has no test image"):
        data.mvtec_ad(broken)
    with pytest.raises(DataError, match="takes only the category option"):
        data.visa(broken, corruption="fog")


def write_visa(root: Path, rows: list[list[str]]) -> Path:
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    with (root / "split_csv" / "1cls.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["object", "split", "label", "image", "mask"], *rows])
    return root / "split_csv" / "1cls.csv"


def test_visa_reads_the_1cls_split(tmp_path):
    root = tmp_path / "visa"
    for rel in ("candle/Data/Images/Normal/0000.JPG", "candle/Data/Images/Normal/0001.JPG",
                "candle/Data/Images/Anomaly/000.JPG", "candle/Data/Masks/Anomaly/000.png",
                "pcb1/Data/Images/Normal/0000.JPG"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / rel, format="PNG")
    write_visa(root, [["candle", "train", "normal", "candle/Data/Images/Normal/0000.JPG", ""],
                      ["candle", "test", "anomaly", "candle/Data/Images/Anomaly/000.JPG", "candle/Data/Masks/Anomaly/000.png"],
                      ["candle", "test", "normal", "candle/Data/Images/Normal/0001.JPG", ""],
                      ["pcb1", "test", "normal", "pcb1/Data/Images/Normal/0000.JPG", ""]])
    ds = data.visa(root)
    candle, pcb1 = ds.categories
    assert (candle.name, pcb1.name, len(ds)) == ("candle", "pcb1", 3)
    assert [(s.name, s.label, bool(s.mask)) for s in candle.test] == [
        ("candle/Data/Images/Anomaly/000.JPG", 1, True), ("candle/Data/Images/Normal/0001.JPG", 0, False)]
    assert candle.train == (str(root / "candle/Data/Images/Normal/0000.JPG"),) and pcb1.train == ()
    assert [c.name for c in data.visa(root, category="pcb1").categories] == ["pcb1"]


@pytest.mark.parametrize("row, message", [
    (["candle", "val", "normal", "a.JPG", ""], r"1cls.csv:2: split: expected train or test"),
    (["candle", "test", "bad", "a.JPG", ""], r"1cls.csv:2: label: expected normal or anomaly"),
    (["candle", "test", "normal", "../../etc/passwd", ""], r"1cls.csv:2: image: expected a path relative"),
    (["candle", "test", "normal", "missing.JPG", ""], r"1cls.csv:2: image: .*missing.JPG does not exist"),
    (["candle", "test", "anomaly", "x.png", "nomask.png"], r"1cls.csv:2: mask: .*nomask.png does not exist"),
    (["candle", "test"], r"1cls.csv:2: expected 5 columns, got 2"),
])
def test_visa_csv_errors_name_the_line(tmp_path, row, message):
    root = tmp_path / "v"
    root.mkdir()
    Image.new("RGB", (4, 4)).save(root / "x.png")
    write_visa(root, [row])
    with pytest.raises(DataError, match=message):
        data.visa(root)


def test_visa_without_its_split_file_or_header(tmp_path):
    with pytest.raises(DataError, match=r"split_csv/1cls.csv not found"):
        data.visa(tmp_path)
    (tmp_path / "split_csv").mkdir()
    (tmp_path / "split_csv" / "1cls.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"1cls.csv:1: expected the header object,split,label,image,mask"):
        data.visa(tmp_path)


def test_the_k_shot_draw_is_seeded_per_category_and_bounded(demo):
    checker = data.mvtec_ad(demo).categories[0]
    first = data.draw_reference(checker, 2, 66)
    assert first == data.draw_reference(checker, 2, 66) and len(set(first)) == 2
    assert set(first) <= set(checker.train)
    import random

    assert first == random.Random(66).sample(sorted(checker.train), 2)  # the documented rule
    with pytest.raises(DataError, match="'checker': 4-shot needs 4 normal training images, it has 3"):
        data.draw_reference(checker, 4, 66)


# -- preprocessing: AnomalyCLIP's torchvision transforms, number for number -----------------------------


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("photo")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(root / "x.png")
    mask = np.zeros((37, 50), np.uint8)
    mask[5:20, 10:31] = 3  # VisA masks hold small labels: > 0 is a defect
    Image.fromarray(mask).save(root / "x_mask.png")
    return root / "x.png", root / "x_mask.png"


def test_image_and_mask_equal_anomalyclips_transforms(photo):
    import torchvision.transforms as T

    image, mask = photo
    pre = {"resize": [32, 32], "keep_ratio": False, "center_crop": [32, 32], "interpolation": "bicubic",
           "mean": list(CLIP[0]), "std": list(CLIP[1])}
    theirs = T.Compose([T.Resize((32, 32), interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(32),
                        T.ToTensor(), T.Normalize(*CLIP)])(Image.open(image).convert("RGB")).numpy()
    assert np.abs(images.to_array(str(image), pre) - theirs).max() < 1e-5
    target = T.Compose([T.Resize((32, 32)), T.CenterCrop(32), T.ToTensor()])  # AnomalyCLIP utils.get_transform
    binary = Image.fromarray((np.asarray(Image.open(mask).convert("L")) > 0).astype(np.uint8) * 255)
    expected = target(binary).numpy()[0] > 0.5
    got = images.mask_array(str(mask), pre, [32, 32], {"interpolation": "bilinear", "threshold": 0.5})
    assert got.dtype == bool and got.any() and (got == expected).all()


def test_a_kept_ratio_resizes_the_short_side_then_crops_as_torchvision(photo):
    import torchvision.transforms as T

    image, _ = photo
    pre = {"resize": 20, "keep_ratio": True, "center_crop": [16, 16], "interpolation": "bilinear",
           "mean": [0.5] * 3, "std": [0.5] * 3}
    theirs = T.Compose([T.Resize(20), T.CenterCrop(16), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])(
        Image.open(image).convert("RGB")).numpy()
    assert np.abs(images.to_array(str(image), pre) - theirs).max() < 1e-5


def test_an_unreadable_image_is_an_oserror_naming_it(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(OSError, match="bad.png"):
        images.open_image(str(bad))


def test_hostile_inputs_empty_categories_huge_images_and_escaping_map_names(tmp_path):
    import struct
    import zlib

    from zoo_anomaly.overlay import map_path
    from zoo_anomaly.task import parse_categories

    for empty in ("", ",", " , "):
        with pytest.raises(ValueError, match="--category: expected category names"):
            parse_categories(empty)
    # a PNG whose header claims 20000 x 20000 pixels: refused from the header, nothing decoded
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))
    with pytest.raises(OSError, match="huge.png"):
        images.open_image(str(huge))
    assert map_path(tmp_path / "maps", "../../etc/x.jpg") == tmp_path / "maps" / "etc" / "x.png"


def test_a_raw_preprocess_in_the_cores_form_reads_as_the_cores_parse():
    """Should the core hand ``preprocess`` to the task, cards written in the core's form mean the same."""
    core = card({"protocols": ["zero-shot"]}, size=(3, 518, 518))
    raw = card({"protocols": ["zero-shot"], "preprocess": {"crop_mode": "squash", "crop_pct": 1.0,
                                                           "interpolation": "bicubic", "mean": "clip", "std": "clip"}},
               size=(3, 518, 518))
    assert raw.fields["preprocess"] == core.fields["preprocess"]
    with pytest.raises(ValueError, match="preprocess.crop_size: unknown field"):
        card({"protocols": ["zero-shot"], "preprocess": {"crop_size": 3}})
