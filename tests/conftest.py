"""Shared test helpers: the PartiPrompts check, executing a notebook with the small parameters of
notebook_params.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc_lib import reproduce

SMALL_PARAMS = Path(__file__).with_name("notebook_params.yaml")


def pytest_configure(config):
    """Without PartiPrompts (or with a wrong copy), stop at once with the loader's one-line message
    saying what to do, rather than with an error in every test that needs the file."""
    from aigc_lib import prompts

    try:
        prompts.load_partiprompts()
    except ValueError as err:
        pytest.exit(f"error: {err}", returncode=1)


@pytest.fixture(scope="session")
def notebook_results(tmp_path_factory):
    """``run(prefix) -> (metrics dict, results folder)``: execute a notebook once per session with small parameters."""
    root = tmp_path_factory.mktemp("results")
    params = reproduce.load_parameters(SMALL_PARAMS)
    done: dict[str, tuple[dict, Path]] = {}

    def run(prefix: str) -> tuple[dict, Path]:
        if prefix not in done:
            (notebook,) = reproduce.find_notebooks([prefix])
            reproduce.run_notebook(
                notebook,
                root,
                {**params.get("all", {}), **params.get(notebook.stem, {})},
                progress=False,
            )
            folder = root / notebook.stem
            done[prefix] = (json.loads((folder / "metrics.json").read_text()), folder)
        return done[prefix]

    return run
