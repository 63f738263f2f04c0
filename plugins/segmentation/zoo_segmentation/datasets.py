"""The ``ade20k`` and ``seg-folder`` dataset layouts: images and their label PNGs, paired.

Layouts::

    ade20k      DIR/images/validation/*.jpg and DIR/annotations/validation/*.png (ADEChallengeData2016)
    seg-folder  --dataset seg-folder:IMAGES,MASKS   (pairs by file stem; a class list beside the masks)

The adapters pair the files, check that each pair has one image and one mask of the same size
(image headers only: nothing is decoded) and read the class list; every problem is one
:class:`DataError` line naming the file. Pairs are sorted by file name, as mmseg's
``CustomDataset`` sorts them.

A ``seg-folder`` class list is ``MASKS/classes.txt`` (one name per line) or ``MASKS/classes.json``
(a list of names, or ``{"classes": [...], "reduce_zero_label": bool, "ignore_index": int}`` to say
how the masks encode labels; without it the card's encoding applies). The masks ``zoo eval
--save-masks`` writes carry such a ``classes.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zoo.errors import DataError

TASK = "semantic-segmentation"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")
MAX_CLASS_FILE = 1 << 20  #: bytes; a bigger class list is not a class list
MAX_CLASSES = 65535


@dataclass(frozen=True)
class Pair:
    image: str
    mask: str
    stem: str


@dataclass(frozen=True)
class SegSet:
    """What ``zoo eval`` needs of a dataset (name, root, label, len, limited, parts, task), plus the
    pairs, the class names and, when the set says so, its label encoding."""

    name: str
    root: Path
    pairs: list[Pair]
    classes: tuple[str, ...] | None = None  #: None: names from the card (or "class k")
    reduce_zero_label: bool | None = None  #: None: the card's
    ignore_index: int | None = None  #: None: the card's
    label: str = ""
    task: str = TASK
    parts: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)

    def limited(self, limit: int | None) -> SegSet:
        return self if limit is None else replace(self, pairs=self.pairs[:limit])


def ade20k_classes() -> tuple[tuple[str, ...], list[list[int]]]:
    """ADE20K's 150 class names and mmseg's palette for them (``ade20k.json``, with its source)."""
    doc = json.loads((Path(__file__).parent / "ade20k.json").read_text(encoding="utf-8"))
    return tuple(doc["classes"]), doc["palette"]


MASK_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L", "1")  #: one channel of class indices


def _image_size(path: Path, exif: bool) -> tuple[int, int]:
    """(width, height) as the decoder will see it, from the header only: OpenCV applies the EXIF
    orientation of a JPEG (transposed sizes for orientations 5-8), Pillow's mask reader does not
    (``exif=False``: a mask, whose mode must be one channel of class indices)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
            if not exif and im.mode not in MASK_MODES:
                raise DataError(f"{path}: mask mode {im.mode} ({len(im.getbands())} channels); expected one channel "
                                "of class indices (8- or 16-bit grey, or palette)")
            if exif and im.format in ("JPEG", "TIFF", "WEBP", "PNG"):
                orientation = im.getexif().get(0x0112, 1)
                if orientation in (5, 6, 7, 8):
                    width, height = height, width
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not an image this reader can open ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
    except Image.DecompressionBombError as exc:  # over Pillow's pixel limit
        raise DataError(f"{path}: {exc}") from None
    return width, height


def _by_stem(folder: Path, extensions: tuple[str, ...], what: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in extensions:
            continue
        if path.stem in found:
            raise DataError(f"{path}: a second {what} named {path.stem!r} (also {found[path.stem].name}); "
                            "pairs are matched by file stem")
        found[path.stem] = path
    return found


def pair_files(images_dir: Path, masks_dir: Path, image_ext: tuple[str, ...] = IMAGE_EXTENSIONS,
               check_sizes: bool = True) -> list[Pair]:
    """Image/mask pairs by stem, sorted by image file name; one DataError line for the first image
    without a mask, mask without an image, or pair of different sizes."""
    images = _by_stem(images_dir, image_ext, "image")
    masks = _by_stem(masks_dir, MASK_EXTENSIONS, "mask")
    for stem, path in images.items():
        if stem not in masks:
            raise DataError(f"{path}: no mask {stem}.png in {masks_dir}")
    for stem, path in masks.items():
        if stem not in images:
            raise DataError(f"{path}: no image named {stem}.* in {images_dir}")
    if not images:
        raise DataError(f"{images_dir}: no images ({', '.join(image_ext)})")
    pairs = [Pair(image=str(images[s]), mask=str(masks[s]), stem=s) for s in sorted(images, key=lambda s: images[s].name)]
    if check_sizes:
        for pair in pairs:
            size = _image_size(Path(pair.image), exif=True)
            mask_size = _image_size(Path(pair.mask), exif=False)
            if size != mask_size:
                raise DataError(f"{pair.mask}: mask is {mask_size[0]}x{mask_size[1]} but its image {Path(pair.image).name} "
                                f"is {size[0]}x{size[1]} (width x height)")
    return pairs


def read_classes(masks_dir: Path) -> tuple[tuple[str, ...] | None, bool | None, int | None]:
    """``(names, reduce_zero_label, ignore_index)`` from ``classes.json`` or ``classes.txt`` beside
    the masks; Nones for what the set does not say."""
    json_path, txt_path = masks_dir / "classes.json", masks_dir / "classes.txt"
    if json_path.is_file() and txt_path.is_file():
        raise DataError(f"{masks_dir}: both classes.json and classes.txt; keep one class list")
    path = json_path if json_path.is_file() else txt_path if txt_path.is_file() else None
    if path is None:
        return None, None, None
    size = path.stat().st_size
    if size > MAX_CLASS_FILE:
        raise DataError(f"{path}: {size} bytes, over the {MAX_CLASS_FILE} a class list may have")
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot read as UTF-8 text ({type(exc).__name__})") from None
    if path.suffix == ".txt":
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if not names:
            raise DataError(f"{path}: no class names (one per line)")
        return _names(names, path), None, None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise DataError(f"{path}: nested too deeply to be a class list") from None
    if isinstance(doc, list):
        return _names(doc, path), None, None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a list of names or an object with classes, got {type(doc).__name__}")
    unknown = sorted(set(doc) - {"classes", "reduce_zero_label", "ignore_index"})
    if unknown:
        raise DataError(f"{path}: {unknown[0]}: unknown key (allowed: classes, reduce_zero_label, ignore_index)")
    if "classes" not in doc:
        raise DataError(f"{path}: classes: missing (a list of class names)")
    reduce = doc.get("reduce_zero_label")
    if reduce is not None and not isinstance(reduce, bool):
        raise DataError(f"{path}: reduce_zero_label: expected true or false, got {reduce!r:.40}")
    ignore = doc.get("ignore_index")
    if ignore is not None and (isinstance(ignore, bool) or not isinstance(ignore, int) or not 0 <= ignore <= 65535):
        raise DataError(f"{path}: ignore_index: expected an integer in 0..65535, got {ignore!r:.40}")
    return _names(doc["classes"], path), reduce, ignore


def _names(names: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(names, list) or not names:
        raise DataError(f"{path}: classes: expected a non-empty list of names, got {names!r:.60}")
    if len(names) > MAX_CLASSES:
        raise DataError(f"{path}: classes: {len(names)} names, more than {MAX_CLASSES}")
    bad = next((i for i, n in enumerate(names) if not isinstance(n, str) or not n.strip()), None)
    if bad is not None:
        raise DataError(f"{path}: classes[{bad}]: expected a non-empty name, got {names[bad]!r:.40}")
    return tuple(names)


def ade20k(root: str | Path, **options: Any) -> SegSet:
    """ADE20K val (ADEChallengeData2016): ``root/images/validation/*.jpg`` and
    ``root/annotations/validation/*.png``; 150 classes, label 0 is "other"."""
    if options:
        raise DataError(f"ade20k: takes no dataset options, got {', '.join(sorted(options))}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"ade20k: {root} is not a directory")
    images_dir, masks_dir = root / "images" / "validation", root / "annotations" / "validation"
    for folder, what in ((images_dir, "images/validation"), (masks_dir, "annotations/validation")):
        if not folder.is_dir():
            raise DataError(f"ade20k: no {what}/ folder in {root} (the ADEChallengeData2016 layout)")
    pairs = pair_files(images_dir, masks_dir, image_ext=(".jpg",))
    return SegSet(name="ade20k", root=root, pairs=pairs, classes=ade20k_classes()[0], reduce_zero_label=True,
                  label="ade20k")


def seg_folder(root: str | Path, **options: Any) -> SegSet:
    """A user's image/mask pairs: ``root`` is ``IMAGES,MASKS`` (``--dataset seg-folder:IMAGES,MASKS``)."""
    if options:
        raise DataError(f"seg-folder: takes no dataset options, got {', '.join(sorted(options))}")
    text = str(root)
    images, sep, masks = text.rpartition(",")
    if not sep or not images.strip() or not masks.strip():
        raise DataError(f"seg-folder: expected IMAGES,MASKS (e.g. --dataset seg-folder:imgs,masks), got {text!r}")
    images_dir, masks_dir = Path(images).expanduser(), Path(masks).expanduser()
    for folder, what in ((images_dir, "image"), (masks_dir, "mask")):
        if not folder.is_dir():
            raise DataError(f"seg-folder: {what} folder {folder} is not a directory")
    classes, reduce, ignore = read_classes(masks_dir)
    pairs = pair_files(images_dir, masks_dir)
    return SegSet(name="seg-folder", root=images_dir, pairs=pairs, classes=classes, reduce_zero_label=reduce,
                  ignore_index=ignore, label=f"seg-folder:{images_dir.resolve()},{masks_dir.resolve()}")
