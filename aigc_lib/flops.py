"""FLOP counts of the three models' real architectures: F_m and F0_m of SPEC section 2.

Each network is built from its public config (:mod:`aigc_lib.architectures`) on PyTorch's
``meta`` device (shapes only: no weights, no memory, no arithmetic) and one call is counted with
``torch.utils.flop_counter.FlopCounterMode`` (2 FLOP per multiply-add). On ``meta`` the attention
of ``scaled_dot_product_attention`` is counted through its matrix products; on real CPU tensors
the fused attention kernel has no FLOP formula and would count as 0, so counts are always taken on
``meta`` (checked against a hand count in ``tests/test_flops.py``).

Components, per image: ``unet_step`` = one denoising step, the UNet on the model's CFG batch
(2 for SD1.5 and SDXL, 1 for SDXL-Turbo); ``vae_decode`` = one VAE decode; ``text_encode`` = the
pipeline's prompt encodings through all text encoders. Work per image W_m(z) = z F_m + F0_m,
F_m = ``unet_step``, F0_m = ``vae_decode`` + ``text_encode``.

Command line (writes the table atomically)::

    python -m aigc_lib.flops --out data/flops.csv

Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb`` (section "what one step costs").
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Callable, Sequence

from aigc_lib import architectures as arch_lib

if TYPE_CHECKING:  # pandas is imported where a table is made, so the GPU benchmark runs without it
    import pandas as pd

COMPONENTS = ("unet_step", "vae_decode", "text_encode")
TABLE_COLUMNS = ("model", "resolution", "component", "batch", "tflop")


def count_tflop(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """TFLOP (1e12 FLOP, 2 per multiply-add) of one call ``fn(*args, **kwargs)``, counted by FlopCounterMode.

    Give it meta-device modules and tensors to count without computing.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops() / 1e12


def attention_tflop(batch: int, heads: int, queries: int, keys: int, head_dim: int) -> float:
    """Hand count of one attention core, softmax(Q K^T) V, in TFLOP: 2 matmuls x 2 FLOP per multiply-add.

    = 4 * batch * heads * queries * keys * head_dim / 1e12 (projections not included).
    """
    sizes = {"batch": batch, "heads": heads, "queries": queries, "keys": keys, "head_dim": head_dim}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive whole number, got {value!r}")
    return 4.0 * batch * heads * queries * keys * head_dim / 1e12


def unet_step_tflop(
    name: str, resolution: int | None = None, batch: int | None = None, tiny: bool = False
) -> float:
    """F_m: TFLOP of one denoising step (one UNet call on ``batch`` latents, default the CFG batch).

    ``resolution``: image side in pixels (default the model's serving resolution). SPEC section 2.
    """
    arch = arch_lib.get_architecture(name, tiny)
    unet = arch_lib.build_unet(arch, device="meta")
    args, kwargs = arch_lib.unet_inputs(arch, batch=batch, resolution=resolution, device="meta")
    return count_tflop(unet, *args, **kwargs)


def vae_decode_tflop(name: str, resolution: int | None = None, tiny: bool = False) -> float:
    """TFLOP of one VAE decode of an image of ``resolution`` pixels (part of F0_m, SPEC section 2)."""
    arch = arch_lib.get_architecture(name, tiny)
    vae = arch_lib.build_vae(arch, device="meta")
    return count_tflop(vae.decode, arch_lib.vae_latents(arch, resolution, device="meta"))


def text_encode_tflop(name: str, encodings: int | None = None, tiny: bool = False) -> float:
    """TFLOP of ``encodings`` prompt encodings (default the pipeline's, per image) through all text encoders.

    Part of F0_m (SPEC section 2). Each encoding is one 77-token sequence.
    """
    arch = arch_lib.get_architecture(name, tiny)
    encodings = arch.text_encodings if encodings is None else encodings
    encoders = arch_lib.build_text_encoders(arch, device="meta")
    ids = arch_lib.token_ids(arch, batch=encodings, device="meta")
    return count_tflop(arch_lib.encode_text, arch, encoders, ids)


def parameter_counts(name: str, tiny: bool = False) -> dict[str, int]:
    """Parameters of each network of model ``name``: ``unet``, ``vae``, ``text_encoders`` (sum of all).

    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    arch = arch_lib.get_architecture(name, tiny)
    return {
        "unet": arch_lib.parameter_count(arch_lib.build_unet(arch)),
        "vae": arch_lib.parameter_count(arch_lib.build_vae(arch)),
        "text_encoders": sum(
            arch_lib.parameter_count(e) for e in arch_lib.build_text_encoders(arch)
        ),
    }


def flop_table(models: Sequence[str] | None = None, tiny: bool = False) -> pd.DataFrame:
    """TFLOP per component of each model at its serving resolution: F_m and F0_m of SPEC section 2.

    Columns: ``model``, ``resolution`` (pixels), ``component`` (``unet_step``, ``vae_decode``,
    ``text_encode``), ``batch`` (UNet CFG batch / decodes / prompt encodings counted), ``tflop``.
    One row per (model, component), the layout :func:`aigc_lib.scenario.load_scenario` reads.
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    import pandas as pd

    models = list(arch_lib.MODEL_NAMES if models is None else models)
    if not models:
        raise ValueError("models: expected at least one model name")
    rows = []
    for name in models:
        arch = arch_lib.get_architecture(name, tiny)
        rows.append(
            (name, arch.resolution, "unet_step", arch.cfg_batch, unet_step_tflop(name, tiny=tiny))
        )
        rows.append((name, arch.resolution, "vae_decode", 1, vae_decode_tflop(name, tiny=tiny)))
        rows.append(
            (
                name,
                arch.resolution,
                "text_encode",
                arch.text_encodings,
                text_encode_tflop(name, tiny=tiny),
            )
        )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def main(argv: Sequence[str] | None = None) -> int:
    """Count the FLOP table and write it as CSV (``--out``, atomically); print it."""
    parser = argparse.ArgumentParser(
        prog="python -m aigc_lib.flops", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", default="data/flops.csv", help="CSV path to write (default data/flops.csv)"
    )
    parser.add_argument(
        "--models", nargs="+", default=list(arch_lib.MODEL_NAMES), choices=arch_lib.MODEL_NAMES
    )
    parser.add_argument("--tiny", action="store_true", help="count the tiny test variants instead")
    args = parser.parse_args(argv)
    import pandas as pd

    from aigc_lib._io import write_csv

    table = flop_table(args.models, tiny=args.tiny)
    write_csv(args.out, table)
    with pd.option_context("display.width", 120):
        print(table.to_string(index=False))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
