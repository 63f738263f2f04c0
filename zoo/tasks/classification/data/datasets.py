"""Dataset adapters for ``zoo eval --dataset``: the ImageNet family and any class-per-folder set.

An adapter is called as ``fn(root, **options)`` and returns an :class:`EvalSet`: a fixed, sorted
list of ``(path, label)`` samples plus what scoring needs (a logit subset for the 200-class
sets, multi-labels for ReaL, or named parts for ImageNet-C). Adapters only list files; images are
decoded by :class:`ImageDataset` in the loader's workers.

A wrong or incomplete layout raises :class:`~zoo.errors.DataError` with one line naming what
was expected and what was found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zoo.errors import DataError
from zoo.tasks.classification.data import synsets

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
WNID_RE = re.compile(r"^n\d{8}$")
CLASSIFICATION = "image-classification"
CORRUPTIONS = (  # ImageNet-C (Hendrycks & Dietterich 2019): the 15 corruptions of the benchmark
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")


@dataclass
class EvalSet:
    """What an adapter returns: samples in a fixed order and how to score them."""

    name: str  #: shown in tables and results ("imagenet", "imagenet-c/fog/3")
    root: Path
    samples: list[tuple[str, int]] = field(default_factory=list)  #: (path, label), sorted
    classes: list[str] = field(default_factory=list)  #: class names, label order
    task: str = CLASSIFICATION
    label_space: str | None = None  #: "imagenet-1k" when labels are ImageNet-1k indices
    logit_indices: list[int] | None = None  #: score on these logits only (ImageNet-A/-R)
    multi_labels: list[list[int]] | None = None  #: per sample, every correct label (ReaL)
    parts: list[EvalSet] = field(default_factory=list)  #: evaluated one by one (ImageNet-C)
    options: dict[str, Any] = field(default_factory=dict)  #: adapter options, for the record
    label: str | None = None  #: how a run is recorded when not by the dataset's name (``folder:PATH``)

    def __len__(self) -> int:
        return len(self.samples)

    def limited(self, limit: int | None) -> EvalSet:
        """The first ``limit`` samples (in the fixed order); parts are limited one by one."""
        if limit is None:
            return self
        if self.parts:
            return replace(self, parts=[part.limited(limit) for part in self.parts])
        return replace(self, samples=self.samples[:limit],
                       multi_labels=None if self.multi_labels is None else self.multi_labels[:limit])


def natural_key(text: str) -> list[Any]:
    """Case-insensitive key where digit runs compare as numbers ('2' < '10'), like timm's."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.lower())]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


def _images_under(folder: Path, visited: set[str] | None = None) -> list[str]:
    """Image files under ``folder``, recursively, each real directory read at most once.

    Directory symlinks (issue #10, item 11): one inside ``folder`` is followed only when its
    target lies inside ``folder`` itself (resolved) and has not been read yet. So a link back up
    (``c1/up -> ..``) or to itself, a link out of the class folder (to a sibling class or outside
    the dataset) and a second link to the same directory add nothing: no image is counted twice
    and no image gets a second label. ``folder`` itself may be a link (class folders linked from
    elsewhere are how subsets are assembled). ``visited`` is shared across a dataset's classes.
    """
    visited = set() if visited is None else visited
    top = os.path.realpath(folder)
    found = []
    pending = [(str(folder), top)]
    while pending:
        path, real = pending.pop()
        if real in visited:
            continue
        visited.add(real)
        try:
            entries = list(os.scandir(path))
        except OSError:  # unreadable: as os.walk does, skip it (its images cannot be decoded anyway)
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                if _is_image(entry.name):
                    found.append(entry.path)
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if target != top and not target.startswith(top.rstrip(os.sep) + os.sep):
                    continue  # out of this class folder (or up to or above it)
            else:
                target = os.path.join(real, entry.name)
            pending.append((entry.path, target))
    return found


def _subdirs(root: Path) -> list[str]:
    return sorted((e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")), key=natural_key)


def _found(root: Path) -> str:
    """A short description of what is in ``root``, for error messages."""
    dirs = _subdirs(root)
    files = [e.name for e in os.scandir(root) if e.is_file() and not e.name.startswith(".")]
    if not dirs and not files:
        return "found an empty directory"
    parts = []
    if dirs:
        parts.append(f"{len(dirs)} folder{'s' * (len(dirs) != 1)} ({', '.join(dirs[:3])}{', ...' if len(dirs) > 3 else ''})")
    if files:
        images = sum(map(_is_image, files))
        parts.append(f"{len(files)} file{'s' * (len(files) != 1)} ({images} images)")
    return "found " + " and ".join(parts)


def _check_dir(root: Path, dataset: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{dataset}: {root} is not a directory")
    return root


def _descend(root: Path, names: Sequence[str]) -> Path:
    """``root/name`` for the first existing conventional sub-folder (``val/``...), else ``root``."""
    for name in names:
        if (root / name).is_dir():
            return root / name
    return root


def _class_folder_samples(root: Path, folders: Sequence[str], labels: Sequence[int], dataset: str) -> list[tuple[str, int]]:
    samples = []
    visited: set[str] = set()  # a directory reached from two class folders counts for the first only
    real_root = os.path.realpath(root)
    for folder, label in zip(folders, labels, strict=True):
        real = os.path.realpath(root / folder)
        if real_root == real or real_root.startswith(real.rstrip(os.sep) + os.sep):
            raise DataError(f"{dataset}: class folder {folder!r} in {root} links to the dataset folder or above it")
        samples.extend((path, label) for path in _images_under(root / folder, visited))
    if not samples:
        raise DataError(f"{dataset}: expected images ({', '.join(IMG_EXTENSIONS)}) in the class folders of {root}, found none")
    samples.sort(key=lambda s: natural_key(s[0]))
    return samples


def _wnid_folders(root: Path, dataset: str, allowed: Sequence[str], expected: int, example: str) -> list[str]:
    folders = _subdirs(root)
    if not folders:
        raise DataError(f"{dataset}: expected {expected} class folders named by WordNet id ({example}) in {root}, {_found(root)}")
    unknown = [f for f in folders if f not in set(allowed)]
    if unknown:
        raise DataError(f"{dataset}: expected {expected} class folders named by WordNet id ({example}) in {root}, "
                        f"found {len(unknown)} other folder(s) ({', '.join(unknown[:3])})")
    if len(folders) != expected:
        raise DataError(f"{dataset}: expected {expected} class folders named by WordNet id in {root}, found {len(folders)} "
                        f"(missing e.g. {', '.join(sorted(set(allowed) - set(folders))[:3])})")
    return folders


# -- adapters -------------------------------------------------------------------------------------


def folder(root: str | Path, **options: Any) -> EvalSet:
    """Any class-per-folder set. WordNet-id folders map into ImageNet-1k; others index in sorted order."""
    root = _check_dir(Path(root), "folder")
    folders = _subdirs(root)
    if not folders:
        raise DataError(f"folder:{root}: expected one sub-folder per class with images inside, {_found(root)}")
    index = synsets.imagenet_index() if all(WNID_RE.match(f) for f in folders) else None
    if index is not None and all(f in index for f in folders):
        labels, space = [index[f] for f in folders], "imagenet-1k"
    else:
        labels, space = list(range(len(folders))), None
    samples = _class_folder_samples(root, folders, labels, f"folder:{root}")
    return EvalSet(name="folder", root=root, samples=samples, classes=folders, label_space=space,
                   label=f"folder:{root}")


_GT_FILES = ("LOC_val_solution.csv", "val_labels.txt", "val.txt", "ground_truth.txt")


def _flat_val(root: Path, dataset: str) -> list[tuple[str, int]] | None:
    """The flat val folder (``ILSVRC2012_val_*.JPEG``) with a ground-truth file, or None."""
    gt = next((root / name for name in _GT_FILES if (root / name).is_file()), None)
    if gt is None:
        return None
    index = synsets.imagenet_index()
    labels: dict[str, int] = {}
    for n, line in enumerate(synsets.read_text(gt, "ground-truth file").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("ImageId"):
            continue
        name, _, rest = line.replace(",", " ", 1).partition(" ")
        token = rest.split()[0] if rest.split() else ""
        if token in index:
            labels[Path(name).stem] = index[token]
        elif token.isdigit() and int(token) < 1000:
            labels[Path(name).stem] = int(token)
        else:
            raise DataError(f"{dataset}: {gt} line {n}: expected 'FILE WNID' or 'FILE INDEX' (0-999), got {line[:60]!r}")
    images = sorted((str(root / f) for f in os.listdir(root) if _is_image(f)), key=natural_key)
    if not images:
        raise DataError(f"{dataset}: {gt.name} is in {root} but the images are not ({_found(root)})")
    missing = [Path(p).name for p in images if Path(p).stem not in labels]
    if missing:
        raise DataError(f"{dataset}: {len(missing)} image(s) have no label in {gt.name} (e.g. {missing[0]})")
    return [(p, labels[Path(p).stem]) for p in images]


def imagenet(root: str | Path, **options: Any) -> EvalSet:
    """ImageNet-1k val: 1000 WordNet-id folders, or the flat val folder with its ground-truth file."""
    root = _descend(_check_dir(Path(root), "imagenet"), ("val", "validation"))
    flat = _flat_val(root, "imagenet")
    if flat is not None:
        samples, classes = flat, list(synsets.imagenet_wnids())
    else:
        if not _subdirs(root):
            raise DataError(f"imagenet: expected 1000 WordNet-id class folders (n01440764/...) or flat "
                            f"ILSVRC2012_val_*.JPEG files with {' or '.join(_GT_FILES)} in {root}, {_found(root)}")
        classes = _wnid_folders(root, "imagenet", synsets.imagenet_wnids(), 1000, "n01440764/...")
        index = synsets.imagenet_index()
        samples = _class_folder_samples(root, classes, [index[c] for c in classes], "imagenet")
    return EvalSet(name="imagenet", root=root, samples=samples, classes=classes, label_space="imagenet-1k")


def imagenet_real(root: str | Path, **options: Any) -> EvalSet:
    """ImageNet val scored with the ReaL labels (``real.json`` beside the images, else timm's copy)."""
    base = imagenet(root)
    candidates = [Path(root) / "real.json", base.root / "real.json", base.root.parent / "real.json"]
    labels = synsets.real_labels(next((p for p in candidates if p.is_file()), None))
    pattern = re.compile(r"^ILSVRC2012_val_(\d{8})\.", re.IGNORECASE)
    multi = []
    for path, _label in base.samples:
        match = pattern.match(os.path.basename(path))
        if match is None or not 1 <= int(match.group(1)) <= len(labels):
            raise DataError(f"imagenet-real: expected val files named ILSVRC2012_val_00000001.JPEG..."
                            f"{len(labels):08d}, found {os.path.basename(path)!r}")
        multi.append(list(labels[int(match.group(1)) - 1]))
    return replace(base, name="imagenet-real", multi_labels=multi)


def imagenet_v2(root: str | Path, **options: Any) -> EvalSet:
    """ImageNetV2: folders ``0``..``999`` named by class index (natural order, not lexical)."""
    root = _check_dir(Path(root), "imagenet-v2")
    subdirs = _subdirs(root)
    if len(subdirs) == 1 and not subdirs[0].isdigit():  # imagenetv2-matched-frequency-format-val/
        root = root / subdirs[0]
        subdirs = _subdirs(root)
    numeric = [d for d in subdirs if d.isdigit() and int(d) < 1000]
    if len(numeric) != 1000 or len(subdirs) != 1000:
        raise DataError(f"imagenet-v2: expected 1000 class folders named 0..999 in {root}, "
                        + (f"found {len(numeric)} numeric of {len(subdirs)}" if subdirs else _found(root)))
    samples = _class_folder_samples(root, numeric, [int(d) for d in numeric], "imagenet-v2")
    return EvalSet(name="imagenet-v2", root=root, samples=samples, classes=list(synsets.imagenet_wnids()),
                   label_space="imagenet-1k")


def imagenet_sketch(root: str | Path, **options: Any) -> EvalSet:
    """ImageNet-Sketch: 1000 WordNet-id folders (``sketch/`` in the release)."""
    root = _descend(_check_dir(Path(root), "imagenet-sketch"), ("sketch",))
    classes = _wnid_folders(root, "imagenet-sketch", synsets.imagenet_wnids(), 1000, "n01440764/...")
    index = synsets.imagenet_index()
    samples = _class_folder_samples(root, classes, [index[c] for c in classes], "imagenet-sketch")
    return EvalSet(name="imagenet-sketch", root=root, samples=samples, classes=classes, label_space="imagenet-1k")


def _subset(name: str, root: str | Path) -> EvalSet:
    root = _descend(_check_dir(Path(root), name), (name, name.replace("-", "_")))
    wnids = synsets.subset_wnids(name)
    classes = _wnid_folders(root, name, wnids, len(wnids), f"{wnids[0]}/...")
    position = {wnid: i for i, wnid in enumerate(wnids)}
    samples = _class_folder_samples(root, classes, [position[c] for c in classes], name)
    return EvalSet(name=name, root=root, samples=samples, classes=list(wnids), label_space="imagenet-1k",
                   logit_indices=synsets.subset_indices(name))


def imagenet_a(root: str | Path, **options: Any) -> EvalSet:
    """ImageNet-A: 200 WordNet-id folders, scored on those 200 logits (Hendrycks et al.)."""
    return _subset("imagenet-a", root)


def imagenet_r(root: str | Path, **options: Any) -> EvalSet:
    """ImageNet-R: 200 WordNet-id folders, scored on those 200 logits (Hendrycks et al.)."""
    return _subset("imagenet-r", root)


def _choices(value: Any, allowed: Sequence[str], option: str, default_all: Sequence[str]) -> list[str]:
    if value is None or str(value) == "all":
        return list(default_all)
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise DataError(f"imagenet-c: {option} expected all or one of {', '.join(allowed)}, got {value!r}")
    return items


def imagenet_c(root: str | Path, corruption: str | None = "all", severity: str | int | None = "all",
               **options: Any) -> EvalSet:
    """ImageNet-C: ``<corruption>/<severity 1-5>/<wnid>/``; one part per corruption and severity."""
    root = _check_dir(Path(root), "imagenet-c")
    names = _choices(corruption, CORRUPTIONS + EXTRA_CORRUPTIONS, "--corruption", CORRUPTIONS)
    levels = _choices(severity, ("1", "2", "3", "4", "5"), "--severity", ("1", "2", "3", "4", "5"))
    missing = [f"{c}/{s}" for c in names for s in levels if not (root / c / s).is_dir()]
    if missing:
        raise DataError(f"imagenet-c: expected {root}/<corruption>/<severity>/<wnid>/ for {len(names)} corruption(s) "
                        f"x {len(levels)} severities, missing {len(missing)} (e.g. {missing[0]}); {_found(root)}")
    index = synsets.imagenet_index()
    parts = []
    for c in names:
        for s in levels:
            part_root = root / c / s
            classes = _wnid_folders(part_root, f"imagenet-c/{c}/{s}", synsets.imagenet_wnids(), 1000, "n01440764/...")
            samples = _class_folder_samples(part_root, classes, [index[k] for k in classes], f"imagenet-c/{c}/{s}")
            parts.append(EvalSet(name=f"imagenet-c/{c}/{s}", root=part_root, samples=samples, classes=classes,
                                 label_space="imagenet-1k", options={"corruption": c, "severity": int(s)}))
    return EvalSet(name="imagenet-c", root=root, parts=parts, label_space="imagenet-1k",
                   options={"corruption": corruption or "all", "severity": str(severity or "all")})


ADAPTERS: dict[str, str] = {  # what the core registers through the zoo_datasets hook
    "imagenet": "zoo.tasks.classification.data.datasets:imagenet",
    "imagenet-v2": "zoo.tasks.classification.data.datasets:imagenet_v2",
    "imagenet-real": "zoo.tasks.classification.data.datasets:imagenet_real",
    "imagenet-sketch": "zoo.tasks.classification.data.datasets:imagenet_sketch",
    "imagenet-a": "zoo.tasks.classification.data.datasets:imagenet_a",
    "imagenet-r": "zoo.tasks.classification.data.datasets:imagenet_r",
    "imagenet-c": "zoo.tasks.classification.data.datasets:imagenet_c",
    "folder": "zoo.tasks.classification.data.datasets:folder",
}
