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
    task: str | None = None  #: both tasks (object-detection, instance-segmentation) list these datasets
    parts: list[Any] = field(default_factory=list)

    def require_segmentation(self) -> None:
        """Instance segmentation needs a mask for every ground-truth object: a DataError naming the first without."""
        for i, ann in enumerate(self.gt["annotations"]):
            if "segmentation" not in ann:
                raise DataError(f"{self.annotations}: annotations[{i}].segmentation: missing (instance segmentation "
                                "needs polygons or RLE for every object)")

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
    sizes = {img["id"]: (img["height"], img["width"]) for img in doc["images"]}
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
        if "segmentation" in ann:
            check_segmentation(ann["segmentation"], sizes[ann["image_id"]], f"{at}.segmentation")
    next_id = max((a for a in ann_ids), default=0) + 1
    for ann in doc["annotations"]:  # what pycocotools' COCOeval reads of every ground truth
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        ann.setdefault("iscrowd", 0)
        if "id" not in ann:
            ann["id"] = next_id
            next_id += 1
    return doc


MAX_COORD = 1e6  #: a polygon coordinate beyond this (pixels) is refused (pycocotools rasterizes the outline)


def check_segmentation(seg: Any, size: tuple[int, int], at: str) -> None:
    """A COCO segmentation: polygons ``[[x, y, x, y, ...], ...]`` (at least 3 points each) or RLE
    ``{size: [h, w], counts}`` of the image's size whose runs cover exactly ``h * w`` pixels
    (a hostile RLE would otherwise make pycocotools write past its buffer)."""
    if isinstance(seg, list):
        if not seg:
            raise DataError(f"{at}: expected at least one polygon, got []")
        for j, poly in enumerate(seg):
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2 \
                    or not all(_is_number(v) and abs(v) <= MAX_COORD for v in poly):
                raise DataError(f"{at}[{j}]: expected a polygon [x1, y1, x2, y2, x3, y3, ...] (an even count >= 6 of "
                                f"finite numbers within +-{MAX_COORD:g}), got {poly!r:.80}")
        return
    if not isinstance(seg, dict):
        raise DataError(f"{at}: expected polygons (a list) or RLE (an object with size and counts), "
                        f"got {type(seg).__name__}")
    rle_size, counts = seg.get("size"), seg.get("counts")
    if not isinstance(rle_size, list) or len(rle_size) != 2 or not all(_is_int(v) for v in rle_size) \
            or tuple(rle_size) != size:
        raise DataError(f"{at}.size: expected [height, width] of the image, {list(size)}, got {rle_size!r:.60}")
    if isinstance(counts, str):
        runs = rle_string_counts(counts, at)
    elif isinstance(counts, list) and all(_is_int(v) and v >= 0 for v in counts):
        runs = counts
    else:
        raise DataError(f"{at}.counts: expected a COCO RLE string or a list of run lengths >= 0, got {counts!r:.60}")
    if sum(runs) != size[0] * size[1]:
        raise DataError(f"{at}.counts: the runs cover {sum(runs)} pixels, the image has {size[0] * size[1]}")


def rle_string_counts(text: str, at: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools ``rleFrString``), checked."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        x = shift = 0
        more = True
        while more:
            if p >= len(text):
                raise DataError(f"{at}.counts: the RLE string ends inside a number")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise DataError(f"{at}.counts: {text[p]!r} at {p} is not a COCO RLE character")
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and c & 0x10:
                x |= -1 << shift
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise DataError(f"{at}.counts: a negative run length in the RLE string")
        counts.append(x)
    return counts


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
