"""Tests of aigc_lib.arrivals: Poisson arrivals, the Azure LLM 2023 traces, hostile trace files.

The traces come from the folder named by AZURE_TRACES_DIR (CI sets it; .ci/run) or data/cache/.
"""

import math
import os
from pathlib import Path

import numpy as np
import pytest

from aigc_lib import arrivals


@pytest.fixture(scope="module")
def traces():
    return {name: arrivals.load_trace(name) for name in arrivals.TRACES}


def test_the_published_traces_load_md5_checked_sorted_from_zero(traces):
    for name, times in traces.items():
        assert times.size == arrivals.TRACES[name].rows
        assert times[0] == 0 and np.all(np.diff(times) >= 0)
        assert 3300 < times[-1] < 3600  # about an hour
    conv, code = (arrivals.burstiness(traces[n]) for n in ("conv", "code"))
    assert conv["cv"] < 0.4 < 1.2 < code["cv"]  # conv is close to Poisson, code is bursty
    assert code["peak_to_mean"] > 8


def write(folder, name, text):
    path = folder / arrivals.TRACES[name].file if name in arrivals.TRACES else folder / name
    path.write_text(text)
    return path


HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def published_bytes(name):
    folder = os.environ.get(arrivals.TRACES_ENV)
    return (Path(folder) if folder else arrivals.CACHE_DIR).joinpath(arrivals.TRACES[name].file)


def test_a_torn_copy_of_a_published_trace_is_refused(tmp_path):
    data = published_bytes("code").read_bytes()
    (tmp_path / arrivals.TRACES["code"].file).write_bytes(data[:-7])  # the last line cut short
    with pytest.raises(ValueError, match="md5"):
        arrivals.load_trace("code", tmp_path)


def test_a_torn_last_line_is_named(tmp_path):
    path = write(
        tmp_path, "t.csv", HEADER + "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:5"
    )
    with pytest.raises(ValueError, match="line 3"):
        arrivals.read_trace(path)
    path = write(
        tmp_path, "u.csv", HEADER + "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.1,3"
    )
    with pytest.raises(ValueError, match="line 3 has 2 fields"):
        arrivals.read_trace(path)


def test_unsorted_and_duplicate_timestamps_are_kept_in_file_order(tmp_path):
    rows = ["2023-11-16 18:00:10.5000000,1,1", "2023-11-16 18:00:00.0000000,1,1"]
    rows += ["2023-11-16 18:00:10.5000000,1,1", "2023-11-16 19:00:00.0000000,1,1"]
    times = arrivals.read_trace(write(tmp_path, "v.csv", HEADER + "\n".join(rows) + "\n"))
    np.testing.assert_allclose(times, [10.5, 0.0, 10.5, 3600.0])


def test_seconds_are_read_as_seconds_and_an_empty_trace_is_refused_naming_its_file(tmp_path):
    times = arrivals.read_trace(write(tmp_path, "s.csv", "TIMESTAMP\n5\n2.5\n"))
    np.testing.assert_allclose(times, [2.5, 0.0])
    for text in ("TIMESTAMP\n", HEADER, HEADER + "\n\n"):
        with pytest.raises(ValueError, match=r"e\.csv.*no arrivals"):
            arrivals.read_trace(write(tmp_path, "e.csv", text))
    write(tmp_path, "code", HEADER)  # an empty copy of a published trace: refused by its md5
    with pytest.raises(ValueError, match="AzureLLMInferenceTrace_code.csv"):
        arrivals.load_trace("code", tmp_path)
    with pytest.raises(ValueError, match="TIMESTAMP"):
        arrivals.read_trace(write(tmp_path, "n.csv", "time\n1\n"))


def test_without_the_files_the_loader_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(arrivals.TRACES_ENV, raising=False)
    monkeypatch.setattr(arrivals, "CACHE_DIR", tmp_path)
    with pytest.raises(ValueError, match="AZURE_TRACES_DIR"):
        arrivals.load_trace("conv", url="file:///nonexistent/{file}")
    monkeypatch.setenv(arrivals.TRACES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="is not a file"):
        arrivals.load_trace("conv")
    with pytest.raises(ValueError, match="name"):
        arrivals.load_trace("chat")


def test_poisson_arrivals_have_their_rate_and_their_seed():
    times = arrivals.poisson(2.0, 20000, 3)
    assert np.all(np.diff(times) > 0) and times[0] > 0
    assert np.diff(times).mean() == pytest.approx(0.5, rel=0.03)
    np.testing.assert_array_equal(times, arrivals.poisson(2.0, 20000, 3))
    stats = arrivals.burstiness(times, 10.0)
    assert stats["cv"] == pytest.approx(1 / math.sqrt(20), rel=0.15)


def test_rescaling_sets_the_mean_rate_and_keeps_the_shape(traces):
    code = traces["code"]
    scaled = arrivals.rescale(code, 0.25, by="span")
    assert (scaled.size - 1) / (scaled.max() - scaled.min()) == pytest.approx(0.25)
    assert scaled[0] == 0
    np.testing.assert_allclose(scaled / scaled[-1], code / code[-1])
    with pytest.raises(ValueError, match="two distinct"):
        arrivals.rescale([1.0, 1.0], 1.0)


def test_a_long_silent_gap_is_found_and_warned_or_rescaled_by_the_busy_periods():
    busy = np.arange(0.0, 100.0, 1.0)  # 100 arrivals a second apart, an hour's gap, 100 more
    times = np.concatenate([busy, 3700.0 + busy])
    gaps = arrivals.silent_gaps(times)
    assert gaps["count"] == 1 and gaps["seconds"] == pytest.approx(3601.0)
    assert gaps["share"] == pytest.approx(3601.0 / 3799.0)
    with pytest.warns(UserWarning, match=r"silent gaps cover 95%.* 19\.1 times rate"):
        span = arrivals.rescale(times, 2.0)
    assert (span.size - 1) / span[-1] == pytest.approx(2.0)  # the mean over the span
    np.testing.assert_allclose(arrivals.rescale(times, 2.0, by="span"), span)
    by_busy = arrivals.rescale(times, 2.0, by="busy")
    np.testing.assert_allclose(np.diff(by_busy[:100]), 0.5)  # the busy periods at the rate
    assert by_busy[100] - by_busy[99] == pytest.approx(3601.0 / 2)  # the gap scaled with them
    with pytest.raises(ValueError, match="by"):
        arrivals.rescale(times, 2.0, by="gaps")


def test_the_conv_trace_has_no_silent_gap_and_code_is_mostly_silent(traces):
    assert arrivals.silent_gaps(traces["conv"])["count"] == 0
    assert arrivals.silent_gaps(traces["code"])["share"] > 0.5


def test_slots_become_arrival_times():
    np.testing.assert_array_equal(
        arrivals.slot_arrivals(3, np.array([2, 0, 1]), 5.0), [0.0, 0.0, 10.0]
    )
    np.testing.assert_array_equal(arrivals.slot_arrivals(2, 2, 1.5), [0.0, 0.0, 1.5, 1.5])
    with pytest.raises(ValueError, match="tasks_per_slot"):
        arrivals.slot_arrivals(2, np.array([1, -1]), 1.0)
