"""Covariances do not depend on the units of the data; collinear moments are flagged."""

import warnings

import numpy as np
import pytest

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import IdentificationWarning, ScaleWarning, SpecificationError
from pymc_maxent.maxent import AlternativeShares, AttributeSums, fit_maxent
from pymc_maxent.numerics import MAX_CONDITION, covariance

N, J = 500, 3
BETA = np.array([-1.0, 0.5])
ASC = np.array([0.4, -0.3, 0.0])


def simulate(seed=0):
    """A conditional logit with known coefficients: X (N, J, 2) and the choices."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, J, 2))
    chosen = (X @ BETA + ASC + rng.gumbel(size=(N, J))).argmax(axis=1)
    return X, chosen


def data_of(X, chosen, attributes=("a", "b")):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScaleWarning)
        return ChoiceData.from_arrays(X, chosen, attributes=list(attributes), check_identified=False)


def test_covariance_inverts_through_the_jacobi_scaling():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(4, 4))
    H = A @ A.T + 4 * np.eye(4)
    s = np.array([1e6, 1e-6, 1.0, 1e3])
    cov, cond = covariance(H)
    cov_s, cond_s = covariance(H * np.outer(s, s))  # the same problem in other units
    np.testing.assert_allclose(cov @ H, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(cov_s * np.outer(s, s), cov, rtol=1e-12)
    assert cond_s == pytest.approx(cond, rel=1e-12)
    assert np.isinf(covariance(np.array([[1.0, 2.0], [2.0, 4.0]]))[1])


@pytest.mark.parametrize("error_support", ["default", None], ids=["noise", "no-noise"])
def test_standard_errors_scale_with_the_data(error_support):
    X, chosen = simulate()
    scale = np.array([1e6, 1e-6])
    moments = [AttributeSums(), AlternativeShares()]
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentificationWarning)
        plain = fit_maxent(data_of(X, chosen), moments, error_support=error_support)
        scaled = fit_maxent(data_of(X * scale, chosen), moments, error_support=error_support)
    assert plain.converged and scaled.converged and plain.identified and scaled.identified
    factor = np.concatenate([scale, np.ones(J - 1)])  # β_scaled = β / s, the constants unchanged
    np.testing.assert_allclose(scaled.beta * factor, plain.beta, rtol=1e-8)
    np.testing.assert_allclose(scaled.se * factor, plain.se, rtol=1e-8)
    np.testing.assert_allclose(scaled.se_robust * factor, plain.se_robust, rtol=1e-8)
    np.testing.assert_allclose(scaled.p, plain.p, atol=1e-10)
    assert scaled.condition_number == pytest.approx(plain.condition_number, rel=1e-6)
    assert plain.condition_number < 100
    # and the estimates recover the simulated coefficients
    np.testing.assert_array_less(np.abs(plain.beta[:2] - BETA), 4 * plain.se[:2] + 0.05)


def collinear(shift):
    X, chosen = simulate(seed=2)
    x1 = X[..., 0]
    return data_of(np.stack([x1, 2 * x1 + shift, X[..., 1]], axis=-1), chosen, ("x1", "x2", "x3"))


@pytest.mark.filterwarnings("ignore::pymc_maxent.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("error_support", ["default", None], ids=["noise", "no-noise"])
@pytest.mark.parametrize("shift", [0.0, 3.0], ids=["2x1", "2x1+3"])
def test_collinear_attributes_are_not_identified(shift, error_support):
    data = collinear(shift)
    moments = [AttributeSums(), AlternativeShares()]
    with pytest.warns(IdentificationWarning, match="not identified") as record:
        res = fit_maxent(data, moments, error_support=error_support)
    text = str(record[0].message)
    assert "beta[x1]" in text and "beta[x2]" in text and "beta[x3]" not in text
    assert not res.identified and "NOT identified" in res.message
    assert res.information_condition_number > MAX_CONDITION
    with pytest.raises(SpecificationError, match=r"not identified.*beta\[x"):
        fit_maxent(data, moments, error_support=error_support, on_unidentified="raise")


def test_identified_fit_does_not_warn(travel_mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentificationWarning)
        res = fit_maxent(travel_mode)
    assert res.identified and np.isfinite(res.condition_number)
    assert res.condition_number <= MAX_CONDITION
