"""The paper's claims, measured under any reading, and what it takes for them to hold.

Numbers are one tidy table (columns :data:`COLUMNS`): one row per number, named by ``part``
(``assignment``, ``allocation``, ``lambda``, ``meta``), ``quantity``, ``policy``, ``versus`` (the
baseline of a comparison), ``key`` (a model, a statistic or a lambda) and ``unit``; a lookup is one
filter (:func:`value`).

* :func:`assignment_numbers`, :func:`allocation_numbers`, :func:`lambda_numbers` turn runs on one
  workload (common random numbers) into that table; :func:`measure` runs the experiments behind
  every claim of docs/SPEC.md section 6 for one scenario and one reading (the three assignments
  and the three single-model policies with annealing, the allocation methods with probabilistic
  assignment, a lambda sweep); :func:`measure_many` does it for several scenarios and readings
  across CPU cores (:func:`aigc_lib.parallel.run`).
* Every comparison carries its paired 95% interval over slots (``low``, ``high``):
  :func:`slot_sums` gives each run's per-slot sums, :func:`paired_interval` resamples the slots of
  two runs together (:func:`resample_weights`).
* Claims are data: :data:`RECORDS` holds a :class:`Claim` per claim, naming the quantities it
  speaks of (:class:`Quantity`, per model and per benchmark), the paper's side, its stated size and
  what its words mean in numbers. One generic judge, :func:`judge_claim`, gives one of
  :data:`VERDICTS` from the named intervals (:func:`verdict`) and the size apart
  (:func:`size_verdict`); :func:`judge` applies it to a table, flagging an oracle with its
  measured rank (:func:`oracle_rank`).
* :func:`slot_gain_stats` reads "up to 2.5%": mean with its 95% interval, maximum, share of slots
  won, and how often the maximum of 10 slots reaches 2.5% when the true mean gain is zero
  (:func:`null_max_probability`).
* :func:`annealing_bounds`: the algebra showing the paper's four annealing numbers cannot all hold
  with one U = S - lambda T and SA's score between Equal-allocation's and Optimal-step's.
* :func:`mixture_vs_best`: with category information, a group's probabilistic mixture never
  scores above the group's best single model (at fixed steps).
* :func:`rho_sweep` and :func:`break_even_rho`: Probabilistic against Direct as the assignment's
  knowledge of each prompt grows from its category (rho = 0) to an oracle (rho = 1).
* :func:`plausible_scenario` and :func:`robustness`: how often Probabilistic beats Direct, and a mix
  of models the best single model, over many random scenarios that keep the paper's premises.

Units: CLIPScore points, seconds, percent. Taught in
``notebooks/06_what_the_papers_numbers_need.ipynb``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib import assignment, metrics, parallel, results, simulation, validate
from aigc_lib._io import atomic_write_text
from aigc_lib.readings import DEFAULT, Readings, caveat
from aigc_lib.readings import TIME_CONSUMPTION as TIME_READINGS
from aigc_lib.scenario import Scenario, premises, true_score

__all__ = [
    "PAPER",
    "CLAIMS",
    "COLUMNS",
    "QUANTILES",
    "PROMPT_POLICY",
    "assignment_numbers",
    "allocation_numbers",
    "lambda_numbers",
    "measure",
    "measure_many",
    "value",
    "values",
    "write_numbers",
    "read_numbers",
    "judge",
    "judge_claim",
    "verdict",
    "size_verdict",
    "named",
    "interval_of",
    "oracle_rank",
    "Claim",
    "Quantity",
    "RECORDS",
    "VERDICTS",
    "slot_sums",
    "resample_weights",
    "paired_interval",
    "lambda_change_numbers",
    "slot_gain_stats",
    "null_max_probability",
    "annealing_bounds",
    "mixture_vs_best",
    "rho_sweep",
    "break_even_rho",
    "plausible_scenario",
    "robustness",
]

PAPER = {
    "score_gain_range": (0.2, 2.4),
    "utility_up_to_pct": 2.5,
    "quality_up_to_pct": 4.7,
    "time_change_pct": {"optimal_step": -30.2, "equal": -39.1},
    "utility_gain_pct": {"optimal_step": 17.8, "equal": 12.7},
}
"""The paper's numbers (abstract, Sec. IV-B and IV-C)."""

CLAIMS = {
    "score_vs_direct": (
        "Probabilistic vs Direct: mean CLIPScore per model",
        "+0.2 to +2.4, especially on SDXL",
        "Sec. IV-B, Fig. 5(a)",
    ),
    "score_vs_random": (
        "Probabilistic vs Random: mean CLIPScore per model",
        "+0.2 to +2.4, especially on SDXL",
        "Sec. IV-B, Fig. 5(a)",
    ),
    "random_small_large": (
        "Random raises the small model's mean CLIPScore and lowers the large model's",
        "small up, large down (vs Probabilistic)",
        "Sec. IV-B, Fig. 5(a)",
    ),
    "utility_vs_direct": (
        "Probabilistic vs Direct: utility per slot",
        "up to +2.5%",
        "Sec. IV-B, Fig. 5(b)",
    ),
    "utility_vs_random": (
        "Probabilistic vs Random: utility per slot",
        "up to +2.5%",
        "Sec. IV-B, Fig. 5(b)",
    ),
    "score_cdf": (
        "Score CDF of Probabilistic shifted right (first-order dominance over Direct and Random)",
        "above Direct and Random",
        "Sec. IV-B, Fig. 5(c)",
    ),
    "mix_vs_single": (
        "A mix of models beats every single model (Probabilistic vs each model alone): utility",
        "implied: three models serve diverse prompts",
        "Sec. III-A, III-D",
    ),
    "quality_up_to": (
        "The system vs the benchmarks: mean CLIPScore",
        "up to +4.7%",
        "Abstract",
    ),
    "time_vs_optimal_step": (
        "Annealing vs Optimal-step: time consumption",
        "-30.2%",
        "Sec. IV-C, Fig. 9",
    ),
    "time_each_model_vs_optimal_step": (
        "Annealing vs Optimal-step: less time consumption on each model",
        "less on every model",
        "Sec. IV-C, Fig. 9",
    ),
    "time_vs_equal": (
        "Annealing vs Equal-allocation: time consumption",
        "-39.1%",
        "Sec. IV-C, Fig. 9",
    ),
    "utility_vs_optimal_step": (
        "Annealing vs Optimal-step: utility",
        "+17.8%",
        "Sec. IV-C, Fig. 9",
    ),
    "utility_vs_equal": ("Annealing vs Equal-allocation: utility", "+12.7%", "Sec. IV-C, Fig. 9"),
    "alloc_score": (
        "Annealing CLIPScore: near Optimal-step, above Equal-allocation on every model",
        "near / above",
        "Sec. IV-C, Fig. 9",
    ),
    "lambda_trend": (
        "lambda sweep: small lambda -> more steps and score; large -> less time",
        "monotone trade-off",
        "Sec. IV-C, Fig. 9",
    ),
}
"""claim id -> (claim, the paper's figure, where the paper says it)."""

COLUMNS = ("part", "quantity", "policy", "versus", "key", "unit", "value", "low", "high")
"""The columns of a table of numbers (plus ``scenario`` and ``reading`` from :func:`measure`):
``low`` and ``high`` are the 95% interval of a paired comparison (NaN for a plain number)."""

N_BOOT = 2000
"""Resamples of slots for the paired bootstrap intervals (:func:`paired_interval`)."""

QUANTILES = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))
"""The quantiles at which first-order dominance of the score CDF is judged (5% to 95%)."""

PROMPT_POLICY = "probabilistic (prompt)"
"""Probabilistic-assignment under ``information="prompt"`` (an oracle at rho = 1), in
:func:`robustness`."""

_ALLOCATION_METHODS = ("annealing", "equal", "optimal_step")
_STAT_UNITS = {
    "max10": "%",
    "mean": "%",
    "low": "%",
    "high": "%",
    "max": "%",
    "share_won": "share",
    "null_max": "probability",
}


# --- the table of numbers -----------------------------------------------------------------------


def _row(
    part: str, quantity: str, unit: str, value: Any, policy="", versus="", key="", band=None
) -> dict:
    low, high = (math.nan, math.nan) if band is None else band
    return {
        "part": part,
        "quantity": quantity,
        "policy": policy,
        "versus": versus,
        "key": str(key),
        "unit": unit,
        "value": float(value),
        "low": float(low),
        "high": float(high),
    }


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS))


def assignment_numbers(
    runs: Mapping[str, simulation.SimulationResult],
    rng: np.random.Generator | None = None,
    null_draws: int = 20_000,
) -> pd.DataFrame:
    """The assignment claims' numbers from runs of several policies on one workload.

    ``runs``: {policy: SimulationResult}, the same seed and slots for all; it must hold
    ``"probabilistic"``, and may hold ``"direct"``, ``"random"`` and single-model policies (a
    model's name). Per policy: ``mean_score``, ``mean_utility`` (points), ``mean_latency`` (s),
    ``score_by_model`` and ``tasks`` per model (NaN / 0 where the policy sent it none). Against
    each other policy (``versus``), for Probabilistic, each with its paired 95% interval in
    ``low`` and ``high`` (:func:`paired_interval`, slots resampled with ``rng``): ``score_gain``
    per model (points), ``slot_gain_pct`` (:func:`slot_gain_stats`; its ``mean`` row carries the
    interval, its ``max10`` row the largest of ten slots), ``utility_difference`` (mean paired
    per-slot difference, points), ``quality_gain_pct`` (of the mean task score), ``quantile_gain``
    (points, at the quartiles ``q25``, ``q50``, ``q75`` of the task scores) and ``cdf``
    (``above``: how many of :data:`QUANTILES` lie above the other's; ``of``; ``ks``).
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    if not isinstance(runs, Mapping) or "probabilistic" not in runs:
        raise ValueError("runs: expected a mapping {policy: SimulationResult} with 'probabilistic'")
    rng = np.random.default_rng(0) if rng is None else rng
    models = list(runs["probabilistic"].tasks["model"].cat.categories)
    rows = [r for p, run in runs.items() for r in _policy_rows("assignment", p, run, models)]
    weights = resample_weights(len(runs["probabilistic"].slots), rng)
    for o, r in runs.items():
        if o != "probabilistic":
            rows += _versus_rows(runs["probabilistic"], r, o, models, weights, rng, null_draws)
    rows += [_row("meta", "model_order", "index", i, key=m) for i, m in enumerate(models)]
    return _frame(rows)


def _policy_rows(part: str, policy: str, run: simulation.SimulationResult, models) -> list[dict]:
    """One policy's plain numbers: mean score, utility, latency; score and tasks per model."""
    tasks = run.tasks
    by_model = tasks.groupby("model", observed=False)["score"].mean().reindex(models)
    counts = tasks["model"].value_counts().reindex(models, fill_value=0)
    rows = [
        _row(part, "mean_score", "points", tasks["score"].mean(), policy),
        _row(part, "mean_utility", "points", np.nanmean(run.slots["utility"]), policy),
        _row(part, "mean_latency", "s", tasks["latency"].mean(), policy),
    ]
    rows += [_row(part, "score_by_model", "points", v, policy, key=m) for m, v in by_model.items()]
    return rows + [_row(part, "tasks", "tasks", n, policy, key=m) for m, n in counts.items()]


def _versus_rows(ref, other, o, models, weights, rng, null_draws) -> list[dict]:
    """Probabilistic against policy ``o``: every paired comparison with its interval."""
    part, p = "assignment", "probabilistic"
    a, b = slot_sums(ref, models), slot_sums(other, models)
    rows = [
        _row(part, "score_gain", "points", v, p, o, m, band)
        for m, (v, *band) in zip(models, paired_interval(_score_gain, a, b, weights))
    ]
    mine, theirs = ref.slots["utility"].to_numpy(), other.slots["utility"].to_numpy()
    stats = slot_gain_stats(mine, theirs, rng=rng, n_draws=null_draws)
    bands = {
        "mean": (stats["low"], stats["high"]),
        "max10": (stats.pop("max10_low"), stats.pop("max10_high")),
    }
    rows += [
        _row(part, "slot_gain_pct", _STAT_UNITS.get(k, "%"), v, p, o, k, bands.get(k))
        for k, v in stats.items()
    ]
    diff = metrics.interval(mine - theirs).iloc[0]
    band = (diff["low"], diff["high"])
    rows += [
        _row(part, "utility_difference", "points", diff[k], p, o, k, band if k == "mean" else None)
        for k in ("mean", "low", "high")
    ]
    ((v, *band),) = paired_interval(_quality_gain, a, b, weights)
    rows.append(_row(part, "quality_gain_pct", "%", v, p, o, band=band))
    for k, (v, *band) in zip(_QUARTILES, _quantile_gains(ref, other, weights)):
        rows.append(_row(part, "quantile_gain", "points", v, p, o, k, band))
    for k, v in _dominance(ref.tasks["score"], other.tasks["score"]).items():
        rows.append(_row(part, "cdf", "quantiles" if k != "ks" else "share", v, p, o, k))
    return rows


def _dominance(mine: pd.Series, other: pd.Series) -> dict[str, float]:
    """First-order dominance at :data:`QUANTILES` and the Kolmogorov-Smirnov distance."""
    a, b = np.sort(np.asarray(mine, float)), np.sort(np.asarray(other, float))
    q = np.asarray(QUANTILES)
    above = int((np.quantile(a, q) > np.quantile(b, q)).sum())
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return {"above": above, "of": len(q), "ks": float(np.abs(cdf_a - cdf_b).max())}


# --- paired intervals over slots ----------------------------------------------------------------


def slot_sums(result: simulation.SimulationResult, models: Sequence[str]) -> dict[str, np.ndarray]:
    """One run's per-slot sums, the samples every paired interval resamples.

    Arrays of shape (n_slots, len(models)): ``score`` (sum of task scores, points), ``tasks``
    (count), ``makespan`` (N_m t_m, s; 0 where the model served nothing), ``served`` (1 where it
    served); shape (n_slots, 1): ``utility`` (the slot's utility, 0 where NaN), ``slots`` (1 where
    finite), ``steps`` and ``multi`` (sum and count of steps of multi-step models' tasks).
    """
    n, slot_index = len(result.slots), pd.Index(result.slots["slot"])
    tasks = result.tasks
    s = slot_index.get_indexer(tasks["slot"])
    m = pd.Categorical(tasks["model"].astype(str), categories=list(models)).codes
    out = {k: np.zeros((n, len(models))) for k in ("score", "tasks", "makespan", "served")}
    np.add.at(out["score"], (s, m), tasks["score"].to_numpy(float))
    np.add.at(out["tasks"], (s, m), 1.0)
    span = metrics.time_consumption(result)
    sm = (
        slot_index.get_indexer(span["slot"]),
        pd.Categorical(span["model"].astype(str), categories=list(models)).codes,
    )
    out["makespan"][sm] = span["makespan"].to_numpy(float)
    out["served"][sm] = 1.0
    u = result.slots["utility"].to_numpy(float)
    out["utility"], out["slots"] = (
        np.where(np.isfinite(u), u, 0.0)[:, None],
        np.isfinite(u)[:, None] * 1.0,
    )
    top = tasks.groupby("model", observed=True)["steps"].transform("max").to_numpy() > 1
    out["steps"], out["multi"] = np.zeros((n, 1)), np.zeros((n, 1))
    np.add.at(out["steps"][:, 0], s[top], tasks["steps"].to_numpy(float)[top])
    np.add.at(out["multi"][:, 0], s[top], 1.0)
    return out


def resample_weights(n_slots: int, rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """Bootstrap weights over slots, shape (1 + n_boot, n_slots): row 0 is the sample itself
    (every slot once), each other row how often each slot is drawn in one resample."""
    validate.whole(n_slots, "n_slots", low=1)
    idx = rng.integers(0, n_slots, size=(int(n_boot), int(n_slots)))
    weights = np.zeros((int(n_boot), int(n_slots)))
    np.add.at(weights, (np.arange(int(n_boot))[:, None], idx), 1.0)
    return np.vstack([np.ones(int(n_slots)), weights])


def paired_interval(stat, a: Mapping, b: Mapping, weights: np.ndarray) -> list[tuple]:
    """A statistic of two runs on one workload with its paired 95% interval over slots.

    ``stat(A, B)``: the statistic from two dicts of slot sums (:func:`slot_sums`; each entry
    resampled when the statistic first reads it) summed with one
    row of weights (each a (rows, k) array), returning (rows, k). ``weights``:
    :func:`resample_weights`; both runs are resampled at the same slots, so the interval is
    paired. Returns ``[(value, low, high)]`` per column k: the value on the sample itself and the
    2.5% and 97.5% percentiles of the resamples (NaN where the value is NaN).
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        draws = stat(_Resampled(a, weights), _Resampled(b, weights))
        low, high = np.nanpercentile(draws[1:], [2.5, 97.5], axis=0)
    value = draws[0]
    return [
        (float(v), float(lo), float(hi)) if np.isfinite(v) else (float(v), math.nan, math.nan)
        for v, lo, hi in zip(value, low, high)
    ]


class _Resampled(dict):
    """``{name: weights @ sums[name]}``, each computed when the statistic first reads it."""

    def __init__(self, sums: Mapping, weights: np.ndarray) -> None:
        super().__init__()
        self.sums, self.weights = sums, weights

    def __missing__(self, name: str) -> np.ndarray:
        self[name] = self.weights @ self.sums[name]
        return self[name]


def _score_gain(a: Mapping, b: Mapping) -> np.ndarray:
    return a["score"] / a["tasks"] - b["score"] / b["tasks"]


def _quality_gain(a: Mapping, b: Mapping) -> np.ndarray:
    sa, sb = a["score"].sum(1) / a["tasks"].sum(1), b["score"].sum(1) / b["tasks"].sum(1)
    return (100 * (sa - sb) / sb)[:, None]


def _utility_change(a: Mapping, b: Mapping) -> np.ndarray:
    ua, ub = a["utility"] / a["slots"], b["utility"] / b["slots"]
    return 100 * (ua - ub) / np.abs(ub)


def _time_difference(a: Mapping, b: Mapping) -> np.ndarray:
    return a["makespan"] / a["served"] - b["makespan"] / b["served"]


def _time_change(a: Mapping, b: Mapping) -> np.ndarray:
    """``makespan`` (change of the mean over shared models) and ``per_model_pct``, percent."""
    ta, tb = a["makespan"] / a["served"], b["makespan"] / b["served"]
    shared = np.isfinite(ta) & np.isfinite(tb)
    ma = np.nanmean(np.where(shared, ta, np.nan), axis=1)
    mb = np.nanmean(np.where(shared, tb, np.nan), axis=1)
    per_model = np.nanmean(np.where(shared, 100 * (ta - tb) / tb, np.nan), axis=1)
    return np.column_stack([100 * (ma - mb) / mb, per_model])


def _lambda_change(a: Mapping, b: Mapping) -> np.ndarray:
    """Smallest lambda minus largest: mean steps, mean task score, mean time consumption."""

    def three(r):
        time = np.nanmean(r["makespan"] / r["served"], axis=1)
        return [r["steps"][:, 0] / r["multi"][:, 0], r["score"].sum(1) / r["tasks"].sum(1), time]

    return np.column_stack([x - y for x, y in zip(three(a), three(b))])


_QUARTILES = ("q25", "q50", "q75")


def _quantile_gains(ref, other, weights: np.ndarray) -> list[tuple]:
    """Quartile differences of task scores (points), with paired 95% intervals over slots."""
    q = np.array([0.25, 0.5, 0.75])

    def quartiles(result):  # per resample: the score where the running weight reaches q
        slot_index = pd.Index(result.slots["slot"])
        score = result.tasks["score"].to_numpy(float)
        order = np.argsort(score, kind="stable")
        slot = slot_index.get_indexer(result.tasks["slot"])[order].astype(np.int64)
        from aigc_lib import _kernels  # compiled (Numba), imported on first use

        at = _kernels.weighted_ranks(np.ascontiguousarray(weights, dtype=float), slot, q)
        return score[order][np.minimum(at, score.size - 1)]

    draws = quartiles(ref) - quartiles(other)
    low, high = np.percentile(draws[1:], [2.5, 97.5], axis=0)
    return [(float(v), float(lo), float(hi)) for v, lo, hi in zip(draws[0], low, high)]


def allocation_numbers(
    runs: Mapping[str, simulation.SimulationResult], rng: np.random.Generator | None = None
) -> pd.DataFrame:
    """The allocation claims' numbers from runs of ``annealing``, ``equal`` and ``optimal_step``
    (the same assignment and workload; keys of ``runs``).

    Per method: ``mean_utility``, ``mean_score`` (points), ``mean_latency`` (s), ``mean_steps``
    (of the multi-step models), ``score_by_model`` (points) and ``time_consumption`` per model
    (mean makespan N_m t_m over the slots the model served, s). Against each baseline, for
    annealing, each with its paired 95% interval (``low``, ``high``; slots resampled with
    ``rng``, :func:`paired_interval`): ``time_change_pct`` under both readings of "time
    consumption" (``makespan``: the change of the mean over models; ``per_model_pct``: the mean
    of per-model changes), ``time_difference`` per model (s), ``score_gain`` per model (points),
    ``utility_change_pct`` (of the mean utilities), ``utility_difference`` (mean paired per-slot
    difference, points) and ``quality_gain_pct`` (of the mean task score).
    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    missing = [m for m in _ALLOCATION_METHODS if m not in runs]
    if missing:
        raise ValueError(f"runs: expected runs of {_ALLOCATION_METHODS}, missing {missing}")
    rng = np.random.default_rng(0) if rng is None else rng
    models = list(runs["annealing"].tasks["model"].cat.categories)
    rows = [r for m in _ALLOCATION_METHODS for r in _method_rows(m, runs[m])]
    weights = resample_weights(len(runs["annealing"].slots), rng)
    for o in ("optimal_step", "equal"):
        rows += _allocation_versus(runs["annealing"], runs[o], o, models, weights)
    rows += [_row("meta", "model_order", "index", i, key=m) for i, m in enumerate(models)]
    return _frame(rows)


def _method_rows(method: str, run: simulation.SimulationResult) -> list[dict]:
    part, summary = "allocation", metrics.summarise(run)
    rows = [
        _row(part, q, unit, summary[q], method)
        for q, unit in (
            ("mean_utility", "points"),
            ("mean_score", "points"),
            ("mean_steps", "steps"),
        )
    ]
    rows.append(_row(part, "mean_latency", "s", run.tasks["latency"].mean(), method))
    scores = run.tasks.groupby("model", observed=True)["score"].mean()
    rows += [_row(part, "score_by_model", "points", v, method, key=k) for k, v in scores.items()]
    spans = _makespans(run)
    return rows + [_row(part, "time_consumption", "s", v, method, key=k) for k, v in spans.items()]


def _allocation_versus(mine, theirs, o, models, weights) -> list[dict]:
    """Annealing against method ``o``: every paired comparison with its interval."""
    part, p = "allocation", "annealing"
    a, b = slot_sums(mine, models), slot_sums(theirs, models)
    rows = [
        _row(part, "time_change_pct", "%", v, p, o, k, band)
        for k, (v, *band) in zip(TIME_READINGS, paired_interval(_time_change, a, b, weights))
    ]
    for quantity, stat, unit in (
        ("time_difference", _time_difference, "s"),
        ("score_gain", _score_gain, "points"),
    ):
        rows += [
            _row(part, quantity, unit, v, p, o, m, band)
            for m, (v, *band) in zip(models, paired_interval(stat, a, b, weights))
        ]
    ((v, *band),) = paired_interval(_utility_change, a, b, weights)
    rows.append(_row(part, "utility_change_pct", "%", v, p, o, band=band))
    diff = metrics.interval(
        mine.slots["utility"].to_numpy() - theirs.slots["utility"].to_numpy()
    ).iloc[0]
    band = (diff["low"], diff["high"])
    rows += [
        _row(part, "utility_difference", "points", diff[k], p, o, k, band if k == "mean" else None)
        for k in ("mean", "low", "high")
    ]
    ((v, *band),) = paired_interval(_quality_gain, a, b, weights)
    return rows + [_row(part, "quality_gain_pct", "%", v, p, o, band=band)]


def lambda_numbers(sweep: pd.DataFrame) -> pd.DataFrame:
    """The lambda sweep's numbers: one row per lambda of ``sweep`` (columns ``weight``,
    ``mean_steps``, ``mean_score``, ``mean_time_consumption``, as
    :func:`aigc_lib.metrics.summarise` names them), keyed by the lambda.
    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``."""
    need = {"weight", "mean_steps", "mean_score", "mean_time_consumption"}
    if not isinstance(sweep, pd.DataFrame) or not need <= set(sweep.columns):
        raise ValueError(f"sweep: expected a DataFrame with columns {sorted(need)}")
    units = {"mean_steps": "steps", "mean_score": "points", "mean_time_consumption": "s"}
    rows = [
        _row("lambda", q, unit, r[q], "annealing", key=f"{r['weight']:g}")
        for _, r in sweep.iterrows()
        for q, unit in units.items()
    ]
    return _frame(rows)


def lambda_change_numbers(
    smallest: simulation.SimulationResult,
    largest: simulation.SimulationResult,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """The lambda-trend claim's paired numbers: the run at the smallest lambda minus the run at the
    largest (the same slots and seed), ``lambda_change`` keyed ``steps`` (mean steps of the
    multi-step models), ``score`` (mean task score, points) and ``time`` (mean time consumption,
    s), each with its paired 95% interval over slots (:func:`paired_interval`).
    Called by :func:`measure` for notebook 06's lambda rows."""
    if len(smallest.slots) != len(largest.slots):
        raise ValueError("largest: expected the same slots as smallest")
    models = list(smallest.tasks["model"].cat.categories)
    rng = np.random.default_rng(0) if rng is None else rng
    weights = resample_weights(len(smallest.slots), rng)
    found = paired_interval(
        _lambda_change, slot_sums(smallest, models), slot_sums(largest, models), weights
    )
    rows = [
        _row("lambda", "lambda_change", unit, v, "annealing", key=k, band=band)
        for (k, unit), (v, *band) in zip(
            (("steps", "steps"), ("score", "points"), ("time", "s")), found
        )
    ]
    return _frame(rows)


def _makespans(result: simulation.SimulationResult) -> dict[str, float]:
    """Each model's mean makespan N_m t_m over the slots it served (seconds)."""
    frame = metrics.time_consumption(result)
    return {
        str(m): float(v)
        for m, v in frame.groupby("model", observed=True)["makespan"].mean().items()
    }


def value(
    numbers: pd.DataFrame, quantity: str, policy: str = "", versus: str = "", key: str = ""
) -> float:
    """The one number of ``numbers`` at (``quantity``, ``policy``, ``versus``, ``key``).

    Raises ``ValueError`` naming the lookup when there is none, or more than one (a table of
    several scenarios or readings: filter it first).
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    hit = numbers[
        (numbers["quantity"] == quantity)
        & (numbers["policy"] == policy)
        & (numbers["versus"] == versus)
        & (numbers["key"] == str(key))
    ]
    if len(hit) != 1:
        raise ValueError(
            f"quantity: expected one number at ({quantity!r}, {policy!r}, {versus!r}, {key!r}), "
            f"found {len(hit)}"
        )
    return float(hit["value"].iloc[0])


def values(numbers: pd.DataFrame, quantity: str, policy: str = "", versus: str = "") -> pd.Series:
    """The numbers at (``quantity``, ``policy``, ``versus``) as a Series indexed by ``key``."""
    hit = numbers[
        (numbers["quantity"] == quantity)
        & (numbers["policy"] == policy)
        & (numbers["versus"] == versus)
    ]
    return hit.set_index("key")["value"]


def _has(numbers: pd.DataFrame, quantity: str, policy: str = "", versus: str = "") -> bool:
    return bool(
        (
            (numbers["quantity"] == quantity)
            & (numbers["policy"] == policy)
            & (numbers["versus"] == versus)
        ).any()
    )


def write_numbers(
    numbers: pd.DataFrame, results_dir: str | os.PathLike, name: str = "claims.csv"
) -> Path:
    """Write a table of numbers as ``<results_dir>/<name>`` (CSV, 10 significant digits).

    Inside a Jupyter kernel the file is staged and published with the notebook's
    ``metrics.json`` (:mod:`aigc_lib.results`). Returns the path it will have.
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    folder = results.results_folder(results_dir)
    target = folder / name
    text = numbers.to_csv(index=False, float_format="%.10g", na_rep="nan")
    atomic_write_text(results.staged_path(target, folder), text)
    return results.WrittenPath(target)  # no repr under the notebook's cell


def read_numbers(path: str | os.PathLike) -> pd.DataFrame:
    """A table written by :func:`write_numbers` (keys and labels stay strings)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("value", "low", "high"):
        frame[column] = frame[column].astype(float) if column in frame else math.nan
    return frame


# --- measuring ----------------------------------------------------------------------------------


def measure(
    scenario: Scenario,
    readings: Readings = DEFAULT,
    n_slots: int = 200,
    seed: int = 0,
    prompts: pd.DataFrame | None = None,
    weights: Sequence[float] = (0.02, 0.2, 1.0),
    lambda_slots: int | None = None,
    null_draws: int = 20_000,
    parts: Sequence[str] = ("assignment", "allocation", "lambda"),
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Every claim's numbers for one scenario and one reading, on one workload (``seed``).

    ``assignment``: Probabilistic, Direct, Random and each model alone, all with annealing
    (:func:`assignment_numbers`). ``allocation``: annealing, Equal-allocation and Optimal-step
    with probabilistic assignment (:func:`allocation_numbers`; annealing's run is Probabilistic's
    above). ``lambda``: annealing at each of ``weights`` (``lambda_slots`` slots, default
    ``n_slots``; :func:`lambda_numbers`). ``parts`` picks which to run. Returns the tidy table
    (:data:`COLUMNS`) with ``scenario`` and ``reading`` (``readings.label``) columns first. The
    simulations run across CPU cores (:func:`aigc_lib.parallel.run`).
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    return measure_many(
        [scenario],
        [readings],
        n_slots=n_slots,
        seed=seed,
        prompts=prompts,
        weights=weights,
        lambda_slots=lambda_slots,
        null_draws=null_draws,
        parts=parts,
        n_jobs=n_jobs,
    )


def measure_many(
    scenarios: Mapping[str, Scenario] | Sequence[Scenario],
    readings: Mapping[str, Readings] | Sequence[Readings] = (DEFAULT,),
    n_slots: int = 200,
    seed: int = 0,
    prompts: pd.DataFrame | None = None,
    weights: Sequence[float] = (0.02, 0.2, 1.0),
    lambda_slots: int | None = None,
    null_draws: int = 20_000,
    parts: Sequence[str] = ("assignment", "allocation", "lambda"),
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """:func:`measure` for every scenario and every reading, in one table.

    ``scenarios`` and ``readings``: mappings (or sequences) of them; the other arguments as in
    :func:`measure` (one seed: one workload per scenario). A run that a reading does not change is
    run once (the information reading changes only Probabilistic, the Direct reading only
    Direct); the distinct runs go across CPU cores (:func:`aigc_lib.parallel.run`), so the
    result does not depend on ``n_jobs``.
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    sc = list(scenarios.values()) if isinstance(scenarios, Mapping) else list(scenarios)
    rd = list(readings.values()) if isinstance(readings, Mapping) else list(readings)
    for s in sc:
        validate.instance(s, Scenario, "scenarios")
    for r in rd:
        validate.instance(r, Readings, "readings")
    unknown = set(parts) - {"assignment", "allocation", "lambda"}
    if unknown or not parts:
        raise ValueError(f"parts: expected some of assignment, allocation, lambda, got {parts!r}")
    plans = {
        (i, r): _plan(i, s, r, parts, n_slots, weights, lambda_slots)
        for i, s in enumerate(sc)
        for r in rd
    }
    specs = sorted({spec for plan in plans.values() for spec in plan.values()}, key=repr)
    items = [(sc[spec[0]], *spec[1:], seed, prompts) for spec in specs]
    done = dict(zip(specs, parallel.run(_simulate, items, n_jobs=n_jobs)))
    frames = []
    for (i, r), plan in plans.items():
        runs = {name: done[spec] for name, spec in plan.items()}
        out = _numbers_of(runs, sc[i], parts, seed, weights, null_draws)
        out.insert(0, "reading", r.label)
        out.insert(0, "scenario", sc[i].name)
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


_MEASURED: dict[str, pd.DataFrame] = {}
"""What :func:`shared_measure` measured in this process, by the repr of its arguments."""


def shared_measure(
    scenarios: Mapping[str, Scenario],
    readings: Mapping[str, Readings],
    n_slots: int,
    seed: int,
    prompts: pd.DataFrame | None,
    weights: Sequence[float],
    lambda_slots: int | None,
    null_draws: int,
) -> pd.DataFrame:
    """:func:`measure_many` with these arguments, kept for the process: every section of a notebook
    can open with this call, and only the first one measures (the key: the arguments' repr, and the
    prompts' content hash). Returns a copy of the table. Taught in
    ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    table = None if prompts is None else int(pd.util.hash_pandas_object(prompts).sum())
    args = (dict(scenarios), dict(readings), n_slots, seed, tuple(weights), lambda_slots)
    key = repr((*args, null_draws, table))
    if key not in _MEASURED:
        _MEASURED[key] = measure_many(
            scenarios,
            readings,
            n_slots=n_slots,
            seed=seed,
            prompts=prompts,
            weights=weights,
            lambda_slots=lambda_slots,
            null_draws=null_draws,
        )
    return _MEASURED[key].copy()


def _numbers_of(runs, scenario, parts, seed, weights, null_draws) -> pd.DataFrame:
    """One (scenario, reading)'s table of numbers from its runs (:func:`measure_many`)."""
    part_frames = []
    if "assignment" in parts:
        policies = ("probabilistic", "direct", "random", *scenario.model_names)
        rng = np.random.default_rng([seed, 2025])
        part_frames.append(
            assignment_numbers({p: runs[p] for p in policies}, rng=rng, null_draws=null_draws)
        )
    if "allocation" in parts:
        methods = {"annealing": runs["probabilistic"], "equal": runs["equal"]}
        methods["optimal_step"] = runs["optimal_step"]
        part_frames.append(allocation_numbers(methods, np.random.default_rng([seed, 2026])))
    if "lambda" in parts:
        part_frames += _lambda_frames(runs, weights, seed)
    return pd.concat(part_frames, ignore_index=True).drop_duplicates(
        subset=["part", "quantity", "policy", "versus", "key"]
    )


def _lambda_frames(runs: Mapping, weights: Sequence[float], seed: int) -> list[pd.DataFrame]:
    """The lambda sweep's numbers and its paired change from the smallest to the largest lambda."""
    rows = [
        {"weight": float(w), **metrics.summarise(runs[f"lambda {float(w)!r}"])} for w in weights
    ]
    frames = [lambda_numbers(pd.DataFrame(rows))]
    low, high = f"lambda {float(min(weights))!r}", f"lambda {float(max(weights))!r}"
    if low != high:
        frames.append(
            lambda_change_numbers(runs[low], runs[high], np.random.default_rng([seed, 2027]))
        )
    return frames


def _plan(
    index: int,
    scenario: Scenario,
    readings: Readings,
    parts: Sequence[str],
    n_slots: int,
    weights: Sequence[float],
    lambda_slots: int | None,
) -> dict[str, tuple]:
    """The runs one (scenario, reading) needs: name -> (scenario index, n_slots, policy,
    allocation, the readings that matter to the run, lambda or None)."""
    plan = {"probabilistic": (n_slots, "probabilistic", "annealing", None)}
    if "assignment" in parts:
        for p in ("direct", "random", *scenario.model_names):
            plan[p] = (n_slots, p, "annealing", None)
    if "allocation" in parts:
        for m in ("equal", "optimal_step"):
            plan[m] = (n_slots, "probabilistic", m, None)
    if "lambda" in parts:
        for w in weights:
            plan[f"lambda {float(w)!r}"] = (
                lambda_slots or n_slots,
                "probabilistic",
                "annealing",
                float(w),
            )
    return {k: (index, n, p, a, _relevant(readings, p), w) for k, (n, p, a, w) in plan.items()}


def _relevant(readings: Readings, policy: str) -> Readings:
    """The readings with the options that cannot change this policy's run set to the default:
    what the assignment knows matters only to Probabilistic, which model Direct uses only to Direct."""
    if policy != "probabilistic":
        readings = readings.replace(information=DEFAULT.information, rho=DEFAULT.rho)
    if policy != "direct":
        readings = readings.replace(direct=DEFAULT.direct)
    return readings


def _simulate(item: tuple) -> simulation.SimulationResult:
    scenario, n_slots, policy, allocation, readings, weight, seed, prompts = item
    if weight is not None:
        scenario = scenario.replace(weight=weight)
    return simulation.simulate(
        scenario,
        n_slots,
        seed,
        assignment=policy,
        allocation=allocation,
        prompts=prompts,
        readings=readings,
    )


# --- "up to 2.5%" -------------------------------------------------------------------------------


def null_max_probability(
    gains_pct: Any,
    k: int = 10,
    level: float = 2.5,
    n_draws: int = 20_000,
    rng: np.random.Generator | None = None,
) -> float:
    """How often the largest of ``k`` slot gains reaches ``level`` percent when the mean gain is 0.

    Resamples ``k`` slots with replacement from the per-slot gains (percent) after subtracting
    their mean, so the spread is ours and the true mean gain is zero; returns the share of
    ``n_draws`` draws whose maximum is at least ``level``. The paper reports its gain over 10
    slots (Fig. 5(b)) as "up to 2.5%": a probability near 1 means that phrase needs no real gain.
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    gains = np.asarray(gains_pct, dtype=float)
    gains = gains[np.isfinite(gains)]
    if gains.size < 2:
        raise ValueError(f"gains_pct: expected at least 2 finite slot gains, got {gains.size}")
    validate.whole(k, "k", low=1)
    rng = np.random.default_rng(0) if rng is None else rng
    centred = gains - gains.mean()
    draws = rng.choice(centred, size=(int(n_draws), int(k)), replace=True)
    return float((draws.max(axis=1) >= level).mean())


def slot_gain_stats(
    reference: Any, other: Any, rng: np.random.Generator | None = None, n_draws: int = 20_000
) -> dict[str, float]:
    """The readings of "up to 2.5%" for one policy over another, from their slot utilities.

    Per-slot gain = 100 (U_ref - U_other) / |U_other| (slots where either is NaN are dropped).
    Returns ``mean`` with its 95% interval ``low``, ``high`` (paired over slots:
    :func:`aigc_lib.metrics.interval`), ``max`` (percent), ``share_won`` (share of slots with a
    gain > 0), ``null_max`` (:func:`null_max_probability` with k = 10 and level 2.5), and what
    "up to" reads on ours: ``max10``, the mean of the largest of ten slots drawn from ours (the
    paper plots ten), with the 2.5% and 97.5% percentiles of that largest, ``max10_low`` and
    ``max10_high`` (``n_draws`` draws of ten slots).
    """
    ref, oth = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    if ref.shape != oth.shape or ref.ndim != 1:
        raise ValueError(
            f"other: expected the same number of slots as reference, got {oth.shape} and {ref.shape}"
        )
    keep = np.isfinite(ref) & np.isfinite(oth) & (oth != 0)
    gains = 100 * (ref[keep] - oth[keep]) / np.abs(oth[keep])
    if gains.size == 0:
        raise ValueError("reference: no slot has finite, non-zero utilities for both policies")
    null = null_max_probability(gains, rng=rng, n_draws=n_draws) if gains.size >= 2 else math.nan
    band = metrics.interval(gains).iloc[0]
    rng = np.random.default_rng(0) if rng is None else rng
    top = rng.choice(gains, size=(int(n_draws), 10), replace=True).max(axis=1)
    return {
        "mean": float(gains.mean()),
        "low": float(band["low"]),
        "high": float(band["high"]),
        "max": float(gains.max()),
        "share_won": float((gains > 0).mean()),
        "null_max": null,
        "max10": float(top.mean()),
        "max10_low": float(np.percentile(top, 2.5)),
        "max10_high": float(np.percentile(top, 97.5)),
    }


# --- judging ------------------------------------------------------------------------------------


EACH, SMALL, LARGE, TIME = "<each model>", "<small model>", "<large model>", "<time reading>"
"""Placeholders of a :class:`Quantity`'s ``versus`` or ``key``, filled when a claim is judged:
every model, the smallest, the largest, and the reading of "time consumption"."""


@dataclasses.dataclass(frozen=True)
class Quantity:
    """One number a claim names: the row (``quantity``, ``policy``, ``versus``, ``key``) of a table
    of numbers, with ``sign`` +1 when the paper says it is positive and -1 when negative."""

    quantity: str
    policy: str
    versus: str = ""
    key: str = ""
    sign: int = 1

    @property
    def label(self) -> str:
        """A short name: ``"vs direct, sdxl"``."""
        keep = [f"vs {self.versus}" if self.versus else "", "" if self.key == "mean" else self.key]
        return ", ".join(k for k in keep if k) or self.quantity


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of the paper as data (docs/SPEC.md section 6).

    ``claim``, ``paper``, ``where``: the claim, the paper's figure and where it says it (quotes as
    in :data:`CLAIMS`). ``named``: the quantities it names (:class:`Quantity`; placeholders such
    as :data:`EACH` expand per model), each with the side the paper puts it on. ``size``: the
    paper's stated size (a number or a ``(low, high)`` range, in the quantity's unit) or None.
    ``size_of``: what its words mean in numbers: ``"each"`` (every named quantity), ``"best"``
    (the named quantity largest on the paper's side: "up to" over benchmarks) or one
    :class:`Quantity` (e.g. the largest of ten slots: "up to" over the slots the paper plotted).
    ``reads``: that meaning in words.
    """

    claim: str
    paper: str
    where: str
    named: tuple[Quantity, ...]
    size: float | tuple[float, float] | None = None
    size_of: str | Quantity = "each"
    reads: str = ""


def _records() -> dict[str, Claim]:
    """:data:`RECORDS`, built from :data:`CLAIMS` (the quotes) and :data:`PAPER` (the sizes)."""
    Q, P, A = Quantity, "probabilistic", "annealing"
    u10 = {o: Q("slot_gain_pct", P, o, "max10") for o in ("direct", "random")}
    named = {
        "score_vs_direct": (Q("score_gain", P, "direct", EACH),),
        "score_vs_random": (Q("score_gain", P, "random", EACH),),
        "random_small_large": (
            Q("score_gain", P, "random", SMALL, -1),
            Q("score_gain", P, "random", LARGE),
        ),
        "utility_vs_direct": (Q("slot_gain_pct", P, "direct", "mean"),),
        "utility_vs_random": (Q("slot_gain_pct", P, "random", "mean"),),
        "score_cdf": tuple(
            Q("quantile_gain", P, o, k) for o in ("direct", "random") for k in _QUARTILES
        ),
        "mix_vs_single": (Q("utility_difference", P, EACH, "mean"),),
        "quality_up_to": tuple(
            Q("quality_gain_pct", p, o)
            for p, o in ((P, "direct"), (P, "random"), (A, "equal"), (A, "optimal_step"))
        ),
        "time_vs_optimal_step": (Q("time_change_pct", A, "optimal_step", TIME, -1),),
        "time_each_model_vs_optimal_step": (Q("time_difference", A, "optimal_step", EACH, -1),),
        "time_vs_equal": (Q("time_change_pct", A, "equal", TIME, -1),),
        "utility_vs_optimal_step": (Q("utility_change_pct", A, "optimal_step"),),
        "utility_vs_equal": (Q("utility_change_pct", A, "equal"),),
        "alloc_score": (Q("score_gain", A, "equal", EACH),),
        "lambda_trend": tuple(Q("lambda_change", A, "", k) for k in ("steps", "score", "time")),
    }
    sizes = {
        "score_vs_direct": (PAPER["score_gain_range"], "each", "each model's mean score gain"),
        "score_vs_random": (PAPER["score_gain_range"], "each", "each model's mean score gain"),
        "quality_up_to": (
            PAPER["quality_up_to_pct"],
            "best",
            "the largest gain in mean task score over the four benchmarks",
        ),
        "time_vs_optimal_step": (PAPER["time_change_pct"]["optimal_step"], "each", ""),
        "time_vs_equal": (PAPER["time_change_pct"]["equal"], "each", ""),
        "utility_vs_optimal_step": (PAPER["utility_gain_pct"]["optimal_step"], "each", ""),
        "utility_vs_equal": (PAPER["utility_gain_pct"]["equal"], "each", ""),
    }
    for o in ("direct", "random"):
        sizes[f"utility_vs_{o}"] = (
            PAPER["utility_up_to_pct"],
            u10[o],
            "the largest per-slot gain of ten slots (the paper plots ten), drawn from ours",
        )
    return {k: Claim(*CLAIMS[k], named[k], *sizes.get(k, (None, "each", ""))) for k in CLAIMS}


RECORDS = _records()
"""claim id -> :class:`Claim`: every claim of :data:`CLAIMS` as data."""

VERDICTS = ("agrees", "not shown", "disagrees")
"""The three verdicts (docs/SPEC.md section 6)."""


def verdict(intervals: Sequence[tuple[float, float]], signs: Sequence[int]) -> str:
    """The verdict from named quantities' 95% intervals ``(low, high)`` and the paper's sides.

    ``"disagrees"`` if some interval lies wholly on the other side of 0; else ``"not shown"`` if
    some interval includes 0 or is missing (NaN), or nothing is named; else ``"agrees"`` (every
    interval on the paper's side).
    """
    sides = [sorted((s * lo, s * hi)) for (lo, hi), s in zip(intervals, signs)]
    finite = [np.isfinite(lo) and np.isfinite(hi) for lo, hi in sides]
    if any(ok and hi < 0 for ok, (lo, hi) in zip(finite, sides)):
        return "disagrees"
    if not sides or not all(finite) or any(lo <= 0 for lo, hi in sides):
        return "not shown"
    return "agrees"


def size_verdict(figure: Any, low: float, high: float, sign: int = 1) -> str:
    """``"within"``, ``"below"`` or ``"above"`` the paper's ``figure`` (a number or a range):
    whether the interval ``(low, high)`` overlaps it, or lies wholly on the smaller or larger
    side of it, measured along the paper's side (``sign``); ``""`` when unmeasured."""
    if figure is None or not (np.isfinite(low) and np.isfinite(high)):
        return ""
    a, b = sorted(sign * np.atleast_1d(np.asarray(figure, float))[[0, -1]])
    lo, hi = sorted((sign * low, sign * high))
    return "below" if hi < a else "above" if lo > b else "within"


def judge_claim(
    record: Claim, intervals: Mapping[Quantity, tuple[float, float, float]]
) -> dict[str, Any]:
    """The generic judge: one claim from its named quantities' ``(value, low, high)``.

    ``intervals``: for each named quantity (placeholders already filled; :func:`named`) and for
    ``record.size_of`` when it is a quantity. Returns ``verdict`` (:func:`verdict`), ``size``
    (:func:`size_verdict` of the size statistic; ``"mixed"`` when named quantities fall on
    different sides of the paper's figure, ``""`` when none is measured), and the quantity that decides the verdict, the one least on the paper's
    side: ``named`` (its label), ``value``, ``low``, ``high`` and ``side`` (+1 or -1).
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    qs = [q for q in intervals if q not in (record.size_of,)] or list(intervals)
    found = [intervals[q] for q in qs]
    result = verdict([(lo, hi) for _, lo, hi in found], [q.sign for q in qs])
    edge = [min(q.sign * lo, q.sign * hi) for q, (_, lo, hi) in zip(qs, found)]
    worst = int(np.argmin(np.nan_to_num(edge, nan=-np.inf))) if qs else 0
    if isinstance(record.size_of, Quantity):
        sized = [(record.size_of, intervals.get(record.size_of, (math.nan,) * 3))]
    elif record.size_of == "best" and qs:
        best = int(np.nanargmax([q.sign * v for q, (v, _, _) in zip(qs, found)] or [0]))
        sized = [(qs[best], found[best])]
    else:
        sized = list(zip(qs, found))
    words = {size_verdict(record.size, lo, hi, q.sign) for q, (_, lo, hi) in sized} - {""}
    value, low, high = found[worst] if qs else (math.nan,) * 3
    return {
        "verdict": result,
        "size": words.pop() if len(words) == 1 else "mixed" if words else "",
        "named": qs[worst].label if qs else "",
        "value": value,
        "low": low,
        "high": high,
        "side": qs[worst].sign if qs else 1,
    }


def named(record: Claim, models: Sequence[str], time_reading: str = "makespan") -> list[Quantity]:
    """A record's named quantities with the placeholders filled: :data:`EACH` by every model,
    :data:`SMALL` and :data:`LARGE` by the first and last of ``models``, :data:`TIME` by
    ``time_reading``; ``size_of`` last when it is a quantity."""
    fill = {EACH: list(models), SMALL: list(models[:1]), LARGE: list(models[-1:])}
    fill[TIME] = [time_reading]
    out = []
    for q in (*record.named, *([record.size_of] if isinstance(record.size_of, Quantity) else [])):
        for v in fill.get(q.versus, [q.versus]):
            out += [dataclasses.replace(q, versus=v, key=k) for k in fill.get(q.key, [q.key])]
    return out


def interval_of(numbers: pd.DataFrame, q: Quantity) -> tuple[float, float, float]:
    """``(value, low, high)`` of quantity ``q`` in a table of numbers: the one row whose
    ``quantity``, ``policy``, ``versus`` and ``key`` are ``q``'s; NaN where there is none (or
    more than one)."""
    return _Rows(numbers).interval(q)


class _Rows:
    """A table of numbers indexed once by (quantity, policy, versus, key): :func:`judge` looks up
    every named quantity of every claim, and four comparisons over the whole table per lookup
    were most of the time of a judgement."""

    def __init__(self, numbers: pd.DataFrame) -> None:
        low = numbers["low"] if "low" in numbers.columns else [math.nan] * len(numbers)
        high = numbers["high"] if "high" in numbers.columns else [math.nan] * len(numbers)
        keys = zip(numbers["quantity"], numbers["policy"], numbers["versus"], numbers["key"])
        self.rows: dict[tuple, list[tuple]] = {}
        for key, value, lo, hi in zip(keys, numbers["value"], low, high):
            self.rows.setdefault(key, []).append((value, lo, hi))
        self.named = {key[:3] for key in self.rows}

    def interval(self, q: Quantity) -> tuple[float, float, float]:
        hits = self.rows.get((q.quantity, q.policy, q.versus, str(q.key)), [])
        if len(hits) != 1:
            return (math.nan, math.nan, math.nan)
        value, low, high = hits[0]
        return (float(value), float(low), float(high))

    def has_any(self, qs: Sequence[Quantity]) -> bool:
        """Whether the table has a row of any of ``qs`` (whatever its key)."""
        return any((q.quantity, q.policy, q.versus) in self.named for q in qs)


def judge(
    numbers: pd.DataFrame, time_reading: str = "makespan", reading: str | None = None
) -> list[dict[str, Any]]:
    """Every claim of :data:`RECORDS` judged on a table of numbers, by :func:`judge_claim`.

    ``numbers``: one scenario and one reading (:func:`measure`, or the builders); a claim none of
    whose numbers are in the table is left out; a missing or NaN number is "not shown", never
    "agrees". One row per claim: ``claim_id``, ``claim``, ``paper``, ``ours`` (every named
    quantity and the size statistic, each with its 95% interval), ``verdict``, ``size``,
    ``named``, ``value``, ``low``, ``high``, ``side``, ``flag`` and ``where``. ``flag``: for a
    reading where Probabilistic knows each prompt's own score (:func:`aigc_lib.readings.caveat`
    of ``reading``, default the table's ``reading`` column), ``"oracle"`` with Probabilistic's
    measured rank among the policies by mean utility (:func:`oracle_rank`); else empty.
    ``time_reading``: which reading of "time consumption".
    """
    if not isinstance(numbers, pd.DataFrame) or not set(COLUMNS[:7]) <= set(numbers.columns):
        raise ValueError(f"numbers: expected a table with columns {COLUMNS}")
    for column in ("scenario", "reading"):
        if column in numbers.columns and numbers[column].nunique() > 1:
            raise ValueError(f"numbers: expected one {column}; filter the table first")
    if reading is None and "reading" in numbers.columns and len(numbers):
        reading = str(numbers["reading"].iloc[0])
    flag = oracle_rank(numbers) if caveat(reading or "default")[0] == "oracle" else ""
    order = values(numbers, "model_order")
    models = list(order[~order.index.duplicated()].sort_values().index)
    rows, table = [], _Rows(numbers)
    for key, record in RECORDS.items():
        qs = named(record, models, time_reading)
        found = {q: table.interval(q) for q in qs}
        if all(np.isnan(v) for v, _, _ in found.values()) and not table.has_any(qs):
            continue
        head = {"claim_id": key, "claim": record.claim, "paper": record.paper}
        head["ours"] = "; ".join(f"{q.label} {_band(*found[q])}" for q in qs)
        rows.append({**head, **judge_claim(record, found), "flag": flag, "where": record.where})
    return rows


def _band(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return "nan (not measured)"
    return f"{value:+.2f} ({low:+.2f} to {high:+.2f})"


def oracle_rank(numbers: pd.DataFrame) -> str:
    """``"oracle"`` with Probabilistic's measured rank by mean utility among the assignment
    policies of the table (Probabilistic, Direct, Random, each model alone): it knows each
    prompt's own score, and is an upper bound on them only where it ranks first."""
    u = {
        p: value(numbers, "mean_utility", p)
        for p in ("probabilistic", "direct", "random", *values(numbers, "model_order").index)
        if _has(numbers, "mean_utility", p)
    }
    if "probabilistic" not in u:
        return "oracle"
    rank = 1 + sum(v > u["probabilistic"] for v in u.values())
    return f"oracle (ranks {rank} of {len(u)} policies by mean utility)"


def _signed(v: float) -> str:
    return f"{v:+.2f}" if np.isfinite(v) else "nan (no tasks)"


# --- the algebra of the four annealing numbers --------------------------------------------------


def annealing_bounds(
    time_vs_optimal_step: float = -30.2,
    time_vs_equal: float = -39.1,
    utility_vs_optimal_step: float = 17.8,
    utility_vs_equal: float = 12.7,
) -> dict[str, float]:
    """Can four such numbers hold with one U = S - lambda T and S_Equal <= S_SA <= S_OptimalStep?

    With x = lambda T_SA, r = T_SA / T_other and g = U_SA / U_other (from the percentages):
    U_SA = g U_OS and S_SA <= S_OS give x / S_OS >= (g_OS - 1) / (g_OS / r_OS - 1) (``lower``);
    U_SA = g U_EQ and S_EQ <= S_SA give x / S_SA <= (g_EQ - 1) / (g_EQ / r_EQ - 1) (``upper``),
    and x / S_OS <= x / S_SA. So the numbers are consistent only if ``lower <= upper``. The
    paper's: lower 0.259 > upper 0.149, so they cannot all hold (positive scores assumed).
    Returns ``lower``, ``upper`` and ``consistent``.
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    numbers = (time_vs_optimal_step, time_vs_equal, utility_vs_optimal_step, utility_vs_equal)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
        raise ValueError(f"time_vs_optimal_step: expected four finite percentages, got {numbers}")
    r_os, r_eq = 1 + time_vs_optimal_step / 100, 1 + time_vs_equal / 100
    g_os, g_eq = 1 + utility_vs_optimal_step / 100, 1 + utility_vs_equal / 100
    if min(r_os, r_eq, g_os, g_eq) <= 0:
        raise ValueError("time_vs_optimal_step: percentages must stay above -100")
    lower = (g_os - 1) / (g_os / r_os - 1) if g_os / r_os != 1 else math.inf
    upper = (g_eq - 1) / (g_eq / r_eq - 1) if g_eq / r_eq != 1 else math.inf
    return {"lower": float(lower), "upper": float(upper), "consistent": bool(lower <= upper)}


# --- why category information cannot beat the best model ----------------------------------------


def mixture_vs_best(
    scenario: Scenario, steps: Any, saturation_steps: float | None = None
) -> pd.DataFrame:
    """Expected score of a group's prompt on each model, its eq. 9-10 mixture, and the best model.

    ``steps``: each model's steps, shape (M,). One row per group: a column per model (expected
    CLIPScore of a group-mean prompt, :func:`~aigc_lib.scenario.true_score`), ``mixture`` (the
    average weighted by the group's assignment probabilities: what category-only Probabilistic
    assignment expects), ``best`` (the best model's name) and ``best_score``. With category
    information the draw is independent of the prompt, so ``mixture <= best_score`` always
    (a weighted average never exceeds its largest term). This bounds the score, not the utility:
    the best model by score is the slowest, and what a policy gains or loses against Direct is
    measured by :func:`aigc_lib.metrics.paired_tasks`.
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    z = np.asarray(steps, dtype=float)
    if z.shape != (len(scenario.models),):
        raise ValueError(
            f"steps: expected {len(scenario.models)} step counts (one per model), got {z.shape}"
        )
    models = np.arange(len(scenario.models))
    table = true_score(
        scenario, scenario.mu[:, None], models[None, :], z[None, :], saturation_steps
    )
    probs = assignment.assignment_probabilities(scenario.mu, scenario.sigma, scenario.thresholds)
    frame = pd.DataFrame(table, index=scenario.group_names, columns=scenario.model_names)
    frame["mixture"] = (table * probs).sum(axis=1)
    frame["best"] = [scenario.model_names[i] for i in table.argmax(axis=1)]
    frame["best_score"] = table.max(axis=1)
    frame.index.name = "group"
    return frame


# --- how much the assignment must know about a prompt -------------------------------------------


def _utilities(item: tuple) -> np.ndarray:
    scenario, n_slots, seed, prompts, readings, policy, allocation = item
    result = simulation.simulate(
        scenario,
        n_slots,
        seed,
        assignment=policy,
        allocation=allocation,
        prompts=prompts,
        readings=readings,
    )
    return result.slots["utility"].to_numpy()


def rho_sweep(
    scenario: Scenario,
    rhos: Sequence[float],
    n_slots: int,
    seed: int,
    prompts: pd.DataFrame | None = None,
    readings: Readings = DEFAULT,
    allocation: str = "annealing",
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Probabilistic against Direct as the assignment learns each prompt's own score.

    At each ``rho`` (correlation of a per-prompt predictor with the prompt's own medium-model
    score; ``information="prompt"``; rho = 1 is an oracle that knows the score) Probabilistic runs
    on the same workload as Direct (category-only under every reading). One row per rho:
    ``rho``, ``utility_probabilistic``, ``utility_direct`` (mean slot utility, points) and the
    paired per-slot gain in percent, ``gain_pct`` with its 95% interval ``low``, ``high``.
    Runs go across CPU cores (:func:`aigc_lib.parallel.run`).
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    rhos = [float(r) for r in rhos]
    if not rhos:
        raise ValueError("rhos: expected at least one correlation in [0, 1]")
    probe = [readings.replace(information="prompt", rho=r) for r in rhos]  # validates each rho
    base = (scenario, n_slots, seed, prompts)
    items = [(*base, readings, "direct", allocation)]
    items += [(*base, r, "probabilistic", allocation) for r in probe]
    utilities = parallel.run(_utilities, items, n_jobs=n_jobs)
    direct = utilities[0]
    rows = []
    for rho, mine in zip(rhos, utilities[1:]):
        stats = metrics.interval(metrics.slot_gain_pct(mine, direct)).iloc[0]
        rows.append(
            {
                "rho": rho,
                "utility_probabilistic": float(mine.mean()),
                "utility_direct": float(direct.mean()),
                "gain_pct": float(stats["mean"]),
                "low": float(stats["low"]),
                "high": float(stats["high"]),
            }
        )
    return pd.DataFrame(rows)


def break_even_rho(sweep: pd.DataFrame) -> float:
    """The rho at which Probabilistic's mean gain over Direct reaches zero (linear interpolation).

    ``sweep``: :func:`rho_sweep`'s frame. Returns the first crossing from a loss to a gain as rho
    grows; the smallest rho if it already gains there; NaN if it never gains.
    """
    if not isinstance(sweep, pd.DataFrame) or not {"rho", "gain_pct"} <= set(sweep.columns):
        raise ValueError("sweep: expected rho_sweep's frame (columns rho and gain_pct)")
    s = sweep.sort_values("rho")
    rho, gain = s["rho"].to_numpy(float), s["gain_pct"].to_numpy(float)
    if gain.size == 0 or not np.any(gain >= 0):
        return math.nan
    if gain[0] >= 0:
        return float(rho[0])
    i = int(np.argmax(gain >= 0))
    return float(rho[i - 1] + (rho[i] - rho[i - 1]) * (0 - gain[i - 1]) / (gain[i] - gain[i - 1]))


# --- many plausible scenarios -------------------------------------------------------------------

RANGES = {
    "mu": (28.0, 35.0),
    "sigma": (1.5, 4.0),
    "small_offset": (-4.0, -1.0),
    "small_beta": (0.3, 0.9),
    "large_offset": (0.5, 3.0),
    "large_beta": (1.0, 1.5),
    "medium_slope": (0.2, 1.2),
    "large_slope": (0.2, 1.8),
}
"""Ranges (uniform) of :func:`plausible_scenario`, CLIPScore points: wide around the scenario's
assumptions, because none of these numbers is published."""


def plausible_scenario(base: Scenario, rng: np.random.Generator, max_tries: int = 1000) -> Scenario:
    """A random scenario like ``base`` that keeps the paper's premises P1 and P2.

    Draws every unpublished score parameter uniformly from :data:`RANGES` (group means and spreads;
    the small model's offset and gain; the large model's offset, gain and slope; the medium model's
    slope) and keeps the first draw for which :func:`~aigc_lib.scenario.premises` all hold. Latency,
    thresholds, lambda, shares and the step set stay ``base``'s. Three models only.
    """
    if not isinstance(base, Scenario) or len(base.models) != 3:
        raise ValueError("base: expected a Scenario with three models")
    for _ in range(int(max_tries)):
        u = {
            k: rng.uniform(*v, size=len(base.groups) if k in ("mu", "sigma") else None)
            for k, v in RANGES.items()
        }
        groups = tuple(
            dataclasses.replace(g, mu=float(m), sigma=float(s))
            for g, m, s in zip(base.groups, u["mu"], u["sigma"])
        )
        small, medium, large = base.models
        models = (
            dataclasses.replace(
                small, score_offset=float(u["small_offset"]), score_beta=float(u["small_beta"])
            ),
            dataclasses.replace(medium, score_slope=float(u["medium_slope"])),
            dataclasses.replace(
                large,
                score_offset=float(u["large_offset"]),
                score_beta=float(u["large_beta"]),
                score_slope=float(u["large_slope"]),
            ),
        )
        candidate = base.replace(
            groups=groups, models=models, name="plausible", premises=("P1", "P2")
        )
        if premises(candidate)["holds"].all():
            return candidate
    raise ValueError(f"max_tries: no draw kept the premises in {max_tries} tries")


def _robust_runs(item: tuple) -> dict[str, float]:
    scenario, n_slots, seed, readings, allocation, policies = item
    out = {}
    for policy in policies:
        r = readings.replace(information="prompt") if policy == PROMPT_POLICY else readings
        name = "probabilistic" if policy == PROMPT_POLICY else policy
        result = simulation.simulate(
            scenario, n_slots, seed, assignment=name, allocation=allocation, readings=r
        )
        out[policy] = float(result.slots["utility"].mean())
    return out


def robustness(
    base: Scenario,
    n_scenarios: int,
    n_slots: int,
    seed: int,
    readings: Readings = DEFAULT,
    allocation: str = "exact",
    policies: Sequence[str] | None = None,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """The paper's assignments and each single model over ``n_scenarios`` plausible scenarios.

    Each scenario (:func:`plausible_scenario`, drawn in turn from ``seed``) runs every policy of
    ``policies`` on the same ``n_slots`` slots with ``allocation`` (default the exact optimum,
    which annealing matches: notebook 05). Default policies: Probabilistic, Probabilistic with
    each prompt's own score (:data:`PROMPT_POLICY`, an oracle), Direct, Random, and each model
    alone. One row per scenario: the drawn parameters, ``utility_<policy>`` (mean slot utility),
    ``gain_pct`` = 100 (U_prob - U_direct) / |U_direct| and ``gain_pct_prompt`` (the oracle's),
    ``best_single`` (the model whose single-model policy has the highest utility) and
    ``mix_vs_best_single_pct`` = 100 (U_prob - U_best single) / |U_best single|. Scenarios run
    across CPU cores (:func:`aigc_lib.parallel.run`); the result does not depend on ``n_jobs``.
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    validate.whole(n_scenarios, "n_scenarios", low=1)
    models = base.model_names
    if policies is None:
        policies = ("probabilistic", PROMPT_POLICY, "direct", "random", *models)
    known = ("probabilistic", PROMPT_POLICY, "direct", "random", *models)
    unknown = [p for p in policies if p not in known]
    if unknown:
        raise ValueError(f"policies: expected names among {known}, got {unknown}")
    rng = np.random.default_rng([seed, 6])
    drawn = [plausible_scenario(base, rng) for _ in range(int(n_scenarios))]
    items = [
        (sc, n_slots, seed + i, readings, allocation, tuple(policies)) for i, sc in enumerate(drawn)
    ]
    utilities = parallel.run(_robust_runs, items, n_jobs=n_jobs)
    rows = [_robust_row(i, sc, u, models) for i, (sc, u) in enumerate(zip(drawn, utilities))]
    return pd.DataFrame(rows)


def _robust_row(i: int, sc: Scenario, u: Mapping[str, float], models: Sequence[str]) -> dict:
    """One row of :func:`robustness`: a drawn scenario's parameters and its policies' utilities."""
    row = {
        "scenario": i,
        **{f"mu_{g.name}": g.mu for g in sc.groups},
        "small_offset": sc.models[0].score_offset,
        "small_beta": sc.models[0].score_beta,
        "large_offset": sc.models[2].score_offset,
        "large_beta": sc.models[2].score_beta,
        "medium_slope": sc.models[1].score_slope,
        "large_slope": sc.models[2].score_slope,
        **{f"utility_{p}": v for p, v in u.items()},
    }
    if "direct" in u:
        for p, column in (("probabilistic", "gain_pct"), (PROMPT_POLICY, "gain_pct_prompt")):
            if p in u:
                row[column] = 100 * (u[p] - u["direct"]) / abs(u["direct"])
    singles = {m: u[m] for m in models if m in u}
    if singles:
        best = max(singles, key=singles.get)
        row["best_single"] = best
        if "probabilistic" in u:
            row["mix_vs_best_single_pct"] = 100 * (u["probabilistic"] - u[best]) / abs(u[best])
    return row
