"""Project hygiene: clean source notebooks, consistent package lists, no data copies, CI command."""

import functools
import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from aigc_lib import _io, reproduce

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def committed_text(path: Path, root: Path = ROOT) -> str:
    """What git would commit of ``path``: its staged copy (the index), so that outputs JupyterLab
    saved into the working copy while a student ran it do not count until they are added; the
    working copy where git does not track it (an export without git, a new notebook)."""
    done = subprocess.run(
        ["git", "show", f":{path.relative_to(root).as_posix()}"],
        cwd=root,
        capture_output=True,
        timeout=60,
    )
    return done.stdout.decode("utf-8") if done.returncode == 0 else path.read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_source_notebook_is_clean(path):
    """Checks what is committed (see committed_text): running a notebook in JupyterLab, which
    autosaves its outputs, and then ``make test`` passes."""
    text = committed_text(path)
    nb = json.loads(text)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        "outputs committed"
    )
    assert "sys.path" not in text
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in code) == 1, (
        "one tagged parameters cell"
    )
    assert "import *" not in text


def test_the_clean_check_reads_the_index_not_the_working_copy(tmp_path):
    """A notebook run in JupyterLab (outputs autosaved) passes until its outputs are staged."""
    git = functools.partial(subprocess.run, cwd=tmp_path, check=True, capture_output=True)
    git(["git", "init", "-q"])
    path = tmp_path / "notebooks" / "01_demo.ipynb"
    path.parent.mkdir()
    clean = {"cells": [{"cell_type": "code", "outputs": [], "execution_count": None}]}
    path.write_text(json.dumps(clean))
    git(["git", "add", "notebooks"])
    run = {"cells": [{"cell_type": "code", "outputs": [{"text": "1"}], "execution_count": 1}]}
    path.write_text(json.dumps(run))
    assert json.loads(committed_text(path, tmp_path)) == clean
    git(["git", "add", "notebooks"])
    assert json.loads(committed_text(path, tmp_path)) == run


KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_names_the_kernel_jupyterlab_writes(path):
    """Issue 29: JupyterLab rewrites a kernelspec of "Python 3" to ipykernel's, marking the
    notebook modified as soon as it opens."""
    assert json.loads(path.read_text())["metadata"]["kernelspec"] == KERNELSPEC


def _environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    return [r for r in pip if not r.startswith("-")]


def _lock_pins():
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def test_environment_yml_lists_the_pyproject_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    assert wanted <= {_name(r) for r in _environment_pins()}


def test_environment_yml_pins_exactly_the_lock():
    """conda env create installs what make installs: the same pins, none missing or extra."""
    environment, lock = _environment_pins(), _lock_pins()
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^=<>!~ ]+", r) for r in environment), environment
    by_name = {_name(r): r for r in environment}
    assert len(by_name) == len(environment)  # no package twice
    assert by_name == {_name(r): r for r in lock}


def test_lock_pins_every_dependency_and_torch_2_13():
    lock = {
        _name(l): l
        for l in (ROOT / "requirements.lock").read_text().splitlines()
        if l and not l.startswith("#")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert "==" in lock[_name(req)], req
    assert lock["torch"] == "torch==2.13.0"
    assert not {"torchvision", "timm", "open-clip-torch"} & set(lock)


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec make test")


def test_no_copy_of_partiprompts_is_tracked():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True
    ).stdout.lower()
    assert "partiprompts.tsv" not in tracked


def test_find_notebooks_rejects_unknown_prefix():
    with pytest.raises(ValueError, match="only: no notebook starts with"):
        reproduce.find_notebooks(["99"])


ABSOLUTE_PATH = re.compile(r"""(?<![\w.~<>/-])/(?:[\w.@+-]+/)+[\w.@+-]*""")
"""An absolute path of this machine (``/home/...``, ``/tmp/...``), not ``../results`` or ``TFLOP/s``."""


def machine_paths(text):
    text = re.sub(r'"image/[\w+.-]+": "[^"]*"', "", text)  # base64 figures are no paths
    return sorted(set(ABSOLUTE_PATH.findall(text)))


def test_absolute_paths_are_recognised():
    text = "PosixPath('/srv/x/results/a.png') ../results/b.png 2.5 TFLOP/s <python>/lib/x.py ~/y"
    assert machine_paths(text) == ["/srv/x/results/a.png"]
    assert machine_paths('{"image/png": "iVBOR/+a/b/c", "text/plain": "/tmp/x/y"}') == ["/tmp/x/y"]


def test_executed_copy_is_complete_and_names_no_machine_path(notebook_results):
    _, folder = notebook_results("01")
    executed = folder / "01_prompts_and_clipscore_distributions.ipynb"
    meta = json.loads(executed.read_text())["metadata"]["papermill"]
    assert meta["input_path"] == "notebooks/01_prompts_and_clipscore_distributions.ipynb"
    assert not Path(meta["output_path"]).is_absolute()
    assert meta["parameters"]["interactive"] is False  # headless runs draw static figures
    assert str(ROOT) not in executed.read_text()
    assert machine_paths(executed.read_text()) == []
    assert not list(folder.glob(".*.ipynb"))  # no temporary left behind
    mask = _io.umask()  # every file and folder written has a normal mode (0644 / 0755)
    for path in [folder, *folder.rglob("*")]:
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        assert oct(stat.S_IMODE(path.stat().st_mode)) == oct(expected), path


def _ignored(paths):
    """The paths git's ignore rules match (tracked or not)."""
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=ROOT,
        text=True,
        input="\n".join(paths),
        capture_output=True,
    )
    return set(done.stdout.split())


def test_committed_results_are_not_ignored_and_temporaries_are():
    tracked = subprocess.run(
        ["git", "ls-files", "-ci", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert tracked == []  # no committed file matches an ignore rule
    stem = "04_step_selection_and_resource_allocation"
    kept = [
        "results/paper_vs_ours.md",
        "results/paper_vs_ours.csv",
        f"results/{stem}/metrics.json",
        f"results/{stem}/figures/annealing_trace.png",
        f"results/{stem}/{stem}.ipynb",
        "results/02_step_sweeps_on_the_gpu/sweep_random-tiny/rows-000.jsonl",
    ]
    temporaries = [
        f"results/.{stem}.running-ab12cd/metrics.json",
        f"results/.{stem}.old-ab12cd/x.png",
        f"results/{stem}/.{stem}.failed.ipynb",
        f"results/{stem}/.{stem}.running.ipynb",
        f"results/.{stem}.running-1234-ab12cd/metrics.json",
        f"results/.{stem}.staged-1234-ab12cd/figures/x.png",
        f"results/.{stem}.failed/{stem}.failed.ipynb",
        f"results/{stem}/.inputs.json",
        "results/.aigc.lock",
        f"results/profiles/my_gpu/{stem}/metrics.json",
        f"results/{stem}/figures/.annealing_trace.png.k2j4.tmp",
        "data/cache/PartiPrompts.tsv",
        "data/cache/.PartiPrompts.tsv.k2j4.tmp",
        "requirements.lock.new",
        "environment.yml.new",
    ]
    assert _ignored(kept + temporaries) == set(temporaries)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_code_is_short_lines_without_statement_chains(path):
    import io
    import tokenize

    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        assert all(len(line) <= 100 for line in source.splitlines()), source
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        assert not any(t.type == tokenize.OP and t.string == ";" for t in tokens), source


def test_taught_in_names_only_notebooks_that_use_the_name():
    """A docstring's "Taught in notebooks/NN_..." must point at a notebook whose code uses the name."""
    import ast

    texts = {
        p.stem: "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"])
        for p in NOTEBOOKS
    }
    wrong = []
    for module in sorted((ROOT / "aigc_lib").glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                doc = (ast.get_docstring(node) or "").replace("\n", " ").replace("``", "")
                for stem in re.findall(r"notebooks/(\d\d_[a-z0-9_]+)\.ipynb", doc):
                    if not re.search(rf"\b{node.name}\b", texts.get(stem, "")):
                        wrong.append(f"{module.stem}.{node.name} -> {stem}")
    assert not wrong, wrong


def test_nothing_user_facing_points_outside_the_project():
    banned = re.compile(r"\.\./shared|FACTS\.md|STYLE\.md|DEVELOPERS\.md")
    files = [
        ROOT / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "data").rglob("*.yaml"),
        *(ROOT / "data").rglob("*.md"),
        *NOTEBOOKS,
        *(ROOT / "aigc_lib").glob("*.py"),
    ]
    hits = [str(p.relative_to(ROOT)) for p in files if banned.search(p.read_text(encoding="utf-8"))]
    assert not hits, hits


COMMITTED = sorted((ROOT / "results").glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_executed_notebooks_are_reproducible_byte_for_byte(path):
    """Finding 7: no absolute path, no timing metadata, stable cell ids, no progress bars."""
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    ids = [cell.get("id") for cell in nb["cells"]]
    assert reproduce.INJECTED_ID in ids, "executed by an older runner: run make reproduce"
    assert machine_paths(text) == []
    assert not {"start_time", "end_time", "duration"} & set(nb["metadata"].get("papermill", {}))
    source = json.loads((ROOT / "notebooks" / path.name).read_text(encoding="utf-8"))
    assert [i for i in ids if i != reproduce.INJECTED_ID] == [c["id"] for c in source["cells"]]
    for cell in nb["cells"]:
        assert "execution" not in cell["metadata"]
        assert not {"start_time", "end_time", "duration"} & set(
            cell["metadata"].get("papermill", {})
        )
    assert not re.search(r"\d+(?:\.\d+)?(?:it|s)/(?:s|it)\b|\d+%\|", text), "a progress bar"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_parameter_is_checked_right_after_the_parameters_cell(path):
    """Each notebook's cell after its parameters cell checks every parameter (validate.parameters);
    the runner reads the same rules before any kernel starts."""
    rules = reproduce.parameter_rules(path)
    assert sorted(rules) == reproduce.notebook_parameters(path)
    from aigc_lib import validate

    defaults = reproduce.parameter_defaults(path)
    for name, rule in rules.items():  # every rule readable, every default follows its rule
        validate.check_rule(defaults[name], rule, name, cwd=path.parent)


def test_setup_checks_partiprompts_before_installing_anything(tmp_path):
    """Finding 6: without PartiPrompts a newcomer waited through the install first."""
    recipe = subprocess.run(
        ["make", "-n", "-B", "setup"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    check = recipe.index("aigc_lib.prompts --check")
    assert check < recipe.index("-m venv") < recipe.index("pip install")
    # the check needs the standard library only (-S: no site-packages, as before the install)
    env = dict(os.environ, PARTIPROMPTS_PATH=str(tmp_path / "missing.tsv"))
    check_alone = functools.partial(  # the check needs the standard library only (-S)
        subprocess.run,
        [sys.executable, "-S", "-m", "aigc_lib.prompts", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    done = check_alone(env=env)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: PARTIPROMPTS_PATH: ")
    env["PARTIPROMPTS_PATH"] = os.environ["PARTIPROMPTS_PATH"]
    done = check_alone(env=env)
    assert done.returncode == 0 and "md5 verified" in done.stdout, done.stderr


def test_readme_commands_work_as_written():
    """Finding 6: README lines that did not work as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in readme.splitlines():  # papermill's -p passes a string; the runner's reads YAML
        if re.search(r"""-p \w+ ["']\[""", line):
            assert "aigc_lib.reproduce" in line, line
    assert re.search(r"""-y ["']\w+: \[""", readme)  # lists with -y (YAML)
    assert "ruff format" in readme and "make test" in readme
    assert "PIP_TIMEOUT" in readme and "PIP_FIND_LINKS" in readme  # when the CPU index is down
    assert "python -m aigc_lib.reproduce --profile" in readme


STRAY_REPR = re.compile(
    r"^(?:\w*Path\(|<function |<bound method |<module |<DisplayHandle |<[\w.]+ object at 0x)"
)
"""The repr of a path, a function, a module, a display handle or a plain object: what a cell shows
when its last line returns one (``save_fig`` returning its path, ``ipywidgets.interact`` its
function, ``display(..., display_id=...)`` its handle)."""


def stray_reprs(executed: Path) -> list[str]:
    """The outputs of ``executed`` that are nothing but such a repr."""
    found = []
    for cell in json.loads(executed.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            plain = "".join(output.get("data", {}).get("text/plain", ""))
            if output.get("output_type") == "execute_result" and STRAY_REPR.match(plain):
                found.append(plain)
    return found


def test_stray_reprs_are_recognised(tmp_path):
    cells = [
        {"outputs": [{"output_type": "execute_result", "data": {"text/plain": text}}]}
        for text in [
            "PosixPath('../results/a.png')",
            "<function __main__.compare(x)>",
            "<DisplayHandle display_id=found>",
            "3.5",
        ]
    ]
    (tmp_path / "x.ipynb").write_text(json.dumps({"cells": cells}))
    assert stray_reprs(tmp_path / "x.ipynb") == [
        "PosixPath('../results/a.png')",
        "<function __main__.compare(x)>",
        "<DisplayHandle display_id=found>",
    ]


@pytest.mark.parametrize("prefix", [p.name[:2] for p in NOTEBOOKS])
def test_no_cell_shows_a_bare_repr_of_a_path_or_a_function(notebook_results, prefix):
    """Issue 29: ``PosixPath('../results/...png')`` under every saved figure."""
    _, folder = notebook_results(prefix)
    assert stray_reprs(folder / f"{folder.name}.ipynb") == []


def test_the_folders_the_readme_copies_into_exist():
    """Issue 29: README's ``cp ... data/profiles/...`` failed until the folder existed."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"^cp .*?(?:\\\n\s*)?(\S+)$", readme, flags=re.M)
    assert targets, "README copies a profile into data/profiles/"
    for target in targets:
        folder = ROOT / (target if target.endswith("/") else os.path.dirname(target))
        assert folder.is_dir() and _tracked(folder), target


def _tracked(folder: Path) -> bool:
    """Whether git tracks a file in ``folder`` (a fresh clone has it), or git is not there."""
    done = subprocess.run(
        ["git", "ls-files", "--", str(folder)], cwd=ROOT, capture_output=True, text=True
    )
    return done.returncode != 0 or bool(done.stdout.strip())


def test_no_library_function_is_over_sixty_lines():
    """DEVELOPERS.md: keep the library obvious, no function over 60 lines (name the steps)."""
    import ast

    long = {
        f"{module.stem}.{node.name}": node.end_lineno - node.lineno + 1
        for module in sorted((ROOT / "aigc_lib").glob("*.py"))
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > 60
    }
    assert not long, long
