"""The MaxEnt mixed logit: stage 2's individual GCE duals against their primal, their limits
(zero noise: each individual's conditional-logit MLE; infinite noise: the population), the
constraints per individual, recovery of simulated individual coefficients, prediction, and the
Fit surface."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.optimize import minimize
from scipy.special import log_softmax, logsumexp, rel_entr, softmax
from scipy.stats import spearmanr

import pymc_maxent as pmx
from pymc_maxent.bayes.build import build_model
from pymc_maxent.diagnostics import (
    choice_information_gain,
    compare_estimates,
    compare_individual_elasticities,
    compare_individual_information,
    compare_individuals,
    elasticities,
    individual_information_gain,
    model_selection,
)
from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError, SpecificationError
from pymc_maxent.fit import Fit
from pymc_maxent.maxent import AttributeSums, fit_maxent, load_fit, select_individual_support
from pymc_maxent.specification import as_spec, resolve

#: Simulated panels with 40 situations per individual; SDs of 2 (with SDs of 1-1.5 even the
#: oracle, the MAP under the true population distribution, correlates only ~0.85 with the
#: truth at 40 situations of 3 alternatives: no estimator can pass 0.9 there). MXL-2 and MXL-3
#: (4 and 5 random components) get 60 situations: at 40 their correlations sit at 0.88-0.94.
RECOVERY = {
    "MXL-1": {"alpha": [0.5, -0.5], "mu": [-2.0, 2.0], "sigma": [2.0, 2.0]},
    "MXL-2": {"mu": [0.5, -0.5, -2.0, 2.0], "sigma": [2.0, 2.0, 2.0, 2.0]},
    "MXL-3": {"mu": [0.5, -0.5, -2.0, 2.0, 1.0], "sigma": [2.0, 2.0, 2.0, 2.0, 2.0]},
}


def simulate(tier, n_individuals=100, n_situations=40, n_attributes=2, seed=1, truth=None):
    truth = {k: np.asarray(v) for k, v in (truth or RECOVERY[tier]).items()}
    return pmx.simulate_choices(tier, n_individuals=n_individuals, n_situations=n_situations,
                                n_attributes=n_attributes, truth=truth, seed=seed)


@pytest.fixture(scope="module")
def panel():
    """A small MXL-1 panel (30 individuals x 10 situations) and its fit with the design note's
    individual support (3 points on ±1/√n_i, the default before the learnt pooling of issue 24:
    the GCE these tests solve by hand; ``tests/maxent/test_maxent_mixing.py`` tests the learnt
    default)."""
    data, truth = simulate("MXL-1", n_individuals=30, n_situations=10, seed=5,
                           truth={"alpha": [0.3, -0.3], "mu": [-1.0, 1.5], "sigma": [1.0, 1.0]})
    return data, truth, fit_maxent(data, tier="MXL-1", individual_support="default")


@pytest.fixture(scope="module")
def recovery_mxl1():
    data, truth = simulate("MXL-1")
    return data, truth, fit_maxent(data, tier="MXL-1")


def rows_of(data, i):
    return np.flatnonzero(data.individual == i)


# ---------------------------------------------------------------------- constraints, primal
def test_every_individual_meets_its_constraints(panel):
    data, _, fit = panel
    assert fit.converged and fit.n_converged == data.n_individuals
    y = np.eye(data.n_alternatives)[data.chosen]
    # MXL-1: the random components' features are the attributes themselves
    residual = np.einsum("njk,nj->nk", data.X, y - fit.p - fit.eps)
    per_individual = np.stack([residual[data.individual == i].sum(axis=0) for i in range(data.n_individuals)])
    assert np.abs(per_individual).max() < 1e-8
    assert np.abs(fit.p.sum(axis=1) - 1).max() < 1e-12
    assert fit.max_violation < 1e-8
    assert np.isfinite(fit.beta_individual).all() and np.isfinite(fit.beta_individual_se).all()


def direct_primal(X, y, p0, u):
    """The individual's GCE primal as written (note §1), by SLSQP on ``(p, w)``: min KL(p‖p⁰) +
    KL(w‖w0) s.t. Σ_tj x_tj (y − p − ε̃) = 0 (ε̃ = Σ_h u_h w centred within situations),
    Σ_j p = 1, Σ_h w = 1."""
    T, J, K = X.shape
    H = len(u)
    n_p = T * J

    def split(z):
        return z[:n_p].reshape(T, J), z[n_p:].reshape(T, J, H)

    def objective(z):
        p, w = split(z)
        value = (p * np.log(p / p0)).sum() + (w * np.log(w * H)).sum()
        grad = np.concatenate([(np.log(p / p0) + 1).ravel(), (np.log(w * H) + 1).ravel()])
        return value, grad

    Xc = X - X.mean(axis=1, keepdims=True)  # Σ_tj x ε̃ = Σ_tj x̃ ε
    jac_moments = -np.concatenate([X.reshape(n_p, K).T, np.einsum("tjk,h->ktjh", Xc, u).reshape(K, -1)],
                                  axis=1)
    jac_adding_up = np.zeros((T + T * J, len(p0.ravel()) + T * J * H))
    for t in range(T):
        jac_adding_up[t, t * J:(t + 1) * J] = 1.0
    for tj in range(T * J):
        jac_adding_up[T + tj, n_p + tj * H:n_p + (tj + 1) * H] = 1.0

    def moments(z):
        p, w = split(z)
        return np.einsum("tjk,tj->k", X, y - p) + jac_moments[:, n_p:] @ z[n_p:]

    def adding_up(z):
        return jac_adding_up @ z - 1.0

    z0 = np.concatenate([p0.ravel(), np.full(T * J * H, 1.0 / H)])
    res = minimize(objective, z0, jac=True, method="SLSQP", bounds=[(1e-12, 1.0)] * len(z0),
                   constraints=[{"type": "eq", "fun": moments, "jac": lambda z: jac_moments},
                                {"type": "eq", "fun": adding_up, "jac": lambda z: jac_adding_up}],
                   options={"ftol": 1e-15, "maxiter": 2000})
    assert res.success, res.message
    return split(res.x)[0]


def test_dual_equals_a_direct_primal_gce_of_each_individual(panel):
    data, _, fit = panel
    for i in (0, 7, 19):
        rows = rows_of(data, i)
        y = np.eye(data.n_alternatives)[data.chosen[rows]]
        u = np.array([-1.0, 0.0, 1.0]) / np.sqrt(len(rows))
        p = direct_primal(data.X[rows], y, fit.population.p[rows], u)
        np.testing.assert_allclose(fit.p[rows], p, atol=1e-6)


@pytest.mark.slow
def test_dual_equals_the_package_primal_of_an_individual(panel):
    """Individual i's problem is a GME with prior p⁰ (stage 1's p̂ on its situations), the
    random attributes' sums as moments and its own error support: the package's primal
    (scipy trust-constr on p and w, compiled from the graphs) solves it directly."""
    data, _, fit = panel
    i = 7
    rows = rows_of(data, i)
    u = np.array([-1.0, 0.0, 1.0]) / np.sqrt(len(rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        primal = fit_maxent(data.subset(rows), [AttributeSums(["x0", "x1"])], p0=fit.population.p[rows],
                            error_support=u, solver="primal")
    assert primal.max_violation < 1e-8
    np.testing.assert_allclose(fit.p[rows], primal.p, atol=1e-6)
    np.testing.assert_allclose(fit.delta[i], primal.lam, atol=1e-4)


# ---------------------------------------------------------------------- limits
def test_zero_noise_is_the_individuals_own_logit_mle_with_population_offsets():
    data, _ = simulate("MXL-1", n_individuals=12, n_situations=40, seed=3,
                       truth={"alpha": [0.2, -0.2], "mu": [-0.8, 0.8], "sigma": [0.4, 0.4]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a separated individual, if any, diverges
        fit = fit_maxent(data, tier="MXL-1", individual_support=None)
    offsets = np.log(fit.population.p)
    checked = 0
    for i in np.flatnonzero(~fit.separated & fit.converged_individual)[:4]:
        rows = rows_of(data, i)
        X, y, off = data.X[rows], data.chosen[rows], offsets[rows]

        def nll(b, X=X, y=y, off=off):
            return -log_softmax(off + X @ b, axis=1)[np.arange(len(y)), y].sum()

        mle = minimize(nll, np.zeros(2), method="BFGS", options={"gtol": 1e-11}).x
        np.testing.assert_allclose(-fit.delta[i], mle, atol=1e-5)
        np.testing.assert_allclose(fit.beta_individual[i], fit.beta_population + mle, atol=1e-5)
        checked += 1
    assert checked == 4


def test_very_wide_support_gives_the_population_fit(panel):
    data, _, _ = panel
    fit = fit_maxent(data, tier="MXL-1", individual_support=1e6)
    assert np.abs(fit.delta).max() < 1e-6
    np.testing.assert_allclose(fit.p, fit.population.p, atol=1e-7)
    np.testing.assert_allclose(fit.kl_individual, 0.0, atol=1e-10)


def test_wider_support_pools_more(panel):
    data, _, fit = panel
    wide = fit_maxent(data, tier="MXL-1", individual_support=3.0)
    assert (wide.beta_individual.std(axis=0) < fit.beta_individual.std(axis=0)).all()
    assert wide.kl_total < fit.kl_total


def test_support_width_by_held_out_log_score():
    data, _ = simulate("MXL-1", n_individuals=40, n_situations=20, seed=6)
    table = select_individual_support(data, "MXL-1", widths=(0.5, 1.0, 4.0))
    assert table.index.tolist() == [0.5, 1.0, 4.0, np.inf] and table["best"].sum() == 1
    best = table.loc[table["best"], "heldout_log_score"].item()
    assert best > table.loc[np.inf, "heldout_log_score"]  # individual effects beat the population
    assert (table["n_converged"] == 40).all()
    with pytest.raises(MaxEntError, match="individual_support"):
        select_individual_support(data, "MXL-1", widths=(0.0,))


# ---------------------------------------------------------------------- separation, convergence
def separated_panel():
    data, truth = simulate("MXL-1", n_individuals=10, n_situations=12, seed=4,
                           truth={"alpha": [0.0, 0.0], "mu": [-1.0, 1.0], "sigma": [0.5, 0.5]})
    chosen = data.chosen.copy()
    rows = rows_of(data, 0)
    chosen[rows] = data.X[rows, :, 1].argmax(axis=1)  # individual 0 always takes the largest x1
    return pmx.ChoiceData.from_arrays(data.X, chosen, available=data.available, individual=data.individual,
                                      individuals=data.individuals, alternatives=data.alternatives,
                                      attributes=data.attributes)


def test_separated_individual_stays_finite_and_is_counted():
    data = separated_panel()
    fit = fit_maxent(data, tier="MXL-1")
    assert fit.separated[0] and fit.n_separated >= 1
    assert fit.converged and np.isfinite(fit.beta_individual[0]).all()
    assert fit.beta_individual[0, 1] > fit.beta_individual[1:, 1].max()  # pushed up, but finite
    assert fit.convergence()["n_separated"] == fit.n_separated
    with pytest.warns(ConvergenceWarning, match="individuals converged"):
        mle = fit_maxent(data, tier="MXL-1", individual_support=None, maxiter=30)
    assert not mle.converged_individual[0] and not mle.converged
    assert mle.convergence()["n_converged"] < data.n_individuals


def test_non_convergence_is_a_warning_and_shows_in_convergence(panel):
    data, _, _ = panel
    with pytest.warns(ConvergenceWarning, match=r"of 30 individuals converged; worst constraint violation"):
        fit = fit_maxent(data, tier="MXL-1", maxiter=1, individual_support="default")
    report = fit.convergence()
    assert not report["converged"] and report["n_converged"] < 30 and report["max_violation"] > 1e-8


def test_errors_name_the_value_at_fault(panel):
    data, _, _ = panel
    with pytest.raises(MaxEntError, match="individual_support.*-2"):
        fit_maxent(data, tier="MXL-1", individual_support=-2.0)
    with pytest.raises(MaxEntError, match="individual_support"):
        fit_maxent(data, tier="MXL-1", individual_support=[0.1, 0.2])
    with pytest.raises(SpecificationError, match="moments or a tier"):
        fit_maxent(data, [AttributeSums()], tier="MXL-1")


# ---------------------------------------------------------------------- recovery
def correlations(fit, truth):
    return np.array([np.corrcoef(fit.beta_individual[:, r], truth["theta"][:, r])[0, 1]
                     for r in range(fit.beta_individual.shape[1])])


def test_mxl1_recovers_individual_coefficients(recovery_mxl1):
    _, truth, fit = recovery_mxl1
    assert fit.converged
    assert (correlations(fit, truth) > 0.9).all(), correlations(fit, truth)
    summary = fit.population_summary()
    assert (np.sign(summary["mean"]) == np.sign(truth["mu"])).all()


@pytest.mark.parametrize("tier", ["MXL-2", "MXL-3"])
def test_mxl2_mxl3_recover_individual_components(tier):
    n_attributes = 1 if tier == "MXL-3" else 2
    data, truth = simulate(tier, n_attributes=n_attributes, n_individuals=80, n_situations=60, seed=2)
    fit = fit_maxent(data, tier=tier)
    assert fit.converged
    assert fit.random_labels == resolve(as_spec(tier, data.attributes.tolist()), data).random_labels
    r = correlations(fit, truth)
    assert (r > 0.9).all(), dict(zip(fit.random_labels, r, strict=True))


# ---------------------------------------------------------------------- prediction
def test_new_individual_gets_the_population_prediction(panel):
    data, _, fit = panel
    new = pmx.ChoiceData.from_arrays(data.X[:10], data.chosen[:10], available=data.available[:10],
                                     individual=np.zeros(10, dtype=int), individuals=np.array([999]),
                                     alternatives=data.alternatives, attributes=data.attributes,
                                     situations=np.arange(10) + 10_000)
    p_new = fit.predict(new).values[0, 0]
    np.testing.assert_allclose(p_new, fit.population.predict(new).values[0, 0], atol=1e-12)
    np.testing.assert_allclose(p_new, fit.population.p[:10], atol=1e-12)
    # the containers are back as they were
    np.testing.assert_allclose(fit.predict().values[0, 0], fit.p, atol=1e-12)


def test_known_individual_keeps_its_deviation_on_new_situations(panel):
    data, _, fit = panel
    i = 3
    label = data.individuals[i]
    X = np.random.default_rng(0).normal(size=(5, data.n_alternatives, data.n_attributes))
    new = pmx.ChoiceData.from_arrays(X, np.zeros(5, dtype=int), individual=np.zeros(5, dtype=int),
                                     individuals=np.array([label]), alternatives=data.alternatives,
                                     attributes=data.attributes, situations=np.arange(5) + 50_000)
    p = fit.predict(new).values[0, 0]
    U0 = np.log(fit.population.predict(new).values[0, 0])
    expected = np.exp(U0 - X @ fit.delta[i] - logsumexp(U0 - X @ fit.delta[i], axis=1, keepdims=True))
    np.testing.assert_allclose(p, expected, atol=1e-12)


# ---------------------------------------------------------------------- the Fit surface
def test_information_per_individual(panel):
    data, _, fit = panel
    assert (fit.kl_individual >= 0).all() and fit.kl_total > 0
    assert ((fit.information_index_individual >= 0) & (fit.information_index_individual < 1)).all()
    assert np.isclose(fit.kl_total, fit.kl_individual.sum())


def test_datatree_lines_up_with_the_bayesian_tier(panel):
    data, _, fit = panel
    tree = fit.to_datatree(draws=50)
    model = build_model(data, "MXL-1")
    beta = tree["maxent"]["beta_individual"]
    assert beta.dims == model.named_vars_to_dims["z"]
    assert beta["individual"].values.tolist() == list(model.coords["individual"])
    assert tree["maxent"]["delta"].dims == beta.dims
    assert beta["random_coefficient"].values.tolist() == list(model.coords["random_coefficient"])
    assert set(tree["posterior"].data_vars) == {"alpha", "mu", "sigma"}
    assert tree["maxent"].attrs["n_converged"] == data.n_individuals


def test_choice_model_and_diagnostics_take_the_fit(panel):
    data, _, _ = panel
    cm = pmx.ChoiceModel(data, "MXL-1")
    fit = cm.fit(method="maxent", individual_support="default")  # learnt pooling adds Σ: test_maxent_mixing
    assert fit.estimator == "maxent" and fit.model is cm.model and fit.converged
    assert isinstance(fit, Fit)
    assert fit.parameter_count() == {"parameters": fit.population.lam.size, "latent": data.n_individuals * 2}
    elasticity = elasticities(fit, "x0")
    assert {"estimate", "sd"} <= set(elasticity.data_vars)
    table = compare_estimates(fit, fit_maxent(data, tier="MXL-1", individual_support="default"),
                              var_names=("alpha", "mu", "sigma"), labels=("a", "b"))
    assert np.allclose(table["a_estimate"], table["b_estimate"])
    gain = choice_information_gain(fit)
    assert gain > choice_information_gain(fit.population)


SAVED_ARRAYS = ("beta_individual", "beta_individual_se", "delta", "cov_individual", "kl_individual",
                "information_index_individual", "converged_individual", "nit_individual",
                "violation_individual", "separated", "p", "eps", "beta_population", "support",
                "support_scale")


def test_saved_mixed_fit_is_rebuilt_exactly(panel, tmp_path):
    data, _, _ = panel
    cm = pmx.ChoiceModel(data, "MXL-1")
    fit = cm.fit(method="maxent", individual_support=[-1.5, 0.0, 1.5])
    loaded = pmx.ChoiceModel.load(cm.save(tmp_path / "mixed.nc")).fit_result
    assert type(loaded) is type(fit) and loaded.model is not fit.model
    for name in SAVED_ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fit, name), err_msg=name)
    np.testing.assert_array_equal(loaded.population.cov_robust, fit.population.cov_robust)
    assert loaded.convergence() == fit.convergence() and loaded.kl_total == fit.kl_total
    assert loaded.settings() == fit.settings()
    pd.testing.assert_frame_equal(loaded.estimates(), fit.estimates())
    # known individuals with their δ_i, a stranger with the population's δ = 0
    new = data.subset(np.isin(data.individual, [0, 1]))
    stranger = pmx.ChoiceData.from_arrays(np.asarray(new.X), np.asarray(new.chosen),
                                          available=np.asarray(new.available),
                                          individual=np.zeros(new.n_situations, dtype=int),
                                          individuals=["stranger"], alternatives=data.alternatives,
                                          attributes=data.attributes)
    for other in (None, new, stranger):
        np.testing.assert_array_equal(loaded.predict(other).values, fit.predict(other).values)
        np.testing.assert_array_equal(loaded.predict(other, draws=20, random_seed=3).values,
                                      fit.predict(other, draws=20, random_seed=3).values)


def test_a_damaged_mixed_fit_file_is_refused(panel, tmp_path):
    data, _, fit = panel
    tree = fit.to_datatree(draws=10)
    damaged = tree.copy()
    del damaged["maxent_population"]
    with pytest.raises(MaxEntError, match="maxent_population"):
        load_fit(damaged, data, fit.spec, **fit.settings())
    damaged = tree.copy()
    damaged["maxent"] = xr.DataTree(tree["maxent"].to_dataset().drop_vars("hessian"))
    with pytest.raises(MaxEntError, match="hessian"):
        load_fit(damaged, data, fit.spec, **fit.settings())
    with pytest.raises(MaxEntError, match="delta"):
        load_fit(tree, data.subset(data.individual < 10), fit.spec, **fit.settings())


def test_model_selection_scores_held_out_situations_within_individuals(panel):
    data, _, _ = panel
    held_out = np.arange(data.n_situations) % 5 == 0  # situations held out within individuals
    train, test = data.subset(~held_out), data.subset(held_out)
    fits = {"MXL-1 maxent": fit_maxent(train, tier="MXL-1"), "MNL-2 maxent": fit_maxent(train)}
    selection = model_selection(fits, train, test, folds=3)
    assert set(selection.index) == set(fits)
    assert selection.loc["MXL-1 maxent", "latent"] == train.n_individuals * 2
    assert np.isfinite(selection["heldout_log_score"]).all()
    # scored with each known individual's own δ_i, not the population's prediction
    mixed = fits["MXL-1 maxent"]
    rows = np.arange(test.n_situations), test.chosen
    own = np.log(mixed.predict(test).values[0, 0][rows]).sum()
    population = np.log(mixed.population.predict(test).values[0, 0][rows]).sum()
    np.testing.assert_allclose(selection.loc["MXL-1 maxent", "heldout_log_score"], own, rtol=1e-10)
    assert own > population + 1.0


def test_compare_individuals_of_two_fits(panel):
    data, _, fit = panel
    wide = fit_maxent(data, tier="MXL-1", individual_support=2.0)
    table = compare_individuals(fit, wide, labels=("narrow", "wide"))
    assert table.index.tolist() == ["x0", "x1"]
    assert (table["correlation"] > 0.9).all() and (table["wide_sd"] < table["narrow_sd"]).all()
    with pytest.raises(SpecificationError, match="individual coefficients"):
        compare_individuals(fit, fit.population)


def test_individual_scatter_has_one_panel_per_random_coefficient(panel):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pymc_maxent.plots import plot_individual_coefficients

    data, _, fit = panel
    wide = fit_maxent(data, tier="MXL-1", individual_support=2.0)
    table = compare_individuals(fit, wide, labels=("narrow", "wide"))
    fig = plot_individual_coefficients(fit, wide, labels=("narrow", "wide"))
    assert len(fig.axes) == 2
    for r, (ax, component) in enumerate(zip(fig.axes, ["x0", "x1"], strict=True)):
        points = ax.collections[0].get_offsets()
        np.testing.assert_array_equal(points[:, 0], fit.beta_individual[:, r])
        np.testing.assert_array_equal(points[:, 1], wide.beta_individual[:, r])
        x, y = ax.lines[0].get_data()  # the identity line, over the whole cloud
        np.testing.assert_array_equal(x, y)
        assert x[0] < points.min() and x[-1] > points.max()
        title = ax.get_title()
        assert title.startswith(component) and f"r = {table.loc[component, 'correlation']:.3f}" in title
        assert ax.get_xlabel().startswith("narrow") and ax.get_ylabel().startswith("wide")
    with pytest.raises(SpecificationError, match="individual coefficients"):
        plot_individual_coefficients(fit, fit.population)
    plt.close("all")


@pytest.fixture(scope="module")
def posterior_mxl1(recovery_mxl1):
    """The posterior of MXL-1 on the recovery panel (small NUTS, fixed seed; ~35 s)."""
    from tests.conftest import sample_settings

    data, _, _ = recovery_mxl1
    settings = sample_settings(300, 300, chains=2, random_seed=1)
    return pmx.ChoiceModel(data, "MXL-1").fit(method="nuts", **settings)


@pytest.mark.slow
def test_posterior_means_of_beta_i_line_up_with_maxent(recovery_mxl1, posterior_mxl1):
    data, truth, fit = recovery_mxl1
    post = posterior_mxl1
    table = compare_individuals(post, fit)
    assert (table["correlation"] > 0.9).all(), table
    # each individual's own-elasticities from both estimators line up too
    own = compare_individual_elasticities(post, fit, "x0")
    diagonal = own["correlation"].values.diagonal()
    assert (diagonal > 0.8).all(), own["correlation"]
    assert own["bayes_estimate"].dims == ("individual", "alternative", "changed_alternative")
    population = compare_estimates(post, fit, var_names=("alpha", "mu", "sigma"))
    assert {"mu[x0]", "sigma[x1]", "alpha[alt0]"} <= set(population.index)


@pytest.mark.slow
def test_posterior_individual_information_against_closed_form(recovery_mxl1, posterior_mxl1):
    """``KL_i`` of the posterior against its closed-form MNL probabilities: ``p`` the posterior
    mean at each individual's draws, ``p⁰`` the population-integrated predictive (fresh ``z``
    per draw); then against the true β_i and MaxEnt's ``KL_i``."""
    data, truth, fit = recovery_mxl1
    post = posterior_mxl1
    info = individual_information_gain(post)
    draws = post.posterior.stack(sample=("chain", "draw"))
    asc = np.stack([draws["alpha"].sel(asc=a).values if a in draws["asc"] else np.zeros(draws.sizes["sample"])
                    for a in data.alternatives.tolist()], axis=-1)
    mu, sigma = (draws[v].transpose("sample", ...).values for v in ("mu", "sigma"))
    z = draws["z"].transpose("sample", "individual", ...).values

    def probabilities(theta):  # theta (sample, situation, attribute)
        return softmax(asc[:, None, :] + np.einsum("njk,snk->snj", data.X, theta), axis=-1).mean(axis=0)

    p = probabilities((mu[:, None] + sigma[:, None] * z)[:, data.individual])
    rng = np.random.default_rng(0)
    p0 = np.mean([probabilities(np.repeat((mu + sigma * rng.standard_normal(mu.shape))[:, None],
                                          data.n_situations, axis=1)) for _ in range(8)], axis=0)
    np.testing.assert_allclose(info["p"], p, rtol=0, atol=1e-10)
    assert np.abs(info["p_population"] - p0).mean() < 0.01  # Monte Carlo error only
    plug_in = softmax(asc.mean(0) + data.X @ mu.mean(0), axis=-1)  # the population at mean μ: wrong
    assert np.abs(plug_in - p0).mean() > 0.05

    def kl(a, b):
        return np.bincount(data.individual, rel_entr(a, b).sum(axis=1))

    expected = kl(p, p0)
    error = np.abs(info["kl_nats"].values - expected) / expected
    assert np.median(error) < 0.05
    for wrong in (kl(p0, p), kl(p, plug_in)):  # p and p⁰ swapped, or the plug-in population
        assert np.median(np.abs(wrong - expected) / expected) > 0.3
    # individuals far from the population carry more information, in both spaces
    distance = np.linalg.norm((truth["theta"] - truth["mu"]) / truth["sigma"], axis=1)
    assert spearmanr(info["kl_nats"], distance)[0] > 0.5
    assert spearmanr(info["parameter_kl_nats"], distance)[0] > 0.3
    assert np.isfinite(info["parameter_kl_nats"]).all() and (info["parameter_kl_nats"] > 0).all()
    # the two estimators single out the same individuals
    both = compare_individual_information(post, fit)
    assert both["correlation"] > 0.9 and both["rank_correlation"] > 0.9, both


def test_an_individual_with_collinear_components_is_solved_and_unidentified(panel):
    """One individual whose x1 is 2·x0 in every one of their situations: a singular Hessian.
    Stage 2 takes minimum-norm Newton steps (δ stays in the identified direction (1, 2)) and
    reports infinite SEs for that individual only."""
    data, _, _ = panel
    X = np.array(data.X)
    rows = data.individual == 3
    X[rows, :, 1] = 2.0 * X[rows, :, 0]
    collinear = pmx.ChoiceData.from_arrays(
        X, np.asarray(data.chosen), available=np.asarray(data.available),
        individual=np.asarray(data.individual),
        individuals=data.individuals, alternatives=data.alternatives, attributes=data.attributes)
    # the design note's support (its ridge is of G̃'G̃, singular with the data); the learnt normal
    # reference N(0, Σ) identifies every direction
    fit = fit_maxent(collinear, tier="MXL-1", individual_support="default")
    assert fit.converged and fit.max_violation < 1e-8
    delta = fit.delta[3]
    assert abs(delta[0]) > 1e-6 and delta[1] == pytest.approx(2.0 * delta[0], rel=1e-8)
    assert np.isinf(fit.beta_individual_se[3]).all()
    others = np.arange(data.n_individuals) != 3
    assert np.isfinite(fit.beta_individual_se[others]).all()
    # draws move that individual along the identified direction only: finite, on the line δ1 = 2 δ0
    draws = fit._delta_draws(200, np.random.default_rng(0))
    assert np.isfinite(draws).all() and np.isfinite(fit.parameter_draws(50)["mu"]).all()
    np.testing.assert_allclose(draws[:, 3, 1], 2.0 * draws[:, 3, 0], rtol=1e-6)
    assert np.isfinite(fit.predict(collinear, draws=20)).all()


@pytest.mark.parametrize("tier", ["MXL-1", "MXL-4"])
def test_pm_set_data_moves_the_predictions(tier):
    """As at the MNL tiers: ``pm.set_data`` on the model's containers moves ``predict()``, to the
    prediction of the same situations passed as data, and back when the data are put back."""
    import pymc as pm

    data, _ = pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=8, seed=2)
    cm = pmx.ChoiceModel(data, tier)
    fit = cm.fit(method="maxent")
    before = fit.predict().values
    doubled = data.with_attribute("x0", 2.0 * data.X[..., 0]).with_attribute("x1", 2.0 * data.X[..., 1])
    with cm.model:
        pm.set_data({"X": doubled.X})
    moved = fit.predict().values
    assert np.abs(moved - before).max() > 0.1
    np.testing.assert_allclose(moved, fit.predict(doubled).values, atol=1e-12)
    with cm.model:
        pm.set_data({"X": data.X})
    np.testing.assert_allclose(fit.predict().values, before, atol=1e-12)
