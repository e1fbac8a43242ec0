"""Tests of aigc_lib.scoring: torchmetrics CLIPScore against the formula, by hand, on a tiny random CLIP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st
from torchmetrics.multimodal import CLIPScore

from aigc_lib import scoring

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core machine

PROMPTS = [
    "a red cube on a table",
    "an astronaut riding a horse",
    "a bowl of soup that looks like a monster, knitted out of wool",
    "the skyline of a city at night",
    "a cat",
    "a dog",
]


@pytest.fixture(scope="module")
def clip():
    return scoring.tiny_clip(0)


@pytest.fixture(scope="module")
def metric(clip):
    return scoring.clip_metric(clip)


def random_images(n: int, seed: int, side: int = 40) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def by_hand(clip, images: torch.Tensor, prompts: list[str]) -> np.ndarray:
    """100 * max(cos(E_image, E_text), 0), with the model and processor called directly."""
    model, processor = clip
    with torch.no_grad():
        pixels = processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
        text = processor.tokenizer(
            prompts, padding=True, truncation=True, max_length=77, return_tensors="pt"
        )
        image_emb = scoring._features(model.get_image_features(pixel_values=pixels))
        text_emb = scoring._features(model.get_text_features(**text))
    cos = torch.nn.functional.cosine_similarity(image_emb.double(), text_emb.double(), dim=-1)
    return (100 * cos.clamp(min=0)).numpy()


def test_clip_score_equals_formula_by_hand(clip, metric):
    images = random_images(len(PROMPTS), seed=1)
    got = scoring.clip_score(images, PROMPTS, model=metric, batch_size=4)
    want = by_hand(clip, images, PROMPTS)
    assert got.shape == (len(PROMPTS),) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert (got > 0).any() and (got == 0).any()  # both branches of max(cos, 0) exercised


def test_each_score_equals_torchmetrics_clipscore_on_that_pair(clip, metric):
    images = random_images(4, seed=2)
    got = scoring.clip_score(images, PROMPTS[:4], model=metric)
    for image, prompt, score in zip(images, PROMPTS[:4], got):
        single = CLIPScore(model_name_or_path=lambda: scoring.wrap_clip(*clip))
        single.update(image[None], [prompt])
        assert float(single.compute()) == pytest.approx(score, abs=1e-3)


@pytest.mark.skipif(
    int(transformers.__version__.split(".")[0]) < 5, reason="transformers 5 pitfall only"
)
def test_unwrapped_model_breaks_torchmetrics_on_transformers_5(clip):
    raw = CLIPScore(model_name_or_path=lambda: clip)
    with pytest.raises(AttributeError):
        raw.update(random_images(1, seed=0), ["a cat"])


def test_long_prompts_are_truncated_to_77_tokens_keeping_the_end_token(clip, metric):
    long = "a cat sitting on a very long sofa " * 6  # ~170 tokens with the tiny tokenizer
    assert len(clip[1].tokenizer(long)["input_ids"]) > 77
    images = random_images(2, seed=3)
    got = scoring.clip_score(images, [long, long + " and more words after the limit"], model=metric)
    np.testing.assert_allclose(got, by_hand(clip, images, [long, long]), atol=1e-3)
    np.testing.assert_allclose(
        scoring.clip_score(images[:1], [long + " tail"], model=metric),
        scoring.clip_score(images[:1], [long], model=metric),
        atol=1e-6,
    )


def test_batch_size_does_not_change_scores(metric):
    images = random_images(5, seed=4)
    a = scoring.clip_score(images, PROMPTS[:5], model=metric, batch_size=1)
    b = scoring.clip_score(images, PROMPTS[:5], model=metric, batch_size=16)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_numpy_hwc_and_single_image_inputs(metric):
    images = random_images(2, seed=5)
    want = scoring.clip_score(images, PROMPTS[:2], model=metric)
    hwc = images.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(scoring.clip_score(hwc, PROMPTS[:2], model=metric), want, atol=1e-6)
    np.testing.assert_allclose(
        scoring.clip_score(images[0], PROMPTS[0], model=metric), want[:1], atol=1e-6
    )


def test_local_folder_model_gives_the_same_scores(clip, metric, tmp_path):
    model, processor = clip
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    images = random_images(3, seed=6)
    from_folder = scoring.clip_score(
        images, PROMPTS[:3], model=str(tmp_path), local_files_only=True
    )
    np.testing.assert_allclose(
        from_folder, scoring.clip_score(images, PROMPTS[:3], model=metric), atol=1e-4
    )


def test_tiny_clip_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = scoring.tiny_clip(0)[0], scoring.tiny_clip(0)[0], scoring.tiny_clip(1)[0]
    assert torch.equal(torch.random.get_rng_state(), state)
    wa, wb, wc = (m.text_projection.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_scorer_reuses_one_metric(clip):
    score = scoring.scorer(clip)
    images = random_images(2, seed=7)
    np.testing.assert_allclose(
        score(images, PROMPTS[:2]), by_hand(clip, images, PROMPTS[:2]), atol=1e-3
    )


@settings(deadline=None, max_examples=8)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 3))
def test_scores_are_clipscore_points_between_0_and_100(metric, seed, n):
    scores = scoring.clip_score(random_images(n, seed, side=32), PROMPTS[:n], model=metric)
    assert scores.shape == (n,) and np.all((scores >= 0) & (scores <= 100))


def test_features_reads_tensors_and_output_objects():
    t = torch.ones(2, 4)
    assert scoring._features(t) is t
    output_cls = transformers.modeling_outputs.BaseModelOutputWithPooling
    out = output_cls(last_hidden_state=torch.zeros(2, 3, 4), pooler_output=t)
    assert scoring._features(out) is t
    with pytest.raises(TypeError):
        scoring._features("nothing")


@pytest.mark.parametrize(
    "images, prompts, kwargs, arg",
    [
        (torch.rand(1, 3, 8, 8), ["a cat"], {}, "images"),
        (np.zeros((1, 8, 8, 3), dtype=np.float32), ["a cat"], {}, "images"),
        (torch.zeros(1, 4, 8, 8, dtype=torch.uint8), ["a cat"], {}, "images"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), ["a cat"], {}, "prompts"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), [""], {}, "prompts"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), ["a cat"], {"batch_size": 0}, "batch_size"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), ["a cat"], {"model": 3}, "model"),
    ],
)
def test_clip_score_rejects_bad_input(metric, images, prompts, kwargs, arg):
    kwargs = {"model": metric} | kwargs
    with pytest.raises(ValueError, match=arg):
        scoring.clip_score(images, prompts, **kwargs)
