"""A scenario like data/scenarios/paper.yaml, built in code (no data files), for the unit tests.

Its latencies are the counted TFLOP over C = 34 TFLOPS, so seconds = work / compute exactly.
"""

from aigc_lib.scenario import GroupPrior, ModelSpec, Scenario

Z = tuple(range(10, 43, 4))
SHARES = (0.22, 0.26, 0.36, 0.16)


def make_scenario(shares=SHARES, **changes):
    """The code-built scenario; ``shares`` of Basic, Imagination, Detail, Complex; ``changes``
    replace any other field of :class:`aigc_lib.scenario.Scenario`."""
    means = (
        ("Basic", 31.0, 2.5),
        ("Imagination", 34.5, 3.2),
        ("Detail", 32.5, 2.8),
        ("Complex", 29.0, 2.6),
    )
    args = dict(
        models=(
            ModelSpec("sdxl-turbo", (1,), 1.589 / 34, 2.6 / 34, 1.589, 2.6, 0.0, -0.5, 0.7, 1.0),
            ModelSpec("sd15", Z, 1.607 / 34, 2.55 / 34, 1.607, 2.55, 1.0, 0.0, 1.0, 50.0),
            ModelSpec("sdxl", Z, 13.522 / 34, 10.7 / 34, 13.522, 10.7, 1.5, 1.5, 1.3, 50.0),
        ),
        groups=tuple(
            GroupPrior(name, mu, sigma, share) for (name, mu, sigma), share in zip(means, shares)
        ),
        thresholds=(29.5, 33.8),
        weight=0.2,
        capacity_tflops=34.0,
        min_share=0.01,
        noise_sd=1.0,
        tasks_per_slot=12,
    )
    args.update(changes)
    return Scenario(**args)
