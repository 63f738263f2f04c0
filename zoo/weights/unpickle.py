"""A restricted unpickler for checkpoints that pickle whole modules (YOLOv6's official ``.pt`` files).

``torch.load(weights_only=True)`` refuses such files, rightly: their pickle names classes
(``yolov6.models.yolo.Model``) that are not importable here and whose code must never run. This
reader rebuilds what a checkpoint's weights are made of and nothing else:

- tensors, from the zip's ``data/`` records, the way torch's own loader does (``persistent_load``
  of ``('storage', type, key, location, numel)``, then ``torch._utils._rebuild_tensor_v2`` /
  ``_rebuild_parameter`` / ``_rebuild_parameter_with_state`` / ``torch._tensor._rebuild_from_type_v2``,
  each replaced by a checked re-implementation: :data:`ALLOWED`);
- plain containers (dict, list, tuple, set, frozenset, ``collections.OrderedDict``) and bytes;
- every other global becomes an inert :class:`StandIn` class: calling it (REDUCE, NEWOBJ) builds
  an empty record of the arguments, ``BUILD`` records the state; no code of the file ever runs and
  no module named by it is imported.

:func:`read_module_checkpoint` then flattens the stand-in module tree (``_parameters``,
``_buffers``, ``_modules``) into a state dict, exactly the keys ``model.state_dict()`` would give.
Plugins call it from their ``zoo_read_checkpoint``; the core also falls back to it on its own for
a file torch's safe loader refused (:func:`zoo.weights.checkpoint.read_weights`).
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import WeightsError, first_line

if TYPE_CHECKING:
    import torch

__all__ = ["StandIn", "find_module_tree", "flatten_module", "load", "module_state_dict", "read_module_checkpoint"]

MODULE_ENTRIES = ("model", "ema")  # where a whole-module checkpoint keeps its model, in the order tried
MAX_NODES = 1_000_000  # objects visited while flattening: a pickle that shares one list a million ways stops here
MAX_DEPTH = 200  # nesting of modules

# storage class names torch writes (``torch.FloatStorage``) -> dtype name; Q* are quantized: refused
_STORAGES = {"Double": "float64", "Float": "float32", "Half": "float16", "BFloat16": "bfloat16", "Long": "int64",
             "Int": "int32", "Short": "int16", "Char": "int8", "Byte": "uint8", "Bool": "bool",
             "ComplexFloat": "complex64", "ComplexDouble": "complex128", "Untyped": "uint8"}


class StandIn:
    """What every global outside :data:`ALLOWED` becomes: an object that only records.

    ``_zoo_global`` is the name the pickle gave (``yolov6.models.yolo.Model``); an instance keeps
    the arguments it was made with (``_zoo_args``), its ``BUILD`` state (``_zoo_state``, and the
    state's dict merged into ``__dict__`` for module-like reading), and items appended or set on it.
    """

    _zoo_global = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        self = object.__new__(cls)
        object.__setattr__(self, "_zoo_args", args)
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "_zoo_state", state)
        slots = state[1] if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict) else None
        state = state[0] if isinstance(state, tuple) and len(state) == 2 else state
        for part in (state, slots):
            if isinstance(part, dict):
                self.__dict__.update({k: v for k, v in part.items() if isinstance(k, str)})

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_zoo_items", {})[key] = value

    def append(self, value: Any) -> None:
        self.__dict__.setdefault("_zoo_list", []).append(value)

    def extend(self, values: Any) -> None:
        for value in values if isinstance(values, list | tuple) else ():
            self.append(value)

    def __repr__(self) -> str:
        return f"<stand-in for {self._zoo_global}>"


class _StorageType:
    """What ``torch.FloatStorage`` and its kin resolve to: only a dtype name."""

    def __init__(self, name: str) -> None:
        self.name, self.dtype = name, _STORAGES.get(name.removesuffix("Storage"))


def _refuse(kind: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise WeightsError(f"holds a {kind} tensor; zoo reads dense tensors only")
    return refuse


def _container(kind: type) -> Callable[..., Any]:
    def make(items: Any = ()) -> Any:
        if not isinstance(items, list | tuple | dict | set | frozenset):
            raise WeightsError(f"pickle builds a {kind.__name__} from a {type(items).__name__}, not a plain container")
        return kind(items)
    return make


def _encode(text: Any, encoding: str = "latin1") -> bytes:  # how protocol-2 pickles carry bytes
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise WeightsError("pickle calls _codecs.encode with something other than (str, 'latin1')")
    return text.encode("latin1")


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:  # copyreg's protocol 0/1 object maker
    return cls() if isinstance(cls, type) and issubclass(cls, StandIn) else StandIn()


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> torch.Tensor:
    import torch

    if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
        raise WeightsError(f"pickle rebuilds a tensor from a {type(storage).__name__}, not a storage record")
    ints = (offset, *size, *stride) if isinstance(size, tuple) and isinstance(stride, tuple) else None
    if ints is None or len(size) != len(stride) or not all(type(i) is int and i >= 0 for i in ints):
        raise WeightsError(f"pickle rebuilds a tensor with offset {offset!r:.40}, size {size!r:.60}, "
                           f"stride {stride!r:.60}: expected non-negative integers")
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= storage.numel():
            raise WeightsError(f"a tensor of size {tuple(size)} reaches element {last} of a storage record "
                               f"holding {storage.numel()}")
    return torch.empty(0, dtype=storage.dtype).set_(storage.untyped_storage(), offset, size, stride)


def _rebuild_parameter(data: Any, *rest: Any) -> torch.Tensor:
    import torch

    if not isinstance(data, torch.Tensor):
        raise WeightsError(f"pickle rebuilds a parameter from a {type(data).__name__}, not a tensor")
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any = None) -> Any:
    if func not in (_rebuild_tensor, _rebuild_parameter) or not isinstance(args, tuple):
        raise WeightsError("pickle rebuilds a tensor subclass through something other than torch's tensor rebuild")
    return func(*args)


#: (module, name) -> what the global becomes. Everything else is a :class:`StandIn`.
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _container(collections.OrderedDict),
    ("builtins", "set"): _container(set),
    ("builtins", "frozenset"): _container(frozenset),
    ("builtins", "list"): _container(list),
    ("builtins", "tuple"): _container(tuple),
    ("builtins", "dict"): _container(dict),
    ("_codecs", "encode"): _encode,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch._utils", "_rebuild_qtensor"): _refuse("quantized"),
    ("torch._utils", "_rebuild_sparse_tensor"): _refuse("sparse"),
    ("torch._utils", "_rebuild_sparse_csr_tensor"): _refuse("sparse"),
    ("torch._utils", "_rebuild_nested_tensor"): _refuse("nested"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): _refuse("meta"),
    ("torch._utils", "_rebuild_wrapper_subclass"): _refuse("tensor-subclass"),
    ("torch._utils", "_rebuild_device_tensor_from_numpy"): _refuse("numpy-backed"),
    ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"): _refuse("device"),
    ("torch._utils", "_rebuild_tensor_v3"): _refuse("non-native-dtype"),
    ("torch._utils", "_rebuild_xla_tensor"): _refuse("xla"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors and plain containers; every other global is an inert :class:`StandIn`."""

    def __init__(self, fh: Any, record: Callable[[str, int, Any], torch.Tensor]) -> None:
        super().__init__(fh)
        self._record = record
        self._standins: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # protocol 2 names Python 2's modules (__builtin__.set)
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        key = (str(module), str(name))
        if key not in self._standins:
            self._standins[key] = type("StandIn", (StandIn,), {"_zoo_global": f"{module}.{name}"[:200]})
        return self._standins[key]

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise WeightsError(f"pickle asks for a persistent record {pid!r:.80}, not a storage")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType) or kind.dtype is None:
            what = kind.name if isinstance(kind, _StorageType) else type(kind).__name__
            kind_text = "quantized" if what.startswith("Q") else "non-dense"
            raise WeightsError(f"storage record {key!r:.40} of type {what} holds a {kind_text} tensor; "
                               f"zoo reads dense tensors only")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise WeightsError(f"storage record {key!r:.40} is malformed (numel {numel!r:.20})")
        return self._record(key, numel, kind.dtype)


def load(path: str | Path) -> Any:
    """The object pickled in a torch zip checkpoint, with tensors rebuilt and every class a :class:`StandIn`.

    :raises WeightsError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        return _load(path)
    except WeightsError as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: {exc}") from None
    except (Exception, RecursionError) as exc:  # a hostile or corrupt file: zip, pickle and torch raise anything
        raise WeightsError(f"checkpoint {str(path)!r}: cannot read it as a pickled torch checkpoint: "
                           f"{type(exc).__name__}: {first_line(exc)}") from None


def _load(path: Path) -> Any:
    import torch

    if not zipfile.is_zipfile(path):
        raise WeightsError("not a torch zip checkpoint (the legacy pre-1.6 format is not read by the restricted reader)")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise WeightsError(f"expected one <name>/data.pkl record, found {len(pickles)}")
        prefix = pickles[0].removesuffix("data.pkl")
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() not in (b"little", b""):
            raise WeightsError("is written big-endian; zoo reads little-endian checkpoints only")
        storages: dict[str, torch.Tensor] = {}

        def record(key: str, numel: int, dtype_name: str) -> torch.Tensor:
            dtype = getattr(torch, dtype_name)
            want = numel * torch.empty(0, dtype=dtype).element_size()
            if key not in storages:
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise WeightsError(f"storage record {member!r} is missing")
                info = archive.getinfo(member)
                if info.file_size < want:
                    raise WeightsError(f"storage record {member!r} holds {info.file_size} bytes, "
                                       f"{want} needed for {numel} {dtype_name} elements")
                raw = bytearray(archive.read(member)[:want])
                storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            got = storages[key]
            if got.dtype != dtype or got.numel() < numel:
                raise WeightsError(f"storage record {key!r} is used as {numel} {dtype_name} elements "
                                   f"and as {got.numel()} {got.dtype}")
            return got

        with archive.open(pickles[0]) as fh:
            return RestrictedUnpickler(io.BufferedReader(fh), record).load()


def _is_module(obj: Any) -> bool:
    return isinstance(obj, StandIn) and isinstance(obj.__dict__.get("_modules"), Mapping) \
        and isinstance(obj.__dict__.get("_parameters"), Mapping)


def flatten_module(root: Any) -> dict[str, torch.Tensor]:
    """The state dict of a stand-in module tree: parameters and persistent buffers, dotted names,
    as ``nn.Module.state_dict()`` names them (a sub-module shared by two parents appears under both)."""
    import torch

    out: dict[str, torch.Tensor] = {}
    visited = 0
    stack: list[tuple[Any, str, tuple[int, ...]]] = [(root, "", ())]
    while stack:
        module, prefix, ancestors = stack.pop()
        visited += 1
        if visited > MAX_NODES or len(ancestors) > MAX_DEPTH:
            raise WeightsError(f"module tree is deeper than {MAX_DEPTH} or larger than {MAX_NODES} modules")
        if id(module) in ancestors:
            raise WeightsError(f"module tree is recursive: {prefix.rstrip('.') or 'the root'} contains itself")
        state = module.__dict__
        skip = state.get("_non_persistent_buffers_set") or set()
        for table in ("_parameters", "_buffers"):
            entries = state.get(table) or {}
            if not isinstance(entries, Mapping):
                raise WeightsError(f"module {prefix.rstrip('.') or 'root'}: {table} is a {type(entries).__name__}")
            for name, value in entries.items():
                if value is None or (table == "_buffers" and isinstance(skip, set | frozenset) and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise WeightsError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
                out[f"{prefix}{name}"] = value
        children = state.get("_modules") or {}
        for name, child in reversed(list(children.items())):
            if child is None:
                continue
            if not _is_module(child):
                raise WeightsError(f"{prefix}{name} is a {type(child).__name__}, not a pickled module")
            stack.append((child, f"{prefix}{name}.", (*ancestors, id(module))))
    return out


def find_module_tree(obj: Any, key: str | None = None) -> Any:
    """The pickled module in a checkpoint: ``obj[key]``, else the first of :data:`MODULE_ENTRIES` that
    holds one, else ``obj`` itself when it is a module. None when there is none."""
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            raise WeightsError(f"has no {key!r} entry (the card's weights_key)")
        if not _is_module(obj[key]):
            raise WeightsError(f"its {key!r} entry is a {type(obj[key]).__name__}, not a pickled module")
        return obj[key]
    if _is_module(obj):
        return obj
    if isinstance(obj, Mapping):
        return next((obj[k] for k in MODULE_ENTRIES if _is_module(obj.get(k))), None)
    return None


def read_module_checkpoint(path: str | Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict of the whole module pickled in ``path`` (``model``, else ``ema``, or ``key``),
    read without importing or running any pickled class.

    :param key: the entry holding the module (a card's ``weights_key``, e.g. ``ema``).
    :raises WeightsError: one line naming the file and what is wrong (no module, a bad record, ...).
    """
    obj = load(path)
    try:
        root = find_module_tree(obj, key)
        if root is None:
            raise WeightsError(f"holds no pickled module under {' or '.join(map(repr, MODULE_ENTRIES))}")
    except WeightsError as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: {exc}") from None
    return module_state_dict(root, path)


def module_state_dict(root: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """:func:`flatten_module`, checked as zoo checks every checkpoint's tensors; errors name ``path``."""
    from zoo.weights.checkpoint import check_tensors

    try:
        tensors = flatten_module(root)
        if not tensors:
            raise WeightsError("its pickled module holds no tensors")
        check_tensors(tensors, where="module")
    except WeightsError as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: {exc}") from None
    return tensors
