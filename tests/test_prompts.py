"""PartiPrompts loader and challenge grouping (aigc_lib.prompts)."""

import functools
import hashlib
import io
import itertools
import os
import urllib.error

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from aigc_lib import prompts

HEADER = "Prompt\tCategory\tChallenge\tNote\n"
MAPPING = {
    "Basic": "Basic",
    "Complex": "Complex",
    "Imagination": "Imagination",
    "Simple Detail": "Detail",
}


def tsv(rows):
    return (HEADER + "".join("\t".join(r) + "\n" for r in rows)).encode()


GOOD = tsv(
    [
        ("a dog", "Animals", "Basic", ""),
        ("a cat on the moon", "Animals", "Imagination", "n"),
        ("a red cube", "Artifacts", "Simple Detail", ""),
        ("a long prompt", "People", "Complex", ""),
    ]
)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No env var, an empty cache location, and a network that is unreachable."""
    monkeypatch.delenv("PARTIPROMPTS_PATH", raising=False)
    monkeypatch.setattr(prompts, "CACHE_PATH", tmp_path / "cache" / "PartiPrompts.tsv")

    def no_network(url, timeout=None):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(prompts.urllib.request, "urlopen", no_network)
    return tmp_path


def serve(monkeypatch, data):
    """Make the download return ``data``."""
    monkeypatch.setattr(
        prompts.urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(data)
    )


def test_loads_columns_ids_and_groups(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(GOOD)
    frame = prompts.load_partiprompts(path, mapping=MAPPING, allow_subset=True)
    assert list(frame.columns) == ["prompt_id", "prompt", "category", "challenge", "group"]
    assert frame["prompt_id"].tolist() == [0, 1, 2, 3]
    assert frame["group"].tolist() == ["Basic", "Imagination", "Detail", "Complex"]


def test_lookup_order_argument_then_env_then_cache(offline, monkeypatch):
    arg, env = offline / "arg.tsv", offline / "env.tsv"
    arg.write_bytes(tsv([("from argument", "Animals", "Basic", "")]))
    env.write_bytes(tsv([("from env", "Animals", "Basic", "")]))
    prompts.CACHE_PATH.parent.mkdir(parents=True)
    prompts.CACHE_PATH.write_bytes(tsv([("from cache", "Animals", "Basic", "")]))
    load = functools.partial(prompts.load_partiprompts, mapping=MAPPING, allow_subset=True)
    assert load()["prompt"][0] == "from cache"
    monkeypatch.setenv("PARTIPROMPTS_PATH", str(env))
    assert load()["prompt"][0] == "from env"
    assert load(arg)["prompt"][0] == "from argument"


def test_download_is_verified_then_cached(offline, monkeypatch):
    serve(monkeypatch, GOOD)
    monkeypatch.setattr(prompts, "PARTIPROMPTS_MD5", hashlib.md5(GOOD).hexdigest())
    frame = prompts.load_partiprompts(mapping=MAPPING)
    assert len(frame) == 4
    assert prompts.CACHE_PATH.read_bytes() == GOOD
    assert [p.name for p in prompts.CACHE_PATH.parent.iterdir()] == [
        "PartiPrompts.tsv"
    ]  # no temp file left


def test_offline_and_not_found_says_both_fixes(offline):
    with pytest.raises(ValueError, match="Set PARTIPROMPTS_PATH to a local copy") as err:
        prompts.load_partiprompts(mapping=MAPPING)
    assert "put the file at data/cache/PartiPrompts.tsv" in str(err.value)
    assert "\n" not in str(err.value)  # one line
    assert not prompts.CACHE_PATH.exists()


def test_checksum_mismatch_caches_nothing(offline, monkeypatch):
    serve(monkeypatch, GOOD)  # real md5 differs from GOOD's
    with pytest.raises(ValueError, match="checksum mismatch"):
        prompts.load_partiprompts(mapping=MAPPING)
    assert not prompts.CACHE_PATH.parent.exists() or not any(prompts.CACHE_PATH.parent.iterdir())


def test_bad_download_content_caches_nothing(offline, monkeypatch):
    bad = tsv([("a dog", "Animals", "Unheard Of", "")])
    serve(monkeypatch, bad)
    monkeypatch.setattr(prompts, "PARTIPROMPTS_MD5", hashlib.md5(bad).hexdigest())
    with pytest.raises(ValueError, match="Unheard Of"):
        prompts.load_partiprompts(mapping=MAPPING)
    assert not prompts.CACHE_PATH.exists()


def test_missing_file_names_the_argument(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="path"):
        prompts.load_partiprompts(tmp_path / "nope.tsv")
    monkeypatch.setenv("PARTIPROMPTS_PATH", str(tmp_path / "nope.tsv"))
    with pytest.raises(ValueError, match="PARTIPROMPTS_PATH.*data/cache/PartiPrompts.tsv"):
        prompts.load_partiprompts()


def test_missing_columns(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("Prompt\tCategory\nA dog\tAnimals\n")
    with pytest.raises(ValueError, match=r"lacks columns \['Challenge'\]"):
        prompts.load_partiprompts(path, mapping=MAPPING)


def test_unknown_challenge_labels_are_named(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(
        tsv([("a", "Arts", "Basic", ""), ("b", "Arts", "Weird One", ""), ("c", "Arts", "Odd", "")])
    )
    with pytest.raises(ValueError, match=r"unknown challenge labels \['Odd', 'Weird One'\]"):
        prompts.load_partiprompts(path, mapping=MAPPING)


def test_empty_prompts_are_rejected(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(tsv([("a dog", "Animals", "Basic", ""), ("  ", "Animals", "Basic", "")]))
    with pytest.raises(ValueError, match=r"empty prompts in rows \[1\]"):
        prompts.load_partiprompts(path, mapping=MAPPING)


def test_a_valid_subset_is_refused_unless_asked_for(tmp_path):
    path = tmp_path / "subset.tsv"
    path.write_bytes(GOOD)
    match = r"holds 4 prompts where the official file holds 1632"
    with pytest.raises(ValueError, match=match) as err:
        prompts.load_partiprompts(path, mapping=MAPPING)
    assert str(path) in str(err.value) and "allow_subset=True" in str(err.value)
    assert len(prompts.load_partiprompts(path, mapping=MAPPING, allow_subset=True)) == 4


def test_an_edited_copy_of_full_length_is_refused(tmp_path):
    path = tmp_path / "edited.tsv"
    path.write_bytes(tsv([(f"prompt {i}", "Animals", "Basic", "") for i in range(1632)]))
    match = r"differs from the official file \(md5 [0-9a-f]{32}"
    with pytest.raises(ValueError, match=match) as err:
        prompts.load_partiprompts(path, mapping=MAPPING)
    assert str(path) in str(err.value)


def test_a_bad_cached_copy_is_refused_too(offline):
    prompts.CACHE_PATH.parent.mkdir(parents=True)
    prompts.CACHE_PATH.write_bytes(GOOD)
    with pytest.raises(ValueError, match=r"^cache: .*holds 4 prompts"):
        prompts.load_partiprompts(mapping=MAPPING)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        (HEADER.encode(), r"holds no prompts \(only a header\)"),
        (bytes(range(256)) * 8, "is not UTF-8 text"),
        (b"PK\x03\x04\x00\x00binary", "is a binary file"),
        (
            b'Prompt\tCategory\tChallenge\n"unclosed\tAnimals\tBasic\n',
            "is not a tab-separated table",
        ),
    ],
    ids=["empty", "blank", "header-only", "not-utf8", "nul-bytes", "unparsable"],
)
def test_empty_or_binary_files_are_named(tmp_path, content, match):
    path = tmp_path / "broken.tsv"
    path.write_bytes(content)
    for allow_subset in (False, True):
        with pytest.raises(ValueError, match=match) as err:
            prompts.load_partiprompts(path, mapping=MAPPING, allow_subset=allow_subset)
        assert str(err.value).startswith(f"path: {str(path)!r}")


@pytest.mark.parametrize(
    "row, match",
    [
        (("a dog", "Pets", "Basic", ""), r"unknown category labels \['Pets'\]"),
        (("a dog", "", "Basic", ""), r"empty category labels in rows \[1\]"),
        (("a dog", "Animals", " ", ""), r"empty challenge labels in rows \[1\]"),
    ],
)
def test_every_field_and_label_is_checked(tmp_path, row, match):
    path = tmp_path / "p.tsv"
    path.write_bytes(tsv([("a cat", "Animals", "Basic", ""), row]))
    with pytest.raises(ValueError, match=match):
        prompts.load_partiprompts(path, mapping=MAPPING, allow_subset=True)


def test_allow_subset_must_be_a_bool(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(GOOD)
    with pytest.raises(ValueError, match="allow_subset: expected True or False"):
        prompts.load_partiprompts(path, mapping=MAPPING, allow_subset="yes")


@pytest.mark.skipif(not os.environ.get("PARTIPROMPTS_PATH"), reason="PARTIPROMPTS_PATH not set")
def test_a_truncated_copy_of_the_real_file_is_refused(tmp_path, monkeypatch):
    lines = open(os.environ["PARTIPROMPTS_PATH"], "rb").read().splitlines(keepends=True)
    truncated = tmp_path / "t.tsv"
    truncated.write_bytes(b"".join(lines[:100]))
    monkeypatch.setenv("PARTIPROMPTS_PATH", str(truncated))
    with pytest.raises(ValueError, match=r"^PARTIPROMPTS_PATH: .*t\.tsv' holds 99 prompts"):
        prompts.load_partiprompts()
    assert len(prompts.load_partiprompts(allow_subset=True)) == 99


def test_default_mapping_covers_the_11_challenges_with_reasons():
    mapping = prompts.load_challenge_groups()
    assert len(mapping) == 11
    assert set(mapping.values()) == set(prompts.GROUPS)


@pytest.mark.skipif(not os.environ.get("PARTIPROMPTS_PATH"), reason="PARTIPROMPTS_PATH not set")
def test_real_partiprompts_file():
    frame = prompts.load_partiprompts()
    assert len(frame) == 1632
    assert frame["challenge"].nunique() == 11
    assert frame["category"].nunique() == 12
    assert frame["group"].value_counts().to_dict() == {
        "Detail": 579,
        "Imagination": 426,
        "Basic": 362,
        "Complex": 265,
    }
    with open(os.environ["PARTIPROMPTS_PATH"], "rb") as fh:
        assert hashlib.md5(fh.read()).hexdigest() == prompts.PARTIPROMPTS_MD5


# --- group_challenges: exact optimal 1-D grouping -------------------------------------------


def brute_force_sse(values, n_groups):
    """Smallest within-group squared error over every contiguous split of the sorted values."""
    x = np.sort(values)
    best = np.inf
    for cuts in itertools.combinations(range(1, len(x)), n_groups - 1):
        parts = np.split(x, cuts)
        best = min(best, sum(((p - p.mean()) ** 2).sum() for p in parts))
    return best


def sse_of(labels, scores):
    total = 0.0
    for g in set(labels.values()):
        vals = np.array([scores[k] for k, v in labels.items() if v == g])
        total += ((vals - vals.mean()) ** 2).sum()
    return total


@settings(deadline=None, max_examples=60)
@given(st.lists(st.floats(20, 40, allow_nan=False), min_size=4, max_size=9), st.integers(1, 4))
def test_group_challenges_is_optimal(values, n_groups):
    scores = {f"c{i}": v for i, v in enumerate(values)}
    labels = prompts.group_challenges(scores, n_groups)
    assert set(labels) == set(scores)
    assert sorted(set(labels.values())) == list(range(n_groups))
    assert sse_of(labels, scores) == pytest.approx(
        brute_force_sse(np.array(values), n_groups), abs=1e-9
    )
    order = sorted(
        scores, key=scores.get
    )  # contiguous and ordered: labels never decrease with score
    assert all(labels[a] <= labels[b] for a, b in zip(order, order[1:]))


def test_group_challenges_obvious_clusters():
    scores = {"a": 20.0, "b": 20.5, "c": 30.0, "d": 30.2, "e": 40.0}
    assert prompts.group_challenges(scores, 3) == {"a": 0, "b": 0, "c": 1, "d": 1, "e": 2}


@pytest.mark.parametrize(
    "scores, n, match",
    [
        ({"a": 1.0}, 2, "mean_score_by_challenge"),
        ({"a": 1.0, "b": float("nan")}, 1, "mean_score_by_challenge"),
        ({"a": 1.0}, 0, "n_groups"),
    ],
)
def test_group_challenges_bad_input(scores, n, match):
    with pytest.raises(ValueError, match=match):
        prompts.group_challenges(scores, n)
