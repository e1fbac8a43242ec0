"""Notebook 04 (step selection and resource allocation) run with small parameters: its metrics and figures."""

import math

import pytest

METHODS = ("annealing", "equal", "optimal_step", "exact")
MODELS = ("sdxl-turbo", "sd15", "sdxl")
FIGURES = ("annealing_trace", "time_consumption_by_model", "score_by_model", "utility_by_method",
           "lambda_sweep", "explore_time_consumption")


@pytest.fixture(scope="module")
def run(notebook_results):
    return notebook_results("04")


def test_metrics_have_the_keys_the_paper_table_reads(run):
    metrics, _ = run
    assert metrics["n_slots"] == 10
    for key in ("time_consumption", "mean_score_by_model"):
        assert set(metrics[key]) == set(METHODS)
        for method in METHODS:
            assert set(metrics[key][method]) <= set(MODELS)
            assert all(math.isfinite(v) for v in metrics[key][method].values())
    for key in ("mean_time_consumption", "mean_score", "utility"):
        assert set(metrics[key]) == set(METHODS)
    assert set(metrics["time_change_pct"]) == set(metrics["utility_gain_pct"]) == {"optimal_step", "equal"}


def test_exact_is_best_and_annealing_beats_both_baselines_in_utility(run):
    u = run[0]["utility"]
    assert u["exact"] >= u["annealing"] - 1e-6
    assert u["annealing"] > u["equal"]
    assert u["annealing"] > u["optimal_step"]
    assert all(v > 0 for v in run[0]["utility_gain_pct"].values())


def test_annealing_takes_less_time_than_optimal_step_on_every_model(run):
    t = run[0]["time_consumption"]
    for model, seconds in t["annealing"].items():
        assert 0 < seconds < t["optimal_step"][model]
    assert run[0]["time_change_pct"]["optimal_step"] < 0


def test_percentages_follow_from_the_means(run):
    m = run[0]
    t, u = m["mean_time_consumption"], m["utility"]
    for other in ("optimal_step", "equal"):
        assert m["time_change_pct"][other] == pytest.approx(100 * (t["annealing"] - t[other]) / t[other])
        assert m["utility_gain_pct"][other] == pytest.approx(100 * (u["annealing"] - u[other]) / abs(u[other]))
    for method in METHODS:
        per_model = m["time_consumption"][method].values()
        assert t[method] == pytest.approx(sum(per_model) / len(per_model))


def test_optimal_step_scores_highest_because_it_runs_the_most_steps(run):
    score = run[0]["mean_score"]
    assert score["optimal_step"] >= max(score["annealing"], score["equal"])
    assert score["annealing"] == pytest.approx(score["exact"], abs=1e-3)


def test_lambda_sweep_trades_score_for_time(run):
    sweep = run[0]["lambda_sweep"]
    assert [row["weight"] for row in sweep] == [0.01, 0.2, 1.0]
    for small, large in zip(sweep, sweep[1:]):
        assert large["mean_steps"] <= small["mean_steps"] + 1e-9
        assert large["mean_score"] <= small["mean_score"] + 1e-3
        assert large["mean_time_consumption"] <= small["mean_time_consumption"] * (1 + 1e-3)
    assert sweep[0]["mean_steps"] > sweep[-1]["mean_steps"]


def test_every_figure_is_written(run):
    _, folder = run
    for name in FIGURES:
        path = folder / "figures" / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 1000, name
