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
* each model serves its queue first-in first-out at its share until the next instant; an image not
  finished by then continues at the new share with the steps it started with (a request in service
  keeps its model and steps); an image not yet started takes the steps of the plan under which it
  starts;
* an :class:`Escalation` (a cascade) regenerates some light images on a heavier model: the request
  joins the heavy queue when its light image is done;
* the ground truth scores every delivered image (:func:`aigc_lib.simulation.true_scores`), and a
  request's latency is its completion minus its arrival. Nothing is dropped: every request is
  served, the run continues after the last arrival until every queue is empty.

With every request of slot s arriving at s T and the GPU idle at each slot's start, :func:`serve`
gives the per-task scores and latencies of :func:`aigc_lib.simulation.simulate` (the paper's model
as a special case; tested). :func:`reference_seconds` and :func:`arrival_rate` express load as
utilisation of the GPU; :func:`summarise` gives goodput, SLO attainment and latency percentiles.

Units: seconds, CLIPScore points, TFLOPS. Taught in ``notebooks/07_peer_serving_policies.ipynb``.
"""

from __future__ import annotations

import copy
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

COUNTS = ("n_served", "n_dropped", *(f"dropped_{r}" for r in ("admission", "expired")))
"""The conservation counts :func:`summarise` adds: arrivals (``n_requests``) = ``n_served`` +
``n_dropped``, and ``n_dropped`` = the sum of ``dropped_<reason>`` over :data:`DROP_REASONS`."""

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
        return yaml.safe_load(handle)


def serving_data(path: str | Path | None = None) -> dict:
    """The serving hardware's numbers (``data/serving.yaml``, :data:`SERVING_DATA`): batch curves,
    weights, host link, estimator times, each ``{value, source, reason}``. A copy; docs/SPEC.md
    section 8. Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
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
    exactly 1.0 at batch 1 (data/serving.yaml, ``batch_rule``)."""
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
    ``settings["counts"]``.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    if server != Server() or policy.max_batch != 1 or policy.admission:
        raise NotImplementedError("serve: batching, admission and sharing modes come next")
    validate.instance(scenario, Scenario, "scenario")
    validate.instance(requests, Requests, "requests")
    validate.instance(policy, Policy, "policy")
    validate.instance(readings, Readings, "readings")
    period = validate.number(slot_seconds, "slot_seconds", low=0.0, low_open=True)
    if readings.latency != "fifo":
        raise ValueError(
            f"readings: serve models queues, so latency must be 'fifo', got {readings.latency!r}"
        )
    solve = simulation.solver(allocation, annealing_options, readings)
    exact = allocation == "exact"
    n_models = len(scenario.models)
    n = len(requests)
    d = requests.draws
    group = d["group"].cat.codes.to_numpy().astype(np.int64)
    deviation = d["deviation"].to_numpy()
    xi = d["predictor_noise"].to_numpy()
    assign_rng, alloc_rng = (
        np.random.default_rng(s) for s in simulation.streams(requests.seed)[2:]
    )

    routing = policy.routing
    rule = _check_routing(scenario, routing)
    planner_rho = readings.predictor_rho if rule == "probabilistic" else 0.0
    belief, belief_sd = simulation.beliefs(scenario, group, deviation, xi, planner_rho)
    first = np.full(n, -1, dtype=np.int64)
    uniforms = None
    theta = scenario.thresholds if routing.thresholds is None else routing.thresholds
    base_thresholds = np.asarray(theta, dtype=float)
    if rule in simulation.assignment_names(scenario):
        planned = scenario.replace(thresholds=tuple(base_thresholds))
        first = simulation.assign_models(
            planned, rule, group, belief, belief_sd, readings, assign_rng
        )
    elif rule == "predictor":
        light_r, heavy_r = _pair(scenario, routing.light, routing.heavy, "routing.light", "heavy")
        rho = validate.number(routing.predictor_rho, "predictor_rho", low=0.0, high=1.0)
        predicted, _ = simulation.beliefs(scenario, group, deviation, xi, rho)
        route_at = _threshold(routing.route_at, "route_at")
        first = np.where(predicted >= route_at, heavy_r, light_r).astype(np.int64)
    else:  # load_aware: eq. 9-10 at each plan, on the uniforms assign_probabilistic would draw
        uniforms = assign_rng.random(n)
        kappa = validate.number(routing.kappa, "kappa", low=0.0)

    escalation = policy.escalation
    escalate = np.zeros(n, dtype=bool)
    esc_light = esc_heavy = -1
    esc_share = 0.0
    if escalation is not None:
        esc_light, esc_heavy, esc_share = _check_escalation(scenario, escalation)
        view = discriminator(
            scenario,
            requests,
            escalation.disc_rho,
            escalation.target,
            esc_light,
            esc_heavy,
            readings,
        )
        cut = escalation_threshold(
            scenario,
            esc_share,
            escalation.disc_rho,
            escalation.target,
            esc_light,
            esc_heavy,
            readings,
        )
        escalate = view["output"].to_numpy() >= cut

    # planning instant of each request: the first t_k = k T at or after its arrival
    arrival = requests.arrival
    k_req = np.ceil(arrival / period).astype(np.int64)
    k_req[(k_req - 1) * period >= arrival] -= 1
    k_req[k_req * period < arrival] += 1
    order = np.argsort(arrival, kind="stable")

    eff_step = scenario.effective_tflop_per_step.tolist()
    eff_fixed = scenario.effective_tflop_fixed.tolist()
    fewest = [float(m.image_seconds(m.steps[0])) for m in scenario.models]
    planner = _Planner(scenario, readings, solve, exact, alloc_rng)

    # the event loop (plain Python lists: a period touches a handful of requests)
    k_sorted, order_l = k_req[order].tolist(), order.tolist()
    first_l, esc_l = first.tolist(), escalate.tolist()
    queues: list[list[int]] = [[] for _ in range(n_models)]
    heads = [0] * n_models
    remaining, started, img_steps = [1.0] * n, [False] * n, [0] * n
    join_k, join_tau = [0] * n, [0.0] * n
    out = _Outcome.empty(n, k_req, first_l)
    done_k, done_tau, final_model, final_steps = out.done_k, out.done_tau, out.model, out.steps
    light_k, light_tau, light_steps = out.light_k, out.light_tau, out.light_steps
    log = out.log
    shifted: dict[tuple, np.ndarray] = {}  # load_aware: cumulative eq. 9-10 rows per queue state
    p, k = 0, (k_sorted[0] if n else 0)
    while True:
        counts = [len(queues[m]) - heads[m] for m in range(n_models)]
        if not any(counts):
            if p >= n:
                break
            k = max(k, k_sorted[p])
        start_p = p
        while p < n and k_sorted[p] <= k:
            p += 1
        if p > start_p:
            batch = order_l[start_p:p]
            if uniforms is not None:
                cumulative = shifted.get(tuple(counts))
                if cumulative is None:
                    backlog = sum(c * s for c, s in zip(counts, fewest))
                    cumulative = _cumulative(scenario, base_thresholds + kappa * backlog)
                    shifted[tuple(counts)] = cumulative
                idx = np.asarray(batch, dtype=np.int64)
                chosen = (cumulative[group[idx]] <= uniforms[idx][:, None]).sum(axis=1)
                for r, m in zip(batch, chosen.tolist()):
                    first_l[r] = m
            for r in batch:
                m = first_l[r]
                queues[m].append(r)
                join_k[r] = k
            counts = [len(queues[m]) - heads[m] for m in range(n_models)]
        planned_counts = list(counts)
        if esc_light >= 0 and esc_share > 0 and counts[esc_light]:
            planned_counts[esc_heavy] += math.ceil(esc_share * counts[esc_light] - 1e-9)
        steps, compute, seconds = planner.plan(planned_counts, queues, heads, belief)
        log.append((k, *counts, *planned_counts, *steps, *compute))

        for m in range(n_models):
            q, h = queues[m], heads[m]
            if h == len(q):
                continue
            c = compute[m]
            if c <= 0:
                continue
            z_new, full_new = steps[m], seconds[m]
            free = 0.0
            while h < len(q):
                r = q[h]
                start = free
                if join_k[r] == k and join_tau[r] > start:
                    start = join_tau[r]
                if start >= period:
                    break
                if started[r]:
                    full = (img_steps[r] * eff_step[m] + eff_fixed[m]) / c
                else:
                    started[r], img_steps[r], full = True, z_new, full_new
                finish = start + remaining[r] * full
                if finish > period:
                    remaining[r] -= (period - start) / full
                    break
                h += 1
                free = finish
                if m == esc_light and esc_l[r]:  # the light image is done: on to the heavy queue
                    light_k[r], light_tau[r], light_steps[r] = k, finish, img_steps[r]
                    started[r], remaining[r] = False, 1.0
                    join_k[r], join_tau[r] = k, finish
                    queues[esc_heavy].append(r)
                else:
                    done_k[r], done_tau[r] = k, finish
                    final_model[r], final_steps[r] = m, img_steps[r]
            heads[m] = h
        k += 1

    return _result(scenario, requests, policy, readings, period, allocation, group, deviation, out)


def summarise(
    result: ServingResult, scenario: Scenario, slo_seconds: float = SLO_SECONDS
) -> dict[str, float]:
    """One run in the numbers of :data:`METRICS`.

    ``goodput``: requests finished within ``slo_seconds`` per second of the arrival window (first
    to last arrival); ``slo_attainment``: their share; latency percentiles and mean (s);
    ``mean_score`` of the delivered images (points); ``mean_utility``: mean of score - lambda x
    latency; ``gpu_seconds_per_image``: every image generated at the whole GPU, per request;
    ``escalation_share``; ``max_queue``: the most requests queued at a planning instant.
    A run without requests gives NaN (and 0 requests).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    slo = validate.number(slo_seconds, "slo_seconds", low=0.0, low_open=True)
    validate.instance(result, ServingResult, "result")
    tasks = result.tasks
    if len(tasks) == 0:
        return {**dict.fromkeys(METRICS, math.nan), "n_requests": 0}
    latency = tasks["latency"].to_numpy()
    arrival = tasks["arrival"].to_numpy()
    window = float(arrival.max() - arrival.min())
    on_time = latency <= slo
    queued = result.plans.filter(like="queued_").sum(axis=1)
    return {
        "n_requests": len(tasks),
        "goodput": float(on_time.sum() / window) if window > 0 else math.nan,
        "slo_attainment": float(on_time.mean()),
        "p50_latency": float(np.quantile(latency, 0.5)),
        "p95_latency": float(np.quantile(latency, 0.95)),
        "p99_latency": float(np.quantile(latency, 0.99)),
        "mean_latency": float(latency.mean()),
        "mean_score": float(tasks["score"].mean()),
        "mean_utility": float(tasks["utility"].mean()),
        "gpu_seconds_per_image": float(tasks["gpu_seconds"].mean()),
        "escalation_share": float(tasks["escalated"].mean()),
        "max_queue": float(queued.max()) if len(queued) else 0.0,
    }


# --- pieces ---------------------------------------------------------------------------------------


class _Planner:
    """Plans one instant: eq. 11 for the tasks queued per model (cached by counts when exact)."""

    _cache: dict[tuple, tuple[list[int], list[float], list[float]]] = {}

    def __init__(self, scenario, readings, solve, exact, rng):
        self.scenario, self.readings, self.solve, self.exact, self.rng = (
            scenario,
            readings,
            solve,
            exact,
            rng,
        )
        n_models = len(scenario.models)
        _, self.slope, self.prior = simulation.planner_curves(
            scenario, np.zeros(0, dtype=np.int64), np.zeros(0), readings
        )
        self.key = (
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
        self.n_models = n_models

    def plan(self, counts, queues, heads, belief):
        if self.exact:
            key = (self.key, tuple(counts))
            hit = self._cache.get(key)
            if hit is None:
                if len(self._cache) > 200_000:
                    self._cache.clear()
                problem = simulation.slot_problem(
                    self.scenario, counts, self.slope, self.prior, self.readings
                )
                hit = self._unpack(alloc.solve_exact(problem))
                self._cache[key] = hit
            return hit
        # any other allocator sees the planner's curves of the requests queued now
        models, beliefs = [], []
        for m in range(self.n_models):
            mine = queues[m][heads[m] :]
            models.append(np.full(len(mine), m, dtype=np.int64))
            beliefs.append(belief[np.asarray(mine, dtype=np.int64)])
            extra = counts[m] - len(mine)  # expected escalations: the scenario's mean prompt
            if extra > 0:
                models.append(np.full(extra, m, dtype=np.int64))
                beliefs.append(np.full(extra, self.scenario.mean_score))
        result = simulation.plan(
            self.scenario,
            np.concatenate(models),
            np.concatenate(beliefs),
            self.readings,
            self.solve,
            self.rng,
        )
        return self._unpack(result)

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


@dataclass(eq=False)
class _Outcome:
    """What the event loop records per request (plain lists, indexed by request), and its plans.

    ``k_req``: the planning instant that routes each request; ``first``: the model it was routed
    to; ``done_k``, ``done_tau``: the period and the seconds into it at which its last image
    finished; ``model``, ``steps``: that image's model and steps; ``light_*``: the same for the
    light image of an escalated request (``light_k`` -1: not escalated); ``log``: one row per plan.
    """

    k_req: np.ndarray
    first: list[int]
    done_k: list[int]
    done_tau: list[float]
    model: list[int]
    steps: list[int]
    light_k: list[int]
    light_tau: list[float]
    light_steps: list[int]
    log: list[tuple]

    @classmethod
    def empty(cls, n: int, k_req: np.ndarray, first: list[int]) -> "_Outcome":
        """Nothing finished yet: ``first`` is each request's first model (the router fills it)."""
        return cls(
            k_req,
            first,
            [-1] * n,
            [0.0] * n,
            [-1] * n,
            [0] * n,
            [-1] * n,
            [0.0] * n,
            [0] * n,
            [],
        )


def _result(
    scenario, requests, policy, readings, period, allocation, group, deviation, out: _Outcome
) -> ServingResult:
    first = np.asarray(out.first, dtype=np.int64)
    k_req, done_k, done_tau, final_model, final_steps = (
        out.k_req,
        out.done_k,
        out.done_tau,
        out.model,
        out.steps,
    )
    light_k, light_tau, light_steps, log = out.light_k, out.light_tau, out.light_steps, out.log
    n_models = len(scenario.models)
    names = scenario.model_names
    d = requests.draws
    arrival = requests.arrival
    model = np.asarray(final_model, dtype=np.int64)
    steps = np.asarray(final_steps, dtype=np.int64)
    escalated = np.asarray(light_k) >= 0
    completion_k = np.asarray(done_k, dtype=np.int64) * period
    latency = (completion_k - arrival) + np.asarray(done_tau)
    noise = np.where(escalated, d["second_image_noise"].to_numpy(), d["image_noise"].to_numpy())
    score = simulation.true_scores(
        scenario, group, deviation, model, steps, noise, readings.saturation
    )
    step_seconds = np.array([m.step_seconds for m in scenario.models])
    fixed_seconds = np.array([m.fixed_seconds for m in scenario.models])
    gpu = steps * step_seconds[model] + fixed_seconds[model]
    light_model = np.where(escalated, first, 0)
    gpu = gpu + np.where(
        escalated,
        np.asarray(light_steps) * step_seconds[light_model] + fixed_seconds[light_model],
        0.0,
    )
    first_done = np.where(
        escalated, np.asarray(light_k, dtype=np.int64) * period + np.asarray(light_tau), np.nan
    )
    cat = lambda codes: pd.Categorical.from_codes(codes, categories=names, ordered=True)  # noqa: E731
    tasks = pd.DataFrame(
        {
            "request": np.arange(len(requests)),
            "arrival": arrival,
            "prompt_id": d["prompt_id"].to_numpy(),
            "group": d["group"],
            "first_model": cat(first),
            "model": cat(model),
            "steps": steps,
            "escalated": escalated,
            "planned_at": k_req * period,
            "first_done": first_done,
            "completion": completion_k + np.asarray(done_tau),
            "latency": latency,
            "score": score,
            "utility": score - scenario.weight * latency,
            "gpu_seconds": gpu,
            "deviation": deviation,
        }
    )
    columns = (
        ["k"]
        + [f"queued_{m}" for m in names]
        + [f"planned_{m}" for m in names]
        + [f"steps_{m}" for m in names]
        + [f"compute_{m}" for m in names]
    )
    plans = pd.DataFrame(log, columns=columns) if log else pd.DataFrame(columns=columns)
    plans.insert(0, "time", plans.pop("k").to_numpy(dtype=np.int64) * period)
    fewest = np.array([m.image_seconds(m.steps[0]) for m in scenario.models])
    queued = plans[[f"queued_{m}" for m in names]].to_numpy(dtype=float)
    plans.insert(1, "backlog_seconds", queued @ fewest if len(plans) else np.zeros(0))
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
        "n_models": n_models,
    }
    return ServingResult(tasks=tasks, plans=plans, settings=settings)


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
