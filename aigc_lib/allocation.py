"""Step selection and compute allocation: simulated annealing, its exact yardstick, and baselines.

Each model m of a slot serves its N_m tasks back to back with one denoising-step count z_m and a
share c_m of the server's compute C (TFLOPS). One image takes t_m = W_m(z_m) / c_m seconds, with
work W_m(z) = z F_m + F0_m in TFLOP. The allocator maximises the utility of SPEC eq. 11,

    U(z, c) = sum_m [N_m shat_m(z_m) - lambda N_m (N_m + 1)/2 W_m(z_m)/c_m] / |N|,

shat_m(z) = a_m ln z + b_m the estimated CLIPScore, subject to sum_m c_m <= C, z_m in the model's
step set, and c_m >= min_share * C for every model with tasks (models without tasks get nothing).
That is the default reading; the paper's other readings of latency, utility and the score curve
(docs/SPEC.md section 2b) change the weights g_m and q_m of the general form
U = sum_m [g_m shat_m(z_m) - lambda q_m W_m(z_m) / c_m] (:class:`AllocationProblem`), and every
solver here handles all of them.

- :func:`simulated_annealing` is the paper's Algorithm 1.
- :func:`solve_exact` is ours: for fixed steps the best split is closed form (:func:`optimal_compute`,
  water-filling), so enumerating the step combinations gives the global optimum.
- :func:`equal_allocation` and :func:`optimal_step` are the paper's baselines.

Units: TFLOP (work), TFLOPS (compute), seconds (time), CLIPScore points (score, utility), lambda in
CLIPScore points per second. Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np
import pandas as pd

from aigc_lib import validate

__all__ = [
    "AllocationProblem",
    "Allocation",
    "MAX_EXACT_COMBINATIONS",
    "utility",
    "optimal_compute",
    "evaluate",
    "solve_exact",
    "simulated_annealing",
    "equal_allocation",
    "optimal_step",
    "dual_annealing_allocation",
    "random_problem",
]

LATENCY_READINGS = ("fifo", "per_image")
"""How a task's latency is read (docs/SPEC.md section 2b): FIFO queue per model, or one image's time."""

UTILITY_READINGS = ("per_task", "per_model")
"""How a slot's utility is read (docs/SPEC.md section 2b): mean over tasks, or mean over models."""

MAX_EXACT_COMBINATIONS = 10**6
"""The largest number of step combinations :func:`solve_exact` enumerates."""

_CHUNK = 1 << 16  # step combinations evaluated per vectorised block in solve_exact
_SUM_TOLERANCE = 1e-9  # relative slack allowed on sum(compute) <= capacity


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """One slot's allocation problem (SPEC eq. 11); every field has one entry per model, small to large.

    ``n_tasks``: tasks assigned to each model (whole numbers >= 0). ``step_options``: the allowed
    denoising-step counts of each model (a non-empty sequence of positive whole numbers per model;
    stored sorted and de-duplicated). ``tflop_per_step`` F_m (TFLOP, > 0) and ``tflop_fixed`` F0_m
    (TFLOP, >= 0): work per image W_m(z) = z F_m + F0_m. ``score_a``, ``score_b``: the estimated
    score curve shat_m(z) = a_m ln z + b_m (CLIPScore points). ``capacity_tflops``: C (TFLOPS, > 0).
    ``weight``: lambda (CLIPScore points per second, >= 0). ``min_share``: each model with tasks
    gets at least ``min_share * C`` (0 <= min_share, min_share x models <= 1). 2 to 8 models.
    The paper's open readings (docs/SPEC.md section 2b; :mod:`aigc_lib.readings`): ``latency``
    ``"fifo"`` (a model serves its tasks back to back; its mean task waits (N_m + 1)/2 t_m) or
    ``"per_image"`` (eq. 2-3 literally: a task's latency is t_m); ``utility`` ``"per_task"`` (the
    mean over tasks of score - lambda x latency, eq. 11 as written) or ``"per_model"`` (the mean
    over models with tasks of their mean score - lambda x mean latency); ``saturation_steps``
    None (shat_m(z) = a_m ln z + b_m) or z_sat (shat_m(z) = a_m ln min(z, z_sat) + b_m).
    Validated on construction: a bad field raises ``ValueError`` naming it.
    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """

    n_tasks: Any
    step_options: Any
    tflop_per_step: Any
    tflop_fixed: Any
    score_a: Any
    score_b: Any
    capacity_tflops: float
    weight: float = 0.2
    min_share: float = 0.01
    latency: str = "fifo"
    utility: str = "per_task"
    saturation_steps: float | None = None

    def __post_init__(self) -> None:
        n_tasks = _task_counts(self.n_tasks)
        m = n_tasks.size
        options = _step_options(self.step_options, m)
        values = {
            "tflop_per_step": _per_model(
                self.tflop_per_step, "tflop_per_step", m, low=0.0, low_open=True
            ),
            "tflop_fixed": _per_model(self.tflop_fixed, "tflop_fixed", m, low=0.0, low_open=False),
            "score_a": _per_model(self.score_a, "score_a", m),
            "score_b": _per_model(self.score_b, "score_b", m),
        }
        capacity = validate.number(self.capacity_tflops, "capacity_tflops", low=0.0, low_open=True)
        weight = validate.number(self.weight, "weight", low=0.0)
        min_share = validate.number(self.min_share, "min_share", low=0.0)
        if min_share * m > 1:
            raise ValueError(
                f"min_share: {min_share} x {m} models exceeds the whole capacity; expected <= {1 / m:.4g}"
            )
        if self.latency not in LATENCY_READINGS:
            raise ValueError(f"latency: expected one of {LATENCY_READINGS}, got {self.latency!r}")
        if self.utility not in UTILITY_READINGS:
            raise ValueError(f"utility: expected one of {UTILITY_READINGS}, got {self.utility!r}")
        if self.saturation_steps is not None:
            object.__setattr__(
                self,
                "saturation_steps",
                validate.number(self.saturation_steps, "saturation_steps", low=0.0, low_open=True),
            )
        object.__setattr__(self, "n_tasks", n_tasks)
        object.__setattr__(self, "step_options", options)
        for name, arr in values.items():
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "capacity_tflops", capacity)
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "min_share", min_share)

    @property
    def n_models(self) -> int:
        """Number of models M."""
        return int(self.n_tasks.size)

    @property
    def total_tasks(self) -> int:
        """|N|, the tasks of the slot."""
        return int(self.n_tasks.sum())

    @property
    def active(self) -> np.ndarray:
        """Boolean mask of the models that have tasks, shape (M,)."""
        return self.n_tasks > 0

    @property
    def min_compute(self) -> float:
        """The least compute a model with tasks gets, ``min_share * C`` in TFLOPS."""
        return self.min_share * self.capacity_tflops

    def work_tflop(self, steps: Any) -> np.ndarray:
        """Work per image W_m(z_m) = z_m F_m + F0_m in TFLOP, shape (M,)."""
        return np.asarray(steps, dtype=float) * self.tflop_per_step + self.tflop_fixed

    def estimated_score(self, steps: Any) -> np.ndarray:
        """Estimated CLIPScore shat_m(z_m) = a_m ln z_m + b_m (z capped at ``saturation_steps``), shape (M,)."""
        z = np.asarray(steps, dtype=float)
        if self.saturation_steps is not None:
            z = np.minimum(z, self.saturation_steps)
        return self.score_a * np.log(z) + self.score_b

    @property
    def gain_weights(self) -> np.ndarray:
        """g_m: the weight of model m's estimated score in U, shape (M,); 0 for a model without tasks.

        ``utility="per_task"``: N_m / |N|; ``"per_model"``: 1 / (models with tasks).
        """
        n = self.n_tasks.astype(float)
        if self.utility == "per_task":
            return n / max(self.total_tasks, 1)
        return np.where(n > 0, 1.0, 0.0) / max(int(self.active.sum()), 1)

    @property
    def queue_weights(self) -> np.ndarray:
        """q_m: the weight of model m's seconds per image t_m in the latency term of U, shape (M,).

        The latency term is lambda sum_m q_m t_m: q_m = g_m (N_m + 1)/2 under ``latency="fifo"``
        (the mean task waits for half the queue), q_m = g_m under ``"per_image"``.
        """
        if self.latency == "fifo":
            return self.gain_weights * (self.n_tasks + 1) / 2
        return self.gain_weights

    @cached_property
    def tables(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Per model and allowed step count: score gain G, latency load R and cost Q = lambda R.

        U = sum_m G_m(z_m) - sum_m Q_m(z_m) / c_m with G_m = g_m shat_m(z_m) and R_m = q_m
        W_m(z_m) (:attr:`gain_weights`, :attr:`queue_weights`). Every solver works on these lists
        (one array per model, one entry per allowed step count).
        """
        gains, loads, costs = [], [], []
        g, q = self.gain_weights, self.queue_weights
        for m, z in enumerate(self.step_options):
            zs = np.minimum(z, self.saturation_steps) if self.saturation_steps is not None else z
            gains.append(g[m] * (self.score_a[m] * np.log(zs) + self.score_b[m]))
            load = q[m] * (z * self.tflop_per_step[m] + self.tflop_fixed[m])
            loads.append(load)
            costs.append(self.weight * load)
        return gains, loads, costs


@dataclass(frozen=True, eq=False)
class Allocation:
    """A step count and compute share per model, with what they cost (SPEC section 2).

    ``steps`` z_m (int, shape (M,); a model without tasks reports its smallest allowed count);
    ``compute_tflops`` c_m (TFLOPS; 0 for a model without tasks); ``utility`` U of eq. 11
    (CLIPScore points; 0 for a slot without tasks); ``seconds_per_image`` t_m = W_m / c_m;
    ``makespan`` N_m t_m (seconds); ``mean_latency`` (N_m + 1)/2 t_m (seconds); the last three are
    NaN, 0 and NaN for a model without tasks. ``method``: which solver produced it. ``trace``: for
    :func:`simulated_annealing` with ``trace=True``, a DataFrame with one row per iteration
    (iteration, temperature, utility of the current state, best utility so far); else None.
    """

    steps: np.ndarray
    compute_tflops: np.ndarray
    utility: float
    seconds_per_image: np.ndarray
    makespan: np.ndarray
    mean_latency: np.ndarray
    method: str = ""
    trace: pd.DataFrame | None = None


# --- utility and the closed-form split ----------------------------------------------------------


def utility(problem: AllocationProblem, steps: Any, compute: Any) -> float:
    """Utility U(z, c) of SPEC eq. 11 in CLIPScore points (mean estimated score minus lambda x mean latency).

    ``steps``: z_m per model, each in the model's step set. ``compute``: c_m per model in TFLOPS,
    >= 0, summing to at most C, and > 0 for every model with tasks (the ``min_share`` floor is a
    constraint of the solvers, not checked here). Under the default readings latency is the FIFO
    latency of SPEC section 2: the mean task of model m waits (N_m + 1)/2 x W_m(z_m)/c_m seconds;
    in general U = sum_m [g_m shat_m - lambda q_m W_m / c_m] with the problem's
    :attr:`~AllocationProblem.gain_weights` and :attr:`~AllocationProblem.queue_weights`.
    A slot without tasks has U = 0.

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    _check_problem(problem)
    steps = _check_steps(problem, steps)
    compute = _check_compute(problem, compute)
    return _utility(problem, steps, compute)


def _utility(problem: AllocationProblem, steps: np.ndarray, compute: np.ndarray) -> float:
    if problem.total_tasks == 0:
        return 0.0
    active = problem.active
    score = problem.gain_weights[active] * problem.estimated_score(steps)[active]
    latency = problem.queue_weights[active] * problem.work_tflop(steps)[active] / compute[active]
    return float(score.sum() - problem.weight * latency.sum())


def optimal_compute(problem: AllocationProblem, steps: Any) -> np.ndarray:
    """The best compute split for fixed steps, in TFLOPS, shape (M,) (ours; SPEC section 2 "Exact solution").

    Minimises sum_m R_m / c_m, R_m = q_m W_m(z_m) (q_m = N_m (N_m + 1) / (2 |N|) under the default
    readings), subject to sum c = C and c_m >= L =
    min_share x C for models with tasks. KKT (the problem is convex): c_m = max(L, s sqrt(R_m)) with
    s chosen so the shares sum to C ("water-filling"); with L = 0 this is SPEC's Cauchy-Schwarz split
    c_m = C sqrt(R_m) / sum_j sqrt(R_j). Models without tasks get 0.

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    _check_problem(problem)
    steps = _check_steps(problem, steps)
    compute = np.zeros(problem.n_models)
    active = problem.active
    if not active.any():
        return compute
    root = np.sqrt(problem.queue_weights[active] * problem.work_tflop(steps)[active])
    compute[active] = _water_fill(root[None, :], problem.capacity_tflops, problem.min_compute)[0]
    return compute


def _water_fill(root: np.ndarray, total: float, floor: float) -> np.ndarray:
    """Rows of c = max(floor, s sqrt(R)) summing to ``total``; ``root`` is sqrt(R) > 0, shape (P, A).

    Sort each row ascending; clamping the k smallest at ``floor`` gives s_k = (total - k floor) /
    sum_{j >= k} root_j. The answer is the first k whose smallest unclamped share root_k s_k is at
    least ``floor`` (clamping only lowers s, so the clamped set grows in sorted order); k = A - 1
    always qualifies because A x floor <= total.
    """
    p, a = root.shape
    ordered = np.sort(root, axis=1)
    tail = np.cumsum(ordered[:, ::-1], axis=1)[:, ::-1]
    scale = (total - floor * np.arange(a)) / tail
    qualifies = ordered * scale >= floor
    qualifies[:, -1] = True
    first = np.argmax(qualifies, axis=1)
    chosen = scale[np.arange(p), first]
    return np.maximum(root * chosen[:, None], floor)


def evaluate(problem: AllocationProblem, steps: Any, compute: Any, method: str = "") -> Allocation:
    """An :class:`Allocation` for given steps and compute: utility, time per image, makespan, mean latency.

    Units as in :class:`Allocation`; validation as in :func:`utility`.
    """
    _check_problem(problem)
    steps = _check_steps(problem, steps)
    compute = _check_compute(problem, compute)
    return _allocation(problem, steps, compute, method)


def _allocation(
    problem: AllocationProblem,
    steps: np.ndarray,
    compute: np.ndarray,
    method: str,
    trace: pd.DataFrame | None = None,
) -> Allocation:
    active = problem.active
    steps = np.where(active, steps, [opts[0] for opts in problem.step_options]).astype(np.int64)
    compute = np.where(active, compute, 0.0)
    seconds = np.full(problem.n_models, np.nan)
    seconds[active] = problem.work_tflop(steps)[active] / compute[active]
    n = problem.n_tasks.astype(float)
    makespan = np.where(active, n * np.nan_to_num(seconds), 0.0)
    wait = (n + 1) / 2 if problem.latency == "fifo" else np.ones_like(n)
    mean_latency = np.where(active, wait * seconds, np.nan)
    return Allocation(
        steps=steps,
        compute_tflops=compute,
        utility=_utility(problem, steps, compute),
        seconds_per_image=seconds,
        makespan=makespan,
        mean_latency=mean_latency,
        method=method,
        trace=trace,
    )


def _empty(problem: AllocationProblem, method: str) -> Allocation:
    return _allocation(
        problem, np.array([o[0] for o in problem.step_options]), np.zeros(problem.n_models), method
    )


# --- the exact solver ---------------------------------------------------------------------------


def solve_exact(problem: AllocationProblem) -> Allocation:
    """The global optimum of eq. 11: every step combination, each with its closed-form compute split (ours).

    Enumerates the step sets of the models with tasks (prod_m |Z_m| combinations, vectorised) and
    splits compute by :func:`optimal_compute` for each; ties go to the first combination in
    lexicographic order of step indices. Refuses (``ValueError``) above
    :data:`MAX_EXACT_COMBINATIONS` combinations: use :func:`simulated_annealing` there.

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    _check_problem(problem)
    active = np.flatnonzero(problem.active)
    if active.size == 0:
        return _empty(problem, "exact")
    gains, loads, costs = problem.tables
    sizes = [len(problem.step_options[m]) for m in active]
    combos = math.prod(sizes)
    if combos > MAX_EXACT_COMBINATIONS:
        raise ValueError(
            f"problem: {combos:,} step combinations exceed solve_exact's limit of "
            f"{MAX_EXACT_COMBINATIONS:,}; use simulated_annealing(problem, rng) for a problem this large"
        )
    capacity, floor = problem.capacity_tflops, problem.min_compute
    best_value, best_index = -np.inf, 0
    for start in range(0, combos, _CHUNK):
        flat = np.arange(start, min(start + _CHUNK, combos))
        index = np.unravel_index(flat, sizes)
        gain = sum(gains[m][i] for m, i in zip(active, index))
        root = np.stack([np.sqrt(loads[m][i]) for m, i in zip(active, index)], axis=1)
        compute = _water_fill(root, capacity, floor)
        cost = np.stack([costs[m][i] for m, i in zip(active, index)], axis=1) / compute
        value = gain - cost.sum(axis=1)
        k = int(np.argmax(value))
        if value[k] > best_value:
            best_value, best_index = float(value[k]), int(flat[k])
    chosen = np.unravel_index(best_index, sizes)
    steps = np.array([o[0] for o in problem.step_options])
    for m, i in zip(active, chosen):
        steps[m] = problem.step_options[m][int(i)]
    return _allocation(problem, steps, optimal_compute(problem, steps), "exact")


# --- Algorithm 1: simulated annealing -----------------------------------------------------------


def simulated_annealing(
    problem: AllocationProblem,
    rng: np.random.Generator,
    *,
    initial_temperature: float = 1.0,
    cooling: float = 0.9,
    final_temperature: float = 1e-4,
    moves_per_temperature: int = 20,
    step_move_probability: float = 0.5,
    shift: float = 0.25,
    final_shift: float = 0.002,
    trace: bool = False,
) -> Allocation:
    """Step selection and compute allocation by simulated annealing: the paper's Algorithm 1.

    State (z, c) over the models with tasks; start: each model's middle allowed step count and an
    equal compute split. Each iteration proposes one move: with probability
    ``step_move_probability`` one random model's steps go to a neighbouring allowed value (up or
    down at random, reflected at the ends of its step set); otherwise a random amount,
    uniform in (0, shift_T x C], of compute moves from one random model to another (sum c = C is
    kept; a move that would leave a model below ``min_share`` x C is rejected). A move is accepted
    if it does not lower U (eq. 11) or with the Metropolis probability exp(dU / T). The temperature
    starts at ``initial_temperature`` (CLIPScore points), is multiplied by ``cooling`` after every
    ``moves_per_temperature`` moves and the run stops once it falls below ``final_temperature``
    (88 temperatures x 20 = 1760 moves with the defaults). The compute move size shrinks
    geometrically with the temperature, from ``shift`` x C at the start to ``final_shift`` x C at
    the end. Returns the best state seen. ``rng``: a ``numpy.random.Generator``; all random numbers
    are drawn from it up front, so the same generator state gives the same answer.
    ``trace=True`` adds a per-iteration DataFrame (``Allocation.trace``).

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    _check_problem(problem)
    validate.generator(rng)
    t0 = validate.number(initial_temperature, "initial_temperature", low=0.0, low_open=True)
    alpha = validate.number(cooling, "cooling", low=0.0, low_open=True)
    if alpha >= 1:
        raise ValueError(f"cooling: expected a factor in (0, 1), got {alpha}")
    t_min = validate.number(final_temperature, "final_temperature", low=0.0, low_open=True)
    if t_min >= t0:
        raise ValueError(f"final_temperature: expected < initial_temperature ({t0}), got {t_min}")
    if (
        isinstance(moves_per_temperature, bool)
        or not isinstance(moves_per_temperature, (int, np.integer))
        or moves_per_temperature < 1
    ):
        raise ValueError(
            f"moves_per_temperature: expected a whole number >= 1, got {moves_per_temperature!r}"
        )
    p_step = validate.number(step_move_probability, "step_move_probability", low=0.0)
    if p_step > 1:
        raise ValueError(f"step_move_probability: expected a probability in [0, 1], got {p_step}")
    shift0 = validate.number(shift, "shift", low=0.0, low_open=True)
    shift1 = validate.number(final_shift, "final_shift", low=0.0, low_open=True)
    if shift0 > 1 or shift1 > shift0:
        raise ValueError(
            f"final_shift: expected 0 < final_shift <= shift <= 1, got {shift1} and {shift0}"
        )

    active = np.flatnonzero(problem.active)
    if active.size == 0:
        return _empty(problem, "annealing")
    gains, _, costs = problem.tables
    gain = [gains[m].tolist() for m in active]
    cost = [costs[m].tolist() for m in active]
    n_options = [len(g) for g in gain]
    a = active.size
    capacity = problem.capacity_tflops
    floor = max(problem.min_compute, 1e-12 * capacity)

    n_temps = max(1, math.ceil(math.log(t_min / t0) / math.log(alpha)))
    temps = t0 * alpha ** np.arange(n_temps)
    exponent = math.log(shift1 / shift0) / math.log(temps[-1] / t0) if n_temps > 1 else 0.0
    shifts = (shift0 * (temps / t0) ** exponent * capacity).tolist()
    temps = temps.tolist()
    n_iter = n_temps * moves_per_temperature

    movable = [i for i in range(a) if n_options[i] > 1]
    if not movable:
        p_step = 0.0
    if a == 1:
        p_step = 1.0 if movable else 0.0
    draws = rng.random((n_iter, 4)).tolist()

    z = [n // 2 for n in n_options]
    c = [capacity / a] * a
    current = sum(gain[i][z[i]] - cost[i][z[i]] / c[i] for i in range(a))
    best, best_z, best_c = current, z[:], c[:]
    record_t, record_u, record_b = ([], [], []) if trace else (None, None, None)
    n_movable = len(movable)
    exp = math.exp

    for it in range(n_iter):
        level = it // moves_per_temperature
        temp = temps[level]
        u_kind, u_which, u_size, u_accept = draws[it]
        if u_kind < p_step:  # step move: one model's steps to a neighbouring allowed value
            i = movable[int(u_which * n_movable)]
            old = z[i]
            new = old + (1 if u_size < 0.5 else -1)
            if new < 0 or new >= n_options[i]:
                new = 2 * old - new
            delta = gain[i][new] - gain[i][old] - (cost[i][new] - cost[i][old]) / c[i]
            if delta >= 0 or u_accept < exp(delta / temp):
                z[i] = new
                current += delta
        elif a > 1:  # compute move: shift an amount from model i to model j
            pair = int(u_which * a * (a - 1))
            i, j = divmod(pair, a - 1)
            j += j >= i
            amount = u_size * shifts[level]
            ci, cj = c[i] - amount, c[j] + amount
            if ci >= floor:
                delta = (
                    cost[i][z[i]] / c[i]
                    - cost[i][z[i]] / ci
                    + cost[j][z[j]] / c[j]
                    - cost[j][z[j]] / cj
                )
                if delta >= 0 or u_accept < exp(delta / temp):
                    c[i], c[j] = ci, cj
                    current += delta
        if current > best:
            best, best_z, best_c = current, z[:], c[:]
        if trace:
            record_t.append(temp)
            record_u.append(current)
            record_b.append(best)

    steps = np.array([o[0] for o in problem.step_options])
    compute = np.zeros(problem.n_models)
    for i, m in enumerate(active):
        steps[m] = problem.step_options[m][best_z[i]]
        compute[m] = best_c[i]
    compute[active] *= capacity / compute[active].sum()  # undo rounding drift of the shifts
    frame = None
    if trace:
        frame = pd.DataFrame(
            {
                "iteration": np.arange(n_iter),
                "temperature": record_t,
                "utility": record_u,
                "best_utility": record_b,
            }
        )
    return _allocation(problem, steps, compute, "annealing", frame)


# --- baselines ----------------------------------------------------------------------------------


def equal_allocation(problem: AllocationProblem) -> Allocation:
    """Equal-allocation baseline: c_m = C / (models with tasks), then the best steps for that split.

    With compute fixed, eq. 11 separates by model, so each model takes the step count maximising
    N_m shat_m(z) - lambda N_m (N_m + 1)/2 W_m(z)/c_m (first such count on ties).

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    _check_problem(problem)
    active = np.flatnonzero(problem.active)
    if active.size == 0:
        return _empty(problem, "equal")
    gains, _, costs = problem.tables
    share = problem.capacity_tflops / active.size
    steps = np.array([o[0] for o in problem.step_options])
    compute = np.zeros(problem.n_models)
    for m in active:
        steps[m] = problem.step_options[m][int(np.argmax(gains[m] - costs[m] / share))]
        compute[m] = share
    return _allocation(problem, steps, compute, "equal")


def optimal_step(problem: AllocationProblem, tolerance: float = 0.0) -> Allocation:
    """Optimal-step baseline: each model runs the step count that maximises its estimated score.

    Per model, the smallest allowed z with shat_m(z) >= max_z shat_m(z) - ``tolerance``
    (CLIPScore points, >= 0; 0 gives the best-scoring z, the largest one when a_m > 0); compute is
    then split optimally for those steps (:func:`optimal_compute`).

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    _check_problem(problem)
    tol = validate.number(tolerance, "tolerance", low=0.0)
    active = np.flatnonzero(problem.active)
    if active.size == 0:
        return _empty(problem, "optimal_step")
    steps = np.array([o[0] for o in problem.step_options])
    for m in active:
        z = problem.step_options[m]
        capped = (
            np.minimum(z, problem.saturation_steps) if problem.saturation_steps is not None else z
        )
        score = problem.score_a[m] * np.log(capped) + problem.score_b[m]
        steps[m] = z[int(np.argmax(score >= score.max() - tol))]
    return _allocation(problem, steps, optimal_compute(problem, steps), "optimal_step")


# --- a general-purpose annealer as a second opinion ---------------------------------------------


def dual_annealing_allocation(
    problem: AllocationProblem, rng: np.random.Generator, maxiter: int = 100
) -> Allocation:
    """Solve eq. 11 with ``scipy.optimize.dual_annealing``: a general-purpose annealer as a second opinion.

    Search space (ours): one continuous step index per model with tasks and several step options
    (floored onto its step set) and one weight w_m in [1e-6, 1] per model with tasks, mapped to
    compute c_m = L + (C - A L) w_m / sum_j w_j (L = min_share x C, A models with tasks), so
    every point is feasible. ``maxiter``: dual annealing's global iterations (each followed by a
    local search). Returns an :class:`~aigc_lib.allocation.Allocation` with method
    ``"dual_annealing"``. ``rng``: a ``numpy.random.Generator``.
    """
    from scipy.optimize import dual_annealing

    _check_problem(problem)
    validate.generator(rng)
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise ValueError(f"maxiter: expected a whole number >= 1, got {maxiter!r}")
    active = np.flatnonzero(problem.active)
    lowest = np.array([o[0] for o in problem.step_options])
    if active.size == 0:
        return evaluate(problem, lowest, np.zeros(problem.n_models), "dual_annealing")
    all_gains, _, all_costs = problem.tables  # per model and step option: score gain, lambda x load
    gains = [all_gains[m].tolist() for m in active]
    costs = [all_costs[m].tolist() for m in active]
    sizes = [len(g) for g in gains]
    multi = [i for i, s in enumerate(sizes) if s > 1]
    a = active.size
    floor, spare = problem.min_compute, problem.capacity_tflops - a * problem.min_compute

    def state(x: np.ndarray) -> tuple[list[int], np.ndarray]:
        index = [0] * a
        for k, i in enumerate(multi):
            index[i] = min(int(x[k]), sizes[i] - 1)
        w = x[len(multi) :] if a > 1 else np.ones(1)
        return index, floor + spare * w / w.sum()

    def negative_utility(x: np.ndarray) -> float:
        index, compute = state(x)
        return -sum(gains[i][index[i]] - costs[i][index[i]] / compute[i] for i in range(a))

    bounds = [(0.0, sizes[i] - 1e-9) for i in multi] + ([(1e-6, 1.0)] * a if a > 1 else [])
    if not bounds:  # nothing to choose: every model has one step count and there is one model
        index, compute_active = [0] * a, np.array([problem.capacity_tflops])
    else:
        found = dual_annealing(negative_utility, bounds, maxiter=int(maxiter), rng=rng)
        index, compute_active = state(found.x)
    steps = lowest.copy()
    compute = np.zeros(problem.n_models)
    for i, m in enumerate(active):
        steps[m] = problem.step_options[m][index[i]]
    compute[active] = compute_active * problem.capacity_tflops / compute_active.sum()
    return evaluate(problem, steps, compute, "dual_annealing")


# --- random problems for tests, benchmarks and exercises ----------------------------------------


def random_problem(
    rng: np.random.Generator, n_models: int = 3, n_tasks: int | None = None
) -> AllocationProblem:
    """A random but realistic :class:`AllocationProblem` around the default scenario (SPEC section 4).

    Model 0 is a 1-step model (SDXL-Turbo-like, ~1.6 TFLOP per step, ~2.6 fixed); the others run
    10, 14, ..., 42 steps with per-step work between ~1 and ~20 TFLOP rising with the model's rank,
    fixed work 2 to 11 TFLOP, slopes a_m in [0.3, 2.5] and offsets b_m in [26, 34] CLIPScore points.
    Slot size ``n_tasks`` (default uniform in [5, 60]) is split over the models by a Dirichlet
    multinomial (a model may get no tasks); C in [20, 60] TFLOPS; lambda in [0.05, 0.5];
    min_share one of 0, 0.01, 0.05.

    Used by ``tests/`` and ``benchmarks/``; taught in
    ``notebooks/04_step_selection_and_resource_allocation.ipynb`` (exercises).
    """
    validate.generator(rng)
    if (
        isinstance(n_models, bool)
        or not isinstance(n_models, (int, np.integer))
        or not 2 <= n_models <= 8
    ):
        raise ValueError(f"n_models: expected a whole number from 2 to 8, got {n_models!r}")
    total = int(rng.integers(5, 61)) if n_tasks is None else int(n_tasks)
    if total < 0:
        raise ValueError(f"n_tasks: expected a whole number >= 0, got {n_tasks}")
    counts = rng.multinomial(total, rng.dirichlet(np.full(n_models, 2.0)))
    rank = np.arange(n_models) / (n_models - 1)
    steps = [(1,)] + [tuple(range(10, 43, 4))] * (n_models - 1)
    per_step = np.exp(np.log(1.0) + rank * np.log(15.0) + rng.normal(0, 0.25, n_models))
    per_step[0] = rng.uniform(1.4, 1.8)
    return AllocationProblem(
        n_tasks=counts,
        step_options=steps,
        tflop_per_step=per_step,
        tflop_fixed=rng.uniform(2.0, 3.0, n_models) + rank * 8.0,
        score_a=np.concatenate([[0.0], rng.uniform(0.3, 2.5, n_models - 1)]),
        score_b=rng.uniform(26.0, 34.0, n_models),
        capacity_tflops=float(rng.uniform(20.0, 60.0)),
        weight=float(rng.uniform(0.05, 0.5)),
        min_share=float(rng.choice([0.0, 0.01, 0.05])),
    )


# --- validation helpers -------------------------------------------------------------------------


def _check_problem(problem: Any) -> None:
    if not isinstance(problem, AllocationProblem):
        raise ValueError(f"problem: expected an AllocationProblem, got {type(problem).__name__}")


def _task_counts(values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"n_tasks: expected whole numbers, one per model, got {values!r}"
        ) from None
    if arr.ndim != 1 or not 2 <= arr.size <= 8:
        raise ValueError(
            f"n_tasks: expected one count per model for 2 to 8 models, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ValueError(f"n_tasks: expected whole numbers (no NaN), got {arr.tolist()}")
    if np.any(arr < 0):
        raise ValueError(f"n_tasks: expected counts >= 0, got {arr.tolist()}")
    return arr.astype(np.int64)


def _step_options(values: Any, m: int) -> tuple[np.ndarray, ...]:
    if (
        isinstance(values, (str, bytes))
        or not isinstance(values, Sequence | np.ndarray)
        or len(values) != m
    ):
        raise ValueError(
            f"step_options: expected one sequence of allowed step counts per model ({m} models)"
        )
    out = []
    for i, opts in enumerate(values):
        try:
            arr = np.atleast_1d(np.asarray(opts, dtype=float))
        except (TypeError, ValueError):
            raise ValueError(
                f"step_options: model {i}: expected step counts, got {opts!r}"
            ) from None
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"step_options: model {i}: expected a non-empty set of step counts")
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 1):
            raise ValueError(
                f"step_options: model {i}: expected positive whole numbers, got {arr.tolist()}"
            )
        z = np.unique(arr.astype(np.int64))
        z.setflags(write=False)
        out.append(z)
    return tuple(out)


def _per_model(
    values: Any, name: str, m: int, low: float | None = None, low_open: bool = True
) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers, one per model, got {values!r}") from None
    if arr.shape != (m,):
        raise ValueError(f"{name}: expected {m} values (one per model), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite numbers (no NaN or inf), got {arr.tolist()}")
    if low is not None and np.any(arr <= low if low_open else arr < low):
        raise ValueError(
            f"{name}: expected values {'>' if low_open else '>='} {low}, got {arr.tolist()}"
        )
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


def _check_steps(problem: AllocationProblem, steps: Any) -> np.ndarray:
    try:
        arr = np.asarray(steps, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"steps: expected one step count per model, got {steps!r}") from None
    if arr.shape != (problem.n_models,):
        raise ValueError(
            f"steps: expected {problem.n_models} step counts (one per model), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"steps: expected finite step counts, got {arr.tolist()}")
    for m, (z, opts) in enumerate(zip(arr, problem.step_options)):
        if z not in opts:
            raise ValueError(f"steps: model {m} runs {z:g} steps, expected one of {opts.tolist()}")
    return arr.astype(np.int64)


def _check_compute(problem: AllocationProblem, compute: Any) -> np.ndarray:
    try:
        arr = np.asarray(compute, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"compute: expected TFLOPS per model, got {compute!r}") from None
    if arr.shape != (problem.n_models,):
        raise ValueError(
            f"compute: expected {problem.n_models} values (one per model), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"compute: expected finite TFLOPS >= 0, got {arr.tolist()}")
    if arr.sum() > problem.capacity_tflops * (1 + _SUM_TOLERANCE):
        raise ValueError(
            f"compute: sums to {arr.sum():.6g} TFLOPS, more than capacity_tflops = {problem.capacity_tflops:.6g}"
        )
    if np.any(arr[problem.active] <= 0):
        raise ValueError("compute: every model with tasks needs compute > 0")
    return arr
