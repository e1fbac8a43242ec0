"""Tests of aigc_lib.serving: the event-driven simulator (docs/SPEC.md section 8).

The slot model of aigc_lib.simulation is a special case; nothing is lost on hostile arrivals; the
queues are first-in first-out at the planned shares (checked against a re-implementation).
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigc_lib import arrivals, serving, simulation
from aigc_lib.readings import Readings
from aigc_lib.scenario import load_scenario

TASKS = np.array([3, 0, 10, 12, 1, 5, 8, 9, 10, 11, 2, 3, 4, 20, 7])


@pytest.fixture(scope="module")
def sc():
    return load_scenario("paper")


@pytest.fixture(scope="module")
def table_prompts(sc):
    groups = np.repeat(sc.group_names, 7)
    return pd.DataFrame({"prompt_id": np.arange(groups.size) + 100, "group": groups})


def policy(rule, **routing):
    return serving.Policy(rule, serving.Routing(rule, **routing))


def run(sc, arrival, pol, seed=0, slot_seconds=2.0, **options):
    return serving.serve(sc, serving.requests(sc, arrival, seed), pol, slot_seconds, **options)


# --- the paper's slot model as a special case ----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("assignment", ["probabilistic", "direct", "random", "sd15"])
def test_slots_arriving_at_their_start_on_an_idle_gpu_are_simulate(
    sc, table_prompts, seed, assignment
):
    period = 1000.0  # every slot's work is done long before the next slot starts: an idle GPU
    sim = simulation.simulate(sc, TASKS.size, seed, assignment, "exact", table_prompts, TASKS).tasks
    reqs = serving.requests(
        sc, arrivals.slot_arrivals(TASKS.size, TASKS, period), seed, table_prompts
    )
    tasks = serving.serve(sc, reqs, policy(assignment), period).tasks
    assert sim["latency"].max() < period
    for column in ("prompt_id", "group", "model", "steps"):
        np.testing.assert_array_equal(tasks[column].to_numpy(), sim[column].to_numpy(), column)
    np.testing.assert_allclose(tasks["score"], sim["score"], rtol=1e-12)
    np.testing.assert_allclose(tasks["latency"], sim["latency"], rtol=1e-12)
    np.testing.assert_allclose(tasks["utility"], sim["utility"], rtol=1e-12)


def test_the_special_case_holds_for_the_annealer_and_the_prompt_reading(sc):
    readings = Readings(information="prompt", rho=0.5)
    sim = simulation.simulate(sc, TASKS.size, 7, readings=readings, tasks_per_slot=TASKS).tasks
    reqs = serving.requests(sc, arrivals.slot_arrivals(TASKS.size, TASKS, 500.0), 7)
    tasks = serving.serve(
        sc, reqs, policy("probabilistic"), 500.0, readings=readings, allocation="annealing"
    ).tasks
    np.testing.assert_array_equal(tasks["steps"], sim["steps"])
    np.testing.assert_allclose(tasks["latency"], sim["latency"], rtol=1e-12)
    np.testing.assert_allclose(tasks["score"], sim["score"], rtol=1e-12)


def test_requests_carry_the_prompts_simulate_draws(sc, table_prompts):
    draws = simulation.workload(sc, 4, 9, table_prompts, 5)
    reqs = serving.requests(sc, np.arange(20.0), 9, table_prompts)
    for column in ("prompt_id", "group", "deviation", "predictor_noise", "image_noise"):
        np.testing.assert_array_equal(reqs.draws[column], draws[column], column)


# --- the queue model, against a re-implementation ------------------------------------------------


def replay(sc, result, model_name):
    """Completion times of one model's requests from the plans: FIFO, shares fixed per period,
    an image keeps the steps it started with (an independent re-implementation)."""
    plans = result.plans.set_index("time")
    period = result.settings["slot_seconds"]
    spec = sc.models[sc.model_names.index(model_name)]
    tasks = result.tasks[result.tasks["model"] == model_name]
    queue = list(tasks.sort_values(["planned_at", "arrival", "request"])["request"])
    done, clock, steps_of = {}, None, {}
    t = min(plans.index)
    work_left = None
    while queue:
        share = (
            plans.loc[t, f"compute_{model_name}"] / sc.capacity_tflops if t in plans.index else 0
        )
        free = t
        while queue and share > 0:
            r = queue[0]
            if result.tasks.loc[r, "planned_at"] > t:
                break
            if work_left is None:
                steps_of[r] = plans.loc[t, f"steps_{model_name}"]
                work_left = spec.image_seconds(steps_of[r])
            finish = free + work_left / share
            if finish > t + period + 1e-9:
                work_left -= (t + period - free) * share
                break
            done[r], free, work_left = finish, finish, None
            queue.pop(0)
        t += period
    return pd.Series(done), pd.Series(steps_of)


def test_each_model_serves_its_queue_in_order_at_its_share_across_plans(sc):
    arrival = np.concatenate([np.zeros(12), np.full(5, 3.1), [7.9, 8.0, 30.0]])
    result = run(sc, arrival, policy("probabilistic"), seed=4)
    assert len(result.plans) > 4  # the burst spans several plans: work carries over
    for name in sc.model_names:
        completion, steps = replay(sc, result, name)
        tasks = result.tasks.set_index("request")
        np.testing.assert_allclose(tasks.loc[completion.index, "completion"], completion, atol=1e-9)
        np.testing.assert_array_equal(tasks.loc[steps.index, "steps"], steps)


def test_a_request_in_service_keeps_its_steps_when_the_plan_changes(sc):
    # a burst on SDXL: the planner picks fewer steps as the queue grows; the head keeps its own
    arrival = np.concatenate([[0.0], np.full(30, 0.5)])
    result = run(sc, arrival, policy("sdxl"), slot_seconds=2.0)
    first_plan, second_plan = result.plans.iloc[0], result.plans.iloc[1]
    assert first_plan["steps_sdxl"] != second_plan["steps_sdxl"]
    assert result.tasks.loc[0, "steps"] == first_plan["steps_sdxl"]
    assert result.tasks.loc[0, "completion"] > 2.0  # it was in service when the plan changed


def test_shares_never_exceed_the_gpu_and_every_queued_model_gets_one(sc):
    result = run(sc, arrivals.poisson(1.0, 200, 3), policy("random"))
    compute = result.plans.filter(like="compute_").to_numpy()
    queued = result.plans.filter(like="queued_").to_numpy()
    assert np.all(compute.sum(axis=1) <= sc.capacity_tflops * (1 + 1e-9))
    assert np.all(compute[queued > 0] > 0)


# --- nothing lost ---------------------------------------------------------------------------------


def check_conservation(sc, result, arrival):
    tasks = result.tasks
    assert len(tasks) == len(arrival)
    np.testing.assert_array_equal(tasks["request"], np.arange(len(arrival)))
    np.testing.assert_array_equal(tasks["arrival"], arrival)
    assert tasks["completion"].notna().all() and np.isfinite(tasks["latency"]).all()
    fastest = np.array(
        [
            sc.models[sc.model_names.index(m)].image_seconds(z)
            for m, z in zip(tasks["model"], tasks["steps"])
        ]
    )
    assert np.all(tasks["planned_at"] >= tasks["arrival"] - 1e-9)
    assert np.all(tasks["completion"] >= tasks["planned_at"] + fastest - 1e-9)
    assert np.all(tasks["planned_at"] - tasks["arrival"] < result.settings["slot_seconds"] + 1e-9)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    times=st.lists(st.floats(0, 200, allow_nan=False), min_size=0, max_size=40),
    burst=st.integers(0, 20),
    rule=st.sampled_from(["probabilistic", "random", "sdxl-turbo", "load_aware"]),
)
def test_every_arrival_is_served_once_whatever_the_order(sc, times, burst, rule):
    arrival = np.array(times + [50.0] * burst)  # unsorted, with duplicates
    pol = policy(rule, kappa=0.1) if rule == "load_aware" else policy(rule)
    check_conservation(sc, run(sc, arrival, pol), arrival)


@pytest.mark.parametrize("rule", ["direct", "cascade"])
def test_unsorted_arrivals_give_each_request_the_same_service(sc, rule):
    """Requests are served in arrival order whatever their order in the input; a policy without
    random assignment gives each request (its prompt, its noise) the same outcome."""
    pol = policy(rule)
    if rule == "cascade":
        pol = serving.Policy(rule, serving.Routing("sdxl-turbo"), serving.Escalation(0.3))
    arrival = arrivals.poisson(0.6, 80, 5)
    shuffled = np.random.default_rng(0).permutation(arrival.size)
    reqs = serving.requests(sc, arrival, 0)
    a = serving.serve(sc, reqs, pol).tasks
    moved = serving.Requests(arrival[shuffled], reqs.draws.iloc[shuffled].reset_index(drop=True), 0)
    b = serving.serve(sc, moved, pol).tasks
    b = b.assign(request=shuffled).sort_values("request").reset_index(drop=True)
    for column in ("prompt_id", "steps", "escalated", "completion", "score"):
        np.testing.assert_allclose(
            b[column].to_numpy(float), a[column].to_numpy(float), err_msg=column
        )


def test_a_burst_of_a_thousand_at_one_instant_is_served_first_in_first_out(sc):
    arrival = np.full(1000, 10.0)
    result = run(sc, arrival, policy("sdxl-turbo"))
    check_conservation(sc, result, arrival)
    assert np.all(np.diff(result.tasks["completion"]) > 0)  # in request order, one at a time
    assert result.plans["queued_sdxl-turbo"].iloc[0] == 1000


def test_an_hour_long_gap_costs_no_plans_and_the_server_starts_afresh(sc):
    arrival = np.concatenate([np.arange(5.0), 3600 + np.arange(5.0)])
    result = run(sc, arrival, policy("sd15"))
    check_conservation(sc, result, arrival)
    assert len(result.plans) < 20  # idle periods are skipped
    assert result.tasks["completion"].iloc[:5].max() < 3600
    reqs = serving.requests(sc, arrival, 0)
    later = serving.Requests(arrival[5:] - 3600, reqs.draws.iloc[5:].reset_index(drop=True), 0)
    alone = serving.serve(sc, later, policy("sd15")).tasks
    np.testing.assert_allclose(result.tasks["latency"].iloc[5:], alone["latency"], rtol=1e-12)


def test_an_empty_trace_gives_an_empty_run(sc):
    result = run(sc, np.zeros(0), policy("probabilistic"))
    assert len(result.tasks) == 0 and len(result.plans) == 0
    summary = serving.summarise(result, sc)
    assert summary["n_requests"] == 0 and math.isnan(summary["goodput"])


@pytest.mark.parametrize(
    "arrival, match",
    [([0.0, float("nan")], "arrival"), ([-1.0], "arrival"), ([[0.0, 1.0]], "arrival")],
)
def test_bad_arrival_times_are_refused(sc, arrival, match):
    with pytest.raises(ValueError, match=match):
        serving.requests(sc, arrival, 0)


# --- the rules ------------------------------------------------------------------------------------


def test_a_cascade_that_never_escalates_is_the_light_model_alone(sc):
    arrival = arrivals.poisson(2.0, 150, 1)
    alone = run(sc, arrival, policy("sdxl-turbo")).tasks
    cascade = serving.Policy("c", serving.Routing("sdxl-turbo"), serving.Escalation(0.0))
    never = run(sc, arrival, cascade).tasks
    assert not never["escalated"].any()
    pd.testing.assert_series_equal(never["latency"], alone["latency"])
    pd.testing.assert_series_equal(never["score"], alone["score"])


def test_an_escalated_request_waits_for_its_light_image_then_pays_for_both(sc):
    arrival = arrivals.poisson(0.5, 120, 2)
    cascade = serving.Policy("c", serving.Routing("sdxl-turbo"), serving.Escalation(0.4))
    tasks = run(sc, arrival, cascade).tasks
    up = tasks[tasks["escalated"]]
    assert 0.2 < tasks["escalated"].mean() < 0.6 and (up["model"] == "sdxl").all()
    heavy, light = sc.models[2], sc.models[0]
    assert np.all(up["completion"] >= up["first_done"] + heavy.image_seconds(up["steps"]) - 1e-9)
    np.testing.assert_allclose(
        up["gpu_seconds"], heavy.image_seconds(up["steps"]) + light.image_seconds(1)
    )
    assert (tasks.loc[~tasks["escalated"], "first_done"].isna()).all()


def test_load_aware_with_kappa_zero_is_probabilistic_on_the_same_draws(sc):
    arrival = arrivals.poisson(1.0, 200, 6)
    theta = (28.0, 35.0)
    a = run(sc, arrival, policy("probabilistic", thresholds=theta)).tasks
    b = run(sc, arrival, policy("load_aware", thresholds=theta, kappa=0.0)).tasks
    pd.testing.assert_frame_equal(a, b)


def test_load_aware_sends_a_burst_to_the_small_model(sc):
    arrival = np.concatenate([np.zeros(40), np.full(40, 2.0)])
    calm = run(sc, arrival, policy("load_aware", kappa=0.0)).tasks
    aware = run(sc, arrival, policy("load_aware", kappa=0.5)).tasks
    later = aware["planned_at"] > 0  # planned behind a backlog
    small = lambda t: (t["first_model"] == "sdxl-turbo").mean()  # noqa: E731
    assert small(aware[later]) > small(calm[later]) + 0.3
    np.testing.assert_array_equal(aware.loc[~later, "first_model"], calm.loc[~later, "first_model"])


def test_a_router_sends_the_prompts_predicted_to_score_highest_to_the_heavy_model(sc):
    arrival = arrivals.poisson(0.3, 300, 3)
    route_at = serving.route_threshold(sc, 0.3, 1.0)
    pol = serving.Policy(
        "r", serving.Routing("predictor", light=0, heavy=1, route_at=route_at, predictor_rho=1.0)
    )
    tasks = run(sc, arrival, pol).tasks
    own = sc.mu[tasks["group"].cat.codes] + tasks["deviation"]
    np.testing.assert_array_equal(tasks["first_model"] == "sd15", own >= route_at)
    assert abs((tasks["model"] == "sd15").mean() - 0.3) < 0.08


# --- the discriminator ----------------------------------------------------------------------------


def test_a_perfect_gain_discriminator_beats_random_escalation_and_the_low_score_rule_does_not(sc):
    reqs = serving.requests(sc, np.zeros(3000), 1)
    score = {
        (target, rho): serving.escalation_curve(sc, reqs, [0.25], rho, target)["mean_score"][0]
        for target in serving.TARGETS
        for rho in (0.0, 1.0)
    }
    assert score[("gain", 1.0)] > score[("gain", 0.0)] + 0.3
    assert score[("gain", 0.0)] == score[("low_score", 0.0)]  # random is random
    assert score[("low_score", 1.0)] < score[("gain", 0.0)]  # low scores gain least here


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_an_escalation_share_gives_about_that_share(sc, share):
    reqs = serving.requests(sc, np.zeros(4000), 2)
    curve = serving.escalation_curve(sc, reqs, [share])
    assert abs(curve["escalated"][0] - share) < 0.03
    assert serving.escalation_threshold(sc, 0.0) == math.inf
    assert serving.escalation_threshold(sc, 1.0) == -math.inf


def test_the_discriminator_has_its_correlation_with_the_gain(sc):
    view = serving.discriminator(sc, serving.requests(sc, np.zeros(5000), 3), 0.6)
    assert abs(np.corrcoef(view["output"], view["gain"])[0, 1] - 0.6) < 0.03
    assert view["label"].equals(view["gain"] > serving.DISC_MARGIN)


# --- load, summaries and errors -------------------------------------------------------------------


def test_the_reference_policy_sets_the_load_unit(sc):
    from aigc_lib.assignment import assignment_probabilities

    shares = sc.shares @ assignment_probabilities(sc.mu, sc.sigma, sc.thresholds)
    seconds = sum(p * m.image_seconds(m.steps[0]) for p, m in zip(shares, sc.models))
    assert serving.reference_seconds(sc) == pytest.approx(seconds)
    assert serving.utilisation(sc, serving.arrival_rate(sc, 0.8)) == pytest.approx(0.8)


def test_the_summary_counts_goodput_within_the_slo(sc):
    result = run(sc, arrivals.poisson(0.5, 100, 8), policy("probabilistic"))
    summary = serving.summarise(result, sc, 5.0)
    latency, arrival = result.tasks["latency"], result.tasks["arrival"]
    assert summary["slo_attainment"] == pytest.approx((latency <= 5.0).mean())
    assert summary["goodput"] == pytest.approx(
        (latency <= 5.0).sum() / (arrival.max() - arrival.min())
    )
    assert summary["p50_latency"] <= summary["p95_latency"] <= summary["p99_latency"]
    assert set(summary) == set(serving.METRICS) | set(serving.COUNTS)


def test_the_same_inputs_give_the_same_run(sc):
    arrival = arrivals.poisson(1.0, 60, 2)
    cascade = serving.Policy("c", serving.Routing("sdxl-turbo"), serving.Escalation(0.3))
    a, b = run(sc, arrival, cascade), run(sc, arrival, cascade)
    pd.testing.assert_frame_equal(a.tasks, b.tasks)
    pd.testing.assert_frame_equal(a.plans, b.plans)


@pytest.mark.parametrize(
    "pol, options, match",
    [
        (policy("probabilistic"), {"readings": Readings(latency="per_image")}, "fifo"),
        (policy("largest"), {}, "rule"),
        (policy("probabilistic", thresholds=(30.0, 29.0)), {}, "thresholds"),
        (
            serving.Policy("c", serving.Routing("sd15"), serving.Escalation(0.2, light=1)),
            {},
            "light",
        ),
        (
            serving.Policy("c", serving.Routing("sd15"), serving.Escalation(0.2, light=2, heavy=1)),
            {},
            "heavy",
        ),
        (serving.Policy("c", serving.Routing("sd15"), serving.Escalation(1.5)), {}, "share"),
        (policy("probabilistic"), {"slot_seconds": 0.0}, "slot_seconds"),
    ],
)
def test_bad_arguments_name_themselves(sc, pol, options, match):
    period = options.pop("slot_seconds", 2.0)
    with pytest.raises(ValueError, match=match):
        run(sc, [0.0, 1.0], pol, slot_seconds=period, **options)


# --- issue 26: batches, sharing modes, N GPUs, admission control, estimators ----------------------

MODES = [
    serving.Server(),
    serving.Server("work-conserving"),
    serving.Server("whole-gpus", 1),
    serving.Server("whole-gpus", 3),
    serving.Server("shares", 2),
    serving.Server("work-conserving", 2, charge_estimators=True),
]


def with_knobs(pol, max_batch=1, admission=False):
    return serving.Policy(
        pol.name, pol.routing, pol.escalation, max_batch=max_batch, admission=admission
    )


def cascade(share=0.3):
    return serving.Policy("cascade", serving.Routing("sdxl-turbo"), serving.Escalation(share))


def check_counts(result, n):
    """Arrivals = served + dropped by reason, each request once; dropped rows carry no image."""
    tasks, counts = result.tasks, result.settings["counts"]
    dropped = tasks["dropped"] != ""
    assert counts["arrivals"] == n == len(tasks)
    assert counts["served"] + sum(counts["dropped"].values()) == n
    assert counts["served"] == int((~dropped).sum())
    assert set(tasks.loc[dropped, "dropped"]) <= set(serving.DROP_REASONS)
    assert tasks.loc[dropped, ["completion", "latency", "score"]].isna().all().all()
    assert np.isfinite(tasks.loc[~dropped, ["completion", "latency", "score"]]).all().all()
    assert not tasks.loc[tasks["fell_back"], "escalated"].any()


def test_batch_size_one_reduces_to_the_model_without_batches(sc):
    """max_batch > 1 with requests that never meet in a queue forms batches of one: the same run."""
    arrival = np.arange(0.0, 400.0, 20.0)  # each request alone on an idle GPU
    for pol in (policy("probabilistic"), cascade()):
        one = run(sc, arrival, pol)
        many = run(sc, arrival, with_knobs(pol, max_batch=16))
        assert (many.tasks["batch"] == 1).all()
        pd.testing.assert_frame_equal(one.tasks, many.tasks)
        pd.testing.assert_frame_equal(one.plans, many.plans)


def test_the_slot_model_holds_on_every_server_with_defaults_of_each_knob(sc, table_prompts):
    """Explicit defaults (max_batch 1, no admission, one GPU in shares) are the slot model."""
    period = 1000.0
    sim = simulation.simulate(sc, TASKS.size, 1, "probabilistic", "exact", table_prompts, TASKS)
    reqs = serving.requests(sc, arrivals.slot_arrivals(TASKS.size, TASKS, period), 1, table_prompts)
    pol = with_knobs(policy("probabilistic"), max_batch=1, admission=False)
    tasks = serving.serve(sc, reqs, pol, period, server=serving.Server("shares", 1, False)).tasks
    np.testing.assert_allclose(tasks["latency"], sim.tasks["latency"], rtol=1e-12)
    np.testing.assert_allclose(tasks["score"], sim.tasks["score"], rtol=1e-12)


def test_a_batch_takes_the_batch_rule_times_one_image(sc):
    """Eight requests at once on SDXL-Turbo alone: one batch, all done together at the batch
    rule's time at the planned share (data/serving.yaml, fitted to DiffServe's curve)."""
    result = run(sc, np.zeros(8), with_knobs(policy("sdxl-turbo"), max_batch=8))
    g = serving.batch_fractions(sc)[0]
    share = result.plans["compute_sdxl-turbo"].iloc[0] / sc.capacity_tflops
    expected = sc.models[0].image_seconds(1) * (1 + g * 7) / share
    np.testing.assert_allclose(result.tasks["completion"], expected, rtol=1e-12)
    assert (result.tasks["batch"] == 8).all()
    per_image = result.tasks["gpu_seconds"].iloc[0]
    assert per_image == pytest.approx(sc.models[0].image_seconds(1) * (1 + 7 * g) / 8)


def test_a_batch_of_one_after_a_full_batch_takes_one_image_time(sc):
    """Five at once, batches of at most four: four together, then the fifth alone."""
    result = run(sc, np.zeros(5), with_knobs(policy("sdxl-turbo"), max_batch=4), slot_seconds=100.0)
    g = serving.batch_fractions(sc)[0]
    share = result.plans["compute_sdxl-turbo"].iloc[0] / sc.capacity_tflops
    image = sc.models[0].image_seconds(1) / share
    completion = result.tasks["completion"].to_numpy()
    np.testing.assert_allclose(completion[:4], image * (1 + 3 * g), rtol=1e-12)
    assert completion[4] == pytest.approx(completion[3] + image, rel=1e-12)
    assert list(result.tasks["batch"]) == [4, 4, 4, 4, 1]


def test_the_published_curves_make_batching_help_the_small_models_and_barely_sdxl(sc):
    g = dict(zip(sc.model_names, serving.batch_fractions(sc)))
    gain = {m: 32 / serving.batch_factor(g[m], 32) for m in ("sdxl-turbo", "sd15")}
    gain["sdxl"] = 16 / serving.batch_factor(g["sdxl"], 16)
    # DiffServe's curves: 100 ms alone, 1,560 for 32 (2.05x); 1.78 s, 25.35 s (2.25x); 6.1 s, 79.1 s (1.23x)
    assert gain["sdxl-turbo"] == pytest.approx(32 * 100 / 1560, rel=0.1)
    assert gain["sd15"] == pytest.approx(32 * 1780 / 25350, rel=0.1)
    assert gain["sdxl"] == pytest.approx(16 * 6100 / 79110, rel=0.05)
    assert serving.batch_factor(g["sdxl"], 1) == 1.0
    with pytest.raises(ValueError, match="batch"):
        serving.batch_factor(0.5, 0)
    with pytest.raises(ValueError, match="fraction"):
        serving.batch_factor(1.5, 2)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    times=st.lists(st.floats(0, 60, allow_nan=False), min_size=0, max_size=40),
    burst=st.integers(0, 25),
    mode=st.sampled_from(range(len(MODES))),
    max_batch=st.sampled_from([1, 4]),
    admission=st.booleans(),
    escalate=st.booleans(),
)
def test_every_arrival_is_served_or_dropped_once_on_every_server(
    sc, times, burst, mode, max_batch, admission, escalate
):
    arrival = np.array(times + [20.0] * burst)
    pol = with_knobs(cascade() if escalate else policy("random"), max_batch, admission)
    result = run(sc, arrival, pol, server=MODES[mode], slo_seconds=6.0)
    check_counts(result, arrival.size)
    served = result.tasks[result.tasks["dropped"] == ""]
    fastest = np.array(
        [
            sc.models[sc.model_names.index(m)].image_seconds(z)
            for m, z in zip(served["model"], served["steps"])
        ]
    )
    assert np.all(served["completion"] >= served["planned_at"] + fastest - 1e-9)
    # capacity: the GPU-seconds of the served images fit in n_gpus GPUs over the run
    if len(served):
        n_gpus = MODES[mode].n_gpus
        span = served["completion"].max() - served["planned_at"].min()
        assert served["gpu_seconds"].sum() <= n_gpus * span * (1 + 1e-9) + 1e-9


def test_the_same_inputs_give_the_same_run_on_every_server(sc):
    arrival = arrivals.poisson(1.5, 80, 2)
    for server in MODES[1:4]:
        pol = with_knobs(cascade(), 4, True)
        a, b = run(sc, arrival, pol, server=server), run(sc, arrival, pol, server=server)
        pd.testing.assert_frame_equal(a.tasks, b.tasks)
        pd.testing.assert_frame_equal(a.plans, b.plans)


def test_admission_drops_at_once_what_cannot_meet_the_slo_and_serves_the_rest_in_time(sc):
    """100 requests at 0 on SD1.5 alone, one plan: the first that fit in the SLO are served,
    in time; the others are dropped at admission (the planned rate makes the estimate exact)."""
    result = run(sc, np.zeros(100), with_knobs(policy("sd15"), admission=True), slot_seconds=100.0)
    seconds = sc.models[1].image_seconds(result.plans["steps_sd15"].iloc[0])
    share = result.plans["compute_sd15"].iloc[0] / sc.capacity_tflops
    fit = int(np.floor(serving.SLO_SECONDS / (seconds / share) + 1e-9))
    check_counts(result, 100)
    assert result.settings["counts"]["served"] == fit
    assert result.settings["counts"]["dropped"]["admission"] == 100 - fit
    assert result.tasks["latency"].max() <= serving.SLO_SECONDS
    summary = serving.summarise(result, sc)
    assert summary["slo_attainment"] == pytest.approx(fit / 100)
    assert summary["n_dropped"] == 100 - fit and summary["n_served"] == fit


def test_admission_control_raises_attainment_in_overload_and_counts_every_drop(sc):
    arrival = arrivals.poisson(serving.arrival_rate(sc, 1.5), 300, 4)
    plain = serving.summarise(run(sc, arrival, policy("probabilistic")), sc)
    guarded = run(sc, arrival, with_knobs(policy("probabilistic"), admission=True))
    summary = serving.summarise(guarded, sc)
    check_counts(guarded, arrival.size)
    assert summary["n_dropped"] > 0 and plain["n_dropped"] == 0
    assert summary["slo_attainment"] > plain["slo_attainment"]
    assert summary["p99_latency"] < plain["p99_latency"]


def test_a_cascade_past_its_slo_keeps_the_light_image_instead_of_dropping(sc):
    pol = with_knobs(cascade(1.0), admission=True)
    result = run(sc, np.zeros(40), pol, slo_seconds=3.0)
    check_counts(result, 40)
    tasks = result.tasks
    assert tasks["fell_back"].any()
    kept = tasks[tasks["fell_back"]]
    assert (kept["model"] == "sdxl-turbo").all() and not kept["escalated"].any()


def test_a_work_conserving_gpu_never_idles_while_work_is_queued(sc):
    """One plan for a burst on two models: the last image ends when the GPU has done all the
    work (its planned total), not later; with fixed shares the lighter queue's share idles."""
    pol = policy("random")
    arrival = np.zeros(30)
    wc = run(sc, arrival, pol, slot_seconds=1000.0, server=serving.Server("work-conserving"))
    fixed = run(sc, arrival, pol, slot_seconds=1000.0)
    planned = wc.plans.filter(like="compute_").iloc[0].sum() / sc.capacity_tflops
    work = wc.tasks["gpu_seconds"].sum()
    assert wc.tasks["completion"].max() == pytest.approx(work / planned, rel=1e-9)
    assert fixed.tasks["completion"].max() > wc.tasks["completion"].max() * 1.01


def test_a_whole_gpu_loads_its_model_first_and_a_cluster_serves_in_parallel(sc):
    load = serving.load_seconds(sc)
    # SDXL's weights: 3,468,837,867 parameters x 2 bytes / 25.2 GB/s
    assert load[2] == pytest.approx(3468837867 * 2 / 25.2e9)
    one = run(sc, [0.0], policy("sdxl"), server=serving.Server("whole-gpus", 1))
    steps = one.tasks["steps"].iloc[0]
    assert one.tasks["completion"].iloc[0] == pytest.approx(
        load[2] + sc.models[2].image_seconds(steps)
    )
    assert one.plans["loads"].iloc[0] == 1 and one.plans["gpus_sdxl"].iloc[0] == 1
    three = run(sc, np.zeros(3), policy("sdxl"), server=serving.Server("whole-gpus", 3))
    assert three.plans["gpus_sdxl"].iloc[0] == 3
    assert np.ptp(three.tasks["completion"]) < 1e-9  # three GPUs, three images at once
    gpus = three.plans.filter(like="gpus_").sum(axis=1)
    assert (gpus <= 3).all()


def test_n_gpus_in_shares_run_the_plan_on_every_gpu(sc):
    two = run(sc, np.zeros(2), policy("sd15"), server=serving.Server("shares", 2))
    assert np.ptp(two.tasks["completion"]) < 1e-9
    one = run(sc, np.zeros(1), policy("sd15"))
    assert two.tasks["completion"].iloc[0] == pytest.approx(one.tasks["completion"].iloc[0])


def test_charged_estimators_add_their_time_to_the_first_image(sc):
    cost = serving.estimator_seconds()
    free = run(sc, [0.0], cascade(0.0))
    paid = run(sc, [0.0], cascade(0.0), server=serving.Server(charge_estimators=True))
    share = free.plans["compute_sdxl-turbo"].iloc[0] / sc.capacity_tflops
    extra = paid.tasks["completion"].iloc[0] - free.tasks["completion"].iloc[0]
    assert extra == pytest.approx(cost["discriminator"] / share)
    gap = paid.tasks["gpu_seconds"].iloc[0] - free.tasks["gpu_seconds"].iloc[0]
    assert gap == pytest.approx(cost["discriminator"])


@pytest.mark.parametrize(
    "server, pol, options, match",
    [
        (serving.Server("fair"), policy("sd15"), {}, "sharing"),
        (serving.Server("whole-gpus", 0), policy("sd15"), {}, "n_gpus"),
        (serving.Server(charge_estimators="yes"), policy("sd15"), {}, "charge_estimators"),
        (serving.Server(), with_knobs(policy("sd15"), max_batch=0), {}, "max_batch"),
        (serving.Server(), with_knobs(policy("sd15"), max_batch=64), {}, "max_batch"),
        (serving.Server(), policy("sd15"), {"slo_seconds": 0.0}, "slo_seconds"),
    ],
)
def test_bad_servers_and_knobs_name_themselves(sc, server, pol, options, match):
    with pytest.raises(ValueError, match=match):
        run(sc, [0.0, 1.0], pol, server=server, **options)


HOSTILE = {
    "unsorted": "TIMESTAMP\n5\n1\n3\n2\n",
    "duplicate": "TIMESTAMP\n1\n1\n1\n2\n",
    "burst": "TIMESTAMP\n" + "4\n" * 300,
    "long gap": "TIMESTAMP\n0\n1\n7200\n7201\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_traces_are_conserved_on_every_server(sc, tmp_path, name):
    path = tmp_path / "trace.csv"
    path.write_text(HOSTILE[name])
    times = arrivals.read_trace(path)
    for server in MODES:
        result = run(sc, times, with_knobs(policy("probabilistic"), 4, True), server=server)
        check_counts(result, times.size)
        np.testing.assert_array_equal(result.tasks["arrival"], times)


@pytest.mark.parametrize(
    "text, match",
    [("TIMESTAMP\n", "no arrivals"), ("TIMESTAMP,a\n1,2\n3\n", "line 3")],
    ids=["empty", "torn line"],
)
def test_empty_and_torn_traces_are_refused_naming_the_file(tmp_path, text, match):
    path = tmp_path / "hostile.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"hostile\.csv.*{match}"):
        arrivals.read_trace(path)


def test_spec_section_8_carries_the_numbers_the_code_computes(sc):
    """docs/SPEC.md section 8: its generated block is serving.spec_numbers(), and the numbers its
    prose quotes are the ones the code and the data give."""
    from pathlib import Path

    spec = (Path(__file__).resolve().parent.parent / "docs" / "SPEC.md").read_text()
    section = spec[spec.index("## 8. Serving under load") :]
    block = section.split("<!-- serving-numbers:start -->\n")[1].split(
        "\n<!-- serving-numbers:end"
    )[0]
    assert block == serving.spec_numbers(sc), "paste serving.spec_numbers() into docs/SPEC.md"
    code = arrivals.load_trace("code")
    gaps = arrivals.silent_gaps(code)
    n, span = code.size, np.ptp(code)
    busy = (n - 1 - gaps["count"]) / (span - gaps["seconds"]) / ((n - 1) / span)
    link = serving.serving_data()["host_link_gb_per_s"]["value"]
    quoted = [
        f"longer than\n  {arrivals.SILENT_GAP_FACTOR:.0f} times the median gap",
        f"more than {arrivals.SILENT_SHARE_WARNING:.0%} of it",
        f"silent {gaps['share']:.0%} of its hour, busy\n  periods at {busy:.1f} times the rate",
        f"/ {link} GB/s",
    ]
    for text in quoted:
        assert text in section, text
    assert arrivals.silent_gaps(arrivals.load_trace("conv"))["count"] == 0
