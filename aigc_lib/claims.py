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
* :func:`judge` states each claim as the paper states it and says whether ours agrees in direction,
  with a ``flag`` where the reading makes the comparison something else (a baseline given other
  resources, an oracle: :func:`aigc_lib.readings.caveat`).
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
import functools
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib import assignment, metrics, parallel, results, simulation, validate
from aigc_lib._io import atomic_write_text
from aigc_lib.readings import DEFAULT, Readings, caveat
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

BASELINES = {
    "score_vs_direct": ("direct",),
    "utility_vs_direct": ("direct",),
    "score_cdf": ("direct", "random"),
    "quality_up_to": ("direct", "random", "equal", "optimal_step"),
}
"""The assignment baselines each claim compares against, where a reading may change them."""

COLUMNS = ("part", "quantity", "policy", "versus", "key", "unit", "value")
"""The columns of a table of numbers (plus ``scenario`` and ``reading`` from :func:`measure`)."""

QUANTILES = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))
"""The quantiles at which first-order dominance of the score CDF is judged (5% to 95%)."""

PROMPT_POLICY = "probabilistic (prompt)"
"""Probabilistic-assignment under ``information="prompt"`` (an oracle at rho = 1), in
:func:`robustness`."""

_ALLOCATION_METHODS = ("annealing", "equal", "optimal_step")
_STAT_UNITS = {
    "mean": "%",
    "low": "%",
    "high": "%",
    "max": "%",
    "share_won": "share",
    "null_max": "probability",
}


# --- the table of numbers -----------------------------------------------------------------------


def _row(part: str, quantity: str, unit: str, value: Any, policy="", versus="", key="") -> dict:
    return {
        "part": part,
        "quantity": quantity,
        "policy": policy,
        "versus": versus,
        "key": str(key),
        "unit": unit,
        "value": float(value),
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
    each other policy (``versus``), for Probabilistic: ``score_gain`` per model (points),
    ``slot_gain_pct`` (:func:`slot_gain_stats`), ``utility_difference`` (mean paired per-slot
    difference with its 95% interval, points), ``quality_gain_pct`` (of the mean task score) and
    ``cdf`` (``above``: how many of :data:`QUANTILES` of Probabilistic's task scores lie above the
    other's; ``of``: how many quantiles; ``ks``: the largest distance between the two CDFs).
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    if not isinstance(runs, Mapping) or "probabilistic" not in runs:
        raise ValueError("runs: expected a mapping {policy: SimulationResult} with 'probabilistic'")
    rng = np.random.default_rng(0) if rng is None else rng
    rows: list[dict] = []
    part = "assignment"
    models = list(runs["probabilistic"].tasks["model"].cat.categories)
    by_model = {}
    for p, r in runs.items():
        tasks = r.tasks
        by_model[p] = tasks.groupby("model", observed=False)["score"].mean().reindex(models)
        counts = tasks["model"].value_counts().reindex(models, fill_value=0)
        rows.append(_row(part, "mean_score", "points", tasks["score"].mean(), p))
        rows.append(_row(part, "mean_utility", "points", np.nanmean(r.slots["utility"]), p))
        rows.append(_row(part, "mean_latency", "s", tasks["latency"].mean(), p))
        rows += [
            _row(part, "score_by_model", "points", v, p, key=m) for m, v in by_model[p].items()
        ]
        rows += [_row(part, "tasks", "tasks", n, p, key=m) for m, n in counts.items()]
    ref = runs["probabilistic"]
    mine = ref.slots["utility"].to_numpy()
    for o, r in runs.items():
        if o == "probabilistic":
            continue
        gains = by_model["probabilistic"] - by_model[o]
        rows += [
            _row(part, "score_gain", "points", v, "probabilistic", o, m) for m, v in gains.items()
        ]
        stats = slot_gain_stats(mine, r.slots["utility"].to_numpy(), rng=rng, n_draws=null_draws)
        rows += [
            _row(part, "slot_gain_pct", _STAT_UNITS[k], v, "probabilistic", o, k)
            for k, v in stats.items()
        ]
        diff = metrics.interval(mine - r.slots["utility"].to_numpy()).iloc[0]
        rows += [
            _row(part, "utility_difference", "points", diff[k], "probabilistic", o, k)
            for k in ("mean", "low", "high")
        ]
        s_ref, s_o = ref.tasks["score"].mean(), r.tasks["score"].mean()
        rows.append(
            _row(part, "quality_gain_pct", "%", 100 * (s_ref - s_o) / s_o, "probabilistic", o)
        )
        for k, v in _dominance(ref.tasks["score"], r.tasks["score"]).items():
            rows.append(
                _row(part, "cdf", "quantiles" if k != "ks" else "share", v, "probabilistic", o, k)
            )
    rows += [_row("meta", "model_order", "index", i, key=m) for i, m in enumerate(models)]
    return _frame(rows)


def _dominance(mine: pd.Series, other: pd.Series) -> dict[str, float]:
    """First-order dominance at :data:`QUANTILES` and the Kolmogorov-Smirnov distance."""
    a, b = np.sort(np.asarray(mine, float)), np.sort(np.asarray(other, float))
    q = np.asarray(QUANTILES)
    above = int((np.quantile(a, q) > np.quantile(b, q)).sum())
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return {"above": above, "of": len(q), "ks": float(np.abs(cdf_a - cdf_b).max())}


def allocation_numbers(runs: Mapping[str, simulation.SimulationResult]) -> pd.DataFrame:
    """The allocation claims' numbers from runs of ``annealing``, ``equal`` and ``optimal_step``
    (the same assignment and workload; keys of ``runs``).

    Per method: ``mean_utility``, ``mean_score`` (points), ``mean_latency`` (s), ``mean_steps``
    (of the multi-step models), ``score_by_model`` (points) and ``time_consumption`` per model
    (mean makespan N_m t_m over the slots the model served, s). Against each baseline, for
    annealing: ``time_change_pct`` under both readings of "time consumption" (``makespan``: the
    change of the mean over models; ``per_model_pct``: the mean of per-model changes),
    ``utility_change_pct`` (of the mean utilities), ``utility_difference`` (mean paired per-slot
    difference with its 95% interval, points) and ``quality_gain_pct`` (of the mean task score).
    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    missing = [m for m in _ALLOCATION_METHODS if m not in runs]
    if missing:
        raise ValueError(f"runs: expected runs of {_ALLOCATION_METHODS}, missing {missing}")
    part, rows = "allocation", []
    span = {}
    for m in _ALLOCATION_METHODS:
        r = runs[m]
        span[m] = _makespans(r)
        summary = metrics.summarise(r)
        for q, unit in (
            ("mean_utility", "points"),
            ("mean_score", "points"),
            ("mean_steps", "steps"),
        ):
            rows.append(_row(part, q, unit, summary[q], m))
        rows.append(_row(part, "mean_latency", "s", r.tasks["latency"].mean(), m))
        scores = r.tasks.groupby("model", observed=True)["score"].mean()
        rows += [_row(part, "score_by_model", "points", v, m, key=k) for k, v in scores.items()]
        rows += [_row(part, "time_consumption", "s", v, m, key=k) for k, v in span[m].items()]
    mine = runs["annealing"]
    for o in ("optimal_step", "equal"):
        shared = [k for k in span["annealing"] if k in span[o]]
        a = np.array([span["annealing"][k] for k in shared])
        b = np.array([span[o][k] for k in shared])
        rows.append(
            _row(
                part,
                "time_change_pct",
                "%",
                100 * (a.mean() - b.mean()) / b.mean(),
                "annealing",
                o,
                "makespan",
            )
        )
        rows.append(
            _row(
                part,
                "time_change_pct",
                "%",
                np.mean(100 * (a - b) / b),
                "annealing",
                o,
                "per_model_pct",
            )
        )
        u_a, u_o = mine.slots["utility"].mean(), runs[o].slots["utility"].mean()
        rows.append(
            _row(part, "utility_change_pct", "%", 100 * (u_a - u_o) / abs(u_o), "annealing", o)
        )
        diff = metrics.interval(
            mine.slots["utility"].to_numpy() - runs[o].slots["utility"].to_numpy()
        ).iloc[0]
        rows += [
            _row(part, "utility_difference", "points", diff[k], "annealing", o, k)
            for k in ("mean", "low", "high")
        ]
        s_a, s_o = mine.tasks["score"].mean(), runs[o].tasks["score"].mean()
        rows.append(_row(part, "quality_gain_pct", "%", 100 * (s_a - s_o) / s_o, "annealing", o))
    models = list(mine.tasks["model"].cat.categories)
    rows += [_row("meta", "model_order", "index", i, key=m) for i, m in enumerate(models)]
    return _frame(rows)


def lambda_numbers(sweep: pd.DataFrame) -> pd.DataFrame:
    """The lambda-trend claim's numbers from a sweep: one row per lambda of ``sweep`` (columns
    ``weight``, ``mean_steps``, ``mean_score``, ``mean_time_consumption``, as
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
    frame["value"] = frame["value"].astype(float)
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
        part_frames = []
        if "assignment" in parts:
            policies = ("probabilistic", "direct", "random", *sc[i].model_names)
            rng = np.random.default_rng([seed, 2025])
            part_frames.append(
                assignment_numbers({p: runs[p] for p in policies}, rng=rng, null_draws=null_draws)
            )
        if "allocation" in parts:
            methods = {"annealing": runs["probabilistic"], "equal": runs["equal"]}
            methods["optimal_step"] = runs["optimal_step"]
            part_frames.append(allocation_numbers(methods))
        if "lambda" in parts:
            rows = [
                {"weight": float(w), **metrics.summarise(runs[f"lambda {float(w)!r}"])}
                for w in weights
            ]
            part_frames.append(lambda_numbers(pd.DataFrame(rows)))
        out = pd.concat(part_frames, ignore_index=True).drop_duplicates(
            subset=["part", "quantity", "policy", "versus", "key"]
        )
        out.insert(0, "reading", r.label)
        out.insert(0, "scenario", sc[i].name)
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


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
    gain > 0) and ``null_max`` (:func:`null_max_probability` with k = 10 and level 2.5).
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
    return {
        "mean": float(gains.mean()),
        "low": float(band["low"]),
        "high": float(band["high"]),
        "max": float(gains.max()),
        "share_won": float((gains > 0).mean()),
        "null_max": null,
    }


# --- judging ------------------------------------------------------------------------------------


def judge(
    numbers: pd.DataFrame, time_reading: str = "makespan", reading: str | None = None
) -> list[dict[str, Any]]:
    """Each claim as the paper states it, beside ours: ``claim_id``, ``claim``, ``paper``, ``ours``,
    ``direction_agrees`` (bool), ``flag``, ``where`` (the paper's section).

    ``numbers``: a table of one scenario and one reading (:func:`measure`, or the builders); a
    claim whose numbers are missing is left out. A claim about several models needs a finite
    number on every model it names: a model that served no task (NaN) makes it disagree, never
    agree. "Up to 2.5%" and "up to 4.7%" agree in direction when the mean per-slot gain, and the
    largest gain over the benchmarks, are positive. ``time_reading``: which reading of "time
    consumption". ``flag`` (:func:`aigc_lib.readings.caveat` of ``reading``, default the table's
    ``reading`` column): ``"baseline changed"`` where the reading gives the claim's baseline
    other resources (keep such rows out of agreement shares), ``"oracle"`` where Probabilistic
    knows each prompt's own score, else empty.
    """
    if not isinstance(numbers, pd.DataFrame) or not set(COLUMNS) <= set(numbers.columns):
        raise ValueError(f"numbers: expected a table with columns {COLUMNS}")
    for column in ("scenario", "reading"):
        if column in numbers.columns and numbers[column].nunique() > 1:
            raise ValueError(f"numbers: expected one {column}; filter the table first")
    if reading is None and "reading" in numbers.columns and len(numbers):
        reading = str(numbers["reading"].iloc[0])
    flag, _ = caveat(reading or "default")
    rows: list[dict[str, Any]] = []
    order = values(numbers, "model_order")
    models = list(order[~order.index.duplicated()].sort_values().index)
    small, large = (models[0], models[-1]) if models else ("", "")

    def add(key: str, ours: str, agrees: bool) -> None:
        claim, paper, where = CLAIMS[key]
        mark = flag
        if flag == "baseline changed" and key not in BASELINES:
            mark = ""  # the reading changes only Direct; this claim does not use it
        rows.append(
            {
                "claim_id": key,
                "claim": claim,
                "paper": paper,
                "ours": ours,
                "direction_agrees": bool(agrees),
                "flag": mark,
                "where": where,
            }
        )

    has = functools.partial(_has, numbers)
    get = functools.partial(value, numbers)
    if has("score_gain", "probabilistic", "direct") or has("score_gain", "probabilistic", "random"):
        for other in ("direct", "random"):
            if not has("score_gain", "probabilistic", other):
                continue
            gains = values(numbers, "score_gain", "probabilistic", other).reindex(models)
            finite = bool(gains.notna().all())
            largest = finite and gains.idxmax() == large
            text = ", ".join(f"{m} {_signed(v)}" for m, v in gains.items())
            missing = [m for m, v in gains.items() if not np.isfinite(v)]
            verdict = f"{large} largest: {'yes' if largest else 'no'}"
            if missing:
                verdict = f"not measurable: {other} sent no task to {', '.join(missing)}"
            add(f"score_vs_{other}", f"{text}; {verdict}", finite and gains[large] > 0 and largest)
        if has("score_gain", "probabilistic", "random"):
            gains = values(numbers, "score_gain", "probabilistic", "random").reindex(models)
            up, down = -gains[small], -gains[large]
            add(
                "random_small_large",
                f"Random minus Probabilistic: {small} {_signed(up)}, {large} {_signed(down)}",
                bool(np.isfinite(up) and np.isfinite(down) and up > 0 and down < 0),
            )
        for other in ("direct", "random"):
            if not has("slot_gain_pct", "probabilistic", other):
                continue
            g = values(numbers, "slot_gain_pct", "probabilistic", other)
            add(
                f"utility_vs_{other}",
                f"mean {g['mean']:+.2f}% (95% interval {g['low']:+.2f} to {g['high']:+.2f}), "
                f"max {g['max']:+.1f}%, won {100 * g['share_won']:.0f}% of slots; "
                f"P(max of 10 >= 2.5% | zero mean) = {g['null_max']:.2f}",
                g["mean"] > 0,
            )
        if has("cdf", "probabilistic", "direct") and has("cdf", "probabilistic", "random"):
            parts, agree = [], True
            for other in ("direct", "random"):
                c = values(numbers, "cdf", "probabilistic", other)
                agree &= c["above"] == c["of"]
                parts.append(
                    f"vs {other}: above at {c['above']:.0f} of {c['of']:.0f} quantiles, KS {c['ks']:.3f}"
                )
            means = ", ".join(
                f"{p} {get('mean_score', p):.2f}" for p in ("probabilistic", "direct", "random")
            )
            add("score_cdf", f"{'; '.join(parts)} (mean: {means})", agree)
        singles = [m for m in models if has("mean_utility", m)]
        if singles and has("mean_utility", "probabilistic"):
            u = {m: get("mean_utility", m) for m in singles}
            best = max(u, key=u.get)
            mine = get("mean_utility", "probabilistic")
            mixes = [p for p in ("probabilistic", "direct", "random") if has("mean_utility", p)]
            text = ", ".join(f"{p} {get('mean_utility', p):.2f}" for p in mixes)
            add(
                "mix_vs_single",
                f"best single model {best} {u[best]:.2f} ({100 * (mine - u[best]) / abs(u[best]):+.1f}% "
                f"for Probabilistic); mixes: {text}; single: "
                + ", ".join(f"{m} {v:.2f}" for m, v in u.items()),
                mine > u[best],
            )
    benchmarks = [
        (p, o)
        for p, o in (
            ("probabilistic", "direct"),
            ("probabilistic", "random"),
            ("annealing", "equal"),
            ("annealing", "optimal_step"),
        )
        if has("quality_gain_pct", p, o)
    ]
    if len(benchmarks) == 4:
        q = {o: get("quality_gain_pct", p, o) for p, o in benchmarks}
        best = max(q, key=q.get)
        add(
            "quality_up_to",
            f"up to {q[best]:+.1f}% (vs {best}); "
            + ", ".join(f"vs {o} {v:+.1f}%" for o, v in q.items()),
            q[best] > 0,
        )
    if has("time_change_pct", "annealing", "optimal_step"):
        other_reading = "per_model_pct" if time_reading == "makespan" else "makespan"
        for other in ("optimal_step", "equal"):
            t = values(numbers, "time_change_pct", "annealing", other)
            add(
                f"time_vs_{other}",
                f"{t[time_reading]:+.1f}% ({other_reading} {t[other_reading]:+.1f}%)",
                t[time_reading] < 0,
            )
            if other == "optimal_step":
                mine = values(numbers, "time_consumption", "annealing")
                theirs = values(numbers, "time_consumption", "optimal_step").reindex(mine.index)
                less = bool((mine < theirs).all() and theirs.notna().all())
                add(
                    "time_each_model_vs_optimal_step",
                    ", ".join(f"{m} {mine[m]:.1f} vs {theirs[m]:.1f} s" for m in mine.index),
                    less,
                )
            u = get("utility_change_pct", "annealing", other)
            d = values(numbers, "utility_difference", "annealing", other)
            add(
                f"utility_vs_{other}",
                f"{u:+.1f}% (per slot {d['mean']:+.2f} points, 95% interval {d['low']:+.2f} to "
                f"{d['high']:+.2f})",
                u > 0,
            )
        s = {m: get("mean_score", m) for m in _ALLOCATION_METHODS}
        per = {m: values(numbers, "score_by_model", m) for m in _ALLOCATION_METHODS}
        near = abs(s["annealing"] - s["optimal_step"]) <= abs(s["annealing"] - s["equal"])
        above = bool(
            (per["annealing"] >= per["equal"].reindex(per["annealing"].index) - 1e-9).all()
        )
        add(
            "alloc_score",
            f"annealing {s['annealing']:.2f}, optimal-step {s['optimal_step']:.2f}, "
            f"equal {s['equal']:.2f}; above equal on every model: {'yes' if above else 'no'}",
            near and above,
        )
    lam = numbers[numbers["part"] == "lambda"]
    if len(lam):
        # dropna=False: a quantity with no number (no task on a multi-step model) stays, as NaN
        table = lam.pivot_table(index="key", columns="quantity", values="value", dropna=False)
        table.index = table.index.astype(float)
        table = table.sort_index()
        lo, hi = table.iloc[0], table.iloc[-1]
        agrees = (
            lo["mean_steps"] >= hi["mean_steps"]
            and lo["mean_score"] >= hi["mean_score"]
            and lo["mean_time_consumption"] >= hi["mean_time_consumption"]
        )
        add(
            "lambda_trend",
            f"lambda {table.index[0]:g} -> {table.index[-1]:g}: steps {lo['mean_steps']:.1f} -> "
            f"{hi['mean_steps']:.1f}, score {lo['mean_score']:.2f} -> {hi['mean_score']:.2f}, time "
            f"{lo['mean_time_consumption']:.1f} -> {hi['mean_time_consumption']:.1f} s",
            agrees,
        )
    return rows


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
    rows = []
    for i, (sc, u) in enumerate(zip(drawn, utilities)):
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
        rows.append(row)
    return pd.DataFrame(rows)
