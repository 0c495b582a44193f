"""Learnt pooling as the default of the MaxEnt mixed logit (issue 24): the boundary ``σ → 0``,
unidentified mixing distributions, the estimate's independence from the order of the
individuals, the Laplace fallback, and the ``moments`` argument's hostile values."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_maxent_mixing import realistic_panel

import pymc_maxent as pmx
from pymc_maxent.exceptions import IdentificationWarning, PymcMaxentError, SpecificationError
from pymc_maxent.maxent import fit_maxent
from pymc_maxent.maxent import mixing as mixing_module


def test_the_default_pooling_is_learnt_and_the_fixed_rule_is_kept_by_name():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=40, n_situations=6, seed=1)
    learnt, fixed, old_name = (fit_maxent(data, tier="MXL-1", **kw) for kw in
                               ({}, {"individual_support": "fixed"}, {"individual_support": "default"}))
    assert learnt.learnt and not fixed.learnt
    np.testing.assert_array_equal(fixed.individual_estimates()["estimate"].to_numpy(),
                                  old_name.individual_estimates()["estimate"].to_numpy())
    assert {"mu[x0]", "sigma[x0]"} <= set(learnt.estimates().index)


def test_a_component_without_heterogeneity_stays_off_the_boundary_with_a_finite_standard_error():
    # sigma[x1] is 0 in truth: the penalty keeps Sigma positive definite, the loop converges and
    # the estimate is within a few of its (finite, positive) standard errors of 0
    data, truth = realistic_panel("MXL-1", 150, 10, seed=3, sigma=np.array([0.625, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_maxent(data, tier="MXL-1")
    stage = fit.mixing_stage
    assert stage.converged and stage.identified and not stage.at_floor.any()
    row = fit.estimates().loc["sigma[x1]"]
    assert np.isfinite(row["sd"]) and row["sd"] > 0
    assert row["estimate"] < 3 * row["sd"], row
    # the heterogeneous component is still found: within 30 % of its truth
    assert abs(fit.estimates().loc["sigma[x0]", "estimate"] / truth["sigma"][0] - 1) < 0.3


def test_the_estimates_do_not_depend_on_the_order_of_the_individuals():
    data, _ = realistic_panel("MXL-1", 60, 6, seed=4)
    order = np.random.default_rng(0).permutation(data.n_individuals)  # new position -> old
    rows = np.concatenate([np.flatnonzero(data.individual == i) for i in order])
    position = np.argsort(order)  # old position -> new
    shuffled = pmx.ChoiceData.from_arrays(data.X[rows], data.chosen[rows], available=data.available[rows],
                                          individual=position[data.individual[rows]],
                                          individuals=data.individuals[order],
                                          situations=data.situations[rows],
                                          alternatives=data.alternatives, attributes=data.attributes)
    assert shuffled.individuals.tolist() != data.individuals.tolist()
    a, b = fit_maxent(data, tier="MXL-1"), fit_maxent(shuffled, tier="MXL-1")
    np.testing.assert_allclose(b.estimates()["estimate"], a.estimates()["estimate"], rtol=1e-7, atol=1e-10)
    ia = a.individual_estimates()["estimate"].to_pandas()
    ib = b.individual_estimates()["estimate"].to_pandas().loc[ia.index]
    np.testing.assert_allclose(ib.to_numpy(), ia.to_numpy(), rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def cross_section():
    """TravelMode: one choice per traveller, where random constants' variances are barely
    identified."""
    return pmx.load_travel_mode()


def test_an_unidentified_mixing_distribution_is_warned_and_its_standard_errors_are_inf(cross_section,
                                                                                      monkeypatch):
    # a singular information (made so: every direction but one flat) must give inf, not 0 or NaN
    original = mixing_module.hyper_information

    def flat(points, mu, cov, correlated):
        information, outer, scores, complete = original(points, mu, cov, correlated)
        information = np.zeros_like(information)
        information[0, 0] = 1.0
        return information, np.zeros_like(outer), scores, complete

    monkeypatch.setattr(mixing_module, "hyper_information", flat)
    with pytest.warns(IdentificationWarning, match="NOT identified"):
        fit = fit_maxent(cross_section, tier="MXL-1", mixing_maxiter=3)
    table = fit.estimates()
    mixing_rows = [name for name in table.index if name.startswith(("mu[", "sigma["))]
    assert np.all(np.isinf(table.loc[mixing_rows, "sd"]))
    assert not table.isna().any().any()
    assert "NOT identified" in fit.convergence_message()
    assert fit.convergence()["mixing_identified"] is False
    draws = fit.predict(cross_section.subset(slice(0, 8)), draws=20)
    assert np.isfinite(draws.to_numpy()).all()
    with pytest.raises(SpecificationError, match="NOT identified"):
        fit_maxent(cross_section, tier="MXL-1", mixing_maxiter=3, on_unidentified="raise")


def test_the_laplace_estimate_is_kept_and_said_where_the_points_still_decide(monkeypatch):
    data, _ = realistic_panel("MXL-1", 60, 6, seed=6)
    monkeypatch.setattr(mixing_module, "MC_SHIFT_LIMIT", -1.0)  # every importance pass "moves"
    fit = fit_maxent(data, tier="MXL-1")
    stage = fit.mixing_stage
    assert stage.method == "laplace" and "Laplace approximation" in fit.convergence_message()
    table = fit.estimates()
    assert np.isfinite(table["sd"]).all()
    # the Laplace EM's fixed point: mu is the mean of the individuals' modes at the learnt prior
    modes = fit.individual_estimates()["estimate"].to_numpy()
    np.testing.assert_allclose(modes.mean(axis=0), stage.mu, rtol=2e-3, atol=1e-6)


@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=8), st.integers(), st.floats(allow_nan=True),
                 st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=4)), min_size=1, max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2)))
def test_moments_that_are_not_moments_are_refused_by_a_package_error(moments):
    data = pmx.load_travel_mode().subset(slice(0, 40))
    with pytest.raises(PymcMaxentError, match="moment"):
        fit_maxent(data, moments)


def test_a_tier_given_where_the_moments_go_is_named():
    with pytest.raises(SpecificationError, match="tier='MXL-2'"):
        fit_maxent(pmx.load_travel_mode(), "MXL-2")


def test_a_situation_level_over_learnt_pooling_converges_and_ignores_the_price_origin():
    # stage 3's noise sees the features centred within situations under learnt pooling too: a
    # price in the hundreds (+500 more in every alternative) neither stalls it nor moves it
    data, _ = realistic_panel("MXL-1", 60, 8, seed=8)
    spec = pmx.ModelSpec(coefficients=(pmx.Coefficient("x0", random="normal"),
                                       pmx.Coefficient("x1", random="normal", level="situation")),
                         constants="fixed", name="situation-level price")
    moved = pmx.diagnostics.counterfactuals.change_attribute(data, "x1", shift=500.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pmx.exceptions.ConvergenceWarning)
        a, b = (fit_maxent(d, tier=spec) for d in (data, moved))
    assert a.learnt and a.converged and a.max_violation < 1e-6
    rows = [name for name in a.estimates().index if name.startswith(("sigma_situation", "mu[", "sigma["))]
    assert any(name.startswith("sigma_situation") for name in rows)
    np.testing.assert_allclose(b.estimates().loc[rows, "estimate"], a.estimates().loc[rows, "estimate"],
                               rtol=1e-5, atol=1e-9)
