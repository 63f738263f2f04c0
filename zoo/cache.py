"""zoo's weight cache: converted safetensors files keyed by model and source hash.

Layout under :func:`zoo.paths.zoo_home`::

    weights/<model>/<sha16>.safetensors   the converted state dict (builder's keys)
    weights/<model>/<sha16>.json          its manifest: source, raw sha256 and size, safetensors sha256
    downloads/<model>/<file>[.part]       URL / Drive downloads in progress (hub files stay in HF's cache)
    locks/<model>.lock                    one process at a time fetches and converts a model

``<sha16>`` is the first 16 hex digits of the *raw* file's sha256. Files appear by ``os.replace``
of a finished temporary file, the manifest last, so an entry is either complete or absent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.cards import NAME_RE, Card, WeightSource
from zoo.errors import WeightsError
from zoo.paths import zoo_home

BUNDLE_INDEX = "zoo-bundle.json"
_KEY = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Entry:
    model: str
    key: str
    path: Path  # the safetensors file
    manifest: dict[str, Any]

    @property
    def source(self) -> str:
        return str(self.manifest.get("source", ""))

    @property
    def sha256(self) -> str:
        return str(self.manifest.get("sha256", ""))


def weights_dir() -> Path:
    return zoo_home() / "weights"


def model_dir(model: str) -> Path:
    return weights_dir() / model


@contextlib.contextmanager
def lock(model: str) -> Iterator[None]:
    """Hold the per-model file lock (another process downloading the same model waits here)."""
    from filelock import FileLock

    path = zoo_home() / "locks" / f"{model}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


def entries(model: str | None = None) -> list[Entry]:
    """Every complete entry (safetensors + manifest), for one model or all."""
    root = weights_dir()
    dirs = [root / model] if model else sorted(p for p in root.glob("*") if p.is_dir())
    out = []
    for folder in dirs:
        for manifest_path in sorted(folder.glob("*.json")):
            key = manifest_path.stem
            tensors = folder / f"{key}.safetensors"
            if not (_KEY.match(key) and tensors.is_file()):
                continue
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            out.append(Entry(folder.name, key, tensors, manifest))
    return out


def find(card: Card) -> Entry | None:
    """The cached entry for ``card``: the first source (in card order) that has one."""
    found = entries(card.name)
    for source in card.weights:
        for entry in found:
            if entry.source == source.describe() and (source.sha256 is None or entry.sha256 == source.sha256):
                return entry
    # then a file registered by hand with `zoo cache add` (cards whose weights no script can fetch)
    return next((entry for entry in found if entry.source.startswith("manual:")), None)


def store(card: Card, source: WeightSource, raw: Path, raw_sha256: str, **extra: Any) -> Entry:
    """Convert ``raw`` to the builder's keys and write the entry (safetensors, then manifest)."""
    from zoo import checkpoint
    from zoo.fetch import sha256_file

    state_dict = checkpoint.load_converted(card, raw)
    key = raw_sha256[:16]
    folder = model_dir(card.name)
    tensors = folder / f"{key}.safetensors"
    checkpoint.save_safetensors(state_dict, tensors, metadata={"zoo_model": card.name, "source_sha256": raw_sha256})
    manifest = {
        "model": card.name,
        "source": source.describe(),
        "file": source.filename,
        "sha256": raw_sha256,
        "size": raw.stat().st_size,
        "safetensors": tensors.name,
        "safetensors_sha256": sha256_file(tensors),
        "plugin": card.plugin,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
    _write_json(folder / f"{key}.json", manifest)
    return Entry(card.name, key, tensors, manifest)


def remove(model: str) -> int:
    """Delete everything zoo keeps for ``model``; returns the bytes freed."""
    freed = 0
    for folder in (model_dir(model), zoo_home() / "downloads" / model):
        if folder.is_dir():
            freed += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
    return freed


# -- air-gapped transfer --------------------------------------------------------------------------


def export(found: list[Entry], out: Path) -> None:
    """Write a tar bundle of ``found`` entries (manifests carry the hashes checked on import)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w") as tar:
            index = [{"model": e.model, "key": e.key, "manifest": e.manifest} for e in found]
            _add_bytes(tar, BUNDLE_INDEX, json.dumps({"format": 1, "entries": index}, indent=2).encode())
            for entry in found:
                tar.add(str(entry.path), arcname=f"weights/{entry.model}/{entry.key}.safetensors", recursive=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_bundle(bundle: Path) -> list[Entry]:
    """Unpack a bundle made by :func:`export`, checking every file's sha256 before it is kept."""
    from zoo.fetch import sha256_file

    try:
        tar = tarfile.open(bundle, "r")
    except (OSError, tarfile.TarError) as exc:
        raise WeightsError(f"cannot read bundle {str(bundle)!r}: {exc}") from None
    imported = []
    with tar:
        index = _read_index(tar, bundle)
        for item in index:
            model, key, manifest = item.get("model"), item.get("key"), item.get("manifest")
            if not (isinstance(model, str) and NAME_RE.match(model) and isinstance(key, str) and _KEY.match(key)
                    and isinstance(manifest, dict)):
                raise WeightsError(f"bundle {str(bundle)!r}: malformed entry {item!r:.80}")
            member = _member(tar, f"weights/{model}/{key}.safetensors", bundle)
            folder = model_dir(model)
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{key}.safetensors"
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
            try:
                with os.fdopen(fd, "wb") as out, tar.extractfile(member) as src:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, out, 1 << 20)
                got = sha256_file(tmp)
                if got != manifest.get("safetensors_sha256"):
                    raise WeightsError(
                        f"bundle {str(bundle)!r}: {model} {key}.safetensors has sha256 {got}, "
                        f"expected {manifest.get('safetensors_sha256')}; nothing imported for it"
                    )
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
            _write_json(folder / f"{key}.json", {**manifest, "imported_from": str(bundle)})
            imported.append(Entry(model, key, target, manifest))
    return imported


def _read_index(tar: tarfile.TarFile, bundle: Path) -> list[dict[str, Any]]:
    member = _member(tar, BUNDLE_INDEX, bundle)
    try:
        data = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
        return list(data["entries"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WeightsError(f"bundle {str(bundle)!r}: {BUNDLE_INDEX} is not a zoo bundle index") from None


def _member(tar: tarfile.TarFile, name: str, bundle: Path) -> tarfile.TarInfo:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise WeightsError(f"bundle {str(bundle)!r} has no {name} (not made by `zoo cache export`?)") from None
    if not member.isfile():
        raise WeightsError(f"bundle {str(bundle)!r}: {name} is not a regular file")
    return member


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
