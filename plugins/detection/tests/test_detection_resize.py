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
from zoo_detection.evaluate import LetterboxImages, letterbox_geometry, load_letterboxed, to_coco
from zoo_detection.task import parse_fields


def official_load_image(path, img_size, area=cv2.INTER_AREA, shrink_size=None):
    im = cv2.imread(path)
    assert im is not None
    h0, w0 = im.shape[:2]
    if shrink_size:
        r = (img_size - shrink_size) / max(h0, w0)
    else:
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
    return im, r, (left, top)


def official_input(path, img_size, shape=None, area=cv2.INTER_AREA, shrink_size=None, with_shapes=False):
    im, (h0, w0), (h, w) = official_load_image(path, img_size, area, shrink_size)
    im, ratio, pad = official_letterbox(im, img_size if shape is None else shape)
    out = torch.from_numpy(np.ascontiguousarray(im.transpose((2, 0, 1))[::-1]))
    # TrainValDataset.__getitem__'s shapes, which Evaler.scale_coords maps boxes back with
    return (out, ((h0, w0), ((h * ratio / h0, w * ratio / w0), pad))) if with_shapes else out


def official_scale_coords(coords, img0_shape, ratio_pad):
    """yolov6/core/evaler.py Evaler.scale_coords (0.4.0)."""
    gain, pad = ratio_pad
    coords[:, [0, 2]] -= pad[0]
    coords[:, [0, 2]] /= gain[1]
    coords[:, [1, 3]] -= pad[1]
    coords[:, [1, 3]] /= gain[0]
    coords[:, 0].clamp_(0, img0_shape[1])
    coords[:, 1].clamp_(0, img0_shape[0])
    coords[:, 2].clamp_(0, img0_shape[1])
    coords[:, 3].clamp_(0, img0_shape[0])
    return coords


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
    (h2, w2), (top, _b, left, _r), _in, _g, _o = letterbox_geometry(h, w, box)
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
    out, index, ok, shape, _region = LetterboxImages([str(bad)], [0], box)[0]
    assert (index, ok, shape) == (0, False, (0, 0)) and out.shape == (3, 640, 640) and (out == 114).all()


@pytest.mark.parametrize(("h", "w", "shrink"), [
    (901, 1203, 6),   # odd sizes, shrinking (INTER_AREA) to 634 on the long side
    (427, 641, 6),
    (213, 97, 6),     # enlarging (INTER_LINEAR) to 634
    (333, 777, 4),    # yolov6n/m/l's shrink
    (640, 480, 2),    # the default entry's shrink: a 640 image is shrunk too
])
def test_shrink_equals_reproduce_640_eval(tmp_path, h, w, shrink):
    """``--reproduce_640_eval``: load_image to ``640 - shrink_size``, then letterbox to 640 (auto and
    scaleup False, infer_on_rect False); input bytes and box mapping equal the official flow."""
    path = _image(tmp_path, h, w)
    box = parse_fields({"letterbox": {"shrink": shrink}})["letterbox"]
    ours, shape = load_letterboxed(path, box)
    ref, (hw0, ratio_pad) = official_input(path, 640, shrink_size=shrink, with_shapes=True)
    assert shape == hw0 == (h, w) and ours.shape == ref.shape == (3, 640, 640)
    assert torch.equal(ours, ref)
    geo = letterbox_geometry(h, w, box)
    assert max(geo.resized) == 640 - shrink and geo.input == (640, 640)
    assert geo.offset == ratio_pad[1] and geo.gain == (ratio_pad[0][1], ratio_pad[0][0])
    # a box in input pixels maps back to the original image as Evaler.scale_coords does
    det = torch.tensor([[3.0, 5.0, 600.5, 611.25, 0.9, 0.0], [100.0, 200.0, 300.0, 250.0, 0.5, 1.0]])
    expected = official_scale_coords(det[:, :4].clone(), (h, w), ratio_pad)
    expected[:, 2:] -= expected[:, :2]
    got = to_coco(det, geo.gain, geo.offset, (h, w), 7, [1, 2])
    assert [r["bbox"] for r in got] == [[round(v, 3) for v in row] for row in expected.tolist()]


def test_shrink_changes_the_input(tmp_path):
    """The reference is discriminative: shrink 6 and shrink 0 give different bytes."""
    path = _image(tmp_path, 901, 1203)
    plain = parse_fields({})["letterbox"]
    shrunk = parse_fields({"letterbox": {"shrink": 6}})["letterbox"]
    assert not torch.equal(load_letterboxed(path, plain)[0], load_letterboxed(path, shrunk)[0])
    assert letterbox_geometry(901, 1203, shrunk).padding == (83, 83, 3, 3)  # 474x634 in 640x640
