"""ChoiceModel and the one Fit surface: the same diagnostics for both estimators, save/load,
posterior-predictive choices, containers left as they were."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from conftest import sample_settings  # noqa: E402
from test_model_helpers import assert_round_trip  # noqa: E402

import pymc_maxent as pmx  # noqa: E402
from pymc_maxent import diagnostics as dx  # noqa: E402
from pymc_maxent import plots  # noqa: E402
from pymc_maxent.exceptions import MaxEntError, SpecificationError  # noqa: E402
from pymc_maxent.fit import Fit  # noqa: E402
from pymc_maxent.model import sample_choices  # noqa: E402

CONTAINERS = ("X", "available", "chosen_index", "individual_index")


def held(model):
    return {name: np.array(model[name].get_value()) for name in CONTAINERS} | {
        "situation": list(model.coords["situation"])}


def assert_same_containers(before, after):
    assert before.keys() == after.keys()
    for name in CONTAINERS:
        np.testing.assert_array_equal(before[name], after[name])
        assert before[name].dtype == after[name].dtype
    assert before["situation"] == after["situation"]


@pytest.fixture(scope="module")
def travel_fits(travel_mode):
    """MNL-2 on TravelMode by NUTS and by MaxEnt, over the same containers."""
    cm = pmx.ChoiceModel(travel_mode, "MNL-2")
    posterior = cm.fit(random_seed=3, **sample_settings(150, 300))
    maxent = pmx.ChoiceModel(travel_mode, "MNL-2").fit(method="maxent")
    return cm, posterior, maxent


def test_both_fits_implement_the_protocol(travel_fits):
    _, posterior, maxent = travel_fits
    for fit in (posterior, maxent):
        assert isinstance(fit, Fit)
        table = fit.estimates()
        assert {"estimate", "sd", "lower", "upper"} <= set(table.columns)
        assert {"alpha[air]", "beta[gc]"} <= set(table.index)
        assert (table["lower"] < table["estimate"]).all() and (table["estimate"] < table["upper"]).all()
        draws = fit.parameter_draws()
        assert isinstance(draws, xr.Dataset) and draws["beta"].dims[:2] == ("chain", "draw")
        p = fit.predict()
        assert p.dims == ("chain", "draw", "situation", "alternative")
        np.testing.assert_allclose(p.sum("alternative"), 1.0)
        assert isinstance(fit.to_datatree(), xr.DataTree)
    assert posterior.estimator == "bayes" and maxent.estimator == "maxent"


@pytest.mark.slow
def test_every_diagnostic_takes_both_fits_and_returns_one_type(travel_fits, travel_mode):
    _, posterior, maxent = travel_fits
    train, test = dx.split_by_individual(travel_mode, 0.25, seed=1)
    calls = {
        "elasticities": lambda f: dx.elasticities(f, "gc"),
        "wtp": lambda f: dx.willingness_to_pay(f, "gc", ["ttme"]),
        "shares": lambda f: dx.choice_shares(f),
        "revenue_curve": lambda f: dx.revenue_curve(f, "gc", "air", [0.9, 1.0, 1.1]),
        "marginal_effects": lambda f: dx.marginal_effects(f, attributes=["gc"]),
        "choice_information": lambda f: dx.choice_information_gain(f),
        "optimal_prices": lambda f: dx.optimal_prices(f, "gc", "air", bounds=(0.5, 2.0)),
    }
    for name, call in calls.items():
        a, b = call(posterior), call(maxent)
        assert type(a) is type(b), name
        if isinstance(a, xr.Dataset):
            assert {"estimate", "sd"} <= set(a.data_vars) and {"estimate", "sd"} <= set(b.data_vars), name
            assert a["estimate"].dims == b["estimate"].dims, name
            assert np.isfinite(a["estimate"]).all() and np.isfinite(b["sd"]).all(), name
    table = dx.compare_estimates(posterior, maxent)
    assert set(table.index) == {"alpha[air]", "alpha[train]", "alpha[bus]", "beta[gc]", "beta[ttme]",
                                "beta[hinc_air]"}
    np.testing.assert_allclose(table["maxent_estimate"], maxent.estimates().loc[table.index, "estimate"])
    np.testing.assert_allclose(table["bayes_estimate"], posterior.estimates().loc[table.index, "estimate"])
    assert len(plots.plot_posterior_vs_maxent(posterior, maxent).axes) == 2
    info = dx.compare_information({"MNL-2": posterior, "MaxEnt": maxent})
    assert set(info["estimator"]) == {"bayes", "maxent"}


def test_prediction_leaves_the_containers_as_they_were(travel_fits, travel_mode):
    cm, posterior, maxent = travel_fits
    before = held(cm.model)
    sub = travel_mode.subset(slice(10, 40))
    p_post = posterior.predict(sub)
    assert p_post.sizes["situation"] == 30
    assert_same_containers(before, held(cm.model))
    maxent.predict(sub)
    assert_same_containers(before, held(cm.model))
    dx.elasticities(maxent, "gc", sub)
    dx.model_selection({"MNL-2": posterior, "MaxEnt": maxent}, travel_mode, sub, folds=3)
    assert_same_containers(before, held(cm.model))


def test_posterior_predictive_choices(travel_fits, travel_mode):
    cm, posterior, _ = travel_fits
    sim = cm.sample_posterior_predictive(random_seed=5)
    assert sim["chosen"].dims == ("chain", "draw", "situation")
    assert set(np.unique(sim["chosen"].values)) <= set(travel_mode.alternatives.tolist())
    onehot = np.eye(4)[sim["chosen_index"].values]  # (chain, draw, situation, alternative)
    mean_p = posterior.predict().mean(("chain", "draw")).values
    # the choices' mean over draws is the posterior mean of p, within Monte-Carlo error
    n = onehot.shape[0] * onehot.shape[1]
    se = np.sqrt(mean_p * (1 - mean_p) / n) + 1e-12
    z = (onehot.mean(axis=(0, 1)) - mean_p) / se
    assert np.abs(z).max() < 5 and np.abs(z).mean() < 1.2
    # the observed market shares lie inside the 94% predictive interval of the simulated shares
    shares = onehot.mean(axis=2).reshape(-1, 4)
    lower, upper = np.quantile(shares, [0.03, 0.97], axis=0)
    observed = np.bincount(travel_mode.chosen, minlength=4) / travel_mode.n_situations
    assert ((lower <= observed) & (observed <= upper)).all()


def test_sample_choices_follows_p():
    rng = np.random.default_rng(0)
    p = np.array([[0.2, 0.0, 0.8], [0.5, 0.5, 0.0]])
    draws = sample_choices(np.broadcast_to(p, (20000, 2, 3)), rng)
    for i in range(2):
        freq = np.bincount(draws[:, i], minlength=3) / 20000
        np.testing.assert_allclose(freq, p[i], atol=0.015)
        assert freq[p[i] == 0].sum() == 0


def test_save_load_mnl_and_maxent(travel_fits, travel_mode, tmp_path):
    cm, _, _ = travel_fits
    assert_round_trip(cm, tmp_path, travel_mode.subset(slice(0, 20)))
    me = pmx.ChoiceModel(travel_mode, "MNL-2", reference="car")
    me.fit(method="maxent")
    loaded = assert_round_trip(me, tmp_path, travel_mode.subset(slice(5, 25)))
    assert loaded.fit_result.converged


@pytest.mark.slow
def test_save_load_correlated_mixed_logit_with_a_lognormal(small_panel, tmp_path):
    data, _ = small_panel
    cm = pmx.ChoiceModel(data, "MXL-1", correlated=True, random={"x0": "normal", "x1": "neg_lognormal"})
    cm.fit(random_seed=4, **sample_settings(40, 80))
    new = data.subset(slice(0, 12))
    strangers = pmx.ChoiceData.from_arrays(np.asarray(new.X), np.asarray(new.chosen),
                                           available=np.asarray(new.available),
                                           individual=np.arange(12) % 3, individuals=["a", "b", "c"],
                                           alternatives=data.alternatives, attributes=data.attributes)
    loaded = assert_round_trip(cm, tmp_path, strangers)
    assert loaded.spec.correlated and loaded.spec.coefficients[1].random == "neg_lognormal"


def test_load_refuses_other_versions_and_missing_groups(travel_fits, tmp_path):
    cm, _, _ = travel_fits
    path = cm.save(tmp_path / "model.nc")
    tree = xr.open_datatree(path).load()
    tree.attrs["pymc_maxent_version"] = "0.0.1"
    tree.to_netcdf(tmp_path / "old.nc")
    with pytest.raises(SpecificationError, match="0.0.1"):
        pmx.ChoiceModel.load(tmp_path / "old.nc")
    tree = xr.open_datatree(path).load()
    del tree["constant_data"]
    tree.to_netcdf(tmp_path / "partial.nc")
    with pytest.raises(SpecificationError, match="constant_data"):
        pmx.ChoiceModel.load(tmp_path / "partial.nc")


def test_unfitted_model_and_bad_method(travel_mode):
    cm = pmx.ChoiceModel(travel_mode, "MNL-1")
    with pytest.raises(SpecificationError, match="not fitted"):
        cm.predict()
    with pytest.raises(SpecificationError, match="method"):
        cm.fit(method="lbfgs")
    with pytest.raises(MaxEntError, match="situation_support=None"):  # refused before stage 1
        pmx.ChoiceModel(travel_mode, "MXL-4").fit(method="maxent", situation_support=None)
