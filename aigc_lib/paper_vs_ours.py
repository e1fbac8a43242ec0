"""The paper's claims beside ours: ``results/paper_vs_ours.*`` and ``results/interpretations.*``.

Both are built from the notebooks' results by :func:`write` (called by ``make reproduce``):
notebook 06's table of numbers (``claims.csv``, :func:`aigc_lib.claims.write_numbers`), one
workload per scenario, and the notebooks' ``metrics.json``. Nothing is typed by hand, and nothing
is tuned: the numbers are what the notebooks measured.

* ``paper_vs_ours``: each claim of docs/SPEC.md section 6 under notebook 06's first scenario (by
  default "paper") and the default readings, judged from 95% intervals as the paper states it
  (:func:`aigc_lib.claims.judge`: agrees, not shown, disagrees; the size apart), with a ``why``
  written from the mechanism the notebooks measured (notebooks 03, 04 and 06).
* ``interpretations``: one row per (scenario, claim, reading): every reading of
  :func:`aigc_lib.readings.changed_alone` plus the per-model reading of "time consumption", under
  both named scenarios (notebook 06), with the paper's words that allow the reading and a
  measured ``flag`` (the oracle's rank; "baseline weakened" only where the reading lowers
  Direct's own utility, :func:`baseline_flag`). :func:`agreement_shares` counts each verdict and
  leaves the weakened rows out.

Notebook 04's numbers (synthetic groups, its own workload) stay out of both tables.

Each page says which scenario and which profile of measurements its numbers come from, read from
the notebooks' ``metrics.json`` (:func:`sources`): ``python -m aigc_lib.reproduce --profile PATH``
runs the notebooks with a profile into a results folder of its own, and its pages name the profile,
and say so when it was fitted on random weights (a demonstration, not the real models).

Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from aigc_lib import claims
from aigc_lib._io import atomic_write_text, write_csv
from aigc_lib.readings import FLAGS, PAPER_WORDS, TIME_CONSUMPTION, caveat

NB03 = "03_probabilistic_assignment"
NB04 = "04_step_selection_and_resource_allocation"
NB06 = "06_what_the_papers_numbers_need"
NUMBERS = "claims.csv"
"""The file name of each notebook's table of numbers."""
COLUMNS = ["claim", "paper", "ours", "verdict", "interval", "low", "high", "side", "size", "why"]
"""``verdict``: one of :data:`aigc_lib.claims.VERDICTS`; ``interval``: the named quantity that
decides it (the one least on the paper's side) with its 95% interval, also as numbers in ``low``
and ``high``; ``side``: +1 where the paper says the quantity is positive, -1 negative; ``size``:
within, below or above the paper's figure (:func:`aigc_lib.claims.judge_claim`)."""
INTERPRETATION_COLUMNS = [
    "scenario",
    "claim",
    "reading",
    "paper",
    "ours",
    "verdict",
    "interval",
    "low",
    "high",
    "side",
    "size",
    "flag",
    "paper_line",
]
ASSIGNMENT_CLAIMS = (
    "score_vs_direct",
    "score_vs_random",
    "random_small_large",
    "utility_vs_direct",
    "utility_vs_random",
    "score_cdf",
    "quality_up_to",
)
TIME_CLAIMS = ("time_vs_optimal_step", "time_vs_equal")


def _read(results_root: str | os.PathLike, notebook: str) -> dict | None:
    path = Path(results_root) / notebook / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _numbers(results_root: str | os.PathLike, notebook: str) -> pd.DataFrame | None:
    path = Path(results_root) / notebook / NUMBERS
    return claims.read_numbers(path) if path.is_file() else None


def sources(results_root: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Where each notebook's numbers come from, read from its ``metrics.json``: ``{notebook:
    {"scenarios": [names], "profile": name or None, "real_weights": bool}}`` for notebooks 03, 04
    and 06 (those that have not run are left out; metrics written before profiles existed read as
    no profile).
    """
    out = {}
    for notebook in (NB03, NB04, NB06):
        metrics = _read(results_root, notebook)
        if metrics is None:
            continue
        names = metrics.get("scenarios") or [metrics.get("scenario", "paper")]
        out[notebook] = {
            "scenarios": [str(n) for n in names],
            "profile": metrics.get("profile"),
            "real_weights": metrics.get("real_weights", True) is not False,
        }
    return out


def _source_text(
    found: Mapping[str, Mapping[str, Any]], notebooks: tuple[str, ...], first: bool = False
) -> str:
    """Which scenario and profile the numbers of ``notebooks`` come from, in words (``first``:
    each notebook's first scenario only, the one ``paper_vs_ours`` reads)."""
    chosen = {
        nb: dict(found[nb], scenarios=found[nb]["scenarios"][:1]) if first else found[nb]
        for nb in notebooks
        if nb in found
    }
    if not chosen:
        return 'scenario "paper" (`data/scenarios/paper.yaml`, whose unmeasured numbers are assumptions)'
    keys = {(tuple(s["scenarios"]), s["profile"], s["real_weights"]) for s in chosen.values()}
    if len(keys) > 1:
        each = "; ".join(
            f"notebook {nb[:2]}: {', '.join(s['scenarios'])}"
            + (f" with the profile {s['profile']}" if s["profile"] else " (no profile)")
            for nb, s in chosen.items()
        )
        return f"**different sources per notebook** ({each}): rerun them together"
    source = next(iter(chosen.values()))
    names = " and ".join(f'"{n}"' for n in source["scenarios"])
    files = ", ".join(f"`data/scenarios/{n}.yaml`" for n in source["scenarios"])
    noun = "scenarios" if len(source["scenarios"]) > 1 else "scenario"
    text = f"{noun} {names} ({files}, whose unmeasured numbers are assumptions)"
    if source["profile"] is not None:
        text += (
            f' with the profile "{source["profile"]}" of measurements (its numbers replace the '
            "scenario's; the others stay as shipped)"
        )
    return text


def _caveat(found: Mapping[str, Mapping[str, Any]], notebooks: tuple[str, ...]) -> str:
    """A sentence for a profile fitted on random weights (empty otherwise)."""
    if all(found[nb]["real_weights"] for nb in notebooks if nb in found):
        return ""
    return (
        " **The profile was fitted on random weights: a demonstration of the mechanism, not "
        "measurements of the real models.**"
    )


def _command(found: Mapping[str, Mapping[str, Any]]) -> str:
    profiles = {s["profile"] for s in found.values()} - {None}
    return "`python -m aigc_lib.reproduce --profile`" if profiles else "`make reproduce`"


def _slopes(context: Mapping[str, Mapping]) -> str:
    """How the ``why`` lines name the step slopes: assumed, or the scenario's under a profile."""
    profile = context.get(NB04, {}).get("profile") or context.get(NB03, {}).get("profile")
    if profile is None:
        return "the assumed step slopes"
    return f"the step slopes of the scenario with the profile {profile}"


def _default_numbers(results_root: str | os.PathLike) -> tuple[pd.DataFrame | None, str]:
    """Notebook 06's numbers for its first scenario under the default reading, and that
    scenario's name: the one workload behind ``paper_vs_ours`` and ``interpretations``."""
    numbers, nb06 = _numbers(results_root, NB06), _read(results_root, NB06) or {}
    if numbers is None:
        return None, ""
    name = (nb06.get("scenarios") or [str(numbers["scenario"].iloc[0])])[0]
    label = nb06.get("scenario_labels", {}).get(name, name)
    chosen = numbers[(numbers["scenario"] == label) & (numbers["reading"] == "default")]
    return chosen.reset_index(drop=True), name


def _interval_text(row: Mapping[str, Any]) -> str:
    if not math.isfinite(row["low"]):
        return f"{row['named']}: not measured"
    return f"{row['named']}: {row['low']:+.2f} to {row['high']:+.2f}"


def table(results_root: str | os.PathLike) -> pd.DataFrame:
    """The default comparison (columns ``COLUMNS``): every claim judged by
    :func:`aigc_lib.claims.judge` on notebook 06's numbers for its first scenario (``"paper"``)
    under the default reading, the same workload as ``interpretations`` (and as notebook 03,
    which runs the same slots, prompts and seed). Empty when notebook 06 has not run.
    """
    numbers, name = _default_numbers(results_root)
    if numbers is None or numbers.empty:
        return pd.DataFrame(columns=COLUMNS)
    context = {nb: _read(results_root, nb) or {} for nb in (NB03, NB04, NB06)}
    context["scenario"] = name
    rows = [
        {
            **{k: row[k] for k in ("claim", "paper", "ours", "verdict", "low", "high", "side")},
            "size": row["size"],
            "interval": _interval_text(row),
            "why": why(row, numbers, context),
        }
        for row in claims.judge(numbers)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def why(row: Mapping[str, Any], numbers: pd.DataFrame, context: Mapping[str, Any]) -> str:
    """One line on why ours differs, from the measured mechanism; empty where ours agrees in size too.

    ``numbers``: the judged table; ``context``: the notebooks' metrics by notebook name (notebook
    03's ``mechanism_vs_direct``, notebook 06's ``rho_sweep`` and ``rho_break_even``) and
    ``"scenario"``, the scenario's name.
    """
    key, agrees = row["claim_id"], row["verdict"] == "agrees"
    nb03, nb06 = context.get(NB03, {}), context.get(NB06, {})
    oracle = _oracle(nb06, context.get("scenario", "paper"))
    if key in ("score_vs_direct", "utility_vs_direct", "score_cdf") and not agrees:
        return "; ".join(t for t in (_mechanism(nb03), oracle) if t)
    if key == "mix_vs_single" and not agrees:
        return _single(numbers)
    if key == "quality_up_to":
        return _quality(row, numbers)
    if key in ("score_vs_random", "utility_vs_random") and not agrees:
        return oracle
    if key in TIME_CLAIMS or (key.startswith("utility_vs_") and key not in ASSIGNMENT_CLAIMS):
        return _allocation_why(key, row, numbers, _slopes(context))
    if key == "alloc_score" and not agrees:
        steps = _lookup(numbers, "mean_steps", "optimal_step")
        return (
            "annealing and Equal-allocation both run about the fewest steps, so their scores nearly "
            f"tie, and Optimal-step's {steps:.0f} steps score highest (notebook 04)"
        )
    if key == "lambda_trend" and not agrees:
        if _slopes(context) == "the assumed step slopes":
            return "the step slopes are assumptions (data/scenarios/paper.yaml)"
        return f"{_slopes(context)} decide it (notebook 04)"
    if key == "time_each_model_vs_optimal_step" and not agrees:
        return "Optimal-step runs the most steps on every model, so this needs a faster split (notebook 04)"
    return ""


def _mechanism(nb03: Mapping[str, Any]) -> str:
    """The measured cause of Probabilistic's difference from Direct, task by task (notebook 03)."""
    table = nb03.get("mechanism_vs_direct")
    if not table:
        return ""
    frame = pd.DataFrame(table).T
    frame[["share", "moved", "score", "latency_term", "contribution", "score_contribution"]] = (
        frame[
            ["share", "moved", "score", "latency_term", "contribution", "score_contribution"]
        ].astype(float)
    )
    loser = frame["score_contribution"].idxmin()
    queued = frame["latency_term"].idxmin()
    lost = frame.loc[loser]
    total = frame["contribution"].sum()
    text = (
        f"measured task by task against Direct (notebook 03, section 9): Probabilistic moves "
        f"{100 * lost['moved']:.0f}% of {loser} prompts off {lost['from_model']}, Direct's model for "
        f"them (score {lost['score']:+.2f} points per {loser} task, {lost['score_contribution']:+.2f} "
        f"on the mean task); {queued} tasks lose {frame.loc[queued, 'latency_term']:+.2f} points each "
        f"to queueing and image time; net utility {total:+.2f} points per task. A category-only "
        "draw cannot pick which prompts to move"
    )
    return text


def _oracle(nb06: Mapping[str, Any], scenario: str) -> str:
    """The rho sweep of notebook 06 for ``scenario``: the oracle's gain and the break-even rho."""
    sweep = (nb06.get("rho_sweep") or {}).get(scenario)
    if not sweep:
        return ""
    frame = pd.DataFrame(sweep)
    even = (nb06.get("rho_break_even") or {}).get(scenario, math.nan)
    oracle = frame.loc[frame["rho"].idxmax()]
    where = (
        f"it breaks even with Direct near rho = {even:.2f}"
        if math.isfinite(even)
        else "it never breaks even with Direct"
    )
    return (
        f"an oracle that knows each prompt's own score (rho = {oracle['rho']:g}, the prompt reading) "
        f"gains {oracle['gain_pct']:+.2f}% per slot over Direct (95% interval {oracle['low']:+.2f} "
        f"to {oracle['high']:+.2f}); with a predictor of correlation rho {where} (rho sweep, "
        "notebook 06)"
    )


def _quality(row: Mapping[str, Any], numbers: pd.DataFrame) -> str:
    pairs = {
        "direct": "probabilistic",
        "random": "probabilistic",
        "equal": "annealing",
        "optimal_step": "annealing",
    }
    gains = {o: _lookup(numbers, "quality_gain_pct", p, o) for o, p in pairs.items()}
    best = max(gains, key=lambda o: gains[o] if math.isfinite(gains[o]) else -math.inf)
    if row["verdict"] == "agrees" and row["size"] == "within":
        return ""
    text = f"same direction, {row['size']} the paper's: " if row["verdict"] == "agrees" else ""
    return text + (
        f"the abstract names no benchmark; the largest gain in mean CLIPScore is over {best}, while "
        f"annealing's few steps score {gains['optimal_step']:+.1f}% against Optimal-step "
        "(notebooks 03 and 04)"
    )


def _single(numbers: pd.DataFrame) -> str:
    """The best single model's score and latency, from the judged table."""
    order = claims.values(numbers, "model_order")
    singles = {m: _lookup(numbers, "mean_utility", m) for m in order.index}
    singles = {m: u for m, u in singles.items() if math.isfinite(u)}
    if not singles:
        return ""
    best = max(singles, key=singles.get)
    score, latency = (_lookup(numbers, q, best) for q in ("mean_score", "mean_latency"))
    return (
        f"{best} alone scores {score:.2f} at {latency:.2f} s mean latency; no mix "
        "of models gains enough score on the large model to pay for its queue (notebook 03, section 6)"
    )


def _allocation_why(
    key: str, row: Mapping[str, Any], numbers: pd.DataFrame, slopes: str = "the assumed step slopes"
) -> str:
    other = key.split("_vs_")[1]
    notes = []
    if key == "time_vs_equal":
        spans = {
            m: claims.values(numbers, "time_consumption", m).to_dict()
            for m in ("annealing", "equal")
        }
        faster = [
            m
            for m, v in spans.get("equal", {}).items()
            if v < spans.get("annealing", {}).get(m, -math.inf)
        ]
        if faster:
            notes.append(
                "Equal-allocation is faster on "
                + ", ".join(
                    f"{m} ({spans['equal'][m]:.1f} s vs {spans['annealing'][m]:.1f} s)"
                    for m in faster
                )
                + ", as the paper concedes for the small model, so annealing saves time on the mean "
                "makespan only: the mean of per-model changes is "
                f"{_lookup(numbers, 'time_change_pct', 'annealing', 'equal', 'per_model_pct'):+.1f}% "
                "(notebook 04)"
            )
    if row["verdict"] == "agrees" and row["size"] == "within":
        return "; ".join(notes)
    steps = {m: _lookup(numbers, "mean_steps", m) for m in ("annealing", other)}
    text = f"same direction, {row['size']} the paper's: " if row["verdict"] == "agrees" else ""
    if other == "optimal_step":
        text += (
            f"annealing runs {steps['annealing']:.1f} steps on average against Optimal-step's "
            f"{steps['optimal_step']:.0f}: with {slopes} an extra step adds less score "
            "than lambda x its queueing time (notebook 04)"
        )
    else:
        d = _lookup(numbers, "utility_difference", "annealing", other, "mean")
        text += (
            f"Equal-allocation picks its best steps for its split too ({steps[other]:.1f} against "
            f"annealing's {steps['annealing']:.1f}), so only the split differs: {d:+.2f} points per "
            "slot (notebook 04)"
        )
    bounds = claims.annealing_bounds()
    text += (
        f"; the paper's four annealing numbers cannot all hold with one U = S - lambda T "
        f"(bounds {bounds['lower']:.3f} > {bounds['upper']:.3f}, notebook 06)"
    )
    return "; ".join([text, *notes])


def _lookup(
    numbers: pd.DataFrame, quantity: str, policy: str, versus: str = "", key: str = ""
) -> float:
    try:
        return claims.value(numbers, quantity, policy, versus, key)
    except ValueError:
        return math.nan


def interpretations(results_root: str | os.PathLike) -> pd.DataFrame:
    """One row per (scenario, claim, reading) from notebook 06's numbers (columns ``INTERPRETATION_COLUMNS``).

    Empty when notebook 06 has not run. See :func:`judge_readings`.
    """
    numbers = _numbers(results_root, NB06)
    frame = judge_readings(numbers) if numbers is not None else None
    if frame is None or frame.empty:
        return pd.DataFrame(columns=INTERPRETATION_COLUMNS)
    return frame[INTERPRETATION_COLUMNS]


def judge_readings(numbers: pd.DataFrame) -> pd.DataFrame:
    """Every claim judged for every (scenario, reading) of a table of numbers
    (:func:`aigc_lib.claims.measure_many`): :data:`INTERPRETATION_COLUMNS` and ``claim_id``.

    Under the default reading the time claims are judged under the per-model reading of "time
    consumption" too. ``paper_line`` quotes the paper's words that allow the reading (for the
    default readings: where the paper makes the claim); ``flag``: the oracle's measured rank
    (:func:`aigc_lib.claims.oracle_rank`), or, for a reading that changes a baseline, whether it
    weakens it, measured (:func:`baseline_flag`). Taught in
    ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    rows = []
    for (scenario, label), frame in numbers.groupby(["scenario", "reading"], sort=False):
        judged = claims.judge(frame)
        if label == "default":
            judged += [
                dict(r, reading="time_consumption=per_model_pct")
                for r in claims.judge(frame, time_reading=TIME_CONSUMPTION[1])
                if r["claim_id"] in TIME_CLAIMS
            ]
        default = numbers[(numbers["scenario"] == scenario) & (numbers["reading"] == "default")]
        changed = baseline_flag(frame, default) if caveat(label)[0] == "baseline changed" else ""
        for r in judged:
            reading = r.get("reading", label)
            names_direct = any(q.versus == "direct" for q in claims.RECORDS[r["claim_id"]].named)
            rows.append(
                {
                    **{k: r[k] for k in ("claim", "paper", "ours", "verdict", "low", "high")},
                    "side": r["side"],
                    "size": r["size"],
                    "interval": _interval_text(r),
                    "scenario": scenario,
                    "reading": reading,
                    "flag": changed if changed and names_direct else r["flag"],
                    "paper_line": _paper_line(reading, r["where"]),
                    "claim_id": r["claim_id"],
                }
            )
    frame = pd.DataFrame(rows, columns=[*INTERPRETATION_COLUMNS, "claim_id"])
    return frame.sort_values(["claim", "scenario", "reading"], kind="stable").reset_index(drop=True)


def baseline_flag(reading: pd.DataFrame, default: pd.DataFrame) -> str:
    """Whether a reading that changes Direct weakens it, measured: Direct's own mean utility
    under the reading against under the default reading (same scenario and workload).
    ``"baseline weakened (...)"`` where it is lower, else ``"baseline changed, not weakened (...)"``;
    the numbers are in the text. Rows flagged weakened stay out of :func:`agreement_shares`."""
    mine, base = (_lookup(f, "mean_utility", "direct") for f in (reading, default))
    numbers = f"Direct's mean utility {mine:.2f} against {base:.2f} under the default reading"
    if mine < base:
        return f"{WEAKENED} ({numbers})"
    return f"baseline changed, not weakened ({numbers})"


WEAKENED = "baseline weakened"
"""The start of the flag of a row whose reading lowers its baseline's own utility."""


def agreement_shares(frame: pd.DataFrame) -> pd.DataFrame:
    """How many claims agree, are not shown and disagree, per reading (rows) and scenario.

    ``frame``: :func:`judge_readings`' table (or any with ``scenario``, ``reading``, ``verdict``
    and ``flag``). Columns: (scenario, verdict) for each verdict of
    :data:`aigc_lib.claims.VERDICTS`, counts of claims; rows flagged "baseline weakened"
    (:func:`baseline_flag`) are left out: they measure a weakened baseline, not the method.
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    kept = frame[~frame["flag"].astype(str).str.startswith(WEAKENED)]
    counts = (
        kept.groupby(["reading", "scenario", "verdict"]).size().unstack(["scenario", "verdict"])
    )
    scenarios = list(dict.fromkeys(frame["scenario"]))
    columns = pd.MultiIndex.from_product(
        [scenarios, claims.VERDICTS], names=["scenario", "verdict"]
    )
    return counts.reindex(columns=columns).fillna(0).astype(int)


def flagged_readings(frame: pd.DataFrame) -> list[str]:
    """The readings of ``frame`` with rows flagged "baseline weakened" (those rows are left out
    of the shares)."""
    return sorted(set(frame.loc[frame["flag"].astype(str).str.startswith(WEAKENED), "reading"]))


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
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:+.2f}" if math.isfinite(v) else "nan"
    return str(v).replace("|", "/")


def flips(frame: pd.DataFrame) -> list[str]:
    """What changes with the reading: for each scenario and reading, the claims whose verdict
    differs from the default reading's, by name (``"claim: default -> this reading"``); rows
    flagged "baseline weakened" are left out. One line per (scenario, reading)."""
    kept = frame[~frame["flag"].astype(str).str.startswith(WEAKENED)]
    lines = []
    for (scenario, reading), rows in kept.groupby(["scenario", "reading"], sort=False):
        if reading == "default":
            continue
        base = kept[(kept["scenario"] == scenario) & (kept["reading"] == "default")]
        before = base.set_index("claim")["verdict"]
        changed = [
            f"{r.claim} ({before[r.claim]} -> {r.verdict})"
            for r in rows.itertuples()
            if r.claim in before.index and before[r.claim] != r.verdict
        ]
        out = len(frame[(frame["scenario"] == scenario) & (frame["reading"] == reading)]) - len(
            rows
        )
        note = f" ({out} claims left out: a weakened baseline)" if out else ""
        lines.append(
            f"- {scenario}, {reading}: " + ("; ".join(changed) or "no verdict changes") + note
        )
    return lines


def _interpretations_note(results_root: str | os.PathLike, frame: pd.DataFrame) -> str:
    counts = agreement_shares(frame)
    flagged = ", ".join(flagged_readings(frame)) or "none"
    found = sources(results_root)
    scenarios = list(dict.fromkeys(counts.columns.get_level_values("scenario")))
    lines = [
        f"Generated by {_command(found)} from notebook 06's numbers: "
        f"{_source_text(found, (NB06,))}.{_caveat(found, (NB06,))} One row per scenario, claim and "
        "reading, each reading changed alone from the default, on one workload per scenario. "
        "`verdict` judges the claim as the paper states it from 95% intervals: **agrees** (every "
        "quantity it names lies on the paper's side), **not shown** (some interval includes 0, or a "
        "quantity is missing), **disagrees** (some interval lies on the other side); `interval`, "
        "`low` and `high` give the named quantity that decides it, `side` the paper's sign, "
        "`size` the paper's figure against ours (within, below, above). Do not edit by hand.",
        "",
        "What flips between readings (each reading against the default, same scenario):",
        "",
        *flips(frame),
        "",
        "Flags: " + "; ".join(f"**{k}**: {v}" for k, v in FLAGS.items()) + ".",
        "",
        "Claims that agree / are not shown / disagree, per reading (rows flagged 'baseline "
        f"weakened' left out, under: {flagged}):",
        "",
        "| reading | " + " | ".join(scenarios) + " |",
        "|---|" + "---|" * len(scenarios),
    ]
    lines += [
        f"| {reading} | "
        + " | ".join(" / ".join(str(row[(s, v)]) for v in claims.VERDICTS) for s in scenarios)
        + " |"
        for reading, row in counts.iterrows()
    ]
    nb06 = _read(results_root, NB06) or {}
    even = nb06.get("rho_break_even", {})
    if even:
        lines += [
            "",
            "The oracle (information=prompt, rho = 1) against a predictor of correlation rho: "
            "Probabilistic breaks even with Direct "
            + ", ".join(
                _break_even_text(s, v, nb06.get("rho_sweep", {}).get(s)) for s, v in even.items()
            )
            + " (rho sweep, notebook 06).",
        ]
    return "\n".join(lines)


def _break_even_text(scenario: str, value: float, sweep: Any) -> str:
    lowest = min((r["rho"] for r in sweep), default=math.nan) if sweep else math.nan
    if not math.isfinite(value):
        return f"at no rho of the sweep in '{scenario}'"
    if value == lowest:
        return f"already at rho = {value:g} (it gains at every rho) in '{scenario}'"
    return f"at rho = {value:.2f} in '{scenario}'"


def write(results_root: str | os.PathLike) -> list[Path]:
    """Write ``paper_vs_ours`` and ``interpretations`` (.md and .csv) under ``results_root``.

    Returns the Markdown files written; a table with no numbers behind it yet is not written.
    """
    written = []
    main = table(results_root)
    if not main.empty:
        write_csv(Path(results_root) / "paper_vs_ours.csv", main)
        found = sources(results_root)
        nb06 = _read(results_root, NB06) or {}
        note = (
            f"Generated by {_command(found)} from notebook 06's numbers for its first scenario "
            f"(notebook 03 runs the same workload): {_source_text(found, (NB03, NB06), True)}, "
            f"{nb06.get('n_slots', '?')} slots, seed "
            f"{nb06.get('seed', '?')}, the workload of `interpretations.md` and notebook 03, and the "
            "default reading of every open point (docs/SPEC.md section 2b), with each single model "
            "as a baseline. `verdict` from 95% intervals: **agrees** (every quantity the claim "
            "names on the paper's side), **not shown** (some interval includes 0, or a quantity is "
            "missing), **disagrees** (some interval on the other side); `interval` (and `low`, "
            "`high`): the named quantity that decides it; `side`: the paper's sign; `size`: the "
            "paper's figure against ours. Other readings and scenarios: `interpretations.md`. Do "
            "not edit by hand." + _caveat(found, (NB03, NB06))
        )
        title = "The paper's claims beside ours"
        profiles = {found[nb]["profile"] for nb in (NB03, NB06) if nb in found} - {None}
        if profiles:
            title += " (profile " + ", ".join(sorted(profiles)) + ")"
        written.append(
            atomic_write_text(
                Path(results_root) / "paper_vs_ours.md", to_markdown(main, title, note)
            )
        )
    readings = interpretations(results_root)
    if not readings.empty:
        write_csv(Path(results_root) / "interpretations.csv", readings)
        written.append(
            atomic_write_text(
                Path(results_root) / "interpretations.md",
                to_markdown(
                    readings,
                    "Each claim under each reading",
                    _interpretations_note(results_root, readings),
                ),
            )
        )
    return written
