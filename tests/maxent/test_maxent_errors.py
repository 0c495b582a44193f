"""Bad supports and priors, infeasible moments and non-convergence: the package's error/warning."""

import numpy as np
import pytest

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import ChoiceDataError, ConvergenceWarning, MaxEntError, PymcMaxentError
from pymc_maxent.maxent import AlternativeShares, AttributeSums, Constraint, Revenue, fit_maxent
from pymc_maxent.maxent.estimator import MaxEntEstimator
from pymc_maxent.simulate import simulate_choices


@pytest.fixture(scope="module")
def data():
    return simulate_choices("MNL-2", n_individuals=60, n_alternatives=3, n_attributes=2, seed=2)[0]


@pytest.mark.parametrize("support, match", [
    ([0.0, 1.0], "strictly inside"),
    ([0.5], "at least 2 points"),
    ([-1.0, np.nan, 1.0], "non-finite"),
    ([-1.0, 1.0, 1.0], "repeated"),
])
def test_bad_error_support(data, support, match):
    with pytest.raises(MaxEntError, match=match):
        MaxEntEstimator(data, [Revenue("x0")], error_support=support)


@pytest.mark.parametrize("support, match", [
    ([-0.1, 1.0], r"in \[0, 1\]"),
    ([0.0, 0.2], "add up to 1"),
    ([0.7, 1.0], "add up to 1"),
])
def test_bad_probability_support(data, support, match):
    with pytest.raises(MaxEntError, match=match):
        MaxEntEstimator(data, [Revenue("x0")], probability_support=support)


@pytest.mark.parametrize("kwargs, match", [
    ({"w0": [0.5, 0.6, -0.1]}, "w0 must be positive"),
    ({"w0": [0.3, 0.3, 0.3]}, "w0 must sum to one"),
    ({"w0": [0.5, 0.5]}, r"w0 must have shape \(3,\)"),
    ({"p0": [0.2, 0.2, 0.2]}, "p0 must sum to one"),
    ({"p0": [0.5, 0.5, 0.0]}, "p0 must be positive"),
    ({"probability_support": [0, 0.5, 1], "pi0": [0.2, 0.2, 0.2]}, "pi0 must sum to one"),
    ({"error_support": None, "w0": [0.5, 0.5]}, "without an error support"),
])
def test_bad_priors(data, kwargs, match):
    with pytest.raises(MaxEntError, match=match):
        MaxEntEstimator(data, [Revenue("x0")], **kwargs)


def test_maxent_error_is_a_package_error_not_a_data_error():
    assert issubclass(MaxEntError, PymcMaxentError) and issubclass(MaxEntError, ValueError)
    assert not issubclass(MaxEntError, ChoiceDataError)


def test_moment_out_of_reach(data):
    def revenue(c, p, eps):
        return (c.X[:, :, 0] * (p + eps)).sum()

    too_high = float(np.abs(data.X[..., 0]).sum() * 2)
    with pytest.raises(MaxEntError, match=r"constraint\[rev\].*outside"):
        fit_maxent(data, [Constraint("rev", revenue, target=too_high)])


def test_never_chosen_alternative_without_noise_is_infeasible(data):
    keep = data.chosen != 0
    sub = ChoiceData.from_arrays(data.X[keep], data.chosen[keep], alternatives=data.alternatives,
                                 attributes=data.attributes)
    with pytest.raises(MaxEntError, match=r"share\[alt0\].*edge"):
        fit_maxent(sub, [AttributeSums(), AlternativeShares()], error_support=None)
    # with the noise term the share is reachable again: a finite answer
    res = fit_maxent(sub, [AttributeSums(), AlternativeShares()])
    assert res.converged and np.isfinite(res.beta).all()


def test_nonlinear_constraint_needs_primal(data):
    def quadratic(c, p, eps):
        return ((p + eps) ** 2).sum()

    with pytest.raises(MaxEntError, match="linear in"):
        fit_maxent(data, [Revenue("x0"), Constraint("sq", quadratic)])


def test_duplicate_moments(data):
    with pytest.raises(MaxEntError, match="given twice"):
        MaxEntEstimator(data, [Revenue("x0"), AttributeSums(["x0"])])


def test_non_convergence_warns(data):
    est = MaxEntEstimator(data)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = est.fit(maxiter=1)
    assert not res.converged
    assert res.message.startswith("not converged: max relative moment residual")


def test_unknown_solver(data):
    with pytest.raises(MaxEntError, match="solver"):
        fit_maxent(data, solver="newton")


def test_unknown_on_unidentified(data):
    with pytest.raises(MaxEntError, match="on_unidentified"):
        fit_maxent(data, on_unidentified="ignore")


def test_converged_message_says_what_held(data):
    """A converged fit reports its criterion, not SciPy's last trust-region message."""
    for moments in (None, [Revenue("x0")], [AttributeSums(), AlternativeShares()]):
        for error_support in ("default", None):
            res = fit_maxent(data, moments, error_support=error_support)
            assert res.converged
            assert res.message.startswith("converged: max relative moment residual")
            assert "<= tol" in res.message and "bad approximation" not in res.message
