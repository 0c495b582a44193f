"""Moment objects are immutable (re-usable across data sets), and moments that say nothing
about the choice probabilities are rejected."""

import dask.array as da
import numpy as np
import pytensor
import pytest

from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.maxent import (
    AlternativeShares,
    AttributeSums,
    Constraint,
    CrossMoments,
    Revenue,
    fit_maxent,
)
from pymc_maxent.maxent.dask_backend import fit_maxent_dask

NO_VARIATION = "no variation within any situation"


def moments():
    return [Revenue("gc"), AttributeSums(["ttme", "hinc_air"]), AlternativeShares("car")]


def graph_probabilities(res):
    """``p`` at the estimate through the fit's symbolic graph (built anew from its moments)."""
    graph = res.probability_graph()
    return pytensor.function(list(graph.parameters), graph.p)(res.lam)


def snapshot(res):
    return {"beta": res.beta.copy(), "se": res.se.copy(), "se_robust": res.se_robust.copy(),
            "predict": res.predict().values[0, 0].copy(), "refit": res.problem.fit().beta}


def assert_same(a, b):
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_moment_objects_reused_across_attribute_orders(travel_mode):
    reordered = travel_mode.select_attributes(travel_mode.attributes[::-1].tolist())
    assert reordered.attribute_index("gc") != travel_mode.attribute_index("gc")
    shared = moments()
    first = fit_maxent(travel_mode, shared)
    before = snapshot(first)
    second = fit_maxent(reordered, shared)
    assert shared == moments()  # nothing was written into the moments
    assert first.spec == second.spec == tuple(shared)
    # each fit, the first re-evaluated after the second was made, equals a fit of fresh objects,
    # also through its symbolic graph of p, built anew from the moments
    for res, data in ((first, travel_mode), (second, reordered)):
        fresh = fit_maxent(data, moments())
        assert_same(snapshot(res), snapshot(fresh))
        np.testing.assert_allclose(graph_probabilities(res), fresh.p, rtol=1e-12, atol=1e-15)
    assert_same(snapshot(first), before)
    # the two data sets are the same problem: the same estimates, in the same order
    np.testing.assert_allclose(second.beta, first.beta, rtol=1e-8)


def test_resolve_returns_a_new_object(travel_mode):
    reordered = travel_mode.select_attributes(travel_mode.attributes[::-1].tolist())
    revenue = Revenue("gc")
    a, b = revenue.resolve(travel_mode), revenue.resolve(reordered)
    assert a.index.get_value().tolist() == [travel_mode.attribute_index("gc")]
    assert b.index.get_value().tolist() == [reordered.attribute_index("gc")]
    assert a.terms == b.terms and a.moment is b.moment is revenue


@pytest.fixture(scope="module")
def flat_price(travel_mode):
    """TravelMode with ``gc`` replaced by one price per situation, equal across its alternatives."""
    per_situation = travel_mode.attribute("gc").max(axis=1, keepdims=True)
    return travel_mode.with_attribute("gc", np.broadcast_to(per_situation, travel_mode.available.shape))


@pytest.mark.parametrize("solver", ["dual", "primal"])
def test_revenue_of_a_price_equal_within_situations_is_rejected(flat_price, solver):
    with pytest.raises(MaxEntError, match=rf"'revenue\[gc\]' has {NO_VARIATION}"):
        fit_maxent(flat_price, [Revenue("gc"), AlternativeShares()], solver=solver)


def test_attribute_sum_of_a_price_equal_within_situations_is_rejected(flat_price):
    with pytest.raises(MaxEntError, match="'gc' does not vary across alternatives within any situation"):
        fit_maxent(flat_price, [AttributeSums(["gc", "ttme"])])


def test_user_constraint_without_variation_is_rejected(flat_price):
    def revenue(c, p, eps):
        return (c.X[:, :, flat_price.attribute_index("gc")] * (p + eps)).sum()

    with pytest.raises(MaxEntError, match=rf"'constraint\[rev\]' has {NO_VARIATION}"):
        fit_maxent(flat_price, [AttributeSums(["ttme"]), Constraint("rev", revenue)])


def test_cross_moment_of_an_alternative_without_the_attribute_is_rejected(travel_mode):
    """``hinc_air`` is income on air and 0 elsewhere: its cross moment on train is all zeros."""
    with pytest.raises(MaxEntError, match=rf"'cross\[hinc_air\]\[train\]' has {NO_VARIATION}"):
        fit_maxent(travel_mode, [CrossMoments("hinc_air"), AlternativeShares()])


def test_dask_rejects_a_moment_without_variation(flat_price):
    d = flat_price
    with pytest.raises(MaxEntError, match=rf"'revenue\[gc\]' has {NO_VARIATION}"):
        fit_maxent_dask(da.from_array(d.X, chunks=(105, -1, -1)), d.available, d.chosen,
                        alternatives=d.alternatives, attributes=d.attributes, moments=[Revenue("gc")])


def test_a_situation_constant_price_still_identifies_cross_moments(flat_price):
    """Alternative-specific coefficients of the same column are informative: accepted."""
    res = fit_maxent(flat_price, [CrossMoments("gc"), AlternativeShares()])
    assert res.converged and res.identified


@pytest.mark.parametrize("tier", ["MNL-3", "MXL-3"])
def test_tier_twin_has_the_bayesian_tiers_alternative_specific_coefficients(travel_mode, tier):
    """TravelMode's ``ttme`` is 0 for car and ``hinc_air`` is income on air only: the Bayesian
    MNL-3 has no coefficient there, and neither has MaxEnt's twin (it raised before, naming
    ``cross[ttme][car]``); the coefficients it has are the Bayesian tier's, name for name."""
    from pymc_maxent.specification import as_spec, resolve

    resolved = resolve(as_spec(tier, travel_mode.attributes.tolist()), travel_mode)
    # one situation per individual: the learnt mixing distribution of MXL-3's 10 random components
    # does not converge on TravelMode (its variances run to the floor); the names are the subject here
    res = fit_maxent(travel_mode, tier=tier, individual_support="default")
    assert res.converged
    names = res.estimates().index.tolist()
    prefix, labels = ("beta", resolved.fixed.labels) if tier == "MNL-3" else ("mu", resolved.random_labels)
    assert [n for n in names if n.startswith(f"{prefix}[")] == [f"{prefix}[{lab}]" for lab in labels]
    assert not any("ttme[car]" in n or "hinc_air[train]" in n for n in names)
