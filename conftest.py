"""Shared fixtures: an isolated zoo home per test, and throwaway plugin distributions."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from zoo.registry import lookup


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own zoo home and HF cache, and a fresh catalog."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("ZOO_HOME", str(home / "zoo"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for var in ("ZOO_PLUGINS", "ZOO_DISABLE_PLUGINS", "ZOO_REGISTRY", "ZOO_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    lookup.reset()
    yield
    lookup.reset()


def write_distribution(
    root: Path, dist: str, entry_points: dict[str, str], files: dict[str, str], version: str = "0.1"
) -> Path:
    """Install a plugin distribution the way pip lays it out: package files plus a .dist-info.

    ``importlib.metadata`` finds it through ``sys.path`` exactly like a pip-installed one, so the
    real entry-point discovery runs (nothing is mocked).
    """
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "\n".join(f"{name} = {value}" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[zoo]\n{eps}\n")
    return root


@pytest.fixture
def install_plugin(tmp_path, monkeypatch) -> Callable[..., Path]:
    """Install a throwaway plugin distribution into this test's ``sys.path`` (and PYTHONPATH)."""
    site = tmp_path / "site"

    def install(dist: str, entry_points: dict[str, str], files: dict[str, str], version: str = "0.1") -> Path:
        write_distribution(site, dist, entry_points, files, version)
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setenv("PYTHONPATH", str(site))
        lookup.reset()
        return site

    yield install
    for name in [m for m in sys.modules if m.startswith("zoo_thirdparty")]:
        del sys.modules[name]
