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
from aigc_lib.scenario import load_scenario
from aigc_lib.simulation import simulate

TARGETS = {"exact": 5.0, "annealing": 30.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    scenario = load_scenario()
    print(
        f"== simulation benchmark: {args.slots} slots x {args.tasks} tasks, probabilistic "
        f"assignment; scenario: {scenario.name!r} =="
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
