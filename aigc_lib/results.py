"""What every notebook shares: one plot style, one ``save_fig``, one ``write_metrics``.

Each notebook writes to ``results/<notebook>/``: figures under ``figures/`` and its key numbers in
``metrics.json`` (read by the tests and by :mod:`aigc_lib.reproduce` for ``paper_vs_ours.md``).

Publishing. Inside a Jupyter kernel (JupyterLab, or papermill run by hand) the files a notebook
writes into its results folder are staged: :func:`save_fig`, :func:`aigc_lib.fit.write_profile`
and :func:`aigc_lib.sweep.run_sweep` write into a temporary folder, and :func:`write_metrics`,
every notebook's last call, copies them into the results folder before writing ``metrics.json``.
A run that stops before its last cell (an error, a bad parameter) leaves the results folder as it
was, and says where its staged files are. A results folder is the ``results_dir`` given to
:func:`save_fig` or :func:`write_metrics`, or any folder that holds a ``metrics.json``. Outside a
kernel (scripts, the tests, ``python -m aigc_lib.sweep``) files are written in place, as is every
file of a run of :mod:`aigc_lib.reproduce`, which swaps a whole results folder in instead. The
environment variable ``AIGC_STAGE_RESULTS`` overrides the choice: ``1`` stages, ``0`` does not.
A staging folder is a hidden sibling of its results folder (``.<folder>.staged-<pid>-<random>``),
never in the system's temporary directory: published, it is removed; left by a failed run, it
holds that run's files (the failure says where) until the next run for the same folder, which
removes those of processes no longer running.

Where results go. A relative ``results_dir`` (every notebook's default ``"../results/<stem>"``)
is read from the ``notebooks/`` folder of the checkout that holds the working folder, or, outside
any checkout (a cell copied into an analysis elsewhere), from the installed package's checkout;
a checkout whose ``aigc_lib`` is not the one imported is refused (:func:`notebooks_folder`), so
results never land in another checkout.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping

from aigc_lib._io import (
    METRIC_DIGITS,
    atomic_write_bytes,
    remove_dead_siblings,
    round_floats,
    temporary_sibling,
    write_json,
)

STAGING_ENV = "AIGC_STAGE_RESULTS"
STAGED_KIND = "staged"  # staging folders: .<results folder>.staged-<pid>-<random>, beside it
METRICS_NAME = "metrics.json"
_stages: dict[Path, Path] = {}  # results folder (resolved) -> its staging folder, this process
_hook_installed = False


COLOURS: dict[str, str] = {
    # models (Okabe-Ito)
    "sdxl-turbo": "#56B4E9",
    "sd15": "#E69F00",
    "sdxl": "#009E73",
    # assignment policies
    "probabilistic": "#0072B2",
    "direct": "#D55E00",
    "random": "#999999",
    "probabilistic (prompt)": "#CC79A7",
    # allocation methods (Paul Tol's muted scheme)
    "annealing": "#332288",
    "exact": "#117733",
    "equal": "#DDCC77",
    "optimal_step": "#882255",
    "dual_annealing": "#44AA99",
    # peer serving policies (notebook 07)
    "cascade": "#AA4499",
    "router": "#CC6677",
    "probabilistic (paper)": "#000000",
    "load-aware": "#999933",
    # the best of the single-model policies (notebooks 03 and 06)
    "best single model": "#661100",
}
"""One colour per model and per policy, the same in every notebook (pass ``palette=COLOURS``)."""

SCENARIO_COLOURS: dict[str, str] = {"paper": "#4D4D4D", "published": "#A6A6A6"}
"""Greys for the named scenarios, so that they never share a colour with a model or a policy."""

LABELS = {
    "score": "CLIPScore (points)",
    "utility": "utility (CLIPScore points)",
    "latency": "latency (s)",
    "time": "time consumption (s)",
}
"""Axis labels spelled the same everywhere."""

INTERVAL = ("se", 1.96)
"""seaborn's ``errorbar`` for a 95% interval of a mean: mean +- 1.96 standard errors, the same
interval :func:`aigc_lib.metrics.interval` prints (for paired differences: over slots)."""

ZERO_LINE = {"c": "k", "lw": 0.8}
"""``ax.axhline(0, **ZERO_LINE)``: the no-difference line of a figure of differences."""

PAPER_LINE = {"ls": ":", "c": "k", "lw": 1}
"""``ax.axhline(value, **PAPER_LINE)``: a number the paper reports, drawn beside ours."""


def points(**changes: Any) -> dict[str, Any]:
    """Keyword arguments for ``seaborn.pointplot`` shared by every figure of means with intervals:
    one colour per model and policy, the 95% interval of :data:`INTERVAL`, dodged points without
    joining lines. ``changes`` override or add arguments."""
    return {"palette": COLOURS, "errorbar": INTERVAL, "dodge": 0.4, "linestyle": "none", **changes}


def set_style() -> None:
    """The one plot style of the project (seaborn 'whitegrid', readable font sizes)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")


def colours(names: Any) -> list[str]:
    """The colours of ``names`` (models or policies) from :data:`COLOURS`; unknown names get grey."""
    return [COLOURS.get(str(n), "#7F7F7F") for n in names]


PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this ``aigc_lib`` was imported from."""
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
"""That checkout's notebooks: where a relative ``results_dir`` is read from outside a checkout."""


def checkout_of(path: str | os.PathLike) -> Path | None:
    """The checkout of this project holding ``path`` (the nearest folder at or above it with
    ``aigc_lib/__init__.py`` and ``notebooks/``), or None."""
    path = Path(os.path.abspath(path))
    for folder in (path, *path.parents):
        if (folder / "aigc_lib" / "__init__.py").is_file() and (folder / "notebooks").is_dir():
            return folder.resolve()
    return None


def notebooks_folder(cwd: str | os.PathLike | None = None) -> Path:
    """The folder a relative ``results_dir`` is read from, for a kernel working in ``cwd``
    (default: the working folder): the ``notebooks/`` of the checkout holding ``cwd``, else (no
    checkout around: a cell copied elsewhere) the imported package's :data:`NOTEBOOKS_DIR`.

    Raises ``ValueError`` when ``cwd`` lies in a checkout whose ``aigc_lib`` is not the one
    imported (an environment installed from another checkout): its results would mix that
    checkout's code with this one's notebooks, or land in the other checkout.
    """
    checkout = checkout_of(Path.cwd() if cwd is None else cwd)
    if checkout is None:
        return NOTEBOOKS_DIR
    if checkout != PROJECT_ROOT:
        raise ValueError(
            f"results_dir: this notebook runs in the checkout {checkout}, but aigc_lib is "
            f"imported from {PROJECT_ROOT}; install this checkout into the environment "
            f"(cd {checkout} && make setup, or pip install -e {checkout})"
        )
    return checkout / "notebooks"


def results_folder(results_dir: str | os.PathLike) -> Path:
    """``results_dir`` as an absolute path: a relative one is taken from :func:`notebooks_folder`.

    Every notebook's default (``"../results/<notebook>"``) therefore names the same folder
    whatever the working folder, so a cell copied into a notebook elsewhere writes where the
    original did, and never into another checkout.
    """
    path = Path(results_dir)
    return path if path.is_absolute() else (notebooks_folder() / path).resolve()


class WrittenPath(type(Path())):
    """A path that a notebook cell ending with it does not show (no ``PosixPath(...)`` under the
    cell): returned by :func:`save_fig` and :func:`write_metrics`, whose callers may still use it as
    a path."""

    def _ipython_display_(self) -> None:
        return None


def save_fig(fig: Any, name: str, results_dir: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``<results_dir>/figures/<name>.png`` atomically; return the path.

    A relative ``results_dir`` is taken from the notebooks' folder (:func:`results_folder`).
    Inside a Jupyter kernel the file is staged and appears there when :func:`write_metrics`
    publishes the notebook's results (see the module's docstring). The path is a
    :class:`WrittenPath`: a cell ending with ``save_fig`` shows the figure and no path under it.
    Under Jupyter's inline backend the cell shows the saved PNG itself and the figure is closed:
    drawn once, not twice (the backend would draw it again at the end of the cell).
    """
    target = figure_path(name, results_dir)  # the name checked before anything is drawn
    results_dir = results_folder(results_dir)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    atomic_write_bytes(staged_path(target, results_dir), buffer.getvalue())
    _show_instead_of_inline(fig, buffer.getvalue())
    return WrittenPath(target)


def _show_instead_of_inline(fig: Any, png: bytes) -> None:
    """Under the inline backend: show ``png`` (the figure as saved) and close ``fig``."""
    import matplotlib

    if "inline" not in matplotlib.get_backend():
        return
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    display(Image(data=png, format="png"))
    plt.close(fig)


def figure_path(name: str, results_dir: str | os.PathLike) -> Path:
    """Where :func:`save_fig` puts the figure ``name``: ``<results_dir>/figures/<name>.png`` (a
    relative ``results_dir`` taken from the notebooks' folder), once published. ``name`` must be
    a bare file name (no ``/``, no ``.png``)."""
    if not name or "/" in name or name.endswith(".png"):
        raise ValueError(f"name: expected a bare file name without '/' or '.png', got {name!r}")
    return results_folder(results_dir) / "figures" / f"{name}.png"


def write_metrics(metrics: Mapping[str, Any], results_dir: str | os.PathLike) -> Path:
    """Write a notebook's key numbers to ``<results_dir>/metrics.json`` (atomically).

    Every float is written with :data:`METRIC_DIGITS` (12) significant digits
    (:func:`aigc_lib._io.round_floats`): more than any result here means, and far from the float
    noise of summation order (about 1e-15 relative, which depends on the BLAS build and the number
    of threads), so that a rerun which changes nothing writes the same bytes. Keys are sorted.
    First publishes the files staged for ``results_dir`` (figures, sweep rows, profile: see the
    module's docstring), so ``metrics.json`` is written last. Returns its path (a
    :class:`WrittenPath`: the last cell of a notebook shows no repr of it). A relative
    ``results_dir`` is taken from the notebooks' folder (:func:`results_folder`).
    """
    if not isinstance(metrics, Mapping):
        raise ValueError(
            f"metrics: expected a mapping of names to numbers, got {type(metrics).__name__}"
        )
    results_dir = results_folder(results_dir)
    publish(results_dir)
    written = write_json(results_dir / METRICS_NAME, round_floats(dict(metrics), METRIC_DIGITS))
    return WrittenPath(written)


def staging_active() -> bool:
    """Whether writes into results folders are staged now: inside a Jupyter kernel, unless the
    environment variable ``AIGC_STAGE_RESULTS`` says otherwise (``1``: stage, ``0``: do not)."""
    setting = os.environ.get(STAGING_ENV, "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    if setting:
        raise ValueError(f"{STAGING_ENV}: expected 0 or 1, got {setting!r}")
    return _kernel() is not None


def staged_path(
    path: str | os.PathLike, results_dir: str | os.PathLike | None = None, seed: bool = False
) -> Path:
    """Where a writer should write ``path`` now: ``path`` itself, or, while staging is active and
    ``path`` lies in a results folder, its place in that folder's staging folder.

    ``results_dir`` names the results folder; by default it is the nearest folder above ``path``
    that is being staged or holds a ``metrics.json``. ``seed=True`` (for a folder written
    incrementally, such as a sweep's rows) first copies the published folder into the staging
    folder, so the staged copy continues from it.
    """
    path = Path(path)
    if not staging_active():
        return path
    absolute = Path(os.path.abspath(path))
    if results_dir is not None:
        folder = Path(os.path.abspath(results_dir))
        if folder != absolute and folder not in absolute.parents:
            raise ValueError(f"path: {str(path)!r} is not inside results_dir {str(results_dir)!r}")
    else:
        folders = (p for p in absolute.parents if p in _stages or (p / METRICS_NAME).is_file())
        folder = next(folders, None)
        if folder is None:
            return path
    stage = _stages.get(folder)
    if stage is None or not stage.is_dir():
        remove_dead_siblings(folder.parent, (STAGED_KIND,), folder.name)  # of ended runs
        stage = _stages[folder] = temporary_sibling(folder, STAGED_KIND)
        _report_unpublished_on_error()
    target = stage / absolute.relative_to(folder)
    if seed and absolute.is_dir() and not target.exists():
        shutil.copytree(absolute, target)
    return target


def publish(results_dir: str | os.PathLike) -> list[Path]:
    """Copy the files staged for ``results_dir`` into it (each atomically) and drop the staging
    folder; return the published paths. Nothing staged: nothing to do. Called by
    :func:`write_metrics`."""
    folder = Path(os.path.abspath(results_dir))
    stage = _stages.pop(folder, None)
    if stage is None or not stage.is_dir():
        return []
    published = []
    for source in sorted(p for p in stage.rglob("*") if p.is_file()):
        target = Path(results_dir) / source.relative_to(stage)
        published.append(atomic_write_bytes(target, source.read_bytes()))
    shutil.rmtree(stage, ignore_errors=True)
    return published


def _kernel() -> Any:
    """The running Jupyter kernel's shell, or None (plain Python, the terminal IPython)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if shell is not None and hasattr(shell, "kernel") else None


def _report_unpublished_on_error() -> None:
    """In a kernel, after a cell fails, say which results folders were left unchanged and where
    their staged files are (once per process: an IPython ``post_run_cell`` hook)."""
    global _hook_installed
    shell = _kernel()
    if shell is None or _hook_installed:
        return

    def report(result: Any) -> None:
        if getattr(result, "error_in_exec", None) is None:
            return
        for folder, stage in _stages.items():
            print(
                f"aigc_lib.results: {folder} left unchanged (results are published by the "
                f"notebook's last cell, results.write_metrics); this run's files so far: {stage}",
                file=sys.stderr,
            )

    shell.events.register("post_run_cell", report)
    _hook_installed = True


def explore(plot: Any, interactive: bool, **sliders: Any) -> Any:
    """Redraw ``plot(**values)`` under ipywidgets sliders, or draw it once at the defaults.

    ``sliders`` map each argument of ``plot`` to ``(low, high, step, default)``. With
    ``interactive=False`` (headless runs: papermill, CI) ``plot`` is called once with the
    defaults and its value returned, so the executed notebook still shows a static figure. With
    sliders it returns None (not ``plot`` itself, whose repr would show under the sliders).
    """
    for name, spec in sliders.items():
        if not (isinstance(spec, tuple) and len(spec) == 4 and spec[0] <= spec[3] <= spec[1]):
            raise ValueError(
                f"{name}: expected (low, high, step, default) with low <= default <= high, got {spec!r}"
            )
    defaults = {name: spec[3] for name, spec in sliders.items()}
    if not interactive:
        return plot(**defaults)
    import ipywidgets

    controls = {
        name: ipywidgets.FloatSlider(
            value=d, min=lo, max=hi, step=st, description=name, continuous_update=False
        )
        for name, (lo, hi, st, d) in sliders.items()
    }
    ipywidgets.interact(plot, **controls)
    return None
