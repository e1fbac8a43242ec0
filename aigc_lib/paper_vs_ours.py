"""The paper's claims beside ours: ``results/paper_vs_ours.*`` and ``results/interpretations.*``.

Both are built from the notebooks' ``metrics.json`` by :func:`write` (called by ``make reproduce``);
nothing is typed by hand, and nothing is tuned: the numbers are what the notebooks measured.

* ``paper_vs_ours``: each claim of docs/SPEC.md section 6 under the default scenario ("paper") and
  the default readings, judged as the paper states it (:func:`aigc_lib.claims.judge`), with a
  ``why`` written from what the notebooks measured (notebooks 03, 04 and 06).
* ``interpretations``: one row per (scenario, claim, reading): every reading of
  :func:`aigc_lib.readings.changed_alone` plus the per-model reading of "time consumption", under
  both named scenarios (notebook 06), with the paper's words that allow the reading.

Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from aigc_lib import claims
from aigc_lib._io import atomic_write_text, write_csv
from aigc_lib.readings import PAPER_WORDS, TIME_CONSUMPTION

NB03 = "03_probabilistic_assignment"
NB04 = "04_step_selection_and_resource_allocation"
NB06 = "06_what_the_papers_numbers_need"
COLUMNS = ["claim", "paper", "ours", "direction_agrees", "why"]
INTERPRETATION_COLUMNS = [
    "scenario",
    "claim",
    "reading",
    "paper",
    "ours",
    "direction_agrees",
    "paper_line",
]
ASSIGNMENT_CLAIMS = (
    "score_vs_direct",
    "score_vs_random",
    "utility_vs_direct",
    "utility_vs_random",
    "score_cdf",
)
TIME_CLAIMS = ("time_vs_optimal_step", "time_vs_equal")


def _read(results_root: str | os.PathLike, notebook: str) -> dict | None:
    path = Path(results_root) / notebook / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def table(results_root: str | os.PathLike) -> pd.DataFrame:
    """The default comparison (columns ``COLUMNS``); claims whose notebook has no metrics are left out."""
    numbers = {}
    nb03, nb04, nb06 = (_read(results_root, nb) for nb in (NB03, NB04, NB06))
    if nb03:
        numbers["assignment"] = nb03
    if nb04:
        numbers["allocation"] = nb04
    rows = []
    for row in claims.judge(numbers):
        rows.append(
            {
                "claim": row["claim"],
                "paper": row["paper"],
                "ours": row["ours"],
                "direction_agrees": row["direction_agrees"],
                "why": why(row, numbers, nb06),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def why(row: Mapping[str, Any], numbers: Mapping[str, Any], nb06: Mapping[str, Any] | None) -> str:
    """One line on why ours differs, from the measured numbers; empty where ours agrees in size too."""
    key = row["claim_id"]
    prompt = _reading(nb06, "paper", "information=prompt")
    if key in ASSIGNMENT_CLAIMS:
        if row["direction_agrees"]:
            return ""
        text = (
            "with category information the draw of eq. 9-10 is independent of each prompt's own score, "
            "so a group's mixture of models scores at most its best model (notebook 03, section 9)"
        )
        if "random" not in key:
            text += (
                "; Direct sends each whole category to one model, the lowest-scoring category to the "
                "small model and the highest to SDXL"
            )
        if prompt:
            judged = {r["claim_id"]: r for r in claims.judge(prompt)}
            text += (
                f"; under the prompt reading (notebook 06) ours is: {judged[key]['ours']} "
                f"({'agrees' if judged[key]['direction_agrees'] else 'still disagrees'})"
            )
        return text
    if key in TIME_CLAIMS or key.startswith("utility_vs_"):
        ours = _percent(numbers, key)
        paper = _paper_percent(key)
        if row["direction_agrees"] and ours is not None and abs(ours - paper) <= 0.5 * abs(paper):
            return ""
        steps = numbers.get("allocation", {}).get("mean_steps", {})
        text = "same direction, different size: " if row["direction_agrees"] else ""
        text += (
            f"annealing runs {steps.get('annealing', float('nan')):.1f} steps on average against "
            f"Optimal-step's {steps.get('optimal_step', float('nan')):.0f}: with the assumed step slopes an "
            "extra step adds less score than lambda x its queueing time (notebook 04)"
        )
        if key == "time_vs_equal":
            text += (
                "; per model, Equal-allocation is faster on the small model, as the paper says, so the mean "
                "of per-model changes differs from the change of the mean (notebook 06)"
            )
        bounds = claims.annealing_bounds()
        text += (
            f"; the paper's four annealing numbers cannot all hold with one U = S - lambda T "
            f"(bounds {bounds['lower']:.3f} > {bounds['upper']:.3f}, notebook 06)"
        )
        return text
    if key == "alloc_score" and not row["direction_agrees"]:
        return (
            "annealing and Equal-allocation both run about the fewest steps, so their scores nearly tie and "
            "Optimal-step's 42 steps score highest (notebook 04)"
        )
    if key == "lambda_trend" and not row["direction_agrees"]:
        return "the step slopes are assumptions (data/scenarios/paper.yaml)"
    return ""


def _percent(numbers: Mapping[str, Any], key: str) -> float | None:
    allocation = numbers.get("allocation", {})
    other = key.split("_vs_")[1]
    if key.startswith("time_"):
        return allocation.get("time_change_pct", {}).get(other, {}).get("makespan")
    return allocation.get("utility_gain_pct", {}).get(other)


def _paper_percent(key: str) -> float:
    other = key.split("_vs_")[1]
    return claims.PAPER["time_change_pct" if key.startswith("time_") else "utility_gain_pct"][other]


def _reading(nb06: Mapping[str, Any] | None, scenario: str, label: str) -> dict | None:
    if not nb06:
        return None
    return nb06.get("measured", {}).get(scenario, {}).get(label)


def interpretations(results_root: str | os.PathLike) -> pd.DataFrame:
    """One row per (scenario, claim, reading) from notebook 06's metrics (columns ``INTERPRETATION_COLUMNS``).

    Empty when notebook 06 has not run. ``paper_line`` quotes the paper's words that allow the reading
    (for the default readings: where the paper makes the claim).
    """
    nb06 = _read(results_root, NB06)
    rows = []
    for scenario, by_reading in (nb06 or {}).get("measured", {}).items():
        for label, numbers in by_reading.items():
            judged = claims.judge(numbers)
            if label == "default":
                judged += [
                    dict(r, reading="time_consumption=per_model_pct")
                    for r in claims.judge(numbers, time_reading=TIME_CONSUMPTION[1])
                    if r["claim_id"] in TIME_CLAIMS
                ]
            for r in judged:
                reading = r.get("reading", label)
                rows.append(
                    {
                        "scenario": scenario,
                        "claim": r["claim"],
                        "reading": reading,
                        "paper": r["paper"],
                        "ours": r["ours"],
                        "direction_agrees": r["direction_agrees"],
                        "paper_line": _paper_line(reading, r["where"]),
                    }
                )
    frame = pd.DataFrame(rows, columns=INTERPRETATION_COLUMNS)
    return frame.sort_values(["claim", "scenario", "reading"], kind="stable").reset_index(drop=True)


def _paper_line(reading: str, where: str) -> str:
    if reading == "default":
        return f"claim: {where}; every point at its default reading"
    field, option = reading.split(",")[0].split("=")
    return PAPER_WORDS.get((field, option), where)


def to_markdown(frame: pd.DataFrame, title: str, note: str) -> str:
    """A Markdown page for a table (no extra dependency)."""
    columns = list(frame.columns)
    lines = [
        f"# {title}",
        "",
        note,
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in frame.itertuples(index=False):
        cells = [
            ("yes" if v else "no") if isinstance(v, bool) else str(v).replace("|", "/") for v in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(results_root: str | os.PathLike) -> list[Path]:
    """Write ``paper_vs_ours`` and ``interpretations`` (.md and .csv) under ``results_root``.

    Returns the Markdown files written; a table with no metrics behind it yet is not written.
    """
    written = []
    main = table(results_root)
    if not main.empty:
        write_csv(Path(results_root) / "paper_vs_ours.csv", main)
        note = (
            'Generated by `make reproduce` from the notebooks\' metrics: scenario "paper" '
            "(`data/scenarios/paper.yaml`, whose unmeasured numbers are assumptions) and the default "
            "reading of every open point (docs/SPEC.md section 2b). Other readings and the scenario "
            '"published": `interpretations.md`. Do not edit by hand.'
        )
        written.append(
            atomic_write_text(
                Path(results_root) / "paper_vs_ours.md",
                to_markdown(main, "The paper's claims beside ours", note),
            )
        )
    readings = interpretations(results_root)
    if not readings.empty:
        write_csv(Path(results_root) / "interpretations.csv", readings)
        note = (
            "Generated by `make reproduce` from notebook 06's metrics. One row per scenario, claim and "
            "reading, each reading changed alone from the default; `direction_agrees` judges the claim as "
            "the paper states it. Do not edit by hand."
        )
        written.append(
            atomic_write_text(
                Path(results_root) / "interpretations.md",
                to_markdown(readings, "Each claim under each reading", note),
            )
        )
    return written
