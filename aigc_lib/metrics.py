"""Numbers from simulation runs: time consumption, one-line summaries, per-policy tables, slot gains.

The same few summaries serve several notebooks: :func:`time_consumption` (each model's makespan
N_m t_m per slot, the paper's "time consumption"), :func:`summarise` (one run in five numbers),
:func:`summarize_runs` (the paper's Fig. 5(a) table for several policies on one workload) and
:func:`slot_gain_pct` (Fig. 5(b): per-slot utility gain in percent).

Units: CLIPScore points (score, utility), seconds (latency, time consumption), percent. Taught in
``notebooks/03_probabilistic_assignment.ipynb`` and
``notebooks/04_step_selection_and_resource_allocation.ipynb``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib import validate
from aigc_lib.simulation import SimulationResult

__all__ = ["time_consumption", "summarise", "summarize_runs", "slot_gain_pct"]


def time_consumption(result: SimulationResult) -> pd.DataFrame:
    """Each model's time consumption per slot: the makespan N_m t_m in seconds (SPEC section 2, eq. 3).

    One row per (slot, model) with tasks: ``slot``, ``model``, ``n_tasks`` N_m and ``makespan``
    (seconds; N_m t_m, the FIFO completion time of the model's last task, under either latency
    reading). Models without
    tasks in a slot have no row, so a mean over rows is the mean over the slots the model served.

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    tasks = _tasks(result)
    grouped = tasks.groupby(["slot", "model"], observed=True)["latency"]
    frame = grouped.agg(n_tasks="size", makespan="max").reset_index()
    readings = result.settings.get("readings")
    if readings is not None and readings.latency == "per_image":  # every task's latency is t_m
        frame["makespan"] = frame["makespan"] * frame["n_tasks"]
    return frame


def summarise(
    result: SimulationResult, multi_step_models: Sequence[str] | None = None
) -> dict[str, float]:
    """One run in five numbers: mean slot utility (eq. 4), task score, task latency, steps, time consumption.

    ``mean_utility``: mean over slots of the slot's mean task utility (CLIPScore points);
    ``mean_score`` (CLIPScore points) and ``mean_latency`` (seconds): means over tasks;
    ``mean_steps``: mean denoising steps over the tasks served by ``multi_step_models`` (default:
    every model that ran more than 1 step on some task of the run, i.e. not SDXL-Turbo);
    ``mean_time_consumption``: mean over models of each model's mean makespan (seconds,
    :func:`time_consumption`). NaN where there is nothing to average.

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    tasks = _tasks(result)
    if multi_step_models is None:
        spread = tasks.groupby("model", observed=True)["steps"].max()
        multi_step_models = [str(m) for m, top in spread.items() if top > 1]
    steps = tasks.loc[tasks["model"].astype(str).isin(list(multi_step_models)), "steps"]
    makespan = time_consumption(result).groupby("model", observed=True)["makespan"].mean()
    return {
        "mean_utility": _mean(result.slots["utility"].dropna()),
        "mean_score": _mean(tasks["score"]),
        "mean_latency": _mean(tasks["latency"]),
        "mean_steps": _mean(steps),
        "mean_time_consumption": _mean(makespan),
    }


def summarize_runs(runs: Mapping[str, Any]) -> pd.DataFrame:
    """Fig. 5(a): one row per policy of ``runs`` ({policy: SimulationResult}), the same workload each.

    Columns: the mean CLIPScore of the tasks each model served (one column per model, NaN if it
    served none), ``mean_score`` over all tasks (CLIPScore points), ``mean_utility`` = mean over
    slots of the slot's mean task utility (eq. 4, CLIPScore points), ``mean_latency`` (seconds), and
    ``n_<model>`` the tasks each model served.

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty mapping {policy: SimulationResult}")
    rows = {}
    for policy, run in runs.items():
        tasks, slots = getattr(run, "tasks", None), getattr(run, "slots", None)
        if not isinstance(tasks, pd.DataFrame) or not isinstance(slots, pd.DataFrame):
            raise ValueError(
                f"runs: {policy!r} is not a SimulationResult (needs .tasks and .slots DataFrames)"
            )
        if not isinstance(tasks["model"].dtype, pd.CategoricalDtype):
            raise ValueError(
                f"runs: {policy!r} has no categorical 'model' column (as simulation.simulate makes)"
            )
        models = list(tasks["model"].cat.categories)
        by_model = tasks.groupby("model", observed=False)["score"]
        row = by_model.mean().reindex(models).to_dict()
        row.update(
            mean_score=float(tasks["score"].mean()),
            mean_utility=float(slots["utility"].mean()),
            mean_latency=float(tasks["latency"].mean()),
        )
        row.update(
            {f"n_{m}": int(n) for m, n in by_model.size().reindex(models, fill_value=0).items()}
        )
        rows[policy] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "policy"
    return frame


def slot_gain_pct(reference: Any, other: Any) -> np.ndarray:
    """Fig. 5(b): per-slot utility gain of ``reference`` over ``other`` in percent, 100 (U_ref - U_other) / |U_other|.

    ``reference``, ``other``: slot utilities (eq. 4, CLIPScore points) of two policies on the same
    slots, same shape, finite, ``other`` never 0. Returns an array of that shape.

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    ref = np.asarray(reference, dtype=float)
    oth = np.asarray(other, dtype=float)
    if ref.ndim != 1 or ref.size == 0 or not np.all(np.isfinite(ref)):
        raise ValueError(
            f"reference: expected a non-empty 1-D array of finite slot utilities, got shape {ref.shape}"
        )
    if oth.shape != ref.shape or not np.all(np.isfinite(oth)):
        raise ValueError(
            f"other: expected {ref.size} finite slot utilities (like reference), got shape {oth.shape}"
        )
    if np.any(oth == 0):
        raise ValueError(
            "other: a slot utility of 0 has no relative gain; expected non-zero values"
        )
    return 100.0 * (ref - oth) / np.abs(oth)


def _tasks(result: Any) -> pd.DataFrame:
    return validate.instance(result, SimulationResult, "result").tasks


def _mean(values: Any) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.mean()) if values.size else math.nan
