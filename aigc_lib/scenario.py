"""The scenario: every parameter of docs/SPEC.md section 4, with where it comes from.

A scenario file (``data/scenarios/<name>.yaml``) stores each number as ``{value, source, reason}``,
where ``source`` is ``paper``, ``published`` (derived from others' published figures, the arithmetic
in the reason, the source in ``data/SOURCES.md``), ``measured`` or ``assumption``.
:func:`load_scenario` validates it into a frozen :class:`Scenario`. Two scenarios ship:

* ``"paper"`` (the default): the paper's system; keeps the premises it states (P1, P2 of
  docs/SPEC.md section 3), which :func:`premises` checks and :func:`load_scenario` enforces;
* ``"published"``: follows the published evidence where it contradicts an assumption of
  ``"paper"`` (1-step SDXL-Turbo scores like SDXL on CLIP), even though that breaks P1.

Latency comes from published measurements of the paper's GPU class: seconds per denoising step and
fixed seconds per image with the whole GPU (:meth:`ModelSpec.image_seconds`). The counted TFLOP of
``data/flops.csv`` explain what a step costs; the allocator works in *effective* TFLOP = seconds x C
(:attr:`Scenario.effective_tflop_per_step`). A *profile* (written by :mod:`aigc_lib.fit`) can replace
assumed numbers with measured ones. :func:`true_score` is the simulator's ground truth.

Taught in ``notebooks/01_prompts_and_clipscore_distributions.ipynb`` (priors),
``notebooks/02_step_sweeps_on_the_gpu.ipynb`` (latency) and
``notebooks/03_probabilistic_assignment.ipynb`` (premises, ground truth).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml
from scipy.special import ndtr

from aigc_lib import validate
from aigc_lib._io import load_yaml

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SCENARIOS_DIR = DATA_DIR / "scenarios"
DEFAULT_NAME = "paper"
DEFAULT_SCENARIO = SCENARIOS_DIR / f"{DEFAULT_NAME}.yaml"
SOURCES = ("paper", "published", "measured", "assumption")
FLOP_COMPONENTS = ("unet_step", "vae_decode", "text_encode")
PREMISES = ("P1", "P2")
"""The paper's premises a scenario may declare (docs/SPEC.md section 3): P1 "the larger model
generates better results with longer delay"; P2 the Fig. 4 observation."""

P2_MAX_LOSS = 0.5
"""P2: the most CLIPScore points low-interval prompts may lose on the small model ("about half a point")."""
P2_MIN_GAIN = 1.0
"""P2: the least CLIPScore points high-interval prompts must gain on the large model ("a point or more")."""

_TOP_KEYS = {
    "name",
    "extends",
    "premises",
    "overrides",
    "flops_table",
    "weight",
    "thresholds",
    "step_options",
    "capacity_tflops",
    "min_share",
    "noise_sd",
    "residual_sd",
    "residual_corr",
    "tasks_per_slot",
    "models",
    "groups",
}
_MODEL_KEYS = {
    "name",
    "fixed_steps",
    "step_seconds",
    "fixed_seconds",
    "score_slope",
    "score_offset",
    "score_beta",
    "zref",
}
_GROUP_KEYS = {"name", "mu", "sigma", "share"}
_LEAF_KEYS = {"value", "source", "reason"}


@dataclass(frozen=True)
class Provenance:
    """Where one number comes from: ``source`` in ``SOURCES`` and a one-line ``reason``."""

    source: str
    reason: str


@dataclass(frozen=True)
class ModelSpec:
    """One hosted model (docs/SPEC.md section 2 and the ground truth of section 3).

    ``steps``: the allowed denoising-step counts. Latency with the whole GPU: ``step_seconds`` per
    denoising step and ``fixed_seconds`` per image (text encoders, VAE decode), so one image takes
    :meth:`image_seconds` = z x step_seconds + fixed_seconds. ``tflop_per_step`` F_m and
    ``tflop_fixed`` F0_m: the counted TFLOP of the real architecture (:meth:`work_tflop`), which
    explain the cost but do not set the time. Ground truth s_nm(z) = Sbar + d_m + beta_m (mu_k + e_n
    - Sbar) + a_m ln(z / zref_m): ``score_slope`` a_m (CLIPScore points per unit ln z),
    ``score_offset`` d_m, ``score_beta`` beta_m, ``zref`` zref_m.
    Taught in ``notebooks/02_step_sweeps_on_the_gpu.ipynb``.
    """

    name: str
    steps: tuple[int, ...]
    step_seconds: float
    fixed_seconds: float
    tflop_per_step: float
    tflop_fixed: float
    score_slope: float
    score_offset: float
    score_beta: float
    zref: float

    def image_seconds(self, steps: Any) -> Any:
        """Seconds for one image at ``steps`` denoising steps with the whole GPU: z s_m + f_m."""
        return np.asarray(steps, dtype=float) * self.step_seconds + self.fixed_seconds

    def work_tflop(self, steps: Any) -> Any:
        """Counted work per image W_m(z) = z F_m + F0_m, in TFLOP (docs/SPEC.md section 2)."""
        return np.asarray(steps, dtype=float) * self.tflop_per_step + self.tflop_fixed


@dataclass(frozen=True)
class GroupPrior:
    """A prompt group's Gaussian prior N(mu, sigma^2) of medium-model CLIPScore, and its share."""

    name: str
    mu: float
    sigma: float
    share: float


@dataclass(frozen=True)
class Scenario:
    """All parameters of one experiment (docs/SPEC.md section 4); build with :func:`load_scenario`.

    ``models`` are ordered small to large; ``thresholds`` (CLIPScore points, strictly increasing,
    one fewer than models) split the medium model's score axis; ``weight`` is lambda in CLIPScore
    points per second; ``capacity_tflops`` is C, the GPU in effective TFLOPS (the unit in which the
    allocator shares it; each model's seconds are for the whole GPU); ``min_share`` the smallest
    fraction of C a model with tasks gets; ``noise_sd`` the per-image CLIPScore noise;
    ``tasks_per_slot`` the prompts arriving in one slot. ``residual_sd`` tau (CLIPScore points) and
    ``residual_corr`` rho_r: the spread of the prompt-and-model-specific residual r_nm of
    :func:`true_score` and its correlation between two models (:func:`residual_covariance`;
    defaults 0 and 1: no residual). ``name``: the scenario's name;
    ``premises``: the premises of :data:`PREMISES` it keeps (checked on load). ``provenance`` maps
    dotted keys (``groups.Basic.mu``) to :class:`Provenance`. ``profile``: the name of the profile
    of measurements whose values replace the scenario's (None: the scenario as shipped);
    ``real_weights``: False when that profile was fitted on random-weight models (a demonstration
    of the mechanism, not measurements of the real models). :attr:`label` says all of it in words,
    for figure titles and tables.
    """

    models: tuple[ModelSpec, ...]
    groups: tuple[GroupPrior, ...]
    thresholds: tuple[float, ...]
    weight: float
    capacity_tflops: float
    min_share: float
    noise_sd: float
    tasks_per_slot: int
    residual_sd: float = 0.0
    residual_corr: float = 1.0
    name: str = "custom"
    premises: tuple[str, ...] = ()
    provenance: Mapping[str, Provenance] = field(default_factory=dict, compare=False, repr=False)
    profile: str | None = None
    real_weights: bool = True

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def label(self) -> str:
        """Where the numbers come from, in words: the scenario's name, and its profile if any.

        ``"paper"``; ``"paper + profile latency_h200"``; a profile fitted on random weights adds
        ``"(random weights: a demonstration, not the real models)"``.
        """
        if self.profile is None:
            return self.name
        text = f"{self.name} + profile {self.profile}"
        if not self.real_weights:
            text += " (random weights: a demonstration, not the real models)"
        return text

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    @property
    def mu(self) -> np.ndarray:
        """Group prior means, CLIPScore points, shape (K,)."""
        return np.array([g.mu for g in self.groups])

    @property
    def sigma(self) -> np.ndarray:
        """Group prior standard deviations, CLIPScore points, shape (K,)."""
        return np.array([g.sigma for g in self.groups])

    @property
    def shares(self) -> np.ndarray:
        """Share of prompts in each group, shape (K,), sums to 1."""
        return np.array([g.share for g in self.groups])

    @property
    def mean_score(self) -> float:
        """Sbar: the prompt-weighted mean of the group means (docs/SPEC.md section 3)."""
        return float(self.shares @ self.mu)

    @property
    def reference_model(self) -> int:
        """Index of the medium model, whose CLIPScore axis the priors and thresholds live on."""
        return len(self.models) // 2

    @property
    def effective_tflop_per_step(self) -> np.ndarray:
        """Each model's step in the allocator's unit, step_seconds x C (effective TFLOP), shape (M,)."""
        return np.array([m.step_seconds for m in self.models]) * self.capacity_tflops

    @property
    def effective_tflop_fixed(self) -> np.ndarray:
        """Each model's fixed work per image, fixed_seconds x C (effective TFLOP), shape (M,)."""
        return np.array([m.fixed_seconds for m in self.models]) * self.capacity_tflops

    def replace(self, **changes: Any) -> "Scenario":
        """A copy with some fields changed (validated again; premises are not re-checked).

        ``capacity_tflops`` cannot be replaced alone (the models' seconds are for the whole GPU of
        capacity C): use :meth:`with_capacity`, which rescales them.
        """
        if "capacity_tflops" in changes and changes["capacity_tflops"] != self.capacity_tflops:
            raise ValueError(
                "capacity_tflops: use Scenario.with_capacity(c), which also rescales every "
                "model's seconds (they are measured with the whole GPU)"
            )
        return dataclasses.replace(self, **changes)

    def with_capacity(self, capacity_tflops: float) -> "Scenario":
        """The scenario on a GPU of ``capacity_tflops`` effective TFLOPS instead of C.

        Every model's seconds scale by C / ``capacity_tflops`` (twice the TFLOPS: half the time).
        """
        new = validate.number(capacity_tflops, "capacity_tflops", low=0.0, low_open=True)
        scale = self.capacity_tflops / new
        models = tuple(
            dataclasses.replace(
                m, step_seconds=m.step_seconds * scale, fixed_seconds=m.fixed_seconds * scale
            )
            for m in self.models
        )
        return dataclasses.replace(self, models=models, capacity_tflops=new)


def scenario_names() -> list[str]:
    """The names of the scenarios shipped in ``data/scenarios/`` (``load_scenario(name)``)."""
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.yaml"))


def load_scenario(
    name: str | os.PathLike | None = None,
    profile: str | os.PathLike | Mapping[str, Any] | None = None,
    flops_path: str | os.PathLike | None = None,
    allow_random_weights: bool = False,
) -> Scenario:
    """Read and validate a scenario: ``"paper"`` (the default), ``"published"``, or a file's path.

    ``name``: a scenario name of :func:`scenario_names` or the path of a YAML scenario file. A file
    may say ``extends: <name>`` and list ``overrides`` (dotted keys, as in a profile) to change
    some numbers of another scenario. ``profile``: a YAML file (or mapping) ``{overrides:
    {dotted.key: {value, source, reason}}}`` written by :func:`aigc_lib.fit.write_profile`; its
    values replace the scenario's. ``flops_path``: the FLOP table (default: the scenario's
    ``flops_table`` entry, relative to the scenario file), columns model, resolution, component,
    tflop. A profile marked ``real_weights: false`` (fitted on random-weight models) is refused
    unless ``allow_random_weights=True`` (demonstrations only). A scenario file that declares
    ``premises`` must keep them (:func:`check_premises`); with a profile they are not enforced
    (measurements that break a premise are a finding: see :func:`premises`). Raises ``ValueError``
    naming the bad key.
    Taught in ``notebooks/01_prompts_and_clipscore_distributions.ipynb``.
    """
    path = _scenario_path(name)
    raw = _resolve(path, seen=())
    if profile is not None:
        body = _profile_body(profile)
        raw = _apply_overrides(raw, _profile_overrides(body, allow_random_weights), "profile")
    if flops_path is None:
        flops_path = path.parent / _require(raw, "flops_table", str)
    scenario = _build(raw, _read_flops(flops_path))
    if profile is None:  # measurements may break a premise: a finding for premises(), not an error
        check_premises(scenario)
        return scenario
    profile_name = "mapping" if isinstance(profile, Mapping) else Path(profile).stem
    return dataclasses.replace(
        scenario, profile=profile_name, real_weights=body.get("real_weights", True) is True
    )


def _profile_body(profile: str | os.PathLike | Mapping[str, Any]) -> Mapping:
    if isinstance(profile, Mapping):
        return profile
    if not isinstance(profile, (str, os.PathLike)):
        raise ValueError(
            f"profile: expected the path of a profile YAML or a mapping, got {type(profile).__name__}"
        )
    return _read_yaml(Path(profile), "profile")


def _scenario_path(name: str | os.PathLike | None) -> Path:
    if name is None:
        return DEFAULT_SCENARIO
    if isinstance(name, str) and name in scenario_names():
        return SCENARIOS_DIR / f"{name}.yaml"
    if not isinstance(name, (str, os.PathLike)):
        raise ValueError(
            f"name: expected a scenario name {scenario_names()} or a file path, got {name!r}"
        )
    path = Path(name)
    if not path.is_file():
        raise ValueError(
            f"name: {str(name)!r} is neither a scenario name {scenario_names()} "
            "nor an existing scenario file"
        )
    return path


def _resolve(path: Path, seen: tuple[Path, ...]) -> dict:
    """The raw mapping of a scenario file, with ``extends`` and ``overrides`` applied."""
    raw = _read_yaml(path, "name")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ValueError(
            f"{unknown[0]}: unknown key in {str(path)!r}; expected keys among {sorted(_TOP_KEYS)}"
        )
    if "extends" not in raw:
        if "overrides" in raw:
            raise ValueError(
                f"overrides: {str(path)!r} has overrides but does not say what it extends"
            )
        return raw
    base_name = raw["extends"]
    if not isinstance(base_name, str) or base_name not in scenario_names():
        raise ValueError(
            f"extends: expected a scenario name among {scenario_names()}, got {base_name!r}"
        )
    base_path = SCENARIOS_DIR / f"{base_name}.yaml"
    if base_path.resolve() in seen or base_path.resolve() == path.resolve():
        raise ValueError(f"extends: {str(path)!r} extends itself through {base_name!r}")
    base = _resolve(base_path, (*seen, path.resolve()))
    base["flops_table"] = str(
        Path(os.path.relpath(base_path.parent, path.parent)) / base["flops_table"]
    )
    for key, value in raw.items():
        if key not in ("extends", "overrides"):
            base[key] = value
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"overrides: expected a mapping of dotted keys in {str(path)!r}")
    return _apply_overrides(base, overrides, "overrides")


def _read_yaml(path: Path, argument: str) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{argument}: {str(path)!r} is not a text (UTF-8) file") from None
    except OSError as err:
        raise ValueError(f"{argument}: cannot read {str(path)!r}: {err}") from None
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{argument}: {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        kind = "an empty file" if raw is None else type(raw).__name__
        raise ValueError(f"{argument}: {str(path)!r} must hold a YAML mapping, got {kind}")
    return raw


def _read_flops(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"flops_table: FLOP table {str(path)!r} does not exist "
            "(make it with `python -m aigc_lib.flops`)"
        )
    table = pd.read_csv(path)
    missing = {"model", "component", "tflop"} - set(table.columns)
    if missing:
        raise ValueError(f"flops_table: {str(path)!r} lacks columns {sorted(missing)}")
    return table


def _profile_overrides(profile: Mapping[str, Any], allow_random_weights: bool) -> Mapping:
    if profile.get("real_weights", True) is not True and not allow_random_weights:
        raise ValueError(
            "profile: fitted on random-weight models (real_weights: false), not measurements "
            "of the real models; pass allow_random_weights=True only to demonstrate the "
            "mechanism"
        )
    overrides = profile.get("overrides")
    if not isinstance(overrides, Mapping) or not overrides:
        raise ValueError("profile: expected a non-empty mapping under 'overrides'")
    return overrides


def _apply_overrides(raw: dict, overrides: Mapping, argument: str) -> dict:
    raw = _deepcopy(raw)
    for key, entry in overrides.items():
        parts = str(key).split(".")
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: i + 1]), argument)
        _child(node, parts[-1], key, argument)  # the key must already exist in the scenario
        _provenance(entry, f"{argument}.{key}")
        if not isinstance(node, dict):
            raise ValueError(f"{argument}: cannot set {key!r}")
        node[parts[-1]] = dict(entry)
    return raw


def _child(node: Any, part: str, key: str, argument: str) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list):  # lists of named entries: groups, models
        for item in node:
            if isinstance(item, dict) and item.get("name") == part:
                return item
    raise ValueError(f"{argument}: key {key!r} does not exist in the scenario")


def _deepcopy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy(v) for v in obj]
    return obj


def _require(raw: Mapping, key: str, kind: type | tuple, where: str = "") -> Any:
    full = f"{where}{key}"
    if key not in raw:
        raise ValueError(f"{full}: missing from the scenario")
    value = raw[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{full}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _provenance(entry: Any, key: str) -> Provenance:
    if not isinstance(entry, Mapping) or "value" not in entry:
        raise ValueError(
            f"{key}: expected a mapping with 'value', 'source' and 'reason', got {entry!r}"
        )
    unknown = sorted(set(entry) - _LEAF_KEYS)
    if unknown:
        raise ValueError(
            f"{key}: unknown field {unknown[0]!r}; expected only value, source and reason"
        )
    source = entry.get("source")
    if source not in SOURCES:
        raise ValueError(f"{key}: source must be one of {SOURCES}, got {source!r}")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"{key}: needs a one-line 'reason' saying where the number comes from")
    return Provenance(source, reason.strip())


def _number(
    raw: Mapping,
    key: str,
    where: str,
    prov: dict,
    low: float | None = None,
    low_open: bool = True,
    high: float | None = None,
    whole: bool = False,
) -> float:
    full = f"{where}{key}"
    entry = raw.get(key)
    if entry is None:
        raise ValueError(f"{full}: missing from the scenario")
    prov[full] = _provenance(entry, full)
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{full}: expected a finite number, got {value!r}")
    if whole and value != int(value):
        raise ValueError(f"{full}: expected a whole number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(
            f"{full}: expected a number {'>' if low_open else '>='} {low}, got {value!r}"
        )
    if high is not None and value > high:
        raise ValueError(f"{full}: expected a number <= {high}, got {value!r}")
    return float(value)


def _numbers(raw: Mapping, key: str, where: str, prov: dict) -> list[float]:
    full = f"{where}{key}"
    entry = raw.get(key)
    if entry is None:
        raise ValueError(f"{full}: missing from the scenario")
    prov[full] = _provenance(entry, full)
    values = entry["value"]
    if not isinstance(values, list) or not values:
        raise ValueError(f"{full}: expected a non-empty list of numbers, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{full}: expected numbers, got {v!r}")
    return [float(v) for v in values]


def _flop(table: pd.DataFrame, model: str, component: str) -> float:
    rows = table[(table["model"] == model) & (table["component"] == component)]
    if len(rows) != 1:
        raise ValueError(
            f"flops_table: expected one {component!r} row for model {model!r}, found {len(rows)}"
        )
    return float(rows["tflop"].iloc[0])


def _named_entries(raw: Mapping, key: str, allowed: set[str]) -> list[Mapping]:
    entries = _require(raw, key, list)
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{key}[{i}]: expected a mapping with a 'name'")
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise ValueError(
                f"{key}.{entry['name']}.{unknown[0]}: unknown key; expected keys among "
                f"{sorted(allowed)}"
            )
    return entries


def _groups(raw: dict, prov: dict) -> list[GroupPrior]:
    """The group priors of a raw scenario, validated (provenance recorded in ``prov``)."""
    groups = []
    for g in _named_entries(raw, "groups", _GROUP_KEYS):
        where = f"groups.{g['name']}."
        groups.append(
            GroupPrior(
                name=g["name"],
                mu=_number(g, "mu", where, prov),
                sigma=_number(g, "sigma", where, prov, low=0),
                share=_number(g, "share", where, prov, low=0, low_open=False, high=1),
            )
        )
    return groups


def _build(raw: dict, flops: pd.DataFrame) -> Scenario:
    prov: dict[str, Provenance] = {}
    step_options = _numbers(raw, "step_options", "", prov)
    models = []
    for m in _named_entries(raw, "models", _MODEL_KEYS):
        where = f"models.{m['name']}."
        steps = step_options
        if "fixed_steps" in m:
            steps = [_number(m, "fixed_steps", where, prov, low=1, low_open=False, whole=True)]
        if any(s != int(s) or s < 1 for s in steps):
            raise ValueError(f"{where}steps: expected positive whole numbers, got {steps}")
        models.append(
            ModelSpec(
                name=m["name"],
                steps=tuple(sorted({int(s) for s in steps})),
                step_seconds=_number(m, "step_seconds", where, prov, low=0),
                fixed_seconds=_number(m, "fixed_seconds", where, prov, low=0, low_open=False),
                tflop_per_step=_flop(flops, m["name"], "unet_step"),
                tflop_fixed=_flop(flops, m["name"], "vae_decode")
                + _flop(flops, m["name"], "text_encode"),
                score_slope=_number(m, "score_slope", where, prov, low=0, low_open=False),
                score_offset=_number(m, "score_offset", where, prov),
                score_beta=_number(m, "score_beta", where, prov, low=0),
                zref=_number(m, "zref", where, prov, low=0),
            )
        )
    groups = _groups(raw, prov)
    premises = raw.get("premises", [])
    if not isinstance(premises, list) or any(p not in PREMISES for p in premises):
        raise ValueError(f"premises: expected a list of names among {PREMISES}, got {premises!r}")
    name = raw.get("name", "custom")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    scenario = Scenario(
        models=tuple(models),
        groups=tuple(groups),
        thresholds=tuple(_numbers(raw, "thresholds", "", prov)),
        weight=_number(raw, "weight", "", prov, low=0, low_open=False),
        capacity_tflops=_number(raw, "capacity_tflops", "", prov, low=0),
        min_share=_number(raw, "min_share", "", prov, low=0, high=0.5),
        noise_sd=_number(raw, "noise_sd", "", prov, low=0, low_open=False),
        tasks_per_slot=int(
            _number(raw, "tasks_per_slot", "", prov, low=1, low_open=False, whole=True)
        ),
        residual_sd=_optional(raw, "residual_sd", 0.0, prov, low=0, low_open=False),
        residual_corr=_optional(raw, "residual_corr", 1.0, prov, low=0, low_open=False, high=1),
        name=name,
        premises=tuple(premises),
        provenance=MappingProxyType(prov),
    )
    return scenario


def _optional(raw: Mapping, key: str, default: float, prov: dict, **bounds: Any) -> float:
    """A top-level number that older scenario files and profiles may lack (then ``default``)."""
    return _number(raw, key, "", prov, **bounds) if key in raw else default


def _validate(s: Scenario) -> None:
    """Cross-field checks of every :class:`Scenario` (run on construction, so also by ``replace``)."""
    if not 2 <= len(s.models) <= 8:
        raise ValueError(f"models: expected 2 to 8 models, got {len(s.models)}")
    names = s.model_names
    if len(set(names)) != len(names):
        raise ValueError(f"models: names must be unique, got {names}")
    if not s.groups:
        raise ValueError("groups: expected at least one group")
    for g in s.groups:
        if not (math.isfinite(g.mu) and math.isfinite(g.sigma) and g.sigma > 0):
            raise ValueError(
                f"groups.{g.name}: expected a finite mu and a sigma > 0, got {g.mu}, {g.sigma}"
            )
    if len(set(s.group_names)) != len(s.group_names):
        raise ValueError(f"groups: names must be unique, got {s.group_names}")
    if len(s.thresholds) != len(s.models) - 1:
        raise ValueError(
            f"thresholds: expected {len(s.models) - 1} (one fewer than models), "
            f"got {len(s.thresholds)}"
        )
    if any(b <= a for a, b in zip(s.thresholds, s.thresholds[1:])):
        raise ValueError(f"thresholds: must be strictly increasing, got {list(s.thresholds)}")
    if abs(sum(g.share for g in s.groups) - 1) > 1e-6:
        raise ValueError(f"groups: shares must sum to 1, got {sum(g.share for g in s.groups):.6f}")
    if s.min_share * len(s.models) > 1:
        raise ValueError(
            f"min_share: {s.min_share} x {len(s.models)} models exceeds the whole capacity"
        )
    if not (isinstance(s.residual_sd, (int, float)) and math.isfinite(s.residual_sd)) or (
        s.residual_sd < 0
    ):
        raise ValueError(
            f"residual_sd: expected a finite number >= 0 points, got {s.residual_sd!r}"
        )
    if not (isinstance(s.residual_corr, (int, float)) and 0 <= s.residual_corr <= 1):
        raise ValueError(
            f"residual_corr: expected a correlation in [0, 1], got {s.residual_corr!r}"
        )
    if (
        isinstance(s.tasks_per_slot, bool)
        or not isinstance(s.tasks_per_slot, (int, np.integer))
        or s.tasks_per_slot < 1
    ):
        raise ValueError(f"tasks_per_slot: expected a whole number >= 1, got {s.tasks_per_slot!r}")
    for m in s.models:
        if m.tflop_per_step <= 0 or m.tflop_fixed < 0:
            raise ValueError(f"models.{m.name}: TFLOP per step must be > 0 and fixed TFLOP >= 0")
        if not (m.step_seconds > 0 and m.fixed_seconds >= 0):
            raise ValueError(f"models.{m.name}: step_seconds must be > 0 and fixed_seconds >= 0")


# --- the ground truth and the paper's premises ---------------------------------------------------


def score_curve(steps: Any, zref: Any, saturation_steps: float | None = None) -> np.ndarray:
    """The step term of the ground truth, ln(z / zref), or ln(min(z, z_sat) / min(zref, z_sat)).

    ``saturation_steps`` None: the log curve, which never saturates (docs/SPEC.md section 2b, the
    default reading). A number z_sat: the saturating reading, in which the score stops growing at
    z_sat steps and there equals the score at the reference steps.
    Taught in ``notebooks/06_what_the_papers_numbers_need.ipynb``.
    """
    z = np.asarray(steps, dtype=float)
    ref = np.asarray(zref, dtype=float)
    if saturation_steps is None:
        return np.log(z / ref)
    cap = validate.number(saturation_steps, "saturation_steps", low=0.0, low_open=True)
    return np.log(np.minimum(z, cap) / np.minimum(ref, cap))


def true_score(
    scenario: Scenario,
    prompt_score: Any,
    model: Any,
    steps: Any,
    saturation_steps: float | None = None,
    residual: Any = None,
) -> np.ndarray:
    """Expected CLIPScore of a prompt on a model after some steps: the simulator's ground truth.

    The joint per-prompt model (docs/SPEC.md section 3), in CLIPScore points:
    s_nm(z) = Sbar + d_m + beta_m (x_n - Sbar) + a_m ln(z / zref_m) + r_nm, with x_n = mu_k + e_n
    the prompt's own CLIPScore on the medium model at its reference steps (the axis of the priors
    and thresholds). Two named parts decide which prompts gain from a larger model:

    * beta_m, the *category-level slope* (``score_beta``): how model m's score moves with the
      prompt's own score. beta_large - beta_small > 0: easy prompts gain most from the larger
      model (the paper's premise, the default); < 0: hard prompts gain most (DiffServe's);
    * r_nm, the *prompt-and-model-specific residual* (``residual``, default none): what a prompt
      scores on model m beyond its category-level line, r_n ~ N(0, Sigma) with spread
      ``scenario.residual_sd`` and correlation ``scenario.residual_corr`` between models
      (:func:`residual_covariance`; drawn by :func:`residuals`). It is what a per-query
      discriminator can exploit; with the default spread 0 it is zero and today's numbers hold.

    ``prompt_score`` x_n, ``model`` (indices, 0 = smallest), ``steps`` z and ``residual`` r_nm
    (points, already taken at each entry's model) broadcast against each other; the result has
    their broadcast shape. Image noise is not included (the simulator adds N(0, noise_sd^2) per
    image). ``saturation_steps``: the saturating reading of :func:`score_curve`.
    Taught in ``notebooks/04_step_selection_and_resource_allocation.ipynb`` and
    ``notebooks/08_which_prompts_gain.ipynb`` (the residual).
    """
    validate.instance(scenario, Scenario, "scenario")
    x = np.asarray(prompt_score, dtype=float)
    m = np.asarray(model)
    if m.dtype.kind not in "iu" or np.any(m < 0) or np.any(m >= len(scenario.models)):
        raise ValueError(f"model: expected model indices in [0, {len(scenario.models) - 1}]")
    z = np.asarray(steps, dtype=float)
    if not np.all(np.isfinite(z)) or np.any(z < 1):
        raise ValueError("steps: expected step counts >= 1")
    d = np.array([s.score_offset for s in scenario.models])[m]
    beta = np.array([s.score_beta for s in scenario.models])[m]
    slope = np.array([s.score_slope for s in scenario.models])[m]
    zref = np.array([s.zref for s in scenario.models])[m]
    s_bar = scenario.mean_score
    score = s_bar + d + beta * (x - s_bar) + slope * score_curve(z, zref, saturation_steps)
    if residual is None:
        return score
    r = np.asarray(residual, dtype=float)
    if not np.all(np.isfinite(r)):
        raise ValueError("residual: expected finite residuals in CLIPScore points")
    return score + r


def residual_covariance(scenario: Scenario) -> np.ndarray:
    """Covariance of the residuals r_n of one prompt across the models, shape (M, M), points^2.

    The medium model's residual is 0 by definition (x_n is its own score); every other model has
    variance tau^2 (``residual_sd`` squared) and two of them covary by rho_r tau^2
    (``residual_corr``): rho_r = 1, a prompt that is unusually good on one model is as good on
    the others (then the heavy-minus-light difference has no residual at all); rho_r = 0, the
    models' residuals are independent (a poor light image says the heavy one gains more).
    Taught in ``notebooks/08_which_prompts_gain.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    n = len(scenario.models)
    tau, rho = scenario.residual_sd, scenario.residual_corr
    cov = tau**2 * (rho * np.ones((n, n)) + (1 - rho) * np.eye(n))
    ref = scenario.reference_model
    cov[ref, :] = 0.0
    cov[:, ref] = 0.0
    return cov


def residuals(scenario: Scenario, n_prompts: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the residuals r_nm of ``n_prompts`` prompts on every model, shape (n_prompts, M), points.

    r_nm = tau (sqrt(rho_r) u_n + sqrt(1 - rho_r) v_nm) with u_n, v_nm standard normal (the
    covariance of :func:`residual_covariance`), 0 for the medium model. With ``residual_sd`` 0
    the result is all zeros and ``rng`` is not used. Pass it to :func:`true_score` as
    ``residual=r[n, model]``. Taught in ``notebooks/08_which_prompts_gain.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    n = validate.whole(n_prompts, "n_prompts", low=0)
    validate.instance(rng, np.random.Generator, "rng")
    n_models = len(scenario.models)
    out = np.zeros((n, n_models))
    if scenario.residual_sd == 0 or n == 0:
        return out
    rho = scenario.residual_corr
    common = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, n_models))
    out = scenario.residual_sd * (math.sqrt(rho) * common + math.sqrt(1 - rho) * own)
    out[:, scenario.reference_model] = 0.0
    return out


def level_mean_scores(scenario: Scenario) -> np.ndarray:
    """Mean medium-model score of the prompts in each interval the thresholds cut, shape (M,).

    Exact for the scenario's prompt mix, a mixture of the group priors weighted by their shares:
    the mean of a truncated normal per group (NaN for an interval without probability mass).
    """
    theta = np.concatenate([[-np.inf], scenario.thresholds, [np.inf]])
    mu, sd, w = scenario.mu, scenario.sigma, scenario.shares
    means = []
    for lo, hi in zip(theta[:-1], theta[1:]):
        a, b = (lo - mu) / sd, (hi - mu) / sd
        mass = ndtr(b) - ndtr(a)
        first = mu * mass - sd * (_pdf(b) - _pdf(a))  # integral of x over the interval, per group
        total = float(w @ mass)
        means.append(float(w @ first) / total if total > 0 else math.nan)
    return np.array(means)


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.where(
        np.isfinite(x), np.exp(-0.5 * np.square(np.where(np.isfinite(x), x, 0.0))), 0.0
    ) / math.sqrt(2 * math.pi)


def _step_grid(scenario: Scenario) -> list[int]:
    """The step counts at which premises are checked: every count of a model with a choice."""
    grid = sorted({z for m in scenario.models if len(m.steps) > 1 for z in m.steps})
    return grid or [scenario.models[0].steps[0]]


def _steps_at(scenario: Scenario, z: int) -> np.ndarray:
    """Each model's steps when the multi-step models run z: a fixed-step model keeps its count."""
    return np.array([z if len(m.steps) > 1 else m.steps[0] for m in scenario.models], dtype=float)


def premises(scenario: Scenario, saturation_steps: float | None = None) -> pd.DataFrame:
    """Does the scenario keep the paper's premises? One row per check (docs/SPEC.md section 3).

    At every step count z of the step set (a fixed-step model runs its own count):

    * P1 ``score``: for a group-mean prompt of each group, each model scores above the next smaller
      one (``value`` = larger minus smaller, CLIPScore points; holds when > 0);
    * P1 ``time``: each model's image takes longer than the next smaller one's (seconds, > 0);
    * P2 ``low loses little``: prompts of the lowest interval (their medium-model score below
      theta_1) lose at most :data:`P2_MAX_LOSS` points on the smallest model against the medium one;
    * P2 ``high gains``: prompts of the highest interval gain at least :data:`P2_MIN_GAIN` points on
      the largest model against the medium one.

    Columns: ``premise``, ``check``, ``steps``, ``subject`` (group or model pair), ``value``,
    ``bound``, ``side`` (``"at most"`` where the bound is an upper bound, P2's loss; else
    ``"at least"``), ``slack`` (how far the value is inside its bound: bound - value for an upper
    bound, value - bound otherwise; negative where the check fails) and ``holds``.
    :func:`premise_margins` keeps the binding row of each check.
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    low, high = level_mean_scores(scenario)[[0, -1]]
    rows = []
    for z in _step_grid(scenario):
        steps = _steps_at(scenario, z)
        rows += _p1_rows(scenario, z, steps, saturation_steps)
        rows += _p2_rows(scenario, z, steps, (low, high), saturation_steps)
    frame = pd.DataFrame(
        rows, columns=["premise", "check", "steps", "subject", "value", "bound", "holds"]
    )
    upper = frame["check"].isin(UPPER_BOUND_CHECKS)
    frame.insert(6, "side", np.where(upper, "at most", "at least"))
    frame.insert(
        7,
        "slack",
        np.where(upper, frame["bound"] - frame["value"], frame["value"] - frame["bound"]),
    )
    frame["holds"] = frame["holds"].astype(bool)
    return frame


def _p1_rows(
    scenario: Scenario, z: int, steps: np.ndarray, saturation_steps: float | None
) -> list[tuple]:
    """P1 of :func:`premises` at step count ``z``: score rows per group, then time rows."""
    names = scenario.model_names
    n = len(names)
    models = np.arange(n)
    rows = []
    for k, group in enumerate(scenario.group_names):
        score = true_score(scenario, scenario.mu[k], models, steps, saturation_steps)
        for m in range(n - 1):
            gap = score[m + 1] - score[m]
            subject = f"{group}: {names[m]} < {names[m + 1]}"
            rows.append(("P1", "score", z, subject, gap, 0.0, score[m + 1] > score[m]))
    seconds = np.array([m.image_seconds(s) for m, s in zip(scenario.models, steps)])
    for m in range(n - 1):
        gap = seconds[m + 1] - seconds[m]
        subject = f"{names[m]} < {names[m + 1]}"
        rows.append(("P1", "time", z, subject, gap, 0.0, seconds[m + 1] > seconds[m]))
    return rows


def _p2_rows(
    scenario: Scenario,
    z: int,
    steps: np.ndarray,
    level_means: tuple[float, float],
    saturation_steps: float | None,
) -> list[tuple]:
    """P2 of :func:`premises` at step count ``z``: the low interval's loss, the high one's gain."""
    names = scenario.model_names
    ref = scenario.reference_model
    models = np.arange(len(names))
    lo = true_score(scenario, level_means[0], models, steps, saturation_steps)
    hi = true_score(scenario, level_means[1], models, steps, saturation_steps)
    loss = lo[ref] - lo[0]
    gain = hi[-1] - hi[ref]
    return [
        (
            "P2",
            "low loses little",
            z,
            f"{names[0]} vs {names[ref]}",
            loss,
            P2_MAX_LOSS,
            bool(loss <= P2_MAX_LOSS),
        ),
        (
            "P2",
            "high gains",
            z,
            f"{names[-1]} vs {names[ref]}",
            gain,
            P2_MIN_GAIN,
            bool(gain >= P2_MIN_GAIN),
        ),
    ]


UPPER_BOUND_CHECKS = ("low loses little",)
"""Checks of :func:`premises` whose bound is an upper bound (the value must stay at most it)."""


def premise_margins(scenario: Scenario, saturation_steps: float | None = None) -> pd.DataFrame:
    """The binding value of each premise check: where it comes closest to its bound.

    One row per (``premise``, ``check``) of :func:`premises`: the row with the least ``slack``,
    so ``binding`` is the *largest* value where the bound is an upper bound (P2's "low loses
    little": a loss of at most :data:`P2_MAX_LOSS`) and the smallest value elsewhere. Columns:
    ``binding`` (CLIPScore points or seconds), ``side``, ``bound``, ``slack`` (>= 0 when the
    check holds everywhere), ``steps`` and ``subject`` where it binds, ``holds`` (at every row).
    A check that cannot be evaluated (P2 when the thresholds leave an interval without prompts of
    the mix, as a measured profile can: value NaN) binds with a NaN slack and does not hold.
    Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    table = premises(scenario, saturation_steps)
    keys = ["premise", "check"]
    order = table.assign(order=table["slack"].fillna(-np.inf))  # NaN: not evaluable, binds
    binding = table.loc[order.groupby(keys, sort=False)["order"].idxmin()].set_index(keys)
    out = binding[["value", "side", "bound", "slack", "steps", "subject"]].rename(
        columns={"value": "binding"}
    )
    out["holds"] = table.groupby(keys, sort=False)["holds"].all()
    return out


def check_premises(scenario: Scenario) -> None:
    """Raise ``ValueError`` if the scenario breaks a premise it declares (``scenario.premises``).

    The message names the first failing check. Called by :func:`load_scenario`.
    """
    if not scenario.premises:
        return
    table = premises(scenario)
    failed = table[table["premise"].isin(scenario.premises) & ~table["holds"]]
    if len(failed):
        row = failed.iloc[0]
        raise ValueError(
            f"premises: scenario {scenario.name!r} declares {row['premise']} but breaks it: "
            f"{row['check']} fails for {row['subject']} at {row['steps']} steps (value "
            f"{row['value']:.3f}, bound {row['bound']:g}; {len(failed)} failing checks in all). "
            "Change the numbers or drop the premise from the file's 'premises' list"
        )


def break_even_scores(scenario: Scenario, saturation_steps: float | None = None) -> pd.DataFrame:
    """Where neighbouring models score the same for a prompt, on the medium model's score axis.

    For models m < m+1 at each step count z of the step set, the ground truth is linear in the
    prompt's medium-model score x, so the two models tie at one x (CLIPScore points): above it the
    model with the larger gain beta scores higher. Compare it with the threshold theta_m that the
    assignment puts between them (eq. 9-10): a break-even far from theta_m means the thresholds do
    not split prompts where the scores cross (latency aside). Columns: ``smaller``, ``larger``,
    ``steps``, ``break_even`` (NaN when the gains are equal: then one model is better everywhere),
    ``threshold``, ``larger_better_above``. Taught in ``notebooks/03_probabilistic_assignment.ipynb``.
    """
    validate.instance(scenario, Scenario, "scenario")
    names = scenario.model_names
    beta = np.array([m.score_beta for m in scenario.models])
    s_bar = scenario.mean_score
    rows = []
    for z in _step_grid(scenario):
        steps = _steps_at(scenario, z)
        at_mean = true_score(scenario, s_bar, np.arange(len(names)), steps, saturation_steps)
        for m in range(len(names) - 1):
            slope = beta[m + 1] - beta[m]
            gap = at_mean[m + 1] - at_mean[m]  # larger minus smaller for a prompt at Sbar
            x = s_bar - gap / slope if slope != 0 else math.nan
            rows.append(
                {
                    "smaller": names[m],
                    "larger": names[m + 1],
                    "steps": z,
                    "break_even": x,
                    "threshold": scenario.thresholds[m],
                    "larger_better_above": bool(slope > 0),
                }
            )
    return pd.DataFrame(rows)
