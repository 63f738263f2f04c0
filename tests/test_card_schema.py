"""Card files and the #10 schema: printed figures, per-dataset preprocessing, hostile card files."""

from __future__ import annotations

import json
import math
import textwrap
import time

import pytest

import zoo.registry.cards
from zoo.errors import CardError
from zoo.registry.cards import Figure, parse_document, printed_decimals, read_yaml, to_figure
from zoo.registry.catalog import build_catalog

HEAD = """
papers:
  demo: {title: "A Demo Paper", venue: ICLR 2024}
models:
"""

CARD = """
  demo-s:
    paper: demo
    task: image-classification
    plugin: demo-plugin
    builder: tiny
    input_size: [3, 256, 256]
    preprocess:
      interpolation: bilinear
      resize_size: 288
      mean: zero-one
      std: zero-one
      source: "cvnets config: resize 288 bilinear, center crop 256"
      timm: {interpolation: bicubic, crop_pct: 0.9}
      by_dataset:
        imagenet-a: {crop_pct: 0.875, source: "README: robustness at 0.875"}
        imagenet-r: {interpolation: bicubic}
    reported:
      source: "Demo paper, Table 1"
      imagenet: {top1: 75.70, top5: 92}
      imagenet-a: {top1: "14.0"}
      imagenet-r: {top1: 40.5}
      params_m: 14.0
      gmacs: "0.60"
      throughput: {value: 3161.0, device: A100, batch_size: 128}
      latency: [{value: 1.50, device: iPhone 12}]
      other_weights: [{claim: imagenet.top1, value: 75.0, source: deck, why: "300-epoch weights"}]
"""


def write(tmp_path, body: str, name: str = "cards.yaml"):
    path = tmp_path / name
    path.write_text(HEAD + textwrap.dedent(body).strip("\n").replace("\n", "\n  ").join(["  ", "\n"]))
    return path


def parse(path):
    return parse_document(str(path), read_yaml(path))


def reported_figures(card) -> dict[str, Figure]:
    rep = card.reported
    figures = {"params_m": rep.params_m, "gmacs": rep.gmacs, "throughput": rep.throughput["value"],
               "latency": rep.latency[0]["value"], "other": rep.other_weights[0]["value"]}
    figures.update({f"{d}.{m}": v for d, values in rep.metrics.items() for m, v in values.items()})
    return figures


EXPECTED_TEXT = {"params_m": "14.0", "gmacs": "0.60", "throughput": "3161.0", "latency": "1.50", "other": "75.0",
                 "imagenet.top1": "75.70", "imagenet.top5": "92", "imagenet-a.top1": "14.0", "imagenet-r.top1": "40.5"}


# -- item 13: reported numbers keep the precision the source printed ---------------------------------


def test_reported_numbers_keep_their_printed_text_on_cache_miss_and_hit(tmp_path, monkeypatch):
    path = write(tmp_path, CARD)
    miss = parse(path)
    assert miss.errors == []

    def no_yaml(*args):
        raise AssertionError("the YAML parser ran on an unchanged file")

    monkeypatch.setattr(zoo.registry.cards, "_parse_yaml", no_yaml)
    hit = parse(path)  # from the JSON cache
    for doc in (miss, hit):
        figures = reported_figures(doc.cards["demo-s"])
        assert all(isinstance(v, Figure) for v in figures.values()), figures
        assert {k: v.text for k, v in figures.items()} == EXPECTED_TEXT
        assert figures["params_m"] == 14.0 and figures["imagenet.top1"] == 75.7
        assert printed_decimals(figures["params_m"]) == 1
        assert printed_decimals(figures["imagenet.top1"]) == 2
        assert printed_decimals(figures["imagenet.top5"]) == 0
        assert printed_decimals(figures["imagenet-a.top1"]) == 1  # quoted "14.0"
        assert doc.cards["demo-s"].reported.top1() == 75.7 and doc.cards["demo-s"].reported.top1().text == "75.70"


def test_a_cache_of_the_old_format_is_ignored(tmp_path):
    path = write(tmp_path, CARD)
    read_yaml(path)
    cached = zoo.registry.cards._cache_file(path)
    saved = json.loads(cached.read_text())
    assert saved["format"] == zoo.registry.cards.CACHE_FORMAT
    # what the previous format wrote: the same stamp, floats as bare JSON numbers (14.0 -> "14.0" lost)
    old = {"stamp": saved["stamp"], "data": {"papers": {}, "models": {}}}
    cached.write_text(json.dumps(old))
    assert "demo-s" in parse(path).cards  # re-parsed, not taken from the old cache


@pytest.mark.parametrize("junk", ["{", '{"format": 2, "stamp": "x"}', '{"__figure__": [1, 2]}', "[" * 100_000,
                                  '{"format": 2, "stamp": "STAMP", "data": {"__figure__": [1, 2]}}'])
def test_a_corrupt_cache_is_parsed_again(tmp_path, junk):
    path = write(tmp_path, CARD)
    read_yaml(path)
    cached = zoo.registry.cards._cache_file(path)
    cached.write_text(junk.replace("STAMP", json.loads(cached.read_text())["stamp"]))
    assert parse(path).cards["demo-s"].reported.params_m.text == "14.0"
    assert json.loads(cached.read_text())["format"] == zoo.registry.cards.CACHE_FORMAT  # and rewritten


def test_cache_keeps_mappings_that_look_like_markers(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text('a: {__figure__: [1, "x"]}\nb: {__map__: 3}\nc: [1.50, {__figure__: 2.0}]\n')
    miss = read_yaml(path)
    hit = read_yaml(path)
    assert hit == miss == {"a": {"__figure__": [1, "x"]}, "b": {"__map__": 3}, "c": [1.5, {"__figure__": 2.0}]}
    assert isinstance(hit["c"][0], Figure) and hit["c"][0].text == "1.50"
    assert isinstance(hit["c"][1]["__figure__"], Figure)


@pytest.mark.parametrize("value, problem", [
    ("five", "expected number, got str 'five'"),
    ('"1.2.3"', "expected number, got str '1.2.3'"),
    ('""', "expected number, got str ''"),
    ('"1__0"', "expected number, got str '1__0'"),
    (".inf", "expected a finite number, got '.inf'"),
    (".nan", "expected a finite number, got '.nan'"),
    ("true", "expected number, got bool True"),
    ("[1]", "expected number, got list [1]"),
])
def test_bad_reported_numbers_are_located(tmp_path, value, problem):
    bad = CARD.replace("demo-s", "bad-s").replace("params_m: 14.0", f"params_m: {value}")
    doc = parse(write(tmp_path, CARD + bad))
    assert list(doc.cards) == ["demo-s"]
    [error] = doc.errors
    assert str(error) == f"{tmp_path / 'cards.yaml'}: bad-s: reported.params_m: {problem}"


def test_to_figure_of_plain_numbers():
    assert to_figure(3).text == "3" and to_figure(14.0).text == "14.0" and to_figure(" 0.50 ").text == "0.50"
    assert to_figure("1e-3") == 0.001 and printed_decimals(to_figure("1e-3")) == 3


# -- item 19: per-dataset preprocessing, official settings with timm's beside them ----------------------


def test_preprocess_source_timm_and_by_dataset(tmp_path):
    card = parse(write(tmp_path, CARD)).cards["demo-s"]
    pre = card.preprocess
    assert pre.resize_size == 288 and math.floor(256 / pre.crop_pct) == 288
    assert pre.interpolation == "bilinear" and pre.mean == (0.0, 0.0, 0.0)
    assert pre.source.startswith("cvnets config")
    # timm's own config: merged over the card's values, without the official source
    assert (pre.timm.interpolation, pre.timm.crop_pct, pre.timm.resize_size, pre.timm.mean, pre.timm.source) == (
        "bicubic", 0.9, None, (0.0, 0.0, 0.0), None)
    assert card.preprocess_for("imagenet") is pre and card.preprocess_for(None) is pre
    a = card.preprocess_for("imagenet-a")
    assert (a.crop_pct, a.resize_size, a.interpolation, a.source) == (0.875, None, "bilinear", "README: robustness at 0.875")
    r = card.preprocess_for("imagenet-r")
    assert (r.interpolation, r.resize_size, r.crop_pct, r.source) == ("bicubic", 288, pre.crop_pct, pre.source)
    assert card.preprocess_for("folder") is pre


def test_eval_transform_uses_the_dataset_entry(tmp_path):
    from zoo.tasks.classification.data.transforms import EvalPreprocess

    card = parse(write(tmp_path, CARD)).cards["demo-s"]
    assert EvalPreprocess.from_card(card).scale == (288, 288)
    assert EvalPreprocess.from_card(card, "imagenet").scale == (288, 288)
    assert EvalPreprocess.from_card(card, "imagenet-a").scale == (292, 292)  # floor(256 / 0.875)
    assert EvalPreprocess.from_card(card, "imagenet-r").interpolation == "bicubic"


def test_resize_size_is_exact_in_timms_arithmetic():
    from zoo.registry.cards import crop_pct_for_resize

    for size in range(16, 600):
        for resize in range(size, 2 * size + 1, 7):
            assert math.floor(size / crop_pct_for_resize(size, resize)) == resize
    assert math.floor(33 / crop_pct_for_resize(33, 54)) == 54  # 33 / (33 / 54) is 53.99...


@pytest.mark.parametrize("preprocess, field, problem", [
    ("{crop_pct: 0.9, resize_size: 288}", "preprocess.resize_size", "give crop_pct or resize_size, not both"),
    ("{resize_size: 200}", "preprocess.resize_size", "expected at least the crop size 256, got 200"),
    ("{resize_size: 288.0}", "preprocess.resize_size", "expected integer, got float 288.0"),
    ("{source: ''}", "preprocess.source", "expected a non-empty string"),
    ("{timm: [1]}", "preprocess.timm.", "expected a mapping, got list"),
    ("{timm: {}}", "preprocess.timm.", "expected the fields that differ"),
    ("{timm: {crop_pct: 1.5}}", "preprocess.timm.crop_pct", "expected a number in (0, 1], got 1.5"),
    ("{timm: {by_dataset: {}}}", "preprocess.timm.by_dataset", "unknown field"),
    ("{by_dataset: [1]}", "preprocess.by_dataset", "expected mapping, got list"),
    ("{by_dataset: {imagenet-a: {}}}", "preprocess.by_dataset.imagenet-a.", "expected the fields that differ"),
    ("{by_dataset: {imagenet-a: {crop_mode: diagonal}}}", "preprocess.by_dataset.imagenet-a.crop_mode",
     "expected one of center, squash, border, got 'diagonal'"),
    ("{by_dataset: {imagenet-a: {timm: {crop_pct: 0.9}}}}", "preprocess.by_dataset.imagenet-a.timm", "unknown field"),
    ("{by_dataset: {imagenet_a: {crop_pct: 0.9}}}", "preprocess.by_dataset.imagenet_a",
     "no claim on 'imagenet_a' under reported: (claims: imagenet, imagenet-a, imagenet-r)"),
    ("{by_dataset: {Bad Name: {crop_pct: 0.9}}}", "preprocess.by_dataset.Bad Name", "expected a dataset name"),
])
def test_bad_preprocess_is_located_and_other_cards_survive(tmp_path, preprocess, field, problem):
    bad = CARD.replace("demo-s", "bad-s")
    start = bad.index("    preprocess:")
    end = bad.index("    reported:")
    bad = bad[:start] + f"    preprocess: {preprocess}\n" + bad[end:]
    path = write(tmp_path, CARD + bad)
    doc = parse(path)
    assert list(doc.cards) == ["demo-s"]
    [error] = doc.errors
    assert str(error).startswith(f"{path}: bad-s: {field}: ") and problem in str(error), str(error)
    assert "\n" not in str(error)


def test_resize_size_needs_a_square_input(tmp_path):
    bad = CARD.replace("demo-s", "bad-s").replace("[3, 256, 256]", "[3, 256, 320]")
    [error] = parse(write(tmp_path, bad)).errors
    assert (error.entry, error.field) == ("bad-s", "preprocess.resize_size") and "square input_size" in str(error)


# -- items 8 and 11: hostile card files are refused with one line; the other cards load ---------------

LAUGHS = "".join(
    [f"l0: &l0 [{', '.join(['lol'] * 10)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)]
)


def _plugin_with_cards(install_plugin, name: str, text: str):
    init = ("from importlib import resources\nfrom zoo import hookimpl\n\n@hookimpl\ndef zoo_cards():\n"
            "    return [resources.files(__name__) / 'cards.yaml']\n")
    package = f"zoo_thirdparty_{name}"
    site = install_plugin(f"zoo-thirdparty-{name}", {name: package},
                          {f"{package}/__init__.py": init, f"{package}/cards.yaml": text})
    return site / package / "cards.yaml"


def test_billion_laughs_is_refused_fast_and_other_cards_load(install_plugin):
    path = _plugin_with_cards(install_plugin, "laughs", LAUGHS)
    started = time.perf_counter()
    with pytest.raises(CardError) as info:
        read_yaml(path)
    assert time.perf_counter() - started < 1.0
    assert str(info.value).startswith(f"{path}: YAML aliases would repeat ")
    assert str(info.value).endswith("nodes (limit 10000); refused")
    started = time.perf_counter()
    catalog = build_catalog()
    assert time.perf_counter() - started < 30
    assert [str(e) for e in catalog.errors if str(path) in str(e)] == [str(info.value)]
    assert "convnext-t" in catalog.cards and "fastervit-2" in catalog.cards
    assert not zoo.registry.cards._cache_file(path).exists()  # nothing half-written in the cache


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("models: &m {x: *m}\n")
    with pytest.raises(CardError, match=r"loop\.yaml: YAML alias refers to itself"):
        read_yaml(path)


def test_small_aliases_are_still_allowed(tmp_path):
    shared = CARD.replace("    preprocess:\n", "    preprocess: &pre\n").replace("    reported:\n", "    reported: &rep\n")
    alias = CARD.replace("demo-s", "demo-t").split("    preprocess:")[0] + "    preprocess: *pre\n    reported: *rep\n"
    doc = parse(write(tmp_path, shared + alias))
    assert doc.errors == []
    assert doc.cards["demo-t"].preprocess == doc.cards["demo-s"].preprocess
    assert doc.cards["demo-t"].reported.params_m.text == "14.0"


def test_not_utf8_card_file_is_one_line_and_other_cards_load(install_plugin):
    path = _plugin_with_cards(install_plugin, "latin", "placeholder")
    text = HEAD + "  caf\xe9-s: {paper: demo}\n"
    path.write_bytes(text.encode("latin-1"))
    offset = text.index("\xe9")
    with pytest.raises(CardError) as info:
        read_yaml(path)
    assert str(info.value) == f"{path}: not UTF-8 at byte {offset}"
    catalog = build_catalog()
    assert [str(e) for e in catalog.errors if str(path) in str(e)] == [str(info.value)]
    assert "convnext-t" in catalog.cards


def test_deeply_nested_yaml_is_one_line(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("models: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(CardError) as info:
        read_yaml(path)
    assert str(info.value).startswith(f"{path}: ") and "invalid YAML" in str(info.value)


def test_huge_card_file_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo.registry.cards, "MAX_CARD_FILE_BYTES", 1000)
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * 2000 + "\n")
    with pytest.raises(CardError, match=r"big\.yaml: card file is 2003 bytes; the limit is 1000"):
        read_yaml(path)
