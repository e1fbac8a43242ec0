"""The paper-vs-ours and interpretations tables built from notebook metrics (aigc_lib.paper_vs_ours)."""

import json

import pandas as pd

from aigc_lib import paper_vs_ours as pvo
from aigc_lib.readings import changed_alone

MODELS = ["sdxl-turbo", "sd15", "sdxl"]


def metrics03(sdxl_gain, mean_gain=-1.0):
    stats = {"mean": mean_gain, "max": 2.0, "share_won": 0.4, "null_max": 0.5}
    return {
        "score_gain_by_model": {
            "direct": dict(zip(MODELS, [0.2, 0.5, sdxl_gain])),
            "random": dict(zip(MODELS, [0.1, 0.3, 2.0])),
        },
        "utility_gain_pct": {"direct": stats, "random": dict(stats, mean=3.0, max=9.0)},
        "mean_score": {"probabilistic": 32.0, "direct": 31.5, "random": 31.0},
    }


METRICS04 = {
    "time_change_pct": {
        "optimal_step": {"makespan": -25.0, "per_model_pct": -20.0},
        "equal": {"makespan": -40.0, "per_model_pct": 30.0},
    },
    "utility_gain_pct": {"optimal_step": 8.0, "equal": -2.0},
    "mean_score": {"annealing": 31.8, "optimal_step": 32.0, "equal": 31.0},
    "mean_score_by_model": {
        m: dict(zip(MODELS, [v] * 3))
        for m, v in (("annealing", 31.8), ("optimal_step", 32.0), ("equal", 31.0))
    },
    "mean_steps": {"annealing": 12.0, "optimal_step": 42.0, "equal": 11.0},
    "lambda_sweep": [
        {"weight": 0.5, "mean_steps": 12, "mean_score": 31, "mean_time_consumption": 10},
        {"weight": 0.05, "mean_steps": 40, "mean_score": 33, "mean_time_consumption": 30},
    ],
}


def put(root, notebook, metrics):
    (root / notebook).mkdir(parents=True, exist_ok=True)
    (root / notebook / "metrics.json").write_text(json.dumps(metrics))


def test_table_reads_metrics_and_judges_each_claim_as_the_paper_states_it(tmp_path):
    put(tmp_path, pvo.NB03, metrics03(2.4))
    put(tmp_path, pvo.NB04, METRICS04)
    frame = pvo.table(tmp_path)
    assert len(frame) == 11
    by_claim = frame.set_index("claim")
    direct = by_claim.loc["Probabilistic vs Direct: mean CLIPScore per model"]
    assert direct["direction_agrees"] and direct["why"] == ""  # SDXL +2.4, the largest
    utility = by_claim.loc["Probabilistic vs Direct: utility per slot"]
    assert utility["ours"].startswith("mean -1.00%, max +2.0%, won 40% of slots")
    assert (
        not utility["direction_agrees"]
        and "independent of each prompt's own score" in utility["why"]
    )
    assert (
        by_claim.loc["Annealing vs Equal-allocation: time consumption", "ours"]
        == "-40.0% (per_model_pct +30.0%)"
    )
    assert not by_claim.loc["Annealing vs Equal-allocation: utility", "direction_agrees"]
    assert by_claim.loc[
        "lambda sweep: small lambda -> more steps and score; large -> less time", "direction_agrees"
    ]
    assert (frame.loc[~frame["direction_agrees"], "why"].str.len() > 0).all()
    assert (
        by_claim.loc["Annealing vs Optimal-step: time consumption", "why"] == ""
    )  # -25% vs -30.2%
    assert by_claim.loc["Annealing vs Optimal-step: utility", "why"].startswith(
        "same direction, different size"
    )
    assert (
        "12.0 steps" in by_claim.loc["Annealing vs Optimal-step: utility", "why"]
    )  # from the metrics


def test_sdxl_gain_that_is_not_the_largest_disagrees(tmp_path):
    put(tmp_path, pvo.NB03, metrics03(0.3))
    row = (
        pvo.table(tmp_path)
        .set_index("claim")
        .loc["Probabilistic vs Direct: mean CLIPScore per model"]
    )
    assert not row["direction_agrees"] and "sdxl largest: no" in row["ours"]


def test_why_quotes_the_prompt_reading_from_notebook_06(tmp_path):
    put(tmp_path, pvo.NB03, metrics03(-1.0))
    prompt = {"assignment": metrics03(1.9, mean_gain=0.8)}
    put(tmp_path, pvo.NB06, {"measured": {"paper": {"information=prompt": prompt}}})
    row = (
        pvo.table(tmp_path)
        .set_index("claim")
        .loc["Probabilistic vs Direct: mean CLIPScore per model"]
    )
    assert (
        "under the prompt reading (notebook 06) ours is: sdxl-turbo +0.20, sd15 +0.50, sdxl +1.90"
        in row["why"]
    )
    assert "(agrees)" in row["why"]


def test_interpretations_have_a_row_per_scenario_claim_and_reading(tmp_path):
    numbers = {"assignment": metrics03(2.4), "allocation": METRICS04}
    measured = {s: {label: numbers for label in changed_alone()} for s in ("paper", "published")}
    put(tmp_path, pvo.NB06, {"measured": measured})
    frame = pvo.interpretations(tmp_path)
    assert list(frame.columns) == pvo.INTERPRETATION_COLUMNS
    assert frame["reading"].nunique() == 7  # six simulated readings and the per-model time reading
    per_claim = frame.groupby(["scenario", "claim"]).size()
    assert per_claim.min() >= 6
    time = frame[(frame.reading == "time_consumption=per_model_pct")]
    assert set(time["claim"]) == {
        "Annealing vs Optimal-step: time consumption",
        "Annealing vs Equal-allocation: time consumption",
    }
    assert not time.set_index(["scenario", "claim"]).loc[
        ("paper", "Annealing vs Equal-allocation: time consumption"), "direction_agrees"
    ]
    prompt = frame[frame.reading == "information=prompt"]
    assert prompt["paper_line"].str.contains("scoring potential of each prompt itself").all()


def test_write_skips_tables_without_metrics(tmp_path):
    assert pvo.write(tmp_path) == []
    put(tmp_path, pvo.NB03, metrics03(-3.0))
    (md,) = pvo.write(tmp_path)
    assert md.name == "paper_vs_ours.md" and md.read_text().count("\n| Probabilistic vs") == 4
    csv = pd.read_csv(tmp_path / "paper_vs_ours.csv")
    assert list(csv.columns) == pvo.COLUMNS and len(csv) == 5
    assert not (tmp_path / "interpretations.csv").exists()
