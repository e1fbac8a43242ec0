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
  water-filling), so enumerating the step combinations gives the global optimum; above 1,000
  combinations a Lagrangian bound that separates by model leaves only a handful of step choices to
  score (:func:`bound_search`, docs/SPEC.md section 2a): the exact optimum for up to 12 models in
  about a millisecond.
- :func:`equal_allocation` and :func:`optimal_step` are the paper's baselines.

Units: TFLOP (work), TFLOPS (compute), seconds (time), CLIPScore points (score, utility), lambda in
CLIPScore points per second. Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``
and (the bound, many models) ``notebooks/05_beyond_the_paper.ipynb``.
"""

from __future__ import annotations

import dataclasses
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
    "MAX_MODELS",
    "EXACT_METHODS",
    "ENUMERATION_LIMIT",
    "MAX_EXACT_COMBINATIONS",
    "MAX_ANNEALING_ITERATIONS",
    "BoundSearch",
    "utility",
    "optimal_compute",
    "evaluate",
    "solve_exact",
    "bound_search",
    "dual_bound",
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

MAX_MODELS = 12
"""The most models an :class:`AllocationProblem` may have (the bound method is measured up to it)."""

EXACT_METHODS = ("auto", "enumerate", "bound")
"""How :func:`solve_exact` searches: pick by size, enumerate every combination, or bound."""

ENUMERATION_LIMIT = 1000
"""``solve_exact(method="auto")`` enumerates up to this many step combinations, bounds above."""

MAX_EXACT_COMBINATIONS = 10**6
"""The largest number of step combinations ``solve_exact(method="enumerate")`` scores."""

MAX_ANNEALING_ITERATIONS = 10**7
"""The most iterations :func:`simulated_annealing` runs (temperatures x moves per temperature)."""

_CHUNK = 1 << 16  # step combinations evaluated per vectorised block in solve_exact
_DRAW_BLOCK = 1 << 16  # annealing iterations whose random numbers are drawn at once
_TIE_TOLERANCE = 1e-12  # relative: utilities this close are ties (the first in order wins)
_GAP_TOLERANCE = 1e-9  # relative slack on the duality gap, so rounding never drops the optimum
_NU_GRID = 17  # multipliers per grid (a coarse log grid, then two zooms)
_NU_ZOOMS = 2
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
    gets at least ``min_share * C`` (0 <= min_share, min_share x models <= 1). 2 to
    :data:`MAX_MODELS` (12) models.
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

    def with_tasks(self, n_tasks: Any, score_a: Any, score_b: Any) -> "AllocationProblem":
        """This problem for another slot: other tasks per model and score curves (checked as in
        the constructor); the steps, work, capacity, lambda and readings are this problem's, not
        checked again (:func:`aigc_lib.simulation.simulate` poses one problem per slot this way).
        """
        n_tasks = _task_counts(n_tasks)
        if n_tasks.size != self.n_models:
            raise ValueError(f"n_tasks: expected {self.n_models} counts, got {n_tasks.size}")
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["n_tasks"] = n_tasks
        fields["score_a"] = _per_model(score_a, "score_a", self.n_models)
        fields["score_b"] = _per_model(score_b, "score_b", self.n_models)
        problem = object.__new__(AllocationProblem)
        problem.__dict__.update(fields)  # frozen: set as __post_init__ does, no cached values
        return problem

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


@dataclass(frozen=True, eq=False)
class BoundSearch:
    """What the bound method of :func:`solve_exact` did (docs/SPEC.md section 2a; ours).

    ``allocation``: the optimum. ``nu``: the multiplier of sum_m c_m = C at which the bound was
    taken (CLIPScore points per TFLOPS^2). ``upper``: the Lagrangian bound UB = B(nu) >= U(z) for
    every step choice z; ``lower``: the best utility among the step choices the multipliers tried
    pointed to (the incumbent LB); both CLIPScore points, so ``upper - lower`` is the duality gap.
    ``candidates``: the step choices whose bound deficit fits in the gap, all scored exactly
    (identical models counted once per multiset of options); ``combinations``: how many step
    choices full enumeration would score (after dropping dominated options); ``groups``: models
    with tasks after merging identical ones.
    """

    allocation: Allocation
    nu: float
    upper: float
    lower: float
    candidates: int
    combinations: int
    groups: int


@dataclass(frozen=True, eq=False)
class _Reduced:
    """The models with tasks and their non-dominated options, as padded (A, K) arrays."""

    active: np.ndarray  # model indices with tasks, shape (A,)
    options: list[np.ndarray]  # per active model: indices (into step_options) of kept options
    gain: np.ndarray  # G, shape (A, K), -inf where a model has fewer than K options
    load: np.ndarray  # R, shape (A, K), 1 in the padding
    cost: np.ndarray  # Q = lambda R, shape (A, K), 0 in the padding

    @property
    def sizes(self) -> list[int]:
        return [len(o) for o in self.options]


def _reduce(problem: AllocationProblem) -> _Reduced:
    """Drop dominated options: k loses to k' when G' >= G and Q' <= Q, one strictly, or both equal
    and k' comes first. U is increasing in each G_m and strictly decreasing in each Q_m (c_m <= C),
    so a dominated option is never optimal, nor first among equal optima."""
    active = np.flatnonzero(problem.active)
    gains, loads, costs = problem.tables
    kept = []
    for m in active:
        g, q = gains[m], costs[m]
        k = np.arange(g.size)
        # entry [k', k]: option k' is at least as good as k on both counts, and better on one
        weakly = (g[:, None] >= g[None, :]) & (q[:, None] <= q[None, :])
        strictly = (g[:, None] > g[None, :]) | (q[:, None] < q[None, :]) | (k[:, None] < k[None, :])
        beaten = (weakly & strictly & (k[:, None] != k[None, :])).any(axis=0)
        kept.append(np.flatnonzero(~beaten))
    width = max((o.size for o in kept), default=1)
    shape = (active.size, width)
    gain, load, cost = np.full(shape, -np.inf), np.ones(shape), np.zeros(shape)
    for i, (m, o) in enumerate(zip(active, kept)):
        gain[i, : o.size] = gains[m][o]
        load[i, : o.size] = loads[m][o]
        cost[i, : o.size] = costs[m][o]
    return _Reduced(active, kept, gain, load, cost)


def _score(problem: AllocationProblem, red: _Reduced, index: np.ndarray) -> np.ndarray:
    """U of step choices, rows of ``index`` (P, A) (kept-option indices), each with its best split."""
    rows = np.arange(red.gain.shape[0])
    gain = red.gain[rows, index].sum(axis=1)
    compute = _water_fill(
        np.sqrt(red.load[rows, index]), problem.capacity_tflops, problem.min_compute
    )
    return gain - (red.cost[rows, index] / compute).sum(axis=1)


def _first_best(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The lexicographically first row of ``index`` whose value is within rounding of the best.

    Enumeration and the bound method share this rule, so they return the same steps on ties
    (identical models, whose permutations differ in U only by rounding)."""
    best = values.max()
    tied = index[values >= best - _TIE_TOLERANCE * max(1.0, abs(best))]
    return tied[np.lexsort(tied.T[::-1])[0]]


def _result(problem: AllocationProblem, red: _Reduced, chosen: np.ndarray) -> Allocation:
    steps = np.array([o[0] for o in problem.step_options])
    for m, kept, i in zip(red.active, red.options, chosen):
        steps[m] = problem.step_options[m][kept[int(i)]]
    return _allocation(problem, steps, optimal_compute(problem, steps), "exact")


def _enumerate(problem: AllocationProblem, red: _Reduced) -> Allocation:
    """Score every combination of kept options, in vectorised blocks."""
    sizes = red.sizes
    combos = math.prod(sizes)
    values = np.empty(combos)
    for start in range(0, combos, _CHUNK):
        flat = np.arange(start, min(start + _CHUNK, combos))
        values[start : start + flat.size] = _score(
            problem, red, np.stack(np.unravel_index(flat, sizes), axis=1)
        )
    best = values.max()
    first = int(np.argmax(values >= best - _TIE_TOLERANCE * max(1.0, abs(best))))
    return _result(problem, red, np.array(np.unravel_index(first, sizes)))


def _psi(red: _Reduced, nu: np.ndarray, floor: float) -> np.ndarray:
    """psi_m(k, nu) = G_m[k] - phi(r_m[k], nu), shape (N, A, K) for N multipliers (SPEC section 2a).

    phi(r, nu) = min over c >= L of r^2 / c + nu c: 2 r sqrt(nu) when the unconstrained minimiser
    r / sqrt(nu) is at least L, else r^2 / L + nu L."""
    s = np.sqrt(nu)[:, None, None]
    r = np.sqrt(red.cost)[None]
    phi = 2 * r * s
    if floor > 0:
        with np.errstate(over="ignore"):  # a tiny floor: the branch not taken may overflow
            phi = np.where(r >= floor * s, phi, red.cost[None] / floor + s * s * floor)
    return red.gain[None] - phi


def _bound_search(problem: AllocationProblem, red: _Reduced) -> BoundSearch:
    """The Lagrangian bound with enumeration inside the duality gap (docs/SPEC.md section 2a)."""
    capacity, floor = problem.capacity_tflops, problem.min_compute
    a = red.gain.shape[0]
    r = np.sqrt(red.cost)
    valid = np.isfinite(red.gain)
    nus = np.zeros(1)
    if r.max() > 0:  # else lambda = 0: the latency term vanishes and nu = 0 is optimal
        # B(nu) falls while sqrt(nu) < sum_m min_k r_m / C and rises once sqrt(nu) > A max r / C
        low = np.where(valid, r, np.inf).min(axis=1).sum() / capacity
        high = a * r.max() / capacity
        nus = np.geomspace(low, high, _NU_GRID) ** 2
    tried, best_nu, best_b = [], 0.0, np.inf
    for _ in range(_NU_ZOOMS + 1):
        psi = _psi(red, nus, floor)
        top = psi.max(axis=2)
        bound = top.sum(axis=1) + nus * capacity
        tried.append(psi.argmax(axis=2))
        i = int(np.argmin(bound))
        if bound[i] < best_b:
            best_b, best_nu = float(bound[i]), float(nus[i])
        if nus.size == 1:
            break
        nus = np.geomspace(nus[max(i - 1, 0)], nus[min(i + 1, nus.size - 1)], _NU_GRID)
    incumbents = np.unique(np.concatenate(tried), axis=0)
    values = _score(problem, red, incumbents)
    lower = float(values.max())
    psi = _psi(red, np.array([best_nu]), floor)[0]
    deficit = psi.max(axis=1, keepdims=True) - psi  # d_m(k) >= 0, inf in the padding
    upper = best_b
    budget = upper - lower + _GAP_TOLERANCE * (1.0 + abs(upper) + abs(lower) + best_nu * capacity)
    index, n_groups = _candidates(red, deficit, budget)
    values = np.concatenate(
        [_score(problem, red, index[i : i + _CHUNK]) for i in range(0, len(index), _CHUNK)]
    )
    chosen = _first_best(values, index)
    return BoundSearch(
        allocation=_result(problem, red, chosen),
        nu=best_nu,
        upper=upper,
        lower=lower,
        candidates=int(len(index)),
        combinations=math.prod(red.sizes),
        groups=n_groups,
    )


def _candidates(red: _Reduced, deficit: np.ndarray, budget: float) -> tuple[np.ndarray, int]:
    """Every step choice with sum_m d_m(z_m) <= budget, identical models merged: shape (P, A).

    Models with the same gains and loads are one group; a group of n models takes a multiset of
    options (how many models take each option), written out as the ascending arrangement, the
    lexicographically first of its permutations. Groups are combined one by one, dropping every
    partial choice whose deficit already exceeds the budget (deficits are >= 0)."""
    a = red.gain.shape[0]
    keys: dict[bytes, list[int]] = {}
    for i in range(a):
        keys.setdefault(red.gain[i].tobytes() + red.load[i].tobytes(), []).append(i)
    cost = np.zeros(1)
    index = np.zeros((1, a), dtype=np.int64)
    for members in keys.values():
        g_cost, g_index = _multisets(deficit[members[0]], len(members), budget)
        fits = cost[:, None] + g_cost[None, :] <= budget
        rows, cols = np.nonzero(fits)
        cost = cost[rows] + g_cost[cols]
        index = index[rows]
        index[:, members] = g_index[cols]
    return index, len(keys)


def _multisets(deficit: np.ndarray, n: int, budget: float) -> tuple[np.ndarray, np.ndarray]:
    """The ways n identical models can take options with total deficit <= budget.

    Returns (costs, arrangements): arrangement rows are option indices in ascending order."""
    finite = np.flatnonzero(np.isfinite(deficit))
    order = finite[np.argsort(deficit[finite], kind="stable")]
    d = deficit[order].tolist()
    out_cost, out_counts = [], []
    counts = [0] * len(order)

    def fill(j: int, left: int, spent: float) -> None:
        if j == len(order):
            counts[0] = left
            out_cost.append(spent)
            out_counts.append(counts[:])
            return
        most = left if d[j] <= 0 else min(left, int((budget - spent) / d[j]))
        for c in range(most + 1):
            cost = spent + c * d[j]
            if cost > budget:
                break
            counts[j] = c
            fill(j + 1, left - c, cost)
        counts[j] = 0

    fill(1, n, 0.0)
    arrangements = np.array(
        [np.sort(np.repeat(order, c)) for c in out_counts], dtype=np.int64
    ).reshape(len(out_counts), n)
    return np.array(out_cost), arrangements


def solve_exact(problem: AllocationProblem, method: str = "auto") -> Allocation:
    """The global optimum of eq. 11 (ours): every step choice is settled, with its closed-form split.

    For fixed steps the best compute split is closed form (:func:`optimal_compute`). Options a
    model can never prefer (another has at least its gain at most its cost) are dropped first.
    ``method``: ``"enumerate"`` scores every remaining step combination (prod_m |Z_m|, vectorised;
    refused with a ``ValueError`` above :data:`MAX_EXACT_COMBINATIONS`); ``"bound"`` takes a
    Lagrangian upper bound on U that separates by model and scores only the step choices that
    can beat the best one found so far (:func:`bound_search`, docs/SPEC.md section 2a; exact, and
    milliseconds for up to 12 models); ``"auto"`` (default) enumerates up to
    :data:`ENUMERATION_LIMIT` combinations, where that is faster, and bounds above. Every method
    returns the same optimum; ties go to the first step choice in lexicographic order of step
    indices (up to rounding: values within 1e-12 relative count as equal).

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb`` (enumeration) and
    ``notebooks/05_beyond_the_paper.ipynb`` (the bound).
    """
    _check_problem(problem)
    if method not in EXACT_METHODS:
        raise ValueError(f"method: expected one of {EXACT_METHODS}, got {method!r}")
    if not problem.active.any():
        return _empty(problem, "exact")
    red = _reduce(problem)
    combos = math.prod(red.sizes)
    if method == "enumerate" and combos > MAX_EXACT_COMBINATIONS:
        raise ValueError(
            f"problem: {combos:,} step combinations exceed the enumeration limit of "
            f"{MAX_EXACT_COMBINATIONS:,}; use solve_exact(problem) (the bound method) or "
            "simulated_annealing(problem, rng) for a problem this large"
        )
    if method == "enumerate" or (method == "auto" and combos <= ENUMERATION_LIMIT):
        return _enumerate(problem, red)
    return _bound_search(problem, red).allocation


def bound_search(problem: AllocationProblem) -> BoundSearch:
    """:func:`solve_exact` by its bound method, with what the method did (:class:`BoundSearch`; ours).

    U(z) <= B(nu) = sum_m max_k psi_m(k, nu) + nu C for every multiplier nu >= 0 and every step
    choice z (weak duality for the compute split; docs/SPEC.md section 2a). The bound is minimised
    over nu on a log grid with two zooms; each nu tried also proposes a step choice (each model's
    best psi), and the best of those, scored exactly, is the incumbent LB. A step choice can beat
    LB only if its deficits d_m(z_m) = max_k psi_m(k, nu) - psi_m(z_m, nu) sum to at most
    UB - LB: those are enumerated (identical models as multisets) and scored exactly.

    Taught in ``notebooks/05_beyond_the_paper.ipynb``.
    """
    _check_problem(problem)
    if not problem.active.any():
        return BoundSearch(_empty(problem, "exact"), 0.0, 0.0, 0.0, 1, 1, 0)
    return _bound_search(problem, _reduce(problem))


def dual_bound(problem: AllocationProblem, nu: float) -> float:
    """The Lagrangian bound B(nu) = sum_m max_k psi_m(k, nu) + nu C, CLIPScore points (ours).

    An upper bound on U(z) of eq. 11 for every step choice z (with its best split), for every
    multiplier ``nu`` >= 0 (CLIPScore points per TFLOPS^2); convex in nu; docs/SPEC.md section 2a.
    A slot without tasks has U = 0 and B = nu C. Taught in ``notebooks/05_beyond_the_paper.ipynb``.
    """
    _check_problem(problem)
    nu = validate.number(nu, "nu", low=0.0)
    if not problem.active.any():
        return nu * problem.capacity_tflops
    psi = _psi(_reduce(problem), np.array([nu]), problem.min_compute)[0]
    return float(psi.max(axis=1).sum() + nu * problem.capacity_tflops)


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
    the end. Returns the best state seen. ``rng``: a ``numpy.random.Generator``; four random numbers
    per iteration are drawn from it in order (in blocks), so the same generator state gives the
    same answer. At most :data:`MAX_ANNEALING_ITERATIONS` iterations: parameters asking for more
    are refused (``ValueError``).
    ``trace=True`` adds a per-iteration DataFrame (``Allocation.trace``).

    The steps, each a function of its own: :func:`_annealing_schedule` (the temperatures and move
    sizes), :func:`_start_walk` (the start state), :func:`_anneal` (the Metropolis loop) and
    :func:`_annealing_allocation` (the best state as an :class:`Allocation`).

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``.
    """
    _check_problem(problem)
    validate.generator(rng)
    schedule = _annealing_schedule(
        initial_temperature,
        cooling,
        final_temperature,
        moves_per_temperature,
        step_move_probability,
        shift,
        final_shift,
    )
    active = np.flatnonzero(problem.active)
    if active.size == 0:
        return _empty(problem, "annealing")
    walk = _start_walk(problem, active, schedule)
    best_z, best_c, records = _anneal(walk, schedule, rng, trace)
    return _annealing_allocation(problem, active, best_z, best_c, records)


@dataclass(frozen=True)
class _Schedule:
    """Algorithm 1's cooling schedule, checked: T_l = t0 alpha^l for l < n_temps, moves per T."""

    t0: float
    alpha: float
    n_temps: int
    moves: int
    p_step: float
    shift0: float
    shift1: float

    @property
    def n_iter(self) -> int:
        return self.n_temps * self.moves

    def temperatures(self, capacity: float) -> tuple[list[float], list[float]]:
        """Each level's temperature (points) and largest compute move (TFLOPS, shift_T x C)."""
        temps = self.t0 * self.alpha ** np.arange(self.n_temps)
        exponent = (
            math.log(self.shift1 / self.shift0) / math.log(temps[-1] / self.t0)
            if self.n_temps > 1
            else 0.0
        )
        shifts = (self.shift0 * (temps / self.t0) ** exponent * capacity).tolist()
        return temps.tolist(), shifts


def _annealing_schedule(
    initial_temperature: Any,
    cooling: Any,
    final_temperature: Any,
    moves_per_temperature: Any,
    step_move_probability: Any,
    shift: Any,
    final_shift: Any,
) -> _Schedule:
    """The arguments of :func:`simulated_annealing` checked (``ValueError`` naming the argument)."""
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
    n_temps = max(1, math.ceil(math.log(t_min / t0) / math.log(alpha)))
    schedule = _Schedule(t0, alpha, n_temps, int(moves_per_temperature), p_step, shift0, shift1)
    if schedule.n_iter > MAX_ANNEALING_ITERATIONS:
        raise ValueError(
            f"cooling, final_temperature, initial_temperature, moves_per_temperature: "
            f"{n_temps:,} temperatures x {moves_per_temperature} moves = {schedule.n_iter:,} "
            f"iterations, more than the limit of {MAX_ANNEALING_ITERATIONS:,} "
            "(MAX_ANNEALING_ITERATIONS); cool faster (smaller cooling), stop earlier (larger "
            "final_temperature) or make fewer moves per temperature"
        )
    return schedule


@dataclass
class _Walk:
    """The annealing state over the a models with tasks, as arrays for the compiled loop.

    ``gain[i, k]``, ``cost[i, k]``: the gain and lambda x load of model i at its k-th step option
    (a x K, padded with NaN past each model's ``n_options[i]``); ``z`` the step option indices,
    ``c`` the compute shares (TFLOPS); ``movable`` the models with more than one step option;
    ``p_step`` the probability of a step move, given who can move; ``floor`` the smallest share a
    compute move may leave (TFLOPS); ``temps``, ``shifts`` per level.
    """

    gain: np.ndarray
    cost: np.ndarray
    n_options: np.ndarray
    z: np.ndarray
    c: np.ndarray
    movable: np.ndarray
    p_step: float
    floor: float
    temps: np.ndarray
    shifts: np.ndarray

    def utility(self) -> float:
        """U of eq. 11 at the state (z, c), CLIPScore points."""
        g, k, z, c = self.gain, self.cost, self.z, self.c
        return float(sum(g[i, z[i]] - k[i, z[i]] / c[i] for i in range(len(z))))


def _padded(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of different lengths as one array, padded with NaN."""
    out = np.full((len(rows), max(len(r) for r in rows)), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _start_walk(problem: AllocationProblem, active: np.ndarray, schedule: _Schedule) -> _Walk:
    """Algorithm 1's start: each model's middle step option and an equal split of C."""
    gains, _, costs = problem.tables
    n_options = np.array([len(gains[m]) for m in active], dtype=np.int64)
    a = active.size
    capacity = problem.capacity_tflops
    movable = np.flatnonzero(n_options > 1).astype(np.int64)
    p_step = schedule.p_step
    if movable.size == 0:
        p_step = 0.0
    if a == 1:
        p_step = 1.0 if movable.size else 0.0
    temps, shifts = schedule.temperatures(capacity)
    return _Walk(
        gain=_padded([gains[m] for m in active]),
        cost=_padded([costs[m] for m in active]),
        n_options=n_options,
        z=n_options // 2,
        c=np.full(a, capacity / a),
        movable=movable,
        p_step=float(p_step),
        floor=float(max(problem.min_compute, 1e-12 * capacity)),
        temps=np.asarray(temps, dtype=float),
        shifts=np.asarray(shifts, dtype=float),
    )


def _anneal(
    walk: _Walk, schedule: _Schedule, rng: np.random.Generator, trace: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The Metropolis loop of Algorithm 1: the best (z, c) seen, and per iteration (T, U, best U).

    Four uniform numbers per iteration (move kind, which model(s), size or direction, acceptance),
    drawn in blocks of ``_DRAW_BLOCK`` iterations; each block runs in
    :func:`aigc_lib._kernels.metropolis`, the loop compiled (notebook 04 writes it out in Python).
    """
    from aigc_lib import _kernels  # compiled on first use (cached on disk)

    fields = ("gain", "cost", "n_options", "z", "c", "movable", "temps", "shifts")
    arrays = tuple(getattr(walk, name) for name in fields)
    arguments = (*arrays, int(schedule.moves), walk.p_step, walk.floor)
    current = walk.utility()
    state = np.array([current, current])
    best_z, best_c = walk.z.copy(), walk.c.copy()
    records = np.empty((schedule.n_iter if trace else 0, 3))
    for first in range(0, schedule.n_iter, _DRAW_BLOCK):  # random numbers in blocks
        draws = rng.random((min(_DRAW_BLOCK, schedule.n_iter - first), 4))
        _kernels.metropolis(arguments, draws, first, state, best_z, best_c, records)
    return best_z, best_c, records if trace else None


def _annealing_allocation(
    problem: AllocationProblem,
    active: np.ndarray,
    best_z: np.ndarray,
    best_c: np.ndarray,
    records: np.ndarray | None,
) -> Allocation:
    """The best state of :func:`_anneal` as an :class:`Allocation` (shares rescaled to sum to C)."""
    steps = np.array([o[0] for o in problem.step_options])
    compute = np.zeros(problem.n_models)
    for i, m in enumerate(active):
        steps[m] = problem.step_options[m][best_z[i]]
        compute[m] = best_c[i]
    compute[active] *= problem.capacity_tflops / compute[active].sum()  # undo rounding drift
    frame = None
    if records is not None:
        frame = pd.DataFrame(
            {
                "iteration": np.arange(len(records)),
                "temperature": records[:, 0],
                "utility": records[:, 1],
                "best_utility": records[:, 2],
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
    rng: np.random.Generator,
    n_models: int = 3,
    n_tasks: int | None = None,
    identical: bool = False,
) -> AllocationProblem:
    """A random but realistic :class:`AllocationProblem` around the default scenario (SPEC section 4).

    Model 0 is a 1-step model (SDXL-Turbo-like, ~1.6 TFLOP per step, ~2.6 fixed); the others run
    10, 14, ..., 42 steps with per-step work between ~1 and ~20 TFLOP rising with the model's rank,
    fixed work 2 to 11 TFLOP, slopes a_m in [0.3, 2.5] and offsets b_m in [26, 34] CLIPScore points.
    Slot size ``n_tasks`` (default uniform in [5, 60]) is split over the models by a Dirichlet
    multinomial (a model may get no tasks); C in [20, 60] TFLOPS; lambda in [0.05, 0.5];
    min_share one of 0, 0.01, 0.05. 2 to :data:`MAX_MODELS` models.

    ``identical=True`` (ours, the hard case of the bound method): every model is a copy of one
    multi-step model (per-step work log-uniform in [1, 15] TFLOP, the rest as above) and the slot's
    tasks are split evenly (at least one per model), so models differ only by their index.

    Used by ``tests/`` and ``benchmarks/``; taught in
    ``notebooks/04_step_selection_and_resource_allocation.ipynb`` (exercises) and
    ``notebooks/05_beyond_the_paper.ipynb`` (scaling).
    """
    validate.generator(rng)
    if (
        isinstance(n_models, bool)
        or not isinstance(n_models, (int, np.integer))
        or not 2 <= n_models <= MAX_MODELS
    ):
        raise ValueError(
            f"n_models: expected a whole number from 2 to {MAX_MODELS}, got {n_models!r}"
        )
    total = int(rng.integers(5, 61)) if n_tasks is None else int(n_tasks)
    if total < 0:
        raise ValueError(f"n_tasks: expected a whole number >= 0, got {n_tasks}")
    if not isinstance(identical, (bool, np.bool_)):
        raise ValueError(f"identical: expected True or False, got {identical!r}")
    if identical:
        return _identical_problem(rng, n_models, total)
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


def _identical_problem(rng: np.random.Generator, n_models: int, total: int) -> AllocationProblem:
    """:func:`random_problem` with ``identical=True``: n_models copies of one multi-step model."""
    return AllocationProblem(
        n_tasks=[max(1, total // n_models)] * n_models,
        step_options=[tuple(range(10, 43, 4))] * n_models,
        tflop_per_step=[float(np.exp(rng.uniform(0.0, np.log(15.0))))] * n_models,
        tflop_fixed=[float(rng.uniform(2.0, 11.0))] * n_models,
        score_a=[float(rng.uniform(0.3, 2.5))] * n_models,
        score_b=[float(rng.uniform(26.0, 34.0))] * n_models,
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
    if arr.ndim != 1 or not 2 <= arr.size <= MAX_MODELS:
        raise ValueError(
            f"n_tasks: expected one count per model for 2 to {MAX_MODELS} models, "
            f"got shape {arr.shape}"
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
