"""Per-individual information in choice space (``KL_i = Σ_t KL(p_it ‖ p⁰_it)``) for any fit with
individual effects, its comparison across two fits, and the per-individual scatter plots. The
posterior's side (against closed-form MNL probabilities of its draws) is in
``tests/maxent/test_maxent_individual.py``, beside the posterior it reuses."""

import matplotlib
import numpy as np
import pytest
import xarray as xr
from scipy.stats import spearmanr

import pymc_maxent as pmx
from pymc_maxent.diagnostics import (
    compare_individual_information,
    compare_individual_statistics,
    compare_individual_wtp,
    individual_information_gain,
)
from pymc_maxent.exceptions import SpecificationError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pymc_maxent.plots import plot_individual_comparison, plot_individual_information  # noqa: E402


@pytest.fixture(scope="module")
def electricity(electricity_maxent):
    """The electricity panel (coefficients near ±10) and its narrow and wide MaxEnt fits."""
    data, _, fit, wide = electricity_maxent
    return data, fit, wide


@pytest.fixture(scope="module")
def uneven():
    """An MXL-1 panel with unavailable alternatives whose individuals face 2 to 24 situations,
    the situations kept per individual, and its MaxEnt mixed logit."""
    data, truth = pmx.simulate_choices("MXL-1", n_individuals=48, n_situations=24, unavailable=0.25, seed=7,
                                       truth={"alpha": [0.5, -0.5], "mu": [-2.0, 2.0], "sigma": [2.5, 2.5]})
    keep = 2 + 2 * (np.arange(48) % 12)  # situations kept per individual
    occasion = np.concatenate([np.arange(np.sum(data.individual == i)) for i in range(48)])
    rows = np.argsort(data.individual, kind="stable")
    mask = np.zeros(data.n_situations, dtype=bool)
    mask[rows] = occasion < keep[data.individual[rows]]
    data = data.subset(mask)
    return data, keep, pmx.fit_maxent(data, tier="MXL-1", individual_support="default")


def test_maxent_information_equals_its_stored_kl_and_index(electricity, uneven):
    data, fit, _ = electricity
    info = individual_information_gain(fit)
    np.testing.assert_allclose(info["kl_nats"], fit.kl_individual, rtol=0, atol=1e-10)
    np.testing.assert_allclose(info["information_index"], fit.information_index_individual,
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(info["kl_bits"] * np.log(2.0), info["kl_nats"], rtol=1e-14)
    np.testing.assert_array_equal(info["n_situations"], np.bincount(data.individual))
    assert info["individual"].values.tolist() == data.individuals.tolist()
    assert "parameter_kl_nats" not in info  # MaxEnt has no draws of β_i
    # unbalanced choice sets: unavailable alternatives are 0 in p and p⁰, and count 0 ln 0 = 0
    data, _, sparse = uneven
    info = individual_information_gain(sparse)
    assert not data.available.all()
    np.testing.assert_allclose(info["kl_nats"], sparse.kl_individual, rtol=0, atol=1e-10)
    np.testing.assert_allclose(info["information_index"], sparse.information_index_individual, atol=1e-10)
    assert (info["p_population"].values[~data.available] == 0).all()
    assert all(np.isfinite(info[v]).all() for v in info.data_vars)


def test_information_grows_with_situations_and_new_individuals_are_the_population(uneven):
    data, keep, fit = uneven
    info = individual_information_gain(fit)
    np.testing.assert_array_equal(info["n_situations"], keep)
    assert spearmanr(info["kl_nats"], keep)[0] > 0.6
    # the prediction for a new individual is the population's: KL(p ‖ p⁰) = 0 there
    half = data.individual < 24
    fit = pmx.fit_maxent(data.subset(half), tier="MXL-1", individual_support="default")
    unseen = individual_information_gain(fit, data.subset(~half))
    assert (unseen["kl_nats"] == 0).all() and (unseen["information_index"] == 0).all()
    np.testing.assert_array_equal(unseen["p"], unseen["p_population"])
    seen = individual_information_gain(fit, data.subset(half))
    np.testing.assert_allclose(seen["kl_nats"], fit.kl_individual, atol=1e-10)


def test_a_fit_without_individual_effects_is_refused(electricity, travel_mode):
    _, fit, _ = electricity
    with pytest.raises(SpecificationError, match="MaxEntResult has no individual coefficients"):
        individual_information_gain(fit.population)
    mnl = pmx.ChoiceModel(travel_mode, "MNL-2").fit(method="map")
    with pytest.raises(SpecificationError, match="MNL-2 has no individual-level random components"):
        individual_information_gain(mnl)
    with pytest.raises(SpecificationError, match="'kde'"):
        individual_information_gain(fit, parameter_kl="kde")
    with pytest.raises(SpecificationError, match="population_draws"):
        individual_information_gain(fit, population_draws=0)


def test_comparison_of_two_fits_information(electricity):
    data, fit, wide = electricity
    out = compare_individual_information(fit, wide, labels=("narrow", "wide"))
    x, y = out["narrow_estimate"].values, out["wide_estimate"].values
    np.testing.assert_allclose(x, fit.kl_individual, atol=1e-10)
    np.testing.assert_allclose(out["correlation"], np.corrcoef(x, y)[0, 1])
    np.testing.assert_allclose(out["rank_correlation"], spearmanr(x, y)[0])
    assert out["rank_correlation"] > 0.8 and "narrow_sd" not in out
    assert (y <= x + 1e-12).mean() > 0.9  # the wide support pools: less information per individual
    both = compare_individual_information(fit, wide, statistic=("kl_nats", "information_index"))
    assert both.attrs["statistic"] == "kl_nats vs information_index"
    with pytest.raises(SpecificationError, match="'parameter_kl_nats'"):
        compare_individual_information(fit, wide, statistic="parameter_kl_nats")


def test_rank_correlation_and_optional_sd():
    x = np.arange(1.0, 9.0)
    a = xr.Dataset({"estimate": ("individual", x)}, coords={"individual": list("abcdefgh")})
    b = a.assign(estimate=np.exp(a["estimate"]))  # monotone, far from linear
    out = compare_individual_statistics(a, b)
    assert float(out["rank_correlation"]) == pytest.approx(1.0) and float(out["correlation"]) < 0.9
    assert "rmse_sd" not in out and "fit_sd" not in out
    flipped = compare_individual_statistics(a, b.assign(estimate=-b["estimate"]))
    assert float(flipped["rank_correlation"]) == pytest.approx(-1.0)


def test_information_plot_has_a_panel_per_statistic(electricity):
    _, fit, wide = electricity
    fig = plot_individual_information(fit, wide, labels=("narrow", "wide"))
    assert len(fig.axes) == 2
    info = individual_information_gain(fit), individual_information_gain(wide)
    for ax, name in zip(fig.axes, ["kl_nats", "information_index"], strict=True):
        points = ax.collections[0].get_offsets()
        np.testing.assert_array_equal(points[:, 0], info[0][name])
        np.testing.assert_array_equal(points[:, 1], info[1][name])
        r = np.corrcoef(info[0][name], info[1][name])[0, 1]
        assert ax.get_title().startswith(f"r = {r:.3f}")
        x, y = ax.lines[0].get_data()
        np.testing.assert_array_equal(x, y)
    assert fig.axes[0].get_ylabel() == "wide KL_i (nats)"
    # two quantities: their ranks, and no identity line
    fig = plot_individual_information(fit, wide, statistics=[("kl_nats", "information_index")])
    rank = spearmanr(info[0]["kl_nats"], info[1]["information_index"])[0]
    assert fig.axes[0].get_title().endswith(f"rank r = {rank:.3f}") and not fig.axes[0].lines
    plt.close("all")


def test_elasticity_and_wtp_plots_have_a_panel_per_element(electricity):
    data, fit, wide = electricity
    wtp = compare_individual_wtp(fit, wide, "pf", ["tod", "cl"], labels=("narrow", "wide"))
    fig = plot_individual_comparison(wtp)
    # every supplier has the same coefficients: one panel per attribute, not per supplier
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["tod", "cl"]
    points = fig.axes[1].collections[0].get_offsets()
    cl = wtp.sel(attribute="cl").isel(alternative=0)
    np.testing.assert_array_equal(points[:, 1], cl["wide_estimate"])
    assert f"r = {float(cl['correlation']):.3f}" in fig.axes[1].get_title()
    assert fig.axes[0].get_xlabel() == "narrow willingness to pay"
    # elasticities (individual, alternative, changed_alternative): a panel per pair
    J, rng = 3, np.random.default_rng(0)
    estimate = xr.DataArray(rng.normal(size=(20, J, J)),
                            dims=("individual", "alternative", "changed_alternative"),
                            coords={"individual": np.arange(20)})
    own = compare_individual_statistics(xr.Dataset({"estimate": estimate}),
                                        xr.Dataset({"estimate": estimate + rng.normal(size=(20, J, J))}))
    own.attrs["statistic"] = "elasticity"
    assert len(plot_individual_comparison(own).axes) == J * J
    with pytest.raises(SpecificationError, match="max_panels"):
        plot_individual_comparison(own, max_panels=J)
    with pytest.raises(SpecificationError, match="nothing to plot"):
        plot_individual_comparison(own.assign(comparable=own["comparable"] & False))
    plt.close("all")


def test_mxl4_information_is_the_individual_level_alone():
    """At MXL-4 the fitted situations' own deviations stay out of ``KL_i``: it equals the stored
    stage-2 KL (the individual level), not the KL of stage 3's probabilities, which differ."""
    data, _ = pmx.simulate_choices("MXL-4", n_individuals=20, n_situations=8, seed=1)
    fit = pmx.fit_maxent(data, tier="MXL-4", individual_support="default")
    info = individual_information_gain(fit)
    np.testing.assert_allclose(info["kl_nats"], fit.kl_individual, rtol=0, atol=1e-10)
    np.testing.assert_allclose(info["information_index"], fit.information_index_individual,
                               rtol=0, atol=1e-10)
    assert np.abs(fit.p - fit.p_individual).max() > 1e-3  # stage 3 did move the probabilities
