"""tools/official_check.py is a thin call of zoo.devkit.kit.parity: run it with our own file as the "official" one."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from zoo_edgevit import edgevit

PLUGIN = Path(__file__).resolve().parents[1]
TOOL = PLUGIN / "tools" / "official_check.py"


def test_official_check_runs_through_the_kit_and_writes_the_committed_manifest(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(edgevit, "VARIANTS", {"edgevit_xxs": edgevit.VARIANTS["edgevit_xxs"]})  # one variant: fast
    manifest = tmp_path / "official_shapes.json"
    monkeypatch.setattr(sys, "argv", ["official_check.py", str(PLUGIN / "zoo_edgevit" / "edgevit.py"),
                                      "--manifest", str(manifest)])
    spec = importlib.util.spec_from_file_location("edgevit_official_check", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main() == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "edgevit_xxs: 251 keys, 4,067,704 official params, 4,067,704 ours"
    assert out[1] == "  keys and shapes equal" and out[2].startswith("  outputs equal: max |diff| 0,")
    committed = json.loads((PLUGIN / "tests" / "data" / "official_shapes.json").read_text())
    assert json.loads(manifest.read_text()) == {"edgevit_xxs": committed["edgevit_xxs"]}
    block = manifest.read_text().splitlines()[2]
    assert block in (PLUGIN / "tests" / "data" / "official_shapes.json").read_text().splitlines()  # same format
    sys.modules.pop("edgevit_official", None)
