"""Card audit (#10 items 14, 17, 18, 19, 21): every claim is paired with the weights and the evaluation that made it.

The rules live in :func:`audit_problems`, a pure function over a parsed card document, so the same rules are run on
the shipped registry (must be clean) and on small hand-made cards that repeat the faults the audit found (must be
caught). docs/card-audit.md records the audit per card; the last test keeps it and the registry in step.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from zoo.registry.cards import Card, Document, parse_document, read_yaml
from zoo.registry.catalog import core_registry_path

AUDIT_DOC = Path(__file__).resolve().parent.parent / "docs" / "card-audit.md"

# timm's own ImageNet-1k top-1 for the tags the registry uses, from results/results-imagenet.csv of
# huggingface/pytorch-image-models @ aa4b5850 (2026-08-08), row at the tag's default size:
# (top1, img_size, crop_pct, interpolation) as printed there.
TIMM_RESULTS: dict[str, tuple[str, int, float, str]] = {
    "deit_tiny_distilled_patch16_224.fb_in1k": ("74.538", 224, 0.9, "bicubic"),
    "deit_small_patch16_224.fb_in1k": ("79.856", 224, 0.9, "bicubic"),
    "deit_base_patch16_224.fb_in1k": ("81.980", 224, 0.9, "bicubic"),
    "vit_small_patch16_224.augreg_in21k_ft_in1k": ("81.402", 224, 0.9, "bicubic"),
    "vit_base_patch16_224.augreg_in21k_ft_in1k": ("84.534", 224, 0.9, "bicubic"),
    "vit_large_patch16_224.augreg_in21k_ft_in1k": ("85.856", 224, 0.9, "bicubic"),
    "swin_tiny_patch4_window7_224.ms_in1k": ("81.388", 224, 0.9, "bicubic"),
    "swin_small_patch4_window7_224.ms_in1k": ("83.228", 224, 0.9, "bicubic"),
    "swin_base_patch4_window7_224.ms_in1k": ("83.604", 224, 0.9, "bicubic"),
    "convnext_tiny.fb_in1k": ("82.066", 224, 0.875, "bicubic"),
    "convnext_small.fb_in1k": ("83.144", 224, 0.875, "bicubic"),
    "convnext_base.fb_in1k": ("83.838", 224, 0.875, "bicubic"),
    "twins_svt_base.in1k": ("83.122", 224, 0.9, "bicubic"),
    "twins_svt_large.in1k": ("83.718", 224, 0.9, "bicubic"),
    "mobilenetv2_100.ra_in1k": ("72.910", 224, 0.875, "bicubic"),
    "mobilenetv2_140.ra_in1k": ("76.528", 224, 0.875, "bicubic"),
    "fasternet_t0.in1k": ("71.732", 224, 1.0, "bicubic"),
    "fasternet_t1.in1k": ("75.922", 224, 1.0, "bicubic"),
    "fasternet_t2.in1k": ("78.738", 224, 1.0, "bicubic"),
    "mobileone_s1.apple_in1k": ("75.760", 224, 0.9, "bilinear"),
    "mobileone_s2.apple_in1k": ("77.504", 224, 0.9, "bilinear"),
    "mobileone_s4.apple_in1k": ("79.446", 224, 0.9, "bilinear"),
    "mobilevit_xs.cvnets_in1k": ("74.618", 256, 0.9, "bicubic"),
    "mobilevitv2_100.cvnets_in1k": ("78.088", 256, 0.888, "bicubic"),
    "mobilevitv2_150.cvnets_in1k": ("80.380", 256, 0.888, "bicubic"),
    "efficientformerv2_s0.snap_dist_in1k": ("76.102", 224, 0.95, "bicubic"),
    "efficientformerv2_s1.snap_dist_in1k": ("79.684", 224, 0.95, "bicubic"),
    "efficientformerv2_s2.snap_dist_in1k": ("82.156", 224, 0.95, "bicubic"),
    "efficientformer_l1.snap_dist_in1k": ("80.502", 224, 0.95, "bicubic"),
    "tf_efficientnet_b0.aa_in1k": ("76.882", 224, 0.875, "bicubic"),
    "poolformer_s12.sail_in1k": ("77.238", 224, 0.9, "bicubic"),
}
# Two measurements of the same checkpoint under slightly different evaluations (crop, resize library, precision)
# stay within a few tenths; other training runs of the architecture (300 vs 450 epochs, distilled or not, the
# paper's recipe vs timm's) differ by more. Largest same-weights gap in the registry: 0.302 (EfficientFormer-L1,
# official crop 0.875 vs timm's 0.95). Smallest other-weights gap the audit found: 0.402 (EfficientFormerV2-S0).
SAME_WEIGHTS_TOLERANCE = 0.35
REPARAMETERISABLE = re.compile(r"mobileone|repvgg|fastvit|repvit|yolov6")
TIMM_HUB = re.compile(r"^timm/(?P<arch>[^.]+)\.(?P<tag>.+)$")
LINK_ID = re.compile(r"https?://\S*?/(?:folders|d|s)/(?P<id>[A-Za-z0-9_-]{10,})")


def _weights_named(card: Card) -> list[str]:
    """What a claim's source must name for the card's weights (any one of them)."""
    if card.weights:
        source = card.weights[0]
        match = TIMM_HUB.match(source.hub or "")
        return [f"timm tag {match['tag']}"] if match else [source.filename]
    return LINK_ID.findall(card.weights_note or "")  # hand-registered: the README link the note gives


def audit_problems(doc: Document) -> list[str]:
    """Every way a card's claims and its weights or evaluation disagree without the card saying why."""
    problems: list[str] = []
    for name, card in doc.cards.items():
        pre = card.preprocess
        if not (pre.source or "").strip():
            problems.append(f"{name}: preprocess has no source")
        for dataset, override in pre.by_dataset.items():
            if override.source == pre.source:
                problems.append(f"{name}: preprocess.by_dataset.{dataset} gives no source of its own")
        if pre.timm is not None and not (pre.timm.source or "").strip():
            problems.append(f"{name}: preprocess.timm has no source")
        reported = card.reported
        if reported is None:
            continue
        if REPARAMETERISABLE.search(card.builder) and (reported.params_m is not None or reported.gmacs is not None) \
                and reported.form != "deploy":
            problems.append(f"{name}: {card.builder} is re-parameterisable; say reported.form: deploy (or train)")
        claims = {f"{dataset}.{metric}": value for dataset, values in reported.metrics.items()
                  for metric, value in values.items()}
        for item in reported.other_weights:
            claim = item["claim"]
            if claim not in claims and claim not in ("params_m", "gmacs"):
                problems.append(f"{name}: other_weights names {claim!r}, which the card does not claim")
            elif claim in claims and float(item["value"]) == float(claims[claim]):
                problems.append(f"{name}: other_weights repeats the testable {claim} {item['value']}")
        if not claims:
            continue
        named = _weights_named(card)
        if named and ("Weights:" not in reported.source or not any(n in reported.source for n in named)):
            problems.append(f"{name}: reported.source does not say which weights its claims belong to "
                            f"(expected 'Weights:' and {' or '.join(repr(n) for n in named)})")
        match = TIMM_HUB.match(card.weights[0].hub or "") if card.weights else None
        top1 = reported.top1()
        if match and top1 is not None and card.patch is None:
            tag = f"{match['arch']}.{match['tag']}"
            if tag not in TIMM_RESULTS:
                problems.append(f"{name}: no timm measurement of {tag} recorded in TIMM_RESULTS")
            elif "imagenet.top1" not in card.deviations:
                timm_top1 = float(TIMM_RESULTS[tag][0])
                if abs(float(top1) - timm_top1) > SAME_WEIGHTS_TOLERANCE:
                    problems.append(f"{name}: claims top-1 {top1.text} but timm measures {tag} at {timm_top1:.3f}: "
                                    f"the claim belongs to other weights (move it to other_weights) unless "
                                    f"deviations['imagenet.top1'] explains it")
    return problems


@pytest.fixture(scope="module")
def doc() -> Document:
    path = core_registry_path()
    return parse_document(str(path), read_yaml(path))


def test_shipped_registry_passes_the_audit(doc) -> None:
    assert doc.errors == []
    assert audit_problems(doc) == []


# -- the rules catch the faults the audit found (cards as they were before the audit) -------------------------

PAPERS = """
papers:
  demo: {title: Demo, venue: ICLR 2024}
models:
"""


def _doc(tmp_path, body: str) -> Document:
    path = tmp_path / "cards.yaml"
    path.write_text(PAPERS + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n")
    parsed = parse_document(str(path), read_yaml(path))
    assert parsed.errors == []
    return parsed


OLD_L1 = """
efficientformer-l1:
  paper: demo
  task: image-classification
  plugin: timm-baselines
  builder: efficientformer_l1
  preprocess: {interpolation: bicubic, crop_pct: 0.95, mean: imagenet, std: imagenet}
  weights:
    - {hub: timm/efficientformer_l1.snap_dist_in1k, file: model.safetensors}
  reported:
    source: "EfficientMod paper Table 2 via ICLR'24 deck (EfficientFormer-L1 row); README: 79.2 (80.2 at 1000 epochs)"
    imagenet: {top1: 79.2}
"""


def test_pre_audit_card_is_caught_on_every_count(tmp_path) -> None:
    problems = audit_problems(_doc(tmp_path, OLD_L1))
    assert problems == [
        "efficientformer-l1: preprocess has no source",
        "efficientformer-l1: reported.source does not say which weights its claims belong to "
        "(expected 'Weights:' and 'timm tag snap_dist_in1k')",
        "efficientformer-l1: claims top-1 79.2 but timm measures efficientformer_l1.snap_dist_in1k at 80.502: "
        "the claim belongs to other weights (move it to other_weights) unless deviations['imagenet.top1'] explains it",
    ]


FIXED_L1 = """
efficientformer-l1:
  paper: demo
  task: image-classification
  plugin: timm-baselines
  builder: efficientformer_l1
  preprocess:
    crop_pct: 0.875
    source: "snap-research/EfficientFormer util/datasets.py:111-116"
    timm: {crop_pct: 0.95, source: "timm efficientformer.py _cfg"}
  weights:
    - {hub: timm/efficientformer_l1.snap_dist_in1k, file: model.safetensors}
  reported:
    source: "EfficientFormer README '79.2 (80.2)'. Weights: timm tag snap_dist_in1k = the L1-1000 checkpoint"
    imagenet: {top1: %s}
    other_weights:
      - {claim: imagenet.top1, value: 79.2, source: "README", why: "the 300-epoch model"}
"""


def test_fixed_card_passes_and_a_number_for_other_weights_does_not(tmp_path) -> None:
    assert audit_problems(_doc(tmp_path, FIXED_L1 % "80.2")) == []
    # the 300-epoch figure as the testable claim again: too far from timm's own measurement, and a repeat
    problems = audit_problems(_doc(tmp_path, FIXED_L1 % "79.2"))
    assert problems == [
        "efficientformer-l1: other_weights repeats the testable imagenet.top1 79.2",
        "efficientformer-l1: claims top-1 79.2 but timm measures efficientformer_l1.snap_dist_in1k at 80.502: "
        "the claim belongs to other weights (move it to other_weights) unless deviations['imagenet.top1'] explains it",
    ]


def test_a_deviation_can_explain_a_distant_claim_and_patched_cards_are_exempt(tmp_path) -> None:
    explained = FIXED_L1.replace("    other_weights:\n      - {claim: imagenet.top1, value: 79.2, source: \"README\", "
                                 "why: \"the 300-epoch model\"}\n", "")
    explained += "  deviations:\n    imagenet.top1: \"evaluated with another resize library, 1.3 points apart\"\n"
    assert audit_problems(_doc(tmp_path, explained % "79.2")) == []
    patched = FIXED_L1.replace("  builder: efficientformer_l1\n", "  builder: efficientformer_l1\n  patch: \"tome:r=8\"\n")
    assert audit_problems(_doc(tmp_path, patched % "75.0")) == []


def test_untabled_timm_tag_and_wrong_tag_are_caught(tmp_path) -> None:
    other_tag = (FIXED_L1 % "80.2").replace("efficientformer_l1.snap_dist_in1k", "efficientformer_l1.other_in1k")
    problems = audit_problems(_doc(tmp_path, other_tag))
    assert problems == [
        "efficientformer-l1: reported.source does not say which weights its claims belong to "
        "(expected 'Weights:' and 'timm tag other_in1k')",
        "efficientformer-l1: no timm measurement of efficientformer_l1.other_in1k recorded in TIMM_RESULTS",
    ]


HAND_ADDED = """
coc-small:
  paper: demo
  task: image-classification
  plugin: context-cluster
  builder: coc_small
  preprocess: {crop_pct: 0.9, source: "context_cluster.py default_cfgs", by_dataset: {imagenet-a: {crop_pct: 0.875}}}
  weights_note: "Download https://drive.google.com/drive/folders/19zbCOS33We7HOjL575Di5wyuLbnDebdE by hand."
  reported:
    source: "%s"
    imagenet: {top1: 78.1}
    imagenet-a: {top1: 20.0}
"""


def test_hand_added_weights_name_the_readme_link_and_overrides_their_source(tmp_path) -> None:
    problems = audit_problems(_doc(tmp_path, HAND_ADDED % "Context-Cluster README (updated table)"))
    assert problems == [
        "coc-small: preprocess.by_dataset.imagenet-a gives no source of its own",
        "coc-small: reported.source does not say which weights its claims belong to "
        "(expected 'Weights:' and '19zbCOS33We7HOjL575Di5wyuLbnDebdE')",
    ]
    named = HAND_ADDED % "README row, Drive folder 19zbCOS33We7HOjL575Di5wyuLbnDebdE. Weights: that checkpoint"
    assert audit_problems(_doc(tmp_path, named.replace("{crop_pct: 0.875}", "{crop_pct: 0.875, source: \"README\"}"))) == []


REPARAM = """
mobileone-s4:
  paper: demo
  task: image-classification
  plugin: timm-baselines
  builder: mobileone_s4
  preprocess: {crop_pct: 0.9, source: "timm byobnet.py", timm: {crop_pct: 0.875}}
  reported:
    source: "MobileOne README"
    params_m: 14.8
    other_weights:
      - {claim: imagenet.top5, value: 94.0, source: "x", why: "y"}
"""


def test_reparameterisable_cards_state_their_form_and_other_weights_name_real_claims(tmp_path) -> None:
    assert audit_problems(_doc(tmp_path, REPARAM)) == [
        "mobileone-s4: preprocess.timm has no source",
        "mobileone-s4: mobileone_s4 is re-parameterisable; say reported.form: deploy (or train)",
        "mobileone-s4: other_weights names 'imagenet.top5', which the card does not claim",
    ]


# -- the audit record and the registry agree ---------------------------------------------------------------------


def _audit_rows() -> dict[str, list[str]]:
    lines = AUDIT_DOC.read_text(encoding="utf-8").splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("| card |")):]
    lines = [line for line in lines if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:3] == ["card", "weights", "top-1 claim"] and header[7] == "weights_key", header
    rows: dict[str, list[str]] = {}
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if len(cells) == len(header) and cells[0] not in rows and re.fullmatch(r"[a-z0-9.-]+", cells[0]):
            rows[cells[0]] = cells
    return rows


def test_audit_doc_has_one_row_per_card_matching_the_registry(doc) -> None:
    rows = _audit_rows()
    assert sorted(rows) == sorted(doc.cards)
    mismatches = []
    for name, card in doc.cards.items():
        weights, claim, key = rows[name][1], rows[name][2], rows[name][7]
        if card.weights:
            source = card.weights[0]
            expected = source.hub if (source.hub or "").startswith("timm/") else (
                f"{source.hub}/{source.filename}" if source.hub else source.filename)
            if weights != f"`{expected}`":
                mismatches.append((name, "weights", weights, expected))
        elif not weights.startswith("none"):
            mismatches.append((name, "weights", weights, "none ..."))
        top1 = card.reported.top1() if card.reported else None
        if claim != (top1.text if top1 is not None else "-"):
            mismatches.append((name, "top-1", claim, top1))
        if not key.startswith(f"`{card.weights_key}`" if card.weights_key else "default"):
            mismatches.append((name, "weights_key", key, card.weights_key))
    assert mismatches == []
