"""Where zoo keeps its files. Read from the environment at call time, never at import."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def zoo_home() -> Path:
    """``$ZOO_HOME``, default ``~/.cache/zoo`` (``$XDG_CACHE_HOME/zoo`` when that is set)."""
    override = os.environ.get("ZOO_HOME")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "zoo"


def hf_hub_cache() -> Path:
    """The Hugging Face Hub cache, resolved like ``huggingface_hub`` does, but at call time."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``ZOO_OFFLINE`` is set: no socket may be opened."""
    return _truthy(os.environ.get("ZOO_OFFLINE")) or _truthy(os.environ.get("HF_HUB_OFFLINE"))


_HOME_PROBLEMS = {  # errno -> what it means for ZOO_HOME
    errno.ENOTDIR: "is not a directory (it or a parent is a file)",
    errno.EEXIST: "is not a directory (it or a parent is a file)",
    errno.EROFS: "is on a read-only file system",
    errno.EACCES: "is not writable (permission denied)",
    errno.EPERM: "is not writable (operation not permitted)",
    errno.ENOSPC: "is on a full disk (no space left on device)",
    errno.EDQUOT: "is over its disk quota",
}


def home_problem(exc: OSError) -> str | None:
    """One line saying what is wrong with ``ZOO_HOME``, when ``exc`` is about a path inside it.

    The CLI turns such an OSError into a :class:`~zoo.errors.HomeError`: "ZOO_HOME /x is on a
    read-only file system (writing /x/weights/...)", whichever command hit it. Commands that only
    read keep working with an unusable home (the card cache is best effort).
    """
    problem = _HOME_PROBLEMS.get(exc.errno or 0)
    if problem is None:
        return None
    home = os.path.abspath(zoo_home())
    for name in (exc.filename, exc.filename2):
        if name is None:
            continue
        path = os.path.abspath(os.fsdecode(name))
        if path == home or path.startswith(home.rstrip(os.sep) + os.sep):
            shown = "" if path == home else f" (at {path})"
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            hint = "free some space or set ZOO_HOME elsewhere" if full else "set ZOO_HOME to a writable directory"
            return f"ZOO_HOME {home} {problem}{shown}; {hint}"
    return None


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part:
    a temporary file in the same folder, then ``os.replace``; the temporary goes if anything fails."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
