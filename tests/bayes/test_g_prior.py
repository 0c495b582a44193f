"""The Zellner g-prior on the MNL builders is GME's noise term to second order."""

import numpy as np
import pytest
from pymc_extras.prior import Prior

import pymc_maxent as pmx
from pymc_maxent.bayes.point import map_estimate
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
    point = estimates(model, map_estimate(model).x)
    flat = pmx.build_model(travel_mode, "MNL-2", store_probabilities=False,
                           priors={"alpha": Prior("Flat"), "beta": Prior("Flat")})
    mle = estimates(flat, map_estimate(flat).x)
    gap = np.array([(point[k] - gme.loc[k, "estimate"]) / gme.loc[k, "se"] for k in gme.index])
    mle_gap = np.array([(mle[k] - gme.loc[k, "estimate"]) / gme.loc[k, "se"] for k in gme.index])
    # measured: at most 0.0013 standard errors apart, on all six parameters...
    assert np.abs(gap).max() < 0.005, gap
    # ...while the MLE is 0.05 to 0.3 standard errors away: the g-prior does the shrinking
    assert np.abs(mle_gap).max() > 0.2 and np.all(np.abs(gap) < np.abs(mle_gap) / 20), (gap, mle_gap)


def test_g_prior_map_is_unchanged_by_a_shift_of_an_attribute(travel_mode):
    """The penalty is on utilities centred within situations: gc + 100 everywhere moves nothing."""
    def g_map(data):
        model = pmx.build_model(data, "MNL-2", g_prior="gme", store_probabilities=False)
        return map_estimate(model, on_unidentified="raise").parameters

    base = g_map(travel_mode)
    shifted = g_map(travel_mode.with_attribute("gc", travel_mode.attribute("gc") + 100.0))
    assert np.abs((shifted - base) / base).max() < 1e-8


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

    def penalty(theta):  # on the utility centred within situations (all alternatives available)
        U = X @ theta[3:] + np.array([theta[j] if j is not None else 0.0 for j in asc])
        assert avail.all()
        return -((U - U.mean(axis=1, keepdims=True)) ** 2).sum() / (2 * g)

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
