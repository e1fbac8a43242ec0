"""The paper's open readings (aigc_lib.readings): each changes what it should and nothing else."""

import numpy as np
import pandas as pd
import pytest

from aigc_lib import readings as rd
from aigc_lib.scenario import load_scenario, true_score
from aigc_lib.simulation import ASSIGNMENTS, simulate

SC = load_scenario()
WORKLOAD = ["slot", "prompt_id", "group", "deviation"]


def run(policy, readings=rd.DEFAULT, n_slots=12, allocation="exact"):
    return simulate(SC, n_slots, 3, assignment=policy, allocation=allocation, readings=readings)


def test_defaults_are_the_first_option_and_changed_alone_covers_every_other():
    assert all(getattr(rd.DEFAULT, k) == options[0] for k, options in rd.OPTIONS.items())
    alone = rd.changed_alone()
    assert list(alone)[0] == "default" and len(alone) == 1 + sum(
        len(o) - 1 for o in rd.OPTIONS.values()
    )
    for label, r in alone.items():
        differs = [k for k in rd.OPTIONS if getattr(r, k) != getattr(rd.DEFAULT, k)]
        assert len(differs) == (0 if label == "default" else 1)
        assert r.label == label
    assert set(alone) == {
        "default",
        "information=prompt",
        "direct=best",
        "latency=per_image",
        "utility=per_model",
        "score_curve=saturating",
    }


def test_every_option_quotes_the_paper():
    for name, options in rd.OPTIONS.items():
        for option in options:
            assert "Sec." in rd.PAPER_WORDS[(name, option)]


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(information="oracle"), "information"),
        (dict(rho=1.5), "rho"),
        (dict(rho=float("nan")), "rho"),
        (dict(latency="queue"), "latency"),
        (dict(saturation_steps=0.5), "saturation_steps"),
        (dict(step_tolerance=-1), "step_tolerance"),
        (dict(direct="worst"), "direct"),
    ],
)
def test_bad_readings_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        rd.Readings(**changes)


def test_prompt_information_changes_probabilistic_only():
    prompt = rd.Readings(information="prompt")
    for policy in ("direct", "random"):
        pd.testing.assert_frame_equal(run(policy).tasks, run(policy, prompt).tasks)
    default, informed = run("probabilistic").tasks, run("probabilistic", prompt).tasks
    pd.testing.assert_frame_equal(default[WORKLOAD], informed[WORKLOAD])
    assert not default["model"].equals(informed["model"])
    # rho = 1 thresholds each prompt's own medium-model score
    own = SC.mu[informed["group"].cat.codes] + informed["deviation"]
    np.testing.assert_array_equal(
        informed["model"].cat.codes, np.searchsorted(SC.thresholds, own, side="right")
    )


def test_direct_best_changes_direct_only_and_picks_the_best_idle_gpu_image():
    best = rd.Readings(direct="best")
    for policy in ("probabilistic", "random"):
        pd.testing.assert_frame_equal(run(policy).tasks, run(policy, best).tasks)
    chosen = rd.direct_models(SC, best)
    for k, mu in enumerate(SC.mu):  # by hand: expected score minus lambda x seconds, fewest steps
        value = [
            true_score(SC, mu, m, spec.steps[0]) - SC.weight * spec.image_seconds(spec.steps[0])
            for m, spec in enumerate(SC.models)
        ]
        assert chosen[k] == int(np.argmax(value))
    tasks = run("direct", best).tasks
    np.testing.assert_array_equal(tasks["model"].cat.codes, chosen[tasks["group"].cat.codes])
    assert (
        rd.direct_models(SC).tolist()
        == np.searchsorted(SC.thresholds, SC.mu, side="right").tolist()
    )


@pytest.mark.parametrize("policy", ASSIGNMENTS)
def test_per_image_latency_keeps_the_assignment_and_drops_the_queue(policy):
    image = run(policy, rd.Readings(latency="per_image")).tasks
    default = run(policy).tasks
    pd.testing.assert_frame_equal(default[WORKLOAD + ["model"]], image[WORKLOAD + ["model"]])
    per_model = image.groupby(["slot", "model"], observed=True)["latency"]
    np.testing.assert_allclose(per_model.max(), per_model.min())  # every task waits one image
    np.testing.assert_allclose(image["utility"], image["score"] - SC.weight * image["latency"])


def test_per_model_utility_is_the_mean_over_models_of_their_mean_task_utility():
    r = run("probabilistic", rd.Readings(utility="per_model"))
    default = run("probabilistic")
    pd.testing.assert_frame_equal(
        default.tasks[WORKLOAD + ["model"]], r.tasks[WORKLOAD + ["model"]]
    )
    by_hand = (
        r.tasks.groupby(["slot", "model"], observed=True)["utility"].mean().groupby("slot").mean()
    )
    np.testing.assert_allclose(r.slots["utility"], by_hand.to_numpy())


def test_saturating_curve_flattens_scores_and_optimal_step_stops_there():
    sat = rd.Readings(score_curve="saturating", saturation_steps=26)
    r = run("probabilistic", sat, allocation="optimal_step")
    multi = r.tasks[r.tasks["model"] != "sdxl-turbo"]
    assert set(multi["steps"]) == {26}
    default = run("probabilistic", allocation="optimal_step")
    assert set(default.tasks.loc[default.tasks["model"] != "sdxl-turbo", "steps"]) == {42}
    pd.testing.assert_frame_equal(
        default.tasks[WORKLOAD + ["model"]], r.tasks[WORKLOAD + ["model"]]
    )
    x = 31.0
    assert true_score(SC, x, 2, 42, 26) == pytest.approx(true_score(SC, x, 2, 26, 26))
    assert true_score(SC, x, 2, 26, 26) == pytest.approx(
        true_score(SC, x, 2, 50)
    )  # the prior's level


def test_labels_name_only_what_matters():
    assert rd.Readings(rho=0.3).label == "default"  # rho is unused under category information
    assert rd.Readings(information="prompt", rho=0.5).label == "information=prompt, rho=0.5"
    assert (
        rd.Readings(score_curve="saturating", saturation_steps=30).label
        == "score_curve=saturating, saturation_steps=30"
    )


def test_information_and_direct_do_not_change_a_single_model_policy():
    """claims.measure_many runs a single-model policy once for all these readings."""
    for readings in (rd.Readings(information="prompt"), rd.Readings(direct="best")):
        pd.testing.assert_frame_equal(run("sd15").tasks, run("sd15", readings).tasks)


def test_the_prompt_reading_quotes_the_whole_sentence_and_says_oracle():
    words = rd.PAPER_WORDS[("information", "prompt")]
    assert "utilizes the scoring potential of each prompt itself, effectively assigning" in words
    assert "based on the scoring probability of different categories'" in words
    assert "oracle" in words


def test_caveat_flags_a_changed_baseline_and_an_oracle():
    assert rd.caveat("direct=best")[0] == "baseline changed"
    assert rd.caveat(rd.Readings(direct="best", latency="per_image"))[0] == "baseline changed"
    assert rd.caveat(rd.Readings(information="prompt"))[0] == "oracle"
    assert rd.caveat(rd.Readings(information="prompt", rho=0.9)) == ("", "")
    assert rd.caveat("default") == ("", "") and rd.caveat("latency=per_image") == ("", "")
    assert all(
        rd.caveat(flag_reading)[1] == rd.FLAGS[rd.caveat(flag_reading)[0]]
        for flag_reading in ("direct=best", "information=prompt")
    )
