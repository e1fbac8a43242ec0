"""Compiled inner loops: the one place the library runs machine code of its own.

Algorithm 1's Metropolis loop runs once per slot and policy, 1760 moves each: in plain Python it
was where every simulation spent most of its time. :func:`metropolis` is that loop over arrays,
compiled by Numba (``numba.njit``; the machine code is cached beside this file, so only the first
run on a machine compiles, in about 4 s on 2 cores). Compiled or not, it is the same Python: set
the environment variable ``NUMBA_DISABLE_JIT=1`` to step through it in a debugger (slowly).
Floating point is not reordered (no ``fastmath``), so it gives the same numbers as the plain
Python loop it replaced, bit for bit (``tests/test_kernels.py`` checks it against a copy of that
loop, and :func:`weighted_ranks` against numpy's cumulative sum).

Imported on first use by :func:`aigc_lib.allocation.simulated_annealing`, so that a process
that never anneals never imports Numba.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["metropolis"]


@numba.njit(cache=True)
def metropolis(
    walk: tuple,
    draws: np.ndarray,
    first: int,
    state: np.ndarray,
    best_z: np.ndarray,
    best_c: np.ndarray,
    records: np.ndarray,
) -> None:
    """Iterations ``first`` to ``first + len(draws) - 1`` of Algorithm 1's loop, in place.

    ``walk``: ``(gain, cost, n_options, z, c, movable, temps, shifts, moves, p_step, floor)``,
    the arrays of :class:`aigc_lib.allocation._Walk`: gain and lambda x load per model and step
    option (a x K, padded), each model's number of options, the state z (option indices) and c
    (TFLOPS), the models with more than one option, each level's temperature and largest compute
    move, moves per level, the probability of a step move and the smallest share a move may leave.
    ``draws``: four uniform numbers per iteration (move kind, which model(s), size or direction,
    acceptance). ``state``: ``[current U, best U]``; ``best_z``, ``best_c``: the best state seen;
    ``records``: (iterations, 3) rows of (T, U, best U), or no rows for no trace.
    """
    gain, cost, n_options, z, c, movable, temps, shifts, moves, p_step, floor = walk
    current, best = state[0], state[1]
    for row in range(draws.shape[0]):
        it = first + row
        u_kind, u_which, u_size, u_accept = (
            draws[row, 0],
            draws[row, 1],
            draws[row, 2],
            draws[row, 3],
        )
        level = it // moves
        temp = temps[level]
        if u_kind < p_step:  # step move: one model's steps to a neighbouring allowed value
            current += _step_move(
                gain, cost, n_options, z, c, movable, u_which, u_size, u_accept, temp
            )
        elif z.size > 1:  # compute move: shift an amount from model i to model j
            move = u_size * shifts[level]
            current += _compute_move(cost, z, c, floor, u_which, move, u_accept, temp)
        if current > best:
            best = current
            best_z[:] = z
            best_c[:] = c
        if records.shape[0] > 0:
            records[it, 0], records[it, 1], records[it, 2] = temp, current, best
    state[0], state[1] = current, best


@numba.njit(cache=True)
def _step_move(gain, cost, n_options, z, c, movable, u_which, u_size, u_accept, temp) -> float:
    """One model's steps to a neighbouring allowed value (reflected at the ends), if the
    Metropolis rule accepts it; the change of U (0 if rejected)."""
    i = movable[int(u_which * movable.size)]
    old = z[i]
    new = old + 1 if u_size < 0.5 else old - 1
    if new < 0 or new >= n_options[i]:
        new = 2 * old - new
    delta = gain[i, new] - gain[i, old] - (cost[i, new] - cost[i, old]) / c[i]
    if delta >= 0 or u_accept < math.exp(delta / temp):
        z[i] = new
        return delta
    return 0.0


@numba.njit(cache=True)
def _compute_move(cost, z, c, floor, u_which, move, u_accept, temp) -> float:
    """``move`` TFLOPS from a random model i to another j, unless i would fall below ``floor``,
    if the Metropolis rule accepts it; the change of U (0 if rejected)."""
    a = z.size
    pair = int(u_which * a * (a - 1))
    i, j = pair // (a - 1), pair % (a - 1)
    if j >= i:
        j += 1
    ci, cj = c[i] - move, c[j] + move
    if ci < floor:
        return 0.0
    ki, kj = cost[i, z[i]], cost[j, z[j]]
    delta = ki / c[i] - ki / ci + kj / c[j] - kj / cj
    if delta >= 0 or u_accept < math.exp(delta / temp):
        c[i], c[j] = ci, cj
        return delta
    return 0.0


@numba.njit(cache=True)
def weighted_ranks(weights: np.ndarray, slot: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Where each fraction of the weight falls among tasks sorted by score, per resample.

    ``weights``: (resamples, slots), how often each slot is drawn; ``slot``: each task's slot,
    the tasks in score order; ``fractions``: e.g. the quartiles. Returns (resamples, fractions):
    the number of tasks whose running weight (the cumulative sum in score order) is below
    ``fraction x`` the total weight, i.e. the rank of the weighted quantile. The weights are
    whole numbers, so every running sum is exact.
    """
    rows, n = weights.shape[0], slot.size
    out = np.zeros((rows, fractions.size), dtype=np.int64)
    for r in range(rows):
        total = 0.0
        for t in range(n):
            total += weights[r, slot[t]]
        running, k = 0.0, 0
        for t in range(n):
            running += weights[r, slot[t]]
            while k < fractions.size and running >= fractions[k] * total:
                out[r, k] = t
                k += 1
            if k == fractions.size:
                break
        for rest in range(k, fractions.size):
            out[r, rest] = n
    return out
