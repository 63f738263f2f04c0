"""The entry module stays light: `zoo list` imports it and must not pay for torch or scikit-learn."""

from __future__ import annotations

import subprocess
import sys


def test_entry_module_imports_neither_torch_nor_sklearn():
    code = ("import sys, zoo_graphcore; "
            "print(sorted(m for m in ('torch', 'sklearn', 'faiss', 'numpy') if m in sys.modules)); "
            "print(sorted(zoo_graphcore.zoo_builders()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "['graphcore_vig_ti']"


def test_builder_reference_resolves_to_the_model():
    import importlib

    import zoo_graphcore

    module, name = zoo_graphcore.zoo_builders()["graphcore_vig_ti"].split(":")
    builder = getattr(importlib.import_module(module), name)
    assert builder.__name__ == "graphcore_vig_ti"
    assert [p.name for p in zoo_graphcore.zoo_cards()] == ["cards.yaml"]
