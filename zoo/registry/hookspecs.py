"""The plugin contract: every hook a zoo plugin may implement.

A plugin is a module registered under the entry-point group ``zoo``. It implements any of the
hooks below with ``@zoo.hookimpl``; an implementation may accept any subset of a hook's
arguments, so arguments can be added to a spec later without breaking plugins, never renamed
or removed.

Rules every implementation follows:

- The plugin's entry module is imported by ``zoo list``. It must not import torch, timm or
  anything heavy at top level. Code is named by ``"module:attribute"`` strings and imported
  only when it is used.
- Hooks return data; they never download, print or change global state.

This module holds specs only; ``docs/plugins.md`` renders these docstrings for authors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from torch import Tensor, nn

    from zoo.registry.cards import Card
    from zoo.registry.tasks import Task

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


# -- Catalog: called by `zoo list`; must not import torch -----------------------------------------


@hookspec
def zoo_cards() -> list[Path | str | dict[str, Any]]:
    """Return the cards this plugin ships.

    Called once per process when the catalog is first read. Each item is a path to a YAML file
    (``papers:`` and ``models:`` sections, see ``docs/plugins.md``) or such a document already
    parsed into a dict. First-party plugins keep their cards in the top-level ``registry.yaml``
    instead and need not implement this hook.

    :returns: a list of paths or parsed documents; an empty list if none.

    .. versionadded:: 0.1
    """


# -- Models: called only when a model is built ----------------------------------------------------


@hookspec
def zoo_builders() -> dict[str, str]:
    """Return this plugin's model builders, by the plugin-local name cards use in ``builder:``.

    Each value is ``"module:callable"``. The callable is imported when a model is built and
    called as ``fn(**kwargs)`` (e.g. ``num_classes=10``); it returns a ``torch.nn.Module`` with
    random weights. It must not download or load weights: the core does that.

    Called once per process, the first time a model is built or a plugin is checked.

    :returns: ``{builder_name: "module:callable"}``.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def zoo_read_checkpoint(card: Card, path: Path) -> dict[str, Tensor] | None:
    """Read an official checkpoint of ``card`` that the core's safe reader refused.

    Called when ``torch.load(weights_only=True)`` refuses the file because its pickle holds objects
    other than tensors and containers (YOLOv6's official ``.pt`` files pickle the whole
    ``nn.Module``), before ``zoo_convert_checkpoint``. Called only for the card's own plugin. The
    core's safety rule holds for plugins too: never unpickle the file with ``torch.load`` or
    ``pickle``; use the core's restricted reader, which rebuilds tensors and plain containers and
    never imports or runs a pickled class::

        @zoo.hookimpl
        def zoo_read_checkpoint(card, path):
            from zoo.weights.unpickle import read_module_checkpoint
            return read_module_checkpoint(path, key=card.weights_key or "ema")

    Without an answer the core itself tries that reader (the module under the card's
    ``weights_key``, else ``model``, else ``ema``), so a plugin implements this hook only for a
    format that needs more (another container, a non-torch file). A file with no pickled module
    keeps torch's refusal as its error.

    :param card: the card being loaded (its ``plugin`` is yours).
    :param path: the downloaded or user-given file; do not change it.
    :returns: a dict of name -> dense CPU tensor (the model's tensors, already out of their
        container; conversion follows), or ``None`` to leave the file to the core. Anything else
        (not a dict, non-tensor values, an empty dict, a raised exception) is reported as an error
        of your plugin, and nothing is cached. Stops at the first non-None result.

    .. versionadded:: 0.2
    """


@hookspec(firstresult=True)
def zoo_convert_checkpoint(card: Card, state_dict: dict[str, Tensor]) -> dict[str, Tensor] | None:
    """Map an official checkpoint of ``card`` onto the builder's state-dict keys.

    Called after the core has read a checkpoint safely (``torch.load(weights_only=True)``, or your
    ``zoo_read_checkpoint``, or the core's restricted reader of pickled modules),
    removed its container (the card's ``weights_key``, else ``state_dict``, ``model``,
    ``state_dict_ema``) and ``module.``
    prefixes, and before the result is cached as safetensors. Called only for the card's own
    plugin: another plugin's implementation is never asked, so a converter cannot take over
    cards it does not own. Choosing the container is the core's job (one rule on every path);
    a converter must not pick another one (e.g. the EMA copy) on its own.

    :param card: the card being loaded (its ``plugin`` is yours).
    :param state_dict: tensors as read from the file. Do not change it in place.
    :returns: a new dict of name -> dense tensor, or ``None`` if it needs no conversion.
        Converting an already converted dict must return it unchanged (idempotent).
        Anything else (not a dict, non-tensor values, an empty dict) is reported as an error
        of your plugin.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 called only for the card's own plugin.
    """


@hookspec(firstresult=True)
def zoo_fold(card: Card, model: nn.Module) -> nn.Module | None:
    """Fold ``model``'s train-time branches into the deploy model its card's claims describe.

    Re-parameterisable models (RepVGG, MobileOne, YOLOv6) are trained with parallel branches and
    deployed with each block folded into one convolution; their papers count params and MACs on
    the folded model. When a card says ``reported.form: deploy``, ``zoo bench``, ``zoo verify`` and
    ``zoo plugin check`` count (and ``zoo bench`` times) the folded model, and ``zoo bench --reparam``
    folds any card. Called only for the card's own plugin (another plugin's implementation is
    never asked), on a freshly built model in eval mode, on the CPU or the ``meta`` device.

    Most plugins need not implement it: without an answer the core folds by convention, first
    ``model.reparameterize()`` / ``model.switch_to_deploy()`` when the model class defines one, else
    timm's ``reparameterize_model``, which calls ``fuse()``, ``reparameterize()`` or
    ``switch_to_deploy()`` on every sub-module that has one (timm's MobileOne, RepVGG, FastViT, and
    the official RepVGG/YOLOv6 blocks). Implement the hook when folding needs more than those
    methods: a module swap, a whole-model conversion function, or the card (e.g. a variant that
    is deployed differently). A hook, not only a method convention, because the plugin then
    decides per card, can fold models whose classes it does not own (timm's), and its failures
    are reported against the plugin. If the card says ``deploy`` and neither the hook nor the
    convention folds the model, the count is an error, never the unfolded model's.

    :param card: the card whose model is folded (its ``plugin`` is yours).
    :param model: the built model; you may fold it in place.
    :returns: the folded model (``model`` itself or a new module), or ``None`` to leave it to the
        convention above. Stops at the first non-None result.

    .. versionadded:: 0.2
    """


@hookspec
def zoo_patches() -> dict[str, str]:
    """Return model patches this plugin offers, e.g. Token Merging as ``tome``.

    Each value is ``"module:callable"``; the callable is called as ``fn(model, **options)``
    (options parsed from ``--patch NAME:k=v,...``, values as strings or already typed), patches
    the model and returns it. It raises ``zoo.errors.PatchError`` for a model it does not support.

    :returns: ``{patch_name: "module:callable"}``.

    .. versionadded:: 0.1
    """


# -- Evaluation: called by `zoo eval` -------------------------------------------------------------


@hookspec
def zoo_tasks() -> dict[str, Task]:
    """Return the task families this plugin declares, by task name (the ``task:`` field of a card).

    Each value is a :class:`zoo.registry.tasks.Task` whose ``name`` equals its key: a torch-free
    spec of the card fields the task owns (``card_fields``, validated by ``parse_fields``), the
    datasets it accepts, its metrics (:class:`zoo.registry.tasks.Metric`: unit, direction,
    tolerance, which one is primary), its options (a dataclass; ``zoo eval`` makes one CLI option per
    field) and its code as ``"module:callable"`` references (``evaluate``, ``example_inputs``,
    ``check_output``, ``protocol``, ``write_predictions``, ``demo_data``), imported only when used.
    The fields are listed under "Task and Metric fields" below. The core registers
    ``image-classification`` itself, through this same hook::

        from dataclasses import dataclass
        from zoo.registry.tasks import Metric, Task

        @dataclass
        class CountOptions:
            threshold: float = 0.5

        @zoo.hookimpl
        def zoo_tasks():
            return {"object-counting": Task(
                name="object-counting", summary="count objects in an image",
                metrics=(Metric(name="mae", unit="objects", direction="lower", tolerance=0.05, primary=True),),
                datasets=("count-folder",), options=CountOptions,
                evaluate="zoo_counting.evaluate:evaluate", demo_data="zoo_counting.demo:make")}

    A task whose ``name`` differs from its key, or a value that is neither a ``Task`` nor a reference,
    is dropped with an error charged to your plugin; a task name another plugin declared first stays
    theirs.

    :returns: ``{task_name: Task}``.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 values are :class:`~zoo.registry.tasks.Task` objects. A bare
        ``"module:callable"`` (zoo 0.1: ``fn(model, card, dataset, options) -> dict``) is still
        accepted as a task with only ``evaluate``; it is deprecated.
    """


@hookspec
def zoo_datasets() -> dict[str, str]:
    """Return dataset adapters by the name users pass to ``--dataset``.

    Each value is ``"module:callable"``; the callable is called as ``fn(root, **options)`` and
    returns a dataset object (see ``docs/plugins.md``). The core registers the ImageNet family
    and ``folder`` itself, through this same hook.

    :returns: ``{dataset_name: "module:callable"}``.

    .. versionadded:: 0.1
    """


# -- Commands: `zoo NAME ...` of a task family ---------------------------------------------------


@hookspec
def zoo_commands() -> dict[str, str]:
    """Return extra ``zoo`` commands by name: ``{"anomaly": "zoo_anomaly.cli:anomaly_command"}``.

    Each value names a :class:`click.Command`, imported only when that command runs (``zoo list``
    never pays for it). A task family uses this for what only it can do (``zoo anomaly``,
    ``zoo segment``); the command should only parse, call the plugin's Python API and render, and
    raise :class:`zoo.errors.UserError` for bad input, which the core prints as one ``Error:`` line.
    A name the core already has (``list``, ``eval``, ...) or another plugin offered first is
    refused and charged to your plugin.

    :returns: ``{command_name: "module:click_command"}``.

    .. versionadded:: 0.2
    """
