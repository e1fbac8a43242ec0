"""Notebook 05 (beyond the paper) run with small parameters: its metrics and figures."""

import math

import pytest

FIGURES = ("solver_gap_and_time", "sensitivity", "predictor_rho")
SUMMARY = ("mean_utility", "mean_score", "mean_latency", "mean_steps", "mean_time_consumption")


@pytest.fixture(scope="module")
def run(notebook_results):
    return notebook_results("05")


def test_metrics_record_the_run(run):
    metrics, _ = run
    assert (metrics["n_problems"], metrics["n_slots"]) == (20, 10)
    assert set(metrics["time_ms"]) == {"annealing", "exact", "dual_annealing"}
    assert all(v > 0 for v in metrics["time_ms"].values())


@pytest.mark.parametrize("key", ["annealer_gap_pct", "dual_annealing_gap_pct"])
def test_gaps_are_ordered_quantiles_and_never_negative(run, key):
    gap = run[0][key]
    assert set(gap) == {"median", "p99", "max"}
    assert -1e-9 <= gap["median"] <= gap["p99"] <= gap["max"]


def test_the_annealer_is_within_a_tenth_of_a_percent_of_the_optimum(run):
    metrics = run[0]
    assert metrics["annealer_gap_pct"]["max"] < 0.1
    assert metrics["slot_gap_pct"]["annealing"]["max"] < 0.1
    assert all(math.isfinite(v) for v in metrics["slot_gap_pct"]["dual_annealing"].values())


def test_an_oracle_predictor_beats_category_labels(run):
    sweep = run[0]["rho_sweep"]
    assert [row["rho"] for row in sweep] == [0.0, 1.0]
    assert sweep[1]["mean_utility"] > sweep[0]["mean_utility"]
    assert sweep[1]["mean_score"] > sweep[0]["mean_score"]
    assert math.isfinite(run[0]["direct_mean_utility"])


def test_sensitivity_tables_cover_the_swept_values(run):
    tables = run[0]["sensitivity"]
    expected = {
        "tasks_per_slot": [5, 20],
        "capacity_tflops": [17.0, 68.0],
        "threshold_shift": [0.0, 2.0],
        "n_models": [2, 3],
    }
    assert set(tables) == set(expected)
    for name, values in expected.items():
        assert [row["value"] for row in tables[name]] == values
        for row in tables[name]:
            assert all(math.isfinite(row[k]) for k in SUMMARY)


def test_latency_follows_load_and_capacity(run):
    tables = run[0]["sensitivity"]
    small, large = tables["tasks_per_slot"]
    assert large["mean_latency"] > small["mean_latency"]
    slow, fast = tables["capacity_tflops"]
    assert fast["mean_latency"] < slow["mean_latency"]
    assert fast["mean_utility"] > slow["mean_utility"]


def test_every_figure_is_written(run):
    _, folder = run
    for name in FIGURES:
        path = folder / "figures" / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 1000, name
    assert not (folder / "figures" / "explore_models.png").exists()  # sliders never write results
