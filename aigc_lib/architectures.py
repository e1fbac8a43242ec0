"""The three models' public architectures, built with random weights (no hub, no downloads).

The configuration dicts below are the ``config.json`` files of the public hub repositories
(``unet/``, ``vae/``, ``text_encoder/``, ``text_encoder_2/``), copied key for key; only metadata keys
that do not change the network (``_diffusers_version``, ``_name_or_path``, ``transformers_version``,
``torch_dtype``) are left out. They were read from public copies of the hub files:

* SD1.5 (``stable-diffusion-v1-5/stable-diffusion-v1-5``): ``unet/config.json`` as first published
  (diffusers 0.6.0 key set; ``sample_size`` 64 as in the hub snapshot
  ``451f4fe16113bff5a5d2269ed5ad43b0592e9a14``), ``vae/config.json``, ``text_encoder/config.json``
  (OpenAI CLIP ViT-L/14 text tower).
* SDXL-Turbo (``stabilityai/sdxl-turbo``): ``unet/config.json`` (diffusers 0.24.0.dev0),
  ``vae/config.json``; its text encoders are SDXL's.
* SDXL (``stabilityai/stable-diffusion-xl-base-1.0``): ``unet/config.json`` has the same network keys
  as SDXL-Turbo's (SDXL-Turbo is a distillation of it) except ``sample_size`` 128;
  ``vae/config.json`` equals SDXL-Turbo's; ``text_encoder`` (CLIP ViT-L/14) and ``text_encoder_2``
  (OpenCLIP ViT-bigG/14, with projection).

The exact check that these are the real networks: the UNets have 859,520,964 (SD1.5) and
2,567,463,684 (SDXL, SDXL-Turbo) parameters (``tests/test_flops.py``).

``tiny`` variants keep each model's structure (block types, CFG, SDXL's pooled-text and
time-id conditioning, two text encoders) at a size that runs on a CPU in milliseconds; they are
for tests and ``--tiny`` dry runs only.

Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb`` (section "what one step costs").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterator, Mapping

# ---------------------------------------------------------------------------------------------
# Public hub configurations (architecture keys copied from config.json)
# ---------------------------------------------------------------------------------------------

#: stable-diffusion-v1-5/stable-diffusion-v1-5, unet/config.json (UNet2DConditionModel)
SD15_UNET: Mapping[str, Any] = MappingProxyType(
    {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": 768,
        "down_block_types": [
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ],
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 64,
        "up_block_types": [
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
        ],
    }
)

#: stable-diffusion-v1-5/stable-diffusion-v1-5, vae/config.json (AutoencoderKL)
SD15_VAE: Mapping[str, Any] = MappingProxyType(
    {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": [
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
        ],
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 512,
        "scaling_factor": 0.18215,
        "up_block_types": [
            "UpDecoderBlock2D",
            "UpDecoderBlock2D",
            "UpDecoderBlock2D",
            "UpDecoderBlock2D",
        ],
    }
)

#: text_encoder/config.json of SD1.5 and of SDXL / SDXL-Turbo (CLIP ViT-L/14 text tower)
CLIP_L_TEXT: Mapping[str, Any] = MappingProxyType(
    {
        "architectures": ["CLIPTextModel"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": "quick_gelu",
        "hidden_size": 768,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 3072,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "pad_token_id": 1,
        "projection_dim": 768,
        "vocab_size": 49408,
    }
)

#: stabilityai/sdxl-turbo, unet/config.json (UNet2DConditionModel)
SDXL_TURBO_UNET: Mapping[str, Any] = MappingProxyType(
    {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "addition_embed_type": "text_time",
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": 256,
        "attention_head_dim": [5, 10, 20],
        "attention_type": "default",
        "block_out_channels": [320, 640, 1280],
        "center_input_sample": False,
        "class_embed_type": None,
        "class_embeddings_concat": False,
        "conv_in_kernel": 3,
        "conv_out_kernel": 3,
        "cross_attention_dim": 2048,
        "cross_attention_norm": None,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1,
        "dropout": 0.0,
        "dual_cross_attention": False,
        "encoder_hid_dim": None,
        "encoder_hid_dim_type": None,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_only_cross_attention": None,
        "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "num_attention_heads": None,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": 4,
        "projection_class_embeddings_input_dim": 2816,
        "resnet_out_scale_factor": 1.0,
        "resnet_skip_time_act": False,
        "resnet_time_scale_shift": "default",
        "reverse_transformer_layers_per_block": None,
        "sample_size": 64,
        "time_cond_proj_dim": None,
        "time_embedding_act_fn": None,
        "time_embedding_dim": None,
        "time_embedding_type": "positional",
        "timestep_post_act": None,
        "transformer_layers_per_block": [1, 2, 10],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "upcast_attention": None,
        "use_linear_projection": True,
    }
)

#: stabilityai/stable-diffusion-xl-base-1.0, unet/config.json: SDXL-Turbo's network at sample_size 128
SDXL_UNET: Mapping[str, Any] = MappingProxyType(dict(SDXL_TURBO_UNET) | {"sample_size": 128})

#: stabilityai/sdxl-turbo and stable-diffusion-xl-base-1.0, vae/config.json (AutoencoderKL)
SDXL_VAE: Mapping[str, Any] = MappingProxyType(
    {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": [
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
        ],
        "force_upcast": True,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 1024,
        "scaling_factor": 0.13025,
        "up_block_types": [
            "UpDecoderBlock2D",
            "UpDecoderBlock2D",
            "UpDecoderBlock2D",
            "UpDecoderBlock2D",
        ],
    }
)

#: text_encoder_2/config.json of SDXL / SDXL-Turbo (OpenCLIP ViT-bigG/14 text tower, with projection)
OPENCLIP_BIGG_TEXT: Mapping[str, Any] = MappingProxyType(
    {
        "architectures": ["CLIPTextModelWithProjection"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": "gelu",
        "hidden_size": 1280,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 5120,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 20,
        "num_hidden_layers": 32,
        "pad_token_id": 1,
        "projection_dim": 1280,
        "vocab_size": 49408,
    }
)

# ---------------------------------------------------------------------------------------------
# Tiny look-alikes for CPU tests (same structure, tiny widths; diffusers' own tests use these sizes)
# ---------------------------------------------------------------------------------------------

_TINY_TEXT = {
    "architectures": ["CLIPTextModel"],
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
    "hidden_act": "gelu",
    "hidden_size": 32,
    "intermediate_size": 37,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "model_type": "clip_text_model",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "projection_dim": 32,
    "vocab_size": 1000,
}
TINY_TEXT: Mapping[str, Any] = MappingProxyType(dict(_TINY_TEXT))
TINY_TEXT_WITH_PROJECTION: Mapping[str, Any] = MappingProxyType(
    _TINY_TEXT | {"architectures": ["CLIPTextModelWithProjection"]}
)

TINY_SD15_UNET: Mapping[str, Any] = MappingProxyType(
    {
        "_class_name": "UNet2DConditionModel",
        "attention_head_dim": 8,
        "block_out_channels": [32, 64],
        "cross_attention_dim": 32,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "in_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 16,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    }
)

TINY_SDXL_UNET: Mapping[str, Any] = MappingProxyType(
    {
        "_class_name": "UNet2DConditionModel",
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 8,
        "attention_head_dim": [2, 4],
        "block_out_channels": [32, 64],
        "cross_attention_dim": 64,  # = 32 (tiny CLIP-L) + 32 (tiny bigG), as 768 + 1280 = 2048
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "in_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 32,
        "out_channels": 4,
        "projection_class_embeddings_input_dim": 80,  # = 32 pooled text + 6 time ids x 8, as 1280 + 6 x 256
        "sample_size": 16,
        "transformer_layers_per_block": [1, 2],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "use_linear_projection": True,
    }
)

TINY_VAE: Mapping[str, Any] = MappingProxyType(
    {
        "_class_name": "AutoencoderKL",
        "block_out_channels": [32, 64],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 32,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    }
)

TINY_SDXL_VAE: Mapping[str, Any] = MappingProxyType(
    dict(TINY_VAE) | {"force_upcast": True}
)  # as SDXL's


# ---------------------------------------------------------------------------------------------
# One model = its networks + how its pipeline calls them per image
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """One text-to-image model: its network configs and how the diffusers pipeline calls them.

    ``resolution``: image side in pixels at which the model is served (SPEC section 5).
    ``cfg_batch``: UNet batch per denoising step for one image (2 with classifier-free guidance:
    conditional and unconditional halves; 1 without, as for SDXL-Turbo at guidance 0).
    ``text_encodings``: prompt encodings per image through every text encoder (2 for SD1.5 with
    CFG, whose pipeline also encodes the empty negative prompt; 1 for SDXL, whose pipeline uses
    zeros for an empty negative prompt, ``force_zeros_for_empty_prompt``).
    """

    name: str
    unet: Mapping[str, Any]
    vae: Mapping[str, Any]
    text_encoders: tuple[Mapping[str, Any], ...]
    resolution: int
    cfg_batch: int
    text_encodings: int
    tiny: bool = False

    @property
    def vae_scale(self) -> int:
        """Pixels per latent pixel: 2 ** (number of VAE blocks - 1) (8 for the real models)."""
        return 2 ** (len(self.vae["block_out_channels"]) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.get("latent_channels", 4))

    @property
    def text_length(self) -> int:
        """Tokens per prompt encoding (CLIP's 77)."""
        return int(self.text_encoders[0].get("max_position_embeddings", 77))

    @property
    def conditioned_on_pooled_text(self) -> bool:
        """True for SDXL-style UNets that also take pooled text embeds and 6 time ids."""
        return self.unet.get("addition_embed_type") == "text_time"

    def latent_size(self, resolution: int | None = None) -> int:
        """Latent side for an image of ``resolution`` pixels (resolution / vae_scale)."""
        resolution = self.resolution if resolution is None else resolution
        if not isinstance(resolution, int) or resolution <= 0 or resolution % self.vae_scale:
            raise ValueError(
                f"resolution: expected a positive multiple of {self.vae_scale} pixels, got {resolution!r}"
            )
        return resolution // self.vae_scale


ARCHITECTURES: Mapping[str, Architecture] = MappingProxyType(
    {
        "sdxl-turbo": Architecture(
            "sdxl-turbo",
            SDXL_TURBO_UNET,
            SDXL_VAE,
            (CLIP_L_TEXT, OPENCLIP_BIGG_TEXT),
            resolution=512,
            cfg_batch=1,
            text_encodings=1,
        ),
        "sd15": Architecture(
            "sd15",
            SD15_UNET,
            SD15_VAE,
            (CLIP_L_TEXT,),
            resolution=512,
            cfg_batch=2,
            text_encodings=2,
        ),
        "sdxl": Architecture(
            "sdxl",
            SDXL_UNET,
            SDXL_VAE,
            (CLIP_L_TEXT, OPENCLIP_BIGG_TEXT),
            resolution=1024,
            cfg_batch=2,
            text_encodings=1,
        ),
    }
)

TINY_ARCHITECTURES: Mapping[str, Architecture] = MappingProxyType(
    {
        "sdxl-turbo": Architecture(
            "sdxl-turbo",
            TINY_SDXL_UNET,
            TINY_SDXL_VAE,
            (TINY_TEXT, TINY_TEXT_WITH_PROJECTION),
            resolution=32,
            cfg_batch=1,
            text_encodings=1,
            tiny=True,
        ),
        "sd15": Architecture(
            "sd15",
            TINY_SD15_UNET,
            TINY_VAE,
            (TINY_TEXT,),
            resolution=32,
            cfg_batch=2,
            text_encodings=2,
            tiny=True,
        ),
        "sdxl": Architecture(
            "sdxl",
            TINY_SDXL_UNET,
            TINY_SDXL_VAE,
            (TINY_TEXT, TINY_TEXT_WITH_PROJECTION),
            resolution=64,
            cfg_batch=2,
            text_encodings=1,
            tiny=True,
        ),
    }
)

MODEL_NAMES = tuple(ARCHITECTURES)


def get_architecture(name: str, tiny: bool = False) -> Architecture:
    """The :class:`Architecture` of model ``name`` (``sdxl-turbo``, ``sd15``, ``sdxl``); ``tiny`` for CPU tests."""
    table = TINY_ARCHITECTURES if tiny else ARCHITECTURES
    if name not in table:
        raise ValueError(f"name: expected one of {list(table)}, got {name!r}")
    return table[name]


# ---------------------------------------------------------------------------------------------
# Builders: random weights, made directly on the target device ("meta": shapes only, no memory)
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _on(device: Any, dtype: Any) -> Iterator[None]:
    """Create tensors on ``device`` with default floating dtype ``dtype`` (restored afterwards)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def torch_dtype(dtype: Any) -> Any:
    """A floating ``torch.dtype`` from a name (``fp16``, ``bf16``, ``fp32`` ...) or a dtype; None -> float32."""
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        named = {
            "fp32": torch.float32,
            "float32": torch.float32,
            "fp16": torch.float16,
            "float16": torch.float16,
            "bf16": torch.bfloat16,
            "bfloat16": torch.bfloat16,
        }
        if dtype not in named:
            raise ValueError(f"dtype: expected one of {sorted(named)}, got {dtype!r}")
        return named[dtype]
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    return dtype


def build_unet(arch: Architecture, device: Any = "meta", dtype: Any = None) -> Any:
    """The UNet (``diffusers.UNet2DConditionModel``) of ``arch`` with random weights, on ``device``, in eval mode."""
    from diffusers import UNet2DConditionModel

    with _on(device, torch_dtype(dtype)):
        return UNet2DConditionModel.from_config(dict(arch.unet)).eval()


def build_vae(arch: Architecture, device: Any = "meta", dtype: Any = None) -> Any:
    """The VAE (``diffusers.AutoencoderKL``) of ``arch`` with random weights, on ``device``, in eval mode."""
    from diffusers import AutoencoderKL

    with _on(device, torch_dtype(dtype)):
        return AutoencoderKL.from_config(dict(arch.vae)).eval()


def build_text_encoders(arch: Architecture, device: Any = "meta", dtype: Any = None) -> list:
    """The text encoder(s) (``transformers`` CLIP text towers) of ``arch``, random weights, eval mode."""
    import transformers

    encoders = []
    for config in arch.text_encoders:
        kind = config["architectures"][0]
        if kind not in ("CLIPTextModel", "CLIPTextModelWithProjection"):
            raise ValueError(f"arch: unsupported text encoder {kind!r}")
        fields = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
        with _on(device, torch_dtype(dtype)):
            model = getattr(transformers, kind)(transformers.CLIPTextConfig(**fields))
        encoders.append(model.eval())
    return encoders


def parameter_count(module: Any) -> int:
    """Number of parameters of a torch module (works on the meta device)."""
    return int(sum(p.numel() for p in module.parameters()))


# ---------------------------------------------------------------------------------------------
# Inputs of one call, as the diffusers pipelines make them
# ---------------------------------------------------------------------------------------------


def token_ids(arch: Architecture, batch: int = 1, device: Any = "meta") -> Any:
    """Token ids (batch, 77) of ``batch`` prompts, padded to CLIP's full length as the pipelines do."""
    import torch

    _positive(batch, "batch")
    ids = torch.full(
        (batch, arch.text_length),
        int(arch.text_encoders[0].get("pad_token_id", 1)),
        dtype=torch.long,
        device=device,
    )
    ids[:, 0] = int(arch.text_encoders[0].get("bos_token_id", 0))
    ids[:, -1] = int(arch.text_encoders[0].get("eos_token_id", 2))
    return ids


def encode_text(arch: Architecture, encoders: list, ids: Any) -> tuple[Any, Any | None]:
    """Run every text encoder on ``ids`` as the pipeline does; returns (prompt embeds, pooled embeds or None).

    SD1.5 uses the last hidden state; SDXL concatenates the penultimate hidden states of both
    encoders (768 + 1280 = 2048 features) and takes the second encoder's projected pooled output.
    """
    if not arch.conditioned_on_pooled_text:
        return encoders[0](ids)[0], None
    import torch

    states, pooled = [], None
    for encoder in encoders:
        out = encoder(ids, output_hidden_states=True)
        states.append(out.hidden_states[-2])
        pooled = out[0]  # text_embeds of the projection model (the last encoder)
    return torch.cat(states, dim=-1), pooled


def unet_inputs(
    arch: Architecture,
    batch: int | None = None,
    resolution: int | None = None,
    device: Any = "meta",
    dtype: Any = None,
) -> tuple[tuple, dict]:
    """Positional and keyword arguments of one UNet call with random values (CFG batch by default).

    SDXL-style UNets also get ``added_cond_kwargs`` (pooled ``text_embeds`` and 6 ``time_ids``:
    original size, crop corner, target size).
    """
    import torch

    batch = arch.cfg_batch if batch is None else batch
    _positive(batch, "batch")
    side = arch.latent_size(resolution)
    dtype = torch_dtype(dtype)
    sample = torch.randn(
        batch, int(arch.unet.get("in_channels", 4)), side, side, device=device, dtype=dtype
    )
    timestep = torch.full((batch,), 999, dtype=torch.long, device=device)
    context = torch.randn(
        batch, arch.text_length, int(arch.unet["cross_attention_dim"]), device=device, dtype=dtype
    )
    kwargs: dict[str, Any] = {"encoder_hidden_states": context}
    if arch.conditioned_on_pooled_text:
        pooled = int(arch.unet["projection_class_embeddings_input_dim"]) - 6 * int(
            arch.unet["addition_time_embed_dim"]
        )
        size = float(resolution or arch.resolution)
        time_ids = torch.tensor(
            [[size, size, 0.0, 0.0, size, size]] * batch, device=device, dtype=dtype
        )
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, pooled, device=device, dtype=dtype),
            "time_ids": time_ids,
        }
    return (sample, timestep), kwargs


def vae_latents(
    arch: Architecture,
    resolution: int | None = None,
    batch: int = 1,
    device: Any = "meta",
    dtype: Any = None,
) -> Any:
    """Random latents (batch, 4, side, side) for one VAE decode of an image of ``resolution`` pixels."""
    import torch

    _positive(batch, "batch")
    side = arch.latent_size(resolution)
    return torch.randn(
        batch, arch.latent_channels, side, side, device=device, dtype=torch_dtype(dtype)
    )


def _positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive whole number, got {value!r}")
