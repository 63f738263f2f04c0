"""Every first-party plugin is a distribution of its own: it builds, installs alone and is found by zoo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
DIRS = sorted(p.parent.name for p in PLUGINS.glob("*/pyproject.toml"))


def test_every_plugin_folder_is_a_distribution():
    assert DIRS == ["anomaly", "anomalyclip", "context-cluster", "defect-spectrum", "detection", "edgevit",
                    "efficientmod", "fastervit", "graphcore", "mask2former", "mobileformer", "segmentation",
                    "timm-baselines", "tome", "upernet", "vit-adapter", "vit-llama", "yolov6"]


@pytest.mark.parametrize("folder", DIRS)
def test_plugin_builds_installs_alone_and_is_discovered(folder, tmp_path):
    project = tomllib.loads((PLUGINS / folder / "pyproject.toml").read_text())["project"]
    [(name, module)] = project["entry-points"]["zoo"].items()
    assert "zoo-core" in project["dependencies"]
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path),
                    str(PLUGINS / folder)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [eps] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert f"[zoo]\n{name} = {module}" in archive.read(eps).decode()
    sources = {str(p.relative_to(PLUGINS / folder)) for p in (PLUGINS / folder / module).rglob("*.py")}
    assert sources <= set(names), f"modules missing from the wheel: {sources - set(names)}"
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    probe = (
        "import importlib, json, zoo.api\n"
        f"status = zoo.api.catalog().plugin_status({name!r})\n"
        f"print(json.dumps([status.ok, importlib.import_module({module!r}).__file__,"
        " sorted(s.name for s in zoo.api.catalog().plugins)]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "ZOO_PLUGINS": name}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    ok, path, loaded = json.loads(out.stdout)
    assert ok and loaded == [name]
    assert Path(path).is_relative_to(site), f"{module} was imported from {path}, not from the installed wheel"
