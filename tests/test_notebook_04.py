"""Notebook 04 (step selection and resource allocation) run with small parameters: its metrics and figures."""

import math

import pytest

from aigc_lib import claims

METHODS = ("annealing", "equal", "optimal_step", "exact")
MODELS = ("sdxl-turbo", "sd15", "sdxl")
FIGURES = (
    "annealing_trace",
    "time_consumption_by_model",
    "time_difference_by_model",
    "score_by_model",
    "utility_by_method",
    "headline_by_scenario",
    "lambda_sweep",
)


@pytest.fixture(scope="module")
def run(notebook_results):
    return notebook_results("04")


def test_metrics_and_the_numbers_table_the_paper_table_reads(run):
    metrics, folder = run
    assert metrics["n_slots"] == 10 and metrics["scenario"] == "paper"
    for key in ("time_consumption", "mean_score_by_model"):
        assert set(metrics[key]) == set(METHODS)
        for method in METHODS:
            assert set(metrics[key][method]) <= set(MODELS)
            assert all(math.isfinite(v) for v in metrics[key][method].values())
    for key in ("mean_time_consumption", "mean_score", "mean_utility", "mean_steps"):
        assert set(metrics[key]) == set(METHODS)
    assert (
        set(metrics["time_change_pct"])
        == set(metrics["utility_gain_pct"])
        == {"optimal_step", "equal"}
    )
    numbers = claims.read_numbers(folder / "claims.csv")
    judged = {r["claim_id"]: r["verdict"] for r in claims.judge(numbers)}
    assert set(judged) == {
        "time_vs_optimal_step",
        "time_each_model_vs_optimal_step",
        "time_vs_equal",
        "utility_vs_optimal_step",
        "utility_vs_equal",
        "alloc_score",
        "quality_up_to",  # its two allocation benchmarks only: the assignment ones are missing
    }
    assert set(judged.values()) <= set(claims.VERDICTS)
    assert judged["quality_up_to"] != "agrees"
    assert metrics["workload"] == {
        "n_slots": metrics["n_slots"],
        "seed": 0,
        "prompts": "group shares, no PartiPrompts",
    }
    for other in ("optimal_step", "equal"):  # the library's numbers are the notebook's by hand
        assert claims.value(numbers, "utility_change_pct", "annealing", other) == pytest.approx(
            metrics["utility_gain_pct"][other]
        )


def test_one_slot_by_hand_agrees_with_the_library(run):
    one = run[0]["one_slot"]
    assert one["utility_by_hand"] == pytest.approx(one["utility_library"], rel=1e-12)
    assert one["exact"] >= one["library_annealing"] - 1e-9
    assert one["exact"] >= one["readable_loop"] - 1e-9
    assert one["exact"] - one["readable_loop"] < 1e-3 * abs(one["exact"])  # the readable loop
    assert one["exact"] - one["library_annealing"] < 1e-3 * abs(one["exact"])
    assert one["combinations"] == 81  # 9 x 9 step counts of SD1.5 and SDXL, SDXL-Turbo fixed
    assert one["equal_steps_by_hand"][0] == 1
    assert sum(one["optimal_step_compute_by_hand"]) == pytest.approx(31.0)


def test_exact_is_best_and_annealing_beats_both_baselines_in_utility(run):
    band = run[0]["utility_difference"]
    assert band["equal"]["low"] <= band["equal"]["mean"] <= band["equal"]["high"]
    u = run[0]["mean_utility"]
    assert u["exact"] >= u["annealing"] - 1e-6
    assert u["annealing"] > u["equal"]
    assert u["annealing"] > u["optimal_step"]
    assert all(v > 0 for v in run[0]["utility_gain_pct"].values())


def test_annealing_takes_less_time_than_optimal_step_on_every_model(run):
    t = run[0]["time_consumption"]
    for model, seconds in t["annealing"].items():
        assert 0 < seconds < t["optimal_step"][model]
    assert run[0]["time_change_pct"]["optimal_step"]["makespan"] < 0


def test_equal_allocation_is_faster_on_the_models_the_notebook_names(run):
    t = run[0]["time_consumption"]
    named = run[0]["equal_faster_on"]
    assert named == [m for m in MODELS if m in t["equal"] and t["equal"][m] < t["annealing"][m]]


def test_percentages_follow_from_the_means_under_both_time_readings(run):
    m = run[0]
    t, u = m["time_consumption"], m["mean_utility"]
    for other in ("optimal_step", "equal"):
        ours, theirs = t["annealing"], t[other]
        mean = lambda d: sum(d.values()) / len(d)  # noqa: E731
        assert m["time_change_pct"][other]["makespan"] == pytest.approx(
            100 * (mean(ours) - mean(theirs)) / mean(theirs)
        )
        per_model = [100 * (ours[k] - theirs[k]) / theirs[k] for k in ours]
        assert m["time_change_pct"][other]["per_model_pct"] == pytest.approx(
            sum(per_model) / len(per_model)
        )
        assert m["utility_gain_pct"][other] == pytest.approx(
            100 * (u["annealing"] - u[other]) / abs(u[other])
        )


def test_optimal_step_scores_highest_because_it_runs_the_most_steps(run):
    score, steps = run[0]["mean_score"], run[0]["mean_steps"]
    assert score["optimal_step"] >= max(score["annealing"], score["equal"])
    assert steps["optimal_step"] == 42 and steps["annealing"] <= steps["optimal_step"]
    assert score["annealing"] == pytest.approx(score["exact"], abs=1e-3)


def test_both_scenarios_are_compared(run):
    other = run[0]["other_scenario"]
    assert set(other) == {"paper", "published"}
    for name, v in other.items():
        assert v["time_change_pct"]["makespan"] < 0, name


def test_lambda_sweep_trades_quality_for_time(run):
    rows = sorted(run[0]["lambda_sweep"], key=lambda r: r["weight"])
    assert rows[0]["mean_steps"] >= rows[-1]["mean_steps"]
    assert rows[0]["mean_time_consumption"] >= rows[-1]["mean_time_consumption"]


def test_figures_exist(run):
    _, folder = run
    for name in FIGURES:
        assert (folder / "figures" / f"{name}.png").stat().st_size > 0
    assert not (folder / "figures" / "explore_time_consumption.png").exists()  # sliders never write
