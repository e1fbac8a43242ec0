"""Small file helpers: every file the project writes is written atomically.

A file is written to a temporary sibling and then renamed over the target, so a reader (or a
crash) never sees a half-written file. The file gets the mode of any newly created file
(``0666`` less the umask, so ``0644`` usually), not the owner-only mode of the temporary file.
Folders: :func:`folder_lock` (one run at a time), :func:`temporary_sibling` and
:func:`remove_dead_siblings` (temporary folders beside their target, litter of killed runs
removed). Numbers: :func:`round_floats` (the precision ``metrics.json`` is written with).
Reading: :func:`load_yaml` (every YAML file the library reads).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

if TYPE_CHECKING:
    import pandas as pd


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, with libyaml's C parser where PyYAML was built with it.

    The same safe constructor builds the same values (checked on every file of ``data/`` in
    ``tests/test_io.py``); only the parser is compiled, about 7 times faster: the scenario's files
    are read by every ``load_scenario``, hundreds of times in the tests. A malformed document
    raises ``yaml.YAMLError`` either way."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # a safe loader: plain data only


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; a written file is a normal file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    return atomic_write_text(
        path, json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n"
    )


def write_csv(path: str | os.PathLike, frame: "pd.DataFrame") -> Path:
    """Write ``frame`` as CSV (no index) to ``path`` atomically."""
    return atomic_write_text(path, frame.to_csv(index=False))


def _to_builtin(obj: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


# ---------------------------------------------------------------- numbers in result files

METRIC_DIGITS = 12
"""Significant digits of every float written by :func:`round_floats` (``metrics.json``)."""


def round_floats(obj: Any, digits: int = METRIC_DIGITS) -> Any:
    """``obj`` with every float (numpy's included, inside dicts, lists, tuples and arrays) rounded
    to ``digits`` significant digits; NaN and infinities as they are, ints and bools untouched.

    Results here mean at most a few digits (a simulated mean moves in its third or fourth digit
    between seeds), while a float's last digits depend on the order of a sum (BLAS build, number
    of threads): about 1e-15 relative. Twelve digits keep every digit that means something, and
    are far enough from float noise that a rerun which changes nothing writes the same bytes.
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float) or (hasattr(obj, "dtype") and getattr(obj, "ndim", None) == 0):
        value = obj.item() if hasattr(obj, "item") else obj
        if not isinstance(value, float) or not math.isfinite(value):
            return value
        return float(f"{value:.{digits}g}")
    if isinstance(obj, Mapping):
        return {key: round_floats(value, digits) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(value, digits) for value in obj]
    if hasattr(obj, "tolist"):  # numpy arrays
        return round_floats(obj.tolist(), digits)
    return obj


# ---------------------------------------------------------------- folders of one run at a time


class FolderBusy(OSError):
    """Another process holds the lock of a folder (see :func:`folder_lock`)."""


LOCK_NAME = ".aigc.lock"
_held_locks: dict[
    Path, list
] = {}  # folder (resolved) -> [open file, depth]: re-entrant per process


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if missing) for a block: one writer at a time.

    An exclusive ``flock`` on ``<folder>/.aigc.lock``, taken without waiting: if another process
    holds it, :class:`FolderBusy` says which (its pid). The system releases the lock when the
    holder exits, however it ends (even ``kill -9``), so a lock never outlives its run. Re-entrant
    within a process, and for the holder's own child processes (the runner's notebooks side by
    side: the holder's pid is in the lock file, and it is the child's parent). Raises ``OSError``
    when the folder cannot be created or written.
    """
    import fcntl

    folder = Path(folder).resolve()
    held = _held_locks.get(folder)
    if held is not None:
        held[1] += 1
        try:
            yield folder
        finally:
            held[1] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "a+", encoding="ascii")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            holder = None
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
        if holder == f"pid {os.getppid()}":  # held for this run by the process that started it
            yield folder
            return
        if holder is not None:
            raise FolderBusy(
                f"{folder} is in use by another run ({holder}): one run at a time per results "
                "folder; wait for it to finish, or use another --results-dir"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        _held_locks[folder] = [handle, 1]
        try:
            yield folder
        finally:
            del _held_locks[folder]
    finally:
        handle.close()  # releases the flock


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True


def temporary_sibling(target: str | os.PathLike, kind: str) -> Path:
    """A new hidden folder beside ``target``: ``.<name>.<kind>-<pid>-<random>`` (normal mode).

    Temporary folders of the project live beside what they become, never in the system's
    temporary directory: the rename that publishes them stays on one file system, and what a
    killed process leaves is found and removed by :func:`remove_dead_siblings`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    made = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.{kind}-{os.getpid()}-"))
    os.chmod(made, 0o777 & ~umask())  # mkdtemp makes 0700
    return made


def remove_dead_siblings(
    folder: str | os.PathLike, kinds: tuple[str, ...], name: str | None = None
) -> list[Path]:
    """Remove what ended processes left in ``folder``: hidden folders ``.<name>.<kind>-<pid>-*``
    (of :func:`temporary_sibling`; any name, or only ``name``) whose process no longer runs;
    return them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    names = re.escape(name) if name is not None else ".+"
    pattern = re.compile(rf"^\.{names}\.(?:{'|'.join(map(re.escape, kinds))})-(\d+)-[^/]+$")
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not pid_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
