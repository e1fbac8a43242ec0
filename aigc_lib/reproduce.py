"""Execute the notebooks headlessly with papermill, writing ``results/`` (``make reproduce``).

    python -m aigc_lib.reproduce                      # every notebook, default parameters
    python -m aigc_lib.reproduce --only 03 04         # some of them
    python -m aigc_lib.reproduce --only 04 -p n_slots 50 -p weights "[0.1, 1.0]"  # YAML literals
    python -m aigc_lib.reproduce --params small.yaml  # {notebook stem or "all": {name: value}}
    python -m aigc_lib.reproduce --resume             # skip notebooks whose inputs did not change
    python -m aigc_lib.reproduce --jobs 1             # one notebook at a time (default: 2 side by side)
    python -m aigc_lib.reproduce --profile my_gpu.yaml  # 03-07 on a profile: results/profiles/my_gpu/

Before anything runs. The project root is the checkout of the notebooks to run; the run is
refused (one line) when the Python environment's ``aigc_lib``, the runner's or the one a kernel
started beside the notebooks imports, belongs to another checkout (results land in this checkout
only). Every parameter is checked: a name the notebook does not declare, a value whose type does
not match the notebook's default (``-p n_slots abc`` against ``n_slots = 300``), and a value
breaking the rule of the notebook's parameter-check cell (:func:`aigc_lib.validate.parameters`,
read here without running it). PartiPrompts is checked. The results folder is locked: one run at a
time per results folder, and a second run is refused with a message saying which process holds
it. A read-only results folder gives one line.

Notebooks run two side by side (``--jobs``, :data:`NOTEBOOK_JOBS`; no notebook reads another's
results), each in a process of its own under the runner's lock, printing a line as each starts
and ends; ``--jobs 1`` runs them one after another in this process, each with a progress bar of
its cells. A failure starts no further notebook.

Each notebook runs with its folder as working directory, the parameter ``results_dir`` set to its
results folder (relative to the notebooks' folder) and ``interactive`` to False (static figures
instead of sliders). Runs are atomic per results folder: a notebook runs in a new folder (a hidden
sibling, ``.<stem>.running-<pid>-<random>``, holding only the step sweeps of the old one, which
a resumed sweep reuses: :data:`CARRIED`), which replaces the folder only when the run succeeded;
a figure the notebook no longer draws does not survive. A failed run leaves the results folder as it was and keeps its partial
output in ``<results>/.<stem>.failed/``, which the error names (the next successful run removes
it). What killed runs left (running, old and staging folders of processes that no longer run) is
removed when a run starts.

The executed copy is written so that a rerun which changes nothing leaves the same bytes: no
absolute path (the results folder, the checkout, the environment and the home folder are written
relative or symbolically), stable cell ids, no timing metadata of papermill or the kernel, no
progress bars (they carry rates and times), and ``metrics.json`` rounded
(:func:`aigc_lib.results.write_metrics`). Every kernel uses the same OpenBLAS kernel on every
x86-64 machine (:data:`BLAS_CORE`), so that the numbers themselves are the same bytes. Each
notebook's run prints its time; Ctrl-C stops the command with one line.

``--resume`` skips a notebook whose executed copy was made from the same inputs: a hash of the
notebook, the library source, the data files (scenarios, profiles, FLOP table), the pinned
requirements, PartiPrompts, every file a parameter names, and the parameters themselves (kept in
``<results>/<stem>/.inputs.json``); it says what changed when it reruns one.

``--profile PATH`` runs notebooks 03-07 (or those of ``--only``) with their parameter
``profile`` set to PATH (passed on to ``scenario.load_scenario(profile=...)``) into
``results/profiles/<profile stem>/``, never over the committed results; the profile is read
first (a profile fitted on random weights is refused unless ``--allow-random-weights``, which sets
the notebooks' parameter ``allow_random_weights``). After the notebooks, ``paper_vs_ours``,
``interpretations`` and ``peers`` (.md and .csv) are regenerated from their metrics in the same
results folder.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from aigc_lib import results
from aigc_lib._io import (
    atomic_write_text,
    folder_lock,
    load_yaml,
    remove_dead_siblings,
    temporary_sibling,
    write_json,
)
from aigc_lib.results import STAGING_ENV

ROOT = results.PROJECT_ROOT
NOTEBOOKS_DIR = ROOT / "notebooks"
RESULTS_DIR = ROOT / "results"
PROFILE_NOTEBOOKS = ("03", "04", "05", "06", "07")
"""The notebooks ``--profile`` runs by default: those that evaluate the paper's methods on a
scenario (notebooks 01 and 02 measure and fit; they do not take a profile)."""
RUNNING, OLD = "running", "old"
INPUTS_NAME = ".inputs.json"
INJECTED_ID = "injected-parameters"


class CheckoutError(ValueError):
    """The Python environment's ``aigc_lib`` does not belong to the notebooks' checkout."""


# ---------------------------------------------------------------- notebooks and their parameters


def find_notebooks(
    only: Sequence[str] = (), notebooks_dir: str | os.PathLike | None = None
) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` of ``notebooks_dir`` (default :data:`NOTEBOOKS_DIR`)
    in order; ``only`` keeps those whose stem starts with an entry."""
    folder = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        unknown = [o for o in only if not any(p.stem.startswith(o) for p in found)]
        if unknown:
            raise ValueError(
                f"only: no notebook starts with {unknown}; have {[p.stem for p in found]}"
            )
        found = [p for p in found if any(p.stem.startswith(o) for o in only)]
    return found


@functools.lru_cache(maxsize=64)
def _inspect(path: str, mtime_ns: int) -> dict[str, dict]:
    import papermill

    return dict(papermill.inspect_notebook(path))


def _inspected(notebook: str | os.PathLike) -> dict[str, dict]:
    path = Path(notebook).resolve()
    return _inspect(str(path), path.stat().st_mtime_ns)


def notebook_parameters(notebook: str | os.PathLike) -> list[str]:
    """The names in ``notebook``'s tagged parameters cell (papermill's inspection), sorted."""
    return sorted(_inspected(notebook))


_NO_DEFAULT = object()


def parameter_defaults(notebook: str | os.PathLike) -> dict[str, Any]:
    """Each parameter's default value (a literal of the parameters cell); a default that is not a
    literal is left out."""
    defaults = {}
    for name, info in _inspected(notebook).items():
        try:
            defaults[name] = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return defaults


def parameter_rules(notebook: str | os.PathLike) -> dict[str, str]:
    """The rules of ``notebook``'s parameter-check cell, ``{parameter: rule}``: the code cell right
    after the parameters cell, calling ``validate.parameters(name=(name, "rule"), ...)``
    (:func:`aigc_lib.validate.parameters`). Read, not run. Empty when the notebook has no such
    cell."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    code = [c for c in cells if c.get("cell_type") == "code"]
    tagged = [
        i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if not tagged or tagged[0] + 1 >= len(code):
        return {}
    source = code[tagged[0] + 1].get("source", "")
    try:
        tree = ast.parse("".join(source) if isinstance(source, list) else source)
    except SyntaxError:
        return {}
    rules = {}
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "parameters"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "validate"
        ):
            continue
        for keyword in node.keywords:
            value = keyword.value
            if (
                keyword.arg is not None
                and isinstance(value, ast.Tuple)
                and len(value.elts) == 2
                and isinstance(value.elts[1], ast.Constant)
                and isinstance(value.elts[1].value, str)
            ):
                rules[keyword.arg] = value.elts[1].value
    return rules


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return None


def _fits(value: Any, kind: str) -> bool:
    got = _kind(value)
    return got == kind or (kind == "float" and got == "int")


def _check_like_default(stem: str, name: str, value: Any, default: Any) -> None:
    """``value`` must have the type of the parameter's default (an int is a float; a list's items
    the type of the default's items when those share one)."""
    kind = _kind(default)
    if default is None or kind is None:
        return
    hint = ""
    if isinstance(value, str) and kind in ("list", "dict"):
        hint = " (a string; give lists as YAML: -p steps '[1, 2]')"
    if not _fits(value, kind):
        raise ValueError(
            f"parameters: {stem}: {name}: expected {'an' if kind == 'int' else 'a'} {kind} like "
            f"its default {default!r}, got {value!r}{hint}"
        )
    if kind == "list" and default:
        kinds = {_kind(item) for item in default}
        if len(kinds) == 1 and (item_kind := kinds.pop()) in ("bool", "int", "float", "str"):
            wrong = [item for item in value if not _fits(item, item_kind)]
            if wrong:
                raise ValueError(
                    f"parameters: {stem}: {name}: expected a list of {item_kind} like its default "
                    f"{default!r}, got {value!r} (item {wrong[0]!r})"
                )


def check_parameters(notebook: str | os.PathLike, parameters: Mapping[str, Any]) -> None:
    """Check ``parameters`` for ``notebook`` before any kernel starts; ``ValueError`` in one line.

    Refused: a name the notebook does not declare (listing the ones it does); ``results_dir``
    (the runner sets it); a value whose type differs from the parameter's default; and, when the
    notebook has a parameter-check cell (:func:`parameter_rules`), any parameter (given or default)
    breaking its rule there (relative paths read from the notebook's folder, as in the kernel).
    """
    from aigc_lib import validate

    if not isinstance(parameters, Mapping):
        kind = type(parameters).__name__
        raise ValueError(f"parameters: expected a mapping of names to values, got {kind}")
    stem = Path(notebook).stem
    if "results_dir" in parameters:
        raise ValueError(
            f"parameters: results_dir of {stem} is set by the runner; "
            "use --results-dir (results_root) instead"
        )
    known = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(
            f"parameters: {stem} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters: {', '.join(known)}"
        )
    defaults = parameter_defaults(notebook)
    for name, value in parameters.items():
        _check_like_default(stem, name, value, defaults.get(name))
    values = {**defaults, **parameters}
    for name, rule in parameter_rules(notebook).items():
        if name == "results_dir" or name not in values:
            continue
        try:
            validate.check_rule(values[name], rule, name, cwd=Path(notebook).parent)
        except ValueError as err:
            raise ValueError(f"parameters: {stem}: {err}") from None
    for name in sorted(parameters):
        if SCENARIO_PARAMETER.fullmatch(name):
            _check_scenario_names(stem, name, parameters[name], Path(notebook).parent)


SCENARIO_PARAMETER = re.compile(r"scenario_names?|\w+_scenario")
"""The parameters that name scenarios (``scenario_name``, ``other_scenario``, ``scenario_names``):
each name must be one of ``data/scenarios/`` or a scenario file, as ``scenario.load_scenario``
reads it, checked before any kernel starts."""


def _check_scenario_names(stem: str, name: str, value: Any, folder: Path) -> None:
    """``ValueError`` naming the parameter when a scenario ``value`` (a name, or a list of names)
    is neither a shipped scenario nor an existing file (a relative path read from ``folder``)."""
    from aigc_lib import scenario

    known = scenario.scenario_names()
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(item, str) or item in known or (folder / item).is_file():
            continue
        raise ValueError(
            f"parameters: {stem}: {name}: {item!r} is neither a scenario name {known} nor an "
            "existing scenario file"
        )


def _runner_parameters(notebook: Path) -> dict[str, Any]:
    """What the runner sets besides ``results_dir``: ``interactive=False`` where declared."""
    return {"interactive": False} if "interactive" in notebook_parameters(notebook) else {}


# ---------------------------------------------------------------- the checkout


def project_root(notebook: str | os.PathLike) -> Path | None:
    """The checkout holding ``notebook`` (see :func:`aigc_lib.results.checkout_of`), or None."""
    return results.checkout_of(Path(notebook).resolve().parent)


def _kernel_python() -> str:
    """The Python that papermill's ``python3`` kernel runs (its kernelspec; ``python`` there
    means this interpreter, as jupyter_client reads it)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        command = KernelSpecManager().get_kernel_spec("python3").argv[0]
    except (NoSuchKernel, IndexError):
        return sys.executable
    if re.fullmatch(r"python(\d(\.\d+)?)?", command):
        return sys.executable
    return shutil.which(command) or command


@functools.lru_cache(maxsize=32)
def kernel_library(folder: str) -> Path | None:
    """The checkout whose ``aigc_lib`` a kernel started in ``folder`` imports (None: none)."""
    code = (
        "import importlib.util, os\n"
        "spec = importlib.util.find_spec('aigc_lib')\n"
        "print(os.path.realpath(spec.origin) if spec and spec.origin else '')"
    )
    done = subprocess.run(
        [_kernel_python(), "-c", code], cwd=folder, capture_output=True, text=True, timeout=60
    )
    origin = done.stdout.strip()
    return Path(origin).parent.parent if done.returncode == 0 and origin else None


def check_checkout(notebooks: Sequence[str | os.PathLike]) -> None:
    """Refuse (``CheckoutError``, one line) unless the ``aigc_lib`` of this process and of a
    kernel started beside each notebook both belong to the notebooks' checkout.

    A notebook outside any checkout (a copy elsewhere) runs with the imported package, which the
    kernel must import as well. An environment installed from another checkout would otherwise
    run that checkout's code and write into that checkout's ``results/``.
    """
    for folder in sorted({str(Path(nb).resolve().parent) for nb in notebooks}):
        checkout = results.checkout_of(folder)
        if checkout is not None and checkout != ROOT:
            raise CheckoutError(
                f"checkout: the notebooks are in {checkout}, but aigc_lib is imported from "
                f"{ROOT}; run it with this checkout's environment (cd {checkout} && make setup)"
            )
        kernel = kernel_library(folder)
        if kernel is None or kernel.resolve() != ROOT:
            where = f"aigc_lib from {kernel}" if kernel is not None else "no aigc_lib at all"
            raise CheckoutError(
                f"checkout: a kernel started in {folder} imports {where}, not this checkout's "
                f"({ROOT}): the environment ({sys.prefix}) is installed from another checkout; "
                f"run make setup here (a fresh .venv) or pip install -e {ROOT}"
            )


# ---------------------------------------------------------------- inputs of a run (--resume)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _named_files(text: str, folder: Path) -> list[Path]:
    """The files a parameter's string names, read from ``folder``: a file, a folder's files, or
    a glob's matches; none when it names nothing on disk."""
    if not text or "\n" in text or len(text) > 4096:
        return []
    path = Path(text) if os.path.isabs(text) else folder / text
    if any(c in text for c in "*?["):
        return sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    try:
        if path.is_file():
            return [path]
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.is_file() and p.name[0] != ".")
    except OSError:
        pass
    return []


def _partiprompts_file(root: Path) -> Path | None:
    env = os.environ.get("PARTIPROMPTS_PATH")
    path = Path(env) if env else root / "data" / "cache" / "PartiPrompts.tsv"
    return path if path.is_file() else None


def run_inputs(
    notebook: str | os.PathLike, parameters: Mapping[str, Any], root: Path | None = None
) -> dict[str, str]:
    """What a run of ``notebook`` with ``parameters`` reads, each with its SHA-256: the notebook,
    every file of ``aigc_lib/`` and ``data/`` (the download cache left out), ``pyproject.toml`` and
    ``requirements.lock``, PartiPrompts, every file a parameter names (a path, a folder or a glob,
    read from the notebook's folder), and the parameters (``results_dir`` left out: it names where
    the run writes). ``root``: the checkout (default: the notebook's, else this package's)."""
    notebook = Path(notebook).resolve()
    root = Path(root or project_root(notebook) or ROOT).resolve()
    inputs = {"notebook": _sha256(notebook)}
    for sub in ("aigc_lib", "data"):
        for path in sorted((root / sub).rglob("*")):
            relative = path.relative_to(root)
            skip = relative.parts[:2] == ("data", "cache") or "__pycache__" in relative.parts
            if path.is_file() and not skip and not path.name.startswith("."):
                inputs[str(relative)] = _sha256(path)
    for name in ("pyproject.toml", "requirements.lock"):
        if (root / name).is_file():
            inputs[name] = _sha256(root / name)
    partiprompts = _partiprompts_file(root)
    if partiprompts is not None:
        inputs["PartiPrompts.tsv"] = _sha256(partiprompts)
    chosen = {k: v for k, v in parameters.items() if k != "results_dir"}
    for name in sorted(chosen):
        for text in _strings(chosen[name]):
            for path in _named_files(text, notebook.parent):
                inputs[f"parameter {name}: {_shown(path, root)}"] = _sha256(path)
    blob = json.dumps(chosen, sort_keys=True, default=repr).encode("utf-8")
    inputs["parameters"] = hashlib.sha256(blob).hexdigest()
    return inputs


def stale_inputs(
    notebook: str | os.PathLike, results_root: str | os.PathLike, parameters: Mapping[str, Any]
) -> str | None:
    """Why ``notebook`` must run again into ``results_root`` (None: its executed copy there was
    made from the same inputs, :func:`run_inputs`). ``parameters``: as the run gets them, the
    runner's own (``interactive``) included."""
    notebook = Path(notebook)
    folder = Path(results_root) / notebook.stem
    if not (folder / notebook.name).is_file():
        return "not executed yet"
    try:
        recorded = json.loads((folder / INPUTS_NAME).read_text(encoding="utf-8"))["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no record of the inputs of its executed copy"
    now = run_inputs(notebook, parameters)
    changed = sorted(k for k in set(now) | set(recorded) if now.get(k) != recorded.get(k))
    if not changed:
        return None
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return f"changed: {shown}"


# ---------------------------------------------------------------- running one notebook


def run_notebook(
    notebook: Path,
    results_root: Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Execute one notebook with papermill into ``<results_root>/<stem>/<name>``; return that path.

    ``results_root`` defaults to the notebook's checkout's ``results/``. First the checkout
    (:func:`check_checkout`) and ``parameters`` (:func:`check_parameters`) are checked. The run
    holds the results folder's lock, removes what ended runs left there, and runs in a new
    temporary folder holding the step sweeps of the old one (:data:`CARRIED`), which replaces the folder only when the run succeeded, with the record of its inputs
    (``.inputs.json``, for ``--resume``). On failure the folder is left as it was, the partial
    output (the executed notebook up to the error, as ``<stem>.failed.ipynb``, and the files
    written) is kept in ``<results_root>/.<stem>.failed/``, and the exception carries a note
    saying where.
    """
    notebook = Path(notebook)
    parameters = dict(parameters or {})
    check_checkout([notebook])
    check_parameters(notebook, parameters)
    if results_root is None:
        results_root = (project_root(notebook) or ROOT) / "results"
    params = {**_runner_parameters(notebook), **parameters}
    with folder_lock(results_root) as root:
        _remove_litter(root)
        final_dir = root / notebook.stem
        failed_dir = root / f".{notebook.stem}.failed"
        work = temporary_sibling(final_dir, RUNNING)
        running = work / f".{notebook.stem}.running.ipynb"
        # relative to the notebooks' folder, as results.results_folder reads it: executed copies
        # name no machine's paths
        base = results.notebooks_folder(notebook.resolve().parent)
        run_params = {"results_dir": os.path.relpath(work, base), **params}
        try:
            if final_dir.is_dir():  # continue from it: its step sweeps' rows are reused
                _carry_over(final_dir, work)
            _execute(notebook, running, run_params, progress)
            _finish_executed_copy(running, work / notebook.name, final_dir, notebook)
            running.unlink()
            write_json(work / INPUTS_NAME, {"inputs": run_inputs(notebook, params)})
            _swap_in(work, final_dir)
            shutil.rmtree(failed_dir, ignore_errors=True)  # a failure before this one: stale
        except BaseException as err:
            kept = _keep_failed(work, running, notebook, failed_dir)
            err.add_note(
                f"{notebook.stem} failed: {final_dir} is unchanged; partial output of this "
                f"run (executed notebook up to the error, files written) in {kept}"
            )
            raise
    return final_dir / notebook.name


def _execute(notebook: Path, running: Path, run_params: dict[str, Any], progress: bool) -> None:
    """Papermill runs ``notebook`` into ``running`` (:func:`run_notebook`), in the kernel
    environment (:func:`_kernel_environment`), writing the executed copy once, at the end or at
    an error."""
    import papermill

    with _environment(_kernel_environment()):
        papermill.execute_notebook(
            str(notebook),
            str(running),
            parameters=run_params,
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=progress,
            request_save_on_cell_execute=False,  # written once, at the end or error
            extra_arguments=KERNEL_ARGUMENTS,
        )


BLAS_CORE = "Haswell"
"""The OpenBLAS kernel every run uses on x86-64 (``OPENBLAS_CORETYPE``): OpenBLAS otherwise picks
the kernels of the CPU it finds (Haswell, SkylakeX, SapphireRapids, ...), whose sums round
differently, and scipy's L-BFGS-B (inside ``dual_annealing``, notebook 05) turns those last-bit
differences into different gaps of 1e-14 to 1e-6 in notebooks 04 and 05's metrics, tables and
figures. One kernel for every machine makes a rerun write the committed bytes; BLAS carries no
heavy work here, so nothing is slower. It needs AVX2 (x86-64 CPUs since 2013): a CPU without it,
and other architectures (ARM), keep their own kernels, and their last digits may differ. An
``OPENBLAS_CORETYPE`` already set (by the user, or by a machine whose CPU an older OpenBLAS
misreads) is kept: correct sums come before identical last digits."""

KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
"""The kernel's command-line options: its own log is not shown, neither its warning "running over
TCP without encryption" (about the local connection papermill opens to it) nor the traceback it
logs when stopped mid-cell by Ctrl-C. What the cells print and raise still reaches the executed
notebook and the runner's error line."""


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Thread pools of torch and BLAS, one thread each in a kernel unless the user's environment sets
them: what runs in parallel here goes through :mod:`aigc_lib.parallel`'s worker processes, and
two threads waiting for each other (OpenMP spins) on a busy 2-core machine made notebook 02's tiny
sweep eight times slower (34.9 s against 4.4 s for the same rows, beside one other process), and
the test suite runs notebooks beside its unit tests. One BLAS thread also makes sums independent
of the number of cores."""


def _kernel_environment() -> dict[str, str]:
    """Environment of the kernel: no staging (the whole folder is swapped in), no progress bars
    (the executed copy would keep their rates and times), one BLAS kernel (:data:`BLAS_CORE`),
    one thread per pool (:data:`THREAD_VARIABLES`), the data paths absolute (the kernel's working
    folder is the notebook's): PartiPrompts' file and the arrival traces' folder."""
    env = {STAGING_ENV: "0", "TQDM_DISABLE": "1"}
    env.update({name: "1" for name in THREAD_VARIABLES if not os.environ.get(name)})
    if _has_avx2() and not os.environ.get("OPENBLAS_CORETYPE"):
        env["OPENBLAS_CORETYPE"] = BLAS_CORE
    for name in ("PARTIPROMPTS_PATH", "AZURE_TRACES_DIR"):
        if os.environ.get(name):
            env[name] = os.path.abspath(os.environ[name])
    return env


def _has_avx2() -> bool:
    """Whether this is an x86-64 CPU with AVX2 (what :data:`BLAS_CORE` needs); True where the CPU's
    flags cannot be read (no ``/proc/cpuinfo``: an x86-64 Mac, all of which since 2013 have it)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return re.search(r"^flags\s*:.*\bavx2\b", flags, flags=re.M) is not None


_LEGACY = re.compile(r"^\.\d\d_.+\.(?:running|old)-[a-z0-9_]{8}$")  # runners before the lock


def _remove_litter(root: Path) -> list[Path]:
    """Remove what ended runs left in ``root`` (running, old and staging folders of processes
    that no longer run, and those of earlier runners, which named no process); called with the
    folder's lock held."""
    removed = remove_dead_siblings(root, (RUNNING, OLD, results.STAGED_KIND))
    for entry in root.iterdir() if root.is_dir() else ():
        if _LEGACY.match(entry.name) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


CARRIED = ("sweep_*",)
"""What a run takes over from the results folder it replaces: the step sweeps' folders (notebook
02, ``sweep_<weights>/``), whose finished images a resumed sweep skips. Everything else (figures,
metrics, tables, profiles) the run writes anew, so a figure a notebook no longer draws does not
survive it."""


def _carry_over(source: Path, target: Path) -> None:
    """Copy the folders of ``source`` that match :data:`CARRIED` into the existing folder
    ``target``, leaving out hidden names."""
    hidden = shutil.ignore_patterns(".*")
    for entry in source.iterdir():
        if entry.is_dir() and any(entry.match(pattern) for pattern in CARRIED):
            shutil.copytree(entry, target / entry.name, ignore=hidden)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables (inherited by the kernel papermill starts) for a block."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _swap_in(work: Path, final_dir: Path) -> None:
    """Replace ``final_dir`` by ``work`` (two renames; the old folder is deleted after)."""
    if not final_dir.exists():
        os.rename(work, final_dir)
        return
    old = final_dir.with_name(f".{final_dir.name}.{OLD}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.rename(final_dir, old)
    os.rename(work, final_dir)
    shutil.rmtree(old)


def _keep_failed(work: Path, running: Path, notebook: Path, failed_dir: Path) -> Path | None:
    """Move a failed run's folder to ``failed_dir`` (replacing an older one); return it."""
    if not work.exists():
        return None
    if running.exists():
        os.replace(running, work / f"{notebook.stem}.failed.ipynb")
    shutil.rmtree(failed_dir, ignore_errors=True)
    os.rename(work, failed_dir)
    return failed_dir


# ---------------------------------------------------------------- the executed copy

_TIMING_KEYS = ("start_time", "end_time", "duration")
_PROGRESS = re.compile(
    r"\d+%\|[^|\n]*\||\[\d+:\d\d(?::\d\d)?<|\d(?:\.\d+)?\s*(?:it|s|cell)/(?:s|it)\b"
)
_WIDGET = "application/vnd.jupyter.widget-view+json"


def _finish_executed_copy(running: Path, target: Path, final_dir: Path, notebook: Path) -> None:
    """Write the executed copy to ``target`` as it will read at ``final_dir``, the same bytes
    whenever nothing changed: the temporary folder's name replaced by the final one (so
    ``results_dir`` names the results folder), no absolute paths, papermill's recorded paths
    relative to the repository, stable cell ids, no timing metadata, no progress bars."""
    text = running.read_text(encoding="utf-8").replace(target.parent.name, final_dir.name)
    nb = json.loads(text)
    meta = nb.get("metadata", {})
    papermill_meta = meta.get("papermill", {})
    for key, path in (("input_path", notebook), ("output_path", final_dir / notebook.name)):
        if key in papermill_meta:
            papermill_meta[key] = _relative(Path(path))
    for key in _TIMING_KEYS:
        papermill_meta.pop(key, None)
    meta.pop("widgets", None)
    source_ids = _source_ids(notebook)
    seen: set[str] = set()
    for index, cell in enumerate(nb.get("cells", [])):
        cell_meta = cell.get("metadata", {})
        cell_meta.pop("execution", None)  # the kernel's timestamps
        for key in _TIMING_KEYS:
            cell_meta.get("papermill", {}).pop(key, None)
        if "injected-parameters" in cell_meta.get("tags", []):
            cell["id"] = INJECTED_ID
        elif cell.get("id") not in source_ids or cell.get("id") in seen:
            cell["id"] = f"cell-{index:03d}"
        seen.add(cell.get("id"))
        if "outputs" in cell:
            outputs = _coalesced(cell["outputs"])
            cell["outputs"] = [o for o in map(_clean_output, outputs) if o is not None]
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    base = results.notebooks_folder(notebook.resolve().parent)
    atomic_write_text(target, _without_machine_paths(text, final_dir, base))


def _source_ids(notebook: Path) -> set[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    return {c["id"] for c in cells if isinstance(c.get("id"), str)}


def _coalesced(outputs: list[dict]) -> list[dict]:
    """Consecutive stream outputs of one stream as one: how the kernel chunked a cell's printing
    depends on timing (a busy machine flushes ``print``'s text and its newline apart)."""
    merged: list[dict] = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (
            last is not None
            and output.get("output_type") == "stream" == last.get("output_type")
            and output.get("name") == last.get("name")
        ):
            last["text"] = "".join(last.get("text", "")) + "".join(output.get("text", ""))
        else:
            merged.append(output)
    return merged


def _clean_output(output: dict) -> dict | None:
    """An output without progress bars (lines with rates or times) and widgets; None if empty."""
    if output.get("output_type") == "stream":
        text = "".join(output.get("text", ""))
        lines = [line for line in text.splitlines(keepends=True) if not _PROGRESS.search(line)]
        kept = "".join(lines)
        if not kept:
            return None
        output["text"] = kept
        return output
    data = output.get("data")
    if isinstance(data, dict) and _WIDGET in data:
        return None  # a widget (a progress bar, a slider): nothing to see in a saved copy
    return output


def _without_machine_paths(text: str, final_dir: Path, base: Path) -> str:
    """``text`` with the absolute paths of this machine replaced: the results folder and the
    checkout relative to the notebooks' folder ``base`` (as ``results_dir`` is), the Python
    environment as ``<python>``, the home folder as ``~``."""
    replacements: list[tuple[str, str]] = []
    for path, shown in (
        (final_dir.parent, os.path.relpath(final_dir.parent, base)),
        (ROOT, os.path.relpath(ROOT, base)),
        (Path(sys.prefix), "<python>"),
        (Path(sys.base_prefix), "<python>"),
        (Path.home(), "~"),
    ):
        for form in {os.path.abspath(path), str(Path(path).resolve())}:
            if len(form) > 1:
                replacements.append((form, shown))
    for form, shown in sorted(replacements, key=lambda r: -len(r[0])):
        text = re.sub(rf"(?<![\w.-]){re.escape(form)}(?![\w.-])", lambda _: shown, text)
    return text


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


# ---------------------------------------------------------------- the command


def load_parameters(path: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
    """Read a parameters YAML: ``{notebook stem or "all": {parameter: literal}}``."""
    if path is None:
        return {}
    try:
        raw = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        kind = type(err).__name__
        raise ValueError(f"params: cannot read {str(path)!r} as YAML ({kind})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(
            f"params: {str(path)!r} must map notebook stems (or 'all') to mappings of parameters"
        )
    return raw


def parameters_per_notebook(
    params: Mapping[str, Mapping[str, Any]],
    notebooks: Sequence[Path],
    extra: Mapping[str, Any] | None = None,
) -> dict[Path, dict[str, Any]]:
    """Each notebook's parameters (``all``, then its own entry, then ``extra``: the command
    line's), every one checked before any runs.

    Raises ``ValueError`` for an entry naming no notebook, and for a parameter a notebook does
    not declare or a value it refuses (:func:`check_parameters`).
    """
    stems = [p.stem for p in find_notebooks()] + [p.stem for p in notebooks]
    unknown = sorted(set(params) - {"all", *stems})
    if unknown:
        known = sorted(set(stems))
        raise ValueError(f"params: no notebook is named {unknown}; use 'all' or one of {known}")
    chosen = {}
    for notebook in notebooks:
        chosen[notebook] = {
            **params.get("all", {}),
            **params.get(notebook.stem, {}),
            **(extra or {}),
        }
        check_parameters(notebook, chosen[notebook])
    return chosen


def _literal(text: str) -> Any:
    """A ``-p`` value read as a YAML literal (``20`` an int, ``1e-3`` a float, ``[1, 2]`` a list,
    ``abc`` a string)."""
    try:
        value = load_yaml(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
    return value


def profile_parameter(profile: str | os.PathLike, notebook: Path) -> str:
    """How ``profile`` is passed to ``notebook``: relative to its folder (the kernel's working
    folder) when inside the checkout, so the executed copy names no machine path, else absolute."""
    path = Path(profile).resolve()
    root = project_root(notebook) or ROOT
    if root in path.parents:
        return os.path.relpath(path, notebook.resolve().parent)
    return str(path)


def _check_profile(profile: str, allow_random_weights: bool) -> None:
    """Read the profile as the notebooks will (``scenario.load_scenario(profile=...)``)."""
    from aigc_lib import scenario

    if not Path(profile).is_file():
        raise ValueError(f"profile: {profile!r} is not a file (expected a profile YAML)")
    try:
        scenario.load_scenario(profile=profile, allow_random_weights=allow_random_weights)
    except ValueError as err:
        if "allow_random_weights" not in str(err):
            raise
        raise ValueError(
            f"profile: {profile!r} was fitted on random-weight models (real_weights: false), not "
            "measurements of the real models; add --allow-random-weights to run it as a "
            "demonstration of the mechanism"
        ) from None


def spare_the_iri_grammar() -> None:
    """Let this process import nbformat (papermill's) without jsonschema's optional IRI format
    checker, ``rfc3987_syntax``: that package compiles a grammar when imported, 1.7 s of every
    runner process, for a format that neither the notebook schema uses nor papermill or nbformat
    checks (they validate no formats). The runner's command and its children call it first; it
    marks the package absent only in a process that has not imported jsonschema yet (checked in
    ``tests/test_reproduce.py``)."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # jsonschema skips an absent checker


def main(argv: Sequence[str] | None = None) -> int:
    """The command (see the module's docstring); its exit status. Ctrl-C stops it with one line
    (exit status 130): the notebook that was running leaves its results folder as it was."""
    spare_the_iri_grammar()
    try:
        return _main(argv)
    except KeyboardInterrupt as err:
        where = " ".join(getattr(err, "__notes__", []))
        print(f"interrupted (Ctrl-C){': ' + where if where else ''}", file=sys.stderr)
        return 130


NOTEBOOK_JOBS = min(2, os.cpu_count() or 1)
"""Notebooks run side by side by default: two, or one on a 1-core machine. Measured on 2 cores:
``make reproduce`` took 1 min 15 s with two side by side against 1 min 57 s one after another
(the notebooks' serial cells overlap; their sweeps already spread over
:mod:`aigc_lib.parallel`'s workers); more would multiply the memory of kernels and worker pools."""


def _positive(text: str) -> int:
    """A whole number >= 1 from the command line (``--jobs``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    """The command line of ``python -m aigc_lib.reproduce``."""
    parser = argparse.ArgumentParser(
        prog="python -m aigc_lib.reproduce", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only", nargs="*", default=(), help="notebook number prefixes, e.g. 01 03"
    )
    parser.add_argument("--params", help="YAML of parameters per notebook stem (or 'all')")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter of every notebook run, VALUE a YAML literal: -p n_slots 50, "
        "-p steps '[1, 2, 4]'",
    )
    parser.add_argument(
        "--results-dir",
        default=None,
        help="where results go (default: results/; with --profile results/profiles/<stem>/)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip notebooks whose inputs did not change"
    )
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=NOTEBOOK_JOBS,
        help=f"notebooks run side by side, each in its own process (default {NOTEBOOK_JOBS}: "
        "this machine's cores, at most 2); 1 runs them one after another, with each "
        "notebook's cells as a progress bar",
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="a fitted profile (fit.write_profile) for notebooks 03-07: their parameter 'profile'",
    )
    parser.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="with --profile: accept a profile fitted on random weights (demonstrations only)",
    )
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.allow_random_weights and args.profile is None:
        parser.error("--allow-random-weights: only with --profile")
    try:
        notebooks = find_notebooks(args.only)
    except ValueError as err:
        parser.error(str(err))
    if args.profile is not None and not args.only:
        notebooks = [nb for nb in notebooks if nb.stem[:2] in PROFILE_NOTEBOOKS]
    try:  # the environment, before anything else
        check_checkout(notebooks)
    except CheckoutError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    extra = {name: _literal(value) for name, value in args.parameter}
    if args.profile is not None:
        results_root = Path(args.results_dir or RESULTS_DIR / "profiles" / Path(args.profile).stem)
        if results_root.resolve() == RESULTS_DIR.resolve():
            parser.error("--results-dir: a profile's results never go over the committed results/")
    else:
        results_root = Path(args.results_dir or RESULTS_DIR)
    try:  # every argument is checked before anything runs
        chosen = _chosen_parameters(args, notebooks, extra)
    except ValueError as err:
        parser.error(str(err))
    from aigc_lib import prompts

    try:
        print(prompts.describe_source(), flush=True)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:  # one run at a time per results folder; an unwritable or busy one is one line
        with folder_lock(results_root):
            _remove_litter(results_root)
            if not _run_notebooks(chosen, results_root, args.resume, args.jobs):
                return 1
            from aigc_lib import paper_vs_ours, peers

            for written in [*paper_vs_ours.write(results_root), *peers.write_table(results_root)]:
                print(f"[done] {written}")
    except OSError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 1
    return 0


def _chosen_parameters(
    args: argparse.Namespace, notebooks: Sequence[Path], extra: Mapping[str, Any]
) -> dict[Path, dict[str, Any]]:
    """Each notebook's parameters from the command line, every one checked (``ValueError``):
    ``--params``, ``-p``, and with ``--profile`` the profile (read first) and its flag."""
    if args.profile is not None:
        lacking = [nb.stem for nb in notebooks if "profile" not in notebook_parameters(nb)]
        if lacking:
            verb = "has" if len(lacking) == 1 else "have"
            raise ValueError(
                f"profile: {', '.join(lacking)} {verb} no parameter 'profile'; --profile runs "
                "only notebooks that take one (choose them with --only)"
            )
        _check_profile(args.profile, args.allow_random_weights)
    chosen = parameters_per_notebook(load_parameters(args.params), notebooks, extra)
    if args.profile is not None:
        for notebook, parameters in chosen.items():
            parameters["profile"] = profile_parameter(args.profile, notebook)
            if args.allow_random_weights:
                parameters["allow_random_weights"] = True
            check_parameters(notebook, parameters)
    return chosen


def _run_notebooks(
    chosen: Mapping[Path, dict], results_root: Path, resume: bool, jobs: int = 1
) -> bool:
    """Run each notebook (``--resume``: those whose inputs changed), ``jobs`` side by side
    (:func:`_side_by_side`); False after a failure, which is reported in one line."""
    todo = {}
    for notebook, parameters in chosen.items():
        if resume:
            why = stale_inputs(
                notebook, results_root, {**_runner_parameters(notebook), **parameters}
            )
            if why is None:
                print(f"[skip] {notebook.stem}: its inputs did not change")
                continue
            todo[notebook] = (parameters, f" ({why})")
        else:
            todo[notebook] = (parameters, "")
    if jobs > 1 and len(todo) > 1:
        return _side_by_side(todo, results_root, jobs)
    return all(_run_here(nb, results_root, params, why) for nb, (params, why) in todo.items())


def _run_here(notebook: Path, results_root: Path, parameters: dict, why: str) -> bool:
    """One notebook in this process, with its cells' progress bar; False after a failure."""
    import papermill

    print(f"[run ] {notebook.stem}{why}", flush=True)
    started = time.perf_counter()
    try:
        run_notebook(notebook, results_root, parameters)
    except papermill.PapermillExecutionError as err:
        print(f"error: {_failure(err)}", file=sys.stderr)
        return False
    print(f"[done] {notebook.stem} in {time.perf_counter() - started:.1f} s", flush=True)
    return True


def _failure(err: BaseException) -> str:
    """A notebook's failure in one line: the error in the cell and where its output was kept."""
    where = " ".join(getattr(err, "__notes__", []))
    return f"{err.ename}: {_one_line(err.evalue)} ({where})"


CHILD = """
import json, sys
from pathlib import Path
from aigc_lib import reproduce
sys.exit(reproduce.run_child(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])))
"""
"""A notebook run side by side with others: its own process, under the runner's lock."""


def run_child(notebook: Path, results_root: Path, parameters: dict) -> int:
    """Run one notebook for :func:`_side_by_side` (in a process it started, under its lock):
    exit status 0, 1 after a failure or 130 after Ctrl-C, each failure said in one line."""
    spare_the_iri_grammar()
    import papermill

    try:
        run_notebook(notebook, results_root, parameters, progress=False)
    except papermill.PapermillExecutionError as err:
        print(_failure(err), file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(" ".join(getattr(err, "__notes__", [])), file=sys.stderr)
        return 130
    return 0


class _Child:
    """One notebook running in a child process (:data:`CHILD`); a thread keeps its output."""

    def __init__(self, notebook: Path, results_root: Path, parameters: dict) -> None:
        self.notebook, self.started, self.lines = notebook, time.perf_counter(), []
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(notebook), str(results_root)]
            + [json.dumps(parameters)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self.reader = threading.Thread(
            target=self.lines.extend, args=(self.process.stdout,), daemon=True
        )
        self.reader.start()

    def said(self) -> str:
        """The child's last line once it ended (its one-line failure), or nothing."""
        self.reader.join(timeout=10)
        lines = [line.strip() for line in self.lines if line.strip()]
        return lines[-1] if lines else ""


def _side_by_side(todo: Mapping[Path, tuple[dict, str]], results_root: Path, jobs: int) -> bool:
    """Run the notebooks ``jobs`` at a time, each in a child process, in their order; a failure
    starts no more (those running finish). Ctrl-C stops every child and is one line."""
    from tqdm.auto import tqdm

    pending, running, ok = list(todo.items()), [], True
    with tqdm(total=len(todo), unit="notebook", desc="notebooks", leave=False, disable=None) as bar:
        try:
            while running or (pending and ok):
                while pending and ok and len(running) < jobs:
                    notebook, (parameters, why) = pending.pop(0)
                    bar.write(f"[run ] {notebook.stem}{why}")
                    running.append(_Child(notebook, results_root, parameters))
                child = _wait_any(running)
                running.remove(child)
                bar.update()
                seconds = time.perf_counter() - child.started
                if child.process.returncode == 0:
                    bar.write(f"[done] {child.notebook.stem} in {seconds:.1f} s")
                else:
                    print(f"error: {child.said()}", file=sys.stderr)
                    ok = False
        except BaseException as err:  # Ctrl-C, or this process failing: no child outlives it
            _stop(running, err)
            raise
    return ok


def _wait_any(running: list[_Child]) -> _Child:
    """The first of ``running`` to end (polled)."""
    while True:
        for child in running:
            if child.process.poll() is not None:
                return child
        time.sleep(0.1)


def _stop(running: list[_Child], err: BaseException) -> None:
    """Ctrl-C (or an error here): each running child is interrupted (if the signal reached only
    this process) and waited for; what each says (its results folder unchanged) is added to
    ``err``."""
    for child in running:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGINT)
    for child in running:
        child.process.wait()
        if child.said():
            err.add_note(child.said())


def _one_line(err: Any) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"results-dir: cannot write {str(err.filename)!r} ({err.strerror})"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
