"""Fits of step-sweep rows and the profile they write (aigc_lib.fit)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import fit
from aigc_lib.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent

GROUPS = {
    "Basic": (31.5, 3.0),
    "Imagination": (33.5, 3.2),
    "Detail": (32.5, 2.8),
    "Complex": (30.0, 2.6),
}
Z = [10, 18, 26, 34, 42, 50]
MODELS = {
    "sdxl-turbo": dict(
        steps=[1], slope=0.0, offset=-0.5, beta=0.7, zref=1, per_step_s=0.05, overhead_s=0.10
    ),
    "sd15": dict(
        steps=Z, slope=1.0, offset=0.0, beta=1.0, zref=50, per_step_s=0.04, overhead_s=0.30
    ),
    "sdxl": dict(
        steps=Z[:-1], slope=1.5, offset=1.5, beta=1.3, zref=50, per_step_s=0.30, overhead_s=1.00
    ),
}
ZREF = {name: m["zref"] for name, m in MODELS.items()}
FLOPS = pd.DataFrame(
    {
        "model": ["sdxl-turbo", "sd15", "sdxl"] * 3,
        "resolution": [512, 512, 1024] * 3,
        "component": ["unet_step"] * 3 + ["vae_decode"] * 3 + ["text_encode"] * 3,
        "tflop": [1.589, 1.607, 13.522, 2.51, 2.51, 10.47, 0.11, 0.027, 0.11],
    }
)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return fit.synthetic_sweep(
        np.random.default_rng(7),
        GROUPS,
        MODELS,
        prompts_per_group=200,
        seeds=2,
        noise=1.0,
        time_noise=0.01,
    )


@pytest.fixture(scope="module")
def fits(rows) -> dict:
    return fit.fit_sweep(rows, ZREF, flops=FLOPS)


def test_group_priors_are_recovered(fits):
    groups = fits["groups"].set_index("group")
    for name, (mu, sigma) in GROUPS.items():
        # 200 prompts: standard error of mu ~0.22, of sigma ~0.16 points
        assert groups.loc[name, "mu"] == pytest.approx(mu, abs=0.75)
        assert groups.loc[name, "sigma"] == pytest.approx(sigma, abs=0.5)
        assert groups.loc[name, "steps"] == 50 and groups.loc[name, "n_prompts"] == 200
        assert (
            groups.loc[name, "sd_images"] > groups.loc[name, "sigma"]
        )  # images also carry the seed noise


def test_score_curves_offsets_and_gains_are_recovered(fits):
    scores = fits["scores"].set_index("model")
    for name in ("sd15", "sdxl"):
        assert scores.loc[name, "slope"] == pytest.approx(MODELS[name]["slope"], abs=0.1)
        assert scores.loc[name, "r2"] > 0.95
    assert math.isnan(scores.loc["sdxl-turbo", "slope"])  # one step count: no slope
    for name in MODELS:
        assert scores.loc[name, "offset"] == pytest.approx(MODELS[name]["offset"], abs=0.3)
        assert scores.loc[name, "beta"] == pytest.approx(MODELS[name]["beta"], abs=0.1)
    assert scores.loc["sd15", "offset"] == 0.0 and scores.loc["sd15", "beta"] == 1.0


def test_times_noise_and_capacity_are_recovered(fits):
    times = fits["times"].set_index("model")
    for name in ("sd15", "sdxl"):
        assert times.loc[name, "per_step_s"] == pytest.approx(MODELS[name]["per_step_s"], rel=0.01)
        assert times.loc[name, "overhead_s"] == pytest.approx(MODELS[name]["overhead_s"], abs=0.01)
        assert times.loc[name, "r2"] > 0.99
    assert math.isnan(times.loc["sdxl-turbo", "per_step_s"])
    assert times.loc["sdxl-turbo", "mean_s"] == pytest.approx(0.15, abs=0.005)
    assert fits["noise_sd"] == pytest.approx(1.0, abs=0.05)
    expected = np.median([1.607 / 0.04, 13.522 / 0.30])
    assert fits["capacity_tflops"] == pytest.approx(expected, rel=0.01)


def test_failed_rows_are_ignored(rows, fits):
    broken = rows.sample(300, random_state=1).assign(
        status="failed", clip_score=-100.0, seconds=1e6
    )
    again = fit.fit_sweep(pd.concat([rows, broken], ignore_index=True), ZREF, flops=FLOPS)
    for key in ("groups", "scores", "times"):
        pd.testing.assert_frame_equal(again[key], fits[key])


def test_same_seed_same_rows():
    a = fit.synthetic_sweep(np.random.default_rng(3), GROUPS, MODELS, prompts_per_group=3, seeds=1)
    b = fit.synthetic_sweep(np.random.default_rng(3), GROUPS, MODELS, prompts_per_group=3, seeds=1)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(fit.ROW_COLUMNS)


def test_groups_fall_back_to_the_largest_swept_steps(rows):
    without_50 = rows[rows["steps"] != 50]
    groups = fit.fit_groups(without_50, "sd15", zref=50)
    assert set(groups["steps"]) == {42}
    assert set(fit.fit_groups(rows, "sd15", zref=26)["steps"]) == {26}


def test_single_seed_keeps_the_noise_in_sigma(rows):
    one_seed = rows[rows["seed"] == 0]
    assert math.isnan(fit.noise_sd(one_seed))
    groups = fit.fit_groups(one_seed, "sd15", zref=50).set_index("group")
    for name, (_, sigma) in GROUPS.items():  # sqrt(sigma^2 + 1) with noise 1
        assert groups.loc[name, "sigma"] == pytest.approx(math.hypot(sigma, 1.0), abs=0.6)


@settings(deadline=None, max_examples=30)
@given(
    slope=st.floats(-5, 5),
    intercept=st.floats(-50, 50),
    x=st.lists(st.floats(0, 5), min_size=3, max_size=20, unique=True),
)
def test_fit_line_recovers_an_exact_line(slope, intercept, x):
    x = np.array(x)
    if np.ptp(x) < 1e-3:
        return
    line = fit.fit_line(x, slope * x + intercept)
    assert line["slope"] == pytest.approx(slope, abs=1e-6)
    assert line["intercept"] == pytest.approx(intercept, abs=1e-5)
    assert line["r2"] == pytest.approx(1.0, abs=1e-6) or slope == pytest.approx(0.0, abs=1e-9)


@settings(deadline=None, max_examples=20)
@given(values=st.lists(st.floats(-100, 100), min_size=2, max_size=50))
def test_qq_points_are_sorted_and_symmetric(values):
    qq = fit.qq_points(values)
    assert list(qq.columns) == ["theoretical", "sample", "fitted"]
    assert len(qq) == len(values)
    assert (np.diff(qq["sample"]) >= 0).all() and (np.diff(qq["theoretical"]) > 0).all()
    assert qq["theoretical"].sum() == pytest.approx(0.0, abs=1e-9)


def test_qq_points_of_a_gaussian_lie_on_the_line():
    qq = fit.qq_points(np.random.default_rng(0).normal(32.0, 3.0, 500))
    assert np.corrcoef(qq["theoretical"], qq["sample"])[0, 1] > 0.99
    assert np.abs(qq["sample"] - qq["fitted"]).median() < 0.3


def test_normality_test_tells_gaussian_from_skewed():
    rng = np.random.default_rng(0)
    assert fit.normality_test(rng.normal(30, 3, 400))["p_value"] > 0.01
    skewed = fit.normality_test(rng.exponential(3, 400))
    assert skewed["test"] == "shapiro" and skewed["p_value"] < 1e-6
    assert fit.normality_test(rng.normal(size=6000))["test"] == "normaltest"
    assert math.isnan(fit.normality_test([1.0, 2.0])["p_value"])


def _tiny_scenario(tmp_path: Path) -> Path:
    """A small scenario file in the format of aigc_lib.scenario, with its FLOP table."""

    def leaf(value):
        return {"value": value, "source": "assumption", "reason": "test"}

    FLOPS.to_csv(tmp_path / "flops.csv", index=False)
    models = []
    for name, m in MODELS.items():
        entry = {
            "name": name,
            "score_slope": leaf(0.5),
            "score_offset": leaf(0.0),
            "score_beta": leaf(1.0),
            "zref": leaf(m["zref"]),
            "step_seconds": leaf(9.0),
            "fixed_seconds": leaf(9.0),
        }
        if name == "sdxl-turbo":
            entry["fixed_steps"] = leaf(1)
        models.append(entry)
    raw = {
        "flops_table": "flops.csv",
        "weight": leaf(0.2),
        "thresholds": leaf([29.5, 33.8]),
        "step_options": leaf([10, 14, 18, 22, 26, 30, 34, 38, 42]),
        "capacity_tflops": leaf(34.0),
        "min_share": leaf(0.01),
        "noise_sd": leaf(1.5),
        "tasks_per_slot": leaf(10),
        "models": models,
        "groups": [
            {"name": g, "mu": leaf(30.0), "sigma": leaf(2.0), "share": leaf(0.25)} for g in GROUPS
        ],
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_profile_round_trips_through_the_scenario_loader(tmp_path, fits):
    profile = fit.write_profile(
        tmp_path / "profiles" / "measured.yaml", **fits, source_note="sweep_test.csv"
    )
    scenario = load_scenario(_tiny_scenario(tmp_path), profile=profile)
    by_group = {g.name: g for g in scenario.groups}
    fitted = fits["groups"].set_index("group")
    for name in GROUPS:
        assert by_group[name].mu == pytest.approx(fitted.loc[name, "mu"], abs=1e-6)
        assert by_group[name].sigma == pytest.approx(fitted.loc[name, "sigma"], abs=1e-6)
        assert scenario.provenance[f"groups.{name}.mu"].source == "measured"
        assert "sweep_test.csv" in scenario.provenance[f"groups.{name}.mu"].reason
    models = {m.name: m for m in scenario.models}
    assert models["sdxl"].score_slope == pytest.approx(1.5, abs=0.1)
    assert models["sdxl"].score_beta == pytest.approx(1.3, abs=0.1)
    assert models["sdxl-turbo"].score_offset == pytest.approx(-0.5, abs=0.3)
    assert models["sdxl-turbo"].score_slope == 0.5  # not estimable from one step count: kept
    assert models["sd15"].score_offset == 0.0 and models["sd15"].score_beta == 1.0
    assert scenario.capacity_tflops == pytest.approx(fits["capacity_tflops"], rel=1e-5)
    for name in (
        "sd15",
        "sdxl",
    ):  # swept at several step counts: per-step and fixed seconds separate
        assert models[name].step_seconds == pytest.approx(MODELS[name]["per_step_s"], rel=0.02)
        assert models[name].fixed_seconds == pytest.approx(MODELS[name]["overhead_s"], abs=0.02)
    assert models["sdxl-turbo"].step_seconds == 9.0  # one step count: not separable, kept
    assert scenario.noise_sd == pytest.approx(1.0, abs=0.05)
    overrides = yaml.safe_load(profile.read_text())["overrides"]
    assert all(v["source"] == "measured" and "\n" not in v["reason"] for v in overrides.values())
    assert "models.sd15.score_offset" not in overrides  # 0 by definition, never written


def test_profile_loads_over_the_default_scenario(tmp_path, fits):
    profile = fit.write_profile(tmp_path / "measured.yaml", **fits, source_note="sweep_test.csv")
    scenario = load_scenario(profile=profile)
    assert {g.name: g.mu for g in scenario.groups}["Basic"] == pytest.approx(
        float(fits["groups"].set_index("group").loc["Basic", "mu"]), abs=1e-6
    )


def test_negative_slope_is_clipped_in_the_profile(fits):
    scores = fits["scores"].copy()
    scores.loc[scores["model"] == "sdxl", "slope"] = -0.2
    overrides = fit.profile_overrides(scores=scores, source_note="s.csv")
    assert overrides["models.sdxl.score_slope"]["value"] == 0.0
    assert "clipped" in overrides["models.sdxl.score_slope"]["reason"]


def test_bad_input_raises(rows, tmp_path):
    with pytest.raises(ValueError, match="rows"):
        fit.ok_rows(rows.drop(columns=["seconds"]))
    with pytest.raises(ValueError, match="rows"):
        fit.ok_rows(rows.assign(status="maybe"))
    with pytest.raises(ValueError, match="rows"):
        fit.ok_rows(rows.assign(steps=0))
    with pytest.raises(ValueError, match="zref"):
        fit.fit_score_curves(rows, {"sd15": 50})
    with pytest.raises(ValueError, match="medium"):
        fit.fit_score_curves(rows[rows["model"] != "sd15"], ZREF)
    with pytest.raises(ValueError, match="model"):
        fit.fit_groups(rows, "sd3")
    with pytest.raises(ValueError, match="source_note"):
        fit.write_profile(tmp_path / "p.yaml", noise_sd=1.0, source_note="two\nlines")
    with pytest.raises(ValueError, match="groups"):
        fit.write_profile(tmp_path / "p.yaml", source_note="empty")
    with pytest.raises(ValueError, match="scores"):
        fit.qq_points([])
    with pytest.raises(ValueError, match="rng"):
        fit.synthetic_sweep(7, GROUPS, MODELS)


def test_the_simulation_side_does_not_import_torch():
    code = "import sys, aigc_lib.fit, aigc_lib.scenario; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_profile_of_random_weights_is_refused_unless_allowed(tmp_path):
    rows = fit.synthetic_sweep(np.random.default_rng(3), GROUPS, MODELS, prompts_per_group=10)
    rows["real_weights"] = False
    fits = fit.fit_sweep(rows, ZREF, flops=FLOPS)
    assert fits["real_weights"] is False
    profile = fit.write_profile(tmp_path / "tiny.yaml", **fits, source_note="tiny sweep")
    with pytest.raises(ValueError, match="profile: fitted on random-weight models"):
        load_scenario(profile=profile)
    assert (
        load_scenario(profile=profile, allow_random_weights=True)
        .provenance["groups.Basic.mu"]
        .source
        == "measured"
    )


LATENCY = pd.DataFrame(
    {
        "gpu": "Test GPU",
        "tiny": False,
        "model": ["sd15"] * 3 + ["sdxl"] * 3 + ["sdxl-turbo"] * 2,
        "component": ["unet_step", "text_encode", "vae_decode"] * 2 + ["unet_step", "image_e2e"],
        "steps": [None] * 7 + [1],
        "seconds": [0.04, 0.01, 0.03, 0.25, 0.02, 0.15, 0.03, 0.2],
        "tflop": [1.607, 0.027, 2.51, 13.522, 0.11, 10.47, 1.589, 4.2],
    }
)


def test_latency_table_becomes_a_profile(tmp_path):
    path = fit.write_latency_profile(
        tmp_path / "latency.yaml", LATENCY, source_note="latency_test.csv"
    )
    scenario = load_scenario(profile=path)
    sd15, sdxl = scenario.models[1], scenario.models[2]
    assert sd15.step_seconds == 0.04 and sd15.fixed_seconds == pytest.approx(0.04)
    assert sdxl.image_seconds(10) == pytest.approx(2.5 + 0.17)
    assert scenario.capacity_tflops == pytest.approx(1.607 / 0.04, rel=1e-4)
    assert "Test GPU" in scenario.provenance["models.sdxl.step_seconds"].reason
    default = load_scenario()
    assert (
        scenario.models[0].step_seconds == default.models[0].step_seconds
    )  # no text/VAE rows: kept


def test_latency_profile_refuses_tiny_networks(tmp_path):
    tiny = LATENCY.assign(tiny=True)
    with pytest.raises(ValueError, match="latency: rows of tiny look-alike networks"):
        fit.latency_overrides(tiny, source_note="dry run")
    path = fit.write_latency_profile(
        tmp_path / "tiny.yaml", tiny, source_note="dry run", include_tiny=True
    )
    with pytest.raises(ValueError, match="profile: fitted on random-weight models"):
        load_scenario(profile=path)
    with pytest.raises(ValueError, match="latency: no model has"):
        fit.latency_overrides(LATENCY[LATENCY.component != "vae_decode"], source_note="x")


def _timed(z, seconds):
    n = len(z)
    return pd.DataFrame(
        {
            "prompt_id": range(n),
            "group": ["Basic"] * n,
            "model": ["sd15"] * n,
            "steps": z,
            "seed": [0] * n,
            "seconds": seconds,
            "clip_score": [30.0] * n,
            "status": ["ok"] * n,
        }
    )


def test_fit_times_recovers_a_line_and_never_fits_a_negative_overhead():
    z = np.array([1, 2, 4, 8, 1, 2, 4, 8])
    exact = fit.fit_times(_timed(z, 0.3 + 0.05 * z)).iloc[0]
    assert exact["per_step_s"] == pytest.approx(0.05) and exact["overhead_s"] == pytest.approx(0.3)
    # timing noise that tilts the free line below zero: the line through the origin instead
    noisy = np.array([0.01, 0.09, 0.21, 0.40, 0.02, 0.08, 0.19, 0.42])
    assert fit.fit_line(z, noisy)["intercept"] < 0
    row = fit.fit_times(_timed(z, noisy)).iloc[0]
    assert row["overhead_s"] == 0.0
    assert row["per_step_s"] == pytest.approx((z * noisy).sum() / (z * z).sum())
    assert 0.9 < row["r2"] <= 1.0
    profile = fit.profile_overrides(times=fit.fit_times(_timed(z, noisy)), source_note="s.csv")
    assert profile["models.sd15.fixed_seconds"]["value"] == 0.0  # kept, not dropped


@given(
    st.lists(st.floats(0.001, 5.0), min_size=4, max_size=4),
    st.lists(st.floats(0.001, 5.0), min_size=4, max_size=4),
)
@settings(max_examples=50, deadline=None)
def test_fit_times_overhead_is_never_negative(first, second):
    z = np.array([1, 2, 4, 8, 1, 2, 4, 8])
    seconds = np.array(first + second)
    row = fit.fit_times(_timed(z, seconds)).iloc[0]
    free = fit.fit_line(z, seconds)
    assert row["overhead_s"] >= 0
    if free["intercept"] >= 0:  # the constraint does not bind: the free least squares line
        assert (row["per_step_s"], row["overhead_s"]) == (free["slope"], free["intercept"])
