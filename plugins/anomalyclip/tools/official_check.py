"""Compare zoo's AnomalyCLIP with the official zqhang/AnomalyCLIP code; (re)write the suite's test data.

Run outside the test suite, on a copy of the official code (it needs ``ftfy`` and ``regex`` for its
tokenizer; ``thop`` and ``pkg_resources`` are imported but unused, so stubs do)::

    git --git-dir=<mirror of zqhang/AnomalyCLIP> archive 45ed4dd AnomalyCLIP_lib prompt_ensemble.py | tar -x -C /tmp/aclip
    pip install --target /tmp/aclip-deps ftfy
    python plugins/anomalyclip/tools/official_check.py --official /tmp/aclip --deps /tmp/aclip-deps:/tmp/stubs [--full]

Both models get the same weights (``zoo_anomalyclip.synthetic.formula_state_dict``: every floating
tensor, prompt-learner buffers included, from a closed formula), the official one through
``load_state_dict`` of its model and of its ``AnomalyCLIP_PromptLearner``. The official side then runs
exactly what ``test.py`` runs per image (``DAPM_replace``, ``encode_text_learn``, ``encode_image``,
``compute_similarity``, ``get_similarity_map``, the map sum); zoo's model runs the whole batch at once.

- tiny: a small configuration (ViT width 128, 3 blocks, DPAM_layer 3, features [1, 3], text width
  128, 3 blocks, depth 3, image 56 with a 42-pixel positional table) written to
  ``tests/data/tiny_reference.safetensors`` (the official score and map) and checked;
- manifest: names and shapes of the official ViT-L/14@336 model (as built, before ``DAPM_replace``)
  and of its prompt learner (n_ctx 12, depth 9, t_n_ctx 4), written to ``tests/data/official_anomalyclip.json``;
- ``--full``: the ViT-L/14@336 model at 518 x 518 with features [24] and DPAM_layer 20, as test.sh runs it;
- ``--pre-2025``: ``--official`` is the code before the April 2025 fix (``AnomalyCLIP_lib`` at ff7ca47): the
  tiny model's official map with features [2, 3] (both on the V-V path, as 6 12 18 24 all were) is
  compared with twice zoo's map of features [3] (the logged figures were computed that way).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"

TINY = dict(embed_dim=64, image_size=42, patch_size=14, vision_width=128, vision_layers=3, context_length=77,
            vocab_size=49408, text_width=128, text_layers=3)
TINY_RUN = dict(features=(1, 3), dpam_layer=3, n_ctx=12, depth=3, t_n_ctx=4, image=56, batch=2)
FULL_RUN = dict(features=(24,), dpam_layer=20, n_ctx=12, depth=9, t_n_ctx=4, image=518, batch=1)


def official_models(cfg: dict, run: dict):
    """The official AnomalyCLIP model and prompt learner for ``cfg`` (zoo's names) and ``run``."""
    from AnomalyCLIP_lib.AnomalyCLIP import AnomalyCLIP
    from prompt_ensemble import AnomalyCLIP_PromptLearner

    design = {"Prompt_length": run["n_ctx"], "learnabel_text_embedding_depth": run["depth"],
              "learnabel_text_embedding_length": run["t_n_ctx"]}
    model = AnomalyCLIP(cfg["embed_dim"], cfg["image_size"], cfg["vision_layers"], cfg["vision_width"],
                        cfg["patch_size"], cfg["context_length"], cfg["vocab_size"], cfg["text_width"],
                        cfg["text_width"] // 64, cfg["text_layers"], design_details=design).eval()
    return model, AnomalyCLIP_PromptLearner(model, design).eval()


def official_outputs(model, learner, images: torch.Tensor, run: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(score (B,), map (B, H, W))`` computed image by image as test.py does (before its Gaussian filter)."""
    import AnomalyCLIP_lib

    model.visual.DAPM_replace(DPAM_layer=run["dpam_layer"])
    with torch.no_grad():
        prompts, tokenized, compound = learner(cls_id=None)
        text = model.encode_text_learn(prompts, tokenized, compound).float()
        text = torch.stack(torch.chunk(text, dim=0, chunks=2), dim=1)
        text = text / text.norm(dim=-1, keepdim=True)
        scores, maps = [], []
        for image in images:
            glob, patches = model.encode_image(image[None], list(run["features"]), DPAM_layer=run["dpam_layer"])
            glob = glob / glob.norm(dim=-1, keepdim=True)
            probs = (glob @ text.permute(0, 2, 1) / 0.07).softmax(-1)[:, 0, 1]
            layer_maps = []
            for patch in patches:
                patch = patch / patch.norm(dim=-1, keepdim=True)
                similarity, _ = AnomalyCLIP_lib.compute_similarity(patch, text[0])
                sim_map = AnomalyCLIP_lib.get_similarity_map(similarity[:, 1:, :], images.shape[-1])
                layer_maps.append((sim_map[..., 1] + 1 - sim_map[..., 0]) / 2.0)
            scores.append(probs)
            maps.append(torch.stack(layer_maps).sum(dim=0))
    return torch.cat(scores), torch.cat(maps)


def split(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    model = {k: v for k, v in state.items() if not k.startswith("prompt_learner.")}
    learner = {k.removeprefix("prompt_learner."): v for k, v in state.items() if k.startswith("prompt_learner.")}
    return model, learner


def compare(cfg: dict, run: dict) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    from zoo_anomalyclip.model import AnomalyCLIP
    from zoo_anomalyclip.synthetic import formula_images, formula_state_dict

    ours = AnomalyCLIP(features=run["features"], dpam_layer=run["dpam_layer"], n_ctx=run["n_ctx"],
                       depth=run["depth"], t_n_ctx=run["t_n_ctx"], **cfg).eval()
    state = formula_state_dict(ours.state_dict())
    ours.load_state_dict(state, strict=True)
    model, learner = official_models(cfg, run)
    model_sd, learner_sd = split(state)
    model.load_state_dict(model_sd, strict=True)
    learner.load_state_dict(learner_sd, strict=True)
    images = formula_images(run["batch"], run["image"])
    t0 = time.perf_counter()
    score, amap = official_outputs(model, learner, images, run)
    t1 = time.perf_counter()
    with torch.no_grad():
        out = ours(images)
    t2 = time.perf_counter()
    print(f"  official {t1 - t0:.1f}s, zoo {t2 - t1:.1f}s")
    return score, amap, (out["score"] - score).abs().max().item(), (out["map"] - amap).abs().max().item()


def write_manifest() -> None:
    from zoo_anomalyclip.model import VIT_L_14_336

    model, learner = official_models(VIT_L_14_336, FULL_RUN)
    manifest = {"model": {k: list(t.shape) for k, t in model.state_dict().items()},
                "prompt_learner": {k: list(t.shape) for k, t in learner.state_dict().items()}}
    lines = []
    for part, shapes in manifest.items():
        body = ",\n".join(f"    {json.dumps(k)}: {json.dumps(s)}" for k, s in shapes.items())
        lines.append(f"  {json.dumps(part)}: {{\n{body}\n  }}")
    (DATA / "official_anomalyclip.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"manifest: {len(manifest['model'])} model + {len(manifest['prompt_learner'])} prompt-learner tensors")


def pre_2025() -> int:
    """The old code summed maps of in-place-updated tensors: every V-V layer's map was the last one's."""
    from zoo_anomalyclip.model import AnomalyCLIP
    from zoo_anomalyclip.synthetic import formula_images, formula_state_dict

    run = {**TINY_RUN, "features": (2, 3)}
    ours = AnomalyCLIP(features=(3,), dpam_layer=run["dpam_layer"], n_ctx=run["n_ctx"], depth=run["depth"],
                       t_n_ctx=run["t_n_ctx"], **TINY).eval()
    state = formula_state_dict(ours.state_dict())
    ours.load_state_dict(state, strict=True)
    model, learner = official_models(TINY, run)
    model_sd, learner_sd = split(state)
    model.load_state_dict(model_sd, strict=True)
    learner.load_state_dict(learner_sd, strict=True)
    images = formula_images(run["batch"], run["image"])
    score, amap = official_outputs(model, learner, images, run)
    out = ours(images)
    d_score = (out["score"] - score).abs().max().item()
    d_map = (2 * out["map"] - amap).abs().max().item()
    print(f"pre-2025 code, features [2, 3] vs 2 x zoo's [3]: max |score diff| {d_score:.3g}, max |map diff| {d_map:.3g}")
    ok = d_score <= 1e-4 and d_map <= 2e-4
    print("OK" if ok else "DIFFERENT")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="a copy of zqhang/AnomalyCLIP at 45ed4dd")
    parser.add_argument("--deps", default="", help="extra sys.path entries, ':'-separated (ftfy, stubs)")
    parser.add_argument("--full", action="store_true", help="also compare the full ViT-L/14@336 model at 518")
    parser.add_argument("--no-write", action="store_true", help="check only; do not rewrite tests/data")
    parser.add_argument("--pre-2025", action="store_true", help="--official is AnomalyCLIP_lib before 2a7c886")
    args = parser.parse_args()
    sys.path[:0] = [str(args.official), *filter(None, args.deps.split(":"))]
    warnings.simplefilter("ignore")
    from safetensors.torch import save_file

    torch.set_grad_enabled(False)
    if args.pre_2025:
        return pre_2025()
    ok = True
    print("tiny:")
    score, amap, d_score, d_map = compare(TINY, TINY_RUN)
    print(f"  max |score diff| {d_score:.3g}, max |map diff| {d_map:.3g} (map range {amap.min():.3f}..{amap.max():.3f})")
    ok &= d_score <= 1e-4 and d_map <= 1e-4
    if not args.no_write:
        DATA.mkdir(parents=True, exist_ok=True)
        save_file({"score": score.contiguous(), "map": amap.contiguous()}, str(DATA / "tiny_reference.safetensors"),
                  metadata={"config": json.dumps({**TINY, **TINY_RUN}), "official": "zqhang/AnomalyCLIP@45ed4dd"})
        write_manifest()
    if args.full:
        from zoo_anomalyclip.model import VIT_L_14_336

        print("full ViT-L/14@336 at 518:")
        score, amap, d_score, d_map = compare(VIT_L_14_336, FULL_RUN)
        print(f"  score {score.tolist()}, max |score diff| {d_score:.3g}, max |map diff| {d_map:.3g} "
              f"(map range {amap.min():.4f}..{amap.max():.4f})")
        ok &= d_score <= 1e-4 and d_map <= 1e-4
    print("OK" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
