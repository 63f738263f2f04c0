"""Reference outputs of mmsegmentation 0.30's own test pipeline and inference, for the parity test.

Run OUTSIDE the repository's environment of record, with the official packages importable, e.g.::

    pip install --target /tmp/mmlib --no-deps mmsegmentation==0.30.0 mmcv-1.7.2-*.whl addict yapf platformdirs
    PYTHONPATH=/tmp/mmlib python plugins/segmentation/tools/mmseg_reference.py \
        plugins/segmentation/tests/data/mmseg_reference.npz

(mmcv 1.7.2 "lite" builds as a pure-Python wheel with ``pip wheel --no-build-isolation`` and an older
setuptools.) Only mmseg's pipeline classes, ``EncoderDecoder``'s test methods and the metric functions
run; the ``mmseg.models``/``mmseg.datasets`` package ``__init__``s, which import compiled ops, are
bypassed. The "network" is a seeded 3x3 convolution to 5 classes followed by 2x2 average pooling,
called through ``EncoderDecoder.encode_decode`` (its weights are saved beside the outputs).

Saved: the images (written as PNG and read back through ``LoadImageFromFile``), for each protocol
the probabilities ``inference``/``aug_test_logits`` return and the argmax, and for random label
maps the per-class areas and mIoU/mAcc/aAcc of ``intersect_and_union`` + ``total_area_to_metrics``.
"""

from __future__ import annotations

import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch


def _import_mmseg():  # noqa: ANN202
    import mmseg

    root = Path(mmseg.__file__).parent
    for name in ("models", "models.segmentors", "datasets", "datasets.pipelines"):
        mod = types.ModuleType(f"mmseg.{name}")
        mod.__path__ = [str(root / name.replace(".", "/"))]
        sys.modules[f"mmseg.{name}"] = mod
    import mmseg.datasets.pipelines.formatting  # noqa: F401
    import mmseg.datasets.pipelines.loading  # noqa: F401
    import mmseg.datasets.pipelines.test_time_aug  # noqa: F401
    import mmseg.datasets.pipelines.transforms  # noqa: F401
    from mmseg.core.evaluation.metrics import intersect_and_union, total_area_to_metrics
    from mmseg.datasets.pipelines.compose import Compose
    from mmseg.models.segmentors.encoder_decoder import EncoderDecoder
    return Compose, EncoderDecoder, intersect_and_union, total_area_to_metrics


NORM = {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": True}
SCALE = (64, 32)
#: name -> (test_cfg, size_divisor, img_ratios or None, flip)
PROTOCOLS = {
    "whole": ({"mode": "whole"}, None, None, False),
    "slide": ({"mode": "slide", "crop_size": (16, 20), "stride": (10, 12)}, None, None, False),
    "slide_div32": ({"mode": "slide", "crop_size": (16, 20), "stride": (10, 12)}, 32, None, False),
    "ms_whole": ({"mode": "whole"}, None, [0.5, 1.0, 1.5], True),
    "ms_slide": ({"mode": "slide", "crop_size": (16, 20), "stride": (10, 12)}, None, [0.75, 1.25], True),
}


def main(out: str) -> None:
    import cv2
    import mmcv

    Compose, EncoderDecoder, intersect_and_union, total_area_to_metrics = _import_mmseg()
    rng = np.random.default_rng(14)
    images = [rng.integers(0, 256, (23, 31, 3), dtype=np.uint8), rng.integers(0, 256, (34, 19, 3), dtype=np.uint8)]
    torch.manual_seed(14)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    model = torch.nn.Sequential(conv, torch.nn.AvgPool2d(2, ceil_mode=True)).eval()
    saved: dict[str, np.ndarray] = {"weight": conv.weight.detach().numpy(), "bias": conv.bias.detach().numpy()}
    with tempfile.TemporaryDirectory() as tmp:
        for i, image in enumerate(images):
            path = Path(tmp) / f"im{i}.png"
            cv2.imwrite(str(path), image)  # lossless: the test writes the same bytes' pixels
            saved[f"image{i}"] = image
            for name, (test_cfg, divisor, ratios, flip) in PROTOCOLS.items():
                transforms = [{"type": "Resize", "keep_ratio": True}]
                if divisor:
                    transforms.append({"type": "ResizeToMultiple", "size_divisor": divisor})
                transforms += [{"type": "RandomFlip"}, {"type": "Normalize", **NORM},
                               {"type": "ImageToTensor", "keys": ["img"]}, {"type": "Collect", "keys": ["img"]}]
                pipeline = Compose([{"type": "LoadImageFromFile"},
                                    {"type": "MultiScaleFlipAug", "img_scale": SCALE, "img_ratios": ratios,
                                     "flip": flip, "transforms": transforms}])
                data = pipeline({"img_info": {"filename": str(path)}, "img_prefix": None})
                seg = types.SimpleNamespace(test_cfg=mmcv.ConfigDict(test_cfg), out_channels=5, num_classes=5,
                                            align_corners=False)
                seg.extract_feat = model
                seg._decode_head_forward_test = lambda x, metas: x
                for method in ("encode_decode", "slide_inference", "whole_inference", "inference"):
                    setattr(seg, method, types.MethodType(getattr(EncoderDecoder, method), seg))
                imgs = [img[None] for img in data["img"]]
                metas = [[meta.data] for meta in data["img_metas"]]
                with torch.no_grad():
                    if ratios is None:
                        prob = seg.inference(imgs[0], metas[0], True)
                        pred = EncoderDecoder.simple_test(seg, imgs[0], metas[0])[0]
                    else:
                        prob = torch.from_numpy(EncoderDecoder.aug_test_logits(seg, imgs, metas))
                        pred = EncoderDecoder.aug_test(seg, imgs, metas)[0]
                saved[f"{name}/prob{i}"] = prob.numpy()[0]
                saved[f"{name}/pred{i}"] = pred.astype(np.uint8)
                saved[f"{name}/input_shapes{i}"] = np.array([m[0]["img_shape"][:2] for m in metas])
    for reduce in (False, True):  # metrics: 3 images, 6 classes, ignore 255, labels out of range too
        areas = None
        for k in range(3):
            pred = rng.integers(0, 6, (9, 11))
            label = rng.integers(0, 8 if reduce else 7, (9, 11)).astype(np.uint8)
            label[rng.random((9, 11)) < 0.15] = 255
            saved[f"metrics{int(reduce)}/pred{k}"], saved[f"metrics{int(reduce)}/label{k}"] = pred, label.copy()
            got = intersect_and_union(pred, label, 6, 255, label_map={}, reduce_zero_label=reduce)
            areas = got if areas is None else tuple(a + b for a, b in zip(areas, got, strict=True))
        metrics = total_area_to_metrics(*areas, metrics=["mIoU"])
        saved[f"metrics{int(reduce)}/areas"] = np.stack([a.numpy() for a in areas])
        saved[f"metrics{int(reduce)}/summary"] = np.array([np.nanmean(metrics["IoU"]), np.nanmean(metrics["Acc"]),
                                                           float(metrics["aAcc"])]) * 100
    np.savez_compressed(out, **saved)
    print(f"wrote {out}: {len(saved)} arrays")


if __name__ == "__main__":
    main(sys.argv[1])
