"""PartiPrompts (P2): loading, and merging its 11 challenge labels into the paper's 4 groups.

The paper (Sec. II-A) merges PartiPrompts' challenge labels "with similar CLIPScore" into four groups,
Basic, Imagination, Detail and Complex, but does not list the mapping. We ship a default mapping
(``data/challenge_groups.yaml``, each choice with its reason) and :func:`group_challenges`, the exact
optimal 1-D grouping, for regrouping once per-challenge scores are measured.

Taught in ``notebooks/01_prompts_and_clipscore_distributions.ipynb``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, NamedTuple

from aigc_lib._io import atomic_write_bytes, load_yaml

if TYPE_CHECKING:
    import pandas as pd

# numpy, pandas and yaml are imported where used: `python -m aigc_lib.prompts --check` runs on
# the standard library alone, before `make setup` installs anything

PARTIPROMPTS_URL = "https://raw.githubusercontent.com/google-research/parti/main/PartiPrompts.tsv"
PARTIPROMPTS_MD5 = "975b3cf12ca946f1e994c89c02a55e3c"
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CACHE_PATH = DATA_DIR / "cache" / "PartiPrompts.tsv"
GROUPS_PATH = DATA_DIR / "challenge_groups.yaml"
GROUPS = ("Basic", "Imagination", "Detail", "Complex")
PARTIPROMPTS_ROWS = 1632
_COLUMNS = {"Prompt": "prompt", "Category": "category", "Challenge": "challenge"}
CATEGORIES = (
    "Abstract",
    "Animals",
    "Artifacts",
    "Arts",
    "Food & Beverage",
    "Illustrations",
    "Indoor Scenes",
    "Outdoor Scenes",
    "People",
    "Produce & Plants",
    "Vehicles",
    "World Knowledge",
)
CHALLENGES = (
    "Basic",
    "Complex",
    "Fine-grained Detail",
    "Imagination",
    "Linguistic Structures",
    "Perspective",
    "Properties & Positioning",
    "Quantity",
    "Simple Detail",
    "Style & Format",
    "Writing & Symbols",
)
_REMEDIES = (
    "Set PARTIPROMPTS_PATH to a local copy of PartiPrompts.tsv (in JupyterLab: before starting "
    "the server), or put the file at data/cache/PartiPrompts.tsv."
)


def load_challenge_groups(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The default challenge -> group mapping (``data/challenge_groups.yaml``): {challenge: group}."""
    raw = load_yaml(Path(path or GROUPS_PATH).read_text(encoding="utf-8"))
    return {challenge: entry["group"] for challenge, entry in raw["challenges"].items()}


def load_partiprompts(
    path: str | os.PathLike | None = None,
    mapping: Mapping[str, str] | None = None,
    url: str = PARTIPROMPTS_URL,
    *,
    allow_subset: bool = False,
) -> pd.DataFrame:
    """Load PartiPrompts as a DataFrame: prompt_id, prompt, category, challenge, group.

    Lookup order: ``path``; the environment variable ``PARTIPROMPTS_PATH``; the cache
    ``data/cache/PartiPrompts.tsv``; a download from ``url`` (the official file of
    google-research/parti), md5-verified and cached atomically. ``group`` is the paper's group of
    the prompt's challenge under ``mapping`` (default: :func:`load_challenge_groups`).
    ``prompt_id`` is the row number in the file (0-based).

    Every source is validated, local copies included: the Prompt, Category and Challenge columns,
    no empty field, only the official category and challenge labels, and the official content
    (md5 and 1632 prompts), so a truncated or edited copy is refused rather than giving wrong
    results. ``allow_subset=True`` accepts a deliberate subset (any number of valid rows, at least
    one). Raises ``ValueError`` naming the file and what is wrong; a missing file names both
    remedies (set ``PARTIPROMPTS_PATH``, or put the file at ``data/cache/PartiPrompts.tsv``).
    Taught in ``notebooks/01_prompts_and_clipscore_distributions.ipynb``.
    """
    if not isinstance(allow_subset, bool):
        raise ValueError(f"allow_subset: expected True or False, got {allow_subset!r}")
    mapping = dict(load_challenge_groups() if mapping is None else mapping)
    data, source, downloaded = _locate(path, url)
    frame = _parse(data, source)
    _check_labels(frame, source)
    unknown = sorted(set(frame["challenge"]) - set(mapping))
    if unknown:
        raise ValueError(f"mapping: unknown challenge labels {unknown}; known: {sorted(mapping)}")
    if not allow_subset:
        _check_official(data, frame, source)
    frame["group"] = frame["challenge"].map(mapping)
    if downloaded:  # cache only a verified, parsed file
        atomic_write_bytes(CACHE_PATH, data)
    return frame


def describe_source(path: str | os.PathLike | None = None) -> str:
    """One line saying where :func:`load_partiprompts` finds PartiPrompts and that it is valid.

    Raises the loader's one-line ``ValueError`` when the file is missing or wrong (used by
    ``make test`` and ``python -m aigc_lib.reproduce`` to stop before running anything).
    """
    frame = load_partiprompts(path)
    env = os.environ.get("PARTIPROMPTS_PATH")
    where = path if path is not None else env if env else _shown(CACHE_PATH)
    return f"PartiPrompts: {len(frame)} prompts from {where} (official file, md5 verified)"


def _locate(path: str | os.PathLike | None, url: str) -> tuple[bytes, _Source, bool]:
    """The raw bytes of the TSV from the first place of the lookup order that has it, where they
    come from, and whether they were downloaded (and so still to be cached)."""
    if path is not None:
        return _read(Path(path), "path"), _Source("path", str(path)), False
    env = os.environ.get("PARTIPROMPTS_PATH")
    if env:
        return _read(Path(env), "PARTIPROMPTS_PATH"), _Source("PARTIPROMPTS_PATH", env), False
    if CACHE_PATH.is_file():
        return _read(CACHE_PATH, "cache"), _Source("cache", _shown(CACHE_PATH)), False
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as err:
        raise ValueError(
            f"path: PartiPrompts.tsv not found (no PARTIPROMPTS_PATH, no {_shown(CACHE_PATH)}) and "
            f"its download from {url} failed ({err}). {_REMEDIES}"
        ) from None
    _check_md5(data, url)
    return data, _Source("url", url), True


class _Source(NamedTuple):
    """Where the TSV being loaded comes from; ``str()`` names the argument and the file."""

    argument: str
    file: str

    def __str__(self) -> str:
        return f"{self.argument}: {self.file!r}"


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)


def _read(path: Path, argument: str) -> bytes:
    if not path.is_file():
        remedy = ""
        if argument == "PARTIPROMPTS_PATH":
            remedy = (
                " Fix or unset PARTIPROMPTS_PATH, or put the file at data/cache/PartiPrompts.tsv."
            )
        raise ValueError(
            f"{argument}: {str(path)!r} is not a file (expected PartiPrompts.tsv).{remedy}"
        )
    return path.read_bytes()


def _check_md5(data: bytes, source: str) -> None:
    digest = hashlib.md5(data).hexdigest()
    if digest != PARTIPROMPTS_MD5:
        raise ValueError(
            f"url: checksum mismatch for {source}: md5 {digest}, expected {PARTIPROMPTS_MD5}"
        )


def _parse(data: bytes, source: _Source) -> pd.DataFrame:
    """The Prompt, Category and Challenge columns of the TSV, checked for shape and empty fields."""
    import numpy as np
    import pandas as pd

    if not data.strip():
        raise ValueError(f"{source} is empty (expected the tab-separated PartiPrompts.tsv)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{source} is not UTF-8 text (byte {err.start}); "
            "expected the tab-separated PartiPrompts.tsv"
        ) from None
    if "\x00" in text:
        raise ValueError(f"{source} is a binary file; expected the tab-separated PartiPrompts.tsv")
    try:
        raw = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        detail = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ValueError(f"{source} is not a tab-separated table ({detail})") from None
    missing = sorted(set(_COLUMNS) - set(raw.columns))
    if missing:
        raise ValueError(
            f"{source}: PartiPrompts file lacks columns {missing} (has {list(raw.columns)})"
        )
    if raw.empty:
        raise ValueError(f"{source} holds no prompts (only a header)")
    frame = raw[list(_COLUMNS)].rename(columns=_COLUMNS)
    for column in ("prompt", "category", "challenge"):
        empty = frame.index[frame[column].str.strip() == ""].tolist()
        if empty:
            plural = "prompts" if column == "prompt" else f"{column} labels"
            raise ValueError(f"{source}: empty {plural} in rows {empty[:10]}")
    frame.insert(0, "prompt_id", np.arange(len(frame)))
    return frame


def _check_labels(frame: pd.DataFrame, source: _Source) -> None:
    """Only the official category and challenge labels of PartiPrompts."""
    for column, known in (("category", CATEGORIES), ("challenge", CHALLENGES)):
        unknown = sorted(set(frame[column]) - set(known))
        if unknown:
            raise ValueError(
                f"{source}: unknown {column} labels {unknown[:10]}; known: {sorted(known)}"
            )


def _check_official(data: bytes, frame: pd.DataFrame, source: _Source) -> None:
    """The official file's content: its md5, hence its 1632 prompts."""
    digest = hashlib.md5(data).hexdigest()
    if digest == PARTIPROMPTS_MD5:
        return
    if len(frame) != PARTIPROMPTS_ROWS:
        what = f"holds {len(frame)} prompts where the official file holds {PARTIPROMPTS_ROWS}"
    else:
        what = f"differs from the official file (md5 {digest}, expected {PARTIPROMPTS_MD5})"
    raise ValueError(
        f"{source} {what}: a truncated or edited copy gives wrong results. Use the official file, "
        "or pass allow_subset=True for a deliberate subset."
    )


def group_challenges(
    mean_score_by_challenge: Mapping[str, float], n_groups: int = 4
) -> dict[str, int]:
    """Exact optimal 1-D grouping of challenges by mean score, {challenge: group index}.

    Groups are contiguous in sorted score and minimise the total within-group squared error of the
    challenge means (dynamic programming, O(n_groups x n^2); no random initialisation). Group 0
    has the lowest scores. Scores in CLIPScore points.
    Taught in ``notebooks/01_prompts_and_clipscore_distributions.ipynb``.
    """
    import numpy as np

    if not isinstance(n_groups, (int, np.integer)) or n_groups < 1:
        raise ValueError(f"n_groups: expected a positive integer, got {n_groups!r}")
    names = list(mean_score_by_challenge)
    values = np.array([mean_score_by_challenge[n] for n in names], dtype=float)
    if len(names) < n_groups:
        raise ValueError(
            f"mean_score_by_challenge: needs at least n_groups={n_groups} entries, got {len(names)}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("mean_score_by_challenge: scores must be finite numbers")
    order = np.argsort(values, kind="stable")
    x = values[order]
    n = len(x)
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])

    def sse(i: int, j: int) -> float:  # squared error of x[i:j] around its mean
        s, m = c1[j] - c1[i], j - i
        return c2[j] - c2[i] - s * s / m

    cost = np.full((n_groups + 1, n + 1), np.inf)
    cut = np.zeros((n_groups + 1, n + 1), dtype=int)
    cost[0, 0] = 0.0
    for g in range(1, n_groups + 1):
        for j in range(g, n + 1):
            for i in range(g - 1, j):
                c = cost[g - 1, i] + sse(i, j)
                if c < cost[g, j] - 1e-12:
                    cost[g, j], cut[g, j] = c, i
    labels = np.empty(n, dtype=int)
    j = n
    for g in range(n_groups, 0, -1):
        i = cut[g, j]
        labels[i:j] = g - 1
        j = i
    return {names[order[p]]: int(labels[p]) for p in range(n)}


def check_source() -> str:
    """Find PartiPrompts as :func:`load_partiprompts` does (downloading and caching it when it is
    nowhere) and check that it is the official file (md5); return one line saying where it is.

    Standard library only, so ``make setup`` runs it (``python -m aigc_lib.prompts --check``)
    before installing anything: without the file, a newcomer learns it at once, not after the
    install. Raises the loader's one-line ``ValueError`` saying what to do.
    """
    data, source, downloaded = _locate(None, PARTIPROMPTS_URL)
    digest = hashlib.md5(data).hexdigest()
    if digest != PARTIPROMPTS_MD5:
        raise ValueError(
            f"{source} differs from the official PartiPrompts.tsv (md5 {digest}, expected "
            f"{PARTIPROMPTS_MD5}): a truncated or edited copy gives wrong results. {_REMEDIES}"
        )
    if downloaded:
        atomic_write_bytes(CACHE_PATH, data)
        source = _Source("cache", _shown(CACHE_PATH))
    return f"PartiPrompts: {source.file} (official file, md5 verified)"


def main(argv: list[str] | None = None) -> int:
    """``python -m aigc_lib.prompts --check``: :func:`check_source`, one line, exit status 1 if
    the file is missing or wrong."""
    parser = argparse.ArgumentParser(prog="python -m aigc_lib.prompts", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="check for PartiPrompts.tsv")
    args = parser.parse_args(argv)
    if not args.check:
        parser.error("nothing to do: pass --check")
    try:
        print(check_source())
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
