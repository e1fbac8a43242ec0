"""The GPU latency benchmark, run on the CPU with tiny look-alike networks (benchmarks/gpu_latency.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location(
        "gpu_latency", ROOT / "benchmarks" / "gpu_latency.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_latency = _load()


@pytest.fixture(scope="module")
def latency(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("latency") / "latency_cpu.csv"
    code = gpu_latency.main(
        [
            "--device",
            "cpu",
            "--tiny",
            "--dtype",
            "fp16",
            "--out",
            str(out),
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--steps",
            "10,14",
            "--e2e-steps",
            "2",
        ]
    )
    assert code == 0
    return pd.read_csv(out)


def test_csv_has_the_columns_and_positive_times(latency):
    assert list(latency.columns) == list(gpu_latency.COLUMNS)
    assert (latency["seconds"] > 0).all()
    assert (latency["seconds_min"] <= latency["seconds"]).all()
    assert (latency["seconds"] <= latency["seconds_max"]).all()
    assert (latency["tflop"] > 0).all() and (latency["achieved_tflops"] > 0).all()
    assert latency["peak_tflops"].isna().all()  # no fp16 peak for a CPU
    assert set(latency["gpu"]) == {"cpu"} and latency["tiny"].all()
    assert latency["torch_version"].notna().all() and latency["diffusers_version"].notna().all()


def test_one_row_per_component_and_per_steps(latency):
    for model, sub in latency.groupby("model"):
        parts = sub[sub["steps"].isna()]
        assert sorted(parts["component"]) == ["text_encode", "unet_step", "vae_decode"]
        composed = sub[sub["component"] == "image_composed"]
        e2e = sub[sub["component"] == "image_e2e"]
        if model == "sdxl-turbo":
            assert list(composed["steps"]) == [1] and list(e2e["steps"]) == [1]
        else:
            assert list(composed["steps"]) == [10, 14] and list(e2e["steps"]) == [2]
    assert set(latency["model"]) == {"sdxl-turbo", "sd15", "sdxl"}
    batch = latency[latency["component"] == "unet_step"].set_index("model")["batch"]
    assert batch.to_dict() == {"sdxl-turbo": 1, "sd15": 2, "sdxl": 2}


def test_composed_image_time_is_text_plus_steps_plus_vae(latency):
    for _, sub in latency.groupby("model"):
        part = sub[sub["steps"].isna()].set_index("component")["seconds"]
        for _, row in sub[sub["component"] == "image_composed"].iterrows():
            expected = part["text_encode"] + row["steps"] * part["unet_step"] + part["vae_decode"]
            assert row["seconds"] == pytest.approx(expected, rel=1e-9)


def test_vae_upcast_follows_the_config_as_diffusers_does(latency, tmp_path):
    vae_dtype = latency.groupby("model")["vae_dtype"].first().to_dict()
    assert vae_dtype == {
        "sd15": "float16",
        "sdxl": "float32",
        "sdxl-turbo": "float32",
    }  # SDXL: force_upcast
    assert set(latency["dtype"]) == {"float16"}
    out = tmp_path / "never.csv"
    gpu_latency.main(
        [
            "--device",
            "cpu",
            "--tiny",
            "--dtype",
            "fp16",
            "--out",
            str(out),
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--models",
            "sdxl-turbo",
            "--vae-upcast",
            "never",
        ]
    )
    assert set(pd.read_csv(out)["vae_dtype"]) == {"float16"}


def test_zero_budget_writes_a_header_only(tmp_path):
    out = tmp_path / "latency.csv"
    assert (
        gpu_latency.main(["--device", "cpu", "--tiny", "--out", str(out), "--budget-s", "0"]) == 0
    )
    assert out.read_text().strip() == ",".join(gpu_latency.COLUMNS)


@pytest.mark.parametrize(
    "name, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989.5),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.5),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA GeForce RTX 3090", 71.0),
        ("NVIDIA GeForce RTX 4090", 165.0),
    ],
)
def test_peak_table(name, peak):
    assert gpu_latency.peak_tflops(name) == peak


def test_unknown_gpu_has_no_peak():
    assert math.isnan(gpu_latency.peak_tflops("Tesla T4"))
    assert math.isnan(gpu_latency.peak_tflops("NVIDIA H100 NVL"))


def test_gpu_slug():
    assert gpu_latency.gpu_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert gpu_latency.gpu_slug("  ") == "unknown"


def test_bad_arguments_exit(capsys):
    with pytest.raises(SystemExit):
        gpu_latency.main(["--device", "cpu", "--tiny", "--steps", "0,10"])
    with pytest.raises(SystemExit):
        gpu_latency.main(["--device", "cpu", "--tiny", "--repeats", "0"])
