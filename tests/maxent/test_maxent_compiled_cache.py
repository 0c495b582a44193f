"""The compiled dual is shared by problems of the same structure: a repeated fit compiles
nothing, gives what a fresh compilation gives, and never reads another problem's data."""

import numpy as np
import pytest

from pymc_maxent import compilation
from pymc_maxent.maxent import Constraint, MaxEntEstimator, Revenue
from pymc_maxent.maxent import population_dual as dual


@pytest.fixture
def empty_cache(monkeypatch):
    monkeypatch.setattr(dual, "_COMPILED", {})


def test_same_structure_reuses_and_matches_a_fresh_compilation(travel_mode, empty_cache):
    first, second = travel_mode.subset(slice(0, 150)), travel_mode.subset(slice(60, 210))
    a = MaxEntEstimator(first)
    b = MaxEntEstimator(second)
    assert not a.dual.reused and b.dual.reused and len(dual._COMPILED) == 1
    fit_a, fit_b = a.fit(), b.fit()
    p_a = fit_a.predict().values
    dual._COMPILED.clear()  # a fresh compilation for the second data set
    fresh = MaxEntEstimator(second)
    assert not fresh.dual.reused
    np.testing.assert_allclose(fit_b.beta, fresh.fit().beta, rtol=1e-12, atol=1e-15)
    # the first problem still reads its own containers after the second was fitted
    np.testing.assert_array_equal(a.fit().beta, fit_a.beta)
    np.testing.assert_array_equal(fit_a.predict().values, p_a)
    assert not np.allclose(fit_a.beta, fit_b.beta)


def test_other_structures_and_user_constraints_compile_their_own(travel_mode, empty_cache):
    MaxEntEstimator(travel_mode)
    assert not MaxEntEstimator(travel_mode, [Revenue("gc")]).dual.reused  # other moments
    assert not MaxEntEstimator(travel_mode, error_support=None).dual.reused  # no noise term
    assert not MaxEntEstimator(travel_mode.select_attributes(["gc", "ttme"])).dual.reused  # other K
    user = [Revenue("gc"), Constraint("total ttme", lambda c, p, e: (c.X[:, :, 1] * (p + e)).sum())]
    first = MaxEntEstimator(travel_mode, user)
    assert first.dual.structure() is None
    assert not MaxEntEstimator(travel_mode, user).dual.reused



def test_a_small_problem_is_interpreted_first_and_compiled_once_it_is_refitted_often(travel_mode, empty_cache,
                                                                                  monkeypatch):
    first = MaxEntEstimator(travel_mode)
    assert first.dual.compiled.kind == "interpreted"  # 210 × 4 cells
    interpreted = first.fit()
    calls = first.dual.compiled.calls
    assert 0 < calls < dual.PROMOTE_AFTER_CALLS
    assert MaxEntEstimator(travel_mode).dual.reused  # under PROMOTE_AFTER_CALLS: reused
    monkeypatch.setattr(dual, "PROMOTE_AFTER_CALLS", calls)
    promoted = MaxEntEstimator(travel_mode)
    assert not promoted.dual.reused and promoted.dual.compiled.kind == "compiled"
    assert MaxEntEstimator(travel_mode).dual.reused  # the compiled functions are kept
    compiled = promoted.fit()
    np.testing.assert_allclose(compiled.beta, interpreted.beta, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(compiled.covariance_matrix(robust=True),
                               interpreted.covariance_matrix(robust=True), rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(compiled.predict().values, interpreted.predict().values,
                               rtol=1e-10, atol=1e-14)


def test_a_large_problem_is_compiled_at_once(travel_mode, empty_cache, monkeypatch):
    monkeypatch.setattr(compilation, "INTERPRETED_CELLS", 100)
    assert MaxEntEstimator(travel_mode).dual.compiled.kind == "compiled"
