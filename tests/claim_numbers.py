"""Hand-made numbers in the shape of aigc_lib.claims.measure, for the judge's tests.

Every quantity a claim names gets a hand-made 95% interval on the paper's side (value 1.0, interval
0.5 to 1.5, turned by the quantity's sign); ``override`` replaces any of them, keyed
``(quantity, policy, versus, key)``, by ``(value, low, high)``.
"""

import math

import pandas as pd

from aigc_lib import claims

MODELS = ("sdxl-turbo", "sd15", "sdxl")


def _add(rows, part, quantity, policy, versus, key, value, low=math.nan, high=math.nan):
    rows.append((part, quantity, policy, versus, str(key), "u", float(value), low, high))


def numbers(
    override=None, reading="default", singles=(29.0, 29.5, 28.0), drop=(), direct_utility=29.8
):
    """Hand-made numbers (one scenario, one reading); ``drop``: parts left out; ``singles`` and
    ``direct_utility``: mean utilities of each model alone and of Direct."""
    override = dict(override or {})
    rows, seen = [], set()
    for record in claims.RECORDS.values():
        for time in claims.TIME_READINGS:
            for q in claims.named(record, MODELS, time):
                k = (q.quantity, q.policy, q.versus, q.key)
                if k in seen:
                    continue
                seen.add(k)
                v, lo, hi = override.pop(k, (q.sign * 1.0, *sorted((q.sign * 0.5, q.sign * 1.5))))
                part = "lambda" if q.quantity == "lambda_change" else "assignment"
                part = "allocation" if q.policy == "annealing" and part != "lambda" else part
                _add(rows, part, *k, v, lo, hi)
    assert not override, f"override names no claim's quantity: {override}"
    for i, m in enumerate(MODELS):
        _add(rows, "meta", "model_order", "", "", m, i)
    for p, u in (
        ("probabilistic", 30.0),
        ("direct", direct_utility),
        ("random", 29.6),
        *zip(MODELS, singles),
    ):
        _add(rows, "assignment", "mean_utility", p, "", "", u)
    for method, t in (("annealing", 5.0), ("optimal_step", 8.0), ("equal", 6.0)):
        for m in MODELS:
            _add(rows, "allocation", "time_consumption", method, "", m, t)
    frame = pd.DataFrame(rows, columns=list(claims.COLUMNS))
    frame = frame[~frame["part"].isin(drop)].reset_index(drop=True)
    frame.insert(0, "reading", reading)
    return frame
