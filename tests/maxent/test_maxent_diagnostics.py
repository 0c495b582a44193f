"""Information measures, masking of unavailable alternatives, priors (cross entropy)."""

import numpy as np
import pytest
from scipy import stats

from pymc_maxent.maxent import AlternativeShares, AttributeSums, CrossMoments, MaxEntEstimator, fit_maxent
from pymc_maxent.simulate import simulate_choices


@pytest.fixture(scope="module")
def balanced():
    data, _ = simulate_choices("MNL-2", n_individuals=300, n_alternatives=4, n_attributes=2, seed=8)
    return data, fit_maxent(data)


def test_entropy_measures(balanced):
    data, res = balanced
    N, J = data.n_situations, data.n_alternatives
    h = -(res.p * np.log(res.p)).sum()
    assert res.entropy == pytest.approx(h)
    assert res.normalized_entropy == pytest.approx(h / (N * np.log(J)))
    np.testing.assert_allclose(res.normalized_entropy_situation,
                               -(res.p * np.log(res.p)).sum(axis=1) / np.log(J))
    assert res.information_index == pytest.approx(1 - res.normalized_entropy)
    assert 0 < res.normalized_entropy < 1
    # entropy ratio against the uniform model: 2 N ln J (1 − S), χ² with one dof per moment
    assert res.entropy_ratio == pytest.approx(2 * N * np.log(J) * (1 - res.normalized_entropy))
    assert res.entropy_ratio_dof == 2 + 3
    assert res.entropy_ratio_pvalue == pytest.approx(stats.chi2.sf(res.entropy_ratio, 5))
    ll = np.log(res.p[np.arange(N), data.chosen]).sum()
    assert res.loglik == pytest.approx(ll)
    assert res.pseudo_r2 == pytest.approx(1 - ll / (-N * np.log(J)))
    assert res.hit_rate == pytest.approx(np.mean(res.p.argmax(1) == data.chosen))
    assert 0 < res.normalized_entropy_error <= 1
    # strong duality: the cross-entropy objective is minus the dual's value
    assert res.kl == pytest.approx(-res.dual_value, rel=1e-8)
    summary = res.summary()
    assert list(summary.index) == ["beta[x0]", "beta[x1]", "alpha[alt0]", "alpha[alt1]", "alpha[alt2]"]
    assert np.all(summary["se"] > 0) and np.all(summary["se_robust"] > 0)


def test_unavailable_alternatives_get_no_mass():
    data, _ = simulate_choices("MNL-2", n_individuals=200, n_alternatives=4, n_attributes=2,
                               unavailable=0.35, seed=4)
    for support in (None, [0.0, 0.5, 1.0]):
        res = fit_maxent(data, probability_support=support)
        assert res.converged
        assert np.all(res.p[~data.available] == 0) and np.all(res.eps[~data.available] == 0)
        assert np.all(res.w[~data.available] == 0)
        for arr in (res.p, res.eps, res.w, res.normalized_entropy_situation, res.se, res.se_robust):
            assert np.isfinite(arr).all()
        np.testing.assert_allclose(res.p.sum(1), 1, atol=1e-9)
        J_i = data.available.sum(1)
        h_i = -np.where(res.p > 0, res.p * np.log(np.where(res.p > 0, res.p, 1)), 0).sum(1)
        np.testing.assert_allclose(res.normalized_entropy_situation, h_i / np.log(J_i))


def test_prior_p0_is_cross_entropy(balanced):
    data, res = balanced
    # a prior equal to the fitted p: the same constraints add no information, λ = 0 at p0 ...
    est = MaxEntEstimator(data, p0=res.p, error_support=None)
    again = est.fit()
    p_mle = MaxEntEstimator(data, error_support=None).fit().p
    # ... not exactly (no noise now), but a prior that already meets the moments gives λ = 0
    est_exact = MaxEntEstimator(data, p0=p_mle, error_support=None)
    exact = est_exact.fit()
    np.testing.assert_allclose(exact.lam, 0, atol=1e-7)
    np.testing.assert_allclose(exact.p, p_mle, atol=1e-9)
    assert exact.kl == pytest.approx(0, abs=1e-9)
    assert again.converged and again.kl > 0
    # error prior: weight on the zero point shrinks the noise
    w0 = MaxEntEstimator(data, w0=[0.05, 0.9, 0.05]).fit()
    assert np.abs(w0.eps).max() < np.abs(res.eps).max()


def test_cross_moments_alternative_specific():
    """Cross moments of an individual covariate: alternative-specific coefficients, the
    reference left out, as the Bayesian builder labels them."""
    rng = np.random.default_rng(0)
    N, J = 400, 3
    inc = rng.normal(size=N)
    X = np.stack([rng.normal(size=(N, J)), np.repeat(inc[:, None], J, 1)], axis=-1)
    U = X[..., 0] * -1.0 + inc[:, None] * np.array([0.8, -0.5, 0.0]) + rng.gumbel(size=(N, J))
    from pymc_maxent.data.choice_data import ChoiceData

    data = ChoiceData.from_arrays(X, U.argmax(1), attributes=["price", "income"],
                                  alternatives=["a", "b", "c"])
    res = fit_maxent(data, [AttributeSums(["price"]), CrossMoments("income"), AlternativeShares()],
                     error_support=None)
    assert res.parameter_names()[:3] == ["beta[price]", "beta[income[a]]", "beta[income[b]]"]
    assert res.beta[1] > 0.4 and res.beta[2] < -0.2
