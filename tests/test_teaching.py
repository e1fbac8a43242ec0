"""The teaching conventions of a notebook, checked on its executed copy (small parameters).

For every notebook of :data:`NOTEBOOKS` (a notebook rebuilt to the conventions: add its prefix):

(a) **Every figure is read.** A code cell that draws (an ``image/png`` output, or a call of
    ``save_fig``) is followed, in the next cell, by a computed reading: a code cell whose output is
    Markdown built from the run (``IPython.display.Markdown``), or a markdown cell holding a
    number that ``test_prose_numbers`` accepts as printed by the run.
(b) **Exercises with run solutions.** The notebook ends with a ``## Exercises`` section of 2 or 3
    exercises (markdown cells opening with ``**Exercise``), each followed by its solution: code
    cells tagged ``solution``, hidden by default in JupyterLab (``{"jupyter": {"source_hidden":
    true}}``), each executed without error, the last one showing the result. After the
    exercises only the run's record (cells tagged ``record``: the found box's update and
    ``metrics.json``) may follow.
(c) **Copied cells run.** What a copied cell needs: the first code cell (imports, plot style,
    paths), the tagged parameters cell (papermill's injected one as well) and the opening code cell
    of the cell's section. Checked in a fresh IPython shell, one subprocess for all the notebooks
    (the imports paid once), with the test's small parameters and a copy of each run's results
    folder: for every ``## `` section, the shell is reset, runs the first code cell and the
    parameters, then the section's cells in order, so
    *every* later cell of a section runs with nothing from another section (no sample: the
    sections of 01 to 08 run in seconds). Cells tagged ``record`` are exempt (they gather the
    whole run by design). A NameError, or any other error, fails with the section and the cell.
    ``results.save_fig`` checks its arguments and names the file but draws no pixels there: the
    notebook's own run drew every figure, and drawing was most of the sections' time. What
    survives a reset is frozen (``gc.freeze``): IPython's reset collects garbage, and a full
    collection over the imported stack took 0.3 s, half the check's time over 73 sections.

Each notebook also opens with a "what we found, how sure, what it rests on" box: a code cell
tagged ``found`` before the first section shows a display with ``display_id="found"``, which the
record cell fills from the run (``display(..., display_id="found", update=True)``); checked on the
executed copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_prose_numbers import ALLOWED, NUMBER, printed_numbers, stray_numbers

from aigc_lib import parallel

NOTEBOOKS = ["01", "02", "03", "04", "05", "06", "07", "08"]
"""Notebooks that follow the teaching conventions (a rebuilt notebook: add its prefix here)."""

FIGURE_CALL = re.compile(r"\bsave_fig\(")
EXERCISE = re.compile(r"^\*\*Exercise\b")
SECTION = re.compile(r"^## ", re.MULTILINE)


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _texts(output: dict, kind: str) -> str:
    text = output.get("data", {}).get(kind, "")
    return "".join(text) if isinstance(text, list) else text


def draws_figure(cell: dict) -> bool:
    """A code cell with an ``image/png`` output or a ``save_fig`` call."""
    if cell["cell_type"] != "code":
        return False
    images = any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
    return images or bool(FIGURE_CALL.search(_source(cell)))


def is_reading(cell: dict, printed: set[str], allowed: dict[str, str]) -> bool:
    """A computed reading: Markdown output with a number, or markdown prose whose numbers (at
    least one) are all printed by the run, references or reviewed phrases."""
    if cell["cell_type"] == "code":
        markdown = [_texts(out, "text/markdown") for out in cell.get("outputs", [])]
        return any(NUMBER.search(text) for text in markdown)
    if cell["cell_type"] != "markdown" or not NUMBER.search(_source(cell)):
        return False
    return not stray_numbers([cell], printed, allowed)


def unread_figures(cells: list[dict], allowed: dict[str, str]) -> list[int]:
    """Indices of the figure cells not followed, in the next cell, by a computed reading."""
    printed = printed_numbers(cells)
    return [
        i
        for i, cell in enumerate(cells)
        if draws_figure(cell)
        and not (i + 1 < len(cells) and is_reading(cells[i + 1], printed, allowed))
    ]


def exercise_problems(cells: list[dict]) -> list[str]:
    """What is wrong with the notebook's exercises (an empty list: nothing)."""
    heads = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    start = [i for i in heads if _source(cells[i]).startswith("## Exercises")]
    if not start:
        return ["no '## Exercises' section"]
    rest = cells[start[-1] + 1 :]
    problems = []
    if any(c["cell_type"] == "markdown" and SECTION.search(_source(c)) for c in rest):
        problems.append("the exercises are not the notebook's last section")
    exercises = [
        i for i, c in enumerate(rest) if c["cell_type"] == "markdown" and EXERCISE.match(_source(c))
    ]
    if not 2 <= len(exercises) <= 3:
        problems.append(f"{len(exercises)} exercises, expected 2 or 3")
    for k, i in enumerate(exercises):
        end = exercises[k + 1] if k + 1 < len(exercises) else len(rest)
        solutions = [c for c in rest[i + 1 : end] if "solution" in _tags(c)]
        if not solutions:
            problems.append(f"exercise {k + 1}: no cell tagged 'solution'")
        for c in solutions:
            if not c.get("metadata", {}).get("jupyter", {}).get("source_hidden"):
                problems.append(f"exercise {k + 1}: a solution cell is not hidden")
            if c.get("execution_count") is None:
                problems.append(f"exercise {k + 1}: a solution cell was not run")
            if any(out.get("output_type") == "error" for out in c.get("outputs", [])):
                problems.append(f"exercise {k + 1}: a solution cell raised an error")
        if solutions and not solutions[-1].get("outputs"):
            problems.append(
                f"exercise {k + 1}: the solution shows no result (its last cell has no output)"
            )
    for c in rest[exercises[-1] + 1 :] if exercises else []:
        if c["cell_type"] == "code" and not {"solution", "record"} & set(_tags(c)):
            problems.append("a code cell after the exercises is neither a solution nor the record")
    return problems


def sections(cells: list[dict]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(head, [(section title, its code sources), ...]): head = the first code cell and the
    parameters cells; a section starts at a markdown cell with a ``## `` heading."""
    code = [c for c in cells if c["cell_type"] == "code"]
    params = [c for c in code if {"parameters", "injected-parameters"} & set(_tags(c))]
    head = [_source(code[0])] + [_source(c) for c in params]
    found: list[tuple[str, list[str]]] = []
    for cell in cells:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^## (.*)$", _source(cell), re.MULTILINE)
            if match:
                found.append((match.group(1).strip(), []))
        elif found and "record" not in _tags(cell):
            found[-1][1].append(_source(cell))
    return head, [(title, sources) for title, sources in found if sources]


RUNNER = textwrap.dedent(
    """
    import gc, json, sys
    from IPython.core.interactiveshell import InteractiveShell

    spec = json.load(open(sys.argv[1]))
    shell = InteractiveShell.instance()

    import matplotlib.pyplot as plt
    from aigc_lib import results

    def save_fig(fig, name, results_dir, dpi=110):  # checked and named, not drawn (see above)
        target = results.figure_path(name, results_dir)  # the library's refusal of a bad name
        plt.close(fig)
        return results.WrittenPath(target)

    results.save_fig = save_fig
    failures = {}
    for notebook in spec:  # several notebooks: the imports are paid once
        failures[notebook["name"]] = []
        for title, sources in notebook["sections"]:
            shell.reset(new_session=False)  # its full collection scans only what is not frozen
            gc.collect()  # the last section's cycles, then what is left (the imports) is frozen:
            gc.freeze()  # a full collection of the whole stack took 0.3 s, 24 s over the sections
            for k, source in enumerate(notebook["head"] + sources):
                if k == len(notebook["head"]):
                    shell.user_ns["results_dir"] = notebook["results_dir"]
                result = shell.run_cell(source, silent=True)
                error = result.error_before_exec or result.error_in_exec
                if error is not None:
                    n = len(notebook["head"])
                    where = "the head" if k < n else f"cell {k - n}"
                    failure = f"{title}, {where}: {type(error).__name__}: {error}"
                    failures[notebook["name"]].append(failure)
                    break
    json.dump(failures, open(sys.argv[2], "w"))
    """
)


def copied_cell_failures(
    cells: list[dict], cwd: Path, tmp_path: Path, results: Path | None = None
) -> list[str]:
    """Run every section after the head in a fresh IPython namespace (one subprocess).

    ``results``: the executed run's results folder, copied to be the sections' ``results_dir``, so
    that what the run wrote (notebook 02's sweep rows) is found instead of measured again."""
    return many_copied_cell_failures({"one": (cells, results)}, cwd, tmp_path)["one"]


def many_copied_cell_failures(
    notebooks: dict[str, tuple[list[dict], Path | None]], cwd: Path, tmp_path: Path
) -> dict[str, list[str]]:
    """:func:`copied_cell_failures` for several notebooks ``{name: (cells, results)}`` in one
    subprocess, one after another (each section still in a fresh namespace)."""
    spec = []
    for name, (cells, results) in notebooks.items():
        head, found = sections(cells)
        folder = tmp_path / "results" / name
        if results is not None:
            shutil.copytree(results, folder)
        spec.append({"name": name, "head": head, "sections": found, "results_dir": str(folder)})
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "runner.py").write_text(RUNNER)
    out = tmp_path / "failures.json"
    env = {parallel.JOBS_ENV: "1", **os.environ, "MPLBACKEND": "Agg"}  # no worker pool (conftest)
    subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "spec.json"), str(out)],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
    )
    return json.loads(out.read_text())


# --- the checks on the executed notebooks -----------------------------------------------------


def _executed(notebook_results, prefix: str) -> list[dict]:
    _, folder = notebook_results(prefix)
    return json.loads((folder / f"{folder.name}.ipynb").read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("prefix", NOTEBOOKS)
def test_every_figure_is_followed_by_a_computed_reading(prefix, notebook_results):
    cells = _executed(notebook_results, prefix)
    allowed = {**ALLOWED["all"], **ALLOWED.get(prefix, {})}
    assert any(draws_figure(c) for c in cells)
    unread = unread_figures(cells, allowed)
    assert not unread, f"figures without a computed reading in the next cell: cells {unread}"


@pytest.mark.parametrize("prefix", NOTEBOOKS)
def test_the_notebook_ends_with_exercises_whose_hidden_solutions_ran(prefix, notebook_results):
    problems = exercise_problems(_executed(notebook_results, prefix))
    assert not problems, "\n".join(problems)


def found_box_problems(cells: list[dict]) -> list[str]:
    """What is wrong with the top box: a code cell tagged ``found`` before the first section,
    whose Markdown output (filled by the record cell) says what was found, how sure, what it rests
    on, with numbers from the run."""
    first_section = next(
        (
            i
            for i, c in enumerate(cells)
            if c["cell_type"] == "markdown" and SECTION.search(_source(c))
        ),
        len(cells),
    )
    boxes = [c for c in cells[:first_section] if "found" in _tags(c)]
    if not boxes:
        return ["no cell tagged 'found' before the first section"]
    text = "".join(_texts(out, "text/markdown") for out in boxes[0].get("outputs", []))
    problems = [
        f"the box lacks {part!r}"
        for part in ("found", "how sure", "rests on")
        if part not in text.lower()
    ]
    if not NUMBER.search(text):
        problems.append("the box holds no number from the run")
    return problems


@pytest.mark.parametrize("prefix", NOTEBOOKS)
def test_the_notebook_opens_with_a_computed_found_box(prefix, notebook_results):
    problems = found_box_problems(_executed(notebook_results, prefix))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def section_failures(request, notebook_results, tmp_path_factory):
    """The copied-cell failures of every notebook this session's tests ask about, all in one
    subprocess (the imports of the whole stack paid once, not once per notebook)."""
    test = "test_copied_cells_run_with_the_head_and_their_section_opener"
    asked = [
        item.callspec.params["prefix"]
        for item in request.session.items
        if item.originalname == test and item.module is request.module
    ]
    notebooks = {}
    for prefix in asked:
        _, folder = notebook_results(prefix)
        notebooks[prefix] = (_executed(notebook_results, prefix), folder)
    cwd = Path(__file__).resolve().parent.parent / "notebooks"
    return many_copied_cell_failures(notebooks, cwd, tmp_path_factory.mktemp("sections"))


@pytest.mark.parametrize("prefix", NOTEBOOKS)
def test_copied_cells_run_with_the_head_and_their_section_opener(prefix, section_failures):
    failures = section_failures[prefix]
    assert not failures, "sections that do not run on their own:\n" + "\n".join(failures)


# --- the checks catch what they should ----------------------------------------------------------


def _code(source: str, outputs: list | None = None, tags: list | None = None, **meta) -> dict:
    metadata = {"tags": tags or [], **meta}
    return {"cell_type": "code", "source": source, "outputs": outputs or [], "metadata": metadata,
            "execution_count": 1 if outputs else None}  # fmt: skip


def _md(source: str) -> dict:
    return {"cell_type": "markdown", "source": source, "metadata": {}}


PNG = {"output_type": "display_data", "data": {"image/png": "..."}}


def _markdown_out(text: str) -> dict:
    return {"output_type": "display_data", "data": {"text/markdown": text}}


def test_a_figure_without_a_reading_is_caught():
    cells = [
        _code("results.save_fig(fig, 'a', d)"),
        _md("The figure shows the curves."),  # no number: not a reading
        _code("plt.plot(x)", [PNG]),
        _code("display(Markdown(f'{gain:.3f}'))", [_markdown_out("gain 0.123")]),
        _code("plt.plot(y)", [PNG]),
        _md("It gains 0.123 points."),  # printed above: a reading
        _code("plt.plot(z)", [PNG]),
        _md("It gains 7.456 points."),  # typed, never printed: not a reading
    ]
    assert unread_figures(cells, {}) == [0, 6]


def _exercises(solution_meta: dict, outputs: list, n: int = 2) -> list[dict]:
    cells = [_md("## Exercises")]
    for k in range(n):
        cells += [
            _md(f"**Exercise {k + 1}.** Halve lambda."),
            _code("x", outputs, ["solution"], **solution_meta),
        ]
    return cells + [_code("write_metrics(m, d)", [], ["record"])]


def test_exercises_without_a_hidden_run_solution_are_caught():
    hidden = {"jupyter": {"source_hidden": True}}
    ran = [{"output_type": "stream", "text": "ok"}]
    assert exercise_problems(_exercises(hidden, ran)) == []
    assert exercise_problems(_exercises(hidden, ran, n=1)) == ["1 exercises, expected 2 or 3"]
    assert "not hidden" in " ".join(exercise_problems(_exercises({}, ran)))
    assert "not run" in " ".join(exercise_problems(_exercises(hidden, [])))
    error = [{"output_type": "error", "ename": "NameError"}]
    assert "raised an error" in " ".join(exercise_problems(_exercises(hidden, error)))
    untagged = _exercises(hidden, ran)
    untagged[2]["metadata"]["tags"] = []
    assert "no cell tagged" in " ".join(exercise_problems(untagged))
    assert exercise_problems([_md("## Summary")]) == ["no '## Exercises' section"]
    two_parts = _exercises(hidden, ran)
    two_parts.insert(2, _code("build = 1", [], ["solution"], jupyter={"source_hidden": True}))
    two_parts[2]["execution_count"] = 3  # run, no output: fine before the cell showing the result
    assert exercise_problems(two_parts) == []
    two_parts[3]["outputs"], two_parts[3]["execution_count"] = [], 4
    assert exercise_problems(two_parts) == [
        "exercise 1: the solution shows no result (its last cell has no output)"
    ]


def test_a_section_that_needs_another_sections_names_is_caught(tmp_path):
    cells = [
        _code("import math\nscale = 2"),
        _code("seed = 0", tags=["parameters"]),
        _md("## 1. First"),
        _code("rng = seed + scale"),
        _code("total = math.sqrt(rng + 2)"),
        _md("## 2. Second"),
        _code("half = total / 2"),  # total is section 1's: a copied cell fails
        _code("write(total, half)", tags=["record"]),  # exempt
    ]
    failures = copied_cell_failures(cells, tmp_path, tmp_path)
    assert len(failures) == 1 and failures[0].startswith("2. Second, cell 0: NameError")
    cells[6] = _code("half = seed / scale")
    assert copied_cell_failures(cells, tmp_path, tmp_path) == []


def test_a_missing_or_placeholder_found_box_is_caught():
    box = _code(
        "display(Markdown('...'), display_id='found')",
        [_markdown_out("*filled in by the run*")],
        ["found"],
    )
    cells = [_code("import x"), box, _md("## 1. First")]
    assert "the box lacks 'how sure'" in found_box_problems(cells)
    box["outputs"] = [
        _markdown_out("**Found**: 12.5% ... **How sure**: exact ... **Rests on**: priors")
    ]
    assert found_box_problems(cells) == []
    assert found_box_problems([cells[0], cells[2], box]) == [
        "no cell tagged 'found' before the first section"
    ]
