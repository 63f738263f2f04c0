"""A test plugin: two toy anomaly detectors and their cards, for the anomaly-detection tests only.

- ``anomtoy-zs`` (zero-shot): the map is each pixel's distance to the image's mean colour (computed on a
  2x-downsampled input, so the task's upsampling is exercised); the score is the map's maximum.
- ``anomtoy-fs`` (few-shot): ``fit(reference)`` stores the references' mean colour; the map is each
  pixel's distance to it. Scoring before ``fit`` raises, so a test proves the task called ``fit``.

Both carry one weight, ``gain`` (1.0), multiplying the map, so a checkpoint can be loaded and judged.
Every number under ``reported`` is invented for the tests (source: "test fixture").
"""

from __future__ import annotations

from zoo import hookimpl

#: sha256 of safetensors' save_file({"gain": torch.ones(1)}) (the test writes that file and checks the hash)
GAIN_SHA256 = "1765c3b27eced2665e29a231b2e5c1a7694c31b83506bc40751a31d81bdd7d18"
_COMMON = {"paper": "anomtoy", "task": "anomaly-detection", "plugin": "anomtoy", "input_size": [3, 48, 48],
           "preprocess": {"crop_mode": "squash", "crop_pct": 1.0, "interpolation": "bilinear", "mean": "zero-one",
                          "std": "zero-one"},
           "map_smoothing": {"sigma": 1}}
CARDS = {
    "papers": {"anomtoy": {"title": "Colour distance: a test fixture for anomaly detection", "venue": "arXiv 2026",
                           "license": "Apache-2.0"}},
    "models": {
        "anomtoy-zs": {**_COMMON, "builder": "zs", "protocols": ["zero-shot"], "trained_on": "visa",
                       "weights": [{"url": "https://example.invalid/anomtoy/gain.safetensors", "sha256": GAIN_SHA256}],
                       "reported": {"source": "test fixture",
                                    "mvtec-ad": {"image_auroc": 100.0, "pixel_auroc": 50.0,
                                                 "per_category": {"stripes": {"image_auroc": 100.0}}}}},
        "anomtoy-fs": {**_COMMON, "builder": "fs", "protocols": ["few-shot"], "pro_definition": "anomalyclip",
                       "reported": {"source": "test fixture",
                                    "mvtec-ad": {"image_auroc": 100.0,
                                                 "protocol": {"protocol": "few-shot", "shots": 2, "seed": 5}}}},
        # a model that breaks the output contract (a bare tensor)
        "anomtoy-bad": {**_COMMON, "builder": "bad", "protocols": ["zero-shot"]},
    },
}


@hookimpl
def zoo_cards():
    return [CARDS]


@hookimpl
def zoo_builders():
    return {"zs": "anomtoy_plugin:zero_shot", "fs": "anomtoy_plugin:few_shot", "bad": "anomtoy_plugin:bad"}


def _module(kind: str):  # noqa: ANN202
    import torch
    from torch import nn

    class ColourDistance(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.ones(1))
            self.reference: torch.Tensor | None = None
            self.fits = 0

        def fit(self, reference: torch.Tensor) -> None:
            assert not torch.is_grad_enabled()  # the contract: fit runs under no_grad
            self.reference = reference.mean(dim=(0, 2, 3))
            self.fits += 1

        def forward(self, x: torch.Tensor):  # noqa: ANN202
            if kind == "bad":
                return x.mean(dim=(1, 2, 3))
            small = nn.functional.avg_pool2d(x, 2)
            if kind == "fs":
                if self.reference is None:
                    raise RuntimeError("few-shot toy scored before fit()")
                centre = self.reference.to(x)[None, :, None, None]
            else:
                centre = small.mean(dim=(2, 3), keepdim=True)
            amap = (small - centre).norm(dim=1) * self.gain
            return {"score": amap.flatten(1).amax(1), "map": amap}

    return ColourDistance()


def zero_shot(**_):  # noqa: ANN201
    return _module("zs")


def few_shot(**_):  # noqa: ANN201
    return _module("fs")


def bad(**_):  # noqa: ANN201
    return _module("bad")
