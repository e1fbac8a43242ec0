"""The paper-vs-ours and interpretations tables built from notebook 06's numbers
(aigc_lib.paper_vs_ours), and the committed tables: no verdict says more than its interval."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from claim_numbers import numbers

from aigc_lib import claims
from aigc_lib import paper_vs_ours as pvo
from aigc_lib.readings import changed_alone

ROOT = Path(__file__).resolve().parents[1]
MECHANISM = {
    "Imagination": {
        "share": 0.27,
        "moved": 0.44,
        "from_model": "sdxl",
        "to_model": "sdxl",
        "score": -0.98,
        "utility": -0.10,
        "latency_term": 0.87,
        "contribution": -0.03,
        "score_contribution": -0.27,
    },
    "Detail": {
        "share": 0.35,
        "moved": 0.47,
        "from_model": "sd15",
        "to_model": "sd15",
        "score": 0.20,
        "utility": -0.49,
        "latency_term": -0.69,
        "contribution": -0.17,
        "score_contribution": 0.07,
    },
}
RHO = [
    {"rho": 0.0, "gain_pct": -1.0, "low": -1.2, "high": -0.8},
    {"rho": 1.0, "gain_pct": 0.6, "low": 0.4, "high": 0.8},
]
NB06 = {
    "scenarios": ["paper", "published"],
    "scenario_labels": {"paper": "paper", "published": "published"},
    "n_slots": 200,
    "seed": 0,
    "rho_sweep": {"paper": RHO, "published": RHO},
    "rho_break_even": {"paper": 0.8, "published": math.nan},
}


def put(root, notebook, frame=None, metrics=None):
    (root / notebook).mkdir(parents=True, exist_ok=True)
    if frame is not None:
        claims.write_numbers(frame, root / notebook)
    (root / notebook / "metrics.json").write_text(json.dumps(metrics or {}))


def measured(tmp_path, changes=None, **kwargs):
    """Notebook 06's table: both scenarios, every reading; ``changes`` override the paper
    scenario's default reading; ``kwargs`` go to the direct=best reading."""
    frames = [
        numbers(
            changes if (s, label) == ("paper", "default") else None,
            reading=label,
            **(kwargs if label == "direct=best" else {}),
        ).assign(scenario=s)
        for s in ("paper", "published")
        for label in changed_alone()
    ]
    frame = pd.concat(frames, ignore_index=True)
    put(tmp_path, pvo.NB06, frame, NB06)
    put(tmp_path, pvo.NB03, None, {"mechanism_vs_direct": MECHANISM})
    return frame


LOSS = {("slot_gain_pct", "probabilistic", "direct", "mean"): (-1.0, -1.5, -0.5)}


def test_table_judges_every_claim_on_notebook_06s_default_workload(tmp_path):
    measured(tmp_path, LOSS)
    frame = pvo.table(tmp_path)
    assert list(frame.columns) == pvo.COLUMNS and len(frame) == len(claims.CLAIMS)
    assert set(frame["verdict"]) <= set(claims.VERDICTS)
    by_claim = frame.set_index("claim")
    utility = by_claim.loc["Probabilistic vs Direct: utility per slot"]
    assert utility["verdict"] == "disagrees" and utility["interval"] == "vs direct: -1.50 to -0.50"
    assert (utility["low"], utility["high"], utility["side"]) == (-1.5, -0.5, 1)
    # the why is the measured mechanism, and the oracle with its interval
    assert "44% of Imagination prompts off sdxl" in utility["why"]
    assert "Detail tasks lose -0.69 points each to queueing" in utility["why"]
    assert "breaks even with Direct near rho = 0.80" in utility["why"]
    assert "(95% interval +0.40 to +0.80)" in utility["why"]
    assert by_claim.loc["Probabilistic vs Random: utility per slot", "verdict"] == "agrees"


def test_the_same_claim_reads_the_same_in_both_tables(tmp_path):
    measured(tmp_path, LOSS)
    main = pvo.table(tmp_path).set_index("claim")
    rows = pvo.interpretations(tmp_path)
    default = rows[(rows["scenario"] == "paper") & (rows["reading"] == "default")]
    for _, row in default.iterrows():
        mine = main.loc[row["claim"]]
        assert (row["verdict"], row["interval"], row["ours"]) == (
            mine["verdict"],
            mine["interval"],
            mine["ours"],
        ), row["claim"]


def test_the_equal_allocation_why_names_the_models_where_equal_is_faster(tmp_path):
    frame = measured(
        tmp_path, {("time_change_pct", "annealing", "equal", "makespan"): (-25, -30, -20)}
    )
    pick = (frame["quantity"] == "time_consumption") & (frame["policy"] == "equal")
    frame.loc[pick & (frame["key"] == "sd15"), "value"] = 4.0
    put(tmp_path, pvo.NB06, frame, NB06)
    row = (
        pvo.table(tmp_path)
        .set_index("claim")
        .loc["Annealing vs Equal-allocation: time consumption"]
    )
    assert "Equal-allocation is faster on sd15 (4.0 s vs 5.0 s)" in row["why"]


def test_interpretations_have_a_row_per_scenario_claim_and_reading(tmp_path):
    measured(tmp_path)
    frame = pvo.interpretations(tmp_path)
    assert list(frame.columns) == pvo.INTERPRETATION_COLUMNS
    assert frame["reading"].nunique() == 7  # six simulated readings and the per-model time reading
    assert frame.groupby(["scenario", "claim"]).size().min() >= 6
    time = frame[(frame.reading == "time_consumption=per_model_pct")]
    assert set(time["claim"]) == {
        "Annealing vs Optimal-step: time consumption",
        "Annealing vs Equal-allocation: time consumption",
    }
    prompt = frame[frame.reading == "information=prompt"]
    assert prompt["paper_line"].str.contains("scoring probability of different categories").all()
    assert prompt["flag"].str.startswith("oracle (ranks 1 of 6").all()


def test_a_baseline_is_flagged_weakened_only_where_its_own_utility_falls(tmp_path):
    measured(tmp_path, direct_utility=28.0)  # below the default's 29.8
    frame = pvo.interpretations(tmp_path)
    best = frame[frame["reading"] == "direct=best"]
    weakened = best[best["flag"].str.startswith(pvo.WEAKENED)]
    names_direct = {
        r.claim for r in claims.RECORDS.values() if any(q.versus == "direct" for q in r.named)
    }
    assert set(weakened["claim"]) == names_direct
    assert "28.00 against 29.80" in weakened["flag"].iloc[0]
    counts = pvo.agreement_shares(frame)
    kept = len(claims.CLAIMS) - len(names_direct)
    assert counts.loc["direct=best", "paper"].sum() == kept
    assert counts.loc["default", "paper"].sum() == len(claims.CLAIMS)
    assert pvo.flagged_readings(frame) == ["direct=best"]
    measured(tmp_path, direct_utility=31.0)  # "best" Direct is the stronger baseline here
    frame = pvo.interpretations(tmp_path)
    best = frame[(frame["reading"] == "direct=best") & (frame["scenario"] == "paper")]
    assert not best["flag"].str.startswith(pvo.WEAKENED).any()
    assert best["flag"].str.startswith("baseline changed, not weakened").sum() == len(names_direct)
    assert pvo.flagged_readings(frame) == []


def test_shares_count_each_verdict_apart_and_no_nan_agrees(tmp_path):
    nan = (math.nan,) * 3
    measured(tmp_path, {("score_gain", "probabilistic", "direct", "sd15"): nan, **LOSS})
    frame = pvo.interpretations(tmp_path)
    assert not frame.loc[frame["ours"].str.contains("nan"), "verdict"].eq("agrees").any()
    counts = pvo.agreement_shares(frame).loc["default", "paper"]
    default = frame[(frame["reading"] == "default") & (frame["scenario"] == "paper")]
    assert (
        counts.to_dict()
        == default["verdict"]
        .value_counts()
        .reindex(claims.VERDICTS)
        .fillna(0)
        .astype(int)
        .to_dict()
    )
    assert counts["not shown"] >= 1 and counts["disagrees"] >= 2
    pvo.write(tmp_path)
    page = (tmp_path / "interpretations.md").read_text()
    assert "| default | " in page and "rho = 0.80 in 'paper'" in page
    assert "at no rho of the sweep in 'published'" in page


def test_write_skips_tables_without_numbers(tmp_path):
    assert pvo.write(tmp_path) == []
    measured(tmp_path)
    written = pvo.write(tmp_path)
    assert {p.name for p in written} == {"paper_vs_ours.md", "interpretations.md"}
    csv = pd.read_csv(tmp_path / "paper_vs_ours.csv")
    assert list(csv.columns) == pvo.COLUMNS and len(csv) == len(claims.CLAIMS)
    assert "200 slots, seed 0" in (tmp_path / "paper_vs_ours.md").read_text()


@pytest.mark.parametrize("name", ["paper_vs_ours.csv", "interpretations.csv"])
def test_no_committed_agrees_row_says_more_than_its_interval(name):
    """Scans the committed tables: three verdicts only; an "agrees" row's interval lies wholly on the
    paper's side (never including 0, never a named model on the wrong side)."""
    frame = pd.read_csv(ROOT / "results" / name, keep_default_na=False)
    assert set(frame["verdict"]) <= set(claims.VERDICTS)
    agrees = frame[frame["verdict"] == "agrees"]
    side = agrees["side"].astype(float)
    low, high = agrees["low"].astype(float), agrees["high"].astype(float)
    assert ((side * low > 0) & (side * high > 0)).all(), agrees["claim"].tolist()
    assert not agrees["ours"].str.contains("nan").any()


def test_the_committed_tables_read_one_workload():
    """The same claim and scenario gives the same number in paper_vs_ours, interpretations and
    notebook 06's summary."""
    main = pd.read_csv(ROOT / "results" / "paper_vs_ours.csv", keep_default_na=False)
    rows = pd.read_csv(ROOT / "results" / "interpretations.csv", keep_default_na=False)
    default = rows[(rows["scenario"] == "paper") & (rows["reading"] == "default")]
    merged = main.merge(default, on="claim", suffixes=("", "_06"))
    assert len(merged) == len(main) == len(claims.CLAIMS)
    for column in ("verdict", "interval", "ours", "size"):
        assert (merged[column] == merged[f"{column}_06"]).all(), column
    nb06 = json.loads((ROOT / "results" / pvo.NB06 / "metrics.json").read_text())
    verdicts = nb06["verdicts"]["paper"]
    for _, row in merged.iterrows():
        claim_id = next(k for k, v in claims.CLAIMS.items() if v[0] == row["claim"])
        assert verdicts[claim_id]["verdict"] == row["verdict"]
        assert verdicts[claim_id]["interval"] == row["interval"]


def test_notebook_03_runs_the_workload_of_the_tables():
    """Notebook 03's paired utility gain over Direct is the tables' number, interval included."""
    main = pd.read_csv(ROOT / "results" / "paper_vs_ours.csv").set_index("claim")
    row = main.loc[claims.CLAIMS["utility_vs_direct"][0]]
    nb03 = json.loads((ROOT / "results" / pvo.NB03 / "metrics.json").read_text())
    nb06 = json.loads((ROOT / "results" / pvo.NB06 / "metrics.json").read_text())
    assert (nb03["n_slots"], nb03["seed"]) == (nb06["n_slots"], nb06["seed"])
    gain = nb03["utility_gain_pct"]["direct"]
    assert (gain["low"], gain["high"]) == pytest.approx((row["low"], row["high"]))
    assert nb03["rho_break_even"] == pytest.approx(nb06["rho_break_even"]["paper"])


def test_the_interpretations_page_opens_with_what_flips(tmp_path):
    measured(tmp_path)
    frame = pvo.interpretations(tmp_path)
    pick = (frame["scenario"] == "paper") & (frame["reading"] == "latency=per_image")
    frame.loc[pick & (frame["claim"] == claims.CLAIMS["utility_vs_equal"][0]), "verdict"] = (
        "not shown"
    )
    lines = pvo.flips(frame)
    assert (
        "- paper, latency=per_image: Annealing vs Equal-allocation: utility (agrees -> not shown)"
        in lines
    )
    assert "- published, latency=per_image: no verdict changes" in lines
    pvo.write(tmp_path)
    page = (tmp_path / "interpretations.md").read_text()
    assert page.index("What flips between readings") < page.index("| scenario | claim |")
