"""Tests of aigc_lib.experiments and aigc_lib.metrics: time consumption, sweeps, interpolated models, solvers."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import allocation as al
from aigc_lib import experiments, metrics, simulation
from aigc_lib.scenario import load_scenario


@pytest.fixture(scope="module")
def sc():
    return load_scenario()


@pytest.fixture(scope="module")
def run(sc):
    return simulation.simulate(sc, 12, 3, allocation="exact")


# --- time consumption and summaries ---------------------------------------------------------------


def test_time_consumption_is_n_times_the_image_time_at_the_models_share(sc, run):
    frame = metrics.time_consumption(run)
    slots = run.slots
    expected = []
    for s in range(len(slots)):
        for m in sc.models:
            n = slots.loc[s, f"n_{m.name}"]
            if n > 0:
                share = slots.loc[s, f"compute_{m.name}"] / sc.capacity_tflops
                seconds = m.image_seconds(slots.loc[s, f"steps_{m.name}"]) / share
                expected.append((s, m.name, n, n * seconds))
    assert len(frame) == len(expected)
    for (s, name, n, makespan), row in zip(expected, frame.itertuples()):
        assert (row.slot, str(row.model), row.n_tasks) == (s, name, n)
        assert row.makespan == pytest.approx(makespan, rel=1e-9)


def test_summary_means_match_the_tables(run):
    summary = metrics.summarise(run)
    tasks = run.tasks
    assert summary["mean_score"] == pytest.approx(tasks["score"].mean())
    assert summary["mean_latency"] == pytest.approx(tasks["latency"].mean())
    assert summary["mean_utility"] == pytest.approx(run.slots["utility"].mean())
    multi = tasks[tasks["model"] != "sdxl-turbo"]
    assert summary["mean_steps"] == pytest.approx(multi["steps"].mean())
    per_model = metrics.time_consumption(run).groupby("model", observed=True)["makespan"].mean()
    assert summary["mean_time_consumption"] == pytest.approx(per_model.mean())


def test_summary_steps_follow_the_named_models(run):
    only_sdxl = metrics.summarise(run, ["sdxl"])["mean_steps"]
    assert only_sdxl == pytest.approx(run.tasks.loc[run.tasks["model"] == "sdxl", "steps"].mean())
    assert np.isnan(metrics.summarise(run, [])["mean_steps"])


def test_results_must_come_from_simulate():
    with pytest.raises(ValueError, match="result"):
        metrics.time_consumption(pd.DataFrame())


# --- parameters and sweeps ------------------------------------------------------------------------


def test_with_parameter_sets_one_field(sc):
    assert experiments.with_parameter(sc, "weight", 0.5).weight == 0.5
    faster = experiments.with_parameter(sc, "capacity_tflops", 2 * sc.capacity_tflops)
    assert faster.capacity_tflops == 2 * sc.capacity_tflops
    assert faster.models[2].image_seconds(10) == pytest.approx(sc.models[2].image_seconds(10) / 2)
    assert experiments.with_parameter(sc, "tasks_per_slot", 20).tasks_per_slot == 20
    shifted = experiments.with_parameter(sc, "threshold_shift", 1.5)
    assert shifted.thresholds == pytest.approx([t + 1.5 for t in sc.thresholds])
    assert len(experiments.with_parameter(sc, "n_models", 4).models) == 4
    assert sc.weight == 0.2  # the original is untouched


@pytest.mark.parametrize(
    "name, value, argname",
    [
        ("unknown", 1, "name"),
        ("rho", 0.5, "name"),
        ("tasks_per_slot", 0, "value"),
        ("tasks_per_slot", 2.5, "value"),
        ("capacity_tflops", 0, "value"),
        ("weight", -1, "value"),
        ("n_models", 1, "n_models"),
        ("threshold_shift", float("nan"), "value"),
    ],
)
def test_with_parameter_refuses_bad_values(sc, name, value, argname):
    with pytest.raises(ValueError, match=argname):
        experiments.with_parameter(sc, name, value)


def test_larger_lambda_gives_fewer_steps_and_less_latency(sc):
    frame = experiments.sweep(sc, "weight", [0.01, 0.1, 1.0], 6, 0, allocation="exact")
    assert frame["value"].tolist() == [0.01, 0.1, 1.0]
    assert (frame["name"] == "weight").all()
    assert frame["mean_steps"].is_monotonic_decreasing
    assert frame["mean_latency"].is_monotonic_decreasing
    assert frame["mean_score"].is_monotonic_decreasing


def test_more_capacity_never_plans_worse(sc):
    frame = experiments.sweep(sc, "capacity_tflops", [17.0, 34.0, 68.0], 6, 0, allocation="exact")
    assert frame["mean_utility"].is_monotonic_increasing


def test_sweep_is_deterministic_and_rho_goes_to_simulate(sc):
    first = experiments.sweep(sc, "rho", [0.0, 1.0], 5, 7)
    pd.testing.assert_frame_equal(first, experiments.sweep(sc, "rho", [0.0, 1.0], 5, 7))
    baseline = metrics.summarise(simulation.simulate(sc, 5, 7))
    assert first.loc[0, "mean_utility"] == pytest.approx(baseline["mean_utility"])
    assert first.loc[1, "mean_utility"] != first.loc[0, "mean_utility"]


@pytest.mark.parametrize(
    "name, values, options, argname",
    [
        ("speed", [1], {}, "name"),
        ("weight", [], {}, "values"),
        ("weight", "0.2", {}, "values"),
        ("rho", [1.5], {}, "rho"),
    ],
)
def test_sweep_refuses_bad_arguments(sc, name, values, options, argname):
    with pytest.raises(ValueError, match=argname):
        experiments.sweep(sc, name, values, 2, 0, **options)


# --- interpolated models ---------------------------------------------------------------------------


def test_the_real_number_of_models_returns_the_scenario(sc):
    same = experiments.interpolated_scenario(sc, 3)
    assert same.models == sc.models
    assert same.thresholds == pytest.approx(sc.thresholds)


def test_two_models_keep_the_ends_with_the_middle_threshold(sc):
    two = experiments.interpolated_scenario(sc, 2)
    assert two.model_names == ["sdxl-turbo", "sdxl"]
    assert two.thresholds == pytest.approx([(sc.thresholds[0] + sc.thresholds[1]) / 2])


def test_extra_models_are_labelled_and_lie_between_their_neighbours(sc):
    five = experiments.interpolated_scenario(sc, 5)
    assert five.model_names == [
        "sdxl-turbo",
        "hypothetical-sdxl-turbo-sd15",
        "sd15",
        "hypothetical-sd15-sdxl",
        "sdxl",
    ]
    assert experiments.interpolated_scenario(sc, 4).model_names == [
        "sdxl-turbo",
        "sd15",
        "hypothetical-sd15-sdxl",
        "sdxl",
    ]
    for low, mid, high in zip(five.models[::2], five.models[1::2], five.models[2::2]):
        assert mid.tflop_per_step == pytest.approx(
            np.sqrt(low.tflop_per_step * high.tflop_per_step)
        )
        for field in ("tflop_fixed", "score_slope", "score_offset", "score_beta"):
            assert getattr(mid, field) == pytest.approx(
                (getattr(low, field) + getattr(high, field)) / 2
            )
        assert mid.steps == high.steps and mid.zref == high.zref
    # thresholds on the line through the real ones, placed at midpoints of positions 0, 1/4, ..., 1
    slope = (sc.thresholds[1] - sc.thresholds[0]) / 0.5
    expected = [sc.thresholds[0] + slope * (x - 0.25) for x in (0.125, 0.375, 0.625, 0.875)]
    assert five.thresholds == pytest.approx(expected)


@settings(deadline=None, max_examples=25)
@given(low=st.floats(20, 35), gap=st.floats(0.5, 10), n_models=st.integers(2, 5))
def test_interpolated_thresholds_stay_increasing(sc, low, gap, n_models):
    base = sc.replace(thresholds=(low, low + gap))
    changed = experiments.interpolated_scenario(base, n_models)
    assert len(changed.models) == n_models and len(changed.thresholds) == n_models - 1
    assert all(b > a for a, b in zip(changed.thresholds, changed.thresholds[1:]))


def test_interpolated_scenarios_simulate(sc):
    for n in (2, 4, 5):
        result = simulation.simulate(experiments.interpolated_scenario(sc, n), 3, 0)
        assert result.tasks["model"].cat.categories.size == n


@pytest.mark.parametrize("n_models", [1, 6, 2.0, True])
def test_interpolation_refuses_bad_counts(sc, n_models):
    with pytest.raises(ValueError, match="n_models"):
        experiments.interpolated_scenario(sc, n_models)


# --- solvers -------------------------------------------------------------------------------------


def test_slot_problems_are_the_problems_simulate_solves(sc):
    problems = simulation.slot_problems(sc, 8, 2)
    planned = simulation.simulate(sc, 8, 2, allocation="exact").slots["planned_utility"]
    assert len(problems) == 8
    assert [al.solve_exact(p).utility for p in problems] == pytest.approx(planned.tolist())
    assert [p.n_tasks.sum() for p in problems] == [sc.tasks_per_slot] * 8
    with pytest.raises(ValueError, match="allocation"):
        simulation.slot_problems(sc, 2, 0, allocation="equal")


def _feasible(problem, found):
    active = problem.active
    assert found.compute_tflops.sum() == pytest.approx(problem.capacity_tflops)
    assert np.all(found.compute_tflops[active] >= problem.min_compute * (1 - 1e-9))
    assert np.all(found.compute_tflops[~active] == 0)
    for m in range(problem.n_models):
        assert found.steps[m] in problem.step_options[m]


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10**6), n_models=st.integers(2, 4))
def test_dual_annealing_is_feasible_and_never_beats_the_optimum(seed, n_models):
    problem = al.random_problem(np.random.default_rng(seed), n_models=n_models)
    found = al.dual_annealing_allocation(problem, np.random.default_rng(seed), maxiter=5)
    _feasible(problem, found)
    assert found.method == "dual_annealing"
    assert found.utility <= al.solve_exact(problem).utility + 1e-9


def test_dual_annealing_finds_the_optimum_of_a_small_problem():
    problem = al.AllocationProblem(
        n_tasks=[3, 4, 3],
        step_options=[(1,), (10, 26, 42), (10, 26, 42)],
        tflop_per_step=[1.6, 1.6, 13.5],
        tflop_fixed=[2.6, 2.5, 10.6],
        score_a=[0.0, 1.0, 1.5],
        score_b=[30.0, 27.0, 27.5],
        capacity_tflops=34.0,
        weight=0.2,
    )
    found = al.dual_annealing_allocation(problem, np.random.default_rng(0), maxiter=50)
    exact = al.solve_exact(problem)
    assert found.steps.tolist() == exact.steps.tolist()
    assert found.utility == pytest.approx(exact.utility, abs=1e-4)


def test_dual_annealing_is_deterministic_and_handles_empty_slots():
    problem = al.random_problem(np.random.default_rng(5))
    a = al.dual_annealing_allocation(problem, np.random.default_rng(1), maxiter=5)
    b = al.dual_annealing_allocation(problem, np.random.default_rng(1), maxiter=5)
    assert a.utility == b.utility and a.steps.tolist() == b.steps.tolist()
    empty = dataclasses.replace(problem, n_tasks=[0] * problem.n_models)
    assert al.dual_annealing_allocation(empty, np.random.default_rng(0)).utility == 0.0
    one = dataclasses.replace(
        problem, n_tasks=[4] + [0] * (problem.n_models - 1)
    )  # one model, one step count
    assert al.dual_annealing_allocation(one, np.random.default_rng(0)).compute_tflops[
        0
    ] == pytest.approx(problem.capacity_tflops)


@pytest.mark.parametrize(
    "kwargs, argname",
    [
        (dict(problem="p"), "problem"),
        (dict(rng=0), "rng"),
        (dict(maxiter=0), "maxiter"),
        (dict(maxiter=1.5), "maxiter"),
    ],
)
def test_dual_annealing_refuses_bad_arguments(kwargs, argname):
    args = dict(
        problem=al.random_problem(np.random.default_rng(0)), rng=np.random.default_rng(0), maxiter=5
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=argname):
        al.dual_annealing_allocation(**args)


def test_compare_solvers_reports_gaps_to_the_exact_optimum():
    problems = [al.random_problem(np.random.default_rng(s)) for s in range(4)]
    frame = experiments.compare_solvers(problems, 0, options={"dual_annealing": {"maxiter": 5}})
    assert list(frame.columns) == [
        "problem",
        "solver",
        "utility",
        "gap",
        "gap_pct",
        "optimal_steps",
        "time_ms",
    ]
    assert frame.loc[frame["solver"] == "exact", "optimal_steps"].all()
    assert len(frame) == 4 * len(experiments.SOLVERS)
    exact = frame[frame["solver"] == "exact"]
    assert (exact["gap"] == 0).all()
    assert (frame["gap"] >= -1e-9).all()
    assert (frame["time_ms"] > 0).all()
    best = np.array([al.solve_exact(p).utility for p in problems])
    for solver, rows in frame.groupby("solver"):
        assert rows["gap"].to_numpy() == pytest.approx(best - rows["utility"].to_numpy())
        assert rows["gap_pct"].to_numpy() == pytest.approx(
            100 * rows["gap"].to_numpy() / np.abs(best)
        )
    again = experiments.compare_solvers(problems, 0, options={"dual_annealing": {"maxiter": 5}})
    pd.testing.assert_series_equal(frame["utility"], again["utility"])


@pytest.mark.parametrize(
    "kwargs, argname",
    [
        (dict(seed=-1), "seed"),
        (dict(solvers=["greedy"]), "solvers"),
        (dict(solvers=[]), "solvers"),
        (dict(options={"exact": {}}), "options"),
        (dict(problems=["p"]), "problems"),
    ],
)
def test_compare_solvers_refuses_bad_arguments(kwargs, argname):
    args = dict(problems=[al.random_problem(np.random.default_rng(0))], seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=argname):
        experiments.compare_solvers(**args)


# --- parallel runs, scaling problems, the timing table -------------------------------------------


def test_sweeps_are_the_same_for_one_and_two_workers(sc):
    one = experiments.sweep(sc, "tasks_per_slot", [5, 20], 4, 3, n_jobs=1)
    two = experiments.sweep(sc, "tasks_per_slot", [5, 20], 4, 3, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)
    rho = experiments.sweep(sc, "rho", [0.0, 1.0], 4, 3, n_jobs=2, allocation="exact")
    pd.testing.assert_frame_equal(
        rho, experiments.sweep(sc, "rho", [0.0, 1.0], 4, 3, n_jobs=1, allocation="exact")
    )
    alone = metrics.summarise(simulation.simulate(sc.replace(tasks_per_slot=20), 4, 3))
    assert one.loc[1, "mean_utility"] == pytest.approx(alone["mean_utility"])


def test_compare_solvers_is_the_same_for_one_and_two_workers():
    problems = experiments.scaling_problems(9, 3, 0) + experiments.scaling_problems(3, 3, 0)
    kwargs = dict(options={"dual_annealing": {"maxiter": 3}})
    one = experiments.compare_solvers(problems, 4, n_jobs=1, **kwargs)
    two = experiments.compare_solvers(problems, 4, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(one.drop(columns="time_ms"), two.drop(columns="time_ms"))
    assert (one.loc[one["solver"] == "exact", "gap"] == 0).all()
    assert (one["gap"] >= -1e-9).all()


def test_scaling_problems_are_seeded_per_size_and_index():
    first = experiments.scaling_problems(5, 4, 7)
    again = experiments.scaling_problems(5, 2, 7)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.n_tasks, b.n_tasks)
        np.testing.assert_array_equal(a.tflop_per_step, b.tflop_per_step)
    assert all(p.n_models == 5 for p in first)
    assert not np.array_equal(first[0].tflop_per_step, first[1].tflop_per_step)
    same = experiments.scaling_problems(6, 2, 7, identical=True)
    assert all(len(set(p.score_a.tolist())) == 1 for p in same)
    with pytest.raises(ValueError, match="n_problems"):
        experiments.scaling_problems(5, -1, 7)
    with pytest.raises(ValueError, match="n_models"):
        experiments.scaling_problems(13, 1, 7)


def _timing_table():
    rows = []
    for solver, ms in (("bound", 1.0), ("annealing", 4.0)):
        rows.append(
            dict(
                kind="random",
                n_models=3,
                solver=solver,
                problems=5,
                median_ms=ms,
                max_ms=2 * ms,
                median_ratio=ms,
                max_ratio=ms,
                median_gap=0.0,
                max_gap=1e-4,
                optimal_steps=0.8,
            )
        )
    return pd.DataFrame(rows)


def test_the_timing_table_round_trips_with_its_machine_and_date(tmp_path):
    path = experiments.write_solver_timings(_timing_table(), tmp_path / "t.csv", note="a test")
    table, header = experiments.load_solver_timings(path)
    pd.testing.assert_frame_equal(table, _timing_table())
    assert {"date", "cpu", "python", "numpy", "note"} <= set(header)
    assert header["note"] == "a test"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temporary file left


def test_the_timing_table_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(ValueError, match="make bench"):
        experiments.load_solver_timings(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="table"):
        experiments.write_solver_timings(_timing_table().drop(columns="max_ms"), tmp_path / "x")
    (tmp_path / "bad.csv").write_text("# date: today\nkind,n_models\nrandom,3\n")
    with pytest.raises(ValueError, match="lacks columns"):
        experiments.load_solver_timings(tmp_path / "bad.csv")


def test_the_committed_timing_table_covers_every_size_and_solver():
    table, header = experiments.load_solver_timings()
    assert header["cpu"] and header["date"]
    bound = table[table["solver"] == "bound"]
    assert sorted(set(bound["n_models"])) == list(range(2, 13))
    assert set(table["solver"]) == {"bound", "enumeration", "annealing", "dual_annealing"}
    assert (bound["median_ratio"] == 1).all() and (bound["max_gap"] <= 1e-9).all()
