"""GPU latency of the three models, built from their public configs with random weights (issue 6).

Measures, at batch 1 (one prompt; the UNet runs on the model's CFG batch), synchronised, as the
median of ``--repeats`` runs after ``--warmup`` runs: seconds per denoising step (UNet call),
per text encoding (all the pipeline's prompt encodings), per VAE decode, and the whole image at
steps 10, 14, ..., 42 (1 for SDXL-Turbo) composed as text + z x step + VAE, plus a measured
end-to-end image (text, z steps of the model's scheduler with CFG, VAE decode, copy to host) at
a few z to check the composition. With FLOP counts from :mod:`aigc_lib.flops` it reports achieved TFLOPS and the
fraction of the GPU's dense fp16 peak.

Models: SDXL-Turbo at 512 (1 step, no CFG), SD1.5 at 512 (CFG), SDXL at 1024 (CFG); fp16 weights
made directly on the GPU (no hub, no download), PyTorch SDPA attention. As the diffusers SDXL
pipeline does, a VAE whose config says ``force_upcast`` decodes in fp32 (``--vae-upcast never``
to keep fp16). Tokenisation is not timed (random token ids of CLIP's 77 tokens).

Writes ``data/profiles/latency_<gpu>.csv`` (atomically, after each model, so an early stop keeps
what was measured): one row per (model, component) and per (model, image, steps), with the GPU
name and the torch and diffusers versions.

    python benchmarks/gpu_latency.py                      # on the GPU, all three models
    python benchmarks/gpu_latency.py --device cpu --tiny --out /tmp/latency.csv   # dry run, seconds

Needs torch, diffusers, transformers and this package (``aigc_lib``; its ``_io`` imports pandas). Taught in
``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from aigc_lib import architectures as arch_lib
from aigc_lib import flops as flops_lib

DEFAULT_STEPS = tuple(range(10, 43, 4))
COLUMNS = (
    "gpu",
    "device",
    "torch_version",
    "diffusers_version",
    "dtype",
    "vae_dtype",
    "attention",
    "tiny",
    "model",
    "resolution",
    "component",
    "steps",
    "batch",
    "seconds",
    "seconds_min",
    "seconds_max",
    "runs",
    "tflop",
    "achieved_tflops",
    "peak_tflops",
    "peak_fraction",
    "peak_mem_gib",
)

# Dense (no sparsity) fp16 tensor-core peak, TFLOPS, from the vendors' data sheets. Matched in order
# against the lower-cased device name; the first entry whose words all occur wins.
PEAK_DENSE_FP16_TFLOPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("h100", "pcie"), 756.0),
    (("h100", "nvl"), math.nan),  # not in our table
    (("h100",), 989.5),  # SXM (the "H100 80GB HBM3" name)
    (("h200",), 989.5),
    (("a100",), 312.0),
    (("3090",), 71.0),
    (("4090",), 165.0),
)


def peak_tflops(gpu_name: str) -> float:
    """Dense fp16 peak TFLOPS of the GPU named ``gpu_name`` (``torch.cuda.get_device_name``); NaN if unknown."""
    name = gpu_name.lower()
    for words, peak in PEAK_DENSE_FP16_TFLOPS:
        if all(word in name for word in words):
            return peak
    return math.nan


def gpu_slug(gpu_name: str) -> str:
    """File-name form of a device name: ``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``."""
    return re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-") or "unknown"


def synchronize(device: torch.device) -> None:
    """Wait for all queued work on ``device`` (CUDA); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int
) -> list[float]:
    """Wall seconds of ``repeats`` synchronised calls of ``fn`` after ``warmup`` untimed calls."""
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        synchronize(device)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            synchronize(device)
            seconds.append(time.perf_counter() - start)
    return seconds


class ModelBench:
    """One model's networks on the device, and the calls the pipeline makes per image."""

    def __init__(
        self, name: str, device: torch.device, dtype: torch.dtype, tiny: bool, vae_upcast: bool
    ):
        import diffusers
        from diffusers.models.attention_processor import AttnProcessor2_0

        from aigc_lib.models import get_model

        self.arch = arch = arch_lib.get_architecture(name, tiny)
        self.device = device
        self.dtype = dtype
        upcast = (
            vae_upcast and bool(arch.vae.get("force_upcast", False)) and dtype == torch.float16
        )  # as diffusers
        self.vae_dtype = torch.float32 if upcast else dtype
        self.encoders = arch_lib.build_text_encoders(arch, device=device, dtype=dtype)
        self.unet = arch_lib.build_unet(arch, device=device, dtype=dtype)
        self.vae = arch_lib.build_vae(arch, device=device, dtype=self.vae_dtype)
        self.unet.set_attn_processor(
            AttnProcessor2_0()
        )  # PyTorch SDPA (the diffusers default on torch 2)
        self.vae.set_attn_processor(AttnProcessor2_0())
        self.attention = "sdpa/" + "+".join(
            sorted({e.config._attn_implementation for e in self.encoders})
        )
        self.ids = arch_lib.token_ids(arch, batch=1, device=device)
        self.step_args, self.step_kwargs = arch_lib.unet_inputs(arch, device=device, dtype=dtype)
        self.latents = arch_lib.vae_latents(arch, device=device, dtype=dtype)
        entry = get_model(name)
        self.guidance = entry.guidance
        # the model's own scheduler class and options (default config otherwise), made once as in a pipeline
        self.scheduler = getattr(diffusers, entry.scheduler)(**dict(entry.scheduler_options))

    def text_encode(self) -> Any:
        """All prompt encodings of one image (SD1.5 with CFG: prompt and empty negative prompt)."""
        out = None
        for _ in range(self.arch.text_encodings):
            out = arch_lib.encode_text(self.arch, self.encoders, self.ids)
        return out

    def unet_step(self) -> Any:
        """One UNet call on the CFG batch."""
        return self.unet(*self.step_args, **self.step_kwargs).sample

    def vae_decode(self, latents: Any = None) -> Any:
        """One VAE decode (in the VAE's dtype, fp32 when upcast)."""
        latents = self.latents if latents is None else latents
        scale = float(self.arch.vae.get("scaling_factor", 1.0))
        return self.vae.decode((latents / scale).to(self.vae_dtype)).sample

    def image(self, steps: int) -> Any:
        """One whole image: text encoding, ``steps`` scheduler steps with CFG, VAE decode, copy to host."""
        arch = self.arch
        embeds, pooled = self.text_encode()
        batch = arch.cfg_batch
        context = embeds.repeat(batch, 1, 1)
        if batch == 2 and arch.conditioned_on_pooled_text:
            context[
                0
            ].zero_()  # SDXL: zeros for the empty negative prompt (force_zeros_for_empty_prompt)
        kwargs: dict[str, Any] = {"encoder_hidden_states": context}
        if arch.conditioned_on_pooled_text:
            cond = self.step_kwargs["added_cond_kwargs"]
            kwargs["added_cond_kwargs"] = {
                "text_embeds": pooled.repeat(batch, 1),
                "time_ids": cond["time_ids"],
            }
        scheduler = self.scheduler
        scheduler.set_timesteps(steps, device=self.device)
        latents = torch.randn_like(self.latents) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(torch.cat([latents] * batch), t)
            noise = self.unet(model_input, t, **kwargs).sample
            if batch == 2:
                uncond, cond = noise.chunk(2)
                noise = uncond + self.guidance * (cond - uncond)
            latents = scheduler.step(noise, t, latents).prev_sample
        picture = (self.vae_decode(latents) / 2 + 0.5).clamp(0, 1)
        return (picture * 255).round().to(torch.uint8).cpu()


def _versions() -> tuple[str, str]:
    import diffusers

    return torch.__version__, diffusers.__version__


def measure(
    names: Sequence[str],
    device: torch.device,
    dtype: torch.dtype,
    tiny: bool,
    steps: Sequence[int],
    e2e_steps: Sequence[int],
    repeats: int,
    warmup: int,
    vae_upcast: bool,
    budget_s: float | None,
    out: Path,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Measure every model in ``names``; returns the rows (also written to ``out`` after each model)."""
    start = time.perf_counter()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops(gpu) if device.type == "cuda" and dtype == torch.float16 else math.nan
    torch_version, diffusers_version = _versions()
    rows: list[dict] = []

    def over_budget() -> bool:
        return budget_s is not None and time.perf_counter() - start > budget_s

    for name in names:
        if over_budget():
            log(f"budget of {budget_s:.0f} s reached; stopping before {name}")
            break
        arch = arch_lib.get_architecture(name, tiny)
        log(f"[{name}] building {'tiny ' if tiny else ''}networks on {device} ({dtype}) ...")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        bench = ModelBench(name, device, dtype, tiny, vae_upcast)
        tflop = {
            "unet_step": flops_lib.unet_step_tflop(name, tiny=tiny),
            "text_encode": flops_lib.text_encode_tflop(name, tiny=tiny),
            "vae_decode": flops_lib.vae_decode_tflop(name, tiny=tiny),
        }
        base = {
            "gpu": gpu,
            "device": device.type,
            "torch_version": torch_version,
            "diffusers_version": diffusers_version,
            "dtype": str(dtype).replace("torch.", ""),
            "vae_dtype": str(bench.vae_dtype).replace("torch.", ""),
            "attention": bench.attention,
            "tiny": tiny,
            "model": name,
            "resolution": arch.resolution,
        }

        def record(
            component: str, seconds: list[float], work: float, z: int | None, batch: int
        ) -> dict:
            median = statistics.median(seconds)
            achieved = work / median if median > 0 else math.nan
            row = dict(
                base,
                component=component,
                steps=z,
                batch=batch,
                seconds=median,
                seconds_min=min(seconds),
                seconds_max=max(seconds),
                runs=len(seconds),
                tflop=work,
                achieved_tflops=achieved,
                peak_tflops=peak,
                peak_fraction=achieved / peak if peak == peak else math.nan,
            )
            rows.append(row)
            frac = f", {100 * row['peak_fraction']:.1f}% of peak" if peak == peak else ""
            label = component + (f" z={z}" if z is not None else "")
            log(
                f"[{name}] {label}: {median:.4f} s (median of {len(seconds)}), {achieved:.2f} TFLOPS{frac}"
            )
            return row

        part = {
            "text_encode": record(
                "text_encode",
                time_call(bench.text_encode, device, repeats, warmup),
                tflop["text_encode"],
                None,
                arch.text_encodings,
            ),
            "unet_step": record(
                "unet_step",
                time_call(bench.unet_step, device, repeats, warmup),
                tflop["unet_step"],
                None,
                arch.cfg_batch,
            ),
            "vae_decode": record(
                "vae_decode",
                time_call(bench.vae_decode, device, repeats, warmup),
                tflop["vae_decode"],
                None,
                1,
            ),
        }
        fixed = tflop["text_encode"] + tflop["vae_decode"]
        model_steps = [1] if arch.cfg_batch == 1 else list(steps)
        for z in model_steps:
            composed = (
                part["text_encode"]["seconds"]
                + z * part["unet_step"]["seconds"]
                + part["vae_decode"]["seconds"]
            )
            record("image_composed", [composed], z * tflop["unet_step"] + fixed, z, 1)
        for z in [1] if arch.cfg_batch == 1 else list(e2e_steps):
            if over_budget():
                log(f"budget of {budget_s:.0f} s reached; skipping end-to-end z={z}")
                break
            record(
                "image_e2e",
                time_call(lambda: bench.image(z), device, max(1, repeats // 2), min(warmup, 1)),
                z * tflop["unet_step"] + fixed,
                z,
                1,
            )
        mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan
        for row in rows:
            if row["model"] == name:
                row["peak_mem_gib"] = mem
        del bench
        if device.type == "cuda":
            torch.cuda.empty_cache()
        write_rows(out, rows)
        log(
            f"[{name}] done; wrote {len(rows)} rows to {out} ({time.perf_counter() - start:.1f} s so far)"
        )
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as CSV with :data:`COLUMNS` (atomically; no pandas needed)."""
    from aigc_lib._io import atomic_write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                for k, v in row.items()
            }
        )
    return atomic_write_text(path, buffer.getvalue())


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure and write the latency CSV; prints progress."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cuda", help="torch device (default cuda; cpu for dry runs)"
    )
    parser.add_argument(
        "--dtype",
        choices=("fp16", "bf16", "fp32"),
        default=None,
        help="weights and activations (default fp16 on cuda, fp32 on cpu)",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="tiny look-alike networks (CPU tests, seconds)"
    )
    parser.add_argument(
        "--models", nargs="+", default=list(arch_lib.MODEL_NAMES), choices=arch_lib.MODEL_NAMES
    )
    parser.add_argument(
        "--steps",
        type=_int_list,
        default=list(DEFAULT_STEPS),
        help="step counts of the composed whole-image times (default 10,14,...,42)",
    )
    parser.add_argument(
        "--e2e-steps",
        type=_int_list,
        default=[10, 42],
        help="step counts of the measured end-to-end images (default 10,42)",
    )
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed runs per measurement (median reported)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before timing")
    parser.add_argument(
        "--vae-upcast",
        choices=("config", "never"),
        default="config",
        help="decode in fp32 when the VAE config says force_upcast, as diffusers does (default)",
    )
    parser.add_argument(
        "--budget-s", type=float, default=None, help="stop starting new measurements after this"
    )
    parser.add_argument(
        "--out", default=None, help="CSV path (default data/profiles/latency_<gpu>.csv)"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device; use --device cpu --tiny for a dry run")
    dtype = arch_lib.torch_dtype(args.dtype or ("fp16" if device.type == "cuda" else "fp32"))
    if args.out is None:
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        root = Path(__file__).resolve().parent.parent
        out = (
            root
            / "data"
            / "profiles"
            / f"latency_{gpu_slug(gpu)}{'_tiny' if args.tiny else ''}.csv"
        )
    else:
        out = Path(args.out)
    torch.manual_seed(0)
    rows = measure(
        args.models,
        device,
        dtype,
        args.tiny,
        args.steps,
        args.e2e_steps,
        args.repeats,
        args.warmup,
        args.vae_upcast == "config",
        args.budget_s,
        out,
    )
    write_rows(out, rows)  # also when the budget stopped it before the first model (header only)
    print(f"wrote {len(rows)} rows to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
