"""GraphCore's fit/score contract on tiny images, its card, and the official checkpoint path."""

from __future__ import annotations

import pytest
import torch
from zoo_graphcore.model import GraphCore, graphcore_vig_ti
from zoo_graphcore.search import faiss_available
from zoo_graphcore.vig import vig_ti_224_gelu

TINY = {"channels": 8, "n_blocks": 5, "k": 4, "img_size": 64}


def texture(gen: torch.Generator, defect: tuple[int, int] | None = None) -> torch.Tensor:
    """A striped 64 x 64 texture with noise; with ``defect`` (row, col of a 16 px cell), a bright square."""
    rows = torch.arange(64).float().view(64, 1).expand(64, 64)
    img = (torch.sin(rows / 2.0) * 0.5).expand(3, 64, 64) + 0.05 * torch.randn(3, 64, 64, generator=gen)
    if defect is not None:
        r, c = defect
        img = img.clone()
        img[:, r * 16 + 2:r * 16 + 14, c * 16 + 2:c * 16 + 14] = 3.0
    return img


def tiny(**kwargs) -> GraphCore:
    torch.manual_seed(0)
    return GraphCore(**TINY, **kwargs).eval()


def test_fit_then_score_follows_the_task_contract():
    gen = torch.Generator().manual_seed(0)
    model = tiny(sampler_percentage=1.0, backend="torch")
    reference = torch.stack([texture(gen) for _ in range(2)])
    assert model.fit(reference) is model
    assert model.memory_bank.shape == (2 * 16, 16) and model.bank_source == 32  # 4 x 4 patches, 8 + 8 channels
    images = torch.stack([texture(gen), texture(gen, defect=(1, 2)), reference[0]])
    with torch.no_grad():
        out = model(images)
    assert set(out) == {"score", "map"}
    assert out["score"].shape == (3,) and out["map"].shape == (3, 4, 4)
    assert torch.equal(out["score"], out["map"].flatten(1).amax(dim=1))
    assert (out["map"] >= 0).all()
    assert out["map"][2].abs().max() < 1e-4  # a reference image: every patch is in the bank
    assert out["score"][1] > out["score"][0]  # the bright square is the anomaly


def test_features_are_blocks_3_and_4_concatenated_in_image_row_column_order():
    model = tiny(sampler_percentage=1.0, backend="torch")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        b3, b4 = model.block_outputs(x, [3, 4])
        model.fit(x)
    bank = model.memory_bank
    # patch (image 1, row 2, column 3) is row 1 * 16 + 2 * 4 + 3 of the bank: block 3's channels, then block 4's
    assert torch.equal(bank[16 + 2 * 4 + 3], torch.cat([b3[1, :, 2, 3], b4[1, :, 2, 3]]))


def test_the_coreset_keeps_the_config_share_of_patches():
    model = tiny(sampler_percentage=0.25, backend="torch")
    with torch.no_grad():
        model.fit(torch.randn(4, 3, 64, 64))
    assert model.memory_bank.shape[0] == 16 == int(64 * 0.25)
    assert graphcore_vig_ti().sampler_percentage == 0.001  # open-iad graphcore.yaml


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is the optional [faiss] extra")
def test_faiss_and_torch_models_score_the_same():
    gen = torch.Generator().manual_seed(3)
    reference, images = torch.randn(3, 3, 64, 64, generator=gen), torch.randn(2, 3, 64, 64, generator=gen)
    outs = []
    for backend in ("faiss", "torch"):
        model = tiny(sampler_percentage=0.5, backend=backend)
        with torch.no_grad():
            outs.append(model.fit(reference)(images))
    assert torch.allclose(outs[0]["map"], outs[1]["map"], rtol=1e-5, atol=1e-5)


def test_scoring_before_fit_and_bad_references_are_one_line_errors():
    model = tiny()
    with pytest.raises(RuntimeError, match=r"no memory bank: call model.fit\(reference\) with normal images first"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"expected images of 64x64"):
        model.fit(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("batch, message", [
    (torch.randn(0, 3, 64, 64), r"reference must be a non-empty \(B, 3, H, W\) batch, got shape \(0, 3, 64, 64\)"),
    (torch.randn(3, 64, 64), r"reference must be a non-empty \(B, 3, H, W\) batch, got shape \(3, 64, 64\)"),
    (torch.randn(1, 1, 64, 64), r"got shape \(1, 1, 64, 64\)"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "reference must be floating point .*got torch.uint8"),
    (torch.full((1, 3, 64, 64), float("nan")), "reference holds NaN or infinite values"),
])
def test_hostile_references_are_refused_and_leave_the_bank_as_it_was(batch, message):
    model = tiny(sampler_percentage=1.0, backend="torch")
    good = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model.fit(good)
    bank = model.memory_bank.clone()
    with pytest.raises(ValueError, match=message):
        model.fit(batch)
    assert torch.equal(model.memory_bank, bank)
    with pytest.raises(ValueError, match="images holds NaN or infinite values"):
        model(torch.full((1, 3, 64, 64), float("inf")))


def test_fit_runs_the_reference_in_batches_with_the_same_bank():
    x = torch.randn(5, 3, 64, 64)
    banks = []
    for fit_batch in (2, 32):
        model = tiny(sampler_percentage=1.0, backend="torch", fit_batch=fit_batch)
        calls: list[int] = []
        model.stem.register_forward_hook(lambda m, i, o, calls=calls: calls.append(i[0].shape[0]))
        with torch.no_grad():
            model.fit(x)
        banks.append(model.memory_bank)
        assert calls == ([2, 2, 1] if fit_batch == 2 else [5])
    assert torch.allclose(banks[0], banks[1], rtol=1e-5, atol=1e-3)  # batch size changes float sums only


@pytest.mark.parametrize("kwargs, message", [
    ({"sampler_percentage": 0}, r"sampler_percentage must be in \(0, 1\], got 0"),
    ({"layers": (3, 9)}, r"layers must be block indices in 0..4, got \[3, 9\]"),
    ({"layers": ()}, r"layers must be block indices"),
    ({"fit_batch": 0}, "fit_batch must be >= 1, got 0"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GraphCore(**TINY, **kwargs)


def test_card_validates_and_names_the_backbone_weights():
    import zoo

    card = zoo.get_card("graphcore")
    assert (card.task, card.plugin, card.builder, card.input_size) == ("anomaly-detection", "graphcore",
                                                                       "graphcore_vig_ti", (3, 224, 224))
    assert card.fields["protocols"] == ["few-shot"]
    assert card.fields["preprocess"] == {"resize": [224, 224], "keep_ratio": False, "center_crop": None,
                                         "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406],
                                         "std": [0.229, 0.224, 0.225]}
    assert card.fields["map_smoothing"] == {"sigma": 4.0} and card.fields["metric_size"] == [224, 224]
    assert card.weights[0].url.endswith("/releases/download/vig/vig_ti_74.5.pth")
    figures = {claim: float(value) for claim, _, _, value in card.reported.figures()}
    assert figures == {"mvtec-ad.image_auroc": 89.9, "mvtec-ad.pixel_auroc": 95.6}
    assert card.reported.protocol("mvtec-ad") == {"protocol": "few-shot", "shots": 1}


def test_an_official_format_checkpoint_loads_strictly(tmp_path):
    """The release file is a plain state dict of vig_ti_224_gelu (official hubconf loads it with strict=True):
    written so here from the official layout, it goes through the core's reader into GraphCore unchanged."""
    import zoo
    from zoo.weights import load_into

    official = vig_ti_224_gelu()
    with torch.no_grad():
        official.pos_embed.normal_()
    path = tmp_path / "vig_ti_74.5.pth"
    torch.save(official.state_dict(), path)
    model = load_into(graphcore_vig_ti(), zoo.get_card("graphcore"), checkpoint=path)
    assert torch.equal(model.pos_embed, official.pos_embed)
