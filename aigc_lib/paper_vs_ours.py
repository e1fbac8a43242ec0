"""``results/paper_vs_ours.md`` and ``.csv``: each claim of the paper (SPEC.md section 6) beside ours.

Built from the notebooks' ``metrics.json`` by :func:`write` (called by ``make reproduce``). A row
says whether the direction agrees; where it does not, or where a percentage is off the paper's by
more than half of it, ``why`` carries one line. Nothing here is
tuned: the numbers are whatever the notebooks measured on the scenario of ``data/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from aigc_lib._io import atomic_write_text, write_csv

NB03 = "03_probabilistic_assignment"
NB04 = "04_step_selection_and_resource_allocation"
COLUMNS = ["claim", "paper", "ours", "direction_agrees", "why"]

# Where ours may legitimately differ, the reason (shown only when the direction disagrees).
_WHY = {
    "assignment": "the planner knows only a prompt's group, so the random draw is independent of the prompt's "
                  "own score and cannot beat, in expectation, the best single model per group; gains need "
                  "per-prompt information (notebook 05, rho > 0); our score model is also assumed (data/scenario.yaml)",
    "allocation": "with our assumed score slopes (data/scenario.yaml) and lambda = 0.2 an extra step costs more "
                  "waiting than it adds score, so annealing runs few steps (notebook 04, section 5); the "
                  "paper's score curves and tasks per slot are not published",
}


def _claims() -> list[tuple[str, str, str, Callable[[dict], tuple], str]]:
    """(claim, paper's figure, notebook, ours(metrics) -> (text, agrees[, our percentage, paper's]), reason key)."""

    def per_model_gain(other: str) -> Callable[[dict], tuple[str, bool]]:
        def ours(m: dict) -> tuple[str, bool]:
            gains = m["score_gain_by_model"][other]
            text = ", ".join(f"{k} {v:+.2f}" for k, v in gains.items())
            return text, all(v > 0 for v in gains.values())
        return ours

    def utility_gain(other: str) -> Callable[[dict], tuple[str, bool]]:
        def ours(m: dict) -> tuple[str, bool]:
            g = m["utility_gain_pct"][other]
            return f"mean {g['mean']:+.1f}%, max {g['max']:+.1f}%", g["mean"] > 0
        return ours

    def score_shift(m: dict) -> tuple[str, bool]:
        s = m["mean_score"]
        text = ", ".join(f"{k} {v:.2f}" for k, v in s.items())
        return text, s["probabilistic"] >= max(s["direct"], s["random"])

    def time_change(other: str, paper: float) -> Callable[[dict], tuple]:
        def ours(m: dict) -> tuple:
            v = m["time_change_pct"][other]
            return f"{v:+.1f}%", v < 0, v, paper
        return ours

    def alloc_utility(other: str, paper: float) -> Callable[[dict], tuple]:
        def ours(m: dict) -> tuple:
            v = m["utility_gain_pct"][other]
            return f"{v:+.1f}%", v > 0, v, paper
        return ours

    def alloc_score(m: dict) -> tuple[str, bool]:
        s = m["mean_score"]
        near = abs(s["annealing"] - s["optimal_step"]) <= abs(s["annealing"] - s["equal"])  # nearer Optimal-step
        return (f"annealing {s['annealing']:.2f}, optimal-step {s['optimal_step']:.2f}, equal {s['equal']:.2f}",
                near and s["annealing"] >= s["equal"])

    def lambda_trend(m: dict) -> tuple[str, bool]:
        rows = sorted(m["lambda_sweep"], key=lambda r: r["weight"])
        lo, hi = rows[0], rows[-1]
        text = (f"lambda {lo['weight']:g} -> {hi['weight']:g}: steps {lo['mean_steps']:.1f} -> {hi['mean_steps']:.1f}, "
                f"score {lo['mean_score']:.2f} -> {hi['mean_score']:.2f}, "
                f"time {lo['mean_time_consumption']:.1f} -> {hi['mean_time_consumption']:.1f} s")
        agrees = (lo["mean_steps"] >= hi["mean_steps"] and lo["mean_score"] >= hi["mean_score"]
                  and lo["mean_time_consumption"] >= hi["mean_time_consumption"])
        return text, agrees

    return [
        ("Probabilistic vs Direct: mean CLIPScore per model", "+0.2 to +2.4 (largest on SDXL)", NB03, per_model_gain("direct"), "assignment"),
        ("Probabilistic vs Random: mean CLIPScore per model", "+0.2 to +2.4 (largest on SDXL)", NB03, per_model_gain("random"), "assignment"),
        ("Probabilistic vs Direct: utility per slot", "up to +2.5%", NB03, utility_gain("direct"), "assignment"),
        ("Probabilistic vs Random: utility per slot", "up to +2.5%", NB03, utility_gain("random"), "assignment"),
        ("Score CDF of Probabilistic shifted right (mean CLIPScore)", "higher than Direct and Random", NB03, score_shift, "assignment"),
        ("Annealing vs Optimal-step: time consumption", "-30.2%", NB04, time_change("optimal_step", -30.2), "allocation"),
        ("Annealing vs Equal-allocation: time consumption", "-39.1%", NB04, time_change("equal", -39.1), "allocation"),
        ("Annealing vs Optimal-step: utility", "+17.8%", NB04, alloc_utility("optimal_step", 17.8), "allocation"),
        ("Annealing vs Equal-allocation: utility", "+12.7%", NB04, alloc_utility("equal", 12.7), "allocation"),
        ("Annealing CLIPScore: near Optimal-step, above Equal-allocation", "near / above", NB04, alloc_score, "allocation"),
        ("lambda sweep: small lambda -> more steps and score; large -> less time", "monotone trade-off", NB04, lambda_trend, "allocation"),
    ]


def table(results_root: str | os.PathLike) -> pd.DataFrame:
    """The comparison as a DataFrame (columns ``COLUMNS``); claims whose notebook has no metrics are left out."""
    rows = []
    for claim, paper, notebook, ours, why_key in _claims():
        path = Path(results_root) / notebook / "metrics.json"
        if not path.is_file():
            continue
        text, agrees, *sizes = ours(json.loads(path.read_text()))
        why = "" if agrees else _WHY[why_key]
        if agrees and sizes and abs(sizes[0] - sizes[1]) > 0.5 * abs(sizes[1]):
            why = "same direction, different size: " + _WHY[why_key]
        rows.append({"claim": claim, "paper": paper, "ours": text, "direction_agrees": bool(agrees), "why": why})
    return pd.DataFrame(rows, columns=COLUMNS)


def to_markdown(frame: pd.DataFrame) -> str:
    """A Markdown page for the table (no extra dependency)."""
    lines = ["# The paper's claims beside ours", "",
             "Generated by `make reproduce` from the notebooks' metrics (scenario: `data/scenario.yaml`, "
             "whose unmeasured numbers are assumptions). Do not edit by hand.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in frame.itertuples(index=False):
        cells = [str(v).replace("|", "/") if not isinstance(v, bool) else ("yes" if v else "no") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(results_root: str | os.PathLike) -> Path | None:
    """Write ``paper_vs_ours.md`` and ``.csv`` under ``results_root``; None when no notebook metrics exist yet."""
    frame = table(results_root)
    if frame.empty:
        return None
    write_csv(Path(results_root) / "paper_vs_ours.csv", frame)
    return atomic_write_text(Path(results_root) / "paper_vs_ours.md", to_markdown(frame))
