"""Notebook 02 (step sweeps), executed with the small parameters: tiny random-weight pipeline on the CPU."""

import pandas as pd
import pytest

from aigc_lib import prompts, reproduce, scenario, sweep

STEM = "02_step_sweeps_on_the_gpu"
MODELS = {"sdxl-turbo", "sd15", "sdxl"}
FIGURES = (
    "fig2_time_vs_steps",
    "fig2_score_vs_steps",
    "assumed_score_vs_steps",
    "latency_vs_scenario",
)
SMALL = reproduce.load_parameters(reproduce.ROOT / "tests" / "notebook_params.yaml")[STEM]


@pytest.fixture(scope="module")
def nb02(notebook_results):
    return notebook_results("02")


def test_runs_the_tiny_pipeline_on_the_cpu(nb02):
    metrics, folder = nb02
    assert metrics["device"] == "cpu" and metrics["real_weights"] is False
    rows = pd.read_csv(folder / "sweep_random-tiny" / "sweep.csv")
    assert not rows["real_weights"].any() and set(rows["weights"]) == {"random-tiny"}
    assert len(rows) == metrics["n_rows"] and (rows["clip_score"] >= 0).all()


def test_every_planned_image_was_measured(nb02):
    metrics, _ = nb02
    # 4 groups x prompts_per_group prompts x seeds x (1 Turbo step + the steps of SD1.5 and of SDXL)
    expected = 4 * SMALL["prompts_per_group"] * len(SMALL["seeds"]) * (1 + 2 * len(SMALL["steps"]))
    assert metrics["n_rows"] == expected and metrics["n_failed"] == 0


def test_rerunning_the_sweep_reuses_every_row(nb02):
    metrics, folder = nb02
    out = folder / "sweep_random-tiny"
    before = sorted(p.read_bytes() for p in sweep.shard_paths(out))
    chosen = sweep.select_prompts(
        prompts.load_partiprompts(), per_group=SMALL["prompts_per_group"], seed=0
    )

    def never_load(name):
        raise AssertionError(f"{name} was loaded although every row exists")

    backend = sweep.Backend(
        never_load, lambda image, prompt: 0.0, "cpu", "random-tiny", "none", False, 32
    )
    again = sweep.run_sweep(
        chosen, out, sorted(MODELS), SMALL["steps"], SMALL["seeds"], backend=backend, progress=False
    )
    assert len(again) == metrics["n_rows"]
    assert sorted(p.read_bytes() for p in sweep.shard_paths(out)) == before


def test_flop_table_reproduces_the_papers_338_tflop(nb02):
    metrics, _ = nb02
    assert metrics["sdxl_25_steps_tflop"] == pytest.approx(338.0, rel=0.01)
    assert metrics["sdxl_25_steps_tflop"] == pytest.approx(25 * metrics["tflop_per_step"]["sdxl"])
    per_step = metrics["tflop_per_step"]
    assert set(per_step) == MODELS and per_step["sdxl"] > 8 * per_step["sd15"]


def test_parameter_counts_match_the_paper(nb02):
    metrics, _ = nb02
    params = metrics["parameters_billion"]
    assert params["sdxl"] == pytest.approx(3.5, abs=0.05) and params["sd15"] == pytest.approx(
        1.06, abs=0.01
    )
    assert params["sdxl"] > 3 * params["sd15"]  # "over three times"


def test_scenario_seconds_per_step_are_the_published_latencies(nb02):
    metrics, _ = nb02
    sc = scenario.load_scenario()
    for m in sc.models:
        assert metrics["seconds_per_step_scenario"][m.name] == pytest.approx(m.step_seconds)
        achieved = metrics["achieved_tflops_scenario"][m.name]
        assert achieved == pytest.approx(metrics["tflop_per_step"][m.name] / m.step_seconds)
    # big tensors use the GPU better: SDXL achieves more TFLOPS than SD1.5 on the paper's GPU
    assert metrics["achieved_tflops_scenario"]["sdxl"] > metrics["achieved_tflops_scenario"]["sd15"]
    assert metrics["plan_minutes"] > 0


def test_time_grows_with_the_steps(nb02):
    metrics, _ = nb02
    fits = metrics["time_fit"]
    assert set(fits) == MODELS
    for name in ("sd15", "sdxl"):
        assert fits[name]["per_step_s"] > 0 and fits[name]["r2"] is not None
    assert fits["sdxl-turbo"]["per_step_s"] is None  # one step count: no slope


def test_score_fits_cover_every_model(nb02):
    metrics, _ = nb02
    fits = metrics["score_fit"]
    assert set(fits) == MODELS and fits["sdxl-turbo"]["a"] is None
    assert all(
        isinstance(fits[m]["a"], float) and isinstance(fits[m]["b"], float)
        for m in ("sd15", "sdxl")
    )


def test_profile_loads_as_a_scenario_profile_and_says_it_is_random(nb02):
    metrics, folder = nb02
    path = folder / metrics["profile_file"]
    assert metrics["profile_file"] == "profile_tiny_random.yaml"
    with pytest.raises(ValueError, match="profile: fitted on random-weight models"):
        scenario.load_scenario(profile=path)
    trial = scenario.load_scenario(profile=path, allow_random_weights=True)
    measured = {
        k: p
        for k, p in trial.provenance.items()
        if p.source == "measured" and k.startswith("groups.")
    }
    assert any(k.endswith(".mu") for k in measured)
    assert all(
        "tiny random-weight pipeline" in p.reason for k, p in measured.items() if k.endswith(".mu")
    )
    # the time lines of the sweep become the profile's latencies (swept at several step counts)
    assert trial.provenance["models.sd15.step_seconds"].source == "measured"


def test_figures_exist(nb02):
    _, folder = nb02
    for name in FIGURES:
        assert (folder / "figures" / f"{name}.png").stat().st_size > 0
