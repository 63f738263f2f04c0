"""Score a user's own images (the Python API under ``zoo anomaly``): zero-shot, or k-shot against a few
good reference images, with an overlay PNG per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo_anomaly.data import IMAGE_SUFFIXES
from zoo_anomaly.task import NAME, AnomalyOptions, card_fields, settings


@dataclass(frozen=True)
class Scored:
    image: str
    score: float
    overlay: str | None


def expand(paths: list[str], what: str) -> list[str]:
    """Files as given, folders as their images (sorted); a missing path or an empty folder is one line."""
    out: list[str] = []
    for text in paths:
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"{what} {text}: no image ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            out += found
        elif path.is_file():
            out.append(str(path))
        else:
            raise UserError(f"{what} {text}: no such file or folder")
    if not out:
        raise UserError(f"{what}: give at least one image")
    return out


def _overlay_names(paths: list[str]) -> list[str]:
    """``stem.png`` per image; a repeated stem gets ``-2``, ``-3``... (two folders, one name)."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = Path(p).stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png")
    return out


def score_images(name: str, paths: list[str], *, reference: str | None = None, shots: int | None = None,
                 seed: int | None = None, out: str | None = None, device: str = "auto", batch_size: int = 8,
                 pretrained: bool = True, checkpoint: str | None = None) -> list[Scored]:
    """Score ``paths`` with model ``name``: few-shot when ``reference`` (a folder of normal images, all of
    them or ``shots`` drawn with ``seed``) is given, else zero-shot; overlays under ``out``."""
    import random

    import numpy as np

    from zoo.eval.runtime import Runtime
    from zoo.models import build
    from zoo.registry import lookup
    from zoo_anomaly import images, overlay
    from zoo_anomaly.evaluate import fit, load_reference, score_batches

    card = lookup.get_card(name)
    if card.task != NAME:
        raise UserError(f"model {card.name!r} has task {card.task!r}; zoo anomaly takes {NAME} models")
    protocol = "few-shot" if reference is not None else "zero-shot"
    if shots is not None and reference is None:
        raise UserError("--shots: only with --reference DIR (the normal images to draw from)")
    supported = card_fields(card)["protocols"]
    if protocol not in supported:
        if protocol == "zero-shot":
            raise UserError(f"model {card.name!r} is few-shot: give --reference DIR (a few normal images)")
        raise UserError(f"model {card.name!r} is zero-shot: it takes no --reference")
    tests = expand(paths, "IMAGE")
    folder = Path(out).expanduser() if out is not None else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    refs: list[str] = []
    if reference is not None:
        refs = expand([reference], "--reference")
        if shots is not None:
            if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
                raise UserError(f"--shots: expected an integer >= 1, got {shots!r}")
            if shots > len(refs):
                raise UserError(f"--shots {shots}: --reference {reference} has {len(refs)} image(s)")
            refs = random.Random(66 if seed is None else seed).sample(refs, shots)
    opts = AnomalyOptions(protocol=protocol, shots=len(refs) if refs else None,
                          seed=(66 if seed is None else seed) if refs else None)
    try:
        conf = settings(card, None, opts)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    runtime = Runtime.from_options({"device": device, "batch_size": batch_size, "workers": 0})
    torch_device = runtime.torch_device()
    model = build.create_model(card.name, pretrained=pretrained, checkpoint=checkpoint).to(torch_device).eval()
    if refs:
        fit(model, load_reference(refs, conf["preprocess"]).to(torch_device), card.name)
    scores = np.zeros(len(tests))
    maps = np.zeros((len(tests), *conf["metric_size"]), dtype=np.float32)
    for index, ok, batch_scores, batch_maps in score_batches(model, card, tests, conf, runtime, torch_device):
        bad = [tests[i] for i, good in zip(index, ok, strict=True) if not good]
        if bad:
            raise UserError(f"IMAGE {bad[0]}: not an image this reader can decode")
        scores[index], maps[index] = batch_scores, batch_maps
    written: list[str | None] = [None] * len(tests)
    if folder is not None:
        low, high = float(maps.min()), float(maps.max())
        blank = np.zeros(conf["metric_size"], dtype=bool)
        for i, fname in enumerate(_overlay_names(tests)):
            shown = images.display(tests[i], conf["preprocess"], conf["metric_size"])
            written[i] = str(overlay.write_png(overlay.render(shown, maps[i], blank, low, high), folder / fname))
    return [Scored(image=t, score=float(s), overlay=w) for t, s, w in zip(tests, scores, written, strict=True)]


def as_json(rows: list[Scored]) -> list[dict[str, Any]]:
    return [{"image": r.image, "score": r.score, "overlay": r.overlay} for r in rows]
