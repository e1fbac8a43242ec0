"""Independent runs across CPU cores, with results that do not depend on the number of workers.

Experiments that repeat independent runs (one per scenario, per lambda, per load, per tuning
configuration) hand them to :func:`run`, which keeps the order of its items. Every item carries its
own seed, so a run's result never depends on which worker did it or how many there were: the same
items give the same list for ``n_jobs=1`` and for any other number (``tests/test_parallel.py``).

The number of workers is ``n_jobs`` if given, else the environment variable ``AIGC_JOBS``, else the
machine's CPU count. ``n_jobs=1`` (or a single item) runs in this process, with no worker started.
Taught in ``notebooks/05_beyond_the_paper.ipynb``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

__all__ = ["JOBS_ENV", "jobs", "run"]

JOBS_ENV = "AIGC_JOBS"
"""Environment variable: the default number of worker processes (a whole number >= 1)."""


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


def run(function: Callable[[Any], Any], items: Iterable[Any], n_jobs: int | None = None) -> list:
    """``[function(item) for item in items]``, spread over worker processes (joblib's loky).

    ``function`` must be picklable (defined at the top level of a module, or a
    ``functools.partial`` of one); each item holds everything a run needs, its seed included.
    Results come back in the order of ``items``.
    """
    items = list(items)
    workers = min(jobs(n_jobs), max(len(items), 1))
    if workers == 1:
        return [function(item) for item in items]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=workers, backend="loky")(delayed(function)(item) for item in items)
