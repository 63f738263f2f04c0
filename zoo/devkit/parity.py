"""Parity with an official implementation: one helper for every plugin's ``tools/official_check.py``.

A plugin whose builder re-implements a paper's model proves it matches the official code the same
way (``zoo.devkit.kit.parity``, re-exported from here):

1. build both models (the official one from a checkout outside the repository);
2. give EVERY floating-point parameter and persistent buffer of the official model a random value
   (norm statistics included, ``running_var`` positive; layer scales and norm weights around 1, so a
   block whose init scale is 1e-5 cannot hide a wrong mixer; weights at ``1/sqrt(fan_in)``);
3. pass its state dict through the card's conversion path (the plugin's ``zoo_convert_checkpoint``,
   after the core's unwrapping) or a given converter;
4. compare keys and shapes with ours (one line per difference), load with ``strict=True`` and
   compare the outputs on a seeded input (max abs diff, and relative to the largest logit);
5. optionally write the key/shape manifest (JSON, one key per line) the plugin's tests assert.

When the outputs differ, the report also says which converted tensors are not copies of any
official tensor but hold an official tensor's values in another order (a transposed or permuted
weight), or hold values found nowhere in the official model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError, ZooError, first_line
from zoo.paths import write_text_atomic

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo.registry.cards import Card

SHOW = 8  # differences listed per kind before "... (+N more)"


@dataclass
class ParityReport:
    """What :func:`parity` found; ``ok`` when keys, shapes and outputs all agree."""

    name: str
    keys: int = 0  #: entries in the official state dict
    missing: list[str] = field(default_factory=list)  #: ours expects them, the converted dict lacks them
    unexpected: list[str] = field(default_factory=list)  #: the converted dict has them, ours does not
    shapes: list[str] = field(default_factory=list)  #: "key: ours (a, b) vs converted (c, d)"
    same_order: bool | None = None  #: converted and our key order agree (None: the keys differ)
    randomized: dict[str, int] = field(default_factory=dict)  #: tensors set, by rule
    kept: list[str] = field(default_factory=list)  #: non-float buffers left as built (index tables, counters)
    params_official: int = 0
    params_ours: int = 0
    max_abs_diff: float | None = None  #: largest |official - ours| over the outputs (None: not compared)
    max_abs_output: float | None = None  #: largest |official output|
    atol: float = 0.0
    rtol: float = 0.0
    suspects: list[str] = field(default_factory=list)  #: converted tensors that are not official copies
    error: str | None = None  #: the converter or a forward raised

    @property
    def rel_diff(self) -> float | None:
        if self.max_abs_diff is None or self.max_abs_output is None:
            return None
        return self.max_abs_diff / max(self.max_abs_output, 1e-12)

    @property
    def keys_ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shapes or self.error)

    @property
    def outputs_ok(self) -> bool:
        if self.max_abs_diff is None or self.max_abs_output is None:
            return False
        return self.max_abs_diff <= self.atol + self.rtol * self.max_abs_output

    @property
    def ok(self) -> bool:
        return self.keys_ok and self.outputs_ok

    def lines(self) -> list[str]:
        """A summary line, then one line per difference."""
        head = f"{self.name}: {self.keys} keys, {self.params_official:,} official params, {self.params_ours:,} ours"
        out = [head]
        if self.error:
            out.append(f"  error: {self.error}")
        for label, items in (("missing from the converted state dict", self.missing),
                             ("unexpected in the converted state dict", self.unexpected),
                             ("shape differs", self.shapes)):
            for item in items[:SHOW]:
                out.append(f"  {label}: {item}")
            if len(items) > SHOW:
                out.append(f"  {label}: ... (+{len(items) - SHOW} more)")
        if self.keys_ok:
            out.append(f"  keys and shapes equal{'' if self.same_order in (None, True) else ' (registration order differs)'}")
        if self.max_abs_diff is not None:
            verdict = "equal" if self.outputs_ok else "DIFFER"
            out.append(f"  outputs {verdict}: max |diff| {self.max_abs_diff:.3g}, max |output| {self.max_abs_output:.3g}, "
                       f"relative {self.rel_diff:.3g} (allowed {self.atol:g} + {self.rtol:g} * max |output|)")
            if not self.outputs_ok:
                out.extend(f"  suspect: {line}" for line in self.suspects[:SHOW])
        elif self.keys_ok and not self.error:
            out.append("  outputs not compared")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "rel_diff": self.rel_diff}


# -- randomising ------------------------------------------------------------------------------------


def randomize_state(model: nn.Module, seed: int = 0) -> tuple[dict[str, int], list[str]]:
    """Give every floating-point entry of ``model.state_dict()`` a seeded random value, in place.

    Rules, by key (the same for every model, so results are reproducible from the key list):

    - ``running_var``: uniform in [0.5, 1.5] (positive, far from the init's 1);
    - ``running_mean`` and ``*bias``: 0.1 * N(0, 1);
    - other ``*weight`` tensors of 2+ dims (convs, linears): N(0, 1) / sqrt(fan_in), which keeps
      activations O(1) and attention far from uniform;
    - other 0/1-dim tensors (norm weights, layer scales, temperatures): 1 + 0.1 * N(0, 1);
    - other 2+ dim tensors (position embeddings, tokens, relative-position tables): 0.5 * N(0, 1).

    Integer and bool buffers (index tables, ``num_batches_tracked``) are kept.

    :returns: ``({rule: count}, [kept keys])``.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    counts: dict[str, int] = {}
    kept: list[str] = []
    with torch.no_grad():
        for key, tensor in model.state_dict(keep_vars=True).items():
            data = tensor.data if isinstance(tensor, torch.nn.Parameter) else tensor
            if not data.is_floating_point():
                kept.append(key)
                continue
            noise = torch.randn(data.shape, generator=gen, dtype=torch.float32)
            leaf = key.rsplit(".", 1)[-1]
            if leaf == "running_var":
                rule, value = "running_var", torch.rand(data.shape, generator=gen) + 0.5
            elif leaf == "running_mean" or leaf.endswith("bias"):
                rule, value = "bias/running_mean", 0.1 * noise
            elif data.dim() >= 2 and leaf.endswith("weight"):
                fan_in = max(data[0].numel(), 1)
                rule, value = "weight", noise / fan_in**0.5
            elif data.dim() <= 1:
                rule, value = "scale (norm weight, layer scale)", 1.0 + 0.1 * noise
            else:
                rule, value = "embedding/table", 0.5 * noise
            data.copy_(value.to(data.dtype))
            counts[rule] = counts.get(rule, 0) + 1
    return counts, kept


# -- converting -------------------------------------------------------------------------------------


Converter = Callable[[dict[str, Any]], Mapping[str, Any]]


def card_converter(card: Card | str) -> Converter:
    """The conversion an official checkpoint of ``card`` goes through when a user loads it.

    The state dict is put in the container the card names (``weights_key``, else ``state_dict``)
    with the ``module.`` prefix DDP adds, unwrapped by the core and passed to the card's plugin's
    ``zoo_convert_checkpoint``: exactly the path of ``zoo eval --checkpoint``.
    """
    from zoo.registry import lookup
    from zoo.weights import checkpoint

    resolved = lookup.get_card(card) if isinstance(card, str) else card

    def convert(state_dict: dict[str, Any]) -> Mapping[str, Any]:
        key = resolved.weights_key or "state_dict"
        container = {key: {f"module.{k}": v for k, v in state_dict.items()}, "epoch": 300}
        return checkpoint.convert(resolved, checkpoint.unwrap(container, resolved.weights_key))

    return convert


def _fingerprint(tensor: torch.Tensor, ordered: bool = True) -> str:
    import torch

    data = tensor.detach().to("cpu", torch.float64).flatten()
    if not ordered:
        data = data.sort().values
    return hashlib.sha1(data.numpy().tobytes()).hexdigest()


def _suspects(official: Mapping[str, torch.Tensor], converted: Mapping[str, torch.Tensor]) -> list[str]:
    """Converted float tensors that are no exact copy of an official tensor, and what they are instead."""
    exact, unordered = {}, {}
    for key, value in official.items():
        if value.is_floating_point() and value.device.type != "meta":
            exact.setdefault(_fingerprint(value), key)
            unordered.setdefault((value.numel(), _fingerprint(value, ordered=False)), key)
    out = []
    for key, value in converted.items():
        if not value.is_floating_point() or value.device.type == "meta" or _fingerprint(value) in exact:
            continue
        source = unordered.get((value.numel(), _fingerprint(value, ordered=False)))
        if source is not None:
            out.append(f"{key}: holds official {source!r}'s values in another order (transposed or permuted?)")
        else:
            out.append(f"{key}: its values are no official tensor's (computed by the converter?)")
    return out


# -- the helper -------------------------------------------------------------------------------------


def _build(what: str, obj: nn.Module | Callable[[], nn.Module], seed: int) -> nn.Module:
    import torch
    from torch import nn

    if isinstance(obj, nn.Module):
        return obj
    torch.manual_seed(seed)
    try:
        model = obj()
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(f"parity: building the {what} model raised {type(exc).__name__}: {first_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise UserError(f"parity: the {what} builder returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def _outputs(out: Any) -> list[torch.Tensor]:
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _outputs(item)]
    if isinstance(out, Mapping):
        return [t for item in out.values() for t in _outputs(item)]
    raise ZooError(f"parity: the model returned a {type(out).__name__}, expected tensors")


def parity(
    ours: nn.Module | Callable[[], nn.Module],
    official: nn.Module | Callable[[], nn.Module],
    *,
    convert: Converter | Card | str | None = None,
    name: str | None = None,
    input_size: Sequence[int] = (3, 224, 224),
    batch_size: int = 2,
    inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    seed: int = 0,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    dtype: torch.dtype | None = None,
    randomize: bool = True,
    compare_outputs: bool = True,
    manifest_path: str | Path | None = None,
) -> ParityReport:
    """Compare our model with the official one on the same (random) weights; see the module docstring.

    :param ours: / ``official``: the models, or zero-argument builders (called after ``manual_seed(seed)``).
    :param convert: the card (or card name) whose conversion path to use, a function from the official
        state dict to ours, or ``None`` when the keys are already ours.
    :param name: the variant's name in the report and the manifest (default: the official class name).
    :param input_size: / ``batch_size``: the seeded ``randn`` input; ``inputs`` replaces it (one or
        several tensors, e.g. a square and a non-square image).
    :param atol: / ``rtol``: outputs agree when ``max|diff| <= atol + rtol * max|official output|``.
    :param dtype: run both models in this dtype (``torch.float64`` separates real differences from
        float32 rounding); default: as built.
    :param randomize: randomise the official weights first (:func:`randomize_state`); keep it on
        unless the models are already filled.
    :param compare_outputs: off to compare keys and shapes only (e.g. models sized with
        :class:`zoo.models.lightbuild.light_build`, whose weights are not allocated).
    :param manifest_path: write ``{name: {key: shape}}`` of the official model there, merged with
        the variants already in the file.
    """
    import torch

    ref = _build("official", official, seed)
    mine = _build("our", ours, seed)
    name = name or type(ref).__name__
    report = ParityReport(name=name, atol=atol, rtol=rtol)
    if dtype is not None:
        ref, mine = ref.to(dtype), mine.to(dtype)
    ref.eval()
    mine.eval()
    if randomize and compare_outputs:
        report.randomized, report.kept = randomize_state(ref, seed)
    official_sd = ref.state_dict()
    report.keys = len(official_sd)
    report.params_official = sum(p.numel() for p in ref.parameters())
    report.params_ours = sum(p.numel() for p in mine.parameters())
    if manifest_path is not None:
        write_manifest(manifest_path, {name: {k: list(v.shape) for k, v in official_sd.items()}})
    converter = card_converter(convert) if isinstance(convert, str) or _is_card(convert) else convert
    try:
        converted = dict(converter(dict(official_sd))) if converter is not None else dict(official_sd)
    except Exception as exc:  # the plugin's converter is the code under test: report, do not crash
        report.error = f"the converter raised {type(exc).__name__}: {first_line(exc)}"
        return report
    own = mine.state_dict()
    report.missing = [k for k in own if k not in converted]
    report.unexpected = [k for k in converted if k not in own]
    report.shapes = [f"{k}: ours {tuple(own[k].shape)} vs converted {tuple(converted[k].shape)}"
                     for k in own if k in converted and tuple(own[k].shape) != tuple(converted[k].shape)]
    if report.keys_ok:  # checkpoints load by name, but tests compare registration order too
        report.same_order = list(own) == list(converted)
    if not report.keys_ok or not compare_outputs:
        return report
    mine.load_state_dict(converted, strict=True)
    if inputs is None:
        gen = torch.Generator().manual_seed(seed + 1)
        batch = [torch.randn(batch_size, *input_size, generator=gen)]
    else:
        batch = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    param = next(iter(ref.parameters()), None)
    diff = scale = 0.0
    try:
        with torch.no_grad():
            for x in batch:
                if param is not None:
                    x = x.to(device=param.device, dtype=param.dtype if dtype is not None else x.dtype)
                for a, b in zip(_outputs(ref(x)), _outputs(mine(x)), strict=True):
                    if a.shape != b.shape:
                        raise ZooError(f"output shapes differ: official {tuple(a.shape)} vs ours {tuple(b.shape)}")
                    if not torch.isfinite(a).all():
                        raise ZooError("the official output is not finite (nan or inf)")
                    diff = max(diff, float((a.double() - b.double()).abs().max()))
                    scale = max(scale, float(a.double().abs().max()))
    except ValueError as exc:  # zip(strict=True): a different number of outputs
        report.error = f"the models return different numbers of outputs ({first_line(exc)})"
        return report
    except ZooError as exc:
        report.error = str(exc)
        return report
    except Exception as exc:
        report.error = f"a forward raised {type(exc).__name__}: {first_line(exc)}"
        return report
    report.max_abs_diff, report.max_abs_output = diff, scale
    if not report.outputs_ok:
        report.suspects = _suspects(official_sd, converted)
    return report


def _is_card(obj: Any) -> bool:
    from zoo.registry.cards import Card

    return isinstance(obj, Card)


# -- the manifest -----------------------------------------------------------------------------------


def format_manifest(manifest: Mapping[str, Mapping[str, Sequence[int]]]) -> str:
    """JSON with one ``"key": [shape]`` per line, so a diff of the manifest reads like a diff of the architecture."""
    blocks = []
    for variant, shapes in manifest.items():
        rows = ",\n".join(f"    {json.dumps(k)}: {json.dumps(list(v))}" for k, v in shapes.items())
        blocks.append(f"  {json.dumps(variant)}: {{\n{rows}\n  }}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def write_manifest(path: str | Path, variants: Mapping[str, Mapping[str, Sequence[int]]]) -> Path:
    """Merge ``{variant: {key: shape}}`` into the manifest at ``path`` (other variants kept), atomically."""
    path = Path(path)
    manifest: dict[str, Any] = {}
    if path.exists():
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"manifest {str(path)!r} is not a JSON manifest ({first_line(exc)}); "
                            "move it away to write a new one") from None
        if not isinstance(manifest, dict):
            raise UserError(f"manifest {str(path)!r} holds a {type(manifest).__name__}, expected {{variant: {{key: shape}}}}")
    manifest.update({k: dict(v) for k, v in variants.items()})
    write_text_atomic(path, format_manifest(manifest))
    return path


def card_for(plugin: str, builder: str) -> Card:
    """The card of ``plugin`` whose ``builder`` is ``builder`` (tools name variants by builder)."""
    from zoo.registry import lookup

    found = [c for c in lookup.catalog().cards.values() if c.plugin == plugin and c.builder == builder]
    if not found:
        raise UserError(f"no card of plugin {plugin!r} uses builder {builder!r}")
    return found[0]
