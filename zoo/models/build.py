"""Building models: a card's builder, patches and ``create_model`` (imports torch when called)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import BuildError, UnknownPatch, UserError, ZooError
from zoo.models.features import check_out_indices
from zoo.registry import lookup, plugins
from zoo.registry.cards import Card

if TYPE_CHECKING:
    from torch import nn


def get_builder(card: Card) -> Any:
    """The callable that builds ``card``'s architecture (imports the plugin's model code)."""
    card.require_code()
    cat = lookup.catalog()
    cat.require_installed(card)
    builders = lookup._hook_table("zoo_builders").get(card.plugin, {})
    if card.builder not in builders:
        raise BuildError(
            f"model {card.name!r}: plugin {card.plugin!r} has no builder {card.builder!r} "
            f"(it offers: {', '.join(sorted(builders)) or 'none'})"
        )
    return plugins.resolve(builders[card.builder], card.plugin)


def parse_patch(spec: str) -> tuple[str, dict[str, Any]]:
    """``"tome:r=13,prop_attn=true"`` -> ``("tome", {"r": 13, "prop_attn": True})``."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"patch {spec!r}: expected NAME:key=value,..., got {item!r}")
        options[key.strip()] = _typed(value.strip())
    if not name:
        raise UserError(f"patch {spec!r}: missing patch name")
    return name, options


def _typed(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _check_patch_options(fn: Any, name: str, plugin: str, model: Any, options: dict[str, Any]) -> None:
    """Bind the options to the patch's signature before calling it (as create_model does for builders),
    so a wrong option is one line naming the accepted ones, and a TypeError inside the patch stays a bug."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no introspectable signature (a C callable): the call decides
        return
    params = list(signature.parameters.values())[1:]  # the first takes the model
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    try:
        signature.bind(model, **options)
    except TypeError as exc:
        unknown = [key for key in options if key not in accepted]
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in params):
            problem = f"does not take the option{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}"
        else:
            problem = f"rejected its options: {exc}"
        raise UserError(f"patch {name!r} (plugin {plugin!r}) {problem} (accepted: {', '.join(accepted) or 'none'})") from None


def _call_plugin_code(fn: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """Call a builder or patch; an unexpected exception becomes one BuildError line (the original
    is its ``__cause__``, shown by ``zoo --debug``). zoo's own errors pass through unchanged."""
    try:
        return fn(*args, **kwargs)
    except ZooError:
        raise
    except (Exception, SystemExit) as exc:  # sys.exit() in a builder must not end zoo silently
        raise BuildError(f"{what} raised {plugins.describe_error(exc)}") from exc


def _prepare_patch(spec: str) -> tuple[Any, str, str, str, dict[str, Any]]:
    """Resolve ``spec`` and check its options, before any model is built: ``(fn, name, plugin, ref, options)``."""
    name, options = parse_patch(spec)
    patches = lookup.hook_entries("zoo_patches")
    if name not in patches:
        raise UnknownPatch(name, patches)
    plugin_name, ref = patches[name]
    fn = plugins.resolve(ref, plugin_name)
    _check_patch_options(fn, name, plugin_name, object(), options)  # binding ignores the model's type
    return fn, name, plugin_name, ref, options


def check_patch(spec: str) -> None:
    """Refuse a bad ``--patch`` before anything is built: an unknown patch, bad syntax, or options the
    patch does not take (:class:`UserError`, one line naming the accepted options)."""
    _prepare_patch(spec)


def apply_patch(model: nn.Module, spec: str, model_name: str | None = None) -> nn.Module:
    """Apply a plugin's model patch (e.g. ``tome:r=13``) to ``model``.

    :raises UserError: an unknown patch, or an option the patch does not take (naming the ones it does).
    :raises BuildError: the patch raised; the message names the model, the patch and its plugin.
    """
    fn, name, plugin_name, ref, options = _prepare_patch(spec)
    what = f"model {model_name!r}: " if model_name else ""
    return _call_plugin_code(fn, f"{what}patch {name!r} (plugin {plugin_name!r}, {ref})", model, **options)


def create_model(
    name: str,
    pretrained: bool = False,
    *,
    checkpoint: str | Path | None = None,
    patch: str | None = None,
    weights: str | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build the model of card ``name``, in eval mode.

    :param pretrained: load the card's weights (downloaded and verified on first use).
    :param checkpoint: load this local file instead (``.safetensors``, ``.pth``, ``.pth.tar``, ``.pt``, ``.bin``).
    :param patch: a model patch applied after loading, ``"NAME:k=v,..."``; the card's own
        ``patch:`` is applied first.
    :param weights: which of the card's named weights (``card.weights_names``; default: the first):
        the model is built with that entry's ``num_classes`` and configured with its input size and
        preprocessing, and ``pretrained`` loads that entry.
    :param features_only: build the backbone as a feature extractor (timm's contract: the model returns
        a list of feature maps); ``out_indices`` picks the stages. Weights load into it, remapped.
    :param kwargs: passed to the builder; ``num_classes`` is passed only when the card (or weights
        entry) has one and the caller gives none.
    :raises BuildError: the builder or a patch raised, or it does not take ``features_only``.
    :raises UserError: an unknown weights name (listing the card's), a bad ``out_indices``.
    """
    card = lookup.get_card(name).for_weights(weights)
    builder = get_builder(card)
    specs = [spec for spec in (card.patch, patch) if spec]
    for spec in specs:  # a wrong --patch is refused before the (possibly slow) build
        _prepare_patch(spec)
    if card.num_classes is not None:
        kwargs.setdefault("num_classes", card.num_classes)
    if out_indices is not None and not features_only:
        raise UserError("out_indices is given without features_only=True")
    if features_only:
        kwargs["features_only"] = True
        if out_indices is not None:
            kwargs["out_indices"] = check_out_indices(out_indices)
    try:  # check the arguments first, so a TypeError raised inside the builder stays a visible bug
        inspect.signature(builder).bind(**kwargs)
    except TypeError as exc:
        if features_only and not _takes(builder, "features_only"):
            raise BuildError(f"model {card.name!r}: builder {card.builder!r} of plugin {card.plugin!r} does not take "
                             "features_only (it cannot build a feature extractor)") from None
        raise BuildError(f"model {card.name!r}: builder {card.builder!r} rejected its arguments: {exc}") from None
    except ValueError:  # no introspectable signature (a C callable): let the call itself decide
        pass
    model = _call_plugin_code(builder, f"model {card.name!r}: builder {card.builder!r} of plugin {card.plugin!r}", **kwargs)
    if checkpoint is not None or pretrained:
        if features_only:
            _load_features(model, card, checkpoint)
        else:
            from zoo import weights as weights_layer

            weights_layer.load_into(model, card, checkpoint=checkpoint)
    for spec in specs:
        model = apply_patch(model, spec, card.name)
    from zoo.models.datacfg import apply_card_cfg

    return apply_card_cfg(model, card).eval()


def _takes(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def _load_features(model: nn.Module, card: Card, checkpoint: str | Path | None) -> None:
    """Load the card's weights (or ``checkpoint``) into a feature extractor: remapped, then strictly."""
    from zoo.models.features import remap_to_features
    from zoo.weights import checkpoint as ckpt
    from zoo.weights import ensure

    if checkpoint is not None:
        state_dict, origin = ckpt.load_converted(card, checkpoint), repr(str(checkpoint))
    else:
        entry = ensure(card).entry
        state_dict, origin = ckpt.read_safetensors(entry.path), f"from {entry.source}"
    ckpt.load_strict(model, remap_to_features(model, state_dict), card, origin=origin)
