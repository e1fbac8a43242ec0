"""Notebook 03 (probabilistic assignment), executed with the small parameters."""

import pytest

from aigc_lib import reproduce

POLICIES = {"probabilistic", "direct", "random"}
MODELS = {"sdxl-turbo", "sd15", "sdxl"}
FIGURES = ("fig4_score_by_level", "fig4_time_per_image", "fig5a_score_by_model", "fig5b_utility_per_slot",
           "fig5b_gain_histogram", "fig5c_score_cdf")


@pytest.fixture(scope="module")
def nb03(notebook_results):
    return notebook_results("03")


def test_metric_keys_read_by_the_paper_vs_ours_table(nb03):
    metrics, _ = nb03
    small = reproduce.load_parameters(reproduce.ROOT / "tests" / "notebook_params.yaml")
    assert metrics["n_slots"] == small["03_probabilistic_assignment"]["n_slots"]
    assert metrics["tasks_per_slot"] >= 1
    for key in ("mean_score_by_model", "mean_score", "mean_utility"):
        assert set(metrics[key]) == POLICIES, key
    assert all(set(v) == MODELS for v in metrics["mean_score_by_model"].values())
    assert set(metrics["utility_gain_pct"]) == set(metrics["score_gain_by_model"]) == {"direct", "random"}
    assert all(set(v) == {"mean", "max"} for v in metrics["utility_gain_pct"].values())


def test_every_policy_served_the_same_tasks(nb03):
    metrics, _ = nb03
    total = metrics["n_slots"] * metrics["tasks_per_slot"]
    for policy, counts in metrics["tasks_by_model"].items():
        assert sum(counts.values()) == total, policy
    # Direct sends each group to one model: Complex (mu 29.0) to small, Imagination (34.2) to large
    assert all(n > 0 for n in metrics["tasks_by_model"]["direct"].values())


def test_mean_score_is_the_task_weighted_mean_of_the_per_model_means(nb03):
    metrics, _ = nb03
    for policy in POLICIES:
        counts, means = metrics["tasks_by_model"][policy], metrics["mean_score_by_model"][policy]
        weighted = sum(counts[m] * means[m] for m in MODELS if counts[m]) / sum(counts.values())
        assert metrics["mean_score"][policy] == pytest.approx(weighted, abs=1e-9)


def test_gains_are_consistent_with_the_recorded_means(nb03):
    metrics, _ = nb03
    prob = metrics["mean_score_by_model"]["probabilistic"]
    for other in ("direct", "random"):
        for m in MODELS:
            expected = prob[m] - metrics["mean_score_by_model"][other][m]
            assert metrics["score_gain_by_model"][other][m] == pytest.approx(expected, abs=1e-9)
        gain = metrics["utility_gain_pct"][other]
        assert gain["mean"] <= gain["max"]
        assert 0.0 <= metrics["utility_win_fraction"][other] <= 1.0
        # the mean per-slot gain has the sign of the mean utility difference when it is not tiny
        diff = metrics["mean_utility"]["probabilistic"] - metrics["mean_utility"][other]
        if abs(diff) > 0.05:
            assert (gain["mean"] > 0) == (diff > 0)


def test_utility_is_score_minus_a_latency_cost(nb03):
    metrics, _ = nb03
    for policy in POLICIES:
        assert metrics["mean_utility"][policy] < metrics["mean_score"][policy]


def test_fig4_levels_follow_the_paper_observation(nb03):
    metrics, _ = nb03
    levels = metrics["level_mean_score"]
    assert sum(metrics["level_share"].values()) == pytest.approx(1.0)
    assert levels["low"]["sd15"] < 29.5 <= levels["mid"]["sd15"] < 33.8 <= levels["high"]["sd15"]
    small_gap = {lv: levels[lv]["sdxl-turbo"] - levels[lv]["sd15"] for lv in levels}
    large_gap = {lv: levels[lv]["sdxl"] - levels[lv]["sd15"] for lv in levels}
    assert small_gap["low"] > small_gap["high"]  # low prompts lose least on the small model
    assert large_gap["high"] > large_gap["low"]  # high prompts gain most on the large model
    seconds = metrics["seconds_per_image"]
    assert seconds["sdxl-turbo"] < seconds["sd15"] < seconds["sdxl"]


def test_figures_exist(nb03):
    _, folder = nb03
    for name in FIGURES:
        assert (folder / "figures" / f"{name}.png").stat().st_size > 0
