"""AnomalyCLIP plugin: key compatibility with the official code, outputs equal to it, weights through the cache.

Reference data (``tests/data``) was written by ``tools/official_check.py`` from the official code
(zqhang/AnomalyCLIP@45ed4dd): the names and shapes of the official ViT-L/14@336 model and prompt
learner, and the official score and map of a tiny configuration given the formula weights of
``zoo_anomalyclip.synthetic`` (which this test rebuilds, so no weights are stored).
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save
from zoo_anomalyclip import convert
from zoo_anomalyclip.model import AnomalyCLIP, anomalyclip_vit_l_14_336, clip_vit_l_14_336, prompt_tokens
from zoo_anomalyclip.synthetic import formula_images, formula_state_dict

from zoo import create_model
from zoo.errors import WeightsError, ZooError
from zoo.registry import lookup

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from hubserver import HubServer  # noqa: E402

DATA = Path(__file__).parent / "data"
MANIFEST = json.loads((DATA / "official_anomalyclip.json").read_text())
TINY = dict(embed_dim=64, image_size=42, patch_size=14, vision_width=128, vision_layers=3, context_length=77,
            vocab_size=49408, text_width=128, text_layers=3)
TINY_RUN = dict(features=(1, 3), dpam_layer=3, n_ctx=12, depth=3, t_n_ctx=4)
BACKBONE_REPO, BACKBONE_FILE = "timm/vit_large_patch14_clip_336.openai", "open_clip_model.safetensors"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and on a shared machine their spin-waits cost seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base(_one_thread) -> AnomalyCLIP:
    """The tiny configuration with the formula weights the official reference was computed with."""
    model = AnomalyCLIP(**TINY, **TINY_RUN).eval()
    model.load_state_dict(formula_state_dict(model.state_dict()), strict=True)
    return model


@pytest.fixture
def tiny(base) -> AnomalyCLIP:
    return copy.deepcopy(base)


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return load_file(str(DATA / "tiny_reference.safetensors"))


@pytest.fixture(scope="module")
def tiny_output(base) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return base(formula_images(2, 56))


def test_entry_module_imports_nothing_heavy():
    """`zoo list` imports the entry module: it must not pull in torch (the model code is imported on build)."""
    code = "import sys, zoo_anomalyclip; print(sorted(m for m in ('torch', 'safetensors', 'numpy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- key compatibility -------------------------------------------------------------------------------


def _shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_state_dict_equals_official_manifest():
    """Names and shapes equal the official model's (as built, before DAPM_replace) plus its prompt learner's."""
    with torch.device("meta"):
        ours = _shapes(anomalyclip_vit_l_14_336())
        backbone = _shapes(clip_vit_l_14_336())
    want = {**MANIFEST["model"], **{f"prompt_learner.{k}": s for k, s in MANIFEST["prompt_learner"].items()}}
    assert len(MANIFEST["model"]) == 446 and len(MANIFEST["prompt_learner"]) == 32
    assert ours == want
    assert backbone == MANIFEST["model"]


def test_clip_image_tower_equals_timm(base):
    """The backbone card's model (CLIP's image embedding, ln_post(class token) @ proj) equals timm's CLIP
    ViT given the same weights through timm's own OpenAI-CLIP key conversion: an independent implementation."""
    from timm.models.vision_transformer import VisionTransformer, _convert_openai_clip
    from zoo_anomalyclip.clip import CLIP

    clip = CLIP(**TINY).eval()
    visual = {f"visual.{k}": v for k, v in base.visual.state_dict().items()}
    clip.visual.load_state_dict(base.visual.state_dict(), strict=True)
    ref = VisionTransformer(img_size=42, patch_size=14, embed_dim=128, depth=3, num_heads=2, pre_norm=True,
                            norm_layer=torch.nn.LayerNorm, act_layer="quick_gelu", num_classes=64,
                            global_pool="token").eval()
    ref.load_state_dict(_convert_openai_clip(visual, ref), strict=True)
    images = formula_images(2, 42)
    with torch.no_grad():
        ours, theirs = clip.visual(images), ref(images)
        embedding = clip(images)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(embedding, torch.nn.functional.normalize(theirs, dim=-1), atol=1e-6, rtol=0)


def test_prompt_tokens_are_the_official_ids():
    """The official tokenizer's ids of "X X ... X object." / "... damaged object." (12 X, read from the code)."""
    tokens = prompt_tokens(12)
    assert tokens.shape == (2, 77) and tokens.dtype == torch.int32
    assert tokens[0, :16].tolist() == [49406, *[343] * 12, 14115, 269, 49407]
    assert tokens[1, :17].tolist() == [49406, *[343] * 12, 13568, 14115, 269, 49407]
    assert not tokens[0, 16:].any() and not tokens[1, 17:].any()
    with pytest.raises(ValueError, match="does not fit"):
        prompt_tokens(80)


# -- fidelity ---------------------------------------------------------------------------------------------


def test_outputs_equal_official_reference(tiny_output, reference):
    """Score and map of the tiny configuration equal the official code's within 1e-4 (batch of 2 at once;
    the official test runs one image at a time)."""
    assert tiny_output["score"].shape == (2,) and tiny_output["map"].shape == (2, 56, 56)
    torch.testing.assert_close(tiny_output["score"], reference["score"], atol=1e-4, rtol=0)
    torch.testing.assert_close(tiny_output["map"], reference["map"], atol=1e-4, rtol=0)
    # the reference is not degenerate: scores away from 0 and 1, maps that vary over the image
    assert 0.01 < reference["score"].min() and reference["score"].max() < 0.99
    assert reference["map"].std() > 0.05 and (reference["score"][0] - reference["score"][1]).abs() > 1e-3


def _max_diff(model: AnomalyCLIP, reference: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        out = model(formula_images(2, 56))
    return max((out["score"] - reference["score"]).abs().max().item(), (out["map"] - reference["map"]).abs().max().item())


def _with_ln_post_global(model: AnomalyCLIP) -> AnomalyCLIP:
    """The usual CLIP global feature (ln_post before proj), which the official AnomalyCLIP path skips."""
    real = model.image_features

    def image_features(images):
        _, patches = real(images)
        x = model.visual.embed(images)
        for i, block in enumerate(model.visual.transformer.resblocks):
            if i < model.dpam_start:
                x = block(x)
            else:
                x = x + block.attn.dual(block.ln_1(x))[0]
                x = x + block.mlp(block.ln_2(x))
        return model.visual.ln_post(x[:, 0]) @ model.visual.proj, patches

    model.image_features = image_features  # type: ignore[method-assign]
    return model


def _variant(base: AnomalyCLIP, **changes: object) -> AnomalyCLIP:
    model = copy.deepcopy(base)
    for name, value in changes.items():
        setattr(model, name, value)
    return model


def test_reference_catches_each_official_detail(base, reference):
    """Each detail of the official test path moves the outputs by far more than the 1e-4 tolerance."""
    fewer_prompts = _variant(base)
    learner = fewer_prompts.prompt_learner
    learner.compound_prompts_text = torch.nn.ParameterList(list(learner.compound_prompts_text)[:-1])
    deviations = {
        "features [3] only": _max_diff(_variant(base, features=(3,)), reference),
        "V-V attention from one block later": _max_diff(_variant(base, dpam_start=base.dpam_start + 1), reference),
        "compound prompts in one text layer fewer": _max_diff(fewer_prompts, reference),
        "ln_post on the global token": _max_diff(_with_ln_post_global(copy.deepcopy(base)), reference),
    }
    for what, diff in deviations.items():
        assert diff > 1e-3, f"{what}: the reference does not tell it apart ({diff:.2g})"


def test_compound_prompts_are_rounded_to_float16(tiny):
    """Text layers 1..depth-1 see the learned tokens rounded to float16, as the official block's .half() does:
    rounding them beforehand changes no bit of the text features (without the rounding they move by ~6e-5
    here), while a real change of the tokens does move them."""
    prompts = list(tiny.prompt_learner.compound_prompts_text)
    with torch.no_grad():
        before = tiny.text_features()
        assert any(not torch.equal(p, p.to(torch.float16).float()) for p in prompts)  # not float16 values yet
        for p in prompts:
            p.copy_(p.to(torch.float16).float())
        rounded = tiny.text_features()
        for p in prompts:
            p.add_(0.5)
        moved = tiny.text_features()
    assert torch.equal(before, rounded)
    assert (moved - before).abs().max() > 1e-4


def test_batch_equals_single_images(base, tiny_output):
    images = formula_images(2, 56)
    with torch.no_grad():
        single = [base(images[i:i + 1]) for i in range(2)]
    torch.testing.assert_close(torch.cat([s["score"] for s in single]), tiny_output["score"], atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.cat([s["map"] for s in single]), tiny_output["map"], atol=1e-6, rtol=0)


def test_output_contract_and_bad_inputs(base):
    model = _variant(base, features=(3,))
    with torch.no_grad():
        out = model(formula_images(1, 70))  # another grid (5 x 5): the positional table follows
    assert set(out) == {"score", "map"} and out["map"].shape == (1, 70, 70)
    assert 0 <= out["score"].item() <= 1 and 0 <= out["map"].min() and out["map"].max() <= 1 + 1e-6
    with pytest.raises(ValueError, match="square images whose side is a multiple of 14"):
        model(torch.zeros(1, 3, 56, 57))
    small = dict(TINY, vocab_size=49408)
    for bad, message in (({"features": (0,)}, "features must be block indices in 1..3"),
                         ({"features": (4,)}, "features must be block indices in 1..3"),
                         ({"features": ()}, "features must be block indices"),
                         ({"dpam_layer": 5}, "dpam_layer must be in 2..4"),
                         ({"depth": 4}, "depth must be in 1..3")):
        with pytest.raises(ValueError, match=message), torch.device("meta"):
            AnomalyCLIP(**{**small, **TINY_RUN, **bad})


# -- conversion and weights ---------------------------------------------------------------------------


def _split(model: AnomalyCLIP) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(backbone as open_clip's file holds it, the prompt learner as the official checkpoint holds it)``."""
    state = model.state_dict()
    backbone = {k: v.clone() for k, v in state.items() if not k.startswith("prompt_learner.")}
    prompts = {k.removeprefix("prompt_learner."): v.clone() for k, v in state.items() if k.startswith("prompt_learner.")}
    return backbone, prompts


def test_convert_merges_backbone_and_is_idempotent(base):
    model = base
    backbone, prompts = _split(model)
    merged = convert.convert_prompts(prompts, lambda: {**backbone, "input_resolution": torch.tensor(336)})
    assert set(merged) == set(model.state_dict())
    assert convert.convert_prompts(merged, lambda: pytest.fail("an already converted dict needs no backbone")) == merged
    assert convert.convert_clip(backbone) == backbone


def test_convert_refuses_wrong_files(base):
    backbone, prompts = _split(base)
    with pytest.raises(WeightsError, match="not an AnomalyCLIP prompt checkpoint: no ctx_pos"):
        convert.convert_prompts({k: v for k, v in prompts.items() if k != "ctx_pos"}, lambda: backbone)
    with pytest.raises(WeightsError, match="unexpected tensor 'visual.proj'"):
        convert.convert_prompts({**prompts, "visual.proj": backbone["visual.proj"]}, lambda: backbone)
    timm_layout = {"patch_embed.proj.weight": torch.zeros(1), "blocks.0.norm1.weight": torch.zeros(1)}
    with pytest.raises(WeightsError, match="timm's image-tower-only layout; use open_clip_model.safetensors"):
        convert.convert_clip(timm_layout)
    with pytest.raises(WeightsError, match="no text_projection, token_embedding.weight"):
        convert.convert_clip({k: v for k, v in backbone.items() if k.startswith("visual.")})


def test_official_prompt_checkpoint_loads_with_backbone_from_the_hub(base, tmp_path, monkeypatch):
    """The official container ({"prompt_learner": ...}, torch.save) given as --checkpoint: the core reads it
    safely, the converter fetches the backbone card's file from a (local) Hub into zoo's cache and merges it,
    and the result loads strictly; the second load uses the cache."""
    model = base
    backbone, prompts = _split(model)
    path = tmp_path / "epoch_15.pth"
    torch.save({"prompt_learner": prompts}, path)
    with HubServer() as hub:
        hub.add_hub(BACKBONE_REPO, BACKBONE_FILE, save(backbone))
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        loaded = create_model("anomalyclip-visa", checkpoint=str(path), **TINY, **TINY_RUN)
        again = create_model("anomalyclip-mvtec", checkpoint=str(path), **TINY, **TINY_RUN)
        gets = [entry for entry in hub.requests("GET") if BACKBONE_FILE in entry[1]]
    assert len(gets) == 1  # the backbone came once, then from the cache
    for got in (loaded, again):
        for k, v in model.state_dict().items():
            assert torch.equal(got.state_dict()[k], v), k
    with torch.no_grad():
        torch.testing.assert_close(loaded(formula_images(1, 56))["map"], model(formula_images(1, 56))["map"])


def test_prompt_checkpoint_without_backbone_is_one_line(base, tmp_path, monkeypatch):
    _, prompts = _split(base)
    path = tmp_path / "epoch_15.pth"
    torch.save({"prompt_learner": prompts}, path)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(ZooError) as info:
        create_model("anomalyclip-visa", checkpoint=str(path), **TINY, **TINY_RUN)
    text = str(info.value)
    assert "\n" not in text and "clip-vit-l-14-336-openai" in text and "zoo download" in text
    torch.save({"model": prompts}, path)  # not the official container: the card's weights_key is named
    with pytest.raises(ZooError, match="no 'prompt_learner' entry"):
        create_model("anomalyclip-visa", checkpoint=str(path), **TINY, **TINY_RUN)
    bad = tmp_path / "truncated.pth"
    buffer = io.BytesIO()
    torch.save({"prompt_learner": prompts}, buffer)
    bad.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ZooError, match="truncated.pth"):
        create_model("anomalyclip-visa", checkpoint=str(bad), **TINY, **TINY_RUN)


def test_bad_backbone_or_prompts_are_one_line_and_cache_nothing(base, tmp_path, monkeypatch):
    """A corrupted backbone download, timm's image-only file in its place, and prompts of another size:
    each stops with one line naming the problem, and no cache entry is written for the AnomalyCLIP card."""
    from zoo.weights import cache

    backbone, prompts = _split(base)
    path = tmp_path / "epoch_15.pth"
    torch.save({"prompt_learner": prompts}, path)
    timm_layout = {"patch_embed.proj.weight": torch.zeros(2, 3, 14, 14), "blocks.0.norm1.weight": torch.ones(2)}
    for i, (body, behaviour, needles) in enumerate((
        (save(backbone), {"corrupt": True}, ("clip-vit-l-14-336-openai", "sha256 mismatch")),
        (save(timm_layout), {}, ("timm's image-tower-only layout", "open_clip_model.safetensors")),
    )):
        monkeypatch.setenv("HF_HOME", str(tmp_path / f"hf{i}"))  # one Hub commit never changes: a new cache
        with HubServer() as hub:
            hub.add_hub(BACKBONE_REPO, BACKBONE_FILE, body, **behaviour)
            monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
            with pytest.raises(ZooError) as info:
                create_model("anomalyclip-visa", pretrained=False, checkpoint=str(path), **TINY, **TINY_RUN)
        text = str(info.value)
        assert "\n" not in text and all(n in text for n in needles), text
    assert cache.find(lookup.get_card("anomalyclip-visa")) is None
    other = {**prompts, "ctx_pos": torch.zeros(1, 1, 8, 128)}  # prompts of an n_ctx 8 learner
    torch.save({"prompt_learner": other}, path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-good"))
    with HubServer() as hub:
        hub.add_hub(BACKBONE_REPO, BACKBONE_FILE, save(backbone))
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        with pytest.raises(ZooError, match=r"shape differences: prompt_learner.ctx_pos \(1, 1, 8, 128\)") as info:
            create_model("anomalyclip-visa", checkpoint=str(path), **TINY, **TINY_RUN)
    assert "\n" not in str(info.value)


# -- cards ---------------------------------------------------------------------------------------------------


def test_cards_carry_the_official_test_settings():
    visa, mvtec = lookup.get_card("anomalyclip-visa"), lookup.get_card("anomalyclip-mvtec")
    for card, trained_on, checkpoint in ((visa, "visa", "9_12_4_multiscale/"), (mvtec, "mvtec-ad", "9_12_4_multiscale_visa/")):
        assert card.input_size == (3, 518, 518) and card.weights_key == "prompt_learner"
        assert card.fields["protocols"] == ["zero-shot"] and card.fields["trained_on"] == trained_on
        assert card.fields["map_smoothing"] == {"sigma": 4} and card.fields["metric_size"] == [518, 518]
        assert card.fields["pro_definition"] == "anomalyclip"
        assert card.preprocess.interpolation == "bicubic" and card.preprocess.crop_mode == "squash"
        assert tuple(card.preprocess.mean) == (0.48145466, 0.4578275, 0.40821073)
        assert tuple(card.preprocess.std) == (0.26862954, 0.26130258, 0.27577711)
        [source] = card.weights
        assert source.url.endswith(f"/45ed4dd35c05797d854294b5e8d585c545920089/checkpoints/{checkpoint}epoch_15.pth")
    figures = {claim: float(v) for claim, _d, _m, v in visa.reported.figures()}
    assert figures["mvtec-ad.image_auroc"] == 91.6 and figures["mvtec-ad.aupro"] == 81.4
    assert figures["mvtec-ad.per_category.transistor.pixel_auroc"] == 70.8
    figures = {claim: float(v) for claim, _d, _m, v in mvtec.reported.figures()}
    assert figures["visa.image_ap"] == 85.3 and figures["visa.per_category.pcb4.image_auroc"] == 93.9
    # the logged means are the rounded means of the logged categories (as test.py prints them)
    for card, dataset in ((visa, "mvtec-ad"), (mvtec, "visa")):
        rows = card.reported.tables[dataset]["per_category"]
        for metric, mean in card.reported.metrics[dataset].items():
            values = [float(row[metric]) for row in rows.values()]
            assert abs(sum(values) / len(values) - float(mean)) <= 0.1 + 1e-9, (card.name, metric)
    backbone = lookup.get_card("clip-vit-l-14-336-openai")
    [source] = backbone.weights
    assert (source.hub, source.file) == (BACKBONE_REPO, BACKBONE_FILE)
