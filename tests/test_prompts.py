"""PartiPrompts loader and challenge grouping (aigc_lib.prompts)."""

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
MAPPING = {"Basic": "Basic", "Complex": "Complex", "Imagination": "Imagination", "Simple Detail": "Detail"}


def tsv(rows):
    return (HEADER + "".join("\t".join(r) + "\n" for r in rows)).encode()


GOOD = tsv([("a dog", "Animals", "Basic", ""), ("a cat on the moon", "Animals", "Imagination", "n"),
            ("a red cube", "Artifacts", "Simple Detail", ""), ("a long prompt", "People", "Complex", "")])


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
    monkeypatch.setattr(prompts.urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(data))


def test_loads_columns_ids_and_groups(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(GOOD)
    frame = prompts.load_partiprompts(path, mapping=MAPPING)
    assert list(frame.columns) == ["prompt_id", "prompt", "category", "challenge", "group"]
    assert frame["prompt_id"].tolist() == [0, 1, 2, 3]
    assert frame["group"].tolist() == ["Basic", "Imagination", "Detail", "Complex"]


def test_lookup_order_argument_then_env_then_cache(offline, monkeypatch):
    arg, env = offline / "arg.tsv", offline / "env.tsv"
    arg.write_bytes(tsv([("from argument", "A", "Basic", "")]))
    env.write_bytes(tsv([("from env", "A", "Basic", "")]))
    prompts.CACHE_PATH.parent.mkdir(parents=True)
    prompts.CACHE_PATH.write_bytes(tsv([("from cache", "A", "Basic", "")]))
    assert prompts.load_partiprompts(mapping=MAPPING)["prompt"][0] == "from cache"
    monkeypatch.setenv("PARTIPROMPTS_PATH", str(env))
    assert prompts.load_partiprompts(mapping=MAPPING)["prompt"][0] == "from env"
    assert prompts.load_partiprompts(arg, mapping=MAPPING)["prompt"][0] == "from argument"


def test_download_is_verified_then_cached(offline, monkeypatch):
    serve(monkeypatch, GOOD)
    monkeypatch.setattr(prompts, "PARTIPROMPTS_MD5", hashlib.md5(GOOD).hexdigest())
    frame = prompts.load_partiprompts(mapping=MAPPING)
    assert len(frame) == 4
    assert prompts.CACHE_PATH.read_bytes() == GOOD
    assert [p.name for p in prompts.CACHE_PATH.parent.iterdir()] == ["PartiPrompts.tsv"]  # no temp file left


def test_offline_and_not_found_says_both_fixes(offline):
    with pytest.raises(ValueError, match="PARTIPROMPTS_PATH") as err:
        prompts.load_partiprompts(mapping=MAPPING)
    assert "internet" in str(err.value)
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
    with pytest.raises(ValueError, match="PARTIPROMPTS_PATH"):
        prompts.load_partiprompts()


def test_missing_columns(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("Prompt\tCategory\nA dog\tAnimals\n")
    with pytest.raises(ValueError, match=r"lacks columns \['Challenge'\]"):
        prompts.load_partiprompts(path, mapping=MAPPING)


def test_unknown_challenge_labels_are_named(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(tsv([("a", "A", "Basic", ""), ("b", "A", "Weird One", ""), ("c", "A", "Odd", "")]))
    with pytest.raises(ValueError, match=r"unknown challenge labels \['Odd', 'Weird One'\]"):
        prompts.load_partiprompts(path, mapping=MAPPING)


def test_empty_prompts_are_rejected(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(tsv([("a dog", "A", "Basic", ""), ("  ", "A", "Basic", "")]))
    with pytest.raises(ValueError, match=r"empty prompts in rows \[1\]"):
        prompts.load_partiprompts(path, mapping=MAPPING)


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
    assert frame["group"].value_counts().to_dict() == {"Detail": 579, "Imagination": 426, "Basic": 362, "Complex": 265}
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
    assert sse_of(labels, scores) == pytest.approx(brute_force_sse(np.array(values), n_groups), abs=1e-9)
    order = sorted(scores, key=scores.get)  # contiguous and ordered: labels never decrease with score
    assert all(labels[a] <= labels[b] for a, b in zip(order, order[1:]))


def test_group_challenges_obvious_clusters():
    scores = {"a": 20.0, "b": 20.5, "c": 30.0, "d": 30.2, "e": 40.0}
    assert prompts.group_challenges(scores, 3) == {"a": 0, "b": 0, "c": 1, "d": 1, "e": 2}


@pytest.mark.parametrize("scores, n, match", [
    ({"a": 1.0}, 2, "mean_score_by_challenge"),
    ({"a": 1.0, "b": float("nan")}, 1, "mean_score_by_challenge"),
    ({"a": 1.0}, 0, "n_groups"),
])
def test_group_challenges_bad_input(scores, n, match):
    with pytest.raises(ValueError, match=match):
        prompts.group_challenges(scores, n)
