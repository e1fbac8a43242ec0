"""Execute the notebooks headlessly with papermill, writing ``results/`` (``make reproduce``).

    python -m aigc_lib.reproduce                      # every notebook, default parameters
    python -m aigc_lib.reproduce --only 03 04         # some of them
    python -m aigc_lib.reproduce --params small.yaml  # {notebook stem or "all": {name: value}}
    python -m aigc_lib.reproduce --resume             # skip notebooks already executed since last edited

Each notebook runs with its folder as working directory, the parameter ``results_dir`` set to
``<results>/<notebook stem>/`` and ``interactive`` to False (static figures instead of sliders);
the executed copy is written there under a temporary name and renamed when the run succeeds, so
``results/`` never holds a half-executed notebook. After the notebooks, ``results/paper_vs_ours`` and
``results/interpretations`` (.md and .csv) are regenerated from their metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from aigc_lib._io import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
RESULTS_DIR = ROOT / "results"


def find_notebooks(only: Sequence[str] = (), notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` in order; ``only`` keeps those whose stem starts with an entry."""
    found = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        unknown = [o for o in only if not any(p.stem.startswith(o) for p in found)]
        if unknown:
            raise ValueError(f"only: no notebook starts with {unknown}; have {[p.stem for p in found]}")
        found = [p for p in found if any(p.stem.startswith(o) for o in only)]
    return found


def run_notebook(notebook: Path, results_root: Path = RESULTS_DIR,
                 parameters: Mapping[str, Any] | None = None, progress: bool = True) -> Path:
    """Execute one notebook with papermill into ``<results_root>/<stem>/<name>``; return that path."""
    import papermill

    out_dir = Path(results_root).resolve() / notebook.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / notebook.name
    running = out_dir / f".{notebook.stem}.running.ipynb"
    # relative to the notebook's folder (its working directory), so executed copies name no machine's paths
    # headless: interactive cells draw their static figure instead of widgets nobody can move
    params = {"results_dir": os.path.relpath(out_dir, notebook.parent.resolve()), "interactive": False,
              **(parameters or {})}
    try:
        papermill.execute_notebook(
            str(notebook), str(running), parameters=params, cwd=str(notebook.parent),
            kernel_name="python3", progress_bar=progress,
        )
    except BaseException:
        if running.exists():  # keep the partly executed copy for debugging, under a name that says so
            os.replace(running, out_dir / f".{notebook.stem}.failed.ipynb")
        raise
    _relative_papermill_paths(running, final, notebook)
    running.unlink()
    return final


def _relative_papermill_paths(running: Path, final: Path, notebook: Path) -> None:
    """Write the executed copy to ``final`` with papermill's recorded paths made relative to the repository."""
    nb = json.loads(running.read_text(encoding="utf-8"))
    meta = nb.get("metadata", {}).get("papermill", {})
    for key, path in (("input_path", notebook), ("output_path", final)):
        if key in meta:
            meta[key] = _relative(Path(path))
    atomic_write_text(final, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


def _is_fresh(notebook: Path, results_root: Path) -> bool:
    executed = Path(results_root) / notebook.stem / notebook.name
    if not executed.is_file():
        return False
    newest_source = max([notebook.stat().st_mtime] + [p.stat().st_mtime for p in (ROOT / "aigc_lib").glob("*.py")])
    return executed.stat().st_mtime > newest_source


def load_parameters(path: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
    """Read a parameters YAML: ``{notebook stem or "all": {parameter: literal}}``."""
    if path is None:
        return {}
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(f"params: {str(path)!r} must map notebook stems (or 'all') to mappings of parameters")
    return raw


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_lib.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=(), help="notebook number prefixes, e.g. 01 03")
    parser.add_argument("--params", help="YAML of parameters per notebook stem (or 'all')")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR), help="where results go (default: results/)")
    parser.add_argument("--resume", action="store_true", help="skip notebooks executed after their last change")
    args = parser.parse_args(argv)
    params = load_parameters(args.params)
    results_root = Path(args.results_dir)
    for notebook in find_notebooks(args.only):
        if args.resume and _is_fresh(notebook, results_root):
            print(f"[skip] {notebook.stem}: executed copy is up to date")
            continue
        print(f"[run ] {notebook.stem}", flush=True)
        run_notebook(notebook, results_root, {**params.get("all", {}), **params.get(notebook.stem, {})})
    from aigc_lib import paper_vs_ours

    for written in paper_vs_ours.write(results_root):
        print(f"[done] {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
