"""Zero-noise GJP MaxEnt is the conditional-logit maximum-likelihood estimate."""

import numpy as np
import pymc as pm
import pytest
from pymc_extras.prior import Prior

from pymc_maxent.bayes.build import build_model
from pymc_maxent.maxent import AlternativeShares, AttributeSums, Revenue, fit_maxent
from pymc_maxent.simulate import simulate_choices

FLAT = {"alpha": Prior("Flat"), "beta": Prior("Flat")}


@pytest.fixture(scope="module")
def sim():
    data, truth = simulate_choices("MNL-2", n_individuals=400, n_alternatives=3, n_attributes=2,
                                   unavailable=0.2, seed=11)
    return data, truth


def _map(model):
    return pm.find_MAP(model=model, progressbar=False, maxeval=20000, tol=1e-14)


def test_zero_noise_moments_equal_mnl_mle(sim):
    data, _ = sim
    model = build_model(data, "MNL-2", priors=FLAT)
    mle = _map(model)
    res = fit_maxent(data, [AttributeSums(), AlternativeShares()], error_support=None, model=model)
    assert res.converged
    post = res.to_datatree()["maxent"]
    np.testing.assert_allclose(post["beta"].sel(coefficient=list(model.coords["coefficient"])),
                               mle["beta"], atol=1e-5)
    np.testing.assert_allclose(post["alpha"].sel(asc=list(model.coords["asc"])), mle["alpha"], atol=1e-5)
    # unavailable alternatives get no mass, and nothing is NaN
    assert np.all(res.p[~data.available] == 0) and np.isfinite(res.p).all()
    # the zero-noise MaxEnt log-likelihood is the MLE's
    ll = model.compile_logp(sum=True)({"alpha": mle["alpha"], "beta": mle["beta"]})
    assert res.loglik == pytest.approx(float(ll), abs=1e-6)


def test_zero_noise_revenue_equals_price_only_mle(sim):
    data, _ = sim
    model = build_model(data, "MNL-1", attributes=["x0"], priors=FLAT)
    mle = _map(model)
    res = fit_maxent(data, [Revenue("x0")], error_support=None)
    assert res.parameter_names() == ["beta[x0]"]
    assert res.beta[0] == pytest.approx(float(mle["beta"][0]), abs=1e-5)


def test_default_noise_shrinks_toward_zero(sim):
    """The error support acts like a ridge on the index: coefficients shrink, slightly."""
    data, _ = sim
    plain = fit_maxent(data, [AttributeSums(), AlternativeShares()], error_support=None)
    gme = fit_maxent(data, [AttributeSums(), AlternativeShares()])
    wide = fit_maxent(data, [AttributeSums(), AlternativeShares()], error_support=[-1.0, 0.0, 1.0])
    assert np.all(np.abs(gme.beta) < np.abs(plain.beta))
    assert np.all(np.abs(wide.beta) < np.abs(gme.beta))
    assert np.abs(gme.beta - plain.beta).max() < 0.1 * np.abs(plain.beta).max()
