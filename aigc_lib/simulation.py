"""Time-slot simulator: prompts arrive, are assigned to models, get steps and compute, and are scored.

Each slot (docs/SPEC.md sections 2-3): draw the slot's prompts (groups from the scenario's
PartiPrompts mix, or real prompts from a table); assign each to a model (``probabilistic`` eq. 9-10,
``direct`` or ``random``); build the slot's :class:`~aigc_lib.allocation.AllocationProblem` from what
the assignment did and solve it (``annealing`` = Algorithm 1, ``exact``, ``equal``,
``optimal_step``, or any callable); then score every task with the ground truth
:func:`aigc_lib.scenario.true_score`,

    s_nm(z) = Sbar + d_m + beta_m (mu_k + e_n - Sbar) + a_m ln(z / zref_m) + noise,

e_n ~ N(0, sigma_k^2) the prompt's own deviation and noise ~ N(0, noise_sd^2) per image. Under the
default reading the planner never sees e_n: its estimated curve for model m is shat_m(z) =
a_m ln z + b_m with b_m the mean of Sbar + d_m + beta_m (mu_k - Sbar) over the tasks assigned to m,
minus a_m ln zref_m. The paper's open readings (:class:`aigc_lib.readings.Readings`) change what
Probabilistic-assignment knows (a per-prompt predictor p_n = rho e_n + sqrt(1 - rho^2) sigma_k xi_n,
whose belief N(mu_k + rho p_n, (1 - rho^2) sigma_k^2) replaces the category prior), which model
Direct uses, how latency and utility are counted, and the score curve.

Latency of a task (default, FIFO): its completion time j x t_m (j = its position among its
model's tasks in arrival order, t_m = seconds per image at the model's share of the GPU); under
``latency="per_image"`` it is t_m. Its utility is score - lambda x latency (eq. 4).

Common random numbers: the prompts, deviations e_n, predictor noise xi_n and image noise come from
streams of their own, so for one ``seed`` every policy (and every reading) sees the same workload.
Units: CLIPScore points, seconds, TFLOP, TFLOPS. Taught in
``notebooks/03_probabilistic_assignment.ipynb`` and
``notebooks/04_step_selection_and_resource_allocation.ipynb``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib import allocation as alloc
from aigc_lib import assignment as assign
from aigc_lib import parallel, validate
from aigc_lib.readings import DEFAULT, Readings, direct_models
from aigc_lib.scenario import Scenario, load_scenario, true_score

__all__ = [
    "ASSIGNMENTS",
    "ALLOCATIONS",
    "TASK_COLUMNS",
    "SimulationResult",
    "simulate",
    "shared_runs",
    "example_slot",
    "streams",
    "workload",
    "slot_problem",
    "slot_problems",
    "assignment_names",
    "prompt_draws",
    "beliefs",
    "assign_models",
    "planner_curves",
    "plan",
    "true_scores",
    "solver",
]

ASSIGNMENTS = ("probabilistic", "direct", "random")
"""Assignment policies: eq. 9-10, Direct-assignment, Random-assignment. A model's name (for example
``"sd15"``) is accepted too: every prompt goes to that model (a single-model policy, the baseline
every mix of models has to beat; :func:`assignment_names`)."""

ALLOCATIONS = ("annealing", "exact", "equal", "optimal_step")
"""Allocation policies: Algorithm 1, the exact optimum, Equal-allocation, Optimal-step."""

TASK_COLUMNS = (
    "slot",
    "prompt_id",
    "group",
    "model",
    "steps",
    "compute",
    "score",
    "latency",
    "utility",
    "deviation",
)

Allocator = Callable[[alloc.AllocationProblem, np.random.Generator], alloc.Allocation]


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What :func:`simulate` returns.

    ``tasks``: one row per task: ``slot``, ``prompt_id``, ``group`` and ``model`` (names, ordered
    categoricals), ``steps`` z, ``compute`` c_m (TFLOPS), ``score`` (CLIPScore points), ``latency``
    (seconds, under the run's latency reading), ``utility`` = score - lambda x latency,
    ``deviation`` e_n (CLIPScore points; hidden from the planner). ``slots``: one row per slot:
    ``slot``, ``n_tasks``, mean ``score``, mean ``latency``, ``makespan`` (seconds, the slowest
    model's N_m t_m), ``utility`` (the slot's utility under the run's utility reading: by default
    the mean task utility, eq. 4), ``planned_utility`` (the allocator's eq. 11), and per model
    ``n_<model>``, ``steps_<model>`` (NaN without tasks) and ``compute_<model>`` (TFLOPS). Means
    are NaN for a slot without tasks. ``settings``: the arguments of the run.
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
    readings: Readings = DEFAULT,
    annealing_options: Mapping[str, Any] | None = None,
) -> SimulationResult:
    """Run ``n_slots`` time slots of the edge server under one assignment and one allocation policy.

    ``scenario``: the parameters (docs/SPEC.md section 4). ``seed``: a whole number >= 0; the same
    seed gives the same result, and the same workload for every policy. ``assignment``: one of
    :data:`ASSIGNMENTS`, or a model's name (every prompt to that model). ``allocation``: one of
    :data:`ALLOCATIONS` or a callable ``(problem, rng) -> Allocation``. ``prompts``: optional
    DataFrame with columns ``prompt_id`` and ``group`` (names of the scenario's groups), e.g. real
    PartiPrompts; each arrival is drawn uniformly from it and a prompt keeps its deviation e_n for
    the whole run. Without it groups are drawn from ``scenario.shares`` and ``prompt_id`` counts
    arrivals (0, 1, ...).
    ``tasks_per_slot``: prompts per slot, a whole number or one per slot (default
    ``scenario.tasks_per_slot``; 0 gives an empty slot). ``readings``: the paper's open readings
    (:class:`~aigc_lib.readings.Readings`; default: category information, Direct by interval,
    FIFO latency, per-task utility, log score curve). ``annealing_options``: keyword arguments for
    :func:`~aigc_lib.allocation.simulated_annealing`.

    The steps: :func:`workload`, :func:`beliefs`, :func:`assign_models` (eq. 9-10), :func:`plan`
    per slot (eq. 11), then the ground truth (:func:`true_scores`, latency from the queue).

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    n_slots, seed = _check_run(scenario, readings, n_slots, seed, assignment)
    solve = _solver(allocation, annealing_options, readings.step_tolerance)
    counts = _slot_sizes(
        scenario.tasks_per_slot if tasks_per_slot is None else tasks_per_slot, n_slots
    )
    rho = readings.predictor_rho if assignment == "probabilistic" else 0.0  # Direct: category only
    _, _, assign_rng, alloc_rng = (np.random.default_rng(s) for s in streams(seed))
    draws = workload(scenario, n_slots, seed, prompts, counts)
    group, xi = draws["group"].cat.codes.to_numpy(), draws["predictor_noise"].to_numpy()
    belief, belief_sd = beliefs(scenario, group, draws["deviation"].to_numpy(), xi, rho)
    model = assign_models(scenario, assignment, group, belief, belief_sd, readings, assign_rng)
    plans = _plan_slots(scenario, model, belief, counts, readings, solve, alloc_rng)
    tasks = _task_frame(scenario, draws, model, plans, readings)
    slots = _slot_summary(tasks, counts, plans, scenario, readings)
    settings = _settings(
        scenario,
        n_slots,
        seed,
        assignment,
        allocation,
        prompts,
        tasks_per_slot,
        readings,
        annealing_options,
    )
    return SimulationResult(tasks=tasks, slots=slots, settings=settings)


def shared_runs(
    scenario_name: str,
    n_slots: int,
    seed: int,
    by: str = "assignment",
    partiprompts: str | bool | None = False,
    profile: str | None = None,
    allow_random_weights: bool = False,
    names: Sequence[str] | None = None,
) -> tuple[Scenario, dict[str, SimulationResult]]:
    """The scenario ``scenario_name`` and one :func:`simulate` run per name, on one workload
    (``seed``), kept for the process: every section of a notebook can open with this call, and
    only the first call simulates.

    ``by``: the argument each name sets, ``"assignment"`` or ``"allocation"``. ``names``: the
    policies or methods (default: :func:`assignment_names`, or :data:`ALLOCATIONS`), in the order
    of the returned dict. ``partiprompts``: ``False`` draws groups from the scenario's shares; a
    path, or ``None`` (``$PARTIPROMPTS_PATH``, ``data/cache/``, download), draws real prompts
    (:func:`aigc_lib.prompts.load_partiprompts`). ``profile``, ``allow_random_weights``: as in
    :func:`aigc_lib.scenario.load_scenario`. The runs go across CPU cores
    (:func:`aigc_lib.parallel.run`); the dict is a new one per call, its runs are shared (do not
    change them). Taught in ``notebooks/03_probabilistic_assignment.ipynb`` and
    ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    if by not in ("assignment", "allocation"):
        raise ValueError(f"by: expected 'assignment' or 'allocation', got {by!r}")
    key = None if names is None else tuple(names)
    sc, runs = _shared_runs(
        scenario_name, n_slots, seed, by, partiprompts, profile, allow_random_weights, key
    )
    return sc, dict(runs)


@functools.lru_cache(maxsize=8)
def _shared_runs(name, n_slots, seed, by, partiprompts, profile, allow_random, names):
    """:func:`shared_runs`, cached on its (hashable) arguments."""
    sc = load_scenario(name, profile=profile, allow_random_weights=allow_random)
    table = None
    if partiprompts is not False:
        from aigc_lib.prompts import load_partiprompts

        table = load_partiprompts(partiprompts)
    if names is None:
        names = assignment_names(sc) if by == "assignment" else ALLOCATIONS
    items = [(sc, n_slots, seed, by, n, table) for n in names]
    return sc, dict(zip(names, parallel.run(_one_run, items)))


def example_slot(
    scenario: Scenario, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, alloc.AllocationProblem]:
    """One slot's allocation problem (eq. 11), drawn as notebook 04 builds it by hand (section 2).

    One generator ``np.random.default_rng(seed)`` draws ``tasks_per_slot`` groups from the shares,
    then each task's model by eq. 9-10. Returns ``(n_tasks, score_a, score_b, problem)``: tasks per
    model, the planner's curves shat_m(z) = a_m ln z + b_m (b_m from the mean expected score of the
    model's tasks at zref_m; 0 - a_m ln zref_m for a model without tasks) and the problem
    (:func:`slot_problem`). Taught in
    ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    rng = np.random.default_rng(validate.whole(seed, "seed"))
    group = rng.choice(len(scenario.groups), size=scenario.tasks_per_slot, p=scenario.shares)
    probs = assign.assignment_probabilities(scenario.mu, scenario.sigma, scenario.thresholds)
    model = assign.assign_probabilistic(group, probs, rng)
    n_tasks = np.bincount(model, minlength=len(scenario.models))
    slope = np.array([m.score_slope for m in scenario.models])
    zref = np.array([m.zref for m in scenario.models])
    expected = true_score(scenario, scenario.mu[group], model, zref[model])
    b = np.array([expected[model == m].mean() if n else 0.0 for m, n in enumerate(n_tasks)])
    b = b - slope * np.log(zref)
    return n_tasks, slope, b, slot_problem(scenario, n_tasks, slope, b)


def _one_run(item: tuple) -> SimulationResult:
    """One run of :func:`shared_runs`: ``(scenario, n_slots, seed, by, name, prompts)``."""
    sc, n_slots, seed, by, name, table = item
    return simulate(sc, n_slots, seed, prompts=table, **{by: name})


def _check_run(
    scenario: Any, readings: Any, n_slots: Any, seed: Any, assignment: Any
) -> tuple[int, int]:
    """The arguments of :func:`simulate` checked: ``n_slots`` and ``seed`` as whole numbers."""
    validate.instance(scenario, Scenario, "scenario")
    validate.instance(readings, Readings, "readings")
    n_slots = validate.whole(n_slots, "n_slots")
    seed = validate.whole(seed, "seed")
    if assignment not in assignment_names(scenario):
        raise ValueError(
            f"assignment: expected one of {assignment_names(scenario)} (a model's name sends every "
            f"prompt to it), got {assignment!r}"
        )
    return n_slots, seed


@dataclass(frozen=True, eq=False)
class _SlotPlans:
    """What the allocator chose in each slot, arrays of shape (n_slots, n_models): tasks per model
    ``n_per``, ``steps`` z_m, ``compute`` c_m (TFLOPS), ``seconds`` per image t_m (NaN without
    tasks), ``makespan`` N_m t_m (seconds); ``planned`` the allocator's U of eq. 11 per slot."""

    n_per: np.ndarray
    steps: np.ndarray
    compute: np.ndarray
    seconds: np.ndarray
    makespan: np.ndarray
    planned: np.ndarray


def _queue_keys(slot: np.ndarray, model: np.ndarray, n_models: int) -> np.ndarray:
    """One queue per (slot, model): its index slot x M + model, per task."""
    return slot * n_models + model


def _plan_slots(
    scenario: Scenario,
    model: np.ndarray,
    belief: np.ndarray,
    counts: np.ndarray,
    readings: Readings,
    solve: Allocator,
    rng: np.random.Generator,
) -> _SlotPlans:
    """Eq. 11 solved for every slot (:func:`plan`), the slots in order, from the run's one
    allocation stream ``rng``; a slot without tasks is skipped and draws nothing."""
    n_slots, n_models = counts.size, len(scenario.models)
    slot = np.repeat(np.arange(n_slots), counts)
    key = _queue_keys(slot, model, n_models)
    plans = _SlotPlans(
        n_per=np.bincount(key, minlength=n_slots * n_models).reshape(n_slots, n_models),
        steps=np.zeros((n_slots, n_models), dtype=np.int64),
        compute=np.zeros((n_slots, n_models)),
        seconds=np.full((n_slots, n_models), np.nan),
        makespan=np.zeros((n_slots, n_models)),
        planned=np.full(n_slots, np.nan),
    )
    if n_slots == 0:
        return plans
    slope, score_b = _planner_slots(scenario, key, model, belief, plans.n_per, readings)
    template = slot_problem(scenario, plans.n_per[0], slope, score_b[0], readings)
    for s in range(n_slots):
        if counts[s] == 0:
            continue
        result = solve(template.with_tasks(plans.n_per[s], slope, score_b[s]), rng)
        plans.steps[s], plans.compute[s] = result.steps, result.compute_tflops
        plans.seconds[s], plans.makespan[s] = result.seconds_per_image, result.makespan
        plans.planned[s] = result.utility
    return plans


def _planner_slots(
    scenario: Scenario,
    key: np.ndarray,
    model: np.ndarray,
    belief: np.ndarray,
    n_per: np.ndarray,
    readings: Readings,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`planner_curves` for every slot at once: the slopes a_m and each slot's b_m, shape
    (n_slots, M). ``key``: each task's slot x M + model; ``n_per``: tasks per slot and model. The
    same numbers as slot by slot (each slot's sums add its tasks in order)."""
    n_models = len(scenario.models)
    saturation = readings.saturation
    reference = np.array([m.zref for m in scenario.models], dtype=float)
    expected = true_score(scenario, belief, model, reference[model], saturation)  # at each zref
    sum_per = np.bincount(key, weights=expected, minlength=n_per.size).reshape(n_per.shape)
    prior_b = true_score(scenario, scenario.mean_score, np.arange(n_models), reference, saturation)
    mean_expected = np.divide(
        sum_per, n_per, out=np.broadcast_to(prior_b, n_per.shape).copy(), where=n_per > 0
    )
    slope = np.array([m.score_slope for m in scenario.models])
    capped = reference if saturation is None else np.minimum(reference, saturation)
    return slope, mean_expected - slope * np.log(capped)


def _queue_positions(key: np.ndarray, latency: str) -> np.ndarray:
    """Each task's 1-based place in its queue (``key``, in arrival order) under the latency
    reading: ``"fifo"`` counts the tasks ahead of it plus one; ``"per_image"`` is 1 for all."""
    total = key.size
    if latency != "fifo":
        return np.ones(total, dtype=np.int64)
    order = np.argsort(key, kind="stable")
    starts = np.searchsorted(key[order], key[order], side="left")
    position = np.empty(total, dtype=np.int64)
    position[order] = np.arange(total) - starts + 1
    return position


def _task_frame(
    scenario: Scenario,
    draws: pd.DataFrame,
    model: np.ndarray,
    plans: _SlotPlans,
    readings: Readings,
) -> pd.DataFrame:
    """The ground truth per task (:data:`TASK_COLUMNS`): its score (:func:`true_scores`), its
    latency (place in queue x t_m) and its utility score - lambda x latency (eq. 4)."""
    slot, group = draws["slot"].to_numpy(), draws["group"].cat.codes.to_numpy()
    deviation = draws["deviation"].to_numpy()
    steps = plans.steps[slot, model]
    score = true_scores(
        scenario,
        group,
        deviation,
        model,
        steps,
        draws["image_noise"].to_numpy(),
        readings.saturation,
    )
    key = _queue_keys(slot, model, len(scenario.models))
    latency = _queue_positions(key, readings.latency) * plans.seconds[slot, model]
    return pd.DataFrame(
        {
            "slot": slot,
            "prompt_id": draws["prompt_id"].to_numpy(),
            "group": pd.Categorical.from_codes(
                group, categories=scenario.group_names, ordered=True
            ),
            "model": pd.Categorical.from_codes(
                model, categories=scenario.model_names, ordered=True
            ),
            "steps": steps,
            "compute": plans.compute[slot, model],
            "score": score,
            "latency": latency,
            "utility": score - scenario.weight * latency,
            "deviation": deviation,
        }
    )


def _settings(
    scenario: Scenario,
    n_slots: int,
    seed: int,
    assignment: str,
    allocation: str | Allocator,
    prompts: pd.DataFrame | None,
    tasks_per_slot: int | Sequence[int] | None,
    readings: Readings,
    annealing_options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The arguments of a :func:`simulate` run, as its result records them."""
    return {
        "n_slots": n_slots,
        "seed": seed,
        "assignment": assignment,
        "allocation": allocation
        if isinstance(allocation, str)
        else getattr(allocation, "__name__", "callable"),
        "tasks_per_slot": tasks_per_slot if tasks_per_slot is not None else scenario.tasks_per_slot,
        "readings": readings,
        "prompts": "table" if prompts is not None else "synthetic",
        "annealing_options": dict(annealing_options or {}),
        "scenario": scenario.name,
    }


def assignment_names(scenario: Scenario) -> tuple[str, ...]:
    """What ``simulate(assignment=...)`` accepts: :data:`ASSIGNMENTS`, then each model's name."""
    return ASSIGNMENTS + tuple(scenario.model_names)


def streams(seed: int) -> list[np.random.SeedSequence]:
    """The independent random streams of a run: workload, image noise, assignment, allocation.

    Children of ``numpy.random.SeedSequence(seed)``, in that order; a policy that needs more streams
    (notebook 07's discriminator) spawns further children, which leaves these four untouched.
    """
    return np.random.SeedSequence(validate.whole(seed, "seed")).spawn(4)


def workload(
    scenario: Scenario,
    n_slots: int,
    seed: int,
    prompts: pd.DataFrame | None = None,
    tasks_per_slot: int | Sequence[int] | None = None,
) -> pd.DataFrame:
    """The prompts of a run and the random numbers they carry: the same for every policy of a seed.

    One row per task in arrival order: ``slot``, then the columns of :func:`prompt_draws` for
    the run's tasks. Arguments as in :func:`simulate`, which draws exactly these (common random
    numbers).
    """
    validate.instance(scenario, Scenario, "scenario")
    n_slots = validate.whole(n_slots, "n_slots")
    counts = _slot_sizes(
        scenario.tasks_per_slot if tasks_per_slot is None else tasks_per_slot, n_slots
    )
    draws = prompt_draws(scenario, int(counts.sum()), seed, prompts)
    draws.insert(0, "slot", np.repeat(np.arange(n_slots), counts))
    return draws


def prompt_draws(
    scenario: Scenario, total: int, seed: int, prompts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``total`` prompts in arrival order and their random numbers, from the streams of ``seed``.

    Columns: ``prompt_id``, ``group`` (ordered categorical of the scenario's group names),
    ``deviation`` e_n ~ N(0, sigma_k^2) (CLIPScore points; a prompt of ``prompts`` keeps its own
    for the whole run), ``predictor_noise`` xi_n (standard normal, the per-prompt predictor's),
    ``image_noise`` (N(0, noise_sd^2), the task's image). ``prompts``: as in :func:`simulate`.
    The draws depend on ``seed``, ``total`` and ``prompts`` only, not on how the tasks are grouped
    into slots or spread in time: :func:`workload` and :func:`aigc_lib.serving.requests` draw the
    same for the same number of tasks.
    """
    validate.instance(scenario, Scenario, "scenario")
    total = validate.whole(total, "total")
    workload_rng, noise_rng = (np.random.default_rng(s) for s in streams(seed)[:2])
    sigma = scenario.sigma
    if prompts is None:
        shares = scenario.shares / scenario.shares.sum()
        group = workload_rng.choice(len(sigma), size=total, p=shares)
        deviation = sigma[group] * workload_rng.standard_normal(total)
        xi = workload_rng.standard_normal(total)
        prompt_id: np.ndarray = np.arange(total)
    else:
        ids, prompt_group = _prompt_table(prompts, scenario.group_names)
        prompt_dev = sigma[prompt_group] * workload_rng.standard_normal(ids.size)
        prompt_xi = workload_rng.standard_normal(ids.size)
        pick = workload_rng.integers(0, ids.size, size=total)
        group, deviation, xi = prompt_group[pick], prompt_dev[pick], prompt_xi[pick]
        prompt_id = ids[pick]
    return pd.DataFrame(
        {
            "prompt_id": prompt_id,
            "group": pd.Categorical.from_codes(
                group, categories=scenario.group_names, ordered=True
            ),
            "deviation": deviation,
            "predictor_noise": xi,
            "image_noise": scenario.noise_sd * noise_rng.standard_normal(total),
        }
    )


# --- the steps simulate shares with aigc_lib.serving ----------------------------------------------


def beliefs(
    scenario: Scenario, group: np.ndarray, deviation: np.ndarray, xi: np.ndarray, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """The planner's belief about each prompt's own medium-model score: mean and sd (points).

    The predictor p_n = rho e_n + sqrt(1 - rho^2) sigma_k xi_n gives the belief
    N(mu_k + rho p_n, (1 - rho^2) sigma_k^2); rho = 0 is the category prior N(mu_k, sigma_k^2).
    """
    sigma = scenario.sigma[group]
    signal = rho * deviation + np.sqrt(1 - rho**2) * sigma * xi
    return scenario.mu[group] + rho * signal, np.sqrt(1 - rho**2) * sigma


def assign_models(
    scenario: Scenario,
    assignment: str,
    group: np.ndarray,
    belief: np.ndarray,
    belief_sd: np.ndarray,
    readings: Readings,
    rng: np.random.Generator,
) -> np.ndarray:
    """The model of each task under ``assignment`` (:func:`assignment_names`), in task order.

    ``probabilistic``: eq. 9-10 from the category (``readings.information="category"``) or from
    each prompt's belief (:func:`beliefs`); ``direct``: :func:`aigc_lib.readings.direct_models`;
    ``random``: uniform; a model's name: that model. ``rng``: the run's assignment stream.
    """
    n_models = len(scenario.models)
    if assignment == "random":
        return assign.assign_random(group.size, n_models, rng)
    if assignment == "direct":
        return direct_models(scenario, readings)[group]
    if assignment in scenario.model_names:  # one model for every prompt
        return np.full(group.size, scenario.model_names.index(assignment), dtype=np.int64)
    rho = readings.predictor_rho
    return _probabilistic(group, belief, belief_sd, scenario, rho, rng)


def planner_curves(
    scenario: Scenario, model: np.ndarray, belief: np.ndarray, readings: Readings = DEFAULT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the planner knows about a batch of tasks: tasks per model and its score curves.

    Returns ``n_tasks`` (per model), ``score_a`` a_m and ``score_b`` b_m of shat_m(z) = a_m ln z +
    b_m (docs/SPEC.md section 3): b_m is the mean over the batch's tasks on model m of their
    expected score at zref_m under the belief, minus a_m ln zref_m (the scenario's mean prompt for
    a model without tasks).
    """
    n_per = np.bincount(model, minlength=len(scenario.models))
    slope, score_b = _planner_slots(scenario, model, model, belief, n_per[None, :], readings)
    return n_per, slope, score_b[0]  # one slot: the batch


def plan(
    scenario: Scenario,
    model: np.ndarray,
    belief: np.ndarray,
    readings: Readings,
    solver: Allocator,
    rng: np.random.Generator,
) -> alloc.Allocation:
    """Steps and compute shares for a batch of tasks: :func:`planner_curves`, then eq. 11 solved.

    ``solver(problem, rng)``: an allocation policy (e.g. ``allocation.solve_exact``).
    """
    return solver(
        slot_problem(scenario, *planner_curves(scenario, model, belief, readings), readings), rng
    )


def true_scores(
    scenario: Scenario,
    group: np.ndarray,
    deviation: np.ndarray,
    model: np.ndarray,
    steps: np.ndarray,
    noise: np.ndarray,
    saturation: float | None = None,
) -> np.ndarray:
    """Each delivered image's CLIPScore (points): the ground truth of the prompt's own score
    mu_k + e_n on its model at its steps (:func:`aigc_lib.scenario.true_score`), plus its noise."""
    own = scenario.mu[group] + deviation
    return true_score(scenario, own, model, steps, saturation) + noise


def solver(
    allocation: str | Allocator,
    annealing_options: Mapping[str, Any] | None = None,
    readings: Readings = DEFAULT,
) -> Allocator:
    """The allocation policy ``allocation`` (:data:`ALLOCATIONS` or a callable) as a function
    ``(problem, rng) -> Allocation``."""
    return _solver(allocation, annealing_options, readings.step_tolerance)


def slot_problems(
    scenario: Scenario, n_slots: int, seed: int, **simulate_options: Any
) -> list[alloc.AllocationProblem]:
    """The allocation problems (docs/SPEC.md eq. 11) a simulation poses, one per slot with tasks.

    Runs :func:`simulate` with an allocator that records each problem it is given and solves it
    exactly; ``simulate_options`` go to ``simulate`` (``assignment``, ``readings``, ...; not
    ``allocation``).

    Taught in ``notebooks/05_beyond_the_paper.ipynb``.
    """
    if "allocation" in simulate_options:
        raise ValueError(
            "simulate_options: slot_problems sets the allocation itself; do not pass allocation"
        )
    problems: list[alloc.AllocationProblem] = []

    def record(problem: alloc.AllocationProblem, rng: np.random.Generator) -> alloc.Allocation:
        problems.append(problem)
        return alloc.solve_exact(problem)

    simulate(scenario, n_slots, seed, allocation=record, **simulate_options)
    return problems


# --- pieces -------------------------------------------------------------------------------------


def slot_problem(
    scenario: Scenario,
    n_tasks: Any,
    score_a: Any,
    score_b: Any,
    readings: Readings = DEFAULT,
) -> alloc.AllocationProblem:
    """One slot's allocation problem (eq. 11) under ``readings``.

    ``n_tasks``: tasks per model; ``score_a``, ``score_b``: the planner's curves a_m ln z + b_m.
    The rest comes from the scenario: every model's steps, its work in effective TFLOP (measured
    seconds x C), C, lambda and the minimum share.
    """
    return alloc.AllocationProblem(
        n_tasks=n_tasks,
        step_options=[m.steps for m in scenario.models],
        tflop_per_step=scenario.effective_tflop_per_step,
        tflop_fixed=scenario.effective_tflop_fixed,
        score_a=score_a,
        score_b=score_b,
        capacity_tflops=scenario.capacity_tflops,
        weight=scenario.weight,
        min_share=scenario.min_share,
        latency=readings.latency,
        utility=readings.utility,
        saturation_steps=readings.saturation,
    )


def _probabilistic(
    group: np.ndarray,
    belief: np.ndarray,
    belief_sd: np.ndarray,
    scenario: Scenario,
    rho: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Eq. 9-10: the category's probabilities (rho = 0), or each prompt's own from its belief."""
    if rho == 0:
        probs = assign.assignment_probabilities(scenario.mu, scenario.sigma, scenario.thresholds)
        return assign.assign_probabilistic(group, probs, rng)
    if group.size == 0:
        return np.zeros(0, dtype=np.int64)
    if rho == 1:  # the belief is exact, so eq. 9-10 become thresholding the prompt's own score
        return np.searchsorted(np.asarray(scenario.thresholds), belief, side="right").astype(
            np.int64
        )
    probs = assign.assignment_probabilities(belief, belief_sd, scenario.thresholds)
    return assign.assign_probabilistic(np.arange(group.size), probs, rng)


def _solver(
    allocation: str | Allocator, options: Mapping[str, Any] | None, tolerance: float
) -> Allocator:
    if options is not None and not isinstance(options, Mapping):
        raise ValueError(
            f"annealing_options: expected a mapping of keyword arguments, got {type(options).__name__}"
        )
    options = dict(options or {})
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
    raise ValueError(
        f"allocation: expected one of {ALLOCATIONS} or a callable (problem, rng) -> Allocation, got {allocation!r}"
    )


def _prompt_table(prompts: Any, group_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(prompts, pd.DataFrame):
        raise ValueError(
            f"prompts: expected a DataFrame with columns prompt_id and group, got {type(prompts).__name__}"
        )
    missing = {"prompt_id", "group"} - set(prompts.columns)
    if missing:
        raise ValueError(
            f"prompts: missing columns {sorted(missing)}; expected prompt_id and group"
        )
    if len(prompts) == 0:
        raise ValueError("prompts: expected at least one prompt")
    labels = prompts["group"].astype(object)
    known = labels.isin(group_names)
    if not known.all():
        unknown = sorted({str(x) for x in labels[~known]})
        raise ValueError(
            f"prompts: unknown group labels {unknown}; expected names among {group_names}"
        )
    index = {name: i for i, name in enumerate(group_names)}
    return prompts["prompt_id"].to_numpy(), labels.map(index).to_numpy(dtype=np.int64)


def _slot_summary(
    tasks: pd.DataFrame,
    counts: np.ndarray,
    plans: _SlotPlans,
    scenario: Scenario,
    readings: Readings,
) -> pd.DataFrame:
    """One row per slot (:class:`SimulationResult`): means of the tasks, the slot's utility under
    the utility reading, and what the allocator chose per model."""
    n_per, makespan_of, planned = plans.n_per, plans.makespan, plans.planned
    steps_of, compute_of = plans.steps, plans.compute
    slot = tasks["slot"].to_numpy()
    key = _queue_keys(slot, tasks["model"].cat.codes.to_numpy().astype(np.int64), n_per.shape[1])
    score, latency = tasks["score"].to_numpy(), tasks["latency"].to_numpy()
    utility = tasks["utility"].to_numpy()
    n_slots, n_models = n_per.shape
    safe = np.maximum(counts, 1)

    def mean(values: np.ndarray) -> np.ndarray:
        sums = np.bincount(slot, weights=values, minlength=n_slots)
        return np.where(counts > 0, sums / safe, np.nan)

    if readings.utility == "per_task":
        slot_utility = mean(utility)
    else:  # the mean over models with tasks of their mean task utility
        per_model = np.bincount(key, weights=utility, minlength=n_slots * n_models).reshape(
            n_slots, n_models
        )
        per_model = np.divide(per_model, n_per, out=np.zeros_like(per_model), where=n_per > 0)
        active = (n_per > 0).sum(axis=1)
        slot_utility = np.where(active > 0, per_model.sum(axis=1) / np.maximum(active, 1), np.nan)
    frame = {
        "slot": np.arange(n_slots),
        "n_tasks": counts,
        "score": mean(score),
        "latency": mean(latency),
        "makespan": makespan_of.max(axis=1, initial=0.0),
        "utility": slot_utility,
        "planned_utility": planned,
    }
    names = scenario.model_names
    for m, name in enumerate(names):
        frame[f"n_{name}"] = n_per[:, m]
    for m, name in enumerate(names):
        frame[f"steps_{name}"] = np.where(n_per[:, m] > 0, steps_of[:, m], np.nan)
    for m, name in enumerate(names):
        frame[f"compute_{name}"] = compute_of[:, m]
    return pd.DataFrame(frame)


def _slot_sizes(value: Any, n_slots: int) -> np.ndarray:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value < 0:
            raise ValueError(f"tasks_per_slot: expected a whole number >= 0, got {value}")
        return np.full(n_slots, int(value), dtype=np.int64)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"tasks_per_slot: expected a whole number or one per slot, got {value!r}"
        ) from None
    if arr.shape != (n_slots,):
        raise ValueError(
            f"tasks_per_slot: expected a whole number or {n_slots} numbers (one per slot), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 0):
        raise ValueError("tasks_per_slot: expected whole numbers >= 0 (no NaN)")
    return arr.astype(np.int64)
