"""Cards of models with no code or weights here (Mask Frozen-DETR, FasterViT's UPerNet rows) are
listed and cited as card-only, never hidden, and every command that would run them says why not."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import zoo.api

sys.path.insert(0, str(Path(__file__).parent))
from test_isolation import run  # noqa: E402
from test_plugins import install_acme  # noqa: E402

WHY = "no code or weights were published (arXiv 2308.03747)"
CARD_ONLY = f'''
  acme-ghost:
    paper: acme
    task: image-classification
    plugin: acme
    card_only: "{WHY}"
    reported: {{source: "ACME paper, Table 3", imagenet: {{top1: 80.5}}}}
'''


@pytest.fixture
def ghost(install_plugin):
    install_acme(install_plugin, CARD_ONLY)


def test_card_only_is_listed_and_marked(ghost):
    listed = run("list", "acme")
    assert listed.exit_code == 0, listed.output
    [row] = [line.split() for line in listed.output.splitlines() if line.startswith("acme-ghost ")]
    assert row[-2:] == ["card-only", "yes"] and "80.5" in row
    [entry] = [e for e in json.loads(run("list", "--json").stdout) if e["name"] == "acme-ghost"]
    assert entry["card_only"] == WHY and entry["weights"] == []
    info = run("info", "acme-ghost")
    assert f"builder   none: card-only ({WHY})" in info.output


@pytest.mark.parametrize("command", [["eval", "acme-ghost", "--dataset", "folder:/nonexistent"],
                                     ["bench", "acme-ghost", "--device", "cpu"], ["download", "acme-ghost"]])
def test_running_a_card_only_model_is_one_line_saying_why(ghost, command):
    result = run(*command)
    assert result.exit_code != 0
    [line] = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert "acme-ghost" in line and "card-only" in line and WHY in line, result.output
    assert "Traceback" not in result.output


def test_the_plugin_kit_accepts_a_card_only_card(ghost):
    report = json.loads(run("plugin", "check", "acme", "--json").stdout)
    [finding] = [f for f in report["findings"] if f["subject"] == "acme-ghost" and f["check"] == "builder"]
    assert finding["ok"] and finding["message"] == f"card-only: {WHY}"


@pytest.mark.parametrize("extra, problem", [
    ('    card_only: ""\n', "card_only: say why there is no code or weights here"),
    ('    card_only: "none yet"\n    weights: [{url: "https://example.com/w.pth"}]\n',
     "card_only: a card-only card has no weights"),
])
def test_bad_card_only_fields_are_located(install_plugin, extra, problem):
    card = CARD_ONLY.replace(f'    card_only: "{WHY}"\n', extra)
    install_acme(install_plugin, card)
    with pytest.warns(UserWarning, match=problem):
        names = zoo.api.list_models()
    assert "acme-ghost" not in names and "acme-tiny" in names


def test_a_card_without_builder_that_is_not_card_only_is_refused(install_plugin):
    install_acme(install_plugin, CARD_ONLY.replace(f'    card_only: "{WHY}"\n', ""))
    with pytest.warns(UserWarning, match="acme-ghost.*builder"):
        assert "acme-ghost" not in zoo.api.list_models()


def test_verify_lists_a_card_only_cards_claims_as_cited(ghost):
    result = run("verify", "acme-ghost", "--json")
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert report["status"] == "card-only" and report["note"] == WHY and report["failed"] == []
    assert [(c["claim"], c["reported"], c["measured"], c["status"]) for c in report["claims"]] == [
        ("imagenet.top1", 80.5, None, "card-only")]
