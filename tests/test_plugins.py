"""Plugin discovery: real entry points of throwaway distributions, isolation of broken plugins."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

import zoo.api
from zoo.cli import cli
from zoo.registry.catalog import build_catalog

ACME_INIT = '''
from importlib import resources

from zoo import hookimpl


@hookimpl
def zoo_cards():
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders():
    return {"acme_tiny": "zoo_thirdparty_acme.model:acme_tiny"}
'''

ACME_CARDS = '''
papers:
  acme:
    title: "ACME: A Compact Model Example"
    venue: NeurIPS 2025
    license: MIT
models:
  acme-tiny:
    paper: acme
    task: image-classification
    plugin: acme
    builder: acme_tiny
    input_size: [3, 32, 32]
    num_classes: 10
    reported: {source: "ACME paper, Table 2", cifar10: {top1: 91.0}, params_m: 0.01}
'''

ACME_MODEL = '''
import torch.nn as nn


def acme_tiny(*, num_classes=10):
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
'''


def install_acme(install_plugin, extra_cards: str = ""):
    return install_plugin(
        "zoo-thirdparty-acme",
        {"acme": "zoo_thirdparty_acme"},
        {
            "zoo_thirdparty_acme/__init__.py": ACME_INIT,
            "zoo_thirdparty_acme/cards.yaml": ACME_CARDS + extra_cards,
            "zoo_thirdparty_acme/model.py": ACME_MODEL,
        },
        version="1.2.3",
    )


def test_third_party_distribution_is_discovered_through_its_entry_point(install_plugin):
    install_acme(install_plugin)
    catalog = zoo.api.catalog()
    status = catalog.plugin_status("acme")
    assert status is not None and status.ok
    assert (status.dist, status.version) == ("zoo-thirdparty-acme", "1.2.3")
    assert status.hooks == ["zoo_builders", "zoo_cards"]
    card = zoo.api.get_card("acme-tiny")
    assert card.plugin == "acme" and card.num_classes == 10 and catalog.installed(card)
    assert "acme-tiny" in zoo.api.list_models("acme")
    model = zoo.api.create_model("acme-tiny")
    assert sum(p.numel() for p in model.parameters()) == 3 * 8 * 9 + 8 + 8 * 10 + 10
    assert not model.training


def test_plugin_that_raises_at_import_is_reported_and_the_rest_works(install_plugin):
    install_acme(install_plugin)
    install_plugin("zoo-thirdparty-broken", {"broken": "zoo_thirdparty_broken"},
                   {"zoo_thirdparty_broken/__init__.py": "raise RuntimeError('boom at import')\n"})
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["broken"]["status"] == "error" and rows["broken"]["error"] == "RuntimeError: boom at import"
    assert rows["acme"]["status"] == "ok" and rows["acme"]["cards"] == 1
    zoo.api.reset()  # a new process: the catalog warns once per process
    result = runner.invoke(cli, ["list", "acme"])
    assert result.exit_code == 0
    assert "acme-tiny" in result.stdout
    assert "Warning: plugin 'broken' failed to load: RuntimeError: boom at import; see `zoo plugins`" in result.stderr
    assert "Traceback" not in result.output


def test_plugin_with_bad_hook_signature_is_isolated(install_plugin):
    bad = "from zoo import hookimpl\n\n@hookimpl\ndef zoo_builders(colour):\n    return {}\n"
    install_plugin("zoo-thirdparty-badsig", {"badsig": "zoo_thirdparty_badsig"}, {"zoo_thirdparty_badsig/__init__.py": bad})
    catalog = zoo.api.catalog()
    status = catalog.plugin_status("badsig")
    assert not status.ok and "PluginValidationError" in status.error
    assert catalog.pm.get_plugin("badsig") is None  # nothing half-registered


def test_plugin_hook_that_raises_is_blamed_by_name(install_plugin):
    raising = "from zoo import hookimpl\n\n@hookimpl\ndef zoo_cards():\n    raise ValueError('no cards today')\n"
    install_plugin("zoo-thirdparty-raiser", {"raiser": "zoo_thirdparty_raiser"}, {"zoo_thirdparty_raiser/__init__.py": raising})
    catalog = zoo.api.catalog()
    assert any(str(e) == "plugin 'raiser': zoo_cards() raised ValueError: no cards today" for e in catalog.errors)


def test_duplicate_name_across_plugins_is_an_error_naming_both(install_plugin, tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text(ACME_CARDS.replace("plugin: acme", "plugin: core-acme"))
    install_acme(install_plugin)
    catalog = build_catalog(registry=registry)
    assert catalog.get("acme-tiny").plugin == "core-acme"  # the first definition is kept
    [error] = [e for e in catalog.errors if "duplicate" in str(e)]
    assert "acme-tiny" in str(error) and str(registry) in str(error) and "core-acme" in str(error)
    assert "cards.yaml" in str(error)


def test_allow_list_and_block_list(install_plugin, monkeypatch):
    install_acme(install_plugin)
    monkeypatch.setenv("ZOO_PLUGINS", "")
    zoo.api.reset()
    assert zoo.api.catalog().plugin_status("acme") is None
    monkeypatch.setenv("ZOO_PLUGINS", "acme")
    zoo.api.reset()
    assert zoo.api.catalog().plugin_status("acme").ok
    monkeypatch.delenv("ZOO_PLUGINS")
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "acme")
    zoo.api.reset()
    assert zoo.api.catalog().plugin_status("acme") is None


def test_card_of_uninstalled_plugin_is_listed_as_not_installed(tmp_path, monkeypatch):
    registry = tmp_path / "registry.yaml"
    registry.write_text(ACME_CARDS.replace("plugin: acme", "plugin: not-here"))
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    result = CliRunner().invoke(cli, ["list", "--json"])
    [row] = [r for r in json.loads(result.stdout) if r["name"] == "acme-tiny"]  # plugins ship cards of their own
    assert row["installed"] is False and row["plugin"] == "not-here"
    result = CliRunner().invoke(cli, ["info", "acme-tiny"])
    assert "plugin not-here: not installed" in result.stdout
    from zoo.errors import NotInstalled

    try:
        zoo.api.create_model("acme-tiny")
    except NotInstalled as exc:
        assert "needs the plugin 'not-here', which is not installed" in str(exc)
    else:
        raise AssertionError("create_model built a card whose plugin is missing")


def test_cli_subprocess_finds_installed_plugin(install_plugin):
    site = install_acme(install_plugin)
    out = subprocess.run([sys.executable, "-m", "zoo", "list", "acme-*", "--json"], capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(site)}, check=True)
    assert [row["name"] for row in json.loads(out.stdout)] == ["acme-tiny"]


def test_builder_arguments_are_checked_before_the_call(install_plugin):
    from zoo.errors import BuildError

    install_acme(install_plugin)
    try:
        zoo.api.create_model("acme-tiny", colour="blue")
    except BuildError as exc:
        assert str(exc) == "model 'acme-tiny': builder 'acme_tiny' rejected its arguments: got an unexpected keyword argument 'colour'"
    else:
        raise AssertionError("an unknown builder argument was accepted")
    assert zoo.api.create_model("acme-tiny", num_classes=3)[-1].out_features == 3
