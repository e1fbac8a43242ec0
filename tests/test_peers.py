"""Tests of aigc_lib.peers: the policies' configurations, equal tuning on data disjoint from the
evaluation, the comparison, and the generated table."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from aigc_lib import arrivals, peers, serving
from aigc_lib.scenario import load_scenario


@pytest.fixture(scope="module")
def sc():
    return load_scenario("paper")


@pytest.fixture(scope="module")
def small(sc):
    """A small comparison: two loads, Poisson and the bursty trace, three configurations each."""
    return peers.compare(
        sc,
        [0.6, 1.2],
        ["poisson", "code"],
        n_configs=3,
        n_train=80,
        n_eval=60,
        replicates=2,
        n_jobs=1,
    )


# --- configurations -------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", peers.TUNED)
def test_every_tunable_policy_gets_the_same_number_of_configurations(sc, policy):
    for n in (1, 5, 12):
        configs = peers.configurations(sc, policy, n)
        assert len(configs) == n and all(isinstance(c, serving.Policy) for c in configs)
        assert all(c.name == policy for c in configs)
    again = peers.configurations(sc, policy, 5)
    assert all(c.knobs == d.knobs for c, d in zip(again, peers.configurations(sc, policy, 5)))


def test_threshold_shares_become_thresholds_that_send_those_shares(sc):
    from aigc_lib.assignment import assignment_probabilities

    for config in peers.configurations(sc, "probabilistic", 8):
        theta = config.routing.thresholds
        assert theta[0] < theta[1]
        shares = sc.shares @ assignment_probabilities(sc.mu, sc.sigma, theta)
        assert shares[0] == pytest.approx(config.knobs["small_share"], abs=1e-6)
        assert shares[2] == pytest.approx(config.knobs["large_share"], abs=1e-6)


def test_the_router_chooses_among_the_model_pairs(sc):
    configs = peers.configurations(sc, "router", 12)
    pairs = {(c.routing.light, c.routing.heavy) for c in configs}
    assert pairs == {(0, 1), (0, 2), (1, 2)}
    assert all(c.escalation is None for c in configs)
    cascades = peers.configurations(sc, "cascade", 4)
    assert all(c.escalation.target == "gain" and c.routing.rule == "sdxl-turbo" for c in cascades)


def test_describe_says_what_a_configuration_is(sc):
    config = peers.configurations(sc, "load-aware", 3)[1]
    text = peers.describe("load-aware", config.knobs)
    assert "small" in text and "kappa" in text
    assert peers.describe("sdxl", {}) == "one model"


# --- workloads and equal tuning -------------------------------------------------------------------


def test_training_and_held_out_workloads_are_disjoint(sc):
    trace = arrivals.load_trace("code")
    works = peers.workloads(sc, "code", 0.8, 300, 200, 3, trace)
    train, held = works[0], works[1:]
    assert train.role == "train" and all(w.role == "eval" for w in held)
    windows = [w.window for w in works]
    assert all(a[1] < b[0] for a, b in zip(windows, windows[1:]))  # consecutive, no overlap
    assert train.seed not in {w.seed for w in held}
    rate = serving.arrival_rate(sc, 0.8)
    for w in works:
        assert w.arrival[0] == 0
        assert (w.arrival.size - 1) / w.arrival[-1] == pytest.approx(rate)
    poisson = peers.workloads(sc, "poisson", 0.8, 300, 200, 3)
    assert [w.seed for w in poisson] == [peers.TRAINING_SEED, 0, 1, 2]
    with pytest.raises(ValueError, match="n_eval"):
        peers.workloads(sc, "code", 0.8, 8000, 1000, 3, trace)


def test_equal_tuning_every_policy_tries_the_same_configurations_on_training_data(small):
    tuning = small.tuning
    counts = tuning.groupby(["process", "load", "policy"]).size()
    assert set(counts) == {3} and len(counts) == 2 * 2 * len(peers.TUNED)
    chosen = tuning.groupby(["process", "load", "policy"])[["chosen_utility", "chosen_slo"]].sum()
    assert (chosen == 1).all().all()
    # the evaluation never uses the training seed: replicates 0 and 1 only
    assert set(small.runs["replicate"]) == {0, 1}
    assert peers.TRAINING_SEED not in set(small.runs["replicate"])


def test_every_policy_is_evaluated_on_every_cell(small):
    runs = small.runs
    expected = len(peers.POLICIES) + len(peers.TUNED)  # tuned policies once per objective
    per_cell = runs.groupby(["process", "load", "replicate"]).size()
    assert set(per_cell) == {expected}
    assert set(runs.loc[runs["objective"] == "none", "policy"]) == set(peers.POLICIES) - set(
        peers.TUNED
    )
    assert (runs["n_requests"] == 60).all()
    summary = small.summary
    assert len(summary) == 2 * 2 * expected
    ok = summary["slo_attainment_lo"] <= summary["slo_attainment"] + 1e-12
    assert ok.all()


def test_the_chosen_configuration_is_the_tuning_tables_choice(sc, small):
    tuning = small.tuning
    row = tuning[(tuning["process"] == "poisson") & (tuning["load"] == 0.6)]
    row = row[row["policy"] == "cascade"]
    best = row.loc[row["chosen_utility"], "mean_utility"].iloc[0]
    assert best == row["mean_utility"].max()


def test_a_comparison_does_not_depend_on_the_number_of_workers(sc):
    options = dict(n_configs=2, n_train=40, n_eval=40, replicates=2, policies=["sd15", "cascade"])
    one = peers.compare(sc, [0.9], ["poisson"], n_jobs=1, **options)
    two = peers.compare(sc, [0.9], ["poisson"], n_jobs=2, **options)
    pd.testing.assert_frame_equal(one.summary, two.summary)
    pd.testing.assert_frame_equal(one.tuning, two.tuning)


def test_choose_takes_the_best_utility_or_the_best_score_within_the_slo():
    table = pd.DataFrame(
        {
            "mean_utility": [30.0, 31.0, 29.0],
            "mean_score": [32.0, 31.5, 30.0],
            "slo_attainment": [0.9, 0.96, 0.99],
        }
    )
    assert peers.choose(table, "utility") == 1
    assert peers.choose(table, "slo") == 1
    assert peers.choose(table, "slo", target=0.98) == 2
    assert peers.choose(table.assign(slo_attainment=[0.5, 0.7, 0.6]), "slo") == 1
    with pytest.raises(ValueError, match="objective"):
        peers.choose(table, "speed")


def test_the_interval_is_students_t():
    mean, lo, hi = peers.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hi - mean == pytest.approx(4.302653 * 1 / math.sqrt(3), rel=1e-5)
    assert math.isnan(peers.interval([1.0])[1])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda sc: peers.configurations(sc, "random", 3), "policy"),
        (lambda sc: peers.configurations(sc, "cascade", 0), "n"),
        (lambda sc: peers.fixed_policy(sc, "cascade"), "name"),
        (lambda sc: peers.compare(sc, [0.5], ["burst"]), "processes"),
        (lambda sc: peers.compare(sc, [0.5], ["poisson"], policies=["best"]), "policies"),
        (lambda sc: peers.workloads(sc, "code", 0.5, 10, 10, 1), "trace"),
    ],
)
def test_bad_arguments_name_themselves(sc, call, match):
    with pytest.raises(ValueError, match=match):
        call(sc)


# --- the generated table --------------------------------------------------------------------------


def test_the_table_is_written_from_notebook_07s_metrics(tmp_path, small):
    summary = small.summary
    chosen = [
        {
            "process": r["process"],
            "load": r["load"],
            "policy": r["policy"],
            "objective": objective,
            "configuration": "escalate 50%",
        }
        for r in small.tuning[small.tuning["chosen_utility"]].to_dict(orient="records")
        for objective in ("utility",)
    ]
    metrics = {
        "comparison": json.loads(summary.to_json(orient="records")),
        "chosen": chosen,
        "n_configs": 3,
        "table_loads": [1.2],
        "slot_seconds": 2.0,
        "slo_seconds": 10.0,
        "scenario_label": "paper",
        "leads": json.loads(peers.leads(small).to_json(orient="records")),
    }
    folder = tmp_path / peers.NOTEBOOK
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    frame = peers.table(tmp_path)
    assert len(frame) == len(summary)
    assert set(frame.loc[frame["policy"] == "cascade", "configs"]) == {3}
    assert set(frame.loc[frame["policy"] == "sdxl", "configs"]) == {1}
    (md,) = peers.write_table(tmp_path)
    text = md.read_text()
    assert "## code, offered load 1.2" in text and "offered load 0.6" not in text
    assert "escalate 50%" in text and (tmp_path / "peers.csv").is_file()
    assert set(frame["scenario"]) == {"paper"}
    assert (frame["score_low"] <= frame["score"]).all() and (
        frame["score"] <= frame["score_high"]
    ).all()
    row = frame[frame["load"] == 1.2].iloc[0]
    assert f"{row['score']:g} [{row['score_low']:g}, {row['score_high']:g}]" in text
    assert "## Who leads" in text and ("| not shown |" in text or "| shown |" in text)
    assert peers.write_table(tmp_path / "nothing") == []


# --- tuning coverage ------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", peers.TUNED)
def test_no_configuration_sits_on_a_single_model_corner(sc, policy):
    for config in peers.configurations(sc, policy, 16):
        assert peers.collapse(sc, config) is None or policy in ("direct", "router")
        shares = [v for k, v in config.knobs.items() if k.endswith("_share")]
        assert all(0.0 < v < 1.0 for v in shares)  # scrambled: never exactly 0 or 1


def test_the_single_models_are_always_compared_and_collapse_to_themselves(sc):
    out = peers.compare(
        sc,
        [0.8],
        ["poisson"],
        n_configs=1,
        n_train=30,
        n_eval=30,
        replicates=2,
        policies=["probabilistic (paper)"],
        n_jobs=1,
    )
    assert set(out.summary["policy"]) == {"probabilistic (paper)", *peers.SINGLE_MODELS}
    for name in peers.SINGLE_MODELS:
        assert peers.collapse(sc, peers.fixed_policy(sc, name)) == name
    assert peers.collapse(sc, peers.fixed_policy(sc, "random")) is None


# --- leads with paired intervals ------------------------------------------------------------------


def _runs(gaps):
    rows = []
    for r, gap in enumerate(gaps):
        for policy, value in (("a", 10.0 + gap), ("b", 10.0)):
            rows.append(
                {
                    "process": "code",
                    "load": 0.9,
                    "policy": policy,
                    "objective": "none",
                    "replicate": r,
                    "mean_utility": value,
                }
            )
    runs = pd.DataFrame(rows)
    summary = runs.groupby(["process", "load", "policy", "objective"], as_index=False).mean()
    return summary, runs


def test_a_lead_is_shown_only_where_its_paired_interval_lies_above_zero():
    summary, runs = _runs([1.0, 1.2, 0.9, 1.1])
    (row,) = peers.lead(summary, runs, "mean_utility").to_dict(orient="records")
    assert (row["best"], row["next"], row["verdict"]) == ("a", "b", "shown")
    assert row["lead"] == pytest.approx(1.05) and 0 < row["lo"] < 1.05 < row["hi"]
    summary, runs = _runs([3.0, -2.0, 0.5])
    (row,) = peers.lead(summary, runs, "mean_utility").to_dict(orient="records")
    assert row["verdict"] == "not shown" and row["lo"] < 0 < row["hi"]
    summary, runs = _runs([0.0, 0.0])
    assert peers.lead(summary, runs, "mean_utility")["verdict"].tolist() == ["alone"]


# --- a cluster sized to the real traces -----------------------------------------------------------


def test_one_replica_is_the_single_gpu_server(sc):
    reqs = serving.requests(sc, arrivals.poisson(0.5, 60, 3), 3)
    policy = peers.fixed_policy(sc, "probabilistic (paper)")
    one = peers.replicas(sc, reqs, policy, 1)
    alone = serving.serve(sc, reqs, policy)
    np.testing.assert_allclose(one.tasks["latency"], alone.tasks["latency"])
    many = peers.replicas(sc, reqs, policy, 4)
    assert sorted(many.tasks["request"]) == list(range(60)) and set(many.tasks["gpu"]) == set(
        range(4)
    )


def test_gpus_needed_is_the_fewest_that_keep_the_target(sc):
    trace = arrivals.load_trace("conv")
    (window,) = peers.windows(trace, 150, 1, 500)
    assert window[0] == 0 and np.all(np.diff(window) >= 0)
    reqs = serving.requests(sc, window, 0)
    policy = peers.fixed_policy(sc, "sd15")
    found = peers.gpus_needed(sc, reqs, policy, target=0.9)
    n = found["gpus"]
    assert found["slo_attainment"] >= 0.9
    below = serving.summarise(peers.on_gpus(sc, reqs, policy, n - 1), sc)["slo_attainment"]
    assert n == 1 or below < 0.9
    for sharing in ("replicas", "shares"):  # the search agrees with a scan from one GPU
        found = peers.gpus_needed(sc, reqs, policy, target=0.9, sharing=sharing)["gpus"]
        scan = next(
            k
            for k in range(1, 65)
            if serving.summarise(peers.on_gpus(sc, reqs, policy, k, sharing), sc)["slo_attainment"]
            >= 0.9
        )
        assert found == scan
    assert math.isnan(
        peers.gpus_needed(sc, reqs, peers.fixed_policy(sc, "sdxl"), max_gpus=1)["gpus"]
    )
    with pytest.raises(ValueError, match="count"):
        peers.windows(trace, 10_000, 3)
    with pytest.raises(ValueError, match="sharing"):
        peers.on_gpus(sc, reqs, policy, 2, "anywhere")


def test_size_cluster_gives_one_row_per_window_and_an_interval(sc):
    cuts = {"code": peers.windows(arrivals.load_trace("code"), 80, 3, 100)}
    pols = {p: peers.fixed_policy(sc, p) for p in ("sdxl-turbo", "sd15")}
    sized = peers.size_cluster(sc, cuts, pols, n_jobs=1)
    assert len(sized) == 6 and (sized["slo_attainment"] >= peers.TARGET_ATTAINMENT).all()
    table = peers.gpus_table(sized, ["gpus", "mean_score"])
    assert list(table["policy"]) == ["sdxl-turbo", "sd15"] and (table["reached"] == 3).all()
    assert (table["gpus_lo"] <= table["gpus"]).all()
    words = peers.gpus_words(
        {"gpus": 3.0, "gpus_lo": 0.2, "gpus_hi": 5.5, "windows": 3.0, "reached": 3}
    )
    assert words == "3.0 [1.0, 5.5]"  # never fewer than one GPU
    missed = peers.gpus_words({"gpus": 9.0, "windows": 3.0, "reached": 1.0})
    assert missed == "more GPUs than tried in 2 of 3 windows"
    equal = peers.size_cluster(sc, cuts, pols, gpus={"code": 2}, n_jobs=1)
    assert (equal["gpus"] == 2).all()
    assert (
        equal.groupby("policy")["mean_score"].mean()["sd15"]
        > equal.groupby("policy")["mean_score"].mean()["sdxl-turbo"]
    )


def test_the_largest_batch_is_a_knob_tuned_like_the_others(sc):
    plain = peers.configurations(sc, "probabilistic", 6)
    assert all(c.max_batch == 1 and "max_batch" not in c.knobs for c in plain)
    batched = peers.configurations(sc, "probabilistic", 6, batch_sizes=(1, 4, 8))
    assert {c.max_batch for c in batched} <= {1, 4, 8} and len({c.max_batch for c in batched}) > 1
    assert all(c.knobs["max_batch"] == c.max_batch for c in batched)
    assert any("batches up to" in peers.describe("probabilistic", c.knobs) for c in batched)
    with pytest.raises(ValueError, match="batch_sizes"):
        peers.configurations(sc, "cascade", 2, batch_sizes=())


def test_shared_computes_once_per_content_and_hands_out_copies():
    calls = []

    def total(frame, scale=1.0):
        calls.append(1)
        return {"sum": frame["x"].sum() * scale, "rows": list(frame["x"])}

    first = peers.shared(total, pd.DataFrame({"x": [1.0, 2.0]}), scale=2.0)
    first["rows"].append(99.0)  # the caller's copy: what is kept does not change
    again = peers.shared(total, pd.DataFrame({"x": [1.0, 2.0]}), scale=2.0)  # equal content
    assert again == {"sum": 6.0, "rows": [1.0, 2.0]} and len(calls) == 1
    assert peers.shared(total, pd.DataFrame({"x": [1.0, 3.0]}), scale=2.0)["sum"] == 8.0
    assert peers.shared(total, pd.DataFrame({"x": [1.0, 2.0]}), scale=3.0)["sum"] == 9.0
    assert len(calls) == 3
    with pytest.raises(ValueError, match="function"):
        peers.shared(42)


def test_cluster_study_is_the_sizing_by_hand(sc, small):
    traces = {"code": arrivals.load_trace("code")}
    cluster = {"max_gpus": 8, "n_jobs": 1}
    study = peers.cluster_study(sc, small, traces, ["poisson", "code"], 1.2, 40, 2, 80, **cluster)
    cuts = peers.windows(traces["code"], 40, 2, 80)
    assert all(np.array_equal(a, b) for a, b in zip(study["cuts"]["code"], cuts))
    pols = peers.cluster_policies(sc, small, "code", ["poisson", "code"], 1.2)
    assert list(pols) == list(small.summary["policy"].unique())
    by_hand = peers.gpus_table(
        peers.size_cluster(sc, {"code": cuts}, pols, **cluster),
        ["gpus", "mean_score", "slo_attainment"],
    )
    pd.testing.assert_frame_equal(study["needed"], by_hand)
    paper = by_hand.set_index("policy").loc["probabilistic (paper)", "gpus"]
    expected_n = int(np.ceil(paper)) if np.isfinite(paper) else 8
    assert study["equal_n"] == {"code": expected_n}
    assert (study["equal_runs"]["gpus"] == expected_n).all()
    with pytest.raises(ValueError, match="max_gpus"):
        peers.cluster_study(sc, small, traces, ["code"], 1.2, 40, 2, 80, n_jobs=1)
