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
from pymc_maxent.bayes.minibatch import fit_minibatch, padded_panel, qmc_normal_points
from pymc_maxent.exceptions import ConvergenceWarning, SpecificationError
from pymc_maxent.simulate import simulate_electricity_panel
from pymc_maxent.specification import tier_spec


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
    with pytest.raises(SpecificationError, match="Gauss–Hermite nodes"):
        fit_minibatch(data, "MXL-1", nodes=1, integration="gauss-hermite", n=10)
    with pytest.raises(SpecificationError, match="2 or more points"):
        fit_minibatch(data, "MXL-1", nodes=1, integration="qmc", n=10)
    with pytest.raises(SpecificationError, match="integration must be"):
        fit_minibatch(data, "MXL-1", integration="laplace", n=10)
    situation = tier_spec("MXL-4", ["x0", "x1"])
    with pytest.raises(SpecificationError, match="situation-level.*build_model and NUTS, or fit_maxent"):
        fit_minibatch(data, situation, n=10)


def test_padded_panel_round_trips_an_unbalanced_panel():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=5, seed=2)
    rng = np.random.default_rng(0)
    unbalanced = data.subset(np.sort(rng.choice(data.situations, 120, replace=False)))
    X, available, chosen, n_padded = padded_panel(unbalanced)
    counts = np.bincount(unbalanced.individual, minlength=unbalanced.n_individuals)
    assert X.shape[:2] == (unbalanced.n_individuals, counts.max())
    assert n_padded == X.shape[0] * X.shape[1] - unbalanced.n_situations == (counts.max() - counts).sum()
    real = np.arange(X.shape[1])[None, :] < counts[:, None]
    for i in range(unbalanced.n_individuals):  # each individual's situations, in order
        rows = np.flatnonzero(unbalanced.individual == i)
        np.testing.assert_array_equal(X[i, :counts[i]], unbalanced.X[rows])
        np.testing.assert_array_equal(available[i, :counts[i]], unbalanced.available[rows])
        np.testing.assert_array_equal(chosen[i, :counts[i]], unbalanced.chosen[rows])
    # a pad's only available alternative is the chosen one: log-probability exactly 0
    assert (available[~real].sum(axis=-1) == 1).all() and (chosen[~real] == 0).all()
    assert available[~real][:, 0].all()


def test_random_design_reproduces_the_utility_graph():
    # Z θ (the integrated likelihood's design) against the one utility graph, with a random
    # constant, a generic and an alternative-specific random coefficient
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4, 3, 5, 2))  # (individual, situation, alternative, attribute)
    theta = rng.normal(size=(4, 3, 4))  # a row per situation
    from pymc_maxent.utility import UtilityLayout

    layout = UtilityLayout(n_alternatives=5, n_attributes=2, random_asc=(0, -1, 1, -1, -1), n_random_asc=2,
                           random=((0, 1), (0, -1), (0, 1), (0, 1), (0, 1)), random_columns=(0, 1))
    Z = layout.random_design(X)
    assert Z.shape == (4, 3, 5, 4)
    np.testing.assert_allclose(np.einsum("itjd,itd->itj", Z, theta),
                               layout.random_utility(X, theta).eval(), rtol=1e-12)


def test_qmc_points_integrate_a_gaussian_moment():
    z, w = qmc_normal_points(8, 512, seed=0)
    assert z.shape == (512, 8) and np.isfinite(z).all()
    np.testing.assert_allclose(w.sum(), 1.0)
    # E exp(a'z) = exp(|a|²/2): quasi-Monte Carlo error well under a plain Monte Carlo one's
    a = np.full(8, 0.25)
    assert abs(w @ np.exp(z @ a) / np.exp(a @ a / 2) - 1) < 0.01


def test_an_unsettled_fit_warns():
    data, _ = pmx.simulate_choices("MNL-2", n_individuals=200, seed=1)
    with pytest.warns(ConvergenceWarning, match="did not settle"):
        fit = fit_minibatch(data, "MNL-2", batch_size=50, n=50, draws=10, random_seed=1)
    assert not fit.converged


@pytest.mark.slow
def test_qmc_recovers_six_components_on_an_unbalanced_panel():
    # the electricity-like design: six normal random coefficients (means to -10, SDs to 2.3),
    # 20% of individuals with 4-11 of 12 situations. Tolerances: ~3.5 posterior SDs at this size
    # (NUTS at 361 individuals: SD(mu) 0.03-0.40, SD(sigma) 0.02-0.20) plus the simulation's bias.
    data, spec, truth = simulate_electricity_panel(400, short=0.2, seed=3)
    fit = fit_minibatch(data, spec, batch_size=100, n=3000, learning_rate=0.02, draws=200, random_seed=1)
    assert fit.integration == "qmc" and fit.n_nodes == 256 and fit.converged
    assert fit.n_padded == 400 * 12 - data.n_situations > 0
    tolerance_mu = np.array([0.15, 0.1, 0.45, 0.3, 1.3, 1.3])
    tolerance_sigma = np.array([0.08, 0.1, 0.4, 0.3, 0.7, 0.7])
    np.testing.assert_array_less(np.abs(fit.mean("mu") - truth["mu"]), tolerance_mu)
    np.testing.assert_array_less(np.abs(fit.mean("sigma") - truth["sigma"]), tolerance_sigma)
    # ignoring the heterogeneity is far off: sigma = 0 misses the truth by more than its tolerance
    assert (truth["sigma"] > tolerance_sigma).all()


@pytest.mark.slow
def test_qmc_recovers_correlated_components():
    spec = tier_spec("MXL-1", ["x0", "x1"], correlated=True)
    truth = {"alpha": np.array([0.5, -0.5]), "mu": np.array([1.0, -1.0]), "sigma": np.array([1.0, 1.5]),
             "corr": np.array([[1.0, 0.7], [0.7, 1.0]])}
    data, truth = pmx.simulate_choices(spec, n_individuals=800, n_situations=8, truth=truth, seed=5)
    fit = fit_minibatch(data, spec, batch_size=100, n=3000, learning_rate=0.02, integration="qmc",
                        nodes=128, draws=200, random_seed=2)
    corr = fit.idata["posterior"]["corr"].mean(("chain", "draw")).values
    assert fit.integration == "qmc" and fit.converged
    np.testing.assert_allclose(fit.mean("mu"), truth["mu"], atol=0.25)
    np.testing.assert_allclose(fit.mean("sigma"), truth["sigma"], atol=0.35)
    assert abs(corr[0, 1] - 0.7) < 0.25  # uncorrelated would be 0


def test_a_loss_still_falling_over_the_second_half_is_not_converged():
    # 400 steps on the electricity-like panel: the loss still falls by hundreds over the second
    # half but by less than its noise between the last two tenths (which passed the former check)
    data, spec, truth = simulate_electricity_panel(seed=0)
    with pytest.warns(ConvergenceWarning, match="did not settle"):
        fit = fit_minibatch(data, spec, n=400, learning_rate=0.02, draws=20, random_seed=1)
    assert not fit.converged
    assert abs(fit.mean("mu")[0] - truth["mu"][0]) > 0.3  # far from the truth, as reported
