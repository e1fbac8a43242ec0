"""How ``make test`` orders its work (tests/conftest.py): the test files pytest-xdist hands out,
and the notebooks run ahead for them."""

from __future__ import annotations

import threading
import time
import types

import conftest


def item(nodeid: str, module: str = "test_x", **attributes) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        nodeid=nodeid,
        fixturenames=("notebook_results",),
        module=types.SimpleNamespace(__name__=module, **attributes),
    )


def test_the_first_files_lead_then_the_most_tests_first_each_file_as_collected():
    ids = ["tests/test_b.py::one", "tests/test_a.py::one", "tests/test_b.py::two"]
    ids += ["tests/test_profile_chain.py::x", "tests/test_c.py::one", "tests/test_a.py::two"]
    ids += ["tests/test_a.py::three"]
    order = [i.nodeid for i in conftest.scheduled([item(n) for n in ids])]
    assert order == [
        "tests/test_profile_chain.py::x",  # FIRST, whatever its size
        "tests/test_a.py::one",  # three tests
        "tests/test_a.py::two",
        "tests/test_a.py::three",
        "tests/test_b.py::one",  # two
        "tests/test_b.py::two",
        "tests/test_c.py::one",  # one
    ]
    assert conftest.FIRST == ("tests/test_profile_chain.py",)


def test_a_module_can_announce_the_notebooks_it_needs_in_order():
    chain = item("tests/test_profile_chain.py::x", NOTEBOOKS_NEEDED=("02", "03"))
    nb05 = item("tests/test_notebook_05.py::y", module="tests.test_notebook_05")
    assert conftest.notebooks_needed([chain, nb05]) == ["02", "03", "05"]
    assert conftest.notebooks_needed([nb05, chain]) == ["05", "02", "03"]


FAKE_RUN = """
import json, sys, time
from pathlib import Path
notebook, root = Path(sys.argv[1]), Path(sys.argv[2])
time.sleep(float(json.loads(sys.argv[3])["seconds"]))
(root / notebook.stem).mkdir(parents=True)
(root / notebook.stem / "metrics.json").write_text("{}")
"""


def test_two_runs_of_one_process_at_once_are_each_judged_by_their_own_exit(tmp_path, monkeypatch):
    """Its thread running ahead and a test asking for another notebook: each run's own exit
    status (the second run's exit was read for the first, and a good run was marked failed)."""
    monkeypatch.setattr(conftest, "RUN_ONE", FAKE_RUN)
    runs = conftest.NotebookRuns(tmp_path, {"01_a": {"seconds": 1.0}, "02_b": {"seconds": 2.0}})
    runs.notebooks = {"01": tmp_path / "01_a.ipynb", "02": tmp_path / "02_b.ipynb"}
    ahead = threading.Thread(target=runs._claim, args=("02", False))
    ahead.start()
    time.sleep(0.2)  # the longer run starts first and ends last
    assert runs.get("01") == ({}, tmp_path / "01" / "01_a")
    ahead.join()
    assert runs.get("02") == ({}, tmp_path / "02" / "02_b")
    assert not list(tmp_path.glob("*.failed")) and runs.running == set()
