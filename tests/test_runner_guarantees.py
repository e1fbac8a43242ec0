"""Issue 20's probes of the runner (aigc_lib.reproduce), and issue 21's ``--profile``: results land
in this checkout only, ``--resume`` sees every input, parameters are checked before any kernel
starts, one run at a time per results folder, an unwritable results folder gives one line, a
rerun that changes nothing writes the same bytes, and a profile's runs go to a folder of their
own."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from aigc_lib import _io, fit, paper_vs_ours, peers, reproduce, results
from test_reproduce import KERNEL, demo_notebook, tree

ROOT = reproduce.ROOT
SMALL_PARAMS = Path(__file__).with_name("notebook_params.yaml")
NB01 = "01_prompts_and_clipscore_distributions"


@pytest.fixture
def never_run(monkeypatch):
    def run_notebook(*args, **kwargs):
        raise AssertionError("a notebook ran")

    monkeypatch.setattr(reproduce, "run_notebook", run_notebook)


@pytest.fixture
def no_tables(monkeypatch):
    """The tables ``main`` writes last, recorded instead of written: ``[(table, results root)]``."""
    written = []
    monkeypatch.setattr(paper_vs_ours, "write", lambda root: written.append(("pvo", root)) or [])
    monkeypatch.setattr(peers, "write_table", lambda root: written.append(("peers", root)) or [])
    return written


def one_line(text):
    text = text.strip()
    assert len(text.splitlines()) == 1, text
    return text


# ---------------------------------------------------------------- 1. this checkout only


def fake_checkout(tmp_path, copy_library=False):
    """Another checkout of the project: ``aigc_lib`` (a copy, or an empty package) and
    ``notebooks/99_demo.ipynb``."""
    other = tmp_path / "other"
    if copy_library:
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / "aigc_lib", other / "aigc_lib", ignore=ignore)
    else:
        (other / "aigc_lib").mkdir(parents=True)
        (other / "aigc_lib" / "__init__.py").write_text("")
    demo_notebook(other / "notebooks")
    return other


def hidden_and_visible(folder):
    return sorted(p.name for p in folder.iterdir())


def test_an_environment_installed_from_another_checkout_is_refused_in_one_line(tmp_path):
    """Finding 1: in checkout B, ``python -m aigc_lib.reproduce`` with an environment whose
    editable install is checkout A ran A's code in the kernel and wrote into A's results/."""
    other = fake_checkout(tmp_path, copy_library=True)
    before = hidden_and_visible(ROOT / "results")
    done = subprocess.run(
        [sys.executable, "-m", "aigc_lib.reproduce", "--only", "99"],
        cwd=other,  # python -m imports this checkout's copy; a kernel imports the installed one
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    err = one_line(done.stderr)
    assert err.startswith("error: checkout: ") and str(ROOT) in err and str(other) in err
    assert not (other / "results").exists()
    assert hidden_and_visible(ROOT / "results") == before  # nothing written into this checkout


def test_run_notebook_refuses_the_notebook_of_another_checkout(tmp_path):
    other = fake_checkout(tmp_path)
    with pytest.raises(reproduce.CheckoutError, match=re.escape(f"notebooks are in {other}")):
        reproduce.run_notebook(other / "notebooks" / "99_demo.ipynb", tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_relative_results_dir_is_never_read_from_another_checkout(tmp_path, monkeypatch):
    other = fake_checkout(tmp_path)
    monkeypatch.chdir(other / "notebooks")  # a kernel of checkout B, aigc_lib of checkout A
    message = f"runs in the checkout {other}, but aigc_lib is imported from {ROOT}"
    with pytest.raises(ValueError, match=re.escape(message)):
        results.results_folder("../results/03_x")
    with pytest.raises(ValueError, match="results_dir: "):
        results.write_metrics({"n": 1}, "../results/03_x")
    assert not (other / "results").exists() and not (ROOT / "results" / "03_x").exists()
    monkeypatch.chdir(ROOT / "notebooks")  # this checkout
    assert results.results_folder("../results/03_x") == ROOT / "results" / "03_x"


# ---------------------------------------------------------------- 2. --resume sees every input


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """A checkout-like project with an executed copy and the record of its inputs, as
    ``run_notebook`` leaves them: ``(project, notebook, results root, parameters)``."""
    project = tmp_path / "project"
    files = {
        "aigc_lib/__init__.py": "",
        "aigc_lib/allocation.py": "COOLING = 0.95\n",
        "data/scenarios/paper.yaml": "lambda: 0.2\n",
        "data/flops.csv": "model,tflop\nsd15,1.0\n",
        "data/cache/unrelated.bin": "not read by any notebook",
        "requirements.lock": "numpy==2.0.0\n",
        "my_gpu.yaml": "overrides: {}\n",
    }
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    partiprompts = tmp_path / "PartiPrompts.tsv"
    partiprompts.write_text("Prompt\tCategory\tChallenge\n")
    monkeypatch.setenv("PARTIPROMPTS_PATH", str(partiprompts))
    notebook = demo_notebook(project / "notebooks", extra_parameters="\nprofile = None")
    parameters = {"interactive": False, "seed": 1, "profile": "../my_gpu.yaml"}
    root = tmp_path / "results"
    (root / notebook.stem).mkdir(parents=True)
    (root / notebook.stem / notebook.name).write_text("{}")
    record = {"inputs": reproduce.run_inputs(notebook, parameters)}
    _io.write_json(root / notebook.stem / reproduce.INPUTS_NAME, record)
    return project, notebook, root, parameters


def edit(path, old, new):
    path.write_text(path.read_text().replace(old, new))


EDITS = {
    "notebook": lambda p: edit(p / "notebooks" / "99_demo.ipynb", "seed = 0", "seed = 0  # x"),
    "aigc_lib/allocation.py": lambda p: edit(p / "aigc_lib" / "allocation.py", "0.95", "0.9"),
    "aigc_lib/new.py": lambda p: (p / "aigc_lib" / "new.py").write_text("X = 1\n"),
    "data/scenarios/paper.yaml": lambda p: edit(p / "data/scenarios/paper.yaml", "0.2", "0.5"),
    "data/flops.csv": lambda p: edit(p / "data" / "flops.csv", "1.0", "2.0"),
    "requirements.lock": lambda p: edit(p / "requirements.lock", "2.0.0", "2.1.0"),
    "PartiPrompts.tsv": lambda p: edit(p.parent / "PartiPrompts.tsv", "Prompt", "prompt"),
    "parameter profile: my_gpu.yaml": lambda p: edit(p / "my_gpu.yaml", "{}", "{a: 1}"),
}


@pytest.mark.parametrize("changed", sorted(EDITS))
def test_resume_reruns_a_notebook_when_anything_it_reads_changed(recorded, changed):
    """Finding 2: --resume said "up to date" after data/scenarios/paper.yaml changed."""
    project, notebook, root, parameters = recorded
    assert reproduce.stale_inputs(notebook, root, parameters) is None
    (project / "data" / "cache" / "unrelated.bin").write_text("changed, but never read")
    assert reproduce.stale_inputs(notebook, root, parameters) is None
    EDITS[changed](project)
    assert reproduce.stale_inputs(notebook, root, parameters) == f"changed: {changed}"


def test_resume_reruns_a_notebook_whose_parameters_changed(recorded):
    _, notebook, root, parameters = recorded
    assert (
        reproduce.stale_inputs(notebook, root, {**parameters, "seed": 2}) == "changed: parameters"
    )
    (root / notebook.stem / reproduce.INPUTS_NAME).unlink()
    assert "no record" in reproduce.stale_inputs(notebook, root, parameters)


def test_resume_skips_an_unchanged_notebook_and_reruns_one_with_other_parameters(
    notebook_results, monkeypatch, capsys, no_tables
):
    """Finding 2: --resume ignored --params. Here against a real run of notebook 01."""
    _, folder = notebook_results("01")
    ran = []
    monkeypatch.setattr(
        reproduce, "run_notebook", lambda nb, root, params, *a, **k: ran.append((nb.stem, params))
    )
    command = ["--only", "01", "--resume", "--params", str(SMALL_PARAMS)]
    command += ["--results-dir", str(folder.parent)]
    assert reproduce.main(command) == 0
    assert ran == [] and f"[skip] {NB01}: its inputs did not change" in capsys.readouterr().out
    assert reproduce.main([*command, "-p", "seed", "2"]) == 0
    assert ran == [(NB01, {"seed": 2})]
    assert f"[run ] {NB01} (changed: parameters)" in capsys.readouterr().out


# ---------------------------------------------------------------- 3. parameters first


@pytest.mark.parametrize(
    "only, parameter, match",
    [
        ("04", ["n_slots", "abc"], r"n_slots: expected an int like its default \d+, got 'abc'"),
        ("01", ["seed", "abc"], r"seed: expected an int like its default 0, got 'abc'"),
        ("01", ["seed", "-1"], r"seed: expected int >= 0, got -1"),
        ("01", ["sweep_path", "missing.csv"], r"sweep_path: .* got 'missing.csv' \(no such file\)"),
        (
            "02",
            ["steps", "[1, 0]"],
            r"steps: expected list of int >= 1, got \[1, 0\] \(item 1: 0\)",
        ),
        ("02", ["steps", "10"], r"steps: expected a list like its default \[1, 2, 4, 8\], got 10"),
        ("02", ["device", "gpu"], r"device: expected str matching auto\|cpu\|cuda"),
        ("02", ["models", "[sd15, sd15]"], r"models: expected distinct list of .* \(repeated"),
    ],
    ids=[
        "int-abc",
        "seed-abc",
        "seed-negative",
        "missing-file",
        "step-0",
        "list",
        "device",
        "twice",
    ],
)
def test_a_bad_value_is_refused_in_one_line_before_any_kernel_starts(
    tmp_path, capsys, never_run, only, parameter, match
):
    """Finding 3: -p n_slots abc failed after 11-22 s, seed abc with numpy's TypeError."""
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--only", only, "-p", *parameter, "--results-dir", str(tmp_path / "r")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("python -m aigc_lib.reproduce: error: parameters: ") and re.search(
        match, err
    ), err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "only, parameter, value",
    [
        ("04", "scenario_name", "papr"),
        ("03", "other_scenario", "publishd"),
        ("06", "scenario_names", "[paper, nope]"),
    ],
)
def test_an_unknown_scenario_is_refused_naming_the_parameter_before_any_kernel_starts(
    tmp_path, capsys, never_run, only, parameter, value
):
    """Issue 29: it failed inside the kernel after 9 to 27 s, naming ``name:``."""
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--only", only, "-p", parameter, value, "--results-dir", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(rf"parameters: {only}_\w+: {parameter}: '\w+' is neither a scenario", err)
    assert "['paper', 'published']" in err


def test_a_scenario_file_is_a_scenario(tmp_path):
    (notebook,) = reproduce.find_notebooks(["04"])
    shipped = str(ROOT / "data" / "scenarios" / "published.yaml")
    reproduce.check_parameters(notebook, {"scenario_name": shipped, "other_scenario": "paper"})


def test_a_list_given_as_a_string_says_how_to_pass_it(tmp_path):
    notebook = reproduce.find_notebooks(["02"])[0]
    with pytest.raises(ValueError, match=r"a string; give lists as YAML"):
        reproduce.check_parameters(notebook, {"steps": "[10, 14]"})


@pytest.mark.parametrize(
    "prefix, bad, match",
    [
        ("01", {"seed": "abc"}, r"^seed: expected int >= 0, got 'abc'$"),
        (
            "02",
            {"steps": "[10, 14]"},
            r"^steps: expected list of int >= 1, got '\[10, 14\]' \(a string",
        ),
    ],
)
def test_the_notebook_itself_refuses_a_bad_parameter_right_after_its_parameters(prefix, bad, match):
    """Run directly with papermill or in JupyterLab (no runner), the cell after the parameters
    cell stops the notebook with one line naming the parameter."""
    (notebook,) = reproduce.find_notebooks([prefix])
    code = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    at = next(i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", []))
    check = "".join(code[at + 1]["source"])
    values = reproduce.parameter_defaults(notebook)
    exec(check, dict(values))  # the defaults pass
    with pytest.raises(ValueError, match=match):
        exec(check, {**values, **bad})


# ---------------------------------------------------------------- 4. one run at a time


def test_a_second_run_on_a_busy_results_folder_is_refused_with_one_line(
    tmp_path, capsys, never_run
):
    """Finding 4: two runs swapping the same folder raced; the loser said "unchanged"."""
    root = tmp_path / "r"
    code = (
        "import sys, time\nfrom aigc_lib._io import folder_lock\n"
        "with folder_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert reproduce.main(["--only", "01", "--results-dir", str(root)]) == 1
        err = one_line(capsys.readouterr().err)
        assert err.startswith(
            f"error: {root.resolve()} is in use by another run (pid {holder.pid})"
        )
        with pytest.raises(_io.FolderBusy):
            with _io.folder_lock(root):
                pass
    finally:
        holder.kill()  # SIGKILL: the system releases its lock
        holder.wait()
    with _io.folder_lock(root):  # free again, and re-entrant within a process
        with _io.folder_lock(root):
            pass
    assert sorted(p.name for p in root.iterdir()) == [".aigc.lock"]


# ---------------------------------------------------------------- 5. an unwritable results folder


@pytest.fixture(params=["read-only", "file-in-the-way"])
def unwritable(request, tmp_path):
    if request.param == "file-in-the-way":
        (tmp_path / "file").write_text("x")
        yield tmp_path / "file" / "results"
    elif os.geteuid() != 0:
        folder = tmp_path / "results"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    else:  # root may write anywhere, except in a read-only file system such as /sys
        path = Path("/sys/aigc-results")
        try:
            path.mkdir()
        except OSError:
            yield path
        else:
            path.rmdir()
            pytest.skip("no read-only place to try as root")


def test_an_unwritable_results_folder_gives_one_line(unwritable, capsys, never_run):
    """Finding 5: a read-only results/ gave a raw OSError traceback."""
    assert reproduce.main(["--only", "01", "--results-dir", str(unwritable)]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: results-dir: cannot write "), err


# ---------------------------------------------------------------- 7. the same bytes


def files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_rerun_that_changes_nothing_writes_the_same_bytes(notebook_results):
    """Finding 7: a make reproduce that changed no number left a dirty tree."""
    _, folder = notebook_results("01")
    before = files(folder)
    assert {"metrics.json", f"{NB01}.ipynb", reproduce.INPUTS_NAME} <= set(before)
    (notebook,) = reproduce.find_notebooks(["01"])
    params = reproduce.load_parameters(SMALL_PARAMS)
    reproduce.run_notebook(notebook, folder.parent, params[NB01], progress=False)
    assert files(folder) == before


# ---------------------------------------------------------------- issue 21: --profile


def profile_notebook(folder, name, takes_profile=True):
    nb = nbformat.v4.new_notebook(metadata=KERNEL)
    params = "results_dir = '.'\ninteractive = True\nseed = 0"
    if takes_profile:
        params += "\nprofile = None\nallow_random_weights = False"
    code = (
        "from aigc_lib import results, scenario\n"
        "sc = scenario.load_scenario(profile=profile, allow_random_weights=allow_random_weights)\n"
        "results.write_metrics({'profile': profile, 'models': len(sc.models)}, results_dir)"
    )
    if not takes_profile:
        code = "from aigc_lib import results\nresults.write_metrics({'seed': seed}, results_dir)"
    nb.cells = [
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture
def profile_setup(tmp_path, monkeypatch):
    """Notebooks 03 (takes a profile) and 04 (does not) in a folder of their own, committed
    results beside them, and two profiles: measured, and fitted on random weights."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    profile_notebook(notebooks, "03_evaluate")
    profile_notebook(notebooks, "04_plain", takes_profile=False)
    committed = tmp_path / "results"
    (committed / "03_evaluate").mkdir(parents=True)
    (committed / "03_evaluate" / "metrics.json").write_text('{"profile": null}\n')
    (committed / "paper_vs_ours.md").write_text("the committed table\n")
    monkeypatch.setattr(reproduce, "NOTEBOOKS_DIR", notebooks)
    monkeypatch.setattr(reproduce, "RESULTS_DIR", committed)
    measured = fit.write_profile(tmp_path / "my_gpu.yaml", noise_sd=1.5, source_note="test")
    tiny = fit.write_profile(
        tmp_path / "tiny.yaml", noise_sd=1.5, source_note="test", real_weights=False
    )
    return committed, measured, tiny


def test_a_profile_runs_into_a_results_folder_of_its_own(profile_setup, no_tables, capsys):
    committed, measured, _ = profile_setup
    before = tree(committed)
    assert reproduce.main(["--profile", str(measured), "--only", "03"]) == 0
    own = committed / "profiles" / "my_gpu"
    metrics = json.loads((own / "03_evaluate" / "metrics.json").read_text())
    assert metrics == {"profile": str(measured), "models": 3}  # the kernel loaded the profile
    after = {k: v for k, v in tree(committed).items() if not k.startswith("profiles")}
    assert after == before  # the committed results, byte for byte
    assert no_tables == [("pvo", own.resolve()), ("peers", own.resolve())]


def test_a_profile_run_refuses_a_notebook_without_the_parameter(profile_setup, capsys, never_run):
    committed, measured, _ = profile_setup
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--profile", str(measured)])  # 03 and 04 by default
    assert exit_.value.code == 2
    assert "profile: 04_plain has no parameter 'profile'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(
            ["--profile", str(measured), "--only", "03", "--results-dir", str(committed)]
        )
    assert "never go over the committed results" in capsys.readouterr().err
    assert not (committed / "profiles").exists()


def test_a_random_weight_profile_is_refused_unless_asked_for(
    profile_setup, capsys, monkeypatch, no_tables
):
    _, _, tiny = profile_setup
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", str(tiny), "--only", "03"])
    err = one_line(capsys.readouterr().err.splitlines()[-1])
    assert "real_weights: false" in err and "add --allow-random-weights" in err
    ran = []
    monkeypatch.setattr(reproduce, "run_notebook", lambda nb, root, p, *a, **k: ran.append(p))
    assert reproduce.main(["--profile", str(tiny), "--only", "03", "--allow-random-weights"]) == 0
    assert ran == [{"profile": str(tiny), "allow_random_weights": True}]


def test_a_failed_notebook_is_one_line_saying_where_its_output_is(
    tmp_path, monkeypatch, capsys, no_tables
):
    def fails(notebook, root, parameters, *args, **kwargs):
        err = papermill.PapermillExecutionError(
            3, 3, "validate.parameters(...)", "ValueError", "n_slots: expected int >= 1, got 0", []
        )
        err.add_note(f"{notebook.stem} failed: its results are unchanged; partial output in X")
        raise err

    monkeypatch.setattr(reproduce, "run_notebook", fails)
    assert reproduce.main(["--only", "01", "--results-dir", str(tmp_path / "r")]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: ValueError: n_slots: expected int >= 1, got 0 (01_")
    assert err.endswith("partial output in X)") and no_tables == []


# ---------------------------------------------------------------- issue 29: Ctrl-C, elapsed time

RUN_DEMO = """
import signal, sys
from pathlib import Path
from aigc_lib import reproduce
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even from a '&' job
reproduce.NOTEBOOKS_DIR = Path(sys.argv[1])
sys.exit(reproduce.main(["--results-dir", *sys.argv[2:]]))
"""


def start_demo_runner(notebooks, results, *args):
    """``reproduce.main`` on the demo notebooks in a process group of its own (:data:`RUN_DEMO`)."""
    return subprocess.Popen(
        [sys.executable, "-c", RUN_DEMO, str(notebooks), str(results), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def ctrl_c_once_started(run, markers):
    """Once every marker file exists (the kernels run their first cell), Ctrl-C as a terminal
    sends it, to the whole process group; the runner's stderr, after it exited with 130."""
    import signal
    import time

    deadline = time.monotonic() + 60
    while not all(marker.exists() for marker in markers):
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.2)
    time.sleep(1)
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    return err


def test_ctrl_c_stops_the_runner_with_one_line_and_leaves_results_as_they_were(tmp_path):
    """Issue 29: Ctrl-C printed a 70-line traceback. A terminal sends SIGINT to the whole
    foreground process group: the runner and its kernel."""
    notebooks = tmp_path / "notebooks"
    started = "import pathlib, time\npathlib.Path('started').touch()\ntime.sleep(120)"
    demo_notebook(notebooks, extra_parameters="\n" + started)
    before = tree(tmp_path / "results") if (tmp_path / "results").exists() else {}
    run = start_demo_runner(notebooks, tmp_path / "results")
    assert run.stdout.readline().startswith("PartiPrompts: ")
    assert run.stdout.readline().startswith("[run ] 99_demo")
    line = one_line(ctrl_c_once_started(run, [notebooks / "started"]))
    assert line.startswith("interrupted (Ctrl-C): 99_demo failed: ") and "unchanged" in line
    visible = {k: v for k, v in tree(tmp_path / "results").items() if not k.startswith(".")}
    assert visible == before


def test_each_notebook_run_prints_its_time_and_no_kernel_warning(tmp_path, capfd, no_tables):
    """Issue 29: each run says how long it took; the kernel's warning about its local TCP
    connection ("running over TCP without encryption") is not shown."""
    notebooks = tmp_path / "notebooks"
    demo_notebook(notebooks)
    reproduce.NOTEBOOKS_DIR, saved = notebooks, reproduce.NOTEBOOKS_DIR
    try:
        assert reproduce.main(["--results-dir", str(tmp_path / "results")]) == 0
    finally:
        reproduce.NOTEBOOKS_DIR = saved
    out, err = capfd.readouterr()
    assert re.search(r"^\[done\] 99_demo in \d+\.\d s$", out, re.M), out
    assert "WARNING" not in err and "without encryption" not in err, err


# ---------------------------------------------------------------- issue 29: notebooks side by side

RENDEZVOUS = """
import pathlib, time
pathlib.Path('{me}.started').touch()
deadline = time.monotonic() + {wait}
while not pathlib.Path('{other}.started').exists():  # runs only if the other runs meanwhile
    assert time.monotonic() < deadline, 'ran alone'
    time.sleep(0.1)
"""


def side_by_side(notebooks, first, second, wait=60):
    """Two notebooks that each wait (up to ``wait`` seconds) for the other to start."""
    for me, other in ((first, second), (second, first)):
        demo_notebook(notebooks, me, "\n" + RENDEZVOUS.format(me=me, other=other, wait=wait))


@pytest.fixture
def demo_dir(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    monkeypatch.setattr(reproduce, "NOTEBOOKS_DIR", notebooks)
    return notebooks


def test_two_notebooks_run_side_by_side_under_the_runners_lock(
    demo_dir, tmp_path, capfd, no_tables
):
    side_by_side(demo_dir, "97_left", "98_right")
    results = tmp_path / "results"
    assert reproduce.main(["--results-dir", str(results), "--jobs", "2"]) == 0
    out, err = capfd.readouterr()
    for stem in ("97_left", "98_right"):
        assert f"[run ] {stem}" in out and re.search(rf"^\[done\] {stem} in \d+\.\d s$", out, re.M)
        assert (results / stem / f"{stem}.ipynb").is_file()
        assert (results / stem / "metrics.json").is_file()
    assert sorted(p.name for p in results.iterdir() if p.name.startswith(".")) == [".aigc.lock"]
    assert no_tables == [("pvo", results), ("peers", results)]


def test_one_at_a_time_when_asked(demo_dir, tmp_path, capfd, no_tables):
    side_by_side(demo_dir, "97_left", "98_right", wait=2)
    assert reproduce.main(["--results-dir", str(tmp_path / "r"), "--jobs", "1"]) == 1
    out, err = capfd.readouterr()  # err also holds the cells' progress bar, one notebook at a time
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert line.startswith("error: AssertionError: ran alone (97_left failed: ")
    assert "[run ] 97_left" in out and "98_right" not in out


def test_a_failure_side_by_side_is_one_line_and_starts_no_further_notebook(
    demo_dir, tmp_path, capfd, no_tables
):
    demo_notebook(demo_dir, "96_fails", "\nraise ValueError('broken on purpose')")
    demo_notebook(demo_dir, "97_runs", "\nimport time\ntime.sleep(3)")
    demo_notebook(demo_dir, "98_never")
    results = tmp_path / "results"
    assert reproduce.main(["--results-dir", str(results), "--jobs", "2"]) == 1
    out, err = capfd.readouterr()
    line = one_line(err)
    assert line.startswith("error: ValueError: broken on purpose (96_fails failed: ")
    assert "[done] 97_runs" in out and "98_never" not in out
    assert sorted(p.name for p in results.iterdir()) == [
        ".96_fails.failed",
        ".aigc.lock",
        "97_runs",
    ]
    assert no_tables == []


@pytest.mark.parametrize("jobs", ["0", "two", "1.5"])
def test_a_bad_jobs_value_is_refused_naming_the_flag(jobs, capsys, never_run):
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--only", "01", "--jobs", jobs])
    assert exit_.value.code == 2
    assert "--jobs: expected a whole number >= 1" in capsys.readouterr().err


def test_ctrl_c_stops_notebooks_side_by_side_with_one_line(tmp_path):
    """Both children are interrupted, and each one's note is in the one line."""
    notebooks = tmp_path / "notebooks"
    for stem in ("97_left", "98_right"):
        started = f"import pathlib, time\npathlib.Path('{stem}.started').touch()\ntime.sleep(120)"
        demo_notebook(notebooks, stem, "\n" + started)
    run = start_demo_runner(notebooks, tmp_path / "results", "--jobs", "2")
    markers = [notebooks / f"{stem}.started" for stem in ("97_left", "98_right")]
    line = one_line(ctrl_c_once_started(run, markers))
    assert line.startswith("interrupted (Ctrl-C): ")
    assert "97_left failed: " in line and "98_right failed: " in line and "unchanged" in line
    visible = [p.name for p in (tmp_path / "results").iterdir() if not p.name.startswith(".")]
    assert visible == []


def test_the_lock_lets_the_holders_children_in_and_no_one_else(tmp_path):
    root = tmp_path / "r"
    code = (
        "import sys\nfrom aigc_lib._io import folder_lock\nwith folder_lock(sys.argv[1]):\n    pass"
    )
    with _io.folder_lock(root):
        child = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True)
        assert child.returncode == 0, child.stderr
        grandchild = subprocess.run(
            [
                sys.executable,
                "-c",
                "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
            ]
            + [sys.executable, "-c", code, str(root)],
            capture_output=True,
            text=True,
        )
        assert grandchild.returncode == 1 and "FolderBusy" in grandchild.stderr
