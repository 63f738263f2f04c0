"""Card validation: every bad card is reported with file, entry and field; the valid ones load."""

from __future__ import annotations

import textwrap

import pytest

from zoo.errors import CardError
from zoo.registry.cards import MEAN_STD_PRESETS, parse_document, read_yaml
from zoo.registry.catalog import build_catalog
from zoo.tasks.classification.task import TASK

TASKS = {TASK.name: TASK}  # the installed tasks validate their cards' fields, as the catalog does

PAPERS = """
papers:
  demo:
    title: "A Demo Paper"
    venue: ICLR 2024
    arxiv: "2401.00001"
    license: Apache-2.0
"""

GOOD = """
  good-1:
    paper: demo
    task: image-classification
    plugin: demo-plugin
    builder: tiny
    input_size: [3, 160, 160]
    preprocess: {interpolation: bilinear, crop_pct: 0.95, mean: inception, std: inception}
    weights:
      - hub: acme/demo
        file: model.safetensors
        sha256: "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
      - url: https://example.org/releases/good.pth
    reported:
      source: "Demo paper, Table 1"
      imagenet: {top1: 80.5, top5: 95.0}
      params_m: 5.3
      gmacs: 0.6
      throughput: {value: 3161, unit: img/s, device: A100, batch_size: 128}
      latency: [{value: 10.2, device: "Intel i9 CPU", batch_size: 1}]
"""


def load(tmp_path, body: str, name: str = "registry.yaml"):
    path = tmp_path / name
    path.write_text(PAPERS + "models:\n" + textwrap.dedent(body).strip("\n").replace("\n", "\n  ").join(["  ", "\n"]))
    return path, parse_document(str(path), read_yaml(path), tasks=TASKS)


def test_good_card_parses_every_field(tmp_path):
    path, doc = load(tmp_path, GOOD)
    assert doc.errors == []
    card = doc.cards["good-1"]
    assert card.input_size == (3, 160, 160)
    assert card.preprocess.interpolation == "bilinear" and card.preprocess.crop_pct == 0.95
    assert card.preprocess.mean == MEAN_STD_PRESETS["inception"][0]
    assert card.weights[0].sha256 == "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
    assert card.weights[1].filename == "good.pth" and card.weights[1].kind == "url"
    assert card.reported.top1() == 80.5 and card.reported.metrics["imagenet"]["top5"] == 95.0
    assert card.reported.throughput["device"] == "A100"
    assert card.reported.latency[0]["value"] == 10.2
    assert card.source == str(path)
    assert doc.papers["demo"].arxiv == "2401.00001"


@pytest.mark.parametrize(
    "mutation, field, problem",
    [
        ("    task: image-classification\n", "task", "required field is missing"),
        ("    input_size: [3, 160, 160]\n", "input_size", "expected [channels, height, width]"),
        ("    preprocess: {interpolation: bilinear", "preprocess.interpolation", "expected one of bilinear, bicubic, nearest"),
        ("    paper: demo\n", "paper", "unknown paper 'nodemo'"),
        ("    builder: tiny\n", "colour", "unknown field"),
        ("      params_m: 5.3\n", "reported.params_m", "expected number, got str"),
        ("        sha256: \"ABC", "weights[0].sha256", "expected 64 hex digits"),
        ("      source: \"Demo paper, Table 1\"\n", "reported.source", "required field is missing"),
    ],
)
def test_bad_field_is_located_and_other_cards_survive(tmp_path, mutation, field, problem):
    replacements = {
        "    task: image-classification\n": "",
        "    input_size: [3, 160, 160]\n": "    input_size: [3, 160]\n",
        "    preprocess: {interpolation: bilinear": "    preprocess: {interpolation: lanczos9",
        "    paper: demo\n": "    paper: nodemo\n",
        "    builder: tiny\n": "    builder: tiny\n    colour: blue\n",
        "      params_m: 5.3\n": "      params_m: five\n",
        "        sha256: \"ABC": "        sha256: \"XYZ",
        "      source: \"Demo paper, Table 1\"\n": "",
    }
    bad = GOOD.replace("good-1", "bad-1").replace(mutation, replacements[mutation], 1)
    path, doc = load(tmp_path, GOOD + bad)
    assert list(doc.cards) == ["good-1"]
    [error] = doc.errors
    assert (error.path, error.entry, error.field) == (str(path), "bad-1", field)
    assert problem in str(error)
    assert str(error).startswith(f"{path}: bad-1: {field}: ")
    assert "\n" not in str(error)


def test_weight_source_needs_exactly_one_location(tmp_path):
    bad = GOOD.replace("good-1", "bad-1").replace("      - url: https://example.org/releases/good.pth\n",
                                                  "      - {url: https://x.org/a.pth, hub: a/b, file: a.pth}\n")
    _, doc = load(tmp_path, bad)
    [error] = doc.errors
    assert error.field == "weights[1]." and "exactly one of hub, url, gdrive; got hub, url" in str(error)


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("papers:\n  demo: {title: [unclosed\nmodels: {}\n")
    with pytest.raises(CardError) as info:
        read_yaml(path)
    assert str(info.value).startswith(f"{path}: line ") and "invalid YAML" in str(info.value)


def test_broken_registry_file_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("models: [1, 2\n")
    catalog = build_catalog(registry=path, eps=[])
    assert catalog.cards == {}
    assert len(catalog.errors) == 1 and str(path) in str(catalog.errors[0])


def test_unknown_section_and_bad_name(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(PAPERS + "extras: {}\nmodels:\n  Bad Name:\n    paper: demo\n")
    doc = parse_document(str(path), read_yaml(path))
    messages = sorted(str(e) for e in doc.errors)
    assert messages[0].endswith("Bad Name: : model names are lower case letters, digits, '.', '_' and '-'") or any(
        "Bad Name" in m and "lower case" in m for m in messages
    )
    assert any(": extras: unknown section" in m for m in messages)


def test_parsed_cards_are_cached_and_a_changed_file_is_read_again(tmp_path, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(PAPERS + "models: {}\n")
    first = read_yaml(path)
    assert first["papers"]["demo"]["venue"] == "ICLR 2024"
    import zoo.registry.cards

    def no_yaml(*args):
        raise AssertionError("the YAML parser ran on an unchanged file")

    with monkeypatch.context() as patched:
        patched.setattr(zoo.registry.cards, "_parse_yaml", no_yaml)
        assert read_yaml(path) == first
    path.write_text(PAPERS.replace("ICLR 2024", "ICLR 2025") + "models: {}\n")
    assert read_yaml(path)["papers"]["demo"]["venue"] == "ICLR 2025"
