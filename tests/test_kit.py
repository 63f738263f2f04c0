"""The plugin author's path end to end: scaffold, pip install, list, check, eval; and broken variants."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zoo.api
from zoo.devkit.kit import check_plugin
from zoo.devkit.scaffold import new_plugin

BIN = Path(sys.executable).parent


def pip_install(source: Path, site: Path) -> None:
    """A real pip install of the plugin folder, without network (setuptools comes from the venv)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--no-index",
         "--target", str(site), str(source)],
        check=True, capture_output=True, text=True,
    )


def zoo_cli(*args: str, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    root = tmp_path_factory.mktemp("author")
    source = new_plugin("acme", root)
    site = root / "site"
    pip_install(source, site)
    return source, site


def test_author_path_new_install_list_check_eval(acme, tmp_path):
    source, site = acme
    assert (source / "pyproject.toml").is_file() and (source / "tests" / "test_conformance.py").is_file()
    listed = zoo_cli("list", "acme", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["name"] == "acme-tiny" and row["installed"] is True and row["plugin"] == "acme"
    checked = zoo_cli("plugin", "check", "acme", "--json", site=site)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] is True
    assert {f["check"] for f in report["findings"]} == {"import-light", "loads", "card", "builder", "params", "output", "convert"}
    data = tmp_path / "images"
    made = zoo_cli("demo-data", str(data), "--images", "12", "--classes", "3", site=site)
    assert made.returncode == 0, made.stderr
    evaluated = zoo_cli("eval", "acme-tiny", "--dataset", f"folder:{data}", "--no-pretrained", "--limit", "8", "--json",
                        site=site)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["model"] == "acme-tiny" and result["images"] == 8
    # the generated plugin's own test runs the kit from pytest
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(site)}, cwd=source)
    assert own.returncode == 0, own.stdout


def _break(source: Path) -> None:
    package = source / "zoo_acme"
    init = package / "__init__.py"
    init.write_text("import torch  # noqa: F401  (a fault: heavy import at the top)\n" + init.read_text())
    model = package / "model.py"
    model.write_text(model.read_text().replace("return x if pre_logits else self.head(x)",
                                               "return x if pre_logits else self.head(x)[:, :-1]"))
    cards = package / "cards.yaml"
    cards.write_text(cards.read_text() + """
  acme-bad:
    paper: acme
    task: image-classification
    plugin: acme
    builder: acme_tiny
    colour: blue
  deit-t:
    paper: acme
    task: image-classification
    plugin: acme
    builder: acme_tiny
    input_size: [3, 64, 64]
""")


def test_broken_variant_fails_with_one_message_per_fault(tmp_path, monkeypatch):
    source = new_plugin("acme", tmp_path)
    _break(source)
    site = tmp_path / "site"
    pip_install(source, site)
    monkeypatch.syspath_prepend(str(site))
    zoo.api.reset()
    report = check_plugin("acme")
    assert not report.ok
    failures = {(f.check, f.subject): f.message for f in report.failures}
    assert failures[("import-light", "acme")] == "importing zoo_acme imports torch"
    assert failures[("output", "acme-tiny")] == "output shape (1, 999), expected (1, 1000)"
    bad = failures[("card", "acme-bad")]
    assert bad.endswith("cards.yaml: acme-bad: colour: unknown field (allowed: " + bad.split("(allowed: ")[1])
    dup = failures[("card", "deit-t")]
    assert "duplicate model name: already defined in" in dup and "registry.yaml" in dup
    assert len(report.failures) == 4, report.failures
    checked = zoo_cli("plugin", "check", "acme", site=site)
    assert checked.returncode == 1 and "4 check(s) failed" in checked.stdout and "Traceback" not in checked.stderr


@pytest.mark.parametrize("name", ["efficientmod", "context-cluster", "edgevit", "mobileformer", "tome", "fastervit",
                                  "timm-baselines", "vit-llama"])
def test_first_party_plugin_passes_the_kit(name):
    status = zoo.api.catalog().plugin_status(name)
    assert status is not None, f"first-party plugin {name} is not installed (make install installs plugins/*)"
    report = check_plugin(name, max_forward_params=30_000_000)
    assert report.ok, "\n".join(f"{f.check} {f.subject}: {f.message}" for f in report.failures)


def test_scaffold_refuses_bad_name_and_existing_folder(tmp_path):
    from zoo.errors import UserError

    with pytest.raises(UserError, match="plugin name 'Acme Co'"):
        new_plugin("Acme Co", tmp_path)
    new_plugin("acme", tmp_path)
    with pytest.raises(UserError, match="already exists"):
        new_plugin("acme", tmp_path)
