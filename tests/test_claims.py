"""The claims table's numbers and judgements, the "up to 2.5%" statistics, the annealing algebra,
the rho sweep and the plausible scenarios (aigc_lib.claims)."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import claims, metrics, simulation
from aigc_lib.readings import Readings, changed_alone
from aigc_lib.scenario import load_scenario, premises
from claim_numbers import MODELS, numbers

SC = load_scenario()


def verdicts(frame, **kwargs):
    return {r["claim_id"]: r["direction_agrees"] for r in claims.judge(frame, **kwargs)}


def judged(frame, claim_id, **kwargs):
    return next(r for r in claims.judge(frame, **kwargs) if r["claim_id"] == claim_id)


def test_every_claim_is_judged_and_a_missing_part_is_left_out():
    assert set(verdicts(numbers())) == set(claims.CLAIMS)
    assert all(verdicts(numbers()).values())
    only = numbers()
    only = only[only["part"].isin(["assignment", "meta"])]
    assert set(verdicts(only)) == {
        "score_vs_direct",
        "score_vs_random",
        "random_small_large",
        "utility_vs_direct",
        "utility_vs_random",
        "score_cdf",
        "mix_vs_single",
    }  # quality_up_to needs the allocation benchmarks too
    assert not verdicts(numbers(u_alloc=-1.0))["utility_vs_equal"]


def test_the_per_model_claim_is_sdxl_positive_and_largest():
    assert verdicts(numbers())["score_vs_direct"]
    assert not verdicts(numbers(sdxl=0.4, turbo=0.5))["score_vs_direct"]  # not the largest
    assert not verdicts(numbers(sdxl=-0.2, turbo=-0.5))["score_vs_random"]  # largest, negative
    assert verdicts(numbers(turbo=-1.0))["score_vs_random"]  # a loss on the small model is conceded


def test_a_model_without_tasks_makes_the_per_model_claim_unmeasurable_never_agreeing():
    """direct=best sends every group to SDXL: the gains on the other models are NaN. The old judge
    kept only the finite gains and called SDXL 'largest'."""
    row = judged(numbers(turbo=math.nan, sd15=math.nan, sdxl=1.06), "score_vs_direct")
    assert not row["direction_agrees"]
    assert "nan (no tasks)" in row["ours"] and "not measurable" in row["ours"]
    assert judged(numbers(sd15=math.nan), "random_small_large")["direction_agrees"]  # not named
    assert not judged(numbers(turbo=math.nan), "random_small_large")["direction_agrees"]


def test_random_raises_the_small_model_and_lowers_the_large_one():
    assert verdicts(numbers(turbo=-0.6, sdxl=1.1))["random_small_large"]  # Random: +0.6, -1.1
    assert not verdicts(numbers(turbo=0.6, sdxl=1.1))["random_small_large"]
    assert not verdicts(numbers(turbo=-0.6, sdxl=-1.1))["random_small_large"]


def test_up_to_agrees_in_direction_only_with_a_positive_mean_gain():
    assert verdicts(numbers(mean_gain=0.1))["utility_vs_direct"]
    assert not verdicts(numbers(mean_gain=-0.1))["utility_vs_direct"]
    row = judged(numbers(), "utility_vs_random")
    assert "max +3.0%" in row["ours"] and "won 60%" in row["ours"] and "= 0.40" in row["ours"]
    assert "95% interval +0.50 to +1.50" in row["ours"]


def test_the_cdf_claim_needs_dominance_at_every_quantile_not_a_higher_mean():
    assert verdicts(numbers(above=19))["score_cdf"]
    row = judged(numbers(above=18), "score_cdf")  # the mean is higher, one quantile is not
    assert not row["direction_agrees"] and "above at 18 of 19 quantiles" in row["ours"]


def test_mixing_pays_only_when_probabilistic_beats_every_single_model():
    assert verdicts(numbers(singles=(29.0, 29.9, 28.0)))["mix_vs_single"]
    row = judged(numbers(singles=(29.0, 30.6, 28.0)), "mix_vs_single")
    assert not row["direction_agrees"] and "best single model sd15 30.60" in row["ours"]


def test_quality_up_to_is_the_largest_gain_over_the_benchmarks():
    row = judged(numbers(quality=(-0.5, 1.1, 0.0, -2.6)), "quality_up_to")
    assert row["direction_agrees"] and row["ours"].startswith("up to +1.1% (vs random)")
    assert not verdicts(numbers(quality=(-0.5, -1.1, -0.1, -2.6)))["quality_up_to"]


def test_time_consumption_is_judged_under_the_chosen_reading_and_on_each_model():
    frame = numbers(time=-30.0, per_model=15.0)
    assert verdicts(frame)["time_vs_equal"]
    assert not verdicts(frame, time_reading="per_model_pct")["time_vs_equal"]
    row = judged(frame, "time_each_model_vs_optimal_step")
    assert row["direction_agrees"] and "sdxl 5.0 vs 8.0 s" in row["ours"]
    slower = frame.copy()
    pick = (slower["quantity"] == "time_consumption") & (slower["policy"] == "annealing")
    slower.loc[pick & (slower["key"] == "sd15"), "value"] = 9.0
    assert not verdicts(slower)["time_each_model_vs_optimal_step"]


def test_a_reading_that_changes_direct_flags_only_the_claims_against_direct():
    rows = {r["claim_id"]: r["flag"] for r in claims.judge(numbers(reading="direct=best"))}
    assert {k for k, f in rows.items() if f} == set(claims.BASELINES)
    assert set(rows.values()) == {"", "baseline changed"}
    oracle = {r["flag"] for r in claims.judge(numbers(reading="information=prompt"))}
    assert oracle == {"oracle"}
    assert {r["flag"] for r in claims.judge(numbers(reading="information=prompt, rho=0.5"))} == {""}
    assert {r["flag"] for r in claims.judge(numbers())} == {""}


def test_judge_refuses_a_table_of_several_readings():
    two = pd.concat([numbers(), numbers(reading="latency=per_image")])
    with pytest.raises(ValueError, match="one reading"):
        claims.judge(two)


def test_value_is_one_filter_and_refuses_ambiguity():
    frame = numbers()
    assert claims.value(frame, "score_gain", "probabilistic", "direct", "sdxl") == 1.0
    assert claims.values(frame, "time_consumption", "equal").to_dict() == dict.fromkeys(MODELS, 6.0)
    with pytest.raises(ValueError, match="found 0"):
        claims.value(frame, "score_gain", "probabilistic", "direct", "nope")
    with pytest.raises(ValueError, match="found 2"):
        claims.value(pd.concat([frame, frame]), "mean_score", "direct")


def test_numbers_survive_the_csv_round_trip(tmp_path):
    frame = numbers(turbo=math.nan)
    path = claims.write_numbers(frame, tmp_path)
    back = claims.read_numbers(path)
    assert list(back.columns) == list(frame.columns)
    pd.testing.assert_series_equal(back["value"], frame["value"], check_exact=False, rtol=1e-9)
    assert (back["key"] == frame["key"]).all() and back["versus"].eq(frame["versus"]).all()
    assert claims.judge(back) == claims.judge(frame)


def test_null_max_probability_by_hand():
    # gains of +-3% with mean zero: the max of 10 reaches 2.5% unless all ten are -3: 1 - 0.5^10
    gains = np.array([3.0, -3.0] * 50)
    p = claims.null_max_probability(
        gains, k=10, level=2.5, n_draws=200_000, rng=np.random.default_rng(1)
    )
    assert p == pytest.approx(1 - 0.5**10, abs=0.002)
    # the mean is removed first: a constant gain of +5% is no spread at all
    assert claims.null_max_probability(np.full(30, 5.0), rng=np.random.default_rng(1)) == 0.0
    with pytest.raises(ValueError, match="gains_pct"):
        claims.null_max_probability([1.0])
    with pytest.raises(ValueError, match="k"):
        claims.null_max_probability([1.0, 2.0], k=0)


def test_slot_gain_stats_by_hand():
    stats = claims.slot_gain_stats([11.0, 9.0, 10.0, np.nan], [10.0, 10.0, 10.0, 10.0], n_draws=100)
    assert stats["mean"] == pytest.approx(0.0) and stats["max"] == pytest.approx(10.0)
    assert stats["share_won"] == pytest.approx(1 / 3)
    half = 1.96 * np.std([10.0, -10.0, 0.0], ddof=1) / np.sqrt(3)
    assert (stats["low"], stats["high"]) == pytest.approx((-half, half))
    with pytest.raises(ValueError, match="other"):
        claims.slot_gain_stats([1.0, 2.0], [1.0])


def test_the_papers_four_annealing_numbers_cannot_all_hold():
    bounds = claims.annealing_bounds()
    assert bounds["lower"] == pytest.approx(0.178 / (1.178 / 0.698 - 1))
    assert bounds["upper"] == pytest.approx(0.127 / (1.127 / 0.609 - 1))
    assert not bounds["consistent"]


def test_numbers_from_one_utility_are_consistent():
    lam, s = 0.2, {"sa": 31.5, "os": 32.0, "eq": 31.0}
    t = {"sa": 10.0, "os": 14.0, "eq": 13.0}
    u = {k: s[k] - lam * t[k] for k in s}
    bounds = claims.annealing_bounds(
        100 * (t["sa"] / t["os"] - 1),
        100 * (t["sa"] / t["eq"] - 1),
        100 * (u["sa"] / u["os"] - 1),
        100 * (u["sa"] / u["eq"] - 1),
    )
    assert bounds["consistent"]
    x = lam * t["sa"]
    assert bounds["lower"] <= x / s["os"] <= x / s["sa"] <= bounds["upper"]


@settings(deadline=None, max_examples=40)
@given(
    mu=st.lists(st.floats(26, 37), min_size=4, max_size=4),
    sigma=st.lists(st.floats(0.3, 5), min_size=4, max_size=4),
    offset=st.floats(-4, 3),
    beta=st.floats(0.2, 1.8),
    z=st.sampled_from([10, 26, 42]),
)
def test_a_category_mixture_never_beats_the_groups_best_model(mu, sigma, offset, beta, z):
    groups = tuple(dataclasses.replace(g, mu=m, sigma=s) for g, m, s in zip(SC.groups, mu, sigma))
    small = dataclasses.replace(SC.models[0], score_offset=offset, score_beta=beta)
    sc = SC.replace(groups=groups, models=(small, *SC.models[1:]))
    table = claims.mixture_vs_best(sc, [1, z, z])
    assert np.all(table["mixture"] <= table["best_score"] + 1e-9)
    assert np.all(table["mixture"] >= table[sc.model_names].min(axis=1) - 1e-9)


def test_plausible_scenarios_keep_the_premises_and_robustness_does_not_depend_on_workers():
    sc = claims.plausible_scenario(SC, np.random.default_rng(4))
    assert premises(sc)["holds"].all()
    assert sc.models[1].step_seconds == SC.models[1].step_seconds  # latency is kept
    frame = claims.robustness(SC, 2, 3, seed=1, n_jobs=1)
    assert len(frame) == 2
    expected = (
        100
        * (frame["utility_probabilistic"] - frame["utility_direct"])
        / frame["utility_direct"].abs()
    )
    np.testing.assert_allclose(frame["gain_pct"], expected)
    singles = frame[[f"utility_{m}" for m in MODELS]]
    best = singles.max(axis=1)
    assert (frame["best_single"] == singles.idxmax(axis=1).str.removeprefix("utility_")).all()
    np.testing.assert_allclose(
        frame["mix_vs_best_single_pct"], 100 * (frame["utility_probabilistic"] - best) / best.abs()
    )
    assert frame.equals(claims.robustness(SC, 2, 3, seed=1, n_jobs=2))
    with pytest.raises(ValueError, match="policies"):
        claims.robustness(SC, 1, 2, seed=0, policies=("nope",))


def test_a_single_model_run_in_robustness_is_simulate_with_that_model():
    frame = claims.robustness(SC, 1, 4, seed=3, policies=("sd15",), n_jobs=1)
    sc = claims.plausible_scenario(SC, np.random.default_rng([3, 6]))
    u = simulation.simulate(sc, 4, 3, assignment="sd15", allocation="exact").slots["utility"]
    assert frame["utility_sd15"].iloc[0] == pytest.approx(u.mean())


@pytest.fixture(scope="module")
def small():
    return claims.measure_many(
        {"paper": SC},
        changed_alone(),
        n_slots=6,
        seed=2,
        weights=(0.05, 1.0),
        lambda_slots=3,
        null_draws=200,
        n_jobs=1,
    )


def test_measure_on_a_small_run_is_consistent_with_itself(small):
    m = small[small["reading"] == "default"]
    for other in ("direct", "random", *MODELS):
        for model in MODELS:
            gain = claims.value(m, "score_gain", "probabilistic", other, model)
            by_hand = claims.value(m, "score_by_model", "probabilistic", key=model) - claims.value(
                m, "score_by_model", other, key=model
            )
            assert gain == pytest.approx(by_hand, nan_ok=True)
    u = {p: claims.value(m, "mean_utility", p) for p in ("annealing", "equal")}
    assert claims.value(m, "utility_change_pct", "annealing", "equal") == pytest.approx(
        100 * (u["annealing"] - u["equal"]) / abs(u["equal"])
    )
    t = {p: claims.values(m, "time_consumption", p) for p in ("annealing", "optimal_step")}
    per_model = (100 * (t["annealing"] - t["optimal_step"]) / t["optimal_step"]).mean()
    assert claims.value(m, "time_change_pct", "annealing", "optimal_step", "per_model_pct") == (
        pytest.approx(per_model)
    )
    assert sorted(claims.values(m, "mean_steps", "annealing").index) == ["", "0.05", "1"]
    assert set(m["scenario"]) == {"paper"}
    assert claims.value(m, "mean_utility", "probabilistic") == claims.value(
        m, "mean_utility", "annealing"
    )  # annealing's run is Probabilistic's


def test_measure_many_shares_runs_a_reading_cannot_change(small):
    """Direct under information=prompt is Direct under the default; measured alone it is the same."""
    alone = claims.measure(
        SC,
        Readings(information="prompt"),
        n_slots=6,
        seed=2,
        weights=(0.05, 1.0),
        lambda_slots=3,
        null_draws=200,
        n_jobs=2,
    )
    mine = small[small["reading"] == "information=prompt"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, alone)
    default = small[small["reading"] == "default"]
    for p in ("direct", "random", "sd15"):
        assert claims.value(mine, "mean_utility", p) == claims.value(default, "mean_utility", p)
    best = small[small["reading"] == "direct=best"]
    assert claims.value(best, "mean_utility", "direct") != claims.value(
        default, "mean_utility", "direct"
    )


def test_rho_sweep_and_its_break_even():
    sweep = claims.rho_sweep(SC, [0.0, 1.0], 4, seed=1, allocation="exact", n_jobs=1)
    direct = simulation.simulate(SC, 4, 1, assignment="direct", allocation="exact")
    oracle = simulation.simulate(
        SC, 4, 1, allocation="exact", readings=Readings(information="prompt")
    )
    gains = metrics.slot_gain_pct(oracle.slots["utility"], direct.slots["utility"])
    row = sweep.set_index("rho").loc[1.0]
    assert row["gain_pct"] == pytest.approx(gains.mean())
    assert row["utility_direct"] == pytest.approx(direct.slots["utility"].mean())
    by_hand = pd.DataFrame({"rho": [0.0, 0.5, 1.0], "gain_pct": [-1.0, -0.5, 1.5]})
    assert claims.break_even_rho(by_hand) == pytest.approx(0.5 + 0.5 * 0.5 / 2.0)
    assert claims.break_even_rho(by_hand.assign(gain_pct=[0.1, 0.2, 0.3])) == 0.0
    assert math.isnan(claims.break_even_rho(by_hand.assign(gain_pct=[-3.0, -2.0, -1.0])))
    with pytest.raises(ValueError, match="rho"):
        claims.rho_sweep(SC, [1.5], 2, seed=0)
