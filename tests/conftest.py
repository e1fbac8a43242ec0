"""Shared test helpers: the PartiPrompts check, executing a notebook with the small parameters of
notebook_params.yaml.

Each notebook runs once per test run (``notebook_results``), also when ``make test`` spreads the
tests over two processes (pytest-xdist, ``-n auto --dist loadfile``, the files in the order of
:func:`scheduled`): the processes share one folder of runs and take each notebook under a lock
(:class:`NotebookRuns`). Those the collected tests will ask for (:func:`notebooks_needed`)
start as soon as the tests are collected, one after another in the order the tests need them,
each in a process of its own beside the tests. A notebook no collected test announced runs when
a test asks for it."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from aigc_lib import parallel, reproduce

reproduce.spare_the_iri_grammar()  # the tests' processes are the runner's as well
SMALL_PARAMS = Path(__file__).with_name("notebook_params.yaml")
for _name in reproduce.THREAD_VARIABLES:  # one thread per pool, as in the kernels: the tests
    os.environ.setdefault(_name, "1")  # run beside notebooks, and spinning threads cost both
PREFIX = re.compile(r"\d\d")
RUN_ONE = """
import sys
from pathlib import Path
from aigc_lib import reproduce
reproduce.spare_the_iri_grammar()
notebook, root, parameters = Path(sys.argv[1]), Path(sys.argv[2]), __import__("json").loads(sys.argv[3])
reproduce.run_notebook(notebook, root, parameters, progress=False)
"""


def pytest_configure(config):
    """Without PartiPrompts (or with a wrong copy), stop at once with the loader's one-line message
    saying what to do, rather than with an error in every test that needs the file. The first
    process makes the folder of the notebook runs (:data:`ROOT_ENV`), which its workers share."""
    from aigc_lib import prompts

    if not hasattr(config, "workerinput") and ROOT_ENV not in os.environ:
        os.environ[ROOT_ENV] = tempfile.mkdtemp(prefix="pytest-notebook-results-")
        config._aigc_notebooks_owner = True

    try:
        prompts.load_partiprompts()
    except ValueError as err:
        pytest.exit(f"error: {err}", returncode=1)


def notebooks_needed(items) -> list[str]:
    """The notebook prefixes the collected tests announce, in the order of their first use: a
    test of ``test_notebook_NN.py``, one parametrized with ``NN``, or one of a module listing
    them in ``NOTEBOOKS_NEEDED``, using ``notebook_results``."""
    needed: list[str] = []
    for item in items:
        if "notebook_results" not in getattr(item, "fixturenames", ()):
            continue
        found = re.fullmatch(r"test_notebook_(\d\d)", item.module.__name__.rsplit(".")[-1])
        prefixes = [found.group(1)] if found else []
        prefixes += list(getattr(item.module, "NOTEBOOKS_NEEDED", ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            prefixes += [v for v in callspec.params.values() if isinstance(v, str)]
        for prefix in prefixes:
            if PREFIX.fullmatch(prefix) and prefix not in needed:
                needed.append(prefix)
    known = {p.stem[:2] for p in reproduce.find_notebooks()}
    return [p for p in needed if p in known]


class NotebookRuns:
    """Each notebook run once per test run, into ``<root>/<prefix>/<stem>/``, also when the tests
    are spread over processes (``pytest -n``, pytest-xdist): they share ``root`` (:func:`shared_root`),
    and a notebook's lock file ``<root>/<prefix>.lock`` lets the first process that takes it run
    the notebook while the others wait for it. Ahead of time in a background thread (one run after
    another, skipping a notebook another process is running: :data:`RUN_ONE`), or when a test asks
    for one not run yet (beside the run ahead, each judged by its own exit status). A failed run
    leaves ``<root>/<prefix>.failed``, said by every test asking."""

    def __init__(self, root: Path, params: dict) -> None:
        self.root, self.params = root, params
        # as the session started: tests change os.environ and the runner's module while the
        # notebooks run ahead. One worker process per notebook (AIGC_JOBS=1): the tests fill the
        # cores already, the small runs are too short to repay a pool's start, and no result
        # depends on the number of workers (aigc_lib.parallel)
        self.env = {parallel.JOBS_ENV: "1", **os.environ}
        self.notebooks = {p.stem[:2]: p for p in reproduce.find_notebooks()}
        self.seconds: dict[str, float] = {}  # each notebook's run here, wall clock
        # the runs of this process: its thread running ahead and a test asking for another
        # notebook may each run one at the same time
        self.running: set[subprocess.Popen] = set()
        self.stopping = False
        self.lock = threading.Lock()

    def parameters(self, notebook: Path) -> dict:
        return {**self.params.get("all", {}), **self.params.get(notebook.stem, {})}

    def prefetch(self, prefixes: list[str]) -> None:
        threading.Thread(target=self._run_ahead, args=(prefixes,), daemon=True).start()

    def _run_ahead(self, prefixes: list[str]) -> None:
        for prefix in prefixes:
            self._claim(prefix, wait=False)

    def _claim(self, prefix: str, wait: bool) -> None:
        """Run the notebook unless it ran or another process runs it (``wait``: until it ended)."""
        with open(self.root / f"{prefix}.lock", "a", encoding="ascii") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                return  # another process runs it; a test asking waits for it
            if self._ended(prefix):
                return
            try:
                self._run_one(prefix)
            except Exception as err:  # said by the tests that ask for it
                if not self.stopping:  # stopped: a process that still needs it runs it
                    failure = f"{type(err).__name__}: {err}"
                    self._failure(prefix).write_text(failure, encoding="utf-8")

    def _failure(self, prefix: str) -> Path:
        return self.root / f"{prefix}.failed"

    def _ended(self, prefix: str) -> bool:
        metrics = self.root / prefix / self.notebooks[prefix].stem / "metrics.json"
        return metrics.is_file() or self._failure(prefix).is_file()

    def _run_one(self, prefix: str) -> None:
        notebook = self.notebooks[prefix]
        command = [sys.executable, "-c", RUN_ONE, str(notebook), str(self.root / prefix)]
        command.append(json.dumps(self.parameters(notebook)))
        started = time.perf_counter()
        with self.lock:
            if self.stopping:
                raise RuntimeError("the session ended first")
            run = subprocess.Popen(
                command,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            self.running.add(run)
        try:
            output = run.communicate()[0]
        finally:
            with self.lock:
                self.running.discard(run)
        self.seconds[prefix] = time.perf_counter() - started
        (self.root / f"{prefix}.seconds").write_text(f"{self.seconds[prefix]:.1f}")
        if run.returncode != 0:
            raise RuntimeError(f"exit status {run.returncode}\n{output[-4000:]}")

    def finish(self) -> None:
        """Start no more runs ahead and let those running end (another process may need them)."""
        with self.lock:
            self.stopping = True
            runs = list(self.running)
        for run in runs:
            run.wait()

    def stop(self) -> None:
        """Interrupt the runs (the runner's Ctrl-C path: their kernels are shut down)."""
        with self.lock:
            self.stopping = True
            runs = [run for run in self.running if run.poll() is None]
        for run in runs:
            os.killpg(run.pid, signal.SIGINT)
        for run in runs:
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)

    def get(self, prefix: str) -> tuple[dict, Path]:
        if prefix not in self.notebooks:
            raise ValueError(f"prefix: no notebook starts with {prefix!r}")
        notebook = self.notebooks[prefix]
        self._claim(prefix, wait=True)
        if self._failure(prefix).is_file():
            failure = self._failure(prefix).read_text(encoding="utf-8")
            raise RuntimeError(f"{notebook.stem} failed:\n{failure}")
        folder = self.root / prefix / notebook.stem
        return json.loads((folder / "metrics.json").read_text()), folder


ROOT_ENV = "AIGC_TEST_NOTEBOOKS"
"""The folder of this test run's notebook runs, set by the first process (pytest, or pytest-xdist's
controller) before any worker starts, so that every worker shares it."""

_runs: list[NotebookRuns] = []


def shared_root() -> Path:
    return Path(os.environ[ROOT_ENV])


FIRST = ("tests/test_profile_chain.py",)
"""Test files run first. The profile chain waits only for notebook 02, then runs five notebooks
(about 50 s of CPU): scheduled by its number of tests, it started last and was the run's tail."""


def scheduled(items: list) -> list:
    """The order the test files run in (``make test``: pytest-xdist takes whole files in this
    order, ``--no-loadscope-reorder``): :data:`FIRST`, then the rest with the most tests first
    (pytest-xdist's own order), each file's tests as collected."""
    files = [item.nodeid.split("::")[0] for item in items]
    count = {name: files.count(name) for name in set(files)}
    rank = {name: (name not in FIRST, -n, name) for name, n in count.items()}
    order = sorted(range(len(items)), key=lambda i: rank[files[i]])
    return [items[i] for i in order]


@pytest.hookimpl(trylast=True)  # after -k and -m deselected theirs
def pytest_collection_modifyitems(session, config, items):
    """Order the test files (:func:`scheduled`), then start the notebooks the collected tests will
    ask for (``notebook_results``), in the order the tests will need them."""
    items[:] = scheduled(items)
    needed = notebooks_needed(items)
    if not needed or config.option.collectonly:
        return
    runs = NotebookRuns(shared_root(), reproduce.load_parameters(SMALL_PARAMS))
    runs.prefetch(needed)
    _runs.append(runs)


def pytest_terminal_summary(terminalreporter):
    """One line: how long each notebook's run took, in whichever process ran it (the budget:
    benchmarks/bench_notebooks.py)."""
    if ROOT_ENV not in os.environ or hasattr(terminalreporter.config, "workerinput"):
        return
    ran = {p.stem: float(p.read_text()) for p in shared_root().glob("*.seconds")}
    if ran:
        times = ", ".join(f"{p} {s:.0f} s" for p, s in sorted(ran.items()))
        terminalreporter.write_line(f"notebooks run once for these tests: {times}")


def pytest_sessionfinish(session, exitstatus):
    """A session that ends normally lets the notebook it runs ahead end (a worker beside it may
    be waiting for it); an interrupted one (Ctrl-C) interrupts it."""
    for runs in _runs:
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            runs.stop()
        else:
            runs.finish()


def pytest_unconfigure(config):
    for runs in _runs:
        runs.stop()
    _runs.clear()
    if getattr(config, "_aigc_notebooks_owner", False):  # the first process: the folder is its
        shutil.rmtree(shared_root(), ignore_errors=True)
        del os.environ[ROOT_ENV]


@pytest.fixture(scope="session")
def notebook_results(tmp_path_factory):
    """``run(prefix) -> (metrics dict, results folder)``: execute a notebook once per session with small parameters."""
    if not _runs:  # nothing announced: every notebook on demand
        _runs.append(NotebookRuns(shared_root(), reproduce.load_parameters(SMALL_PARAMS)))
    return _runs[0].get
