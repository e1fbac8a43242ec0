"""Where a step sweep runs, and GPU latency tables set beside the scenario's assumed GPU.

Two small helpers of the measurement side (SPEC section 5):

* :func:`choose_backend` decides whether a sweep runs the real models on a CUDA GPU (weights in
  the local Hugging Face cache, or downloaded when asked for explicitly) or the tiny random-weight
  pipeline on the CPU, whose numbers are labelled :data:`TINY_NOTE` and are never CLIPScores.
* :func:`read_latency_tables` and :func:`latency_vs_scenario` read the tables written by
  ``benchmarks/gpu_latency.py`` (``data/profiles/latency_*.csv``) and set each measured time beside
  the scenario's latency for the paper's GPU (``ModelSpec.image_seconds``, from published
  measurements), with the TFLOP per second each achieves.

No torch at import time. Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from aigc_lib.models import MODEL_NAMES, get_model
from aigc_lib.scoring import DEFAULT_CLIP

if TYPE_CHECKING:
    from aigc_lib.scenario import Scenario

TINY_NOTE = "tiny random-weight pipeline: not real CLIPScores"
PIPELINE_FILES = ("model_index.json", "unet/config.json")
CLIP_FILES = ("config.json",)
LATENCY_COLUMNS = ("gpu", "tiny", "model", "component", "steps", "seconds", "tflop")
COMPARED_COLUMNS = (
    "file",
    "gpu",
    "tiny",
    "model",
    "component",
    "steps",
    "measured_s",
    "assumed_s",
    "speedup",
    "tflop",
    "achieved_tflops",
)


@dataclass(frozen=True)
class BackendChoice:
    """What a step sweep runs on: ``device`` (torch device), ``real_weights`` (the real models and CLIP,
    else the tiny random pipeline), ``local_files_only`` (never contact the hub) and a one-line ``reason``."""

    device: str
    real_weights: bool
    local_files_only: bool
    reason: str

    @property
    def label(self) -> str:
        """Text to put on every figure and table made from this sweep: empty for real weights."""
        return "" if self.real_weights else TINY_NOTE


def weights_cached(
    repo_id: str, files: Sequence[str] = PIPELINE_FILES, cache_dir: str | os.PathLike | None = None
) -> bool:
    """Whether every file of ``files`` of hub repository ``repo_id`` is in the local Hugging Face cache.

    A quick check of index and config files, without network; a partly downloaded snapshot passes it
    and then fails at load time (the sweep records such rows as failed). ``cache_dir`` defaults to
    the hub cache (``HF_HUB_CACHE``).
    """
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ValueError(f"repo_id: expected 'owner/name', got {repo_id!r}")
    if not files:
        raise ValueError("files: expected at least one file name")
    return all(
        isinstance(try_to_load_from_cache(repo_id, f, cache_dir=cache_dir), str) for f in files
    )


def choose_backend(
    device: str = "auto",
    models: Sequence[str] = MODEL_NAMES,
    clip_model: str = DEFAULT_CLIP,
    cuda_available: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> BackendChoice:
    """Where a sweep of ``models`` runs: the real models on CUDA, or the tiny random pipeline on the CPU.

    ``device``: ``"auto"`` runs the real models on ``cuda`` when torch sees a CUDA device AND every
    model's pipeline and the CLIP model ``clip_model`` are in the local hub cache (then nothing is
    downloaded), otherwise the tiny pipeline on the CPU; ``"cpu"`` always runs the tiny pipeline;
    ``"cuda"`` or ``"cuda:N"`` insists on the real models there, downloading what the cache lacks.
    ``cuda_available`` defaults to ``torch.cuda.is_available()``. SPEC section 5; taught in
    ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    models = _checked_backend_args(device, models)
    if device == "cpu":
        return BackendChoice("cpu", False, True, "device='cpu': the tiny random-weight pipeline")
    if cuda_available is None:
        import torch

        cuda_available = bool(torch.cuda.is_available())
    missing = [
        get_model(m).hub_id
        for m in models
        if not weights_cached(get_model(m).hub_id, cache_dir=cache_dir)
    ]
    if not weights_cached(clip_model, CLIP_FILES, cache_dir=cache_dir):
        missing.append(clip_model)
    if device != "auto":
        if not cuda_available:
            raise ValueError(
                f"device: {device!r} asked for, but torch sees no CUDA device (use 'auto' or 'cpu')"
            )
        note = f"downloading {missing}" if missing else "weights from the local cache"
        return BackendChoice(
            device, True, not missing, f"device={device!r}: the real models, {note}"
        )
    return _auto_choice(cuda_available, missing)


def _checked_backend_args(device: str, models: Sequence[str]) -> list[str]:
    """:func:`choose_backend`'s ``device`` and ``models`` checked (ValueError naming them)."""
    if not isinstance(device, str) or not (
        device in ("auto", "cpu") or device.split(":")[0] == "cuda"
    ):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    models = list(models)
    if not models:
        raise ValueError("models: expected at least one model name")
    for name in models:
        get_model(name)
    return models


def _auto_choice(cuda_available: bool, missing: list[str]) -> BackendChoice:
    """:func:`choose_backend` with ``device="auto"``: the real models on CUDA only when nothing
    is ``missing`` from the local cache."""
    if not cuda_available:
        return BackendChoice(
            "cpu", False, True, "device='auto': no CUDA device, so the tiny random-weight pipeline"
        )
    if missing:
        return BackendChoice(
            "cpu",
            False,
            True,
            f"device='auto': CUDA found but not in the local cache: {missing}; "
            "so the tiny random-weight pipeline",
        )
    return BackendChoice(
        "cuda", True, True, "device='auto': CUDA and every weight in the local cache"
    )


def read_latency_tables(pattern: str) -> pd.DataFrame:
    """All latency tables matching the glob ``pattern`` (``benchmarks/gpu_latency.py`` CSVs), stacked.

    Adds a ``file`` column (the file name). No match: an empty frame with the columns
    :data:`LATENCY_COLUMNS` and ``file``. Seconds are per call (a UNet step, or a whole image).
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(
            f"pattern: expected a glob pattern such as '../data/profiles/latency_*.csv', got {pattern!r}"
        )
    frames = []
    for path in sorted(glob.glob(pattern)):
        table = pd.read_csv(path)
        missing = [c for c in LATENCY_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(
                f"pattern: {path!r} lacks columns {missing}; is it a gpu_latency.py table?"
            )
        frames.append(table.assign(file=Path(path).name))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*LATENCY_COLUMNS, "file")})
    return pd.concat(frames, ignore_index=True)


def latency_vs_scenario(
    latency: pd.DataFrame,
    scenario: "Scenario",
    components: Sequence[str] = ("unet_step", "image_composed", "image_e2e"),
    include_tiny: bool = False,
) -> pd.DataFrame:
    """Each measured time beside the scenario's assumed one, in seconds, for the scenario's models.

    ``unet_step`` rows are compared with the scenario's seconds per denoising step
    (``ModelSpec.step_seconds``, published measurements of the paper's GPU class); ``image_*``
    rows with ``ModelSpec.image_seconds(z)`` (seconds per image at z steps). ``speedup`` = assumed
    / measured (above 1: the measured GPU is faster than the paper's); ``tflop`` the counted work
    (F_m, or z F_m + F0_m, from the scenario's FLOP table) and ``achieved_tflops`` = counted work /
    measured seconds, how well this GPU runs each model. Rows of tiny look-alike networks
    (``tiny`` true: dry runs) time other networks than the scenario's, so they are left out unless
    ``include_tiny``. Columns :data:`COMPARED_COLUMNS`.
    """
    if not isinstance(latency, pd.DataFrame) or any(
        c not in latency.columns for c in LATENCY_COLUMNS
    ):
        raise ValueError(f"latency: expected a DataFrame with columns {list(LATENCY_COLUMNS)}")
    known = {"unet_step", "image_composed", "image_e2e"}
    if not components or not set(components) <= known:
        raise ValueError(
            f"components: expected a non-empty subset of {sorted(known)}, got {components!r}"
        )
    specs = {m.name: m for m in scenario.models}
    rows = []
    for row in latency.itertuples(index=False):
        if (
            row.model not in specs
            or row.component not in components
            or (_true(row.tiny) and not include_tiny)
        ):
            continue
        compared = _compared_row(row, specs[row.model])
        if compared is not None:
            rows.append(compared)
    return pd.DataFrame(rows, columns=list(COMPARED_COLUMNS))


def _compared_row(row: Any, spec: Any) -> dict[str, Any] | None:
    """One measured time beside the assumed one (:func:`latency_vs_scenario`); None for an image
    row without steps or a time that is not finite and positive."""
    if row.component == "unet_step":
        steps, work, assumed = 1, spec.tflop_per_step, spec.step_seconds
    else:
        if pd.isna(row.steps):
            return None
        steps = int(row.steps)
        work, assumed = float(spec.work_tflop(steps)), float(spec.image_seconds(steps))
    measured = float(row.seconds)
    if not (math.isfinite(measured) and measured > 0):
        return None
    return {
        "file": getattr(row, "file", ""),
        "gpu": row.gpu,
        "tiny": _true(row.tiny),
        "model": row.model,
        "component": row.component,
        "steps": steps,
        "measured_s": measured,
        "assumed_s": assumed,
        "speedup": assumed / measured,
        "tflop": work,
        "achieved_tflops": work / measured,
    }


def _true(value: object) -> bool:
    """A CSV truth value (``True``, ``"true"``, 1) as a bool."""
    return str(value).strip().lower() in ("true", "1", "yes")
