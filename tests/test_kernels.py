"""Tests of aigc_lib._kernels: the compiled loops give the plain-Python loops' numbers, bit for bit.

The reference loops below are the library's loops as they were written before they were
compiled (Algorithm 1's Metropolis loop over Python lists; the weighted quartiles with numpy's
cumulative sum). Equality is exact: no tolerance.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import _kernels, claims
from aigc_lib import allocation as al


def python_anneal(problem, rng, **options):
    """Algorithm 1 over Python lists, the loop the compiled kernel replaced: (z, c, records)."""
    schedule = al._annealing_schedule(
        *(
            options.get(k, d)
            for k, d in (
                ("initial_temperature", 1.0),
                ("cooling", 0.9),
                ("final_temperature", 1e-4),
                ("moves_per_temperature", 20),
                ("step_move_probability", 0.5),
                ("shift", 0.25),
                ("final_shift", 0.002),
            )
        )
    )
    walk = al._start_walk(problem, np.flatnonzero(problem.active), schedule)
    gain = [row[:n].tolist() for row, n in zip(walk.gain, walk.n_options)]
    cost = [row[:n].tolist() for row, n in zip(walk.cost, walk.n_options)]
    z, c, movable = walk.z.tolist(), walk.c.tolist(), walk.movable.tolist()
    temps, shifts, p_step, floor = (
        walk.temps.tolist(),
        walk.shifts.tolist(),
        walk.p_step,
        walk.floor,
    )
    a, n_movable, moves = len(z), len(movable), schedule.moves
    current = sum(gain[i][z[i]] - cost[i][z[i]] / c[i] for i in range(a))
    best, best_z, best_c, records = current, z[:], c[:], []
    for it, (u_kind, u_which, u_size, u_accept) in enumerate(rng.random((schedule.n_iter, 4))):
        level = it // moves
        temp = temps[level]
        if u_kind < p_step:
            i = movable[int(u_which * n_movable)]
            old = z[i]
            new = old + (1 if u_size < 0.5 else -1)
            if new < 0 or new >= len(gain[i]):
                new = 2 * old - new
            delta = gain[i][new] - gain[i][old] - (cost[i][new] - cost[i][old]) / c[i]
            if delta >= 0 or u_accept < math.exp(delta / temp):
                z[i] = new
                current += delta
        elif a > 1:
            i, j = divmod(int(u_which * a * (a - 1)), a - 1)
            j += j >= i
            ci, cj = c[i] - u_size * shifts[level], c[j] + u_size * shifts[level]
            if ci >= floor:
                ki, kj = cost[i][z[i]], cost[j][z[j]]
                delta = ki / c[i] - ki / ci + kj / c[j] - kj / cj
                if delta >= 0 or u_accept < math.exp(delta / temp):
                    c[i], c[j] = ci, cj
                    current += delta
        if current > best:
            best, best_z, best_c = current, z[:], c[:]
        records.append((temp, current, best))
    return best_z, best_c, np.array(records)


OPTIONS = [
    {},
    {"cooling": 0.5, "moves_per_temperature": 3, "step_move_probability": 0.9},
    {"step_move_probability": 0.0, "shift": 0.5, "final_shift": 0.01},
    {"step_move_probability": 1.0, "initial_temperature": 5.0},
]


@pytest.mark.parametrize("n_models", [2, 3, 5, 12])
@pytest.mark.parametrize("options", OPTIONS, ids=["defaults", "fast", "compute", "steps"])
def test_the_compiled_annealer_matches_the_python_loop_bit_for_bit(n_models, options):
    rng = np.random.default_rng([n_models, len(options)])
    for k in range(6):
        problem = al.random_problem(rng, n_models=n_models, n_tasks=None if k else 1)
        if not problem.active.any():
            continue
        z, c, records = python_anneal(problem, np.random.default_rng(k), **options)
        fast = al.simulated_annealing(problem, np.random.default_rng(k), trace=True, **options)
        active = np.flatnonzero(problem.active)
        steps = [problem.step_options[m][z[i]] for i, m in enumerate(active)]
        assert fast.steps[active].tolist() == steps
        np.testing.assert_array_equal(
            fast.trace[["temperature", "utility", "best_utility"]], records
        )
        shares = np.array(c) * (problem.capacity_tflops / np.sum(c))
        np.testing.assert_array_equal(fast.compute_tflops[active], shares)


def test_the_compiled_annealer_leaves_the_generator_where_the_loop_does():
    problem = al.random_problem(np.random.default_rng(3), n_models=4)
    mine, theirs = np.random.default_rng(5), np.random.default_rng(5)
    python_anneal(problem, mine)
    al.simulated_annealing(problem, theirs)
    assert mine.random() == theirs.random()


def numpy_ranks(weights, slot, fractions):
    """The rank of each weighted quantile by numpy's cumulative sum (the code it replaced)."""
    cw = np.cumsum(weights[:, slot], axis=1)
    return np.column_stack([(cw < k * cw[:, -1:]).sum(axis=1) for k in fractions])


@settings(deadline=None, max_examples=80)
@given(
    n_slots=st.integers(1, 30),
    n_tasks=st.integers(1, 120),
    n_boot=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_weighted_ranks_match_the_cumulative_sum(n_slots, n_tasks, n_boot, seed):
    rng = np.random.default_rng(seed)
    weights = claims.resample_weights(n_slots, rng, n_boot)
    slot = rng.integers(0, n_slots, n_tasks).astype(np.int64)
    fractions = np.array([0.25, 0.5, 0.75])
    ranks = _kernels.weighted_ranks(weights, slot, fractions)
    np.testing.assert_array_equal(ranks, numpy_ranks(weights, slot, fractions))


def test_weighted_ranks_when_no_task_reaches_a_fraction():
    weights = np.array([[1.0, 0.0], [0.0, 0.0]])  # the second resample draws nothing
    slot = np.array([1, 1, 0], dtype=np.int64)
    fractions = np.array([0.5, 1.5])
    ranks = _kernels.weighted_ranks(weights, slot, fractions)
    np.testing.assert_array_equal(ranks, numpy_ranks(weights, slot, fractions))
