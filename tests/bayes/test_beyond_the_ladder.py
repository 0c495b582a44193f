"""The nested logit and WTP space through the one Fit surface: the protocol, the diagnostics,
posterior-predictive choices, save/load bit-exact, model selection beside the ladder, and a
small simulation-based calibration each."""

import numpy as np
import pytest
import xarray as xr
from conftest import sample_settings
from test_model_helpers import assert_round_trip

import pymc_maxent as pmx
from pymc_maxent import diagnostics as dx
from pymc_maxent.calibration import calibration_design, simulation_based_calibration
from pymc_maxent.fit import Fit
from pymc_maxent.simulate import simulate_wtp_panel
from pymc_maxent.specification import tier_spec

NESTS = {"public": ["train", "bus"]}


def travel_nl(data):
    return pmx.ChoiceModel(data, "NL", reference="car", nests=NESTS)


def travel_wtp(data):
    return pmx.ChoiceModel(data, "MNL-2", reference="car", space="wtp", price="gc")


@pytest.fixture(scope="module", params=["NL", "WTP"])
def fitted(request, travel_mode):
    cm = (travel_nl if request.param == "NL" else travel_wtp)(travel_mode)
    cm.fit(random_seed=2, **sample_settings(100, 200))
    return request.param, cm


def test_fits_implement_the_protocol(fitted, travel_mode):
    kind, cm = fitted
    fit = cm.fit_result
    assert isinstance(fit, Fit) and fit.estimator == "bayes"
    table = fit.estimates()
    expected = {"lambda[public]", "alpha[air]", "beta[gc]"} if kind == "NL" else \
        {"scale", "wtp[ttme]", "wtp_asc[air]", "alpha[air]", "beta[gc]"}
    assert expected <= set(table.index)
    assert (table["lower"] < table["estimate"]).all() and (table["estimate"] < table["upper"]).all()
    if kind == "NL":
        assert ((0 < table.loc["lambda[public]", "lower"]) & (table.loc["lambda[public]", "upper"] <= 1))
    else:  # the recorded twin is the mapping of the WTP draws
        post = fit.posterior
        scale = np.exp(post["scale"])
        np.testing.assert_allclose(post["beta"].sel(coefficient="gc"), -scale, rtol=1e-12)
        np.testing.assert_allclose(post["beta"].sel(coefficient="ttme"),
                                   scale * post["wtp"].sel(wtp_coefficient="ttme"), rtol=1e-12)
    draws = fit.parameter_draws()
    assert isinstance(draws, xr.Dataset) and draws["alpha"].dims[:2] == ("chain", "draw")
    p = fit.predict(travel_mode.subset(slice(0, 40)))
    assert p.dims == ("chain", "draw", "situation", "alternative")
    np.testing.assert_allclose(p.sum("alternative"), 1.0)
    assert isinstance(fit.to_datatree(), xr.DataTree)


@pytest.mark.slow
def test_diagnostics_take_them(fitted, travel_mode):
    kind, cm = fitted
    fit = cm.fit_result
    E = dx.elasticities(fit, "gc")
    assert E["estimate"].dims == ("alternative", "changed_alternative") and np.isfinite(E["estimate"]).all()
    if kind == "NL":  # within the public nest bus reacts more to train's cost than car does
        assert float(E["estimate"].sel(alternative="bus", changed_alternative="train")) > \
            float(E["estimate"].sel(alternative="car", changed_alternative="train"))
    wtp = dx.willingness_to_pay(fit, "gc", ["ttme"])
    if kind == "WTP":  # the WTPs are the parameters: the ratio is the draw itself
        np.testing.assert_allclose(wtp["draws"].isel(individual=0).sel(alternative="air", attribute="ttme"),
                                   fit.posterior["wtp"].sel(wtp_coefficient="ttme"), rtol=1e-12)
    curve = dx.revenue_curve(fit, "gc", "air", [0.9, 1.0, 1.1])
    assert np.isfinite(curve["estimate"]).all()
    optimum = dx.optimal_prices(fit, "gc", "air", bounds=(0.5, 2.0))
    assert optimum.success and np.isfinite(optimum.revenue)


def test_posterior_predictive_and_save_load(fitted, travel_mode, tmp_path):
    kind, cm = fitted
    sim = cm.sample_posterior_predictive(random_seed=5)
    assert sim["chosen"].dims == ("chain", "draw", "situation")
    onehot = np.eye(4)[sim["chosen_index"].values]
    mean_p = cm.fit_result.predict().mean(("chain", "draw")).values
    se = np.sqrt(mean_p * (1 - mean_p) / (onehot.shape[0] * onehot.shape[1])) + 1e-12
    assert np.abs((onehot.mean(axis=(0, 1)) - mean_p) / se).max() < 5
    prior = cm.sample_prior_predictive(20, random_seed=1)
    assert prior["prior_predictive"]["chosen"].shape == (1, 20, travel_mode.n_situations)
    loaded = assert_round_trip(cm, tmp_path, travel_mode.subset(slice(3, 23)))
    assert loaded.spec.nests == cm.spec.nests and loaded.spec.space == cm.spec.space


def test_model_selection_ranks_them_beside_the_ladder(fitted, travel_mode):
    kind, cm = fitted
    if kind != "NL":
        pytest.skip("one table is enough")
    mnl = pmx.ChoiceModel(travel_mode, "MNL-2", reference="car")
    mnl = mnl.fit(random_seed=2, **sample_settings(100, 200))
    table = dx.model_selection({"MNL-2": mnl, "NL": cm.fit_result}, travel_mode, cv="loo")
    assert set(table.index) == {"MNL-2", "NL"}
    assert int(table.loc["NL", "parameters"]) == int(table.loc["MNL-2", "parameters"]) + 1
    assert np.isfinite(table["elpd"]).all()


@pytest.mark.slow
def test_random_coefficient_nested_logit_and_random_wtp_fit(small_panel, tmp_path):
    data, _ = small_panel
    nested = pmx.ChoiceModel(data, "MXL-1", nests={"first": ["alt0", "alt1"]})
    nested.fit(random_seed=1, **sample_settings(60, 120))
    assert {"lambda[first]", "mu[x0]", "sigma[x1]"} <= set(nested.fit_result.estimates().index)
    assert_round_trip(nested, tmp_path, data.subset(slice(0, 12)))
    panel, _ = simulate_wtp_panel(40, 5, seed=2)
    wtp = pmx.ChoiceModel(panel, "MXL-1", space="wtp", price="price")
    wtp.fit(random_seed=1, **sample_settings(60, 120))
    ind = wtp.fit_result.individual_estimates()
    assert list(ind["random_coefficient"].values) == ["quality", "wait", "scale"]
    assert (ind["estimate"].sel(random_coefficient="scale") > 0).all()  # exp(s): the price's magnitude
    assert_round_trip(wtp, tmp_path, panel.subset(slice(0, 10)))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["NL", "WTP"])
def test_a_small_simulation_based_calibration_runs(kind):
    design = calibration_design(40, 1, 3, attributes=("price", "time"), seed=3)
    extra = {"nests": {"pair": ["alt0", "alt1"]}} if kind == "NL" else {"space": "wtp", "price": "price"}
    spec = tier_spec("NL" if kind == "NL" else "MNL-2", ["price", "time"], **extra)
    tree = simulation_based_calibration(spec, design, 10, draws=40, tune=60, chains=1, nuts_sampler="pymc",
                                        random_seed=1)
    name = "lambda" if kind == "NL" else "wtp"
    pit = tree["pit"][name].values
    assert pit.shape[0] == 10 and ((0 < pit) & (pit < 1)).all()
    assert tree.attrs["n_failed"] == 0
