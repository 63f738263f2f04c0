"""zoo's weight cache: converted safetensors files keyed by model and source hash.

Layout under :func:`zoo.paths.zoo_home`::

    weights/<model>/<sha16>.safetensors   official weights, converted (builder's keys)
    weights/<model>/<sha16>.json          its manifest: origin, source, raw sha256 and size, safetensors sha256
    weights/<model>/manual.safetensors    the one file added by hand (`zoo cache add`) that is not
    weights/<model>/manual.json           provably the card's own (its sha256 is none the card states)
    weights/<model>/.<name>.<rand>.tmp    a file being written (or left by a killed process: "incomplete")
    weights/.import-<rand>/               a bundle being staged by `zoo cache import`
    downloads/<model>/<file>[.part]       URL / Drive downloads in progress (hub files stay in HF's cache)
    locks/<model>.lock                    one process at a time fetches, converts or removes a model

``<sha16>`` is the first 16 hex digits of the *raw* file's sha256. Files appear by ``os.replace``
of a finished temporary file, the manifest last, so an entry is either complete or absent.

Every user-given model name becomes a path through :func:`check_name` and :func:`_under` only:
one path component, never ``..``, ``/`` or an absolute path, and never a symbolic link followed out
of the cache.

Origins (manifest ``origin``): ``official`` bytes came from one of the card's sources, or were
added by hand with a sha256 the card states (then they *are* the official file); ``manual`` bytes
were added by hand and cannot be proven official. A bundle moves bytes without changing them, so
an imported entry keeps its origin and records ``imported_from``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UserError, WeightsError, first_line
from zoo.paths import write_text_atomic, zoo_home
from zoo.registry.cards import NAME_RE, Card, WeightSource

BUNDLE_INDEX = "zoo-bundle.json"
MANUAL = "manual"  # key of the one hand-added entry of a model
ORIGINS = ("official", "manual")
STAGING = ".import-"  # prefix of a bundle's staging folder under weights/
_KEY = re.compile(r"^(?:[0-9a-f]{16}|manual)$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_MAX_NAME = 100
_MAX_INDEX = 16 << 20  # bytes: a bundle index is a few KB per entry
_CHUNK = 1 << 20


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

    @property
    def origin(self) -> str:
        """``official`` or ``manual``; the ``manual`` slot is manual whatever its manifest says."""
        if self.key == MANUAL:
            return "manual"
        origin = self.manifest.get("origin")
        if origin in ORIGINS:
            return str(origin)
        # written before origins were recorded: a hand-added file shows only in its source or added_from
        return "manual" if self.source.startswith("manual:") or "added_from" in self.manifest else "official"


# -- names to paths: the one place -------------------------------------------------------------------


def check_name(name: object) -> str:
    """``name`` if it can be a model folder: one lowercase path component (no ``/``, ``..``, absolute path)."""
    if not (isinstance(name, str) and len(name) <= _MAX_NAME and NAME_RE.match(name)):
        raise UserError(
            f"{name!r} is not a model name (lowercase letters, digits, '.', '_' and '-', starting with a "
            f"letter or digit; no '/' or '..')"
        )
    return name


def _under(root: Path, name: str, suffix: str = "") -> Path:
    """``root/<name><suffix>`` for a checked name; a symbolic link there is refused, never followed."""
    path = root / f"{check_name(name)}{suffix}"
    if path.is_symlink():
        raise WeightsError(
            f"{path} is a symbolic link; zoo never follows links in its cache "
            f"(`zoo cache rm {name}` removes the link, not what it points to)"
        )
    return path


def weights_dir() -> Path:
    return zoo_home() / "weights"


def model_dir(model: str) -> Path:
    """The cache folder of ``model`` (a checked name; a symlink there is refused)."""
    return _under(weights_dir(), model)


@contextlib.contextmanager
def lock(model: str, *, wait: bool = True) -> Iterator[None]:
    """Hold the per-model file lock. Another process fetching the same model waits here; with
    ``wait=False`` a held lock is a one-line error instead (for `zoo cache rm`)."""
    from filelock import FileLock, Timeout

    path = _under(zoo_home() / "locks", model, ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    file_lock = FileLock(str(path))
    try:
        file_lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        raise WeightsError(
            f"{model} is being downloaded by another process (it holds {path}); try again when it has finished"
        ) from None
    try:
        yield
    finally:
        file_lock.release()


# -- reading -----------------------------------------------------------------------------------------


def _model_dirs() -> list[Path]:
    root = weights_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if NAME_RE.match(p.name) and not p.is_symlink() and p.is_dir())


def entries(model: str | None = None) -> list[Entry]:
    """Every complete entry (safetensors + manifest), for one model or all."""
    if model is not None:
        folder = model_dir(model)
        dirs = [folder] if folder.is_dir() else []
    else:
        dirs = _model_dirs()
    out = []
    for folder in dirs:
        for manifest_path in sorted(folder.glob("*.json")):
            key = manifest_path.stem
            tensors = folder / f"{key}.safetensors"
            if not (_KEY.match(key) and tensors.is_file() and not tensors.is_symlink()):
                continue
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(manifest, dict):
                out.append(Entry(folder.name, key, tensors, manifest))
    return out


def incomplete(model: str | None = None) -> list[tuple[str, Path, str]]:
    """Files that are not (yet) entries: ``(model, path, why)``. `zoo cache ls` shows them, `rm` removes them.

    A temporary file may belong to a process still writing it, or be left by one that was killed.
    """
    out: list[tuple[str, Path, str]] = []
    if model is not None:
        folder = model_dir(model)
        dirs = [folder] if folder.is_dir() else []
    else:
        dirs = _model_dirs()
    for folder in dirs:
        keys = {p.stem for p in folder.glob("*.json")}
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                out.append((folder.name, path, "incomplete (being written, or left by a killed process)"))
            elif path.suffix == ".safetensors" and path.stem not in keys:
                out.append((folder.name, path, "incomplete (no manifest)"))
    downloads = zoo_home() / "downloads"
    for folder in [downloads / model] if model else (sorted(downloads.iterdir()) if downloads.is_dir() else []):
        if folder.is_dir() and not folder.is_symlink():
            out += [(folder.name, p, "partial download (resumed by the next download)") for p in folder.glob("*.part")]
    if model is None and weights_dir().is_dir():
        out += [("", p, "incomplete bundle import") for p in sorted(weights_dir().glob(f"{STAGING}*"))]
    return out


def _official_match(card: Card, entry: Entry) -> WeightSource | None:
    """The card source whose bytes ``entry`` holds, if any."""
    for source in card.weights:
        if source.sha256 and entry.sha256 == source.sha256:
            return source  # the very bytes the card names, however they arrived
        if entry.origin == "official" and entry.source == source.describe() and source.sha256 is None:
            return source
    return None


def find(card: Card) -> Entry | None:
    """The entry ``pretrained=True`` uses for ``card``, or None.

    An official entry, in the card's source order. A hand-added file only when it is provably the
    card's file (its sha256 is one the card states) or when the card has no scriptable source (its
    weights are in a Drive folder or on box.com): never in place of weights zoo can fetch.
    """
    found = entries(card.name)
    for source in card.weights:
        for entry in found:
            if _official_match(card, entry) == source:
                return entry
    return manual(card.name) if not card.weights else None


def manual(model: str) -> Entry | None:
    """The hand-added entry of ``model``: the ``manual`` slot, else (caches older than the slot) the
    most recently created hand-added entry. Never chosen by hash order."""
    found = [e for e in entries(model) if e.origin == "manual"]
    slot = [e for e in found if e.key == MANUAL]
    if slot:
        return slot[0]
    found.sort(key=lambda e: (str(e.manifest.get("created", "")), e.path.stat().st_mtime), reverse=True)
    return found[0] if found else None


# -- writing -----------------------------------------------------------------------------------------


def store(card: Card, source: WeightSource, raw: Path, raw_sha256: str, *, origin: str = "official",
          **extra: Any) -> Entry:
    """Convert ``raw`` to the builder's keys and write the entry (safetensors, then manifest).

    ``origin="manual"`` writes the model's one hand-added slot, replacing what was there (and hand-added
    entries of older caches); the caller holds the model's lock.
    """
    from zoo.weights import checkpoint
    from zoo.weights.fetch import sha256_file

    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, not {origin!r}")
    state_dict = checkpoint.load_converted(card, raw)
    key = MANUAL if origin == "manual" else raw_sha256[:16]
    folder = model_dir(card.name)
    tensors = folder / f"{key}.safetensors"
    previous = [e for e in entries(card.name) if e.origin == "manual"] if origin == "manual" else []
    slot = next((e for e in previous if e.key == MANUAL), None)
    if slot is not None:  # the old entry disappears first: a reader never pairs new tensors with an old manifest
        (folder / f"{MANUAL}.json").unlink(missing_ok=True)
    try:
        checkpoint.save_safetensors(state_dict, tensors, metadata={"zoo_model": card.name, "source_sha256": raw_sha256})
    except BaseException:
        if slot is not None:  # the write is atomic: the old tensors are still there, give them their manifest back
            _write_json(folder / f"{MANUAL}.json", slot.manifest)
        raise
    manifest = {
        "model": card.name,
        "origin": origin,
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
    for old in previous:  # hand-added entries of caches older than the slot go once the new one is in place
        if old.key != MANUAL:
            (folder / f"{old.key}.json").unlink(missing_ok=True)
            old.path.unlink(missing_ok=True)
    return Entry(card.name, key, tensors, manifest)


def _tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path``, not following links."""
    total = 0
    for root, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                total += st.st_size if not os.path.islink(os.path.join(root, name)) else 0
    return total


def _remove_path(path: Path) -> int:
    """Remove ``path`` (a folder, a file or a link: the link only); returns the bytes freed."""
    if path.is_symlink() or path.is_file():
        size = 0 if path.is_symlink() else path.stat().st_size
        path.unlink()
        return size
    if path.is_dir():
        size = _tree_size(path)
        shutil.rmtree(path)  # removes links inside, never what they point to
        return size
    return 0


def remove(model: str) -> int:
    """Delete everything zoo keeps for ``model`` (entries, incomplete files, downloads); returns the
    bytes freed. A symbolic link where the model's folder should be is removed, its target is not.
    Refused while another process holds the model's lock (a download in progress)."""
    name = check_name(model)
    with lock(name, wait=False):
        return sum(_remove_path(root / name) for root in (weights_dir(), zoo_home() / "downloads"))


def remove_all() -> int:
    """Delete every model's files and unfinished imports (locks and the rest of the zoo home stay)."""
    freed = 0
    names = {p.name for root in (weights_dir(), zoo_home() / "downloads") if root.is_dir()
             for p in root.iterdir() if NAME_RE.match(p.name)}
    for name in sorted(names):
        freed += remove(name)
    for staged in sorted(weights_dir().glob(f"{STAGING}*")) if weights_dir().is_dir() else []:
        freed += _remove_path(staged)
    return freed


# -- air-gapped transfer --------------------------------------------------------------------------


def export(found: list[Entry], out: Path) -> None:
    """Write a tar bundle of ``found`` entries; the index declares each file's size and sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w") as tar:
            index = [{"model": e.model, "key": e.key, "size": e.path.stat().st_size,
                      "manifest": {**e.manifest, "origin": e.origin}} for e in found]
            _add_bytes(tar, BUNDLE_INDEX, json.dumps({"format": 1, "entries": index}, indent=2).encode())
            for entry in found:
                tar.add(str(entry.path), arcname=_member_name(entry.model, entry.key), recursive=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class _Planned:
    model: str
    key: str
    size: int  # declared: nothing larger is ever written
    manifest: dict[str, Any]


def import_bundle(bundle: Path, card_of: Callable[[str], Card | None],
                  check: Callable[[Card, Path], None] | None = None) -> list[Entry]:
    """Unpack a bundle made by :func:`export`: all of it, or nothing.

    The whole bundle is staged in a folder under ``weights/``, each member capped at its declared
    size; every file's sha256 is checked and it must open as a safetensors file with tensors (and
    pass ``check(card, path)``) before the first one is committed. Committing moves files into place
    with ``os.replace`` (all tensors, then all manifests), putting back what was there if a step fails.

    :param card_of: the card of a model name, or None when no installed card has that name.
    """
    bundle = Path(bundle)
    where = f"bundle {str(bundle)!r}"
    _check_bundle_file(bundle, where)
    root = weights_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=root))
    try:
        planned, cards = _stage(bundle, where, staging, card_of, check)
        with contextlib.ExitStack() as stack:
            for model in sorted({p.model for p in planned}):
                stack.enter_context(lock(model, wait=False))
            return _commit(planned, staging, bundle)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_bundle_file(bundle: Path, where: str) -> None:
    """What the user named is not a bundle at all (missing, a device, a folder, empty): exit 2."""
    try:
        st = bundle.stat()
    except OSError as exc:
        raise UserError(f"{where}: cannot read it: {exc.strerror or first_line(exc)}") from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{where} is not a regular file (a bundle is a .tar written by `zoo cache export`)")
    if st.st_size == 0:
        raise UserError(f"{where} is empty (a bundle is a .tar written by `zoo cache export`)")


_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, ValueError)


def _stage(bundle: Path, where: str, staging: Path, card_of: Callable[[str], Card | None],
           check: Callable[[Card, Path], None] | None) -> tuple[list[_Planned], dict[str, Card]]:
    try:
        tar = tarfile.open(bundle, "r:*")
    except _TAR_ERRORS as exc:
        raise UserError(f"{where} is not a tar file written by `zoo cache export`: {first_line(exc)}") from None
    with tar:
        try:
            planned, cards = _plan(_read_index(tar, where), where, card_of)
            free = shutil.disk_usage(staging).free
            need = sum(max(p.size, 0) for p in planned)
            if need > free:
                raise WeightsError(f"{where} declares {need} bytes of weights, only {free} bytes are free; nothing imported")
            for i, item in enumerate(planned):
                target = staging / f"{i}.safetensors"
                _extract_capped(tar, item, target, where)
                _check_staged(target, item, where)
                if check is not None:
                    check(cards[item.model], target)
        except _TAR_ERRORS as exc:  # a truncated or corrupt archive
            raise WeightsError(f"{where} is damaged or truncated ({first_line(exc)}); nothing imported") from None
    return planned, cards


def _read_index(tar: tarfile.TarFile, where: str) -> Any:
    member = _member(tar, BUNDLE_INDEX, where)
    if member.size > _MAX_INDEX:
        raise WeightsError(f"{where}: {BUNDLE_INDEX} is {member.size} bytes, more than a bundle index can be")
    src = tar.extractfile(member)
    assert src is not None  # a regular file
    data = src.read(_MAX_INDEX + 1)
    try:
        return json.loads(data)
    except ValueError:
        raise WeightsError(f"{where}: {BUNDLE_INDEX} is not valid JSON (not made by `zoo cache export`?)") from None


def _plan(index: Any, where: str, card_of: Callable[[str], Card | None]) -> tuple[list[_Planned], dict[str, Card]]:
    """Validate the index completely before anything is extracted."""
    if not (isinstance(index, dict) and index.get("format") == 1 and isinstance(index.get("entries"), list)):
        raise WeightsError(f"{where}: {BUNDLE_INDEX} is not a zoo bundle index (format 1 with a list of entries)")
    if not index["entries"]:
        raise WeightsError(f"{where} holds no entries; nothing imported")
    planned: list[_Planned] = []
    cards: dict[str, Card] = {}
    seen: set[tuple[str, str]] = set()
    for n, item in enumerate(index["entries"], 1):
        bad = f"{where}: entry {n} of {BUNDLE_INDEX}"
        if not isinstance(item, dict):
            raise WeightsError(f"{bad} is a {type(item).__name__}, expected an object")
        model, key, manifest, size = item.get("model"), item.get("key"), item.get("manifest"), item.get("size")
        if not (isinstance(model, str) and len(model) <= _MAX_NAME and NAME_RE.match(model)):
            raise WeightsError(f"{bad} has model {model!r:.60}, which is not a model name; nothing imported")
        if not (isinstance(key, str) and _KEY.match(key)):
            raise WeightsError(f"{bad} ({model}) has key {key!r:.60}, expected 16 hex digits or 'manual'")
        if not isinstance(manifest, dict):
            raise WeightsError(f"{bad} ({model}) has no manifest object")
        if (model, key) in seen:
            raise WeightsError(f"{bad} repeats {model}/{key}")
        seen.add((model, key))
        tensors_sha = manifest.get("safetensors_sha256")
        raw_sha = manifest.get("sha256")
        if not (isinstance(tensors_sha, str) and _SHA.match(tensors_sha)):
            raise WeightsError(f"{bad} ({model}) has no valid safetensors_sha256")
        if not (isinstance(raw_sha, str) and _SHA.match(raw_sha)) or not isinstance(manifest.get("source"), str):
            raise WeightsError(f"{bad} ({model}) needs a sha256 (64 hex digits) and a source")
        if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
            raise WeightsError(f"{bad} ({model}) has size {size!r:.40}, expected a positive integer")
        card = card_of(model)
        if card is None:
            raise WeightsError(f"{bad}: no installed card is named {model!r}; nothing imported")
        cards[model] = card
        entry = Entry(model, key, Path(), manifest)
        if key != MANUAL and raw_sha[:16] != key:
            raise WeightsError(f"{bad} ({model}): key {key} is not the start of its sha256 {raw_sha}")
        if entry.origin == "official" and _official_match(card, entry) is None:
            raise WeightsError(
                f"{bad} ({model}) says its weights are official, but {entry.source!r} with sha256 {raw_sha} "
                f"is none of the card's sources; nothing imported"
            )
        planned.append(_Planned(model, key, -1 if size is None else size, {**manifest, "origin": entry.origin}))
    return planned, cards


def _member_name(model: str, key: str) -> str:
    return f"weights/{model}/{key}.safetensors"  # built from checked parts, never read from the archive


def _member(tar: tarfile.TarFile, name: str, where: str) -> tarfile.TarInfo:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise WeightsError(f"{where} has no {name} (not made by `zoo cache export`, or truncated?); "
                           f"nothing imported") from None
    if not member.isreg() or member.issparse():
        raise WeightsError(f"{where}: {name} is not a regular file; nothing imported")
    return member


def _extract_capped(tar: tarfile.TarFile, item: _Planned, target: Path, where: str) -> None:
    """Copy one member, never writing more than its declared size, hashing as it goes."""
    name = _member_name(item.model, item.key)
    member = _member(tar, name, where)
    size = member.size if item.size < 0 else item.size  # bundles before sizes were declared: the tar header
    if member.size != size:
        raise WeightsError(f"{where}: {name} is {member.size} bytes, its index declares {size}; nothing imported")
    src = tar.extractfile(member)
    assert src is not None
    digest = hashlib.sha256()
    written = 0
    with src, open(target, "xb") as out:
        while written < size and (chunk := src.read(min(_CHUNK, size - written))):
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
        if src.read(1):  # cannot happen with tarfile; a member must never expand past its size
            raise WeightsError(f"{where}: {name} expands past its declared {size} bytes; nothing imported")
    if written != size:
        raise WeightsError(f"{where}: {name} is truncated ({written} of {size} bytes); nothing imported")
    expected = item.manifest["safetensors_sha256"]
    if digest.hexdigest() != expected:
        raise WeightsError(f"{where}: {item.model} {item.key}.safetensors has sha256 {digest.hexdigest()}, "
                           f"expected {expected}; nothing imported")


def _check_staged(path: Path, item: _Planned, where: str) -> None:
    """A staged file must be a safetensors file holding tensors (a junk payload is refused here, not at eval)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            keys = list(fh.keys())
            for key in keys:
                fh.get_slice(key).get_shape()
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{where}: {item.model} {item.key}.safetensors is not a valid safetensors file "
                           f"({first_line(exc)}); nothing imported") from None
    if not keys:
        raise WeightsError(f"{where}: {item.model} {item.key}.safetensors holds no tensors; nothing imported")


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def _commit(planned: list[_Planned], staging: Path, bundle: Path) -> list[Entry]:
    """Move the staged files into place: tensors first, manifests last; undo everything if a step fails."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    steps: list[tuple[Path, Path]] = []
    for i, item in enumerate(planned):
        steps.append((staging / f"{i}.safetensors", weights_dir() / item.model / f"{item.key}.safetensors"))
    for i, item in enumerate(planned):
        manifest = {**item.manifest, "model": item.model, "safetensors": f"{item.key}.safetensors",
                    "imported_from": str(bundle.resolve()), "imported": stamp}
        staged = staging / f"{i}.json"
        staged.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        steps.append((staged, weights_dir() / item.model / f"{item.key}.json"))
    # a new hand-added entry replaces the slot; older hand-added entries of that model must go with it
    stale = [e for item in planned if item.key == MANUAL for e in entries(item.model)
             if e.origin == "manual" and e.key != MANUAL]
    for item in planned:
        model_dir(item.model).mkdir(parents=True, exist_ok=True)  # a symlinked model folder is refused here
    done: list[tuple[Path, Path | None]] = []  # (target, backup of what it replaced)
    try:
        for n, (src, dst) in enumerate(steps):
            backup = None
            if dst.exists():
                backup = staging / f"old-{n}"
                _move(dst, backup)
            done.append((dst, backup))
            _move(src, dst)
    except BaseException as exc:
        for dst, backup in reversed(done):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, dst)
                else:
                    dst.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        raise WeightsError(f"bundle {str(bundle)!r}: could not move {dst.name} into the cache "
                           f"({exc.strerror or first_line(exc)}); nothing imported") from None
    for entry in stale:
        with contextlib.suppress(OSError):
            (entry.path.parent / f"{entry.key}.json").unlink(missing_ok=True)
            entry.path.unlink(missing_ok=True)
    return [Entry(item.model, item.key, weights_dir() / item.model / f"{item.key}.safetensors",
                  {**item.manifest, "imported_from": str(bundle.resolve())}) for item in planned]


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))
