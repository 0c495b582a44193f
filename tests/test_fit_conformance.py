"""Every kind of fit through the whole :class:`~pymc_maxent.fit.Fit` protocol and every diagnostic:
a posterior (NUTS), a MAP (a one-draw posterior), a MaxEnt population fit, the MaxEnt mixed
logit at MXL-1 and MXL-4, and fits loaded from disk. The diagnostics never ask which estimator
made a fit; each call gives the same type for all of them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from conftest import sample_settings  # noqa: E402

import pymc_maxent as pmx  # noqa: E402
from pymc_maxent import diagnostics as dx  # noqa: E402
from pymc_maxent.exceptions import SpecificationError  # noqa: E402
from pymc_maxent.fit import Fit  # noqa: E402

KINDS = ["maxent", "maxent_mxl1", "maxent_mxl4", "maxent_loaded", "map",
         pytest.param("posterior", marks=pytest.mark.slow), pytest.param("posterior_loaded",
                                                                         marks=pytest.mark.slow)]
MIXED = {"maxent_mxl1", "maxent_mxl4", "maxent_loaded", "posterior", "posterior_loaded"}


@pytest.fixture(scope="module")
def panels():
    """An MXL-1 panel (price-like and quality-like attributes on realistic scales) and an MXL-4 one."""
    mxl1, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=5, n_alternatives=3, seed=4)
    mxl4, _ = pmx.simulate_choices("MXL-4", n_individuals=12, n_situations=4, n_alternatives=3,
                                   n_attributes=1,
                                   seed=5)
    return mxl1, mxl4


@pytest.fixture(scope="module")
def fits(panels, tmp_path_factory):
    mxl1, mxl4 = panels
    out = {}

    def build(kind):
        if kind in out:
            return out[kind]
        if kind == "maxent":
            out[kind] = (pmx.fit_maxent(mxl1), mxl1)
        elif kind == "maxent_mxl1":
            out[kind] = (pmx.fit_maxent(mxl1, tier="MXL-1"), mxl1)
        elif kind == "maxent_mxl4":
            out[kind] = (pmx.fit_maxent(mxl4, tier="MXL-4"), mxl4)
        elif kind == "map":
            out[kind] = (pmx.ChoiceModel(mxl1, "MNL-2").fit(method="map"), mxl1)
        elif kind == "posterior":
            cm = pmx.ChoiceModel(mxl1, "MXL-1")
            out[kind] = (cm.fit(random_seed=1, **sample_settings(100, 150, chains=2)), mxl1)
            out["posterior_cm"] = cm
        elif kind.endswith("_loaded"):
            source = kind.removesuffix("_loaded")
            source = "maxent_mxl1" if source == "maxent" else source
            fit, data = build(source)
            cm = out.get("posterior_cm") if source == "posterior" else pmx.ChoiceModel(data, "MXL-1")
            if source != "posterior":
                cm.fit(method="maxent")
            path = cm.save(tmp_path_factory.mktemp(kind) / "fit.nc")
            out[kind] = (pmx.ChoiceModel.load(path).fit_result, data)
        return out[kind]

    return build


@pytest.mark.parametrize("kind", KINDS)
def test_every_fit_offers_the_whole_protocol(fits, kind):
    fit, data = fits(kind)
    assert isinstance(fit, Fit)
    table = fit.estimates()
    assert {"estimate", "sd", "lower", "upper"} <= set(table.columns)
    assert np.isfinite(table["estimate"]).all()
    draws = fit.parameter_draws(draws=20)
    assert isinstance(draws, xr.Dataset) and all(v.dims[:2] == ("chain",
                                                                "draw") for v in draws.data_vars.values())
    p = fit.predict()
    assert p.dims == ("chain", "draw", "situation", "alternative")
    np.testing.assert_allclose(p.sum("alternative"), 1.0)
    new = data.subset(slice(0, 6))
    assert fit.predict(new).sizes["situation"] == 6
    assert isinstance(fit.to_datatree(), xr.DataTree)
    graph = fit.probability_graph()
    samples = fit.parameter_samples()
    assert len(samples.values) == len(graph.parameters)
    assert fit.evaluator() is fit.evaluator()  # compiled once
    log_lik = fit.pointwise_log_likelihood("situation")
    assert log_lik.dims == ("chain", "draw", "situation") and np.isfinite(log_lik).all()
    assert np.isfinite(fit.lppd())
    counts = fit.parameter_count()
    assert set(counts) == {"parameters", "latent"} and counts["parameters"] > 0
    assert (counts["latent"] > 0) == (kind in MIXED)
    prior = fit.prior_probabilities(draws=20)
    np.testing.assert_allclose(prior.sum(axis=1), 1.0)
    assert isinstance(fit.convergence(), dict) and isinstance(fit.sample_kwargs, dict)
    if kind in MIXED:
        beta = fit.individual_estimates()
        assert beta["estimate"].dims == ("individual", "random_coefficient")
    else:
        with pytest.raises(SpecificationError, match="no individual"):
            fit.individual_estimates()
    if kind.startswith("posterior"):
        assert isinstance(fit.individual_coefficient_draws(population_draws=2), xr.Dataset)
    elif kind.startswith("maxent"):
        assert fit.individual_coefficient_draws() is None  # a MaxEnt fit has no draws of them


@pytest.mark.parametrize("kind", KINDS)
def test_every_diagnostic_takes_every_fit(fits, kind):
    fit, data = fits(kind)
    attribute = str(data.attributes[0])
    calls = {
        "elasticities": lambda: dx.elasticities(fit, attribute),
        "shares": lambda: dx.choice_shares(fit),
        "marginal_effects": lambda: dx.marginal_effects(fit, attributes=[attribute]),
        "revenue_curve": lambda: dx.revenue_curve(fit, attribute, data.alternatives[0], [0.9, 1.0, 1.1]),
    }
    if data.n_attributes > 1:
        calls["wtp"] = lambda: dx.willingness_to_pay(fit, attribute, [str(data.attributes[1])])
    for name, call in calls.items():
        out = call()
        assert isinstance(out, xr.Dataset) and {"estimate", "sd"} <= set(out.data_vars), name
        assert np.isfinite(out["estimate"]).all(), name
    assert np.isfinite(dx.choice_information_gain(fit))
    names = [v for v in ("alpha", "beta", "mu", "sigma") if v in fit.parameter_draws(draws=5)]
    if kind != "map":  # a MAP has no posterior sd to compare (its one draw: NaN sd; not yet a Laplace sd)
        table = dx.compare_estimates(fit, fit, var_names=names)
        np.testing.assert_array_equal(table["difference_sd"], 0.0)
    assert isinstance(dx.compare_information({"a": fit}), pd.DataFrame)
    if kind in MIXED:
        info = dx.individual_information_gain(fit)
        assert info["kl_nats"].dims == ("individual",) and np.isfinite(info["kl_nats"]).all()


@pytest.mark.parametrize("kind", ["maxent", "maxent_mxl1", "map"])
def test_model_selection_refits_every_refittable_fit_through_the_protocol(fits, kind):
    """K-fold refits through ``refit_without`` and ``predict``: a MaxEnt refit equals a fit of the
    training situations (the same held-out score); a MAP has no posterior to refit."""
    fit, data = fits(kind)
    if kind == "map":
        with pytest.raises(SpecificationError, match="no posterior to refit"):
            fit.refit_without(np.arange(data.n_situations) < 10)
        return
    table = dx.model_selection({kind: fit}, data, folds=3, cv="kfold")
    assert table.loc[kind, "criterion"] == "kfold" and np.isfinite(table.loc[kind, "elpd"])
    held_out = np.arange(data.n_situations) < 10
    refit = fit.refit_without(held_out)
    direct = fit.refit(data.subset(~held_out))
    # equal to rounding: one of the two may run the interpreted dual, the other the compiled one
    np.testing.assert_allclose(refit.beta, direct.beta, rtol=1e-10, atol=1e-12)
