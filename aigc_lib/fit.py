"""Fits of step-sweep measurements, and the profile that puts them into the scenario.

From the rows of a step sweep (one row per image: ``prompt_id``, ``group``, ``model``, ``steps``,
``seed``, ``seconds``, ``clip_score``, ``status``; only ``status == "ok"`` rows are used) this
module estimates, in CLIPScore points and seconds:

* the Gaussian prior N(mu_k, sigma_k^2) of each prompt group on the medium model (SPEC eq. 9-10),
  with a normality test and QQ data;
* the score curve shat_m(z) = a_m ln z + b_m of each model (SPEC eq. 11), with R^2, and the ground
  truth's offset d_m and gain beta_m relative to the medium model (SPEC section 3);
* the time per image, seconds = overhead_m + z x per_step_m, with R^2;
* the per-image score noise (seed to seed) and, with a FLOP table, the effective TFLOPS C.

:func:`write_profile` writes them as a YAML profile that
``aigc_lib.scenario.load_scenario(profile=...)`` applies over the assumed parameters.

Pure numpy / scipy / pandas: no torch. Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``
(fits) and ``notebooks/01_prompts_and_clipscore_distributions.ipynb`` (group priors, QQ plots).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from aigc_lib._io import atomic_write_text
from aigc_lib.results import staged_path

ROW_COLUMNS = ("prompt_id", "group", "model", "steps", "seed", "seconds", "clip_score", "status")
STATUSES = ("ok", "failed")
MEDIUM = "sd15"


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------


def ok_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The usable rows of a sweep: ``status == "ok"``; checks the columns and values first.

    Raises ``ValueError`` naming ``rows`` when a column is missing, a status is not ok/failed, or
    a step count is not a positive whole number.
    """
    if not isinstance(rows, pd.DataFrame):
        raise ValueError(f"rows: expected a pandas DataFrame, got {type(rows).__name__}")
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"rows: missing columns {missing}; expected {list(ROW_COLUMNS)}")
    bad_status = sorted(set(rows["status"].astype(str)) - set(STATUSES))
    if bad_status:
        raise ValueError(f"rows: status must be one of {STATUSES}, got {bad_status}")
    ok = rows[rows["status"] == "ok"].copy()
    steps = pd.to_numeric(ok["steps"], errors="coerce")
    if steps.isna().any() or (steps < 1).any() or (steps != np.round(steps)).any():
        raise ValueError("rows: steps of ok rows must be positive whole numbers")
    ok["steps"] = steps.astype(int)
    ok["clip_score"] = pd.to_numeric(ok["clip_score"], errors="coerce")
    ok["seconds"] = pd.to_numeric(ok["seconds"], errors="coerce")
    return ok.reset_index(drop=True)


def _scored(rows: pd.DataFrame) -> pd.DataFrame:
    ok = ok_rows(rows)
    return ok[np.isfinite(ok["clip_score"])]


def _models_in(rows: pd.DataFrame, model: str, argument: str = "model") -> pd.DataFrame:
    sub = rows[rows["model"] == model]
    if sub.empty:
        raise ValueError(
            f"{argument}: no ok rows with a CLIPScore for model {model!r}; models present: "
            f"{sorted(rows['model'].unique())}"
        )
    return sub


# ---------------------------------------------------------------------------------------------
# Gaussian priors per group (SPEC eq. 9-10)
# ---------------------------------------------------------------------------------------------


def qq_points(scores: Any) -> pd.DataFrame:
    """Normal QQ data of ``scores`` (CLIPScore points): ``theoretical`` standard-normal quantiles at
    (i - 0.5)/n, ``sample`` the sorted scores, ``fitted`` = mean + sd x theoretical (the reference line).

    Points near the line mean the Gaussian prior of SPEC eq. 9-10 fits. Taught in notebook 01.
    """
    values = _finite_array(scores, "scores")
    n = values.size
    theoretical = stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    sd = float(values.std(ddof=1)) if n > 1 else 0.0
    return pd.DataFrame(
        {
            "theoretical": theoretical,
            "sample": np.sort(values),
            "fitted": float(values.mean()) + sd * theoretical,
        }
    )


def normality_test(scores: Any) -> dict[str, Any]:
    """Test of normality: Shapiro-Wilk for 3 to 5000 values, D'Agostino-Pearson above; NaN below 3.

    Returns ``{"test", "statistic", "p_value"}``; a small p-value rejects the Gaussian prior.
    """
    values = _finite_array(scores, "scores")
    if values.size < 3 or np.ptp(values) == 0:
        return {"test": "none", "statistic": math.nan, "p_value": math.nan}
    if values.size <= 5000:
        result = stats.shapiro(values)
        return {
            "test": "shapiro",
            "statistic": float(result.statistic),
            "p_value": float(result.pvalue),
        }
    result = stats.normaltest(values)
    return {
        "test": "normaltest",
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
    }


def noise_sd(rows: pd.DataFrame) -> float:
    """Per-image CLIPScore noise (points): pooled seed-to-seed sd within (model, prompt, steps) cells.

    NaN when no cell has two seeds. The ``noise_sd`` of the scenario (SPEC section 3).
    """
    scored = _scored(rows)
    cells = scored.groupby(["model", "prompt_id", "steps"])["clip_score"]
    dof = float((cells.count() - 1).clip(lower=0).sum())
    if dof <= 0:
        return math.nan
    ss = float(((scored["clip_score"] - cells.transform("mean")) ** 2).sum())
    return math.sqrt(ss / dof)


def fit_groups(
    rows: pd.DataFrame, model: str = MEDIUM, zref: float | None = None, noise: float | None = None
) -> pd.DataFrame:
    """Gaussian prior N(mu_k, sigma_k^2) of each group's CLIPScore on ``model`` (SPEC eq. 9-10).

    Uses ``model``'s rows at ``zref`` steps when swept, else at its largest swept steps (column
    ``steps`` says which). Each prompt counts once (its scores averaged over seeds): ``mu`` is the
    mean of the prompt means; ``sigma`` the prompt-to-prompt sd with the seed noise removed,
    sqrt(var(prompt means) - noise^2 x mean(1/seeds)), where ``noise`` defaults to
    :func:`noise_sd` of all rows (if NaN, single seeds: ``sigma`` includes the noise). Also
    ``sd_images`` (sd of all images), a normality test of the prompt means, and counts.
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    scored = _scored(rows)
    sub = _models_in(scored, model)
    swept = sorted(sub["steps"].unique())
    steps = int(zref) if zref is not None and zref in swept else int(swept[-1])
    sub = sub[sub["steps"] == steps]
    noise = noise_sd(rows) if noise is None else float(noise)
    out = []
    for group, g in sub.groupby("group", sort=False):
        per_prompt = g.groupby("prompt_id")["clip_score"].agg(["mean", "count"])
        means = per_prompt["mean"].to_numpy(float)
        n = means.size
        between = float(np.var(means, ddof=1)) if n > 1 else math.nan
        if math.isfinite(noise) and math.isfinite(between):
            between -= noise**2 * float(np.mean(1.0 / per_prompt["count"].to_numpy(float)))
        test = normality_test(means)
        out.append(
            {
                "group": group,
                "model": model,
                "steps": steps,
                "n_prompts": n,
                "n_images": int(len(g)),
                "mu": float(means.mean()),
                "sigma": math.sqrt(between) if between > 0 else (0.0 if n > 1 else math.nan),
                "sd_images": float(g["clip_score"].std(ddof=1)) if len(g) > 1 else math.nan,
                "normality_test": test["test"],
                "statistic": test["statistic"],
                "p_value": test["p_value"],
            }
        )
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------
# Score curves shat_m(z) = a_m ln z + b_m (SPEC eq. 11) and the ground truth's d_m, beta_m
# ---------------------------------------------------------------------------------------------


def fit_line(x: Any, y: Any) -> dict[str, float]:
    """Least squares y = slope x + intercept, with R^2 (NaN slope when x takes one value)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"x: expected two 1-d arrays of the same non-zero length, got {x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x: values must be finite")
    if np.ptp(x) == 0:
        return {"slope": math.nan, "intercept": math.nan, "r2": math.nan, "mean": float(y.mean())}
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2, "mean": float(y.mean())}


def fit_score_curves(
    rows: pd.DataFrame, zref: Mapping[str, float], medium: str = MEDIUM, noise: float | None = None
) -> pd.DataFrame:
    """Per model: shat_m(z) = a_m ln z + b_m (SPEC eq. 11) by least squares, R^2, and SPEC section 3's d_m, beta_m.

    The line is fitted to every image's score; ``r2`` is how much of the variation of the mean
    score per step count the curve explains (``r2_images``: of the per-image scores, which is low
    because prompts differ far more than step counts do).

    ``zref``: reference steps per model (from the scenario). ``score_at_zref`` = b_m + a_m ln zref_m
    (CLIPScore points; for a model swept at one step count, its mean score there, when that is
    zref). ``offset`` d_m = score_at_zref - Sbar, Sbar = the prompt-weighted mean medium-model score
    at its zref (0 for the medium model by definition; the sweep should score the same prompts on
    every model). ``beta`` = cov(y_p, x_p) / (var(x_p) - noise^2 mean(1/n_p)) over prompts scored
    on both, x_p and y_p the prompt's medium- and model-m scores moved to zref along the fitted
    curves (1 for the medium model; without repeated seeds no noise correction, so beta is biased
    low). Columns: model, n_rows, n_prompts, n_steps, slope, intercept, r2, r2_images, zref,
    score_at_zref, offset, beta, n_shared.
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    scored = _scored(rows)
    if not isinstance(zref, Mapping):
        raise ValueError(
            f"zref: expected a mapping model -> reference steps, got {type(zref).__name__}"
        )
    _models_in(scored, medium, "medium")
    noise = noise_sd(rows) if noise is None else float(noise)
    fits: dict[str, dict[str, Any]] = {}
    adjusted: dict[str, pd.DataFrame] = {}
    for model, sub in scored.groupby("model", sort=False):
        fits[model], adjusted[model] = _fit_one_curve(model, sub, zref)
    _add_offsets_and_betas(fits, adjusted, medium, noise)
    return pd.DataFrame(list(fits.values()))


def _fit_one_curve(
    model: str, sub: pd.DataFrame, zref: Mapping[str, float]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One model's curve (:func:`fit_score_curves`): its fit row without offset and beta, and its
    per-prompt scores moved to zref along the curve (``mean``, ``count`` by ``prompt_id``)."""
    if model not in zref:
        raise ValueError(f"zref: no reference steps for model {model!r}; got {sorted(zref)}")
    z0 = float(zref[model])
    if not z0 > 0:
        raise ValueError(f"zref: reference steps of {model!r} must be > 0, got {zref[model]!r}")
    line = fit_line(np.log(sub["steps"].to_numpy(float)), sub["clip_score"].to_numpy(float))
    steps = sorted(sub["steps"].unique())
    if math.isfinite(line["slope"]):
        at_zref = line["intercept"] + line["slope"] * math.log(z0)
        shift = line["slope"] * (np.log(sub["steps"].to_numpy(float)) - math.log(z0))
    else:  # one step count: the curve is known at that point only
        at_zref = line["mean"] if steps == [z0] else math.nan
        shift = np.zeros(len(sub)) if steps == [z0] else np.full(len(sub), math.nan)
    per_prompt = (
        sub.assign(y=sub["clip_score"].to_numpy(float) - shift)
        .groupby("prompt_id")["y"]
        .agg(["mean", "count"])
    )
    means = sub.groupby("steps")["clip_score"].mean()
    r2 = _r2(
        means.to_numpy(float),
        line["intercept"] + line["slope"] * np.log(means.index.to_numpy(float)),
    )
    fit = {
        "model": model,
        "n_rows": int(len(sub)),
        "n_prompts": int(sub["prompt_id"].nunique()),
        "n_steps": len(steps),
        "slope": line["slope"],
        "intercept": line["intercept"],
        "r2": r2,
        "r2_images": line["r2"],
        "zref": z0,
        "score_at_zref": at_zref,
    }
    return fit, per_prompt


def _add_offsets_and_betas(
    fits: dict[str, dict[str, Any]],
    adjusted: Mapping[str, pd.DataFrame],
    medium: str,
    noise: float,
) -> None:
    """SPEC section 3's d_m (against Sbar, the medium model's mean at zref) and beta_m, added to
    each fit row in place (:func:`fit_score_curves`)."""
    x = adjusted[medium]
    s_bar = float(x["mean"].mean())
    for model, fit in fits.items():
        if model == medium:
            fit.update(offset=0.0, beta=1.0, n_shared=fit["n_prompts"])
            continue
        fit["offset"] = fit["score_at_zref"] - s_bar
        shared = x.merge(
            adjusted[model], left_index=True, right_index=True, suffixes=("_x", "_y")
        ).dropna()
        fit["n_shared"] = int(len(shared))
        fit["beta"] = _beta(shared, noise)


def _r2(observed: np.ndarray, fitted: np.ndarray) -> float:
    """Coefficient of determination of ``fitted`` for ``observed`` (NaN with fewer than 3 points)."""
    if observed.size < 3 or not np.isfinite(fitted).all():
        return math.nan
    total = float(((observed - observed.mean()) ** 2).sum())
    return 1.0 - float(((observed - fitted) ** 2).sum()) / total if total > 0 else math.nan


def _beta(shared: pd.DataFrame, noise: float) -> float:
    if len(shared) < 3:
        return math.nan
    xs, ys = shared["mean_x"].to_numpy(float), shared["mean_y"].to_numpy(float)
    var_x = float(np.var(xs, ddof=1))
    if math.isfinite(noise):
        var_x -= noise**2 * float(np.mean(1.0 / shared["count_x"].to_numpy(float)))
    if not var_x > 0:
        return math.nan
    return float(np.cov(xs, ys, ddof=1)[0, 1]) / var_x


# ---------------------------------------------------------------------------------------------
# Time per image and effective compute
# ---------------------------------------------------------------------------------------------


def fit_times(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model: seconds per image = overhead_s + z x per_step_s by least squares, with R^2.

    The overhead is a time, so it is constrained to be >= 0: where the free line crosses zero
    below (timing noise on a small, fast model), the line through the origin is fitted instead
    (per_step_s = sum(z s) / sum(z^2), overhead_s = 0). ``mean_s`` is the mean seconds per image;
    for a model swept at one step count (SDXL-Turbo) per_step_s and overhead_s cannot be
    separated and are NaN. Columns: model, n_rows, n_steps, per_step_s, overhead_s, r2, mean_s.
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    ok = ok_rows(rows)
    ok = ok[np.isfinite(ok["seconds"])]
    out = []
    for model, sub in ok.groupby("model", sort=False):
        z, seconds = sub["steps"].to_numpy(float), sub["seconds"].to_numpy(float)
        line = fit_line(z, seconds)
        if line["intercept"] < 0:  # the constrained least squares optimum lies on overhead = 0
            slope = float((z * seconds).sum() / (z * z).sum())
            total = float(((seconds - seconds.mean()) ** 2).sum())
            residual = float(((seconds - slope * z) ** 2).sum())
            line = {**line, "slope": slope, "intercept": 0.0}
            line["r2"] = 1.0 - residual / total if total > 0 else 1.0
        out.append(
            {
                "model": model,
                "n_rows": int(len(sub)),
                "n_steps": int(sub["steps"].nunique()),
                "per_step_s": line["slope"],
                "overhead_s": line["intercept"],
                "r2": line["r2"],
                "mean_s": line["mean"],
            }
        )
    return pd.DataFrame(
        out, columns=["model", "n_rows", "n_steps", "per_step_s", "overhead_s", "r2", "mean_s"]
    )


def effective_tflops(times: pd.DataFrame, flops: pd.DataFrame) -> pd.DataFrame:
    """Effective compute per model: TFLOPS = F_m (TFLOP per step, the ``unet_step`` row of ``flops``) / per_step_s.

    Models without a per-step time (one step count swept) or without a FLOP row are left out.
    The median over models is the measured C (``capacity_tflops``, SPEC section 2).
    """
    needed = {
        "times": (times, ("model", "per_step_s")),
        "flops": (flops, ("model", "component", "tflop")),
    }
    for name, (frame, cols) in needed.items():
        if not isinstance(frame, pd.DataFrame) or any(c not in frame.columns for c in cols):
            raise ValueError(f"{name}: expected a DataFrame with columns {list(cols)}")
    per_step = flops[flops["component"] == "unet_step"].set_index("model")["tflop"]
    out = []
    for _, row in times.iterrows():
        if (
            row["model"] in per_step.index
            and math.isfinite(row["per_step_s"])
            and row["per_step_s"] > 0
        ):
            tflop = float(per_step[row["model"]])
            out.append(
                {
                    "model": row["model"],
                    "tflop_per_step": tflop,
                    "per_step_s": float(row["per_step_s"]),
                    "tflops": tflop / float(row["per_step_s"]),
                    "n_rows": int(row.get("n_rows", 0)),
                }
            )
    return pd.DataFrame(out, columns=["model", "tflop_per_step", "per_step_s", "tflops", "n_rows"])


def fit_sweep(
    rows: pd.DataFrame,
    zref: Mapping[str, float],
    medium: str = MEDIUM,
    flops: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """All fits of one sweep: ``groups``, ``scores``, ``times``, ``effective`` (DataFrames or None),
    ``noise_sd`` (points) and ``capacity_tflops`` (median effective TFLOPS, NaN without ``flops``).

    The keyword arguments of :func:`write_profile` are among its keys.
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    noise = noise_sd(rows)
    times = fit_times(rows)
    effective = effective_tflops(times, flops) if flops is not None else None
    capacity = (
        float(effective["tflops"].median())
        if effective is not None and len(effective)
        else math.nan
    )
    if medium not in zref:
        raise ValueError(f"zref: no reference steps for the medium model {medium!r}")
    return {
        "groups": fit_groups(rows, medium, zref=zref[medium], noise=noise),
        "scores": fit_score_curves(rows, zref, medium=medium, noise=noise),
        "times": times,
        "effective": effective,
        "noise_sd": noise,
        "capacity_tflops": capacity,
        "n_rows": int(len(ok_rows(rows))),
        "real_weights": bool(rows["real_weights"].astype(bool).all())
        if "real_weights" in rows
        else True,
    }


# ---------------------------------------------------------------------------------------------
# The profile
# ---------------------------------------------------------------------------------------------


def profile_overrides(
    groups: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    capacity_tflops: float | None = None,
    noise_sd: float | None = None,
    *,
    source_note: str,
    medium: str = MEDIUM,
    effective: pd.DataFrame | None = None,
    times: pd.DataFrame | None = None,
    n_rows: int | None = None,
) -> dict[str, dict[str, Any]]:
    """The ``overrides`` mapping of a profile: dotted scenario key -> {value, source: measured, reason}.

    Writes only what the fits estimate: ``groups.<G>.mu`` / ``.sigma`` (sigma > 0 only);
    ``models.<m>.score_slope`` (clipped at 0, as the scenario requires); for models other than
    ``medium``, ``models.<m>.score_offset`` and ``.score_beta`` (beta > 0 only); from ``times``
    (:func:`fit_times`), ``models.<m>.step_seconds`` and ``.fixed_seconds`` where the sweep
    separates them (a per-step time > 0 and an overhead >= 0); ``noise_sd`` and
    ``capacity_tflops`` when finite. ``source_note`` names the sweep file; each reason adds the rows
    used. ``n_rows`` (from :func:`fit_sweep`) is accepted and not written.
    """
    if not isinstance(source_note, str) or not source_note.strip() or "\n" in source_note:
        raise ValueError(
            "source_note: expected a one-line description of the sweep (e.g. its file name)"
        )
    note = source_note.strip()
    out: dict[str, dict[str, Any]] = {}

    def put(key: str, value: float, reason: str) -> None:
        out[key] = {
            "value": round(float(value), 6),
            "source": "measured",
            "reason": f"{note}: {reason}",
        }

    if groups is not None:
        _group_overrides(groups, put)
    if scores is not None:
        _score_overrides(scores, medium, put)
    if times is not None:
        _time_overrides(times, put)
    _scalar_overrides(noise_sd, capacity_tflops, effective, put)
    return out


_Put = Callable[[str, float, str], None]
"""``put(key, value, reason)``: writes one override of :func:`profile_overrides`."""


def _group_overrides(groups: pd.DataFrame, put: _Put) -> None:
    """``groups.<G>.mu`` and ``.sigma`` (sigma > 0 only) of :func:`profile_overrides`."""
    for _, g in groups.iterrows():
        where = (
            f"{g['model']} CLIPScore at {g['steps']} steps, {g['n_prompts']} prompts, "
            f"{g['n_images']} ok rows"
        )
        if math.isfinite(g["mu"]):
            put(f"groups.{g['group']}.mu", g["mu"], f"mean of the prompt means, {where}")
        if math.isfinite(g["sigma"]) and g["sigma"] > 0:
            put(
                f"groups.{g['group']}.sigma",
                g["sigma"],
                f"prompt-to-prompt sd, seed noise removed, {where}",
            )


def _score_overrides(scores: pd.DataFrame, medium: str, put: _Put) -> None:
    """``models.<m>.score_slope`` (clipped at 0), and for models other than ``medium``
    ``.score_offset`` and ``.score_beta`` (beta > 0 only), of :func:`profile_overrides`."""
    for _, s in scores.iterrows():
        rows_used = f"{s['n_rows']} ok rows over {s['n_steps']} step counts"
        if math.isfinite(s["slope"]):
            clipped = " (fitted value was negative; clipped at 0)" if s["slope"] < 0 else ""
            put(
                f"models.{s['model']}.score_slope",
                max(s["slope"], 0.0),
                f"a in shat(z) = a ln z + b, least squares, R^2 {s['r2']:.3f}, "
                f"{rows_used}{clipped}",
            )
        if s["model"] == medium:
            continue
        if math.isfinite(s["offset"]):
            put(
                f"models.{s['model']}.score_offset",
                s["offset"],
                f"score at zref {s['zref']:g} minus the medium model's prompt-weighted mean, "
                f"{rows_used}",
            )
        if math.isfinite(s["beta"]) and s["beta"] > 0:
            put(
                f"models.{s['model']}.score_beta",
                s["beta"],
                f"cov with the medium model's prompt scores / their noise-free variance, "
                f"{s['n_shared']} shared prompts",
            )


def _time_overrides(times: pd.DataFrame, put: _Put) -> None:
    """``models.<m>.step_seconds`` and ``.fixed_seconds`` of :func:`profile_overrides`, where the
    sweep separates them (a per-step time > 0 and an overhead >= 0)."""
    for _, t in times.iterrows():
        if (
            math.isfinite(t["per_step_s"])
            and t["per_step_s"] > 0
            and math.isfinite(t["overhead_s"])
            and t["overhead_s"] >= 0
        ):
            fit = (
                f"seconds = overhead + z x per_step by least squares, R^2 {t['r2']:.3f}, "
                f"{t['n_rows']} rows"
            )
            put(f"models.{t['model']}.step_seconds", t["per_step_s"], f"per_step of {fit}")
            put(f"models.{t['model']}.fixed_seconds", t["overhead_s"], f"overhead of {fit}")


def _scalar_overrides(
    noise_sd: float | None,
    capacity_tflops: float | None,
    effective: pd.DataFrame | None,
    put: _Put,
) -> None:
    """``noise_sd`` and ``capacity_tflops`` of :func:`profile_overrides`, when finite."""
    if noise_sd is not None and math.isfinite(noise_sd) and noise_sd >= 0:
        put(
            "noise_sd",
            noise_sd,
            "pooled seed-to-seed sd of CLIPScore within (model, prompt, steps) cells",
        )
    if capacity_tflops is not None and math.isfinite(capacity_tflops) and capacity_tflops > 0:
        detail = ""
        if effective is not None and len(effective):
            detail = "; " + ", ".join(f"{r.model} {r.tflops:.1f}" for r in effective.itertuples())
        put(
            "capacity_tflops",
            capacity_tflops,
            f"median over models of TFLOP per step / fitted seconds per step{detail}",
        )


def write_profile(
    path: str | os.PathLike,
    groups: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    capacity_tflops: float | None = None,
    noise_sd: float | None = None,
    *,
    source_note: str,
    medium: str = MEDIUM,
    effective: pd.DataFrame | None = None,
    times: pd.DataFrame | None = None,
    n_rows: int | None = None,
    real_weights: bool = True,
) -> Path:
    """Write the fits as a YAML profile ``{overrides: {key: {value, source, reason}}}`` (atomically).

    ``real_weights=False`` (fits of random-weight models, e.g. the tiny CPU pipeline) marks the
    profile ``real_weights: false``; :func:`aigc_lib.scenario.load_scenario` then refuses it unless
    told ``allow_random_weights=True``, so such numbers never pass for measurements of real models.

    ``aigc_lib.scenario.load_scenario(profile=path)`` then uses the measured numbers in place of the
    assumed ones. Takes every key of :func:`fit_sweep` (``n_rows`` is not written),
    so ``write_profile(path, **fit_sweep(...), source_note=...)`` works. Raises ``ValueError`` when
    nothing can be written. Returns the path written: inside a Jupyter kernel, for a ``path`` in a
    notebook's results folder, its staged copy, published by the notebook's last cell
    (:mod:`aigc_lib.results`).
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    overrides = profile_overrides(
        groups,
        scores,
        capacity_tflops,
        noise_sd,
        source_note=source_note,
        medium=medium,
        effective=effective,
        times=times,
    )
    if not overrides:
        raise ValueError("groups: the fits hold no finite estimate to write")
    header = (
        "# Measured parameters, written by aigc_lib.fit.write_profile; apply with\n"
        "# aigc_lib.scenario.load_scenario(profile=<this file>).\n"
    )
    body = {"real_weights": bool(real_weights), "overrides": overrides}
    text = header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=200)
    return atomic_write_text(staged_path(path), text)


def latency_overrides(
    latency: pd.DataFrame, *, source_note: str, medium: str = MEDIUM, include_tiny: bool = False
) -> dict[str, dict[str, Any]]:
    """Profile overrides from a GPU latency table (``benchmarks/gpu_latency.py``): the latency of a GPU.

    Per model with ``unet_step``, ``text_encode`` and ``vae_decode`` rows: ``models.<m>.step_seconds``
    = the UNet step's seconds, ``models.<m>.fixed_seconds`` = text encoding + VAE decode seconds; and
    ``capacity_tflops`` = the ``medium`` model's counted TFLOP per step / its seconds (the GPU in
    effective TFLOPS, as the scenario defines C). Rows of tiny look-alike networks (``tiny`` true)
    time other networks than the real ones and are refused unless ``include_tiny`` (dry runs).
    """
    needed = ("gpu", "tiny", "model", "component", "seconds", "tflop")
    if not isinstance(latency, pd.DataFrame) or any(c not in latency.columns for c in needed):
        raise ValueError(f"latency: expected a gpu_latency.py table with columns {list(needed)}")
    if not isinstance(source_note, str) or not source_note.strip() or "\n" in source_note:
        raise ValueError(
            "source_note: expected a one-line description of the table (e.g. its file name)"
        )
    tiny = latency["tiny"].astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
    if tiny.any() and not include_tiny:
        raise ValueError(
            "latency: rows of tiny look-alike networks time other networks than the real "
            "models; pass include_tiny=True only for a dry run"
        )
    out: dict[str, dict[str, Any]] = {}
    for model, rows in latency.groupby("model", sort=False):
        part = rows.drop_duplicates("component", keep="last").set_index("component")
        if not {"unet_step", "text_encode", "vae_decode"} <= set(part.index):
            continue
        gpu = str(part["gpu"].iloc[0])
        step = float(part.loc["unet_step", "seconds"])
        fixed = float(part.loc["text_encode", "seconds"] + part.loc["vae_decode", "seconds"])
        if not (math.isfinite(step) and step > 0 and math.isfinite(fixed) and fixed >= 0):
            continue
        note = f"{source_note.strip()} ({gpu})"
        out[f"models.{model}.step_seconds"] = {
            "value": round(step, 6),
            "source": "measured",
            "reason": f"{note}: median UNet step",
        }
        out[f"models.{model}.fixed_seconds"] = {
            "value": round(fixed, 6),
            "source": "measured",
            "reason": f"{note}: median text encoding + median VAE decode",
        }
        if model == medium:
            tflops = float(part.loc["unet_step", "tflop"]) / step
            out["capacity_tflops"] = {
                "value": round(tflops, 4),
                "source": "measured",
                "reason": f"{note}: {model}'s counted TFLOP per step / its seconds per step",
            }
    if not out:
        raise ValueError("latency: no model has unet_step, text_encode and vae_decode rows")
    return out


def write_latency_profile(
    path: str | os.PathLike, latency: pd.DataFrame, *, source_note: str, include_tiny: bool = False
) -> Path:
    """Write :func:`latency_overrides` as a YAML profile for ``load_scenario(profile=...)`` (atomically).

    A table of tiny networks (``include_tiny=True``) is marked ``real_weights: false``, so
    :func:`aigc_lib.scenario.load_scenario` refuses it unless told ``allow_random_weights=True``.
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """
    overrides = latency_overrides(latency, source_note=source_note, include_tiny=include_tiny)
    tiny = latency["tiny"].astype(str).str.strip().str.lower().isin(["true", "1", "yes"]).any()
    header = (
        "# Measured GPU latency, written by aigc_lib.fit.write_latency_profile; apply with\n"
        "# aigc_lib.scenario.load_scenario(profile=<this file>).\n"
    )
    body = {"real_weights": not bool(tiny), "overrides": overrides}
    return atomic_write_text(path, header + yaml.safe_dump(body, sort_keys=False, width=200))


# ---------------------------------------------------------------------------------------------
# Synthetic sweeps (known parameters, for round-trip checks and teaching)
# ---------------------------------------------------------------------------------------------


def synthetic_sweep(
    rng: np.random.Generator,
    groups: Mapping[str, tuple[float, float]],
    models: Mapping[str, Mapping[str, Any]],
    prompts_per_group: int = 20,
    seeds: int = 2,
    noise: float = 1.0,
    time_noise: float = 0.0,
) -> pd.DataFrame:
    """Sweep rows drawn from SPEC section 3's ground truth with known parameters.

    ``groups``: name -> (mu, sigma) in CLIPScore points; ``models``: name -> {``steps`` (list),
    ``slope``, ``offset``, ``beta``, ``zref``, ``per_step_s``, ``overhead_s``}. Each prompt of group
    k draws e_n ~ N(0, sigma_k^2); an image of model m at z steps scores Sbar + d_m + beta_m (mu_k +
    e_n - Sbar) + a_m ln(z / zref_m) + N(0, noise^2), Sbar the prompt-weighted mean of mu_k; it takes
    overhead_s + z per_step_s + N(0, time_noise^2) seconds. Every prompt runs on every model.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if not groups or not models:
        raise ValueError("groups: expected at least one group and one model")
    for name, value in (("prompts_per_group", prompts_per_group), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive whole number, got {value!r}")
    s_bar = float(np.mean([mu for mu, _ in groups.values()]))  # equal prompts per group
    prompts = []
    for group, (mu, sigma) in groups.items():
        for e in rng.normal(0.0, sigma, prompts_per_group):
            prompts.append((f"p{len(prompts):05d}", group, mu + e))
    rows = []
    for name, m in models.items():
        for prompt_id, group, score in prompts:
            for z in m["steps"]:
                mean = (
                    s_bar
                    + m["offset"]
                    + m["beta"] * (score - s_bar)
                    + m["slope"] * math.log(z / m["zref"])
                )
                for seed in range(seeds):
                    jitter = rng.normal(0.0, time_noise) if time_noise > 0 else 0.0
                    seconds = m["overhead_s"] + z * m["per_step_s"] + jitter
                    rows.append(
                        (
                            prompt_id,
                            group,
                            name,
                            int(z),
                            seed,
                            seconds,
                            mean + rng.normal(0.0, noise),
                            "ok",
                        )
                    )
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def _finite_array(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers") from None
    if array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"{name}: expected a non-empty array of finite numbers")
    return array
