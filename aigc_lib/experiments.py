"""Experiments over many runs: one parameter swept, more or fewer models, solvers side by side.

* :func:`with_parameter` and :func:`sweep` rerun the slot simulator
  (:func:`aigc_lib.simulation.simulate`) once per value of one parameter on the same seed (common
  random numbers) and summarise each run in one row (:func:`aigc_lib.metrics.summarise`).
* :func:`interpolated_scenario` builds scenarios with 2 to 5 models, the extra ones hypothetical,
  interpolated between the scenario's real models (ours).
* :func:`compare_solvers` runs the paper's annealer, the exact optimum and
  :func:`aigc_lib.allocation.dual_annealing_allocation` on the same allocation problems.

Units: CLIPScore points (score, utility), seconds (latency, time consumption), TFLOP, TFLOPS,
milliseconds (solver time). Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``
(the lambda sweep) and ``notebooks/05_beyond_the_paper.ipynb`` (the rest).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib import allocation as alloc
from aigc_lib import simulation, validate
from aigc_lib.metrics import summarise
from aigc_lib.readings import DEFAULT
from aigc_lib.scenario import ModelSpec, Scenario

__all__ = [
    "PARAMETERS",
    "SOLVERS",
    "with_parameter",
    "sweep",
    "interpolated_scenario",
    "compare_solvers",
]

PARAMETERS = ("weight", "capacity_tflops", "tasks_per_slot", "threshold_shift", "n_models", "rho")
"""What :func:`sweep` can vary: scenario fields, a shift of every threshold, the number of models,
and the per-prompt predictor's correlation ``rho`` (the "prompt" information reading of
:class:`aigc_lib.readings.Readings`)."""

SOLVERS = ("annealing", "exact", "dual_annealing")
"""Solvers :func:`compare_solvers` knows: Algorithm 1, the exact optimum, scipy's dual annealing."""


def with_parameter(scenario: Scenario, name: str, value: Any) -> Scenario:
    """A copy of ``scenario`` with one parameter of :data:`PARAMETERS` set (``rho`` is a reading, not a field).

    ``weight``: lambda (CLIPScore points per second, >= 0); ``capacity_tflops``: C (TFLOPS, > 0),
    a faster or slower GPU: every model's seconds scale by C_old / C (``Scenario.with_capacity``);
    ``tasks_per_slot``: prompts per slot (whole number >= 1); ``threshold_shift``: CLIPScore
    points added to every threshold theta_m (eq. 9-10); ``n_models``: 2 to 5 models through
    :func:`interpolated_scenario`.

    Taught in ``notebooks/05_beyond_the_paper.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    if name == "weight":
        return scenario.replace(weight=validate.number(value, "value", low=0.0))
    if name == "capacity_tflops":
        return scenario.with_capacity(validate.number(value, "value", low=0.0, low_open=True))
    if name == "tasks_per_slot":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"value: tasks_per_slot must be a whole number >= 1, got {value!r}")
        return scenario.replace(tasks_per_slot=int(value))
    if name == "threshold_shift":
        shift = validate.number(value, "value")
        return scenario.replace(thresholds=tuple(t + shift for t in scenario.thresholds))
    if name == "n_models":
        return interpolated_scenario(scenario, value)
    raise ValueError(
        f"name: expected one of {PARAMETERS[:-1]} (a scenario parameter), got {name!r}"
    )


def sweep(
    scenario: Scenario,
    name: str,
    values: Sequence[Any],
    n_slots: int,
    seed: int,
    **simulate_options: Any,
) -> pd.DataFrame:
    """Simulate once per value of one parameter, same seed each time; one row of :func:`summarise` per value.

    ``name``: one of :data:`PARAMETERS` (``rho`` sets ``Readings(information="prompt", rho=value)``
    over the ``readings`` passed in ``simulate_options``; the others go through
    :func:`with_parameter`). ``values``: the values, in order. ``simulate_options``: passed on to
    :func:`aigc_lib.simulation.simulate` (``assignment``, ``allocation``, ``prompts``, ...; default
    probabilistic assignment and annealing). Columns: ``name`` (the parameter), ``value``, then
    ``mean_utility``, ``mean_score``, ``mean_latency``, ``mean_steps``, ``mean_time_consumption``.

    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb`` (lambda) and
    ``notebooks/05_beyond_the_paper.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    if name not in PARAMETERS:
        raise ValueError(f"name: expected one of {PARAMETERS}, got {name!r}")
    if (
        isinstance(values, (str, bytes))
        or not isinstance(values, Sequence | np.ndarray)
        or len(values) == 0
    ):
        raise ValueError(
            f"values: expected a non-empty sequence of values for {name}, got {values!r}"
        )
    rows = []
    for value in values:
        if name == "rho":
            base = simulate_options.get("readings", DEFAULT)
            options = {
                **simulate_options,
                "readings": base.replace(information="prompt", rho=value),
            }
            result = simulation.simulate(scenario, n_slots, seed, **options)
            multi = _multi_step(scenario)
        else:
            changed = with_parameter(scenario, name, value)
            result = simulation.simulate(changed, n_slots, seed, **simulate_options)
            multi = _multi_step(changed)
        value = value.item() if isinstance(value, np.generic) else value
        rows.append({"name": name, "value": value, **summarise(result, multi)})
    return pd.DataFrame(rows)


def interpolated_scenario(scenario: Scenario, n_models: int) -> Scenario:
    """The scenario with 2 to 2M-1 models (M its own, >= 2): real ones kept, extra ones hypothetical (ours).

    Place the M real models at positions 0, 1/(M-1), ..., 1 (small to large). Fewer models keep
    the real models nearest to evenly spaced positions (2 of 3: the smallest and the largest).
    More models insert one hypothetical model in the middle of a gap between neighbours, gaps
    taken from the large end (4 of 3: one between SD1.5 and SDXL; 5: one in each gap). A
    hypothetical model between a (smaller) and b is named ``hypothetical-<a>-<b>``; it runs b's
    step set with b's zref, the geometric mean of their seconds (and TFLOP) per step, and the
    arithmetic mean of their fixed seconds (and TFLOP), score slope, offset and beta. Thresholds: theta(p) is the straight line
    (piecewise, extended at the ends) through the real thresholds placed at the midpoints between
    real positions; each new threshold is theta at the midpoint of two neighbouring models, so the
    real scenario is returned unchanged for ``n_models == M``. Assumptions, not measurements.

    Taught in ``notebooks/05_beyond_the_paper.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    real = len(scenario.models)
    if (
        isinstance(n_models, bool)
        or not isinstance(n_models, (int, np.integer))
        or not 2 <= n_models <= 2 * real - 1
    ):
        raise ValueError(
            f"n_models: expected a whole number from 2 to {2 * real - 1}, got {n_models!r}"
        )
    n_models = int(n_models)
    positions = np.linspace(0.0, 1.0, real)
    if n_models <= real:
        keep = np.round(np.linspace(0, real - 1, n_models)).astype(int)
        placed = [(positions[i], scenario.models[i]) for i in keep]
    else:
        extra = n_models - real
        gaps = list(range(real - 2, real - 2 - extra, -1))  # from the large end
        placed = []
        for i, model in enumerate(scenario.models):
            placed.append((positions[i], model))
            if i in gaps:
                placed.append(
                    ((positions[i] + positions[i + 1]) / 2, _between(model, scenario.models[i + 1]))
                )
    where = np.array([p for p, _ in placed])
    line_x = (positions[:-1] + positions[1:]) / 2
    thresholds = tuple(
        float(_line(line_x, np.array(scenario.thresholds), x)) for x in (where[:-1] + where[1:]) / 2
    )
    return scenario.replace(models=tuple(m for _, m in placed), thresholds=thresholds)


def _between(a: ModelSpec, b: ModelSpec) -> ModelSpec:
    return ModelSpec(
        name=f"hypothetical-{a.name}-{b.name}",
        steps=b.steps,
        step_seconds=math.sqrt(a.step_seconds * b.step_seconds),
        fixed_seconds=(a.fixed_seconds + b.fixed_seconds) / 2,
        tflop_per_step=math.sqrt(a.tflop_per_step * b.tflop_per_step),
        tflop_fixed=(a.tflop_fixed + b.tflop_fixed) / 2,
        score_slope=(a.score_slope + b.score_slope) / 2,
        score_offset=(a.score_offset + b.score_offset) / 2,
        score_beta=(a.score_beta + b.score_beta) / 2,
        zref=b.zref,
    )


def _line(xs: np.ndarray, ys: np.ndarray, x: float) -> float:
    """Piecewise-linear through (xs, ys), extended linearly beyond both ends (one point: constant)."""
    if xs.size == 1:
        return float(ys[0])
    i = int(np.clip(np.searchsorted(xs, x) - 1, 0, xs.size - 2))
    return float(ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i]))


def compare_solvers(
    problems: Sequence[alloc.AllocationProblem],
    seed: int,
    solvers: Sequence[str] = SOLVERS,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Every solver on every problem: utility, gap to the exact optimum, wall time.

    ``problems``: :class:`~aigc_lib.allocation.AllocationProblem` s with at most
    :data:`~aigc_lib.allocation.MAX_EXACT_COMBINATIONS` step combinations. ``seed``: a whole number
    >= 0; problem i's random solvers use generators seeded from (seed, i). ``solvers``: names in
    :data:`SOLVERS`; ``options``: keyword arguments for ``annealing`` and ``dual_annealing``. Columns: ``problem``,
    ``solver``, ``utility`` (CLIPScore points), ``gap`` = U_exact - U (CLIPScore points, >= 0 up
    to rounding), ``gap_pct`` = 100 gap / |U_exact| (NaN when U_exact = 0), ``time_ms`` (wall
    clock of the solver call, milliseconds; depends on the machine).

    Taught in ``notebooks/05_beyond_the_paper.ipynb``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a whole number >= 0, got {seed!r}")
    unknown = [s for s in solvers if s not in SOLVERS]
    if unknown or len(solvers) == 0:
        raise ValueError(f"solvers: expected names among {SOLVERS}, got {list(solvers)}")
    options = dict(options or {})
    bad = [k for k in options if k not in ("annealing", "dual_annealing")]
    if bad:
        raise ValueError(
            f"options: keys must be 'annealing' or 'dual_annealing' (solve_exact takes none), got {bad}"
        )
    run: dict[str, Callable[[alloc.AllocationProblem, np.random.Generator], alloc.Allocation]] = {
        "annealing": lambda p, r: alloc.simulated_annealing(p, r, **options.get("annealing", {})),
        "exact": lambda p, r: alloc.solve_exact(p),
        "dual_annealing": lambda p, r: alloc.dual_annealing_allocation(
            p, r, **options.get("dual_annealing", {})
        ),
    }
    rows = []
    for i, problem in enumerate(problems):
        if not isinstance(problem, alloc.AllocationProblem):
            raise ValueError(
                f"problems: item {i} is a {type(problem).__name__}, expected an AllocationProblem"
            )
        best = alloc.solve_exact(problem).utility
        for name in solvers:
            rng = np.random.default_rng([int(seed), i])
            start = time.perf_counter()
            found = run[name](problem, rng)
            elapsed = time.perf_counter() - start
            gap = best - found.utility
            rows.append(
                {
                    "problem": i,
                    "solver": name,
                    "utility": found.utility,
                    "gap": gap,
                    "gap_pct": 100 * gap / abs(best) if best != 0 else math.nan,
                    "time_ms": 1e3 * elapsed,
                }
            )
    return pd.DataFrame(rows, columns=["problem", "solver", "utility", "gap", "gap_pct", "time_ms"])


def _multi_step(scenario: Scenario) -> list[str]:
    return [m.name for m in scenario.models if len(m.steps) > 1]
