"""FLOP counts of the real architectures (aigc_lib.flops, aigc_lib.architectures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import architectures as arch_lib
from aigc_lib import flops

DATA = Path(__file__).resolve().parent.parent / "data"

# docs/SPEC.md section 4, data/SOURCES.md: TFLOP per denoising step (2 FLOP per multiply-add)
TARGETS = {"sd15": 1.607, "sdxl": 13.522, "sdxl-turbo": 1.589}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """A fresh count of all three models (about 10 s on 2 cores)."""
    return flops.flop_table()


def _value(frame: pd.DataFrame, model: str, component: str) -> float:
    rows = frame[(frame["model"] == model) & (frame["component"] == component)]
    assert len(rows) == 1
    return float(rows["tflop"].iloc[0])


@pytest.mark.parametrize("model", sorted(TARGETS))
def test_unet_step_matches_published_count(table, model):
    assert _value(table, model, "unet_step") == pytest.approx(TARGETS[model], rel=0.01)


def test_25_sdxl_steps_are_the_papers_338_tflop(table):
    assert 25 * _value(table, "sdxl", "unet_step") == pytest.approx(338, rel=0.01)


def test_fixed_work_is_in_the_published_range(table):
    assert _value(table, "sd15", "vae_decode") == pytest.approx(2.5, rel=0.05)
    assert _value(table, "sdxl", "vae_decode") == pytest.approx(10.5, rel=0.05)
    for model in TARGETS:
        assert 0.01 < _value(table, model, "text_encode") < 0.25


def test_table_layout_is_what_the_scenario_reads(table):
    assert list(table.columns) == list(flops.TABLE_COLUMNS)
    assert len(table) == 9
    assert not table.duplicated(["model", "component"]).any()
    assert set(table["component"]) == set(flops.COMPONENTS)
    assert (table["tflop"] > 0).all()
    assert dict(zip(table["model"], table["resolution"])) == {
        "sd15": 512,
        "sdxl-turbo": 512,
        "sdxl": 1024,
    }


def test_stored_table_equals_a_fresh_count(table):
    stored = pd.read_csv(DATA / "flops.csv")
    assert list(stored.columns) == list(table.columns)
    merged = stored.merge(
        table, on=["model", "component"], suffixes=("_stored", "_fresh"), validate="one_to_one"
    )
    assert len(merged) == len(table)
    assert (merged["resolution_stored"] == merged["resolution_fresh"]).all()
    assert (merged["batch_stored"] == merged["batch_fresh"]).all()
    np.testing.assert_allclose(merged["tflop_stored"], merged["tflop_fresh"], rtol=1e-9)


def test_unet_parameter_counts_are_exact():
    assert flops.parameter_counts("sd15")["unet"] == 859_520_964
    sdxl = flops.parameter_counts("sdxl")
    assert sdxl["unet"] == 2_567_463_684
    assert flops.parameter_counts("sdxl-turbo") == sdxl  # same networks, other weights
    assert (
        sdxl["text_encoders"] == 123_060_480 + 694_659_840
    )  # CLIP ViT-L/14 + OpenCLIP ViT-bigG/14 text


def test_counts_the_pipelines_calls(table):
    # SD1.5 encodes the prompt and the empty negative prompt; SDXL one prompt through both encoders
    assert _value(table, "sd15", "text_encode") == pytest.approx(
        2 * flops.text_encode_tflop("sd15", encodings=1)
    )
    assert _value(table, "sdxl", "text_encode") == pytest.approx(
        _value(table, "sdxl-turbo", "text_encode")
    )
    # SDXL-Turbo at 512 without CFG is a quarter of the pixels and half the batch of SDXL at 1024 with CFG
    assert _value(table, "sdxl-turbo", "unet_step") < _value(table, "sdxl", "unet_step") / 8


def _attention_on_meta(query_dim, heads, dim_head, tokens, context=None):
    from diffusers.models.attention_processor import Attention

    with torch.device("meta"):
        layer = Attention(
            query_dim=query_dim,
            heads=heads,
            dim_head=dim_head,
            cross_attention_dim=None if context is None else context[1],
        )
        hidden = torch.randn(2, tokens, query_dim)
        encoder = None if context is None else torch.randn(2, context[0], context[1])
    return flops.count_tflop(layer, hidden, encoder_hidden_states=encoder)


def test_self_attention_is_counted_like_a_hand_count():
    # SD1.5's first self-attention: 64 x 64 latent = 4096 tokens, 320 channels, 8 heads of 40, CFG batch 2
    b, n, c = 2, 4096, 320
    projections = 4 * 2 * b * n * c * c / 1e12  # q, k, v, out
    expected = projections + flops.attention_tflop(b, 8, n, n, 40)
    assert _attention_on_meta(c, 8, 40, n) == pytest.approx(expected, rel=1e-12)


def test_cross_attention_is_counted_like_a_hand_count():
    b, n, c, m, d = 2, 1024, 640, 77, 768
    projections = (
        2 * 2 * b * n * c * c + 2 * 2 * b * m * d * c
    ) / 1e12  # q, out; k, v from the text
    expected = projections + flops.attention_tflop(b, 8, n, m, 80)
    assert _attention_on_meta(c, 8, 80, n, context=(m, d)) == pytest.approx(expected, rel=1e-12)


@settings(deadline=None, max_examples=5)
@given(batch=st.integers(1, 4))
def test_unet_work_is_proportional_to_the_batch(batch):
    one = flops.unet_step_tflop("sdxl", batch=1, tiny=True)
    assert flops.unet_step_tflop("sdxl", batch=batch, tiny=True) == pytest.approx(
        batch * one, rel=1e-12
    )


def test_vae_work_grows_at_least_with_the_pixels():
    small = flops.vae_decode_tflop("sd15", resolution=32, tiny=True)
    large = flops.vae_decode_tflop("sd15", resolution=64, tiny=True)
    assert 4 * small <= large < 5 * small  # convolutions x4; attention grows faster


def test_same_arguments_same_count():
    assert flops.unet_step_tflop("sd15", tiny=True) == flops.unet_step_tflop("sd15", tiny=True)


def test_cli_writes_the_table(tmp_path, capsys):
    out = tmp_path / "sub" / "flops.csv"
    assert flops.main(["--out", str(out), "--tiny", "--models", "sd15", "sdxl"]) == 0
    written = pd.read_csv(out)
    assert list(written.columns) == list(flops.TABLE_COLUMNS)
    assert sorted(written["model"].unique()) == ["sd15", "sdxl"]
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left no temporary file
    assert "wrote" in capsys.readouterr().out


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="name"):
        flops.unet_step_tflop("sd3")
    with pytest.raises(ValueError, match="resolution"):
        flops.unet_step_tflop("sd15", resolution=500)
    with pytest.raises(ValueError, match="batch"):
        flops.unet_step_tflop("sd15", batch=0)
    with pytest.raises(ValueError, match="heads"):
        flops.attention_tflop(1, 0, 4, 4, 8)
    with pytest.raises(ValueError, match="models"):
        flops.flop_table(models=[])
    with pytest.raises(ValueError, match="dtype"):
        arch_lib.build_unet(arch_lib.get_architecture("sd15", tiny=True), dtype="int8")


def test_tiny_variants_keep_the_structure():
    for name in arch_lib.MODEL_NAMES:
        real, tiny = arch_lib.get_architecture(name), arch_lib.get_architecture(name, tiny=True)
        assert tiny.cfg_batch == real.cfg_batch
        assert tiny.text_encodings == real.text_encodings
        assert len(tiny.text_encoders) == len(real.text_encoders)
        assert tiny.conditioned_on_pooled_text == real.conditioned_on_pooled_text
    assert arch_lib.get_architecture("sdxl").latent_size() == 128


def test_architectures_agree_with_the_model_registry():
    from aigc_lib import models

    for name in arch_lib.MODEL_NAMES:
        entry, arch = models.get_model(name), arch_lib.get_architecture(name)
        assert arch.resolution == entry.resolution
        assert (arch.cfg_batch == 2) == (entry.guidance > 1)  # diffusers runs CFG when guidance > 1
    assert set(arch_lib.MODEL_NAMES) == set(models.MODEL_NAMES)
