"""Shared test helpers: the PartiPrompts check, executing a notebook with the small parameters of
notebook_params.yaml.

Each notebook runs once per session (``notebook_results``). Those the collected tests will ask for
(a test module ``test_notebook_NN``, or a test parametrized with a prefix ``NN``) start as soon
as the tests are collected, one after another in the order the tests need them, each in a
process of its own beside the tests: their kernels run while the unit tests before them run, on
the other core. A notebook no collected test announced runs in this process when asked for."""

from __future__ import annotations

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

from aigc_lib import reproduce

SMALL_PARAMS = Path(__file__).with_name("notebook_params.yaml")
for _name in reproduce.THREAD_VARIABLES:  # one thread per pool, as in the kernels: the tests
    os.environ.setdefault(_name, "1")  # run beside notebooks, and spinning threads cost both
PREFIX = re.compile(r"\d\d")
RUN_ONE = """
import sys
from pathlib import Path
from aigc_lib import reproduce
notebook, root, parameters = Path(sys.argv[1]), Path(sys.argv[2]), __import__("json").loads(sys.argv[3])
reproduce.run_notebook(notebook, root, parameters, progress=False)
"""


def pytest_configure(config):
    """Without PartiPrompts (or with a wrong copy), stop at once with the loader's one-line message
    saying what to do, rather than with an error in every test that needs the file."""
    from aigc_lib import prompts

    try:
        prompts.load_partiprompts()
    except ValueError as err:
        pytest.exit(f"error: {err}", returncode=1)


def notebooks_needed(items) -> list[str]:
    """The notebook prefixes the collected tests announce, in the order of their first use: a
    test of ``test_notebook_NN.py`` or one parametrized with ``NN``, using ``notebook_results``."""
    needed: list[str] = []
    for item in items:
        if "notebook_results" not in getattr(item, "fixturenames", ()):
            continue
        found = re.fullmatch(r"test_notebook_(\d\d)", item.module.__name__.rsplit(".")[-1])
        prefixes = [found.group(1)] if found else []
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            prefixes += [v for v in callspec.params.values() if isinstance(v, str)]
        for prefix in prefixes:
            if PREFIX.fullmatch(prefix) and prefix not in needed:
                needed.append(prefix)
    known = {p.stem[:2] for p in reproduce.find_notebooks()}
    return [p for p in needed if p in known]


class NotebookRuns:
    """Each notebook run once, into ``<root>/<prefix>/<stem>/``: ahead of time in a background
    thread (one process at a time, :data:`RUN_ONE`), or on demand in this process."""

    def __init__(self, root: Path, params: dict) -> None:
        self.root, self.params = root, params
        # as the session started: tests change os.environ and the runner's module while the
        # notebooks run ahead
        self.env = dict(os.environ)
        self.notebooks = {p.stem[:2]: p for p in reproduce.find_notebooks()}
        self.done: dict[str, threading.Event] = {}
        self.seconds: dict[str, float] = {}  # each notebook's run, wall clock
        self.failed: dict[str, str] = {}
        self.running: subprocess.Popen | None = None
        self.stopping = False
        self.lock = threading.Lock()

    def parameters(self, notebook: Path) -> dict:
        return {**self.params.get("all", {}), **self.params.get(notebook.stem, {})}

    def prefetch(self, prefixes: list[str]) -> None:
        for prefix in prefixes:
            self.done[prefix] = threading.Event()
        threading.Thread(target=self._run_ahead, args=(prefixes,), daemon=True).start()

    def _run_ahead(self, prefixes: list[str]) -> None:
        for prefix in prefixes:
            try:
                self._run_one(prefix)
            except Exception as err:  # said by the test that asks for it
                self.failed[prefix] = f"{type(err).__name__}: {err}"
            finally:
                self.done[prefix].set()

    def _run_one(self, prefix: str) -> None:
        notebook = self.notebooks[prefix]
        command = [sys.executable, "-c", RUN_ONE, str(notebook), str(self.root / prefix)]
        command.append(json.dumps(self.parameters(notebook)))
        started = time.perf_counter()
        with self.lock:
            if self.stopping:
                raise RuntimeError("the session ended first")
            self.running = subprocess.Popen(
                command,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        output = self.running.communicate()[0]
        self.seconds[prefix] = time.perf_counter() - started
        if self.running.returncode != 0:
            self.failed[prefix] = output[-4000:]

    def stop(self) -> None:
        """Interrupt a run ahead (the runner's Ctrl-C path: its kernel is shut down)."""
        with self.lock:
            self.stopping = True
            run = self.running
        if run is not None and run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)

    def get(self, prefix: str) -> tuple[dict, Path]:
        if prefix not in self.notebooks:
            raise ValueError(f"prefix: no notebook starts with {prefix!r}")
        notebook = self.notebooks[prefix]
        if prefix in self.done:
            self.done[prefix].wait()
            if prefix in self.failed:
                raise RuntimeError(f"{notebook.stem} failed:\n{self.failed[prefix]}")
        elif not (self.root / prefix / notebook.stem / "metrics.json").is_file():
            started = time.perf_counter()
            reproduce.run_notebook(
                notebook, self.root / prefix, self.parameters(notebook), progress=False
            )
            self.seconds[prefix] = time.perf_counter() - started
        folder = self.root / prefix / notebook.stem
        return json.loads((folder / "metrics.json").read_text()), folder


_runs: list[NotebookRuns] = []


@pytest.hookimpl(trylast=True)  # after -k and -m deselected theirs
def pytest_collection_modifyitems(session, config, items):
    """Start the notebooks the collected tests will ask for (``notebook_results``)."""
    needed = notebooks_needed(items)
    if not needed or config.option.collectonly:
        return
    root = Path(tempfile.mkdtemp(prefix="pytest-notebook-results-"))
    runs = NotebookRuns(root, reproduce.load_parameters(SMALL_PARAMS))
    runs.prefetch(needed)
    _runs.append(runs)


def pytest_terminal_summary(terminalreporter):
    """One line: how long each notebook's run took (the budget: benchmarks/bench_notebooks.py)."""
    for runs in _runs:
        if runs.seconds:
            times = ", ".join(f"{p} {s:.0f} s" for p, s in sorted(runs.seconds.items()))
            terminalreporter.write_line(f"notebooks run once for these tests: {times}")


def pytest_unconfigure(config):
    for runs in _runs:
        runs.stop()
        shutil.rmtree(runs.root, ignore_errors=True)
    _runs.clear()


@pytest.fixture(scope="session")
def notebook_results(tmp_path_factory):
    """``run(prefix) -> (metrics dict, results folder)``: execute a notebook once per session with small parameters."""
    if not _runs:  # nothing announced: every notebook on demand, in this process
        root = tmp_path_factory.mktemp("results")
        _runs.append(NotebookRuns(root, reproduce.load_parameters(SMALL_PARAMS)))
    return _runs[0].get
