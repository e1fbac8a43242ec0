"""The paper-vs-ours table built from notebook metrics (aigc_lib.paper_vs_ours)."""

import json

import pandas as pd

from aigc_lib import paper_vs_ours as pvo

MODELS = ["sdxl-turbo", "sd15", "sdxl"]


def metrics03(gain):
    return {
        "score_gain_by_model": {"direct": dict(zip(MODELS, [0.2, 0.5, gain])), "random": dict(zip(MODELS, [0.1, 0.3, 2.0]))},
        "utility_gain_pct": {"direct": {"mean": -1.0, "max": 2.0}, "random": {"mean": 3.0, "max": 9.0}},
        "mean_score": {"probabilistic": 32.0, "direct": 31.5, "random": 31.0},
    }


METRICS04 = {
    "time_change_pct": {"optimal_step": -25.0, "equal": -40.0},
    "utility_gain_pct": {"optimal_step": 8.0, "equal": -2.0},
    "mean_score": {"annealing": 31.8, "optimal_step": 32.0, "equal": 31.0},
    "lambda_sweep": [{"weight": 0.5, "mean_steps": 12, "mean_score": 31, "mean_time_consumption": 10},
                     {"weight": 0.05, "mean_steps": 40, "mean_score": 33, "mean_time_consumption": 30}],
}


def put(root, notebook, metrics):
    (root / notebook).mkdir(parents=True)
    (root / notebook / "metrics.json").write_text(json.dumps(metrics))


def test_table_reads_metrics_and_judges_direction(tmp_path):
    put(tmp_path, pvo.NB03, metrics03(2.4))
    put(tmp_path, pvo.NB04, METRICS04)
    frame = pvo.table(tmp_path)
    assert len(frame) == 11
    by_claim = frame.set_index("claim")
    assert by_claim.loc["Probabilistic vs Direct: utility per slot", "ours"] == "mean -1.0%, max +2.0%"
    assert not by_claim.loc["Probabilistic vs Direct: utility per slot", "direction_agrees"]
    assert by_claim.loc["Probabilistic vs Random: utility per slot", "direction_agrees"]
    assert by_claim.loc["Annealing vs Equal-allocation: time consumption", "ours"] == "-40.0%"
    assert not by_claim.loc["Annealing vs Equal-allocation: utility", "direction_agrees"]
    assert by_claim.loc["lambda sweep: small lambda -> more steps and score; large -> less time", "direction_agrees"]
    # every disagreement carries a reason; an agreement only when the size is off by more than half
    assert (frame.loc[~frame["direction_agrees"], "why"].str.len() > 0).all()
    assert by_claim.loc["Annealing vs Optimal-step: time consumption", "why"] == ""  # -25% vs -30.2%
    assert by_claim.loc["Annealing vs Optimal-step: utility", "why"].startswith("same direction, different size")  # 8 vs 17.8
    assert by_claim.loc["Probabilistic vs Random: utility per slot", "why"] == ""
    # "near Optimal-step": nearer to it than to Equal-allocation
    assert by_claim.loc["Annealing CLIPScore: near Optimal-step, above Equal-allocation", "direction_agrees"]


def test_write_is_atomic_and_skips_missing_notebooks(tmp_path):
    assert pvo.write(tmp_path) is None
    put(tmp_path, pvo.NB03, metrics03(-3.0))
    md = pvo.write(tmp_path)
    assert md.read_text().count("\n| Probabilistic vs") == 4
    csv = pd.read_csv(tmp_path / "paper_vs_ours.csv")
    assert list(csv.columns) == pvo.COLUMNS and len(csv) == 5
    assert not csv.set_index("claim").loc["Probabilistic vs Direct: mean CLIPScore per model", "direction_agrees"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [pvo.NB03, "paper_vs_ours.csv", "paper_vs_ours.md"]


def test_score_far_from_optimal_step_is_not_near(tmp_path):
    far = dict(METRICS04, mean_score={"annealing": 31.28, "optimal_step": 32.53, "equal": 31.26})
    put(tmp_path, pvo.NB04, far)
    row = pvo.table(tmp_path).set_index("claim").loc["Annealing CLIPScore: near Optimal-step, above Equal-allocation"]
    assert not row["direction_agrees"] and row["why"]
