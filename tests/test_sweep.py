"""Tests of aigc_lib.sweep: plans, resumable append-only shards, failures, process split, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from accelerate import PartialState

import aigc_lib
from aigc_lib import sweep

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core machine

PROMPTS = pd.DataFrame(
    {
        "prompt_id": [11, 12, 13],
        "prompt": [
            "a red cube",
            "a horse on the moon, oil painting",
            "a crowded market street at dusk " * 4,
        ],
        "group": ["Basic", "Imagination", "Complex"],
    }
)
MODELS = ["sdxl-turbo", "sd15"]
STEPS = [1, 2]
N_ROWS = 3 * (1 + len(STEPS))  # Turbo runs its fixed single step


class Stop(Exception):
    """Stands for an interruption (Ctrl-C, a killed job) after some rows."""


class Counting:
    """A pipeline that counts its calls and fails (like an out-of-memory error) for some step counts."""

    def __init__(self, pipe, fail_steps=()):
        self.pipe, self.fail_steps, self.calls = pipe, set(fail_steps), 0

    def __call__(self, **kwargs):
        self.calls += 1
        if kwargs["num_inference_steps"] in self.fail_steps:
            raise RuntimeError("CUDA out of memory (injected)")
        return self.pipe(**kwargs)


@pytest.fixture(scope="module")
def tiny():
    return sweep.tiny_backend("cpu")


def with_pipes(backend, fail_steps=()):
    """``backend`` whose pipelines are :class:`Counting` wrappers, kept in the returned dict."""
    made = {}

    def load(name):
        made[name] = Counting(backend.load(name), fail_steps)
        return made[name]

    return dataclasses.replace(backend, load=load), made


def raw_rows(out):
    return [row for path in sweep.shard_paths(out) for row in sweep.read_rows(path)]


def keys(rows):
    return [sweep._key(r) for r in rows]


def planned_keys():
    return set(keys(sweep.plan(PROMPTS, MODELS, STEPS).to_dict("records")))


def run(out, backend, **kwargs):
    kwargs = {"warmup": False, "progress": False} | kwargs
    return sweep.run_sweep(PROMPTS, out, MODELS, STEPS, backend=backend, **kwargs)


# ---------------------------------------------------------------- prompts and plan


def test_plan_rows_models_by_steps_by_seeds_with_turbo_fixed():
    frame = sweep.plan(PROMPTS, MODELS, STEPS, seeds=[0, 1])
    assert len(frame) == 2 * N_ROWS
    assert set(frame.loc[frame["model"] == "sdxl-turbo", "steps"]) == {1}
    assert set(frame.loc[frame["model"] == "sd15", "steps"]) == {1, 2}
    assert not frame.duplicated(["prompt_id", "model", "steps", "seed"]).any()
    free_turbo = sweep.plan(PROMPTS, ["sdxl-turbo"], {"sdxl-turbo": [1, 2, 4]})
    assert sorted(free_turbo["steps"].unique()) == [1, 2, 4]  # a mapping overrides fixed steps


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"models": []}, "models"),
        ({"models": ["sd15", "sd15"]}, "models"),
        ({"models": ["sd3"]}, "name"),
        ({"seeds": [0, 0]}, "seeds"),
        ({"steps": [0, 1]}, "steps"),
    ],
)
def test_plan_rejects_bad_arguments(kwargs, arg):
    call = {"models": MODELS, "steps": STEPS, "seeds": [0]} | kwargs
    with pytest.raises(ValueError, match=arg):
        sweep.plan(PROMPTS, **call)


def test_select_prompts_is_deterministic_by_seed_and_counts_per_group():
    many = pd.DataFrame(
        {
            "prompt_id": range(40),
            "prompt": [f"p{i}" for i in range(40)],
            "group": ["A", "B", "C", "D"] * 9 + ["A"] * 4,
        }
    )
    a = sweep.select_prompts(many, per_group=3, seed=5)
    assert a.equals(sweep.select_prompts(many, per_group=3, seed=5))
    assert a["group"].value_counts().to_dict() == {"A": 3, "B": 3, "C": 3, "D": 3}
    assert (
        not a["prompt_id"].tolist()
        == sweep.select_prompts(many, per_group=3, seed=6)["prompt_id"].tolist()
    )
    assert a["prompt_id"].is_monotonic_increasing  # input order kept
    assert len(sweep.select_prompts(many, per_group=3, limit=5, seed=5)) == 5
    assert len(sweep.select_prompts(many, limit=100)) == 40
    assert len(sweep.select_prompts(many, per_group=50)) == 40


@pytest.mark.parametrize(
    "prompts, kwargs, arg",
    [
        (PROMPTS.drop(columns="group"), {}, "prompts"),
        (pd.concat([PROMPTS, PROMPTS]), {}, "prompts"),
        (PROMPTS, {"per_group": 0}, "per_group"),
        (PROMPTS, {"limit": -1}, "limit"),
    ],
)
def test_select_prompts_rejects_bad_arguments(prompts, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        sweep.select_prompts(prompts, **kwargs)


# ---------------------------------------------------------------- the sweep


def test_tiny_sweep_end_to_end_one_labelled_row_per_image(tmp_path, tiny):
    backend, pipes = with_pipes(tiny)
    frame = run(tmp_path, backend, warmup=True)
    assert len(frame) == N_ROWS and set(keys(frame.to_dict("records"))) == planned_keys()
    assert list(frame.columns) == list(sweep.COLUMNS)
    assert (frame["status"] == "ok").all()
    assert frame["clip_score"].between(0, 100).all() and (frame["seconds"] > 0).all()
    assert frame["peak_memory_gib"].isna().all()  # no device memory counter on a CPU
    assert set(frame["weights"]) == {"random-tiny"} and set(frame["clip_model"]) == {
        "tiny-random-clip"
    }
    assert not frame["real_weights"].any() and set(frame["resolution"]) == {32}
    assert frame.groupby("model")["guidance"].first().to_dict() == {"sd15": 7.5, "sdxl-turbo": 0.0}
    # one warm-up image per model, not recorded
    assert {m: p.calls for m, p in pipes.items()} == {"sdxl-turbo": 3 + 1, "sd15": 6 + 1}
    on_disk = pd.read_csv(tmp_path / sweep.MERGED_NAME)
    assert len(on_disk) == N_ROWS and on_disk["clip_score"].to_numpy() == pytest.approx(
        frame["clip_score"].to_numpy()
    )


def test_same_seeds_same_scores(tmp_path, tiny):
    a = run(tmp_path / "a", tiny)
    b = run(tmp_path / "b", tiny)
    np.testing.assert_array_equal(a["clip_score"].to_numpy(), b["clip_score"].to_numpy())


def test_rows_of_other_weights_are_never_taken_as_done(tmp_path, tiny):
    run(tmp_path, tiny)
    real = dataclasses.replace(tiny, weights="hub:real")
    with pytest.raises(
        ValueError, match="out_dir: .* holds rows measured with weights \\['random-tiny'\\]"
    ):
        run(tmp_path, real)


def test_interrupted_sweep_resumes_without_duplicates(tmp_path, tiny):
    written = []

    def stop_after_four(row):
        written.append(row)
        if len(written) == 4:
            raise Stop

    with pytest.raises(Stop):
        run(tmp_path, tiny, on_row=stop_after_four)
    assert len(raw_rows(tmp_path)) == 4
    resumed = []
    frame = run(tmp_path, tiny, on_row=resumed.append)
    assert len(resumed) == N_ROWS - 4  # finished rows skipped
    raw = keys(raw_rows(tmp_path))
    assert len(raw) == len(set(raw)) == N_ROWS and set(raw) == planned_keys()
    assert len(frame) == N_ROWS
    assert run(tmp_path, tiny, on_row=resumed.append).equals(frame) and len(resumed) == N_ROWS - 4


def test_torn_last_line_is_dropped_and_redone(tmp_path, tiny):
    with pytest.raises(Stop):
        run(
            tmp_path,
            tiny,
            on_row=lambda row: (_ for _ in ()).throw(Stop) if row["steps"] == 2 else None,
        )
    shard = sweep.shard_paths(tmp_path)[0]
    done = len(sweep.read_rows(shard))
    with open(shard, "ab") as fh:  # a row cut mid-write, as a kill can leave it
        fh.write(
            b'{"prompt_id": 13, "group": "Complex", "model": "sd15", "steps": 2, "seed": 0, "secon'
        )
    assert len(sweep.read_rows(shard)) == done
    run(tmp_path, tiny)
    lines = shard.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])  # every line whole
    raw = keys(raw_rows(tmp_path))
    assert len(raw) == len(set(raw)) == N_ROWS


def test_failed_rows_are_recorded_and_the_sweep_goes_on(tmp_path, tiny):
    failing, _ = with_pipes(tiny, fail_steps={2})
    frame = run(tmp_path, failing, warmup=True)
    failed = frame[frame["status"] == "failed"]
    assert len(frame) == N_ROWS and len(failed) == 3
    assert set(failed["steps"]) == {2} and set(failed["model"]) == {"sd15"}
    assert failed["error"].str.contains("out of memory").all() and failed["clip_score"].isna().all()
    assert (frame.loc[frame["status"] == "ok", "error"].fillna("") == "").all()
    again = []
    run(tmp_path, failing, on_row=again.append)
    assert again == []  # failed rows count as finished ...
    frame = run(tmp_path, tiny, retry_failed=True, on_row=again.append)
    assert len(again) == 3 and (frame["status"] == "ok").all()  # ... unless retried
    raw = keys(raw_rows(tmp_path))
    assert len(raw) == len(set(raw)) == N_ROWS


def test_a_model_that_cannot_load_fails_its_rows_only(tmp_path, tiny):
    def load(name):
        if name == "sd15":
            raise OSError("no such model folder")
        return tiny.load(name)

    frame = run(tmp_path, dataclasses.replace(tiny, load=load))
    assert (frame.loc[frame["model"] == "sd15", "error"].str.startswith("load: OSError")).all()
    assert (frame.loc[frame["model"] == "sdxl-turbo", "status"] == "ok").all()


def test_prompts_split_across_processes_into_shards_that_merge(tmp_path, tiny):
    class Rank:
        """Process ``index`` of 2, split with accelerate's own PartialState.split_between_processes."""

        num_processes = 2

        def __init__(self, index):
            self.process_index, self.is_main_process, self.device = (
                index,
                index == 0,
                torch.device("cpu"),
            )

        def split_between_processes(self, inputs):
            return PartialState.split_between_processes(self, inputs)

        def wait_for_everyone(self):
            pass

    run(tmp_path, tiny, state=Rank(1))
    frame = run(tmp_path, tiny, state=Rank(0))
    shards = {
        p.name: {r["prompt_id"] for r in sweep.read_rows(p)} for p in sweep.shard_paths(tmp_path)
    }
    assert shards == {"rows-000.jsonl": {11, 12}, "rows-001.jsonl": {13}}
    assert len(frame) == N_ROWS and set(frame["process_index"]) == {0, 1}


def good_row(**changes):
    """One valid ok row, as the sweep writes it, with ``changes``."""
    row = {c: None for c in sweep.COLUMNS} | {
        "prompt_id": 11,
        "group": "Basic",
        "model": "sd15",
        "steps": 2,
        "seed": 0,
        "seconds": 0.5,
        "clip_score": 21.0,
        "status": "ok",
        "error": "",
    }
    return row | changes


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_read_rows_ignores_only_a_torn_last_line(tmp_path):
    path = tmp_path / "rows-000.jsonl"
    rows = [good_row(), good_row(seed=1)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    for torn in ('{"prompt_id": 11, "mod', json.dumps(good_row(seed=2))):  # cut mid-row or at \n
        path.write_text(text + torn, encoding="utf-8")
        assert sweep.read_rows(path) == rows
    assert sweep.read_rows(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize(
    "line, match",
    [
        ("not json", "line 2: not a JSON row"),
        ('["a list"]', "line 2: expected a JSON object"),
        (
            json.dumps(good_row(steps="one")),
            "line 2: steps: expected a whole number >= 1, got 'one'",
        ),
        (json.dumps(good_row(seed=-1)), "line 2: seed: expected a whole number >= 0"),
        (
            '{"prompt_id": 1, "model": "sd15", "steps": 2, "seed": 0}',
            "line 2: missing field 'status'",
        ),
        (json.dumps(good_row(clip_score=float("nan"))), "line 2: clip_score: expected a finite"),
        (json.dumps(good_row(clip_score=None)), "line 2: clip_score: expected a finite"),
        (json.dumps(good_row(seconds=-0.1)), "line 2: seconds: expected a finite number >= 0"),
        (json.dumps(good_row(status="done")), "line 2: status: expected 'ok' or 'failed'"),
    ],
    ids=[
        "not-json",
        "not-object",
        "steps-one",
        "seed",
        "no-status",
        "nan",
        "no-score",
        "negative-s",
        "status",
    ],
)
def test_a_bad_row_is_refused_with_its_file_and_line(tmp_path, line, match):
    path = write_lines(tmp_path / "rows-000.jsonl", [json.dumps(good_row()), line])
    with pytest.raises(ValueError, match=f"rows-000.jsonl, {match}"):
        sweep.read_rows(path)
    with pytest.raises(ValueError, match="line 2"):  # never merged into sweep.csv
        sweep.merge_shards(tmp_path)
    assert not (tmp_path / sweep.MERGED_NAME).exists()


def test_a_failed_row_needs_no_score_or_time(tmp_path):
    failed = good_row(status="failed", seconds=None, clip_score=None, error="OOM")
    path = write_lines(tmp_path / "rows-000.jsonl", [json.dumps(failed)])
    assert sweep.read_rows(path) == [failed]


def test_merge_prefers_ok_rows_over_failed_duplicates(tmp_path):
    row = {c: None for c in sweep.COLUMNS} | {
        "prompt_id": 1,
        "model": "sd15",
        "steps": 10,
        "seed": 0,
    }
    lines = [
        row | {"status": "ok", "clip_score": 30.0, "seconds": 1.0},
        row | {"status": "failed", "error": "x"},
    ]
    (tmp_path / "rows-000.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8"
    )
    frame = sweep.merge_shards(tmp_path)
    assert len(frame) == 1 and frame.loc[0, "status"] == "ok" and frame.loc[0, "clip_score"] == 30.0


# ---------------------------------------------------------------- command line


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(Path(aigc_lib.__file__).resolve().parents[1]))
    return [sys.executable, "-m", "aigc_lib.sweep", *args], env


def test_cli_help():
    cmd, env = _cli("--help")
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "--tiny" in out and "--prompts-per-group" in out and "accelerate launch" in out


def test_cli_killed_mid_sweep_then_rerun_completes_without_duplicates(tmp_path, capsys):
    """A process killed (SIGKILL) after its first row; the rerun, the same command line, in this
    process (its imports paid once: the check is what it finds on disk, not how it starts)."""
    csv = tmp_path / "prompts.csv"
    PROMPTS.to_csv(csv, index=False)
    out = tmp_path / "out"
    steps = ["1", "2", "3"]
    args = (
        "--tiny",
        "--out",
        str(out),
        "--prompts-csv",
        str(csv),
        "--models",
        *MODELS,
        "--steps",
        *steps,
        "--threads",
        "1",
        "--no-progress",
    )
    cmd, env = _cli(*args)
    total = 3 * (1 + len(steps))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shard = out / "rows-000.jsonl"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if shard.exists() and shard.stat().st_size > 0:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert 0 < len(sweep.read_rows(shard)) < total  # killed mid-sweep
    sweep.main(args)
    assert "random weights" in capsys.readouterr().out
    raw = keys(sweep.read_rows(shard))
    assert len(raw) == len(set(raw)) == total
    merged = pd.read_csv(out / sweep.MERGED_NAME)
    assert (
        len(merged) == total
        and (merged["status"] == "ok").all()
        and not merged["real_weights"].any()
    )
    assert json.loads((out / "manifest.json").read_text())["backend"]["real_weights"] is False


@pytest.mark.parametrize(
    "args, match",
    [
        (["--steps", "-4"], "argument --steps: expected a positive integer, got '-4'"),
        (["--steps", "two"], "argument --steps: expected a positive integer, got 'two'"),
        (["--seeds", "-1"], "argument --seeds: expected an integer >= 0, got '-1'"),
        (["--seeds", "1", "1"], "seeds must be distinct non-negative ints, got [1, 1]"),
        (["--threads", "0"], "argument --threads: expected a positive integer, got '0'"),
        (["--limit", "0"], "argument --limit: expected a positive integer, got '0'"),
        (["--model-path", "sd15"], "argument --model-path: expected NAME=FOLDER"),
        (
            ["--model-path", "sd15=/no/such/folder"],
            "argument --model-path: '/no/such/folder' is not a folder",
        ),
    ],
    ids=[
        "negative-steps",
        "word-steps",
        "negative-seed",
        "repeated-seed",
        "threads",
        "limit",
        "model-path-form",
        "model-path-folder",
    ],
)
def test_cli_bad_arguments_are_usage_errors_and_write_nothing(tmp_path, capsys, args, match):
    csv = tmp_path / "prompts.csv"
    PROMPTS.to_csv(csv, index=False)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        sweep.main(["--tiny", "--out", str(out), "--prompts-csv", str(csv), *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: python -m aigc_lib.sweep")
    assert match in err
    assert not out.exists()  # no manifest before the arguments are checked


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "is empty; expected a CSV with columns ['prompt_id', 'prompt', 'group']"),
        (bytes(range(256)), "is not UTF-8 text (byte 128)"),
        (b"prompt_id,prompt,group\n1,a\x00cat,Basic\n", "is a binary file"),
        (b'prompt_id,prompt,group\n1,"unclosed,Basic\n', "is not a CSV table"),
        (b"prompt_id,prompt\n1,a cat\n", "missing ['group']"),
        (b"prompt_id,prompt,group\n1,a cat,Basic\n2, ,Basic\n", "empty prompts in rows [1]"),
    ],
    ids=["empty", "not-utf8", "nul", "unparsable", "columns", "empty-prompt"],
)
def test_cli_names_a_bad_prompts_file(tmp_path, capsys, content, match):
    path = tmp_path / "prompts.csv"
    path.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        sweep.main(["--tiny", "--out", str(out), "--prompts-csv", str(path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"error: prompts_csv: {str(path)!r}" in err and match in err
    assert not out.exists()


def test_cli_names_a_bad_partiprompts_file(tmp_path, capsys):
    path = tmp_path / "PartiPrompts.tsv"
    path.write_bytes(b"")
    with pytest.raises(SystemExit):
        sweep.main(["--tiny", "--out", str(tmp_path / "out"), "--prompts", str(path)])
    assert f"error: path: {str(path)!r} is empty" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
