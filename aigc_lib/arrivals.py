"""When requests arrive: a Poisson process, real production traces, and the paper's slots.

The paper's slots put every prompt of a slot at the slot's start. A real service sees requests
one at a time. This module gives arrival times in seconds (a float array, sorted):

* :func:`poisson`: a Poisson process at a given rate (requests per second);
* :func:`load_trace`: the timestamps of a real trace, the Azure LLM inference traces of 2023
  (:data:`TRACES`: ``conv``, a conversation service, and ``code``, a coding assistant), in
  seconds since the trace's first request. Only the timestamps are used: every arrival becomes a
  text-to-image request whose prompt is drawn from PartiPrompts (:mod:`aigc_lib.serving`);
* :func:`rescale`: a trace stretched or compressed in time to a target mean rate, so that it
  offers a chosen load (:func:`aigc_lib.serving.arrival_rate`) with its own burstiness;
* :func:`slot_arrivals`: the paper's slots as arrival times (every request of slot s at s x T);
* :func:`burstiness`: counts per window and their coefficient of variation.

The traces are data, not code, handled like PartiPrompts (:mod:`aigc_lib.prompts`): never stored in
the project; looked up in the folder named by ``AZURE_TRACES_DIR``, then in ``data/cache/``, then
downloaded from their public home (the repository Azure/AzurePublicDataset), md5-checked and cached.
Licence CC-BY 4.0; cite Patel et al., "Splitwise: Efficient generative LLM inference using phase
splitting", ISCA 2024 (data/SOURCES.md).

Units: seconds, requests per second. Taught in ``notebooks/07_peer_serving_policies.ipynb``.
"""

from __future__ import annotations

import hashlib
import math
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from aigc_lib import validate
from aigc_lib._io import atomic_write_bytes

__all__ = [
    "TraceFile",
    "TRACES",
    "TRACE_URL",
    "TRACES_ENV",
    "CACHE_DIR",
    "poisson",
    "load_trace",
    "read_trace",
    "describe_source",
    "rescale",
    "silent_gaps",
    "SILENT_GAP_FACTOR",
    "SILENT_SHARE_WARNING",
    "slot_arrivals",
    "burstiness",
]


class TraceFile(NamedTuple):
    """One published trace file: its name, md5 and number of requests."""

    file: str
    md5: str
    rows: int


TRACES: dict[str, TraceFile] = {
    "conv": TraceFile("AzureLLMInferenceTrace_conv.csv", "2ec51bd013f310fa72cac08de1331368", 19366),
    "code": TraceFile("AzureLLMInferenceTrace_code.csv", "5429a38bc2999f29bf67c1ae0f98be57", 8819),
}
"""The Azure LLM inference traces of 2023 (AzurePublicDataset, ``data/``): ``conv`` (19,366
requests in about an hour, close to Poisson) and ``code`` (8,819 requests, bursty)."""

TRACE_URL = "https://github.com/Azure/AzurePublicDataset/raw/master/data/{file}"
"""The public home of the trace files (``{file}``: :attr:`TraceFile.file`)."""

TRACES_ENV = "AZURE_TRACES_DIR"
"""Environment variable: a folder holding the trace files (for machines without internet)."""

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CACHE_DIR = DATA_DIR / "cache"
"""Where a downloaded trace is cached (git-ignored, never committed)."""

SILENT_GAP_FACTOR = 100.0
"""A gap between arrivals is silent when it is longer than this many times the trace's median
gap (an assumption: ``conv`` has none, its longest gap is 36 times its median; ``code`` has 55
gaps of 7 s to 217 s, 71% of its span)."""

SILENT_SHARE_WARNING = 0.1
""":func:`rescale` warns when silent gaps cover more than this share of the span (the busy periods
then arrive more than 1.1 times faster than the stated rate)."""

_REMEDY = (
    f"Set {TRACES_ENV} to a folder holding the trace files (in JupyterLab: before starting the "
    "server), or put them in data/cache/."
)


def poisson(rate: float, n: int, seed: int | np.random.SeedSequence) -> np.ndarray:
    """Arrival times (seconds, sorted, the first after 0) of ``n`` requests of a Poisson process.

    ``rate``: requests per second (> 0). Inter-arrival gaps are exponential with mean 1 / rate,
    drawn from ``numpy.random.default_rng(seed)``.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    rate = validate.number(rate, "rate", low=0.0, low_open=True)
    n = validate.whole(n, "n")
    if not isinstance(seed, np.random.SeedSequence):
        seed = validate.whole(seed, "seed")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=n)
    return np.cumsum(gaps)


def load_trace(
    name: str, directory: str | os.PathLike | None = None, url: str = TRACE_URL
) -> np.ndarray:
    """Arrival times of a published trace, in seconds since its first request, in file order.

    ``name``: a key of :data:`TRACES`. Lookup order: ``directory``; the folder named by the
    environment variable ``AZURE_TRACES_DIR``; ``data/cache/``; a download from ``url`` (the
    public home), cached atomically. Every copy must match the published file's md5, so a torn or
    edited copy is refused with a ``ValueError`` saying what to do (:func:`read_trace` reads any
    other file). The published files are sorted by time.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    if name not in TRACES:
        raise ValueError(f"name: expected one of {sorted(TRACES)}, got {name!r}")
    spec = TRACES[name]
    data, where, downloaded = _locate(spec, directory, url)
    digest = hashlib.md5(data).hexdigest()
    if digest != spec.md5:
        raise ValueError(
            f"{where}: md5 {digest} differs from the published {spec.file} ({spec.md5}); a torn "
            f"or edited copy gives wrong results. Replace it with the published file. {_REMEDY}"
        )
    times = _parse(data, where)
    if downloaded:
        atomic_write_bytes(CACHE_DIR / spec.file, data)
    return times


def read_trace(path: str | os.PathLike) -> np.ndarray:
    """Arrival times (seconds since the earliest, in file order) from any trace file.

    A CSV whose column ``TIMESTAMP`` holds date-times (the Azure format, ``2023-11-16
    18:15:46.6805900``) or seconds. Every line is checked: a line that does not parse, or has
    fewer fields than the header (a torn last line), raises a ``ValueError`` naming its line; a
    file without a request (an empty trace) raises a ``ValueError`` naming the file.
    The times need not be sorted; equal times are kept (both requests arrive then).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: {str(path)!r} is not a file (expected a trace CSV)")
    return _parse(path.read_bytes(), f"path: {str(path)!r}")


def describe_source(name: str = "conv") -> str:
    """One line saying where :func:`load_trace` finds trace ``name``, how many requests it holds."""
    times = load_trace(name)
    env = os.environ.get(TRACES_ENV)
    where = f"${TRACES_ENV}" if env else "data/cache/"
    return f"trace {name}: {times.size} requests over {times[-1]:.0f} s from {where} (md5 verified)"


def rescale(times: Any, rate: float, by: str | None = None) -> np.ndarray:
    """``times`` (seconds) stretched in time so that their mean rate is ``rate`` per second.

    ``by="span"``: the mean rate of n arrivals over their span is (n - 1) / (last - first).
    ``by="busy"``: the mean rate over the busy periods, the span less the silent gaps
    (:func:`silent_gaps`), is ``rate``; the gaps stay, scaled like the rest. ``by=None`` (the
    default): ``"span"``, with a ``UserWarning`` when silent gaps cover more than
    :data:`SILENT_SHARE_WARNING` of the span, saying how much faster than ``rate`` the busy
    periods then arrive (the Azure ``code`` trace: silent for about 71% of its hour, so its busy
    periods arrive at about 3.5 times the stated rate). The result starts at 0 and keeps the
    trace's shape (its bursts scale with it). Needs at least two distinct times.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    rate = validate.number(rate, "rate", low=0.0, low_open=True)
    if by not in (None, "span", "busy"):
        raise ValueError(f"by: expected None, 'span' or 'busy', got {by!r}")
    t = _times(times, "times")
    if t.size < 2 or t.max() == t.min():
        raise ValueError("times: expected at least two distinct arrival times to rescale")
    span = float(t.max() - t.min())
    native = (t.size - 1) / span
    gaps = silent_gaps(t)
    busy = span - gaps["seconds"]
    busy_rate = (t.size - 1 - gaps["count"]) / busy if busy > 0 else native
    if by == "busy":
        native = busy_rate
    elif by is None and gaps["share"] > SILENT_SHARE_WARNING:
        warnings.warn(
            f"times: silent gaps cover {gaps['share']:.0%} of the trace, so rescaled by its mean "
            f"rate its busy periods arrive at {busy_rate / native:.1f} times rate; pass "
            "by='busy' to set the busy periods' rate, or by='span' to keep this",
            UserWarning,
            stacklevel=2,
        )
    return (t - t.min()) * (native / rate)


def silent_gaps(times: Any) -> dict[str, float]:
    """The silent gaps of a trace: inter-arrival gaps longer than :data:`SILENT_GAP_FACTOR` times
    the median gap. ``count``, ``seconds`` (their total), ``share`` of the span (0 for fewer than
    two distinct times). Used by :func:`rescale`'s warning; docs/SPEC.md section 8."""
    t = np.sort(_times(times, "times"))
    if t.size < 2 or t[-1] == t[0]:
        return {"count": 0, "seconds": 0.0, "share": 0.0}
    gaps = np.diff(t)
    long = gaps[gaps > SILENT_GAP_FACTOR * np.median(gaps)]
    return {
        "count": int(long.size),
        "seconds": float(long.sum()),
        "share": float(long.sum() / (t[-1] - t[0])),
    }


def slot_arrivals(n_slots: int, tasks_per_slot: int | Any, slot_seconds: float) -> np.ndarray:
    """The paper's slots as arrival times: every request of slot s arrives at s x ``slot_seconds``.

    ``tasks_per_slot``: a whole number, or one per slot. Served by
    :func:`aigc_lib.serving.serve` with the same ``slot_seconds``, the requests of a slot are
    planned together at its start, as :func:`aigc_lib.simulation.simulate` plans them.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    n_slots = validate.whole(n_slots, "n_slots")
    slot_seconds = validate.number(slot_seconds, "slot_seconds", low=0.0, low_open=True)
    counts = np.asarray(tasks_per_slot)
    if counts.ndim == 0:
        counts = np.full(n_slots, validate.whole(tasks_per_slot, "tasks_per_slot"))
    elif counts.shape != (n_slots,) or counts.dtype.kind not in "iu" or np.any(counts < 0):
        raise ValueError(f"tasks_per_slot: expected a whole number or {n_slots} whole numbers >= 0")
    return np.repeat(np.arange(n_slots) * slot_seconds, counts)


def burstiness(times: Any, window: float = 10.0) -> dict[str, float]:
    """Arrival counts per ``window`` seconds: their mean, coefficient of variation and peak / mean.

    A Poisson process at rate r has CV 1 / sqrt(r x window); a bursty trace has more.
    Taught in ``notebooks/07_peer_serving_policies.ipynb``.
    """
    window = validate.number(window, "window", low=0.0, low_open=True)
    t = _times(times, "times")
    if t.size == 0:
        return {"mean": math.nan, "cv": math.nan, "peak_to_mean": math.nan}
    bins = np.floor((t - t.min()) / window).astype(np.int64)
    counts = np.bincount(bins).astype(float)
    mean = counts.mean()
    return {
        "mean": float(mean),
        "cv": float(counts.std() / mean),
        "peak_to_mean": float(counts.max() / mean),
    }


# --- pieces ---------------------------------------------------------------------------------------


def _times(values: Any, name: str) -> np.ndarray:
    try:
        t = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected arrival times in seconds, got {values!r}") from None
    if t.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of times, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{name}: expected finite times (no NaN or inf)")
    return t


def _locate(
    spec: TraceFile, directory: str | os.PathLike | None, url: str
) -> tuple[bytes, str, bool]:
    """The file's bytes from the first place of the lookup order, where from, whether downloaded."""
    if directory is not None:
        return _read(Path(directory) / spec.file, "directory"), f"directory: {directory!r}", False
    env = os.environ.get(TRACES_ENV)
    if env:
        return _read(Path(env) / spec.file, TRACES_ENV), f"{TRACES_ENV}: {env!r}", False
    cached = CACHE_DIR / spec.file
    if cached.is_file():
        return cached.read_bytes(), f"cache: data/cache/{spec.file}", False
    source = url.format(file=spec.file)
    try:
        with urllib.request.urlopen(source, timeout=60) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as err:
        raise ValueError(
            f"name: {spec.file} not found (no {TRACES_ENV}, nothing in data/cache/) and its "
            f"download from {source} failed ({err}). {_REMEDY}"
        ) from None
    return data, f"url: {source!r}", True


def _read(path: Path, argument: str) -> bytes:
    if not path.is_file():
        raise ValueError(f"{argument}: {str(path)!r} is not a file. {_REMEDY}")
    return path.read_bytes()


def _parse(data: bytes, where: str) -> np.ndarray:
    """Seconds since the earliest timestamp, in file order; every line checked."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{where}: not UTF-8 text (byte {err.start}); expected a CSV") from None
    lines = text.splitlines()
    if not lines or "TIMESTAMP" not in lines[0].split(","):
        raise ValueError(f"{where}: expected a CSV whose header has a TIMESTAMP column")
    header = lines[0].split(",")
    column = header.index("TIMESTAMP")
    body = [(n + 2, line) for n, line in enumerate(lines[1:]) if line.strip()]
    short = [(n, line) for n, line in body if len(line.split(",")) != len(header)]
    if short:
        n, line = short[0]
        raise ValueError(
            f"{where}: line {n} has {len(line.split(','))} fields where the header has "
            f"{len(header)} (a torn last line?); fix or remove it"
        )
    raw = pd.Series([line.split(",")[column].strip() for _, line in body], dtype=object)
    if raw.empty:
        raise ValueError(f"{where}: no arrivals (an empty trace); expected at least one request")
    numeric = pd.to_numeric(raw, errors="coerce")
    if numeric.notna().all():
        seconds = numeric.to_numpy(dtype=float)
    else:
        stamps = pd.to_datetime(raw, format="%Y-%m-%d %H:%M:%S.%f", errors="coerce")
        bad = np.flatnonzero(stamps.isna().to_numpy())
        if bad.size:
            n, line = body[bad[0]]
            raise ValueError(
                f"{where}: line {n} has no valid timestamp ({line[:60]!r}; a torn last line?); "
                "expected 'YYYY-MM-DD HH:MM:SS.fffffff' or seconds"
            )
        nanos = stamps.to_numpy().astype("datetime64[ns]").astype(np.int64)
        seconds = (nanos - nanos.min()) / 1e9
    if not np.all(np.isfinite(seconds)):
        raise ValueError(f"{where}: expected finite times")
    return seconds - seconds.min()
