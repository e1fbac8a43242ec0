"""Execute the notebooks headlessly with papermill, writing ``results/`` (``make reproduce``).

    python -m aigc_lib.reproduce                      # every notebook, default parameters
    python -m aigc_lib.reproduce --only 03 04         # some of them
    python -m aigc_lib.reproduce --params small.yaml  # {notebook stem or "all": {name: value}}
    python -m aigc_lib.reproduce --resume             # skip notebooks already executed since last edited

Each notebook runs with its folder as working directory, the parameter ``results_dir`` set to
``<results>/<notebook stem>/`` and ``interactive`` to False (static figures instead of sliders).
Parameters are checked against the notebook's tagged parameters cell before anything runs: a
mistyped name is an error, not a silently ignored value. Runs are atomic per results folder: a
notebook runs in a temporary copy of its folder (a hidden sibling), which replaces the folder only
when the run succeeded. A failed run leaves ``results/`` as it was and says where its partial
output is (a folder in the system's temporary directory). After the notebooks,
``results/paper_vs_ours`` and ``results/interpretations`` (.md and .csv) are regenerated from
their metrics. PartiPrompts is checked first: without it nothing runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from aigc_lib._io import atomic_write_text, umask
from aigc_lib.results import STAGING_ENV

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
RESULTS_DIR = ROOT / "results"


def find_notebooks(only: Sequence[str] = (), notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` in order; ``only`` keeps those whose stem starts with an entry."""
    found = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        unknown = [o for o in only if not any(p.stem.startswith(o) for p in found)]
        if unknown:
            raise ValueError(
                f"only: no notebook starts with {unknown}; have {[p.stem for p in found]}"
            )
        found = [p for p in found if any(p.stem.startswith(o) for o in only)]
    return found


def notebook_parameters(notebook: str | os.PathLike) -> list[str]:
    """The names in ``notebook``'s tagged parameters cell (papermill's inspection), sorted."""
    import papermill

    return sorted(papermill.inspect_notebook(str(notebook)))


def check_parameters(notebook: str | os.PathLike, parameters: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming any entry of ``parameters`` that ``notebook`` does not declare
    (with the ones it does), or one the runner sets itself (``results_dir``)."""
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


def run_notebook(
    notebook: Path,
    results_root: Path = RESULTS_DIR,
    parameters: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Execute one notebook with papermill into ``<results_root>/<stem>/<name>``; return that path.

    ``parameters`` are checked first (:func:`check_parameters`). The notebook runs in a temporary
    copy of its results folder (hidden files left out, so no stale temporary survives), which
    replaces the folder only when the run succeeded. On failure the folder is left as it was, the
    partial output (the executed notebook up to the error, as ``<stem>.failed.ipynb``, and the
    files written) is moved to a new folder in the system's temporary directory, and the
    exception carries a note saying where.
    """
    import papermill

    notebook = Path(notebook)
    parameters = dict(parameters or {})
    check_parameters(notebook, parameters)
    root = Path(results_root).resolve()
    final_dir = root / notebook.stem
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".{notebook.stem}.running-"))
    os.chmod(work, 0o777 & ~umask())  # mkdtemp makes 0700; the folder is swapped in as results
    running = work / f".{notebook.stem}.running.ipynb"
    # relative to the notebooks' folder, as results.results_folder reads it: executed copies name
    # no machine's paths
    params = {"results_dir": os.path.relpath(work, NOTEBOOKS_DIR)}
    if "interactive" in notebook_parameters(notebook):
        params["interactive"] = False  # headless: static figures instead of widgets nobody can move
    params.update(parameters)
    try:
        if final_dir.is_dir():  # continue from it: sweep rows are reused, files not rewritten kept
            _copy_visible(final_dir, work)
        # the whole folder is swapped in: no staging inside; the kernel's working directory is the
        # notebook's folder, so a relative PARTIPROMPTS_PATH is made absolute
        env = {STAGING_ENV: "0"}
        if os.environ.get("PARTIPROMPTS_PATH"):
            env["PARTIPROMPTS_PATH"] = os.path.abspath(os.environ["PARTIPROMPTS_PATH"])
        with _environment(env):
            papermill.execute_notebook(
                str(notebook),
                str(running),
                parameters=params,
                cwd=str(notebook.parent),
                kernel_name="python3",
                progress_bar=progress,
            )
        _finish_executed_copy(running, work / notebook.name, final_dir / notebook.name, notebook)
        running.unlink()
        _swap_in(work, final_dir)
    except BaseException as err:
        failed = _keep_failed(work, running, notebook)
        err.add_note(
            f"{notebook.stem} failed: {final_dir} is unchanged; partial output of this "
            f"run (executed notebook up to the error, files written) in {failed}"
        )
        raise
    return final_dir / notebook.name


def _copy_visible(source: Path, target: Path) -> None:
    """Copy ``source``'s contents into the existing folder ``target``, leaving out hidden names."""
    hidden = shutil.ignore_patterns(".*")
    for entry in source.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, ignore=hidden)
        else:
            shutil.copy2(entry, target / entry.name)


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
    old = final_dir.with_name(f".{final_dir.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(final_dir, old)
    os.rename(work, final_dir)
    shutil.rmtree(old)


def _keep_failed(work: Path, running: Path, notebook: Path) -> Path | None:
    """Move a failed run's folder out of the results folder; return where it went."""
    if not work.exists():
        return None
    if running.exists():
        os.replace(running, work / f"{notebook.stem}.failed.ipynb")
    failed = Path(tempfile.mkdtemp(prefix=f"aigc-{notebook.stem}-failed-"))
    shutil.move(str(work), str(failed / notebook.stem))
    return failed / notebook.stem


def _finish_executed_copy(running: Path, target: Path, final: Path, notebook: Path) -> None:
    """Write the executed copy to ``target`` as it will read at ``final``: the temporary folder's
    name replaced by the final one (so ``results_dir`` names the results folder) and papermill's
    recorded paths made relative to the repository."""
    text = running.read_text(encoding="utf-8").replace(target.parent.name, final.parent.name)
    nb = json.loads(text)
    meta = nb.get("metadata", {}).get("papermill", {})
    for key, path in (("input_path", notebook), ("output_path", final)):
        if key in meta:
            meta[key] = _relative(Path(path))
    atomic_write_text(target, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


def _is_fresh(notebook: Path, results_root: Path) -> bool:
    executed = Path(results_root) / notebook.stem / notebook.name
    if not executed.is_file():
        return False
    newest_source = max(
        [notebook.stat().st_mtime] + [p.stat().st_mtime for p in (ROOT / "aigc_lib").glob("*.py")]
    )
    return executed.stat().st_mtime > newest_source


def load_parameters(path: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
    """Read a parameters YAML: ``{notebook stem or "all": {parameter: literal}}``."""
    if path is None:
        return {}
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        kind = type(err).__name__
        raise ValueError(f"params: cannot read {str(path)!r} as YAML ({kind})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(
            f"params: {str(path)!r} must map notebook stems (or 'all') to mappings of parameters"
        )
    return raw


def parameters_per_notebook(
    params: Mapping[str, Mapping[str, Any]], notebooks: Sequence[Path]
) -> dict[Path, dict[str, Any]]:
    """Each notebook's parameters (``all`` then its own entry), every one checked before any runs.

    Raises ``ValueError`` for an entry naming no notebook, and for a parameter a notebook does
    not declare (:func:`check_parameters`).
    """
    stems = [p.stem for p in find_notebooks()] + [p.stem for p in notebooks]
    unknown = sorted(set(params) - {"all", *stems})
    if unknown:
        known = sorted(set(stems))
        raise ValueError(f"params: no notebook is named {unknown}; use 'all' or one of {known}")
    chosen = {}
    for notebook in notebooks:
        chosen[notebook] = {**params.get("all", {}), **params.get(notebook.stem, {})}
        check_parameters(notebook, chosen[notebook])
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aigc_lib.reproduce", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only", nargs="*", default=(), help="notebook number prefixes, e.g. 01 03"
    )
    parser.add_argument("--params", help="YAML of parameters per notebook stem (or 'all')")
    parser.add_argument(
        "--results-dir", default=str(RESULTS_DIR), help="where results go (default: results/)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip notebooks executed after their last change"
    )
    args = parser.parse_args(argv)
    try:  # every argument is checked before anything runs
        chosen = parameters_per_notebook(load_parameters(args.params), find_notebooks(args.only))
    except ValueError as err:
        parser.error(str(err))
    from aigc_lib import prompts

    try:
        print(prompts.describe_source(), flush=True)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    results_root = Path(args.results_dir)
    for notebook, parameters in chosen.items():
        if args.resume and _is_fresh(notebook, results_root):
            print(f"[skip] {notebook.stem}: executed copy is up to date")
            continue
        print(f"[run ] {notebook.stem}", flush=True)
        run_notebook(notebook, results_root, parameters)
    from aigc_lib import paper_vs_ours, peers

    for written in [*paper_vs_ours.write(results_root), *peers.write_table(results_root)]:
        print(f"[done] {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
