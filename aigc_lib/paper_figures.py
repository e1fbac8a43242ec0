"""The numbers behind the paper's assignment figures (Fig. 4 and Fig. 5), from the simulated scenario.

* :func:`true_scores`: every prompt's ground-truth CLIPScore on every model (SPEC section 3).
* :func:`reclassify_by_medium_score`: Fig. 4, prompts re-classified into score levels by their
  medium-model score, and what the small and large models do to each level.
* :func:`summarize_runs`: Fig. 5(a), mean CLIPScore per model and mean utility of each policy.
* :func:`slot_gain_pct`: Fig. 5(b), the per-slot utility gain of one policy over another.

Pure numpy / pandas, no torch. Units: CLIPScore points, seconds, TFLOP, TFLOPS. Taught in
``notebooks/03_probabilistic_assignment.ipynb``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from aigc_lib.scenario import Scenario, true_score

__all__ = ["LEVEL_NAMES", "level_names", "true_scores", "reclassify_by_medium_score", "summarize_runs",
           "slot_gain_pct"]

LEVEL_NAMES = ("low", "mid", "high")
"""Names of the three score levels cut by theta_1 < theta_2 (three models)."""


def level_names(n_levels: int) -> tuple[str, ...]:
    """Names of the score levels: ``low, mid, high`` for three, else ``level 0`` ... ``level M-1``."""
    if n_levels == len(LEVEL_NAMES):
        return LEVEL_NAMES
    return tuple(f"level {i}" for i in range(n_levels))


def true_scores(scenario: Scenario, group: Any, deviation: Any, steps: Any,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Ground-truth CLIPScore of each prompt on every model, CLIPScore points, shape (n, M) (SPEC section 3).

    :func:`aigc_lib.scenario.true_score` of x_n = mu_k + e_n on every model, plus image noise.
    ``group``: group index k of each prompt, shape (n,); ``deviation``: its own deviation e_n in
    CLIPScore points, shape (n,); ``steps``: denoising steps z_m, one per model (a whole number is
    used for every model with a step choice; a model with one allowed count uses that count).
    ``rng``: draws the per-image noise N(0, noise_sd^2); ``None`` gives the noise-free mean.

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    _check_scenario(scenario)
    group = _indices(group, len(scenario.groups), "group")
    deviation = np.atleast_1d(np.asarray(deviation, dtype=float))
    if deviation.shape != group.shape or not np.all(np.isfinite(deviation)):
        raise ValueError(f"deviation: expected {group.size} finite numbers (one per prompt), got shape {deviation.shape}")
    z = _steps(scenario, steps)
    models = np.arange(len(scenario.models))
    scores = true_score(scenario, (scenario.mu[group] + deviation)[:, None], models[None, :], z[None, :])
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator or None, got {type(rng).__name__}")
        scores = scores + scenario.noise_sd * rng.standard_normal(scores.shape)
    return scores


def reclassify_by_medium_score(scenario: Scenario, n_prompts: int, rng: np.random.Generator, steps: Any,
                               prompts: pd.DataFrame | None = None, reference: int | None = None) -> pd.DataFrame:
    """Fig. 4: prompts re-classified by their medium-model CLIPScore, and their mean score on every model.

    Draws ``n_prompts`` prompts (groups from ``scenario.shares``, or uniformly from the rows of
    ``prompts``, a table with a ``group`` column of the scenario's group names), each with its own
    deviation e_n ~ N(0, sigma_k^2), and scores each on every model with :func:`true_scores` at
    ``steps`` (with image noise). The score on the ``reference`` model (default: the middle model,
    the one whose axis the thresholds cut) puts each prompt in a level: low < theta_1 <= mid <
    theta_2 <= high. Returns one row per (level, model): ``level``, ``model``, ``n_prompts`` in the
    level, ``share`` of all prompts, ``mean_score`` (CLIPScore points; NaN for an empty level),
    ``gain_vs_reference`` (mean score minus the reference model's, same prompts), ``steps`` and
    ``seconds_per_image``, the time of one image with the whole GPU (seconds, ``ModelSpec.image_seconds``).

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    _check_scenario(scenario)
    if isinstance(n_prompts, (bool, np.bool_)) or not isinstance(n_prompts, (int, np.integer)) or n_prompts < 1:
        raise ValueError(f"n_prompts: expected a whole number >= 1, got {n_prompts!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    n_models = len(scenario.models)
    ref = n_models // 2 if reference is None else reference
    if isinstance(ref, (bool, np.bool_)) or not isinstance(ref, (int, np.integer)) or not 0 <= ref < n_models:
        raise ValueError(f"reference: expected a model index in [0, {n_models - 1}], got {reference!r}")
    z = _steps(scenario, steps)
    group = _draw_groups(scenario, n_prompts, rng, prompts)
    deviation = scenario.sigma[group] * rng.standard_normal(n_prompts)
    scores = true_scores(scenario, group, deviation, z, rng)
    level = np.searchsorted(np.asarray(scenario.thresholds, dtype=float), scores[:, ref], side="right")
    names = level_names(n_models)
    seconds = np.array([m.image_seconds(s) for m, s in zip(scenario.models, z)])
    rows = []
    for lv, lv_name in enumerate(names):
        members = level == lv
        count = int(members.sum())
        for m, spec in enumerate(scenario.models):
            mean = float(scores[members, m].mean()) if count else np.nan
            gain = float((scores[members, m] - scores[members, ref]).mean()) if count else np.nan
            rows.append({"level": lv_name, "model": spec.name, "n_prompts": count, "share": count / n_prompts,
                         "mean_score": mean, "gain_vs_reference": gain, "steps": int(z[m]),
                         "seconds_per_image": float(seconds[m])})
    frame = pd.DataFrame(rows)
    frame["level"] = pd.Categorical(frame["level"], categories=names, ordered=True)
    frame["model"] = pd.Categorical(frame["model"], categories=scenario.model_names, ordered=True)
    return frame


def summarize_runs(runs: Mapping[str, Any]) -> pd.DataFrame:
    """Fig. 5(a): one row per policy of ``runs`` ({policy: SimulationResult}), the same workload each.

    Columns: the mean CLIPScore of the tasks each model served (one column per model, NaN if it
    served none), ``mean_score`` over all tasks (CLIPScore points), ``mean_utility`` = mean over
    slots of the slot's mean task utility (eq. 4, CLIPScore points), ``mean_latency`` (seconds), and
    ``n_<model>`` the tasks each model served.

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty mapping {policy: SimulationResult}")
    rows = {}
    for policy, run in runs.items():
        tasks, slots = getattr(run, "tasks", None), getattr(run, "slots", None)
        if not isinstance(tasks, pd.DataFrame) or not isinstance(slots, pd.DataFrame):
            raise ValueError(f"runs: {policy!r} is not a SimulationResult (needs .tasks and .slots DataFrames)")
        if not isinstance(tasks["model"].dtype, pd.CategoricalDtype):
            raise ValueError(f"runs: {policy!r} has no categorical 'model' column (as simulation.simulate makes)")
        models = list(tasks["model"].cat.categories)
        by_model = tasks.groupby("model", observed=False)["score"]
        row = by_model.mean().reindex(models).to_dict()
        row.update(mean_score=float(tasks["score"].mean()), mean_utility=float(slots["utility"].mean()),
                   mean_latency=float(tasks["latency"].mean()))
        row.update({f"n_{m}": int(n) for m, n in by_model.size().reindex(models, fill_value=0).items()})
        rows[policy] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "policy"
    return frame


def slot_gain_pct(reference: Any, other: Any) -> np.ndarray:
    """Fig. 5(b): per-slot utility gain of ``reference`` over ``other`` in percent, 100 (U_ref - U_other) / |U_other|.

    ``reference``, ``other``: slot utilities (eq. 4, CLIPScore points) of two policies on the same
    slots, same shape, finite, ``other`` never 0. Returns an array of that shape.

    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    ref = np.asarray(reference, dtype=float)
    oth = np.asarray(other, dtype=float)
    if ref.ndim != 1 or ref.size == 0 or not np.all(np.isfinite(ref)):
        raise ValueError(f"reference: expected a non-empty 1-D array of finite slot utilities, got shape {ref.shape}")
    if oth.shape != ref.shape or not np.all(np.isfinite(oth)):
        raise ValueError(f"other: expected {ref.size} finite slot utilities (like reference), got shape {oth.shape}")
    if np.any(oth == 0):
        raise ValueError("other: a slot utility of 0 has no relative gain; expected non-zero values")
    return 100.0 * (ref - oth) / np.abs(oth)


# --- helpers ------------------------------------------------------------------------------------

def _check_scenario(scenario: Any) -> None:
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario: expected an aigc_lib.scenario.Scenario, got {type(scenario).__name__}")


def _indices(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1 or arr.dtype.kind not in "iu" or np.any(arr < 0) or np.any(arr >= n):
        raise ValueError(f"{name}: expected a 1-D array of integer indices in [0, {n - 1}]")
    return arr.astype(np.int64)


def _steps(scenario: Scenario, steps: Any) -> np.ndarray:
    """Steps per model: a whole number for every model with a choice, or one per model; fixed models keep theirs."""
    n_models = len(scenario.models)
    arr = np.atleast_1d(np.asarray(steps, dtype=float))
    if arr.size == 1:
        arr = np.array([m.steps[0] if len(m.steps) == 1 else arr[0] for m in scenario.models], dtype=float)
    if arr.shape != (n_models,) or not np.all(np.isfinite(arr)) or np.any(arr < 1) or np.any(arr != np.round(arr)):
        raise ValueError(f"steps: expected a whole number >= 1 or {n_models} of them (one per model), got {steps!r}")
    return arr


def _draw_groups(scenario: Scenario, n: int, rng: np.random.Generator, prompts: pd.DataFrame | None) -> np.ndarray:
    if prompts is None:
        shares = scenario.shares
        return rng.choice(len(shares), size=n, p=shares / shares.sum())
    if not isinstance(prompts, pd.DataFrame) or "group" not in prompts.columns or len(prompts) == 0:
        raise ValueError("prompts: expected a non-empty DataFrame with a 'group' column")
    index = {name: i for i, name in enumerate(scenario.group_names)}
    labels = prompts["group"].astype(object)
    unknown = sorted({str(x) for x in labels[~labels.isin(index)]})
    if unknown:
        raise ValueError(f"prompts: unknown group labels {unknown}; expected names among {scenario.group_names}")
    table = labels.map(index).to_numpy(dtype=np.int64)
    return table[rng.integers(0, table.size, size=n)]
