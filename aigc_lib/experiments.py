"""Experiments over many runs: one parameter swept, more or fewer models, solvers side by side.

* :func:`with_parameter` and :func:`sweep` rerun the slot simulator
  (:func:`aigc_lib.simulation.simulate`) once per value of one parameter on the same seed (common
  random numbers) and summarise each run in one row (:func:`aigc_lib.metrics.summarise`).
* :func:`interpolated_scenario` builds scenarios with 2 to 5 models, the extra ones hypothetical,
  interpolated between the scenario's real models (ours).
* :func:`compare_solvers` runs the paper's annealer, the exact optimum and
  :func:`aigc_lib.allocation.dual_annealing_allocation` on the same allocation problems;
  :func:`scaling_problems` poses the random problems of 2 to 12 models that notebook 05 and
  ``benchmarks/bench_allocation.py`` share, and :func:`load_solver_timings` reads the timing table
  the benchmark writes (wall-clock times belong to ``make bench``, never to a notebook's run).

Independent runs (one per swept value, one per problem) go through :func:`aigc_lib.parallel.run`:
each carries its own seed, so the results are the same for any number of workers (``n_jobs``).

Units: CLIPScore points (score, utility), seconds (latency, time consumption), TFLOP, TFLOPS,
milliseconds (solver time). Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb``
(the lambda sweep) and ``notebooks/05_beyond_the_paper.ipynb`` (the rest).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from aigc_lib import allocation as alloc
from aigc_lib import parallel, simulation, validate
from aigc_lib._io import atomic_write_text
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
    "scaling_problems",
    "TIMINGS_PATH",
    "TIMING_COLUMNS",
    "write_solver_timings",
    "load_solver_timings",
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
    n_jobs: int | None = None,
    **simulate_options: Any,
) -> pd.DataFrame:
    """Simulate once per value of one parameter, same seed each time; one row of :func:`summarise` per value.

    ``name``: one of :data:`PARAMETERS` (``rho`` sets ``Readings(information="prompt", rho=value)``
    over the ``readings`` passed in ``simulate_options``; the others go through
    :func:`with_parameter`). ``values``: the values, in order. ``n_jobs``: worker processes
    (:func:`aigc_lib.parallel.run`; default ``$AIGC_JOBS`` or the CPU count); the table is the same
    for any number. ``simulate_options``: passed on to :func:`aigc_lib.simulation.simulate`
    (``assignment``, ``allocation``, ``prompts``, ...; default probabilistic assignment and
    annealing; an ``allocation`` callable must be picklable to run in workers). Columns: ``name``
    (the parameter), ``value``, then ``mean_utility``, ``mean_score``, ``mean_latency``,
    ``mean_steps``, ``mean_time_consumption``.

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
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    changed = []
    for value in values:  # validate every value here, before any worker starts
        if name == "rho":
            base = simulate_options.get("readings", DEFAULT)
            changed.append((scenario, {"readings": base.replace(information="prompt", rho=value)}))
        else:
            changed.append((with_parameter(scenario, name, value), {}))
    items = [(sc, n_slots, seed, {**simulate_options, **extra}) for sc, extra in changed]
    summaries = parallel.run(_summarise_run, items, n_jobs)
    return pd.DataFrame([{"name": name, "value": v, **row} for v, row in zip(values, summaries)])


def _summarise_run(item: tuple[Scenario, int, int, dict[str, Any]]) -> dict[str, float]:
    """One run of a sweep (a top-level function, so that workers can run it)."""
    scenario, n_slots, seed, options = item
    result = simulation.simulate(scenario, n_slots, seed, **options)
    return summarise(result, _multi_step(scenario))


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
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Every solver on every problem: utility, gap to the exact optimum, wall time.

    ``problems``: :class:`~aigc_lib.allocation.AllocationProblem` s (up to
    :data:`~aigc_lib.allocation.MAX_MODELS` models; the optimum comes from
    :func:`~aigc_lib.allocation.solve_exact`). ``seed``: a whole number >= 0; problem i's random
    solvers use generators seeded from (seed, i). ``solvers``: names in :data:`SOLVERS`;
    ``options``: keyword arguments for ``annealing`` and ``dual_annealing``. ``n_jobs``: worker
    processes, one problem per task (:func:`aigc_lib.parallel.run`); every column but ``time_ms``
    is the same for any number. Columns: ``problem``, ``solver``, ``utility`` (CLIPScore points),
    ``gap`` = U_exact - U (CLIPScore points, >= 0 up to rounding), ``gap_pct`` = 100 gap /
    |U_exact| (NaN when U_exact = 0), ``optimal_steps`` (True when the solver chose the optimum's
    step counts: a heuristic's continuous split is never exact, its steps can be), ``time_ms``
    (wall clock of the solver call in its worker,
    milliseconds; depends on the machine and its load: ``make bench`` measures times properly).

    Taught in ``notebooks/05_beyond_the_paper.ipynb``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a whole number >= 0, got {seed!r}")
    unknown = [s for s in solvers if s not in SOLVERS]
    if unknown or len(solvers) == 0:
        raise ValueError(f"solvers: expected names among {SOLVERS}, got {list(solvers)}")
    options = {k: dict(v) for k, v in dict(options or {}).items()}
    bad = [k for k in options if k not in ("annealing", "dual_annealing")]
    if bad:
        raise ValueError(
            f"options: keys must be 'annealing' or 'dual_annealing' (solve_exact takes none), got {bad}"
        )
    for i, problem in enumerate(problems):
        if not isinstance(problem, alloc.AllocationProblem):
            raise ValueError(
                f"problems: item {i} is a {type(problem).__name__}, expected an AllocationProblem"
            )
    items = [(i, p, int(seed), tuple(solvers), options) for i, p in enumerate(problems)]
    rows = [row for rows in parallel.run(_compare_one, items, n_jobs) for row in rows]
    columns = ["problem", "solver", "utility", "gap", "gap_pct", "optimal_steps", "time_ms"]
    return pd.DataFrame(rows, columns=columns)


def _solve(name: str, problem: alloc.AllocationProblem, rng: np.random.Generator, options: dict):
    if name == "annealing":
        return alloc.simulated_annealing(problem, rng, **options.get("annealing", {}))
    if name == "dual_annealing":
        return alloc.dual_annealing_allocation(problem, rng, **options.get("dual_annealing", {}))
    return alloc.solve_exact(problem)


def _compare_one(item: tuple) -> list[dict[str, Any]]:
    """Every solver on problem i (a top-level function, so that workers can run it)."""
    i, problem, seed, solvers, options = item
    exact = alloc.solve_exact(problem)
    best = exact.utility
    rows = []
    for name in solvers:
        rng = np.random.default_rng([seed, i])
        start = time.perf_counter()
        found = _solve(name, problem, rng, options)
        elapsed = time.perf_counter() - start
        gap = best - found.utility
        rows.append(
            {
                "problem": i,
                "solver": name,
                "utility": found.utility,
                "gap": gap,
                "gap_pct": 100 * gap / abs(best) if best != 0 else math.nan,
                "optimal_steps": bool(np.array_equal(found.steps, exact.steps)),
                "time_ms": 1e3 * elapsed,
            }
        )
    return rows


def scaling_problems(
    n_models: int, n_problems: int, seed: int, identical: bool = False
) -> list[alloc.AllocationProblem]:
    """``n_problems`` random problems of ``n_models`` models (:func:`~aigc_lib.allocation.random_problem`).

    The slot holds 5 to 20 tasks per model (uniform) and the capacity is ``random_problem``'s (20
    to 60 TFLOPS, made for three models) times ``n_models / 3``, so that a model's load and share
    stay alike at every size (the default of ``random_problem``, 5 to 60 tasks in all on the same
    capacity, would leave most of 12 models idle and the others starved). Problem
    i is drawn from ``numpy.random.default_rng([seed, n_models, i, identical])``, so a size's
    problems do not depend on which other sizes are drawn, and notebook 05 and
    ``benchmarks/bench_allocation.py`` pose the same problems for the same seed. ``identical``:
    every model a copy of one (the hard case of the bound method).

    Taught in ``notebooks/05_beyond_the_paper.ipynb``.
    """
    for value, label in ((n_problems, "n_problems"), (seed, "seed")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{label}: expected a whole number >= 0, got {value!r}")
    if (
        isinstance(n_models, bool)
        or not isinstance(n_models, (int, np.integer))
        or not 2 <= n_models <= alloc.MAX_MODELS
    ):
        raise ValueError(
            f"n_models: expected a whole number from 2 to {alloc.MAX_MODELS}, got {n_models!r}"
        )
    problems = []
    for i in range(n_problems):
        rng = np.random.default_rng([int(seed), int(n_models), i, int(identical)])
        tasks = int(rng.integers(5 * n_models, 20 * n_models + 1))
        problem = alloc.random_problem(rng, n_models, tasks, identical=identical)
        scaled = problem.capacity_tflops * n_models / 3
        problems.append(dataclasses.replace(problem, capacity_tflops=scaled))
    return problems


TIMINGS_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "allocation_timings.csv"
"""Where ``make bench`` (``benchmarks/bench_allocation.py``) writes the solver timing table."""

TIMING_COLUMNS = (
    "kind",
    "n_models",
    "solver",
    "problems",
    "median_ms",
    "max_ms",
    "median_ratio",
    "max_ratio",
    "median_gap",
    "max_gap",
    "optimal_steps",
)
"""Columns of the solver timing table (:func:`write_solver_timings`): problem kind (``random``,
``identical``, ``near_identical``), models, solver, problems timed, median and largest wall time
(ms), both as a ratio to the bound method's on the same problems, median and largest gap to the
optimum (CLIPScore points) and the share of problems where the solver chose the optimum's steps."""


def write_solver_timings(table: pd.DataFrame, path: str | os.PathLike, note: str = "") -> Path:
    """Write the timing table atomically as CSV, headed by ``#`` lines: machine, date, ``note``.

    The header names the CPU, the Python and numpy versions and the date, because times depend on
    them; :func:`load_solver_timings` reads it back. Used by ``benchmarks/bench_allocation.py``.
    """
    missing = [c for c in TIMING_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table: missing columns {missing}; expected {list(TIMING_COLUMNS)}")
    header = {
        "written_by": "benchmarks/bench_allocation.py (make bench)",
        "date": datetime.date.today().isoformat(),
        "cpu": _cpu_name(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if note:
        header["note"] = note
    lines = [f"# {k}: {v}" for k, v in header.items()]
    body = table[list(TIMING_COLUMNS)].to_csv(index=False, float_format="%.6g")
    return atomic_write_text(path, "\n".join(lines) + "\n" + body)


def load_solver_timings(
    path: str | os.PathLike = TIMINGS_PATH,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The timing table written by ``make bench`` and its header (CPU, date, ...), from ``path``.

    Taught in ``notebooks/05_beyond_the_paper.ipynb``, which plots times from this table instead
    of measuring them, so that its committed results do not depend on the machine that ran it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no timing table at {path}; run 'make bench' to write it")
    header = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    table = pd.read_csv(path, comment="#")
    missing = [c for c in TIMING_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"path: {path} lacks columns {missing}; rerun 'make bench'")
    table = table[list(TIMING_COLUMNS)].astype({c: float for c in TIMING_COLUMNS[4:]})
    return table, header


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _multi_step(scenario: Scenario) -> list[str]:
    return [m.name for m in scenario.models if len(m.steps) > 1]
