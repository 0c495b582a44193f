"""Property-based tests of the MaxEnt dual on random valid problems (hypothesis).

Each example simulates a conditional logit with random coefficients on realistic scales:
continuous attributes with means around 100 and standard deviations around 25, beside a 0/1
dummy, random availability with at least two alternatives per situation. Shapes come from a
small set (J in {3, 4}, K in {2, 3}, N in {40, 80}) and one compiled estimator per (J, K) is
reused, the examples' data swapped into its containers.
"""

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pymc_maxent import ChoiceData
from pymc_maxent.exceptions import IdentificationWarning
from pymc_maxent.maxent import MaxEntEstimator

EXAMPLES = settings(max_examples=25, deadline=None)
_ESTIMATORS: dict = {}


def simulate(seed: int, n: int, J: int, K: int) -> ChoiceData:
    """A conditional logit: ``K − 1`` continuous attributes (means ~100, sds ~25) and a dummy,
    coefficients of about unit effect per sd, alternative-specific constants, ≥ 2 available."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(60, 140, size=K - 1)
    sds = rng.uniform(15, 35, size=K - 1)
    continuous = means + sds * rng.standard_normal((n, J, K - 1))
    dummy = rng.integers(0, 2, size=(n, J, 1)).astype(float)
    X = np.concatenate([continuous, dummy], axis=-1)
    beta = np.r_[rng.uniform(-1.5, 1.5, K - 1) / sds, rng.uniform(-1.5, 1.5)]
    asc = np.r_[rng.normal(0, 0.5, J - 1), 0.0]
    available = rng.random((n, J)) < 0.8
    first_two = np.argsort(rng.random((n, J)), axis=1)[:, :2]
    available[np.arange(n)[:, None], first_two] = True
    U = X @ beta + asc + rng.gumbel(size=(n, J))
    chosen = np.where(available, U, -np.inf).argmax(axis=1)
    return ChoiceData.from_arrays(X, chosen, available=available, alternatives=[f"a{j}" for j in range(J)],
                                  attributes=[f"x{k}" for k in range(K)])


def fit(data: ChoiceData):
    """The default moments (attribute sums, shares) under the default noise, on the estimator of
    the data's shape."""
    key = (data.n_alternatives, data.n_attributes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentificationWarning)  # a rare alternative, in 40 draws
        if key not in _ESTIMATORS:
            _ESTIMATORS[key] = MaxEntEstimator(data)
            return _ESTIMATORS[key], _ESTIMATORS[key].fit()
        return _ESTIMATORS[key], _ESTIMATORS[key].fit(data=data)


def features(data: ChoiceData) -> np.ndarray:
    """The default moments' features, built here from the data: attributes, then the indicators
    of every alternative but the last."""
    N, J = data.available.shape
    shares = np.broadcast_to(np.eye(J)[:, :-1], (N, J, J - 1))
    return np.concatenate([data.X, shares], axis=-1)


problems = st.builds(simulate, seed=st.integers(0, 2**32 - 1), n=st.sampled_from([40, 80]),
                     J=st.sampled_from([3, 4]), K=st.sampled_from([2, 3]))


@EXAMPLES
@given(data=problems)
def test_dual_converges_and_meets_every_constraint(data):
    _, res = fit(data)
    assert res.converged, res.message
    F, avail = features(data), data.available
    # residuals relative to each moment's spread within situations (its reachable width)
    big = np.where(avail[..., None], F, -np.inf).max(axis=1)
    small = np.where(avail[..., None], F, np.inf).min(axis=1)
    spread = (big - small).sum(axis=0)
    resid = np.einsum("ijc,ij->c", F, data.chosen_onehot - res.p - res.eps)
    assert np.abs(resid / spread).max() < 1e-8
    assert np.abs(res.p.sum(axis=1) - 1.0).max() < 1e-8
    assert np.abs(res.w.sum(axis=-1)[avail] - 1.0).max() < 1e-8
    assert np.all(res.p[~avail] == 0) and np.all(res.p[avail] > 0)
    np.testing.assert_allclose(res.eps.sum(axis=1), 0.0, atol=1e-12)  # the noise, centred
    assert res.max_violation < 1e-8 * spread.max()


@EXAMPLES
@given(data=problems, k=st.integers(0, 2), factor=st.sampled_from([1e-3, 0.04, 25.0, 1e3]))
def test_rescaling_an_attribute_rescales_its_coefficient_and_se(data, k, factor):
    k = k % data.n_attributes
    est, res = fit(data)
    name = str(data.attributes[k])
    again = est.fit(data=data.with_attribute(name, data.attribute(name) * factor))
    assert res.converged and again.converged
    scale = np.ones(res.lam.size)
    scale[res.parameter_names().index(f"beta[{name}]")] = 1.0 / factor
    np.testing.assert_allclose(again.beta, res.beta * scale, rtol=1e-6)
    np.testing.assert_allclose(again.se, res.se * scale, rtol=1e-6)
    np.testing.assert_allclose(again.se_robust, res.se_robust * scale, rtol=1e-6)
