"""The Zellner g-prior on the MNL builders is GME's noise term to second order."""

import numpy as np
import pymc as pm
import pytest
from pymc_extras.prior import Prior

import pymc_maxent as pmx
from pymc_maxent.exceptions import SpecificationError


@pytest.fixture(scope="module")
def travel_mode():
    return pmx.load_travel_mode()


def estimates(model, point):
    return dict(zip([f"alpha[{a}]" for a in model.coords["asc"]]
                    + [f"beta[{b}]" for b in model.coords["coefficient"]],
                    np.r_[point["alpha"], point["beta"]], strict=True))


def test_map_under_gme_g_prior_matches_gme(travel_mode):
    gme = pmx.fit_maxent(travel_mode).summary()
    model = pmx.build_model(travel_mode, "MNL-2", g_prior="gme", store_probabilities=False)
    point = estimates(model, pm.find_MAP(model=model, progressbar=False))
    flat = pmx.build_model(travel_mode, "MNL-2", store_probabilities=False,
                           priors={"alpha": Prior("Flat"), "beta": Prior("Flat")})
    mle = estimates(flat, pm.find_MAP(model=flat, progressbar=False))
    gap = np.array([(point[k] - gme.loc[k, "estimate"]) / gme.loc[k, "se"] for k in gme.index])
    # measured: at most 0.006 standard errors apart, on all six parameters
    assert np.abs(gap).max() < 0.02, gap
    # ...while the MLE is two standard errors away on gc: the g-prior does the shrinking
    assert abs(mle["beta[gc]"] - gme.loc["beta[gc]", "estimate"]) > 1.5 * gme.loc["beta[gc]", "se"]


def test_g_prior_is_the_quadratic_penalty_on_utilities(travel_mode):
    g = 500.0
    model = pmx.build_model(travel_mode, "MNL-2", g_prior=g)
    assert model.named_vars_to_dims["theta"] == ("g_parameter",)
    assert list(model.coords["g_parameter"]) == [
        "alpha[air]", "alpha[train]", "alpha[bus]", "beta[gc]", "beta[ttme]", "beta[hinc_air]"]
    theta_logp = model.compile_logp(vars=[model["theta"]])

    def prior_logp(theta):
        return theta_logp({"theta": theta})
    rng = np.random.default_rng(3)
    X, avail = travel_mode.X, travel_mode.available
    asc = np.array([0, 1, 2, None], dtype=object)  # air, train, bus, car (reference)

    def penalty(theta):
        U = X @ theta[3:] + np.array([theta[j] if j is not None else 0.0 for j in asc])
        return -(U[avail] ** 2).sum() / (2 * g)

    a, b = rng.normal(size=(2, 6)) * [1, 1, 1, 0.01, 0.05, 0.01]
    np.testing.assert_allclose(prior_logp(a) - prior_logp(b), penalty(a) - penalty(b), rtol=1e-10)


def test_gme_g_is_one_and_a_half_n(travel_mode):
    model = pmx.build_model(travel_mode, "MNL-1", g_prior="gme")
    tau = model["theta"].owner.inputs[-1].eval()  # MvNormal(mu, tau): tau = F'F / g
    ref = pmx.build_model(travel_mode, "MNL-1", g_prior=1.5 * travel_mode.n_situations)
    np.testing.assert_allclose(tau, ref["theta"].owner.inputs[-1].eval(), rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"spec": "MXL-1", "g_prior": "gme"}, "without random components"),
    ({"spec": "MNL-2", "g_prior": "zellner"}, "positive number"),
    ({"spec": "MNL-2", "g_prior": -1.0}, "positive number"),
    ({"spec": "MNL-2", "g_prior": 10.0, "priors": {"beta": Prior("Flat")}}, "drop the priors for"),
])
def test_bad_g_prior(travel_mode, kwargs, match):
    with pytest.raises(SpecificationError, match=match):
        pmx.build_model(travel_mode, **kwargs)
