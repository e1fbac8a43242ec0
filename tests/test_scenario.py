"""Scenario file loading and validation (aigc_lib.scenario)."""

import copy

import numpy as np

import pytest
import yaml

from aigc_lib import scenario as sc


@pytest.fixture
def raw():
    return yaml.safe_load(sc.DEFAULT_SCENARIO.read_text())


def write(tmp_path, raw, flops_src=sc.DATA_DIR / "flops.csv"):
    (tmp_path / "flops.csv").write_bytes(flops_src.read_bytes())
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({**raw, "flops_table": "flops.csv"}))
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


@pytest.mark.parametrize(
    "dotted, value, match",
    [
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
        ("tasks_per_slot.value", 2.5, "tasks_per_slot: expected a whole number"),
        ("weight.wieght", 0.2, "weight: unknown field 'wieght'"),
        ("wieght", {"value": 0.2, "source": "paper", "reason": "r"}, "wieght: unknown key"),
        (
            "groups.Basic.median",
            {"value": 1, "source": "paper", "reason": "r"},
            "groups.Basic.median: unknown key",
        ),
        ("premises", ["P3"], "premises: expected a list of names"),
        ("min_share.value", 0.6, "min_share: expected a number <= 0.5"),
    ],
)
def test_bad_values_name_the_key(tmp_path, raw, dotted, value, match):
    if dotted.startswith("sdxl."):
        node = next(m for m in raw["models"] if m["name"] == "sdxl")
        node["zref"]["value"] = value
    else:
        mutate(raw, dotted, value)
    with pytest.raises(ValueError, match=match):
        sc.load_scenario(write(tmp_path, raw))


def test_missing_files_are_clear(tmp_path, raw):
    with pytest.raises(ValueError, match="name: .* is neither a scenario name"):
        sc.load_scenario(tmp_path / "none.yaml")
    with pytest.raises(ValueError, match="name: 'papr' is neither a scenario name"):
        sc.load_scenario("papr")
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="flops_table: FLOP table"):
        sc.load_scenario(path)
    path.write_text("just a string")
    with pytest.raises(ValueError, match="name: .* must hold a YAML mapping"):
        sc.load_scenario(path)


def test_empty_and_binary_files_name_the_file(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(
        ValueError, match=r"name: '.*empty.yaml' must hold a YAML mapping, got an empty file"
    ):
        sc.load_scenario(empty)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"name: '.*binary.yaml' is not a text \(UTF-8\) file"):
        sc.load_scenario(binary)


def test_flop_table_must_have_each_component(tmp_path, raw):
    path = write(tmp_path, raw)
    lines = (tmp_path / "flops.csv").read_text().splitlines()
    (tmp_path / "flops.csv").write_text(
        "\n".join(l for l in lines if not l.startswith("sd15,512,vae_decode")) + "\n"
    )
    with pytest.raises(
        ValueError, match="flops_table: expected one 'vae_decode' row for model 'sd15'"
    ):
        sc.load_scenario(path)


def test_profile_replaces_assumptions_and_records_provenance(raw):
    profile = {
        "overrides": {
            "groups.Basic.mu": {
                "value": 27.25,
                "source": "measured",
                "reason": "fit of a test sweep",
            },
            "models.sdxl.score_slope": {
                "value": 0.8,
                "source": "measured",
                "reason": "fit of a test sweep",
            },
            "capacity_tflops": {"value": 50.0, "source": "measured", "reason": "latency profile"},
            "models.sdxl.step_seconds": {
                "value": 0.25,
                "source": "measured",
                "reason": "latency profile",
            },
        }
    }
    s = sc.load_scenario(profile=profile)
    assert s.groups[0].mu == 27.25 and s.models[2].score_slope == 0.8 and s.capacity_tflops == 50.0
    assert s.models[2].image_seconds(10) == pytest.approx(2.5 + s.models[2].fixed_seconds)
    assert s.provenance["groups.Basic.mu"] == sc.Provenance("measured", "fit of a test sweep")
    assert sc.load_scenario().groups[0].mu != 27.25  # the file itself is untouched


def test_profile_from_file(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "overrides": {
                    "groups.Complex.sigma": {"value": 4.0, "source": "measured", "reason": "r"}
                }
            }
        )
    )
    loaded = sc.load_scenario(profile=path)
    assert loaded.groups[3].sigma == 4.0
    assert (loaded.profile, loaded.real_weights) == ("profile", True)
    assert loaded.label == "paper + profile profile"


def test_the_label_says_where_the_numbers_come_from(tmp_path):
    assert sc.load_scenario().label == "paper" and sc.load_scenario().profile is None
    body = {
        "real_weights": False,
        "overrides": {"groups.Complex.sigma": {"value": 4.0, "source": "measured", "reason": "r"}},
    }
    path = tmp_path / "profile_tiny_random.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ValueError, match="random-weight"):
        sc.load_scenario("published", profile=path)
    demo = sc.load_scenario("published", profile=path, allow_random_weights=True)
    assert not demo.real_weights
    assert demo.label == (
        "published + profile profile_tiny_random "
        "(random weights: a demonstration, not the real models)"
    )
    assert sc.load_scenario(profile={"overrides": body["overrides"]}).label == (
        "paper + profile mapping"
    )
    with pytest.raises(ValueError, match="profile: expected the path"):
        sc.load_scenario(profile=3)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (
            {"groups.Nowhere.mu": {"value": 1, "source": "measured", "reason": "r"}},
            "profile: key 'groups.Nowhere' does not exist",
        ),
        (
            {"groups.Basic.median": {"value": 1, "source": "measured", "reason": "r"}},
            "profile: key 'groups.Basic.median' does not exist",
        ),
        ({"groups.Basic.mu": 31.0}, "profile.groups.Basic.mu: expected a mapping"),
        (
            {"groups.Basic.sigma": {"value": -1, "source": "measured", "reason": "r"}},
            "groups.Basic.sigma: expected a number > 0",
        ),
        ({}, "profile: expected a non-empty mapping"),
    ],
)
def test_bad_profiles(overrides, match):
    with pytest.raises(ValueError, match=match):
        sc.load_scenario(profile={"overrides": overrides})


def test_replace_validates():
    s = sc.load_scenario()
    assert s.replace(weight=0.5).weight == 0.5
    with pytest.raises(ValueError, match="thresholds"):
        s.replace(thresholds=(30.0, 29.0))
    with pytest.raises(
        ValueError, match=r"thresholds: expected 1 \(one fewer than models\), got 2"
    ):
        s.replace(models=s.models[:2])


# --- latency from published measurements (issue: scenario v2) ------------------------------------


def test_sd15_step_time_reproduces_the_published_rtx_3080_ti_rate():
    """stable-fast README: SD1.5 at 512 runs 19.3 denoising steps per second on an RTX 3080 Ti."""
    sd15 = sc.load_scenario().models[1]
    per_step = sd15.image_seconds(23) - sd15.image_seconds(22)
    assert per_step == pytest.approx(1 / 19.3, rel=0.10)


def test_sdxl_step_is_4_to_7_times_sd15_although_it_is_8_4_times_the_work():
    s = sc.load_scenario()
    sd15, sdxl = s.models[1], s.models[2]
    ratio = sdxl.step_seconds / sd15.step_seconds
    assert 4 <= ratio <= 7
    assert sdxl.tflop_per_step / sd15.tflop_per_step == pytest.approx(8.42, abs=0.01)
    # SDXL at 25 steps: 7 s on an RTX 3090 (LCM-LoRA blog) / 0.86 (3080 Ti vs 3090)
    assert sdxl.image_seconds(25) == pytest.approx(7 / 0.86, rel=0.01)


def test_effective_work_is_measured_seconds_times_capacity():
    s = sc.load_scenario()
    seconds = np.array([m.image_seconds(m.steps[0]) for m in s.models])
    steps = np.array([m.steps[0] for m in s.models])
    work = steps * s.effective_tflop_per_step + s.effective_tflop_fixed
    assert work / s.capacity_tflops == pytest.approx(seconds)
    # SD1.5 is the yardstick of C: its effective step equals its counted TFLOP within rounding
    assert s.effective_tflop_per_step[1] == pytest.approx(s.models[1].tflop_per_step, rel=0.01)


def test_with_capacity_scales_every_time_and_replace_refuses_capacity_alone():
    s = sc.load_scenario()
    faster = s.with_capacity(2 * s.capacity_tflops)
    for old, new in zip(s.models, faster.models):
        assert new.image_seconds(10) == pytest.approx(old.image_seconds(10) / 2)
    assert faster.effective_tflop_per_step == pytest.approx(s.effective_tflop_per_step)
    with pytest.raises(ValueError, match="capacity_tflops: use Scenario.with_capacity"):
        s.replace(capacity_tflops=60.0)
    with pytest.raises(ValueError, match="capacity_tflops: expected a number > 0"):
        s.with_capacity(0)


def test_every_published_value_names_its_arithmetic_and_sources_are_in_the_project():
    s = sc.load_scenario()
    published = {k: p for k, p in s.provenance.items() if p.source == "published"}
    assert {
        "capacity_tflops",
        "models.sd15.step_seconds",
        "models.sdxl.step_seconds",
        "models.sdxl-turbo.fixed_seconds",
    } <= set(published)
    for key, p in published.items():
        assert any(ch.isdigit() for ch in p.reason), key  # the arithmetic is in the reason
    text = "\n".join(path.read_text() for path in sc.SCENARIOS_DIR.glob("*.yaml"))
    text += (sc.DATA_DIR / "SOURCES.md").read_text() + (sc.DATA_DIR / "README.md").read_text()
    for banned in ("../shared", "FACTS.md", "STYLE.md"):
        assert banned not in text
    sources = (sc.DATA_DIR / "SOURCES.md").read_text()
    for cited in ("stable-fast", "lcm_lora.md", "AITemplate", "DMD2", "Ascend"):
        assert cited in sources


# --- named scenarios and the paper's premises ----------------------------------------------------


def test_named_scenarios_load_and_published_changes_only_sdxl_turbo_scores():
    assert sc.scenario_names() == ["paper", "published"]
    paper, published = sc.load_scenario(), sc.load_scenario("published")
    assert paper == sc.load_scenario("paper") and paper.name == "paper"
    assert published.name == "published" and published.premises == ()
    assert paper.premises == ("P1", "P2")
    turbo = published.models[0]
    assert turbo.score_offset == published.models[2].score_offset  # scores like SDXL (DMD2)
    assert published.provenance["models.sdxl-turbo.score_offset"].source == "published"
    changed = {k for k in paper.provenance if paper.provenance[k] != published.provenance[k]}
    assert changed == {"models.sdxl-turbo.score_offset", "models.sdxl-turbo.score_beta"}
    assert [m.image_seconds(10) for m in paper.models] == [
        m.image_seconds(10) for m in published.models
    ]


def test_paper_keeps_p1_and_p2_at_every_step_count():
    s = sc.load_scenario()
    table = sc.premises(s)
    assert set(table["steps"]) == set(s.models[1].steps)
    assert table["holds"].all(), table[~table["holds"]]
    # P1 is checked for every group and neighbouring pair, for score and time
    assert len(table[(table.premise == "P1") & (table.check == "score")]) == 9 * 4 * 2
    assert len(table[(table.premise == "P1") & (table.check == "time")]) == 9 * 2


def test_p1_by_hand_for_a_group_mean_prompt():
    s = sc.load_scenario()
    for k, mu in enumerate(s.mu):
        for z in s.models[1].steps:
            small, medium, large = sc.true_score(s, mu, np.arange(3), [1, z, z])
            assert small < medium < large, (s.group_names[k], z)
            assert (
                s.models[0].image_seconds(1)
                < s.models[1].image_seconds(z)
                < s.models[2].image_seconds(z)
            )


def test_published_breaks_p1_because_sdxl_turbo_scores_like_sdxl():
    table = sc.premises(sc.load_scenario("published"))
    broken = table[~table["holds"]]
    assert set(broken["premise"]) == {"P1"} and set(broken["check"]) == {"score"}
    assert broken["subject"].str.contains("sdxl-turbo < sd15").all()


def test_a_premise_breaking_edit_of_the_paper_scenario_is_refused(tmp_path, raw):
    turbo = next(m for m in raw["models"] if m["name"] == "sdxl-turbo")
    turbo["score_offset"][
        "value"
    ] = -0.5  # the old default: 1-step SDXL-Turbo above SD1.5 at 10 steps
    with pytest.raises(
        ValueError,
        match=r"premises: scenario 'paper' declares P1 but breaks it: score "
        r"fails for Basic: sdxl-turbo < sd15 at 10 steps",
    ):
        sc.load_scenario(write(tmp_path, raw))
    raw["premises"] = []  # the same numbers load once the file stops claiming the premise
    assert sc.load_scenario(write(tmp_path, raw)).premises == ()


def test_a_p2_breaking_edit_is_refused(tmp_path, raw):
    turbo = next(m for m in raw["models"] if m["name"] == "sdxl-turbo")
    turbo["score_beta"]["value"] = (
        1.0  # low prompts now lose as much as the others on the small model
    )
    turbo["score_offset"]["value"] = -3.5
    with pytest.raises(ValueError, match="declares P2 but breaks it: low loses little"):
        sc.load_scenario(write(tmp_path, raw))


def test_level_means_are_the_truncated_mixture_means():
    s = sc.load_scenario()
    rng = np.random.default_rng(0)
    group = rng.choice(len(s.groups), size=400_000, p=s.shares)
    x = s.mu[group] + s.sigma[group] * rng.standard_normal(group.size)
    level = np.searchsorted(s.thresholds, x, side="right")
    sampled = [x[level == i].mean() for i in range(3)]
    assert sc.level_mean_scores(s) == pytest.approx(sampled, abs=0.02)


def test_break_even_scores_tie_the_two_models():
    s = sc.load_scenario()
    table = sc.break_even_scores(s)
    assert len(table) == 2 * 9
    for row in table.itertuples():
        m = s.model_names.index(row.smaller)
        steps = [1, row.steps, row.steps]
        pair = sc.true_score(s, row.break_even, np.array([m, m + 1]), np.array(steps)[[m, m + 1]])
        assert pair[0] == pytest.approx(pair[1], abs=1e-9)
        above = sc.true_score(
            s, row.break_even + 1, np.array([m, m + 1]), np.array(steps)[[m, m + 1]]
        )
        assert (above[1] > above[0]) == row.larger_better_above


def test_true_score_is_the_spec_formula():
    s = sc.load_scenario()
    x, z = 33.0, 18
    sdxl = s.models[2]
    expected = (
        s.mean_score
        + sdxl.score_offset
        + sdxl.score_beta * (x - s.mean_score)
        + sdxl.score_slope * np.log(z / sdxl.zref)
    )
    assert sc.true_score(s, x, 2, z) == pytest.approx(expected)
    with pytest.raises(ValueError, match="model: expected model indices"):
        sc.true_score(s, x, 3, z)


def test_premise_margins_keep_the_binding_value_of_each_check():
    """P2's loss is bounded from above, so its binding value is the largest loss, not the smallest."""
    s = sc.load_scenario()
    table = sc.premises(s)
    margins = sc.premise_margins(s)
    low = table[table["check"] == "low loses little"]
    row = margins.loc[("P2", "low loses little")]
    assert row["side"] == "at most" and row["binding"] == pytest.approx(low["value"].max())
    assert row["slack"] == pytest.approx(sc.P2_MAX_LOSS - low["value"].max())
    assert row["steps"] == low.loc[low["value"].idxmax(), "steps"]
    for check in ("score", "time"):
        p1 = table[(table["premise"] == "P1") & (table["check"] == check)]
        assert margins.loc[("P1", check), "binding"] == pytest.approx(p1["value"].min())
    high = table[table["check"] == "high gains"]
    assert margins.loc[("P2", "high gains"), "slack"] == pytest.approx(
        high["value"].min() - sc.P2_MIN_GAIN
    )
    assert (margins["slack"] >= 0).all() and margins["holds"].all()
    assert (table["slack"] >= 0).equals(table["holds"])  # slack and holds say the same


def test_premise_margins_show_a_broken_premise_as_negative_slack():
    margins = sc.premise_margins(sc.load_scenario("published"))
    assert margins.loc[("P1", "score"), "slack"] < 0 and not margins.loc[("P1", "score"), "holds"]
