"""Build a model without paying for its weights: for counting parameters of billion-parameter cards.

``torch.device("meta")`` alone fails on builders that call ``.item()`` while constructing (FasterViT's
drop-path schedule does). :class:`light_build` puts big tensors on the meta device (no memory, no
initialisation cost) and keeps small ones on the CPU, so shape arithmetic in ``__init__`` still works.
"""

from __future__ import annotations

from typing import Any

from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

SMALL = 1 << 16  # elements; tensors up to this size are real CPU tensors


class light_build(TorchFunctionMode):  # noqa: N801 - used like torch.device("meta") as a context manager
    """Context manager: tensor factories without an explicit device make meta tensors when large."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get("device") is None:
            out = func(*args, **{**kwargs, "device": "meta"})
            return func(*args, **kwargs) if out.numel() <= SMALL else out
        return func(*args, **kwargs)

