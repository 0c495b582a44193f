"""Minibatch ADVI recovers the truth of simulated MNL and MXL-1 data.

ADVI's mean-field SDs are too small, so these test the point estimates (posterior means)
against the truth, with tolerances of about 3-4 standard errors of the estimator at these
sizes (MNL-2, 2·10⁴ situations: SE ≈ 0.02; MXL-1, 2·10⁴ individuals: SE(μ) ≈ 0.03,
SE(σ) ≈ 0.05, σ being identified by one choice per individual in a cross section) plus the
iterate's noise. Ignoring the heterogeneity (σ = 0), or scaling the likelihood wrongly,
misses σ by far more.
"""

import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.bayes.minibatch import fit_minibatch
from pymc_maxent.bayes.specification import tier_spec
from pymc_maxent.exceptions import ChoiceDataError, ConvergenceWarning, SpecificationError


def test_mnl_recovers_truth_and_is_reproducible():
    data, truth = pmx.simulate_choices("MNL-2", n_individuals=20_000, seed=3)
    fit = fit_minibatch(data, "MNL-2", batch_size=500, n=3000, draws=200, random_seed=1)
    assert fit.converged
    np.testing.assert_allclose(fit.mean("alpha"), truth["alpha"], atol=0.08)
    np.testing.assert_allclose(fit.mean("beta"), truth["beta"], atol=0.08)
    assert fit.idata["posterior"]["beta"].dims == ("chain", "draw", "coefficient")
    assert list(fit.idata["posterior"]["alpha"].coords["asc"].values) == ["alt0", "alt1"]
    again = fit_minibatch(data, "MNL-2", batch_size=500, n=300, draws=10, random_seed=1)
    twice = fit_minibatch(data, "MNL-2", batch_size=500, n=300, draws=10, random_seed=1)
    np.testing.assert_array_equal(again.losses, twice.losses)


def test_mxl1_cross_section_recovers_mu_and_sigma():
    data, truth = pmx.simulate_choices("MXL-1", n_individuals=20_000, seed=4)
    fit = fit_minibatch(data, "MXL-1", batch_size=500, n=3000, draws=200, random_seed=1)
    assert fit.converged and fit.n_nodes == 100
    np.testing.assert_allclose(fit.mean("alpha"), truth["alpha"], atol=0.12)
    np.testing.assert_allclose(fit.mean("mu"), truth["mu"], atol=0.12)
    np.testing.assert_allclose(fit.mean("sigma"), truth["sigma"], atol=0.2)


def test_mxl1_panel_batches_whole_individuals():
    # 4 situations each, the likelihood a product over them inside the integral; 8 nodes per
    # component keep it fast. Largest errors: seed 6 0.03, seed 5 0.12 (σ).
    data, truth = pmx.simulate_choices("MXL-1", n_individuals=2000, n_situations=4, seed=6)
    fit = fit_minibatch(data, "MXL-1", batch_size=100, n=2000, nodes=8, draws=200, random_seed=2)
    assert fit.n_units == 2000 and fit.n_nodes == 64
    np.testing.assert_allclose(fit.mean("mu"), truth["mu"], atol=0.12)
    np.testing.assert_allclose(fit.mean("sigma"), truth["sigma"], atol=0.2)


def test_rejects_what_it_does_not_support():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=2, seed=1)
    with pytest.raises(SpecificationError, match="correlated"):
        fit_minibatch(data, tier_spec("MXL-1", ["x0", "x1"], correlated=True), n=10)
    with pytest.raises(SpecificationError, match="quadrature nodes"):
        fit_minibatch(data, "MXL-1", nodes=1, n=10)
    unbalanced = data.subset(data.situations[1:])
    with pytest.raises(ChoiceDataError, match="balanced panel"):
        fit_minibatch(unbalanced, "MXL-1", n=10)


def test_an_unsettled_fit_warns():
    data, _ = pmx.simulate_choices("MNL-2", n_individuals=200, seed=1)
    with pytest.warns(ConvergenceWarning, match="did not settle"):
        fit = fit_minibatch(data, "MNL-2", batch_size=50, n=50, draws=10, random_seed=1)
    assert not fit.converged
