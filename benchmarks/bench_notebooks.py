"""The time budget of the two commands: each notebook's run and each test file's.

    python benchmarks/bench_notebooks.py                  # every notebook, small and default
    python benchmarks/bench_notebooks.py --only 05 07 --sizes default --top 5
    python benchmarks/bench_notebooks.py --sizes none --reproduce   # make reproduce's command
    python benchmarks/bench_notebooks.py --tests          # ... and each test file (the suite, once)
    python benchmarks/bench_notebooks.py --sizes none --tests tests/test_results.py --workers 0

Notebooks run exactly as ``make reproduce`` runs them (:func:`aigc_lib.reproduce.run_notebook`:
the same kernel, environment and checks), one at a time, into a temporary folder, never over
``results/``: with ``small`` parameters (``tests/notebook_params.yaml``, what ``make test`` runs,
from nothing) and with the notebooks' ``default`` ones (what ``make reproduce`` runs, from the
committed step sweeps, which a run continues). Each line gives the wall time, its ratio to the
reference run in the same process (an empty notebook: the cost of starting a kernel and the
runner's checks), the CPU seconds of the runner, the kernel and its workers (on a busy machine
closer than wall time to a quiet machine's), the time inside cells and the slowest cells (what
to profile first).

``--reproduce`` times ``python -m aigc_lib.reproduce`` itself (two notebooks side by side, as
``make reproduce`` runs them) into a temporary folder. ``--tests`` runs the test suite once in
this process as ``make test`` runs it (pytest-xdist, ``--workers`` processes, default ``auto``:
one per core) and prints each test file's seconds in its tests (setup, call and teardown, from
the test reports) and the whole run's wall time; pytest's own summary line says how long each
notebook's small run took. The budget, on a quiet 2-core machine from a fresh clone: ``make
test`` under 180 s, ``make reproduce`` under 120 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aigc_lib import reproduce

reproduce.spare_the_iri_grammar()  # as the runner's own processes (before nbformat)
import nbformat

SMALL_PARAMS = ROOT / "tests" / "notebook_params.yaml"
BUDGET = {"make test": 180.0, "make reproduce": 120.0}


def _reference_notebook(folder: Path) -> Path:
    """An empty notebook with a parameters cell: what every run pays before its first cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    cell = nbformat.v4.new_code_cell("results_dir = '.'", metadata={"tags": ["parameters"]})
    cell.id = "reference"
    nb.cells = [cell]
    path = folder / "00_reference.ipynb"
    nbformat.write(nb, path)
    return path


class CellTimes:
    """Wraps the runner's last step to read papermill's cell durations before they are removed."""

    def __init__(self) -> None:
        self.cells: list[tuple[float, int, str]] = []
        self._finish = reproduce._finish_executed_copy

    def __enter__(self) -> CellTimes:
        def finish(running, target, final_dir, notebook):
            nb = json.loads(Path(running).read_text(encoding="utf-8"))
            self.cells = []
            for index, cell in enumerate(nb["cells"]):
                seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
                if cell.get("cell_type") == "code" and seconds is not None:
                    source = "".join(cell.get("source", "")).strip().splitlines() or [""]
                    self.cells.append((float(seconds), index, source[0][:60]))
            return self._finish(running, target, final_dir, notebook)

        reproduce._finish_executed_copy = finish
        return self

    def __exit__(self, *exc) -> None:
        reproduce._finish_executed_copy = self._finish


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its ended children (the kernel and its workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_notebook(notebook: Path, parameters: dict, root: Path, top: int) -> dict:
    """One run as ``make reproduce`` makes it: wall seconds, CPU seconds (the runner, the kernel
    and its workers: on a busy machine, closer than wall time to what a quiet one takes), seconds
    in cells, the slowest cells."""
    with CellTimes() as timer:
        started, cpu = time.perf_counter(), _cpu_seconds()
        reproduce.run_notebook(notebook, root, parameters, progress=False)
        wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    in_cells = sum(seconds for seconds, _, _ in timer.cells)
    slowest = sorted(timer.cells, reverse=True)[:top]
    return {"wall": wall, "cpu": cpu, "cells": in_cells, "slowest": slowest}


def _seed_with_committed(notebook: Path, root: Path) -> None:
    """Copy what a run carries over from the committed results folder (the step sweeps'
    rows, :data:`aigc_lib.reproduce.CARRIED`) into ``root``, as ``make reproduce`` finds them."""
    committed = reproduce.RESULTS_DIR / notebook.stem
    if committed.is_dir():
        (root / notebook.stem).mkdir(parents=True, exist_ok=True)
        reproduce._carry_over(committed, root / notebook.stem)


def bench_notebooks(only: list[str], sizes: list[str], top: int) -> dict[str, float]:
    """Print each notebook's time per size; return the total per size."""
    small = reproduce.load_parameters(SMALL_PARAMS)
    totals: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as tmp:
        root = Path(tmp) / "results"
        reference = time_notebook(_reference_notebook(Path(tmp)), {}, root, 0)["wall"]
        print(f"reference: an empty notebook takes {reference:.1f} s (kernel start, checks)")
        print(
            f"{'notebook':<44} {'size':<8} {'wall s':>7} {'ratio':>6} {'cpu s':>7} {'cells s':>8}"
        )
        for size in sizes:
            totals[size] = 0.0
            for notebook in reproduce.find_notebooks(only):
                parameters = {}
                if size == "small":
                    parameters = {**small.get("all", {}), **small.get(notebook.stem, {})}
                else:  # as make reproduce finds it: the committed results, step sweeps included
                    _seed_with_committed(notebook, root / size)
                got = time_notebook(notebook, parameters, root / size, top)
                totals[size] += got["wall"]
                print(
                    f"{notebook.stem:<44} {size:<8} {got['wall']:7.1f} "
                    f"{got['wall'] / reference:6.1f} {got['cpu']:7.1f} {got['cells']:8.1f}",
                    flush=True,
                )
                for seconds, index, first in got["slowest"]:
                    print(f"    cell {index:3d} {seconds:6.1f} s  {first}")
            print(f"{'all of them':<44} {size:<8} {totals[size]:7.1f}")
    if "default" in totals and not only:
        print(
            f"the notebooks one after another: {totals['default']:.0f} s (make reproduce runs "
            "two side by side: --reproduce times it against its budget)"
        )
    return totals


class FileTimes:
    """A pytest plugin: seconds per test file (setup, call and teardown of its tests, summed from
    the test reports, which pytest-xdist's workers send to the controller)."""

    def __init__(self) -> None:
        self.files: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report) -> None:
        self.files[report.nodeid.split("::")[0]] += report.duration


def bench_tests(paths: list[str], workers: str) -> int:
    """Run the tests once as ``make test`` runs them (``-n`` workers, one file per worker at a
    time); print each file's seconds, slowest first, and the whole run's wall time."""
    import pytest

    plugin = FileTimes()
    started = time.perf_counter()
    spread = (
        ["-n", workers, "--dist", "loadfile", "--no-loadscope-reorder"] if workers != "0" else []
    )
    code = pytest.main(["-q", "-p", "no:cacheprovider", *spread, *paths], plugins=[plugin])
    total = time.perf_counter() - started
    print(f"\n{'test file':<44} {'s in tests':>10}")
    for name, seconds in sorted(plugin.files.items(), key=lambda kv: -kv[1]):
        print(f"{name:<44} {seconds:10.1f}")
    budget = BUDGET["make test"]
    print(f"{'the whole run (wall)':<44} {total:10.1f}  (budget of make test: {budget:.0f} s)")
    return int(code)


def bench_reproduce() -> float:
    """Time ``python -m aigc_lib.reproduce`` (every notebook, default parameters, two side by
    side) into a temporary results folder holding the committed step sweeps, as a checkout has
    them; print the wall time against the budget."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="bench-reproduce-") as tmp:
        root = Path(tmp) / "results"
        for notebook in reproduce.find_notebooks():
            _seed_with_committed(notebook, root)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "aigc_lib.reproduce", "--results-dir", str(root)],
            cwd=ROOT,
            check=True,
        )
        wall = time.perf_counter() - started
    budget = BUDGET["make reproduce"]
    print(f"make reproduce (its command, setup done): {wall:.1f} s (budget {budget:.0f} s)")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="notebook prefixes, e.g. 02 05")
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["small", "default"],
        choices=["small", "default", "none"],
        help="parameters: small (make test), default (make reproduce), none (no notebook)",
    )
    parser.add_argument("--top", type=int, default=3, help="slowest cells shown per notebook")
    parser.add_argument(
        "--tests", nargs="*", default=None, help="also time the test files (default: all)"
    )
    parser.add_argument(
        "--workers", default="auto", help="with --tests: pytest-xdist's -n (0: one process)"
    )
    parser.add_argument(
        "--reproduce", action="store_true", help="also time make reproduce's command itself"
    )
    args = parser.parse_args(argv)
    sizes = [s for s in args.sizes if s != "none"]
    if sizes:
        bench_notebooks(args.only, sizes, args.top)
    if args.reproduce:
        bench_reproduce()
    if args.tests is not None:
        return bench_tests(args.tests or [str(ROOT / "tests")], args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
