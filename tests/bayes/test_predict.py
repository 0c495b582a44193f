"""Out-of-sample prediction through the data containers, and the log-likelihood groups."""

import arviz as az
import numpy as np
import pymc as pm
import pytest

import pymc_maxent as pmx
from pymc_maxent.bayes.predict import predict_choice_probabilities
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.containers import set_choice_data
from pymc_maxent.exceptions import ChoiceDataError

SAMPLE = dict(draws=200, tune=300, chains=2, cores=1, progressbar=False, nuts_sampler="pymc",
              compute_convergence_checks=False)


def softmax(U, available):
    U = np.where(available, U, -np.inf)
    e = np.exp(U - U.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def draws(idata, name):
    """Posterior draws stacked as (sample, ...)."""
    da = idata["posterior"][name]
    return da.stack(sample=("chain", "draw")).transpose("sample", ...).values


@pytest.fixture(scope="module")
def mxl_fit():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=40, n_situations=5, seed=3)
    model = pmx.build_model(data, "MXL-1", store_probabilities=True)
    return data, model, pmx.sample(model, random_seed=3, **SAMPLE)


def test_mnl_prediction_equals_hand_computation():
    data = pmx.load_travel_mode()
    model = pmx.build_model(data, "MNL-2")
    idata = pmx.sample(model, random_seed=1, **SAMPLE)
    new = data.subset(slice(0, 20)).with_attribute("gc", data.attribute("gc")[:20] * 1.25)
    p = predict_choice_probabilities(model, idata, new)
    assert p.dims == ("chain", "draw", "situation", "alternative")
    assert p["situation"].values.tolist() == new.situations.tolist()
    alpha = np.concatenate([draws(idata, "alpha"), np.zeros((400, 1))], axis=1)  # car: reference
    U = alpha[:, None, :] + np.einsum("njk,sk->snj", new.X, draws(idata, "beta"))
    expected = softmax(U, new.available)
    got = p.stack(sample=("chain", "draw")).transpose("sample", ...).values
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0)


def test_known_individuals_through_pm_set_data(mxl_fit):
    data, model, idata = mxl_fit
    rng = np.random.default_rng(0)
    new = ChoiceData.from_arrays(
        rng.normal(size=(6, 3, 2)), np.zeros(6, dtype=int), individual=np.array([0, 0, 5, 7, 7, 39]),
        individuals=data.individuals, alternatives=data.alternatives, attributes=data.attributes,
        has_choices=False,
    )
    with model:
        set_choice_data(new)  # pm.set_data on the shared containers
        pp = pm.sample_posterior_predictive(idata, var_names=["p"], progressbar=False)
    got = pp["posterior_predictive"]["p"].stack(sample=("chain", "draw")).transpose("sample", ...).values
    alpha = np.concatenate([draws(idata, "alpha"), np.zeros((400, 1))], axis=1)
    beta = draws(idata, "mu")[:, None, :] + draws(idata, "sigma")[:, None, :] * draws(idata, "z")
    beta = beta[:, new.individual]  # (sample, situation, coefficient)
    U = alpha[:, None, :] + np.einsum("njk,snk->snj", new.X, beta)
    np.testing.assert_allclose(got, softmax(U, new.available), rtol=1e-10, atol=1e-14)


def test_new_individuals_integrate_over_population(mxl_fit):
    data, model, idata = mxl_fit
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 3, 2)) * 2
    new = ChoiceData.from_arrays(
        X, np.zeros(4, dtype=int), individual=np.array([0, 1, 2, 3]),
        individuals=np.array(["new_a", "new_b", 0, "new_c"], dtype=object),
        alternatives=data.alternatives, attributes=data.attributes, has_choices=False,
    )
    p = predict_choice_probabilities(model, idata, new, random_seed=2)
    assert p["situation"].values.tolist() == new.situations.tolist()
    got = p.mean(("chain", "draw")).values
    # by hand: for each posterior draw, average over 2000 population draws of beta
    alpha = np.concatenate([draws(idata, "alpha"), np.zeros((400, 1))], axis=1)
    mu, sigma = draws(idata, "mu"), draws(idata, "sigma")
    beta = mu[:, None, :] + sigma[:, None, :] * rng.normal(size=(400, 2000, 2))
    U = alpha[:, None, None, :] + np.einsum("njk,srk->srnj", X, beta)
    population = softmax(U, np.ones(3, dtype=bool)).mean(axis=(0, 1))
    new_rows = [0, 1, 3]
    # one population draw per posterior draw: Monte Carlo error of the mean over 400 samples
    se = p.std(("chain", "draw")).values / np.sqrt(p.sizes["chain"] * p.sizes["draw"])
    assert (np.abs(got[new_rows] - population[new_rows]) < 4 * se[new_rows] + 0.003).all()
    # individual 0 is known: its own coefficients, exactly
    own = mu + sigma * draws(idata, "z")[:, 0]
    expected_known = softmax(alpha + np.einsum("jk,sk->sj", X[2], own), np.ones(3, dtype=bool))
    np.testing.assert_allclose(got[2], expected_known.mean(axis=0), rtol=1e-10)
    assert np.isfinite(p.values).all()
    # swapping data with new individuals in and the fitted data back: none new
    set_choice_data(new, model=model)
    assert model.coords["new_individual"] == ("new_a", "new_b", "new_c")
    set_choice_data(data, model=model)
    assert model.coords["new_individual"] == ()


def container_state(model):
    names = ("X", "available", "chosen_index", "individual_index")
    values = {name: model[name].get_value() for name in names}
    coords = {dim: model.coords[dim] for dim in ("situation", "new_individual")}
    lengths = {dim: int(model.dim_lengths[dim].eval()) for dim in ("situation", "new_individual")}
    return values, coords, lengths


def test_prediction_leaves_the_containers_as_they_were(mxl_fit):
    data, model, idata = mxl_fit
    before = container_state(model)
    held_X = model["X"].get_value(borrow=True)
    rng = np.random.default_rng(4)
    new = ChoiceData.from_arrays(
        rng.normal(size=(5, 3, 2)), np.zeros(5, dtype=int), individual=np.array([0, 1, 1, 2, 0]),
        individuals=np.array([3, "new_a", "new_b"], dtype=object), alternatives=data.alternatives,
        attributes=data.attributes, available=np.array([[1, 1, 0]] * 5, dtype=bool), has_choices=False,
    )
    p = predict_choice_probabilities(model, idata, new, random_seed=1)
    assert p.sizes["situation"] == 5 and (p.values[..., 2] == 0).all()
    after = container_state(model)
    for name, value in before[0].items():
        assert after[0][name].dtype == value.dtype
        np.testing.assert_array_equal(after[0][name], value, strict=True)
    assert after[1:] == before[1:]
    assert model["X"].get_value(borrow=True) is held_X  # the same array, not a copy


def test_containers_share_x_and_set_data_leaves_it_alone(mxl_fit):
    data = pmx.load_travel_mode()
    model = pmx.build_model(data, "MNL-2")
    assert np.shares_memory(model["X"].get_value(borrow=True), data.X)
    new = data.with_attribute("gc", 2 * data.attribute("gc"))
    set_choice_data(new, model=model)
    np.testing.assert_array_equal(data.X, pmx.load_travel_mode().X)  # the original is untouched
    np.testing.assert_array_equal(model["X"].get_value(), new.X)


def test_prediction_rejects_other_alternatives(mxl_fit):
    _, model, _ = mxl_fit
    other = pmx.load_travel_mode()
    with pytest.raises(ChoiceDataError, match="new data has alternatives"):
        set_choice_data(other, model=model)


def test_log_likelihood_per_situation_and_individual(mxl_fit):
    data, model, idata = mxl_fit
    log_lik = idata["log_likelihood"]
    assert log_lik["chosen"].sizes["situation"] == 200
    per_individual = log_lik["chosen_by_individual"]
    assert per_individual.sizes["individual"] == 40
    first = log_lik["chosen"].isel(situation=np.flatnonzero(data.individual == 0)).sum("situation")
    np.testing.assert_allclose(per_individual.sel(individual=0), first)
    loo_situation = az.loo(idata, var_name="chosen")
    loo_individual = az.loo(idata, var_name="chosen_by_individual")
    assert np.isfinite(loo_situation.elpd) and np.isfinite(loo_individual.elpd)
    assert len(loo_individual.pareto_k) == 40
