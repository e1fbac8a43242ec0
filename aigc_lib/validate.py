"""Input checks shared by every module: a bad argument raises ``ValueError`` naming it.

Each function returns the value in its plain form (``float``, ``int``, array), so a caller writes
``n = validate.whole(n, "n_slots")`` once at its boundary. A notebook checks its parameters with
:func:`parameters` in the cell right after its parameters cell.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "number",
    "whole",
    "generator",
    "instance",
    "finite_vector",
    "parameters",
    "check_rule",
    "parse_rule",
]


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


# ---------------------------------------------------------------- notebook parameters


def parameters(**checks: tuple[Any, str]) -> None:
    """Check a notebook's parameters: each keyword is a parameter, ``(value, rule)``.

    Raises ``ValueError`` with one line naming the first parameter that breaks its rule, e.g.
    ``n_slots: expected int >= 1, got 0``. Rules (:func:`parse_rule`), one per parameter:

    - ``int``, ``float`` (an int is a float too), ``bool``, ``str`` (not empty), ``file`` (an
      existing file; a relative path is read from the working folder, the notebook's);
    - a bound after ``int`` or ``float``: ``>= 1``, ``> 0``, ``<= 100``, ``< 1``, or a closed
      range ``in [0, 1]``;
    - ``str matching REGEX`` (the whole string), ``one of a, b, c``;
    - ``list of RULE`` (not empty; each item follows RULE), ``distinct list of RULE``;
    - ``RULE or None``.

    The pattern of every notebook, in the code cell right after the tagged parameters cell (one
    line per parameter, every parameter of that cell, in its order; nothing else in the cell)::

        from aigc_lib import validate

        validate.parameters(
            n_slots=(n_slots, "int >= 1"),
            weights=(weights, "list of float > 0"),
            scenario_name=(scenario_name, "one of paper, published"),
            profile=(profile, "file or None"),
            results_dir=(results_dir, "str"),
            interactive=(interactive, "bool"),
        )

    ``python -m aigc_lib.reproduce`` reads this cell (without running it) and applies the same
    rules before it starts any kernel, so a bad value is refused at once. Taught in
    ``notebooks/01_prompts_and_clipscore_distributions.ipynb``.
    """
    for name, spec in checks.items():
        if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], str)):
            raise ValueError(f"{name}: expected (value, rule) with a rule string, got {spec!r}")
        check_rule(spec[0], spec[1], name)


def check_rule(value: Any, rule: str, name: str, cwd: str | os.PathLike | None = None) -> Any:
    """``value`` if it follows ``rule`` (see :func:`parameters`), else ``ValueError`` naming
    ``name``. ``cwd``: the folder a relative ``file`` is read from (default: the working one)."""
    problem = _breaks(value, parse_rule(rule, name), cwd)
    if problem is not None:
        hint = ""
        if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
            hint = " (a string: papermill's -p and -r pass strings; give lists with -y or -f)"
        raise ValueError(f"{name}: expected {rule}, got {value!r}{problem}{hint}")
    return value


_BOUND = re.compile(
    r"^(?P<type>int|float)\s*(?:(?P<op>>=|<=|>|<)\s*(?P<bound>\S+)"
    r"|in\s*\[\s*(?P<low>[^,\]]+)\s*,\s*(?P<high>[^\]]+)\s*\])?$"
)


def parse_rule(rule: str, name: str = "rule") -> tuple:
    """A rule string (see :func:`parameters`) as a nested tuple; ``ValueError`` if unreadable."""
    if not isinstance(rule, str) or not rule.strip():
        raise ValueError(f"{name}: expected a rule string, got {rule!r}")
    text = " ".join(rule.split())
    try:
        return _parse(text)
    except ValueError:
        raise ValueError(
            f"{name}: cannot read the rule {rule!r} (see aigc_lib.validate.parameters)"
        ) from None


def _parse(text: str) -> tuple:
    if text.endswith(" or None"):
        return ("optional", _parse(text[: -len(" or None")]))
    for prefix, distinct in (("distinct list of ", True), ("list of ", False)):
        if text.startswith(prefix):
            return ("list", distinct, _parse(text[len(prefix) :]))
    if text.startswith("one of "):
        choices = tuple(c.strip() for c in text[len("one of ") :].split(","))
        if not all(choices):
            raise ValueError(text)
        return ("choice", choices)
    if text.startswith("str matching "):
        return ("match", re.compile(text[len("str matching ") :]))
    if text in ("bool", "str", "file"):
        return (text,)
    match = _BOUND.match(text)
    if match is None:
        raise ValueError(text)
    kind, op = match["type"], match["op"]
    if op is not None:
        return (kind, op, float(match["bound"]))
    if match["low"] is not None:
        return (kind, "in", float(match["low"]), float(match["high"]))
    return (kind,)


_COMPARE = {
    ">=": lambda x, b: x >= b,
    ">": lambda x, b: x > b,
    "<=": lambda x, b: x <= b,
    "<": lambda x, b: x < b,
}


def _breaks(value: Any, rule: tuple, cwd: str | os.PathLike | None) -> str | None:
    """None if ``value`` follows ``rule``, else a (possibly empty) detail for the message."""
    kind = rule[0]
    if kind == "optional":
        return None if value is None else _breaks(value, rule[1], cwd)
    if kind == "list":
        if not isinstance(value, (list, tuple)) or not value:
            return ""
        for index, item in enumerate(value):
            if _breaks(item, rule[2], cwd) is not None:
                return f" (item {index}: {item!r})"
        if rule[1] and len({repr(item) for item in value}) != len(value):
            return " (repeated items)"
        return None
    if kind == "choice":
        return None if isinstance(value, str) and value in rule[1] else ""
    if kind == "match":
        return None if isinstance(value, str) and rule[1].fullmatch(value) else ""
    if kind == "bool":
        return None if isinstance(value, (bool, np.bool_)) else ""
    if kind in ("str", "file"):
        if not isinstance(value, str) or not value.strip():
            return ""
        if kind == "file" and not (Path(cwd or ".") / value).is_file():
            return " (no such file)"
        return None
    if isinstance(value, (bool, np.bool_)):
        return ""
    if kind == "int" and not isinstance(value, (int, np.integer)):
        return ""
    if kind == "float" and (
        not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value)
    ):
        return ""
    if len(rule) == 3 and not _COMPARE[rule[1]](value, rule[2]):
        return ""
    if len(rule) == 4 and not rule[2] <= value <= rule[3]:
        return ""
    return None
