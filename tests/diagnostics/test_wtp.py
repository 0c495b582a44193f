"""Willingness to pay: ratios of the utility's coefficients, per individual and draw."""

import numpy as np
import pytest
from conftest import sample_settings

import pymc_maxent as pmx
from pymc_maxent.diagnostics.effects import willingness_to_pay
from pymc_maxent.exceptions import ChoiceDataError

SAMPLE = sample_settings(60, 60, chains=1)


def test_mixed_logit_wtp_is_each_individuals_ratio():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=25, n_situations=3, seed=1)
    model = pmx.build_model(data, "MXL-1", random={"x0": "normal", "x1": "neg_lognormal"})
    idata = pmx.sample(model, random_seed=2, **SAMPLE)
    fit = pmx.PosteriorFit(model, idata, data)
    wtp = willingness_to_pay(fit, "x1")["draws"]
    assert wtp.dims == ("chain", "draw", "individual", "alternative", "attribute")
    assert list(wtp["individual"].values) == list(data.individuals)
    post = idata["posterior"]
    theta = (post["mu"].values[:, :, None, :]
             + post["sigma"].values[:, :, None, :] * post["z"].values)  # (chain, draw, individual, D)
    expected = -theta[..., 0] / -np.exp(theta[..., 1])  # x1 is negative lognormal
    for alt in data.alternatives:
        np.testing.assert_allclose(wtp.sel(alternative=alt, attribute="x0"), expected, rtol=1e-10)
    # individuals the model has not seen get population draws: a spread, not one value
    new = data.subset(slice(0, 3))
    new = new._replace(individuals=np.array([100]))
    fresh = willingness_to_pay(fit, "x1", data=new)["draws"].sel(attribute="x0", alternative="alt0")
    assert list(fresh["individual"].values) == [100]
    assert float(fresh.std()) > 0


def test_mnl_and_maxent_wtp():
    data = pmx.load_travel_mode()
    model = pmx.build_model(data, "MNL-2")
    idata = pmx.sample(model, random_seed=3, **SAMPLE)
    wtp = willingness_to_pay(pmx.PosteriorFit(model, idata, data), "gc", ["ttme"],
                             data=data.subset(slice(0, 5)))["draws"]
    beta = idata["posterior"]["beta"]
    ratio = -beta.sel(coefficient="ttme") / beta.sel(coefficient="gc")
    np.testing.assert_allclose(wtp.sel(attribute="ttme").transpose("chain", "draw", ...),
                               np.broadcast_to(ratio.values[:, :, None, None], wtp.shape[:-1]), rtol=1e-10)

    res = pmx.fit_maxent(data)
    out = willingness_to_pay(res, "gc", ["ttme"]).isel(individual=0).sel(alternative="car", attribute="ttme")
    b = res.summary()["estimate"]
    k, g = res.parameter_names().index("beta[ttme]"), res.parameter_names().index("beta[gc]")
    np.testing.assert_allclose(out["estimate"], -b["beta[ttme]"] / b["beta[gc]"], rtol=1e-10)
    grad = np.zeros(len(b))  # delta method by hand: ∂(−β_k/β_g)
    grad[k], grad[g] = -1 / b.iloc[g], b.iloc[k] / b.iloc[g] ** 2
    np.testing.assert_allclose(out["sd"], np.sqrt(grad @ res.cov @ grad), rtol=1e-5)


def test_wtp_needs_a_price_coefficient():
    res = pmx.fit_maxent(pmx.load_travel_mode(), [pmx.Revenue("gc")], error_support=None)
    with pytest.raises(ChoiceDataError, match="coefficient of 'ttme' is 0"):
        willingness_to_pay(res, "ttme")
    with pytest.raises(ChoiceDataError, match="unknown price attribute 'cost'"):
        willingness_to_pay(res, "cost")
    with pytest.raises(ChoiceDataError, match="by must be one of"):
        willingness_to_pay(res, "gc", by="alternative")
