"""Benchmark of aigc_lib.serving: one hour of the Azure ``conv`` trace through one policy.

The trace's 19,366 requests, rescaled to an offered load (default 0.8), are served by
``serving.serve`` under the paper's Probabilistic-assignment (exact allocation), and the same
requests, grouped into the slots of their planning instants, by the slot simulator
``simulation.simulate``. Prints wall and CPU time of each, their ratio, the ratio to the issue's
target (serve < 10 s on 2 cores), and the same for a cascade (escalation on the heavy model).
No timing assertions. The trace comes from ``AZURE_TRACES_DIR`` or ``data/cache/``.

Run: ``python benchmarks/bench_serving.py [--trace conv] [--load 0.8]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from aigc_lib import arrivals, prompts, serving, simulation
from aigc_lib.scenario import load_scenario

TARGET_SECONDS = 10.0


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default="conv", choices=sorted(arrivals.TRACES))
    parser.add_argument("--load", type=float, default=0.8)
    parser.add_argument("--slot-seconds", type=float, default=serving.SLOT_SECONDS)
    args = parser.parse_args()
    scenario = load_scenario()
    parti = prompts.load_partiprompts()
    times = arrivals.rescale(
        arrivals.load_trace(args.trace), serving.arrival_rate(scenario, args.load)
    )
    period = args.slot_seconds
    print(
        f"== serving benchmark: trace {args.trace!r}, {times.size} requests over "
        f"{times[-1]:.0f} s at offered load {args.load:g}; T = {period:g} s; scenario "
        f"{scenario.name!r} =="
    )
    reqs = serving.requests(scenario, times, 0, parti)
    paper = serving.Policy("probabilistic (paper)")
    result, wall, cpu = timed(serving.serve, scenario, reqs, paper, period)
    # the slot simulator on the same requests: each slot holds the requests of one planning instant
    slot = np.ceil(times / period).astype(np.int64)
    counts = np.bincount(slot)
    _, sim_wall, sim_cpu = timed(
        simulation.simulate,
        scenario,
        counts.size,
        0,
        allocation="exact",
        prompts=parti,
        tasks_per_slot=counts,
    )
    print(
        f"serve, probabilistic (paper): {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
        f"{len(result.plans)} plans (target {TARGET_SECONDS:.0f} s: ratio {wall / TARGET_SECONDS:.2f})"
    )
    print(
        f"simulate, the same requests in {counts.size} slots: {sim_wall:6.2f} s wall, "
        f"{sim_cpu:6.2f} s CPU; serve / simulate = {wall / sim_wall:.2f}"
    )
    cascade = serving.Policy("cascade", serving.Routing("sdxl-turbo"), serving.Escalation(0.3))
    result, wall, cpu = timed(serving.serve, scenario, reqs, cascade, period)
    summary = serving.summarise(result, scenario)
    print(
        f"serve, cascade escalating 30%: {wall:6.2f} s wall, {cpu:6.2f} s CPU (ratio to target "
        f"{wall / TARGET_SECONDS:.2f}); {summary['escalation_share']:.0%} escalated, SLO "
        f"attainment {summary['slo_attainment']:.2f}"
    )


if __name__ == "__main__":
    main()
