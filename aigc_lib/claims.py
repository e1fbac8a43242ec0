"""The paper's claims, measured under any reading, and what it takes for them to hold.

* :func:`measure` runs the experiments behind every claim of docs/SPEC.md section 6 for one
  scenario and one :class:`~aigc_lib.readings.Readings`, on one workload (common random numbers):
  the three assignments with annealing allocation, the allocation methods with probabilistic
  assignment, and a short lambda sweep. It returns plain numbers (a JSON-able dict).
* :func:`judge` states each claim as the paper states it and says whether ours agrees in direction.
* :func:`slot_gain_stats` reads "up to 2.5%": mean, maximum, share of slots won, and how often the
  maximum of 10 slots reaches 2.5% when the true mean gain is zero (:func:`null_max_probability`).
* :func:`annealing_bounds`: the algebra showing the paper's four annealing numbers cannot all hold
  with one utility U = S - lambda T and SA's score between Equal-allocation's and Optimal-step's.
* :func:`mixture_vs_best`: with category information, a group's probabilistic mixture never
  scores above the group's best single model (at fixed steps).
* :func:`plausible_scenario` and :func:`robustness`: how often Probabilistic beats Direct over many
  random scenarios that keep the paper's premises.

Units: CLIPScore points, seconds, percent. Taught in
``notebooks/06_what_the_papers_numbers_need.ipynb``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib import assignment, metrics, simulation, validate
from aigc_lib.readings import DEFAULT, Readings
from aigc_lib.scenario import Scenario, premises, true_score

__all__ = [
    "PAPER",
    "CLAIMS",
    "measure",
    "judge",
    "slot_gain_stats",
    "null_max_probability",
    "annealing_bounds",
    "mixture_vs_best",
    "plausible_scenario",
    "robustness",
]

LARGE_MODEL = "sdxl"
"""The model the paper's per-model claim singles out ("especially in SDXL model")."""

PAPER = {
    "score_gain_range": (0.2, 2.4),
    "utility_up_to_pct": 2.5,
    "time_change_pct": {"optimal_step": -30.2, "equal": -39.1},
    "utility_gain_pct": {"optimal_step": 17.8, "equal": 12.7},
}
"""The paper's numbers (Sec. IV-B and IV-C)."""

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
        "Score CDF of Probabilistic shifted right (mean task CLIPScore)",
        "above Direct and Random",
        "Sec. IV-B, Fig. 5(c)",
    ),
    "time_vs_optimal_step": (
        "Annealing vs Optimal-step: time consumption",
        "-30.2%",
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
) -> dict[str, Any]:
    """Every claim's numbers for one scenario and one reading, on one workload (``seed``).

    ``assignment``: the three assignments with annealing allocation: per policy the mean
    CLIPScore of each model's tasks, the mean task score, the mean slot utility and the tasks per
    model; per baseline the per-model score gains of Probabilistic and :func:`slot_gain_stats` of
    its per-slot utility gain. ``allocation``: annealing, Equal-allocation and Optimal-step with
    probabilistic assignment: per method the mean utility, mean score, mean score per model, each
    model's mean time consumption (makespan N_m t_m) and mean steps; per baseline the time change
    of annealing under both readings of :data:`~aigc_lib.readings.TIME_CONSUMPTION` and its
    utility gain (percent). ``lambda_sweep``: mean steps, score and time consumption at each of
    ``weights`` (``lambda_slots`` slots, default ``n_slots``).
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    validate.instance(readings, Readings, "readings")
    run = dict(prompts=prompts, readings=readings)
    models = scenario.model_names
    policies = {
        p: simulation.simulate(scenario, n_slots, seed, assignment=p, **run)
        for p in simulation.ASSIGNMENTS
    }
    by_model = {
        p: r.tasks.groupby("model", observed=False)["score"].mean().reindex(models)
        for p, r in policies.items()
    }
    utility = {p: r.slots["utility"].to_numpy() for p, r in policies.items()}
    rng = np.random.default_rng([seed, 2025])
    assignment_part = {
        "mean_score_by_model": {p: _floats(s) for p, s in by_model.items()},
        "mean_score": {p: float(r.tasks["score"].mean()) for p, r in policies.items()},
        "mean_utility": {p: float(np.nanmean(u)) for p, u in utility.items()},
        "tasks_by_model": {
            p: {m: int(n) for m, n in r.tasks["model"].value_counts().reindex(models).items()}
            for p, r in policies.items()
        },
        "score_gain_by_model": {
            o: _floats(by_model["probabilistic"] - by_model[o]) for o in ("direct", "random")
        },
        "utility_gain_pct": {
            o: slot_gain_stats(utility["probabilistic"], utility[o], rng=rng, n_draws=null_draws)
            for o in ("direct", "random")
        },
    }
    methods = ("annealing", "equal", "optimal_step")
    runs = {m: simulation.simulate(scenario, n_slots, seed, allocation=m, **run) for m in methods}
    makespan = {m: _makespans(r) for m, r in runs.items()}
    mean_utility = {m: float(r.slots["utility"].mean()) for m, r in runs.items()}
    time_change = {}
    for other in ("optimal_step", "equal"):
        mine, theirs = makespan["annealing"], makespan[other]
        shared = [k for k in mine if k in theirs]
        per_model = [100 * (mine[k] - theirs[k]) / theirs[k] for k in shared]
        overall = float(np.mean([mine[k] for k in shared]))
        base = float(np.mean([theirs[k] for k in shared]))
        time_change[other] = {
            "makespan": 100 * (overall - base) / base,
            "per_model_pct": float(np.mean(per_model)),
        }
    allocation_part = {
        "mean_utility": mean_utility,
        "mean_score": {m: float(r.tasks["score"].mean()) for m, r in runs.items()},
        "mean_score_by_model": {
            m: _floats(r.tasks.groupby("model", observed=True)["score"].mean())
            for m, r in runs.items()
        },
        "time_consumption": makespan,
        "mean_steps": {m: _multi_step_mean(r, scenario) for m, r in runs.items()},
        "time_change_pct": time_change,
        "utility_gain_pct": {
            o: 100 * (mean_utility["annealing"] - mean_utility[o]) / abs(mean_utility[o])
            for o in ("optimal_step", "equal")
        },
        "lambda_sweep": _lambda_sweep(scenario, weights, lambda_slots or n_slots, seed, run),
    }
    assignment_part["large_model"] = models[-1]
    return {
        "scenario": scenario.name,
        "readings": readings.label,
        "n_slots": n_slots,
        "seed": seed,
        "large_model": models[-1],
        "assignment": assignment_part,
        "allocation": allocation_part,
    }


def _floats(series: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in series.items()}


def _makespans(result: simulation.SimulationResult) -> dict[str, float]:
    """Each model's mean makespan N_m t_m over the slots it served (seconds)."""
    frame = metrics.time_consumption(result)
    return {
        str(m): float(v)
        for m, v in frame.groupby("model", observed=True)["makespan"].mean().items()
    }


def _multi_step_mean(result: simulation.SimulationResult, scenario: Scenario) -> float:
    multi = [m.name for m in scenario.models if len(m.steps) > 1]
    steps = result.tasks.loc[result.tasks["model"].astype(str).isin(multi), "steps"]
    return float(steps.mean()) if len(steps) else math.nan


def _lambda_sweep(
    scenario: Scenario, weights: Sequence[float], n_slots: int, seed: int, run: Mapping[str, Any]
) -> list[dict[str, float]]:
    rows = []
    for w in weights:
        result = simulation.simulate(scenario.replace(weight=float(w)), n_slots, seed, **run)
        spans = _makespans(result)
        rows.append(
            {
                "weight": float(w),
                "mean_steps": _multi_step_mean(result, scenario),
                "mean_score": float(result.tasks["score"].mean()),
                "mean_time_consumption": float(np.mean(list(spans.values()))),
            }
        )
    return rows


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
    Returns ``mean`` and ``max`` (percent), ``share_won`` (share of slots with a gain > 0) and
    ``null_max`` (:func:`null_max_probability` with k = 10 and level 2.5).
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
    return {
        "mean": float(gains.mean()),
        "max": float(gains.max()),
        "share_won": float((gains > 0).mean()),
        "null_max": null,
    }


# --- judging ------------------------------------------------------------------------------------


def judge(numbers: Mapping[str, Any], time_reading: str = "makespan") -> list[dict[str, Any]]:
    """Each claim as the paper states it, beside ours: ``claim_id``, ``claim``, ``paper``, ``ours``,
    ``direction_agrees`` (bool), ``where`` (the paper's section).

    ``numbers``: :func:`measure`'s dict (its ``assignment`` and ``allocation`` parts; a part that is
    missing leaves its claims out). The per-model claim holds when the gain on the largest model
    (``large_model`` of the numbers, else :data:`LARGE_MODEL`) is positive and the largest of all: the paper says "especially in SDXL" and
    concedes that Random raises the small model's mean. "Up to 2.5%" agrees in direction when the
    mean per-slot gain is positive. ``time_reading``: which reading of "time consumption".
    """
    rows = []

    def add(key: str, ours: str, agrees: bool) -> None:
        claim, paper, where = CLAIMS[key]
        rows.append(
            {
                "claim_id": key,
                "claim": claim,
                "paper": paper,
                "ours": ours,
                "direction_agrees": bool(agrees),
                "where": where,
            }
        )

    a = numbers.get("assignment")
    if a:
        for other in ("direct", "random"):
            gains = a["score_gain_by_model"][other]
            large = a.get("large_model", numbers.get("large_model", LARGE_MODEL))
            finite = {m: v for m, v in gains.items() if v == v}
            largest = bool(finite) and max(finite, key=finite.get) == large
            text = ", ".join(f"{m} {v:+.2f}" for m, v in gains.items())
            add(
                f"score_vs_{other}",
                f"{text}; {large} largest: {'yes' if largest else 'no'}",
                gains.get(large, math.nan) > 0 and largest,
            )
            g = a["utility_gain_pct"][other]
            add(
                f"utility_vs_{other}",
                f"mean {g['mean']:+.2f}%, max {g['max']:+.1f}%, won {100 * g['share_won']:.0f}% of slots; "
                f"P(max of 10 >= 2.5% | zero mean) = {g['null_max']:.2f}",
                g["mean"] > 0,
            )
        s = a["mean_score"]
        add(
            "score_cdf",
            ", ".join(f"{k} {v:.2f}" for k, v in s.items()),
            s["probabilistic"] >= max(s["direct"], s["random"]),
        )
    c = numbers.get("allocation")
    if c:
        for other in ("optimal_step", "equal"):
            t = c["time_change_pct"][other]
            add(
                f"time_vs_{other}",
                f"{t[time_reading]:+.1f}% ({_other_reading(time_reading)} "
                f"{t[_other_reading(time_reading)]:+.1f}%)",
                t[time_reading] < 0,
            )
            u = c["utility_gain_pct"][other]
            add(f"utility_vs_{other}", f"{u:+.1f}%", u > 0)
        s, per = c["mean_score"], c["mean_score_by_model"]
        near = abs(s["annealing"] - s["optimal_step"]) <= abs(s["annealing"] - s["equal"])
        above = all(per["annealing"][m] >= per["equal"][m] - 1e-9 for m in per["annealing"])
        add(
            "alloc_score",
            f"annealing {s['annealing']:.2f}, optimal-step {s['optimal_step']:.2f}, "
            f"equal {s['equal']:.2f}; above equal on every model: {'yes' if above else 'no'}",
            near and above,
        )
        sweep = sorted(c["lambda_sweep"], key=lambda r: r["weight"])
        lo, hi = sweep[0], sweep[-1]
        agrees = (
            lo["mean_steps"] >= hi["mean_steps"]
            and lo["mean_score"] >= hi["mean_score"]
            and lo["mean_time_consumption"] >= hi["mean_time_consumption"]
        )
        add(
            "lambda_trend",
            f"lambda {lo['weight']:g} -> {hi['weight']:g}: steps {lo['mean_steps']:.1f} -> "
            f"{hi['mean_steps']:.1f}, score {lo['mean_score']:.2f} -> {hi['mean_score']:.2f}, time "
            f"{lo['mean_time_consumption']:.1f} -> {hi['mean_time_consumption']:.1f} s",
            agrees,
        )
    return rows


def _other_reading(reading: str) -> str:
    return "per_model_pct" if reading == "makespan" else "makespan"


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
    """
    values = (time_vs_optimal_step, time_vs_equal, utility_vs_optimal_step, utility_vs_equal)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise ValueError(f"time_vs_optimal_step: expected four finite percentages, got {values}")
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
    (a weighted average never exceeds its largest term); only queueing can make mixing pay.
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


def robustness(
    base: Scenario,
    n_scenarios: int,
    n_slots: int,
    seed: int,
    readings: Readings = DEFAULT,
    allocation: str = "exact",
) -> pd.DataFrame:
    """Probabilistic against Direct over ``n_scenarios`` random plausible scenarios.

    Each scenario (:func:`plausible_scenario`, seeded from ``seed``) runs both assignments on
    the same ``n_slots`` slots with ``allocation`` (default the exact optimum, which annealing
    matches: notebook 05). One row per scenario: the drawn parameters, each policy's mean utility,
    and ``gain_pct`` = 100 (U_prob - U_direct) / |U_direct|.
    """
    validate.whole(n_scenarios, "n_scenarios", low=1)
    rng = np.random.default_rng([seed, 6])
    rows = []
    for i in range(int(n_scenarios)):
        sc = plausible_scenario(base, rng)
        u = {
            p: float(
                simulation.simulate(
                    sc, n_slots, seed + i, assignment=p, allocation=allocation, readings=readings
                )
                .slots["utility"]
                .mean()
            )
            for p in ("probabilistic", "direct")
        }
        rows.append(
            {
                "scenario": i,
                **{f"mu_{g.name}": g.mu for g in sc.groups},
                "small_offset": sc.models[0].score_offset,
                "small_beta": sc.models[0].score_beta,
                "large_offset": sc.models[2].score_offset,
                "large_beta": sc.models[2].score_beta,
                "medium_slope": sc.models[1].score_slope,
                "large_slope": sc.models[2].score_slope,
                "utility_probabilistic": u["probabilistic"],
                "utility_direct": u["direct"],
                "gain_pct": 100 * (u["probabilistic"] - u["direct"]) / abs(u["direct"]),
            }
        )
    return pd.DataFrame(rows)
