"""Atomic file writes (aigc_lib._io): content, no temporary left, and a normal file mode."""

import json
import os
import stat

import pandas as pd
import pytest

from aigc_lib import _io


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
