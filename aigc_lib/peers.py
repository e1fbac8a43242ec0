"""A fair comparison of serving policies under load: the paper's method, its baselines and two peers.

Every policy runs on the event-driven simulator of :mod:`aigc_lib.serving` (one serve path: a
routing rule and an optional escalation rule), on the same arrivals and the same prompts, and every
policy that has knobs is tuned by one protocol:

* :data:`POLICIES`: the paper's Probabilistic-assignment with the paper's thresholds
  (``"probabilistic (paper)"``) and tuned (``"probabilistic"``), Direct- and Random-assignment,
  each model alone, DiffServe's cascade (Ahmad et al., MLSys 2025, arXiv 2411.15381: light model
  first, a discriminator escalates to the heavy one), HADIS's router (Yang et al., arXiv
  2509.00642: a prompt predictor routes hard prompts to the heavy model; it chooses its model
  pair) and ``"load-aware"`` (ours: the paper's eq. 9-10 with thresholds that rise with the
  backlog, :class:`aigc_lib.serving.Routing`). Their decision rules inside this project's system
  model, not their full systems (batching, placement over GPUs, trained networks).
* Equal tuning (:func:`configurations`, :func:`compare`): each tunable policy (:data:`TUNED`) tries
  exactly ``n_configs`` configurations, the first points of a scrambled Halton sequence over its
  knobs (:data:`KNOBS`, seed :data:`HALTON_SEED`), on a training workload; the single models
  (:data:`SINGLE_MODELS`) are always compared as policies of their own; the chosen one (:data:`OBJECTIVES`: the best mean
  utility, or the best mean CLIPScore among those meeting the SLO for :data:`TARGET_ATTAINMENT`
  of requests) is evaluated on held-out workloads: later windows of a trace, other seeds of a
  Poisson process (:func:`workloads`).
* Load is offered utilisation (:func:`aigc_lib.serving.arrival_rate`): one arrival process per
  :data:`PROCESSES` at each load, the same for every policy.
* Who leads whom (:func:`leads`): the best policy's lead over the next, paired over the same
  held-out workloads, with its 95% interval; a lead whose interval reaches 0 is "not shown".
* A cluster sized to the real traces (:func:`replicas`, :func:`gpus_needed`,
  :func:`size_cluster`): each trace at its recorded rate, the fewest GPUs on which a policy keeps
  :data:`TARGET_ATTAINMENT` of requests within the SLO, over held-out windows; and the quality
  every policy gets on equal GPUs. :func:`collapse` names the one model a configuration reduces to.
* :func:`table` and :func:`write_table` give ``results/peers.md`` and ``.csv`` from notebook 07's
  metrics, every number with its interval.

Units: seconds, CLIPScore points, requests per second. Taught in
``notebooks/07_peer_serving_policies.ipynb``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import qmc
from scipy.stats import t as student_t

from aigc_lib import arrivals, parallel, serving, validate
from aigc_lib._io import atomic_write_text, write_csv
from aigc_lib.scenario import Scenario

__all__ = [
    "shared",
    "cluster_policies",
    "cluster_study",
    "POLICIES",
    "TUNED",
    "KNOBS",
    "KNOWS",
    "PROCESSES",
    "OBJECTIVES",
    "TARGET_ATTAINMENT",
    "TRAINING_SEED",
    "HALTON_SEED",
    "SINGLE_MODELS",
    "COLLAPSE_SHARE",
    "NOTEBOOK",
    "Workload",
    "Comparison",
    "fixed_policy",
    "configurations",
    "workloads",
    "choose",
    "compare",
    "interval",
    "paired",
    "lead",
    "leads",
    "CLUSTER_SHARING",
    "replicas",
    "on_gpus",
    "gpus_needed",
    "windows",
    "size_cluster",
    "gpus_table",
    "best_within",
    "gpus_words",
    "tuned_policy",
    "with_estimators",
    "collapse",
    "chosen",
    "describe",
    "table",
    "write_table",
]

POLICIES = (
    "probabilistic (paper)",
    "probabilistic",
    "direct",
    "random",
    "sdxl-turbo",
    "sd15",
    "sdxl",
    "cascade",
    "router",
    "load-aware",
)
"""Every policy compared (the single-model policies are named after their model)."""

TUNED = ("probabilistic", "direct", "load-aware", "cascade", "router")
"""The policies with knobs, each tuned by the same protocol (:func:`configurations`)."""

KNOBS = {
    "probabilistic": "theta_1, theta_2",
    "direct": "theta_1, theta_2",
    "load-aware": "theta_1, theta_2, kappa",
    "cascade": "escalation threshold",
    "router": "model pair, route threshold",
}
"""What each tunable policy tunes: the thresholds of eq. 9-10 (as the shares of prompts sent to the
small and the large model), kappa (the thresholds' rise per second of backlog), the discriminator
threshold (as the share of light images escalated), the router's pair of models and its route
threshold (as the share of prompts routed to the heavy model)."""

KNOWS = {
    "probabilistic (paper)": "the prompt's category",
    "probabilistic": "the prompt's category",
    "direct": "the prompt's category",
    "random": "nothing",
    "sdxl-turbo": "nothing",
    "sd15": "nothing",
    "sdxl": "nothing",
    "cascade": "the generated light image (a discriminator scores it)",
    "router": "a prediction of the prompt's own score (from its text)",
    "load-aware": "the prompt's category and the queue's backlog",
}
"""What each policy must know about a prompt (or the server) to decide: what it costs to deploy."""

PROCESSES = ("poisson", "conv", "code")
"""Arrival processes: a Poisson process, and the Azure LLM 2023 traces ``conv`` and ``code``
(:data:`aigc_lib.arrivals.TRACES`), rescaled in time to each load."""

OBJECTIVES = ("utility", "slo")
"""How a tuned configuration is chosen on the training workload: ``"utility"``, the best mean
score - lambda x latency (the paper's objective); ``"slo"``, the best mean CLIPScore among the
configurations that serve :data:`TARGET_ATTAINMENT` of requests within the SLO (what DiffServe
and HADIS optimise), or, if none does, the best SLO attainment."""

TARGET_ATTAINMENT = 0.95
"""The SLO attainment the ``"slo"`` objective asks for (an assumption: a common service target)."""

TRAINING_SEED = 1000
"""Seed of the training workload's prompts (and of its Poisson arrivals); evaluation replicates
use seeds 0, 1, ..., so training and evaluation never share prompts draws."""

NOTEBOOK = "07_peer_serving_policies"
"""The notebook whose ``metrics.json`` :func:`table` reads."""

HALTON_SEED = 2409
"""Seed of the scrambled Halton sequence every tunable policy draws its configurations from (any
fixed number: the paper's arXiv number, so the configurations are the same on every machine)."""

SINGLE_MODELS = ("sdxl-turbo", "sd15", "sdxl")
"""The single-model corners: every comparison evaluates them as policies of their own, so a tuned
policy that collapses to one model is seen beside that model."""

COLLAPSE_SHARE = 0.99
"""A configuration that sends at least this share of images to one model is that model alone
(:func:`collapse`)."""

_PAIRS = ((0, 1), (0, 2), (1, 2))  # the router's model pairs (light, heavy)
_DIMS = {"probabilistic": 2, "direct": 2, "load-aware": 3, "cascade": 1, "router": 2}


# --- policies and their configurations ------------------------------------------------------------


def fixed_policy(scenario: Scenario, name: str) -> serving.Policy:
    """An untuned policy of :data:`POLICIES`: the paper's thresholds, Random, or a model alone.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    validate.instance(scenario, Scenario, "scenario")
    if name == "probabilistic (paper)":
        return serving.Policy(name, serving.Routing("probabilistic"), knobs={})
    if name == "random" or name in scenario.model_names:
        return serving.Policy(name, serving.Routing(name))
    raise ValueError(
        f"name: expected 'probabilistic (paper)', 'random' or a model name "
        f"{scenario.model_names}, got {name!r} (tuned policies come from configurations)"
    )


def configurations(
    scenario: Scenario,
    policy: str,
    n: int,
    disc_rho: float = serving.DISC_RHO,
    predictor_rho: float = serving.PREDICTOR_RHO,
    batch_sizes: Sequence[int] = (1,),
) -> list[serving.Policy]:
    """The ``n`` configurations a tunable ``policy`` (:data:`TUNED`) tries: the same ``n`` for all.

    The first ``n`` points u of a scrambled Halton sequence in [0, 1)^d (seed
    :data:`HALTON_SEED`, d the policy's number of knobs, :data:`KNOBS`), mapped to knobs:
    thresholds from the shares p_small = u_1 and p_large = u_2 (1 - u_1) of prompts sent to the
    small and the large model (:func:`aigc_lib.serving.score_threshold`); kappa =
    :data:`aigc_lib.serving.KAPPA_MAX` x u_3; the cascade's escalation share u_1 (light
    SDXL-Turbo, heavy SDXL, DiffServe's pair); the router's pair, one of (sdxl-turbo, sd15),
    (sdxl-turbo, sdxl), (sd15, sdxl) by u_1, and its route share u_2. With more than one of
    ``batch_sizes``, one more dimension u_last picks the largest batch
    (:attr:`aigc_lib.serving.Policy.max_batch`) among them. Scrambling keeps every
    point off the corners of the cube, so no policy gets a single-model corner for free: the
    corners are policies of their own (:data:`SINGLE_MODELS`, always compared). Deterministic:
    the same configurations on every machine.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    n = validate.whole(n, "n", low=1)
    if policy not in TUNED:
        raise ValueError(f"policy: expected one of {TUNED}, got {policy!r}")
    if len(scenario.models) != 3:
        raise ValueError(
            f"scenario: the configurations are for three models (small, medium, large), "
            f"got {len(scenario.models)}"
        )
    sizes = [validate.whole(b, "batch_sizes", low=1) for b in batch_sizes]
    if not sizes:
        raise ValueError("batch_sizes: expected at least one batch size, e.g. (1,)")
    dims = _DIMS[policy] + (len(sizes) > 1)
    points = qmc.Halton(dims, scramble=True, seed=HALTON_SEED).random(n)
    if policy == "cascade":
        out = [_cascade(scenario, float(u[0]), disc_rho) for u in points]
    elif policy == "router":
        out = [_router(scenario, u, predictor_rho) for u in points]
    else:
        out = [_thresholded(scenario, policy, u) for u in points]
    if len(sizes) == 1:
        return [replace(c, max_batch=sizes[0]) if sizes[0] != 1 else c for c in out]
    picks = [sizes[min(int(len(sizes) * u[-1]), len(sizes) - 1)] for u in points]
    return [replace(c, max_batch=b, knobs={**c.knobs, "max_batch": b}) for c, b in zip(out, picks)]


def _thresholded(scenario: Scenario, policy: str, u: np.ndarray) -> serving.Policy:
    """Probabilistic, Direct or load-aware at the unit point ``u`` (shares, then kappa)."""
    small, large = float(u[0]), float(u[1] * (1 - u[0]))
    theta = _thresholds(scenario, small, large)
    knobs = {"small_share": small, "large_share": large, "thresholds": theta}
    kappa = 0.0
    if policy == "load-aware":
        kappa = serving.KAPPA_MAX * float(u[2])
        knobs["kappa"] = kappa
    rule = "load_aware" if policy == "load-aware" else policy
    routing = serving.Routing(rule, thresholds=theta, kappa=kappa)
    return serving.Policy(policy, routing, knobs=knobs)


def _cascade(scenario: Scenario, share: float, disc_rho: float) -> serving.Policy:
    """DiffServe's cascade escalating ``share`` of SDXL-Turbo's images to SDXL."""
    escalation = serving.Escalation(share, disc_rho, "gain", light=0, heavy=None)
    routing = serving.Routing(scenario.model_names[0])
    return serving.Policy("cascade", routing, escalation, {"escalation_share": share})


def _router(scenario: Scenario, u: np.ndarray, predictor_rho: float) -> serving.Policy:
    """HADIS's router: the model pair by ``u[0]``, the share routed to the heavy one ``u[1]``."""
    names = scenario.model_names
    light, heavy = _PAIRS[min(int(3 * u[0]), 2)]
    share = float(u[1])
    route_at = serving.route_threshold(scenario, share, predictor_rho)
    routing = serving.Routing(
        "predictor", light=light, heavy=heavy, route_at=route_at, predictor_rho=predictor_rho
    )
    knobs = {"pair": f"{names[light]}/{names[heavy]}", "route_share": share}
    return serving.Policy("router", routing, knobs=knobs)


# --- workloads ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Workload:
    """One arrival stream: ``arrival`` (s, from 0), the prompts' ``seed``, and its ``role``
    (``"train"`` or ``"eval"``), ``replicate`` (0 for training) and ``window`` (the first and
    last request index in the trace; None for Poisson)."""

    arrival: np.ndarray
    seed: int
    role: str
    replicate: int
    window: tuple[int, int] | None = None


def workloads(
    scenario: Scenario,
    process: str,
    load: float,
    n_train: int,
    n_eval: int,
    replicates: int,
    trace: np.ndarray | None = None,
) -> list[Workload]:
    """The training workload and ``replicates`` held-out ones of ``process`` at offered ``load``.

    Poisson: ``n_train`` arrivals with seed :data:`TRAINING_SEED`, then ``n_eval`` with seeds 0,
    1, ... A trace (``trace``: its arrival times, :func:`aigc_lib.arrivals.load_trace`) is cut
    into consecutive windows: the first ``n_train`` requests train, the next ``replicates``
    windows of ``n_eval`` are held out (disjoint in time and in prompts). Each window is rescaled
    on its own to the load's mean rate over its span (:func:`aigc_lib.arrivals.rescale`,
    ``by="span"``: it starts at 0 and keeps its bursts and silent gaps), so every window offers
    the load on average, and its busy periods more (``code``: much more).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    rate = serving.arrival_rate(scenario, load)
    n_train = validate.whole(n_train, "n_train", low=1)
    n_eval = validate.whole(n_eval, "n_eval", low=1)
    replicates = validate.whole(replicates, "replicates", low=1)
    if process == "poisson":
        out = [Workload(arrivals.poisson(rate, n_train, TRAINING_SEED), TRAINING_SEED, "train", 0)]
        out += [
            Workload(arrivals.poisson(rate, n_eval, r), r, "eval", r) for r in range(replicates)
        ]
        return out
    if process not in PROCESSES:
        raise ValueError(f"process: expected one of {PROCESSES}, got {process!r}")
    if trace is None:
        raise ValueError(f"trace: the arrival times of trace {process!r} are needed")
    needed = n_train + replicates * n_eval
    times = np.sort(np.asarray(trace, dtype=float))
    if times.size < needed:
        raise ValueError(
            f"n_eval: trace {process!r} holds {times.size} requests; n_train + replicates x "
            f"n_eval = {needed} do not fit"
        )
    cut = lambda a, b: arrivals.rescale(times[a:b], rate, by="span")  # noqa: E731
    out = [Workload(cut(0, n_train), TRAINING_SEED, "train", 0, (0, n_train - 1))]
    for r in range(replicates):
        a = n_train + r * n_eval
        out.append(Workload(cut(a, a + n_eval), r, "eval", r, (a, a + n_eval - 1)))
    return out


# --- tuning and the comparison --------------------------------------------------------------------


def choose(table: pd.DataFrame, objective: str, target: float = TARGET_ATTAINMENT) -> int:
    """The row of a tuning ``table`` (one configuration per row, the numbers of
    :func:`aigc_lib.serving.summarise`) that ``objective`` (:data:`OBJECTIVES`) chooses; ties go
    to the first configuration."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
    target = validate.number(target, "target", low=0.0, high=1.0)
    if len(table) == 0:
        raise ValueError("table: expected at least one configuration")
    if objective == "utility":
        return int(np.argmax(table["mean_utility"].to_numpy()))
    attainment = table["slo_attainment"].to_numpy()
    feasible = attainment >= target - 1e-12
    if feasible.any():
        score = np.where(feasible, table["mean_score"].to_numpy(), -np.inf)
        return int(np.argmax(score))
    return int(np.argmax(attainment))


@dataclass(frozen=True, eq=False)
class Comparison:
    """What :func:`compare` returns.

    ``tuning``: one row per (process, load, tunable policy, configuration) on the training
    workload: ``config`` (0, 1, ...), the knobs, the numbers of
    :func:`aigc_lib.serving.summarise`, ``chosen_utility`` and ``chosen_slo``. ``runs``: one row
    per (process, load, policy, objective, replicate) on the held-out workloads (``objective``
    ``"none"`` for an untuned policy). ``summary``: per (process, load, policy, objective) the
    mean over replicates of every number, with ``<metric>_lo`` and ``<metric>_hi`` (the 95%
    interval, :func:`interval`) and ``offered`` (the held-out windows' own utilisation).
    ``settings``: the arguments.
    """

    tuning: pd.DataFrame
    runs: pd.DataFrame
    summary: pd.DataFrame
    settings: Mapping[str, Any] = field(default_factory=dict)


def compare(
    scenario: Scenario,
    loads: Sequence[float],
    processes: Sequence[str] = PROCESSES,
    *,
    n_configs: int = 12,
    n_train: int = 1000,
    n_eval: int = 1000,
    replicates: int = 3,
    slot_seconds: float = serving.SLOT_SECONDS,
    slo_seconds: float = serving.SLO_SECONDS,
    disc_rho: float = serving.DISC_RHO,
    predictor_rho: float = serving.PREDICTOR_RHO,
    target: float = TARGET_ATTAINMENT,
    prompts: pd.DataFrame | None = None,
    traces: Mapping[str, np.ndarray] | None = None,
    policies: Sequence[str] = POLICIES,
    n_jobs: int | None = None,
    backend: str | None = None,
    batch_sizes: Sequence[int] = (1,),
) -> Comparison:
    """Every policy at every load of every arrival process, tuned alike, evaluated on held-out data.

    For each (process, load): :func:`workloads` gives a training workload and ``replicates``
    held-out ones; every tunable policy of ``policies`` runs its ``n_configs``
    :func:`configurations` on the training workload and each objective of :data:`OBJECTIVES`
    chooses one (:func:`choose`); then every policy (the untuned ones once, the tuned ones once
    per objective, a configuration chosen by both run once and reported under both) serves every
    held-out workload; the single models (:data:`SINGLE_MODELS`) are always among the policies.
    ``traces``: arrival times per trace name (default: :func:`aigc_lib.arrivals.load_trace`).
    ``batch_sizes``: the largest batches tuning may choose (:func:`configurations`). Runs go
    through :func:`aigc_lib.parallel.run` (``n_jobs`` workers on ``backend``); results do not
    depend on where they ran.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    loads = [validate.number(u, "loads", low=0.0, low_open=True) for u in loads]
    policies = _checked_policies(processes, policies)
    n_configs = validate.whole(n_configs, "n_configs", low=1)
    slo_seconds = validate.number(slo_seconds, "slo_seconds", low=0.0, low_open=True)
    sizes = (n_train, n_eval, replicates)
    cells = {
        (process, load): workloads(scenario, process, load, *sizes, _trace(process, traces))
        for process in processes
        for load in loads
    }
    run = partial(_serve_all, slot_seconds=slot_seconds, slo_seconds=slo_seconds)
    spread = partial(parallel.run, run, n_jobs=n_jobs, backend=backend)
    tunable = [p for p in policies if p in TUNED]
    knobs = (disc_rho, predictor_rho, tuple(batch_sizes))
    options = {p: configurations(scenario, p, n_configs, *knobs) for p in tunable}
    base = (scenario, None if prompts is None else prompts[["prompt_id", "group"]])
    tuning, picks = _tune(base, cells, options, target, spread)
    entries = _entries(scenario, cells, policies, options, picks)
    runs = _evaluate(base, cells, entries, spread)
    settings = dict(scenario=scenario.name, loads=loads, processes=list(processes), target=target)
    settings |= dict(policies=policies, n_configs=n_configs, sizes=sizes, slot_seconds=slot_seconds)
    settings |= dict(slo_seconds=slo_seconds, disc_rho=disc_rho, predictor_rho=predictor_rho)
    settings |= dict(batch_sizes=list(batch_sizes), halton_seed=HALTON_SEED)
    return Comparison(tuning=tuning, runs=runs, summary=_summary(runs), settings=settings)


def _trace(process: str, traces: Mapping[str, np.ndarray] | None) -> np.ndarray | None:
    """The arrival times of ``process``: given in ``traces``, else loaded (None for Poisson)."""
    if process == "poisson":
        return None
    return traces[process] if process in (traces or {}) else arrivals.load_trace(process)


def _checked_policies(processes: Sequence[str], policies: Sequence[str]) -> list[str]:
    """The policies to compare, in :data:`POLICIES` order, the single models always among them."""
    unknown = [p for p in processes if p not in PROCESSES]
    if unknown or not processes:
        raise ValueError(f"processes: expected some of {PROCESSES}, got {list(processes)}")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise ValueError(f"policies: expected some of {POLICIES}, got {list(policies)}")
    wanted = set(policies) | set(SINGLE_MODELS)
    return [p for p in POLICIES if p in wanted]


def _tune(base, cells, options, target, spread) -> tuple[pd.DataFrame, dict]:
    """Step 1: every configuration of every tunable policy on each cell's training workload.

    Returns the tuning table and the index each (cell, policy, objective) chose."""
    keys = [(cell, policy) for cell in cells for policy in options]
    rows = spread([(*base, cells[cell][0], options[policy]) for cell, policy in keys])
    frames, picks = [], {}
    for (cell, policy), found in zip(keys, rows):
        frame = pd.DataFrame(found)
        for objective in OBJECTIVES:
            i = choose(frame, objective, target)
            picks[(cell, policy, objective)] = i
            frame[f"chosen_{objective}"] = np.arange(len(frame)) == i
        frame.insert(0, "config", np.arange(len(frame)))
        for name, value in (("policy", policy), ("load", cell[1]), ("process", cell[0])):
            frame.insert(0, name, value)
        frames.append(frame)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), picks


def _entries(scenario, cells, policies, options, picks) -> dict:
    """Step 2: per cell, the (policy, objective, configuration) to evaluate on held-out data."""
    entries = {}
    for cell in cells:
        entries[cell] = [
            (p, "none", fixed_policy(scenario, p)) for p in policies if p not in TUNED
        ] + [
            (p, o, options[p][picks[(cell, p, o)]])
            for p in policies
            if p in TUNED
            for o in OBJECTIVES
        ]
        order = {p: i for i, p in enumerate(policies)}
        entries[cell].sort(key=lambda e: order[e[0]])
    return entries


def _evaluate(base, cells, entries, spread) -> pd.DataFrame:
    """Step 3: every entry on every held-out workload (a configuration chosen twice runs once)."""
    items, keys = [], []
    for cell, works in cells.items():
        distinct = list(dict.fromkeys(id(p) for _, _, p in entries[cell]))
        by_id = {id(p): p for _, _, p in entries[cell]}
        for work in works[1:]:
            items.append((*base, work, [by_id[i] for i in distinct]))
            keys.append((cell, work, distinct))
    reference = serving.reference_seconds(base[0])
    runs = []
    for (cell, work, distinct), rows in zip(keys, spread(items)):
        found = dict(zip(distinct, rows))
        offered = _rate(work.arrival) * reference
        for policy, objective, pol in entries[cell]:
            keys_ = {"process": cell[0], "load": cell[1], "policy": policy}
            keys_ |= {"objective": objective, "replicate": work.replicate, "offered": offered}
            runs.append(keys_ | found[id(pol)])
    return pd.DataFrame(runs)


def chosen(tuning: pd.DataFrame) -> pd.DataFrame:
    """The configuration each objective chose, in words: one row per (process, load, policy,
    objective) of a :class:`Comparison`'s ``tuning`` table, with ``configuration``
    (:func:`describe`).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    rows = []
    for objective in OBJECTIVES:
        for r in tuning[tuning[f"chosen_{objective}"]].to_dict(orient="records"):
            keys = {k: r[k] for k in ("process", "load", "policy")}
            text = describe(r["policy"], r)
            rows.append({**keys, "objective": objective, "configuration": text})
    return pd.DataFrame(rows)


def interval(values: Any, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t ``confidence`` interval of independent replicates: (mean, lo, hi).

    NaN bounds with fewer than two replicates.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(student_t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def paired(runs: pd.DataFrame, first: Mapping[str, Any], second: Mapping[str, Any], metric: str):
    """The paired difference ``first`` - ``second`` of ``metric`` over the held-out workloads.

    ``first``, ``second``: a (process, load, policy, objective) each; ``runs``: a
    :class:`Comparison`'s ``runs``. Both served the same workloads (same arrivals, same prompts),
    so the difference is taken workload by workload: (mean, lo, hi) of :func:`interval`.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    values = []
    for row in (first, second):
        mine = runs
        for key in ("process", "load", "policy", "objective"):
            mine = mine[mine[key] == row[key]]
        values.append(mine.sort_values("replicate")[metric].to_numpy())
    if values[0].size != values[1].size or values[0].size == 0:
        raise ValueError(f"runs: {first} and {second} did not serve the same held-out workloads")
    return interval(values[0] - values[1])


def lead(summary: pd.DataFrame, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (process, load) of ``summary``: the best policy on ``metric``, the next one, and the
    best's paired lead over it with its 95% interval (:func:`paired`). ``verdict``: ``"shown"``
    where the interval lies above 0, ``"not shown"`` where it reaches 0 (the order of the means
    is then not established), ``"alone"`` where every policy ties or only one is in the view.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    rows = []
    for (process, load), part in summary.groupby(["process", "load"], sort=False):
        order = part.sort_values(metric, ascending=False, kind="stable")
        tied = np.isclose(order[metric], order[metric].iloc[0], rtol=0, atol=1e-9)
        row = {"process": process, "load": load, "metric": metric}
        row |= {"best": " = ".join(dict.fromkeys(order["policy"][tied])), "next": None}
        row |= {"lead": math.nan, "lo": math.nan, "hi": math.nan, "verdict": "alone"}
        if not tied.all():
            best, runner = order.iloc[0], order[~tied].iloc[0]
            mean, lo, hi = paired(runs, best, runner, metric)
            shown = "shown" if lo > 0 else "not shown"
            row |= {"next": runner["policy"], "lead": mean, "lo": lo, "hi": hi, "verdict": shown}
        rows.append(row)
    return pd.DataFrame(rows)


def leads(comparison: Comparison, target: float = TARGET_ATTAINMENT) -> pd.DataFrame:
    """Who leads whom in a :class:`Comparison`, with paired intervals (:func:`lead`): mean utility
    and goodput among the policies tuned for utility (and the untuned ones), and mean CLIPScore
    among those tuned for the SLO that keep it for ``target`` of requests.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    summary, runs = comparison.summary, comparison.runs
    utility = summary[summary["objective"].isin(["none", "utility"])]
    slo = summary[summary["objective"].isin(["none", "slo"])]
    kept = slo[slo["slo_attainment"] >= target]
    frames = [lead(utility, runs, "mean_utility"), lead(utility, runs, "goodput")]
    within = lead(kept, runs, "mean_score")
    frames.append(within.assign(metric="mean_score within the SLO"))
    return pd.concat(frames, ignore_index=True)


# --- a cluster sized to the real traces -----------------------------------------------------------


def replicas(
    scenario: Scenario,
    reqs: serving.Requests,
    policy: serving.Policy,
    gpus: int,
    slot_seconds: float = serving.SLOT_SECONDS,
) -> serving.ServingResult:
    """Serve ``reqs`` on ``gpus`` GPUs, each a whole server of :func:`aigc_lib.serving.serve`.

    A cluster of independent servers (for comparison with the serving core's modes): a front end
    deals the requests, in arrival order, to the GPUs in turn (round robin); each GPU holds
    every model and runs the policy with its own plans and queues (the paper's shares). The
    tasks of all GPUs together, each with its ``gpu``.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    gpus = validate.whole(gpus, "gpus", low=1)
    order = np.argsort(reqs.arrival, kind="stable")
    tasks, plans, runs = [], [], []
    for g in range(gpus):
        mine = order[g::gpus]
        if mine.size == 0:
            continue
        draws = reqs.draws.iloc[mine].reset_index(drop=True)
        part = serving.Requests(arrival=reqs.arrival[mine], draws=draws, seed=reqs.seed + g)
        run = serving.serve(scenario, part, policy, slot_seconds)
        runs.append(run)
        tasks.append(run.tasks.assign(gpu=g, request=mine[run.tasks["request"].to_numpy()]))
        plans.append(run.plans.assign(gpu=g))
    settings: dict[str, Any] = {"gpus": gpus}
    counts = [run.settings.get("counts") for run in runs]
    if counts and all(isinstance(c, Mapping) for c in counts):  # the serving core's counts
        settings["counts"] = {k: _add(c[k] for c in counts) for k in counts[0]}
    return serving.ServingResult(
        pd.concat(tasks, ignore_index=True), pd.concat(plans, ignore_index=True), settings
    )


def _add(values):
    """The sum of counts (numbers, or mappings of numbers by reason)."""
    values = list(values)
    if values and isinstance(values[0], Mapping):
        return {k: sum(v[k] for v in values) for k in values[0]}
    return sum(values)


CLUSTER_SHARING = ("replicas", *serving.SHARING)
"""How a cluster of N GPUs serves (:func:`on_gpus`): ``"replicas"`` (:func:`replicas`), or one of
the serving core's modes on N GPUs (:class:`aigc_lib.serving.Server`)."""


def on_gpus(
    scenario: Scenario,
    reqs: serving.Requests,
    policy: serving.Policy,
    gpus: int,
    sharing: str = "whole-gpus",
    slot_seconds: float = serving.SLOT_SECONDS,
    slo_seconds: float = serving.SLO_SECONDS,
) -> serving.ServingResult:
    """Serve ``reqs`` on ``gpus`` GPUs shared by ``sharing`` (:data:`CLUSTER_SHARING`): the serving
    core's :class:`aigc_lib.serving.Server` (``"whole-gpus"``: each GPU holds one model at a time,
    a plan places models on GPUs), or :func:`replicas`.
    Used by :func:`gpus_needed` and :func:`size_cluster` (notebook 07, section on GPUs needed)."""
    if sharing not in CLUSTER_SHARING:
        raise ValueError(f"sharing: expected one of {CLUSTER_SHARING}, got {sharing!r}")
    if sharing == "replicas":
        return replicas(scenario, reqs, policy, gpus, slot_seconds)
    server = serving.Server(sharing=sharing, n_gpus=validate.whole(gpus, "gpus", low=1))
    return serving.serve(
        scenario, reqs, policy, slot_seconds, server=server, slo_seconds=slo_seconds
    )


def gpus_needed(
    scenario: Scenario,
    reqs: serving.Requests,
    policy: serving.Policy,
    *,
    slot_seconds: float = serving.SLOT_SECONDS,
    slo_seconds: float = serving.SLO_SECONDS,
    target: float = TARGET_ATTAINMENT,
    max_gpus: int = 64,
    sharing: str = "whole-gpus",
) -> dict[str, float]:
    """The fewest GPUs on which ``policy`` serves ``target`` of ``reqs`` within ``slo_seconds``,
    with the numbers of :func:`aigc_lib.serving.summarise` there (:func:`on_gpus`, ``sharing``).

    The search starts from the GPUs the reference policy would fill (arrival rate x
    :func:`aigc_lib.serving.reference_seconds`), moves to the GPUs this policy's own GPU-seconds
    per image fill there, then gallops (1, 2, 4, ... GPUs) up or down to a bracket and bisects it;
    it assumes SLO attainment grows with the GPUs (more GPUs, fewer requests each). ``gpus`` NaN
    (and the numbers at ``max_gpus``) where even ``max_gpus`` miss the target.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    max_gpus = validate.whole(max_gpus, "max_gpus", low=1)
    found: dict[int, dict[str, float]] = {}

    def kept(n: int) -> bool:
        if n not in found:
            run = on_gpus(scenario, reqs, policy, n, sharing, slot_seconds, slo_seconds)
            found[n] = serving.summarise(run, scenario, slo_seconds)
        return found[n]["slo_attainment"] >= target

    rate = _rate(np.sort(reqs.arrival))
    rate = rate if np.isfinite(rate) else 0.0
    fits = lambda seconds: int(min(max(math.ceil(rate * seconds), 1), max_gpus))  # noqa: E731
    first = fits(serving.reference_seconds(scenario))
    kept(first)
    gpus = _fewest(kept, fits(found[first]["gpu_seconds_per_image"]), max_gpus)
    if gpus is None:
        kept(max_gpus)
        return {"gpus": math.nan, **found[max_gpus]}
    return {"gpus": gpus, **found[gpus]}


def _fewest(kept, start: int, most: int) -> int | None:
    """The smallest n in 1..``most`` with ``kept(n)`` (monotone), galloping from ``start``."""
    step = 1
    if kept(start):
        high = start
        while high - step >= 1 and kept(high - step):
            high, step = high - step, 2 * step
        low = max(high - step, 0)  # misses the target (or 0)
    else:
        low = start
        while True:
            if low >= most:
                return None
            high = min(low + step, most)
            if kept(high):
                break
            low, step = high, 2 * step
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if kept(middle) else (middle, high)
    return high


def windows(trace: np.ndarray, size: int, count: int, start: int = 0) -> list[np.ndarray]:
    """``count`` consecutive windows of ``size`` requests of a trace at its real rate, from
    request ``start`` on, each shifted to begin at 0 (seconds).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    size = validate.whole(size, "size", low=2)
    count = validate.whole(count, "count", low=1)
    start = validate.whole(start, "start", low=0)
    times = np.sort(np.asarray(trace, dtype=float))
    if start + size * count > times.size:
        raise ValueError(
            f"count: {count} windows of {size} requests from request {start} need "
            f"{start + size * count} requests; the trace holds {times.size}"
        )
    cuts = [times[start + i * size : start + (i + 1) * size] for i in range(count)]
    return [w - w[0] for w in cuts]


def size_cluster(
    scenario: Scenario,
    traces: Mapping[str, Sequence[np.ndarray]],
    policies: Mapping[str, serving.Policy],
    *,
    gpus: Mapping[str, int] | None = None,
    prompts: pd.DataFrame | None = None,
    slot_seconds: float = serving.SLOT_SECONDS,
    slo_seconds: float = serving.SLO_SECONDS,
    target: float = TARGET_ATTAINMENT,
    max_gpus: int = 64,
    sharing: str = "whole-gpus",
    n_jobs: int | None = None,
    backend: str | None = None,
) -> pd.DataFrame:
    """Every policy on every window of every trace (``traces``: windows per trace name,
    :func:`windows`): the GPUs it needs (:func:`gpus_needed`), or, with ``gpus`` (a number per
    trace), its numbers on that many GPUs (quality at equal GPUs); ``sharing``: :func:`on_gpus`. Window w draws its prompts
    with seed w, the same for every policy. One row per (process, policy, window).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    prompts = None if prompts is None else prompts[["prompt_id", "group"]]
    keys, items = [], []
    for process, cuts in traces.items():
        fixed = None if gpus is None else int(gpus[process])
        for w, arrival in enumerate(cuts):
            for name, policy in policies.items():
                keys.append({"process": process, "policy": name, "window": w})
                items.append((scenario, prompts, arrival, w, policy, fixed))
    service = {"slot_seconds": slot_seconds, "slo_seconds": slo_seconds, "sharing": sharing}
    run = partial(_size_one, target=target, max_gpus=max_gpus, **service)
    rows = parallel.run(run, items, n_jobs, backend)
    return pd.DataFrame([k | r for k, r in zip(keys, rows)])


def gpus_table(sized: pd.DataFrame, metrics: Sequence[str] = ("gpus",)) -> pd.DataFrame:
    """Per (process, policy) of :func:`size_cluster`'s rows: each of ``metrics`` as mean, lo, hi
    over the windows (:func:`interval`), and ``reached``, the windows where the target was kept.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    rows = []
    for (process, policy), part in sized.groupby(["process", "policy"], sort=False):
        row = {"process": process, "policy": policy, "windows": len(part)}
        if "gpus" in part:
            row["reached"] = int(part["gpus"].notna().sum())
        for metric in metrics:
            row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = interval(part[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def _size_one(item, target, max_gpus, **service) -> dict[str, float]:
    """One (window, policy) of :func:`size_cluster` (a unit of parallel work)."""
    scenario, prompts, arrival, seed, policy, fixed = item
    reqs = serving.requests(scenario, arrival, seed, prompts)
    if fixed is not None:
        run = on_gpus(scenario, reqs, policy, fixed, **service)
        return {"gpus": fixed, **serving.summarise(run, scenario, service["slo_seconds"])}
    return gpus_needed(scenario, reqs, policy, target=target, max_gpus=max_gpus, **service)


def best_within(
    frame: pd.DataFrame, target: float = TARGET_ATTAINMENT, keys: Sequence[str] = ("process",)
) -> pd.DataFrame:
    """Per ``keys``: the row with the best ``mean_score`` among the rows of ``frame`` whose
    ``slo_attainment`` reaches ``target`` (a key where none does has no row).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    kept = frame[frame["slo_attainment"] >= target]
    if kept.empty:
        return kept
    return kept.loc[kept.groupby(list(keys), sort=False)["mean_score"].idxmax()]


def gpus_words(row: Mapping[str, Any]) -> str:
    """A row of :func:`gpus_table` in words: "mean [lo, hi]" GPUs (the low end at least 1), or
    how many windows no cluster tried kept the target.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    windows, reached = int(row["windows"]), int(row["reached"])
    if reached < windows:
        return f"more GPUs than tried in {windows - reached} of {windows} windows"
    low, high = row.get("gpus_lo"), row.get("gpus_hi")
    if low is None or not np.isfinite(low):
        return f"{row['gpus']:.1f}"
    return f"{row['gpus']:.1f} [{max(low, 1):.1f}, {high:.1f}]"


def tuned_policy(
    scenario: Scenario,
    comparison: Comparison,
    process: str,
    load: float,
    policy: str,
    objective: str,
) -> serving.Policy:
    """The configuration ``objective`` chose for ``policy`` at (``process``, ``load``) of a
    :class:`Comparison` (an untuned policy: :func:`fixed_policy`).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    if policy not in TUNED:
        return fixed_policy(scenario, policy)
    t, s = comparison.tuning, comparison.settings
    mine = t[(t["process"] == process) & np.isclose(t["load"], load) & (t["policy"] == policy)]
    picked = mine.loc[mine[f"chosen_{objective}"], "config"]
    if picked.empty:
        raise ValueError(f"policy: {policy!r} was not tuned at ({process!r}, {load})")
    estimators = (s["disc_rho"], s["predictor_rho"], s.get("batch_sizes", (1,)))
    options = configurations(scenario, policy, s["n_configs"], *estimators)
    return options[int(picked.iloc[0])]


def with_estimators(
    scenario: Scenario, policy: serving.Policy, disc_rho: float, predictor_rho: float
) -> serving.Policy:
    """``policy`` with its estimators at other correlations, its knobs kept: a cascade's
    discriminator at ``disc_rho`` (same share escalated), a router's predictor at
    ``predictor_rho`` (same share routed to the heavy model); any other policy unchanged.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    if policy.escalation is not None:
        escalation = replace(policy.escalation, disc_rho=disc_rho)
        policy = replace(policy, escalation=escalation)
    if policy.routing.rule == "predictor":
        share = policy.knobs["route_share"]
        route_at = serving.route_threshold(scenario, share, predictor_rho)
        routing = replace(policy.routing, predictor_rho=predictor_rho, route_at=route_at)
        policy = replace(policy, routing=routing)
    return policy


def collapse(
    scenario: Scenario, policy: serving.Policy, n: int = 4000, seed: int = 0
) -> str | None:
    """The one model a configured ``policy`` sends (almost) every request to, or None.

    Routes ``n`` requests of the scenario's prompt mix (seed ``seed``) through the policy's first
    decision, without load (a load-aware rule at an empty queue) and, for a cascade, counts the
    escalated images as the heavy model's: a model that gets at least :data:`COLLAPSE_SHARE` of
    the final images is the policy (e.g. Probabilistic with every prompt sent to SD1.5 is SD1.5 alone).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    reqs = serving.requests(scenario, np.zeros(n), seed)
    run = serving.serve(scenario, reqs, policy, 1e9)
    shares = run.tasks["model"].value_counts(normalize=True)
    top = str(shares.index[0])
    return top if shares.iloc[0] >= COLLAPSE_SHARE else None


# --- the generated table --------------------------------------------------------------------------

_TABLE_COLUMNS = {
    "process": "arrivals",
    "load": "load",
    "policy": "policy",
    "objective": "tuned_for",
    "tuned": "tuned",
    "configs": "configs",
    "configuration": "configuration",
}
_BOUNDS = {"goodput": (0, math.inf), "slo_attainment": (0, 1), "p95_latency": (0, math.inf)}
_TABLE_METRICS = {  # metric of the comparison: (column, digits)
    "goodput": ("goodput_per_s", 3),
    "slo_attainment": ("slo_attainment", 3),
    "p95_latency": ("p95_latency_s", 1),
    "mean_score": ("score", 2),
    "gpu_seconds_per_image": ("gpu_s_per_image", 2),
    "mean_utility": ("utility", 2),
}


def table(results_root: str | os.PathLike) -> pd.DataFrame:
    """Notebook 07's comparison as one table (empty if its ``metrics.json`` is missing).

    One row per (arrival process, offered load, policy, objective): the scenario, what the
    policy tuned and how many configurations it tried, the configuration chosen, and goodput
    (requests within the SLO per second), SLO attainment, 95th-percentile latency (s), mean
    CLIPScore, GPU-seconds per image and mean utility, each the mean over the held-out windows
    with ``_low`` and ``_high``, its 95% interval (:func:`interval`, clipped to the possible
    range: a share within [0, 1], goodput and latency at least 0; empty with one window).
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    metrics = _metrics(results_root)
    frame = pd.DataFrame(metrics.get("comparison", []))
    if frame.empty:
        return frame
    chosen = {
        (r["process"], r["load"], r["policy"], r["objective"]): r["configuration"]
        for r in metrics.get("chosen", [])
    }
    frame["tuned"] = [KNOBS.get(p, "nothing") for p in frame["policy"]]
    frame["configs"] = [metrics.get("n_configs") if p in KNOBS else 1 for p in frame["policy"]]
    frame["configuration"] = [
        chosen.get((r["process"], r["load"], r["policy"], r["objective"]), _untuned(r["policy"]))
        for r in frame.to_dict(orient="records")
    ]
    out = frame[list(_TABLE_COLUMNS)].rename(columns=_TABLE_COLUMNS)
    out.insert(0, "scenario", metrics.get("scenario_label") or metrics.get("scenario"))
    for metric, (name, digits) in _TABLE_METRICS.items():
        for suffix, column in (("", name), ("_lo", f"{name}_low"), ("_hi", f"{name}_high")):
            values = frame.get(metric + suffix, pd.Series(math.nan, index=frame.index))
            values = pd.to_numeric(values, errors="coerce").clip(*_BOUNDS.get(metric, (None, None)))
            out[column] = values.round(digits)
    return out


def write_table(results_root: str | os.PathLike) -> list[Path]:
    """Write ``peers.md`` and ``peers.csv`` under ``results_root`` from notebook 07's metrics.

    ``peers.csv`` holds every load, each metric with its interval; ``peers.md`` the loads of the
    notebook's ``table_loads``, one table per arrival process and load (mean [low, high]), who
    leads whom with the paired interval of the lead, the GPUs each policy needs on the real
    traces and the quality at equal GPUs, under a note naming the scenario (and profile). Returns
    the Markdown file written, or nothing when notebook 07 has not run.
    """
    frame = table(results_root)
    if frame.empty:
        return []
    root = Path(results_root)
    metrics = _metrics(root)
    write_csv(root / "peers.csv", frame)
    lines = ["# Serving policies under load", "", _note(metrics)]
    lines += _cell_tables(frame, metrics)
    lines += _lead_lines(metrics.get("leads", []))
    lines += _cluster_lines(metrics)
    return [atomic_write_text(root / "peers.md", "\n".join(lines) + "\n")]


def _metrics(results_root: str | os.PathLike) -> dict:
    path = Path(results_root) / NOTEBOOK / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _note(metrics: Mapping[str, Any]) -> str:
    """The note above ``peers.md``'s tables: where the numbers come from and what they mean."""
    label = metrics.get("scenario_label") or metrics.get("scenario") or "not recorded"
    return (
        f"Generated by `make reproduce` from notebook 07's metrics (`{NOTEBOOK}/metrics.json` "
        f"beside this file); do not edit by hand. Scenario: {label}. "
        "Every policy serves the same requests on the event-driven simulator "
        "(`aigc_lib.serving`, docs/SPEC.md section 8): requests arrive over time, the GPU is "
        f"re-planned every {metrics.get('slot_seconds')} s, queues carry over. Load is offered "
        "utilisation: arrival rate x the mean GPU-seconds per image of the paper's "
        "Probabilistic-assignment at every model's fewest steps. Every tunable policy tried "
        f"{metrics.get('n_configs')} configurations (a scrambled Halton sequence) on a training "
        f"workload ({metrics.get('n_train')} requests) and was evaluated on "
        f"{metrics.get('replicates')} held-out workloads of {metrics.get('n_eval')} requests "
        "(later windows of a trace; other seeds of a Poisson process): each number is the mean "
        "over them [95% Student-t interval]. `tuned_for`: utility (score - lambda x latency) or "
        f"slo (best score with at least {metrics.get('target')} of requests within the SLO); "
        f"none: no knobs. SLO {metrics.get('slo_seconds')} s; goodput: requests within it per "
        "second. Score and utility in CLIPScore points, latency in seconds, GPU-seconds per "
        "image at the whole GPU. Estimator correlations (assumed): discriminator "
        f"{metrics.get('disc_rho')}, prompt predictor {metrics.get('predictor_rho')}. The peers "
        "are DiffServe's and HADIS's decision rules in this project's system model, not their "
        "full systems. CSV: every load, each metric with `_low` and `_high`."
    )


def _with_interval(value: Any, low: Any, high: Any) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:g}"
    return f"{value:g} [{low:g}, {high:g}]"


def _cell(row: Mapping[str, Any], key: str, digits: int, low=-math.inf, high=math.inf) -> str:
    """``row[key]`` [its interval ``_lo``, ``_hi``], rounded, the interval clipped to
    [``low``, ``high``]."""
    value, lo, hi = (_round(row.get(key + k), digits) for k in ("", "_lo", "_hi"))
    lo = None if lo is None else max(lo, low)
    hi = None if hi is None else min(hi, high)
    return _with_interval(value, lo, hi)


def _round(value: Any, digits: int) -> Any:
    return round(float(value), digits) if value is not None and value == value else None


def _cell_tables(frame: pd.DataFrame, metrics: Mapping[str, Any]) -> list[str]:
    """One Markdown table per (arrival process, shown load): mean [low, high] per metric."""
    shown = metrics.get("table_loads") or sorted(set(frame["load"]))
    offered = {(r["process"], r["load"]): r.get("offered") for r in metrics["comparison"]}
    names = [name for name, _ in _TABLE_METRICS.values()]
    header = ["policy", "tuned_for", "tuned", "configs", "configuration", *names]
    lines = []
    for process in dict.fromkeys(frame["arrivals"]):
        for load in shown:
            part = frame[(frame["arrivals"] == process) & np.isclose(frame["load"], load)]
            if part.empty:
                continue
            realised = offered.get((process, load))
            extra = f" (held-out windows offer {realised:.2f})" if realised is not None else ""
            lines += ["", f"## {process}, offered load {load:g}{extra}", ""]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for r in part.to_dict(orient="records"):
                cells = [str(r[c]) for c in header[:5]]
                cells += [_with_interval(r[n], r[f"{n}_low"], r[f"{n}_high"]) for n in names]
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def _lead_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Who leads whom, each lead with its paired 95% interval; a lead whose interval reaches 0 is
    "not shown"."""
    if not rows:
        return []
    lines = ["", "## Who leads", "", "Paired over the held-out windows (the same requests).", ""]
    lines += ["| arrivals | load | metric | best | next | lead [95% interval] | lead is |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = _with_interval(*(_round(r.get(k), 3) for k in ("lead", "lo", "hi")))
        cells = [r["process"], f"{r['load']:g}", r["metric"], r["best"], r.get("next") or "-"]
        lines.append("| " + " | ".join([*cells, gap, r["verdict"]]) + " |")
    return lines


def _cluster_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The GPUs each policy needs on the real traces, the quality at equal GPUs, the sharing modes
    and batching, and the drops by reason."""
    needed = metrics.get("gpus_needed", [])
    if not needed:
        return []
    lines = ["", "## GPUs needed at the traces' real rate", ""]
    lines += [
        f"The fewest GPUs that keep {metrics.get('target')} of requests within the SLO, each "
        f"trace replayed at its recorded rate in {metrics.get('cluster_windows')} held-out windows "
        f"of {metrics.get('cluster_requests')} requests (`peers.gpus_needed`, GPUs shared as "
        f"`{metrics.get('cluster_sharing')}`); mean [95% interval] over the windows; `reached`: "
        f"windows where at most {metrics.get('max_gpus')} GPUs kept the target. Tuned policies: "
        f"the configuration chosen for the SLO at offered load {metrics.get('cluster_load')}.",
        "",
        "| arrivals | policy | GPUs needed | reached | score at those GPUs |",
        "|---|---|---|---|---|",
    ]
    for r in needed:
        gpus, score = _cell(r, "gpus", 1, low=1), _cell(r, "mean_score", 2)
        lines.append(f"| {r['process']} | {r['policy']} | {gpus} | {r['reached']} | {score} |")
    return lines + _equal_lines(metrics) + _mode_lines(metrics) + _drop_lines(metrics)


def _equal_lines(metrics: Mapping[str, Any]) -> list[str]:
    rows = metrics.get("equal_gpus", [])
    if not rows:
        return []
    lines = ["", "## Quality at equal GPUs", ""]
    lines += ["| arrivals | GPUs | policy | SLO attainment | score |", "|---|---|---|---|---|"]
    for r in rows:
        att, score = _cell(r, "slo_attainment", 3, low=0, high=1), _cell(r, "mean_score", 2)
        lines.append(f"| {r['process']} | {r['gpus']} | {r['policy']} | {att} | {score} |")
    return lines


def _mode_lines(metrics: Mapping[str, Any]) -> list[str]:
    rows = metrics.get("sharing_and_batching", [])
    if not rows:
        return []
    lines = ["", "## GPUs needed by sharing mode and batching", ""]
    lines += ["| arrivals | policy | sharing, largest batch | GPUs needed | reached |"]
    lines += ["|---|---|---|---|---|"]
    for r in rows:
        gpus = _cell(r, "gpus", 1, low=1)
        cells = [r["process"], r["policy"], r["variant"], gpus, str(r["reached"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _drop_lines(metrics: Mapping[str, Any]) -> list[str]:
    rows = metrics.get("drops", [])
    if not rows:
        return []
    reasons = [k for k in rows[0] if k.startswith("dropped_")]
    lines = ["", "## Drops by reason (admission control on, equal GPUs)", ""]
    lines += ["| arrivals | policy | requests | served | " + " | ".join(reasons) + " |"]
    lines += ["|---" * (4 + len(reasons)) + "|"]
    for r in rows:
        cells = [
            r["process"],
            r["policy"],
            r["n_requests"],
            r["n_served"],
            *(r[k] for k in reasons),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


# --- pieces ---------------------------------------------------------------------------------------


def _serve_all(item, slot_seconds: float, slo_seconds: float) -> list[dict[str, float]]:
    """Serve one workload under several policies: one summary each (a unit of parallel work)."""
    scenario, prompts, work, policies = item
    reqs = serving.requests(scenario, work.arrival, work.seed, prompts)
    return [
        serving.summarise(
            serving.serve(scenario, reqs, p, slot_seconds, slo_seconds=slo_seconds),
            scenario,
            slo_seconds,
        )
        | dict(p.knobs)
        for p in policies
    ]


def _summary(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return runs
    keys = ["process", "load", "policy", "objective"]
    metrics = [*serving.METRICS, "offered"]
    rows = []
    for key, part in runs.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        for metric in metrics:
            mean, lo, hi = interval(part[metric])
            row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = mean, lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


def _rate(arrival: np.ndarray) -> float:
    span = float(arrival.max() - arrival.min()) if arrival.size > 1 else 0.0
    return (arrival.size - 1) / span if span > 0 else math.nan


def _thresholds(scenario: Scenario, small: float, large: float) -> tuple[float, float]:
    low = serving.score_threshold(scenario, small)
    high = serving.score_threshold(scenario, 1.0 - large)
    if high <= low:
        high = low + 1e-6
    return (low, high)


def describe(policy: str, knobs: Mapping[str, Any]) -> str:
    """A configuration in words: the knobs a tuned ``policy`` chose (shares as percentages)."""
    if policy not in TUNED:
        return _untuned(policy)
    if policy == "cascade":
        return f"escalate {100 * knobs['escalation_share']:.0f}%" + _batch_words(knobs)
    if policy == "router":
        text = f"{knobs['pair']}, route {100 * knobs['route_share']:.0f}% to heavy"
        return text + _batch_words(knobs)
    text = (
        f"{100 * knobs['small_share']:.0f}% small, {100 * knobs['large_share']:.0f}% large "
        f"(theta {knobs['thresholds'][0]:.1f}, {knobs['thresholds'][1]:.1f})"
    )
    if policy == "load-aware":
        text += f", kappa {knobs['kappa']:.3f}"
    return text + _batch_words(knobs)


def _batch_words(knobs: Mapping[str, Any]) -> str:
    batch = knobs.get("max_batch", 1)
    return f", batches up to {batch}" if batch is not None and batch == batch and batch > 1 else ""


def _untuned(policy: str) -> str:
    if policy == "probabilistic (paper)":
        return "the paper's thresholds"
    if policy == "random":
        return "uniform"
    return "one model"


_SHARED: dict[str, Any] = {}
"""What :func:`shared` computed in this process, by a hash of the call's content."""


def _content(value: Any) -> Any:
    """A repr-able stand-in for ``value`` that changes when its content does (tables and arrays
    by a hash of their values, dataclasses field by field)."""
    if isinstance(value, (pd.DataFrame, pd.Series)):
        columns = tuple(value.columns) if isinstance(value, pd.DataFrame) else value.name
        return ("table", columns, int(pd.util.hash_pandas_object(value).sum()))
    if isinstance(value, np.ndarray):
        digest = hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()
        return ("array", value.shape, value.dtype.str, digest)
    if isinstance(value, Mapping):
        return ("map", tuple((repr(k), _content(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_content(v) for v in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (type(value).__name__, tuple(_content(getattr(value, f.name)) for f in fields))
    if callable(value):
        return (
            "call",
            getattr(value, "__module__", ""),
            getattr(value, "__qualname__", repr(value)),
        )
    return repr(value)


def shared(function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, kept for the process: every section of a notebook can open
    with the same call, and only the first one computes (the key: the function and a hash of its
    arguments' content, :func:`_content`). Returns a deep copy, so a caller cannot change what is
    kept. Taught in ``notebooks/07_peer_serving_policies.ipynb``."""
    if not callable(function):
        raise ValueError(f"function: expected a callable, got {function!r}")
    described = repr(_content((function, args, sorted(kwargs.items()))))
    key = hashlib.sha1(described.encode()).hexdigest()
    if key not in _SHARED:
        _SHARED[key] = function(*args, **kwargs)
    return copy.deepcopy(_SHARED[key])


def cluster_policies(
    scenario: Scenario, comparison: Comparison, process: str, processes: Sequence[str], load: float
) -> dict[str, serving.Policy]:
    """Every policy of ``comparison`` for a cluster serving ``process``: a tuned one with the
    configuration chosen for the SLO at ``load`` (on ``process`` where it was compared, else on
    ``processes[0]``), the others as they are. Taught in
    ``notebooks/07_peer_serving_policies.ipynb`` (section 11)."""
    base = process if process in processes else processes[0]
    return {
        p: tuned_policy(scenario, comparison, base, load, p, "slo" if p in TUNED else "none")
        for p in comparison.summary["policy"].unique()
    }


def cluster_study(
    scenario: Scenario,
    comparison: Comparison,
    traces: Mapping[str, np.ndarray],
    processes: Sequence[str],
    load: float,
    requests: int,
    count: int,
    start: int,
    **cluster: Any,
) -> dict[str, Any]:
    """Section 11 of notebook 07 in one call, for the sections after it: ``count`` held-out
    windows of ``requests`` arrivals per trace from arrival ``start`` (:func:`windows`), every
    policy (:func:`cluster_policies` at ``load``) sized on them (:func:`size_cluster` with
    ``cluster``, which must name ``max_gpus``), and again on the GPUs the paper's thresholds need
    (their mean over the windows, rounded up; ``max_gpus`` where they never keep the target).
    Each sizing goes through :func:`shared`, so the same sizing made by hand is not made again.
    Returns ``cuts`` (arrival times, seconds), ``policies``, ``needed`` (:func:`gpus_table`:
    GPUs, CLIPScore points, SLO attainment), ``equal_n`` (GPUs per trace) and ``equal_runs``.
    The serving model: docs/SPEC.md section 8. Taught in
    ``notebooks/07_peer_serving_policies.ipynb`` (section 11)."""
    if "max_gpus" not in cluster:
        raise ValueError("cluster: expected max_gpus among the sizing options")
    cuts = {p: windows(traces[p], requests, count, start) for p in traces}
    policies = {p: cluster_policies(scenario, comparison, p, processes, load) for p in cuts}
    sized = pd.concat(
        [shared(size_cluster, scenario, {p: cuts[p]}, policies[p], **cluster) for p in cuts]
    )
    needed = gpus_table(sized, ["gpus", "mean_score", "slo_attainment"])
    paper = needed[needed["policy"] == "probabilistic (paper)"].set_index("process")["gpus"]
    equal_n = {
        p: int(np.ceil(paper[p])) if np.isfinite(paper[p]) else cluster["max_gpus"] for p in cuts
    }
    equal_runs = pd.concat(
        [
            shared(
                size_cluster, scenario, {p: cuts[p]}, policies[p], gpus={p: equal_n[p]}, **cluster
            )
            for p in cuts
        ]
    )
    out = {"cuts": cuts, "policies": policies, "needed": needed, "equal_n": equal_n}
    return out | {"equal_runs": equal_runs}
