"""The paper's open readings: where its text allows more than one model, each as a named option.

The paper lost its equations, and its prose allows more than one reading at a few points
(docs/SPEC.md section 2b). Each point is a field of :class:`Readings`; the default is the first
option listed in :data:`OPTIONS`. :func:`aigc_lib.simulation.simulate` takes a ``Readings``, so a
claim of the paper can be checked under each reading, one change at a time from the default
(:func:`changed_alone`). :data:`PAPER_WORDS` quotes the line of the paper that allows each option.

Two points are readings of how results are *reported*, not simulated: "time consumption"
(:data:`TIME_CONSUMPTION`) and "up to 2.5%" (:data:`UP_TO`); :mod:`aigc_lib.claims` computes
every one of their statistics.

Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from aigc_lib import validate
from aigc_lib.scenario import Scenario, true_score

__all__ = [
    "Readings",
    "OPTIONS",
    "PAPER_WORDS",
    "TIME_CONSUMPTION",
    "UP_TO",
    "DEFAULT",
    "changed_alone",
    "direct_models",
    "caveat",
    "FLAGS",
    "BASELINE_CHANGING",
]

OPTIONS: dict[str, tuple[str, ...]] = {
    "information": ("category", "prompt"),
    "direct": ("interval", "best"),
    "latency": ("fifo", "per_image"),
    "utility": ("per_task", "per_model"),
    "score_curve": ("log", "saturating"),
}
"""Every simulated point and its options; the first option is the default."""

TIME_CONSUMPTION = ("makespan", "per_model_pct")
"""Readings of "time consumption" (Sec. IV-C, Fig. 9): the change of the mean over models of the
makespan N_m t_m (default), or the mean over models of each model's own percentage change."""

UP_TO = ("mean", "max", "share_won", "null_max")
"""Statistics reported for "up to 2.5%" (Sec. IV-B): the mean per-slot gain, its maximum over
slots, the share of slots won, and how often the maximum of 10 slots reaches 2.5% when the true
mean gain is zero."""

PAPER_WORDS: dict[tuple[str, str], str] = {
    (
        "information",
        "category",
    ): "Sec. III-D: 'the probability of each prompt category being assigned "
    "to each model is calculated as the cumulative probability density of "
    "its score distribution'",
    (
        "information",
        "prompt",
    ): "Sec. IV-B: 'Our method utilizes the scoring potential of each prompt itself, effectively "
    "assigning each prompt to the appropriate model based on the scoring probability of different "
    "categories' (the sentence ends on categories, and Sec. III-D argues that profiling each "
    "prompt is impractical); the first half read alone: the assignment knows each prompt's own "
    "score, an oracle at rho = 1 (ours)",
    ("direct", "interval"): "Sec. IV-B: Direct 'assigns prompts of the same category to a single "
    "model'; the model whose score interval holds the category mean (ours)",
    ("direct", "best"): "Sec. IV-B: 'a single model', not which; the one of best expected utility "
    "for an image on an idle GPU at its fewest steps (ours)",
    ("latency", "fifo"): "Sec. III-B: delay 'determined by the selected steps and the resources "
    "allocation'; each model serves its tasks back to back (ours)",
    ("latency", "per_image"): "Sec. III-B, eq. 2-3 taken literally: a task's delay is its own "
    "image's inference time, no queue",
    ("utility", "per_task"): "Sec. III-C, eq. 4 (lost): the mean over tasks of score - lambda x "
    "delay (ours)",
    ("utility", "per_model"): "Sec. III-C: 'a better trade-off ... for the tasks handled by each "
    "model': the mean over models of (mean score - lambda x mean delay)",
    ("score_curve", "log"): "Sec. II-B: 'the marginal gain of CLIPScore diminishes'; a ln z + b, "
    "which never stops growing (ours)",
    ("score_curve", "saturating"): "Sec. II-B: quality 'significantly improves up to a certain "
    "score'; Sec. IV-C: Optimal-step picks 'the near-optimal step "
    "number'; the score stops growing at saturation_steps",
    ("time_consumption", "makespan"): "Sec. IV-C, Fig. 9: 'saving an average of 30.2% in time "
    "consumption'; mean over models of N_m t_m (ours)",
    (
        "time_consumption",
        "per_model_pct",
    ): "Sec. IV-C: 'less time consumption on each model, saving "
    "an average of 30.2%'; the mean of per-model changes",
    ("up_to", "max"): "Sec. IV-B: 'up to a 2.5% increase compared with other methods at different "
    "time slots'",
}
"""The paper's words that allow each option (section and quote)."""

FLAGS = {
    "baseline changed": "the reading changes which model a baseline uses (Direct by 'best' sends "
    "each whole category to the model of best utility for one image on an idle GPU, ignoring the "
    "queue); whether that weakens the baseline is measured, not assumed: Direct's own mean utility "
    "under the reading against under the default reading, printed in the flag",
    "baseline weakened": "the reading lowers the baseline's own mean utility below its default "
    "reading's (measured, numbers in the flag): a comparison with it measures the weakened "
    "baseline, not the method, so it is kept out of the verdict counts",
    "oracle": "Probabilistic knows each prompt's own score (rho = 1), not the paper's category "
    "information; the flag gives its measured rank among the policies by mean utility (it bounds "
    "the others only where it ranks first); the rho sweep gives the correlation at which a "
    "predictor breaks even with Direct",
}
"""What each flag of :func:`caveat` means (the tables' notes quote it)."""

BASELINE_CHANGING = (("direct", "best"),)
"""Options that change the resources of a baseline (Direct), not the method."""


def caveat(reading: "Readings | str") -> tuple[str, str]:
    """``(flag, explanation)`` for a reading (a :class:`Readings` or its ``label``).

    ``"baseline changed"`` when an option of :data:`BASELINE_CHANGING` is set; ``"oracle"`` when
    the assignment knows each prompt's own score exactly (``information="prompt"`` at rho = 1);
    else ``("", "")``. The explanation is :data:`FLAGS`' line.
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    label = reading.label if isinstance(reading, Readings) else str(reading)
    fields = {}
    for part in label.split(","):
        name, _, option = part.strip().partition("=")
        fields[name] = option
    if any(fields.get(name) == option for name, option in BASELINE_CHANGING):
        return "baseline changed", FLAGS["baseline changed"]
    if fields.get("information") == "prompt" and float(fields.get("rho", 1.0)) == 1.0:
        return "oracle", FLAGS["oracle"]
    return "", ""


@dataclass(frozen=True)
class Readings:
    """One reading of every open point of the paper (docs/SPEC.md section 2b); defaults first.

    ``information``: what Probabilistic-assignment knows about a prompt. ``"category"``: only its
    category, one draw per task from the category's row of eq. 9-10. ``"prompt"``: a predictor of
    the prompt's own medium-model score with correlation ``rho`` to it (``rho = 1``: an oracle that
    knows the score itself, so eq. 9-10 become thresholding it; the planner's score estimate uses
    the prediction too; :func:`caveat` flags it).
    Direct-assignment stays category-only under every reading.
    ``direct``: which single model Direct gives a category: ``"interval"`` (the model whose
    threshold interval holds mu_k) or ``"best"`` (:func:`direct_models`).
    ``latency``: ``"fifo"`` or ``"per_image"``; ``utility``: ``"per_task"`` or ``"per_model"``
    (:class:`aigc_lib.allocation.AllocationProblem` says what each means).
    ``score_curve``: ``"log"`` (a ln z + b) or ``"saturating"`` (flat from ``saturation_steps``).
    ``step_tolerance``: Optimal-step's tolerance in CLIPScore points (the smallest z within it of
    the best estimated score). Invalid values raise ``ValueError`` naming the field.
    """

    information: str = "category"
    rho: float = 1.0
    direct: str = "interval"
    latency: str = "fifo"
    utility: str = "per_task"
    score_curve: str = "log"
    saturation_steps: float = 26.0
    step_tolerance: float = 0.0

    def __post_init__(self) -> None:
        for name, options in OPTIONS.items():
            if getattr(self, name) not in options:
                raise ValueError(f"{name}: expected one of {options}, got {getattr(self, name)!r}")
        for name, low, high in (
            ("rho", 0.0, 1.0),
            ("saturation_steps", 1.0, math.inf),
            ("step_tolerance", 0.0, math.inf),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.integer, np.floating))
                or not math.isfinite(value)
                or not low <= value <= high
            ):
                raise ValueError(f"{name}: expected a number in [{low}, {high}], got {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def predictor_rho(self) -> float:
        """The correlation the planner's per-prompt belief has with the prompt's own score (0: category)."""
        return self.rho if self.information == "prompt" else 0.0

    @property
    def saturation(self) -> float | None:
        """``saturation_steps`` under the saturating curve, else None (the log curve)."""
        return self.saturation_steps if self.score_curve == "saturating" else None

    @property
    def label(self) -> str:
        """A short name: ``"default"``, or the fields that differ from the default, e.g. ``"latency=per_image"``."""
        changed = [
            f"{f.name}={getattr(self, f.name):g}"
            if isinstance(getattr(self, f.name), float)
            else f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
            and not (f.name == "rho" and self.information == "category")
            and not (f.name == "saturation_steps" and self.score_curve == "log")
        ]
        return ", ".join(changed) or "default"

    def replace(self, **changes: Any) -> "Readings":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


DEFAULT = Readings()
"""The default reading of every point (the first option of each)."""


def changed_alone(base: Readings = DEFAULT) -> dict[str, Readings]:
    """``{label: Readings}``: ``base`` itself (``"default"``) and each other option changed alone."""
    out = {"default": base}
    for name, options in OPTIONS.items():
        for option in options:
            if option != getattr(base, name):
                changed = base.replace(**{name: option})
                out[changed.label] = changed
    return out


def direct_models(scenario: Scenario, readings: Readings = DEFAULT) -> np.ndarray:
    """The one model Direct-assignment gives each group (shape (K,), model indices) under ``readings``.

    ``direct="interval"``: the model whose interval of the thresholds holds the group mean mu_k
    (the same split as eq. 9-10). ``direct="best"``: the model with the best expected utility of
    one image of a group-mean prompt on an idle GPU at the model's fewest steps, expected score
    minus lambda x ``ModelSpec.image_seconds``; it ignores queueing, which is what makes it a
    reading rather than an optimum. Category-only either way.
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    validate.instance(readings, Readings, "readings")
    if readings.direct == "interval":
        return np.searchsorted(np.asarray(scenario.thresholds), scenario.mu, side="right").astype(
            np.int64
        )
    steps = np.array([m.steps[0] for m in scenario.models], dtype=float)
    models = np.arange(len(scenario.models))
    score = true_score(
        scenario, scenario.mu[:, None], models[None, :], steps[None, :], readings.saturation
    )
    seconds = np.array([m.image_seconds(z) for m, z in zip(scenario.models, steps)])
    return np.argmax(score - scenario.weight * seconds[None, :], axis=1).astype(np.int64)
