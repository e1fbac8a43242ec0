"""Hand-made numbers in the shape of aigc_lib.claims.measure, for the judge's tests."""

import pandas as pd

from aigc_lib import claims

MODELS = ("sdxl-turbo", "sd15", "sdxl")


def numbers(
    sdxl=1.0,
    turbo=-0.5,
    sd15=0.1,
    mean_gain=1.0,
    time=-30.0,
    per_model=-20.0,
    u_alloc=10.0,
    above=19,
    singles=(29.0, 29.5, 28.0),
    quality=(1.0, 2.0, 0.0, -2.0),
    reading="default",
):
    """Hand-made numbers in the shape of claims.measure (one scenario, one reading)."""
    rows = []

    def add(part, quantity, policy, versus, key, value, unit="points"):
        rows.append((part, quantity, policy, versus, str(key), unit, float(value)))

    for i, m in enumerate(MODELS):
        add("meta", "model_order", "", "", m, i)
    for o in ("direct", "random"):
        for m, v in zip(MODELS, (turbo, sd15, sdxl)):
            add("assignment", "score_gain", "probabilistic", o, m, v)
        stats = {"mean": mean_gain, "low": mean_gain - 0.5, "high": mean_gain + 0.5, "max": 3.0}
        stats.update(share_won=0.6, null_max=0.4)
        for k, v in stats.items():
            add("assignment", "slot_gain_pct", "probabilistic", o, k, v)
        for k, v in {"above": above, "of": 19, "ks": 0.05}.items():
            add("assignment", "cdf", "probabilistic", o, k, v)
    for p, s in (("probabilistic", 31.0), ("direct", 30.5), ("random", 30.0)):
        add("assignment", "mean_score", p, "", "", s)
        add("assignment", "mean_utility", p, "", "", 30.0)
    for m, u in zip(MODELS, singles):
        add("assignment", "mean_utility", m, "", "", u)
    for (p, o), q in zip(
        (
            ("probabilistic", "direct"),
            ("probabilistic", "random"),
            ("annealing", "equal"),
            ("annealing", "optimal_step"),
        ),
        quality,
    ):
        add("assignment" if p == "probabilistic" else "allocation", "quality_gain_pct", p, o, "", q)
    for o in ("optimal_step", "equal"):
        add("allocation", "time_change_pct", "annealing", o, "makespan", time)
        add("allocation", "time_change_pct", "annealing", o, "per_model_pct", per_model)
        add("allocation", "utility_change_pct", "annealing", o, "", u_alloc)
        for k, v in {"mean": 1.0, "low": 0.5, "high": 1.5}.items():
            add("allocation", "utility_difference", "annealing", o, k, v)
    for method, s, t in (
        ("annealing", 31.9, 5.0),
        ("optimal_step", 32.0, 8.0),
        ("equal", 31.0, 6.0),
    ):
        add("allocation", "mean_score", method, "", "", s)
        for m in MODELS:
            add("allocation", "score_by_model", method, "", m, s)
            add("allocation", "time_consumption", method, "", m, t)
    for w, steps, score, span in ((1.0, 10, 31, 5), (0.01, 40, 33, 30)):
        add("lambda", "mean_steps", "annealing", "", f"{w:g}", steps)
        add("lambda", "mean_score", "annealing", "", f"{w:g}", score)
        add("lambda", "mean_time_consumption", "annealing", "", f"{w:g}", span)
    frame = pd.DataFrame(rows, columns=list(claims.COLUMNS))
    frame.insert(0, "reading", reading)
    return frame
