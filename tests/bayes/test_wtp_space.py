"""Willingness-to-pay space: with fixed coefficients a reparameterisation of the logit (the
maximum-likelihood WTPs are the preference-space ratios, the log-likelihoods agree at mapped
parameters both ways), the WTPs are what willingness_to_pay returns, the specification's errors,
and recovery of WTP means and SDs from a panel simulated in WTP space."""

import numpy as np
import pytest
import xarray as xr

import pymc_maxent as pmx
from pymc_maxent import Coefficient, ModelSpec
from pymc_maxent.bayes.point import ml_estimate
from pymc_maxent.exceptions import ChoiceDataError, SpecificationError
from pymc_maxent.simulate import simulate_wtp_panel


@pytest.fixture(scope="module")
def two_spaces(travel_mode):
    """MNL-2 on TravelMode in both spaces, gc the price, and their maximum-likelihood fits."""
    preference = pmx.build_model(travel_mode, "MNL-2", reference="car")
    wtp = pmx.build_model(travel_mode, "MNL-2", reference="car", space="wtp", price="gc")
    return preference, wtp, ml_estimate(preference), ml_estimate(wtp)


def to_wtp(alpha, beta, price=0):
    """Preference-space (α, β) to WTP space: −α/β_p, −β_k/β_p (k ≠ price), log(−β_p)."""
    b_price = beta[price]
    return {"wtp_asc": -alpha / b_price, "wtp": -np.delete(beta, price) / b_price, "scale": np.log(-b_price)}


def test_maximum_likelihood_wtps_are_the_preference_space_ratios(two_spaces):
    _, _, pref, wtp = two_spaces
    mapped = to_wtp(pref.x["alpha"], pref.x["beta"])
    for name in ("wtp_asc", "wtp", "scale"):
        np.testing.assert_allclose(wtp.x[name], mapped[name], rtol=1e-8, atol=0)
    np.testing.assert_allclose(wtp.fun, pref.fun, rtol=1e-12)
    # the preference-space twin the WTP model records
    np.testing.assert_allclose(wtp.x["beta"], pref.x["beta"], rtol=1e-8)
    np.testing.assert_allclose(wtp.x["alpha"], pref.x["alpha"], rtol=1e-8)


def test_log_likelihoods_agree_at_mapped_parameters_both_ways(two_spaces):
    preference, wtp, _, _ = two_spaces
    ll_pref = preference.compile_logp(vars=[preference["chosen"]], sum=False)
    ll_wtp = wtp.compile_logp(vars=[wtp["chosen"]], sum=False)
    rng = np.random.default_rng(7)
    for _ in range(3):
        alpha, beta = rng.normal(0, 2, 3), np.array([-np.exp(rng.normal(-4, 0.5)), *rng.normal(0, 0.1, 2)])
        np.testing.assert_allclose(ll_wtp(to_wtp(alpha, beta))[0], ll_pref({"alpha": alpha, "beta": beta})[0],
                                   rtol=1e-12, atol=1e-12)
        w = {"wtp_asc": rng.normal(0, 200, 3), "wtp": rng.normal(0, 5, 2), "scale": rng.normal(-4, 0.5)}
        lam = np.exp(w["scale"])
        back = {"alpha": lam * w["wtp_asc"], "beta": np.array([-lam, *(lam * w["wtp"])])}
        np.testing.assert_allclose(ll_pref(back)[0], ll_wtp(w)[0], rtol=1e-12, atol=1e-12)


def test_willingness_to_pay_returns_the_wtp_parameters(travel_mode):
    """A random-WTP model's posterior (arbitrary draws): the WTPs per individual and draw are
    ``μ + σ z`` of the WTP components, whatever the scale."""
    data = travel_mode.subset(slice(0, 30))
    model = pmx.build_model(data, "MXL-1", reference="car", space="wtp", price="gc")
    rng = np.random.default_rng(3)
    labels = list(model.coords["random_coefficient"])
    assert labels == ["ttme", "hinc_air", "scale"]
    shape = (2, 5)
    post = {"alpha": rng.normal(size=(*shape, 0)), "mu": rng.normal([-5, 1, -4], [2, 0.5, 0.3], (*shape, 3)),
            "sigma": rng.uniform(0.2, 2, (*shape, 3)), "z": rng.normal(size=(*shape, 30, 3))}
    post["wtp_asc"] = rng.normal(0, 100, (*shape, 3))
    coords = {"random_coefficient": labels, "individual": list(model.coords["individual"]),
              "asc": list(model.coords["asc"])}
    dims = {"mu": ("random_coefficient",), "sigma": ("random_coefficient",),
            "z": ("individual", "random_coefficient"), "wtp_asc": ("asc",)}
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {k: (("chain", "draw", *dims[k]), v) for k, v in post.items() if k in dims}, coords=coords)})
    fit = pmx.PosteriorFit(model, tree)
    wtp = pmx.diagnostics.willingness_to_pay(fit, "gc", ["ttme", "hinc_air"])["draws"]
    theta = post["mu"][:, :, None, :2] + post["sigma"][:, :, None, :2] * post["z"][..., :2]
    for k, attribute in enumerate(["ttme", "hinc_air"]):
        np.testing.assert_allclose(wtp.sel(attribute=attribute, alternative="air").values, theta[..., k],
                                   rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"space": "wtp"}, "space='wtp' needs the price"),
    ({"space": "wtp", "price": "fare"}, "price 'fare' is not among the specification's attributes"),
    ({"space": "money", "price": "gc"}, "space must be one of"),
    ({"price": "gc"}, "price 'gc' is for space='wtp'"),
])
def test_bad_wtp_settings_raise_naming_the_value(travel_mode, kwargs, message):
    with pytest.raises(SpecificationError, match=message):
        pmx.build_model(travel_mode, "MNL-2", **kwargs)


def test_the_price_coefficient_must_be_generic_and_lognormal_or_fixed(travel_mode):
    with pytest.raises(SpecificationError, match="the price coefficient is generic"):
        ModelSpec((Coefficient("gc", alternative_specific=True),), space="wtp", price="gc")
    with pytest.raises(SpecificationError, match="'neg_lognormal' .* got 'normal'"):
        ModelSpec((Coefficient("gc", random="normal"),), space="wtp", price="gc")
    spec = ModelSpec((Coefficient("gc"), Coefficient("other")), space="wtp", price="gc")
    with pytest.raises(ChoiceDataError, match="unknown attribute 'other'"):
        pmx.build_model(travel_mode, spec)
    with pytest.raises(SpecificationError, match="MaxEnt has no twin"):
        pmx.ChoiceModel(travel_mode, "MNL-2", space="wtp", price="gc").fit(method="maxent")


@pytest.mark.slow
def test_posterior_recovers_wtp_means_and_sds():
    data, truth = simulate_wtp_panel(150, 10, seed=1)
    model = pmx.build_model(data, "MXL-1", space="wtp", price="price")
    idata = pmx.sample(model, draws=500, tune=700, chains=2, cores=1, random_seed=1, progressbar=False,
                       nuts_sampler="pymc", compute_convergence_checks=False, target_accept=0.9)
    post = idata["posterior"]
    assert list(post["mu"]["random_coefficient"].values) == ["quality", "wait", "scale"]
    for name in ("mu", "sigma"):
        mean, sd = (getattr(post[name], f)(("chain", "draw")).values for f in ("mean", "std"))
        z = np.abs(mean - truth[name]) / sd
        assert (z < 2).all(), (name, mean, sd, truth[name], z)
    mean, sd = post["wtp_asc"].mean(("chain", "draw")).values, post["wtp_asc"].std(("chain", "draw")).values
    assert (np.abs(mean - truth["wtp_asc"]) < 2 * sd).all(), (mean, sd)
