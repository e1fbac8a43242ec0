"""Scenario file loading and validation (aigc_lib.scenario)."""

import copy

import pytest
import yaml

from aigc_lib import scenario as sc


@pytest.fixture
def raw():
    return yaml.safe_load(sc.DEFAULT_SCENARIO.read_text())


def write(tmp_path, raw, flops_src=sc.DATA_DIR / "flops.csv"):
    (tmp_path / "flops.csv").write_bytes(flops_src.read_bytes())
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_default_scenario_loads():
    s = sc.load_scenario()
    assert s.model_names == ["sdxl-turbo", "sd15", "sdxl"]
    assert s.group_names == ["Basic", "Imagination", "Detail", "Complex"]
    assert s.thresholds == (29.5, 33.8) and s.weight == 0.2
    assert s.models[0].steps == (1,)
    assert s.models[2].steps == tuple(range(10, 43, 4))
    assert s.shares.sum() == pytest.approx(1.0, abs=1e-9)
    assert s.mean_score == pytest.approx((s.shares * s.mu).sum())


def test_every_number_has_provenance():
    s = sc.load_scenario()
    assert {p.source for p in s.provenance.values()} <= set(sc.SOURCES)
    assert s.provenance["weight"].source == "paper"
    assert s.provenance["groups.Basic.mu"].source == "assumption"
    assert all(p.reason for p in s.provenance.values())
    per_model = {"score_slope", "score_offset", "score_beta", "zref"}
    for m in s.model_names:
        assert per_model <= {k.split(".")[-1] for k in s.provenance if k.startswith(f"models.{m}.")}


def test_tflop_comes_from_the_flop_table():
    import pandas as pd

    table = pd.read_csv(sc.DATA_DIR / "flops.csv")
    s = sc.load_scenario()
    for m in s.models:
        rows = table[table.model == m.name].set_index("component")["tflop"]
        assert m.tflop_per_step == rows["unet_step"]
        assert m.tflop_fixed == pytest.approx(rows["vae_decode"] + rows["text_encode"])
        assert m.work_tflop(10) == pytest.approx(10 * m.tflop_per_step + m.tflop_fixed)


def test_shares_match_the_challenge_mapping_counts():
    counts = yaml.safe_load((sc.DATA_DIR / "challenge_groups.yaml").read_text())["challenges"]
    total = sum(c["count"] for c in counts.values())
    assert total == 1632
    for g in sc.load_scenario().groups:
        n = sum(c["count"] for c in counts.values() if c["group"] == g.name)
        assert g.share == pytest.approx(n / total, abs=1e-9)


def mutate(raw, dotted, value):
    node = raw
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = next(x for x in node if x["name"] == p) if isinstance(node, list) else node[p]
    if value is DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return raw


DELETE = object()


@pytest.mark.parametrize("dotted, value, match", [
    ("thresholds.value", [33.8, 29.5], "thresholds: must be strictly increasing"),
    ("thresholds.value", [29.5], "thresholds: expected 2"),
    ("groups.Basic.sigma.value", 0, "groups.Basic.sigma: expected a number > 0"),
    ("groups.Basic.mu.value", float("nan"), "groups.Basic.mu: expected a finite number"),
    ("groups.Basic.mu.value", "high", "groups.Basic.mu: expected a finite number"),
    ("groups.Basic.share.value", 0.5, "groups: shares must sum to 1"),
    ("capacity_tflops.value", -1, "capacity_tflops: expected a number > 0"),
    ("weight.value", -0.1, "weight: expected a number >= 0"),
    ("weight.source", "folklore", "weight: source must be one of"),
    ("weight.reason", "", "weight: needs a one-line 'reason'"),
    ("weight", DELETE, "weight: missing"),
    ("step_options.value", [], "step_options: expected a non-empty list"),
    ("step_options.value", [10, 12.5], "steps: expected positive whole numbers"),
    ("sdxl.zref.value", 0, "models.sdxl.zref: expected a number > 0"),
    ("tasks_per_slot.value", 0, "tasks_per_slot: expected a number >= 1"),
    ("min_share.value", 0.6, "min_share: expected a number <= 0.5"),
])
def test_bad_values_name_the_key(tmp_path, raw, dotted, value, match):
    if dotted.startswith("sdxl."):
        node = next(m for m in raw["models"] if m["name"] == "sdxl")
        node["zref"]["value"] = value
    else:
        mutate(raw, dotted, value)
    with pytest.raises(ValueError, match=match):
        sc.load_scenario(write(tmp_path, raw))


def test_missing_files_are_clear(tmp_path, raw):
    with pytest.raises(ValueError, match="path: scenario file"):
        sc.load_scenario(tmp_path / "none.yaml")
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="flops_table: FLOP table"):
        sc.load_scenario(path)
    path.write_text("just a string")
    with pytest.raises(ValueError, match="path: .* must hold a YAML mapping"):
        sc.load_scenario(path)


def test_flop_table_must_have_each_component(tmp_path, raw):
    path = write(tmp_path, raw)
    lines = (tmp_path / "flops.csv").read_text().splitlines()
    (tmp_path / "flops.csv").write_text("\n".join(l for l in lines if not l.startswith("sd15,512,vae_decode")) + "\n")
    with pytest.raises(ValueError, match="flops_table: expected one 'vae_decode' row for model 'sd15'"):
        sc.load_scenario(path)


def test_profile_replaces_assumptions_and_records_provenance(raw):
    profile = {"overrides": {
        "groups.Basic.mu": {"value": 27.25, "source": "measured", "reason": "fit of a test sweep"},
        "models.sdxl.score_slope": {"value": 0.8, "source": "measured", "reason": "fit of a test sweep"},
        "capacity_tflops": {"value": 50.0, "source": "measured", "reason": "latency profile"},
    }}
    s = sc.load_scenario(profile=profile)
    assert s.groups[0].mu == 27.25 and s.models[2].score_slope == 0.8 and s.capacity_tflops == 50.0
    assert s.provenance["groups.Basic.mu"] == sc.Provenance("measured", "fit of a test sweep")
    assert sc.load_scenario().groups[0].mu != 27.25  # the file itself is untouched


def test_profile_from_file(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"overrides": {"groups.Complex.sigma": {"value": 4.0, "source": "measured", "reason": "r"}}}))
    assert sc.load_scenario(profile=path).groups[3].sigma == 4.0


@pytest.mark.parametrize("overrides, match", [
    ({"groups.Nowhere.mu": {"value": 1, "source": "measured", "reason": "r"}}, "profile: key 'groups.Nowhere' does not exist"),
    ({"groups.Basic.median": {"value": 1, "source": "measured", "reason": "r"}}, "profile: key 'groups.Basic.median' does not exist"),
    ({"groups.Basic.mu": 31.0}, "profile.groups.Basic.mu: expected a mapping"),
    ({"groups.Basic.sigma": {"value": -1, "source": "measured", "reason": "r"}}, "groups.Basic.sigma: expected a number > 0"),
    ({}, "profile: expected a non-empty mapping"),
])
def test_bad_profiles(overrides, match):
    with pytest.raises(ValueError, match=match):
        sc.load_scenario(profile={"overrides": overrides})


def test_replace_validates():
    s = sc.load_scenario()
    assert s.replace(weight=0.5).weight == 0.5
    with pytest.raises(ValueError, match="thresholds"):
        s.replace(thresholds=(30.0, 29.0))
    with pytest.raises(ValueError, match=r"thresholds: expected 1 \(one fewer than models\), got 2"):
        s.replace(models=s.models[:2])
