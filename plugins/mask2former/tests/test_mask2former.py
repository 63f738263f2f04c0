"""The mask2former plugin: cards of the Mask Frozen-DETR table, the Hub key layout, the query-masks wrapper,
loading a Hub-format file strictly through zoo, a missing transformers, and ``zoo eval`` end to end.

Models here are tiny (``TINY``: a 16-wide one-block-per-stage Swin and a 32-wide head) or built on the
meta device (the real sizes, for keys and shapes only).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from zoo_mask2former import convert, model
from zoo_mask2former.variants import VARIANTS

import zoo
from zoo.cli import cli
from zoo.errors import BuildError, NotInstalled, ZooError
from zoo.registry import lookup

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from hubserver import HubServer  # noqa: E402

DATA = Path(__file__).parent / "data"
TINY = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=4, image_size=64, num_queries=5,
            feature_size=32, mask_feature_size=32, hidden_dim=32, encoder_feedforward_dim=32, encoder_layers=1,
            decoder_layers=2, num_attention_heads=2, dim_feedforward=32)
SWIN_CARDS = {"mask2former-swin-t": "swin-t", "mask2former-swin-s": "swin-s", "mask2former-swin-b": "swin-b",
              "mask2former-swin-l": "swin-l"}
CARD_ONLY = ("mask2former-r50", "knet-r50", "queryinst-swin-l", "mask-dino-r50", "mask-dino-swin-l",
             "mask-frozen-detr-r50", "mask-frozen-detr-swin-l")
MODEL_ZOO = "facebookresearch/Mask2Former MODEL_ZOO.md @ 9b0651c"
DECK = "Mask Frozen-DETR paper (arXiv 2308.03747) comparison table as shown in the ICLR 2024 deck"


@functools.cache
def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return model.mask2former_swin_t(num_classes=80, **TINY)


def _hub_layout(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``m``'s state dict in the Hub files' (transformers 4.x) names, by transformers' own save-time
    reversal (``revert_weight_conversion``): independent of zoo_mask2former.convert."""
    from transformers.core_model_loading import revert_weight_conversion

    return revert_weight_conversion(m, {k: v.clone() for k, v in m.state_dict().items()})


# -- cards -----------------------------------------------------------------------------------------------


def test_cards_validate_against_the_instance_segmentation_task():
    cat = lookup.catalog()
    assert not [e for e in cat.errors if "cards_coco_instance.yaml" in str(e)]
    assert cat.plugin_status("mask2former").problems == []
    for name, key in SWIN_CARDS.items():
        card = cat.get(name)
        assert (card.task, card.plugin, card.builder, card.num_classes) == (
            "instance-segmentation", "mask2former", f"mask2former_{key.replace('-', '_')}", 80)
        assert [(w.hub, w.file) for w in card.weights] == [(VARIANTS[key].hub, "pytorch_model.bin")]
        assert card.fields["head"] == "query-masks"
        assert card.fields["resize"] == {"shortest_edge": 800, "max_size": 1333, "size_divisibility": 32,
                                         "pad_value": 0}
        assert card.fields["postprocess"] == {"topk": 100, "mask_threshold": 0.0}
        assert [list(v) for v in card.fields["normalize"].values()] == [[123.675, 116.28, 103.53],
                                                                        [58.395, 57.12, 57.375]]
        assert card.license.startswith("CC BY-NC 4.0") and not card.card_only
    assert VARIANTS["swin-l"].num_queries == 200 and {v.num_queries for k, v in VARIANTS.items() if k != "swin-l"} == {100}
    for name in CARD_ONLY:
        card = cat.get(name)
        assert card.card_only and not card.weights and card.task == "instance-segmentation"
    assert "no code and no weights" in cat.get("mask-frozen-detr-r50").card_only.lower()
    assert "dl.fbaipublicfiles.com" in cat.get("mask2former-r50").card_only
    assert cat.get("mask2former-r50").license == "CC BY-NC 4.0 (Mask2Former MODEL_ZOO.md)"


def test_every_reported_number_has_its_source():
    cat = lookup.catalog()
    for name in (*SWIN_CARDS, *CARD_ONLY):
        reported = cat.get(name).reported
        figures = {metric: float(value) for _claim, _ds, metric, value in reported.figures()}
        assert figures and {ds for _c, ds, _m, _v in reported.figures()} == {"coco"}, name
        # MODEL_ZOO.md gives mask AP only: every other figure must come from the deck's table
        if set(figures) - {"mask_map"}:
            assert DECK in reported.source, name
        if name.startswith("mask2former-"):
            assert MODEL_ZOO in reported.source, name
        else:
            assert reported.source.startswith(DECK), name
    assert float(cat.get("mask2former-swin-l").reported.metrics["coco"]["mask_map"]) == 50.1
    assert str(cat.get("mask-frozen-detr-r50").reported.metrics["coco"]["mask_map_medium"]) == "47.0"


def test_card_only_rows_are_listed_and_say_why_they_do_not_run():
    runner = CliRunner()
    listed = runner.invoke(cli, ["list", "--plugin", "mask2former"], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line.split() for line in listed.output.splitlines()[2:] if line.strip()
            and not line.endswith("model(s)")}
    assert set(rows) == {*SWIN_CARDS, *CARD_ONLY}
    assert all(rows[name][-2] == "card-only" for name in CARD_ONLY)
    assert all(rows[name][-2] == "yes" for name in SWIN_CARDS)
    out = runner.invoke(cli, ["eval", "mask-frozen-detr-swin-l", "--dataset", "coco", "--data-dir", "/nonexistent"])
    assert out.exit_code == 2 and "card-only" in out.output and "Traceback" not in out.output, out.output


DECK_ROWS = {("K-Net-N256", "R50"): "knet-r50", ("QueryInst", "Swin-L"): "queryinst-swin-l",
             ("Mask2Former", "R50"): "mask2former-r50", ("Mask2Former", "Swin-L"): "mask2former-swin-l",
             ("Mask DINO", "R50"): "mask-dino-r50", ("Mask DINO", "Swin-L"): "mask-dino-swin-l",
             ("Mask Frozen-", "R50"): "mask-frozen-detr-r50", ("Mask Frozen-", "Swin-L"): "mask-frozen-detr-swin-l"}
DECK_COLUMNS = ("map", "mask_map", "mask_map50", "mask_map75", "mask_map_small", "mask_map_medium", "mask_map_large")
ZOO_ROWS = {"R50": "mask2former-r50", "Swin-T": "mask2former-swin-t", "Swin-S": "mask2former-swin-s",
            "Swin-B": "mask2former-swin-b", "Swin-L (IN21k)": "mask2former-swin-l"}


def test_card_figures_are_the_source_tables_verbatim():
    """Every figure of every card, traced to the committed verbatim excerpts of its sources
    (tests/data/sources: the deck's table, MODEL_ZOO.md @ 9b0651c): a transcription slip fails here."""
    cat = lookup.catalog()
    seen: dict[str, dict[str, str]] = {name: {} for name in (*SWIN_CARDS, *CARD_ONLY)}
    lines = (DATA / "sources" / "deck_mask_frozen_detr_table.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines[2:]]
    assert len(rows) == len(DECK_ROWS) and all(len(r) == 12 for r in rows)
    for method, backbone, epochs, o365, *figures, hours in rows:
        [name] = [card for (m, b), card in DECK_ROWS.items() if method.startswith(m) and backbone == b]
        card = cat.get(name)
        assert o365 == "\u2717" and f"{epochs} epochs" in card.reported.notes, name
        assert ("no GPU hours" if hours == "\u2014" else f"{hours} GPU hours") in card.reported.notes, name
        seen[name].update({m: v for m, v in zip(DECK_COLUMNS, figures, strict=True) if v != "\u2014"})
    html = (DATA / "sources" / "mask2former_model_zoo_instance.md").read_text(encoding="utf-8")
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        backbone, epochs, ap, boundary = re.findall(r'<td align="center">([^<]*)</td>', row)[:4]
        if backbone in ZOO_ROWS:
            name = ZOO_ROWS[backbone]
            assert seen[name].setdefault("mask_map", ap) == ap, name  # the deck repeats MODEL_ZOO's AP
            assert f"Boundary AP {boundary}" in cat.get(name).reported.notes and f"{epochs} epochs" in \
                cat.get(name).reported.notes, name
    for name, expected in seen.items():
        written = {metric: str(value) for _c, _d, metric, value in cat.get(name).reported.figures()}
        assert written == expected, name


# -- fidelity: the Hub files' keys ----------------------------------------------------------------------


def test_builders_hold_exactly_the_hub_checkpoints_tensors():
    """tests/data/hub_checkpoint_keys.json is ``{repo: {key: shape}}`` of the four
    ``facebook/mask2former-swin-*-coco-instance`` files' layout, generated outside the repo by
    tools/hub_manifest.py: transformers 4.26.1 (the version line that wrote them) building
    ``Mask2FormerForUniversalSegmentation`` with the HF conversion script's configs. Converted, they must be
    the builders' state dicts exactly; only ``relative_position_index`` (recomputed by transformers 5) is dropped."""
    manifest = json.loads((DATA / "hub_checkpoint_keys.json").read_text())
    assert set(manifest) == {v.hub for v in VARIANTS.values()}
    builders = {"swin-t": model.mask2former_swin_t, "swin-s": model.mask2former_swin_s,
                "swin-b": model.mask2former_swin_b, "swin-l": model.mask2former_swin_l}
    for key, variant in VARIANTS.items():
        hub = manifest[variant.hub]
        with torch.device("meta"):
            built = builders[key]()
        ours = {k: list(v.shape) for k, v in built.state_dict().items()}
        converted = convert.convert(hub)
        assert ours == converted, (key, sorted(set(ours) ^ set(converted))[:5])
        dropped = set(hub) - {k for k in hub if convert.rename(k) is not None}
        assert dropped and all(k.endswith("attention.self.relative_position_index") for k in dropped)
        assert len(dropped) == sum(variant.depths)
    assert manifest[VARIANTS["swin-l"].hub]["model.transformer_module.queries_features.weight"] == [200, 256]
    assert manifest[VARIANTS["swin-t"].hub]["class_predictor.weight"] == [81, 256]


def test_converter_is_transformers_own_reversal_inverted_pure_and_idempotent():
    tiny = _tiny_model()
    ours = tiny.state_dict()
    hub = _hub_layout(tiny)
    assert any(k.startswith("model.pixel_level_module.encoder.encoder.") for k in hub)  # the old layout
    frozen = dict(hub)
    converted = convert.convert(hub)
    assert hub == frozen  # not changed in place
    assert set(converted) == set(ours) and all(torch.equal(converted[k], ours[k]) for k in ours)
    assert convert.convert(converted) == converted
    outside = {k: v for k, v in hub.items() if not k.startswith(convert.BACKBONE)}
    assert {k: converted[k] for k in outside} == outside
    mixed = {**hub, **{k: v for k, v in converted.items() if ".swin." in k}}
    with pytest.raises(ValueError, match="both map to"):
        convert.convert(mixed)


# -- the model ------------------------------------------------------------------------------------------


def test_tiny_model_returns_the_query_masks_pair_the_task_accepts():
    tiny = _tiny_model()
    with torch.no_grad():
        out = tiny(torch.randn(2, 3, 64, 96))
    assert isinstance(out, tuple) and len(out) == 2
    class_logits, mask_logits = out
    assert class_logits.shape == (2, 5, 81) and mask_logits.shape == (2, 5, 16, 24)
    assert isinstance(tiny.model.pixel_level_module.encoder.swin.layernorm, torch.nn.Identity)
    from zoo_detection.evaluate import check_output

    check_output(lookup.get_card("mask2former-swin-t"), out, 2)
    with pytest.raises(ValueError, match="class_logits shape"):
        check_output(lookup.get_card("mask2former-swin-t"), (class_logits[..., :10], mask_logits), 2)


def test_unknown_builder_option_is_one_build_error():
    with pytest.raises(BuildError, match="unknown Mask2Former option 'embed_dims'"):
        zoo.create_model("mask2former-swin-t", embed_dims=16)


def test_hub_file_loads_strictly_through_the_zoo_cache(tmp_path, monkeypatch):
    """The card's weights entry (hub repo + pytorch_model.bin) fetched from a local Hub, read with
    weights_only, converted and loaded strictly; outputs equal the model the file was saved from."""
    tiny = _tiny_model()
    path = tmp_path / "pytorch_model.bin"
    torch.save(_hub_layout(tiny), path)
    with HubServer() as hub:
        hub.add_hub(VARIANTS["swin-t"].hub, "pytorch_model.bin", path.read_bytes())
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        loaded = zoo.create_model("mask2former-swin-t", pretrained=True, **TINY)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(loaded(x), tiny(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # a file that lacks a tensor, has one too many, or one of another shape: one error naming the key
    good = _hub_layout(tiny)
    extra_key = "model.pixel_level_module.encoder.encoder.layers.0.blocks.0.attention.self.extra.weight"
    for name, broken in {
        "class_predictor.weight": {k: v for k, v in good.items() if k != "class_predictor.weight"},
        extra_key.replace(".encoder.encoder.", ".encoder.swin.encoder."):  # named as converted
            {**good, extra_key: torch.zeros(1)},
        "model.transformer_module.queries_features.weight":
            {**good, "model.transformer_module.queries_features.weight": torch.zeros(7, 32)},
    }.items():
        torch.save(broken, tmp_path / "broken.bin")
        with pytest.raises(ZooError) as info:
            zoo.create_model("mask2former-swin-t", checkpoint=str(tmp_path / "broken.bin"), **TINY)
        assert name in str(info.value) and "Traceback" not in str(info.value), str(info.value)


def test_missing_or_old_transformers_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers raises ImportError
    model._query_masks_class.cache_clear()
    with pytest.raises(NotInstalled) as info:
        zoo.create_model("mask2former-swin-t", **TINY)
    text = str(info.value)
    assert "\n" not in text and "pip install 'transformers>=5.24'" in text
    monkeypatch.setitem(sys.modules, "transformers", type(sys)("transformers"))
    sys.modules["transformers"].__version__ = "4.46.3"
    with pytest.raises(NotInstalled, match=r"needs transformers>=5.24 .*found 4.46.3"):
        model.mask2former_swin_s(**TINY)
    model._query_masks_class.cache_clear()


# -- zoo eval end to end ----------------------------------------------------------------------------------


def test_zoo_eval_runs_on_generated_coco_json(tmp_path, monkeypatch):
    """``zoo eval mask2former-swin-t --dataset coco-json:IMAGES,ANN --no-pretrained`` with the builder's
    variant made tiny: Detectron2 resize to 800, padding, the query-masks post-processing and COCOeval.
    The random model's mask AP is whatever it is; it must be pycocotools' own on the saved predictions."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from zoo_detection.demo import make_instance_demo

    root = make_instance_demo(tmp_path / "coco", n_images=2, n_classes=3, seed=3)
    monkeypatch.setitem(VARIANTS, "swin-t", dataclasses.replace(
        VARIANTS["swin-t"], **{k: v for k, v in TINY.items() if k not in model.HEAD}))
    monkeypatch.setattr(model, "HEAD", {**model.HEAD, **{k: v for k, v in TINY.items() if k in model.HEAD}})
    annotations = root / "annotations" / "instances_val2017.json"
    preds = tmp_path / "preds.json"
    torch.manual_seed(4)  # a random model that finds some of the objects (mask AP > 0)
    out = CliRunner().invoke(cli, ["eval", "mask2former-swin-t", "--dataset", f"coco-json:{root / 'val2017'},{annotations}",
                                   "--no-pretrained", "--device", "cpu", "--workers", "0", "--json",
                                   "--save-predictions", str(preds)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["model"] == "mask2former-swin-t" and result["images"] == 2 and result["detections"] > 0
    assert result["reported_mask_map"] is None  # the card claims "coco" (val2017), not this set
    assert result["map"] is None  # a query-masks head gives no boxes
    gt = COCO(str(annotations))
    ev = COCOeval(gt, gt.loadRes(str(preds)), "segm")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert result["mask_map"] == pytest.approx(max(ev.stats[0], 0) * 100, abs=1e-3)
    assert 0 < result["mask_map"] < 100
