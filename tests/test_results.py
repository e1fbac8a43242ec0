"""Staged results (aigc_lib.results): inside a notebook run, nothing reaches a results folder
before the notebook's last call, write_metrics, publishes it."""

import json
import os
import shutil
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from aigc_lib import fit, results, sweep  # noqa: E402


def snapshot(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


@pytest.fixture
def staging(monkeypatch):
    """Staging on, as inside a Jupyter kernel; no staging folder left over from another test."""
    monkeypatch.setenv(results.STAGING_ENV, "1")
    monkeypatch.setattr(results, "_stages", {})
    yield
    for stage in results._stages.values():  # staged but never published: remove
        shutil.rmtree(stage, ignore_errors=True)


@pytest.fixture
def published(tmp_path):
    """A results folder as a finished run leaves it."""
    folder = tmp_path / "04_demo"
    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "trace.png").write_bytes(b"old figure")
    (folder / "metrics.json").write_text('{"old": true}\n')
    return folder


def figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    return fig


@pytest.mark.parametrize("name", ["", "sub/trace", "trace.png"])
def test_a_figure_name_that_is_not_a_bare_file_name_is_refused_before_anything_is_written(
    staging, published, name
):
    before = snapshot(published)
    with pytest.raises(ValueError, match="name: expected a bare file name"):
        results.figure_path(name, published)
    with pytest.raises(ValueError, match="name: expected a bare file name"):
        results.save_fig(figure(), name, published)
    assert snapshot(published) == before and results._stages == {}


def test_figures_wait_for_write_metrics(staging, published):
    before = snapshot(published)
    path = results.save_fig(figure(), "trace", published)
    results.save_fig(figure(), "new", published)
    assert path == published / "figures" / "trace.png"  # where it will be, not the staging folder
    assert path == results.figure_path("trace", published)
    assert isinstance(path, results.WrittenPath)  # no repr under a notebook's cell
    assert path.read_bytes() == b"old figure"  # staged, not yet published
    assert snapshot(published) == before
    stage = results._stages[published]
    assert stage.parent == published.parent  # beside the results folder, not in the system's tmp
    assert stage.name.startswith(f".{published.name}.staged-{os.getpid()}-")
    assert sorted(p.name for p in (stage / "figures").iterdir()) == ["new.png", "trace.png"]
    results.write_metrics({"n": 1}, published)
    assert json.loads((published / "metrics.json").read_text()) == {"n": 1}
    assert (published / "figures" / "trace.png").read_bytes().startswith(b"\x89PNG")
    assert (published / "figures" / "new.png").is_file()
    assert not stage.exists() and published not in results._stages


def test_a_fresh_results_folder_appears_only_when_published(staging, tmp_path):
    folder = tmp_path / "results" / "05_demo"
    results.save_fig(figure(), "f", folder)
    assert not folder.exists()
    results.write_metrics({"n": 2}, folder)
    assert sorted(snapshot(folder)) == ["figures/f.png", "metrics.json"]


def test_profile_is_staged_and_readable_where_it_was_written(staging, published):
    written = fit.write_profile(published / "profile.yaml", noise_sd=1.5, source_note="test")
    text = written.read_text()  # the notebook reads it back before its last cell
    assert written != published / "profile.yaml" and "noise_sd" in text
    assert not (published / "profile.yaml").exists()
    results.write_metrics({}, published)
    assert (published / "profile.yaml").read_text() == text


def test_a_sweep_continues_from_the_published_rows_and_is_published_last(staging, published):
    prompts = pd.DataFrame(
        {"prompt_id": [1, 2], "prompt": ["a cat", "a dog"], "group": ["Basic"] * 2}
    )
    out = published / "sweep_demo"

    def cannot_load(name):
        raise RuntimeError("no weights here")

    backend = sweep.Backend(
        cannot_load, lambda image, prompt: 0.0, "cpu", "demo", "none", False, 32
    )
    with pytest.MonkeyPatch.context() as m:  # first the published rows, written in place
        m.setenv(results.STAGING_ENV, "0")
        sweep.run_sweep(prompts.iloc[:1], out, ["sd15"], [1], backend=backend, progress=False)
    before = snapshot(published)
    rows = sweep.run_sweep(prompts, out, ["sd15"], [1], backend=backend, progress=False)
    assert len(rows) == 2  # the published row was found in the staged copy: only prompt 2 ran
    assert snapshot(published) == before
    results.write_metrics({"n_rows": 2}, published)
    assert len(sweep.read_rows(out / "rows-000.jsonl")) == 2
    assert len(pd.read_csv(out / sweep.MERGED_NAME)) == 2


def test_paths_outside_any_results_folder_are_written_in_place(staging, tmp_path):
    assert results.staged_path(tmp_path / "elsewhere" / "x.csv") == tmp_path / "elsewhere" / "x.csv"


def test_staging_is_off_outside_a_kernel_and_can_be_forced(monkeypatch, published):
    monkeypatch.delenv(results.STAGING_ENV, raising=False)
    assert not results.staging_active()  # the tests are no Jupyter kernel
    results.save_fig(figure(), "trace", published)
    assert (published / "figures" / "trace.png").read_bytes().startswith(b"\x89PNG")
    monkeypatch.setenv(results.STAGING_ENV, "yes")
    with pytest.raises(ValueError, match="AIGC_STAGE_RESULTS: expected 0 or 1"):
        results.staging_active()


def test_staged_path_must_lie_in_the_results_dir(staging, tmp_path):
    with pytest.raises(ValueError, match="is not inside results_dir"):
        results.staged_path(tmp_path / "a" / "x.png", tmp_path / "b")


def test_a_relative_results_dir_is_read_from_the_notebooks_folder(tmp_path, monkeypatch):
    """A cell copied into a notebook elsewhere writes where the original did."""
    from aigc_lib import results

    monkeypatch.chdir(tmp_path)
    assert (
        results.results_folder("../results/03_x")
        == results.NOTEBOOKS_DIR.parent / "results" / "03_x"
    )
    assert results.results_folder(tmp_path / "r") == tmp_path / "r"


def test_a_new_run_removes_the_staging_folder_a_killed_run_left(staging, published):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    left = published.parent / f".{published.name}.staged-{int(ended.stdout)}-ab12"
    other = published.parent / f".05_other.staged-{int(ended.stdout)}-cd34"  # another folder's
    (left / "figures").mkdir(parents=True)
    other.mkdir()
    results.save_fig(figure(), "trace", published)
    assert not left.exists() and other.is_dir()


def test_metrics_are_written_with_12_significant_digits(tmp_path):
    import numpy as np

    path = results.write_metrics({"third": 0.1 + 0.2, "shares": np.array([1 / 3, 2 / 3])}, tmp_path)
    assert path == tmp_path / "metrics.json" and isinstance(path, results.WrittenPath)
    assert json.loads(path.read_text()) == {
        "third": 0.3,
        "shares": [0.333333333333, 0.666666666667],
    }


def test_explore_with_sliders_returns_nothing_to_show(monkeypatch):
    """No ``<function ...>`` repr under the sliders; without sliders the plot's value is shown."""
    import ipywidgets

    calls = []
    monkeypatch.setattr(
        ipywidgets, "interact", lambda plot, **controls: calls.append(controls) or plot
    )
    assert results.explore(lambda x: x * 2, True, x=(0.0, 1.0, 0.1, 0.5)) is None
    assert list(calls[0]) == ["x"] and calls[0]["x"].value == 0.5
    assert results.explore(lambda x: x * 2, False, x=(0.0, 1.0, 0.1, 0.5)) == 1.0
