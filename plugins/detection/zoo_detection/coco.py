"""The ``coco`` and ``coco-json`` dataset layouts: a COCO instances file and its images.

Layouts::

    coco        DIR/annotations/instances_val2017.json and DIR/val2017/*.jpg (or DIR/images/val2017/*.jpg)
    coco-json   --dataset coco-json:IMAGES_DIR,ANNOTATIONS.json   (any COCO-format set)

The adapter reads and checks the annotation file (json only: no torch, no pycocotools) and that
every image it names exists; no image is opened. Every problem is one :class:`DataError` naming
the file and the entry (``instances.json: annotations[3].bbox: ...``).

Category ids: a model predicts ``C`` contiguous classes ``0..C-1``; a COCO file names categories by
arbitrary ids (COCO's 80 classes use ids 1..90 with gaps). :class:`Categories` is the one place
that maps between them: class ``k`` is the ``k``-th category in ascending id order, which for COCO
is exactly YOLOv6's ``coco80_to_coco91_class`` table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zoo.errors import DataError

TASK = "object-detection"
MAX_BYTES = 2 << 30  #: a bigger annotation file is not read (COCO train2017's is about 450 MB)
SPLIT = "val2017"
#: COCO's category ids of the 80 detection classes, in class order (YOLOv6 evaler.coco80_to_coco91_class)
COCO80_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
              32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
              58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87,
              88, 89, 90)


@dataclass(frozen=True)
class Categories:
    """Contiguous class indices <-> the dataset's category ids (ascending id order)."""

    ids: tuple[int, ...]  #: ``ids[k]`` is the category id of class ``k``
    names: tuple[str, ...]

    @classmethod
    def from_json(cls, categories: list[dict[str, Any]]) -> Categories:
        ordered = sorted(categories, key=lambda c: c["id"])
        return cls(ids=tuple(c["id"] for c in ordered), names=tuple(str(c.get("name", c["id"])) for c in ordered))

    def __len__(self) -> int:
        return len(self.ids)

    def to_id(self, index: int) -> int:
        """The category id of contiguous class ``index``; IndexError outside ``0..len-1``."""
        if not 0 <= index < len(self.ids):
            raise IndexError(f"class index {index} outside 0..{len(self.ids) - 1}")
        return self.ids[index]

    def for_model(self, num_classes: int, where: str = "") -> list[int | None]:
        """The category id of each of a model's ``num_classes`` outputs (None: not in this set).

        A model with as many classes as the set has categories maps class ``k`` to the ``k``-th id;
        an 80-class COCO model on a set whose ids are a subset of COCO's maps through COCO's table
        (its other classes are dropped); anything else is a DataError naming both counts.
        """
        if num_classes == len(self.ids):
            return list(self.ids)
        if num_classes == len(COCO80_IDS) and set(self.ids) <= set(COCO80_IDS):
            return [i if i in self.ids else None for i in COCO80_IDS]
        raise DataError(f"{where or 'dataset'}: {len(self.ids)} categories (ids {list(self.ids)[:8]}"
                        f"{'...' if len(self.ids) > 8 else ''}), but the model has {num_classes} classes "
                        "(expected as many, or 80 COCO classes on a subset of COCO's ids)")

    def to_index(self, category_id: int) -> int:
        """The contiguous class of ``category_id``; KeyError for an id the set does not have."""
        try:
            return self.ids.index(category_id)
        except ValueError:
            raise KeyError(category_id) from None


@dataclass(frozen=True)
class CocoImage:
    id: int
    path: str
    width: int
    height: int


@dataclass(frozen=True)
class CocoSet:
    """What ``zoo eval`` needs of a dataset (name, root, label, len, limited, parts, task), plus the
    checked annotation document (``gt``) the evaluator hands to pycocotools."""

    name: str
    root: Path
    annotations: Path
    images: list[CocoImage]
    categories: Categories
    gt: dict[str, Any] = field(repr=False)
    label: str = ""
    task: str = TASK
    parts: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def limited(self, limit: int | None) -> CocoSet:
        return self if limit is None else replace(self, images=self.images[:limit])


def _fail(where: str, problem: str) -> DataError:
    return DataError(f"{where}: {problem}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_annotations(path: Path) -> dict[str, Any]:
    """Read and check a COCO instances file; returns the document with ``area``/``iscrowd`` filled in
    where missing (area = bbox w*h, iscrowd = 0)."""
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: annotation file is empty")
    if size > MAX_BYTES:
        raise DataError(f"{path}: annotation file is {size} bytes, over the {MAX_BYTES} bytes this reader accepts")
    try:
        with path.open("rb") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"{path}: not a JSON text: {type(exc).__name__}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return check_document(doc, str(path))


def check_document(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise _fail(where, f"expected a JSON object with images, annotations, categories; got {type(doc).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise _fail(where, f"{key}: expected a list, got {type(doc.get(key)).__name__ if key in doc else 'nothing'}")
    if not doc["images"]:
        raise _fail(where, "images: the list is empty")
    if not doc["categories"]:
        raise _fail(where, "categories: the list is empty")
    cat_ids: set[int] = set()
    for i, cat in enumerate(doc["categories"]):
        at = f"{where}: categories[{i}]"
        if not isinstance(cat, dict) or not _is_int(cat.get("id")):
            raise DataError(f"{at}.id: expected an integer id, got {cat.get('id') if isinstance(cat, dict) else cat!r:.60}")
        if cat["id"] in cat_ids:
            raise DataError(f"{at}.id: id {cat['id']} repeats")
        cat_ids.add(cat["id"])
    image_ids: set[int] = set()
    for i, img in enumerate(doc["images"]):
        at = f"{where}: images[{i}]"
        if not isinstance(img, dict):
            raise DataError(f"{at}: expected an object, got {type(img).__name__}")
        if not _is_int(img.get("id")):
            raise DataError(f"{at}.id: expected an integer id, got {img.get('id')!r:.60}")
        if img["id"] in image_ids:
            raise DataError(f"{at}.id: id {img['id']} repeats")
        image_ids.add(img["id"])
        name = img.get("file_name")
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(f"{at}.file_name: expected a relative path inside the image folder, got {name!r:.80}")
        for key in ("width", "height"):
            if not _is_int(img.get(key)) or img[key] < 1:
                raise DataError(f"{at}.{key}: expected an integer >= 1, got {img.get(key)!r:.60}")
    ann_ids: set[Any] = set()
    for i, ann in enumerate(doc["annotations"]):
        at = f"{where}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise DataError(f"{at}: expected an object, got {type(ann).__name__}")
        if "id" in ann:
            if not _is_int(ann["id"]) or ann["id"] in ann_ids:
                raise DataError(f"{at}.id: expected a unique integer id, got {ann['id']!r:.60}")
            ann_ids.add(ann["id"])
        if ann.get("image_id") not in image_ids or not _is_int(ann.get("image_id")):
            raise DataError(f"{at}.image_id: {ann.get('image_id')!r:.60} is not the id of an entry of images")
        if ann.get("category_id") not in cat_ids or not _is_int(ann.get("category_id")):
            raise DataError(f"{at}.category_id: {ann.get('category_id')!r:.60} is not the id of an entry of categories")
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box) \
                or box[2] < 0 or box[3] < 0:
            raise DataError(f"{at}.bbox: expected [x, y, width, height] with finite numbers, width and height >= 0, "
                            f"got {box!r:.80}")
        if "area" in ann and (not _is_number(ann["area"]) or ann["area"] < 0):
            raise DataError(f"{at}.area: expected a finite number >= 0, got {ann['area']!r:.60}")
        if ann.get("iscrowd", 0) not in (0, 1) or isinstance(ann.get("iscrowd"), bool):
            raise DataError(f"{at}.iscrowd: expected 0 or 1, got {ann.get('iscrowd')!r:.60}")
    next_id = max((a for a in ann_ids), default=0) + 1
    for ann in doc["annotations"]:  # what pycocotools' COCOeval reads of every ground truth
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        ann.setdefault("iscrowd", 0)
        if "id" not in ann:
            ann["id"] = next_id
            next_id += 1
    return doc


def _load(name: str, images_dir: Path, annotations: Path, label: str) -> CocoSet:
    if not images_dir.is_dir():
        raise DataError(f"{name}: image folder {images_dir} not found")
    doc = read_annotations(annotations)
    images = []
    for i, img in enumerate(doc["images"]):
        path = images_dir / img["file_name"]
        if not path.is_file():
            raise DataError(f"{annotations}: images[{i}].file_name: {path} does not exist")
        images.append(CocoImage(id=img["id"], path=str(path), width=img["width"], height=img["height"]))
    images.sort(key=lambda im: im.id)  # a fixed order, whatever the file's
    return CocoSet(name=name, root=images_dir, annotations=annotations, images=images,
                   categories=Categories.from_json(doc["categories"]), gt=doc, label=label)


def coco(root: str | Path, **options: Any) -> CocoSet:
    """COCO val2017: ``root/annotations/instances_val2017.json`` and ``root/val2017`` (or ``root/images/val2017``)."""
    if options:
        raise DataError(f"coco: takes no dataset options, got {', '.join(sorted(options))}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"coco: {root} is not a directory")
    annotations = root / "annotations" / f"instances_{SPLIT}.json"
    candidates = [root / SPLIT, root / "images" / SPLIT]
    images_dir = next((c for c in candidates if c.is_dir()), None)
    if images_dir is None:
        raise DataError(f"coco: no image folder in {root} (expected {SPLIT}/ or images/{SPLIT}/)")
    if not annotations.is_file():
        raise DataError(f"coco: {annotations} not found (expected annotations/instances_{SPLIT}.json)")
    return _load("coco", images_dir, annotations, "coco")


def coco_json(root: str | Path, **options: Any) -> CocoSet:
    """Any COCO-format set: ``root`` is ``IMAGES_DIR,ANNOTATIONS.json`` (``--dataset coco-json:IMAGES_DIR,ANN.json``)."""
    if options:
        raise DataError(f"coco-json: takes no dataset options, got {', '.join(sorted(options))}")
    text = str(root)
    images, sep, annotations = text.rpartition(",")
    if not sep or not images or not annotations:
        raise DataError(f"coco-json: expected IMAGES_DIR,ANNOTATIONS.json (e.g. --dataset coco-json:imgs,ann.json), "
                        f"got {text!r}")
    images_dir, ann_path = Path(images).expanduser(), Path(annotations).expanduser()
    return _load("coco-json", images_dir, ann_path, f"coco-json:{images_dir.resolve()},{ann_path.resolve()}")
