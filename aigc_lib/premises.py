"""Which prompts gain from the larger model: the premise behind every verdict, swept across camps.

The ground truth (:func:`aigc_lib.scenario.true_score`, docs/SPEC.md section 3) has two named
parts that decide who gains from a larger model: each model's category-level slope beta_m and a
prompt-and-model-specific residual r_nm (spread tau, correlation rho_r between models). The
paper's premise is that easy prompts gain most (beta_large > beta_small, the default); DiffServe's
is that a prompt whose light image is poor is the one to send to the heavy model (hard prompts gain
most, or a residual a discriminator can see). This module:

* moves a scenario between the camps (:func:`with_premise`: the slopes scaled about the medium
  model's, 1 today, 0 "independent", -1 mirrored: hard prompts gain most; the residual's spread
  and correlation);
* runs the paper's assignments and each model alone on one workload with the residual added to
  every task (:func:`assignment_runs`), and a short serving run of a cascade, a router and each
  model alone (:func:`serving_runs`), and turns paired differences into three-way verdicts
  (:func:`verdict`: agrees / not shown / disagrees from 95% intervals);
* sweeps both camps (:func:`sweep`), tests a perfect "worst light image first" discriminator
  against random escalation (:func:`escalation_against_random`), and repeats the robustness study
  of :func:`aigc_lib.claims.plausible_scenario` under each camp's premise (:func:`camp_robustness`);
* reads the public figures of ``data/public_premises.yaml`` (:func:`load_public`,
  :func:`category_slope`, :func:`confidence_summary`).

Units: CLIPScore points, seconds, percent. Taught in ``notebooks/08_which_prompts_gain.ipynb``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from aigc_lib import arrivals, claims, metrics, peers, serving, simulation, validate
from aigc_lib._io import load_yaml
from aigc_lib.scenario import DATA_DIR, Scenario, premises, residuals

__all__ = [
    "VERDICTS",
    "CAMPS",
    "ASSIGNMENT_CLAIMS",
    "SERVING_CLAIMS",
    "PUBLIC_PATH",
    "with_premise",
    "large_minus_small",
    "verdict",
    "batch_interval",
    "assignment_runs",
    "serving_runs",
    "assignment_claims",
    "serving_claims",
    "sweep",
    "shared_sweep",
    "escalation_against_random",
    "mirrored_scenario",
    "camp_robustness",
    "load_public",
    "category_slope",
    "public_band",
    "confidence_summary",
    "light_gain_correlation",
]

VERDICTS = ("agrees", "not shown", "disagrees")
"""The three verdicts, from the 95% interval of a paired difference (the claim's side > 0)."""

CAMPS = ("easy prompts gain most", "hard prompts gain most")
"""The two premises: the paper's (slopes as drawn) and DiffServe's (the same draw, mirrored)."""

ASSIGNMENT_CLAIMS = ("probabilistic beats direct", "a mix beats the best single model")
"""The paper's claims checked on the slot model (:func:`assignment_claims`)."""

SERVING_CLAIMS = (
    "cascade beats the best single model",
    "router beats the best single model",
    "cascade beats router",
)
"""The claims checked on a short serving run (:func:`serving_claims`)."""

PUBLIC_PATH = DATA_DIR / "public_premises.yaml"
"""Quoted public figures with their sources (Ascend tables, DiffServe's confidences)."""

_RESIDUAL_STREAM = 27  # residuals draw from default_rng([seed, 27]): their own stream


# --- the premise as parameters -------------------------------------------------------------------


def with_premise(
    scenario: Scenario,
    slope_scale: float = 1.0,
    residual_corr: float | None = None,
    residual_sd: float | None = None,
) -> Scenario:
    """The scenario moved between the camps: slopes scaled, residual set.

    beta_m becomes beta_ref + ``slope_scale`` x (beta_m - beta_ref), beta_ref the medium model's:
    1 keeps today's slopes (easy prompts gain most), 0 gives every model the medium model's slope
    (who gains does not depend on the prompt's score), -1 mirrors them (hard prompts gain most:
    DiffServe's premise). ``residual_corr``, ``residual_sd``: the residual's correlation and
    spread (None keeps the scenario's). The result declares no premises (it may break P2).
    Raises ``ValueError`` naming the argument when a slope would not stay > 0.
    Taught in ``notebooks/08_which_prompts_gain.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    scale = validate.number(slope_scale, "slope_scale")
    ref = scenario.models[scenario.reference_model].score_beta
    betas = [ref + scale * (m.score_beta - ref) for m in scenario.models]
    if min(betas) <= 0:
        raise ValueError(
            f"slope_scale: {scale:g} makes a model's slope {min(betas):.3f} <= 0; "
            "expected a scale that keeps every slope > 0"
        )
    models = tuple(dataclasses.replace(m, score_beta=b) for m, b in zip(scenario.models, betas))
    corr = scenario.residual_corr if residual_corr is None else residual_corr
    sd = scenario.residual_sd if residual_sd is None else residual_sd
    corr = validate.number(corr, "residual_corr", low=0.0, high=1.0)
    sd = validate.number(sd, "residual_sd", low=0.0)
    return scenario.replace(models=models, residual_corr=corr, residual_sd=sd, premises=())


def large_minus_small(scenario: Scenario) -> float:
    """beta_large - beta_small: > 0 easy prompts gain most from the larger model, < 0 hard ones."""
    validate.instance(scenario, Scenario, "scenario")
    return float(scenario.models[-1].score_beta - scenario.models[0].score_beta)


def verdict(low: float, high: float) -> str:
    """One of :data:`VERDICTS` from a 95% interval of a difference whose claimed side is > 0.

    ``"agrees"``: the whole interval above 0; ``"disagrees"``: the whole interval below 0; else
    (it holds 0, or a bound is NaN) ``"not shown"``.
    """
    lo, hi = float(low), float(high)
    if math.isnan(lo) or math.isnan(hi):
        return "not shown"
    if lo > hi:
        raise ValueError(f"low: expected low <= high, got {lo} > {hi}")
    return "agrees" if lo > 0 else "disagrees" if hi < 0 else "not shown"


def _interval(diff: np.ndarray) -> tuple[float, float, float]:
    """Mean of paired differences and its 95% interval (:func:`aigc_lib.metrics.interval`)."""
    row = metrics.interval(np.asarray(diff, dtype=float)).iloc[0]
    return float(row["mean"]), float(row["low"]), float(row["high"])


def batch_interval(diff: np.ndarray, n_batches: int) -> tuple[float, float, float]:
    """Mean of ``diff`` (e.g. per-request utilities or their paired differences, in request order)
    and its 95% t-interval over ``n_batches`` consecutive batch means: queues correlate
    neighbouring requests, batch means are close to independent."""
    validate.whole(n_batches, "n_batches", low=2)
    batches = np.array([b.mean() for b in np.array_split(np.asarray(diff, float), n_batches)])
    mean = float(np.mean(diff))
    half = stats.t.ppf(0.975, n_batches - 1) * batches.std(ddof=1) / math.sqrt(n_batches)
    return mean, mean - float(half), mean + float(half)


# --- the slot model with residuals ---------------------------------------------------------------


def assignment_runs(
    scenario: Scenario, n_slots: int, seed: int, allocation: str = "exact"
) -> dict[str, pd.DataFrame]:
    """Probabilistic, Direct and each model alone on one workload, residual-free: the tasks.

    One frame per policy (``slot``, ``prompt_id``, model index ``m``, ``utility``) from
    :func:`aigc_lib.simulation.simulate` (``allocation``, default the exact optimum). The
    residual does not change what any of these policies decides (none sees it), so a sweep runs
    them once per slope and adds residuals with :func:`assignment_claims`. The step behind
    :func:`sweep` and :func:`camp_robustness` (notebook 08).
    """
    validate.instance(scenario, Scenario, "scenario")
    out = {}
    for policy in ("probabilistic", "direct", *scenario.model_names):
        tasks = simulation.simulate(scenario, n_slots, seed, policy, allocation).tasks
        out[policy] = pd.DataFrame(
            {
                "slot": tasks["slot"].to_numpy(),
                "prompt_id": tasks["prompt_id"].to_numpy(),
                "m": tasks["model"].cat.codes.to_numpy().astype(np.int64),
                "utility": tasks["utility"].to_numpy(),
            }
        )
    return out


def _slot_utilities(tasks: pd.DataFrame, residual: np.ndarray) -> np.ndarray:
    """Mean task utility per slot (eq. 4) with each task's residual r[prompt, model] added."""
    u = tasks["utility"].to_numpy() + residual[tasks["prompt_id"].to_numpy(), tasks["m"].to_numpy()]
    return pd.Series(u).groupby(tasks["slot"].to_numpy()).mean().to_numpy()


def assignment_claims(scenario: Scenario, runs: dict[str, pd.DataFrame], seed: int) -> pd.DataFrame:
    """The paper's two claims (:data:`ASSIGNMENT_CLAIMS`) with the scenario's residual added.

    Residuals (:func:`aigc_lib.scenario.residuals`, stream ``[seed, 27]``) are drawn per prompt and
    added to each task on its model. ``probabilistic beats direct``: per-slot gain in percent,
    100 (U_prob - U_direct) / |U_direct|. ``a mix beats the best single model``: the better of
    Probabilistic and Direct (by mean) against the best model alone (by mean), per-slot percent;
    both picks are made on the same slots (a small optimism for each side). One row per claim:
    ``claim``, ``mean``, ``low``, ``high`` (percent), ``verdict``, ``versus`` (what was compared).
    """
    n = 1 + max(int(t["prompt_id"].max()) for t in runs.values())
    r = residuals(scenario, n, np.random.default_rng([seed, _RESIDUAL_STREAM]))
    u = {p: _slot_utilities(t, r) for p, t in runs.items()}
    mix = max(("probabilistic", "direct"), key=lambda p: u[p].mean())
    single = max(scenario.model_names, key=lambda p: u[p].mean())
    rows = []
    for claim, a, b in (
        (ASSIGNMENT_CLAIMS[0], "probabilistic", "direct"),
        (ASSIGNMENT_CLAIMS[1], mix, single),
    ):
        mean, low, high = _interval(metrics.slot_gain_pct(u[a], u[b]))
        rows.append(
            {"claim": claim, "mean": mean, "low": low, "high": high, "versus": f"{a} vs {b}"}
        )
    frame = pd.DataFrame(rows)
    frame["verdict"] = [verdict(lo, hi) for lo, hi in zip(frame["low"], frame["high"])]
    return frame


# --- a short serving run with residuals ----------------------------------------------------------


def _serving_policies(scenario: Scenario, escalation_share: float, route_share: float) -> dict:
    """Each model alone, a router (light -> large) and DiffServe's cascade, at serving's defaults."""
    names = scenario.model_names
    policies = {name: peers.fixed_policy(scenario, name) for name in names}
    route_at = serving.route_threshold(scenario, route_share)
    routing = serving.Routing("predictor", light=0, heavy=len(names) - 1, route_at=route_at)
    policies["router"] = serving.Policy("router", routing)
    escalation = serving.Escalation(escalation_share, light=0, heavy=None)
    policies["cascade"] = serving.Policy("cascade", serving.Routing(names[0]), escalation)
    return policies


def _with_light_residual(
    requests: serving.Requests, light_residual: np.ndarray
) -> serving.Requests:
    """The requests with each first image's noise carrying the light model's residual."""
    draws = requests.draws.copy()
    draws["image_noise"] = draws["image_noise"].to_numpy() + light_residual
    return serving.Requests(arrival=requests.arrival, draws=draws, seed=requests.seed)


def serving_runs(
    scenario: Scenario,
    n_requests: int,
    load: float,
    seed: int,
    escalation_share: float = 0.25,
    route_share: float = 0.25,
) -> dict[str, np.ndarray]:
    """Per-request utility (points, request order) of a short serving run, residuals included.

    ``n_requests`` Poisson arrivals at offered ``load`` (:func:`aigc_lib.serving.arrival_rate`),
    the same prompts for every policy. Policies (untuned, :func:`aigc_lib.serving.serve` at its
    defaults): each model alone; ``router`` (HADIS's rule: the ``route_share`` of prompts with the
    highest predicted score go to the largest model, the rest to the smallest); ``cascade``
    (DiffServe's: every prompt on the smallest model, a discriminator escalates
    ``escalation_share`` to the largest). The residual r[n, m] (:func:`aigc_lib.scenario.residuals`)
    is part of each delivered image's score; the cascade's discriminator sees the light image's
    (its residual travels in the light image's noise), so a poor light residual can trigger an
    escalation. Taught in ``notebooks/08_which_prompts_gain.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    n = validate.whole(n_requests, "n_requests", low=20)
    arrival = arrivals.poisson(serving.arrival_rate(scenario, load), n, seed)
    plain = serving.requests(scenario, arrival, seed)
    r = residuals(scenario, n, np.random.default_rng([seed, _RESIDUAL_STREAM]))
    rows = np.arange(n)
    out = {}
    for name, policy in _serving_policies(scenario, escalation_share, route_share).items():
        cascade = policy.escalation is not None
        req = _with_light_residual(plain, r[:, 0]) if cascade else plain
        tasks = serving.serve(scenario, req, policy).tasks
        model = tasks["model"].cat.codes.to_numpy().astype(np.int64)
        utility = tasks["utility"].to_numpy() + r[rows, model]
        if cascade:  # the light residual already sits in the kept light images' noise
            utility -= np.where(tasks["escalated"].to_numpy(), 0.0, r[:, 0])
        out[name] = utility
    return out


def serving_claims(
    scenario: Scenario, utilities: dict[str, np.ndarray], n_batches: int = 10
) -> pd.DataFrame:
    """The serving claims (:data:`SERVING_CLAIMS`) from :func:`serving_runs`: paired per request.

    Differences of per-request utility (CLIPScore points), mean with a 95% interval over
    ``n_batches`` consecutive batches of requests. The best single model is the one with the
    highest mean utility on this run. Columns as :func:`assignment_claims` (points, not percent).
    """
    validate.whole(n_batches, "n_batches", low=2)
    single = max(scenario.model_names, key=lambda p: utilities[p].mean())
    pairs = (("cascade", single), ("router", single), ("cascade", "router"))
    rows = []
    for claim, (a, b) in zip(SERVING_CLAIMS, pairs):
        mean, low, high = batch_interval(utilities[a] - utilities[b], n_batches)
        rows.append(
            {"claim": claim, "mean": mean, "low": low, "high": high, "versus": f"{a} vs {b}"}
        )
    frame = pd.DataFrame(rows)
    frame["verdict"] = [verdict(lo, hi) for lo, hi in zip(frame["low"], frame["high"])]
    return frame


# --- the sweep -----------------------------------------------------------------------------------


def sweep(
    scenario: Scenario,
    slope_scales: Sequence[float],
    residual_corrs: Sequence[float],
    residual_sd: float,
    n_slots: int,
    n_requests: int,
    load: float,
    seed: int,
    share: float = 0.25,
) -> pd.DataFrame:
    """Every claim's verdict at every point of the premise grid (slope scale x residual corr).

    At each ``slope_scale`` (:func:`with_premise`) the slot-model runs (:func:`assignment_runs`,
    ``n_slots``) are made once and the serving runs (:func:`serving_runs`, ``n_requests`` at
    ``load``; the cascade escalates and the router routes ``share``) once per residual correlation; each ``residual_corr`` of ``residual_corrs`` with
    spread ``residual_sd`` then gives :func:`assignment_claims` and :func:`serving_claims` on the
    same random numbers. One row per point and claim: ``slope_scale``, ``large_minus_small``
    (beta_large - beta_small), ``residual_corr``, ``claim``, ``mean``, ``low``, ``high`` (percent
    for the slot model's claims, points for the serving claims), ``unit``, ``versus``,
    ``verdict``. Taught in ``notebooks/08_which_prompts_gain.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    scales = [validate.number(s, "slope_scales") for s in slope_scales]
    corrs = [validate.number(c, "residual_corrs", low=0.0, high=1.0) for c in residual_corrs]
    if not scales or not corrs:
        raise ValueError("slope_scales, residual_corrs: expected at least one value each")
    validate.number(residual_sd, "residual_sd", low=0.0)
    frames = []
    for scale in scales:
        base = with_premise(scenario, scale)
        runs = assignment_runs(base, n_slots, seed)
        for corr in corrs:
            point = with_premise(base, 1.0, corr, residual_sd)
            served = serving_runs(point, n_requests, load, seed, share, share)
            both = pd.concat(
                [
                    assignment_claims(point, runs, seed).assign(unit="percent"),
                    serving_claims(point, served).assign(unit="points"),
                ]
            )
            frames.append(
                both.assign(
                    slope_scale=scale,
                    large_minus_small=large_minus_small(point),
                    residual_corr=corr,
                )
            )
    columns = ["slope_scale", "large_minus_small", "residual_corr", "claim", "mean", "low"]
    columns += ["high", "unit", "versus", "verdict"]
    return pd.concat(frames, ignore_index=True)[columns]


# --- one discriminator against random escalation -------------------------------------------------


def escalation_against_random(
    scenario: Scenario,
    n_requests: int,
    share: float,
    seed: int,
    target: str = "low_score",
    disc_rho: float = 1.0,
) -> dict[str, float]:
    """Escalating by a discriminator against escalating at random: paired mean score per request.

    Quality only, no queues (as :func:`aigc_lib.serving.escalation_curve`): every request's light
    image (smallest model, with its residual) is kept or regenerated on the largest model; the
    discriminator (``target``, ``disc_rho``; default a perfect "worst light image first" rule)
    and a random one (rho 0) each escalate the ``share`` of these requests with the highest
    output (a cut at the outputs' own quantile, so both escalate the same share whatever the
    residual does to the outputs' spread). Returns ``mean``, ``low``, ``high``
    (points, discriminator minus random, 95% interval over requests) and the observed
    ``escalated`` shares of both. Taught in ``notebooks/08_which_prompts_gain.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    n = validate.whole(n_requests, "n_requests", low=2)
    share = validate.number(share, "share", low=0.0, high=1.0)
    plain = serving.requests(scenario, np.zeros(n), seed)
    r = residuals(scenario, n, np.random.default_rng([seed, _RESIDUAL_STREAM]))
    req = _with_light_residual(plain, r[:, 0])
    heavy = len(scenario.models) - 1
    scores = {}
    for name, rho, kind in (("rule", disc_rho, target), ("random", 0.0, target)):
        view = serving.discriminator(scenario, req, rho, kind)
        output = view["output"].to_numpy()
        up = output >= np.quantile(output, 1 - share) if share > 0 else np.zeros(n, bool)
        light = view["light_score"].to_numpy()
        heavy_score = light + view["gain"].to_numpy() + req.draws["second_image_noise"].to_numpy()
        scores[name] = (np.where(up, heavy_score + r[:, heavy], light), float(up.mean()))
    mean, low, high = _interval(scores["rule"][0] - scores["random"][0])
    return {
        "mean": mean,
        "low": low,
        "high": high,
        "escalated": scores["rule"][1],
        "escalated_random": scores["random"][1],
    }


# --- the robustness study under each camp's premise ----------------------------------------------


def mirrored_scenario(base: Scenario, rng: np.random.Generator, max_tries: int = 1000) -> Scenario:
    """A plausible scenario with its slopes mirrored: hard prompts gain most (DiffServe's camp).

    Draws :func:`aigc_lib.claims.plausible_scenario` (which keeps P1 and P2) and mirrors its
    slopes about the medium model's (:func:`with_premise` with scale -1), keeping the first draw
    whose mirror still keeps P1 (the larger model better and slower for a group-mean prompt); P2
    breaks by construction. Raises ``ValueError`` naming ``max_tries`` if none does.
    """
    tries = validate.whole(max_tries, "max_tries", low=1)
    for _ in range(tries):
        mirrored = with_premise(claims.plausible_scenario(base, rng), -1.0)
        table = premises(mirrored)
        if table.loc[table["premise"] == "P1", "holds"].all():
            return mirrored.replace(name="mirrored")
    raise ValueError(f"max_tries: no mirrored draw kept P1 in {tries} tries")


def _camp_row(scenario: Scenario, n_slots: int, seed: int) -> dict[str, Any]:
    """Mean slot utility of each policy and the two claims' mean gains in percent."""
    runs = assignment_runs(scenario, n_slots, seed)
    u = {p: t.groupby("slot")["utility"].mean().mean() for p, t in runs.items()}
    best = max(scenario.model_names, key=u.get)
    mix = max(u["probabilistic"], u["direct"])
    return {
        "large_minus_small": large_minus_small(scenario),
        "gain_pct": 100 * (u["probabilistic"] - u["direct"]) / abs(u["direct"]),
        "best_single": best,
        "mix_vs_best_single_pct": 100 * (mix - u[best]) / abs(u[best]),
    }


def camp_robustness(base: Scenario, n_scenarios: int, n_slots: int, seed: int) -> pd.DataFrame:
    """The robustness study under each camp's premise, reported apart (:data:`CAMPS`).

    ``n_scenarios`` draws of :func:`aigc_lib.claims.plausible_scenario` (the paper's premises: easy
    prompts gain most) and, from a second stream, as many of :func:`mirrored_scenario` (hard
    prompts gain most); each runs Probabilistic, Direct and each model alone on ``n_slots`` slots
    with the exact allocation. One row per scenario: ``camp``, ``scenario``,
    ``large_minus_small``, ``gain_pct`` (Probabilistic over Direct, percent of mean utility),
    ``best_single``, ``mix_vs_best_single_pct`` (the better mix over the best single model).
    Taught in ``notebooks/08_which_prompts_gain.ipynb``.
    """
    validate.instance(base, Scenario, "base")
    count = validate.whole(n_scenarios, "n_scenarios", low=1)
    draws = {
        CAMPS[0]: lambda rng: claims.plausible_scenario(base, rng),
        CAMPS[1]: lambda rng: mirrored_scenario(base, rng),
    }
    rows = []
    for k, (camp, draw) in enumerate(draws.items()):
        rng = np.random.default_rng([seed, _RESIDUAL_STREAM, k])
        for i in range(count):
            row = _camp_row(draw(rng), n_slots, seed + i)
            rows.append({"camp": camp, "scenario": i, **row})
    return pd.DataFrame(rows)


# --- what the public data supports ---------------------------------------------------------------


def load_public(path: str | Path = PUBLIC_PATH) -> dict[str, Any]:
    """The quoted public figures of ``data/public_premises.yaml`` (sources inside), checked."""
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"path: cannot read the public figures {str(path)!r}: {err}") from None
    if not isinstance(data, dict) or not {"ascend", "diffserve_confidences"} <= set(data):
        raise ValueError(f"path: {str(path)!r} lacks 'ascend' or 'diffserve_confidences'")
    table = data["ascend"]
    sizes = {len(table[k]) for k in ("categories", "sd15", "sdxl", "prompts")}
    if len(sizes) != 1:
        raise ValueError(
            "path: the Ascend lists (categories, sd15, sdxl, prompts) differ in length"
        )
    return data


def category_slope(
    medium: Sequence[float], large: Sequence[float], weights: Sequence[float] | None = None
) -> dict[str, float]:
    """Least-squares slope of the large model's category means on the medium model's, with a 95% CI.

    ``medium``, ``large``: one mean per category (same units); ``weights`` (e.g. prompts per
    category) for weighted least squares. The interval is the t-interval of the slope with
    n - 2 degrees of freedom (categories as the observations). Returns ``slope``, ``low``,
    ``high``, ``intercept``, ``n``. The slope is beta_large / beta_medium at the category level.
    """
    x, y = np.asarray(medium, float), np.asarray(large, float)
    if x.ndim != 1 or x.shape != y.shape or x.size < 3:
        raise ValueError(f"medium: expected >= 3 category means matching large, got {x.shape}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    if w.shape != x.shape or np.any(w <= 0):
        raise ValueError("weights: expected one positive weight per category")
    w = w / w.mean()
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = np.sum(w * (x - xm) ** 2)
    slope = float(np.sum(w * (x - xm) * (y - ym)) / sxx)
    resid = y - (ym + slope * (x - xm))
    se = math.sqrt(np.sum(w * resid**2) / (x.size - 2) / sxx)
    half = float(stats.t.ppf(0.975, x.size - 2)) * se
    out = {"slope": slope, "low": slope - half, "high": slope + half}
    return out | {"intercept": float(ym - slope * xm), "n": int(x.size)}


def confidence_summary(summary: dict[str, Any]) -> dict[str, float]:
    """What DiffServe's confidences say about the light image and the heavy-minus-light difference.

    From the quoted moments (``sd_light``, ``sd_heavy``, ``corr_light_heavy``): the regression
    slope of (heavy - light) on light, r sd_h / sd_l - 1, and the correlation of light with
    heavy - light. Confidences, not CLIPScores: their scale is the discriminator's, so only signs
    and correlations compare with the simulator.
    """
    sl, sh, r = (float(summary[k]) for k in ("sd_light", "sd_heavy", "corr_light_heavy"))
    if not (sl > 0 and sh > 0 and -1 <= r <= 1):
        raise ValueError("summary: expected sd_light, sd_heavy > 0 and corr_light_heavy in [-1, 1]")
    cov = r * sl * sh - sl**2
    sd_diff = math.sqrt(sl**2 + sh**2 - 2 * r * sl * sh)
    return {
        "slope_diff_on_light": r * sh / sl - 1,
        "corr_light_diff": cov / (sl * sd_diff),
        "sd_diff": sd_diff,
    }


def light_gain_correlation(scenario: Scenario, n_prompts: int, seed: int) -> float:
    """Correlation, over prompts, of the light image's score with heavy minus light (simulated).

    Light: the smallest model at its fewest steps; heavy: the largest; each image with its own
    noise and the prompt's residuals. The simulator's counterpart of
    :func:`confidence_summary`'s ``corr_light_diff`` (there on confidences, here on CLIPScore).
    """
    validate.instance(scenario, Scenario, "scenario")
    n = validate.whole(n_prompts, "n_prompts", low=3)
    req = serving.requests(scenario, np.zeros(n), seed)
    r = residuals(scenario, n, np.random.default_rng([seed, _RESIDUAL_STREAM]))
    view = serving.discriminator(scenario, _with_light_residual(req, r[:, 0]), 0.0)
    light = view["light_score"].to_numpy()
    heavy = light + view["gain"].to_numpy() + req.draws["second_image_noise"].to_numpy()
    heavy = heavy + r[:, -1]
    return float(np.corrcoef(light, heavy - light)[0, 1])


_SWEPT: dict[str, pd.DataFrame] = {}
"""What :func:`shared_sweep` swept in this process, by the repr of its arguments."""


def shared_sweep(
    scenario: Scenario,
    slope_scales: Sequence[float],
    residual_corrs: Sequence[float],
    residual_sd: float,
    n_slots: int,
    n_requests: int,
    load: float,
    seed: int,
    share: float = 0.25,
) -> pd.DataFrame:
    """:func:`sweep` with these arguments, kept for the process: every section of a notebook can
    open with this call, and only the first one sweeps (the key: the arguments' repr). Returns a
    copy of the table. Taught in ``notebooks/08_which_prompts_gain.ipynb``.
    """
    args = (scenario, tuple(slope_scales), tuple(residual_corrs), residual_sd, n_slots)
    key = repr((*args, n_requests, load, seed, share))
    if key not in _SWEPT:
        _SWEPT[key] = sweep(*args, n_requests, load, seed, share)
    return _SWEPT[key].copy()


def public_band(scenario: Scenario, public: dict[str, Any] | None = None) -> pd.DataFrame:
    """The Ascend slope of SDXL on SD1.5 (:func:`category_slope`, 95% interval) mapped onto the
    premise sweep of ``scenario``: one row per fit (all categories, weighted by prompts, without
    the lowest-scoring category) with ``slope``, ``low``, ``high``, ``intercept``, ``n``, the
    slope scales ``scale_low``/``scale_high`` of :func:`with_premise` where the large model's
    slope equals the interval's ends, and the matching ``delta_low``/``delta_high`` of
    beta_large − beta_small (CLIPScore points per point). The range the data allow is
    ``(delta_low.min(), delta_high.max())``. ``public``: :func:`load_public`'s dict (default: the
    shipped file). Taught in ``notebooks/08_which_prompts_gain.ipynb`` (section 4, by hand).
    """
    asc = (load_public() if public is None else public)["ascend"]
    table = pd.DataFrame(
        {"sd15": asc["sd15"], "sdxl": asc["sdxl"], "prompts": asc["prompts"]},
        index=asc["categories"],
    )
    lowest = table["sd15"].idxmin()
    rest = table.drop(index=lowest)
    fits = pd.DataFrame(
        {
            "all categories": category_slope(table["sd15"], table["sdxl"]),
            "weighted by prompts": category_slope(table["sd15"], table["sdxl"], table["prompts"]),
            f"without {lowest}": category_slope(rest["sd15"], rest["sdxl"]),
        }
    ).T
    step = scenario.models[-1].score_beta - scenario.models[1].score_beta
    delta0 = large_minus_small(scenario)
    band = fits.assign(scale_low=(fits["low"] - 1) / step, scale_high=(fits["high"] - 1) / step)
    band["delta_low"], band["delta_high"] = band["scale_low"] * delta0, band["scale_high"] * delta0
    return band
