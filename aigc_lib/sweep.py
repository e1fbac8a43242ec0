"""Step sweeps: prompts x models x steps x seeds -> one measured row per image (SPEC section 5).

Each row holds prompt_id, group, model, steps, seed, seconds (wall time of the pipeline call:
text encoding, denoising and VAE decode, device synchronised, after one unrecorded warm-up image
per model), peak_memory_gib (GiB allocated on a CUDA device during that call, resident models
included; empty on a CPU), clip_score (CLIPScore points), the device, and ``status``/``error``.
Rows are appended to a JSON-lines shard, one flushed and fsynced line per image, so an
interrupted sweep loses at most the image in flight; a rerun skips every row already present
(a torn last line is dropped first) and never writes a duplicate. A failing image (out of
memory, say) is recorded with ``status='failed'`` and the sweep goes on. Several GPUs: ``accelerate
launch -m aigc_lib.sweep ...`` splits the prompts across processes with
``PartialState().split_between_processes``; each process writes its own shard, and the main
process merges them into ``sweep.csv``. ``--tiny`` runs the random tiny pipeline and tiny CLIP of
:mod:`aigc_lib.models` / :mod:`aigc_lib.scoring` on a CPU; its rows are labelled
``real_weights=False`` and are not CLIPScores of the real models.

Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib._io import atomic_write_bytes, write_csv, write_json
from aigc_lib.models import MODEL_NAMES, TINY_LABEL, TINY_RESOLUTION, get_model
from aigc_lib.results import staged_path

DEFAULT_STEPS = tuple(range(10, 43, 4))
KEY = ("prompt_id", "model", "steps", "seed")
COLUMNS = (
    "prompt_id",
    "group",
    "model",
    "steps",
    "seed",
    "seconds",
    "peak_memory_gib",
    "clip_score",
    "status",
    "error",
    "device",
    "device_name",
    "resolution",
    "guidance",
    "weights",
    "clip_model",
    "real_weights",
    "process_index",
)
SHARD_GLOB = "rows-*.jsonl"
MERGED_NAME = "sweep.csv"
PROMPT_COLUMNS = ("prompt_id", "prompt", "group")


# ---------------------------------------------------------------- prompts and plan


def _check_prompts(prompts: pd.DataFrame) -> pd.DataFrame:
    """``prompts`` validated: a DataFrame with unique ``prompt_id`` and columns prompt_id, prompt, group."""
    if not isinstance(prompts, pd.DataFrame):
        raise ValueError(
            f"prompts must be a DataFrame with columns {list(PROMPT_COLUMNS)}, got {type(prompts).__name__}"
        )
    missing = [c for c in PROMPT_COLUMNS if c not in prompts.columns]
    if missing:
        raise ValueError(f"prompts must have columns {list(PROMPT_COLUMNS)}; missing {missing}")
    if prompts["prompt_id"].duplicated().any():
        raise ValueError("prompts must have unique prompt_id values")
    return prompts


def _positive_int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    return int(value)


def select_prompts(
    prompts: pd.DataFrame, per_group: int | None = None, limit: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """A few prompts, the same ones for the same ``seed``: ``per_group`` from each group, then at most ``limit``.

    Sampling without replacement with ``numpy.random.default_rng(seed)``; the result keeps the
    input order. ``None`` takes all. Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    prompts = _check_prompts(prompts)
    per_group = _positive_int_or_none(per_group, "per_group")
    limit = _positive_int_or_none(limit, "limit")
    rng = np.random.default_rng(seed)
    keep = np.ones(len(prompts), dtype=bool)
    if per_group is not None:
        keep[:] = False
        positions = np.arange(len(prompts))
        for group in sorted(prompts["group"].astype(str).unique()):
            members = positions[prompts["group"].astype(str).to_numpy() == group]
            keep[rng.choice(members, size=min(per_group, len(members)), replace=False)] = True
    if limit is not None and keep.sum() > limit:
        chosen = rng.choice(np.flatnonzero(keep), size=limit, replace=False)
        keep[:] = False
        keep[chosen] = True
    return prompts.loc[keep].reset_index(drop=True)


def _steps_by_model(
    models: Sequence[str], steps: Sequence[int] | Mapping[str, Sequence[int]]
) -> dict[str, tuple]:
    """Step counts per model: a mapping per model, or one sequence for all (fixed-step models keep theirs)."""
    out = {}
    for name in models:
        entry = get_model(name)
        if isinstance(steps, Mapping):
            values = tuple(steps[name]) if name in steps else entry.steps_for(DEFAULT_STEPS)
        else:
            values = entry.steps_for(steps)
        if not values or any(isinstance(s, bool) or int(s) != s or s < 1 for s in values):
            raise ValueError(
                f"steps must be positive integers for every model, got {values!r} for {name}"
            )
        out[name] = tuple(sorted({int(s) for s in values}))
    return out


def plan(
    prompts: pd.DataFrame,
    models: Sequence[str] = MODEL_NAMES,
    steps: Sequence[int] | Mapping[str, Sequence[int]] = DEFAULT_STEPS,
    seeds: Sequence[int] = (0,),
) -> pd.DataFrame:
    """Every (prompt, model, steps, seed) of a sweep, model by model, as a DataFrame.

    ``steps``: one sequence for all models (a model with fixed steps, SDXL-Turbo, runs its own),
    or a mapping model -> steps (which overrides fixed steps, e.g. Turbo at 1-4 steps).
    """
    prompts = _check_prompts(prompts)
    if not models:
        raise ValueError("models must name at least one model")
    if len(set(models)) != len(models):
        raise ValueError(f"models must not repeat, got {list(models)}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative ints, got {seeds!r}")
    per_model = _steps_by_model(models, steps)
    rows = [
        {
            "prompt_id": p.prompt_id,
            "prompt": p.prompt,
            "group": p.group,
            "model": m,
            "steps": z,
            "seed": s,
        }
        for m in models
        for p in prompts.itertuples(index=False)
        for z in per_model[m]
        for s in seeds
    ]
    return pd.DataFrame(rows, columns=["prompt_id", "prompt", "group", "model", "steps", "seed"])


# ---------------------------------------------------------------- append-only shards


def _key(row: Mapping[str, Any]) -> tuple:
    return (str(row["prompt_id"]), str(row["model"]), int(row["steps"]), int(row["seed"]))


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The complete rows of one shard, each checked (:func:`check_row`).

    A torn last line (no newline at its end: the image in flight when a sweep was stopped) is
    ignored. Any other line that is not a valid row raises ``ValueError`` naming the file and the
    line: a shard is written by this module only, so such a line was damaged or edited, and its
    numbers must not reach ``sweep.csv``.
    """
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    for number, line in enumerate(lines):
        torn = number == len(lines) - 1  # no newline after it
        if not line.strip():
            continue
        where = f"{path}, line {number + 1}"
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if torn:
                continue
            raise ValueError(f"{where}: not a JSON row; remove or fix that line") from None
        if torn:  # a complete JSON line without its newline: the last write was cut
            continue
        rows.append(check_row(row, where))
    return rows


def _finite(value: Any, low: float = -math.inf) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= low
    )


def check_row(row: Any, where: str = "row") -> dict:
    """``row`` if it is a valid sweep row, else ``ValueError`` naming ``where`` and the field.

    Checked: a JSON object with prompt_id (an int or a non-empty string), model (a string), steps
    (an int >= 1), seed (an int >= 0), status ``ok`` or ``failed``; an ``ok`` row has a finite
    clip_score and seconds >= 0 (finite), and peak_memory_gib empty or >= 0. NaN scores, negative
    seconds and steps like ``"one"`` are refused here, before they reach ``sweep.csv``.
    """
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object (one sweep row), got {row!r}"[:300])
    for key in KEY + ("status",):
        if key not in row:
            raise ValueError(f"{where}: missing field {key!r}")

    def bad(field: str, expected: str) -> ValueError:
        return ValueError(f"{where}: {field}: expected {expected}, got {row[field]!r}")

    prompt_id = row["prompt_id"]
    if isinstance(prompt_id, bool) or not (
        isinstance(prompt_id, int) or (isinstance(prompt_id, str) and prompt_id.strip())
    ):
        raise bad("prompt_id", "an int or a non-empty string")
    if not isinstance(row["model"], str) or not row["model"]:
        raise bad("model", "a model name")
    for field, low in (("steps", 1), ("seed", 0)):
        value = row[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise bad(field, f"a whole number >= {low}")
    if row["status"] not in ("ok", "failed"):
        raise bad("status", "'ok' or 'failed'")
    if row["status"] == "ok":
        if not _finite(row.get("clip_score")):
            raise ValueError(
                f"{where}: clip_score: expected a finite number in an ok row, "
                f"got {row.get('clip_score')!r}"
            )
        if not _finite(row.get("seconds"), 0.0):
            raise ValueError(
                f"{where}: seconds: expected a finite number >= 0 in an ok row, "
                f"got {row.get('seconds')!r}"
            )
        peak = row.get("peak_memory_gib")
        if peak is not None and not _finite(peak, 0.0):
            raise bad("peak_memory_gib", "empty or a number >= 0")
    return row


def _repair(path: Path) -> None:
    """Drop a torn last line (no newline at the end) so the next append starts on a fresh line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        atomic_write_bytes(path, data[: data.rfind(b"\n") + 1])


def _append(path: Path, row: Mapping[str, Any]) -> None:
    """Append one row as one JSON line; flushed and fsynced before returning."""
    with open(path, "ab") as fh:
        fh.write((json.dumps(row, allow_nan=False) + "\n").encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def shard_paths(out_dir: str | os.PathLike) -> list[Path]:
    """The shard files of a sweep folder, sorted."""
    return sorted(Path(out_dir).glob(SHARD_GLOB))


def read_shards(out_dir: str | os.PathLike) -> pd.DataFrame:
    """All rows of all shards of ``out_dir`` (duplicates, if any, kept), columns :data:`COLUMNS`."""
    rows = [row for path in shard_paths(out_dir) for row in read_rows(path)]
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    return frame[list(COLUMNS)]


def merge_shards(out_dir: str | os.PathLike, write: bool = True) -> pd.DataFrame:
    """One row per (prompt_id, model, steps, seed) from all shards, sorted; written to ``sweep.csv``.

    If a key occurs twice (never by this module), an ``ok`` row wins over a failed one, then the last.
    Columns and units: seconds, peak_memory_gib (GiB, empty on a CPU), clip_score (CLIPScore points,
    empty for failed rows).
    """
    frame = read_shards(out_dir)
    if len(frame):
        frame = frame.assign(_ok=(frame["status"] == "ok"), _order=np.arange(len(frame)))
        frame = frame.sort_values(["_ok", "_order"]).drop_duplicates(list(KEY), keep="last")
        frame = frame.drop(columns=["_ok", "_order"])
        model_rank = {m: i for i, m in enumerate(MODEL_NAMES)}
        frame = frame.assign(_m=frame["model"].map(model_rank))
        frame = frame.sort_values(["_m", "model", "prompt_id", "steps", "seed"]).drop(columns="_m")
        frame = frame.reset_index(drop=True)
    if write:
        write_csv(Path(out_dir) / MERGED_NAME, frame)
    return frame


def _drop_failed(out_dir: Path) -> None:
    """Rewrite every shard (atomically) without its failed rows, so they are run again."""
    for path in shard_paths(out_dir):
        rows = read_rows(path)
        kept = [r for r in rows if r.get("status") == "ok"]
        if len(kept) != len(rows):
            atomic_write_bytes(
                path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept).encode("utf-8")
            )


# ---------------------------------------------------------------- backends


@dataclass(frozen=True)
class Backend:
    """What a sweep runs: ``load(model) -> pipeline``, ``score(image uint8 [3,H,W], prompt) -> CLIPScore``.

    ``resolution`` overrides the registry's image side (pixels) when set; ``weights`` and
    ``clip_model`` label every row, and ``real_weights`` says whether both are real trained models.
    """

    load: Callable[[str], Any]
    score: Callable[[Any, str], float]
    device: str
    weights: str
    clip_model: str
    real_weights: bool
    resolution: int | None = None


def tiny_backend(device: str = "cpu", seed: int = 0) -> Backend:
    """The offline backend for tests and CI: :func:`~aigc_lib.models.tiny_pipeline` per model + tiny CLIP.

    Each model gets its own random weights (seed + its index), at 32 px; rows are labelled
    ``weights='random-tiny'``, ``clip_model='tiny-random-clip'``, ``real_weights=False``.
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    from aigc_lib import scoring
    from aigc_lib.models import tiny_pipeline

    score = scoring.scorer(scoring.tiny_clip(seed))

    def load(name: str) -> Any:
        return tiny_pipeline(seed + MODEL_NAMES.index(name)).to(device)

    def score_one(image: Any, prompt: str) -> float:
        return float(score(image, [prompt], device=device)[0])

    return Backend(
        load, score_one, device, TINY_LABEL, scoring.TINY_CLIP_LABEL, False, TINY_RESOLUTION
    )


def hub_backend(
    device: str = "cuda",
    dtype: Any = None,
    clip_model: str = "openai/clip-vit-large-patch14",
    local_files_only: bool = False,
    model_paths: Mapping[str, str] | None = None,
) -> Backend:
    """The real backend: :func:`~aigc_lib.models.load_pipeline` (hub or local folders) + a real CLIP.

    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    from aigc_lib import scoring
    from aigc_lib.models import load_pipeline

    paths = dict(model_paths or {})
    for name in paths:
        get_model(name)
    score = scoring.scorer(clip_model, local_files_only=local_files_only)

    def load(name: str) -> Any:
        return load_pipeline(
            name, device, dtype, local_files_only=local_files_only, path=paths.get(name)
        )

    def score_one(image: Any, prompt: str) -> float:
        return float(score(image, [prompt], device=device)[0])

    weights = "local" if paths else "hub"
    return Backend(load, score_one, device, weights, str(clip_model), True)


# ---------------------------------------------------------------- measurement


def _synchronize(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
    elif str(device).startswith("mps"):
        torch.mps.synchronize()


def _device_name(device: str) -> str:
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or str(device)


def _reset_peak(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: str) -> float | None:
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**30
    return None


def _after_failure(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()


def measure(pipe: Any, prompt: str, model: str, steps: int, seed: int, backend: Backend) -> dict:
    """Generate one image and score it: seconds (synchronised), peak memory (GiB), CLIPScore (points)."""
    from aigc_lib.models import generate

    entry = get_model(model)
    resolution = backend.resolution or entry.resolution
    _synchronize(backend.device)
    _reset_peak(backend.device)
    start = time.perf_counter()
    image = generate(pipe, prompt, steps, seed, entry.guidance, resolution)
    _synchronize(backend.device)
    seconds = time.perf_counter() - start
    peak = _peak_gib(backend.device)
    score = backend.score(image, prompt)
    if not math.isfinite(score):
        raise FloatingPointError(f"CLIPScore is {score} (NaN image?)")
    return {"seconds": seconds, "peak_memory_gib": peak, "clip_score": score}


def _row(
    task: Any, backend: Backend, state: Any, result: Mapping[str, Any] | None, error: str
) -> dict:
    entry = get_model(task.model)
    row = {
        "prompt_id": _plain_id(task.prompt_id),
        "group": str(task.group),
        "model": task.model,
        "steps": int(task.steps),
        "seed": int(task.seed),
        "seconds": None,
        "peak_memory_gib": None,
        "clip_score": None,
        "status": "ok" if result is not None else "failed",
        "error": error,
        "device": str(backend.device),
        "device_name": _device_name(backend.device),
        "resolution": int(backend.resolution or entry.resolution),
        "guidance": float(entry.guidance),
        "weights": backend.weights,
        "clip_model": backend.clip_model,
        "real_weights": bool(backend.real_weights),
        "process_index": int(state.process_index),
    }
    row.update(result or {})
    return {c: row[c] for c in COLUMNS}


def _plain_id(value: Any) -> int | str:
    """A prompt id as a JSON-friendly value: an int stays an int, anything else becomes a string."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return str(value)


class _SingleProcess:
    """The one-process stand-in for accelerate's ``PartialState`` (same attributes used here)."""

    process_index = 0
    num_processes = 1
    is_main_process = True

    def split_between_processes(self, inputs: Any) -> Any:
        from contextlib import nullcontext

        return nullcontext(inputs)

    def wait_for_everyone(self) -> None:
        return None


def run_sweep(
    prompts: pd.DataFrame,
    out_dir: str | os.PathLike,
    models: Sequence[str] = MODEL_NAMES,
    steps: Sequence[int] | Mapping[str, Sequence[int]] = DEFAULT_STEPS,
    seeds: Sequence[int] = (0,),
    *,
    backend: Backend,
    state: Any = None,
    warmup: bool = True,
    retry_failed: bool = False,
    progress: bool = True,
    on_row: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """Measure every missing (prompt, model, steps, seed) row and return all rows of ``out_dir``.

    Rows already in ``out_dir``'s shards are skipped (``retry_failed=True`` runs failed ones
    again); this process appends to ``rows-<process index>.jsonl``, one fsynced line per image.
    ``state`` is an accelerate ``PartialState`` (default: a single process); prompts are split
    across its processes and the main process merges the shards into ``sweep.csv``. ``on_row``
    is called with each row after it is written. Returns the merged rows (see :func:`merge_shards`).
    Inside a Jupyter kernel, a sweep folder within a notebook's results folder is staged and
    published by the notebook's last cell (:mod:`aigc_lib.results`).
    SPEC section 5; taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    state = state if state is not None else _SingleProcess()
    tasks = plan(prompts, models, steps, seeds)
    out = staged_path(out_dir, seed=True)  # staged inside a results folder (aigc_lib.results)
    out.mkdir(parents=True, exist_ok=True)
    if state.is_main_process and retry_failed:
        _drop_failed(out)
    state.wait_for_everyone()
    with state.split_between_processes(list(prompts["prompt_id"])) as mine:
        mine = set(mine)
    shard = out / f"rows-{state.process_index:03d}.jsonl"
    _repair(shard)
    done = _done_keys(out, out_dir, backend)
    todo = [
        t
        for t in tasks.itertuples(index=False)
        if t.prompt_id in mine and _key(t._asdict()) not in done
    ]
    _run_todo(todo, shard, backend, state, warmup, progress, on_row)
    state.wait_for_everyone()
    return merge_shards(out, write=state.is_main_process)


def _run_todo(todo, shard, backend, state, warmup, progress, on_row) -> None:
    """Measure this process's missing rows model by model (:func:`run_sweep`), with a progress bar."""
    from tqdm.auto import tqdm

    rank = state.process_index
    bar = tqdm(total=len(todo), desc=f"sweep [{rank}]", position=rank, disable=not progress)
    try:
        for model in dict.fromkeys(t.model for t in todo):
            _run_model(
                model,
                [t for t in todo if t.model == model],
                shard,
                backend,
                state,
                warmup,
                bar,
                on_row,
            )
    finally:
        bar.close()


def _done_keys(out: Path, out_dir: str | os.PathLike, backend: Backend) -> set:
    """The keys of the rows already in ``out``'s shards (:func:`run_sweep`); refuses rows
    measured with other weights than ``backend``'s (one folder per backend)."""
    existing = [r for path in shard_paths(out) for r in read_rows(path)]
    other = sorted({str(r.get("weights")) for r in existing} - {str(backend.weights)})
    if other:
        raise ValueError(
            f"out_dir: {str(out_dir)!r} holds rows measured with weights {other}, "
            f"not {backend.weights!r}; "
            "use one folder per backend so rows are never mixed or wrongly skipped as done"
        )
    return {_key(r) for r in existing}


def _run_model(model, tasks, shard, backend, state, warmup, bar, on_row) -> None:
    """Load one model, warm it up, then measure and append each of its rows."""
    try:
        pipe = backend.load(model)
    except Exception as exc:  # cannot load: every row of this model is a failed row
        pipe, load_error = None, f"load: {type(exc).__name__}: {exc}"[:500]
    if pipe is not None and warmup:
        first = tasks[0]
        try:
            measure(pipe, first.prompt, model, min(t.steps for t in tasks), 0, backend)
        except Exception as exc:  # the rows will record the failure themselves
            warnings.warn(f"warm-up of {model} failed: {type(exc).__name__}: {exc}", stacklevel=2)
            _after_failure(backend.device)
    for task in tasks:
        if pipe is None:
            row = _row(task, backend, state, None, load_error)
        else:
            try:
                row = _row(
                    task,
                    backend,
                    state,
                    measure(pipe, task.prompt, model, task.steps, task.seed, backend),
                    "",
                )
            except Exception as exc:
                _after_failure(backend.device)
                row = _row(task, backend, state, None, f"{type(exc).__name__}: {exc}"[:500])
        _append(shard, row)
        bar.update(1)
        if on_row is not None:
            on_row(row)
    del pipe
    _after_failure(backend.device)


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aigc_lib.sweep",
        description=(
            "Step sweep: prompts x models x steps x seeds -> one row per image (seconds, peak memory, "
            "CLIPScore), resumable. Several GPUs: accelerate launch -m aigc_lib.sweep ..."
        ),
    )
    parser.add_argument(
        "--out", required=True, help="output folder (shards rows-*.jsonl, merged sweep.csv)"
    )
    _add_task_options(parser)
    _add_backend_options(parser)
    return parser


def _add_task_options(parser: argparse.ArgumentParser) -> None:
    """The sweep's prompts, models, steps and seeds (:func:`_parser`)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--prompts", default=None, help="PartiPrompts.tsv (default: aigc_lib.prompts' default)"
    )
    source.add_argument(
        "--prompts-csv",
        default=None,
        help="own prompts: a CSV with columns prompt_id, prompt, group",
    )
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=list(MODEL_NAMES))
    parser.add_argument(
        "--steps",
        nargs="+",
        type=_positive_int,
        default=list(DEFAULT_STEPS),
        help="denoising steps (Turbo: 1)",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=_non_negative_int, default=[0], help="image seeds"
    )
    parser.add_argument(
        "--prompts-per-group",
        type=_positive_int,
        default=None,
        help="take this many prompts per group",
    )
    parser.add_argument(
        "--limit", type=_positive_int, default=None, help="take at most this many prompts"
    )
    parser.add_argument(
        "--sample-seed", type=_non_negative_int, default=0, help="seed of the prompt sample"
    )


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    """Which pipelines and CLIP model run the sweep, and how (:func:`_parser`)."""
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="random tiny pipeline + tiny CLIP (CPU, tests; not real scores)",
    )
    parser.add_argument(
        "--clip-model", default="openai/clip-vit-large-patch14", help="CLIP hub id or local folder"
    )
    parser.add_argument(
        "--model-path",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="local model folder",
    )
    parser.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    parser.add_argument(
        "--dtype",
        default=None,
        choices=["float16", "bfloat16", "float32"],
        help="default: fp16 on GPU",
    )
    parser.add_argument("--retry-failed", action="store_true", help="run failed rows again")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up image per model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="CPU threads for torch (default: torch's)",
    )


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text: str, low: int, expected: str) -> int:
    """``text`` as an int >= ``low``, else the usage error 'expected <expected>, got <text>'."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def read_prompts_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Own prompts for a sweep: a UTF-8 CSV with columns prompt_id, prompt, group, no empty prompt.

    Raises ``ValueError`` naming the file and what is wrong (missing, empty, binary, not a table,
    columns, duplicate ids, empty prompts).
    """
    name = f"prompts_csv: {str(path)!r}"
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{name} is not a file")
    data = path.read_bytes()
    expected = f"expected a CSV with columns {list(PROMPT_COLUMNS)}"
    if not data.strip():
        raise ValueError(f"{name} is empty; {expected}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{name} is not UTF-8 text (byte {err.start}); {expected}") from None
    if "\x00" in text:
        raise ValueError(f"{name} is a binary file; {expected}")
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        detail = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ValueError(f"{name} is not a CSV table ({detail}); {expected}") from None
    try:
        _check_prompts(frame)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    empty = frame.index[frame["prompt"].isna() | (frame["prompt"].astype(str).str.strip() == "")]
    if len(empty):
        raise ValueError(f"{name}: empty prompts in rows {empty.tolist()[:10]}")
    return frame


def _load_prompts(args: argparse.Namespace) -> pd.DataFrame:
    if args.prompts_csv:
        return read_prompts_csv(args.prompts_csv)
    from aigc_lib.prompts import load_partiprompts

    return load_partiprompts(args.prompts)


def _model_paths(parser: argparse.ArgumentParser, items: Sequence[str]) -> dict[str, str]:
    """``--model-path NAME=FOLDER`` entries as {name: folder}, each checked (usage error if not)."""
    paths = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or name not in MODEL_NAMES:
            parser.error(
                f"argument --model-path: expected NAME=FOLDER with NAME one of "
                f"{list(MODEL_NAMES)}, got {item!r}"
            )
        if not Path(folder).is_dir():
            parser.error(f"argument --model-path: {folder!r} is not a folder")
        paths[name] = folder
    return paths


def main(argv: Iterable[str] | None = None) -> pd.DataFrame:
    """Command line entry point: ``python -m aigc_lib.sweep --help``.

    Every argument is checked (a usage error otherwise) before anything is written.
    """
    parser = _parser()
    args = parser.parse_args(None if argv is None else list(argv))
    paths = _model_paths(parser, args.model_path)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"argument --out: {args.out!r} exists and is not a folder")
    try:
        prompts = select_prompts(
            _load_prompts(args), args.prompts_per_group, args.limit, args.sample_seed
        )
        plan(prompts, args.models, args.steps, args.seeds)  # steps per model, distinct seeds
    except ValueError as err:
        parser.error(str(err))
    import torch
    from accelerate import PartialState

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    state = PartialState(cpu=args.tiny)
    device = "cpu" if args.tiny else str(state.device)
    if args.tiny:
        backend = tiny_backend(device)
    else:
        backend = hub_backend(device, args.dtype, args.clip_model, args.local_files_only, paths)
    if state.is_main_process:
        manifest = {
            "argv": list(argv) if argv is not None else None,
            "args": vars(args),
            "backend": {
                f.name: getattr(backend, f.name)
                for f in dataclasses.fields(backend)
                if f.name not in ("load", "score")
            },
            "num_processes": state.num_processes,
            "prompts": len(prompts),
            "versions": _versions(),
        }
        write_json(Path(args.out) / "manifest.json", manifest)
    frame = run_sweep(
        prompts,
        args.out,
        args.models,
        args.steps,
        args.seeds,
        backend=backend,
        state=state,
        warmup=not args.no_warmup,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    if state.is_main_process:
        failed = int((frame["status"] != "ok").sum())
        label = "" if backend.real_weights else " (random weights: not real CLIPScores)"
        print(f"{len(frame)} rows, {failed} failed -> {Path(args.out) / MERGED_NAME}{label}")
    return frame


def _versions() -> dict:
    import diffusers
    import torch
    import torchmetrics
    import transformers

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "torchmetrics": torchmetrics.__version__,
    }


if __name__ == "__main__":
    main()
