"""Make the plugin importable when it is not pip-installed (running the suite from a checkout)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

if importlib.util.find_spec("zoo_vit_llama") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(autouse=True)
def _one_thread():
    """Small CPU forwards run faster on one thread on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
