"""Atomic file writes (aigc_lib._io): content, no temporary left, and a normal file mode; YAML
read with the compiled parser gives what PyYAML's own safe loader gives."""

import json
import os
import stat

import pandas as pd
import pytest
import yaml

from aigc_lib import _io, reproduce


@pytest.fixture
def umask():
    """Run with a chosen umask, restoring the process's own afterwards."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "mask, expected",
    [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)],
    ids=["umask-022", "umask-002", "umask-077"],
)
def test_new_files_get_the_mode_of_a_normal_file(tmp_path, umask, mask, expected):
    umask(mask)
    assert _io.umask() == mask
    written = [
        _io.atomic_write_bytes(tmp_path / "a.bin", b"x"),
        _io.atomic_write_text(tmp_path / "b.txt", "y"),
        _io.write_json(tmp_path / "c.json", {"k": 1}),
        _io.write_csv(tmp_path / "d.csv", pd.DataFrame({"k": [1]})),
    ]
    assert [oct(mode(p)) for p in written] == [oct(expected)] * 4


def test_overwrite_replaces_content_and_leaves_no_temporary(tmp_path, umask):
    target = tmp_path / "sub" / "m.json"
    _io.write_json(target, {"a": 1})
    _io.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["m.json"]
    assert mode(target) == 0o644


def test_round_floats_keeps_12_significant_digits_and_leaves_the_rest():
    import numpy as np

    noisy = {"a": 0.1 + 0.2, "b": [1 / 3, np.float64(2 / 3)], "c": np.array([1e-20 / 3]), "n": 3}
    rounded = _io.round_floats(noisy)
    assert rounded == {
        "a": 0.3,
        "b": [0.333333333333, 0.666666666667],
        "c": [3.33333333333e-21],
        "n": 3,
    }
    assert _io.round_floats({"t": True, "s": "x", "none": None}) == {
        "t": True,
        "s": "x",
        "none": None,
    }
    nan = _io.round_floats(float("nan"))
    assert nan != nan and _io.round_floats(float("inf")) == float("inf")
    # a sum in another order (float noise) gives the same rounded number
    assert _io.round_floats(sum([0.1] * 10)) == _io.round_floats(1.0)


def test_temporary_siblings_of_ended_processes_are_removed(tmp_path):
    import subprocess
    import sys

    ended = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1).stdout
    )
    mine = _io.temporary_sibling(tmp_path / "03_x", "running")
    assert mine.parent == tmp_path and mine.name.startswith(f".03_x.running-{os.getpid()}-")
    assert oct(mode(mine)) == oct(0o777 & ~_io.umask())
    dead = [tmp_path / f".03_x.running-{ended}-ab", tmp_path / f".04_y.staged-{ended}-cd"]
    kept = [tmp_path / f".03_x.other-{ended}-ef", tmp_path / "03_x"]
    for folder in dead + kept:
        folder.mkdir()
    assert _io.remove_dead_siblings(tmp_path, ("staged",), "03_x") == []  # another name
    assert sorted(_io.remove_dead_siblings(tmp_path, ("running", "staged"))) == sorted(dead)
    assert all(p.is_dir() for p in kept + [mine])


YAML_FILES = sorted(
    [*(reproduce.ROOT / "data").rglob("*.yaml"), *(reproduce.ROOT / "tests").glob("*.yaml")]
)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_load_yaml_reads_every_file_as_the_safe_loader_does(path):
    text = path.read_text(encoding="utf-8")
    assert _io.load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text", ["1e-3", "[1, 2.5, abc]", "a: {b: null, c: true}", "", "- 2026-12-07\n- 0x1F"]
)
def test_load_yaml_reads_literals_as_the_safe_loader_does(text):
    assert _io.load_yaml(text) == yaml.safe_load(text)


def test_load_yaml_uses_the_compiled_parser_where_there_is_one(monkeypatch):
    seen, real = [], yaml.load
    monkeypatch.setattr(
        yaml, "load", lambda text, Loader: seen.append(Loader) or real(text, Loader)
    )
    assert _io.load_yaml("a: 1") == {"a": 1}
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)  # PyYAML built without libyaml
    assert _io.load_yaml("a: 1") == {"a": 1}
    compiled = [yaml.cyaml.CSafeLoader] if yaml.__with_libyaml__ else [yaml.SafeLoader]
    assert seen == [*compiled, yaml.SafeLoader]
    with pytest.raises(yaml.YAMLError):
        _io.load_yaml("a: [1, 2")
