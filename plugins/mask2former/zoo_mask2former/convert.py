"""Hub checkpoint names -> the builder's names (a pure, idempotent function; torch-free).

The ``facebook/mask2former-swin-*-coco-instance`` checkpoints were written by transformers 4.x
(the conversion script of Dec 2022). transformers 5 renamed the Swin backbone's modules and loads
old files through its own renaming table (``conversion_mapping.py``: ``"swin"`` and
``"SwinBackbone"`` entries) at ``from_pretrained`` time; zoo loads state dicts strictly itself, so it
applies the same renaming here:

- the backbone moved under ``swin.``: ``...encoder.embeddings.`` / ``...encoder.encoder.`` ->
  ``...encoder.swin.embeddings.`` / ``...encoder.swin.encoder.``;
- in each Swin block: ``attention.self.{query,key,value}`` -> ``attention.{q,k,v}_proj``,
  ``attention.output.dense`` -> ``attention.o_proj``,
  ``attention.self.relative_position_bias_table`` -> ``attention.relative_position_bias.relative_position_bias_table``,
  ``intermediate.dense`` -> ``mlp.fc1``, ``output.dense`` -> ``mlp.fc2``;
- ``attention.self.relative_position_index`` is dropped: transformers 5 recomputes it from the
  window size (a non-persistent buffer; it also ignores it on load).

Nothing outside the Swin backbone (``model.pixel_level_module.encoder.``) is touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

BACKBONE = "model.pixel_level_module.encoder."
_MOVED = (("embeddings.", "swin.embeddings."), ("encoder.", "swin.encoder."))
_BLOCK = re.compile(r"^(swin\.encoder\.layers\.\d+\.blocks\.\d+\.)(.+)$")
_IN_BLOCK = {
    "attention.self.query.": "attention.q_proj.",
    "attention.self.key.": "attention.k_proj.",
    "attention.self.value.": "attention.v_proj.",
    "attention.output.dense.": "attention.o_proj.",
    "attention.self.relative_position_bias_table": "attention.relative_position_bias.relative_position_bias_table",
    "intermediate.dense.": "mlp.fc1.",
    "output.dense.": "mlp.fc2.",
}
_DROPPED = "attention.self.relative_position_index"


def rename(key: str) -> str | None:
    """The builder's name for a checkpoint key; ``None`` for a tensor the builder does not hold."""
    if not key.startswith(BACKBONE):
        return key
    rest = key[len(BACKBONE):]
    for old, new in _MOVED:
        if rest.startswith(old):
            rest = new + rest[len(old):]
            break
    block = _BLOCK.match(rest)
    if block:
        prefix, leaf = block.groups()
        if leaf == _DROPPED:
            return None
        for old, new in _IN_BLOCK.items():
            if leaf.startswith(old):
                leaf = new + leaf[len(old):]
                break
        rest = prefix + leaf
    return BACKBONE + rest


def convert(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict with every key renamed (see the module docstring); already converted keys stay as they are.

    :raises ValueError: two checkpoint keys would land on one name (a file that mixes both layouts).
    """
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in state_dict.items():
        new = rename(key)
        if new is None:
            continue
        if new in out:
            raise ValueError(f"checkpoint keys {origin[new]!r} and {key!r} both map to {new!r}")
        out[new], origin[new] = value, key
    return out
