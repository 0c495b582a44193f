"""Marginal effects and elasticities: closed form, finite differences, aggregation, delta method."""

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from conftest import sample_settings

import pymc_maxent as pmx
from pymc_maxent.data.containers import set_choice_data
from pymc_maxent.diagnostics.effects import elasticities, marginal_effects, mean_over_situations
from pymc_maxent.evaluation import CHANGED_ALTERNATIVE, ChoiceEvaluator
from pymc_maxent.exceptions import ChoiceDataError, MaxEntError, SpecificationError


def flat(da):
    """(chain, draw, ...) as (sample, ...)."""
    return da.stack(sample=("chain", "draw")).transpose("sample", ...).values


def central_difference(predict, data, attribute, alternative, h):
    """``∂p_ij/∂x_im`` for every situation at once (situations are independent)."""
    x = data.attribute(attribute)
    up, down = x.copy(), x.copy()
    up[:, alternative] += h
    down[:, alternative] -= h
    return (predict(data.with_attribute(attribute, up))
            - predict(data.with_attribute(attribute, down))) / (2 * h)


@pytest.fixture(scope="module")
def travel():
    data = pmx.load_travel_mode(("gc", "ttme", "hinc"))  # income: the same for every mode
    model = pmx.build_model(data, "MNL-3")  # alternative-specific coefficients
    return data, pmx.PosteriorFit(model, pmx.sample(model, random_seed=5, **sample_settings(100, 200)), data)


@pytest.fixture(scope="module")
def mixed():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=4, unavailable=0.25, seed=7)
    model = pmx.build_model(data, "MXL-1", correlated=True, store_probabilities=True)
    return data, pmx.PosteriorFit(model, pmx.sample(model, random_seed=7, **sample_settings(30, 60)), data)


def test_mnl_closed_form_and_aggregation(travel):
    data, fit = travel
    result = elasticities(fit, "gc", kind="situation")
    assert isinstance(result, xr.Dataset) and {"estimate", "sd", "draws"} <= set(result.data_vars)
    E = result["draws"]
    assert E.dims == ("chain", "draw", "situation", "alternative", CHANGED_ALTERNATIVE)
    p = flat(fit.predict(data))
    labels = [f"gc[{a}]" for a in data.alternatives]
    beta = flat(fit.posterior["beta"].sel(coefficient=labels))[:, None, None, :]
    x = data.attribute("gc")[None, :, None, :]
    # MNL: ∂p_ij/∂x_im = β_m p_ij (δ_jm − p_im), so E_ijm = β_m x_im (δ_jm − p_im)
    expected = beta * x * (np.eye(4)[None, None] - p[:, :, None, :])
    np.testing.assert_allclose(flat(E), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result["estimate"], expected.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result["sd"], expected.std(axis=0), rtol=1e-9, atol=1e-12)
    # the aggregate matrix is the share-weighted mean of the per-situation elasticities
    agg = flat(elasticities(fit, "gc")["draws"])
    weighted = (expected * p[..., None]).sum(axis=1) / p.sum(axis=1)[..., None]
    np.testing.assert_allclose(agg, weighted, rtol=1e-9)
    mean = elasticities(fit, "gc", kind="mean")["draws"]
    np.testing.assert_allclose(flat(mean), expected.mean(axis=1), rtol=1e-9)


def test_income_elasticity_against_finite_differences(travel):
    data, fit = travel
    E = elasticities(fit, "hinc", kind="situation")["draws"]
    assert E.dims == ("chain", "draw", "situation", "alternative")
    assert E.attrs["individual_attribute"] == 1
    x = data.attribute("hinc")
    h = 1e-3

    def predict(new):
        return flat(fit.predict(new))

    # income moves for every alternative at once
    fd = (predict(data.with_attribute("hinc", x + h)) - predict(data.with_attribute("hinc", x - h))) / (2 * h)
    p = predict(data)
    np.testing.assert_allclose(flat(E), fd * x[:, :1] / p, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_mixed_effects_against_finite_differences(mixed):
    data, fit = mixed
    dp = marginal_effects(fit)["draws"]
    assert dp.dims == ("chain", "draw", "situation", "alternative", CHANGED_ALTERNATIVE, "attribute")
    values = flat(dp)
    assert np.isfinite(values).all()
    # unavailable alternatives: no probability and no effect
    unavailable = ~data.available
    assert (values[:, unavailable] == 0).all()
    assert (np.moveaxis(values, 3, 2)[:, unavailable] == 0).all()

    # the evaluator's p is the model's (the reference path), and ∂p/∂x its finite differences
    ev = ChoiceEvaluator(fit, data)
    with fit.model:  # the reference path: PyMC's own evaluation of the model's p
        reference = pm.sample_posterior_predictive(fit.posterior.drop_vars("p", errors="ignore"),
                                                   var_names=["p"], progressbar=False)
    reference = flat(reference["posterior_predictive"]["p"])
    np.testing.assert_allclose(ev.evaluate(), reference, rtol=1e-12, atol=1e-15)
    for m in range(data.n_alternatives):
        fd = central_difference(lambda new: ev.with_data(new).evaluate(), data, "x0", m, 1e-5)
        got = values[:, :, :, m, 0]
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    # other data evaluated, and the containers put back as they were
    sub = data.subset(slice(0, 7))
    model = fit.model
    set_choice_data(sub, model)
    marginal_effects(fit, data)
    assert list(model.coords["situation"]) == sub.situations.tolist()
    np.testing.assert_array_equal(model["X"].get_value(), sub.X)
    set_choice_data(data, model)


@pytest.mark.slow
def test_new_individuals_use_fixed_population_draws(mixed):
    data, fit = mixed
    model = fit.model
    rng = np.random.default_rng(1)
    new = pmx.ChoiceData.from_arrays(
        rng.normal(size=(5, 3, 2)), np.zeros(5, dtype=int), individual=np.array([0, 0, 1, 2, 2]),
        individuals=["stranger", "id0", "other"], alternatives=data.alternatives, attributes=data.attributes,
        has_choices=False,
    )
    ev = ChoiceEvaluator(fit, new, random_seed=3)
    _, dp = ev.evaluate(derivatives=True)
    h = 1e-5
    for m in range(3):
        up, down = np.array(ev.X), np.array(ev.X)
        up[:, m, 1] += h
        down[:, m, 1] -= h
        fd = (ev.evaluate(up) - ev.evaluate(down)) / (2 * h)  # the same population draws each time
        np.testing.assert_allclose(dp[:, :, :, m, 1], fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    assert list(model.coords["situation"]) == data.situations.tolist()


def test_maxent_effects_and_delta_method():
    data = pmx.load_travel_mode()
    res = pmx.fit_maxent(data)
    dp = marginal_effects(res, attributes=["gc"])
    assert sorted(dp.data_vars) == ["estimate", "sd"]
    h = 1e-3
    for m in range(4):
        fd = central_difference(lambda new: res.predict(new).values[0, 0], data, "gc", m, h)
        got = dp["estimate"].sel(attribute="gc").values[:, :, m]
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    res.predict(data)
    E = elasticities(res, "gc")
    draws = elasticities(res, "gc", draws=2000, random_seed=2)  # N(λ̂, Cov) pseudo-posterior
    spread = draws["sd"]
    np.testing.assert_allclose(E["sd"], spread, rtol=0.08)
    np.testing.assert_allclose(E["estimate"], draws["estimate"], atol=0.1 * float(spread.max()))
    avail = res.evaluator().available_array()
    per = elasticities(res, "gc", kind="situation")["estimate"]
    np.testing.assert_allclose(elasticities(res, "gc", kind="mean")["estimate"],
                               mean_over_situations(per, avail), rtol=1e-12)


def test_bad_input():
    res = pmx.fit_maxent(pmx.load_travel_mode())
    with pytest.raises(ChoiceDataError, match="price"):
        elasticities(res, "price")
    with pytest.raises(ChoiceDataError, match="kind"):
        elasticities(res, "gc", kind="total")
    with pytest.raises(SpecificationError, match="PosteriorFit"):
        elasticities(object(), "gc")
    support = pmx.fit_maxent(pmx.load_travel_mode(), probability_support=np.linspace(0, 1, 5))
    with pytest.raises(MaxEntError, match="direct form"):
        elasticities(support, "gc")


@pytest.mark.slow
@pytest.mark.parametrize("tier", ["MNL-1", "MXL-2", "MXL-3", "MXL-4"])
def test_every_tier_at_prior_draws(tier):
    """Prior draws stand in for a posterior: the evaluator's p is the model's deterministic p
    at each draw (situation-level deviations matched by label) and ∂p/∂x its finite
    differences."""
    data, _ = pmx.simulate_choices(tier, n_individuals=6, n_situations=3, n_attributes=1, seed=4)
    model = pmx.build_model(data, tier, random="neg_lognormal", store_probabilities=True)
    with model:
        prior = pm.sample_prior_predictive(draws=8, random_seed=4)["prior"]
    ev = ChoiceEvaluator(pmx.PosteriorFit(model, xr.DataTree.from_dict({"posterior": prior}), data))
    p, dp = ev.evaluate(derivatives=True)
    np.testing.assert_allclose(p, flat(prior["p"]), rtol=1e-10, atol=1e-14)
    h = 1e-6
    for m in range(data.n_alternatives):
        up, down = np.array(ev.X), np.array(ev.X)
        up[:, m, 0] += h
        down[:, m, 0] -= h
        fd = (ev.evaluate(up) - ev.evaluate(down)) / (2 * h)
        np.testing.assert_allclose(dp[:, :, :, m, 0], fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    order = np.arange(data.n_situations)[::-1][:7]  # fitted situations, other order
    np.testing.assert_allclose(ev.with_data(data.subset(order)).evaluate(), p[:, order], rtol=1e-12)
