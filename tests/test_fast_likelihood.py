"""The fast formulation of the random utility gives the plain formulation's logp and
gradient (to 1e-10) for every tier, correlated or not, and for a specification that mixes
generic and alternative-specific random coefficients over non-contiguous attributes."""

import numpy as np
import pytest
from pytensor.compile.mode import Mode

import pymc_maxent as pmx
from pymc_maxent.bayes.likelihood import plain_likelihood, uses_fast_likelihood

TIERS = ["MNL-1", "MNL-2", "MNL-3", "MXL-1", "MXL-2", "MXL-3", "MXL-4"]


@pytest.fixture(scope="module")
def data():
    data, _ = pmx.simulate_choices("MNL-2", n_individuals=9, n_situations=3, n_alternatives=4,
                                   n_attributes=3, unavailable=0.3, seed=5)
    return data


def logp_and_gradient(model, points):
    # the rewritten graph on Python implementations: no C compilation to wait for in CI
    f = model.compile_fn([model.logp(), model.dlogp()], mode=Mode(linker="py", optimizer="fast_run"))
    return [f(p) for p in points]


def random_points(model, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [{k: rng.normal(scale=0.8, size=v.shape) for k, v in model.initial_point().items()}
            for _ in range(n)]


def assert_same(data, spec):
    fast = pmx.build_model(data, spec, store_probabilities=False)
    with plain_likelihood():
        plain = pmx.build_model(data, spec, store_probabilities=False)
    points = random_points(fast)
    for (lf, gf), (lp, gp) in zip(logp_and_gradient(fast, points), logp_and_gradient(plain, points),
                                  strict=True):
        assert np.isfinite(lf) and np.all(np.isfinite(gf))
        np.testing.assert_allclose(lf, lp, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gf, gp, rtol=1e-10, atol=1e-10)
        assert np.abs(gf).max() > 1e-3  # the gradient is not trivially zero


@pytest.mark.parametrize("correlated", [False, True])
@pytest.mark.parametrize("tier", TIERS)
def test_fast_matches_plain(data, tier, correlated):
    if correlated and tier.startswith("MNL"):
        pytest.skip("no random coefficients")
    spec = pmx.tier_spec(tier, ["x0", "x2"], correlated=correlated,
                         random={"x0": "neg_lognormal", "x2": "normal"}, reference="alt1")
    assert_same(data, spec)


def test_fast_matches_plain_mixed_layout(data):
    """Generic and alternative-specific random coefficients over columns 2 and 0 (a copy,
    not a slice), next to a fixed one."""
    spec = pmx.ModelSpec((pmx.Coefficient("x2", random="normal"),
                          pmx.Coefficient("x1"),
                          pmx.Coefficient("x0", alternative_specific=True, random="lognormal")),
                         constants="random")
    assert_same(data, spec)


def test_plain_context_is_scoped():
    assert uses_fast_likelihood()
    with plain_likelihood():
        assert not uses_fast_likelihood()
    assert uses_fast_likelihood()
