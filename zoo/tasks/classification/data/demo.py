"""A small generated image folder (WordNet-id class folders) for demos and tests; no download."""

from __future__ import annotations

from pathlib import Path

from zoo.tasks.classification.data import synsets


def make_demo_folder(path: str | Path, n_images: int = 64, n_classes: int = 8, seed: int = 0,
                     min_side: int = 48, max_side: int = 160, fmt: str = "JPEG") -> Path:
    """Write ``n_images`` pictures spread over ``n_classes`` ImageNet classes under ``path``.

    Images have random sizes and aspect ratios (so resizing and cropping matter), a colour
    gradient per class, shapes and noise. Deterministic for a given ``seed``. Returns ``path``.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    root = Path(path)
    rng = np.random.default_rng(seed)
    wnids = synsets.imagenet_wnids()
    step = max(1, len(wnids) // max(n_classes, 1))
    classes = [wnids[i * step] for i in range(n_classes)]
    ext = {"JPEG": "JPEG", "PNG": "png"}.get(fmt, fmt.lower())
    for i in range(n_images):
        label = i % n_classes
        h, w = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
        base = np.array([(label * 37) % 256, (label * 91) % 256, (label * 151) % 256], dtype=np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        grad = (xx / max(w - 1, 1))[..., None] * 120 + (yy / max(h - 1, 1))[..., None] * 60
        pixels = np.clip(base + grad + rng.normal(0, 25, size=(h, w, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels, "RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(4, w // 2 + 5)), y0 + int(rng.integers(4, h // 2 + 5))
            color = tuple(int(c) for c in rng.integers(0, 256, size=3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=color)
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"img_{i:05d}.{ext}", fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return root
