"""Time-slot simulator: prompts arrive, are assigned to models, get steps and compute, and are scored.

Each slot (SPEC sections 2-3): draw the slot's prompts (groups from the scenario's PartiPrompts
mix, or real prompts from a table); assign each to a model (``probabilistic`` eq. 9-10, ``direct``
or ``random``); build the slot's :class:`~aigc_lib.allocation.AllocationProblem` from what the
assignment did and solve it (``annealing`` = Algorithm 1, ``exact``, ``equal``, ``optimal_step``, or
any callable); then score every task with the ground truth of SPEC section 3,

    s_nm(z) = Sbar + d_m + beta_m (mu_k + e_n - Sbar) + a_m ln(z / zref_m) + noise,

e_n ~ N(0, sigma_k^2) the prompt's own deviation and noise ~ N(0, noise_sd^2) per image. The planner
never sees e_n. Its estimated curve for model m is shat_m(z) = a_m ln z + b_m with b_m the mean of
Sbar + d_m + beta_m (belief_n - Sbar) over the tasks assigned to m, minus a_m ln zref_m.

Beyond the paper (notebook 05): a per-prompt score predictor with correlation ``rho`` to e_n,
p_n = rho e_n + sqrt(1 - rho^2) sigma_k xi_n. The planner's belief for the prompt's medium-model
score is then N(mu_k + rho p_n, (1 - rho^2) sigma_k^2): belief_n = mu_k + rho p_n is used in b_m
and for assignment (per-prompt probabilities; rho = 1 is deterministic thresholding; rho = 0 is the
paper).

Latency of a task is its FIFO completion time j x t_m (j = its position among its model's tasks in
arrival order, t_m = W_m(z_m) / c_m seconds); its utility is score - lambda x latency (eq. 4).

Common random numbers: the prompts, deviations e_n, predictor noise xi_n and image noise come from
streams of their own, so for one ``seed`` every policy (and every rho) sees the same workload.
Units: CLIPScore points, seconds, TFLOP, TFLOPS. Taught in
``notebooks/04_step_selection_and_resource_allocation.ipynb`` and ``notebooks/05_beyond_the_paper.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib import allocation as alloc
from aigc_lib import assignment as assign
from aigc_lib.scenario import Scenario, true_score

__all__ = [
    "ASSIGNMENTS",
    "ALLOCATIONS",
    "SimulationResult",
    "simulate",
    "compare_policies",
]

ASSIGNMENTS = ("probabilistic", "direct", "random")
"""Assignment policies: eq. 9-10, Direct-assignment, Random-assignment."""

ALLOCATIONS = ("annealing", "exact", "equal", "optimal_step")
"""Allocation policies: Algorithm 1, the exact optimum, Equal-allocation, Optimal-step."""

TASK_COLUMNS = ("slot", "prompt_id", "group", "model", "steps", "compute", "score", "latency", "utility", "deviation")

Allocator = Callable[[alloc.AllocationProblem, np.random.Generator], alloc.Allocation]


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What :func:`simulate` returns.

    ``tasks``: one row per task: ``slot``, ``prompt_id``, ``group`` and ``model`` (names, ordered
    categoricals), ``steps`` z, ``compute`` c_m (TFLOPS), ``score`` (CLIPScore points), ``latency``
    (seconds, FIFO completion time), ``utility`` = score - lambda x latency, ``deviation`` e_n
    (CLIPScore points; hidden from the planner). ``slots``: one row per slot: ``slot``, ``n_tasks``,
    mean ``score``, mean ``latency``, ``makespan`` (seconds, the slowest model's N_m t_m),
    ``utility`` (mean task utility, eq. 4), ``planned_utility`` (the allocator's eq. 11), and per
    model ``n_<model>``, ``steps_<model>`` (NaN without tasks) and ``compute_<model>`` (TFLOPS).
    Means are NaN for a slot without tasks. ``settings``: the arguments of the run.
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """

    tasks: pd.DataFrame
    slots: pd.DataFrame
    settings: Mapping[str, Any] = field(default_factory=dict)


def simulate(
    scenario: Scenario,
    n_slots: int,
    seed: int,
    assignment: str = "probabilistic",
    allocation: str | Allocator = "annealing",
    prompts: pd.DataFrame | None = None,
    tasks_per_slot: int | Sequence[int] | None = None,
    rho: float = 0.0,
    annealing_options: Mapping[str, Any] | None = None,
    step_tolerance: float = 0.0,
) -> SimulationResult:
    """Run ``n_slots`` time slots of the edge server under one assignment and one allocation policy.

    ``scenario``: the parameters (SPEC section 4). ``seed``: a whole number >= 0; the same seed
    gives the same result, and the same workload for every policy. ``assignment``: one of
    :data:`ASSIGNMENTS`. ``allocation``: one of :data:`ALLOCATIONS` or a callable
    ``(problem, rng) -> Allocation``. ``prompts``: optional DataFrame with columns ``prompt_id`` and
    ``group`` (names of the scenario's groups), e.g. real PartiPrompts; each arrival is drawn
    uniformly from it and a prompt keeps its deviation e_n for the whole run. Without it groups are
    drawn from ``scenario.shares`` and ``prompt_id`` counts arrivals (0, 1, ...).
    ``tasks_per_slot``: prompts per slot, a whole number or one per slot (default
    ``scenario.tasks_per_slot``; 0 gives an empty slot). ``rho``: predictor correlation in [0, 1].
    ``annealing_options``: keyword arguments for :func:`~aigc_lib.allocation.simulated_annealing`.
    ``step_tolerance``: the ``tolerance`` of :func:`~aigc_lib.allocation.optimal_step`.

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario: expected an aigc_lib.scenario.Scenario, got {type(scenario).__name__}")
    n_slots = _whole(n_slots, "n_slots")
    seed = _whole(seed, "seed")
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment: expected one of {ASSIGNMENTS}, got {assignment!r}")
    solver = _solver(allocation, annealing_options, step_tolerance)
    counts = _slot_sizes(scenario.tasks_per_slot if tasks_per_slot is None else tasks_per_slot, n_slots)
    rho = alloc._scalar(rho, "rho", low=0.0, low_open=False)
    if rho > 1:
        raise ValueError(f"rho: expected a correlation in [0, 1], got {rho}")

    n_models = len(scenario.models)
    thresholds = assign._thresholds(scenario.thresholds)
    if thresholds.size != n_models - 1:
        raise ValueError(f"thresholds: expected {n_models - 1} (one fewer than models), got {thresholds.size}")
    mu, sigma, s_bar = scenario.mu, scenario.sigma, scenario.mean_score
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma)) and np.all(sigma > 0)):
        raise ValueError("scenario: group means must be finite and standard deviations > 0")
    d = np.array([m.score_offset for m in scenario.models])
    beta = np.array([m.score_beta for m in scenario.models])
    slope = np.array([m.score_slope for m in scenario.models])
    zref = np.array([m.zref for m in scenario.models], dtype=float)

    workload_rng, noise_rng, assign_rng, alloc_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    total = int(counts.sum())
    slot = np.repeat(np.arange(n_slots), counts)

    # --- workload: prompts, deviations e_n, predictor signals (same for every policy) ----------
    if prompts is None:
        group = workload_rng.choice(len(mu), size=total, p=scenario.shares / scenario.shares.sum())
        deviation = sigma[group] * workload_rng.standard_normal(total)
        xi = workload_rng.standard_normal(total)
        prompt_id: np.ndarray = np.arange(total)
    else:
        ids, prompt_group = _prompt_table(prompts, scenario.group_names)
        prompt_dev = sigma[prompt_group] * workload_rng.standard_normal(ids.size)
        prompt_xi = workload_rng.standard_normal(ids.size)
        pick = workload_rng.integers(0, ids.size, size=total)
        group, deviation, xi, prompt_id = prompt_group[pick], prompt_dev[pick], prompt_xi[pick], ids[pick]
    image_noise = scenario.noise_sd * noise_rng.standard_normal(total)
    signal = rho * deviation + np.sqrt(1 - rho**2) * sigma[group] * xi
    belief = mu[group] + rho * signal  # planner's mean of the prompt's medium-model score
    belief_sd = np.sqrt(1 - rho**2) * sigma[group]

    # --- assignment ----------------------------------------------------------------------------
    model = _assign(assignment, group, belief, belief_sd, mu, sigma, thresholds, rho,
                    n_models, assign_rng, total)

    # --- allocation, one problem per slot ------------------------------------------------------
    key = slot * n_models + model
    n_per = np.bincount(key, minlength=n_slots * n_models).reshape(n_slots, n_models)
    expected = s_bar + d[model] + beta[model] * (belief - s_bar)
    sum_per = np.bincount(key, weights=expected, minlength=n_slots * n_models).reshape(n_slots, n_models)
    prior_b = s_bar + d  # a model without tasks: any finite offset (it gets no compute)
    mean_expected = np.divide(sum_per, n_per, out=np.broadcast_to(prior_b, sum_per.shape).copy(), where=n_per > 0)
    offset_b = mean_expected - slope * np.log(zref)

    steps_of = np.zeros((n_slots, n_models), dtype=np.int64)
    compute_of = np.zeros((n_slots, n_models))
    seconds_of = np.full((n_slots, n_models), np.nan)
    makespan_of = np.zeros((n_slots, n_models))
    planned = np.full(n_slots, np.nan)
    step_options = [m.steps for m in scenario.models]
    per_step = scenario.effective_tflop_per_step  # measured seconds x C: the allocator's unit
    fixed = scenario.effective_tflop_fixed
    for s in range(n_slots):
        if counts[s] == 0:
            continue
        problem = alloc.AllocationProblem(
            n_tasks=n_per[s], step_options=step_options, tflop_per_step=per_step, tflop_fixed=fixed,
            score_a=slope, score_b=offset_b[s], capacity_tflops=scenario.capacity_tflops,
            weight=scenario.weight, min_share=scenario.min_share)
        result = solver(problem, alloc_rng)
        steps_of[s], compute_of[s] = result.steps, result.compute_tflops
        seconds_of[s], makespan_of[s], planned[s] = result.seconds_per_image, result.makespan, result.utility

    # --- ground truth: scores, FIFO latency, utility -------------------------------------------
    steps = steps_of[slot, model]
    score = true_score(scenario, mu[group] + deviation, model, steps) + image_noise
    order = np.argsort(key, kind="stable")
    starts = np.searchsorted(key[order], key[order], side="left")
    position = np.empty(total, dtype=np.int64)
    position[order] = np.arange(total) - starts + 1  # 1-based place in its model's queue
    latency = position * seconds_of[slot, model]
    task_utility = score - scenario.weight * latency

    model_cat = pd.Categorical.from_codes(model, categories=scenario.model_names, ordered=True)
    group_cat = pd.Categorical.from_codes(group, categories=scenario.group_names, ordered=True)
    tasks = pd.DataFrame({
        "slot": slot, "prompt_id": prompt_id, "group": group_cat, "model": model_cat,
        "steps": steps, "compute": compute_of[slot, model], "score": score, "latency": latency,
        "utility": task_utility, "deviation": deviation,
    })
    slots = _slot_summary(slot, counts, score, latency, task_utility, makespan_of, planned,
                          n_per, steps_of, compute_of, scenario.model_names)
    settings = {
        "n_slots": n_slots, "seed": seed, "assignment": assignment,
        "allocation": allocation if isinstance(allocation, str) else getattr(allocation, "__name__", "callable"),
        "tasks_per_slot": tasks_per_slot if tasks_per_slot is not None else scenario.tasks_per_slot,
        "rho": rho, "prompts": "table" if prompts is not None else "synthetic",
        "annealing_options": dict(annealing_options or {}), "step_tolerance": step_tolerance,
    }
    return SimulationResult(tasks=tasks, slots=slots, settings=settings)


def compare_policies(
    scenario: Scenario,
    n_slots: int,
    seed: int,
    assignments: Sequence[str] = ASSIGNMENTS,
    allocations: Sequence[str] = ALLOCATIONS,
    **options: Any,
) -> pd.DataFrame:
    """Every assignment x allocation policy on the same workload: the per-slot summaries stacked.

    Runs :func:`simulate` once per pair with the same ``seed`` (common random numbers) and returns
    its ``slots`` frames with two leading columns ``assignment`` and ``allocation``. ``options`` go
    to :func:`simulate` (``prompts``, ``tasks_per_slot``, ``rho``, ...).

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    frames = []
    for a in assignments:
        for c in allocations:
            slots = simulate(scenario, n_slots, seed, assignment=a, allocation=c, **options).slots
            slots.insert(0, "allocation", c)
            slots.insert(0, "assignment", a)
            frames.append(slots)
    if not frames:
        raise ValueError("assignments: expected at least one assignment and one allocation policy")
    return pd.concat(frames, ignore_index=True)


# --- pieces -------------------------------------------------------------------------------------

def _assign(policy: str, group: np.ndarray, belief: np.ndarray, belief_sd: np.ndarray, mu: np.ndarray,
            sigma: np.ndarray, thresholds: np.ndarray, rho: float, n_models: int,
            rng: np.random.Generator, total: int) -> np.ndarray:
    if policy == "random":
        return assign.assign_random(total, n_models, rng)
    if policy == "direct":
        if rho == 0:
            return assign.assign_direct(group, mu, thresholds)
        return assign.assign_direct(np.arange(total), belief, thresholds) if total else np.zeros(0, np.int64)
    if rho == 0:
        probs = assign.assignment_probabilities(mu, sigma, thresholds)
        return assign.assign_probabilistic(group, probs, rng)
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    if rho == 1:  # an oracle: the belief is exact, so eq. 9-10 becomes thresholding
        return np.searchsorted(thresholds, belief, side="right").astype(np.int64)
    probs = assign.assignment_probabilities(belief, belief_sd, thresholds)
    return assign.assign_probabilistic(np.arange(total), probs, rng)


def _solver(allocation: str | Allocator, options: Mapping[str, Any] | None, tolerance: float) -> Allocator:
    if options is not None and not isinstance(options, Mapping):
        raise ValueError(f"annealing_options: expected a mapping of keyword arguments, got {type(options).__name__}")
    options = dict(options or {})
    tolerance = alloc._scalar(tolerance, "step_tolerance", low=0.0, low_open=False)
    if callable(allocation):
        return allocation
    if allocation == "annealing":
        return lambda problem, rng: alloc.simulated_annealing(problem, rng, **options)
    if allocation == "exact":
        return lambda problem, rng: alloc.solve_exact(problem)
    if allocation == "equal":
        return lambda problem, rng: alloc.equal_allocation(problem)
    if allocation == "optimal_step":
        return lambda problem, rng: alloc.optimal_step(problem, tolerance=tolerance)
    raise ValueError(f"allocation: expected one of {ALLOCATIONS} or a callable (problem, rng) -> Allocation, got {allocation!r}")


def _prompt_table(prompts: Any, group_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(prompts, pd.DataFrame):
        raise ValueError(f"prompts: expected a DataFrame with columns prompt_id and group, got {type(prompts).__name__}")
    missing = {"prompt_id", "group"} - set(prompts.columns)
    if missing:
        raise ValueError(f"prompts: missing columns {sorted(missing)}; expected prompt_id and group")
    if len(prompts) == 0:
        raise ValueError("prompts: expected at least one prompt")
    labels = prompts["group"].astype(object)
    known = labels.isin(group_names)
    if not known.all():
        unknown = sorted({str(x) for x in labels[~known]})
        raise ValueError(f"prompts: unknown group labels {unknown}; expected names among {group_names}")
    index = {name: i for i, name in enumerate(group_names)}
    return prompts["prompt_id"].to_numpy(), labels.map(index).to_numpy(dtype=np.int64)


def _slot_summary(slot, counts, score, latency, utility, makespan_of, planned, n_per, steps_of,
                  compute_of, model_names) -> pd.DataFrame:
    n_slots = counts.size
    safe = np.maximum(counts, 1)

    def mean(values: np.ndarray) -> np.ndarray:
        sums = np.bincount(slot, weights=values, minlength=n_slots)
        return np.where(counts > 0, sums / safe, np.nan)

    frame = {
        "slot": np.arange(n_slots), "n_tasks": counts, "score": mean(score), "latency": mean(latency),
        "makespan": makespan_of.max(axis=1, initial=0.0), "utility": mean(utility),
        "planned_utility": planned,
    }
    for m, name in enumerate(model_names):
        frame[f"n_{name}"] = n_per[:, m]
    for m, name in enumerate(model_names):
        frame[f"steps_{name}"] = np.where(n_per[:, m] > 0, steps_of[:, m], np.nan)
    for m, name in enumerate(model_names):
        frame[f"compute_{name}"] = compute_of[:, m]
    return pd.DataFrame(frame)


def _whole(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: expected a whole number >= 0, got {value!r}")
    return int(value)


def _slot_sizes(value: Any, n_slots: int) -> np.ndarray:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value < 0:
            raise ValueError(f"tasks_per_slot: expected a whole number >= 0, got {value}")
        return np.full(n_slots, int(value), dtype=np.int64)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"tasks_per_slot: expected a whole number or one per slot, got {value!r}") from None
    if arr.shape != (n_slots,):
        raise ValueError(f"tasks_per_slot: expected a whole number or {n_slots} numbers (one per slot), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 0):
        raise ValueError("tasks_per_slot: expected whole numbers >= 0 (no NaN)")
    return arr.astype(np.int64)
