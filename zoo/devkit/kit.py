"""The plugin conformance kit: what `zoo plugin check` runs and plugin authors call from their tests.

Checks, each reported per card with one message naming the fault:

- ``import-light``: importing the plugin's entry module imports neither torch nor timm;
- ``loads``: the entry point imports and registers (hook signatures match the specs);
- ``card``: every card of the plugin validates, and no name collides with an installed card;
- ``builder``: every card's builder is offered by the plugin and builds on the CPU;
- ``output``: the model runs on its task's example inputs (default: a 1 x C x H x W ``randn`` at the card's input size) and the task's ``check_output`` accepts what it returns (classification: (1, num_classes) logits);
- ``fold``: for a card whose ``reported.form`` is ``deploy``, :func:`zoo.measure.bench.fold` (the rule bench
  and verify use: the plugin's ``zoo_fold`` hook, else the ``reparameterize()`` convention) folds the
  model and the folded model gives the same logits;
- ``params``: the parameter count (of the folded model for a ``deploy`` card) equals the card's
  reported one to the table's precision, or the card's ``deviations.params_m`` explains why not;
- ``convert``: the plugin's checkpoint converter turns the model's own state dict, in the official
  container (``{'state_dict': ..., 'epoch': ...}`` with ``module.`` prefixes), into keys that load with
  ``strict=True``, and converting twice changes nothing.

Models larger than ``max_forward_params`` are sized with :class:`zoo.models.lightbuild.light_build` and are
not run; the report says so.

Fidelity to an official implementation is the other half of the kit: :func:`parity` (from
:mod:`zoo.devkit.parity`) builds our model and the official one, randomises every weight and buffer of the
official one, loads it through the card's conversion path, compares keys, shapes and outputs, and
writes the key/shape manifest a plugin's tests assert.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.devkit.parity import (  # noqa: F401 - the parity helper is part of the kit's public API
    ParityReport,
    card_converter,
    card_for,
    format_manifest,
    parity,
    randomize_state,
    write_manifest,
)
from zoo.errors import UnknownPlugin, ZooError, first_line
from zoo.models import build
from zoo.registry import lookup
from zoo.registry.cards import Card

DEFAULT_MAX_FORWARD_PARAMS = 100_000_000
FOLD_RTOL = 1e-4  # folding BN into convs changes float rounding only


@dataclass
class Finding:
    check: str  #: import-light, loads, card, builder, output, fold, params, convert
    subject: str  #: card name, or the plugin name for plugin-wide checks
    ok: bool
    message: str = ""


@dataclass
class Report:
    plugin: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def add(self, check: str, subject: str, ok: bool, message: str = "") -> None:
        self.findings.append(Finding(check, subject, ok, message))

    def as_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "ok": self.ok, "findings": [asdict(f) for f in self.findings]}


def plugin_name_from_path(path: Path) -> tuple[str, str]:
    """``(entry-point name, module)`` declared by the pyproject.toml of a plugin's source folder."""
    pyproject = path / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ZooError(f"{pyproject}: cannot read the plugin's pyproject.toml: {exc}") from None
    eps = data.get("project", {}).get("entry-points", {}).get("zoo", {})
    if len(eps) != 1:
        raise ZooError(f"{pyproject}: expected one entry point in [project.entry-points.zoo], found {len(eps)}")
    [(name, module)] = eps.items()
    return name, module


def _imports_heavy(module: str, extra_path: str | None) -> list[str]:
    code = (
        "import sys\n"
        + (f"sys.path.insert(0, {extra_path!r})\n" if extra_path else "")
        + f"import {module.split(':')[0]}\n"
        "print(' '.join(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # what this process can import
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise ZooError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "import failed")
    return out.stdout.split()


def check_plugin(
    name_or_path: str | Path, *, max_forward_params: int = DEFAULT_MAX_FORWARD_PARAMS
) -> Report:
    """Run every conformance check on an installed plugin (by name) or a plugin source folder."""
    path = Path(name_or_path)
    extra_path = None
    if path.is_dir():
        name, module = plugin_name_from_path(path)
        extra_path = str(path.resolve())
        if extra_path not in sys.path:  # a source folder that is not installed: import it from there
            sys.path.insert(0, extra_path)
            lookup.reset()
    else:
        name, module = str(name_or_path), ""
    catalog = lookup.catalog()
    status = catalog.plugin_status(name)
    if status is None:
        raise UnknownPlugin(name, [s.name for s in catalog.plugins])
    report = Report(plugin=name)
    module = module or status.module
    try:
        heavy = _imports_heavy(module, extra_path)
        report.add("import-light", name, not heavy, f"importing {module} imports {', '.join(heavy)}" if heavy else "")
    except ZooError as exc:
        report.add("import-light", name, False, f"importing {module} fails: {exc}")
    report.add("loads", name, status.ok, status.error or "")
    if not status.ok:
        return report
    for error in catalog.errors:  # card errors and collisions in this plugin's card files
        text = str(error)
        if f"<{name} cards>" in text or (status.module.split(":")[0].split(".")[0] in text):
            entry = getattr(error, "entry", "") or name
            report.add("card", entry, False, text)
    cards = [card for card in catalog.cards.values() if card.plugin == name]
    if not cards:
        report.add("card", name, False, "the plugin has no cards (ship them with the zoo_cards hook)")
    for card in cards:
        report.add("card", card.name, True)
        _check_card(report, card, max_forward_params)
    return report



def _builder_kwargs(card: Card) -> dict[str, int]:
    """What the kit passes a builder: ``num_classes`` only when the card has one, as create_model does."""
    return {"num_classes": card.num_classes} if card.num_classes is not None else {}

def _check_card(report: Report, card: Card, max_forward_params: int) -> None:
    import torch

    from zoo.measure.bench import card_form, count_params
    from zoo.models.lightbuild import light_build

    if card.card_only:  # nothing to build or load: its claims are cited, never measured
        report.add("builder", card.name, True, f"card-only: {card.card_only}")
        return
    try:
        builder = build.get_builder(card)
    except ZooError as exc:
        report.add("builder", card.name, False, str(exc))
        return
    try:
        with light_build():
            sized = builder(**_builder_kwargs(card))
        n_params = count_params(sized)
    except Exception as exc:  # a plugin's builder is third-party code: report, never crash
        report.add("builder", card.name, False,
                   f"plugin {card.plugin!r}: builder {card.builder!r} raised {type(exc).__name__}: {first_line(exc)}")
        return
    report.add("builder", card.name, True)
    deploy = card_form(card) == "deploy"
    if n_params > max_forward_params:
        if deploy:  # count the folded model without running it
            folded = _fold(report, card, sized.to("meta"))
            if folded is None:
                return
            n_params = count_params(folded)
        _check_params(report, card, n_params)
        report.add("output", card.name, True, f"not run: {n_params / 1e6:.0f} M params > --max-forward-params")
        return
    del sized
    try:
        torch.manual_seed(0)
        model = builder(**_builder_kwargs(card)).eval()
        prepare = lookup.task_code(card, "prepare")
        if prepare is not None:  # a few-shot model fits on generated references before it can score
            model = prepare(card, model)
        make_inputs, check_output = _task_checks(card)
        x = make_inputs(1) if make_inputs is not None else torch.randn(1, *card.input_size)
        with torch.inference_mode():
            out = model(*x) if isinstance(x, tuple) else model(x)
    except Exception as exc:
        report.add("output", card.name, False, f"forward on 1x{'x'.join(map(str, card.input_size or ()))} raised "
                                               f"{type(exc).__name__}: {first_line(exc)}")
        if not deploy:  # the folded count needs a model that runs
            _check_params(report, card, n_params)
        return
    report.add("output", card.name, *_output_ok(card, check_output, out))
    if deploy:
        folded_params = _check_fold(report, card, model, x, out)
        if folded_params is not None:
            _check_params(report, card, folded_params)
    else:
        _check_params(report, card, n_params)
    _check_convert(report, card, model)


def _task_checks(card: Card) -> tuple[Any, Any]:
    """``(batch -> inputs, check_output)`` of the card's task (``Task.example_inputs``/``check_output``);
    None for what the task does not declare."""
    from zoo.registry import lookup, plugins

    entry = lookup.tasks().get(card.task)
    if entry is None:
        return None, None
    plugin, task = entry
    make = plugins.resolve(task.example_inputs, plugin) if task.example_inputs else None
    check = plugins.resolve(task.check_output, plugin) if task.check_output else None
    return (None if make is None else (lambda batch: make(card, batch))), check


def _output_ok(card: Card, check_output: Any, out: Any) -> tuple[bool, str]:
    """The task's verdict on the model's output for a batch of one (one line when it is not what the task expects)."""
    if check_output is None:
        return True, f"ran; task {card.task!r} declares no output check"
    try:
        check_output(card, out, 1)
    except ValueError as exc:
        return False, first_line(exc)
    except Exception as exc:  # the task's check is plugin code: a crash is a finding, not a traceback
        return False, f"the output check of task {card.task!r} raised {type(exc).__name__}: {first_line(exc)}"
    return True, ""


def _fold(report: Report, card: Card, model: Any) -> Any | None:
    """:func:`zoo.measure.bench.fold`, the rule bench and verify use; a failure is a ``fold`` finding."""
    from zoo.measure.bench import fold

    try:
        folded, _how = fold(model, card)
    except ZooError as exc:
        report.add("fold", card.name, False, str(exc))
        return None
    except Exception as exc:  # the model's own fuse()/reparameterize() is third-party code
        report.add("fold", card.name, False, f"folding raised {type(exc).__name__}: {first_line(exc)}")
        return None
    return folded


def _check_fold(report: Report, card: Card, model: Any, x: Any, out: Any) -> int | None:
    """Fold a copy of ``model`` (the card's form is ``deploy``): same logits, and its param count."""
    import copy

    import torch

    from zoo.measure.bench import count_params

    folded = _fold(report, card, copy.deepcopy(model))
    if folded is None:
        return None
    try:
        with torch.inference_mode():
            again = folded.eval()(x)
    except Exception as exc:
        report.add("fold", card.name, False, f"the folded model's forward raised {type(exc).__name__}: {first_line(exc)}")
        return None
    diff = float((again.float() - out.float()).abs().max())
    scale = float(out.float().abs().max())
    if not diff <= FOLD_RTOL * max(scale, 1.0):
        report.add("fold", card.name, False, f"the folded model's logits differ from the unfolded one's by {diff:.3g} "
                                             f"(max |logit| {scale:.3g}; allowed {FOLD_RTOL:g} relative)")
        return None
    n_params = count_params(folded)
    report.add("fold", card.name, True, f"folded: {count_params(model):,} -> {n_params:,} params, "
                                        f"same logits (max diff {diff:.2g})")
    return n_params


def _check_params(report: Report, card: Card, n_params: int) -> None:
    from zoo.claims.verify import within_precision  # rounded or truncated, as papers print counts

    reported = card.reported.params_m if card.reported else None
    if reported is None:
        report.add("params", card.name, True, f"{n_params / 1e6:.2f} M (the card reports none)")
        return
    measured = n_params / 1e6
    if within_precision(measured, reported):
        report.add("params", card.name, True, f"{measured:.4g} M = reported {reported} M")
    elif "params_m" in card.deviations:
        report.add("params", card.name, True, f"{measured:.4g} M vs reported {reported} M, explained: {card.deviations['params_m']}")
    else:
        report.add("params", card.name, False,
                   f"builds {measured:.4g} M params, card reports {reported} M (neither rounded nor truncated); "
                   "fix the builder or explain it in the card's deviations.params_m")


def _check_convert(report: Report, card: Card, model: Any) -> None:
    from zoo.weights import checkpoint

    own = model.state_dict()
    official = {"state_dict": {f"module.{key}": value for key, value in own.items()}, "epoch": 300}
    try:
        converted = checkpoint.convert(card, checkpoint.unwrap(official))
        again = checkpoint.convert(card, dict(converted))
        checkpoint.load_strict(model, converted, card, origin="(the model's own state dict, official container)")
    except ZooError as exc:
        report.add("convert", card.name, False, str(exc))
        return
    if set(again) != set(converted):
        report.add("convert", card.name, False, "converting twice changes the keys (the converter is not idempotent)")
        return
    report.add("convert", card.name, True)
