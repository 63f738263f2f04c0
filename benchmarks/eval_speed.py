"""Images/s of `zoo eval` beside timm's own validation pipeline, same model, folder, batch and workers.

timm's side is what ``validate.py`` runs: ``create_dataset`` + ``create_loader`` (prefetcher on,
uint8 batches normalised after loading) + ``model(input)`` under ``inference_mode`` + ``topk``.
zoo's side is ``zoo.evaluate`` (the API under ``zoo eval``), with its defaults. Both load the
same weights (a random init saved once as a checkpoint), and both are timed from the first
batch request to the last result (worker start-up included, model building excluded).

The 2 CPU cores here are shared with other people's jobs, so the repeats are interleaved
(zoo, timm, zoo, timm, ...) and the median of each side is compared.

    .venv/bin/python benchmarks/eval_speed.py --images 192 --batch-size 32 --workers 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = '''
from zoo import hookimpl


@hookimpl
def zoo_cards():
    card = dict(paper="bench", task="image-classification", plugin="evalbench", builder="{arch}",
                input_size=[3, {size}, {size}], preprocess=dict(interpolation="bicubic", crop_pct=0.875))
    return [{{"papers": {{"bench": {{"title": "eval bench", "venue": "-"}}}}, "models": {{"bench-{arch}": card}}}}]


@hookimpl
def zoo_builders():
    return {{"{arch}": "zoo_evalbench_models:build"}}
'''
MODELS = '''
import timm


def build(*, num_classes=1000, **kwargs):
    return timm.create_model("{arch}", pretrained=False, num_classes=num_classes, **kwargs)
'''


def install_plugin(site: Path, arch: str, size: int) -> None:
    """A throwaway plugin distribution with one card, found through the real entry-point discovery."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "zoo_evalbench.py").write_text(PLUGIN.format(arch=arch, size=size))
    (site / "zoo_evalbench_models.py").write_text(MODELS.format(arch=arch))
    info = site / "zoo_evalbench-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-evalbench\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zoo]\nevalbench = zoo_evalbench\n")
    sys.path.insert(0, str(site))


def timm_validate(arch: str, ckpt: Path, folder: Path, size: int, batch: int, workers: int) -> tuple[float, float, int]:
    """timm's validate.py loop; returns (img/s, top-1, images)."""
    import timm
    import torch
    from safetensors.torch import load_file
    from timm.data import create_dataset, create_loader, resolve_data_config

    model = timm.create_model(arch, pretrained=False).eval()
    model.load_state_dict(load_file(str(ckpt)))
    model.pretrained_cfg = dict(model.pretrained_cfg, input_size=(3, size, size), crop_pct=0.875,
                                interpolation="bicubic", crop_mode="center")
    cfg = resolve_data_config({}, model=model)
    dataset = create_dataset("", root=str(folder), split="validation")
    loader = create_loader(dataset, input_size=cfg["input_size"], batch_size=batch, use_prefetcher=True,
                           interpolation=cfg["interpolation"], mean=cfg["mean"], std=cfg["std"], num_workers=workers,
                           crop_pct=cfg["crop_pct"], crop_mode=cfg["crop_mode"], pin_memory=False,
                           device=torch.device("cpu"))
    correct = total = 0
    with torch.inference_mode():
        model(torch.randn((batch, *cfg["input_size"])))  # validate.py's warm-up
        start = time.perf_counter()
        for images, target in loader:
            out = model(images)
            correct += int((out.topk(5, 1).indices[:, 0] == target).sum())
            total += images.shape[0]
        elapsed = time.perf_counter() - start
    return total / elapsed, 100.0 * correct / total, total


def zoo_eval(card: str, ckpt: Path, folder: Path, batch: int, workers: int, threads: int | None) -> tuple[float, float, int]:
    import zoo

    r = zoo.evaluate(card, f"folder:{folder}", checkpoint=ckpt, device="cpu", batch_size=batch, workers=workers,
                     record=False, progress=False, threads=threads)
    return r["throughput_img_s"], r["top1"], r["images"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--zoo-threads", type=int, help="zoo's intra-op threads (default: its own choice)")
    args = parser.parse_args()

    import torch
    from safetensors.torch import save_file

    from zoo.tasks.classification.data.demo import make_demo_folder

    tmp = Path(tempfile.mkdtemp(prefix="zoo-evalbench-"))
    os.environ["ZOO_HOME"] = str(tmp / "home")
    install_plugin(tmp / "site", args.arch, args.size)
    folder = make_demo_folder(tmp / "images", n_images=args.images, n_classes=10, min_side=200, max_side=500)
    import timm

    torch.manual_seed(0)
    ckpt = tmp / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model(args.arch).state_dict().items()}, str(ckpt))
    card = f"bench-{args.arch}"
    print(f"{args.arch} @ {args.size}, {args.images} generated JPEGs (200-500 px), batch {args.batch_size}, "
          f"workers {args.workers}, CPU, torch threads {torch.get_num_threads()}; repeats interleaved zoo/timm")
    runs: dict[str, list[float]] = {"zoo": [], "timm": []}
    for i in range(args.repeats):
        for side in ("zoo", "timm"):
            if side == "zoo":
                rate, top1, n = zoo_eval(card, ckpt, folder, args.batch_size, args.workers, args.zoo_threads)
            else:
                rate, top1, n = timm_validate(args.arch, ckpt, folder, args.size, args.batch_size, args.workers)
            runs[side].append(rate)
            print(f"  repeat {i + 1} {side:4s} {rate:8.1f} img/s   top-1 {top1:6.2f}  images {n}")
    zoo_rate, timm_rate = statistics.median(runs["zoo"]), statistics.median(runs["timm"])
    print(f"median: zoo {zoo_rate:.1f} img/s, timm {timm_rate:.1f} img/s, ratio zoo/timm {zoo_rate / timm_rate:.2f}x")


if __name__ == "__main__":
    main()
