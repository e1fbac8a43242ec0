"""Tests of aigc_lib.assignment: eq. 9-10 probabilities and the three assignment policies."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from aigc_lib.assignment import (
    assign_direct,
    assign_probabilistic,
    assign_random,
    assignment_probabilities,
)

THETA = (29.5, 33.8)


def test_probabilities_match_the_gaussian_prior_formula():
    mu, sigma = np.array([28.0, 31.0, 35.0]), np.array([2.0, 3.0, 1.5])
    p = assignment_probabilities(mu, sigma, THETA)
    lo, hi = norm.cdf((THETA[0] - mu) / sigma), norm.cdf((THETA[1] - mu) / sigma)
    np.testing.assert_allclose(p, np.column_stack([lo, hi - lo, 1 - hi]), atol=1e-12)
    assert p.shape == (3, 3)


def test_two_models_and_a_scalar_group():
    p = assignment_probabilities(30.0, 2.0, [30.0])
    np.testing.assert_allclose(p, [[0.5, 0.5]])


@settings(deadline=None, max_examples=60)
@given(
    mu=st.lists(st.floats(0, 60), min_size=1, max_size=6),
    sigma=st.floats(0.01, 20),
    thresholds=st.lists(st.floats(0, 60), min_size=1, max_size=7, unique=True),
)
def test_probabilities_are_a_distribution_per_group(mu, sigma, thresholds):
    thresholds = sorted(thresholds)
    assume(np.all(np.diff(thresholds) > 0))
    p = assignment_probabilities(mu, [sigma] * len(mu), thresholds)
    assert p.shape == (len(mu), len(thresholds) + 1)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


@settings(deadline=None, max_examples=40)
@given(
    probs=st.lists(st.lists(st.floats(0, 1), min_size=2, max_size=8), min_size=1, max_size=4),
    n=st.integers(0, 200),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_task_gets_exactly_one_model_with_positive_probability(probs, n, seed):
    width = min(len(row) for row in probs)
    p = np.array([row[:width] for row in probs]) + 1e-3
    p /= p.sum(axis=1, keepdims=True)
    groups = np.random.default_rng(seed).integers(0, len(p), n)
    models = assign_probabilistic(groups, p, np.random.default_rng(seed))
    assert models.shape == (n,) and models.dtype.kind == "i"
    assert np.all((models >= 0) & (models < width))
    np.testing.assert_array_equal(
        models, assign_probabilistic(groups, p, np.random.default_rng(seed))
    )


def test_higher_mean_sends_more_prompts_to_larger_models():
    p = assignment_probabilities([29.0, 31.0, 33.0, 35.0], [2.5] * 4, THETA)
    mass_on_larger = np.cumsum(p[:, ::-1], axis=1)[:, :-1]  # P(model >= m) for m = M-1 .. 1
    assert np.all(np.diff(mass_on_larger, axis=0) > 0)


def test_probabilistic_assignment_follows_the_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    groups = np.repeat([0, 1], 40_000)
    models = assign_probabilistic(groups, probs, np.random.default_rng(3))
    for k in range(2):
        freq = np.bincount(models[groups == k], minlength=3) / 40_000
        np.testing.assert_allclose(freq, probs[k], atol=0.01)
    assert not np.any(models[groups == 1] == 0)  # probability 0 is never drawn


def test_probabilistic_assignment_is_deterministic_per_seed():
    probs = assignment_probabilities([30.0, 33.0], [2.0, 3.0], THETA)
    groups = np.random.default_rng(0).integers(0, 2, 500)
    a = assign_probabilistic(groups, probs, np.random.default_rng(11))
    b = assign_probabilistic(groups, probs, np.random.default_rng(11))
    c = assign_probabilistic(groups, probs, np.random.default_rng(12))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (500,) and set(np.unique(a)) <= {0, 1, 2}


def test_direct_assignment_uses_the_interval_of_the_mean():
    mu = np.array([28.0, 29.5, 31.0, 33.8, 36.0])
    models = assign_direct(np.arange(5), mu, THETA)
    np.testing.assert_array_equal(models, [0, 1, 1, 2, 2])  # intervals [theta_m, theta_{m+1})
    np.testing.assert_array_equal(assign_direct([4, 0, 0], mu, THETA), [2, 0, 0])


def test_random_assignment_is_uniform_and_seeded():
    models = assign_random(90_000, 3, np.random.default_rng(5))
    np.testing.assert_allclose(np.bincount(models) / 90_000, [1 / 3] * 3, atol=0.01)
    np.testing.assert_array_equal(
        assign_random(50, 4, np.random.default_rng(1)),
        assign_random(50, 4, np.random.default_rng(1)),
    )
    assert assign_random(0, 3, np.random.default_rng(1)).shape == (0,)


def test_empty_groups_give_empty_assignments():
    probs = assignment_probabilities([30.0], [2.0], THETA)
    assert assign_probabilistic([], probs, np.random.default_rng(0)).shape == (0,)
    assert assign_direct([], [30.0], THETA).shape == (0,)


@pytest.mark.parametrize(
    "kwargs, argname",
    [
        (dict(mu=[30.0], sigma=[2.0], thresholds=[33.8, 29.5]), "thresholds"),
        (dict(mu=[30.0], sigma=[2.0], thresholds=[29.5, 29.5]), "thresholds"),
        (dict(mu=[30.0], sigma=[2.0], thresholds=[]), "thresholds"),
        (dict(mu=[30.0], sigma=[2.0], thresholds=[29.5, np.nan]), "thresholds"),
        (dict(mu=[30.0], sigma=[0.0], thresholds=THETA), "sigma"),
        (dict(mu=[30.0], sigma=[-1.0], thresholds=THETA), "sigma"),
        (dict(mu=[30.0, 31.0], sigma=[2.0], thresholds=THETA), "sigma"),
        (dict(mu=[np.nan], sigma=[2.0], thresholds=THETA), "mu"),
        (dict(mu=[30.0], sigma=[np.nan], thresholds=THETA), "sigma"),
    ],
)
def test_bad_probability_inputs_name_the_argument(kwargs, argname):
    with pytest.raises(ValueError, match=argname):
        assignment_probabilities(**kwargs)


def test_bad_assignment_inputs_name_the_argument():
    rng = np.random.default_rng(0)
    good = np.array([[0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match="probabilities"):
        assign_probabilistic([0], [[0.2, 0.3, 0.6]], rng)
    with pytest.raises(ValueError, match="probabilities"):
        assign_probabilistic([0], [[np.nan, 0.5, 0.5]], rng)
    with pytest.raises(ValueError, match="probabilities"):
        assign_probabilistic([0], [[1.5, -0.5, 0.0]], rng)
    with pytest.raises(ValueError, match="groups"):
        assign_probabilistic([0, 1], good, rng)  # group 1 unknown
    with pytest.raises(ValueError, match="groups"):
        assign_probabilistic([-1], good, rng)
    with pytest.raises(ValueError, match="groups"):
        assign_probabilistic([0.5], good, rng)
    with pytest.raises(ValueError, match="rng"):
        assign_probabilistic([0], good, 42)
    with pytest.raises(ValueError, match="groups"):
        assign_direct([3], [30.0, 31.0], THETA)
    with pytest.raises(ValueError, match="mu"):
        assign_direct([0], [np.nan], THETA)
    with pytest.raises(ValueError, match="thresholds"):
        assign_direct([0], [30.0], [34.0, 30.0])
    with pytest.raises(ValueError, match="n_tasks"):
        assign_random(-1, 3, rng)
    with pytest.raises(ValueError, match="n_models"):
        assign_random(5, 0, rng)
