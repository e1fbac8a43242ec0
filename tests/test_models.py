"""Tests of aigc_lib.models: the registry, the offline tiny pipeline, local-folder loading."""

from __future__ import annotations

import pytest
import torch

from aigc_lib import models

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core machine


@pytest.fixture(scope="module")
def pipe():
    return models.tiny_pipeline(0)


def test_registry_matches_spec_section_5():
    assert models.MODEL_NAMES == ("sdxl-turbo", "sd15", "sdxl")
    turbo, sd15, sdxl = (models.get_model(n) for n in models.MODEL_NAMES)
    assert (turbo.hub_id, turbo.resolution, turbo.guidance, turbo.fixed_steps) == (
        "stabilityai/sdxl-turbo",
        512,
        0.0,
        (1,),
    )
    assert (sd15.hub_id, sd15.resolution, sd15.guidance, sd15.fixed_steps) == (
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        512,
        7.5,
        None,
    )
    assert (sdxl.hub_id, sdxl.resolution, sdxl.guidance, sdxl.fixed_steps) == (
        "stabilityai/stable-diffusion-xl-base-1.0",
        1024,
        5.0,
        None,
    )
    assert [m.size for m in (turbo, sd15, sdxl)] == ["small", "medium", "large"]


def test_fixed_steps_win_over_requested_steps():
    assert models.get_model("sdxl-turbo").steps_for([10, 14]) == (1,)
    assert models.get_model("sd15").steps_for([10, 14]) == (10, 14)


def test_get_model_rejects_unknown_name():
    with pytest.raises(ValueError, match="name"):
        models.get_model("sd3")


def test_tiny_tokenizer_is_offline_clip_shaped_and_truncates_keeping_the_end_token():
    tok = models.tiny_tokenizer()
    assert len(tok) == 514 and tok.model_max_length == 77
    ids = tok("A cat!")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert len(ids) == 2 + len("acat!")  # lower-cased, one token per character, spaces dropped
    long = tok("word " * 40, truncation=True, max_length=77)["input_ids"]
    assert len(long) == 77 and long[-1] == tok.eos_token_id
    assert (
        tok.unk_token_id not in tok("ünïcødé ☃")["input_ids"][1:-1]
    )  # byte-level: nothing unknown


def test_generate_returns_uint8_image_and_is_deterministic(pipe):
    a = models.generate(pipe, "a red cube", steps=2, seed=3, guidance=7.5, resolution=32)
    b = models.generate(pipe, "a red cube", steps=2, seed=3, guidance=7.5, resolution=32)
    assert a.dtype == torch.uint8 and a.shape == (3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.equal(
        a, models.generate(pipe, "a red cube", steps=2, seed=4, guidance=7.5, resolution=32)
    )
    assert not torch.equal(
        a, models.generate(pipe, "a red cube", steps=3, seed=3, guidance=7.5, resolution=32)
    )
    assert not torch.equal(
        a, models.generate(pipe, "a red cube", steps=2, seed=3, guidance=0.0, resolution=32)
    )


def test_tiny_pipeline_same_seed_same_weights_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    p0, p0b, p1 = models.tiny_pipeline(0), models.tiny_pipeline(0), models.tiny_pipeline(1)
    assert torch.equal(torch.random.get_rng_state(), state)
    w0, w0b, w1 = (p.unet.conv_in.weight for p in (p0, p0b, p1))
    assert torch.equal(w0, w0b) and not torch.equal(w0, w1)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"resolution": 30}, "resolution"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_generate_rejects_bad_arguments(pipe, kwargs, arg):
    call = dict(prompt="a cat", steps=1, seed=0, guidance=0.0, resolution=32) | kwargs
    with pytest.raises(ValueError, match=arg):
        models.generate(pipe, **call)


def test_tiny_pipeline_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        models.tiny_pipeline(-1)


def test_load_pipeline_from_local_folder(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = models.load_pipeline(
        "sd15", "cpu", torch.float32, local_files_only=True, path=tmp_path
    )
    assert type(loaded).__name__ == "StableDiffusionPipeline"
    assert (
        type(loaded.scheduler).__name__ == models.get_model("sd15").scheduler
    )  # registry's scheduler swapped in
    assert loaded.unet.dtype == torch.float32
    for name, tensor in pipe.unet.state_dict().items():
        assert torch.equal(tensor, loaded.unet.state_dict()[name]), name
    image = models.generate(loaded, "a red cube", steps=2, seed=0, guidance=7.5, resolution=32)
    assert image.shape == (3, 32, 32)


def test_load_pipeline_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name"):
        models.load_pipeline("dalle", "cpu")
    with pytest.raises(ValueError, match="path"):
        models.load_pipeline("sd15", "cpu", path=tmp_path / "missing")
    with pytest.raises(ValueError, match="dtype"):
        models.load_pipeline("sd15", "cpu", dtype="float7", path=tmp_path)


def test_load_pipeline_local_files_only_never_downloads(tmp_path):
    with pytest.raises(OSError, match="local"):  # an empty cache and no network allowed
        models.load_pipeline(
            "sd15", "cpu", torch.float32, local_files_only=True, cache_dir=tmp_path
        )
