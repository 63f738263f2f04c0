"""Checkpoints: read safely, unwrap, remap through the plugin hook, load strictly.

No pickle is ever executed: ``.pth``-style files are opened with ``torch.load(weights_only=True)``
only, which refuses any object that is not a tensor, a container or a primitive.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.cards import Card
from zoo.errors import PluginError, WeightsError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn

TORCH_SUFFIXES = (".pth.tar", ".pth", ".pt", ".bin", ".ckpt", ".tar")
SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
# containers tried in this order, as official eval scripts do by default (timm's validate.py without
# --use-ema, FasterViT's and DeiT's loaders); a card's `weights_key` picks another, e.g. the EMA copy
WRAPPERS = ("state_dict", "model", "state_dict_ema", "model_ema", "module")
SHOW = 5  # how many names of each kind an error shows


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, as stored (wrappers not yet removed for torch files)."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise WeightsError(f"checkpoint {str(path)!r} does not exist")
    if name.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"checkpoint {str(path)!r} is not a valid safetensors file: {first_line(exc)}") from None
    if not name.endswith(TORCH_SUFFIXES):
        raise WeightsError(f"checkpoint {str(path)!r}: unsupported file type (expected one of {', '.join(SUFFIXES)})")
    import torch

    try:
        # training scripts (timm's train.py, EfficientMod's) save their argparse.Namespace beside the
        # weights; rebuilding a Namespace only sets attributes, so it is allowed, and nothing else is
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"refusing to load {str(path)!r}: it holds pickled objects other than tensors, and zoo never "
            f"runs pickled code (torch.load weights_only=True: {_unpickling_reason(exc)})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read checkpoint {str(path)!r}: {first_line(exc)}") from None
    return obj


def unwrap(obj: Any, key: str | None = None) -> dict[str, torch.Tensor]:
    """Remove the containers official checkpoints use and ``module.`` prefixes; keep tensors only.

    :param key: the container to take (a card's ``weights_key``); an error if the file lacks it.
    """
    import torch

    if key is not None and isinstance(obj, Mapping) and key not in obj:
        raise WeightsError(f"checkpoint has no {key!r} entry (the card's weights_key); it has: "
                           f"{', '.join(map(str, list(obj)[:SHOW * 2]))}")
    if key is not None and isinstance(obj, Mapping):
        obj = obj[key]
    while isinstance(obj, Mapping):
        inner = next((obj[key] for key in WRAPPERS if isinstance(obj.get(key), Mapping) and obj[key]), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise WeightsError(f"checkpoint holds a {type(obj).__name__}, expected a mapping of name -> tensor")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"checkpoint holds no tensors (top-level keys: {', '.join(map(str, list(obj)[:SHOW]))})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def convert(card: Card, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official checkpoint onto the builder's keys through the plugin hook (firstresult)."""
    from zoo import api

    pm = api.catalog().pm
    if pm is None:
        return state_dict
    try:
        result = pm.hook.zoo_convert_checkpoint(card=card, state_dict=state_dict)
    except Exception as exc:  # a plugin bug: blame the plugin, keep the message one line
        raise PluginError(card.plugin, f"zoo_convert_checkpoint for {card.name!r} raised {type(exc).__name__}: {first_line(exc)}") from None
    if result is None:
        return state_dict
    if not isinstance(result, Mapping):
        raise PluginError(card.plugin, f"zoo_convert_checkpoint for {card.name!r} returned {type(result).__name__}, expected a dict")
    return dict(result)


def load_converted(card: Card, path: str | Path) -> dict[str, torch.Tensor]:
    """Read any supported checkpoint file and return the builder's state dict."""
    return convert(card, unwrap(read_state_dict(path), card.weights_key))


def save_safetensors(state_dict: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
    if len({t.data_ptr() for t in tensors.values() if t.numel()}) < sum(1 for t in tensors.values() if t.numel()):
        tensors = {k: v.clone() for k, v in tensors.items()}  # shared storage (tied weights): safetensors refuses it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], card: Card, origin: str) -> None:
    """``load_state_dict(strict=True)``, with a one-line error naming what does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if not (missing or unexpected or shapes):
        model.load_state_dict(state_dict, strict=True)
        return
    model_classes = getattr(model, "num_classes", None)
    if shapes and isinstance(model_classes, int) and model_classes != card.num_classes:
        raise WeightsError(
            f"model {card.name!r}: built with num_classes={model_classes} but its weights ({origin}) have "
            f"{card.num_classes} classes; load them with the default num_classes, then call "
            f"model.reset_classifier({model_classes})"
        )
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape differences", shapes)):
        if items:
            more = f", ... (+{len(items) - SHOW})" if len(items) > SHOW else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:SHOW])}{more}")
    raise WeightsError(f"model {card.name!r}: weights {origin} do not fit the model: {'; '.join(parts)}")


def _unpickling_reason(exc: BaseException) -> str:
    """The line of torch's long message that names what was refused (e.g. ``GLOBAL builtins.open``)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    named = [line for line in lines if "Unsupported" in line or "GLOBAL" in line]
    return (named or [line for line in lines if line] or ["refused"])[0].split(" was not ")[0].rstrip(".")

