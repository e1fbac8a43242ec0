"""Notebook 01 (prompts and CLIPScore distributions), executed with the small parameters."""

import json

import numpy as np
import pytest
from scipy.stats import norm

from aigc_lib import fit, prompts, reproduce, scenario

STEM = "01_prompts_and_clipscore_distributions"
FIGURES = (
    "challenge_counts",
    "words_per_prompt",
    "illustrative_challenge_means",
    "priors_and_thresholds",
    "assignment_probabilities",
)


@pytest.fixture(scope="module")
def nb01(notebook_results):
    return notebook_results("01")


def test_prompt_and_group_counts(nb01):
    metrics, _ = nb01
    assert metrics["n_prompts"] == 1632
    assert metrics["n_categories"] == 12 and metrics["n_challenges"] == 11
    assert metrics["group_counts"] == {
        "Basic": 362,
        "Imagination": 426,
        "Detail": 579,
        "Complex": 265,
    }
    assert sum(metrics["challenge_counts"].values()) == 1632
    assert metrics["challenge_counts"]["Fine-grained Detail"] == 312
    assert metrics["words_per_prompt"]["Basic"] < metrics["words_per_prompt"]["Complex"]


def test_probabilities_are_eq_9_10_of_the_recorded_priors(nb01):
    metrics, _ = nb01
    theta1, theta2 = metrics["thresholds"]
    assert theta1 < theta2
    for group, p in metrics["probabilities"].items():
        prior = metrics["priors"][group]
        low = norm.cdf((theta1 - prior["mu"]) / prior["sigma"])
        high = norm.cdf((theta2 - prior["mu"]) / prior["sigma"])
        # metrics.json holds 12 significant digits (results.write_metrics): 1e-11 for a sum of 3
        np.testing.assert_allclose(p, [low, high - low, 1 - high], atol=1e-11)
        assert sum(p) == pytest.approx(1.0, abs=1e-11)
        assert metrics["probability_row_sums"][group] == pytest.approx(1.0, abs=1e-11)


def test_higher_prior_mean_sends_more_to_the_large_model(nb01):
    metrics, _ = nb01
    by_mu = sorted(metrics["priors"], key=lambda g: metrics["priors"][g]["mu"])
    large = [metrics["probabilities"][g][2] for g in by_mu]
    small = [metrics["probabilities"][g][0] for g in by_mu]
    assert large == sorted(large) and small == sorted(small, reverse=True)
    assert sum(metrics["model_shares"].values()) == pytest.approx(1.0)


def test_illustrative_grouping_uses_four_contiguous_groups(nb01):
    metrics, _ = nb01
    grouping = metrics["illustrative_grouping"]
    assert len(grouping) == 11 and set(grouping.values()) == {0, 1, 2, 3}
    assert 0.0 <= metrics["illustrative_grouping_agreement"] <= 1.0
    assert "fitted_priors" not in metrics  # the sweep branch is skipped by default


def test_figures_exist(nb01):
    _, folder = nb01
    for name in FIGURES:
        assert (folder / "figures" / f"{name}.png").stat().st_size > 0


def test_sweep_branch_recovers_the_priors_of_a_synthetic_sweep(tmp_path):
    """With sweep_path set, the notebook fits the priors; on a synthetic sweep it recovers the truth."""
    sc = scenario.load_scenario()
    truth = {g.name: (g.mu, g.sigma) for g in sc.groups}
    medium = {
        "steps": [50],
        "slope": 1.0,
        "offset": 0.0,
        "beta": 1.0,
        "zref": 50.0,
        "per_step_s": 0.05,
        "overhead_s": 0.5,
    }
    rows = fit.synthetic_sweep(
        np.random.default_rng(0), truth, {"sd15": medium}, prompts_per_group=60
    )
    parti = prompts.load_partiprompts()
    real_ids = {g: iter(parti.loc[parti["group"] == g, "prompt_id"]) for g in truth}
    relabel = {
        pid: next(real_ids[g])
        for pid, g in rows[["prompt_id", "group"]].drop_duplicates().itertuples(index=False)
    }
    rows["prompt_id"] = rows["prompt_id"].map(relabel)
    sweep = tmp_path / "sweep.csv"
    rows.to_csv(sweep, index=False)
    (notebook,) = reproduce.find_notebooks(["01"])
    reproduce.run_notebook(
        notebook, tmp_path, {"interactive": False, "sweep_path": str(sweep)}, progress=False
    )
    metrics = json.loads((tmp_path / STEM / "metrics.json").read_text())
    for group, (mu, sigma) in truth.items():
        assert metrics["fitted_priors"][group]["mu"] == pytest.approx(
            mu, abs=3 * sigma / np.sqrt(60)
        )
        assert metrics["fitted_priors"][group]["sigma"] == pytest.approx(sigma, rel=0.4)
        assert sum(metrics["fitted_probabilities"][group]) == pytest.approx(1.0)
