"""`zoo plugin new NAME`: write a working plugin distribution to start from.

The result installs with pip, shows in `zoo list` at once, and passes `zoo plugin check` as written:
a pyproject with the `zoo` entry point, a light entry module, a card for one small example model
with its builder, a conformance test using the kit, and a README.
"""

from __future__ import annotations

import re
from pathlib import Path

from zoo.errors import UserError

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "zoo-{name}"
version = "0.1.0"
description = "zoo plugin: {name}"
requires-python = ">=3.11"
dependencies = ["zoo-core", "torch"]

[project.entry-points.zoo]
{name} = "{package}"

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
{package} = ["cards.yaml"]
"""

INIT = '''\
"""zoo plugin {name}: cards and builders.

Imported by `zoo list`: keep it light (no torch or timm here). Builders are named by
"module:callable" strings and imported only when a model is built.
"""

from importlib import resources

from zoo import hookimpl


@hookimpl
def zoo_cards():
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders():
    return {{"{builder}": "{package}.model:{builder}"}}


@hookimpl
def zoo_convert_checkpoint(card, state_dict):
    """Map an official checkpoint's keys onto the builder's; None when there is nothing to do."""
    if card.plugin != "{name}":
        return None
    return {{key.removeprefix("backbone."): value for key, value in state_dict.items()}}
'''

CARDS = """\
# Cards of the {name} plugin; the schema is in docs/plugins.md ("Card reference").
papers:
  {name}:
    title: "{title}: replace with your paper's title"
    venue: "arXiv 2026"
    arxiv: "0000.00000"
    code: https://example.org/{name}
    license: Apache-2.0
models:
  {name}-tiny:
    paper: {name}
    task: image-classification
    plugin: {name}
    builder: {builder}
    input_size: [3, 64, 64]
    preprocess: {{interpolation: bilinear, crop_pct: 0.875, mean: imagenet, std: imagenet}}
    weights_note: "no weights published yet: add a `weights:` entry (hub/url + sha256) when there are"
    reported:
      source: "scaffold example: replace with your paper's table (every number copied, with its source)"
      params_m: 0.0382
"""

MODEL = '''\
"""{title}: the example model of the {name} plugin (replace with your architecture)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 1000, width: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU())
        self.stage = nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.num_features = 2 * width
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes)


def {builder}(*, num_classes: int = 1000, **kwargs) -> TinyNet:
    return TinyNet(num_classes=num_classes, **kwargs)
'''

TEST = '''\
"""The zoo conformance kit on this plugin: cards, builders, output shapes, params, converter, light import."""

from zoo.devkit.kit import check_plugin


def test_plugin_conforms():
    report = check_plugin("{name}")
    assert report.ok, "\\n".join(f"{{f.check}} {{f.subject}}: {{f.message}}" for f in report.failures)
'''

README = """\
# zoo-{name}

A [zoo](https://github.com/) plugin: cards and builders for {title}.

    pip install -e .          # then: zoo list {name}
    zoo plugin check {name}   # the conformance kit
    pytest tests              # the same checks from pytest

Files: `{package}/__init__.py` (hooks; keep it free of torch imports), `{package}/cards.yaml` (the
cards: every number under `reported` copied from the paper, with its source), `{package}/model.py`
(builders). See zoo's docs/plugins.md for the hooks and the card reference.
"""


def new_plugin(name: str, directory: str | Path = ".") -> Path:
    """Write the plugin ``zoo-NAME`` into ``directory/zoo-NAME`` and return that folder."""
    if not NAME_RE.match(name):
        raise UserError(f"plugin name {name!r}: use lower-case letters, digits and single dashes, starting with a letter")
    package = "zoo_" + name.replace("-", "_")
    builder = f"{package.removeprefix('zoo_')}_tiny"
    root = Path(directory) / f"zoo-{name}"
    if root.exists():
        raise UserError(f"{root}: already exists; choose another --dir or remove it")
    values = {"name": name, "package": package, "builder": builder, "title": name.replace("-", " ").title()}
    files = {
        "pyproject.toml": PYPROJECT,
        f"{package}/__init__.py": INIT,
        f"{package}/cards.yaml": CARDS,
        f"{package}/model.py": MODEL,
        "tests/test_conformance.py": TEST,
        "README.md": README,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return root
