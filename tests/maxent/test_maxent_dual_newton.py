"""The dual's damped Newton solver gives the estimates of the former scaled trust region, in
fewer iterations on the realistic electricity design, whatever the moments' scales."""

import warnings

import numpy as np
import pytest

from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError
from pymc_maxent.maxent import Constraint, MaxEntEstimator, Revenue, load_fit
from pymc_maxent.numerics import newton_direction
from pymc_maxent.simulate import simulate_electricity_panel


def both_methods(est, **fit):
    """The fits by damped Newton and by the former trust region (no warning allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return est.fit(**fit), est.fit(dual_method="trust-exact", **fit)


def assert_same_estimates(new, old):
    assert new.converged and old.converged
    np.testing.assert_allclose(new.lam, old.lam, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(new.p, old.p, rtol=0, atol=1e-8)


@pytest.fixture(scope="module")
def electricity():
    """Seed 3 of the electricity design: the trust region spends 20 iterations on it."""
    data, _, _ = simulate_electricity_panel(seed=3)
    return data


@pytest.mark.parametrize("options", [{}, {"probability_support": [0.0, 0.5, 1.0]}],
                         ids=["default", "support-points"])
def test_travel_mode_same_estimates_as_trust_region(travel_mode, options):
    new, old = both_methods(MaxEntEstimator(travel_mode, **options))
    assert_same_estimates(new, old)
    assert new.nit <= old.nit


def test_travel_mode_user_constraint_same_estimates(travel_mode):
    moments = [Revenue("gc"), Constraint("total ttme", lambda c, p, e: (c.X[:, :, 1] * (p + e)).sum())]
    new, old = both_methods(MaxEntEstimator(travel_mode, moments))
    assert_same_estimates(new, old)


def test_electricity_same_estimates_in_fewer_iterations(electricity):
    new, old = both_methods(MaxEntEstimator(electricity))
    assert_same_estimates(new, old)
    assert new.nit <= 8
    assert new.nit < old.nit
    assert new.max_violation < 1e-9 * electricity.n_situations


def test_newton_steps_do_not_depend_on_the_moments_units(electricity):
    """Newton's steps are affine invariant: prices in dollars per MWh (×10) and shifted by
    100 take the same steps and give the same fitted probabilities."""
    k = electricity.attribute_index("pf")
    moved = electricity.with_attribute("pf", 10.0 * electricity.X[..., k] + 100.0)
    base, other = MaxEntEstimator(electricity).fit(), MaxEntEstimator(moved).fit()
    assert other.converged and other.nit == base.nit
    np.testing.assert_allclose(other.p, base.p, rtol=0, atol=1e-8)


def test_non_convergence_is_reported(electricity):
    est = MaxEntEstimator(electricity)
    with pytest.warns(ConvergenceWarning, match="newton: maxiter=2"):
        res = est.fit(maxiter=2)
    assert not res.converged and res.nit == 2 and "not converged" in res.message


def test_unknown_method_is_refused(travel_mode):
    with pytest.raises(MaxEntError, match="'bfgs'"):
        MaxEntEstimator(travel_mode).fit(dual_method="bfgs")


def test_newton_direction_descends_on_a_singular_hessian():
    """A moment repeated twice: the Hessian is singular; the shifted factor still gives a
    finite descent direction, and the exact Newton step on a regular Hessian."""
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    g = np.array([1.0, -2.0])
    np.testing.assert_allclose(newton_direction(g, a), np.linalg.solve(a, g), rtol=1e-12)
    singular = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1e6]])
    g = np.array([1.0, 1.0, 5.0])
    step = newton_direction(g, singular)
    assert np.all(np.isfinite(step)) and g @ step > 0


def test_refit_and_reload_keep_the_solver_settings(electricity):
    """A refit (cross-validation) solves with the fit's own ``dual_method``, ``tol`` and
    ``maxiter``: a trust-region fit's refit takes the trust region's iterations, and a fit
    stopped at ``maxiter=2`` is refitted under the same cap (so reported unconverged again)."""
    from pymc_maxent.maxent import fit_maxent

    half = electricity.subset(np.arange(electricity.n_situations) % 2 == 0)
    old = fit_maxent(electricity, dual_method="trust-exact", tol=1e-9)
    refit = old.refit(half)
    direct = MaxEntEstimator(half).fit(dual_method="trust-exact", tol=1e-9)
    expected = {"tol": 1e-9, "maxiter": 100, "on_unidentified": "warn", "dual_method": "trust-exact"}
    assert refit.solve_options == old.solve_options == expected
    assert refit.nit == direct.nit > MaxEntEstimator(half).fit().nit
    with pytest.warns(ConvergenceWarning):
        capped = fit_maxent(electricity, maxiter=2)
    with pytest.warns(ConvergenceWarning):
        assert not capped.refit(half).converged
    again = load_fit(old.to_datatree(), electricity, old.spec, **old.settings())
    assert again.solve_options == old.solve_options
