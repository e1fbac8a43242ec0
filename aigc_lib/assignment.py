"""Probabilistic model assignment: which model serves each prompt (SPEC section 2, eq. 9-10).

A prompt of group k has a Gaussian prior N(mu_k, sigma_k^2) of its CLIPScore on the medium model.
Sorted thresholds theta_1 < ... < theta_{M-1} (CLIPScore points) cut that score axis into M intervals,
one per model, models ordered small to large. A prompt goes to model m with the prior probability
that its score falls in model m's interval: low expected score -> small model, high -> large model.

Baselines: :func:`assign_direct` (the interval that holds mu_k) and :func:`assign_random`.
Every function returns one model index per task (0 = smallest model).

Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

from aigc_lib import validate

__all__ = [
    "assignment_probabilities",
    "assign_probabilistic",
    "assign_direct",
    "assign_random",
]

_SUM_TOLERANCE = 1e-6


def assignment_probabilities(mu: Any, sigma: Any, thresholds: Any) -> np.ndarray:
    """Probability that a prompt of each group goes to each model (SPEC eq. 9-10).

    ``mu``, ``sigma``: group prior means and standard deviations of the medium model's CLIPScore,
    in CLIPScore points, shape (K,) (scalars are one group). ``thresholds``: theta_1 < ... <
    theta_{M-1} in CLIPScore points. Returns an array (K, M), M = len(thresholds) + 1, models small
    to large: P[k, m] = Phi((theta_{m+1} - mu_k)/sigma_k) - Phi((theta_m - mu_k)/sigma_k) with
    theta_0 = -inf and theta_M = +inf, so every row sums to 1.

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    mu = validate.finite_vector(mu, "mu")
    sigma = validate.finite_vector(sigma, "sigma")
    if sigma.shape != mu.shape:
        raise ValueError(
            f"sigma: expected {mu.size} values (one per group, like mu), got {sigma.size}"
        )
    if np.any(sigma <= 0):
        raise ValueError(f"sigma: expected standard deviations > 0, got {sigma.tolist()}")
    theta = _thresholds(thresholds)
    cdf = ndtr((theta[None, :] - mu[:, None]) / sigma[:, None])  # (K, M-1), non-decreasing in m
    edges = np.concatenate([np.zeros((mu.size, 1)), cdf, np.ones((mu.size, 1))], axis=1)
    return np.diff(edges, axis=1)


def assign_probabilistic(groups: Any, probabilities: Any, rng: np.random.Generator) -> np.ndarray:
    """Draw one model per task from its group's row of ``probabilities`` (SPEC eq. 9-10).

    ``groups``: integer group index per task, shape (n,), each in [0, K). ``probabilities``: (K, M)
    array, e.g. from :func:`assignment_probabilities`, rows summing to 1. ``rng``: a
    ``numpy.random.Generator``; exactly one uniform number is drawn per task (inverse CDF), so the
    same generator state gives the same assignment. Returns model indices, shape (n,), int.

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    probs = _probabilities(probabilities)
    groups = _groups(groups, probs.shape[0])
    validate.generator(rng)
    u = rng.random(groups.size)
    cumulative = np.cumsum(probs, axis=1)[:, :-1]  # (K, M-1); the last edge is 1 by construction
    return (cumulative[groups] <= u[:, None]).sum(axis=1).astype(np.int64)


def assign_direct(groups: Any, mu: Any, thresholds: Any) -> np.ndarray:
    """Direct-assignment baseline: each task goes to the model whose interval holds its group's mean.

    ``groups``: integer group index per task, shape (n,). ``mu``: group prior means in CLIPScore
    points, shape (K,). ``thresholds``: theta_1 < ... < theta_{M-1}. Model m's interval is
    [theta_m, theta_{m+1}) (theta_0 = -inf, theta_M = +inf), the same split as eq. 9-10.
    Returns model indices, shape (n,), int.

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    mu = validate.finite_vector(mu, "mu")
    theta = _thresholds(thresholds)
    groups = _groups(groups, mu.size)
    model_of_group = np.searchsorted(theta, mu, side="right")
    return model_of_group[groups].astype(np.int64)


def assign_random(n_tasks: int, n_models: int, rng: np.random.Generator) -> np.ndarray:
    """Random-assignment baseline: each of ``n_tasks`` tasks to one of ``n_models`` models uniformly.

    ``rng``: a ``numpy.random.Generator``. Returns model indices, shape (n_tasks,), int.
    """
    n_tasks = validate.whole(n_tasks, "n_tasks", low=0)
    n_models = validate.whole(n_models, "n_models", low=1)
    validate.generator(rng)
    return rng.integers(0, n_models, size=n_tasks).astype(np.int64)


# --- validation helpers -------------------------------------------------------------------------


def _thresholds(thresholds: Any) -> np.ndarray:
    theta = validate.finite_vector(thresholds, "thresholds")
    if not 1 <= theta.size <= 7:
        raise ValueError(f"thresholds: expected 1 to 7 values (2 to 8 models), got {theta.size}")
    if np.any(np.diff(theta) <= 0):
        raise ValueError(f"thresholds: expected strictly increasing values, got {theta.tolist()}")
    return theta


def _probabilities(probabilities: Any) -> np.ndarray:
    try:
        probs = np.asarray(probabilities, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"probabilities: expected a (K, M) array of numbers, got {probabilities!r}"
        ) from None
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] < 2:
        raise ValueError(
            f"probabilities: expected a (K, M) array with K >= 1 and M >= 2, got shape {probs.shape}"
        )
    if not np.all(np.isfinite(probs)):
        raise ValueError("probabilities: expected finite numbers (no NaN or inf)")
    if np.any(probs < 0) or np.any(probs > 1):
        raise ValueError("probabilities: expected values in [0, 1]")
    sums = probs.sum(axis=1)
    if np.any(np.abs(sums - 1) > _SUM_TOLERANCE):
        raise ValueError(f"probabilities: each row must sum to 1, got row sums {sums.tolist()}")
    return probs


def _groups(groups: Any, n_groups: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(groups))
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"groups: expected a 1-D sequence of group indices, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError("groups: expected integer group indices (no NaN, no fractions)")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"groups: expected integer group indices, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= n_groups)
    if np.any(bad):
        raise ValueError(
            f"groups: unknown group labels {sorted(set(arr[bad].tolist()))}; expected 0 to {n_groups - 1}"
        )
    return arr.astype(np.int64)
