"""Notebook 03 (probabilistic assignment), executed with the small parameters; its metrics are checked."""

import pytest

from aigc_lib import claims, reproduce, scenario

POLICIES = {"probabilistic", "direct", "random"}
MODELS = {"sdxl-turbo", "sd15", "sdxl"}
FIGURES = (
    "fig4_score_by_level",
    "fig4_time_per_image",
    "fig5a_score_by_model",
    "fig5b_utility_per_slot",
    "fig5b_gain_histogram",
    "fig5c_score_cdf",
    "utility_by_scenario",
)


@pytest.fixture(scope="module")
def nb03(notebook_results):
    return notebook_results("03")


def test_metric_keys_read_by_the_paper_vs_ours_table(nb03):
    metrics, _ = nb03
    small = reproduce.load_parameters(reproduce.ROOT / "tests" / "notebook_params.yaml")
    assert metrics["n_slots"] == small["03_probabilistic_assignment"]["n_slots"]
    assert metrics["scenario"] == "paper" and metrics["tasks_per_slot"] >= 1
    for key in ("mean_score_by_model", "mean_score", "mean_utility"):
        assert set(metrics[key]) == POLICIES, key
    assert all(set(v) == MODELS for v in metrics["mean_score_by_model"].values())
    assert (
        set(metrics["utility_gain_pct"])
        == set(metrics["score_gain_by_model"])
        == {"direct", "random"}
    )
    assert all(
        set(v) == {"mean", "max", "share_won", "null_max"}
        for v in metrics["utility_gain_pct"].values()
    )
    assert {r["claim_id"] for r in claims.judge({"assignment": metrics})} == {
        "score_vs_direct",
        "score_vs_random",
        "utility_vs_direct",
        "utility_vs_random",
        "score_cdf",
    }


def test_the_scenario_keeps_the_papers_premises(nb03):
    metrics, _ = nb03
    assert metrics["premises_hold"]
    margins = metrics["premise_margins"]
    assert margins["P1 score"] > 0 and margins["P1 time"] > 0 and margins["P2 high gains"] >= 1.0
    low, high = metrics["break_even"]["sdxl-turbo vs sd15"]
    assert low <= high  # a range over the step set


def test_the_hand_drawn_slot_is_the_librarys_draw(nb03):
    metrics, _ = nb03
    slot = metrics["hand_drawn_slot"]
    assert slot["agrees_with_library"] and len(slot["models"]) == metrics["tasks_per_slot"]
    assert set(slot["models"]) <= {0, 1, 2}


def test_every_policy_served_the_same_tasks(nb03):
    metrics, _ = nb03
    total = metrics["n_slots"] * metrics["tasks_per_slot"]
    for policy, counts in metrics["tasks_by_model"].items():
        assert sum(counts.values()) == total, policy
    # Direct sends each group to one model: Complex (below theta_1) small, Imagination (above theta_2) large
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
        assert gain["mean"] <= gain["max"] and 0.0 <= gain["share_won"] <= 1.0
        assert 0.0 <= gain["null_max"] <= 1.0
        diff = metrics["mean_utility"]["probabilistic"] - metrics["mean_utility"][other]
        if abs(diff) > 0.05:
            assert (gain["mean"] > 0) == (diff > 0)


def test_a_category_mixture_never_beats_the_best_model(nb03):
    metrics, _ = nb03
    assert all(v >= -1e-9 for v in metrics["mixture_behind_best"].values())


def test_fig4_levels_follow_the_paper_observation(nb03):
    metrics, _ = nb03
    levels, gain = metrics["level_mean_score"], metrics["level_gain"]
    assert sum(metrics["level_share"].values()) == pytest.approx(1.0)
    assert levels["low"]["sd15"] < 29.5 <= levels["mid"]["sd15"] < 33.8 <= levels["high"]["sd15"]
    assert (
        gain["low"]["sdxl-turbo"] > gain["high"]["sdxl-turbo"]
    )  # low prompts lose least on the small model
    assert gain["low"]["sdxl-turbo"] >= -scenario.P2_MAX_LOSS - 0.3  # P2, with sampling noise
    assert gain["high"]["sdxl"] > gain["low"]["sdxl"]  # high prompts gain most on the large model
    seconds = metrics["seconds_per_image"]
    assert seconds["sdxl-turbo"] < seconds["sd15"] < seconds["sdxl"]


def test_both_scenarios_and_the_prompt_reading_are_recorded(nb03):
    metrics, _ = nb03
    other = metrics["other_scenario"]
    assert other["name"] == "published" and set(other["mean_utility"]) == POLICIES
    # published: 1-step SDXL-Turbo scores like SDXL, so its tasks score higher than under "paper"
    assert (
        other["mean_score_by_model"]["direct"]["sdxl-turbo"]
        > metrics["mean_score_by_model"]["direct"]["sdxl-turbo"]
    )
    assert metrics["prompt_reading"]["direct_mean_utility"] == pytest.approx(
        metrics["mean_utility"]["direct"]
    )


def test_figures_exist(nb03):
    _, folder = nb03
    for name in FIGURES:
        assert (folder / "figures" / f"{name}.png").stat().st_size > 0


def test_the_claims_table_judges_the_gain_on_sdxl(nb03):
    from aigc_lib import paper_vs_ours

    _, folder = nb03
    row = (
        paper_vs_ours.table(folder.parent)
        .set_index("claim")
        .loc["Probabilistic vs Direct: mean CLIPScore per model"]
    )
    assert "; sdxl largest:" in row["ours"]
