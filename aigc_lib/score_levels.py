"""Score levels: the paper's Fig. 4 experiment, prompts re-classified by their medium-model score.

:func:`reclassify_by_medium_score` scores many prompts on every model with the ground truth
(:func:`aigc_lib.scenario.true_score`), puts each in a level by its medium-model score and the
thresholds (low < theta_1 <= mid < theta_2 <= high), and reports what the small and large models
do to each level: the observation the paper's assignment rests on.

Pure numpy / pandas, no torch. Units: CLIPScore points, seconds. Taught in
``notebooks/03_probabilistic_assignment.ipynb``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aigc_lib import validate
from aigc_lib.scenario import Scenario, true_score

__all__ = ["LEVEL_NAMES", "level_names", "reclassify_by_medium_score"]

LEVEL_NAMES = ("low", "mid", "high")
"""Names of the three score levels cut by theta_1 < theta_2 (three models)."""


def level_names(n_levels: int) -> tuple[str, ...]:
    """Names of the score levels: ``low, mid, high`` for three, else ``level 0`` ... ``level M-1``."""
    if n_levels == len(LEVEL_NAMES):
        return LEVEL_NAMES
    return tuple(f"level {i}" for i in range(n_levels))


def reclassify_by_medium_score(
    scenario: Scenario,
    n_prompts: int,
    rng: np.random.Generator,
    steps: Any,
    prompts: pd.DataFrame | None = None,
    reference: int | None = None,
) -> pd.DataFrame:
    """Fig. 4: prompts re-classified by their medium-model CLIPScore, and their mean score on every model.

    Draws ``n_prompts`` prompts (groups from ``scenario.shares``, or uniformly from the rows of
    ``prompts``, a table with a ``group`` column of the scenario's group names), each with its own
    deviation e_n ~ N(0, sigma_k^2), and scores each on every model with :func:`aigc_lib.scenario.true_score` at
    ``steps`` (with image noise). The score on the ``reference`` model (default: the middle model,
    the one whose axis the thresholds cut) puts each prompt in a level: low < theta_1 <= mid <
    theta_2 <= high. Returns one row per (level, model): ``level``, ``model``, ``n_prompts`` in the
    level, ``share`` of all prompts, ``mean_score`` (CLIPScore points; NaN for an empty level),
    ``gain_vs_reference`` (mean score minus the reference model's, same prompts), ``steps`` and
    ``seconds_per_image``, the time of one image with the whole GPU (seconds, ``ModelSpec.image_seconds``).

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    validate.whole(n_prompts, "n_prompts", low=1)
    validate.generator(rng)
    ref = _reference_model(reference, len(scenario.models))
    z = _steps(scenario, steps)
    group = _draw_groups(scenario, n_prompts, rng, prompts)
    deviation = scenario.sigma[group] * rng.standard_normal(n_prompts)
    models = np.arange(len(scenario.models))
    scores = true_score(
        scenario, (scenario.mu[group] + deviation)[:, None], models[None, :], z[None, :]
    )
    scores = scores + scenario.noise_sd * rng.standard_normal(scores.shape)  # per-image noise
    level = np.searchsorted(
        np.asarray(scenario.thresholds, dtype=float), scores[:, ref], side="right"
    )
    return _level_table(scenario, scores, level, ref, z)


def _reference_model(reference: int | None, n_models: int) -> int:
    """The reference model's index (:func:`reclassify_by_medium_score`; default the middle one)."""
    ref = n_models // 2 if reference is None else reference
    if (
        isinstance(ref, (bool, np.bool_))
        or not isinstance(ref, (int, np.integer))
        or not 0 <= ref < n_models
    ):
        raise ValueError(
            f"reference: expected a model index in [0, {n_models - 1}], got {reference!r}"
        )
    return ref


def _level_table(
    scenario: Scenario, scores: np.ndarray, level: np.ndarray, ref: int, z: np.ndarray
) -> pd.DataFrame:
    """One row per (level, model) of :func:`reclassify_by_medium_score` from the prompts' scores
    (n_prompts, n_models) and levels."""
    n_prompts = len(level)
    names = level_names(len(scenario.models))
    seconds = np.array([m.image_seconds(s) for m, s in zip(scenario.models, z)])
    rows = []
    for lv, lv_name in enumerate(names):
        members = level == lv
        count = int(members.sum())
        for m, spec in enumerate(scenario.models):
            mean = float(scores[members, m].mean()) if count else np.nan
            gain = float((scores[members, m] - scores[members, ref]).mean()) if count else np.nan
            rows.append(
                {
                    "level": lv_name,
                    "model": spec.name,
                    "n_prompts": count,
                    "share": count / n_prompts,
                    "mean_score": mean,
                    "gain_vs_reference": gain,
                    "steps": int(z[m]),
                    "seconds_per_image": float(seconds[m]),
                }
            )
    frame = pd.DataFrame(rows)
    frame["level"] = pd.Categorical(frame["level"], categories=names, ordered=True)
    frame["model"] = pd.Categorical(frame["model"], categories=scenario.model_names, ordered=True)
    return frame


# --- helpers ------------------------------------------------------------------------------------


def _steps(scenario: Scenario, steps: Any) -> np.ndarray:
    """Steps per model: a whole number for every model with a choice, or one per model; fixed models keep theirs."""
    n_models = len(scenario.models)
    arr = np.atleast_1d(np.asarray(steps, dtype=float))
    if arr.size == 1:
        arr = np.array(
            [m.steps[0] if len(m.steps) == 1 else arr[0] for m in scenario.models], dtype=float
        )
    if (
        arr.shape != (n_models,)
        or not np.all(np.isfinite(arr))
        or np.any(arr < 1)
        or np.any(arr != np.round(arr))
    ):
        raise ValueError(
            f"steps: expected a whole number >= 1 or {n_models} of them (one per model), got {steps!r}"
        )
    return arr


def _draw_groups(
    scenario: Scenario, n: int, rng: np.random.Generator, prompts: pd.DataFrame | None
) -> np.ndarray:
    if prompts is None:
        shares = scenario.shares
        return rng.choice(len(shares), size=n, p=shares / shares.sum())
    if not isinstance(prompts, pd.DataFrame) or "group" not in prompts.columns or len(prompts) == 0:
        raise ValueError("prompts: expected a non-empty DataFrame with a 'group' column")
    index = {name: i for i, name in enumerate(scenario.group_names)}
    labels = prompts["group"].astype(object)
    unknown = sorted({str(x) for x in labels[~labels.isin(index)]})
    if unknown:
        raise ValueError(
            f"prompts: unknown group labels {unknown}; expected names among {scenario.group_names}"
        )
    table = labels.map(index).to_numpy(dtype=np.int64)
    return table[rng.integers(0, table.size, size=n)]
