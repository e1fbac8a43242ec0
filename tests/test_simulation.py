"""Tests of aigc_lib.simulation: the time-slot simulator and its ground truth (SPEC section 3)."""

import numpy as np
import pandas as pd
import pytest

from aigc_lib import allocation as al
from aigc_lib.scenario import GroupPrior
from aigc_lib.readings import Readings
from code_scenario import make_scenario
from aigc_lib.simulation import ALLOCATIONS, ASSIGNMENTS, TASK_COLUMNS, simulate

THETA = (29.5, 33.8)


def truth(scenario, tasks):
    """SPEC section 3 without noise, from the task table's group, deviation, model and steps."""
    g = {x.name: x for x in scenario.groups}
    m = {x.name: x for x in scenario.models}
    s_bar = scenario.mean_score
    rows = []
    for grp, dev, mod, z in zip(tasks["group"], tasks["deviation"], tasks["model"], tasks["steps"]):
        spec = m[mod]
        rows.append(
            s_bar
            + spec.score_offset
            + spec.score_beta * (g[grp].mu + dev - s_bar)
            + spec.score_slope * np.log(z / spec.zref)
        )
    return np.array(rows)


def test_tables_have_the_documented_columns_and_one_model_per_task():
    sc = make_scenario()
    r = simulate(sc, 20, seed=1)
    assert tuple(r.tasks.columns) == TASK_COLUMNS
    assert len(r.tasks) == 20 * 12 and len(r.slots) == 20
    assert set(r.tasks["model"]) <= set(sc.model_names) and r.tasks["model"].notna().all()
    for name, spec in zip(sc.model_names, sc.models):
        assert set(r.tasks.loc[r.tasks["model"] == name, "steps"]) <= set(spec.steps)
    per_slot = r.slots[[f"compute_{n}" for n in sc.model_names]].sum(axis=1)
    assert np.all(per_slot <= sc.capacity_tflops * (1 + 1e-9))
    np.testing.assert_array_equal(r.slots[[f"n_{n}" for n in sc.model_names]].sum(axis=1), 12)


@pytest.mark.parametrize("rho", [0.0, 0.6])
def test_scores_follow_the_ground_truth_model(rho):
    sc = make_scenario(noise_sd=0.0)
    tasks = simulate(
        sc, 10, seed=2, allocation="exact", readings=Readings(information="prompt", rho=rho)
    ).tasks
    np.testing.assert_allclose(tasks["score"], truth(sc, tasks), rtol=1e-12)
    np.testing.assert_allclose(
        tasks["utility"], tasks["score"] - 0.2 * tasks["latency"], rtol=1e-12
    )


def test_image_noise_has_the_scenario_spread():
    sc = make_scenario(noise_sd=1.5)
    tasks = simulate(sc, 300, seed=3, allocation="equal").tasks
    residual = tasks["score"] - truth(sc, tasks)
    assert residual.std() == pytest.approx(1.5, rel=0.05) and abs(residual.mean()) < 0.05


def test_latency_is_the_fifo_completion_time_and_makespan_the_last_one():
    sc = make_scenario()
    r = simulate(sc, 15, seed=4, allocation="exact")
    for (slot, name), part in r.tasks.groupby(["slot", "model"], observed=True):
        spec = sc.models[sc.model_names.index(name)]
        t = (part["steps"].iloc[0] * spec.tflop_per_step + spec.tflop_fixed) / part["compute"].iloc[
            0
        ]
        np.testing.assert_allclose(part["latency"], t * np.arange(1, len(part) + 1), rtol=1e-12)
    np.testing.assert_allclose(
        r.slots["makespan"], r.tasks.groupby("slot")["latency"].max(), rtol=1e-12
    )
    np.testing.assert_allclose(
        r.slots["score"], r.tasks.groupby("slot")["score"].mean(), rtol=1e-12
    )
    np.testing.assert_allclose(
        r.slots["utility"], r.tasks.groupby("slot")["utility"].mean(), rtol=1e-12
    )


def test_the_planner_sees_group_means_not_the_prompts_own_deviation():
    sc = make_scenario()
    seen = []

    def recording_solver(problem, rng):
        seen.append(problem)
        return al.solve_exact(problem)

    r = simulate(sc, 8, seed=5, allocation=recording_solver)
    mu = dict(zip(sc.group_names, sc.mu))
    s_bar = sc.mean_score
    for slot, problem in enumerate(seen):
        part = r.tasks[r.tasks["slot"] == slot]
        for m, spec in enumerate(sc.models):
            mine = part[part["model"] == spec.name]
            np.testing.assert_equal(problem.n_tasks[m], len(mine))
            if len(mine):
                expected = np.mean(
                    [
                        s_bar + spec.score_offset + spec.score_beta * (mu[g] - s_bar)
                        for g in mine["group"]
                    ]
                )
                assert problem.score_b[m] == pytest.approx(
                    expected - spec.score_slope * np.log(spec.zref), rel=1e-12
                )


def test_an_oracle_predictor_assigns_by_the_true_medium_score_and_direct_stays_category_only():
    sc = make_scenario()
    oracle = Readings(information="prompt", rho=1.0)
    tasks = simulate(sc, 20, seed=6, assignment="probabilistic", readings=oracle).tasks
    mu = tasks["group"].map(dict(zip(sc.group_names, sc.mu))).astype(float)
    expected = np.searchsorted(THETA, mu + tasks["deviation"], side="right")
    np.testing.assert_array_equal(tasks["model"].cat.codes, expected)
    direct = simulate(sc, 20, seed=6, assignment="direct", readings=oracle).tasks
    np.testing.assert_array_equal(
        direct["model"].cat.codes, np.searchsorted(THETA, mu, side="right")
    )


def test_direct_assignment_without_predictor_uses_group_means():
    sc = make_scenario()
    tasks = simulate(sc, 10, seed=6, assignment="direct").tasks
    mu = tasks["group"].map(dict(zip(sc.group_names, sc.mu))).astype(float)
    np.testing.assert_array_equal(
        tasks["model"].cat.codes, np.searchsorted(THETA, mu, side="right")
    )


def test_probabilistic_assignment_frequencies_follow_eq_9_10():
    from aigc_lib.assignment import assignment_probabilities

    sc = make_scenario()
    tasks = simulate(sc, 1000, seed=7, allocation="equal").tasks
    probs = assignment_probabilities(sc.mu, sc.sigma, THETA)
    for k, name in enumerate(sc.group_names):
        models = tasks.loc[tasks["group"] == name, "model"].cat.codes
        np.testing.assert_allclose(
            np.bincount(models, minlength=3) / len(models), probs[k], atol=0.03
        )


def test_same_seed_same_result_and_common_random_numbers_across_policies():
    sc = make_scenario()
    a = simulate(sc, 10, seed=8)
    b = simulate(sc, 10, seed=8)
    pd.testing.assert_frame_equal(a.tasks, b.tasks)
    pd.testing.assert_frame_equal(a.slots, b.slots)
    assert not simulate(sc, 10, seed=9).tasks["deviation"].equals(a.tasks["deviation"])
    workload = ["slot", "prompt_id", "group", "deviation"]
    for assignment in ASSIGNMENTS:
        for allocation in ("exact", "optimal_step"):
            other = simulate(
                sc,
                10,
                seed=8,
                assignment=assignment,
                allocation=allocation,
                readings=Readings(information="prompt", rho=0.5),
            )
            pd.testing.assert_frame_equal(other.tasks[workload], a.tasks[workload])


def test_exact_allocation_plans_at_least_as_well_as_every_other_policy():
    sc = make_scenario()
    planned = pd.DataFrame(
        {a: simulate(sc, 30, seed=10, allocation=a).slots["planned_utility"] for a in ALLOCATIONS}
    )
    for policy in ALLOCATIONS:
        assert np.all(planned["exact"] >= planned[policy] - 1e-9)
    assert planned["annealing"].mean() > planned["equal"].mean()


def test_real_prompt_tables_keep_each_prompts_deviation():
    sc = make_scenario()
    prompts = pd.DataFrame(
        {"prompt_id": ["p1", "p2", "p3"], "group": ["Basic", "Complex", "Basic"]}
    )
    tasks = simulate(sc, 30, seed=11, prompts=prompts).tasks
    assert set(tasks["prompt_id"]) == {"p1", "p2", "p3"}
    assert (tasks.groupby("prompt_id")["deviation"].nunique() == 1).all()
    assert (tasks.groupby("prompt_id")["group"].nunique() == 1).all()
    assert set(tasks.loc[tasks["prompt_id"] == "p2", "group"]) == {"Complex"}


def test_slots_without_tasks_give_empty_results_not_errors():
    sc = make_scenario()
    empty = simulate(sc, 4, seed=12, tasks_per_slot=0)
    assert len(empty.tasks) == 0 and tuple(empty.tasks.columns) == TASK_COLUMNS
    assert list(empty.slots["n_tasks"]) == [0] * 4 and empty.slots["score"].isna().all()
    mixed = simulate(sc, 3, seed=12, tasks_per_slot=[5, 0, 4], allocation="annealing")
    assert list(mixed.slots["n_tasks"]) == [5, 0, 4] and sorted(set(mixed.tasks["slot"])) == [0, 2]
    assert len(simulate(sc, 0, seed=12).tasks) == 0


def test_larger_weight_buys_less_latency():
    sc = make_scenario()
    low = simulate(sc, 40, seed=13, allocation="exact").slots
    high = simulate(sc.replace(weight=2.0), 40, seed=13, allocation="exact").slots
    assert high["latency"].mean() < low["latency"].mean()
    assert high["score"].mean() < low["score"].mean()


@pytest.mark.parametrize(
    "kwargs, argname",
    [
        (dict(assignment="greedy"), "assignment"),
        (dict(allocation="fastest"), "allocation"),
        (dict(readings="fifo"), "readings"),
        (dict(tasks_per_slot=-3), "tasks_per_slot"),
        (dict(tasks_per_slot=[1, 2]), "tasks_per_slot"),
        (dict(seed=-1), "seed"),
        (dict(n_slots=-1), "n_slots"),
        (dict(prompts=pd.DataFrame({"prompt_id": [1], "group": ["Fantasy"]})), "prompts"),
        (dict(prompts=pd.DataFrame({"prompt_id": [1]})), "prompts"),
        (dict(annealing_options={"cooling": 2.0}), "cooling"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, argname):
    args = dict(scenario=make_scenario(), n_slots=3, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=argname):
        simulate(**args)


def test_bad_scenarios_are_refused():
    with pytest.raises(ValueError, match="scenario"):
        simulate("scenario.yaml", 3, 0)
    with pytest.raises(ValueError, match="groups.Basic: expected a finite mu and a sigma > 0"):
        make_scenario(groups=(GroupPrior("Basic", 31.0, 0.0, 1.0),))
    with pytest.raises(ValueError, match="thresholds"):
        make_scenario(thresholds=(33.8, 29.5))
    with pytest.raises(ValueError, match="thresholds"):
        make_scenario(thresholds=(30.0,))


def test_workload_is_what_simulate_draws_for_the_seed():
    from aigc_lib.simulation import workload

    sc = make_scenario()
    draws = workload(sc, 6, seed=21)
    tasks = simulate(sc, 6, seed=21, assignment="random").tasks
    for column in ("slot", "prompt_id", "group", "deviation"):
        pd.testing.assert_series_equal(draws[column], tasks[column], check_names=False)
    assert list(draws.columns) == [
        "slot",
        "prompt_id",
        "group",
        "deviation",
        "predictor_noise",
        "image_noise",
    ]


def test_a_model_name_sends_every_prompt_to_that_model_and_it_gets_the_whole_gpu():
    sc = make_scenario()
    for m, name in enumerate(sc.model_names):
        result = simulate(sc, 8, seed=3, assignment=name, allocation="exact")
        assert (result.tasks["model"] == name).all()
        assert np.allclose(result.slots[f"compute_{name}"], sc.capacity_tflops)
        others = [n for n in sc.model_names if n != name]
        assert (result.slots[[f"compute_{n}" for n in others]] == 0).all().all()
    # same workload as every other policy of the seed
    mixed = simulate(sc, 8, seed=3, allocation="exact").tasks
    single = simulate(sc, 8, seed=3, assignment=sc.model_names[1], allocation="exact").tasks
    pd.testing.assert_series_equal(mixed["deviation"], single["deviation"])


# --- shared_runs and example_slot: what a notebook's sections open with -----------------------


def test_shared_runs_are_simulate_runs_simulated_once_per_process(monkeypatch):
    from aigc_lib import simulation

    methods = ["annealing", "equal"]
    sc, runs = simulation.shared_runs("paper", 3, 1, "allocation", False, names=methods)
    assert list(runs) == methods
    alone = simulate(sc, 3, 1, allocation="equal")
    pd.testing.assert_frame_equal(runs["equal"].tasks, alone.tasks)
    monkeypatch.setattr(simulation, "_one_run", lambda item: pytest.fail("simulated again"))
    _, again = simulation.shared_runs("paper", 3, 1, "allocation", False, names=methods)
    assert again is not runs and again["equal"] is runs["equal"]
    with pytest.raises(ValueError, match="by"):
        simulation.shared_runs("paper", 3, 1, "steps")


def test_example_slot_is_the_slot_drawn_by_hand_with_the_planners_curves():
    from aigc_lib import assignment, simulation
    from aigc_lib.scenario import load_scenario

    sc = load_scenario("paper")
    n_tasks, slope, b, problem = simulation.example_slot(sc, 0)
    rng = np.random.default_rng(0)
    group = rng.choice(len(sc.groups), size=sc.tasks_per_slot, p=sc.shares)
    probs = assignment.assignment_probabilities(sc.mu, sc.sigma, sc.thresholds)
    model = assignment.assign_probabilistic(group, probs, rng)
    planned, a, level = simulation.planner_curves(sc, model, sc.mu[group])
    active = n_tasks > 0
    assert np.array_equal(n_tasks, planned) and n_tasks.sum() == sc.tasks_per_slot
    assert np.array_equal(slope, a) and np.allclose(b[active], level[active])
    assert np.array_equal(problem.n_tasks, n_tasks) and np.array_equal(problem.score_b, b)
    with pytest.raises(ValueError, match="seed"):
        simulation.example_slot(sc, -1)
