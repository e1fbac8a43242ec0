"""Tests of aigc_lib.peers: the cascade and router peers, their tuning, and the generated table."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from aigc_lib import peers, simulation
from aigc_lib.readings import Readings
from aigc_lib.scenario import load_scenario, true_score


@pytest.fixture(scope="module")
def sc():
    return load_scenario("paper")


@pytest.fixture(scope="module")
def table_prompts(sc):
    groups = np.repeat(sc.group_names, 7)
    return pd.DataFrame({"prompt_id": np.arange(groups.size) + 100, "group": groups})


# --- common random numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("use_table", [False, True])
def test_the_workload_is_simulates_workload(sc, table_prompts, use_table):
    prompts = table_prompts if use_table else None
    draws = peers.workload(sc, 12, 5, prompts, 9)
    tasks = simulation.simulate(
        sc, 12, 5, allocation="exact", prompts=prompts, tasks_per_slot=9
    ).tasks
    for column in ("slot", "prompt_id", "group", "deviation"):
        np.testing.assert_array_equal(draws[column].to_numpy(), tasks[column].to_numpy(), column)


def test_a_cascade_that_never_escalates_is_the_small_model_alone_in_simulate(sc):
    ran = peers.cascade(sc, 10, 3, -math.inf, tasks_per_slot=8).tasks
    everything_small = sc.replace(thresholds=(100.0, 101.0))  # Direct sends every group to model 0
    ref = simulation.simulate(
        everything_small, 10, 3, assignment="direct", allocation="exact", tasks_per_slot=8
    ).tasks
    assert (ref["model"] == sc.model_names[0]).all() and not ran["escalated"].any()
    np.testing.assert_allclose(ran["score"], ref["score"], rtol=1e-12)  # same image noise
    np.testing.assert_allclose(ran["latency"], ref["latency"], rtol=1e-12)


def test_the_same_seed_gives_the_same_run(sc):
    a = peers.router(sc, 6, 1, 33.0, 29.0, tasks_per_slot=7).tasks
    b = peers.router(sc, 6, 1, 33.0, 29.0, tasks_per_slot=7).tasks
    pd.testing.assert_frame_equal(a, b)
    assert tuple(a.columns) == peers.PEER_COLUMNS


# --- the cascade ----------------------------------------------------------------------------------


def test_an_escalated_task_waits_for_its_small_image_then_for_the_heavy_model(sc):
    run = peers.cascade(sc, 20, 0, peers.escalation_threshold(sc, 0.4), tasks_per_slot=10)
    tasks, slots = run.tasks, run.slots
    light, heavy = sc.models[0], sc.models[-1]
    first_seconds = light.image_seconds(1) * sc.capacity_tflops / slots["compute_sdxl-turbo"]
    position = tasks.groupby("slot").cumcount() + 1  # every prompt passes the small model in order
    np.testing.assert_allclose(
        tasks["first_latency"], position * first_seconds[tasks["slot"]].to_numpy()
    )
    up = tasks[tasks["escalated"]]
    assert len(up) > 0 and (up["model"] == heavy.name).all()
    assert (tasks["first_model"] == light.name).all()
    heavy_seconds = heavy.image_seconds(up["steps"]) * sc.capacity_tflops / up["compute"]
    assert np.all(up["latency"] >= up["first_latency"] + heavy_seconds - 1e-9)
    kept = tasks[~tasks["escalated"]]
    np.testing.assert_allclose(kept["latency"], kept["first_latency"])
    np.testing.assert_array_equal(slots["n_sdxl-turbo"], 10)
    per_slot = up.groupby("slot").size().reindex(slots["slot"], fill_value=0)
    np.testing.assert_array_equal(slots["n_sdxl"], per_slot)


def test_the_heavy_queue_is_first_in_first_out_in_completion_order(sc):
    heavy = sc.models[-1]
    for share in (0.2, 1.0):  # with few escalations the heavy model sometimes waits idle
        threshold = peers.escalation_threshold(sc, share)
        tasks = peers.cascade(sc, 15, 2, threshold, tasks_per_slot=8).tasks
        up = tasks[tasks["escalated"]]
        seconds = heavy.image_seconds(up["steps"]) * sc.capacity_tflops / up["compute"]
        for _, slot in up.groupby("slot"):
            done = 0.0
            ready, latency = slot["first_latency"], slot["latency"]
            for ready, latency, t in zip(ready, latency, seconds[slot.index]):
                done = max(ready, done) + t  # starts when its light image and the queue allow
                assert latency == pytest.approx(done)


def test_escalation_grows_with_the_threshold(sc):
    sets = [
        peers.cascade(sc, 10, 4, t, tasks_per_slot=10).tasks["escalated"].to_numpy()
        for t in (-math.inf, 27.0, 28.5, 30.0, 32.0, math.inf)
    ]
    for lower, higher in zip(sets, sets[1:]):
        assert np.all(lower <= higher)  # nested: escalated at a lower threshold, escalated here
    assert sets[0].sum() == 0 and sets[-1].all()


def test_a_perfect_discriminator_escalates_exactly_the_low_small_images(sc):
    threshold = 29.0
    tasks = peers.cascade(sc, 20, 6, threshold, disc_rho=1.0, tasks_per_slot=10).tasks
    draws = peers.workload(sc, 20, 6, None, 10)
    own = sc.mu[draws["group"].cat.codes.to_numpy()] + draws["deviation"].to_numpy()
    small = true_score(sc, own, 0, 1) + draws["image_noise"].to_numpy()
    np.testing.assert_array_equal(tasks["escalated"].to_numpy(), small < threshold)


def test_the_discriminator_is_scaled_to_the_light_model_scores(sc):
    draws = peers.workload(sc, 500, 11, None, 10)
    own = sc.mu[draws["group"].cat.codes.to_numpy()] + draws["deviation"].to_numpy()
    small = true_score(sc, own, 0, 1) + draws["image_noise"].to_numpy()
    mean, sd = peers.light_score_moments(sc)
    assert mean == pytest.approx(small.mean(), abs=0.05)
    assert sd == pytest.approx(small.std(), rel=0.03)


def test_a_blind_discriminator_escalates_independently_of_the_image(sc):
    tasks = peers.cascade(
        sc,
        400,
        7,
        peers.escalation_threshold(sc, 0.5, disc_rho=0.0),
        disc_rho=0.0,
        tasks_per_slot=10,
    ).tasks
    draws = peers.workload(sc, 400, 7, None, 10)
    own = sc.mu[draws["group"].cat.codes.to_numpy()] + draws["deviation"].to_numpy()
    assert abs(np.corrcoef(tasks["escalated"], own)[0, 1]) < 0.05
    assert abs(tasks["escalated"].mean() - 0.5) < 0.03


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_an_escalation_share_gives_about_that_share(sc, share):
    t = peers.escalation_threshold(sc, share)
    escalated = peers.cascade(sc, 300, 8, t, tasks_per_slot=10).tasks["escalated"].mean()
    assert abs(escalated - share) < 0.04
    assert peers.escalation_threshold(sc, 0.0) == -math.inf
    assert peers.escalation_threshold(sc, 1.0) == math.inf


def test_gpu_seconds_count_both_generations(sc):
    run = peers.cascade(sc, 5, 0, math.inf, tasks_per_slot=4)
    expected = sc.models[0].image_seconds(1) + sc.models[-1].image_seconds(run.tasks["steps"])
    np.testing.assert_allclose(peers.gpu_seconds(sc, run), expected)
    plain = simulation.simulate(sc, 5, 0, allocation="exact", tasks_per_slot=4)
    by_model = [
        sc.models[sc.model_names.index(m)].image_seconds(z)
        for m, z in zip(plain.tasks["model"], plain.tasks["steps"])
    ]
    np.testing.assert_allclose(peers.gpu_seconds(sc, plain), by_model)


# --- the router -----------------------------------------------------------------------------------


def test_a_predictor_with_correlation_zero_routes_by_category_only(sc):
    cut = float(np.sort(sc.mu)[2]) - 0.01  # between the second and third highest group means
    tasks = peers.router(sc, 60, 9, cut, predictor_rho=0.0, tasks_per_slot=10).tasks
    routed = tasks["first_model"] == sc.model_names[-1]
    by_group = routed.groupby(tasks["group"], observed=True).agg(["min", "max"])
    assert (by_group["min"] == by_group["max"]).all()  # one decision per group, whatever the prompt
    np.testing.assert_array_equal(by_group["max"].to_numpy(), sc.mu[by_group.index.codes] >= cut)


def test_an_oracle_predictor_routes_the_prompts_that_score_highest(sc):
    tasks = peers.router(sc, 30, 9, 33.0, predictor_rho=1.0, tasks_per_slot=10).tasks
    own = sc.mu[tasks["group"].cat.codes.to_numpy()] + tasks["deviation"].to_numpy()
    np.testing.assert_array_equal(tasks["first_model"] == sc.model_names[-1], own >= 33.0)
    direct = tasks[tasks["first_model"] == sc.model_names[-1]]
    assert direct["first_latency"].isna().all() and not direct["escalated"].any()


def test_a_router_that_routes_nothing_is_the_cascade(sc):
    t = peers.escalation_threshold(sc, 0.3)
    a = peers.router(sc, 10, 2, math.inf, t, tasks_per_slot=8).tasks
    b = peers.cascade(sc, 10, 2, t, tasks_per_slot=8).tasks
    pd.testing.assert_frame_equal(a, b)


def test_a_router_that_routes_everything_is_the_heavy_model_alone(sc):
    run = peers.router(sc, 6, 2, -math.inf, tasks_per_slot=5)
    tasks = run.tasks
    assert (tasks["model"] == sc.model_names[-1]).all() and tasks["first_latency"].isna().all()
    seconds = sc.models[-1].image_seconds(tasks["steps"]) * sc.capacity_tflops / tasks["compute"]
    np.testing.assert_allclose(tasks["latency"], (tasks.groupby("slot").cumcount() + 1) * seconds)
    np.testing.assert_allclose(
        peers.gpu_seconds(sc, run), sc.models[-1].image_seconds(tasks["steps"])
    )


def test_route_shares_become_thresholds(sc):
    assert peers.route_threshold(sc, 0.0) == math.inf
    assert peers.route_threshold(sc, 1.0) == -math.inf
    cuts = [peers.route_threshold(sc, q) for q in (0.1, 0.3, 0.6)]
    assert cuts[0] > cuts[1] > cuts[2]
    routed = peers.router(sc, 300, 3, cuts[1], tasks_per_slot=10).tasks["first_model"] == "sdxl"
    assert abs(routed.mean() - 0.3) < 0.04


# --- summaries, tuning and the comparison ---------------------------------------------------------


def test_summary_counts_the_slo(sc):
    run = peers.cascade(sc, 20, 0, peers.escalation_threshold(sc, 0.5), tasks_per_slot=10)
    latency = run.tasks["latency"]
    loose, tight = peers.summarise(run, sc, 60.0), peers.summarise(run, sc, 2.0)
    assert tight["slo_violation_share"] == pytest.approx((latency > 2.0).mean())
    assert loose["slo_violation_share"] <= tight["slo_violation_share"]
    assert tight["p95_latency"] == pytest.approx(np.quantile(latency, 0.95))
    assert tight["escalation_share"] == pytest.approx(run.tasks["escalated"].mean())
    slots = peers.per_slot(run, sc, 2.0)
    assert len(slots) == 20 and slots["score"].mean() == pytest.approx(run.tasks["score"].mean())


def test_tuning_flags_the_pareto_table_and_chooses_the_best_utility(sc):
    tuning = peers.tune(
        sc, "router", 8, [1001, 1002], [0.0, 0.5], [0.0, 0.3, 1.0], tasks_per_slot=6
    )
    table = tuning.table
    assert len(table) == 5 and table["chosen"].sum() == 1  # routing every prompt: one row
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["mean_utility"] == table["mean_utility"].max() and chosen["pareto"]
    assert set(tuning.options) == {"route_at", "cascade_threshold"} and tuning.seeds == (1001, 1002)


def test_tuning_for_the_slo_keeps_the_violations_under_the_bound(sc):
    args = (sc, "cascade", 10, [1001], [0.0, 0.25, 0.5, 1.0])
    table = peers.tune(*args, objective="slo", max_violation=0.2, tasks_per_slot=10).table
    chosen = table[table["chosen"]].iloc[0]
    feasible = table[table["slo_violation_share"] <= 0.2]
    assert chosen["mean_score"] == feasible["mean_score"].max()
    impossible = peers.tune(
        *args, slo_seconds=0.1, objective="slo", max_violation=0.0, tasks_per_slot=10
    ).table
    least = impossible[impossible["chosen"]].iloc[0]["slo_violation_share"]
    assert least == impossible["slo_violation_share"].min()


def test_tuning_never_sees_the_evaluation_seed(sc, monkeypatch):
    seen = []
    real = peers.run_policy

    def spy(policy, scenario, n_slots, seed, **options):
        seen.append((policy, seed, n_slots))
        return real(policy, scenario, n_slots, seed, **options)

    monkeypatch.setattr(peers, "run_policy", spy)
    train = peers.training_seeds(0, 2)
    out = peers.compare(sc, [4, 8], 5, 0, train, 3, [0.0, 1.0], [0.0, 1.0])
    tuning_calls = [s for p, s, n in seen if n == 3]
    assert tuning_calls and set(tuning_calls) == set(train) and 0 not in tuning_calls
    assert {s for p, s, n in seen if n == 5} == {0}
    assert len(out.summary) == 2 * len(peers.POLICIES) and len(out.tuned) == 2 * len(peers.PEERS)
    with pytest.raises(ValueError, match="train_seeds"):
        peers.compare(sc, [4], 5, 1001, [1001], 3, [0.0], [0.0])


def test_every_policy_runs_on_one_workload(sc):
    runs = {
        p: peers.run_policy(
            p,
            sc,
            4,
            3,
            tasks_per_slot=5,
            **(
                {"threshold": 29.0}
                if p == "cascade"
                else {"route_at": 33.0}
                if p == "router"
                else {}
            ),
        )
        for p in peers.POLICIES
    }
    first = runs["probabilistic"].tasks
    for run in runs.values():
        np.testing.assert_array_equal(run.tasks["deviation"], first["deviation"])
        np.testing.assert_array_equal(run.tasks["prompt_id"], first["prompt_id"])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda sc: peers.cascade(sc, 2, 0, float("nan")), "threshold"),
        (lambda sc: peers.cascade(sc, 2, 0, 29.0, disc_rho=1.5), "disc_rho"),
        (lambda sc: peers.cascade(sc, 2, 0, 29.0, light_model=1), "light_model"),
        (lambda sc: peers.cascade(sc, 2, 0, 29.0, heavy_model=0), "heavy_model"),
        (lambda sc: peers.cascade(sc, 2, 0, 29.0, heavy_model=3), "heavy_model"),
        (lambda sc: peers.cascade(sc, 2, 0, 29.0, allocation="equal"), "allocation"),
        (
            lambda sc: peers.cascade(sc, 2, 0, 29.0, readings=Readings(latency="per_image")),
            "readings",
        ),
        (lambda sc: peers.router(sc, 2, 0, 33.0, predictor_rho=-0.1), "predictor_rho"),
        (lambda sc: peers.router(sc, 2, 0, 33.0, tasks_per_slot=-1), "tasks_per_slot"),
        (lambda sc: peers.run_policy("oracle", sc, 2, 0), "policy"),
        (lambda sc: peers.run_policy("direct", sc, 2, 0, threshold=1.0), "peer_options"),
        (lambda sc: peers.tune(sc, "direct", 2, [1], [0.0]), "policy"),
        (lambda sc: peers.tune(sc, "cascade", 2, [1], [0.0], [0.5]), "route_shares"),
        (lambda sc: peers.tune(sc, "cascade", 2, [1], [1.5]), "escalation_shares"),
        (lambda sc: peers.tune(sc, "cascade", 2, [1], [0.5], objective="score"), "objective"),
        (lambda sc: peers.escalation_threshold(sc, -0.1), "share"),
        (lambda sc: peers.summarise(peers.cascade(sc, 2, 0, 29.0), sc, 0.0), "slo_seconds"),
    ],
)
def test_bad_arguments_name_themselves(sc, call, match):
    with pytest.raises(ValueError, match=match):
        call(sc)


# --- the generated table --------------------------------------------------------------------------


def test_the_table_is_written_from_notebook_07s_metrics(tmp_path):
    assert peers.write_table(tmp_path) == []
    rows = [
        {"scenario": "paper", "policy": p, "tasks_per_slot": n, **dict.fromkeys(peers.METRICS, 0.5)}
        for p in peers.POLICIES
        for n in (5, 10)
    ]
    tuned = [
        {
            "scenario": "paper",
            "policy": p,
            "tasks_per_slot": n,
            "asked_route_share": 0.25,
            "asked_escalation_share": 0.1,
            "route_at": 33.0,
            "threshold": 28.0,
            "train_utility": 30.0,
        }
        for p in peers.PEERS
        for n in (5, 10)
    ]
    folder = tmp_path / peers.NOTEBOOK
    folder.mkdir()
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "comparison": rows,
                "tuned": tuned,
                "seed": 0,
                "train_seeds": [1000],
                "slo_seconds": 10.0,
            }
        )
    )
    (md,) = peers.write_table(tmp_path)
    text = md.read_text()
    assert text.count("\n| ") == 1 + len(rows) and "route ~25% to heavy, escalate ~10%" in text
    csv = pd.read_csv(tmp_path / "peers.csv")
    assert len(csv) == len(rows)
    assert {"over_slo", "p95_latency_s", "gpu_s_per_image"} <= set(csv.columns)
    assert set(csv.loc[csv["policy"] == "direct", "configuration"]) == {"paper's thresholds"}
