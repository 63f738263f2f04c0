"""Dataset adapters: layouts, label mapping, fixed order, limits, ImageNet-A/-R/ReaL/-C scoring."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from zoo.errors import DataError
from zoo.registry.cards import Card
from zoo.tasks.classification import evaluate as classification
from zoo.tasks.classification.data import datasets, synsets

sys.path.insert(0, str(Path(__file__).parent))
from imagegen import make_demo_folder  # noqa: E402

TIMM_INFO = Path(__import__("importlib").util.find_spec("timm").submodule_search_locations[0]) / "data" / "_info"


def _jpeg(path: Path, color=(10, 200, 30), size=(20, 16)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "JPEG")
    return path


def _all_wnid_folders(root: Path, wnids) -> None:
    for wnid in wnids:
        (root / wnid).mkdir(parents=True, exist_ok=True)


def test_imagenet_class_folders_map_wnids_to_1k_indices(tmp_path):
    root = tmp_path / "imagenet" / "val"
    _all_wnid_folders(root, synsets.imagenet_wnids())
    _jpeg(root / "n01443537" / "b.JPEG")
    _jpeg(root / "n01440764" / "a.JPEG")
    _jpeg(root / "n15075141" / "z.JPEG")
    ds = datasets.imagenet(tmp_path / "imagenet")  # descends into val/
    assert [(Path(p).name, y) for p, y in ds.samples] == [("a.JPEG", 0), ("b.JPEG", 1), ("z.JPEG", 999)]
    assert ds.label_space == "imagenet-1k" and len(ds.classes) == 1000


def test_imagenet_flat_val_with_ground_truth_file(tmp_path):
    for i in (1, 2, 3):
        _jpeg(tmp_path / f"ILSVRC2012_val_{i:08d}.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000002,n01443537 1 2 3 4\n"
        "ILSVRC2012_val_00000001,n15075141 1 2 3 4\nILSVRC2012_val_00000003,n01440764 1 1 1 1\n")
    ds = datasets.imagenet(tmp_path)
    assert [y for _, y in ds.samples] == [999, 1, 0]
    (tmp_path / "LOC_val_solution.csv").unlink()
    (tmp_path / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 5\nILSVRC2012_val_00000002.JPEG 7\n")
    with pytest.raises(DataError, match="1 image.s. have no label in val.txt .e.g. ILSVRC2012_val_00000003.JPEG"):
        datasets.imagenet(tmp_path)


def test_imagenet_v2_numeric_folders_use_natural_order(tmp_path):
    root = tmp_path / "imagenetv2-matched-frequency-format-val"
    for i in range(1000):
        (root / str(i)).mkdir(parents=True)
    _jpeg(root / "10" / "x.jpeg")
    _jpeg(root / "9" / "x.jpeg")
    _jpeg(root / "100" / "x.jpeg")
    ds = datasets.imagenet_v2(tmp_path)
    assert [y for _, y in ds.samples] == [9, 10, 100]  # natural order, labels = folder numbers


@pytest.mark.parametrize("name", ["imagenet-a", "imagenet-r"])
def test_200_class_subsets_score_on_their_logits(tmp_path, name):
    wnids = synsets.subset_wnids(name)
    assert len(wnids) == 200
    indices = [int(x) for x in (TIMM_INFO / f"{name.replace('-', '_')}_indices.txt").read_text().split()]
    assert synsets.subset_indices(name) == indices  # the same as timm's --valid-labels
    root = tmp_path / name
    _all_wnid_folders(root, wnids)
    _jpeg(root / wnids[3] / "x.jpg")
    ds = datasets.imagenet_a(tmp_path) if name == "imagenet-a" else datasets.imagenet_r(tmp_path)
    assert ds.samples[0][1] == 3 and ds.logit_indices == indices

    class Fixed(torch.nn.Module):  # global max outside the subset, subset max on the true class
        def forward(self, x):
            logits = torch.zeros(x.shape[0], 1000)
            logits[:, 999 if 999 not in indices else 998] = 10.0
            logits[:, indices[3]] = 5.0
            return logits

    card = Card(name="fixed", paper="p", task="image-classification", plugin="p", builder="b", input_size=(3, 32, 32),
                num_classes=1000)
    out = classification.evaluate(Fixed(), card, ds, {"device": "cpu", "workers": 0, "channels_last": False})
    assert out["top1"] == 100.0 and out["images"] == 1


def test_real_labels_score_against_label_sets_and_skip_unlabelled(tmp_path):
    root = tmp_path / "val"
    for i in (1, 2, 3):
        _jpeg(root / f"ILSVRC2012_val_{i:08d}.JPEG")
    (root / "val.txt").write_text("\n".join(f"ILSVRC2012_val_{i:08d}.JPEG 0" for i in (1, 2, 3)))
    (tmp_path / "real.json").write_text(json.dumps([[7, 4], [], [0]]))
    ds = datasets.imagenet_real(tmp_path)
    assert ds.multi_labels == [[7, 4], [], [0]]

    class Predicts4(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(x.shape[0], 1000)
            logits[:, 4] = 1.0
            return logits

    card = Card(name="c", paper="p", task="image-classification", plugin="p", builder="b", input_size=(3, 32, 32),
                num_classes=1000)
    out = classification.evaluate(Predicts4(), card, ds, {"device": "cpu", "workers": 0})
    assert out["images"] == 2 and out["top1"] == 50.0 and out["decoded"] == 3  # image 2 has no ReaL label


def test_imagenet_c_parts_and_missing_layout(tmp_path):
    for c, s in (("fog", "1"), ("fog", "3"), ("snow", "3")):
        _all_wnid_folders(tmp_path / c / s, synsets.imagenet_wnids())
        _jpeg(tmp_path / c / s / "n01440764" / "x.JPEG")
    ds = datasets.imagenet_c(tmp_path, corruption="fog,snow", severity="3")
    assert [p.name for p in ds.parts] == ["imagenet-c/fog/3", "imagenet-c/snow/3"]
    assert ds.parts[0].options == {"corruption": "fog", "severity": 3}
    with pytest.raises(DataError, match=r"missing 72 \(e.g. gaussian_noise/1\)"):
        datasets.imagenet_c(tmp_path, corruption="all", severity="all")
    with pytest.raises(DataError, match="--corruption expected all or one of"):
        datasets.imagenet_c(tmp_path, corruption="rain")


def test_folder_non_wnid_classes_in_sorted_order_and_limit(tmp_path):
    for name in ("dog", "cat", "10", "9"):
        _jpeg(tmp_path / name / "a.png")
    ds = datasets.folder(tmp_path)
    assert ds.classes == ["9", "10", "cat", "dog"] and ds.label_space is None
    assert [y for _, y in ds.samples] == [0, 1, 2, 3]
    assert [p for p, _ in ds.limited(2).samples] == [p for p, _ in ds.samples[:2]]


def test_folder_of_wnids_maps_into_imagenet(tmp_path):
    make_demo_folder(tmp_path, n_images=4, n_classes=2)
    ds = datasets.folder(tmp_path)
    index = synsets.imagenet_index()
    assert ds.label_space == "imagenet-1k"
    assert {y for _, y in ds.samples} == {index[c] for c in ds.classes}


def test_folder_errors_are_one_line(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="expected images .* in the class folders of .*, found none"):
        datasets.folder(tmp_path)
    with pytest.raises(DataError, match="is not a directory"):
        datasets.folder(tmp_path / "nope")


# -- issue #10, item 11: text files that are not UTF-8, directory symlinks --------------------------


def test_ground_truth_file_that_is_not_utf8_is_one_line_naming_file_and_offset(tmp_path):
    _jpeg(tmp_path / "ILSVRC2012_val_00000001.JPEG")
    gt = tmp_path / "val.txt"
    gt.write_bytes(b"ILSVRC2012_val_00000001.JPEG 5\nILSVRC2012_val_\xff00000002.JPEG 7\n")
    with pytest.raises(DataError) as info:
        datasets.imagenet(tmp_path)
    assert str(info.value) == f"ground-truth file {gt} is not UTF-8 text: byte 0xff at offset 46 (invalid start byte)"
    gt.write_bytes("\ufeffILSVRC2012_val_00000001.JPEG 5\n".encode())  # a BOM is fine
    assert [y for _, y in datasets.imagenet(tmp_path).samples] == [5]


def test_eval_cli_with_a_latin1_ground_truth_file_exits_2_with_one_line(tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    _jpeg(tmp_path / "ILSVRC2012_val_00000001.JPEG")
    (tmp_path / "val.txt").write_bytes("ILSVRC2012_val_00000001.JPEG 5 # caf\xe9\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["eval", "deit-t", "--dataset", "imagenet", "--data-dir", str(tmp_path),
                                      "--no-pretrained", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: ground-truth file {tmp_path / 'val.txt'} is not UTF-8 text: byte 0xe9 at offset 36 (invalid continuation byte)"
    ]


def test_real_labels_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "real.json"
    path.write_bytes(b"[[1], [\x92]]")
    with pytest.raises(DataError, match=r"ReaL labels .*real.json is not UTF-8 text: byte 0x92 at offset 7"):
        synsets.real_labels(path)


def test_directory_link_loop_counts_each_image_once(tmp_path):
    _jpeg(tmp_path / "c1" / "a.jpg")
    _jpeg(tmp_path / "c1" / "sub" / "b.jpg")
    _jpeg(tmp_path / "c2" / "c.jpg")
    (tmp_path / "c1" / "up").symlink_to("..")  # the loop of the issue: once counted 41 times
    (tmp_path / "c1" / "sub" / "again").symlink_to("..")  # back up to the class folder itself
    (tmp_path / "c1" / "self").symlink_to(".")
    ds = datasets.folder(tmp_path)
    assert sorted((os.path.relpath(p, tmp_path), y) for p, y in ds.samples) == [
        ("c1/a.jpg", 0), ("c1/sub/b.jpg", 0), ("c2/c.jpg", 1)]


def test_directory_links_out_of_the_class_folder_are_not_followed(tmp_path):
    outside = tmp_path / "elsewhere"
    _jpeg(outside / "x.jpg")
    root = tmp_path / "data"
    _jpeg(root / "c1" / "a.jpg")
    _jpeg(root / "c2" / "c.jpg")
    (root / "c1" / "ext").symlink_to(outside)  # out of the dataset
    (root / "c1" / "sibling").symlink_to("../c2")  # into another class: c.jpg would get two labels
    _jpeg(root / "c1" / "inner" / "d.jpg")
    (root / "c1" / "inner2").symlink_to("inner")  # a second way into the same directory
    ds = datasets.folder(root)
    assert sorted((Path(p).name, y) for p, y in ds.samples) == [("a.jpg", 0), ("c.jpg", 1), ("d.jpg", 0)]
    assert not any("ext" in Path(p).parts or "sibling" in Path(p).parts for p, _ in ds.samples)


def test_linked_class_folders_still_work_but_not_a_link_to_the_dataset_itself(tmp_path):
    store = tmp_path / "store"
    _jpeg(store / "n01440764" / "a.jpg")
    root = tmp_path / "subset"
    root.mkdir()
    (root / "n01440764").symlink_to(store / "n01440764")  # how subsets are assembled
    _jpeg(root / "n01443537" / "b.jpg")
    ds = datasets.folder(root)
    assert [(Path(p).name, y) for p, y in ds.samples] == [("a.jpg", 0), ("b.jpg", 1)]
    (root / "all").symlink_to(".")
    with pytest.raises(DataError, match="class folder 'all' in .* links to the dataset folder or above it"):
        datasets.folder(root)
