"""Benchmark of aigc_lib.allocation: speed of solve_exact and the annealer, the annealer's accuracy,
and the annealer side by side with scipy.optimize.dual_annealing (a user's obvious alternative).

Prints medians and ratios against references computed in this process (no timing assertions).
Targets (issue): solve_exact on 3 models median < 0.5 ms; annealer median < 10 ms and within 0.1%
of solve_exact on >= 99% of 500 seeded random 3-model problems.

Run: ``python benchmarks/bench_allocation.py [--problems 500] [--dual 50]``
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
from scipy.optimize import dual_annealing

from aigc_lib import allocation as al


def timed(fn, repeat: int = 3):
    """(result, best-of-``repeat`` seconds) of calling ``fn()``."""
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def loop_exact(problem: al.AllocationProblem) -> float:
    """Reference: the same enumeration as solve_exact, one Python call per step combination."""
    best = -math.inf
    for z in itertools.product(*problem.step_options):
        best = max(best, al.utility(problem, z, al.optimal_compute(problem, z)))
    return best


def dual_annealing_solve(problem: al.AllocationProblem, seed: int) -> float:
    """scipy's dual_annealing (default settings) on eq. 11: continuous step index per model
    (floored onto the step set) and one compute weight per model with tasks (normalised above the
    floor). Returns the utility it reaches."""
    act = np.flatnonzero(problem.active)
    a, capacity, floor = act.size, problem.capacity_tflops, problem.min_compute
    sizes = np.array([len(problem.step_options[m]) for m in act])

    def state(x):
        idx = np.minimum(np.floor(x[:a]).astype(int), sizes - 1)
        steps = np.array([o[0] for o in problem.step_options])
        for i, m in enumerate(act):
            steps[m] = problem.step_options[m][idx[i]]
        w = x[a:]
        compute = np.zeros(problem.n_models)
        compute[act] = floor + (capacity - a * floor) * w / w.sum()
        return steps, compute

    def negative_utility(x):
        steps, compute = state(x)
        return -al._utility(problem, steps, compute)

    bounds = [(0.0, float(s) - 1e-9) for s in sizes] + [(1e-3, 1.0)] * a
    res = dual_annealing(negative_utility, bounds, seed=seed)
    return -float(res.fun)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--problems", type=int, default=500, help="random 3-model problems (default 500)"
    )
    parser.add_argument(
        "--dual", type=int, default=30, help="of those, how many also go to dual_annealing"
    )
    args = parser.parse_args()

    problems = [al.random_problem(np.random.default_rng(seed)) for seed in range(args.problems)]
    problems = [p for p in problems if p.active.any()]
    t_exact, t_sa, gaps, abs_gaps = [], [], [], []
    for i, p in enumerate(problems):
        exact, t = timed(lambda: al.solve_exact(p))
        t_exact.append(t)
        sa, t = timed(lambda: al.simulated_annealing(p, np.random.default_rng(10_000 + i)))
        t_sa.append(t)
        gaps.append((exact.utility - sa.utility) / abs(exact.utility))
        abs_gaps.append(exact.utility - sa.utility)
    gaps, t_exact, t_sa = np.array(gaps), np.array(t_exact), np.array(t_sa)

    t_loop = [timed(lambda: loop_exact(p), repeat=1)[1] for p in problems[:30]]

    print(
        f"== allocation benchmark: {len(problems)} random 3-model problems (aigc_lib.allocation.random_problem) =="
    )
    print(
        f"solve_exact            median {np.median(t_exact) * 1e3:7.3f} ms  (target 0.5 ms: ratio {np.median(t_exact) / 5e-4:.2f})"
    )
    print(
        f"  vs per-combination Python loop (same process, 30 problems): {np.median(t_loop) / np.median(t_exact[:30]):.0f}x faster"
    )
    print(
        f"simulated_annealing    median {np.median(t_sa) * 1e3:7.3f} ms  (target 10 ms: ratio {np.median(t_sa) / 1e-2:.2f}); "
        f"{np.median(t_sa) / np.median(t_exact):.1f}x solve_exact's time"
    )
    print(
        f"annealer gap to exact  median {np.median(gaps):.2e}, 99th percentile {np.quantile(gaps, 0.99):.2e}, "
        f"max {gaps.max():.2e} (relative); within 0.1%: {np.mean(gaps <= 1e-3):.1%} (target >= 99%)"
    )
    print(
        f"                       absolute: median {np.median(abs_gaps):.2e}, max {np.max(abs_gaps):.2e} CLIPScore points"
    )

    if args.dual > 0:
        ratios_u, ratios_t, gaps_d, gaps_s = [], [], [], []
        for i, p in enumerate(problems[: args.dual]):
            sa, t1 = timed(
                lambda: al.simulated_annealing(p, np.random.default_rng(10_000 + i)), repeat=1
            )
            u_d, t2 = timed(lambda: dual_annealing_solve(p, seed=i), repeat=1)
            exact = al.solve_exact(p).utility
            if exact > 0:  # a ratio of utilities only reads well when both are positive
                ratios_u.append(sa.utility / u_d)
            ratios_t.append(t2 / t1)
            gaps_d.append((exact - u_d) / abs(exact))
            gaps_s.append((exact - sa.utility) / abs(exact))
        ratios_u, ratios_t, gaps_d, gaps_s = map(np.array, (ratios_u, ratios_t, gaps_d, gaps_s))
        print(
            f"-- vs scipy.optimize.dual_annealing (default settings), first {len(ratios_t)} problems --"
        )
        print(
            f"utility ratio annealer / dual_annealing ({len(ratios_u)} with U > 0): median {np.median(ratios_u):.6f}, "
            f"min {ratios_u.min():.6f}, max {ratios_u.max():.6f}"
        )
        print(
            f"gap to exact: annealer median {np.median(gaps_s):.2e} max {gaps_s.max():.2e}; "
            f"dual_annealing median {np.median(gaps_d):.2e} max {gaps_d.max():.2e}"
        )
        print(f"time ratio dual_annealing / annealer: median {np.median(ratios_t):.0f}x")


if __name__ == "__main__":
    main()
