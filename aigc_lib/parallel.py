"""Independent runs across CPU cores or a cluster, with results that do not depend on where they ran.

Experiments that repeat independent runs (one per scenario, per lambda, per load, per tuning
configuration) hand them to :func:`run`, which keeps the order of its items. Every item carries its
own seed, so a run's result never depends on which worker did it or how many there were: the same
items give the same list for ``n_jobs=1``, for any other number, and on a Dask cluster
(``tests/test_parallel.py``).

Where the runs go (the *backend*, :data:`BACKENDS`) is ``backend`` if given, else the environment
variable ``AIGC_BACKEND``, else ``"local"``:

* ``"local"``: worker processes on this machine (joblib's loky). The number of workers is
  ``n_jobs`` if given, else ``AIGC_JOBS``, else the machine's CPU count; ``n_jobs=1`` (or a single
  item) runs in this process, with no worker started.
* ``"dask"``: the workers of a Dask distributed cluster, through joblib's ``"dask"`` backend. The
  scheduler's address is ``scheduler`` if given, else ``AIGC_SCHEDULER`` (e.g.
  ``tcp://10.0.0.5:8786``), else the Dask client already open in this process. Every worker needs
  this package installed (the same ``requirements.lock``). README, "Sweeps on a cluster".

Taught in ``notebooks/05_beyond_the_paper.ipynb``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

__all__ = ["JOBS_ENV", "BACKEND_ENV", "SCHEDULER_ENV", "BACKENDS", "jobs", "backend", "run"]

JOBS_ENV = "AIGC_JOBS"
"""Environment variable: the default number of worker processes (a whole number >= 1)."""

BACKEND_ENV = "AIGC_BACKEND"
"""Environment variable: the default backend, one of :data:`BACKENDS`."""

SCHEDULER_ENV = "AIGC_SCHEDULER"
"""Environment variable: the address of the Dask scheduler (backend ``"dask"``)."""

BACKENDS = ("local", "dask")
"""Where :func:`run` sends its runs: this machine's processes, or a Dask distributed cluster."""


def jobs(value: int | None = None) -> int:
    """The number of workers: ``value`` if given, else ``$AIGC_JOBS``, else the CPU count."""
    if value is None:
        raw = os.environ.get(JOBS_ENV)
        if raw is None or raw.strip() == "":
            return max(1, os.cpu_count() or 1)
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{JOBS_ENV}: expected a whole number >= 1, got {raw!r}") from None
        name = JOBS_ENV
    else:
        name = "n_jobs"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a whole number >= 1, got {value!r}")
    return value


def backend(value: str | None = None) -> str:
    """The backend: ``value`` if given, else ``$AIGC_BACKEND``, else ``"local"``."""
    name = "backend"
    if value is None:
        value = (os.environ.get(BACKEND_ENV) or "local").strip() or "local"
        name = BACKEND_ENV
    if value not in BACKENDS:
        raise ValueError(f"{name}: expected one of {BACKENDS}, got {value!r}")
    return value


def run(
    function: Callable[[Any], Any],
    items: Iterable[Any],
    n_jobs: int | None = None,
    backend: str | None = None,
    scheduler: str | None = None,
) -> list:
    """``[function(item) for item in items]``, spread over workers; results in the order of ``items``.

    ``backend`` (:data:`BACKENDS`, default ``$AIGC_BACKEND`` or ``"local"``): ``"local"`` uses
    ``n_jobs`` worker processes (:func:`jobs`); ``"dask"`` every worker of the cluster whose
    scheduler is at ``scheduler`` (default ``$AIGC_SCHEDULER``, else the open Dask client).
    ``function`` must be picklable (defined at the top level of a module, or a
    ``functools.partial`` of one); each item holds everything a run needs, its seed included.
    """
    items = list(items)
    where = globals()["backend"](backend)
    if where == "dask":
        return _run_dask(function, items, scheduler or os.environ.get(SCHEDULER_ENV) or None)
    workers = min(jobs(n_jobs), max(len(items), 1))
    if workers == 1:
        return [function(item) for item in items]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=workers, backend="loky")(delayed(function)(item) for item in items)


def _run_dask(function: Callable[[Any], Any], items: list, scheduler: str | None) -> list:
    """The runs on a Dask cluster, through joblib's ``"dask"`` backend."""
    try:
        from distributed import Client, get_client
    except ImportError:
        raise ValueError(
            "backend: 'dask' needs the packages dask and distributed (requirements.lock pins them)"
        ) from None
    from joblib import Parallel, delayed, parallel_config

    if not items:
        return []
    if scheduler is None:
        try:
            client, own = get_client(), False
        except ValueError:
            raise ValueError(
                f"scheduler: backend 'dask' needs a scheduler address (or {SCHEDULER_ENV}), "
                "or a Dask client open in this process"
            ) from None
    else:
        client, own = Client(scheduler), True
    try:
        with parallel_config(backend="dask", client=client):
            return Parallel(n_jobs=-1)(delayed(function)(item) for item in items)
    finally:
        if own:
            client.close()
