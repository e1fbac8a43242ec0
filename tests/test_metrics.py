"""Paired comparisons of runs on one workload (aigc_lib.metrics): per-slot differences, their 95%
interval, and the task-by-task split of a utility difference."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import metrics, simulation
from code_scenario import make_scenario

SC = make_scenario()


@pytest.fixture(scope="module")
def runs():
    return {
        p: simulation.simulate(SC, 12, 3, assignment=p, allocation="exact")
        for p in ("probabilistic", "direct", "sd15")
    }


def test_paired_differences_are_slot_by_slot(runs):
    diff = metrics.paired_differences(runs, "probabilistic")
    assert set(diff["versus"]) == {"direct", "sd15"}
    for other in ("direct", "sd15"):
        mine = diff[diff["versus"] == other].set_index("slot")["difference"]
        by_hand = runs["probabilistic"].slots["utility"] - runs[other].slots["utility"]
        np.testing.assert_allclose(mine.to_numpy(), by_hand.to_numpy())
    pct = metrics.paired_differences(runs, "probabilistic", percent=True)
    by_hand = metrics.slot_gain_pct(
        runs["probabilistic"].slots["utility"], runs["direct"].slots["utility"]
    )
    np.testing.assert_allclose(pct[pct["versus"] == "direct"]["difference"], by_hand)


def test_paired_differences_per_model_skip_slots_without_tasks(runs):
    diff = metrics.paired_differences(runs, "probabilistic", column="score", by_model=True)
    a = metrics.slot_model_means(runs["probabilistic"], "score")
    b = metrics.slot_model_means(runs["sd15"], "score")
    only = diff[diff["versus"] == "sd15"]
    assert set(only["model"]) == {"sd15"}  # the single-model run has no other model to compare
    expected = (a["sd15"] - b["sd15"]).dropna()
    np.testing.assert_allclose(only["difference"], expected.to_numpy())
    span = metrics.slot_model_means(runs["direct"], "makespan")
    tc = metrics.time_consumption(runs["direct"]).pivot(
        index="slot", columns="model", values="makespan"
    )
    np.testing.assert_allclose(span.dropna(how="all").fillna(-1), tc.fillna(-1))
    with pytest.raises(ValueError, match="column"):
        metrics.slot_model_means(runs["direct"], "model")
    with pytest.raises(ValueError, match="runs"):
        metrics.paired_differences({"direct": runs["direct"]}, "direct")


def test_interval_by_hand():
    values = np.array([1.0, 2.0, 4.0, -1.0])
    row = metrics.interval(values).iloc[0]
    half = 1.96 * values.std(ddof=1) / 2
    assert row["mean"] == pytest.approx(1.5)
    assert (row["low"], row["high"]) == pytest.approx((1.5 - half, 1.5 + half))
    assert row["n"] == 4 and row["share_positive"] == pytest.approx(0.75)
    frame = pd.DataFrame({"versus": ["a", "a", "b"], "difference": [1.0, 3.0, 5.0]})
    table = metrics.interval(frame)
    assert table.loc["a", "mean"] == 2.0 and table.loc["b", "n"] == 1
    assert math.isnan(table.loc["b", "low"])  # one slot has no spread
    with pytest.raises(ValueError, match="differences"):
        metrics.interval(np.zeros((2, 2)))


@settings(deadline=None, max_examples=50)
@given(st.lists(st.floats(-50, 50), min_size=2, max_size=60))
def test_the_interval_holds_its_mean_and_narrows_with_more_slots(values):
    row = metrics.interval(np.array(values)).iloc[0]
    assert row["low"] <= row["mean"] <= row["high"]
    doubled = metrics.interval(np.array(values * 4)).iloc[0]
    assert doubled["high"] - doubled["low"] <= row["high"] - row["low"] + 1e-9


def test_paired_tasks_split_the_utility_difference_exactly(runs):
    table = metrics.paired_tasks(runs["probabilistic"], runs["direct"])
    tasks = runs["probabilistic"].tasks
    gap = tasks["utility"].mean() - runs["direct"].tasks["utility"].mean()
    assert table["contribution"].sum() == pytest.approx(gap)
    slot_gap = (
        runs["probabilistic"].slots["utility"].mean() - runs["direct"].slots["utility"].mean()
    )
    assert table["contribution"].sum() == pytest.approx(slot_gap)  # equal tasks per slot
    assert table["share"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(table["latency_term"], table["utility"] - table["score"])
    direct = simulation.simulate(SC, 12, 3, assignment="direct", allocation="exact")
    same = metrics.paired_tasks(direct, runs["direct"])
    assert (same["moved"] == 0).all() and np.allclose(same["utility"], 0)
    with pytest.raises(ValueError, match="same workload"):
        metrics.paired_tasks(runs["direct"], simulation.simulate(SC, 12, 4, allocation="exact"))
