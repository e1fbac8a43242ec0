"""Notebook 07 (serving under load) run with small parameters: its metrics, figures and table."""

import json
import math

import pytest

from aigc_lib import peers

FIGURES = (
    "arrivals",
    "discriminator",
    "load",
    "quality_at_slo",
    "gpus_needed",
    "equal_gpus",
    "sharing_and_batching",
    "drops",
    "backlog",
)
TRACES = ["conv", "code"]
LOADS = [0.5, 1.3]
PROCESSES = ["poisson", "conv", "code"]


@pytest.fixture(scope="module")
def run(notebook_results):
    return notebook_results("07")


def test_metrics_record_the_run_and_the_special_case(run):
    metrics, _ = run
    assert metrics["loads"] == LOADS and metrics["processes"] == PROCESSES
    assert metrics["special_case"] is True  # the slot model is serve's special case
    assert metrics["policies"] == list(peers.POLICIES) and metrics["tuned"] == list(peers.TUNED)
    assert metrics["reference_seconds"] > 0
    assert metrics["burstiness"]["code"]["cv"] > metrics["burstiness"]["conv"]["cv"]


def test_metrics_name_the_scenario_and_its_premises(run):
    metrics, _ = run
    assert metrics["scenario"] == "paper" and metrics["profile"] is None
    assert metrics["real_weights"] is True and metrics["scenario_label"] == "paper"
    checks = {(r["premise"], r["check"]): r for r in metrics["premises"]}
    assert {premise for premise, _ in checks} == {"P1", "P2"}  # what the shipped scenario keeps
    assert all(r["holds"] and r["slack"] >= 0 for r in checks.values())


def test_every_tunable_policy_tried_the_same_number_of_configurations(run):
    metrics, _ = run
    assert metrics["configurations_tried"] == {p: [metrics["n_configs"]] for p in peers.TUNED}
    assert metrics["halton_seed"] == peers.HALTON_SEED and metrics["full_sweep"] is False
    assert metrics["cells"] == len(LOADS) * len(PROCESSES)
    chosen = {(r["process"], r["load"], r["policy"], r["objective"]) for r in metrics["chosen"]}
    assert chosen == {
        (process, load, policy, objective)
        for process in PROCESSES
        for load in LOADS
        for policy in peers.TUNED
        for objective in peers.OBJECTIVES
    }


def test_every_policy_at_every_load_of_every_process(run):
    rows = run[0]["comparison"]
    cells = {(r["process"], r["load"], r["policy"], r["objective"]) for r in rows}
    untuned = [p for p in peers.POLICIES if p not in peers.TUNED]
    expected = {(pr, u, p, "none") for pr in PROCESSES for u in LOADS for p in untuned}
    expected |= {
        (pr, u, p, o)
        for pr in PROCESSES
        for u in LOADS
        for p in peers.TUNED
        for o in peers.OBJECTIVES
    }
    assert cells == expected
    for r in rows:
        assert 0.0 <= r["slo_attainment"] <= 1.0 and r["gpu_seconds_per_image"] > 0
        assert r["p50_latency"] <= r["p95_latency"] <= r["p99_latency"]
        assert r["goodput"] >= 0 and math.isfinite(r["mean_score"])
        if r["process"] != "poisson":  # a trace window is rescaled to offer the load exactly
            assert r["offered"] == pytest.approx(r["load"], rel=1e-3)


def test_the_paper_thresholds_keep_the_slo_less_often_under_overload(run):
    rows = [
        r
        for r in run[0]["comparison"]
        if r["process"] == "poisson" and r["policy"] == "probabilistic (paper)"
    ]
    attainment = {r["load"]: r["slo_attainment"] for r in rows}
    assert attainment[LOADS[-1]] < attainment[LOADS[0]]


def test_the_gain_discriminator_beats_random_and_the_low_score_rule_does_not(run):
    curves = run[0]["discriminator"]
    at = {(r["target"], r["rho"]): r["mean_score"] for r in curves if r["share"] == 0.5}
    assert at[("gain", 1.0)] > at[("gain", 0.0)] > at[("low_score", 0.8)]
    # the by-hand paired differences agree with the curves, and their intervals exclude zero
    against = {r["target"]: r for r in run[0]["discriminator_against_random"]}
    assert against["gain"]["oracle"] is True and against["low_score"]["oracle"] is False
    for kind, r in against.items():
        assert r["mean_score"] == pytest.approx(at[(kind, r["rho"])], abs=1e-3)
        assert r["against_random"] == pytest.approx(r["mean_score"] - at[("gain", 0.0)], abs=1e-3)
        assert r["lo"] <= r["against_random"] <= r["hi"]
    assert against["gain"]["lo"] > 0 and against["low_score"]["hi"] < 0


def test_every_lead_has_its_paired_interval_and_is_shown_only_above_zero(run):
    metrics, _ = run
    leads = metrics["leads"]
    names = {"mean_utility", "goodput", "mean_score within the SLO"}
    assert {r["metric"] for r in leads} == names
    cells = {(r["process"], r["load"]) for r in leads if r["metric"] == "mean_utility"}
    assert cells == {(p, u) for p in PROCESSES for u in LOADS}
    rows = {
        (r["process"], r["load"], r["policy"], r["objective"]): r for r in metrics["comparison"]
    }
    for r in leads:
        if r["verdict"] == "alone":  # every policy equal, or the only one that kept the SLO
            assert r["next"] is None
            continue
        assert r["verdict"] == ("shown" if r["lo"] > 0 else "not shown")
        assert r["lead"] >= 0 and r["lo"] <= r["lead"] <= r["hi"]
        assert r["next"] not in r["best"].split(" = ")
        if r["metric"] == "mean_utility":  # the lead is the difference of the two means
            objective = {p: "utility" if p in peers.TUNED else "none" for p in peers.POLICIES}
            best = r["best"].split(" = ")[0]
            means = [
                rows[(r["process"], r["load"], p, objective[p])]["mean_utility"]
                for p in (best, r["next"])
            ]
            assert r["lead"] == pytest.approx(means[0] - means[1], abs=1e-3)


def test_what_each_tuned_policy_became_is_a_model_or_a_mix(run):
    became = {r["became"] for r in run[0]["chosen"]}
    assert became <= {"a mix", *peers.SINGLE_MODELS}


def test_gpus_needed_per_trace_and_policy_keep_the_target(run):
    metrics, _ = run
    needed = {(r["process"], r["policy"]): r for r in metrics["gpus_needed"]}
    assert {p for p, _ in needed} == set(TRACES)
    assert {q for _, q in needed} == set(peers.POLICIES)
    for r in needed.values():
        assert r["windows"] == metrics["cluster_windows"] and 0 <= r["reached"] <= r["windows"]
        if r["reached"] == r["windows"]:
            assert 1 <= r["gpus"] <= metrics["max_gpus"]
            assert r["slo_attainment"] >= metrics["target"]  # every window kept the target
    for trace in TRACES:  # the light model alone never needs more GPUs than the heavy one
        light, heavy = needed[(trace, "sdxl-turbo")], needed[(trace, "sdxl")]
        assert heavy["reached"] < heavy["windows"] or light["gpus"] <= heavy["gpus"]
    assert metrics["real_load"]["conv"] > metrics["real_load"]["code"] > 1


def test_quality_at_equal_gpus_gives_every_policy_the_papers_gpus(run):
    metrics, _ = run
    equal = metrics["equal_gpus"]
    paper = {
        r["process"]: r for r in metrics["gpus_needed"] if r["policy"] == "probabilistic (paper)"
    }
    for r in equal:
        p = paper[r["process"]]
        expected = math.ceil(p["gpus"]) if p["gpus"] is not None else metrics["max_gpus"]
        assert r["gpus"] == expected and 0 <= r["slo_attainment"] <= 1
    assert {(r["process"], r["policy"]) for r in equal} == {
        (t, p) for t in TRACES for p in peers.POLICIES
    }


def test_sharing_modes_and_batching_are_sized_alike(run):
    metrics, _ = run
    rows = metrics["sharing_and_batching"]
    variants = {r["variant"] for r in rows}
    assert variants == {"shares, batch 1", "work-conserving, batch 1", "whole-gpus, batch 1"} | {
        f"{metrics['cluster_sharing']}, batch 4"
    }
    for r in rows:
        assert r["reached"] < r["windows"] or r["gpus"] >= 1
    by = {(r["process"], r["policy"], r["variant"]): r for r in rows}
    for trace in TRACES:  # batching never costs the light model a GPU
        one, batched = (by[(trace, "sdxl-turbo", f"whole-gpus, batch {b}")] for b in (1, 4))
        assert batched["gpus"] <= one["gpus"]


def test_drops_by_reason_conserve_every_arrival(run):
    drops = run[0]["drops"]
    assert {(r["process"], r["policy"]) for r in drops} == {
        (t, p) for t in TRACES for p in peers.POLICIES
    }
    for r in drops:
        assert r["n_requests"] == r["n_served"] + r["dropped_admission"] + r["dropped_expired"]


def test_the_verdicts_under_each_assumption(run):
    flips = run[0]["flips"]
    assert flips[0]["assumption"] == "defaults"
    assert [r["assumption"] for r in flips[1:]] == [
        "slo_seconds = 5",
        "slot_seconds = 5",
        "rho = 0.6",
    ]
    allowed = {*peers.POLICIES, "none keeps it"}
    assert all(r[t] in allowed for r in flips for t in TRACES)


def test_overload_serves_everything(run):
    overload = run[0]["overload"]
    assert {r["policy"] for r in overload} >= {"probabilistic (paper)", "load-aware"}
    assert all(r["all_served"] for r in overload)


def test_every_figure_and_the_peers_table_are_written(run):
    metrics, folder = run
    for name in FIGURES:
        path = folder / "figures" / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 1000, name
    (md,) = peers.write_table(folder.parent)
    text = md.read_text()
    assert md.name == "peers.md" and len(peers.table(folder.parent)) == len(metrics["comparison"])
    for process in PROCESSES:
        for load in LOADS:
            assert f"## {process}, offered load {load:g}" in text
    assert "1 |" in text and f"| {metrics['n_configs']} |" in text  # configurations per policy
    assert "Scenario: paper." in text  # the note names the scenario the metrics come from
    assert "## Who leads" in text and "## GPUs needed at the traces' real rate" in text
    assert "## Quality at equal GPUs" in text and " [" in text  # intervals beside the means
    assert "## Drops by reason" in text and "## GPUs needed by sharing mode" in text
    assert set(peers.table(folder.parent)["scenario"]) == {"paper"}


def test_the_peers_table_names_a_profile_run_as_such(run, tmp_path):
    metrics, _ = run
    label = "paper + profile my_gpu (random weights: a demonstration, not the real models)"
    folder = tmp_path / peers.NOTEBOOK
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics | {"scenario_label": label}))
    (md,) = peers.write_table(tmp_path)
    assert f"Scenario: {label}." in md.read_text()
