"""Numbers from simulation runs: time consumption, one-line summaries, per-policy tables, slot gains.

The same few summaries serve several notebooks: :func:`time_consumption` (each model's makespan
N_m t_m per slot, the paper's "time consumption"), :func:`summarise` (one run in five numbers),
:func:`summarize_runs` (the paper's Fig. 5(a) table for several policies on one workload) and
:func:`slot_gain_pct` (Fig. 5(b): per-slot utility gain in percent).

Comparing policies that share one workload (common random numbers): :func:`paired_differences`
takes each slot's difference between two runs, so the workload's own spread cancels, and
:func:`interval` gives the mean difference with its 95% interval (mean +- 1.96 standard errors over
slots, the interval :data:`aigc_lib.results.INTERVAL` draws). :func:`paired_tasks` splits a
difference of mean utility by prompt group, into a score part and a latency part.

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

__all__ = [
    "time_consumption",
    "summarise",
    "summarize_runs",
    "slot_gain_pct",
    "slot_model_means",
    "paired_differences",
    "interval",
    "paired_tasks",
    "Z95",
]

Z95 = 1.96
"""Standard errors either side of a mean for its 95% interval (normal approximation)."""


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

    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
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


def slot_model_means(result: SimulationResult, column: str = "score") -> pd.DataFrame:
    """Each slot's mean of a task ``column`` per model: one row per slot, one column per model.

    ``column``: a column of ``result.tasks`` (``score``, ``latency``, ``utility``, ``steps``) or
    ``"makespan"`` (:func:`time_consumption`, seconds). NaN where the model served no task in the
    slot. These are the per-slot values :func:`paired_differences` compares with ``by_model``.
    """
    tasks = _tasks(result)
    models = list(tasks["model"].cat.categories)
    n_slots = len(result.slots)
    if column == "makespan":
        long = time_consumption(result)
        table = long.pivot(index="slot", columns="model", values="makespan")
    elif column in tasks.columns and column not in ("slot", "model", "group", "prompt_id"):
        table = tasks.groupby(["slot", "model"], observed=True)[column].mean().unstack("model")
    else:
        raise ValueError(
            f"column: expected a numeric task column of the result or 'makespan', got {column!r}"
        )
    table = table.reindex(index=range(n_slots), columns=models)
    table.columns = pd.Index([str(c) for c in table.columns], name="model")
    table.index.name = "slot"
    return table.astype(float)


def paired_differences(
    runs: Mapping[str, Any],
    reference: str,
    column: str = "utility",
    by_model: bool = False,
    percent: bool = False,
) -> pd.DataFrame:
    """Slot-by-slot differences between ``reference`` and every other run of ``runs`` (one workload).

    ``runs``: {policy: SimulationResult} on the same slots (the same seed: common random numbers).
    ``column``: a column of the runs' ``slots`` (``utility``, ``score``, ``latency``,
    ``makespan``), or with ``by_model=True`` a task column averaged per slot and model
    (:func:`slot_model_means`). The difference is reference minus other (``percent``: 100 x that
    / |other|). Returns a long frame: ``slot``, ``versus`` (the other policy), ``model`` (with
    ``by_model``) and ``difference``; a slot where either run has no value is left out.
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    if not isinstance(runs, Mapping) or reference not in runs or len(runs) < 2:
        raise ValueError(
            f"runs: expected a mapping of at least two runs that holds reference {reference!r}"
        )
    ref = _values(runs[reference], column, by_model)
    frames = []
    for name, run in runs.items():
        if name == reference:
            continue
        other = _values(run, column, by_model)
        if other.shape != ref.shape:
            raise ValueError(
                f"runs: {name!r} has {other.shape[0]} slots, {reference!r} {ref.shape[0]}; "
                "expected runs of the same workload"
            )
        diff = ref - other
        if percent:
            diff = 100 * diff / other.abs().where(other != 0)
        if by_model:
            long = diff.stack(future_stack=True).rename("difference").reset_index()
        else:
            long = pd.DataFrame({"slot": diff.index, "difference": diff[column].to_numpy()})
        frames.append(long.assign(versus=name))
    out = pd.concat(frames, ignore_index=True)
    keep = ["slot", "versus", *(["model"] if by_model else []), "difference"]
    return out[keep].dropna(subset=["difference"]).reset_index(drop=True)


def interval(differences: Any, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Mean of paired differences with its 95% interval: mean +- :data:`Z95` standard errors.

    ``differences``: a frame of :func:`paired_differences` (its ``difference`` column), or one
    1-D array of differences. ``by``: columns to group by (default: ``versus`` and ``model``
    where present). Columns: ``mean``, ``low``, ``high``, ``n`` (slots), ``share_positive``
    (share of slots with a difference > 0). The interval is over slots, which is right for paired
    differences: each slot's difference is one observation, and the workload's spread cancels.
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    if not isinstance(differences, pd.DataFrame):
        values = np.asarray(differences, dtype=float)
        if values.ndim != 1:
            raise ValueError(f"differences: expected a 1-D array, got shape {values.shape}")
        frame = pd.DataFrame({"difference": values})
        return pd.DataFrame([_interval(frame["difference"])])
    if "difference" not in differences.columns:
        raise ValueError("differences: expected a frame with a 'difference' column")
    if by is None:
        by = [c for c in ("versus", "model") if c in differences.columns]
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        return pd.DataFrame([_interval(differences["difference"])])
    groups = differences.groupby(by if len(by) > 1 else by[0], sort=False, observed=True)
    rows = {key: _interval(g["difference"]) for key, g in groups}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = out.index.set_names(by)
    return out


def _interval(values: pd.Series) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {
            "mean": math.nan,
            "low": math.nan,
            "high": math.nan,
            "n": 0,
            "share_positive": math.nan,
        }
    half = Z95 * v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
    mean = float(v.mean())
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "n": int(v.size),
        "share_positive": float((v > 0).mean()),
    }


def _values(result: Any, column: str, by_model: bool) -> pd.DataFrame:
    if by_model:
        return slot_model_means(result, column)
    slots = getattr(result, "slots", None)
    if not isinstance(slots, pd.DataFrame) or column not in slots.columns:
        raise ValueError(f"column: expected a column of the runs' slots, got {column!r}")
    frame = slots[[column]].astype(float)
    frame.index = pd.RangeIndex(len(frame), name="slot")
    return frame


def paired_tasks(
    reference: SimulationResult, other: SimulationResult, by: str = "group"
) -> pd.DataFrame:
    """Where a difference of mean task utility comes from: task by task, split by ``by``.

    The two runs share a workload, so their tasks are the same prompts in the same order; each
    task's difference (reference minus other) is paired. One row per value of ``by`` (a task
    column, ``group`` by default): ``share`` of all tasks, ``moved`` (share of them that the two
    runs sent to different models), ``from_model`` and ``to_model`` (the model ``other`` and
    ``reference`` used most for them), ``score`` and ``utility`` (mean paired difference per
    task of the row, CLIPScore points) and ``latency_term`` = utility - score (-lambda x the
    latency difference: queueing and image time), and the ``contribution`` of the row to the
    difference of the overall mean task utility (share x utility; the contributions sum to it;
    with equal tasks per slot, to the difference of the mean slot utility). ``score_contribution``
    is the score part of it. Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    a, b = _tasks(reference), _tasks(other)
    if len(a) != len(b) or not (
        (a["slot"].to_numpy() == b["slot"].to_numpy()).all()
        and (a["prompt_id"].to_numpy() == b["prompt_id"].to_numpy()).all()
        and np.array_equal(a["deviation"].to_numpy(), b["deviation"].to_numpy())
    ):
        raise ValueError(
            "other: expected a run of the same workload (same seed, slots and prompts)"
        )
    if by not in a.columns:
        raise ValueError(f"by: expected a task column, got {by!r}")
    frame = pd.DataFrame(
        {
            by: a[by].to_numpy(),
            "moved": a["model"].astype(str).to_numpy() != b["model"].astype(str).to_numpy(),
            "from_model": b["model"].astype(str).to_numpy(),
            "to_model": a["model"].astype(str).to_numpy(),
            "score": a["score"].to_numpy() - b["score"].to_numpy(),
            "utility": a["utility"].to_numpy() - b["utility"].to_numpy(),
        }
    )
    grouped = frame.groupby(by, observed=True, sort=True)
    out = pd.DataFrame(
        {
            "share": grouped.size() / len(frame),
            "moved": grouped["moved"].mean(),
            "from_model": grouped["from_model"].agg(lambda s: s.mode().iloc[0]),
            "to_model": grouped["to_model"].agg(lambda s: s.mode().iloc[0]),
            "score": grouped["score"].mean(),
            "utility": grouped["utility"].mean(),
        }
    )
    out["latency_term"] = out["utility"] - out["score"]
    out["contribution"] = out["share"] * out["utility"]
    out["score_contribution"] = out["share"] * out["score"]
    return out


def _tasks(result: Any) -> pd.DataFrame:
    return validate.instance(result, SimulationResult, "result").tasks


def _mean(values: Any) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.mean()) if values.size else math.nan
