"""The MaxEnt MXL-4: stage 3's per-situation GCE with stage 2's probabilities as prior. Its
constraints per situation, its limit (a very wide support: the MXL-3 fit), its information
against stage 2's, individual recovery on MXL-4 data, prediction, save/load and model selection."""

import numpy as np
import pytest
from scipy.special import logsumexp

import pymc_maxent as pmx
from pymc_maxent.bayes.build import build_model
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.diagnostics import model_selection
from pymc_maxent.exceptions import ChoiceDataError, ConvergenceWarning, MaxEntError, SpecificationError
from pymc_maxent.maxent import fit_maxent, load_fit
from pymc_maxent.maxent.group_dual import random_features
from pymc_maxent.simulate import ELECTRICITY_ATTRIBUTES, simulate_electricity_panel
from pymc_maxent.specification import Coefficient, ModelSpec

#: MXL-4 over one attribute: random constants, alternative-specific x0 coefficients random over
#: individuals (SD 2) and situations (SD 0.5). At 60 situations of 3 alternatives per individual
#: the MXL-3 recovery (same SDs, no situation noise) reaches 0.9-0.95: the ideal estimator can.
TRUTH = {"mu": [0.5, -0.5, -2.0, 2.0, 1.0], "sigma": [2.0] * 5, "sigma_situation": [0.5] * 3}


def simulate(n_individuals, n_situations, seed):
    truth = {k: np.asarray(v, dtype=float) for k, v in TRUTH.items()}
    return pmx.simulate_choices("MXL-4", n_individuals=n_individuals, n_situations=n_situations,
                                n_attributes=1, truth=truth, seed=seed)


@pytest.fixture(scope="module")
def panel():
    data, truth = simulate(25, 8, seed=3)
    return data, truth, fit_maxent(data, tier="MXL-4", individual_support="default")


@pytest.fixture(scope="module")
def recovery():
    data, truth = simulate(80, 60, seed=2)
    return data, truth, fit_maxent(data, tier="MXL-4", individual_support="default")


def situation_residuals(data, fit):
    """``Σ_j G_tj (y − p − ε̃)`` per situation, the situation-level components being x0 crossed
    with each alternative (``G_tj,a = x_tj 1[j = a]``), with ``p`` and ``ε̃`` recomputed from
    ``δ_t`` by the dual's formulas: ``p_t ∝ p^(i)_t e^{−G_t δ_t}``, ``ε_tj = Σ_h u_h w_tjh``
    with ``w_tjh ∝ e^{−u_h G̃_tj δ_t}`` (``G̃`` centred within the situation), centred."""
    x = data.X[..., 0]
    logits = np.log(fit.p_individual) - x * fit.delta_situation
    p = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    np.testing.assert_allclose(p, fit.p, atol=1e-12)
    G = x[..., None] * np.eye(data.n_alternatives)  # (situation, j, a)
    zeta = np.einsum("tja,ta->tj", G - G.mean(axis=1, keepdims=True), fit.delta_situation)
    u = fit.situation_problem.support
    w = np.exp(-u * zeta[..., None] - logsumexp(-u * zeta[..., None], axis=-1, keepdims=True))
    eps = (w * u).sum(axis=-1)
    eps -= eps.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(eps, fit.eps_situation, atol=1e-12)
    y = np.eye(data.n_alternatives)[data.chosen]
    return x * (y - p - eps)


# ---------------------------------------------------------------------- constraints, limits
def test_every_situation_meets_its_constraints(panel):
    data, _, fit = panel
    assert fit.situation_labels == ["x0[alt0]", "x0[alt1]", "x0[alt2]"]
    assert fit.converged and fit.n_converged_situations == data.n_situations
    assert np.abs(situation_residuals(data, fit)).max() < 1e-8
    # stage 2's constraints, per individual, still hold with its own p and ε
    y = np.eye(data.n_alternatives)[data.chosen]
    G = random_features(data.X, data.available, fit.resolved)
    moments = np.einsum("njr,nj->nr", G, y - fit.p_individual - fit.eps)
    per_individual = np.stack([moments[data.individual == i].sum(axis=0) for i in range(data.n_individuals)])
    assert np.abs(per_individual).max() < 1e-8
    assert np.abs(fit.p.sum(axis=1) - 1).max() < 1e-12 and fit.max_violation < 1e-8
    # stage 3 moved p: the situation deviations are not all 0
    assert np.abs(fit.p - fit.p_individual).max() > 1e-3


def test_realistic_generic_design_meets_situation_constraints():
    """Train's electricity design (prices 7-9, means near ±10, SDs near 2.5) with price and
    time-of-day coefficients varying over situations: generic components, so a situation
    with distinct offers identifies its deviation (finite SEs)."""
    data, _, _ = simulate_electricity_panel(30, 8, seed=1)
    levels = {"pf": "situation", "tod": "situation"}
    spec = ModelSpec(tuple(Coefficient(a, random="normal", level=levels.get(a, "individual"))
                           for a in ELECTRICITY_ATTRIBUTES), constants="none", name="MXL-4 electricity")
    fit = fit_maxent(data, tier=spec, check_separation=False, individual_support="default")
    assert fit.converged and fit.situation_labels == ["pf", "tod"]
    y = np.eye(data.n_alternatives)[data.chosen]
    residual = np.einsum("njk,nj->nk", data.X[..., [0, 4]], y - fit.p - fit.eps_situation)
    assert np.abs(residual).max() < 1e-8
    G = data.X[..., [0, 4]]
    distinct = np.linalg.matrix_rank(G - G.mean(axis=1, keepdims=True)) == 2  # offers differ in both
    assert distinct.any() and np.isfinite(fit.deviation_situation_se[distinct]).all()


def test_very_wide_situation_support_gives_the_mxl3_fit(panel):
    data, _, _ = panel
    wide = fit_maxent(data, tier="MXL-4", situation_support=1e6, individual_support="default")
    mxl3 = fit_maxent(data, tier="MXL-3", individual_support="default")
    np.testing.assert_array_equal(wide.beta_individual, mxl3.beta_individual)
    np.testing.assert_array_equal(wide.p_individual, mxl3.p)
    assert np.abs(wide.deviation_situation).max() < 1e-6
    np.testing.assert_allclose(wide.p, mxl3.p, atol=1e-7)
    np.testing.assert_allclose(wide.kl_situation, 0.0, atol=1e-10)
    assert wide.kl_individual.sum() == mxl3.kl_total


def test_wider_situation_support_pools_more(panel):
    data, _, fit = panel
    wider = fit_maxent(data, tier="MXL-4", situation_support=3.0, individual_support="default")
    assert wider.kl_situation_total < fit.kl_situation_total
    assert (wider.deviation_situation.std(axis=0) < fit.deviation_situation.std(axis=0)).all()


# ---------------------------------------------------------------------- information, recovery
@pytest.mark.slow
def test_situation_information_is_far_below_the_individual_one(recovery):
    _, _, fit = recovery
    index = fit.information_index_situation
    assert np.isfinite(index).all() and ((index >= 0) & (index < 1)).all()
    assert np.isclose(fit.kl_situation_total, fit.kl_situation.sum())
    # one choice per situation: a small share of what stage 2 takes up per individual
    assert fit.information_index_situation_total < fit.information_index_total / 3
    assert index.mean() < fit.information_index_individual.mean() / 5


@pytest.mark.slow
def test_mxl4_recovers_individual_coefficients(recovery):
    _, truth, fit = recovery
    assert fit.converged
    r = [np.corrcoef(fit.beta_individual[:, k], truth["theta"][:, k])[0, 1]
         for k in range(len(fit.random_labels))]
    assert (np.array(r) > 0.9).all(), dict(zip(fit.random_labels, r, strict=True))


# ---------------------------------------------------------------------- prediction
def test_fitted_situations_keep_their_deviation_new_ones_get_none(panel):
    data, _, fit = panel
    np.testing.assert_allclose(fit.predict().values[0, 0], fit.p, atol=1e-12)
    # the same situations of known individuals under labels the fit has not seen: stage 2's p
    relabelled = pmx.ChoiceData.from_arrays(
        np.asarray(data.X), np.asarray(data.chosen), available=np.asarray(data.available),
        individual=np.asarray(data.individual), individuals=data.individuals, alternatives=data.alternatives,
        attributes=data.attributes, situations=np.asarray(data.situations) + 10_000)
    np.testing.assert_allclose(fit.predict(relabelled).values[0, 0], fit.p_individual, atol=1e-12)
    # a known individual in new situations: its δ_i, no situation deviation
    i = 4
    X = np.random.default_rng(0).normal(size=(5, data.n_alternatives, data.n_attributes))
    new = pmx.ChoiceData.from_arrays(X, np.zeros(5, dtype=int), individual=np.zeros(5, dtype=int),
                                     individuals=np.array([data.individuals[i]]),
                                     alternatives=data.alternatives, attributes=data.attributes,
                                     situations=np.arange(5) + 50_000)
    U = np.log(fit.population.predict(new).values[0, 0])
    U = U - random_features(new.X, new.available, fit.resolved) @ fit.delta[i]
    np.testing.assert_allclose(fit.predict(new).values[0, 0], np.exp(U - logsumexp(U, axis=1, keepdims=True)),
                               atol=1e-12)


def test_new_individual_gets_the_population_prediction(panel):
    data, _, fit = panel
    new = pmx.ChoiceData.from_arrays(np.asarray(data.X[:10]), np.asarray(data.chosen[:10]),
                                     available=np.asarray(data.available[:10]),
                                     individual=np.zeros(10, dtype=int), individuals=np.array([999]),
                                     alternatives=data.alternatives, attributes=data.attributes,
                                     situations=np.arange(10) + 20_000)
    p_new = fit.predict(new).values[0, 0]
    np.testing.assert_allclose(p_new, fit.population.p[:10], atol=1e-12)
    draws = fit.predict(new, draws=20, random_seed=1).values
    assert draws.shape == (1, 20, 10, data.n_alternatives) and np.isfinite(draws).all()


# ---------------------------------------------------------------------- the Fit surface
def test_situation_estimates_line_up_with_the_bayesian_tier(panel):
    data, _, fit = panel
    model = build_model(data, "MXL-4")
    tree = fit.to_datatree(draws=30)
    deviation = tree["maxent_situation"]["deviation"]
    assert deviation.dims == model.named_vars_to_dims["z_situation"]
    assert deviation["situation"].values.tolist() == list(model.coords["situation"])
    assert deviation["situation_coefficient"].values.tolist() == list(model.coords["situation_coefficient"])
    assert tree["maxent"]["beta_individual"].dims == model.named_vars_to_dims["z"]
    assert {"mu", "sigma", "sigma_situation"} <= set(tree["posterior"].data_vars)
    estimates = fit.situation_estimates()
    np.testing.assert_array_equal(estimates["estimate"].values, -fit.delta_situation)
    beta = fit.beta_individual[data.individual][:, 2:] - fit.delta_situation
    np.testing.assert_allclose(estimates["beta"].values, beta)
    table = fit.estimates()
    assert [k for k in table.index if k.startswith("sigma_situation")] == [
        f"sigma_situation[{lab}]" for lab in fit.situation_labels]
    assert fit.parameter_count()["latent"] == data.n_individuals * 5 + data.n_situations * 3
    report = fit.convergence()
    assert report["n_converged_situations"] == report["n_situations"] == data.n_situations


def test_saved_mxl4_fit_is_rebuilt_exactly(panel, tmp_path):
    data, _, _ = panel
    cm = pmx.ChoiceModel(data, "MXL-4")
    fit = cm.fit(method="maxent", situation_support=[-1.5, 0.0, 1.5], individual_support="default")
    assert fit.has_stage("situation") and fit.model is cm.model  # was: the SituationMaxEntResult class
    loaded = pmx.ChoiceModel.load(cm.save(tmp_path / "mxl4.nc")).fit_result
    assert type(loaded) is type(fit) and loaded.settings() == fit.settings()
    for name in ("beta_individual", "deviation_situation", "deviation_situation_se", "p", "p_individual",
                 "kl_situation", "information_index_situation", "converged_situation"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fit, name), err_msg=name)
    assert loaded.convergence() == fit.convergence()
    np.testing.assert_array_equal(loaded.predict().values, fit.predict().values)
    damaged = fit.to_datatree(draws=10)
    del damaged["maxent_situation"]
    with pytest.raises(MaxEntError, match="maxent_situation"):
        load_fit(damaged, data, fit.spec, **fit.settings())


@pytest.mark.slow
def test_model_selection_and_kfold_take_the_mxl4_fit(panel):
    data, _, fit = panel
    held_out = np.arange(data.n_situations) % 4 == 0
    train, test = data.subset(~held_out), data.subset(held_out)
    fits = {"MXL-4 maxent": fit_maxent(train, tier="MXL-4", individual_support="default"),
            "MXL-3 maxent": fit_maxent(train, tier="MXL-3", individual_support="default")}
    table = model_selection(fits, train, test, folds=3)
    assert np.isfinite(table["heldout_log_score"]).all() and np.isfinite(table["elpd"]).all()
    # held-out situations are new: no situation deviation, so MXL-4 scores exactly as its stage 2
    assert table.loc["MXL-4 maxent", "heldout_log_score"] == pytest.approx(
        table.loc["MXL-3 maxent", "heldout_log_score"], abs=1e-8)
    assert table.loc["MXL-4 maxent", "latent"] == train.n_individuals * 5 + train.n_situations * 3
    # K-fold by individual refits the MXL-4 fit: held-out individuals get the population, as MXL-3's
    assert (table["criterion"] == "kfold").all() and (table["refits"] == 3).all()
    assert table.loc["MXL-4 maxent", "elpd"] == pytest.approx(table.loc["MXL-3 maxent", "elpd"], abs=1e-8)


# ---------------------------------------------------------------------- errors, convergence
def test_errors_name_the_value_at_fault(panel):
    data, _, _ = panel
    with pytest.raises(MaxEntError, match="situation_support=None"):
        fit_maxent(data, tier="MXL-4", situation_support=None)
    with pytest.raises(MaxEntError, match="situation_support.*-2"):
        fit_maxent(data, tier="MXL-4", situation_support=-2.0)
    with pytest.raises(SpecificationError, match="MXL-3.*situation_support=2.0"):
        fit_maxent(data, tier="MXL-3", situation_support=2.0)


def test_non_convergence_of_the_situations_is_a_warning(panel):
    data, _, _ = panel
    with pytest.warns(ConvergenceWarning, match="situations converged"):
        fit = fit_maxent(data, tier="MXL-4", maxiter=1)
    report = fit.convergence()
    assert not report["converged"] and report["n_converged_situations"] < data.n_situations


def test_a_situation_label_of_another_individual_is_refused(panel):
    """New data labelled 0, 1, … by default reuses the fitted situations' labels: their fitted
    deviations would land on other individuals' choices. Refused, naming the situation."""
    data, _, fit = panel
    order = np.argsort(-np.asarray(data.individual), kind="stable")  # the same labels, other owners
    moved = ChoiceData.from_arrays(data.X[order], data.chosen[order], available=data.available[order],
                                   individual=data.individual[order], alternatives=data.alternatives,
                                   attributes=data.attributes, individuals=data.individuals)
    with pytest.raises(ChoiceDataError, match="has the label of a fitted situation of individual"):
        fit.predict(moved)
    same = fit.predict(data.with_attribute(data.attributes[0], data.X[..., 0]))  # same labels, same owners
    np.testing.assert_allclose(same.values[0, 0], fit.p, atol=1e-12)
