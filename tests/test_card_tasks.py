"""Cards are task-generic (#11): common fields on the card, task-owned fields validated by the task,
nested reported figures (per-category tables, protocol blocks), named weights entries with their own
classes, input size and preprocessing, and builders that get ``num_classes`` only when the card has one."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

import zoo.api
from zoo.errors import BuildError, InvalidCard, UserError
from zoo.registry.cards import Figure, parse_document, read_yaml
from zoo.registry.tasks import Metric, Task

PAPERS = """
papers:
  demo:
    title: "A Demo Paper"
    venue: ICLR 2024
"""


def parse_target(fields, card):
    """A toy task's own field: ``target: {scale: >0, offset: number}``."""
    target = fields.get("target")
    if target is None:
        return {}
    if not isinstance(target, dict) or set(target) - {"scale", "offset"}:
        raise ValueError(f"target: expected a mapping with scale and offset, got {target!r}")
    scale = target.get("scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"target.scale: expected a positive number, got {scale!r}")
    return {"target": {"scale": float(scale), "offset": float(target.get("offset", 0))}, "seen": card.name}


ANOMALY = Task(
    name="toy-anomaly",
    metrics=(Metric(name="image_auroc", primary=True), Metric(name="pixel_aupro")),
    card_fields={"target": "what the score is scaled to", "k_shot": "support images"},
    parse_fields=parse_target,
)
NO_DEFAULTS = {ANOMALY.name: ANOMALY}

GOOD = """
  ad-1:
    paper: demo
    task: toy-anomaly
    plugin: demo-plugin
    builder: tiny
    target: {scale: 255, offset: 0}
    reported:
      source: "Demo paper, Table 3"
      mvtec-ad:
        image_auroc: 91.5
        protocol: {k_shot: 4, seeds: [0, 1, 2], resize: 240, fast: true, mode: zero-shot}
        per_category:
          bottle: {image_auroc: 98.0, pixel_aupro: 90.1}
          metal_nut: {image_auroc: 85.00}
"""


def load(tmp_path, body, tasks=NO_DEFAULTS):
    path = tmp_path / "cards.yaml"
    path.write_text(PAPERS + "models:\n" + textwrap.dedent(body).strip("\n").replace("\n", "\n  ").join(["  ", "\n"]))
    return path, parse_document(str(path), read_yaml(path), tasks=tasks)


def one_error(tmp_path, body, tasks=NO_DEFAULTS):
    path, doc = load(tmp_path, body, tasks)
    assert doc.cards == {}, list(doc.cards)
    [error] = doc.errors
    assert "\n" not in str(error)
    return path, error


# -- task-owned fields ----------------------------------------------------------------------------


def test_declared_task_field_is_parsed_by_the_task(tmp_path):
    _, doc = load(tmp_path, GOOD)
    assert doc.errors == []
    card = doc.cards["ad-1"]
    assert card.fields == {"target": {"scale": 255.0, "offset": 0.0}, "seen": "ad-1"}
    assert card.input_size is None and card.num_classes is None  # the task gives no defaults: no classifier


def test_undeclared_field_is_located_and_names_the_tasks_fields(tmp_path):
    path, error = one_error(tmp_path, GOOD.replace("    target:", "    colour: blue\n    target:"))
    assert (error.path, error.entry, error.field) == (str(path), "ad-1", "colour")
    assert str(error).startswith(f"{path}: ad-1: colour: unknown field (allowed: builder, card_only, deviations, input_size, ")
    assert str(error).endswith("; task 'toy-anomaly' fields: k_shot, target)")


@pytest.mark.parametrize("value, field, problem", [
    ("{scale: -1}", "target.scale", "expected a positive number, got -1"),
    ("{scale: .nan}", "target.scale", "expected a positive number, got nan"),
    ("{scale: yes}", "target.scale", "expected a positive number, got True"),
    ("[1, 2]", "target", "expected a mapping with scale and offset, got [1, 2]"),
    ("{scale: 1, colour: 2}", "target", "expected a mapping with scale and offset"),
])
def test_bad_task_field_is_the_tasks_located_error(tmp_path, value, field, problem):
    path, error = one_error(tmp_path, GOOD.replace("{scale: 255, offset: 0}", value))
    assert (error.path, error.entry, error.field) == (str(path), "ad-1", field)
    assert problem in error.problem


def _task(parse):
    return {"toy-anomaly": Task(name="toy-anomaly", card_fields={"target": ""}, parse_fields=parse)}


@pytest.mark.parametrize("parse, message", [
    (lambda fields, card: 1 / 0, "task 'toy-anomaly' could not check its fields: parse_fields raised "
                                 "ZeroDivisionError: division by zero"),
    (lambda fields, card: sys.exit(3), "parse_fields raised SystemExit: 3"),
    (lambda fields, card: ["target"], "task 'toy-anomaly': parse_fields returned list, expected a mapping"),
    (lambda fields, card: (_ for _ in ()).throw(ValueError("the target is wrong\nsecond line")),
     "task 'toy-anomaly' rejected its fields: the target is wrong second line"),
])
def test_a_broken_parse_fields_invalidates_only_that_card(tmp_path, parse, message):
    other = GOOD.replace("ad-1", "cls-1").replace("task: toy-anomaly", "task: image-classification") \
        .replace("    target: {scale: 255, offset: 0}\n", "")
    path, doc = load(tmp_path, GOOD + other, _task(parse))
    assert list(doc.cards) == ["cls-1"]  # not validated by any installed task: kept
    [error] = doc.errors
    assert error.entry == "ad-1" and error.field == "" and message in str(error) and "\n" not in str(error)


def test_card_of_a_task_nobody_installed_keeps_its_fields_unvalidated(tmp_path):
    _, doc = load(tmp_path, GOOD.replace("    target:", "    colour: blue\n    target:"), tasks={})
    card = doc.cards["ad-1"]
    assert card.fields == {"colour": "blue", "target": {"scale": 255, "offset": 0}}


def test_task_defaults_fill_input_size_and_num_classes(tmp_path):
    task = Task(name="toy-anomaly", defaults={"input_size": (3, 240, 240), "num_classes": 2},
                metrics=ANOMALY.metrics, card_fields={"target": ""})
    _, doc = load(tmp_path, GOOD, {task.name: task})
    card = doc.cards["ad-1"]
    assert (card.input_size, card.num_classes) == ((3, 240, 240), 2)
    _, doc = load(tmp_path, GOOD.replace("    target:", "    num_classes: 7\n    target:"), {task.name: task})
    assert doc.cards["ad-1"].num_classes == 7  # the card's own wins
    bad = Task(name="toy-anomaly", defaults={"input_size": "big"}, card_fields={"target": ""})
    _, error = one_error(tmp_path, GOOD, {bad.name: bad})
    assert error.field == "input_size" and "3 positive integers, got 'big'" in error.problem


def test_classification_defaults_come_from_the_task_not_the_card_schema(tmp_path):
    from zoo.tasks.classification.task import TASK

    body = GOOD.replace("task: toy-anomaly", "task: image-classification").replace("    target: {scale: 255, offset: 0}\n", "") \
        .replace("mvtec-ad:", "imagenet:").replace("image_auroc: 91.5", "top1: 80.0").replace(
            "        per_category:\n          bottle: {image_auroc: 98.0, pixel_aupro: 90.1}\n"
            "          metal_nut: {image_auroc: 85.00}\n", "")
    _, doc = load(tmp_path, body, {TASK.name: TASK})
    assert (doc.cards["ad-1"].input_size, doc.cards["ad-1"].num_classes) == ((3, 224, 224), 1000)
    _, doc = load(tmp_path, body, {})
    assert (doc.cards["ad-1"].input_size, doc.cards["ad-1"].num_classes) == (None, None)


# -- nested reported figures ----------------------------------------------------------------------


def test_nested_tables_and_protocol_parse_and_figures_lists_them(tmp_path):
    _, doc = load(tmp_path, GOOD)
    reported = doc.cards["ad-1"].reported
    assert [(c, d, m, float(f)) for c, d, m, f in reported.figures()] == [
        ("mvtec-ad.image_auroc", "mvtec-ad", "image_auroc", 91.5),
        ("mvtec-ad.per_category.bottle.image_auroc", "mvtec-ad", "image_auroc", 98.0),
        ("mvtec-ad.per_category.bottle.pixel_aupro", "mvtec-ad", "pixel_aupro", 90.1),
        ("mvtec-ad.per_category.metal_nut.image_auroc", "mvtec-ad", "image_auroc", 85.0),
    ]
    assert str(reported.figures()[-1][3]) == "85.00" and isinstance(reported.figures()[-1][3], Figure)
    protocol = reported.protocol("mvtec-ad")
    assert protocol == {"k_shot": 4, "seeds": [0, 1, 2], "resize": 240, "fast": True, "mode": "zero-shot"}
    assert type(reported.protocol("mvtec-ad")["k_shot"]) is int
    protocol["seeds"].append(9)  # a copy: the card stays as written
    assert reported.protocol("mvtec-ad")["seeds"] == [0, 1, 2]
    assert reported.protocol("imagenet") == {}


def test_protocol_floats_are_plain_and_a_dataset_may_hold_only_tables(tmp_path):
    body = GOOD.replace("        image_auroc: 91.5\n", "").replace(
        "{k_shot: 4, seeds: [0, 1, 2], resize: 240, fast: true, mode: zero-shot}", "{conf_thres: 0.03, scales: [0.5, 1.75]}")
    _, doc = load(tmp_path, body)
    reported = doc.cards["ad-1"].reported
    assert reported.protocol("mvtec-ad") == {"conf_thres": 0.03, "scales": [0.5, 1.75]}
    assert type(reported.protocol("mvtec-ad")["conf_thres"]) is float
    assert reported.metrics["mvtec-ad"] == {} and len(reported.figures()) == 3


BLOCK = "      mvtec-ad:\n        image_auroc: 91.5\n"


@pytest.mark.parametrize("block, field, problem", [
    ("      mvtec-ad:\n        protocol: {k_shot: 4}\n", "reported.mvtec-ad", "at least one figure beside protocol"),
    (BLOCK + "        protocol: {}\n", "reported.mvtec-ad.protocol", "expected a mapping of settings"),
    (BLOCK + "        protocol: [1, 2]\n", "reported.mvtec-ad.protocol", "expected a mapping of settings"),
    (BLOCK + "        protocol: fast\n", "reported.mvtec-ad.protocol", "got str 'fast'"),
    (BLOCK + "        protocol: {scales: {a: 1}}\n", "reported.mvtec-ad.protocol.scales", "non-empty list of them"),
    (BLOCK + "        protocol: {scales: [[1, 2]]}\n", "reported.mvtec-ad.protocol.scales", "non-empty list of them"),
    (BLOCK + "        protocol: {scales: []}\n", "reported.mvtec-ad.protocol.scales", "non-empty list of them"),
    (BLOCK + "        protocol: {thres: .inf}\n", "reported.mvtec-ad.protocol.thres", "got float inf"),
    (BLOCK + "        protocol: {a.b: 1}\n", "reported.mvtec-ad.protocol.a.b", "expected a name of letters"),
    (BLOCK + "        protocol: {1: 2}\n", "reported.mvtec-ad.protocol.1", "got int 1"),
    (BLOCK + "        per_category: {}\n", "reported.mvtec-ad.per_category", "got an empty mapping"),
    (BLOCK + "        per_category: {bottle: {}}\n", "reported.mvtec-ad.per_category.bottle", "got an empty mapping"),
    (BLOCK + "        per_category: {bottle: {image_auroc: high}}\n",
     "reported.mvtec-ad.per_category.bottle.image_auroc", "expected number, got str 'high'"),
    (BLOCK + "        per_category: {bottle: {image_auroc: .nan}}\n",
     "reported.mvtec-ad.per_category.bottle.image_auroc", "expected a finite number"),
    (BLOCK + "        per_category: {bottle: {image_auroc: [1]}}\n",
     "reported.mvtec-ad.per_category.bottle.image_auroc", "expected number, got list"),
    (BLOCK + "        per_category: {bottle: {image_auroc: true}}\n",
     "reported.mvtec-ad.per_category.bottle.image_auroc", "expected number, got bool"),
    (BLOCK + "        per_category: {a: {b: {c: {image_auroc: 1.0}}}}\n",
     "reported.mvtec-ad.per_category.a.b.c", "tables nest at most 3 levels"),
    (BLOCK + "        per_category: {'bad name': {image_auroc: 1.0}}\n",
     "reported.mvtec-ad.per_category.bad name", "expected a name of letters"),
    (BLOCK + "        per_category: {bottle: {box_ap: 1.0}}\n", "reported.mvtec-ad.per_category.bottle.box_ap",
     "unknown metric 'box_ap' for task 'toy-anomaly' (its metrics: image_auroc, pixel_aupro)"),
    ("      mvtec-ad: {top1: 80.0}\n", "reported.mvtec-ad.top1",
     "unknown metric 'top1' for task 'toy-anomaly' (its metrics: image_auroc, pixel_aupro)"),
])
def test_bad_nested_reported_block_is_one_located_error(tmp_path, block, field, problem):
    start = GOOD.index("      mvtec-ad:")
    path, error = one_error(tmp_path, GOOD[:start] + block)
    assert (error.entry, error.field) == ("ad-1", field)
    assert problem in error.problem, error.problem


def test_unknown_metric_is_not_checked_when_the_task_is_not_installed(tmp_path):
    start = GOOD.index("      mvtec-ad:")
    _, doc = load(tmp_path, GOOD[:start] + "      mvtec-ad: {box_ap: 1.0}\n", tasks={})
    assert doc.errors == [] and doc.cards["ad-1"].reported.figures()[0][2] == "box_ap"


def test_a_huge_per_category_table_parses_quickly(tmp_path):
    import time

    rows = "".join(f"          c{i}: {{image_auroc: {i % 100}.5, pixel_aupro: 1.0}}\n" for i in range(5000))
    body = GOOD.replace("          bottle: {image_auroc: 98.0, pixel_aupro: 90.1}\n", rows)
    started = time.perf_counter()
    _, doc = load(tmp_path, body)
    assert time.perf_counter() - started < 10
    assert len(doc.cards["ad-1"].reported.figures()) == 1 + 2 * 5000 + 1


def test_a_plugin_handed_recursive_table_is_refused_not_a_crash(tmp_path):
    table: dict = {}
    table["x"] = table  # a mapping a plugin hands over directly, not YAML
    data = {"papers": {"demo": {"title": "T", "venue": "V"}}, "models": {"ad-1": {
        "paper": "demo", "task": "toy-anomaly", "plugin": "p", "builder": "b",
        "reported": {"source": "s", "mvtec-ad": {"image_auroc": 1.0, "per_category": table}}}}}
    doc = parse_document("<p cards>", data, tasks=NO_DEFAULTS)
    [error] = doc.errors
    assert "tables nest at most 3 levels" in str(error)


# -- named weights entries ------------------------------------------------------------------------

NAMED = """
  m2f:
    paper: demo
    task: image-classification
    plugin: demo-plugin
    builder: tiny
    input_size: [3, 224, 224]
    num_classes: 133
    preprocess: {interpolation: bilinear, crop_pct: 0.9, source: "card"}
    weights:
      - {name: coco, hub: acme/m2f, file: coco.safetensors}
      - {name: coco, url: https://example.org/coco.safetensors}
      - {name: ade20k, hub: acme/m2f, file: ade.safetensors, num_classes: 150, input_size: [3, 512, 512],
         preprocess: {crop_pct: 1.0, source: "ade20k config"}}
"""


def test_weights_entries_carry_their_own_classes_size_and_preprocessing(tmp_path):
    _, doc = load(tmp_path, NAMED, tasks={})
    card = doc.cards["m2f"]
    assert card.weights_names == ("coco", "ade20k")
    coco = card.for_weights()  # the default: the first name, with its mirror
    assert [w.filename for w in coco.weights] == ["coco.safetensors", "coco.safetensors"]
    assert (coco.num_classes, coco.input_size, coco.preprocess) == (133, (3, 224, 224), card.preprocess)
    ade = card.for_weights("ade20k")
    assert [w.filename for w in ade.weights] == ["ade.safetensors"]
    assert (ade.num_classes, ade.input_size) == (150, (3, 512, 512))
    assert (ade.preprocess.crop_pct, ade.preprocess.interpolation, ade.preprocess.source) == (1.0, "bilinear", "ade20k config")
    with pytest.raises(UserError, match=r"^model 'm2f' has no weights 'cityscapes' \(its weights: coco, ade20k\)$"):
        card.for_weights("cityscapes")


def test_unnamed_weights_are_mirrors_and_for_weights_none_is_the_card(tmp_path):
    _, doc = load(tmp_path, NAMED.replace("name: coco, ", "").replace("name: ade20k, ", ""), tasks={})
    card = doc.cards["m2f"]
    assert card.weights_names == () and card.for_weights() is card
    with pytest.raises(UserError, match="has no weights 'coco' \\(its weights: none named\\)"):
        card.for_weights("coco")


@pytest.mark.parametrize("old, new, field, problem", [
    ("{name: coco, url:", "{url:", "weights[1].name", "name every weights entry or none"),
    ("name: ade20k,", "name: ADE 20k,", "weights[2].name", "expected a weights name"),
    ("name: ade20k,", "name: 7,", "weights[2].name", "expected string, got int"),
    ("num_classes: 150", "num_classes: 0", "weights[2].num_classes", "expected a positive integer, got int 0"),
    ("num_classes: 150", "num_classes: true", "weights[2].num_classes", "expected a positive integer, got bool"),
    ("input_size: [3, 512, 512]", "input_size: [3, 512]", "weights[2].input_size", "3 positive integers"),
    ("input_size: [3, 512, 512]", "input_size: [3, 99999999, 2]", "weights[2].input_size", "3 positive integers"),
    ("preprocess: {crop_pct: 1.0, source: \"ade20k config\"}", "preprocess: {}", "weights[2].preprocess.",
     "expected the fields that differ"),
    ("preprocess: {crop_pct: 1.0, source: \"ade20k config\"}", "preprocess: {crop_pct: 2}",
     "weights[2].preprocess.crop_pct", "expected a number in (0, 1]"),
    ("preprocess: {crop_pct: 1.0, source: \"ade20k config\"}", "preprocess: {colour: red}",
     "weights[2].preprocess.colour", "unknown field"),
    ("{name: coco, url: https://example.org/coco.safetensors}",
     "{name: coco, url: https://example.org/coco.safetensors, num_classes: 80}", "weights[1]",
     "a mirror of weights 'coco' must give the same num_classes"),
])
def test_bad_weights_entry_override_is_located(tmp_path, old, new, field, problem):
    assert old in NAMED
    _, error = one_error(tmp_path, NAMED.replace(old, new), tasks={})
    assert error.field == field and problem in error.problem, str(error)


# -- through the catalog: an installed plugin's task validates its cards --------------------------

PLUGIN_INIT = '''
from zoo import hookimpl
from zoo.registry.tasks import Metric, Task


def parse_fields(fields, card):
    scale = fields.get("target", {}).get("scale", 1)
    if not isinstance(scale, (int, float)) or scale <= 0:
        raise ValueError(f"target.scale: expected a positive number, got {scale!r}")
    return {"target": {"scale": float(scale)}}


@hookimpl
def zoo_tasks():
    return {"toy-anomaly": Task(name="toy-anomaly", metrics=(Metric(name="image_auroc", primary=True),),
                                card_fields={"target": "score scale"}, parse_fields=parse_fields)}


@hookimpl
def zoo_cards():
    from pathlib import Path
    return [str(Path(__file__).with_name("cards.yaml"))]


@hookimpl
def zoo_builders():
    return {"scorer": "zoo_thirdparty_dense.model:scorer", "picky": "zoo_thirdparty_dense.model:picky"}
'''

PLUGIN_MODEL = '''
import torch.nn as nn


def scorer():  # no num_classes: an anomaly scorer has no classifier
    return nn.Conv2d(3, 1, 1)


def picky(*, num_classes):
    return nn.Linear(4, num_classes)
'''

PLUGIN_CARDS = '''
papers:
  dense: {title: "Dense", venue: ICLR 2025}
models:
  ad-good:
    paper: dense
    task: toy-anomaly
    plugin: dense
    builder: scorer
    target: {scale: 255}
    reported: {source: "test fixture", mvtec-ad: {image_auroc: 90.0, per_category: {bottle: {image_auroc: 99.0}}}}
  ad-bad:
    paper: dense
    task: toy-anomaly
    plugin: dense
    builder: scorer
    target: {scale: -3}
  ad-classes:
    paper: dense
    task: toy-anomaly
    plugin: dense
    builder: picky
    num_classes: 5
  seg-2w:
    paper: dense
    task: toy-anomaly
    plugin: dense
    builder: picky
    num_classes: 5
    weights:
      - {name: coco, hub: acme/seg, file: coco.safetensors}
      - {name: ade, hub: acme/seg, file: ade.safetensors, num_classes: 7, input_size: [3, 64, 64]}
'''


def install_dense(install_plugin):
    return install_plugin("zoo-thirdparty-dense", {"dense": "zoo_thirdparty_dense"}, {
        "zoo_thirdparty_dense/__init__.py": PLUGIN_INIT,
        "zoo_thirdparty_dense/model.py": PLUGIN_MODEL,
        "zoo_thirdparty_dense/cards.yaml": PLUGIN_CARDS,
    })


def test_catalog_validates_cards_with_the_installed_plugins_task(install_plugin):
    site = install_dense(install_plugin)
    cards_file = site / "zoo_thirdparty_dense" / "cards.yaml"
    with pytest.warns(match="ad-bad: target.scale"):
        catalog = zoo.api.catalog()
    card = zoo.api.get_card("ad-good")
    assert card.fields == {"target": {"scale": 255.0}} and card.num_classes is None and card.input_size is None
    assert [c for c, *_ in card.reported.figures()] == ["mvtec-ad.image_auroc", "mvtec-ad.per_category.bottle.image_auroc"]
    with pytest.raises(InvalidCard) as info:  # that one card, never the catalog
        zoo.api.get_card("ad-bad")
    assert str(info.value) == (f"model 'ad-bad' has an invalid card: {cards_file}: ad-bad: target.scale: "
                               "expected a positive number, got -3")
    assert catalog.invalid_count(plugin="dense") == 1 and "deit-t" in catalog.cards


def test_card_without_num_classes_builds_without_passing_it(install_plugin):
    install_dense(install_plugin)
    model = zoo.api.create_model("ad-good")  # scorer() takes no num_classes: passing it would raise
    assert isinstance(model, torch.nn.Conv2d) and not model.training
    assert model.pretrained_cfg["interpolation"] == "bicubic"
    assert "num_classes" not in model.pretrained_cfg and "input_size" not in model.pretrained_cfg
    assert zoo.api.create_model("ad-classes").out_features == 5  # a card that has one still passes it


def test_builder_without_features_only_is_one_build_error(install_plugin):
    install_dense(install_plugin)
    with pytest.raises(BuildError) as info:
        zoo.api.create_model("ad-good", features_only=True, out_indices=(1, 2))
    assert str(info.value) == ("model 'ad-good': builder 'scorer' of plugin 'dense' does not take features_only "
                               "(it cannot build a feature extractor)")



def test_create_model_builds_and_loads_the_named_weights_entry(install_plugin, tmp_path):
    from safetensors.torch import save_file

    install_dense(install_plugin)
    assert zoo.api.create_model("seg-2w").out_features == 5  # the default: the first entry, the card's classes
    ade = torch.nn.Linear(4, 7)
    path = tmp_path / "ade.safetensors"
    save_file(ade.state_dict(), str(path))
    model = zoo.api.create_model("seg-2w", weights="ade", checkpoint=path)
    assert model.out_features == 7 and torch.equal(model.weight, ade.weight)
    assert model.pretrained_cfg["input_size"] == (3, 64, 64) and model.pretrained_cfg["num_classes"] == 7
    with pytest.raises(UserError) as info:
        zoo.api.create_model("seg-2w", weights="cityscapes")
    assert str(info.value) == "model 'seg-2w' has no weights 'cityscapes' (its weights: coco, ade)"


def test_zoo_info_shows_a_card_of_an_uninstalled_task_with_its_fields(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from zoo.cli import cli

    registry = tmp_path / "registry.yaml"
    body = GOOD.replace("toy-anomaly", "nobodys-task").replace("    target:", "    colour: blue\n    target:")
    registry.write_text(PAPERS + "models:\n" + textwrap.dedent(body).strip("\n").replace("\n", "\n  ").join(["  ", "\n"]))
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    zoo.api.reset()
    result = CliRunner().invoke(cli, ["info", "ad-1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "input     -, no classes" in lines and "colour    blue" in lines
    assert "target    {'scale': 255, 'offset': 0}" in lines
    assert "               protocol k_shot 4, seeds [0, 1, 2], resize 240, fast True, mode zero-shot" in lines
    assert "  mvtec-ad.per_category.bottle.pixel_aupro 90.1" in lines
