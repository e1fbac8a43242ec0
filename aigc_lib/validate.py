"""Input checks shared by every module: a bad argument raises ``ValueError`` naming it.

Each function returns the value in its plain form (``float``, ``int``, array), so a caller writes
``n = validate.whole(n, "n_slots")`` once at its boundary.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["number", "whole", "generator", "instance", "finite_vector"]


def number(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number within [low, high] (open ends where asked), as ``float``."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if low is not None and (x <= low if low_open else x < low):
        raise ValueError(
            f"{name}: expected a number {'>' if low_open else '>='} {low}, got {value!r}"
        )
    if high is not None and (x >= high if high_open else x > high):
        raise ValueError(
            f"{name}: expected a number {'<' if high_open else '<='} {high}, got {value!r}"
        )
    return x


def whole(value: Any, name: str, low: int = 0) -> int:
    """A whole number (an ``int``, not a float or bool) of at least ``low``, as ``int``."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, np.integer))
        or value < low
    ):
        raise ValueError(f"{name}: expected a whole number >= {low}, got {value!r}")
    return int(value)


def generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` (randomness is always explicit)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"{name}: expected a numpy.random.Generator (numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def instance(value: Any, kind: type, name: str) -> Any:
    """``value`` itself if it is a ``kind``."""
    if not isinstance(value, kind):
        raise ValueError(
            f"{name}: expected a {kind.__module__}.{kind.__name__}, got {type(value).__name__}"
        )
    return value


def finite_vector(values: Any, name: str) -> np.ndarray:
    """A non-empty 1-D float array of finite numbers (a scalar becomes one element)."""
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name}: expected a non-empty 1-D sequence of numbers, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite numbers (no NaN or inf), got {arr.tolist()}")
    return arr
