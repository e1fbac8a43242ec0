"""aigc_lib.gpu_profile: backend choice from a fake hub cache, latency tables beside the scenario."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import gpu_profile, scenario
from aigc_lib.models import MODELS

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CLIP = "openai/clip-vit-large-patch14"


def _cache(root, repo_id, files):
    """A hub cache entry as huggingface_hub lays it out: refs/main -> snapshots/<commit>/<files>."""
    folder = root / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)
    for name in files:
        path = folder / "snapshots" / COMMIT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")


@pytest.fixture
def full_cache(tmp_path):
    for entry in MODELS.values():
        _cache(tmp_path, entry.hub_id, gpu_profile.PIPELINE_FILES)
    _cache(tmp_path, CLIP, gpu_profile.CLIP_FILES)
    return tmp_path


def test_weights_cached_needs_every_file(tmp_path):
    _cache(tmp_path, "org/pipe", ["model_index.json"])
    assert gpu_profile.weights_cached("org/pipe", ["model_index.json"], cache_dir=tmp_path)
    assert not gpu_profile.weights_cached(
        "org/pipe", gpu_profile.PIPELINE_FILES, cache_dir=tmp_path
    )
    assert not gpu_profile.weights_cached("org/other", ["model_index.json"], cache_dir=tmp_path)


def test_weights_cached_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="repo_id"):
        gpu_profile.weights_cached("no-owner", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="files"):
        gpu_profile.weights_cached("org/pipe", [], cache_dir=tmp_path)


def test_cpu_always_runs_the_tiny_pipeline(full_cache):
    choice = gpu_profile.choose_backend("cpu", cuda_available=True, cache_dir=full_cache)
    assert (choice.device, choice.real_weights) == ("cpu", False)
    assert choice.label == gpu_profile.TINY_NOTE


def test_auto_without_cuda_runs_the_tiny_pipeline(full_cache):
    choice = gpu_profile.choose_backend("auto", cuda_available=False, cache_dir=full_cache)
    assert (choice.device, choice.real_weights) == ("cpu", False)
    assert "no CUDA" in choice.reason


def test_auto_with_cuda_but_no_weights_runs_the_tiny_pipeline(tmp_path):
    _cache(tmp_path, MODELS["sd15"].hub_id, gpu_profile.PIPELINE_FILES)  # CLIP missing
    choice = gpu_profile.choose_backend("auto", ["sd15"], cuda_available=True, cache_dir=tmp_path)
    assert (choice.device, choice.real_weights) == ("cpu", False)
    assert CLIP in choice.reason and MODELS["sd15"].hub_id not in choice.reason


def test_auto_with_cuda_and_cached_weights_runs_the_real_models(full_cache):
    choice = gpu_profile.choose_backend("auto", cuda_available=True, cache_dir=full_cache)
    assert choice == gpu_profile.BackendChoice("cuda", True, True, choice.reason)
    assert choice.label == ""


def test_explicit_cuda_downloads_only_when_the_cache_lacks_weights(tmp_path, full_cache):
    assert gpu_profile.choose_backend(
        "cuda:1", cuda_available=True, cache_dir=full_cache
    ).local_files_only
    empty = gpu_profile.choose_backend("cuda", cuda_available=True, cache_dir=tmp_path / "empty")
    assert empty.real_weights and not empty.local_files_only
    with pytest.raises(ValueError, match="device"):
        gpu_profile.choose_backend("cuda", cuda_available=False, cache_dir=full_cache)


@pytest.mark.parametrize("device", ["tpu", "", "CUDA", None])
def test_choose_backend_rejects_unknown_devices(device):
    with pytest.raises(ValueError, match="device"):
        gpu_profile.choose_backend(device, cuda_available=False)


def test_choose_backend_rejects_unknown_models():
    with pytest.raises(ValueError, match="name"):
        gpu_profile.choose_backend("cpu", ["sd2"])
    with pytest.raises(ValueError, match="models"):
        gpu_profile.choose_backend("cpu", [])


# ------------------------------------------------------------------------ latency tables

SC = scenario.load_scenario()


def _table(speed: float, tiny: bool = False, gpu: str = "test gpu") -> pd.DataFrame:
    """A latency table of a GPU exactly ``speed`` times as fast as the scenario's on every model."""
    rows = []
    for m in SC.models:
        rows.append(
            {
                "gpu": gpu,
                "tiny": tiny,
                "model": m.name,
                "component": "unet_step",
                "steps": None,
                "seconds": m.step_seconds / speed,
                "tflop": m.tflop_per_step,
            }
        )
        rows.append(
            {
                "gpu": gpu,
                "tiny": tiny,
                "model": m.name,
                "component": "vae_decode",
                "steps": None,
                "seconds": 0.1,
                "tflop": 1.0,
            }
        )
        for z in m.steps:
            rows.append(
                {
                    "gpu": gpu,
                    "tiny": tiny,
                    "model": m.name,
                    "component": "image_composed",
                    "steps": z,
                    "seconds": float(m.image_seconds(z)) / speed,
                    "tflop": float(m.work_tflop(z)),
                }
            )
    return pd.DataFrame(rows)


def test_read_latency_tables_stacks_files_and_handles_none(tmp_path):
    empty = gpu_profile.read_latency_tables(str(tmp_path / "latency_*.csv"))
    assert empty.empty and set(gpu_profile.LATENCY_COLUMNS) <= set(empty.columns)
    _table(50.0).to_csv(tmp_path / "latency_a.csv", index=False)
    _table(80.0, gpu="other").to_csv(tmp_path / "latency_b.csv", index=False)
    both = gpu_profile.read_latency_tables(str(tmp_path / "latency_*.csv"))
    assert len(both) == 2 * len(_table(50.0))
    assert set(both["file"]) == {"latency_a.csv", "latency_b.csv"}


def test_read_latency_tables_rejects_other_csvs(tmp_path):
    pd.DataFrame({"model": ["sd15"]}).to_csv(tmp_path / "latency_x.csv", index=False)
    with pytest.raises(ValueError, match="pattern"):
        gpu_profile.read_latency_tables(str(tmp_path / "latency_*.csv"))
    with pytest.raises(ValueError, match="pattern"):
        gpu_profile.read_latency_tables("")


@settings(deadline=None, max_examples=25)
@given(speed=st.floats(0.01, 100.0))
def test_a_gpu_f_times_as_fast_has_speedup_f(speed):
    compared = gpu_profile.latency_vs_scenario(_table(speed), SC)
    assert set(compared["component"]) == {
        "unet_step",
        "image_composed",
    }  # vae rows are not compared
    assert compared["speedup"].to_numpy() == pytest.approx(speed, rel=1e-9)
    assert compared["achieved_tflops"].to_numpy() == pytest.approx(
        (compared["tflop"] / compared["measured_s"]).to_numpy(), rel=1e-12
    )


def test_assumed_seconds_are_the_scenarios_published_latency():
    compared = gpu_profile.latency_vs_scenario(_table(2.0), SC).set_index(
        ["model", "component", "steps"]
    )
    sdxl = SC.models[SC.model_names.index("sdxl")]
    # hand value: 25 steps are not in Z, so take z = 26: 26 x step + fixed seconds
    expected = 26 * sdxl.step_seconds + sdxl.fixed_seconds
    assert compared.loc[("sdxl", "image_composed", 26), "assumed_s"] == pytest.approx(expected)
    assert compared.loc[("sd15", "unet_step", 1), "assumed_s"] == pytest.approx(1 / 19.3, rel=1e-3)
    # achieved TFLOPS: counted work over measured time, here twice the scenario's GPU
    assert compared.loc[("sd15", "unet_step", 1), "achieved_tflops"] == pytest.approx(
        2 * 1.60654688256 * 19.3, rel=1e-3
    )


def test_tiny_dry_runs_are_left_out_unless_asked_for():
    tiny = _table(34.0, tiny=True)
    assert gpu_profile.latency_vs_scenario(tiny, SC).empty
    assert gpu_profile.latency_vs_scenario(tiny, SC, include_tiny=True)["tiny"].all()


def test_latency_vs_scenario_rejects_bad_input():
    with pytest.raises(ValueError, match="latency"):
        gpu_profile.latency_vs_scenario(pd.DataFrame({"model": []}), SC)
    with pytest.raises(ValueError, match="components"):
        gpu_profile.latency_vs_scenario(_table(34.0), SC, components=["vae_decode"])
