"""The premise sweep (aigc_lib.premises) and the ground truth's residual (aigc_lib.scenario)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_lib import premises, scenario, simulation


@pytest.fixture(scope="module")
def sc():
    return scenario.load_scenario()


# --- the residual of the ground truth ------------------------------------------------------------


def test_default_keeps_todays_per_task_scores_exactly(sc):
    """Spread 0 (the shipped default): no residual, and passing zeros changes nothing."""
    assert sc.residual_sd == 0.0 and sc.residual_corr == 1.0
    tasks = simulation.simulate(sc, 5, 3, "probabilistic", "exact").tasks
    x = sc.mu[tasks["group"].cat.codes.to_numpy()] + tasks["deviation"].to_numpy()
    m = tasks["model"].cat.codes.to_numpy().astype(np.int64)
    plain = scenario.true_score(sc, x, m, tasks["steps"].to_numpy())
    zeros = scenario.residuals(sc, len(tasks), np.random.default_rng(0))
    assert not zeros.any()
    with_zero = scenario.true_score(sc, x, m, tasks["steps"].to_numpy(), residual=zeros[:, 0])
    np.testing.assert_array_equal(plain, with_zero)
    moved = premises.with_premise(sc, 1.0)  # the sweep's default point is today's scenario
    again = simulation.simulate(moved, 5, 3, "probabilistic", "exact").tasks
    np.testing.assert_array_equal(again["score"].to_numpy(), tasks["score"].to_numpy())


def test_residuals_have_the_stated_spread_and_correlation(sc):
    point = premises.with_premise(sc, 1.0, residual_corr=0.3, residual_sd=2.0)
    r = scenario.residuals(point, 40000, np.random.default_rng(1))
    assert not r[:, point.reference_model].any()  # x_n is the medium model's own score
    assert r[:, 0].std() == pytest.approx(2.0, rel=0.03)
    assert np.corrcoef(r[:, 0], r[:, 2])[0, 1] == pytest.approx(0.3, abs=0.03)
    cov = scenario.residual_covariance(point)
    np.testing.assert_allclose(np.cov(r.T), cov, atol=0.15)


@pytest.mark.parametrize(
    ("changes", "argument"),
    [({"residual_sd": -1.0}, "residual_sd"), ({"residual_corr": 1.5}, "residual_corr")],
)
def test_bad_residual_parameters_raise_naming_them(sc, changes, argument):
    with pytest.raises(ValueError, match=argument):
        sc.replace(**changes)


def test_a_scenario_file_with_a_bad_residual_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nextends: paper\npremises: []\noverrides:\n"
        "  residual_corr: {value: 2.0, source: assumption, reason: a test}\n"
    )
    with pytest.raises(ValueError, match="residual_corr"):
        scenario.load_scenario(path)


def test_bad_residual_argument_raises(sc):
    with pytest.raises(ValueError, match="residual"):
        scenario.true_score(sc, 30.0, 0, 1, residual=np.nan)
    with pytest.raises(ValueError, match="n_prompts"):
        scenario.residuals(sc, -1, np.random.default_rng(0))


# --- moving between the camps --------------------------------------------------------------------


def test_slope_scale_mirrors_the_slopes_about_the_medium_model(sc):
    assert premises.large_minus_small(premises.with_premise(sc, 1.0)) == pytest.approx(
        premises.large_minus_small(sc)
    )
    flat = premises.with_premise(sc, 0.0)
    assert {m.score_beta for m in flat.models} == {sc.models[1].score_beta}
    mirrored = premises.with_premise(sc, -1.0)
    assert premises.large_minus_small(mirrored) == pytest.approx(-premises.large_minus_small(sc))
    assert mirrored.premises == ()


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"slope_scale": 3.0}, "slope_scale"),  # the small model's slope would fall to <= 0
        ({"residual_corr": -0.1}, "residual_corr"),
        ({"residual_sd": -1.0}, "residual_sd"),
    ],
)
def test_with_premise_rejects_bad_parameters(sc, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        premises.with_premise(sc, **kwargs)


# --- the discriminator against random escalation -------------------------------------------------


def test_worst_light_first_loses_to_random_by_default_and_wins_with_slopes_swapped(sc):
    default = premises.escalation_against_random(sc, 4000, 0.25, 0)
    assert default["high"] < 0  # easy prompts gain most: the worst light images gain least
    swapped = premises.with_premise(sc, -1.0)
    assert premises.escalation_against_random(swapped, 4000, 0.25, 0)["low"] > 0
    assert default["escalated"] == pytest.approx(0.25, abs=0.01)


def test_escalation_advantage_is_monotone_in_the_slope_and_the_residual_correlation(sc):
    """Theory: escalating the worst light images gains more the more hard prompts gain (slope
    scale down) and the less the models' residuals agree (correlation down)."""
    by_scale = [
        premises.escalation_against_random(premises.with_premise(sc, s), 6000, 0.25, 2)["mean"]
        for s in (1.0, 0.0, -1.0)
    ]
    assert by_scale[0] < by_scale[1] < by_scale[2]
    by_corr = [
        premises.escalation_against_random(premises.with_premise(sc, 1.0, c, 1.5), 6000, 0.25, 2)[
            "mean"
        ]
        for c in (1.0, 0.5, 0.0)
    ]
    assert by_corr[0] < by_corr[1] < by_corr[2]


def test_serving_runs_add_each_delivered_images_residual(sc):
    point = premises.with_premise(sc, 1.0, 0.0, 1.0)
    plain = premises.serving_runs(sc, 40, 0.7, 0)
    noisy = premises.serving_runs(point, 40, 0.7, 0)
    r = scenario.residuals(point, 40, np.random.default_rng([0, 27]))
    np.testing.assert_allclose(noisy["sdxl-turbo"] - plain["sdxl-turbo"], r[:, 0])
    np.testing.assert_allclose(noisy["sd15"], plain["sd15"])  # the medium model has none
    assert not np.allclose(noisy["cascade"], plain["cascade"])


# --- verdicts and the sweep ----------------------------------------------------------------------


def test_verdict_reads_the_interval():
    assert premises.verdict(0.1, 0.5) == "agrees"
    assert premises.verdict(-0.5, -0.1) == "disagrees"
    assert premises.verdict(-0.1, 0.1) == "not shown"
    assert premises.verdict(np.nan, 1.0) == "not shown"
    with pytest.raises(ValueError, match="low"):
        premises.verdict(1.0, 0.0)


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-5, 5, allow_nan=False),
    st.floats(0, 3, allow_nan=False),
    st.floats(0, 5, allow_nan=False),
)
def test_verdict_is_monotone_in_a_shift_of_the_interval(mean, half, shift):
    order = {v: i for i, v in enumerate(premises.VERDICTS)}  # agrees < not shown < disagrees
    low = premises.verdict(mean - half, mean + half)
    high = premises.verdict(mean - half + shift, mean + half + shift)
    assert order[high] <= order[low]


@pytest.fixture(scope="module")
def grid(sc):
    return premises.sweep(sc, [1.0, -1.0], [1.0, 0.0], 1.0, 8, 60, 0.7, 0)


def test_sweep_gives_every_claim_at_every_point(grid):
    claims = set(premises.ASSIGNMENT_CLAIMS) | set(premises.SERVING_CLAIMS)
    assert set(grid["claim"]) == claims and len(grid) == 4 * len(claims)
    assert set(grid["verdict"]) <= set(premises.VERDICTS)
    assert (grid["low"] <= grid["mean"]).all() and (grid["mean"] <= grid["high"]).all()
    for v, lo, hi in zip(grid["verdict"], grid["low"], grid["high"]):
        assert v == premises.verdict(lo, hi)


def test_the_residual_does_not_move_the_slot_models_claims_across_zero(grid):
    """Theory: no slot-model policy sees the residual, so it only adds noise to both sides of a
    paired difference; along the correlation axis no claim goes from agrees to disagrees."""
    slot = grid[grid["claim"].isin(premises.ASSIGNMENT_CLAIMS)]
    for _, cell in slot.groupby(["slope_scale", "claim"]):
        assert not {"agrees", "disagrees"} <= set(cell["verdict"])


def test_the_cascade_gains_on_the_router_as_hard_prompts_gain_more(grid):
    """Theory: the router sends the prompts predicted to score highest to the large model (it
    encodes "easy prompts gain most"); the cascade's discriminator estimates each prompt's gain
    from its light image, whichever camp holds. Mirroring the slopes must favour the cascade."""
    pair = grid[grid["claim"] == "cascade beats router"].set_index(["residual_corr", "slope_scale"])
    for corr in (1.0, 0.0):
        assert pair.loc[(corr, -1.0), "mean"] > pair.loc[(corr, 1.0), "mean"]


def test_sweep_rejects_bad_parameters(sc):
    with pytest.raises(ValueError, match="residual_corrs"):
        premises.sweep(sc, [1.0], [1.2], 1.0, 4, 40, 0.7, 0)
    with pytest.raises(ValueError, match="slope_scales"):
        premises.sweep(sc, [], [1.0], 1.0, 4, 40, 0.7, 0)


# --- robustness under each camp, public data ------------------------------------------------------


def test_mirrored_draws_keep_p1_and_put_hard_prompts_first(sc):
    rng = np.random.default_rng(0)
    drawn = premises.mirrored_scenario(sc, rng)
    assert premises.large_minus_small(drawn) < 0
    table = scenario.premises(drawn)
    assert table.loc[table["premise"] == "P1", "holds"].all()


def test_camp_robustness_reports_each_camp_apart(sc):
    table = premises.camp_robustness(sc, 2, 4, 0)
    assert list(table["camp"].unique()) == list(premises.CAMPS)
    easy = table[table["camp"] == premises.CAMPS[0]]
    hard = table[table["camp"] == premises.CAMPS[1]]
    assert (easy["large_minus_small"] > 0).all() and (hard["large_minus_small"] < 0).all()


def test_category_slope_recovers_a_known_line_and_its_interval():
    x = np.linspace(0.28, 0.40, 12)
    exact = premises.category_slope(x, 0.02 + 1.2 * x)
    assert exact["slope"] == pytest.approx(1.2) and exact["high"] - exact["low"] < 1e-9
    noisy = premises.category_slope(x, 1.2 * x + np.random.default_rng(0).normal(0, 0.01, 12))
    assert noisy["low"] < 1.2 < noisy["high"]
    with pytest.raises(ValueError, match="weights"):
        premises.category_slope(x, x, weights=np.zeros(12))


def test_public_figures_load_and_summarise():
    public = premises.load_public()
    fit = premises.category_slope(public["ascend"]["sd15"], public["ascend"]["sdxl"])
    assert fit["n"] == 12 and fit["low"] < fit["slope"] < fit["high"]
    summary = premises.confidence_summary(public["diffserve_confidences"])
    assert summary["corr_light_diff"] < 0  # a poorer light image, a larger heavy-minus-light
    with pytest.raises(ValueError, match="path"):
        premises.load_public("/nonexistent/public.yaml")


def test_shared_sweep_sweeps_once_and_hands_out_copies(sc, grid):
    first = premises.shared_sweep(sc, [1.0, -1.0], [1.0, 0.0], 1.0, 8, 60, 0.7, 0)
    assert first.equals(grid)
    first.loc[:, "mean"] = np.nan  # the caller's copy: the kept table does not change
    again = premises.shared_sweep(sc, (1.0, -1.0), (1.0, 0.0), 1.0, 8, 60, 0.7, 0)
    assert again.equals(grid)
    assert len(premises._SWEPT) >= 1


def test_public_band_maps_each_interval_end_onto_the_sweep(sc):
    band = premises.public_band(sc)
    asc = premises.load_public()["ascend"]
    assert band.loc["all categories", "slope"] == pytest.approx(
        premises.category_slope(asc["sd15"], asc["sdxl"])["slope"]
    )
    checked = 0
    for _, row in band.iterrows():
        for end in ("low", "high"):
            try:  # an end far outside the sweep can leave a model no positive slope
                point = premises.with_premise(sc, row[f"scale_{end}"])
            except ValueError:
                continue
            ratio = point.models[-1].score_beta / point.models[1].score_beta
            assert ratio == pytest.approx(row[end])  # the large slope over the medium one
            assert premises.large_minus_small(point) == pytest.approx(row[f"delta_{end}"])
            checked += 1
    assert checked >= 3
