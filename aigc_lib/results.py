"""What every notebook shares: one plot style, one ``save_fig``, one ``write_metrics``.

Each notebook writes to ``results/<notebook>/``: figures under ``figures/`` and its key numbers in
``metrics.json`` (read by the tests and by :mod:`aigc_lib.reproduce` for ``paper_vs_ours.md``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping

from aigc_lib._io import atomic_write_bytes, write_json


COLOURS: dict[str, str] = {
    # models (Okabe-Ito)
    "sdxl-turbo": "#56B4E9", "sd15": "#E69F00", "sdxl": "#009E73",
    # assignment policies
    "probabilistic": "#0072B2", "direct": "#D55E00", "random": "#999999",
    "probabilistic (prompt)": "#CC79A7",
    # allocation methods (Paul Tol's muted scheme)
    "annealing": "#332288", "exact": "#117733", "equal": "#DDCC77", "optimal_step": "#882255",
    "dual_annealing": "#44AA99",
    # peer serving policies (notebook 07)
    "cascade": "#AA4499", "router": "#88CCEE",
}
"""One colour per model and per policy, the same in every notebook (pass ``palette=COLOURS``)."""

LABELS = {"score": "CLIPScore (points)", "utility": "utility (CLIPScore points)",
          "latency": "latency (s)", "time": "time consumption (s)"}
"""Axis labels spelled the same everywhere."""


def set_style() -> None:
    """The one plot style of the project (seaborn 'whitegrid', readable font sizes)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")


def colours(names: Any) -> list[str]:
    """The colours of ``names`` (models or policies) from :data:`COLOURS`; unknown names get grey."""
    return [COLOURS.get(str(n), "#7F7F7F") for n in names]


def save_fig(fig: Any, name: str, results_dir: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``<results_dir>/figures/<name>.png`` (atomically) and return the path."""
    if not name or "/" in name or name.endswith(".png"):
        raise ValueError(f"name: expected a bare file name without '/' or '.png', got {name!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return atomic_write_bytes(Path(results_dir) / "figures" / f"{name}.png", buffer.getvalue())


def write_metrics(metrics: Mapping[str, Any], results_dir: str | os.PathLike) -> Path:
    """Write a notebook's key numbers to ``<results_dir>/metrics.json`` (atomically)."""
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics: expected a mapping of names to numbers, got {type(metrics).__name__}")
    return write_json(Path(results_dir) / "metrics.json", dict(metrics))



def explore(plot: Any, interactive: bool, **sliders: Any) -> Any:
    """Redraw ``plot(**values)`` under ipywidgets sliders, or draw it once at the defaults.

    ``sliders`` map each argument of ``plot`` to ``(low, high, step, default)``. With
    ``interactive=False`` (headless runs: papermill, CI) ``plot`` is called once with the
    defaults, so the executed notebook still shows a static figure.
    """
    for name, spec in sliders.items():
        if not (isinstance(spec, tuple) and len(spec) == 4 and spec[0] <= spec[3] <= spec[1]):
            raise ValueError(f"{name}: expected (low, high, step, default) with low <= default <= high, got {spec!r}")
    defaults = {name: spec[3] for name, spec in sliders.items()}
    if not interactive:
        return plot(**defaults)
    import ipywidgets

    controls = {
        name: ipywidgets.FloatSlider(value=d, min=lo, max=hi, step=st, description=name, continuous_update=False)
        for name, (lo, hi, st, d) in sliders.items()
    }
    return ipywidgets.interact(plot, **controls)
