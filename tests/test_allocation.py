"""Tests of aigc_lib.allocation: eq. 11, the water-filling split, the exact solver, Algorithm 1, baselines."""

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import allocation as al
from aigc_lib.allocation import (
    AllocationProblem,
    equal_allocation,
    optimal_compute,
    optimal_step,
    random_problem,
    simulated_annealing,
    solve_exact,
    utility,
)

Z = tuple(range(10, 43, 4))


def paper_problem(**changes):
    """Three models like the default scenario: SDXL-Turbo (1 step), SD1.5 and SDXL."""
    args = dict(
        n_tasks=[3, 5, 2],
        step_options=[(1,), Z, Z],
        tflop_per_step=[1.589, 1.607, 13.522],
        tflop_fixed=[2.6, 2.55, 10.7],
        score_a=[0.0, 1.0, 1.5],
        score_b=[30.0, 27.0, 27.5],
        capacity_tflops=34.0,
        weight=0.2,
        min_share=0.01,
    )
    args.update(changes)
    return AllocationProblem(**args)


def grid_utilities(problem, steps, compute):
    """Eq. 11 by hand, vectorised over rows of ``compute`` (P, M); the test's own oracle."""
    n = problem.n_tasks.astype(float)
    act = n > 0
    w = np.asarray(steps) * problem.tflop_per_step + problem.tflop_fixed
    s = problem.score_a * np.log(steps) + problem.score_b
    lat = np.where(act, n * (n + 1) / 2 * w / np.where(act, compute, 1.0), 0.0)
    return ((n * s).sum() - problem.weight * lat.sum(axis=1)) / n.sum()


def simplex_grid(m, total, floor, resolution):
    """Compute splits on a grid of ``resolution`` points per unit share, every share >= floor."""
    ticks = np.arange(resolution + 1) / resolution
    rows = [r for r in itertools.product(ticks, repeat=m - 1) if sum(r) <= 1]
    shares = np.array([list(r) + [1 - sum(r)] for r in rows])
    compute = shares * total
    return compute[np.all(compute >= floor - 1e-12, axis=1)]


def test_utility_matches_a_hand_computation():
    p = paper_problem(n_tasks=[2, 1, 0], min_share=0.0)
    steps, compute = [1, 10, 10], [10.0, 24.0, 0.0]
    w0, w1 = 1.589 + 2.6, 10 * 1.607 + 2.55
    expected = (2 * 30.0 + (np.log(10) + 27.0) - 0.2 * (3 * w0 / 10.0 + 1 * w1 / 24.0)) / 3
    assert utility(p, steps, compute) == pytest.approx(expected, rel=1e-12)


def test_allocation_reports_fifo_latency_and_makespan():
    p = paper_problem()
    a = al.evaluate(p, [1, 18, 22], [4.0, 10.0, 20.0])
    t = p.work_tflop([1, 18, 22]) / np.array([4.0, 10.0, 20.0])
    np.testing.assert_allclose(a.seconds_per_image, t)
    np.testing.assert_allclose(a.makespan, p.n_tasks * t)
    np.testing.assert_allclose(a.mean_latency, (p.n_tasks + 1) / 2 * t)


def test_split_without_floor_is_the_cauchy_schwarz_closed_form():
    p = paper_problem(min_share=0.0)
    steps = np.array([1, 26, 14])
    root = np.sqrt(p.n_tasks * (p.n_tasks + 1) * p.work_tflop(steps))
    np.testing.assert_allclose(optimal_compute(p, steps), 34.0 * root / root.sum(), rtol=1e-12)


@pytest.mark.parametrize("min_share", [0.0, 0.05, 0.2, 1 / 3])
def test_water_filling_beats_every_point_of_a_fine_grid(min_share):
    p = paper_problem(n_tasks=[12, 6, 1], min_share=min_share)
    steps = np.array([1, 22, 42])
    best = optimal_compute(p, steps)
    assert best.sum() == pytest.approx(34.0)
    assert np.all(best >= min_share * 34.0 - 1e-9)
    grid = simplex_grid(3, 34.0, min_share * 34.0, resolution=300)
    grid = grid[np.all(grid > 0, axis=1)]
    values = grid_utilities(p, steps, grid)
    u = utility(p, steps, best)
    assert u >= values.max() - 1e-12  # never worse than any grid point
    assert u - values.max() < 1e-3 * abs(u)  # and the grid's best is close (it is a fine grid)


def test_a_floor_that_binds_is_respected():
    p = paper_problem(n_tasks=[1, 40, 0], min_share=0.2)  # the 1-task model would get far below 20%
    c = optimal_compute(p, [1, 42, 10])
    assert c[0] == pytest.approx(0.2 * 34.0)
    assert c[2] == 0.0 and c.sum() == pytest.approx(34.0)


@pytest.mark.parametrize("seed", range(6))
def test_exact_equals_brute_force_over_steps_and_a_compute_grid(seed):
    rng = np.random.default_rng(seed)
    p = AllocationProblem(
        n_tasks=rng.integers(1, 15, 3),
        step_options=[(1,), (10, 26, 42), (10, 18, 30, 42)],
        tflop_per_step=rng.uniform(1, 15, 3),
        tflop_fixed=rng.uniform(0, 10, 3),
        score_a=rng.uniform(0, 3, 3),
        score_b=rng.uniform(26, 34, 3),
        capacity_tflops=float(rng.uniform(10, 60)),
        weight=float(rng.uniform(0.05, 0.5)),
        min_share=float(rng.choice([0.0, 0.05])),
    )
    grid = simplex_grid(3, p.capacity_tflops, p.min_compute, resolution=200)
    grid = grid[np.all(grid > 0, axis=1)]
    brute = max(
        grid_utilities(p, np.array(z), grid).max() for z in itertools.product(*p.step_options)
    )
    exact = solve_exact(p)
    assert exact.utility >= brute - 1e-12
    assert exact.utility - brute < 2e-3 * abs(exact.utility)


def test_exact_never_loses_to_other_solvers_or_random_feasible_states():
    rng = np.random.default_rng(7)
    for _ in range(40):
        p = random_problem(rng, n_models=int(rng.integers(2, 5)))
        best = solve_exact(p).utility
        rivals = [
            simulated_annealing(p, rng).utility,
            equal_allocation(p).utility,
            optimal_step(p).utility,
            optimal_step(p, tolerance=0.5).utility,
        ]
        act = p.active
        for _ in range(20):  # random feasible states
            z = [rng.choice(o) for o in p.step_options]
            share = rng.dirichlet(np.ones(act.sum()))
            c = np.zeros(p.n_models)
            c[act] = p.min_compute + share * (p.capacity_tflops - act.sum() * p.min_compute)
            if act.any():
                rivals.append(utility(p, z, c))
        assert best >= max(rivals) - 1e-9 * max(1.0, abs(best))


def test_annealer_is_within_a_tenth_of_a_percent_of_exact_on_500_problems():
    gaps = []
    for seed in range(500):
        p = random_problem(np.random.default_rng(seed))
        exact = solve_exact(p).utility
        sa = simulated_annealing(p, np.random.default_rng(10_000 + seed)).utility
        assert sa <= exact + 1e-9 * abs(exact)
        gaps.append((exact - sa) / abs(exact))
    assert np.mean(np.array(gaps) <= 1e-3) >= 0.99


def test_annealer_is_deterministic_per_seed_and_trace_does_not_change_it():
    p = random_problem(np.random.default_rng(1), n_models=4)
    a = simulated_annealing(p, np.random.default_rng(5))
    b = simulated_annealing(p, np.random.default_rng(5), trace=True)
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.compute_tflops, b.compute_tflops)
    assert a.utility == b.utility and a.trace is None


def test_annealer_trace_shows_geometric_cooling_and_metropolis_acceptance():
    p = paper_problem(n_tasks=[10, 20, 10])
    result = simulated_annealing(
        p,
        np.random.default_rng(0),
        trace=True,
        initial_temperature=2.0,
        cooling=0.8,
        final_temperature=1e-3,
        moves_per_temperature=10,
    )
    tr = result.trace
    n_temps = int(np.ceil(np.log(1e-3 / 2.0) / np.log(0.8)))
    assert len(tr) == n_temps * 10
    levels = tr["temperature"].to_numpy()[::10]
    np.testing.assert_allclose(levels, 2.0 * 0.8 ** np.arange(n_temps))
    assert np.all(np.diff(tr["best_utility"]) >= 0)
    assert np.any(np.diff(tr["utility"]) < 0)  # worse states are accepted at high temperature
    assert tr["best_utility"].iloc[-1] == pytest.approx(result.utility, rel=1e-9)


def test_annealer_handles_one_active_model_and_fixed_steps():
    one = paper_problem(n_tasks=[0, 7, 0])
    a = simulated_annealing(one, np.random.default_rng(0))
    assert a.compute_tflops[1] == pytest.approx(34.0) and a.utility == pytest.approx(
        solve_exact(one).utility
    )
    fixed = paper_problem(step_options=[(1,), (20,), (30,)])
    assert simulated_annealing(fixed, np.random.default_rng(0)).utility == pytest.approx(
        solve_exact(fixed).utility, rel=1e-5
    )


def test_equal_allocation_splits_evenly_and_picks_the_best_steps_for_that_split():
    p = paper_problem(n_tasks=[4, 0, 6])
    a = equal_allocation(p)
    np.testing.assert_allclose(a.compute_tflops, [17.0, 0.0, 17.0])
    for z in Z:
        assert a.utility >= utility(p, [1, 10, z], [17.0, 0.0, 17.0]) - 1e-12


def test_optimal_step_takes_the_best_scoring_steps_or_the_cheapest_within_tolerance():
    p = paper_problem()
    a = optimal_step(p)
    np.testing.assert_array_equal(a.steps, [1, 42, 42])
    np.testing.assert_allclose(a.compute_tflops, optimal_compute(p, a.steps))
    b = optimal_step(
        p, tolerance=0.2
    )  # sd15: ln(42/z) <= 0.2 -> z >= 34.4; sdxl: 1.5 ln(42/z) <= 0.2 -> z >= 36.8
    np.testing.assert_array_equal(b.steps, [1, 38, 38])
    flat = optimal_step(paper_problem(score_a=[0.0, -1.0, 1.0]))
    assert flat.steps[1] == 10  # a falling curve scores best at its fewest steps


def test_a_slot_without_tasks_gives_an_empty_allocation():
    p = paper_problem(n_tasks=[0, 0, 0])
    for result in (
        solve_exact(p),
        simulated_annealing(p, np.random.default_rng(0)),
        equal_allocation(p),
        optimal_step(p),
    ):
        assert result.utility == 0.0
        np.testing.assert_array_equal(result.compute_tflops, 0.0)
        np.testing.assert_array_equal(result.makespan, 0.0)


def test_models_without_tasks_get_no_compute():
    p = paper_problem(n_tasks=[5, 0, 3])
    for result in (solve_exact(p), simulated_annealing(p, np.random.default_rng(0))):
        assert result.compute_tflops[1] == 0.0 and np.isnan(result.mean_latency[1])
        assert result.compute_tflops.sum() == pytest.approx(34.0)


def test_enumeration_refuses_huge_problems_that_the_bound_method_solves():
    p = AllocationProblem(
        n_tasks=[5] * 8,
        step_options=[Z] * 8,
        tflop_per_step=[1.0] * 8,
        tflop_fixed=[1.0] * 8,
        score_a=[1.0] * 8,
        score_b=[30.0] * 8,
        capacity_tflops=30.0,
    )
    with pytest.raises(ValueError, match="bound method"):
        solve_exact(p, method="enumerate")
    best = solve_exact(p)
    assert best.utility >= simulated_annealing(p, np.random.default_rng(0)).utility - 1e-12
    # eight identical models: the optimum takes one multiset of steps, written in ascending order
    assert np.all(np.diff(best.steps) >= 0)


@st.composite
def problems(draw):
    m = draw(st.integers(2, 4))
    floats = lambda lo, hi: st.lists(st.floats(lo, hi), min_size=m, max_size=m)  # noqa: E731
    return AllocationProblem(
        n_tasks=draw(st.lists(st.integers(0, 25), min_size=m, max_size=m)),
        step_options=[
            draw(st.lists(st.integers(1, 60), min_size=1, max_size=5, unique=True))
            for _ in range(m)
        ],
        tflop_per_step=draw(floats(0.05, 20)),
        tflop_fixed=draw(floats(0, 12)),
        score_a=draw(floats(-1, 3)),
        score_b=draw(floats(15, 40)),
        capacity_tflops=draw(st.floats(0.5, 200)),
        weight=draw(st.floats(0, 1)),
        min_share=draw(st.floats(0, 1 / m)),
    )


@settings(deadline=None, max_examples=60)
@given(problem=problems(), seed=st.integers(0, 2**32 - 1))
def test_every_solver_returns_a_feasible_consistent_allocation(problem, seed):
    results = [
        solve_exact(problem),
        simulated_annealing(problem, np.random.default_rng(seed)),
        equal_allocation(problem),
        optimal_step(problem),
    ]
    c_total, floor, act = problem.capacity_tflops, problem.min_compute, problem.active
    for r in results:
        assert r.compute_tflops.sum() <= c_total * (1 + 1e-9)
        assert np.all(r.compute_tflops[act] > 0)
        assert np.all(r.compute_tflops[act] >= floor * (1 - 1e-9))
        assert np.all(r.compute_tflops[~act] == 0)
        assert all(z in opts for z, opts in zip(r.steps, problem.step_options))
        if act.any():
            assert r.utility == pytest.approx(
                utility(problem, r.steps, r.compute_tflops), rel=1e-9, abs=1e-9
            )
            assert results[0].utility >= r.utility - 1e-9 * max(1.0, abs(results[0].utility))


@pytest.mark.parametrize(
    "change, argname",
    [
        (dict(n_tasks=[3, -1, 2]), "n_tasks"),
        (dict(n_tasks=[3, np.nan, 2]), "n_tasks"),
        (dict(n_tasks=[3]), "n_tasks"),
        (dict(step_options=[(1,), (), Z]), "step_options"),
        (dict(step_options=[(1,), (0, 10), Z]), "step_options"),
        (dict(step_options=[(1,), Z]), "step_options"),
        (dict(tflop_per_step=[1.0, 0.0, 13.0]), "tflop_per_step"),
        (dict(tflop_per_step=[1.0, np.nan, 13.0]), "tflop_per_step"),
        (dict(tflop_fixed=[1.0, -2.0, 13.0]), "tflop_fixed"),
        (dict(score_a=[0.0, np.nan, 1.0]), "score_a"),
        (dict(score_b=[30.0, 30.0]), "score_b"),
        (dict(score_b=[30.0, np.inf, 30.0]), "score_b"),
        (dict(capacity_tflops=0.0), "capacity_tflops"),
        (dict(capacity_tflops=np.nan), "capacity_tflops"),
        (dict(weight=-0.1), "weight"),
        (dict(min_share=0.5), "min_share"),
        (dict(min_share=-0.1), "min_share"),
    ],
)
def test_bad_problems_name_the_argument(change, argname):
    with pytest.raises(ValueError, match=argname):
        paper_problem(**change)


def test_bad_solver_inputs_name_the_argument():
    p = paper_problem()
    with pytest.raises(ValueError, match="steps"):
        utility(p, [1, 11, 10], [10.0, 10.0, 10.0])
    with pytest.raises(ValueError, match="compute"):
        utility(p, [1, 10, 10], [20.0, 10.0, 10.0])
    with pytest.raises(ValueError, match="compute"):
        utility(p, [1, 10, 10], [10.0, 0.0, 10.0])
    with pytest.raises(ValueError, match="compute"):
        utility(p, [1, 10, 10], [10.0, np.nan, 10.0])
    with pytest.raises(ValueError, match="tolerance"):
        optimal_step(p, tolerance=-1.0)
    with pytest.raises(ValueError, match="rng"):
        simulated_annealing(p, 3)
    with pytest.raises(ValueError, match="cooling"):
        simulated_annealing(p, np.random.default_rng(0), cooling=1.0)
    with pytest.raises(ValueError, match="final_temperature"):
        simulated_annealing(p, np.random.default_rng(0), final_temperature=5.0)
    with pytest.raises(ValueError, match="problem"):
        solve_exact("not a problem")


# --- the paper's readings of latency, utility and the score curve ---------------------------------


def reading_utilities(problem, steps, compute):
    """U by hand for any reading, vectorised over rows of ``compute``; written from the definitions."""
    n = problem.n_tasks.astype(float)
    act = n > 0
    w = np.asarray(steps) * problem.tflop_per_step + problem.tflop_fixed
    z = np.asarray(steps, dtype=float)
    if problem.saturation_steps is not None:
        z = np.minimum(z, problem.saturation_steps)
    s = problem.score_a * np.log(z) + problem.score_b
    t = np.where(act, w / np.where(act, compute, 1.0), 0.0)  # seconds per image
    mean_latency = (n + 1) / 2 * t if problem.latency == "fifo" else t
    if problem.utility == "per_task":
        return ((n * s).sum() - problem.weight * (n * mean_latency).sum(axis=1)) / n.sum()
    return ((s * act).sum() - problem.weight * (mean_latency * act).sum(axis=1)) / act.sum()


@pytest.mark.parametrize("latency", al.LATENCY_READINGS)
@pytest.mark.parametrize("reading_utility", al.UTILITY_READINGS)
@pytest.mark.parametrize("saturation", [None, 18.0])
def test_every_reading_is_solved_exactly_against_brute_force(latency, reading_utility, saturation):
    rng = np.random.default_rng(11)
    p = AllocationProblem(
        n_tasks=rng.integers(1, 15, 3),
        step_options=[(1,), (10, 18, 26, 42), (10, 18, 30, 42)],
        tflop_per_step=rng.uniform(1, 15, 3),
        tflop_fixed=rng.uniform(0, 10, 3),
        score_a=rng.uniform(0.5, 3, 3),
        score_b=rng.uniform(26, 34, 3),
        capacity_tflops=30.0,
        weight=0.3,
        min_share=0.0,
        latency=latency,
        utility=reading_utility,
        saturation_steps=saturation,
    )
    grid = simplex_grid(3, p.capacity_tflops, 0.0, resolution=200)
    grid = grid[np.all(grid > 0, axis=1)]
    values = {
        z: reading_utilities(p, np.array(z), grid) for z in itertools.product(*p.step_options)
    }
    brute = max(v.max() for v in values.values())
    exact = solve_exact(p)
    assert exact.utility >= brute - 1e-12
    assert exact.utility - brute < 2e-3 * abs(exact.utility)
    best = max(values, key=lambda z: values[z].max())
    c = grid[values[best].argmax()]
    assert utility(p, best, c) == pytest.approx(reading_utilities(p, np.array(best), c[None, :])[0])
    assert simulated_annealing(p, np.random.default_rng(0)).utility >= exact.utility - 1e-3 * abs(
        exact.utility
    )


def test_per_image_latency_and_saturation_change_what_they_should():
    fifo = paper_problem()
    image = paper_problem(latency="per_image")
    a, b = (
        al.evaluate(fifo, [1, 18, 22], [4.0, 10.0, 20.0]),
        al.evaluate(image, [1, 18, 22], [4.0, 10.0, 20.0]),
    )
    np.testing.assert_allclose(b.mean_latency, b.seconds_per_image)
    np.testing.assert_allclose(a.makespan, b.makespan)  # time consumption N_m t_m under both
    sat = paper_problem(saturation_steps=26)
    assert sat.estimated_score([1, 30, 42])[1:] == pytest.approx(
        sat.estimated_score([1, 26, 26])[1:]
    )
    assert optimal_step(sat).steps.tolist() == [1, 26, 26]  # the smallest z reaching the top score
    assert optimal_step(fifo).steps.tolist() == [1, 42, 42]  # the log curve never stops growing


@pytest.mark.parametrize(
    "field, value", [("latency", "queue"), ("utility", "per_slot"), ("saturation_steps", 0.0)]
)
def test_unknown_readings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        paper_problem(**{field: value})


# --- the bound method (docs/SPEC.md section 2a) and up to 12 models -------------------------------


def brute_force(problem):
    """max_z U(z, best split) over every step choice, one utility() call per choice: the oracle."""
    if not problem.active.any():
        return 0.0
    return max(
        utility(problem, z, optimal_compute(problem, z))
        for z in itertools.product(*problem.step_options)
    )


def near_copies(problem, rng, noise):
    """The problem with every model's work per step perturbed by a relative ``noise``."""
    scale = 1 + noise * rng.standard_normal(problem.n_models)
    return dataclasses.replace(problem, tflop_per_step=problem.tflop_per_step * scale)


def assert_same_optimum(problem, found, reference):
    assert found.utility == pytest.approx(reference.utility, rel=1e-12, abs=1e-12)
    np.testing.assert_array_equal(found.steps, reference.steps)
    np.testing.assert_allclose(
        found.compute_tflops, reference.compute_tflops, rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("identical", [False, True])
@pytest.mark.parametrize("n_models", [2, 3, 4, 5, 6])
def test_the_bound_method_equals_enumeration_on_random_problems(n_models, identical):
    for seed in range(25 if n_models < 6 else 8):
        p = random_problem(np.random.default_rng(seed), n_models=n_models, identical=identical)
        assert_same_optimum(p, solve_exact(p, method="bound"), solve_exact(p, method="enumerate"))


@pytest.mark.parametrize("seed", range(10))
def test_the_bound_method_equals_a_brute_force_of_utility_calls(seed):
    rng = np.random.default_rng(seed)
    p = random_problem(rng, n_models=4, identical=seed % 2 == 1)
    search = al.bound_search(p)
    best = brute_force(p)
    assert search.allocation.utility == pytest.approx(best, rel=1e-12)
    assert search.lower - 1e-12 <= best <= search.upper + 1e-12
    assert search.candidates >= 1 and search.candidates <= search.combinations


@pytest.mark.parametrize("noise", [1e-9, 1e-4])
def test_nearly_identical_models_cannot_be_merged_and_are_still_solved_exactly(noise):
    rng = np.random.default_rng(3)
    for _ in range(12):
        p = near_copies(random_problem(rng, n_models=5, identical=True), rng, noise)
        assert al.bound_search(p).groups == 5
        assert_same_optimum(p, solve_exact(p, method="bound"), solve_exact(p, method="enumerate"))


def test_identical_models_are_one_group_and_take_the_first_arrangement():
    rng = np.random.default_rng(0)
    hard = []
    for _ in range(150):
        p = random_problem(rng, n_models=4, identical=True)
        search = al.bound_search(p)
        assert search.groups == 1
        exact = solve_exact(p, method="enumerate")
        assert_same_optimum(p, search.allocation, exact)
        if len(set(exact.steps.tolist())) > 1:
            hard.append(exact.steps)
    assert hard, "no problem split identical models over two step counts: the test is vacuous"
    for steps in hard:  # ties between permutations go to the ascending arrangement
        assert np.all(np.diff(steps) >= 0)


@pytest.mark.parametrize(
    "change",
    [
        dict(min_share=1 / 3),  # every floor binds: the only split is C/3 each
        dict(n_tasks=[1, 40, 30], min_share=0.3),  # the 1-task model sits on its floor
        dict(step_options=[(1,), (18,), (30,)]),  # a single option everywhere
        dict(step_options=[(1,), (18,), Z]),
        dict(n_tasks=[0, 7, 0]),  # one model with tasks
        dict(n_tasks=[4, 0, 6]),
        dict(weight=0.0),  # no latency term: every model its best score
        dict(score_a=[0.0, -1.0, 1.5]),  # a falling curve: fewest steps dominate
        dict(saturation_steps=18.0),  # options past saturation are dominated
        dict(latency="per_image", utility="per_model", saturation_steps=26.0),
    ],
)
def test_the_bound_method_on_adversarial_problems(change):
    p = paper_problem(**change)
    best = brute_force(p)
    for method in al.EXACT_METHODS:
        assert solve_exact(p, method=method).utility == pytest.approx(best, rel=1e-12)
    assert_same_optimum(p, solve_exact(p, method="bound"), solve_exact(p, method="enumerate"))


def test_a_binding_floor_is_kept_by_the_bound_method():
    p = paper_problem(n_tasks=[1, 40, 30], min_share=0.3)
    found = solve_exact(p, method="bound")
    assert found.compute_tflops[0] == pytest.approx(0.3 * 34.0)
    assert np.all(found.compute_tflops >= 0.3 * 34.0 * (1 - 1e-12))


@pytest.mark.parametrize("latency", al.LATENCY_READINGS)
@pytest.mark.parametrize("reading_utility", al.UTILITY_READINGS)
@pytest.mark.parametrize("saturation", [None, 22.0])
def test_the_bound_method_covers_every_reading(latency, reading_utility, saturation):
    rng = np.random.default_rng(5)
    for identical in (False, True):
        base = random_problem(rng, n_models=5, identical=identical)
        p = dataclasses.replace(
            base, latency=latency, utility=reading_utility, saturation_steps=saturation
        )
        assert_same_optimum(p, solve_exact(p, method="bound"), solve_exact(p, method="enumerate"))


def test_the_bound_is_an_upper_bound_at_every_multiplier_and_convex():
    rng = np.random.default_rng(2)
    for _ in range(20):
        p = random_problem(rng, n_models=int(rng.integers(2, 6)))
        best = solve_exact(p).utility
        search = al.bound_search(p)
        nus = np.geomspace(1e-6, 1e3, 40) * max(search.nu, 1e-9)
        bounds = np.array([al.dual_bound(p, nu) for nu in nus])
        assert np.all(bounds >= best - 1e-9)
        assert al.dual_bound(p, search.nu) == pytest.approx(search.upper, rel=1e-12)
        assert search.upper <= bounds.min() + 1e-6 * abs(search.upper)  # the search found its min
        mid = np.array([al.dual_bound(p, nu) for nu in (nus[:-1] + nus[1:]) / 2])
        assert np.all(mid <= (bounds[:-1] + bounds[1:]) / 2 + 1e-9)  # convex in nu


@pytest.mark.parametrize("n_models", [8, 10, 12])
@pytest.mark.parametrize("identical", [False, True])
def test_twelve_models_are_solved_and_the_optimum_beats_every_heuristic(n_models, identical):
    rng = np.random.default_rng(n_models)
    for _ in range(6):
        p = random_problem(rng, n_models=n_models, identical=identical)
        search = al.bound_search(p)
        best = search.allocation
        assert best.compute_tflops.sum() == pytest.approx(p.capacity_tflops)
        assert search.lower <= best.utility + 1e-12 <= search.upper + 2e-12
        rivals = [
            simulated_annealing(p, rng).utility,
            equal_allocation(p).utility,
            optimal_step(p).utility,
        ]
        assert best.utility >= max(rivals) - 1e-12
        for m in range(p.n_models):  # no single step move improves the optimum (1-opt)
            for z in p.step_options[m]:
                steps = best.steps.copy()
                steps[m] = z
                if p.active.any():
                    u = utility(p, steps, optimal_compute(p, steps))
                    assert u <= best.utility + 1e-12


def test_enumeration_runs_below_the_limit_and_the_bound_above(monkeypatch):
    def refuse(problem, red):
        raise AssertionError("bound method called")

    monkeypatch.setattr(al, "_bound_search", refuse)
    small = paper_problem()  # 81 combinations
    assert solve_exact(small).utility == pytest.approx(brute_force(small))
    large = random_problem(np.random.default_rng(0), n_models=6)  # 59,049 combinations
    with pytest.raises(AssertionError, match="bound method"):
        solve_exact(large)


def test_up_to_twelve_models_are_accepted_and_thirteen_refused():
    rng = np.random.default_rng(0)
    p = random_problem(rng, n_models=al.MAX_MODELS)
    assert p.n_models == 12
    with pytest.raises(ValueError, match="n_tasks"):
        dataclasses.replace(p, n_tasks=[1] * 13)
    with pytest.raises(ValueError, match="n_models"):
        random_problem(rng, n_models=13)
    with pytest.raises(ValueError, match="identical"):
        random_problem(rng, n_models=3, identical="yes")
    same = random_problem(rng, n_models=5, identical=True)
    for field in ("n_tasks", "tflop_per_step", "tflop_fixed", "score_a", "score_b"):
        assert len(set(getattr(same, field).tolist())) == 1, field


def test_bad_exact_arguments_name_the_argument():
    p = paper_problem()
    with pytest.raises(ValueError, match="method"):
        solve_exact(p, method="greedy")
    with pytest.raises(ValueError, match="nu"):
        al.dual_bound(p, -1.0)
    with pytest.raises(ValueError, match="problem"):
        al.bound_search("p")


def test_a_slot_without_tasks_has_a_trivial_bound():
    p = paper_problem(n_tasks=[0, 0, 0])
    search = al.bound_search(p)
    assert search.allocation.utility == 0.0 and search.upper == 0.0
    assert al.dual_bound(p, 2.0) == pytest.approx(2.0 * 34.0)


@st.composite
def larger_problems(draw):
    """2 to 7 models, any reading, sometimes with copies of one model (ties for the bound)."""
    m = draw(st.integers(2, 7))
    copies = draw(st.booleans())
    floats = lambda lo, hi: st.lists(st.floats(lo, hi), min_size=m, max_size=m)  # noqa: E731
    options = [
        draw(st.lists(st.integers(1, 60), min_size=1, max_size=4, unique=True)) for _ in range(m)
    ]
    fields = dict(
        n_tasks=draw(st.lists(st.integers(0, 25), min_size=m, max_size=m)),
        tflop_per_step=draw(floats(0.05, 20)),
        tflop_fixed=draw(floats(0, 12)),
        score_a=draw(floats(-1, 3)),
        score_b=draw(floats(15, 40)),
    )
    if copies:  # every model a copy of model 0
        options = [options[0]] * m
        fields = {k: [v[0]] * m for k, v in fields.items()}
    return AllocationProblem(
        step_options=options,
        capacity_tflops=draw(st.floats(0.5, 200)),
        weight=draw(st.sampled_from([0.0, 0.01, 0.2, 1.0, 5.0])),
        min_share=draw(st.floats(0, 1 / m)),
        latency=draw(st.sampled_from(al.LATENCY_READINGS)),
        utility=draw(st.sampled_from(al.UTILITY_READINGS)),
        saturation_steps=draw(st.one_of(st.none(), st.floats(1, 60))),
        **fields,
    )


@settings(deadline=None, max_examples=150)
@given(problem=larger_problems())
def test_bound_and_enumeration_agree_on_any_problem(problem):
    bound = solve_exact(problem, method="bound")
    exact = solve_exact(problem, method="enumerate")
    assert_same_optimum(problem, bound, exact)
    search = al.bound_search(problem)
    if problem.active.any():
        assert search.lower <= exact.utility + 1e-9 * max(1.0, abs(exact.utility))
        assert exact.utility <= search.upper + 1e-9 * max(1.0, abs(exact.utility))


# --- the annealer's limits -----------------------------------------------------------------------


def test_the_annealer_refuses_parameters_asking_for_too_many_iterations():
    p = paper_problem()
    with pytest.raises(ValueError, match="cooling, final_temperature") as err:
        simulated_annealing(p, np.random.default_rng(0), cooling=0.9999999, final_temperature=1e-12)
    assert "10,000,000" in str(err.value)
    with pytest.raises(ValueError, match="moves_per_temperature"):
        simulated_annealing(p, np.random.default_rng(0), moves_per_temperature=10**6)
    empty = paper_problem(n_tasks=[0, 0, 0])  # refused before any work, even for an empty slot
    with pytest.raises(ValueError, match="cooling"):
        simulated_annealing(empty, np.random.default_rng(0), cooling=0.9999999)


def test_the_iteration_limit_is_inclusive(monkeypatch):
    p = paper_problem()
    monkeypatch.setattr(al, "MAX_ANNEALING_ITERATIONS", 88 * 20)  # the defaults' iterations
    simulated_annealing(p, np.random.default_rng(0))
    monkeypatch.setattr(al, "MAX_ANNEALING_ITERATIONS", 88 * 20 - 1)
    with pytest.raises(ValueError, match="1,759"):
        simulated_annealing(p, np.random.default_rng(0))


def test_drawing_random_numbers_in_blocks_changes_nothing(monkeypatch):
    p = random_problem(np.random.default_rng(4), n_models=5)
    whole = simulated_annealing(p, np.random.default_rng(9), trace=True)
    monkeypatch.setattr(al, "_DRAW_BLOCK", 7)
    blocks = simulated_annealing(p, np.random.default_rng(9), trace=True)
    assert whole.utility == blocks.utility
    np.testing.assert_array_equal(whole.steps, blocks.steps)
    pd.testing.assert_frame_equal(whole.trace, blocks.trace)


@settings(deadline=None, max_examples=60)
@given(problem=larger_problems(), nu=st.floats(0.0, 1e4))
def test_the_dual_bound_is_above_the_optimum_at_any_multiplier(problem, nu):
    best = solve_exact(problem).utility
    bound = al.dual_bound(problem, nu)
    assert bound >= best - 1e-9 * max(1.0, abs(best), abs(bound))
