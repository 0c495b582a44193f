"""Model selection across tiers and estimators; posterior against MaxEnt."""

import numpy as np
import pytest
from conftest import sample_settings
from pymc_extras.prior import Prior

import pymc_maxent as pmx
from pymc_maxent.diagnostics.comparison import compare_estimates
from pymc_maxent.diagnostics.selection import model_selection, split_by_individual
from pymc_maxent.exceptions import ChoiceDataError


def fit(data, tier, seed, **kwargs):
    return pmx.ChoiceModel(data, tier, **kwargs).fit(random_seed=seed, **sample_settings(400, 500))


@pytest.fixture(scope="module")
def mixed_panel():
    """Strong taste heterogeneity: both coefficients random with SD 1.5."""
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=120, n_situations=8, n_attributes=2, seed=4,
                                   truth={"mu": [1.0, -1.0], "sigma": [1.5, 1.5]})
    train, test = split_by_individual(data, 0.25, seed=0)
    fits = {"MNL-2": fit(train, "MNL-2", 1), "MXL-1": fit(train, "MXL-1", 1),
            "MaxEnt": pmx.fit_maxent(train)}
    return train, test, fits


@pytest.mark.slow
def test_the_true_tier_wins(mixed_panel):
    train, test, fits = mixed_panel
    table = model_selection(fits, train, test)
    assert list(table.index[:2]) == ["MXL-1", "MNL-2"]
    assert (table.loc[["MXL-1", "MNL-2"], "loo_level"] == "individual").all()
    gap = table.loc["MNL-2", "elpd_diff"]
    assert gap < -2 * table.loc["MNL-2", "dse"] < 0  # clear, not a coin toss
    assert table.loc["MXL-1", "weight"] > 0.9
    # held out on new individuals too, the mixed logit predicts better than both fixed-coefficient fits
    assert table["heldout_log_score"].idxmax() == "MXL-1"
    assert table.loc["MaxEnt", "estimator"] == "maxent" and np.isnan(table.loc["MaxEnt", "elpd_loo"])
    for name in ("MNL-2", "MXL-1"):  # the containers hold the training data again
        np.testing.assert_array_equal(fits[name].model["X"].get_value(), train.X)
    # a MaxEnt held-out score is the log of its predicted probability of each choice
    p = fits["MaxEnt"].predict(test).to_numpy()[0, 0]
    expected = np.log(p[np.arange(test.n_situations), test.chosen]).sum()
    np.testing.assert_allclose(table.loc["MaxEnt", "heldout_log_score"], expected, rtol=1e-12)


@pytest.mark.slow
def test_parameter_count_matches_the_tier_table(mixed_panel):
    train, _, fits = mixed_panel
    tiers = pmx.tier_table(train)
    for name in ("MNL-2", "MXL-1"):
        counts = fits[name].parameter_count()
        assert counts["parameters"] == tiers.loc[name, "identified"]
        assert counts["latent"] == tiers.loc[name, "latent"]


def test_split_keeps_individuals_whole():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=40, n_situations=3, seed=2)
    train, test = split_by_individual(data, 0.3, seed=5)
    assert set(train.individuals).isdisjoint(test.individuals)
    assert len(test.individuals) == 12 and train.n_situations + test.n_situations == 120
    assert sorted(train.situations.tolist() + test.situations.tolist()) == sorted(data.situations.tolist())
    with pytest.raises(ChoiceDataError, match="test_fraction"):
        split_by_individual(data, 1.0)


def test_flat_posterior_agrees_with_the_noise_free_maxent():
    """Without the noise term MaxEnt is the logit MLE, the mode of a flat-prior posterior."""
    data = pmx.load_travel_mode()
    flat = {"alpha": Prior("Flat"), "beta": Prior("Flat")}
    posterior = fit(data, "MNL-2", 3, priors=flat)
    mle = pmx.fit_maxent(data, error_support=None)
    table = compare_estimates(posterior, mle)
    assert set(table.index) == set(mle.parameter_names())
    np.testing.assert_allclose(table["maxent_estimate"], mle.summary().loc[table.index, "estimate"])
    assert table["difference_sd"].abs().max() < 0.35  # mean vs mode of a near-normal posterior
    assert table["maxent_in_interval"].all()
    # the posterior SDs match the MLE's inverse-Hessian SEs
    np.testing.assert_allclose(table["bayes_sd"], table["maxent_sd"], rtol=0.2)
    # the default GME noise (centred within situations) shrinks every coefficient a little toward 0,
    # by a fraction of a posterior SD
    gme_fit = pmx.fit_maxent(data)
    gme = compare_estimates(posterior, gme_fit)
    shrunk = gme_fit.estimates()["estimate"].abs() < mle.estimates()["estimate"].abs()
    assert shrunk.all() and gme["difference_sd"].abs().max() < 1.0
