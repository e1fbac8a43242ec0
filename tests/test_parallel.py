"""parallel.run: the same results, in the same order, for any number of workers."""

import functools

import numpy as np
import pandas as pd
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


def test_the_backend_from_the_environment(monkeypatch):
    monkeypatch.delenv(parallel.BACKEND_ENV, raising=False)
    assert parallel.backend() == "local" and parallel.backend("dask") == "dask"
    monkeypatch.setenv(parallel.BACKEND_ENV, "dask")
    assert parallel.backend() == "dask"
    monkeypatch.setenv(parallel.BACKEND_ENV, "ray")
    with pytest.raises(ValueError, match="AIGC_BACKEND"):
        parallel.backend()
    with pytest.raises(ValueError, match="backend"):
        parallel.run(_draw, [1], backend="spark")


def test_dask_without_a_scheduler_or_client_is_refused(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    with pytest.raises(ValueError, match="scheduler"):
        parallel.run(_draw, [1, 2], backend="dask")


def test_a_sweep_on_a_local_two_worker_dask_cluster_matches_the_local_run(monkeypatch):
    distributed = pytest.importorskip("distributed")
    from aigc_lib import peers

    sc = load_scenario()
    sweep = dict(loads=[0.9], processes=["poisson"], n_configs=2, n_train=40, n_eval=30)
    sweep |= dict(replicates=2, policies=["probabilistic (paper)", "sd15", "probabilistic"])
    local = peers.compare(sc, n_jobs=1, **sweep)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv(parallel.BACKEND_ENV, "dask")
        monkeypatch.setenv(parallel.SCHEDULER_ENV, cluster.scheduler_address)
        assert parallel.run(_draw, range(5)) == [_draw(s) for s in range(5)]
        remote = peers.compare(sc, **sweep)
    pd.testing.assert_frame_equal(remote.runs, local.runs)
    pd.testing.assert_frame_equal(remote.tuning, local.tuning)
