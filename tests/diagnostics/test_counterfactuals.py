"""Counterfactual shares and revenue, revenue curves, and revenue-maximising prices against grids."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import sample_settings  # noqa: E402

import pymc_maxent as pmx  # noqa: E402
from pymc_maxent.diagnostics.counterfactuals import (  # noqa: E402
    _Pricing,
    change_attribute,
    choice_shares,
    expected_revenue,
    optimal_prices,
    revenue_curve,
)
from pymc_maxent.diagnostics.effects import elasticities  # noqa: E402
from pymc_maxent.evaluation import ChoiceEvaluator  # noqa: E402
from pymc_maxent.exceptions import ChoiceDataError, ConvergenceWarning  # noqa: E402
from pymc_maxent.fit import choice_evaluator  # noqa: E402
from pymc_maxent.plots.effects import plot_elasticity_heatmap  # noqa: E402
from pymc_maxent.plots.pricing import plot_revenue_curve  # noqa: E402

AIR, TRAIN = 0, 1


@pytest.fixture(scope="module")
def data():
    return pmx.load_travel_mode()


@pytest.fixture(scope="module")
def posterior(data):
    model = pmx.build_model(data, "MNL-2")
    fit = pmx.PosteriorFit(model, pmx.sample(model, random_seed=11, **sample_settings(100, 200)), data)
    return fit, fit.evaluator()


@pytest.fixture(scope="module")
def maxent(data):
    return pmx.fit_maxent(data)


def grid_revenue(ev, data, prices, alternatives, counted):
    """Expected revenue (mean over samples) with the gc of ``alternatives`` scaled by
    ``prices``, computed by hand from the evaluator's probabilities."""
    X = np.array(data.X)
    for a, t in zip(alternatives, prices, strict=True):
        X[:, a, 0] = t * data.X[:, a, 0]
    p = ev.evaluate(X)
    return float(ev.weights @ (p[:, :, counted] * X[None, :, counted, 0]).sum(axis=(1, 2)))


def test_shares_and_revenue_under_a_change(data, posterior):
    fit, ev = posterior
    new = change_attribute(data, "gc", alternatives="air", scale=1.2)
    np.testing.assert_allclose(new.attribute("gc")[:, AIR], 1.2 * data.attribute("gc")[:, AIR])
    np.testing.assert_array_equal(new.attribute("gc")[:, 1:], data.attribute("gc")[:, 1:])
    shares = choice_shares(fit, new)["draws"]
    p = fit.predict(new)
    np.testing.assert_allclose(shares, p.mean("situation"), rtol=1e-12)
    np.testing.assert_allclose(shares.sum("alternative"), 1.0)
    revenue = expected_revenue(fit, "gc", new, alternatives=["air", "bus"])
    expected = (p * new.attribute("gc")).sum("situation").sel(alternative=["air", "bus"])
    np.testing.assert_allclose(revenue["draws"], expected, rtol=1e-12)
    np.testing.assert_allclose(revenue["estimate"], expected.mean(("chain", "draw")), rtol=1e-12)
    # dearer air: air loses share (the gc coefficient is negative)
    base = choice_shares(ev)["estimate"]
    assert float(shares.sel(alternative="air").mean()) < float(base.sel(alternative="air"))
    with pytest.raises(ChoiceDataError, match="plane"):
        change_attribute(data, "gc", alternatives="plane", scale=1.1)


def test_pricing_gradient_against_finite_differences(posterior):
    ev = posterior[1]
    pricing = _Pricing(ev, "gc", ["air", "train"], ["air", "train", "car"], "scale")
    theta = np.array([0.9, 1.3])
    _, grad = pricing.value_and_grad(theta)
    h = 1e-6
    fd = [(pricing.value_and_grad(theta + e)[0] - pricing.value_and_grad(theta - e)[0]) / (2 * h)
          for e in np.eye(2) * h]
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_one_price_against_a_dense_grid(data, posterior):
    fit, ev = posterior
    opt = optimal_prices(fit, "gc", "air", bounds=(0.2, 4.0))
    assert opt.success and opt.prices.index.tolist() == ["air"]
    grid = np.arange(0.2, 4.0 + 1e-9, 0.01)
    curve = revenue_curve(ev, "gc", "air", grid)
    best = int(curve["estimate"].argmax())
    assert 0 < best < grid.size - 1  # an interior optimum
    assert abs(opt.x[0] - grid[best]) <= 0.01
    assert opt.revenue >= float(curve["estimate"].max()) - 1e-9 * opt.revenue
    np.testing.assert_allclose(opt.revenue, grid_revenue(ev, data, opt.x, [AIR], [AIR]), rtol=1e-10)
    np.testing.assert_allclose(float(opt.revenue_samples["estimate"]), opt.revenue, rtol=1e-10)
    band = curve["upper"] - curve["lower"]
    assert (band > 0).all()
    assert (curve["lower"] <= curve["estimate"]).all() and (curve["estimate"] <= curve["upper"]).all()
    assert curve["draws"].dims == ("chain", "draw", "price_grid")


def test_two_prices_against_a_coarse_grid(data, posterior):
    ev = posterior[1]
    opt = optimal_prices(ev, "gc", ["air", "train"], bounds=[(0.3, 3.0), (0.3, 3.0)])
    step = 0.1
    axis = np.arange(0.3, 3.0 + 1e-9, step)
    both = [AIR, TRAIN]
    revenue = np.array([[grid_revenue(ev, data, (a, t), both, both) for t in axis] for a in axis])
    i, j = np.unravel_index(revenue.argmax(), revenue.shape)
    assert 0 < i < axis.size - 1 and 0 < j < axis.size - 1
    assert np.abs(opt.x - [axis[i], axis[j]]).max() <= step
    assert opt.revenue >= revenue.max() - 1e-9 * opt.revenue
    assert opt.revenue > opt.revenue_observed


def test_maxent_pricing_and_level_mode(data, maxent):
    opt = optimal_prices(maxent, "gc", "train", bounds=(0.2, 4.0))
    grid = np.arange(0.2, 4.0 + 1e-9, 0.01)
    curve = revenue_curve(maxent, "gc", "train", grid)
    assert sorted(curve.data_vars) == ["estimate", "lower", "sd", "upper"]
    assert abs(opt.x[0] - grid[int(curve["estimate"].argmax())]) <= 0.01
    assert float(opt.revenue_samples["sd"]) > 0
    dearer = change_attribute(data, "gc", alternatives="train", scale=opt.x[0])
    p = maxent.predict(dearer).isel(chain=0, draw=0)
    by_hand = (p.sel(alternative="train").values * data.attribute("gc")[:, TRAIN] * opt.x[0]).sum()
    np.testing.assert_allclose(opt.revenue, by_hand, rtol=1e-9)
    # one price level for every traveller instead of a multiplier of each one's price
    level = optimal_prices(maxent, "gc", "train", mode="level", bounds=(20.0, 400.0))
    levels = np.linspace(20.0, 400.0, 381)
    curve = revenue_curve(maxent, "gc", "train", levels, mode="level")
    assert abs(level.x[0] - levels[int(curve["estimate"].argmax())]) <= 1.0
    with pytest.raises(ChoiceDataError, match="mode"):
        optimal_prices(maxent, "gc", "train", mode="percent")
    with pytest.raises(ChoiceDataError, match="bounds"):
        optimal_prices(maxent, "gc", ["air", "train"], bounds=[(1.0, 0.5), (0.5, 2.0)])
    with pytest.raises(ChoiceDataError, match="hdi"):
        revenue_curve(maxent, "gc", "train", levels, method="quantile")
    with pytest.raises(ChoiceDataError, match="grid"):
        revenue_curve(maxent, "gc", "train", [[1.0]])
    with pytest.raises(ChoiceDataError, match="ship"):
        optimal_prices(maxent, "gc", "ship")


def test_containers_restored(data, posterior):
    fit, _ = posterior
    model = fit.model
    sub = data.subset(slice(0, 30))
    optimal_prices(fit, "gc", "air", sub, bounds=(0.5, 2.0))
    assert list(model.coords["situation"]) == data.situations.tolist()
    np.testing.assert_array_equal(model["X"].get_value(), data.X)


def test_figures(monkeypatch, data, posterior, maxent):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show called"))
    _, ev = posterior
    fig = plot_elasticity_heatmap(elasticities(ev, "gc"))
    assert len(fig.axes[0].texts) == 16
    fig2 = plot_elasticity_heatmap(elasticities(maxent, "gc"))
    assert fig2.axes[0].texts[0].get_text().count("(") == 1
    curve = revenue_curve(ev, "gc", "air", np.linspace(0.5, 2.5, 21))
    opt = optimal_prices(ev, "gc", "air", bounds=(0.5, 2.5))
    fig3 = plot_revenue_curve(curve, optimum=opt)
    ax = fig3.axes[0]
    assert len(ax.collections) >= 1 and ax.get_legend() is not None
    np.testing.assert_allclose(ax.lines[-1].get_xdata(), opt.x)
    with pytest.raises(ValueError, match="J x J"):
        plot_elasticity_heatmap(elasticities(maxent, "hinc_air").isel(changed_alternative=0))
    plt.close("all")


def test_pricing_that_stops_early_warns(posterior):
    with pytest.warns(ConvergenceWarning, match="without converging"):
        opt = optimal_prices(posterior[1], "gc", "air", bounds=(0.2, 4.0), options={"maxiter": 1})
    assert not opt.success


def test_one_compiled_evaluator_per_fit_gives_bit_identical_effects_and_prices(data, posterior):
    fit, shared = posterior
    thin = fit.evaluator(draws=20, random_seed=3)
    assert thin.compiled is shared.compiled is fit.compiled_probabilities()
    assert choice_evaluator(fit, change_attribute(data, "gc", scale=1.1)).compiled is shared.compiled
    own = ChoiceEvaluator(fit)  # compiles its own p and derivatives
    assert own.compiled is not shared.compiled
    for reused, fresh in ((shared, own), (thin, ChoiceEvaluator(fit, draws=20, random_seed=3))):
        np.testing.assert_array_equal(elasticities(reused, "gc", kind="situation")["draws"],
                                      elasticities(fresh, "gc", kind="situation")["draws"])
        a = optimal_prices(reused, "gc", "air", bounds=(0.2, 4.0))
        b = optimal_prices(fresh, "gc", "air", bounds=(0.2, 4.0))
        np.testing.assert_array_equal(a.x, b.x)
        assert a.revenue == b.revenue
