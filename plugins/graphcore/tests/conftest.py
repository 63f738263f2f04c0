import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/reference.py, shared with tools/official_check.py


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny models run fastest on one thread: on a shared, loaded machine two OpenMP threads wait on
    each other (a 64 x 64 forward took 4.7 s on 2 threads, 0.06 s on 1). Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
