"""parallel.run: the same results, in the same order, for any number of workers."""

import functools

import numpy as np
import pytest

from aigc_lib import parallel
from aigc_lib.scenario import load_scenario
from aigc_lib.simulation import simulate


def _draw(seed):
    return np.random.default_rng(seed).normal(size=3).tolist()


def _utility(seed, scenario):
    return float(simulate(scenario, 5, seed, allocation="exact").slots["utility"].mean())


def test_results_do_not_depend_on_the_number_of_workers():
    seeds = list(range(7))
    one = parallel.run(_draw, seeds, n_jobs=1)
    assert one == [_draw(s) for s in seeds]
    assert parallel.run(_draw, seeds, n_jobs=2) == one


def test_a_partial_of_a_simulation_runs_in_workers():
    run = functools.partial(_utility, scenario=load_scenario())
    assert parallel.run(run, [0, 1, 2], n_jobs=2) == parallel.run(run, [0, 1, 2], n_jobs=1)


def test_jobs_from_the_environment(monkeypatch):
    monkeypatch.setenv(parallel.JOBS_ENV, "3")
    assert parallel.jobs() == 3
    assert parallel.jobs(1) == 1
    monkeypatch.setenv(parallel.JOBS_ENV, "many")
    with pytest.raises(ValueError, match="AIGC_JOBS"):
        parallel.jobs()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_number_of_workers_is_named(bad):
    with pytest.raises(ValueError, match="n_jobs"):
        parallel.run(_draw, [1], n_jobs=bad)
