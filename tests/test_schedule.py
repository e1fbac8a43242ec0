"""How ``make test`` orders its work (tests/conftest.py): the test files pytest-xdist hands out,
and the notebooks run ahead for them."""

from __future__ import annotations

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
