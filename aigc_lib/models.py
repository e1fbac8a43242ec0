"""The three hosted text-to-image models (SPEC section 5), loaded with diffusers.

:data:`MODELS` is the registry, small to large: ``sdxl-turbo`` (SDXL-Turbo, 512 px, 1 step, no
guidance), ``sd15`` (Stable Diffusion 1.5, 512 px, guidance 7.5) and ``sdxl`` (SDXL base, 1024 px,
guidance 5). :func:`load_pipeline` loads one from the Hugging Face hub or from a local folder.
Model hubs are unreachable on the development and CI machines, so :func:`tiny_pipeline` builds a
randomly initialised, seconds-fast pipeline of the same shape (UNet, VAE, CLIP text encoder,
tokenizer) entirely in code; its images say nothing about the real models.

Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports stay inside the functions that need them
    import torch

CLIP_MAX_TOKENS = 77
TINY_RESOLUTION = 32
TINY_LABEL = "random-tiny"


@dataclass(frozen=True)
class ModelEntry:
    """One hosted model: hub id, pipeline class, image side in pixels, guidance scale, scheduler.

    ``fixed_steps`` is the tuple of the only denoising-step counts the model runs (SDXL-Turbo: 1),
    or ``None`` when the step count is a decision variable z_m of SPEC section 2. ``scheduler`` is
    the diffusers scheduler class the model runs with (the one its repository ships), and
    ``scheduler_options`` the settings of the shipped configuration that matter when another
    scheduler's configuration is converted to it (for example a local folder saved with another one).
    """

    name: str
    size: str
    hub_id: str
    pipeline_class: str
    resolution: int
    guidance: float
    scheduler: str
    fixed_steps: tuple[int, ...] | None = None
    variant: str | None = "fp16"
    scheduler_options: tuple[tuple[str, Any], ...] = ()

    def steps_for(self, steps: Any) -> tuple[int, ...]:
        """The step counts this model runs when a sweep asks for ``steps`` (fixed steps win)."""
        if self.fixed_steps is not None:
            return tuple(self.fixed_steps)
        return tuple(int(s) for s in steps)


MODELS: dict[str, ModelEntry] = {
    "sdxl-turbo": ModelEntry(
        name="sdxl-turbo",
        size="small",
        hub_id="stabilityai/sdxl-turbo",
        pipeline_class="StableDiffusionXLPipeline",
        resolution=512,
        guidance=0.0,
        scheduler="EulerAncestralDiscreteScheduler",
        fixed_steps=(1,),
        scheduler_options=(("timestep_spacing", "trailing"),),
    ),
    "sd15": ModelEntry(
        name="sd15",
        size="medium",
        hub_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
        pipeline_class="StableDiffusionPipeline",
        resolution=512,
        guidance=7.5,
        scheduler="PNDMScheduler",
        scheduler_options=(("skip_prk_steps", True), ("steps_offset", 1)),
    ),
    "sdxl": ModelEntry(
        name="sdxl",
        size="large",
        hub_id="stabilityai/stable-diffusion-xl-base-1.0",
        pipeline_class="StableDiffusionXLPipeline",
        resolution=1024,
        guidance=5.0,
        scheduler="EulerDiscreteScheduler",
    ),
}
MODEL_NAMES = tuple(MODELS)


def get_model(name: str) -> ModelEntry:
    """The registry entry of model ``name`` (one of ``sdxl-turbo``, ``sd15``, ``sdxl``)."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {list(MODELS)}, got {name!r}")
    return MODELS[name]


def _resolve_dtype(dtype: Any, device: str) -> "torch.dtype":
    """``dtype`` as a torch dtype; ``None`` means float16 on a GPU and float32 elsewhere."""
    import torch

    if dtype is None:
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise ValueError(
        f"dtype must be a torch dtype or one of 'float16', 'bfloat16', 'float32', got {dtype!r}"
    )


def _dtype_keyword() -> str:
    """``dtype`` on diffusers versions that deprecate ``torch_dtype``, else ``torch_dtype``."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return (
        "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"
    )


def load_pipeline(
    name: str,
    device: str = "cuda",
    dtype: Any = None,
    local_files_only: bool = False,
    path: str | Path | None = None,
    variant: str | None = "auto",
    cache_dir: str | Path | None = None,
) -> Any:
    """Load model ``name`` of :data:`MODELS` as a diffusers pipeline on ``device``, ready to generate.

    ``path`` (a local folder in diffusers layout) replaces the hub id; ``local_files_only=True``
    never touches the network (hub cache or ``path`` only); ``cache_dir`` replaces the hub cache
    folder. ``dtype`` defaults to float16 on CUDA (with the repository's ``fp16`` weight variant
    when ``variant='auto'``) and float32 elsewhere.
    The safety checker is left out (our choice: it blanks images, which would distort CLIPScores).
    SPEC section 5.
    """
    import diffusers
    import torch

    entry = get_model(name)
    torch_dtype = _resolve_dtype(dtype, device)
    source = str(path) if path is not None else entry.hub_id
    if path is not None and not Path(path).is_dir():
        raise ValueError(f"path must be a local folder in diffusers layout, got {str(path)!r}")
    if variant == "auto":
        variant = entry.variant if (torch_dtype == torch.float16 and path is None) else None
    kwargs: dict[str, Any] = {_dtype_keyword(): torch_dtype, "local_files_only": local_files_only}
    if variant is not None:
        kwargs["variant"] = variant
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    if entry.pipeline_class == "StableDiffusionPipeline":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    pipe = getattr(diffusers, entry.pipeline_class).from_pretrained(source, **kwargs)
    if type(pipe.scheduler).__name__ != entry.scheduler:
        scheduler_cls = getattr(diffusers, entry.scheduler)
        pipe.scheduler = scheduler_cls.from_config(
            pipe.scheduler.config, **dict(entry.scheduler_options)
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _bytes_to_unicode() -> list[str]:
    """CLIP's byte-level alphabet: the 256 printable characters that stand for the 256 bytes."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    extra = [b for b in range(256) if b not in printable]
    codes = printable + [256 + i for i in range(len(extra))]
    return [chr(c) for c in codes]


def tiny_tokenizer() -> Any:
    """A CLIP tokenizer built offline: CLIP's byte-level alphabet, no merges, 77-token limit.

    Its vocabulary is the first 512 entries of every CLIP vocabulary (each byte alone and at a word
    end) plus the start and end tokens, so any text tokenizes (one token per character). Works on
    transformers 4 and 5 (written to a temporary folder and read back). Used by
    :func:`tiny_pipeline` and :func:`aigc_lib.scoring.tiny_clip`.
    """
    from transformers import CLIPTokenizer

    alphabet = _bytes_to_unicode()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "vocab.json").write_text(
            json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8"
        )
        (Path(folder) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(
            folder, model_max_length=CLIP_MAX_TOKENS, local_files_only=True
        )


def tiny_text_config(tokenizer: Any, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a 2-layer, 32-wide CLIP text transformer matching ``tokenizer``."""
    config = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.update(overrides)
    return config


def tiny_pipeline(seed: int = 0) -> Any:
    """A randomly initialised Stable-Diffusion-shaped pipeline, built in code, offline, CPU-fast.

    Same parts as SD1.5 (2-block UNet with cross-attention, 2-block VAE with latent side
    image/2, 2-layer CLIP text encoder, :func:`tiny_tokenizer`, Euler scheduler) at toy width, for
    tests and CI; generate at :data:`TINY_RESOLUTION` pixels. Same ``seed``, same weights; torch's
    global random state is left untouched. Its images carry no meaning: label results from it
    ``random-tiny``.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet, vae = _tiny_unet(UNet2DConditionModel), _tiny_vae(AutoencoderKL)
        text_encoder = CLIPTextModel(CLIPTextConfig(**tiny_text_config(tokenizer)))
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipe = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tiny_unet(unet_class: Any) -> Any:
    """:func:`tiny_pipeline`'s UNet (2 blocks, cross-attention), from torch's current random state."""
    return unet_class(
        sample_size=TINY_RESOLUTION // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=4,
    )


def _tiny_vae(vae_class: Any) -> Any:
    """:func:`tiny_pipeline`'s VAE (2 blocks, latent side image/2), from torch's random state."""
    return vae_class(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=TINY_RESOLUTION,
    )


def generate(
    pipe: Any,
    prompt: str,
    steps: int,
    seed: int,
    guidance: float,
    resolution: int,
) -> "torch.Tensor":
    """One image of ``prompt`` after ``steps`` denoising steps, as a uint8 tensor [3, H, W] on the CPU.

    The initial noise comes from a CPU ``torch.Generator`` seeded with ``seed`` (the same image on
    any device, up to kernel differences); ``guidance`` is the classifier-free guidance scale (no
    second UNet pass when <= 1); ``resolution`` is the image side in pixels.
    """
    import torch

    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if resolution < 8 or resolution % 8:
        raise ValueError(f"resolution must be a positive multiple of 8 pixels, got {resolution!r}")
    generator = torch.Generator("cpu").manual_seed(int(seed))
    out = pipe(
        prompt=prompt,
        num_inference_steps=int(steps),
        guidance_scale=float(guidance),
        height=int(resolution),
        width=int(resolution),
        generator=generator,
        output_type="pt",
    )
    image = out.images[0].detach().float().cpu()
    return (image * 255.0).round().clamp(0, 255).to(torch.uint8)
