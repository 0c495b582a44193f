"""Model selection across tiers and estimators; posterior against MaxEnt; exact cross-validation."""

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from conftest import sample_settings
from pymc_extras.prior import Prior
from scipy.special import logsumexp

import pymc_maxent as pmx
from pymc_maxent.bayes.refit import held_out_availability
from pymc_maxent.diagnostics.comparison import compare_estimates
from pymc_maxent.diagnostics.cross_validation import (
    Refits,
    exact_refits,
    fold_splits,
    individual_folds,
)
from pymc_maxent.diagnostics.selection import model_selection, split_by_individual
from pymc_maxent.exceptions import ChoiceDataError, SpecificationError
from pymc_maxent.simulate import simulate_electricity_panel


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
    refits = {"draws": 200, "tune": 200, "chains": 1}
    table = model_selection(fits, train, test, folds=4, sample_kwargs=refits)
    for name in ("MXL-1", "MNL-2"):  # PSIS-LOO by individual, refits where its k are bad
        bad = table.loc[name, "pareto_k_bad"]
        assert table.loc[name, "criterion"] == ("loo" if bad == 0 else "reloo" if bad <= 5 else "kfold")
        assert table.loc[name, "loo_level"] == "individual"
    assert table.loc["MNL-2", "criterion"] == "loo"
    np.testing.assert_allclose(table.loc["MNL-2", "elpd"], table.loc["MNL-2", "elpd_loo"])
    assert table.loc["MaxEnt", "criterion"] == "kfold" and table.loc["MaxEnt", "refits"] == 4
    assert list(table.index[:2]) == ["MXL-1", "MNL-2"] and list(table["rank"]) == [0, 1, 2]
    assert (table["level"] == "individual").all()
    gap = table.loc["MNL-2", "elpd_diff"]
    assert gap < -2 * table.loc["MNL-2", "dse"] < 0  # clear, not a coin toss
    # LOO and K-fold rows are ranked together but get no stacking weight
    assert table["weight"].isna().all() and "no stacking weight" in table.loc["MNL-2", "note"]
    same_folds = model_selection({n: fits[n] for n in ("MNL-2", "MXL-1")}, train, cv="kfold", folds=4,
                                 sample_kwargs=refits)
    assert same_folds.loc["MXL-1", "weight"] > 0.9
    np.testing.assert_allclose(same_folds["weight"].sum(), 1.0)
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


# ---------------------------------------------------------------------- exact cross-validation
def test_kfold_by_individual_leaves_every_individual_out_exactly_once():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=23, n_situations=3, seed=2)
    folds = individual_folds(data, k=5, seed=3)
    sizes = np.bincount(folds)[1:]
    assert sizes.sum() == 23 and sizes.max() - sizes.min() <= 1 and len(sizes) == 5
    np.testing.assert_array_equal(folds, individual_folds(data, k=5, seed=3))
    assert not np.array_equal(folds, individual_folds(data, k=5, seed=4))
    left_out = []
    for train, test in fold_splits(data, folds):
        assert set(train.individuals).isdisjoint(test.individuals)  # whole individuals on one side
        assert train.n_situations + test.n_situations == data.n_situations
        left_out += test.individuals.tolist()
    assert sorted(left_out) == sorted(data.individuals.tolist())  # each exactly once
    with pytest.raises(ChoiceDataError, match="k=24"):
        individual_folds(data, k=24)


def test_a_held_out_situation_adds_nothing_to_the_likelihood(travel_mode):
    """The refits' device: a held-out situation's only available alternative is the chosen one."""
    data = travel_mode.subset(slice(0, 30))
    model = pmx.build_model(data, "MNL-2")
    point = {"alpha": np.array([1.5, -0.5, 0.8]), "beta": np.array([-0.02, -0.09, 0.01])}
    logp = model.compile_logp(vars=[model["chosen"]], sum=False, jacobian=False)

    def log_lik(point):
        return logp(point)[0]

    full = log_lik(point)
    held_out = np.arange(30) % 4 == 1
    with pmx.data.containers.restored_containers(model):
        pm.set_data({"available": held_out_availability(data.available, data.chosen, held_out)}, model=model)
        masked = log_lik(point)
    assert (full < 0).all()
    np.testing.assert_array_equal(masked[held_out], 0.0)
    np.testing.assert_allclose(masked[~held_out], full[~held_out], rtol=1e-12)
    np.testing.assert_array_equal(model["available"].get_value(), data.available)  # put back


@pytest.fixture(scope="module")
def small_mixed_cross_section(travel_mode):
    """MXL-1 on 40 TravelMode trips: one situation per individual, an effect per situation."""
    data = travel_mode.subset(slice(0, 40))
    fit = pmx.ChoiceModel(data, "MXL-1", attributes=["gc"]).fit(random_seed=2, **sample_settings(150, 150))
    return data, fit


@pytest.mark.slow
def test_reloo_replaces_exactly_the_bad_units_by_a_brute_force_refit(small_mixed_cross_section):
    data, fit = small_mixed_cross_section
    loo, level = fit.loo()
    assert level == "situation"
    k = loo.pareto_k.to_numpy()
    threshold = np.sort(k)[-3]  # the two largest k are refitted
    refits = Refits(fit, level, random_seed=5, sample_kwargs=dict(draws=150, tune=150, chains=1))
    exact = exact_refits(refits, loo, threshold)
    bad = np.flatnonzero(k > threshold)
    assert refits.n_refits == 2 == bad.size
    changed = exact.elpd_i.to_numpy() != loo.elpd_i.to_numpy()
    np.testing.assert_array_equal(np.flatnonzero(changed), bad)
    np.testing.assert_allclose(exact.elpd, exact.elpd_i.sum())
    for unit, seed in zip(bad, refits.seeds, strict=True):
        # brute force: the same refit without the unit, its choice scored by PyMC's own log-likelihood
        held_out = np.arange(data.n_situations) == unit
        refit = fit.posterior_without(held_out, random_seed=seed, draws=150, tune=150, chains=1)
        log_lik = pm.compute_log_likelihood(refit.idata, model=fit.model, var_names=["chosen"],
                                            extend_inferencedata=False, progressbar=False)["chosen"]
        draws = log_lik.isel(situation=unit).to_numpy().ravel()
        brute = logsumexp(draws) - np.log(draws.size)
        np.testing.assert_allclose(exact.elpd_i.to_numpy()[unit], brute, rtol=1e-9)


def test_model_selection_rejects_unknown_settings(travel_mode):
    fits = {"MaxEnt": pmx.fit_maxent(travel_mode)}
    with pytest.raises(SpecificationError, match="cv must be one of"):
        model_selection(fits, travel_mode, cv="waic")
    with pytest.raises(SpecificationError, match="give test data"):
        model_selection(fits, travel_mode, cv="none")


def test_one_fit_takes_all_the_weight_and_an_impossible_choice_is_warned(travel_mode):
    fits = {"MaxEnt": pmx.fit_maxent(travel_mode)}
    test = travel_mode.subset(slice(0, 20))
    gc = test.attribute("gc").copy()
    gc[0, test.chosen[0]] = 1e7  # utility about -1.5e5: p underflows to 0
    with pytest.warns(UserWarning, match=r"MaxEnt: 1 held-out choice\(s\) predicted with probability 0"):
        table = model_selection(fits, travel_mode, test.with_attribute("gc", gc), cv="none")
    assert table.loc["MaxEnt", "heldout_log_score"] == -np.inf
    assert table.loc["MaxEnt", "heldout_log_score_se"] == np.inf  # not NaN
    assert table.loc["MaxEnt", "weight"] == 1.0 and table.loc["MaxEnt", "rank"] == 0


@pytest.fixture(scope="module")
def travel_mode_tiers(travel_mode):
    train, test = split_by_individual(travel_mode, 0.25, seed=1)
    settings = sample_settings(250, 250)
    fits = {tier: pmx.ChoiceModel(train, tier).fit(random_seed=1, **settings) for tier in ("MNL-2", "MXL-1")}
    fits["MaxEnt"] = pmx.ChoiceModel(train, "MNL-2").fit(method="maxent")
    return train, test, fits


@pytest.mark.slow
def test_travel_mode_ranks_the_mixed_logit_by_kfold_not_by_its_unreliable_loo(travel_mode_tiers):
    train, test, fits = travel_mode_tiers
    refits = {"draws": 150, "tune": 150, "chains": 1}
    table = model_selection(fits, train, test, folds=3, sample_kwargs=refits)
    mxl = table.loc["MXL-1"]
    assert mxl["pareto_k_bad"] > 50  # one situation per traveller: PSIS-LOO fails
    assert mxl["criterion"] == "kfold" and mxl["refits"] == 3 and "PSIS-LOO unreliable" in mxl["note"]
    assert np.isnan(mxl["weight"])  # no weight from the unreliable LOO, nor from mixed criteria
    assert mxl["elpd"] < mxl["elpd_loo"] - 10  # PSIS was far too optimistic
    assert table.loc["MNL-2", "criterion"] == "loo" and table.loc["MaxEnt", "criterion"] == "kfold"
    assert table["rank"].notna().all()
    # one currency for all: K-fold on the same folds, with stacking weights
    kfold = model_selection(fits, train, cv="kfold", folds=3, sample_kwargs=refits)
    assert (kfold["criterion"] == "kfold").all()
    np.testing.assert_allclose(kfold["weight"].sum(), 1.0)
    np.testing.assert_allclose(kfold.loc["MXL-1", "elpd"], mxl["elpd"])  # the same folds and refits
    # PSIS-LOO alone: the unreliable fit is reported, not ranked or weighted
    loo = model_selection(fits, train, cv="loo")
    assert not loo.loc["MXL-1", "reliable"] and loo.loc["MXL-1", "rank"] is pd.NA
    assert loo.loc["MNL-2", "rank"] == 0 and np.isnan(loo.loc["MXL-1", "weight"])
    # the held-out score alone
    held = model_selection(fits, train, test, cv="none")
    assert (held["criterion"] == "heldout").all()
    np.testing.assert_allclose(held["elpd"], held["heldout_log_score"])


@pytest.mark.slow
def test_a_well_specified_logit_keeps_psis_loo():
    """Electricity design (coefficients near ±10, no heterogeneity): MNL-1 is the true model and
    every Pareto k is good, so the table takes PSIS-LOO and refits nothing."""
    data, _, _ = simulate_electricity_panel(40, n_situations=6, sigma=np.zeros(6), seed=3)
    fit = pmx.ChoiceModel(data, "MNL-1").fit(random_seed=1, **sample_settings(200, 300))
    table = model_selection({"MNL-1": fit}, data)
    row = table.loc["MNL-1"]
    assert row["criterion"] == "loo" and row["level"] == "individual" and row["refits"] == 0
    assert row["pareto_k_bad"] == 0 and row["rank"] == 0
