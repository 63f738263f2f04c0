"""Reference AU-PRO values from the official code, for plugins/anomaly/tests/data/aupro_reference.npz.

Run OUTSIDE the repository with the official code on the path (nothing of it is copied here):

- the MVTec AD evaluation code (MVTec Software GmbH, 2021: ``mvtec_ad_evaluation/pro_curve_util.py``
  ``compute_pro`` + ``generic_util.py`` ``trapezoid``), e.g. the copy in TonyLinX/MediCLIP@9406636;
- AnomalyCLIP's ``metrics.py`` (zqhang/AnomalyCLIP@45ed4dd, ``cal_pro_score``; needs scikit-image).

    PYTHONPATH=/tmp/mvev/mvtec_ad_evaluation:/tmp/aclip:/tmp/skimg \\
        python plugins/anomaly/tools/official_aupro.py plugins/anomaly/tests/data/aupro_reference.npz

It stores the generated masks and maps themselves, so the test does not depend on numpy's random streams.
"""

from __future__ import annotations

import sys

import numpy as np


def cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """Masks with several 8-connected regions (two squares touching at a corner), a normal image, and maps
    that score defects higher: quantised (ties) and continuous."""
    out = []
    for seed, (n, size, step) in enumerate([(5, 24, 0.25), (8, 40, 0.0), (6, 32, 0.5)]):
        rng = np.random.default_rng(100 + seed)
        masks = np.zeros((n, size, size), dtype=bool)
        for i in range(1, n):
            for _ in range(rng.integers(1, 4)):
                y, x = rng.integers(0, size - 8, 2)
                h, w = rng.integers(2, 9, 2)
                masks[i, y:y + h, x:x + w] = True
        masks[1, 0:2, 0:2] = masks[1, 2:4, 2:4] = True
        maps = rng.normal(0, 1, masks.shape) + 1.2 * masks
        if step:
            maps = np.round(maps / step) * step
        out.append((masks, maps.astype(np.float32)))
    return out


def main(target: str) -> None:
    from generic_util import trapezoid  # MVTec AD evaluation code
    from metrics import cal_pro_score  # AnomalyCLIP
    from pro_curve_util import compute_pro

    arrays: dict[str, np.ndarray] = {}
    for i, (masks, maps) in enumerate(cases()):
        fprs, pros = compute_pro(anomaly_maps=list(maps), ground_truth_maps=list(masks.astype(np.uint8)))
        arrays[f"masks{i}"], arrays[f"maps{i}"] = masks, maps
        arrays[f"mvtec{i}"] = np.float64(trapezoid(fprs, pros, x_max=0.3) / 0.3)
        arrays[f"anomalyclip{i}"] = np.float64(cal_pro_score(masks.astype(np.uint8), maps))
        print(i, float(arrays[f"mvtec{i}"]), float(arrays[f"anomalyclip{i}"]))
    np.savez_compressed(target, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
