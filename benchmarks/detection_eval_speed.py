"""Seconds of `zoo eval yolov6-n` beside the official YOLOv6 0.4.0 `tools/eval.py`, same folder, weights, threads, CPU.

Issue #12 asks that detection eval on CPU be not slower than the official evaluator. Both sides run
as a user runs them, each in its own process, timed from launch to exit (imports, checkpoint
loading, folding, data checks, inference, NMS and COCOeval included):

- official: ``python tools/eval.py --data D.yaml --weights yolov6n.pt --batch-size B --task val
  --device cpu --reproduce_640_eval`` run from the official code directory (0.4.0, e.g. from
  ``git archive 0.4.0 yolov6 configs tools data``), the README's protocol (shrink_size 4 for the
  weight stem ``yolov6n``, square letterbox, conf 0.03, IoU 0.65);
- zoo: ``python -m zoo eval yolov6-n --dataset coco-json:IMAGES,ANNOTATIONS --checkpoint
  yolov6n.pt --device cpu --batch-size B --threads T --json`` (the card carries the same protocol).

The set is generated (``--images`` JPEGs of 375-800 px with filled rectangles of random COCO
classes, the COCO instances file and the YOLO label files the official loader insists on); the
checkpoint is the official ``Model`` for ``configs/yolov6n.py`` (self-distilled head, as released)
with seeded random weights (the class bias set so that 0.5 % of the (box, class) pairs of a noise image
score over 0.03, a trained head's order of NMS candidates), pickled whole as ``strip_optimizer`` leaves it (fp16 under ``model``).
The official ``load_checkpoint`` calls ``torch.load`` without ``weights_only``; torch >= 2.6 then
refuses the pickle, so its process gets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (no code changed).
Both get ``OMP_NUM_THREADS=T``; dataloader workers are each side's default (both min(8, CPUs)
here). One untimed warm-up run per side (the official loader writes its image/label cache next to
the images, zoo converts the checkpoint to safetensors once), then ``--repeats`` interleaved runs;
the ratio of medians is official seconds / zoo seconds (>= 1: zoo is not slower).

    .venv/bin/python benchmarks/detection_eval_speed.py --official /tmp/y6 --deps /tmp/y6/deps

``--deps`` is a folder with what the official code imports beyond zoo's environment (addict, requests, thop;
``pip download addict requests thop`` and unzip the wheels there). Nothing here uses the network.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("tools/eval.py", "yolov6/core/evaler.py", "configs/yolov6n.py", "configs/experiment/eval_640_repro.py")
#: COCO's category ids of the 80 detection classes, in class order (YOLOv6 evaler.coco80_to_coco91_class)
COCO80_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
              32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
              58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87,
              88, 89, 90)
SIZES = ((640, 480), (480, 640), (800, 600), (500, 375), (640, 427), (427, 640))  #: (width, height)

CHECKPOINT = r'''
import copy, sys, torch
from yolov6.models.yolo import build_model
from yolov6.utils.config import Config

cfg = Config.fromfile("configs/yolov6n.py")
cfg.training_mode = getattr(cfg, "training_mode", "repvgg")
model = build_model(cfg, 80, "cpu", distill_ns=True).eval()  # the released N: self-distilled head
gen = torch.Generator().manual_seed(0)
with torch.no_grad():
    for name, t in model.state_dict().items():
        if not t.is_floating_point() or name.endswith(("proj", "proj_conv.weight")):
            continue
        if name.endswith("running_var"):
            t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
        elif name.endswith("bn.weight") or ".rbr_identity.weight" in name or name.endswith("alpha"):
            t.copy_(1 + 0.2 * torch.randn(t.shape, generator=gen))
        elif t.dim() == 4:
            t.copy_(torch.randn(t.shape, generator=gen) / t[0].numel() ** 0.5)
        else:
            t.copy_(0.1 * torch.randn(t.shape, generator=gen))
    # A random head scores most (box, class) pairs above conf 0.03: hundreds of thousands of NMS candidates per
    # image, where a trained head has a few thousand. Shift the class bias so that 0.5 % of the pairs pass on a
    # noise image (about 3,400 per 640 image), which keeps NMS at a trained model's scale on both sides.
    raw = []
    hooks = [c.register_forward_hook(lambda m, i, o: raw.append((o - m.bias.view(1, -1, 1, 1)).flatten()))
             for c in model.detect.cls_preds]
    model(torch.rand(1, 3, 640, 640, generator=gen))
    for h in hooks:
        h.remove()
    cut = torch.cat(raw).float().quantile(0.995).item()
    for conv in model.detect.cls_preds:
        conv.bias.fill_(-3.476 - cut)  # logit(0.03) = -3.476
ckpt = {"model": copy.deepcopy(model).half(), "ema": None, "updates": None, "optimizer": None, "epoch": -1}
for p in ckpt["model"].parameters():
    p.requires_grad = False
torch.save(ckpt, sys.argv[1])  # what yolov6/utils/checkpoint.py strip_optimizer leaves
'''


def fail(message: str) -> None:
    sys.exit(f"detection_eval_speed.py: error: {message}")


def official_env(official: Path, deps: Path | None, threads: int) -> dict[str, str]:
    path = [str(official)] + ([str(deps)] if deps else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}


def check_official(official: Path, deps: Path | None, threads: int) -> None:
    """One line, then exit, when the official code or what it imports is not there."""
    if not official.is_dir():
        fail(f"--official {official}: no such directory (a YOLOv6 0.4.0 checkout: tools/, yolov6/, configs/)")
    missing = [p for p in NEEDED if not (official / p).is_file()]
    if missing:
        fail(f"--official {official}: not a YOLOv6 0.4.0 checkout (missing {', '.join(missing)})")
    if deps is not None and not deps.is_dir():
        fail(f"--deps {deps}: no such directory")
    probe = subprocess.run([sys.executable, "-c", "import yolov6.core.evaler, thop, addict, pycocotools"],
                           cwd=official, env=official_env(official, deps, threads), capture_output=True, text=True)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["import failed"])[-1]
        fail(f"the official code in {official} cannot be imported: {last} (pass --deps DIR with addict, requests and thop)")


def make_set(root: Path, n_images: int, seed: int = 0) -> tuple[Path, Path]:
    """COCO-format set in the layout both read: images/val2017, labels/val2017 (YOLO txt), annotations."""
    import cv2
    import numpy as np

    images_dir, labels_dir, ann_dir = root / "images" / "val2017", root / "labels" / "val2017", root / "annotations"
    for d in (images_dir, labels_dir, ann_dir):
        d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    images, annotations = [], []
    for i in range(n_images):
        image_id = 100_000 + 13 * i  # file names are the ids, as COCO's (the official eval parses them)
        width, height = SIZES[i % len(SIZES)]
        im = np.full((height, width, 3), 50, np.uint8)
        lines = []
        for _ in range(rng.randrange(1, 7)):
            w, h = rng.randrange(20, width // 2), rng.randrange(20, height // 2)
            x, y = rng.randrange(0, width - w), rng.randrange(0, height - h)
            k = rng.randrange(80)
            colour = tuple(int(c) for c in np.random.default_rng(k).integers(60, 255, 3))
            cv2.rectangle(im, (x, y), (x + w - 1, y + h - 1), colour, thickness=-1)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": COCO80_IDS[k],
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            lines.append(f"{k} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}")
        name = f"{image_id:012d}"
        cv2.imwrite(str(images_dir / f"{name}.jpg"), im, [cv2.IMWRITE_JPEG_QUALITY, 95])
        (labels_dir / f"{name}.txt").write_text("\n".join(lines) + "\n")
        images.append({"id": image_id, "file_name": f"{name}.jpg", "width": width, "height": height})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": c, "name": f"class{k}"} for k, c in enumerate(COCO80_IDS)]}
    ann = ann_dir / "instances_val2017.json"
    ann.write_text(json.dumps(doc))
    return images_dir, ann


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"detection_eval_speed.py: error: {cmd[1]} exited {done.returncode}:\n{tail}")
    return seconds, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="YOLOv6 0.4.0 code (tools/, yolov6/, configs/)")
    parser.add_argument("--deps", type=Path, help="extra import path for the official code (addict, requests, thop)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="both sides (the README command's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads, both sides")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="where the set, checkpoint and runs go (default: a temp dir)")
    args = parser.parse_args()
    for name in ("images", "batch_size", "threads", "repeats"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
    official = args.official.expanduser().resolve()
    deps = args.deps.expanduser().resolve() if args.deps else None
    check_official(official, deps, args.threads)

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="zoo-deteval-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    images, ann = make_set(work / "coco", args.images)
    ckpt = work / "yolov6n.pt"  # the stem picks shrink_size 4 in eval_640_repro.py, as for the release file
    subprocess.run([sys.executable, "-c", CHECKPOINT, str(ckpt)], cwd=official, check=True,
                   env=official_env(official, deps, args.threads))
    data = work / "coco.yaml"
    data.write_text(f"val: {images}\nanno_path: {ann}\nnc: 80\nis_coco: True\n"
                    f"names: {json.dumps([f'class{k}' for k in range(80)])}\n")
    off_cmd = [sys.executable, "tools/eval.py", "--data", str(data), "--weights", str(ckpt), "--batch-size",
               str(args.batch_size), "--task", "val", "--device", "cpu", "--reproduce_640_eval",
               "--save_dir", str(work / "runs"), "--name", "exp"]
    zoo_env = {**os.environ, "ZOO_HOME": str(work / "zoo-home"), "OMP_NUM_THREADS": str(args.threads),
               "MKL_NUM_THREADS": str(args.threads)}
    zoo_cmd = [sys.executable, "-m", "zoo", "eval", "yolov6-n", "--dataset", f"coco-json:{images},{ann}",
               "--checkpoint", str(ckpt), "--device", "cpu", "--batch-size", str(args.batch_size),
               "--threads", str(args.threads), "--json"]
    sides = {"official": (off_cmd, official, official_env(official, deps, args.threads)),
             "zoo": (zoo_cmd, ROOT, zoo_env)}

    print(f"yolov6-n (random weights, official checkpoint format), {args.images} generated JPEGs, batch "
          f"{args.batch_size}, {args.threads} threads, CPU ({os.cpu_count()} cores), load average "
          f"{os.getloadavg()[0]:.1f}; warm-up, then {args.repeats} interleaved repeats")
    for cmd, cwd, env in sides.values():  # untimed: caches, checkpoint conversion
        run_timed(cmd, cwd, env)
    seconds: dict[str, list[float]] = {"official": [], "zoo": []}
    for i in range(args.repeats):
        for side, (cmd, cwd, env) in sides.items():
            took, out = run_timed(cmd, cwd, env)
            seconds[side].append(took)
            if side == "zoo":
                result = json.loads(out[out.index("{"):out.rindex("}") + 1])
                ap, extra = result["map"], (f"  (inside: {result['seconds']:.1f} s, forward {result['forward_s']:.1f}, "
                                            f"NMS {result['postprocess_s']:.1f})")
            else:
                found = re.search(r"Average Precision\s+\(AP\) @\[ IoU=0.50:0.95 \| area=\s+all \| maxDets=100 \] = "
                                  r"(-?[0-9.]+)", out)
                ap, extra = (100 * float(found.group(1)) if found else float("nan")), ""
            print(f"  repeat {i + 1} {side:8s} {took:7.1f} s   AP {ap:6.2f}{extra}   load {os.getloadavg()[0]:.1f}")
    off, zoo = statistics.median(seconds["official"]), statistics.median(seconds["zoo"])
    print(f"median: official {off:.1f} s, zoo {zoo:.1f} s; ratio official / zoo = {off / zoo:.2f} "
          f"({'zoo is not slower' if off >= zoo else 'zoo is slower'})")


if __name__ == "__main__":
    main()
