"""Notebook 08 (which prompts gain) run with small parameters: its metrics and figures."""

import json
from pathlib import Path

import pytest

from aigc_lib import premises

FIGURES = ("who_gains", "verdict_regions", "camps")
SCALES = [1.0, 0.0, -1.0]
CORRS = [1.0, 0.0]


@pytest.fixture(scope="module")
def run(notebook_results):
    return notebook_results("08")


def test_the_default_keeps_todays_numbers_and_the_formula_matches(run):
    metrics, _ = run
    assert metrics["scenario"] == "paper"
    assert metrics["by_hand_matches"] is True and metrics["default_unchanged"] is True
    assert metrics["default_large_minus_small"] == pytest.approx(0.66)


def test_the_sweep_has_every_claim_at_every_point_with_a_consistent_verdict(run):
    rows = run[0]["sweep"]
    claims = list(premises.ASSIGNMENT_CLAIMS) + list(premises.SERVING_CLAIMS)
    cells = {(r["slope_scale"], r["residual_corr"], r["claim"]) for r in rows}
    assert cells == {(s, c, k) for s in SCALES for c in CORRS for k in claims}
    for r in rows:
        assert r["low"] <= r["mean"] <= r["high"]
        assert r["verdict"] == premises.verdict(r["low"], r["high"])


def test_worst_light_first_loses_today_and_wins_mirrored(run):
    rows = {(r["slope_scale"], r["residual_corr"]): r for r in run[0]["escalation"]}
    assert rows[(1.0, 1.0)]["high"] < 0 < rows[(-1.0, 1.0)]["low"]
    assert rows[(1.0, 1.0)]["mean"] < rows[(0.0, 1.0)]["mean"] < rows[(-1.0, 1.0)]["mean"]


def test_public_figures_are_computed_with_intervals(run):
    metrics, _ = run
    fits = {r["fit"]: r for r in metrics["ascend_fits"]}
    assert fits["all categories"]["n"] == 12 and fits["without Abstract"]["n"] == 11
    for r in fits.values():
        assert r["low"] < r["slope"] < r["high"]
    low, high = metrics["supported_large_minus_small"]
    assert low < metrics["default_large_minus_small"] < high
    assert metrics["diffserve"]["n"] == 699 and metrics["diffserve"]["corr_light_diff"] < 0


def test_each_camp_is_reported_apart(run):
    shares = {r["camp"]: r for r in run[0]["camp_shares"]}
    assert set(shares) == set(premises.CAMPS)
    assert all(r["scenarios"] == 2 for r in shares.values())


def test_every_figure_is_written_and_the_top_box_is_filled(run):
    _, folder = run
    for name in FIGURES:
        path = folder / "figures" / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 1000, name
    executed = json.loads((folder / f"{folder.name}.ipynb").read_text(encoding="utf-8"))
    cell = next(c for c in executed["cells"] if "found" in c["metadata"].get("tags", []))
    box = "".join(cell["outputs"][0]["data"]["text/markdown"])
    assert "What we found" in box and "How sure" in box and "What it rests on" in box


def test_solutions_are_hidden_code_cells():
    path = Path(__file__).resolve().parent.parent / "notebooks" / "08_which_prompts_gain.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    solutions = [c for c in cells if "solution" in c["metadata"].get("tags", [])]
    assert len(solutions) >= 2  # one or more per exercise (tests/test_teaching.py)
    for cell in solutions:
        assert cell["cell_type"] == "code" and cell["metadata"]["jupyter"]["source_hidden"]
