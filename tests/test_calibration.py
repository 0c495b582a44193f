"""Simulation-based calibration: the rank, coverage and uniformity functions on known inputs,
and a small SBC that passes for the correct model and fails for a mis-scaled one."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import xarray as xr

from pymc_maxent.calibration import (
    calibration_design,
    calibration_summary,
    chi2_uniformity,
    maxent_coverage,
    maxent_coverage_summary,
    pot_c_uniformity,
    rank_statistics,
    simulation_based_calibration,
    thinning_factor,
    uniformity_tests,
)
from pymc_maxent.calibration.sbc import upper_triangle
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.plots import plot_ecdf_difference, plot_rank_histogram

matplotlib.use("Agg")


def draws(values) -> xr.Dataset:
    """A posterior of one scalar ``a`` from a (chain, draw) array."""
    return xr.Dataset({"a": (("chain", "draw"), np.asarray(values, dtype=float))})


def pits_of(truth_sd: float, n_sims: int = 100, seed: int = 0) -> np.ndarray:
    """PITs of truths drawn from N(0, truth_sd²) among iid N(0, 1) 'posterior' draws."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_sims):
        stats = rank_statistics(draws(rng.normal(size=(2, 50))), xr.Dataset({"a": rng.normal(0, truth_sd)}),
                                rng=rng)
        out.append(float(stats["pit"]["a"]))
    return np.array(out)


def test_uniform_pits_pass_and_piled_ones_fail():
    rng = np.random.default_rng(3)
    uniform = rng.uniform(size=200)
    assert chi2_uniformity(uniform) > 0.05 and pot_c_uniformity(uniform) > 0.05
    for piled in (rng.uniform(0.4, 0.6, 200),                          # posteriors too wide
                  np.concatenate([rng.uniform(0, 0.1, 100), rng.uniform(0.9, 1, 100)]),  # too narrow
                  rng.beta(2, 1, 200)):                                # biased
        assert chi2_uniformity(piled) < 1e-4 and pot_c_uniformity(piled) < 1e-4
    with pytest.raises(SpecificationError, match="at least 2 bins"):
        chi2_uniformity(uniform, bins=1)


def test_ranks_of_a_calibrated_posterior_are_uniform_and_of_a_narrow_one_are_not():
    right, narrow = pits_of(1.0), pits_of(2.0)
    assert ((right > 0) & (right < 1)).all()
    assert chi2_uniformity(right) > 0.05 and pot_c_uniformity(right) > 0.05
    assert chi2_uniformity(narrow) < 1e-4 and pot_c_uniformity(narrow) < 1e-4
    # a too-narrow posterior misses the truth more often than nominal
    assert np.mean(np.abs(narrow - 0.5) < 0.47) < 0.8 < np.mean(np.abs(right - 0.5) < 0.47)


def test_rank_and_coverage_on_known_draws():
    posterior = draws(np.arange(200.0).reshape(2, 100))  # each chain 0..99 / 100..199: ESS is what it is
    low = rank_statistics(posterior, xr.Dataset({"a": -1.0}))
    high = rank_statistics(posterior, xr.Dataset({"a": 1e3}))
    assert int(low["rank"]["a"]) == 0 and int(high["rank"]["a"]) == high["n_draws"]
    iid = draws(np.random.default_rng(0).permutation(np.linspace(0, 1, 1000)).reshape(2, 500))
    out = rank_statistics(iid, xr.Dataset({"a": 0.2}), intervals=(0.5, 0.94))
    covered = out["covered"]["a"]
    # 0.2 lies outside the central 50% interval [0.25, 0.75] and inside the 94% one [0.03, 0.97]
    assert not bool(covered.sel(interval=0.5)) and bool(covered.sel(interval=0.94))
    assert out["n_draws"] == 2 * -(-500 // out["thin"])  # every thin-th draw of each chain
    assert abs(int(out["rank"]["a"]) / out["n_draws"] - 0.2) < 0.06
    with pytest.raises(SpecificationError, match=r"no draws of \['b'\]"):
        rank_statistics(iid, xr.Dataset({"b": 0.0}))


def test_thinning_follows_the_autocorrelation():
    rng = np.random.default_rng(1)
    chain = np.zeros((2, 2000))
    for t in range(1, 2000):
        chain[:, t] = 0.95 * chain[:, t - 1] + rng.normal(size=2)
    assert thinning_factor(draws(chain)) >= 10
    assert thinning_factor(draws(rng.normal(size=(2, 2000)))) <= 2


def test_summary_counts_coverage_and_labels_elements():
    u = np.random.default_rng(0).uniform(size=(50, 2))
    covered = np.stack([np.zeros((50, 2), bool), np.ones((50, 2), bool)])
    covered[0, :10, 0] = True  # 10 of 50 covered by the 50% interval for 'x'
    tree = xr.DataTree.from_dict({
        "pit": xr.Dataset({"beta": (("sim", "coefficient"), u)}, coords={"coefficient": ["x", "y"]}),
        "covered": xr.Dataset({"beta": (("interval", "sim", "coefficient"), covered)},
                              coords={"interval": [0.5, 0.94], "coefficient": ["x", "y"]})})
    table = calibration_summary(tree)
    assert list(table.index) == ["beta[x]", "beta[y]"]
    assert table.loc["beta[x]", "coverage_50"] == 0.2 and table.loc["beta[y]", "coverage_50"] == 0.0
    assert (table["coverage_94"] == 1.0).all() and (table["n_sims"] == 50).all()
    assert np.isclose(table.loc["beta[x]", "mcse_94"], np.sqrt(0.94 * 0.06 / 50))
    p = uniformity_tests(tree["pit"].to_dataset())
    assert np.isclose(float(p["beta"].sel(test="chi2", coefficient="x")), chi2_uniformity(u[:, 0]))
    with pytest.raises(SpecificationError, match="at least 10 simulations"):
        uniformity_tests(tree["pit"].to_dataset().isel(sim=slice(0, 5)))


def test_correlations_are_kept_once_each():
    corr = np.array([[1.0, 0.1, 0.2], [0.1, 1.0, 0.3], [0.2, 0.3, 1.0]])
    labels = ["a", "b", "c"]
    ds = xr.Dataset({"corr": (("random_coefficient", "random_coefficient_2"), corr),
                     "mu": ("random_coefficient", np.zeros(3))},
                    coords={"random_coefficient": labels, "random_coefficient_2": labels})
    out = upper_triangle(ds)
    assert out["corr"].dims == ("correlation",)
    assert list(out["correlation"].values) == ["a, b", "a, c", "b, c"]
    assert out["corr"].values.tolist() == [0.1, 0.2, 0.3]
    assert "random_coefficient_2" not in out.dims and out["mu"].dims == ("random_coefficient",)


def test_bad_settings_raise_naming_the_value():
    design = calibration_design(10, 2)
    with pytest.raises(SpecificationError, match="'speed'"):
        calibration_design(10, 2, attributes=("price", "speed"))
    with pytest.raises(SpecificationError, match="n_alternatives"):
        calibration_design(10, 2, 1)
    with pytest.raises(SpecificationError, match="n_sims must be an integer >= 10; got 5"):
        simulation_based_calibration("MNL-2", design, 5)
    with pytest.raises(SpecificationError, match="nuts_sampler"):
        simulation_based_calibration("MNL-2", design, 10, nuts_sampler="stan")
    with pytest.raises(SpecificationError, match="n_workers"):
        simulation_based_calibration("MNL-2", design, 10, n_workers=0)
    with pytest.raises(SpecificationError, match=r"truth\['beta'\] must hold 2"):
        maxent_coverage(design, 10, truth={"alpha": [0.0, 0.0], "beta": [1.0]})


def test_design_is_on_real_scales():
    design = calibration_design(40, 3, attributes=("price", "time", "comfort"))
    X = design.X
    assert 100 <= X[..., 0].min() and X[..., 0].max() <= 400
    assert 10 <= X[..., 1].min() and X[..., 1].max() <= 90
    assert set(np.unique(X[..., 2])) == {0.0, 1.0}
    assert design.n_situations == 120 and design.n_individuals == 40 and not design.has_choices


def test_plots_draw_one_panel_per_element():
    rng = np.random.default_rng(0)
    pit = xr.Dataset({"alpha": (("sim", "asc"), rng.uniform(size=(40, 2))),
                      "sigma": ("sim", rng.uniform(size=40))}, coords={"asc": ["a", "b"]})
    tree = xr.DataTree.from_dict({"pit": pit})
    for plot in (plot_rank_histogram, plot_ecdf_difference):
        fig = plot(tree)
        assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["alpha[a]", "alpha[b]", "sigma"]
    assert [ax.get_title() for ax in plot_rank_histogram(tree, var_names=["sigma"]).axes] == ["sigma"]
    with pytest.raises(SpecificationError, match=r"no ranks of \['beta'\]"):
        plot_ecdf_difference(tree, var_names=["beta"])


@pytest.mark.slow
def test_maxent_coverage_reports_the_shrinkage_the_support_implies():
    cover = maxent_coverage(calibration_design(150, 1, seed=2), 20, random_seed=2)
    table = maxent_coverage_summary(cover)
    assert cover.attrs["converged"] == 20
    gme = table.xs("gme", level="estimator")
    assert (gme["shrinkage"] < 0.97).all() and (table["n_excluded"] == 0).all()
    assert cover["converged"].all() and np.isfinite(cover["implied_estimate"]).all()
    # the quadratic approximation of the default support predicts the shrinkage it causes
    assert np.allclose(gme["shrinkage"], gme["implied_shrinkage"], atol=0.05)
    # and GME's estimates are smaller in magnitude than the MLE's, simulation by simulation
    gme_est, mle_est = (cover["estimate"].sel(estimator=e) for e in ("gme", "mle"))
    assert bool((abs(gme_est) < abs(mle_est)).mean() > 0.95)
    assert set(table.columns) >= {"coverage_94_hessian", "coverage_94_sandwich", "coverage_50_hessian"}
    assert ((table["coverage_94_hessian"] > 0.6) & (table["coverage_94_hessian"] <= 1)).all()


def in_wrong_units(design, factor=2.0):
    """The design with every attribute multiplied by ``factor``: utility's attribute part
    scaled by it in the fitted likelihood."""
    from pymc_maxent.data.choice_data import ChoiceData

    return ChoiceData.from_arrays(design.X * factor, design.chosen, available=design.available,
                                  individual=design.individual, individuals=design.individuals,
                                  alternatives=design.alternatives, attributes=design.attributes,
                                  has_choices=False)


@pytest.mark.slow
@pytest.mark.parametrize(("tier", "sizes", "nuts", "parameters"), [
    ("MNL-2", (50, 1, ("price", "time")), (150, 100), ["beta"]),
    # 12 individuals were too few: the doubled utility's mu[price] ranks gave p = 0.08
    ("MXL-1", (15, 4, ("price",)), (200, 150), ["mu"]),
])
def test_sbc_passes_the_right_model_and_fails_a_mis_scaled_likelihood(tier, sizes, nuts, parameters):
    """40 simulations: the correct model's ranks are uniform (no p-value below 0.001 over its
    top-level parameters, either test) and its 94% intervals cover; fitted with the attributes'
    part of utility doubled (a units error), the coefficients' ranks pile at the ends (both
    tests below 0.01, the sharper one below 1e-4) and the 50% intervals rarely cover."""
    I, T, attributes = sizes
    design = calibration_design(I, T, attributes=attributes, seed=4)
    settings = {"n_sims": 40, "tune": nuts[0], "draws": nuts[1], "random_seed": 16}
    right = simulation_based_calibration(tier, design, **settings)
    wrong = simulation_based_calibration(tier, design, fit_design=in_wrong_units(design), **settings)
    table = calibration_summary(right)
    assert right["pit"].sizes["sim"] == 40 and json.loads(right.attrs["failed"]) == {}
    assert (table[["p_chi2", "p_pot_c"]] > 0.001).all().all(), table
    assert (table["coverage_94"] > 0.8).all(), table
    bad = calibration_summary(wrong)
    for name in parameters:
        rows = bad[bad.index.str.startswith(name)]
        assert (rows[["p_chi2", "p_pot_c"]] < 0.01).all().all(), bad
        assert (rows[["p_chi2", "p_pot_c"]].min(axis=1) < 1e-4).all(), bad
        assert (rows["coverage_50"] < 0.3).all(), bad
    with pytest.raises(SpecificationError, match="fit_design must have"):
        simulation_based_calibration(tier, design, fit_design=calibration_design(I + 1, T), **settings)



@pytest.mark.slow
def test_pymc_sampler_runs_do_not_inherit_another_runs_fit_design():
    """The fitting model is cached per design: a run with ``fit_design`` must not leave its
    attributes in the model for the next run on the same design (PyMC's sampler sets the data
    in place; it did, and the next run silently fitted the wrong units)."""
    design = calibration_design(30, 1, attributes=("price", "time"), seed=4)
    settings = {"n_sims": 10, "tune": 40, "draws": 40, "chains": 1, "random_seed": 3, "nuts_sampler": "pymc"}
    first = simulation_based_calibration("MNL-2", design, **settings)
    simulation_based_calibration("MNL-2", design, fit_design=in_wrong_units(design), **settings)
    again = simulation_based_calibration("MNL-2", design, **settings)
    np.testing.assert_array_equal(again["pit"]["beta"].values, first["pit"]["beta"].values)
