"""The ``mvtec-ad``, ``visa`` and ``anomaly-folder`` datasets: test images with labels and masks, and the
normal training images k-shot references are drawn from, per category.

Layouts::

    mvtec-ad        DIR/CATEGORY/train/good/*.png, DIR/CATEGORY/test/{good,DEFECT}/*.png,
                    DIR/CATEGORY/ground_truth/DEFECT/NAME_mask.png   (good test images have no mask: all zero)
    visa            DIR/split_csv/1cls.csv (columns object, split, label, image, mask: the split AnomalyCLIP's
                    generate_dataset_json/visa.py reads), image and mask paths relative to DIR
    anomaly-folder  --dataset anomaly-folder:PATH, a user's own set in the mvtec-ad layout

Scanning opens no image; each problem is one :class:`DataError` naming the file (and the CSV line).
Samples are in a fixed order: categories by name, then test images by relative path.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from zoo.errors import DataError, UserError
from zoo_anomaly.task import NAME, parse_categories

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VISA_SPLIT = Path("split_csv") / "1cls.csv"
VISA_COLUMNS = ("object", "split", "label", "image", "mask")
MAX_CSV_BYTES = 64 << 20


@dataclass(frozen=True)
class Sample:
    """One test image: ``label`` 1 = anomalous; ``mask`` None = all normal."""

    path: str
    label: int
    mask: str | None
    name: str  #: relative to the category, e.g. ``test/crack/000.png`` (how scores and maps are named)


@dataclass(frozen=True)
class Category:
    name: str
    test: tuple[Sample, ...]
    train: tuple[str, ...]  #: normal training images (k-shot references), sorted by path


@dataclass(frozen=True)
class AnomalySet:
    """What ``zoo eval`` needs of a dataset (name, root, label, len, limited, parts, task), by category."""

    name: str
    root: Path
    categories: tuple[Category, ...]
    label: str = ""
    task: str = NAME
    parts: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(c.test) for c in self.categories)

    def limited(self, limit: int | None) -> AnomalySet:
        """The first ``limit`` test images in the fixed order (categories left empty are dropped)."""
        if limit is None:
            return self
        out, left = [], limit
        for cat in self.categories:
            if left <= 0:
                break
            out.append(replace(cat, test=cat.test[:left]))
            left -= len(out[-1].test)
        return replace(self, categories=tuple(out))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def select(categories: list[Category], wanted: list[str] | None, where: str) -> list[Category]:
    """``categories`` restricted to ``wanted`` (in the set's order); an unknown name is one line with
    the close ones."""
    if wanted is None:
        return categories
    known = [c.name for c in categories]
    for name in wanted:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UserError(f"{where}: no category {name!r} (its categories: {', '.join(known)}).{hint}")
    return [c for c in categories if c.name in wanted]


def scan_mvtec(root: Path, where: str, wanted: list[str] | None = None) -> list[Category]:
    """Every ``CATEGORY/test`` under ``root`` in the MVTec AD layout (only ``wanted`` ones are read)."""
    if not root.is_dir():
        raise DataError(f"{where}: {root} is not a directory")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "test").is_dir())
    if not names:
        raise DataError(f"{where}: no category in {root} (expected CATEGORY/test/good/*.png, the MVTec AD layout)")
    stubs = [Category(name=n, test=(), train=()) for n in names]
    return [_mvtec_category(root / c.name, where) for c in select(stubs, wanted, where)]


def _mvtec_category(folder: Path, where: str) -> Category:
    test: list[Sample] = []
    for kind in sorted(p for p in (folder / "test").iterdir() if p.is_dir() and not p.name.startswith(".")):
        for image in _images(kind):
            name = f"test/{kind.name}/{image.name}"
            if kind.name == "good":
                test.append(Sample(str(image), 0, None, name))
                continue
            mask = folder / "ground_truth" / kind.name / f"{image.stem}_mask.png"
            if not mask.is_file():
                raise DataError(f"{where}: {folder.name}/{name}: no mask {folder.name}/ground_truth/{kind.name}/"
                                f"{mask.name}")
            test.append(Sample(str(image), 1, str(mask), name))
    if not test:
        raise DataError(f"{where}: category {folder.name!r} has no test image in {folder / 'test'}")
    good = folder / "train" / "good"
    train = tuple(str(p) for p in _images(good)) if good.is_dir() else ()
    return Category(name=folder.name, test=tuple(test), train=train)


def _relative(root: Path, text: str, where: str) -> Path:
    path = PurePosixPath(text.replace("\\", "/"))
    if not text or path.is_absolute() or ".." in path.parts:
        raise DataError(f"{where}: expected a path relative to the dataset folder, got {text!r:.80}")
    return root / path


def read_visa(root: Path, where: str, wanted: list[str] | None = None) -> list[Category]:
    """VisA's ``split_csv/1cls.csv``: per object, test rows (normal/anomaly with mask) and normal train rows."""
    split = root / VISA_SPLIT
    if not root.is_dir():
        raise DataError(f"{where}: {root} is not a directory")
    if not split.is_file():
        raise DataError(f"{where}: {split} not found (VisA's split file: split_csv/1cls.csv)")
    if split.stat().st_size > MAX_CSV_BYTES:
        raise DataError(f"{where}: {split} is over {MAX_CSV_BYTES} bytes: not VisA's split file")
    try:
        with split.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{split}: not a CSV text: {exc}") from None
    if not rows or tuple(c.strip() for c in rows[0]) != VISA_COLUMNS:
        raise DataError(f"{split}:1: expected the header {','.join(VISA_COLUMNS)}, got {','.join(rows[0]) if rows else 'nothing'}")
    tests: dict[str, list[Sample]] = {}
    trains: dict[str, list[str]] = {}
    for line, row in enumerate(rows[1:], start=2):
        at = f"{split}:{line}"
        if not row:
            continue
        if len(row) != len(VISA_COLUMNS):
            raise DataError(f"{at}: expected {len(VISA_COLUMNS)} columns, got {len(row)}")
        obj, part, label, image, mask = (c.strip() for c in row)
        if not obj:
            raise DataError(f"{at}: object: empty")
        if part not in ("train", "test"):
            raise DataError(f"{at}: split: expected train or test, got {part!r:.40}")
        if label not in ("normal", "anomaly"):
            raise DataError(f"{at}: label: expected normal or anomaly, got {label!r:.40}")
        if wanted is not None and obj not in wanted:
            tests.setdefault(obj, [])
            continue
        path = _relative(root, image, f"{at}: image")
        if not path.is_file():
            raise DataError(f"{at}: image: {path} does not exist")
        if part == "train":
            if label == "normal":
                trains.setdefault(obj, []).append(str(path))
            tests.setdefault(obj, [])
            continue
        mask_path = None
        if label == "anomaly":
            mask_path = _relative(root, mask, f"{at}: mask")
            if not mask_path.is_file():
                raise DataError(f"{at}: mask: {mask_path} does not exist")
        tests.setdefault(obj, []).append(Sample(str(path), int(label == "anomaly"),
                                                str(mask_path) if mask_path else None, image))
    if not tests:
        raise DataError(f"{split}: no rows")
    stubs = [Category(name=n, test=(), train=()) for n in sorted(tests)]
    out = []
    for stub in select(stubs, wanted, where):
        samples = sorted(tests[stub.name], key=lambda s: s.name)
        if not samples:
            raise DataError(f"{where}: category {stub.name!r} has no test row in {split}")
        out.append(Category(name=stub.name, test=tuple(samples), train=tuple(sorted(trains.get(stub.name, [])))))
    return out


def _wanted(options: dict[str, Any], where: str) -> list[str] | None:
    category = options.pop("category", None)
    if options:
        raise DataError(f"{where}: takes only the category option, got {', '.join(sorted(options))}")
    try:
        return parse_categories(category)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def mvtec_ad(root: str | Path, **options: Any) -> AnomalySet:
    """MVTec AD in its official layout (``--data-dir DIR`` or ``$ZOO_DATA_DIR/mvtec-ad``)."""
    root = Path(root).expanduser()
    cats = scan_mvtec(root, "mvtec-ad", _wanted(dict(options), "mvtec-ad"))
    return AnomalySet(name="mvtec-ad", root=root, categories=tuple(cats), label="mvtec-ad")


def visa(root: str | Path, **options: Any) -> AnomalySet:
    """VisA with its ``split_csv/1cls.csv`` (``--data-dir DIR``)."""
    root = Path(root).expanduser()
    cats = read_visa(root, "visa", _wanted(dict(options), "visa"))
    return AnomalySet(name="visa", root=root, categories=tuple(cats), label="visa")


def anomaly_folder(root: str | Path, **options: Any) -> AnomalySet:
    """A user's own set in the MVTec AD layout: ``--dataset anomaly-folder:PATH``."""
    root = Path(root).expanduser()
    cats = scan_mvtec(root, f"anomaly-folder:{root}", _wanted(dict(options), "anomaly-folder"))
    return AnomalySet(name="anomaly-folder", root=root, categories=tuple(cats),
                      label=f"anomaly-folder:{root.resolve()}")


def draw_reference(category: Category, shots: int, seed: int) -> list[str]:
    """The k normal training images of the few-shot protocol: ``random.Random(seed).sample`` of the
    category's sorted train/good paths (the same draw for a seed, whichever other categories run)."""
    import random

    if shots > len(category.train):
        raise DataError(f"category {category.name!r}: {shots}-shot needs {shots} normal training images, "
                        f"it has {len(category.train)} (train/good)")
    return random.Random(seed).sample(list(category.train), shots)


def names(paths: Iterable[str]) -> list[str]:
    return [Path(p).name for p in paths]
