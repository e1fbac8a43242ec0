"""Serving under real load: requests arrive over time, queues persist, the GPU is re-planned every T s.

The paper's model (:func:`aigc_lib.simulation.simulate`) is a sequence of independent slots: every
prompt of a slot arrives at its start and a task's latency is its place in its model's batch.
:func:`serve` runs the same planner in continuous time (docs/SPEC.md section 8):

* requests arrive at any time (:mod:`aigc_lib.arrivals`: Poisson, a real trace, or the paper's
  slots); each carries a PartiPrompts prompt and its random numbers (:func:`requests`);
* every ``slot_seconds`` T (the planning instants t_k = k T) the policy routes the requests that
  arrived since the last instant (:class:`Routing`) and the planner sets every model's steps and
  share of the GPU for the requests queued now, new and carried over, with the library's own
  allocation code (:func:`aigc_lib.simulation.slot_problem`, eq. 11, and an allocation policy);
* each model serves its queue first-in first-out at its share until the next instant, in batches
  of up to :attr:`Policy.max_batch` (default 1: one image at a time; a batch's time follows the
  batch rule of :func:`batch_factor`, fitted to published curves in ``data/serving.yaml``); a
  batch not finished by then continues at the new share with the steps it started with; a batch
  not yet started takes the steps of the plan under which it starts;
* the GPUs (:class:`Server`): one or N, shared by fixed ``"shares"`` (the paper's, the default),
  ``"work-conserving"`` shares, or ``"whole-gpus"`` that each hold one model and load a model's
  weights when a plan moves them (:data:`SHARING`, :func:`load_seconds`); estimators may be
  charged GPU time (:func:`estimator_seconds`);
* an :class:`Escalation` (a cascade) regenerates some light images on a heavier model: the request
  joins the heavy queue when its light image is done;
* with :attr:`Policy.admission`, a request that can no longer meet the SLO given the work ahead of
  it is dropped at once, with its reason (:data:`DROP_REASONS`); otherwise nothing is dropped and
  the run continues after the last arrival until every queue is empty. Every run checks
  arrivals = served + dropped;
* the ground truth scores every delivered image (:func:`aigc_lib.simulation.true_scores`), and a
  request's latency is its completion minus its arrival.

With every request of slot s arriving at s T, the GPU idle at each slot's start and every knob at
its default, :func:`serve` gives the per-task scores and latencies of
:func:`aigc_lib.simulation.simulate` (the paper's model as a special case; tested).
:func:`reference_seconds` and :func:`arrival_rate` express load as utilisation of one GPU;
:func:`summarise` gives goodput, SLO attainment, latency percentiles and the drop counts.

Units: seconds, CLIPScore points, TFLOPS. Taught in ``notebooks/07_peer_serving_policies.ipynb``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from aigc_lib import allocation as alloc
from aigc_lib import assignment as assign
from aigc_lib import simulation, validate
from aigc_lib._io import load_yaml
from aigc_lib.readings import DEFAULT, Readings
from aigc_lib.scenario import Scenario, true_score

__all__ = [
    "SLOT_SECONDS",
    "SLO_SECONDS",
    "DISC_RHO",
    "DISC_MARGIN",
    "PREDICTOR_RHO",
    "KAPPA_MAX",
    "TARGETS",
    "METRICS",
    "Requests",
    "Routing",
    "Escalation",
    "Policy",
    "Server",
    "SHARING",
    "DROP_REASONS",
    "COUNTS",
    "SERVING_DATA",
    "ServingResult",
    "serving_data",
    "batch_fractions",
    "batch_factor",
    "load_seconds",
    "estimator_seconds",
    "spec_numbers",
    "requests",
    "serve",
    "summarise",
    "reference_seconds",
    "arrival_rate",
    "utilisation",
    "score_threshold",
    "route_threshold",
    "escalation_threshold",
    "discriminator",
    "escalation_curve",
]

SLOT_SECONDS = 2.0
"""Default planning period T in seconds (an assumption; the paper does not give its slot length).
Short beside the SLO (:data:`SLO_SECONDS`): a request waits at most T, T/2 on average, for the
plan that routes it. Long beside the fastest image (0.23 s for SDXL-Turbo on the paper's GPU) so a
plan covers several images, and about one to two arrivals per plan at the loads studied."""

SLO_SECONDS = 10.0
"""Default latency SLO in seconds (an assumption): about three SDXL images at its fewest steps
(3.4 s each) on the paper's GPU, or about 43 SDXL-Turbo images; an interactive budget of seconds."""

DISC_RHO = 0.8
"""Default correlation of a cascade's discriminator with its target (an assumption: DiffServe's
discriminator is a trained EfficientNet whose accuracy in CLIPScore points is not published)."""

DISC_MARGIN = 0.5
"""The margin (CLIPScore points) of the discriminator's label: the heavy model improves a prompt's
image by more than this (an assumption: half the per-image noise of scenario "paper", so a label
counts an improvement larger than the noise of one image). It defines the label on which the
discriminator's accuracy is reported (:func:`discriminator`); the escalation threshold itself is
tuned like every other knob."""

PREDICTOR_RHO = 0.8
"""Default correlation of a per-prompt score predictor with the prompt's own deviation (the same
assumption as :data:`DISC_RHO`, so neither peer gets the better estimator)."""

KAPPA_MAX = 0.5
"""The largest load sensitivity kappa of the load-aware rule tried by tuning, in CLIPScore points
per second of backlog (an assumption: at a backlog of one SLO, 10 s, the thresholds move by 5
points, about 1.7 group standard deviations, enough to send almost every prompt to the light model)."""

TARGETS = ("gain", "low_score")
"""What a discriminator estimates. ``"gain"`` (DiffServe's: would the heavy model improve this
prompt's image; escalate the largest expected gains) or ``"low_score"`` (escalate the images that
score lowest, the rule notebook 07 used before; in scenario "paper" it picks the prompts that gain
least)."""

METRICS = (
    "n_requests",
    "goodput",
    "slo_attainment",
    "p50_latency",
    "p95_latency",
    "p99_latency",
    "mean_latency",
    "mean_score",
    "mean_utility",
    "gpu_seconds_per_image",
    "escalation_share",
    "max_queue",
)
"""The numbers :func:`summarise` gives for one run (also :data:`COUNTS`)."""

COUNTS = ("n_served", "n_dropped", "dropped_admission", "dropped_expired", "n_fell_back")
"""The counts :func:`summarise` adds: arrivals (``n_requests``) = ``n_served`` + ``n_dropped``,
``n_dropped`` = the sum of ``dropped_<reason>`` over :data:`DROP_REASONS`; ``n_fell_back``:
escalated requests that kept their light image (served)."""

SHARING = ("shares", "work-conserving", "whole-gpus")
"""How the GPUs are shared between models (:class:`Server`). ``"shares"`` (the paper's): each
model runs at its planned share until the next plan, a share whose queue empties idles.
``"work-conserving"``: an empty queue's share goes to the models with queued work (in proportion
to their planned shares) until the next plan or until work comes back. ``"whole-gpus"``: each GPU
holds one model at a time; a plan places models on GPUs, a GPU given a new model first loads its
weights (:func:`load_seconds`)."""

DROP_REASONS = ("admission", "expired")
"""Why admission control (:attr:`Policy.admission`) drops a request: ``"admission"``: at its
plan, the work queued ahead of it on its model at the planned rate, plus its own image, already
ends after arrival + SLO; ``"expired"``: when its model could start it, its image would end after
arrival + SLO. A cascade's escalated request is never dropped: past the SLO it keeps its light
image (``fell_back`` in the tasks)."""

SERVING_DATA = Path(__file__).resolve().parent.parent / "data" / "serving.yaml"
"""Batch curves, model weights, host link and estimator times, each with its source."""


# --- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Requests:
    """What :func:`requests` returns: ``arrival`` (seconds, one per request, any order),
    ``draws`` (one row per request: the columns of :func:`aigc_lib.simulation.prompt_draws`,
    ``second_image_noise`` and ``discriminator_noise``) and ``seed``."""

    arrival: np.ndarray
    draws: pd.DataFrame
    seed: int

    def __len__(self) -> int:
        return int(self.arrival.size)


def requests(
    scenario: Scenario, arrival: Any, seed: int, prompts: pd.DataFrame | None = None
) -> Requests:
    """Requests arriving at ``arrival`` (seconds >= 0, any order, ties allowed), with their prompts.

    Request n draws the n-th prompt of :func:`aigc_lib.simulation.prompt_draws` for ``seed``
    (common random numbers: the same prompts for every policy, and the prompts
    :func:`aigc_lib.simulation.simulate` draws for the same seed and number of tasks), plus the
    noise of a second image (the next draws of the image-noise stream) and a discriminator noise
    (a stream of its own). ``prompts``: e.g. PartiPrompts, as in ``simulate``.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    seed = validate.whole(seed, "seed")
    try:
        times = np.array(arrival, dtype=float).reshape(-1) if np.ndim(arrival) <= 1 else None
    except (TypeError, ValueError):
        raise ValueError(f"arrival: expected arrival times in seconds, got {arrival!r}") from None
    if times is None:
        raise ValueError(
            f"arrival: expected a 1-D sequence of times, got shape {np.shape(arrival)}"
        )
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError("arrival: expected finite arrival times >= 0 seconds (no NaN or inf)")
    n = times.size
    draws = simulation.prompt_draws(scenario, n, seed, prompts)
    noise = np.random.default_rng(simulation.streams(seed)[1]).standard_normal(2 * n)
    disc = np.random.SeedSequence(seed).spawn(5)[4]
    draws["second_image_noise"] = scenario.noise_sd * noise[n:]
    draws["discriminator_noise"] = np.random.default_rng(disc).standard_normal(n)
    return Requests(arrival=times, draws=draws, seed=seed)


# --- policies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routing:
    """How a request gets its first model, at the first planning instant after it arrives.

    ``rule``: ``"probabilistic"``, ``"direct"``, ``"random"`` or a model's name (the paper's
    assignments, through :func:`aigc_lib.simulation.assign_models`, with ``thresholds`` if given,
    else the scenario's); ``"load_aware"`` (ours: eq. 9-10 with every threshold raised by
    ``kappa`` x the backlog, the whole-GPU seconds of the images queued at the plan at their
    model's fewest steps, so a longer queue sends more prompts to smaller models; kappa = 0 is
    ``"probabilistic"`` on the same random numbers); ``"predictor"`` (HADIS's router: prompts whose
    predicted medium-model score, with correlation ``predictor_rho``, is at least ``route_at`` go
    to ``heavy``, the rest to ``light``). Thresholds in CLIPScore points.
    """

    rule: str = "probabilistic"
    thresholds: tuple[float, ...] | None = None
    kappa: float = 0.0
    light: int = 0
    heavy: int | None = None
    route_at: float = math.inf
    predictor_rho: float = PREDICTOR_RHO


@dataclass(frozen=True)
class Escalation:
    """A cascade's second stage: some images of ``light`` are regenerated on ``heavy``.

    A discriminator (:func:`discriminator`) with correlation ``disc_rho`` to its ``target``
    (:data:`TARGETS`) scores each light image; the images above the threshold that escalates
    ``share`` of the scenario's prompt mix (:func:`escalation_threshold`) are regenerated.
    ``light`` must have one step count (the first stage's image, hence the decision, does not
    depend on the plan). ``heavy``: None for the largest model.
    """

    share: float
    disc_rho: float = DISC_RHO
    target: str = "gain"
    light: int = 0
    heavy: int | None = None


@dataclass(frozen=True)
class Policy:
    """A serving policy: a ``routing`` rule and an optional ``escalation`` rule, with a ``name``
    and ``knobs`` (the configuration, for tables; e.g. the shares a tuner chose)."""

    name: str
    routing: Routing = field(default_factory=Routing)
    escalation: Escalation | None = None
    knobs: Mapping[str, Any] = field(default_factory=dict, compare=False)
    max_batch: int = 1
    admission: bool = False


@dataclass(frozen=True)
class Server:
    """The serving hardware: ``n_gpus`` GPUs of the scenario's capacity C each, shared between
    models by ``sharing`` (:data:`SHARING`); ``charge_estimators``: the prompt predictor and the
    discriminator take GPU time per request (:func:`estimator_seconds`), else they are free.

    The default, one GPU in ``"shares"`` with free estimators, is the paper's server. With
    ``n_gpus`` > 1 in ``"shares"`` or ``"work-conserving"`` every GPU runs the same plan (each
    model's share of each GPU) and a model's queue feeds its share on every GPU; in
    ``"whole-gpus"`` the plan's shares of the N GPUs are rounded to whole GPUs per model.
    """

    sharing: str = "shares"
    n_gpus: int = 1
    charge_estimators: bool = False


# --- the result -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ServingResult:
    """What :func:`serve` returns.

    ``tasks``: one row per request, in request order: ``request``, ``arrival`` (s), ``prompt_id``,
    ``group``, ``first_model`` (the model it was routed to), ``model`` (the model whose image it
    got), ``steps``, ``escalated``, ``planned_at`` (the planning instant that routed it, s),
    ``first_done`` (s; when an escalated request's light image was done, else NaN),
    ``completion`` (s), ``latency`` = completion - arrival (s), ``score`` (CLIPScore points),
    ``utility`` = score - lambda x latency, ``gpu_seconds`` (every image it caused, at the whole
    GPU), ``deviation`` e_n. ``plans``: one row per planning instant with work: ``time`` (s),
    ``backlog_seconds`` (whole-GPU seconds of the queued images at their fewest steps, after
    routing), and per model ``queued_<m>`` (requests queued), ``planned_<m>`` (the tasks the
    planner counted: queued, plus expected escalations on a cascade's heavy model),
    ``steps_<m>`` and ``compute_<m>`` (TFLOPS; in ``"whole-gpus"`` also ``gpus_<m>``, the GPUs
    placed on m, and ``loads``, the GPUs that load a new model). ``tasks`` also has ``dropped``
    (the reason of :data:`DROP_REASONS`, or "" if served; a dropped request has NaN completion,
    latency, score and utility) and ``fell_back`` (an escalated request that kept its light image
    because the heavy one would miss the SLO). ``settings``: the arguments, and ``counts``
    (``arrivals``, ``served``, ``dropped`` by reason).
    """

    tasks: pd.DataFrame
    plans: pd.DataFrame
    settings: Mapping[str, Any] = field(default_factory=dict)


# --- offered load ---------------------------------------------------------------------------------


def reference_seconds(scenario: Scenario) -> float:
    """Mean GPU-seconds per image of the reference policy (whole GPU): the load unit.

    The reference policy (an assumption, chosen because it is the paper's method at its cheapest):
    Probabilistic-assignment with the scenario's thresholds, eq. 9-10 over the scenario's prompt
    mix, every model at its fewest steps. An arrival rate r then offers utilisation r x this;
    at 1 the GPU is busy all the time serving the reference policy at its cheapest.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    probs = assign.assignment_probabilities(scenario.mu, scenario.sigma, scenario.thresholds)
    seconds = np.array([m.image_seconds(m.steps[0]) for m in scenario.models])
    return float(scenario.shares @ probs @ seconds)


def arrival_rate(scenario: Scenario, utilisation: float) -> float:
    """Requests per second that offer ``utilisation`` of the GPU: utilisation / reference seconds.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    u = validate.number(utilisation, "utilisation", low=0.0, low_open=True)
    return u / reference_seconds(scenario)


def utilisation(scenario: Scenario, rate: float) -> float:
    """The offered load of ``rate`` requests per second: rate x :func:`reference_seconds`."""
    return validate.number(rate, "rate", low=0.0) * reference_seconds(scenario)


# --- serving hardware -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _read_serving_data(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return load_yaml(handle.read())


def serving_data(path: str | Path | None = None) -> dict:
    """The serving hardware's numbers (``data/serving.yaml``, :data:`SERVING_DATA`): batch curves,
    weights, host link, estimator times, each ``{value, source, reason}``. A copy; docs/SPEC.md
    section 8 (its numbers generated by :func:`spec_numbers`)."""
    where = Path(SERVING_DATA if path is None else path)
    if not where.is_file():
        raise ValueError(f"path: {str(where)!r} is not a file (expected a serving yaml)")
    return copy.deepcopy(_read_serving_data(str(where)))


def batch_fractions(scenario: Scenario, data: Mapping[str, Any] | None = None) -> np.ndarray:
    """Each model's per-image fraction g_m of a batch step, fitted to its published batch curve.

    A batch of b takes :func:`batch_factor` (1 + g_m (b - 1)) times the batch-1 time; g_m is the
    least-squares slope of t(b) / t(1) - 1 against b - 1 (the fit anchored at b = 1). g = 1: no
    gain from batching; g = 0: a batch costs one image. Shape (M,). ``data``: :func:`serving_data`.
    """
    validate.instance(scenario, Scenario, "scenario")
    curves = (serving_data() if data is None else data)["batch_curves"]
    out = []
    for name in scenario.model_names:
        if name not in curves:
            raise ValueError(f"scenario: model {name!r} has no batch curve in {SERVING_DATA.name}")
        b = np.asarray(curves[name]["batch"], dtype=float)
        t = np.asarray(curves[name]["ms"], dtype=float)
        x, y = b - 1.0, t / t[b == 1][0] - 1.0
        out.append(float(x @ y / (x @ x)))
    return np.array(out)


def batch_factor(fraction: float, batch: int) -> float:
    """How many batch-1 image times a batch of ``batch`` takes: 1 + ``fraction`` x (batch - 1);
    exactly 1.0 at batch 1 (data/serving.yaml, ``batch_rule``; docs/SPEC.md section 8).
    ``fraction``: g_m of :func:`batch_fractions`, in [0, 1]. Taught in notebook 07."""
    g = validate.number(fraction, "fraction", low=0.0, high=1.0)
    return _factor(g, validate.whole(batch, "batch", low=1))


def _factor(fraction: float, batch: int) -> float:
    return 1.0 + fraction * (batch - 1) if batch > 1 else 1.0


def load_seconds(scenario: Scenario, data: Mapping[str, Any] | None = None) -> np.ndarray:
    """Seconds to load each model onto a GPU in ``"whole-gpus"``: weights' bytes over the host link
    (parameters x bytes per parameter / link GB/s; data/serving.yaml). Shape (M,)."""
    validate.instance(scenario, Scenario, "scenario")
    d = serving_data() if data is None else data
    params = d["weights_parameters"]["value"]
    width = float(d["bytes_per_parameter"]["value"])
    link = float(d["host_link_gb_per_s"]["value"]) * 1e9
    return np.array([params[name] * width / link for name in scenario.model_names])


def estimator_seconds(data: Mapping[str, Any] | None = None) -> dict[str, float]:
    """GPU seconds per request of the ``"predictor"`` and the ``"discriminator"`` at the whole
    GPU, charged when :attr:`Server.charge_estimators` (data/serving.yaml)."""
    d = serving_data() if data is None else data
    return {k: float(v) for k, v in d["estimator_seconds"]["value"].items()}


def spec_numbers(scenario: Scenario | None = None) -> str:
    """The numbers of docs/SPEC.md section 8, as the markdown table the SPEC carries between its
    ``serving-numbers`` markers (a test checks they agree; paste this to update them): the load
    unit and, per model, the batch rule's g_m, its throughput gain at the largest published
    batch, the loading time and the estimator charge. ``scenario``: default "paper"."""
    from aigc_lib.scenario import load_scenario  # the default scenario, read only when needed

    scenario = load_scenario() if scenario is None else scenario
    validate.instance(scenario, Scenario, "scenario")
    data = serving_data()
    g, load = batch_fractions(scenario, data), load_seconds(scenario, data)
    cost = estimator_seconds(data)
    lines = [
        f"Load unit (scenario {scenario.name!r}): {reference_seconds(scenario):.3f} GPU-seconds "
        "per image (`serving.reference_seconds`).",
        "",
        "| model | g_m | largest published batch b | throughput gain at b, b / (1 + g_m (b - 1)) "
        "| load, s |",
        "|---|---|---|---|---|",
    ]
    for m, name in enumerate(scenario.model_names):
        b = max(data["batch_curves"][name]["batch"])
        lines.append(
            f"| {name} | {g[m]:.3f} | {b} | {b / batch_factor(g[m], b):.2f} | {load[m]:.3f} |"
        )
    lines += [
        "",
        f"Estimators, when charged: predictor {cost['predictor'] * 1e3:.1f} ms and discriminator "
        f"{cost['discriminator'] * 1e3:.1f} ms of the whole GPU per request.",
    ]
    return "\n".join(lines)


# --- thresholds from shares -----------------------------------------------------------------------


def score_threshold(scenario: Scenario, share_below: float) -> float:
    """The medium-model score (CLIPScore points) under which ``share_below`` of prompts fall.

    The p-quantile of the scenario's prompt mix (a mixture of the group priors): under the
    category reading, eq. 9-10 with thresholds (score_threshold(p0), score_threshold(1 - p2))
    send a share p0 of prompts to the small model and p2 to the large one. Finite: 0 and 1 give
    the mixture's 1e-9 and 1 - 1e-9 quantiles.
    """
    validate.instance(scenario, Scenario, "scenario")
    p = validate.number(share_below, "share_below", low=0.0, high=1.0)
    return _mixture_quantile(
        scenario.mu, scenario.sigma, scenario.shares, min(max(p, 1e-9), 1 - 1e-9)
    )


def route_threshold(
    scenario: Scenario, share: float, predictor_rho: float = PREDICTOR_RHO
) -> float:
    """The predicted score (points) at or above which about ``share`` of prompts lie.

    The predictor's belief mu_k + rho p_n is N(mu_k, rho^2 sigma_k^2) within group k; over the
    prompt mix a mixture (at rho = 0 the group means themselves). ``share`` 0 gives +inf (route
    none), 1 gives -inf (route all).
    """
    share = validate.number(share, "share", low=0.0, high=1.0)
    rho = validate.number(predictor_rho, "predictor_rho", low=0.0, high=1.0)
    validate.instance(scenario, Scenario, "scenario")
    sds = np.maximum(rho * scenario.sigma, 1e-6 * scenario.sigma)
    return _mixture_quantile(scenario.mu, sds, scenario.shares, 1.0 - share)


def escalation_threshold(
    scenario: Scenario,
    share: float,
    disc_rho: float = DISC_RHO,
    target: str = "gain",
    light: int = 0,
    heavy: int | None = None,
    readings: Readings = DEFAULT,
) -> float:
    """The discriminator output above which about ``share`` of light images are escalated.

    From the scenario's prompt mix (not a run's draws): the discriminator's output
    (:func:`discriminator`) is a mixture of normals over the groups. ``share`` 0 gives +inf
    (never escalate), 1 gives -inf (always).
    """
    share = validate.number(share, "share", low=0.0, high=1.0)
    rho = validate.number(disc_rho, "disc_rho", low=0.0, high=1.0)
    light, heavy = _pair(scenario, light, heavy, "light", "heavy")
    means, sds, mean, sd = _target_mixture(scenario, target, light, heavy, readings)
    out_means = rho * (means - mean) / sd
    out_sds = np.sqrt(rho**2 * sds**2 / sd**2 + 1 - rho**2)
    return _mixture_quantile(out_means, out_sds, scenario.shares, 1.0 - share)


def discriminator(
    scenario: Scenario,
    requests: Requests,
    disc_rho: float = DISC_RHO,
    target: str = "gain",
    light: int = 0,
    heavy: int | None = None,
    readings: Readings = DEFAULT,
) -> pd.DataFrame:
    """A discriminator's view of every request's light image: what it estimates, and its output.

    Columns: ``light_score`` (the light image's CLIPScore, points), ``gain`` (the heavy model's
    expected score for this prompt at its fewest steps minus ``light_score``: what escalation would
    add), ``label`` (gain > :data:`DISC_MARGIN`, DiffServe's target), ``output``: rho x the
    standardised target + sqrt(1 - rho^2) x noise, standard normal noise from the request's
    ``discriminator_noise``, so its correlation with the target is ``disc_rho`` (0: random; 1:
    ranks by the target exactly). The target is ``gain`` or, for ``target="low_score"``, minus
    ``light_score``; it is standardised with its mean and sd over the scenario's prompt mix.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    validate.instance(requests, Requests, "requests")
    rho = validate.number(disc_rho, "disc_rho", low=0.0, high=1.0)
    light, heavy = _pair(scenario, light, heavy, "light", "heavy")
    d = requests.draws
    group = d["group"].cat.codes.to_numpy().astype(np.int64)
    own = scenario.mu[group] + d["deviation"].to_numpy()
    sat = readings.saturation
    light_score = (
        true_score(scenario, own, light, scenario.models[light].steps[0], sat)
        + d["image_noise"].to_numpy()
    )
    gain = true_score(scenario, own, heavy, scenario.models[heavy].steps[0], sat) - light_score
    _, _, mean, sd = _target_mixture(scenario, target, light, heavy, readings)
    value = gain if target == "gain" else -light_score
    output = rho * (value - mean) / sd + np.sqrt(1 - rho**2) * d["discriminator_noise"].to_numpy()
    return pd.DataFrame(
        {
            "light_score": light_score,
            "gain": gain,
            "label": gain > DISC_MARGIN,
            "output": output,
        }
    )


def escalation_curve(
    scenario: Scenario,
    requests: Requests,
    shares: Any,
    disc_rho: float = DISC_RHO,
    target: str = "gain",
    light: int = 0,
    heavy: int | None = None,
    readings: Readings = DEFAULT,
) -> pd.DataFrame:
    """Mean delivered CLIPScore against the share escalated, without queues (quality only).

    For each share of ``shares``: the requests whose discriminator output (:func:`discriminator`)
    is above :func:`escalation_threshold` get the heavy model's image at its fewest steps (with
    their ``second_image_noise``), the others keep their light image. Columns ``share`` (asked),
    ``escalated`` (observed share), ``mean_score`` (points).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    light, heavy = _pair(scenario, light, heavy, "light", "heavy")
    view = discriminator(scenario, requests, disc_rho, target, light, heavy, readings)
    heavy_score = (
        view["light_score"].to_numpy()
        + view["gain"].to_numpy()
        + requests.draws["second_image_noise"].to_numpy()
    )
    rows = []
    for share in np.atleast_1d(np.asarray(shares, dtype=float)):
        cut = escalation_threshold(scenario, share, disc_rho, target, light, heavy, readings)
        up = view["output"].to_numpy() >= cut
        score = np.where(up, heavy_score, view["light_score"].to_numpy())
        rows.append(
            {
                "share": float(share),
                "escalated": float(up.mean()) if up.size else math.nan,
                "mean_score": float(score.mean()) if up.size else math.nan,
            }
        )
    return pd.DataFrame(rows)


# --- the simulator --------------------------------------------------------------------------------


def serve(
    scenario: Scenario,
    requests: Requests,
    policy: Policy,
    slot_seconds: float = SLOT_SECONDS,
    *,
    readings: Readings = DEFAULT,
    allocation: str | simulation.Allocator = "exact",
    annealing_options: Mapping[str, Any] | None = None,
    server: Server = Server(),
    slo_seconds: float = SLO_SECONDS,
) -> ServingResult:
    """Serve ``requests`` under ``policy``, re-planning every ``slot_seconds``; see the module.

    Planning instant t_k = k x ``slot_seconds`` (k = 0, 1, ...) routes the requests with
    t_(k-1) < arrival <= t_k (arrivals at 0 are planned at 0), then plans eq. 11 for every request
    queued on each model (``allocation``: ``"exact"``, ``"annealing"`` or any policy of
    :func:`aigc_lib.simulation.solver`; with ``"exact"`` a plan depends only on the tasks per
    model, so plans are cached). A cascade's heavy model is planned for its queue plus the
    expected escalations of the light queue (the rule's share, rounded up). ``readings``: the
    planner's and the ground truth's readings; latency must be ``"fifo"`` (the event model is a
    queue). Idle periods are skipped; the run ends when every request is served or dropped.

    ``policy.max_batch``: each model serves batches of up to that many queued requests, a batch
    taking :func:`batch_factor` times one image (the planner plans the per-image cost of the batch
    it expects, min(queue, max_batch)); 1 (the default) is one image at a time, today's model.
    ``policy.admission``: drop a request that can no longer finish within ``slo_seconds`` of its
    arrival (:data:`DROP_REASONS`); off by default (nothing dropped). ``server``: the GPUs and how
    models share them (:class:`Server`; default one GPU in ``"shares"``, free estimators).
    Every run checks arrivals = served + dropped (a ``RuntimeError`` otherwise); the counts are in
    ``settings["counts"]``. docs/SPEC.md section 8.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    period, slo, max_batch = _check_serve(
        scenario, requests, policy, slot_seconds, readings, server, slo_seconds
    )
    solve = simulation.solver(allocation, annealing_options, readings)
    assign_rng, alloc_rng = (
        np.random.default_rng(s) for s in simulation.streams(requests.seed)[2:]
    )
    route = _route(scenario, requests, policy.routing, readings, assign_rng)
    cascade = _cascade(scenario, requests, policy.escalation, readings)
    planner = _Planner(
        scenario, readings, solve, allocation == "exact", alloc_rng, max_batch, server.n_gpus
    )
    engine = _Engine(scenario, requests, policy, period, server, slo, route, cascade, planner)
    engine.run()
    settings = {"server": server, "slo_seconds": slo, "max_batch": max_batch}
    return _result(
        scenario, requests, policy, readings, period, allocation, route, engine, settings
    )


def summarise(
    result: ServingResult, scenario: Scenario, slo_seconds: float = SLO_SECONDS
) -> dict[str, float]:
    """One run in the numbers of :data:`METRICS` and :data:`COUNTS`.

    ``n_requests``: arrivals; ``goodput``: requests served within ``slo_seconds`` per second of
    the arrival window (first to last arrival); ``slo_attainment``: their share of the arrivals (a
    dropped request misses the SLO); latency percentiles and mean (s), ``mean_score`` of the
    delivered images (points), ``mean_utility`` (mean of score - lambda x latency),
    ``gpu_seconds_per_image`` (every image generated at the whole GPU, per served request) and
    ``escalation_share``: over the served requests; ``max_queue``: the most requests queued at a
    planning instant; :data:`COUNTS`: served, dropped and dropped by reason, and ``n_fell_back``
    (escalated requests that kept their light image). A run without requests gives NaN (and 0
    requests); a run that serves none gives NaN latencies and scores. Every run of notebook 07
    is summarised by it, through :mod:`aigc_lib.peers`.
    """
    slo = validate.number(slo_seconds, "slo_seconds", low=0.0, low_open=True)
    validate.instance(result, ServingResult, "result")
    tasks = result.tasks
    counts = _summary_counts(tasks)
    if len(tasks) == 0:
        return {**dict.fromkeys(METRICS, math.nan), "n_requests": 0, **counts}
    served = tasks[tasks["dropped"] == ""] if "dropped" in tasks else tasks
    latency = served["latency"].to_numpy()
    arrival = tasks["arrival"].to_numpy()
    window = float(arrival.max() - arrival.min())
    on_time = int((latency <= slo).sum())
    queued = result.plans.filter(like="queued_").sum(axis=1)
    some = len(served) > 0
    quantile = lambda q: float(np.quantile(latency, q)) if some else math.nan  # noqa: E731
    mean = lambda x: float(x.mean()) if some else math.nan  # noqa: E731
    return {
        "n_requests": len(tasks),
        "goodput": float(on_time / window) if window > 0 else math.nan,
        "slo_attainment": float(on_time / len(tasks)),
        "p50_latency": quantile(0.5),
        "p95_latency": quantile(0.95),
        "p99_latency": quantile(0.99),
        "mean_latency": mean(latency),
        "mean_score": mean(served["score"]),
        "mean_utility": mean(served["utility"]),
        "gpu_seconds_per_image": mean(served["gpu_seconds"]),
        "escalation_share": mean(served["escalated"]),
        "max_queue": float(queued.max()) if len(queued) else 0.0,
        **counts,
    }


def _summary_counts(tasks: pd.DataFrame) -> dict[str, int]:
    dropped = tasks["dropped"] if "dropped" in tasks else pd.Series("", index=tasks.index)
    out = {
        "n_served": int((dropped == "").sum()),
        "n_dropped": int((dropped != "").sum()),
        **{f"dropped_{r}": int((dropped == r).sum()) for r in DROP_REASONS},
    }
    out["n_fell_back"] = int(tasks["fell_back"].sum()) if "fell_back" in tasks else 0
    return out


# --- pieces ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Route:
    """A policy's routing, prepared: per request ``group``, ``deviation``, the planner's
    ``belief`` and ``first`` model (-1 until a load-aware plan routes it); ``uniforms`` and
    ``kappa`` of the load-aware rule; ``predicts``: a prompt predictor reads every prompt."""

    group: np.ndarray
    deviation: np.ndarray
    belief: np.ndarray
    first: np.ndarray
    uniforms: np.ndarray | None
    thresholds: np.ndarray
    kappa: float
    predicts: bool


def _route(scenario, requests, routing, readings, rng) -> _Route:
    """Each request's first model where the rule fixes it up front (eq. 9-10, a router)."""
    rule = _check_routing(scenario, routing)
    n = len(requests)
    d = requests.draws
    group = d["group"].cat.codes.to_numpy().astype(np.int64)
    deviation = d["deviation"].to_numpy()
    xi = d["predictor_noise"].to_numpy()
    planner_rho = readings.predictor_rho if rule == "probabilistic" else 0.0
    belief, belief_sd = simulation.beliefs(scenario, group, deviation, xi, planner_rho)
    first = np.full(n, -1, dtype=np.int64)
    uniforms, kappa = None, 0.0
    theta = scenario.thresholds if routing.thresholds is None else routing.thresholds
    thresholds = np.asarray(theta, dtype=float)
    if rule in simulation.assignment_names(scenario):
        planned = scenario.replace(thresholds=tuple(thresholds))
        first = simulation.assign_models(planned, rule, group, belief, belief_sd, readings, rng)
    elif rule == "predictor":
        light, heavy = _pair(scenario, routing.light, routing.heavy, "routing.light", "heavy")
        rho = validate.number(routing.predictor_rho, "predictor_rho", low=0.0, high=1.0)
        predicted, _ = simulation.beliefs(scenario, group, deviation, xi, rho)
        route_at = _threshold(routing.route_at, "route_at")
        first = np.where(predicted >= route_at, heavy, light).astype(np.int64)
    else:  # load_aware: eq. 9-10 at each plan, on the uniforms assign_probabilistic would draw
        uniforms = rng.random(n)
        kappa = validate.number(routing.kappa, "kappa", low=0.0)
    predicts = rule == "predictor" or planner_rho > 0
    return _Route(group, deviation, belief, first, uniforms, thresholds, kappa, predicts)


def _cascade(scenario, requests, escalation, readings) -> tuple[list[bool], int, int, float]:
    """Which requests a cascade escalates, its light and heavy models and its share."""
    if escalation is None:
        return [False] * len(requests), -1, -1, 0.0
    light, heavy, share = _check_escalation(scenario, escalation)
    rho, target = escalation.disc_rho, escalation.target
    view = discriminator(scenario, requests, rho, target, light, heavy, readings)
    cut = escalation_threshold(scenario, share, rho, target, light, heavy, readings)
    return (view["output"].to_numpy() >= cut).tolist(), light, heavy, share


def _check_serve(scenario, requests, policy, slot_seconds, readings, server, slo_seconds):
    """The arguments of :func:`serve`, checked: the period, the SLO and the largest batch."""
    validate.instance(scenario, Scenario, "scenario")
    validate.instance(requests, Requests, "requests")
    validate.instance(policy, Policy, "policy")
    validate.instance(readings, Readings, "readings")
    period = validate.number(slot_seconds, "slot_seconds", low=0.0, low_open=True)
    slo = validate.number(slo_seconds, "slo_seconds", low=0.0, low_open=True)
    if readings.latency != "fifo":
        raise ValueError(
            f"readings: serve models queues, so latency must be 'fifo', got {readings.latency!r}"
        )
    _check_server(server)
    return period, slo, _check_batch(policy.max_batch)


def _check_server(server: Any) -> None:
    validate.instance(server, Server, "server")
    if server.sharing not in SHARING:
        raise ValueError(f"server.sharing: expected one of {SHARING}, got {server.sharing!r}")
    validate.whole(server.n_gpus, "server.n_gpus", low=1)
    if not isinstance(server.charge_estimators, (bool, np.bool_)):
        raise ValueError(
            f"server.charge_estimators: expected True or False, got {server.charge_estimators!r}"
        )


def _check_batch(max_batch: Any) -> int:
    largest = int(serving_data()["max_batch"]["value"]) if max_batch != 1 else 1
    b = validate.whole(max_batch, "policy.max_batch", low=1)
    if b > largest:
        raise ValueError(
            f"policy.max_batch: expected at most {largest} (the largest published batch, "
            f"data/serving.yaml), got {b}"
        )
    return b


class _Planner:
    """Plans one instant: eq. 11 for the tasks queued per model (cached by counts when exact).

    With ``n_gpus`` > 1 it plans one GPU for each model's queue divided by the GPUs (rounded up);
    with ``max_batch`` > 1 for the per-image cost of the batch each model can form (its queue per
    GPU, at most ``max_batch``): every model's seconds times :func:`batch_factor` / batch.
    """

    _cache: dict[tuple, tuple[list[int], list[float], list[float]]] = {}

    def __init__(self, scenario, readings, solve, exact, rng, max_batch=1, n_gpus=1):
        self.scenario, self.readings, self.solve, self.exact, self.rng = (
            scenario,
            readings,
            solve,
            exact,
            rng,
        )
        self.max_batch, self.n_gpus = max_batch, n_gpus
        self.fractions = batch_fractions(scenario).tolist() if max_batch > 1 else None
        self.n_models = len(scenario.models)
        _, self.slope, self.prior = simulation.planner_curves(
            scenario, np.zeros(0, dtype=np.int64), np.zeros(0), readings
        )
        self.variants: dict[tuple, Scenario] = {}
        self.key = self._key(scenario)

    def _key(self, scenario):
        readings = self.readings
        return (
            tuple(tuple(m.steps) for m in scenario.models),
            tuple(scenario.effective_tflop_per_step.tolist()),
            tuple(scenario.effective_tflop_fixed.tolist()),
            tuple(self.slope.tolist()),
            tuple(self.prior.tolist()),
            scenario.capacity_tflops,
            scenario.weight,
            scenario.min_share,
            readings.latency,
            readings.utility,
            readings.saturation,
        )

    def _variant(self, counts) -> tuple[Scenario, tuple | None]:
        """The scenario the planner sees: per-image seconds of the batches it expects."""
        if self.fractions is None or max(counts) <= 1:
            return self.scenario, None
        batch = tuple(max(1, min(self.max_batch, c)) for c in counts)
        scenario = self.variants.get(batch)
        if scenario is None:
            scale = [_factor(g, b) / b for g, b in zip(self.fractions, batch)]
            models = tuple(
                dataclasses.replace(
                    m, step_seconds=m.step_seconds * s, fixed_seconds=m.fixed_seconds * s
                )
                for m, s in zip(self.scenario.models, scale)
            )
            scenario = self.variants[batch] = self.scenario.replace(models=models)
        return scenario, batch

    def plan(self, counts, pending, belief):
        """Steps, compute (TFLOPS) and seconds per image (batch 1) per model, for one GPU.
        ``pending(m)``: the requests queued on model m (for allocators other than exact)."""
        if self.n_gpus > 1:
            counts = [-(-c // self.n_gpus) for c in counts]
        scenario, batch = self._variant(counts)
        if self.exact:
            key = (self.key, batch, tuple(counts))
            hit = self._cache.get(key)
            if hit is None:
                if len(self._cache) > 200_000:
                    self._cache.clear()
                problem = simulation.slot_problem(
                    scenario, counts, self.slope, self.prior, self.readings
                )
                hit = self._unpack(alloc.solve_exact(problem))
                self._cache[key] = hit
        else:
            hit = self._unpack(self._search(scenario, counts, pending, belief))
        return hit if batch is None else self._one_image(*hit)

    def _one_image(self, steps, compute, _):
        """A batch plan's seconds per image are per image of its batch: give those of one image."""
        models = self.scenario.models
        seconds = [
            float(m.image_seconds(z)) * self.scenario.capacity_tflops / c if c > 0 else math.inf
            for m, z, c in zip(models, steps, compute)
        ]
        return steps, compute, seconds

    def _search(self, scenario, counts, pending, belief) -> alloc.Allocation:
        """Any other allocator sees the planner's curves of the requests queued now."""
        models, beliefs = [], []
        for m in range(self.n_models):
            mine = pending(m)[: counts[m]]
            models.append(np.full(len(mine), m, dtype=np.int64))
            beliefs.append(belief[np.asarray(mine, dtype=np.int64)])
            extra = counts[m] - len(mine)  # expected escalations: the scenario's mean prompt
            if extra > 0:
                models.append(np.full(extra, m, dtype=np.int64))
                beliefs.append(np.full(extra, scenario.mean_score))
        return simulation.plan(
            scenario,
            np.concatenate(models),
            np.concatenate(beliefs),
            self.readings,
            self.solve,
            self.rng,
        )

    @staticmethod
    def _unpack(result: alloc.Allocation) -> tuple[list[int], list[float], list[float]]:
        return (
            result.steps.tolist(),
            result.compute_tflops.tolist(),
            result.seconds_per_image.tolist(),
        )


def _cumulative(scenario: Scenario, thresholds: np.ndarray) -> np.ndarray:
    """Eq. 9-10's cumulative rows at ``thresholds``, (K, M-1): a uniform u of a group-k request
    picks the number of edges <= u, as :func:`aigc_lib.assignment.assign_probabilistic` does."""
    probs = assign.assignment_probabilities(scenario.mu, scenario.sigma, thresholds)
    return np.cumsum(probs, axis=1)[:, :-1]


class _Slot:
    """A server of one model's queue: a model's share of one GPU (``"shares"``,
    ``"work-conserving"``) or a whole GPU (``"whole-gpus"``, ``model`` the one it holds, -1 none).
    ``rate``: its compute (TFLOPS) in this period; ``batch``: the requests in service (None: idle),
    of ``batch_model`` at ``steps``, ``work`` effective TFLOP in all, ``left`` of it to do;
    ``load_left``: seconds of loading still to do before it serves."""

    __slots__ = (
        "gpu",
        "model",
        "rate",
        "batch",
        "batch_model",
        "steps",
        "work",
        "left",
        "load_left",
    )

    def __init__(self, gpu: int, model: int):
        self.gpu, self.model, self.rate = gpu, model, 0.0
        self.batch: list[int] | None = None
        self.batch_model, self.steps, self.work, self.left, self.load_left = -1, 0, 0.0, 1.0, 0.0


@dataclass(eq=False)
class _Outcome:
    """What the event loop records per request (plain lists, indexed by request), and its plans.

    ``k_req``: the planning instant that routes each request; ``first``: the model it was routed
    to; ``done_k``, ``done_tau``: the period and the seconds into it at which its last image
    finished (-1: dropped); ``model``, ``steps``, ``batch``: that image's model, steps and batch
    size; ``light_*``: the same for the light image of an escalated request (``light_k`` -1: not
    escalated); ``dropped``: the reason (:data:`DROP_REASONS`) or ""; ``fell_back``: an escalated
    request that kept its light image; ``log``: one row per plan.
    """

    k_req: np.ndarray
    first: list[int]
    done_k: list[int]
    done_tau: list[float]
    model: list[int]
    steps: list[int]
    batch: list[int]
    light_k: list[int]
    light_tau: list[float]
    light_steps: list[int]
    light_batch: list[int]
    dropped: list[str]
    fell_back: list[bool]
    log: list[tuple]

    @classmethod
    def empty(cls, n: int, k_req: np.ndarray, first: list[int]) -> "_Outcome":
        """Nothing finished yet: ``first`` is each request's first model (the router fills it)."""
        return cls(
            k_req, first, [-1] * n, [0.0] * n, [-1] * n, [0] * n, [1] * n,
            [-1] * n, [0.0] * n, [0] * n, [1] * n, [""] * n, [False] * n, [],
        )  # fmt: skip


class _Engine:
    """The event loop of :func:`serve`: per planning instant, route (:meth:`_arrivals`), plan and
    admit (:meth:`_plan`), place models on GPUs (:meth:`_place`), serve until the next instant
    (:meth:`_serve_model` per model, or :meth:`_conserve` for ``"work-conserving"``). Plain Python
    lists: a period touches a handful of requests."""

    def __init__(self, scenario, requests, policy, period, server, slo, route, cascade, planner):
        n, n_models = len(requests), len(scenario.models)
        self.scenario, self.period, self.server, self.route, self.planner = (
            scenario, period, server, route, planner,
        )  # fmt: skip
        self.n, self.n_models, self.max_batch = n, n_models, planner.max_batch
        self.admission = bool(policy.admission)
        self.esc, self.esc_light, self.esc_heavy, self.esc_share = cascade
        arrival = requests.arrival
        k_req = np.ceil(arrival / period).astype(np.int64)  # the first t_k = k T >= arrival
        k_req[(k_req - 1) * period >= arrival] -= 1
        k_req[k_req * period < arrival] += 1
        order = np.argsort(arrival, kind="stable")
        self.k_sorted, self.order = k_req[order].tolist(), order.tolist()
        self.deadline = (arrival + slo).tolist()
        self.out = _Outcome.empty(n, k_req, route.first.tolist())
        self.queues: list[list[int]] = [[] for _ in range(n_models)]
        self.nxt, self.unfinished = [0] * n_models, [0] * n_models
        self.join_k, self.join_tau = [0] * n, [0.0] * n
        self.eff_step = scenario.effective_tflop_per_step.tolist()
        self.eff_fixed = scenario.effective_tflop_fixed.tolist()
        self.capacity = scenario.capacity_tflops
        self.fewest = [float(m.image_seconds(m.steps[0])) for m in scenario.models]
        self.fractions = planner.fractions or [0.0] * n_models
        self.charges = self._charges()
        self.whole = server.sharing == "whole-gpus"
        self.load = load_seconds(scenario).tolist() if self.whole else [0.0] * n_models
        gpus = range(server.n_gpus)
        if self.whole:
            self.slots = [_Slot(j, -1) for j in gpus]
        else:
            self.slots = [_Slot(j, m) for j in gpus for m in range(n_models)]
        self.shifted: dict[tuple, np.ndarray] = {}  # load_aware: eq. 9-10 rows per queue state

    def _charges(self) -> list[float]:
        """Per model, the estimator seconds (whole GPU) added to each first-stage image."""
        if not self.server.charge_estimators:
            return [0.0] * self.n_models
        cost = estimator_seconds()
        base = cost["predictor"] if self.route.predicts else 0.0
        return [
            base + (cost["discriminator"] if m == self.esc_light else 0.0)
            for m in range(self.n_models)
        ]

    def run(self) -> None:
        """Plan every instant with work until every request is served or dropped."""
        n, p = self.n, 0
        k = self.k_sorted[0] if n else 0
        while True:
            if not any(self.unfinished):
                if p >= n:
                    break
                k = max(k, self.k_sorted[p])
            start_p = p
            while p < n and self.k_sorted[p] <= k:
                p += 1
            fresh = self._arrivals(self.order[start_p:p])
            steps, compute, seconds = self._plan(k, fresh)
            if self.server.sharing == "work-conserving":
                self._conserve(k, steps, compute, seconds)
            else:
                for m in range(self.n_models):
                    self._serve_model(k, m, steps[m], seconds[m])
            k += 1
        self._check_conservation()

    def _arrivals(self, batch: list[int]) -> list[list[int]]:
        """The requests routed at this instant, per model (a load-aware rule routes them now)."""
        first, route = self.out.first, self.route
        if batch and route.uniforms is not None:
            counts = tuple(self.unfinished)
            cumulative = self.shifted.get(counts)
            if cumulative is None:
                backlog = sum(c * s for c, s in zip(counts, self.fewest))
                thresholds = route.thresholds + route.kappa * backlog
                cumulative = self.shifted[counts] = _cumulative(self.scenario, thresholds)
            idx = np.asarray(batch, dtype=np.int64)
            chosen = (cumulative[route.group[idx]] <= route.uniforms[idx][:, None]).sum(axis=1)
            for r, m in zip(batch, chosen.tolist()):
                first[r] = m
        fresh: list[list[int]] = [[] for _ in range(self.n_models)]
        for r in batch:
            fresh[first[r]].append(r)
        return fresh

    def _pending(self, m: int) -> list[int]:
        """The unfinished requests of model m in queue order: in service, then waiting."""
        busy = [
            r for s in self.slots if s.batch is not None and s.batch_model == m for r in s.batch
        ]
        return busy + self.queues[m][self.nxt[m] :]

    def _plan(self, k: int, fresh: list[list[int]]):
        """Plan for the queued requests and the fresh ones, admit the fresh, log the plan."""
        counts = [u + len(f) for u, f in zip(self.unfinished, fresh)]
        planned = list(counts)
        light, heavy = self.esc_light, self.esc_heavy
        if light >= 0 and self.esc_share > 0 and counts[light]:
            planned[heavy] += math.ceil(self.esc_share * counts[light] - 1e-9)
        pending = lambda m: self._pending(m) + fresh[m]  # noqa: E731
        steps, compute, seconds = self.planner.plan(planned, pending, self.route.belief)
        placed = self._place(counts, compute) if self.whole else ()
        self._rates(compute)
        for m, mine in enumerate(fresh):
            if self.admission and mine:
                mine = self._admit(k, m, mine, steps[m])
            self.queues[m].extend(mine)
            self.unfinished[m] += len(mine)
            for r in mine:
                self.join_k[r] = k
        self.out.log.append((k, *counts, *planned, *steps, *compute, *placed))
        return steps, compute, seconds

    def _rates(self, compute: list[float]) -> None:
        for s in self.slots:
            s.rate = self.capacity if self.whole else compute[s.model]

    def _place(self, counts: list[int], compute: list[float]) -> tuple[int, ...]:
        """``"whole-gpus"``: GPUs per model from the plan's shares (largest remainder; every model
        with work gets one while GPUs last); a GPU moves only if its model has more than it
        wants, and a moved GPU loads its new model. Returns GPUs per model and the loads."""
        want = _whole_gpus(counts, compute, self.server.n_gpus)
        have, spare = [0] * self.n_models, []
        for s in self.slots:
            if s.model >= 0 and have[s.model] < want[s.model]:
                have[s.model] += 1
            else:
                spare.append(s)
        loads = 0
        for m in range(self.n_models):
            while have[m] < want[m] and spare:
                s = spare.pop(0)  # a batch in progress ends first, then the GPU loads m
                s.model, s.load_left = m, self.load[m]
                have[m] += 1
                loads += 1
        held = [sum(s.model == m for s in self.slots) for m in range(self.n_models)]
        return (*held, loads)

    def _admit(self, k: int, m: int, fresh: list[int], steps: int) -> list[int]:
        """Admission control at routing: drop a fresh request whose image, after the work queued
        ahead of it on model m at the model's planned rate, would end after its deadline."""
        rate = sum(s.rate for s in self.slots if s.model == m)
        if rate <= 0:
            return fresh
        waiting = len(self.queues[m]) - self.nxt[m]
        b = max(1, min(self.max_batch, waiting + len(fresh)))
        image = self.eff_step[m] * steps + self.eff_fixed[m]
        each = _factor(self.fractions[m], b) / b * image + self.charges[m] * self.capacity
        ahead = waiting * each + sum(
            s.left * s.work + s.load_left * s.rate
            for s in self.slots
            if s.model == m and (s.batch is not None or s.load_left > 0)
        )
        kept = []
        for r in fresh:
            if k * self.period + (ahead + each) / rate > self.deadline[r]:
                self.out.dropped[r] = "admission"
            else:
                ahead += each
                kept.append(r)
        return kept

    def _serve_model(self, k: int, m: int, z_new: int, full_new: float) -> None:
        """Model m's slots serve its queue first-in first-out until the period ends; the slot free
        first takes the next batch."""
        live = [s for s in self.slots if s.model == m and s.rate > 0]
        if not live:
            return
        clock = [0.0] * len(live)
        while live:
            i = clock.index(min(clock)) if len(live) > 1 else 0
            t = self._step(k, live[i], clock[i], z_new, full_new)
            if t is None:
                del live[i], clock[i]
            else:
                clock[i] = t

    def _step(self, k, s: _Slot, t: float, z_new: int, full_new: float) -> float | None:
        """One thing slot ``s`` does from t (s into period k): finish its batch, load its model or
        start a batch. Returns when it is free again, None when it has nothing more to do."""
        period = self.period
        if s.batch is None:
            if s.load_left > 0:
                if t + s.load_left > period:
                    s.load_left -= period - t
                    return None
                t, s.load_left = t + s.load_left, 0.0
            m = s.model
            full_one = full_new if not self.whole else self._image(m, z_new, 1) / s.rate
            members, t = self._take(k, m, t, full_one)
            if not members:
                return None
            b = len(members)
            work = self._image(m, z_new, b) + self._charge(m, members)
            s.batch, s.batch_model, s.steps, s.work, s.left = members, m, z_new, work, 1.0
            if b == 1 and not self.whole and work == self._image(m, z_new, 1):
                full = full_new  # the planner's own seconds: batch 1 is today's model exactly
            else:
                full = work / s.rate
        else:
            full = s.work / s.rate
        finish = t + s.left * full
        if finish > period:
            s.left -= (period - t) / full
            return None
        self._finish(k, s, finish)
        return finish

    def _image(self, m: int, z: int, b: int) -> float:
        """Effective TFLOP of a batch of b images of model m at z steps (data/serving.yaml)."""
        return _factor(self.fractions[m], b) * (z * self.eff_step[m] + self.eff_fixed[m])

    def _charge(self, m: int, members: list[int]) -> float:
        """Estimator work (effective TFLOP) of a batch: first-stage images only."""
        c = self.charges[m]
        if c == 0.0:
            return 0.0
        light_k = self.out.light_k
        return sum(c * self.capacity for r in members if light_k[r] < 0)

    def _take(self, k: int, m: int, t: float, full_one: float, wait: bool = True):
        """The batch a free slot of model m starts at or after t (s into period k): up to
        max_batch requests from the head of the queue that have joined it by then; with
        admission control a request whose image could not end by its deadline is dropped
        ("expired"; an escalated one keeps its light image). Returns the batch and its start."""
        q, i, start = self.queues[m], self.nxt[m], t
        members: list[int] = []
        base = k * self.period
        while i < len(q) and len(members) < self.max_batch:
            r = q[i]
            if self.join_k[r] == k and self.join_tau[r] > start:
                if members or not wait:
                    break
                start = self.join_tau[r]
            if start >= self.period:
                break
            i += 1
            if self.admission and base + start + full_one > self.deadline[r]:
                self._expire(k, m, r, start)
                continue
            members.append(r)
        self.nxt[m] = i
        return members, start

    def _expire(self, k: int, m: int, r: int, tau: float) -> None:
        out = self.out
        self.unfinished[m] -= 1
        if out.light_k[r] >= 0:  # a cascade's second stage: deliver the light image now
            out.done_k[r], out.done_tau[r] = k, tau
            out.model[r], out.steps[r] = self.esc_light, out.light_steps[r]
            out.batch[r] = out.light_batch[r]
            out.light_k[r], out.fell_back[r] = -1, True
        else:
            out.dropped[r] = "expired"

    def _finish(self, k: int, s: _Slot, finish: float) -> None:
        """Slot ``s``'s batch is done at ``finish`` (s into period k): record it, or send a
        cascade's escalated light images on to the heavy queue."""
        out, m, b = self.out, s.batch_model, len(s.batch)
        for r in s.batch:
            if m == self.esc_light and self.esc[r] and out.light_k[r] < 0:
                out.light_k[r], out.light_tau[r], out.light_steps[r] = k, finish, s.steps
                out.light_batch[r] = b
                self.join_k[r], self.join_tau[r] = k, finish
                self.queues[self.esc_heavy].append(r)
                self.unfinished[self.esc_heavy] += 1
            else:
                out.done_k[r], out.done_tau[r] = k, finish
                out.model[r], out.steps[r], out.batch[r] = m, s.steps, b
        self.unfinished[m] -= b
        s.batch = None

    def _conserve(self, k: int, steps: list[int], compute: list[float], seconds: list[float]):
        """``"work-conserving"``: between events (a batch ends, a batch starts) every GPU's
        planned compute goes to its slots with work, in proportion to their planned shares."""
        now, period = 0.0, self.period
        while now < period:
            for s in self.slots:
                if s.batch is None and s.rate > 0:
                    members, _ = self._take(k, s.model, now, seconds[s.model], wait=False)
                    if members:
                        work = self._image(s.model, steps[s.model], len(members))
                        work += self._charge(s.model, members)
                        s.batch, s.batch_model, s.steps = members, s.model, steps[s.model]
                        s.work, s.left = work, 1.0
            busy = [s for s in self.slots if s.batch is not None and s.rate > 0]
            if not busy:
                return
            rates = _conserving_rates(busy, self.slots)
            ends = [now + s.left * s.work / rate for s, rate in zip(busy, rates)]
            t_next = min(min(ends), period)
            for s, rate, end in zip(busy, rates, ends):
                if end <= t_next:
                    self._finish(k, s, end)
                else:
                    s.left -= (t_next - now) * rate / s.work
            now = t_next

    def _check_conservation(self) -> None:
        """Arrivals = served + dropped, each request exactly once (the simulator's own check)."""
        out = self.out
        served = sum(k >= 0 for k in out.done_k)
        dropped = sum(bool(d) for d in out.dropped)
        both = sum(k >= 0 and bool(d) for k, d in zip(out.done_k, out.dropped))
        if served + dropped != self.n or both or any(self.unfinished):
            raise RuntimeError(
                f"serve: {self.n} arrivals but {served} served and {dropped} dropped "
                f"({both} both, {sum(self.unfinished)} unfinished): a simulator defect"
            )


def _conserving_rates(busy: list[_Slot], slots: list[_Slot]) -> list[float]:
    """Each busy slot's rate: its planned rate x its GPU's planned total / the GPU's busy total."""
    planned: dict[int, float] = {}
    active: dict[int, float] = {}
    for s in slots:
        planned[s.gpu] = planned.get(s.gpu, 0.0) + s.rate
    for s in busy:
        active[s.gpu] = active.get(s.gpu, 0.0) + s.rate
    return [s.rate * planned[s.gpu] / active[s.gpu] for s in busy]


def _whole_gpus(counts: list[int], compute: list[float], n_gpus: int) -> list[int]:
    """Whole GPUs per model: the plan's shares of the models with work x ``n_gpus``, rounded by
    largest remainder; then every model with work gets at least one while another has two."""
    work = [m for m, c in enumerate(counts) if c > 0]
    want = [0] * len(counts)
    if not work:
        return want
    total = sum(compute[m] for m in work)
    ideal = {m: (compute[m] / total if total > 0 else 1 / len(work)) * n_gpus for m in work}
    for m in work:
        want[m] = math.floor(ideal[m])
    order = sorted(work, key=lambda m: (want[m] - ideal[m], m))
    for m in order[: n_gpus - sum(want)]:
        want[m] += 1
    for m in work:
        if want[m] == 0:
            donor = max(range(len(want)), key=lambda j: (want[j], -j))
            if want[donor] < 2:
                break
            want[donor] -= 1
            want[m] = 1
    return want


def _result(
    scenario, requests, policy, readings, period, allocation, route, engine, extra
) -> ServingResult:
    """The tasks and plans tables of a run (:class:`ServingResult`)."""
    settings = {
        "policy": policy.name,
        "routing": policy.routing,
        "escalation": policy.escalation,
        "knobs": dict(policy.knobs),
        "slot_seconds": period,
        "seed": requests.seed,
        "n_requests": len(requests),
        "allocation": allocation if isinstance(allocation, str) else "callable",
        "readings": readings,
        "scenario": scenario.name,
        "n_models": len(scenario.models),
        **extra,
        "counts": _counts(engine.out),
    }
    return ServingResult(
        tasks=_tasks(scenario, requests, readings, period, route, engine),
        plans=_plans(scenario, engine, period),
        settings=settings,
    )


def _tasks(scenario, requests, readings, period, route, engine) -> pd.DataFrame:
    """One row per request (:class:`ServingResult`); a dropped request has NaN outcomes."""
    out, names = engine.out, scenario.model_names
    served = np.asarray(out.done_k) >= 0
    model = np.where(served, np.asarray(out.model, dtype=np.int64), 0)
    steps = np.where(served, np.asarray(out.steps, dtype=np.int64), 1)  # 1: scored, then NaN
    escalated = np.asarray(out.light_k) >= 0
    completion = np.where(
        served, np.asarray(out.done_k, dtype=np.int64) * period + np.asarray(out.done_tau), np.nan
    )
    latency = np.where(
        served,
        (np.asarray(out.done_k, dtype=np.int64) * period - requests.arrival)
        + np.asarray(out.done_tau),
        np.nan,
    )
    d = requests.draws
    noise = np.where(escalated, d["second_image_noise"].to_numpy(), d["image_noise"].to_numpy())
    score = simulation.true_scores(
        scenario, route.group, route.deviation, model, steps, noise, readings.saturation
    )
    score = np.where(served, score, np.nan)
    gpu = np.where(served, _gpu_seconds(scenario, engine, model, steps, escalated), 0.0)
    first = np.asarray(out.first, dtype=np.int64)
    first_done = np.where(
        escalated,
        np.asarray(out.light_k, dtype=np.int64) * period + np.asarray(out.light_tau),
        np.nan,
    )
    cat = lambda codes: pd.Categorical.from_codes(codes, categories=names, ordered=True)  # noqa: E731
    return pd.DataFrame(
        {
            "request": np.arange(len(requests)),
            "arrival": requests.arrival,
            "prompt_id": d["prompt_id"].to_numpy(),
            "group": d["group"],
            "first_model": cat(first),
            "model": cat(np.where(served, model, -1)),
            "steps": np.where(served, steps, 0),
            "escalated": escalated,
            "planned_at": out.k_req * period,
            "first_done": first_done,
            "completion": completion,
            "latency": latency,
            "score": score,
            "utility": score - scenario.weight * latency,
            "gpu_seconds": gpu,
            "deviation": route.deviation,
            "batch": np.asarray(out.batch, dtype=np.int64),
            "dropped": np.asarray(out.dropped, dtype=object),
            "fell_back": np.asarray(out.fell_back, dtype=bool),
        }
    )


def _gpu_seconds(scenario, engine, model, steps, escalated) -> np.ndarray:
    """Whole-GPU seconds of every image a request caused: its share of each batch (batch factor
    / batch size) plus the estimator time charged to its first image."""
    out = engine.out
    step_seconds = np.array([m.step_seconds for m in scenario.models])
    fixed_seconds = np.array([m.fixed_seconds for m in scenario.models])
    g = np.asarray(engine.fractions)
    charges = np.asarray(engine.charges)
    batch = np.asarray(out.batch, dtype=np.int64)
    gpu = (steps * step_seconds[model] + fixed_seconds[model]) * (
        (1.0 + g[model] * (batch - 1)) / batch
    )
    first = np.asarray(out.first, dtype=np.int64)
    light = np.where(escalated, first, 0)
    light_batch = np.asarray(out.light_batch, dtype=np.int64)
    light_gpu = (np.asarray(out.light_steps) * step_seconds[light] + fixed_seconds[light]) * (
        (1.0 + g[light] * (light_batch - 1)) / light_batch
    )
    gpu = gpu + np.where(escalated, light_gpu, 0.0)
    return gpu + charges[np.where(first >= 0, first, 0)]


def _counts(out: _Outcome) -> dict[str, Any]:
    """Arrivals, served and dropped by reason (conservation, checked by the engine)."""
    dropped = {reason: sum(d == reason for d in out.dropped) for reason in DROP_REASONS}
    return {
        "arrivals": len(out.done_k),
        "served": sum(k >= 0 for k in out.done_k),
        "dropped": dropped,
    }


def _plans(scenario, engine, period) -> pd.DataFrame:
    names = scenario.model_names
    columns = (
        ["k"]
        + [f"queued_{m}" for m in names]
        + [f"planned_{m}" for m in names]
        + [f"steps_{m}" for m in names]
        + [f"compute_{m}" for m in names]
    )
    if engine.whole:
        columns += [f"gpus_{m}" for m in names] + ["loads"]
    log = engine.out.log
    plans = pd.DataFrame(log, columns=columns) if log else pd.DataFrame(columns=columns)
    plans.insert(0, "time", plans.pop("k").to_numpy(dtype=np.int64) * period)
    fewest = np.array([m.image_seconds(m.steps[0]) for m in scenario.models])
    queued = plans[[f"queued_{m}" for m in names]].to_numpy(dtype=float)
    plans.insert(1, "backlog_seconds", queued @ fewest if len(plans) else np.zeros(0))
    return plans


def _check_routing(scenario: Scenario, routing: Any) -> str:
    validate.instance(routing, Routing, "policy.routing")
    names = simulation.assignment_names(scenario)
    rules = (*names, "predictor", "load_aware")
    if routing.rule not in rules:
        raise ValueError(f"policy.routing.rule: expected one of {rules}, got {routing.rule!r}")
    if routing.thresholds is not None:
        theta = validate.finite_vector(routing.thresholds, "thresholds")
        if theta.size != len(scenario.models) - 1 or np.any(np.diff(theta) <= 0):
            raise ValueError(
                f"thresholds: expected {len(scenario.models) - 1} strictly increasing numbers, "
                f"got {list(routing.thresholds)}"
            )
    return routing.rule


def _check_escalation(scenario: Scenario, escalation: Any) -> tuple[int, int, float]:
    validate.instance(escalation, Escalation, "policy.escalation")
    light, heavy = _pair(scenario, escalation.light, escalation.heavy, "light", "heavy")
    if len(scenario.models[light].steps) != 1:
        raise ValueError(
            f"light: {scenario.model_names[light]!r} has several step counts; a cascade's first "
            "stage must have one (else its escalations depend on the plan)"
        )
    share = validate.number(escalation.share, "share", low=0.0, high=1.0)
    validate.number(escalation.disc_rho, "disc_rho", low=0.0, high=1.0)
    return light, heavy, share


def _pair(scenario: Scenario, light: Any, heavy: Any, light_name: str, heavy_name: str):
    """A (light, heavy) pair of model indices, heavy None meaning the largest; heavy > light."""
    validate.instance(scenario, Scenario, "scenario")
    n_models = len(scenario.models)
    light = validate.whole(light, light_name)
    heavy = n_models - 1 if heavy is None else validate.whole(heavy, heavy_name)
    if light >= n_models or heavy >= n_models:
        raise ValueError(f"{heavy_name}: expected model indices below {n_models}")
    if heavy <= light:
        raise ValueError(
            f"{heavy_name}: expected a model larger than the light one ({light}), got {heavy}"
        )
    return light, heavy


def _target_mixture(scenario, target, light, heavy, readings):
    """Per group, mean and sd of the discriminator's target; its overall mean and sd."""
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS}, got {target!r}")
    sat = readings.saturation
    specs = scenario.models
    light_mean = true_score(scenario, scenario.mu, light, specs[light].steps[0], sat)
    beta_l, beta_h = specs[light].score_beta, specs[heavy].score_beta
    if target == "gain":
        heavy_mean = true_score(scenario, scenario.mu, heavy, specs[heavy].steps[0], sat)
        means = heavy_mean - light_mean
        sds = np.sqrt(((beta_h - beta_l) * scenario.sigma) ** 2 + scenario.noise_sd**2)
    else:
        means = -light_mean
        sds = np.sqrt((beta_l * scenario.sigma) ** 2 + scenario.noise_sd**2)
    w = scenario.shares
    mean = float(w @ means)
    sd = float(np.sqrt(w @ (sds**2 + means**2) - mean**2))
    return means, sds, mean, sd


def _mixture_quantile(means: np.ndarray, sds: np.ndarray, weights: np.ndarray, p: float) -> float:
    """The p-quantile of a mixture of normals; -inf at p = 0 and +inf at p = 1."""
    if p <= 0:
        return -math.inf
    if p >= 1:
        return math.inf
    if means.size == 1:
        return float(means[0] + sds[0] * ndtri(p))
    lo = float(np.min(means - 10 * sds))
    hi = float(np.max(means + 10 * sds))
    return float(brentq(lambda x: float(weights @ ndtr((x - means) / sds)) - p, lo, hi, xtol=1e-9))


def _threshold(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected a number (may be -inf or inf), got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number (may be -inf or inf), got {value!r}") from None
    if math.isnan(x):
        raise ValueError(f"{name}: expected a number, got NaN")
    return x
