"""Benchmark of aigc_lib.simulation: 1000 slots x 50 tasks under each allocation policy.

Prints wall time per policy, the ratio to the issue's targets (exact < 5 s, annealing < 30 s on one
core), and how much of the time the per-slot planner call takes (timed in this process by wrapping
the solver). No timing assertions.

Run: ``python benchmarks/bench_simulation.py [--slots 1000] [--tasks 50]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from aigc_lib import allocation as al
from aigc_lib.scenario import GroupPrior, ModelSpec, Scenario, load_scenario
from aigc_lib.simulation import simulate

TARGETS = {"exact": 5.0, "annealing": 30.0}


def default_scenario() -> tuple[Scenario, str]:
    """data/scenarios/paper.yaml when it loads, else a built-in copy of its numbers (SPEC section 4)."""
    try:
        return load_scenario(), "data/scenarios/paper.yaml"
    except (ValueError, OSError):
        z = tuple(range(10, 43, 4))
        return Scenario(
            models=(
                ModelSpec(
                    "sdxl-turbo", (1,), 1.589 / 34, 2.6 / 34, 1.589, 2.6, 0.0, -0.5, 0.7, 1.0
                ),
                ModelSpec("sd15", z, 1.607 / 34, 2.55 / 34, 1.607, 2.55, 1.0, 0.0, 1.0, 50.0),
                ModelSpec("sdxl", z, 13.522 / 34, 10.7 / 34, 13.522, 10.7, 1.5, 1.5, 1.3, 50.0),
            ),
            groups=(
                GroupPrior("Basic", 31.0, 2.5, 0.2218),
                GroupPrior("Imagination", 33.5, 3.2, 0.2610),
                GroupPrior("Detail", 32.5, 2.8, 0.3548),
                GroupPrior("Complex", 30.0, 2.6, 0.1624),
            ),
            thresholds=(29.5, 33.8),
            weight=0.2,
            capacity_tflops=34.0,
            min_share=0.01,
            noise_sd=1.0,
            tasks_per_slot=10,
        ), "built-in copy of the default numbers (data/scenarios/paper.yaml did not load)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    scenario, where = default_scenario()
    print(
        f"== simulation benchmark: {args.slots} slots x {args.tasks} tasks, probabilistic assignment; scenario: {where} =="
    )
    solvers = {
        "exact": lambda p, rng: al.solve_exact(p),
        "annealing": lambda p, rng: al.simulated_annealing(p, rng),
        "equal": lambda p, rng: al.equal_allocation(p),
        "optimal_step": lambda p, rng: al.optimal_step(p),
    }
    for name, solve in solvers.items():
        spent = [0.0]

        def timed_solver(problem, rng, solve=solve, spent=spent):
            t = time.perf_counter()
            out = solve(problem, rng)
            spent[0] += time.perf_counter() - t
            return out

        t = time.perf_counter()
        simulate(scenario, args.slots, seed=0, allocation=name, tasks_per_slot=args.tasks)
        total = time.perf_counter() - t
        t = time.perf_counter()
        result = simulate(
            scenario, args.slots, seed=0, allocation=timed_solver, tasks_per_slot=args.tasks
        )
        wrapped = time.perf_counter() - t
        target = (
            f"  (target {TARGETS[name]:.0f} s: ratio {total / TARGETS[name]:.2f})"
            if name in TARGETS
            else ""
        )
        print(
            f"{name:13s} {total:6.2f} s, {total / max(args.slots, 1) * 1e3:.2f} ms per slot{target}; "
            f"planner {spent[0] / wrapped:.0%} of the time; mean utility {result.slots['utility'].mean():.3f}"
        )


if __name__ == "__main__":
    main()
