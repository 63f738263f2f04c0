"""Make the plugin importable when it is not pip-installed (running the suite from a checkout)."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("zoo_mobileformer") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
