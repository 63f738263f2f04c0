"""zoo's letterboxed input equals, byte for byte, what YOLOv6 0.4.0's val dataset feeds its model.

The reference below is a transcription of the official sequence (``yolov6/data/datasets.py``
``TrainValDataset.load_image`` with ``augment=False`` and ``__getitem__``'s conversion,
``yolov6/data/data_augment.py`` ``letterbox(img, shape, auto=False, scaleup=False)``), kept
apart from zoo's code so that the two can disagree.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from zoo_detection.evaluate import LetterboxImages, letterbox_geometry, load_letterboxed
from zoo_detection.task import parse_fields


def official_load_image(path, img_size, area=cv2.INTER_AREA):
    im = cv2.imread(path)
    assert im is not None
    h0, w0 = im.shape[:2]
    r = img_size / max(h0, w0)
    if r != 1:
        im = cv2.resize(im, (int(w0 * r), int(h0 * r)), interpolation=area if r < 1 else cv2.INTER_LINEAR)
    return im, (h0, w0), im.shape[:2]


def official_letterbox(im, new_shape, color=(114, 114, 114), auto=False, scaleup=False, stride=32):
    shape = im.shape[:2]
    if isinstance(new_shape, int):
        new_shape = (new_shape, new_shape)
    r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
    if not scaleup:
        r = min(r, 1.0)
    new_unpad = int(round(shape[1] * r)), int(round(shape[0] * r))
    dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
    if auto:
        dw, dh = np.mod(dw, stride), np.mod(dh, stride)
    dw /= 2
    dh /= 2
    if shape[::-1] != new_unpad:
        im = cv2.resize(im, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    return im, r, (dw, dh)


def official_input(path, img_size, shape=None, area=cv2.INTER_AREA):
    im, _hw0, _hw = official_load_image(path, img_size, area)
    im, _r, _pad = official_letterbox(im, img_size if shape is None else shape)
    return torch.from_numpy(np.ascontiguousarray(im.transpose((2, 0, 1))[::-1]))


def _image(tmp_path, h, w, name="im.png", grey=False):
    """Noise over smooth gradients (resampling filters give different values on both)."""
    rng = np.random.default_rng(h * 7919 + w)
    yy, xx = np.mgrid[0:h, 0:w]
    im = np.stack([(xx * 255 / w), (yy * 255 / h), ((xx + yy) * 127 / (h + w))], -1)
    im = np.clip(im + rng.integers(-40, 41, (h, w, 3)), 0, 255).astype(np.uint8)
    path = str(tmp_path / name)
    assert cv2.imwrite(path, im[..., 0] if grey else im)
    return path


@pytest.mark.parametrize(("h", "w", "size"), [
    (900, 1200, [640, 640]),   # shrink (INTER_AREA), landscape
    (1000, 613, [640, 640]),   # shrink, portrait, odd width
    (211, 97, [640, 640]),     # enlarge (INTER_LINEAR), non-square
    (150, 200, [320, 320]),    # enlarge to a smaller letterbox
    (640, 480, [640, 640]),    # already at size: no resize, padding only
    (480, 480, [320, 640]),    # non-square letterbox: load_image to 640, then letterbox's own resize
    (777, 500, [640, 320]),
])
def test_letterboxed_input_equals_yolov6(tmp_path, h, w, size):
    path = _image(tmp_path, h, w)
    box = parse_fields({"letterbox": {"size": size}})["letterbox"]
    ours, shape = load_letterboxed(path, box)
    ref = official_input(path, max(size), shape=tuple(size))
    assert shape == (h, w)
    assert ours.dtype == torch.uint8 and ours.shape == ref.shape == (3, *size)
    assert torch.equal(ours, ref)
    # where it lands is what the post-processing maps boxes back with
    (h2, w2), (top, _b, left, _r), _in, _g, _d = letterbox_geometry(h, w, box)
    assert (ours[:, :top] == 114).all() and (ours[:, :, :left] == 114).all()
    assert ours.shape[1:] == (h2 + top + _b, w2 + left + _r)


def test_channels_are_rgb_and_grey_and_jpeg_read_as_yolov6(tmp_path):
    box = parse_fields({})["letterbox"]
    for path in (_image(tmp_path, 300, 500, "grey.png", grey=True), _image(tmp_path, 700, 900, "im.jpg")):
        assert torch.equal(load_letterboxed(path, box)[0], official_input(path, 640))
    # a pure red BGR pixel block (0, 0, 255) comes out as R=255 on channel 0
    red = np.zeros((640, 640, 3), np.uint8)
    red[..., 2] = 255
    cv2.imwrite(str(tmp_path / "red.png"), red)
    out, _ = load_letterboxed(str(tmp_path / "red.png"), box)
    assert out[0].unique().tolist() == [255] and out[1:].unique().tolist() == [0]


def test_shrinking_uses_inter_area(tmp_path):
    """The reference is discriminative: with INTER_LINEAR for the shrink, the bytes differ."""
    path = _image(tmp_path, 900, 1200)
    box = parse_fields({})["letterbox"]
    ours, _ = load_letterboxed(path, box)
    assert not torch.equal(ours, official_input(path, 640, area=cv2.INTER_LINEAR))


def test_unreadable_image_is_flagged_not_raised(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    box = parse_fields({})["letterbox"]
    with pytest.raises(OSError, match=r"bad\.jpg: not an image OpenCV can read"):
        load_letterboxed(str(bad), box)
    out, index, ok, shape = LetterboxImages([str(bad)], [0], box)[0]
    assert (index, ok, shape) == (0, False, (0, 0)) and out.shape == (3, 640, 640) and (out == 114).all()
