"""Where zoo keeps its files. Read from the environment at call time, never at import."""

from __future__ import annotations

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
