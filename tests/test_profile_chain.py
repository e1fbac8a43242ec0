"""Issue 21's chain: measurements drive the evaluation.

A tiny random-weight step sweep, its fit and the profile it writes (notebook 02 with the small
parameters: ``profile_tiny_random.yaml``), then notebooks 03-07 with the small parameters on that
profile through ``python -m aigc_lib.reproduce --profile``. Their metrics name the profile, differ
from the default scenario's where the profile changed the numbers and equal them where it did not;
the comparison pages name the profile and say it was fitted on random weights; the committed
``results/`` keep their bytes. Then the pages' notes (:mod:`aigc_lib.paper_vs_ours`) on small
folders.

Cost: the notebooks run two side by side in one ``reproduce`` (:data:`JOBS`); the default
scenario's metrics are those the notebook tests computed already (``notebook_results``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from claim_numbers import numbers

from aigc_lib import claims, paper_vs_ours, parallel, reproduce, scenario

ROOT = reproduce.ROOT
SMALL_PARAMS = Path(__file__).with_name("notebook_params.yaml")
PROFILE_NAME = "profile_tiny_random"

PROFILED = [
    nb
    for nb in reproduce.find_notebooks(reproduce.PROFILE_NOTEBOOKS)
    if "profile" in reproduce.notebook_parameters(nb)
]
NOTEBOOKS_NEEDED = ("02", "03", "04", "05", "06", "07")
"""Notebook 02 (its profile) first, then the default runs the chain compares with (conftest)."""
JOBS = "2"
"""The profiled notebooks (:data:`PROFILED`) run in one ``reproduce``, two side by side
(``--jobs 2``), each with one worker (``AIGC_JOBS=1``: the two fill two cores, and no result
depends on the number of workers, :mod:`aigc_lib.parallel`). 03 and 04 make ``paper_vs_ours``,
06 ``interpretations`` and 07 ``peers``."""


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def chain(notebook_results, tmp_path_factory):
    """Run the profiled notebooks on notebook 02's tiny profile; the committed results' checksums
    before and after."""
    _, folder02 = notebook_results("02")
    profile = folder02 / f"{PROFILE_NAME}.yaml"
    out = tmp_path_factory.mktemp("profile_chain")
    before = checksums(ROOT / "results")
    command = [
        *(sys.executable, "-m", "aigc_lib.reproduce", "--profile", str(profile)),
        *("--allow-random-weights", "--params", str(SMALL_PARAMS)),
        *("--results-dir", str(out), "--jobs", JOBS, "--only", *(nb.stem[:2] for nb in PROFILED)),
    ]
    run = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, parallel.JOBS_ENV: "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    folders = {p.name: p for p in out.glob("[0-9][0-9]_*") if p.is_dir()}
    return {
        "profile": profile,
        "output": (run.stdout, run.returncode),
        "folders": folders,
        "out": out,
        "before": before,
        "after": checksums(ROOT / "results"),
    }


def metrics_of(chain, prefix: str) -> dict:
    (folder,) = [f for name, f in chain["folders"].items() if name.startswith(prefix)]
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def test_notebook_02s_tiny_sweep_fits_a_profile_marked_random_weights(chain):
    body = yaml.safe_load(chain["profile"].read_text(encoding="utf-8"))
    assert body["real_weights"] is False
    measured = set(body["overrides"])
    assert {"models.sd15.step_seconds", "models.sdxl.step_seconds", "groups.Basic.mu"} <= measured
    assert "models.sdxl-turbo.step_seconds" not in measured  # one step count: not separable
    with pytest.raises(ValueError, match="random"):
        scenario.load_scenario(profile=chain["profile"])  # refused unless asked for


def test_every_notebook_that_takes_a_profile_runs_on_it(chain):
    output, code = chain["output"]
    assert code == 0, output[-3000:]
    ran = {name[:2] for name in chain["folders"]}
    assert ran == {nb.stem[:2] for nb in PROFILED}
    assert ran == set(reproduce.PROFILE_NOTEBOOKS)  # 03-07 all take a profile
    for prefix in ran:
        metrics = metrics_of(chain, prefix)
        assert metrics["profile"] == PROFILE_NAME, prefix
        assert metrics["real_weights"] is False, prefix


def test_the_committed_results_keep_their_bytes(chain):
    assert chain["before"] and chain["after"] == chain["before"]  # nothing changed, nothing added


def profiled(chain, prefix, notebook_results):
    """(metrics on the profile, metrics of the default scenario) of one notebook."""
    return metrics_of(chain, prefix), notebook_results(prefix)[0]


def on_profile(chain, name="paper"):
    return scenario.load_scenario(name, profile=chain["profile"], allow_random_weights=True)


def measured(chain) -> set[str]:
    return set(yaml.safe_load(chain["profile"].read_text(encoding="utf-8"))["overrides"])


def broken(sc) -> dict[str, float]:
    """The premise checks ``sc`` breaks, each with its shortfall (NaN: not evaluable)."""
    margins = scenario.premise_margins(sc)
    return {" ".join(k): -r["slack"] for k, r in margins[~margins["holds"]].iterrows()}


def test_notebook_03_changes_what_the_profile_measured(chain, notebook_results):
    ours, default = profiled(chain, "03", notebook_results)
    sc = on_profile(chain)
    assert ours["scenario_label"] == sc.label and "random weights" in sc.label
    steps = {m.name: ours["level_steps"] if len(m.steps) > 1 else m.steps[0] for m in sc.models}
    seconds = {m.name: float(m.image_seconds(steps[m.name])) for m in sc.models}
    assert ours["seconds_per_image"] == pytest.approx(seconds)
    for m in sc.models:  # a model's seconds change where the sweep measured them, else stay
        keys = {f"models.{m.name}.step_seconds", f"models.{m.name}.fixed_seconds"}
        same = ours["seconds_per_image"][m.name] == default["seconds_per_image"][m.name]
        assert same == (not keys & measured(chain)), m.name
    assert {"groups.Basic.mu", "groups.Detail.mu"} <= measured(chain)  # so every policy changes
    assert all(
        ours["mean_utility"][p] != default["mean_utility"][p] for p in default["mean_utility"]
    )
    assert ours["level_share"] != default["level_share"]
    # the premises its measurements break, each by how much; the shipped scenario breaks none
    assert ours["premises_broken"] == pytest.approx(broken(sc), nan_ok=True)
    assert ours["premises_broken"] and not ours["premises_hold"]
    assert default["premises_broken"] == {} and default["premises_hold"]
    assert default["profile"] is None and default["scenario_label"] == "paper"


def test_notebook_04_changes_the_allocation_but_not_the_step_set(chain, notebook_results):
    ours, default = profiled(chain, "04", notebook_results)
    assert ours["one_slot"]["combinations"] == default["one_slot"]["combinations"] == 81
    assert ours["mean_utility"]["annealing"] != default["mean_utility"]["annealing"]
    assert ours["premises_broken"] == pytest.approx(broken(on_profile(chain)), nan_ok=True)


def test_notebook_05_keeps_its_random_problems_and_changes_its_scenario_runs(
    chain, notebook_results
):
    ours, default = profiled(chain, "05", notebook_results)
    for key in ("annealer_gap_pct", "dual_annealing_gap_pct", "scaling_gap", "bound_by_hand"):
        assert ours[key] == default[key], key  # random problems: no scenario, no profile
    for key in ("slot_gap_pct", "sensitivity", "rho_sweep", "direct_mean_utility"):
        assert ours[key] != default[key], key


def test_notebook_06_keeps_the_papers_numbers_and_draws_only_what_the_premises_allow(
    chain, notebook_results
):
    ours, default = profiled(chain, "06", notebook_results)
    assert ours["annealing_bounds_paper"] == default["annealing_bounds_paper"]
    assert ours["hand_judged"] != default["hand_judged"]
    scenarios = {name: on_profile(chain, name) for name in ours["scenarios"]}
    assert ours["scenario_labels"] == {name: s.label for name, s in scenarios.items()}
    for name, sc in scenarios.items():
        assert ours["premises_broken"][name] == pytest.approx(broken(sc), nan_ok=True), name
    # the plausible scenarios keep the latencies: where those break P1's time check, none is drawn
    if "P1 time" in ours["premises_broken"]["paper"]:
        assert ours["robustness"] is None
    else:
        assert ours["robustness"]["n"] == default["robustness"]["n"]


def test_notebook_07_runs_on_the_profile(chain, notebook_results):
    ours, default = profiled(chain, "07", notebook_results)
    assert ours["profile"] == PROFILE_NAME and ours != default


def test_the_pages_name_the_profile_and_its_random_weights(chain):
    pages = {p.name: p.read_text(encoding="utf-8") for p in chain["out"].glob("*.md")}
    assert {"paper_vs_ours.md", "interpretations.md"} <= set(pages)
    for name in ("paper_vs_ours.md", "interpretations.md"):
        head = pages[name][:2000]
        assert f'profile "{PROFILE_NAME}"' in head and "fitted on random weights" in head, name
        assert "`python -m aigc_lib.reproduce --profile`" in head
    assert pages["paper_vs_ours.md"].startswith(
        f"# The paper's claims beside ours (profile {PROFILE_NAME})"
    )
    label = scenario.load_scenario(profile=chain["profile"], allow_random_weights=True).label
    table = claims.read_numbers(chain["folders"]["06_what_the_papers_numbers_need"] / "claims.csv")
    assert label in set(table["scenario"])


# ---------------------------------------------------------------- the pages' notes, small folders


def put(root: Path, notebook: str, frame: pd.DataFrame, metrics: dict) -> None:
    (root / notebook).mkdir(parents=True, exist_ok=True)
    claims.write_numbers(frame, root / notebook)
    (root / notebook / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")


def halves(scenario_column: str, metrics03: dict, metrics06: dict, root: Path) -> None:
    """Notebook 03's assignment numbers and notebook 06's numbers (the tables read 06's), in ``root``."""
    frame = numbers().assign(scenario=scenario_column)
    put(root, paper_vs_ours.NB03, frame[frame["part"].isin(["assignment", "meta"])], metrics03)
    put(root, paper_vs_ours.NB06, frame, metrics06)


def page(root: Path) -> str:
    paper_vs_ours.write(root)
    return (root / "paper_vs_ours.md").read_text(encoding="utf-8")


def test_the_default_page_names_the_scenario_it_read(tmp_path):
    plain = {"scenario": "paper", "profile": None, "real_weights": True}
    halves("paper", plain, plain, tmp_path)
    text = page(tmp_path)
    assert text.startswith("# The paper's claims beside ours\n")
    assert "Generated by `make reproduce` from notebook 06's numbers" in text
    assert '(notebook 03 runs the same workload): scenario "paper"' in text
    assert "profile" not in text.split("\n\n")[1]


def test_a_profiled_page_names_the_profile_and_a_real_one_has_no_caveat(tmp_path):
    real = {"scenario": "published", "profile": "latency_h200", "real_weights": True}
    halves("published + profile latency_h200", real, real, tmp_path)
    text = page(tmp_path)
    assert text.startswith("# The paper's claims beside ours (profile latency_h200)")
    assert 'scenario "published" (`data/scenarios/published.yaml`' in text
    assert 'with the profile "latency_h200" of measurements' in text
    assert "random weights" not in text and "assumed step slopes" not in text


def test_notebooks_run_on_different_sources_are_named_one_by_one(tmp_path):
    halves(
        "paper",
        {"scenario": "paper", "profile": "mine", "real_weights": False},
        {"scenario": "paper", "profile": None, "real_weights": True},
        tmp_path,
    )
    text = page(tmp_path)
    assert "**different sources per notebook** (notebook 03: paper with the profile mine;" in text
    assert "notebook 06: paper (no profile)" in text and "fitted on random weights" in text
    assert paper_vs_ours.sources(tmp_path)[paper_vs_ours.NB03] == {
        "scenarios": ["paper"],
        "profile": "mine",
        "real_weights": False,
    }


def test_metrics_from_before_profiles_read_as_no_profile(tmp_path):
    halves("paper", {}, {}, tmp_path)
    assert paper_vs_ours.sources(tmp_path)[paper_vs_ours.NB06] == {
        "scenarios": ["paper"],
        "profile": None,
        "real_weights": True,
    }
    text = page(tmp_path)
    assert 'scenario "paper"' in text and "profile" not in text.split("\n\n")[1]
