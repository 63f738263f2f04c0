"""Checkpoints: read safely, unwrap, remap through the plugin hook, load strictly.

No pickle is ever executed: ``.pth``-style files are opened with ``torch.load(weights_only=True)``
only, which refuses any object that is not a tensor, a container or a primitive.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import PluginError, UserError, WeightsError, first_line
from zoo.registry.cards import Card

if TYPE_CHECKING:
    import torch
    from torch import nn

TORCH_SUFFIXES = (".pth.tar", ".pth", ".pt", ".bin", ".ckpt", ".tar")
SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
# THE container rule, the same on every path (pretrained download, `zoo cache add`, --checkpoint, a
# plugin's converter): a card's `weights_key` names the container its official evaluation script
# loads; without one these are tried in order, as official eval scripts do by default (timm's
# validate.py without --use-ema, FasterViT's and DeiT's loaders). Plugins receive the tensors
# already taken out of their container and must not pick another one themselves.
WRAPPERS = ("state_dict", "model", "state_dict_ema", "model_ema", "module")
SHOW = 5  # how many names of each kind an error shows
# tensors may need at most this much more memory, densely, than the storages they view: views that
# overlap (an expanded stride, many offset slices of one buffer) are not weights
EXPANSION = 2
SLACK = 1 << 20  # bytes allowed beyond EXPANSION x the storages (tiny checkpoints)
ALIASES = "zoo_aliases"  # safetensors metadata: {"name": "name it is an identical view of"}


def read_state_dict(path: str | Path) -> Any:
    """The object in a checkpoint file (tensors as stored; wrappers not yet removed for torch files).

    Memory is bounded by the file: a zip member that would expand past the file's size, or a legacy
    file declaring storages larger than itself, is refused before torch allocates anything.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise WeightsError(f"checkpoint {str(path)!r} does not exist")
    if name.endswith(".safetensors"):
        return read_safetensors(path)
    if not name.endswith(TORCH_SUFFIXES):
        raise WeightsError(f"checkpoint {str(path)!r}: unsupported file type (expected one of {', '.join(SUFFIXES)})")
    _check_declared_sizes(path)
    import torch

    try:
        # training scripts (timm's train.py, EfficientMod's) save their argparse.Namespace beside the
        # weights; rebuilding a Namespace only sets attributes, so it is allowed, and nothing else is
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's warnings about odd tensors would break the one line
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise Refused(
            f"refusing to load {str(path)!r}: it holds pickled objects other than tensors, and zoo never "
            f"runs pickled code (torch.load weights_only=True: {_unpickling_reason(exc)})"
        ) from None
    except Exception as exc:  # a hostile or corrupt file: torch raises anything (KeyError, RuntimeError, ...)
        raise WeightsError(f"cannot read checkpoint {str(path)!r}: {type(exc).__name__}: {first_line(exc)}") from None


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors, identical views written once by :func:`save_safetensors` restored."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"checkpoint {str(path)!r} is not a valid safetensors file: {first_line(exc)}") from None
    try:
        aliases = json.loads(metadata.get(ALIASES, "{}"))
        for alias, name in aliases.items():
            tensors.setdefault(str(alias), tensors[name])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WeightsError(f"checkpoint {str(path)!r}: its {ALIASES} metadata names tensors it does not hold") from None
    return tensors


def _check_declared_sizes(path: Path) -> None:
    """Refuse a torch file whose tensors would need more memory than the file holds."""
    size = path.stat().st_size
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                declared = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise WeightsError(f"cannot read checkpoint {str(path)!r}: {first_line(exc)}") from None
        what = "its zip members expand to"
    else:
        declared = _legacy_storage_bytes(path)
        what = "its storages declare"
    if declared > size + SLACK:
        raise WeightsError(f"refusing checkpoint {str(path)!r}: {what} {declared} bytes from a {size}-byte file "
                           f"(torch.save never compresses; a checkpoint holds its tensors' bytes)")


# bytes per element of the storage classes legacy torch files name
_ITEMSIZE = {"Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2, "Char": 1,
             "Byte": 1, "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16, "QInt8": 1, "QUInt8": 1, "QInt32": 4,
             "Untyped": 1}


class _Inert:
    """Stands in for every class a scanned pickle names: accepts anything, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _StorageScan(pickle.Unpickler):
    """Reads a legacy (pre-zip) torch pickle only to sum the storage sizes it declares: every class it
    names resolves to a fresh :class:`_Inert` subclass, so nothing of the file runs or is allocated."""

    def __init__(self, fh: Any) -> None:
        super().__init__(fh)
        self.storages: dict[str, int] = {}
        self.kinds: dict[type, str] = {}

    def find_class(self, module: str, name: str) -> Any:
        cls = type(name, (_Inert,), {})
        self.kinds[cls] = name.removesuffix("Storage") if module == "torch" else ""
        return cls

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[4], int):
            kind = self.kinds.get(pid[1], "") if isinstance(pid[1], type) else ""
            self.storages[str(pid[2])] = max(pid[4], 0) * _ITEMSIZE.get(kind, 8)
        return _Inert()


def _legacy_storage_bytes(path: Path) -> int:
    """Bytes a legacy torch file declares for its storages (0 when it is not one: torch then says why)."""
    storages: dict[str, int] = {}
    try:
        with open(path, "rb") as fh:
            for _ in range(4):  # magic number, protocol, sys info, then the object naming the storages
                scan = _StorageScan(fh)
                scan.load()
                storages.update(scan.storages)
    except Exception:  # not (all of) a legacy pickle; torch.load gives the one-line reason
        pass
    return sum(storages.values())


def unwrap(obj: Any, key: str | None = None) -> dict[str, torch.Tensor]:
    """Take the weights out of their container (:data:`WRAPPERS`), drop ``module.`` prefixes, check them.

    Non-tensor entries (``epoch``, ``arch``) are dropped; tensors nested in lists or dicts, and tensors
    that are not dense CPU data (sparse, meta, quantized, nested) are refused with one line, as are
    views that would need far more memory than the storages behind them (see :func:`check_tensors`).

    :param key: the container to take (a card's ``weights_key``); an error if the file lacks it.
    """
    import torch

    if key is not None and isinstance(obj, Mapping) and key not in obj:
        raise WeightsError(f"checkpoint has no {key!r} entry (the card's weights_key); it has: "
                           f"{', '.join(map(str, list(obj)[:SHOW * 2]))}")
    if key is not None and isinstance(obj, Mapping):
        obj = obj[key]
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in WRAPPERS if isinstance(obj.get(k), Mapping) and obj[k]), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise WeightsError(f"checkpoint holds a {type(obj).__name__}, expected a mapping of name -> tensor")
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor) and _holds_tensor(value):
            raise WeightsError(f"checkpoint entry {str(name)!r} holds tensors inside a {type(value).__name__}; "
                               f"zoo reads a flat mapping of name -> tensor")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"checkpoint holds no tensors (top-level keys: {', '.join(map(str, list(obj)[:SHOW]))})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    check_tensors(tensors)
    return tensors


def _holds_tensor(value: Any, depth: int = 0) -> bool:
    import torch

    if isinstance(value, torch.Tensor):
        return True
    if depth > 20:
        return False
    if isinstance(value, Mapping):
        return any(_holds_tensor(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple | set):
        return any(_holds_tensor(v, depth + 1) for v in value)
    return False


def _view(t: torch.Tensor) -> tuple[Any, ...]:
    """What makes two tensors the same data: storage, offset, shape, strides, dtype."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def check_tensors(tensors: Mapping[str, Any], where: str = "checkpoint") -> None:
    """Refuse what is not a dense tensor of a dtype safetensors stores, and views that overlap absurdly.

    Dense copies of all distinct views may need at most :data:`EXPANSION` times the bytes of the
    storages they come from (plus :data:`SLACK`): an expanded stride (``torch.empty(1).expand(2**33)``)
    or hundreds of offset slices of one buffer are refused before anything is allocated.
    """
    import torch

    try:
        from safetensors.torch import _SIZE as storable  # dtypes safetensors writes
    except ImportError:  # a private name: without it, save_file itself says no
        storable = None
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise WeightsError(f"{where} entry {name!r} is a {type(t).__name__}, not a tensor")
        kind = ("sparse" if t.is_sparse or t.layout != torch.strided else "meta" if t.is_meta
                else "quantized" if t.is_quantized else "nested" if t.is_nested else None)
        if kind is None and t.device.type != "cpu":
            kind = t.device.type
        if kind is not None:
            raise WeightsError(f"{where} tensor {name!r} is a {kind} tensor; zoo reads dense tensors only")
        if storable is not None and t.dtype not in storable:
            raise WeightsError(f"{where} tensor {name!r} has dtype {t.dtype}, which safetensors cannot store")
    storages: dict[int, int] = {}
    dense: dict[tuple[Any, ...], int] = {}
    for t in tensors.values():
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        dense[_view(t)] = t.numel() * t.element_size()
    real, wanted = sum(storages.values()), sum(dense.values())
    if wanted > EXPANSION * real + SLACK:
        raise WeightsError(f"refusing {where}: its tensors would take {wanted} bytes as dense copies from "
                           f"{real} bytes of storage (expanded strides or overlapping views are not weights)")


class Refused(WeightsError):
    """torch's safe loader refused the file: its pickle names objects other than tensors and containers."""


def _own_impl(card: Card, hook: str) -> Any:
    """The card's own plugin's implementation of ``hook`` (another plugin's is never asked), or None."""
    from zoo.registry import lookup

    pm = lookup.catalog().pm
    if pm is None:
        return None
    impls = [impl for impl in getattr(pm.hook, hook).get_hookimpls() if impl.plugin_name == card.plugin]
    return impls[-1] if impls else None


def _call_own(own: Card, hook: str, **given: Any) -> Any:
    card = own
    impl = _own_impl(card, hook)
    if impl is None:
        return None
    try:
        return impl.function(**{name: given[name] for name in impl.argnames if name in given})
    except (WeightsError, UserError):  # the plugin's verdict on the file or the network (OfflineError): as is
        raise
    except (Exception, SystemExit) as exc:  # a plugin bug: blame the plugin, keep the message one line
        raise PluginError(card.plugin, f"{hook} for {card.name!r} raised {type(exc).__name__}: {first_line(exc)}") from None


def _check_answer(card: Card, hook: str, result: Any) -> dict[str, torch.Tensor]:
    """A plugin's tensors, validated the same way for every hook that returns a state dict."""
    if not isinstance(result, Mapping):
        raise PluginError(card.plugin, f"{hook} for {card.name!r} returned {type(result).__name__}, expected a dict")
    import torch

    try:
        bad = next(((k, v) for k, v in result.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))), None)
    except Exception as exc:  # a Mapping whose own methods raise
        raise PluginError(card.plugin, f"{hook} for {card.name!r} returned a {type(result).__name__} that cannot be "
                                       f"read: {type(exc).__name__}: {first_line(exc)}") from None
    if bad is not None:
        raise PluginError(card.plugin, f"{hook} for {card.name!r} returned a dict with {bad[0]!r:.60} -> "
                                       f"{type(bad[1]).__name__}, expected names -> tensors")
    if not result:
        raise PluginError(card.plugin, f"{hook} for {card.name!r} returned an empty dict")
    try:
        check_tensors(result, where=f"{'converted' if hook == 'zoo_convert_checkpoint' else 'read'} {card.name}")
    except WeightsError as exc:
        raise PluginError(card.plugin, f"{hook} for {card.name!r}: {exc}") from None
    return dict(result)


def convert(card: Card, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official checkpoint onto the builder's keys through the card's own plugin's hook.

    Only the ``zoo_convert_checkpoint`` of the plugin named by ``card.plugin`` is called: another
    plugin's converter (a buggy one answering for every card) can never take over this card.
    """
    result = _call_own(card, "zoo_convert_checkpoint", card=card, state_dict=state_dict)
    return state_dict if result is None else _check_answer(card, "zoo_convert_checkpoint", result)


def read_weights(card: Card, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of the checkpoint at ``path``, out of their container, before conversion.

    The core's safe reader (safetensors, ``torch.load(weights_only=True)``) goes first. When torch
    refuses the file because its pickle holds other objects (a whole pickled module, YOLOv6's
    ``.pt``), the card's own plugin's ``zoo_read_checkpoint`` is asked; if it does not answer, the
    core's restricted unpickler (:func:`zoo.weights.unpickle.read_module_checkpoint`, which runs no
    pickled code) reads a pickled module under ``weights_key``/``model``/``ema``; a file with no
    module in it keeps torch's refusal as its error.
    """
    try:
        obj = read_state_dict(path)
    except Refused as refused:
        result = _call_own(card, "zoo_read_checkpoint", card=card, path=Path(path))
        if result is not None:
            return _check_answer(card, "zoo_read_checkpoint", result)
        from zoo.weights import unpickle

        obj = unpickle.load(path)  # a corrupt record is its own located error
        try:
            tree = unpickle.find_module_tree(obj, card.weights_key)
        except WeightsError:
            tree = None
        if tree is None:  # not a pickled module: torch's refusal says what the file holds
            raise refused from None
        return unpickle.module_state_dict(tree, path)
    return unwrap(obj, card.weights_key)


def load_converted(card: Card, path: str | Path) -> dict[str, torch.Tensor]:
    """Read any supported checkpoint file and return the builder's state dict."""
    return convert(card, read_weights(card, path))


def save_safetensors(state_dict: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write atomically: a temporary ``.<name>.<random>.tmp`` in the same folder, then ``os.replace``.

    Tensors that are identical views of one storage (tied weights) are written once and recorded
    as aliases in the metadata (:func:`read_safetensors` restores them); distinct views sharing a
    storage are copied each to its own size (bounded by :func:`check_tensors`), never the whole storage.
    A temporary file left by a killed process shows in `zoo cache ls` and goes with `zoo cache rm`.
    """
    check_tensors(state_dict, where=f"weights for {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    first: dict[tuple[Any, ...], str] = {}
    aliases: dict[str, str] = {}
    for name, t in state_dict.items():
        if t.numel() and _view(t) in first:
            aliases[name] = first[_view(t)]
        elif t.numel():
            first[_view(t)] = name
    kept = {k: v.detach() for k, v in state_dict.items() if k not in aliases}
    users: dict[int, int] = {}
    for t in kept.values():
        users[t.untyped_storage().data_ptr()] = users.get(t.untyped_storage().data_ptr(), 0) + 1
    tensors = {k: (v.clone() if users[v.untyped_storage().data_ptr()] > 1 and v.numel() else v.contiguous())
               for k, v in kept.items()}
    meta = dict(metadata or {})
    if aliases:
        meta[ALIASES] = json.dumps(aliases)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        _save_file(tensors, tmp, meta)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_file(tensors: Mapping[str, torch.Tensor], tmp: str, metadata: dict[str, str]) -> None:
    """safetensors' ``save_file``, with its I/O failures (a full disk: ``SafetensorError ... os error
    28``) raised as the ``OSError`` they are, naming the file, so the CLI can say which folder is full."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(tensors, tmp, metadata=metadata)
    except SafetensorError as exc:
        found = re.search(r"os error (\d+)", str(exc))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), tmp) from exc


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
    if shapes and isinstance(model_classes, int) and card.num_classes is not None and model_classes != card.num_classes:
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

