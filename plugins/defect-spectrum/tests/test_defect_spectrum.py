"""defect-spectrum plugin: the table's cards, the builders' outputs, Spearman's rho and the bench command (#14).

Models are built on the meta device (no weights, no compute) to check output shapes and sizes;
only the bench test runs real forwards, on three small models at 32 x 32.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from zoo_defect_spectrum import table

from zoo.cli import cli
from zoo.registry import lookup

#: the deck's row (seeds/iclr2024-potpourri.txt, "Table 2: Speed Evaluation of the baselines"), column -> ms
DECK = {"UNet": 33.9, "PSP": 26.2, "DL": 33.0, "HR": 15.7, "Bise": 23.5, "V-T": 38.7, "M-B0": 17.9, "M2F": 68.2}
CARDS = {"UNet": "unet", "PSP": "pspnet", "DL": "deeplabv3plus", "HR": "hrnet-w18-small", "Bise": "bisenet",
         "V-T": "vit-t", "M-B0": "mit-b0", "M2F": "mask2former"}
#: how each column's model is known: DL and M-B0 are named by the project page, HR by the deck's caption
CONFIRMED = {"DL": "confirmed by the project page", "M-B0": "confirmed by the project page",
             "HR": "confirmed by the deck's caption"}
#: output stride of each builder's logits (1: full resolution)
STRIDES = {"unet": 1, "pspnet": 1, "deeplabv3plus": 1, "hrnet-w18-small": 4, "bisenet": 8, "vit-t": 16, "mit-b0": 4}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("column", list(DECK))
def test_each_column_is_a_card_citing_the_deck_milliseconds(column):
    card = lookup.get_card(f"defect-spectrum-{CARDS[column]}")
    assert card.task == "semantic-segmentation" and card.paper == "defect-spectrum" and not card.card_only
    assert card.num_classes == 126 and card.input_size == (3, 512, 512) and not card.weights
    [latency] = card.reported.latency
    assert (float(latency["value"]), latency["unit"], latency["device"], latency["batch_size"]) == \
        (DECK[column], "ms", "RTX 3090", 1)
    assert "Table 2" in card.reported.source and f"column {column}" in card.reported.source
    assert "no segmentation weights" in card.weights_note and "random weights" in card.weights_note
    assert CONFIRMED.get(column, "inferred, unconfirmed") in card.notes, card.notes
    assert "inferred" in card.notes or column in ("DL",)  # every row but DL infers something (backbone, version)
    assert "zoo's choices" in card.notes  # input size and class count are not the paper's


def test_table_rows_come_from_the_cards_in_the_deck_order():
    rows = table.table_cards(lookup.catalog().cards.values())
    assert {name: ms for name, ms in rows} == {f"defect-spectrum-{CARDS[c]}": ms for c, ms in DECK.items()}


def test_table_rows_skip_other_papers_devices_and_card_only_cards():
    class Reported:
        def __init__(self, *latency):
            self.latency = latency

    class Card:
        def __init__(self, name, paper="defect-spectrum", latency=(), card_only=None):
            self.name, self.paper, self.card_only, self.reported = name, paper, card_only, Reported(*latency)

    cards = [Card("a", latency=[{"value": 2.0, "device": "GPU"}, {"value": 3.0, "device": "rtx 3090 "}]),
             Card("b", latency=[{"value": 1.0, "device": "A100"}]), Card("c", paper="other",
                                                                          latency=[{"value": 1.0, "device": "RTX 3090"}]),
             Card("d", latency=[{"value": 1.0, "device": "RTX 3090"}], card_only="no code")]
    assert table.table_cards(cards) == [("a", 3.0)]


@pytest.mark.parametrize("name", list(STRIDES))
def test_builders_return_per_class_logits_at_their_stride(name):
    from zoo.models.build import create_model

    with torch.device("meta"):  # shapes only: no weights are initialised, nothing is computed
        model = create_model(f"defect-spectrum-{name}")
        out = model(torch.randn(2, 3, 64, 96))
    stride = STRIDES[name]
    assert tuple(out.shape) == (2, 126, 64 // stride, 96 // stride)
    assert not model.training


def test_published_sizes_of_the_library_models():
    """SegFormer-B0 is 3.8 M (SegFormer paper, Table 1: MiT-B0 3.4 M + decoder 0.4 M); Mask2Former
    R-50 semantic is 44 M (Mask2Former paper, ADE20K table): their configurations are the papers'."""
    from zoo_defect_spectrum import models

    with torch.device("meta"):
        segformer = models.mit_b0(num_classes=150)
        m2f = models.mask2former(num_classes=150)
    millions = [sum(p.numel() for p in m.parameters()) / 1e6 for m in (segformer, m2f)]
    assert 3.6 < millions[0] < 3.9 and 43.0 < millions[1] < 45.0, millions
    config = m2f.model.config
    assert (config.num_queries, config.decoder_layers, config.encoder_layers) == (100, 10, 6)
    assert list(config.backbone_config.depths) == [3, 4, 6, 3]


def test_mask2former_semantic_scores_are_class_times_mask_probabilities():
    """The official semantic_inference: softmax classes without 'no object' x sigmoid masks, summed over queries."""
    from types import SimpleNamespace

    from zoo_defect_spectrum.models import Mask2FormerSemantic

    gen = torch.Generator().manual_seed(0)
    classes, masks = torch.randn(1, 3, 4, generator=gen), torch.randn(1, 3, 2, 2, generator=gen)  # 3 queries, 3 + 1 classes

    class Inner(torch.nn.Module):
        def forward(self, pixel_values):
            return SimpleNamespace(class_queries_logits=classes, masks_queries_logits=masks)

    out = Mask2FormerSemantic(Inner())(torch.zeros(1, 3, 8, 8))
    probs, sig = classes.softmax(-1), masks.sigmoid()
    expected = torch.zeros(1, 3, 2, 2)
    for q in range(3):
        for c in range(3):  # the 4th class is "no object": dropped
            expected[0, c] += probs[0, q, c] * sig[0, q]
    torch.testing.assert_close(out, expected)


def test_bisenet_follows_mmseg_bisenetv1_r18():
    from zoo_defect_spectrum.bisenet import BiSeNetV1

    with torch.device("meta"):
        model = BiSeNetV1(num_classes=19)
    sp = [m for m in model.spatial_path.layers.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in sp] == [(64, 7, 2), (64, 3, 2), (64, 3, 2), (128, 1, 1)]
    assert model.ffm.conv[0].in_channels == 256 and model.ffm.conv[0].out_channels == 256
    assert model.context_path.arm32.conv[0].in_channels == 512 and model.context_path.arm16.conv[0].in_channels == 256
    assert model.classifier.in_channels == 256 and model.classifier.out_channels == 19


def test_spearman_equals_scipy_with_ties_and_refuses_bad_input():
    from scipy.stats import spearmanr

    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        a = torch.randint(0, 5, (9,), generator=gen).tolist()  # many ties
        b = torch.rand(9, generator=gen).tolist()
        assert table.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert table.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert table.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(table.spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="at least two"):
        table.spearman([1], [2])
    with pytest.raises(ValueError, match="3 values against 2"):
        table.spearman([1, 2, 3], [1, 2])


def test_rendered_table_sorts_by_the_paper_and_prints_rho():
    rows = [table.Row("slow", 60.0, 9.0, 9.5, 40.0), table.Row("fast", 10.0, 3.0, 3.1, 4.0),
            table.Row("mid", 20.0, 1.0, 1.2, 13.0)]
    text = table.render_text(rows, 0.5, "setup line")
    lines = text.splitlines()
    assert lines[0] == "setup line" and [line.split()[0] for line in lines[3:6]] == ["fast", "mid", "slow"]
    assert lines[-1].endswith("3 models: 0.500")
    md = table.render_markdown(rows, None, "setup")
    assert "3 models: undefined (a column is constant)**" in md
    assert "| `mid` | 20 | 2 | 1.00 | 1.20 | 1 | 13.00 |" in md


@pytest.mark.parametrize("args, message", [
    (["--size", "50"], "--size 50: expected a multiple of 32 in 32..2048"),
    (["--size", "0"], "--size 0: expected a multiple of 32"),
    (["--size", "999999"], "--size 999999: expected a multiple of 32"),
    (["--repeats", "0"], "--repeats 0: expected a positive integer"),
    (["--warmup", "-1"], "--warmup -1: expected a non-negative integer"),
    (["--threads", "0"], "--threads 0: expected a positive integer"),
    (["--rounds", "0"], "--rounds 0: expected a positive integer"),
    (["--model", "defect-spectrum-nope", "--model", "defect-spectrum-unet"],
     "--model defect-spectrum-nope: not a model of Defect Spectrum's table (its models: defect-spectrum-unet,"),
    (["--model", "deit-t", "--model", "defect-spectrum-unet"], "--model deit-t: not a model of"),
    (["--model", "defect-spectrum-unet", "--model", "defect-spectrum-unet"], "give at least two different models"),
    (["--device", "cuda:7"], "cuda"),
])
def test_bad_options_are_one_error_line_before_any_build(args, message, monkeypatch):
    from zoo.models import build

    monkeypatch.setattr(build, "create_model", lambda *a, **k: pytest.fail("built a model despite a bad option"))
    code, out, err = run("defect-spectrum-bench", *args)
    assert code == 2 and out == "", out
    err = err.strip()
    assert err.startswith("Error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err


def test_bench_times_the_table_models_and_reports_rho():
    names = ["defect-spectrum-hrnet-w18-small", "defect-spectrum-bisenet", "defect-spectrum-pspnet"]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        code, out, err = run("defect-spectrum-bench", *[a for n in names for a in ("--model", n)], "--size", "32",
                             "--warmup", "0", "--repeats", "1", "--rounds", "2", "--threads", "1", "--json")
        assert torch.get_num_threads() == 2  # --threads 1 held for the run only
    finally:
        torch.set_num_threads(before)
    assert code == 0, err
    result = json.loads(out)
    rows = result["rows"]
    assert [r["name"] for r in rows] == ["defect-spectrum-pspnet", "defect-spectrum-hrnet-w18-small",
                                         "defect-spectrum-bisenet"]  # the table's order, not the command line's
    assert [r["table_ms"] for r in rows] == [26.2, 15.7, 23.5]
    assert all(r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] for r in rows)
    assert rows[1]["params_m"] == pytest.approx(3.97, abs=0.01)  # HRNetV2-W18-small-v2 + head, 126 classes
    assert result["spearman"] == pytest.approx(table.spearman([r["table_ms"] for r in rows],
                                                              [r["median_ms"] for r in rows]))
    assert result["input_size"] == [3, 32, 32] and result["threads"] == 1 and result["table_device"] == "RTX 3090"
    assert (result["rounds"], result["repeats"], result["warmup"]) == (2, 1, 0)
    assert "round 1/2" not in err  # --json: no progress lines on stderr


def test_entry_module_imports_nothing_heavy():
    code = ("import sys, zoo_defect_spectrum; "
            "print(sorted({'torch', 'timm', 'transformers', 'segmentation_models_pytorch'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
