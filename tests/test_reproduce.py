"""The notebook runner (aigc_lib.reproduce) and direct papermill runs: a failed run changes no
results folder, a successful one replaces it whole, parameters are checked before anything runs,
one run at a time per results folder, and what killed runs left is removed."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from aigc_lib import _io, reproduce, results

KERNEL = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
DEMO_CELLS = [
    "from pathlib import Path\nimport matplotlib\nmatplotlib.use('Agg')\n"
    "import matplotlib.pyplot as plt\nfrom aigc_lib import results",
    "fig, ax = plt.subplots(); ax.plot([0, seed])\nresults.save_fig(fig, 'trace', results_dir)\n"
    "Path(results.results_folder(results_dir), 'own.txt').write_text(f'seed {seed}')  # by itself",
    "if seed < 0:\n    raise ValueError(f'seed: expected >= 0, got {seed}')",
    # a progress bar (rates and times) and an absolute path, as notebooks show them
    "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), disable=False, mininterval=0):\n    pass\n"
    "results.results_folder(results_dir) / 'own.txt'",
    "results.write_metrics({'seed': seed, 'third': 0.1 + 0.2}, results_dir)",
]


def demo_notebook(folder, name="99_demo", extra_parameters=""):
    """A small notebook written like the real ones: a parameters cell, save_fig, write_metrics."""
    nb = nbformat.v4.new_notebook(metadata=KERNEL)
    params = "results_dir = '.'\ninteractive = True\nseed = 0" + extra_parameters
    nb.cells = [nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(code) for code in DEMO_CELLS]
    for index, cell in enumerate(nb.cells):
        cell.id = f"demo-{index}"
    path = folder / f"{name}.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def system_temporaries():
    """The project's folders in the system's temporary directory (there should be none)."""
    return {p.name for p in Path(tempfile.gettempdir()).glob("aigc-*")}


def dead_pid():
    """The id of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    return int(done.stdout)


def tree(folder):
    """Every file and folder under ``folder`` (hidden ones included): bytes and mode."""
    out = {}
    for p in sorted(folder.rglob("*")):
        content = p.read_bytes() if p.is_file() else None
        out[str(p.relative_to(folder))] = (content, p.stat().st_mode)
    return out


@pytest.fixture
def published(tmp_path):
    """``(notebook, results root)``: the demo notebook with a results folder from an earlier run,
    including a stale partly executed copy that an older runner left behind."""
    root = tmp_path / "results"
    folder = root / "99_demo"
    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "trace.png").write_bytes(b"old figure")
    (folder / "own.txt").write_text("old")
    (folder / "stale.txt").write_text("a file this run does not write")
    (folder / "figures" / "dropped.png").write_bytes(b"a figure this run does not draw")
    (folder / "sweep_tiny").mkdir()
    (folder / "sweep_tiny" / "rows-000.jsonl").write_text('{"done": 1}\n')
    (folder / "metrics.json").write_text('{"seed": 0}\n')
    (folder / ".99_demo.failed.ipynb").write_text("{}")
    return demo_notebook(tmp_path), root


@pytest.fixture
def litter(published):
    """What runs killed by SIGKILL left beside the results folder: a running copy, a swapped-out
    folder, a kernel's staging folder, and an earlier failure's partial output; plus the
    running folder of a process still alive (another run's: kept)."""
    _, root = published
    pid = dead_pid()
    dead = [f".99_demo.running-{pid}-ab12", f".99_demo.old-{pid}-cd34", f".99_demo.staged-{pid}-x"]
    dead += [".99_demo.running-k2j4_x9q", ".99_demo.old-0a1b2c3d"]  # earlier runners' names
    for name in dead + [".99_demo.failed"]:
        (root / name).mkdir()
        (root / name / "metrics.json").write_text("{}")
    alive = root / f".98_other.running-{os.getppid()}-ef56"
    alive.mkdir()
    return dead + [".99_demo.failed"], alive


@pytest.fixture
def normal_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def visible(folder):
    return {k: v for k, v in tree(folder).items() if not any(p[0] == "." for p in Path(k).parts)}


def test_a_failed_run_leaves_results_byte_identical_and_keeps_its_output_beside(published):
    notebook, root = published
    before, temporaries = visible(root), system_temporaries()
    with pytest.raises(papermill.PapermillExecutionError, match="seed: expected >= 0") as err:
        reproduce.run_notebook(notebook, root, {"seed": -1}, progress=False)
    assert visible(root) == before
    note = " ".join(getattr(err.value, "__notes__", []))
    assert f"{root / '99_demo'} is unchanged" in note
    failed = Path(note.rsplit(" in ", 1)[1])
    assert failed == root / ".99_demo.failed"  # beside the results, never in the system's tmp
    assert (failed / "own.txt").read_text() == "seed -1"  # the partial output
    assert "seed: expected >= 0" in (failed / "99_demo.failed.ipynb").read_text()
    assert sorted(p.name for p in root.iterdir()) == [".99_demo.failed", ".aigc.lock", "99_demo"]
    assert system_temporaries() <= temporaries


def test_a_successful_run_replaces_the_folder_and_removes_what_killed_runs_left(
    published, litter, normal_umask
):
    notebook, root = published
    dead, alive = litter
    executed = reproduce.run_notebook(notebook, root, {"seed": 3}, progress=False)
    folder = root / "99_demo"
    assert executed == folder / "99_demo.ipynb"
    assert not any((root / name).exists() for name in dead)  # litter of ended processes: gone
    assert alive.is_dir()  # a live process's folder is left alone
    assert sorted(p.name for p in root.iterdir()) == sorted(["99_demo", ".aigc.lock", alive.name])
    assert [p.name for p in folder.glob(".*")] == [".inputs.json"]  # stale .failed copy gone
    assert (folder / "own.txt").read_text() == "seed 3"
    # what the run did not write is gone, but a step sweep's rows are carried over to be reused
    assert not (folder / "stale.txt").exists() and not (folder / "figures" / "dropped.png").exists()
    assert (folder / "sweep_tiny" / "rows-000.jsonl").read_text() == '{"done": 1}\n'
    assert json.loads((folder / "metrics.json").read_text()) == {"seed": 3, "third": 0.3}
    assert (folder / "figures" / "trace.png").read_bytes().startswith(b"\x89PNG")
    text = executed.read_text()
    assert ".running" not in text
    recorded = json.loads(text)["metadata"]["papermill"]["parameters"]["results_dir"]
    assert recorded.endswith("/99_demo")
    for path in [folder, *folder.rglob("*")]:
        expected = 0o755 if path.is_dir() else 0o644
        assert oct(stat.S_IMODE(path.stat().st_mode)) == oct(expected), path


def test_the_executed_copy_holds_no_machine_path_timing_or_progress_bar(published):
    notebook, root = published
    executed = reproduce.run_notebook(notebook, root, {"seed": 3}, progress=False)
    text = executed.read_text()
    nb = json.loads(text)
    for absolute in (str(root), str(Path.home()) + "/", str(reproduce.ROOT)):
        assert not re.search(rf"(?<![\w./-]){re.escape(absolute)}", text), absolute
    shown = os.path.relpath(root / "99_demo" / "own.txt", results.notebooks_folder(root))
    assert f"PosixPath('{shown}')" in text  # the path a cell returned, relative
    assert not re.search(r"it/s|s/it|\d+%\|", text)  # the progress bar's rates and times
    assert "widget-view" not in text and "widgets" not in nb["metadata"]
    assert not {"start_time", "end_time", "duration"} & set(nb["metadata"]["papermill"])
    for cell in nb["cells"]:
        assert "execution" not in cell["metadata"]
        assert not {"start_time", "end_time", "duration"} & set(
            cell["metadata"].get("papermill", {})
        )
    ids = [cell["id"] for cell in nb["cells"]]
    assert ids == ["demo-0", "injected-parameters"] + [f"demo-{i}" for i in range(1, 6)]


def test_a_print_chunked_apart_by_a_busy_kernel_is_written_as_one_output():
    """Seen in notebook 06 beside another notebook: print's text and its newline came in two
    messages, so the executed copy changed though nothing else did."""

    def stream(name, text):
        return {"output_type": "stream", "name": name, "text": text}

    figure = {"output_type": "display_data", "data": {"image/png": "iVBOR"}}
    chunks = [stream("stdout", "consistent = False"), stream("stdout", "\n")]
    assert reproduce._coalesced(chunks) == [stream("stdout", "consistent = False\n")]
    apart = [stream("stdout", "a\n"), stream("stderr", "b\n"), figure, stream("stdout", "c\n")]
    assert reproduce._coalesced(apart) == apart  # other streams and outputs stay in between


def test_clean_output_drops_progress_lines_and_widgets_only():
    stream = {
        "output_type": "stream",
        "name": "stderr",
        "text": "kept line\n 33%|###       | 1/3 [00:00<00:01,  2.00it/s]\r100%|#| 3/3\n"
        "Executing: 10 cell/s\nalso kept: 50% of prompts\n",
    }
    assert reproduce._clean_output(stream)["text"] == "kept line\nalso kept: 50% of prompts\n"
    only_bar = {"output_type": "stream", "name": "stderr", "text": "  0%|  | 0/40 [00:00<?, ?it/s]"}
    assert reproduce._clean_output(only_bar) is None
    widget = {"output_type": "display_data", "data": {reproduce._WIDGET: {}, "text/plain": "x"}}
    assert reproduce._clean_output(widget) is None
    figure = {"output_type": "display_data", "data": {"image/png": "iVBOR"}}
    assert reproduce._clean_output(figure) == figure


def test_a_mistyped_parameter_is_refused_before_anything_runs(published):
    notebook, root = published
    before = tree(root)
    with pytest.raises(
        ValueError,
        match=r"parameters: 99_demo has no parameter 'sed'; "
        r"its parameters: interactive, results_dir, seed",
    ):
        reproduce.run_notebook(notebook, root, {"sed": 3}, progress=False)
    with pytest.raises(ValueError, match="results_dir of 99_demo is set by the runner"):
        reproduce.run_notebook(notebook, root, {"results_dir": "/elsewhere"}, progress=False)
    assert tree(root) == before


@pytest.fixture
def never_run(monkeypatch):
    def run_notebook(*args, **kwargs):
        raise AssertionError("a notebook ran")

    monkeypatch.setattr(reproduce, "run_notebook", run_notebook)


@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"04_step_selection_and_resource_allocation": {"n_slot": 5}},
            "04_step_selection_and_resource_allocation has no parameter 'n_slot'; its parameters: "
            ".*n_slots, .*results_dir",
        ),
        (
            {"all": {"seed": 1, "n_slots": 5}},
            "01_prompts_and_clipscore_distributions has no parameter 'n_slots'",
        ),
        (
            {"04_step_selection": {"n_slots": 5}},
            r"params: no notebook is named \['04_step_selection'\]",
        ),
    ],
    ids=["typo", "all-but-not-everywhere", "unknown-notebook"],
)
def test_reproduce_command_checks_every_parameter_first(tmp_path, capsys, never_run, params, match):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    only = ["01", "04"] if "all" in params else ["04"]
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(
            ["--only", *only, "--params", str(path), "--results-dir", str(tmp_path / "r")]
        )
    assert exit_.value.code == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_reproduce_command_without_partiprompts_stops_with_one_line(
    tmp_path, monkeypatch, capsys, never_run
):
    monkeypatch.setenv("PARTIPROMPTS_PATH", str(tmp_path / "missing.tsv"))
    assert reproduce.main(["--only", "03", "--results-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: PARTIPROMPTS_PATH: ")
    assert "data/cache/PartiPrompts.tsv" in err
    assert not (tmp_path / "r").exists()


def test_reproduce_command_refuses_a_truncated_partiprompts_file(
    tmp_path, monkeypatch, capsys, never_run
):
    truncated = tmp_path / "t.tsv"
    truncated.write_text("Prompt\tCategory\tChallenge\tNote\n" + "a cat\tAnimals\tBasic\t\n" * 99)
    monkeypatch.setenv("PARTIPROMPTS_PATH", str(truncated))
    assert reproduce.main(["--only", "03", "--results-dir", str(tmp_path / "r")]) == 1
    assert f"'{truncated}' holds 99 prompts" in capsys.readouterr().err


SPARED = """
import sys
from aigc_lib import reproduce
if sys.argv[1] == "late":
    import jsonschema
reproduce.spare_the_iri_grammar()
import nbformat, papermill
for path in sorted(reproduce.NOTEBOOKS_DIR.glob("*.ipynb")):
    nbformat.validate(nbformat.read(path, as_version=4))  # what papermill checks, unchanged
print(sys.modules.get("rfc3987_syntax", "absent"))
"""


@pytest.mark.parametrize("when", ["first", "late"])
def test_the_runner_spares_the_iri_grammar_only_where_jsonschema_is_not_imported_yet(when):
    done = subprocess.run(
        [sys.executable, "-c", SPARED, when], capture_output=True, text=True, check=True
    )
    marked = done.stdout.strip()
    assert marked == "None" if when == "first" else marked.startswith("<module 'rfc3987_syntax'")


def test_a_failed_direct_papermill_run_changes_no_results_file(published, tmp_path, monkeypatch):
    """Finding 2: ``papermill notebooks/04_... out.ipynb --cwd notebooks -p seed 1`` failed after
    figures were staged and left the results folder changed. The same path on the demo notebook
    (a real kernel, the library's staging): its figure is staged, then a later cell fails. Its
    ``own.txt`` is left out of the comparison: the demo writes it past the library, which only the
    runner's own folder swap covers (the notebooks write through the library alone)."""
    monkeypatch.delenv(results.STAGING_ENV, raising=False)  # the kernel decides: it stages
    temporaries = system_temporaries()
    notebook, root = published
    folder = root / "99_demo"
    before = tree(folder)
    del before["own.txt"]
    output = tmp_path / "out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match="seed: expected >= 0"):
        papermill.execute_notebook(
            str(notebook),
            str(output),
            cwd=str(tmp_path),
            parameters={"seed": -1, "results_dir": str(folder)},
            kernel_name="python3",
            progress_bar=False,
        )
    after = tree(folder)
    assert after.pop("own.txt")[0] == b"seed -1" and after == before
    text = output.read_text()
    assert f"{folder} left unchanged" in text  # the failed cell says so, and where its files are
    (staged,) = root.glob(".99_demo.staged-*")  # beside the results folder, not in /tmp
    assert str(staged) in text
    assert (staged / "figures" / "trace.png").read_bytes().startswith(b"\x89PNG")  # it was staged
    assert system_temporaries() <= temporaries


def test_a_direct_papermill_run_publishes_at_its_last_cell(published, tmp_path, monkeypatch):
    monkeypatch.delenv(results.STAGING_ENV, raising=False)
    notebook, root = published
    folder = root / "99_demo"
    papermill.execute_notebook(
        str(notebook),
        str(tmp_path / "out.ipynb"),
        cwd=str(tmp_path),
        parameters={"seed": 2, "results_dir": str(folder)},
        kernel_name="python3",
        progress_bar=False,
    )
    assert json.loads((folder / "metrics.json").read_text()) == {"seed": 2, "third": 0.3}
    assert not list(folder.parent.glob(".99_demo.staged-*"))  # published: staging removed
    assert (folder / "figures" / "trace.png").read_bytes().startswith(b"\x89PNG")


def test_make_test_without_partiprompts_prints_one_line(tmp_path):
    env = dict(os.environ, PARTIPROMPTS_PATH=str(tmp_path / "missing.tsv"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_prompts.py",
            "-k",
            "default_mapping",
        ],
        cwd=reproduce.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0
    assert len(output.splitlines()) == 1, output
    assert "PARTIPROMPTS_PATH" in output and "data/cache/PartiPrompts.tsv" in output


@pytest.mark.parametrize(
    "variable, name", [("PARTIPROMPTS_PATH", "PartiPrompts.tsv"), ("AZURE_TRACES_DIR", "traces")]
)
def test_a_relative_data_path_reaches_the_kernel_as_absolute(tmp_path, monkeypatch, variable, name):
    source = tmp_path / "nb"
    source.mkdir()
    nb = nbformat.v4.new_notebook(metadata=KERNEL)
    code = (
        f"import os\nfrom aigc_lib import results\npath = os.environ['{variable}']\n"
        "results.write_metrics({'env': path, 'exists': os.path.exists(path)}, results_dir)"
    )
    nb.cells = [
        nbformat.v4.new_code_cell("results_dir = '.'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, source / "98_env.ipynb")
    if variable == "AZURE_TRACES_DIR":
        (tmp_path / name).mkdir()
    else:
        (tmp_path / name).write_text("x")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, name)  # relative to here, not to nb/
    reproduce.run_notebook(source / "98_env.ipynb", tmp_path / "results", progress=False)
    metrics = json.loads((tmp_path / "results" / "98_env" / "metrics.json").read_text())
    assert metrics == {"env": str(tmp_path / name), "exists": True}


DUAL_ANNEALING_GAPS = """
import sys
from aigc_lib import experiments
problems = [p for n in (2, 5) for p in experiments.scaling_problems(n, 1, 0)]
table = experiments.compare_solvers(
    problems, 0, solvers=["dual_annealing"], options={"dual_annealing": {"maxiter": 50}}, n_jobs=1
)
print(" ".join(repr(float(gap)) for gap in table["gap"]))
"""


def test_a_run_computes_the_same_bits_whatever_blas_kernel_the_cpu_would_pick(monkeypatch):
    """Issue 29: a fresh clone's rerun rewrote notebooks 04 and 05's metrics, tables and figures
    (gaps of 1e-14 to 1e-6): OpenBLAS picks its kernels by CPU, and scipy's L-BFGS-B (inside
    dual_annealing) turns their rounding into other gaps. Where nothing sets OPENBLAS_CORETYPE,
    the kernel environment pins one BLAS kernel, whatever this CPU would choose; these are the
    committed results' bits (notebook 05, section 7's problems)."""
    if not reproduce._has_avx2():
        pytest.skip("the pin concerns the OpenBLAS kernels of x86-64 CPUs with AVX2")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    env = {**os.environ, **reproduce._kernel_environment()}
    assert env["OPENBLAS_CORETYPE"] == reproduce.BLAS_CORE
    done = subprocess.run(
        [sys.executable, "-c", DUAL_ANNEALING_GAPS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    gaps = [float(text) for text in done.stdout.split()]
    assert gaps == [4.9737991503207013e-14, 0.11142228311760149]  # equal to the last bit


def test_a_blas_kernel_set_by_the_user_or_the_machine_is_kept(monkeypatch):
    """Some machines set OPENBLAS_CORETYPE because an older OpenBLAS misreads their CPU (wrong
    sums or a crash): the runner never overrides it, for identical last digits or otherwise."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    assert "OPENBLAS_CORETYPE" not in reproduce._kernel_environment()


def test_a_kernel_runs_one_thread_per_pool_unless_the_user_says_otherwise(monkeypatch):
    """Issue 29: torch's two OpenMP threads spun against the other process of a busy 2-core
    machine (notebook 02's tiny sweep eight times slower)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    env = reproduce._kernel_environment()
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    env = reproduce._kernel_environment()
    assert "OMP_NUM_THREADS" not in env and env["MKL_NUM_THREADS"] == "1"
