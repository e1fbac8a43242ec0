"""Notebook 07 (peer serving policies) run with small parameters: its metrics, figures and table."""

import math

import pytest

from aigc_lib import peers

FIGURES = ("configurations", "pareto", "load", "estimator_rho")
LOADS = [5, 10, 20, 40]


@pytest.fixture(scope="module")
def run(notebook_results):
    return notebook_results("07")


def test_metrics_record_the_run_and_keep_training_apart(run):
    metrics, _ = run
    assert (metrics["n_slots"], metrics["train_slots"], metrics["loads"]) == (20, 10, LOADS)
    assert metrics["train_seeds"] and metrics["seed"] not in metrics["train_seeds"]
    assert metrics["crn_same_workload"] is True
    assert metrics["slo_seconds"] > 0 and metrics["policies"] == list(peers.POLICIES)


def test_every_policy_at_every_load_under_both_scenarios(run):
    rows = run[0]["comparison"]
    cells = {(r["scenario"], r["policy"], r["tasks_per_slot"]) for r in rows}
    assert cells == {
        (s, p, n) for s in ("paper", "published") for p in peers.POLICIES for n in LOADS
    }
    for r in rows:
        assert 0.0 <= r["slo_violation_share"] <= 1.0
        assert r["gpu_seconds_per_image"] > 0 and r["p95_latency"] > 0
        assert all(math.isfinite(r[k]) for k in peers.METRICS)


def test_the_paper_policies_miss_the_slo_more_as_the_load_rises(run):
    rows = [r for r in run[0]["comparison"] if r["scenario"] == "paper" and r["policy"] == "direct"]
    share = {r["tasks_per_slot"]: r["slo_violation_share"] for r in rows}
    assert share[LOADS[-1]] > share[LOADS[0]]


def test_the_router_is_tuned_at_least_as_well_as_the_cascade_it_contains(run):
    tuned = {(r["scenario"], r["policy"], r["tasks_per_slot"]): r for r in run[0]["tuned"]}
    assert len(tuned) == 2 * len(peers.PEERS) * len(LOADS)
    for (scenario, policy, load), row in tuned.items():
        if policy == "router":
            cascade = tuned[(scenario, "cascade", load)]
            assert row["train_utility"] >= cascade["train_utility"] - 1e-9


def test_the_slo_objective_and_the_estimator_sweep_are_recorded(run):
    metrics = run[0]
    assert {(r["policy"], r["tasks_per_slot"]) for r in metrics["slo_tuned"]} == {
        (p, n) for p in peers.PEERS for n in LOADS
    }
    assert sorted({r["rho"] for r in metrics["rho_sweep"]}) == [0.0, 1.0]
    assert {r["policy"] for r in metrics["rho_sweep"]} == {
        "probabilistic (prompt)",
        "cascade",
        "router",
    }


def test_every_figure_and_the_peers_table_are_written(run):
    metrics, folder = run
    for name in FIGURES:
        path = folder / "figures" / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 1000, name
    (md,) = peers.write_table(folder.parent)
    assert md.name == "peers.md" and len(peers.table(folder.parent)) == len(metrics["comparison"])
