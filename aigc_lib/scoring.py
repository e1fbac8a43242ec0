"""CLIPScore of generated images with torchmetrics (SPEC section 5).

CLIPScore(image, prompt) = 100 * max(cos(E_image, E_prompt), 0), in CLIPScore points, with
torchmetrics' :class:`torchmetrics.multimodal.CLIPScore` on uint8 images. Three pitfalls are
handled here: torchmetrics 1.9 accepts only a fixed list of hub names, so every model (hub id or
local folder) is handed over as a callable returning (model, processor); with transformers 5 the
CLIP feature methods return output objects, so the model is wrapped to return tensors; and
prompts longer than CLIP's 77 tokens are truncated by the tokenizer (keeping the end token, which
CLIP pools), not cut after tokenization. :func:`tiny_clip` builds a random CLIP model offline
for tests; its scores are labelled :data:`TINY_CLIP_LABEL` and are not CLIPScores of any real model.

Taught in ``notebooks/01_prompts_and_clipscore_distributions.ipynb``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:  # heavy imports stay inside the functions that need them
    import torch

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
TINY_CLIP_LABEL = "tiny-random-clip"
TINY_CLIP_IMAGE = 32


def _features(output: Any) -> "torch.Tensor":
    """The embedding tensor of a CLIP feature method (a tensor on transformers 4, an output object on 5)."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    if (
        isinstance(output, (tuple, list))
        and len(output) > 1
        and isinstance(output[1], torch.Tensor)
    ):
        return output[1]
    raise TypeError(f"cannot read CLIP features from {type(output).__name__}")


def _tensor_clip_class() -> type:
    """The wrapper class (built lazily so importing this module does not import torch)."""
    import torch

    class TensorFeaturesCLIP(torch.nn.Module):
        """A CLIP model whose ``get_text_features``/``get_image_features`` always return tensors."""

        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        @property
        def config(self) -> Any:
            return self.clip.config

        def get_text_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
            return _features(self.clip.get_text_features(*args, **kwargs))

        def get_image_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
            return _features(self.clip.get_image_features(*args, **kwargs))

    return TensorFeaturesCLIP


class _TruncatingProcessor:
    """A CLIP processor whose text is padded and truncated to the model's token limit by the tokenizer."""

    def __init__(self, processor: Any, max_length: int) -> None:
        self.processor = processor
        self.max_length = max_length

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("text") is not None:
            kwargs.update(truncation=True, max_length=self.max_length)
        return self.processor(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "processor":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.processor, name)


def wrap_clip(model: Any, processor: Any) -> tuple[Any, Any]:
    """(model, processor) made safe for torchmetrics: tensor features, tokenizer-side truncation."""
    wrapper = _tensor_clip_class()
    if type(model).__name__ != "TensorFeaturesCLIP":
        model = wrapper(model)
    if not isinstance(processor, _TruncatingProcessor):
        limit = int(getattr(model.config.text_config, "max_position_embeddings", 77))
        processor = _TruncatingProcessor(processor, limit)
    return model.eval(), processor


def load_clip(
    name_or_path: str | Path = DEFAULT_CLIP, local_files_only: bool = False
) -> tuple[Any, Any]:
    """A CLIP (model, processor) from a hub id or a local folder, never through torchmetrics' name list."""
    from transformers import CLIPModel, CLIPProcessor

    source = str(name_or_path)
    if not source:
        raise ValueError("name_or_path must be a hub id or a local folder, got ''")
    model = CLIPModel.from_pretrained(source, local_files_only=local_files_only)
    processor = CLIPProcessor.from_pretrained(source, local_files_only=local_files_only)
    return model, processor


def tiny_clip(seed: int = 0) -> tuple[Any, Any]:
    """A randomly initialised small CLIP (model, processor), built offline, for tests and CI.

    2-layer, 32-wide text and vision towers, 32 px images in 8 px patches, 16-dim embeddings,
    :func:`aigc_lib.models.tiny_tokenizer`. Same ``seed``, same weights; torch's global random
    state is left untouched. Scores from it are labelled ``tiny-random-clip``: never CLIPScores.
    """
    import torch
    import transformers
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor

    from aigc_lib.models import tiny_text_config, tiny_tokenizer

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    tokenizer = tiny_tokenizer()
    vision = dict(
        image_size=TINY_CLIP_IMAGE,
        patch_size=8,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
    )
    config = CLIPConfig(
        text_config=tiny_text_config(tokenizer), vision_config=vision, projection_dim=16
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
    # transformers 5 without torchvision: the PIL image processor; transformers 4: the only one
    image_cls = (
        getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    )
    image_processor = image_cls(
        size={"shortest_edge": TINY_CLIP_IMAGE},
        crop_size={"height": TINY_CLIP_IMAGE, "width": TINY_CLIP_IMAGE},
    )
    return model, CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def clip_metric(model: Any = DEFAULT_CLIP, local_files_only: bool = False) -> Any:
    """A torchmetrics ``CLIPScore`` built from ``model``, ready for :func:`clip_score`.

    ``model``: a hub id or local folder (str or Path), a (model, processor) pair, a callable
    returning one, or an existing ``CLIPScore`` (its model is wrapped in place).
    """
    from torchmetrics.multimodal import CLIPScore

    if isinstance(model, CLIPScore):
        model.model, model.processor = wrap_clip(model.model, model.processor)
        return model
    if isinstance(model, (str, Path)):
        pair = load_clip(model, local_files_only=local_files_only)
    elif isinstance(model, tuple) and len(model) == 2:
        pair = model
    elif callable(model):
        pair = model()
    else:
        raise ValueError(
            "model must be a hub id or folder, a (model, processor) pair, a callable returning one, "
            f"or a CLIPScore, got {type(model).__name__}"
        )
    wrapped = wrap_clip(*pair)
    return CLIPScore(model_name_or_path=lambda: wrapped)


def _as_uint8_batch(images: Any) -> "torch.Tensor":
    """``images`` as a uint8 tensor [N, 3, H, W] (accepts [3, H, W], [N, 3, H, W], numpy [N, H, W, 3])."""
    import torch

    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (0-255), got numpy {images.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        if tensor.ndim in (3, 4) and tensor.shape[-1] == 3 and tensor.shape[-3] != 3:
            tensor = tensor.movedim(-1, -3)
    elif isinstance(images, torch.Tensor):
        tensor = images
    elif (
        isinstance(images, (list, tuple))
        and images
        and all(isinstance(i, torch.Tensor) for i in images)
    ):
        tensor = torch.stack(list(images))
    else:
        raise ValueError(
            f"images must be a uint8 tensor [N, 3, H, W] or numpy [N, H, W, 3], got {type(images).__name__}"
        )
    if tensor.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (0-255), got {tensor.dtype}")
    if tensor.ndim == 3:
        tensor = tensor[None]
    if tensor.ndim != 4 or tensor.shape[1] != 3:
        raise ValueError(f"images must have shape [N, 3, H, W], got {tuple(tensor.shape)}")
    return tensor


def clip_score(
    images: Any,
    prompts: Sequence[str] | str,
    model: Any = DEFAULT_CLIP,
    batch_size: int = 16,
    device: str | None = None,
    local_files_only: bool = False,
) -> np.ndarray:
    """CLIPScore of each image against its prompt: 100 * max(cos, 0), in CLIPScore points.

    ``images``: uint8 [N, 3, H, W] (or [3, H, W], or numpy [N, H, W, 3]); ``prompts``: N strings,
    truncated to the model's 77 tokens. ``model``: see :func:`clip_metric` (build the metric once
    and pass it when scoring many batches). Computed ``batch_size`` images at a time on ``device``
    (default: where the images are) with torchmetrics' CLIPScore. Returns float64 array [N].
    SPEC section 5; taught in ``notebooks/01_prompts_and_clipscore_distributions.ipynb``.
    """
    import torch

    batch = _as_uint8_batch(images)
    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if len(prompt_list) != len(batch):
        raise ValueError(
            f"prompts must have one string per image ({len(batch)}), got {len(prompt_list)}"
        )
    if not all(isinstance(p, str) and p for p in prompt_list):
        raise ValueError("prompts must be non-empty strings")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    metric = clip_metric(model, local_files_only=local_files_only)
    if device is not None:
        batch = batch.to(device)
    scores = []
    with torch.inference_mode():
        for start in range(0, len(batch), batch_size):
            chunk = batch[start : start + batch_size]
            scores.append(_cosine_points(metric, chunk, prompt_list[start : start + batch_size]))
    return np.clip(np.concatenate(scores), 0.0, None)


def _cosine_points(metric: Any, images: "torch.Tensor", prompts: list[str]) -> np.ndarray:
    """100 * cos(E_image, E_prompt) per pair, by the update function of torchmetrics' CLIPScore."""
    try:
        from torchmetrics.functional.multimodal.clip_score import _clip_score_update
    except ImportError:  # private helper gone: one image per public forward call (clamped already)
        return _cosine_points_public(metric, images, prompts)
    score, _ = _clip_score_update(list(images), prompts, metric.model, metric.processor)
    return score.detach().double().cpu().numpy().reshape(-1)


def _cosine_points_public(metric: Any, images: "torch.Tensor", prompts: list[str]) -> np.ndarray:
    """Per-image CLIPScore through the public CLIPScore API (update and compute on one pair)."""
    out = []
    for image, prompt in zip(images, prompts):
        metric.reset()
        metric.update(image[None], [prompt])
        out.append(float(metric.compute()))
    metric.reset()
    return np.asarray(out, dtype=float)


def scorer(model: Any = DEFAULT_CLIP, local_files_only: bool = False) -> Callable[..., np.ndarray]:
    """A function ``(images, prompts) -> CLIPScores`` that builds the metric once and reuses it."""
    metric = clip_metric(model, local_files_only=local_files_only)

    def score(images: Any, prompts: Sequence[str] | str, device: str | None = None) -> np.ndarray:
        return clip_score(images, prompts, model=metric, device=device)

    return score
