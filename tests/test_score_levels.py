"""Tests of aigc_lib.score_levels (Fig. 4 re-classification) and aigc_lib.metrics (Fig. 5 summaries)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import metrics
from aigc_lib import score_levels as pf
import code_scenario
from aigc_lib.simulation import ASSIGNMENTS, simulate


def make_scenario(**changes):
    """The code-built scenario (tests/code_scenario.py) with equal-ish shares and 8 tasks per slot."""
    return code_scenario.make_scenario(shares=(0.25, 0.25, 0.3, 0.2), tasks_per_slot=8, **changes)


# --- reclassify_by_medium_score -------------------------------------------------------------------


def test_levels_partition_the_prompts_and_hold_their_medium_scores():
    sc = make_scenario()
    table = pf.reclassify_by_medium_score(sc, 3000, np.random.default_rng(0), 50)
    assert list(table["level"].cat.categories) == ["low", "mid", "high"]
    per_level = table.drop_duplicates("level")
    assert per_level["n_prompts"].sum() == 3000
    assert per_level["share"].sum() == pytest.approx(1.0)
    medium = table[table["model"] == "sd15"].set_index("level")["mean_score"]
    assert medium["low"] < 29.5 <= medium["mid"] < 33.8 <= medium["high"]
    np.testing.assert_allclose(
        table.loc[table["model"] == "sd15", "gain_vs_reference"], 0.0, atol=1e-12
    )


def test_small_model_loses_least_on_low_prompts_and_large_gains_most_on_high():
    """beta_small < 1 < beta_large (SPEC section 3): the paper's Fig. 4 observation."""
    table = pf.reclassify_by_medium_score(
        make_scenario(noise_sd=0.0), 4000, np.random.default_rng(1), 50
    )
    gain = table.pivot(index="level", columns="model", values="gain_vs_reference")
    assert (
        gain.loc["low", "sdxl-turbo"]
        > gain.loc["mid", "sdxl-turbo"]
        > gain.loc["high", "sdxl-turbo"]
    )
    assert gain.loc["low", "sdxl"] < gain.loc["mid", "sdxl"] < gain.loc["high", "sdxl"]


def test_seconds_per_image_is_the_whole_gpu_image_time():
    sc = make_scenario()
    table = pf.reclassify_by_medium_score(sc, 50, np.random.default_rng(2), 18)
    first = table.drop_duplicates("model").set_index("model")
    assert first.loc["sdxl-turbo", "steps"] == 1 and first.loc["sdxl", "steps"] == 18
    assert first.loc["sdxl", "seconds_per_image"] == pytest.approx((18 * 13.522 + 10.7) / 34.0)
    assert first.loc["sdxl-turbo", "seconds_per_image"] == pytest.approx((1.589 + 2.6) / 34.0)


def test_reclassification_is_deterministic_and_uses_the_prompt_table():
    sc = make_scenario()
    prompts = pd.DataFrame({"prompt_id": range(4), "group": ["Imagination"] * 4})
    a = pf.reclassify_by_medium_score(sc, 400, np.random.default_rng(7), 30, prompts=prompts)
    b = pf.reclassify_by_medium_score(sc, 400, np.random.default_rng(7), 30, prompts=prompts)
    pd.testing.assert_frame_equal(a, b)
    # every prompt is Imagination (mu 34.5 > theta_2): most land in the high level
    shares = a.drop_duplicates("level").set_index("level")["share"]
    assert shares["high"] > shares["low"]


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        (dict(n_prompts=0), "n_prompts"),
        (dict(rng=None), "rng"),
        (dict(reference=3), "reference"),
        (dict(prompts=pd.DataFrame({"group": ["Nope"]})), "prompts"),
        (dict(prompts=pd.DataFrame({"x": [1]})), "prompts"),
        (dict(steps=-2), "steps"),
    ],
)
def test_reclassification_rejects_bad_arguments(kwargs, arg):
    args = dict(scenario=make_scenario(), n_prompts=10, rng=np.random.default_rng(0), steps=20)
    args.update(kwargs)
    with pytest.raises(ValueError, match=arg):
        pf.reclassify_by_medium_score(**args)


def test_level_names():
    assert pf.level_names(3) == ("low", "mid", "high")
    assert pf.level_names(2) == ("level 0", "level 1")


# --- summarize_runs and slot_gain_pct -------------------------------------------------------------


def test_summary_matches_the_task_and_slot_tables():
    sc = make_scenario()
    runs = {a: simulate(sc, 5, seed=4, assignment=a, allocation="exact") for a in ASSIGNMENTS}
    table = metrics.summarize_runs(runs)
    assert list(table.index) == list(ASSIGNMENTS)
    for a, run in runs.items():
        assert table.loc[a, "mean_score"] == pytest.approx(run.tasks["score"].mean())
        assert table.loc[a, "mean_utility"] == pytest.approx(run.slots["utility"].mean())
        assert sum(table.loc[a, f"n_{m}"] for m in sc.model_names) == 5 * 8
        for m in sc.model_names:
            served = run.tasks.loc[run.tasks["model"] == m, "score"]
            if len(served):
                assert table.loc[a, m] == pytest.approx(served.mean())
            else:
                assert np.isnan(table.loc[a, m])


def test_summary_rejects_what_is_not_a_run():
    with pytest.raises(ValueError, match="runs"):
        metrics.summarize_runs({})
    with pytest.raises(ValueError, match="runs"):
        metrics.summarize_runs({"direct": 3})


def test_slot_gain_by_hand():
    np.testing.assert_allclose(
        metrics.slot_gain_pct([11.0, 9.0, -1.0], [10.0, 10.0, -2.0]), [10.0, -10.0, 50.0]
    )


@settings(deadline=None, max_examples=50)
@given(st.lists(st.floats(1.0, 50.0), min_size=1, max_size=20), st.floats(0.5, 2.0))
def test_slot_gain_is_zero_against_itself_and_scales(values, factor):
    u = np.array(values)
    np.testing.assert_allclose(metrics.slot_gain_pct(u, u), 0.0)
    np.testing.assert_allclose(
        metrics.slot_gain_pct(u * factor, u), 100 * (factor - 1), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize(
    "ref, other, arg",
    [
        ([], [], "reference"),
        ([1.0, np.nan], [1.0, 1.0], "reference"),
        ([1.0, 2.0], [1.0], "other"),
        ([1.0], [0.0], "other"),
    ],
)
def test_slot_gain_rejects_bad_arguments(ref, other, arg):
    with pytest.raises(ValueError, match=arg):
        metrics.slot_gain_pct(ref, other)
