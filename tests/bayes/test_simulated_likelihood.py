"""The minibatch mixed logit's integrated likelihood Op against its graph formulation."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pymc_maxent.bayes.integrated_likelihood import SimulatedLogLikelihood, simulated_log_likelihood_graph


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(0)
    b, T, J, D, Q = 6, 4, 4, 3, 9
    V = rng.normal(size=(b, T, J)) * 3
    Z = rng.normal(size=(b, T, J, D)) * [1.0, 8.0, 1.0]  # a price-like column
    available = rng.random((b, T, J)) > 0.25
    available[..., 1] = True
    available[0, 3] = [True, False, False, False]  # a padded situation: log-probability 0
    chosen = np.array([[rng.choice(np.flatnonzero(a)) for a in row] for row in available])
    theta = rng.normal(size=(Q, D)) * [2.0, 0.3, 5.0] + [0.0, -1.0, -10.0]
    log_w = np.log(rng.dirichlet(np.ones(Q)))
    return V, Z, available, chosen, theta, log_w


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_RUN", "FAST_COMPILE"])
def test_op_equals_the_graph_with_its_gradients(panel, mode):
    V, Z, available, chosen, theta, log_w = panel
    v, th = pt.tensor3("v"), pt.matrix("th")
    g = np.random.default_rng(1).normal(size=V.shape[0])
    fused = SimulatedLogLikelihood()(v, Z, available, chosen, th, log_w)[0]
    graph = simulated_log_likelihood_graph(v, Z, available, chosen, th, log_w)
    outputs = [[ll, *pytensor.grad((ll * g).sum(), [v, th])] for ll in (fused, graph)]
    got, want = (pytensor.function([v, th], out, mode=mode)(V, theta) for out in outputs)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert np.isfinite(got[0]).all()


def test_one_node_is_the_product_of_logit_probabilities(panel):
    V, Z, available, chosen, theta, _ = panel
    ll = SimulatedLogLikelihood()(V, Z, available, chosen, theta[:1], np.zeros(1))[0].eval()
    U = np.where(available, V + Z @ theta[0], -np.inf)
    log_p = U - np.logaddexp.reduce(U, axis=-1, keepdims=True)
    np.testing.assert_allclose(ll, np.take_along_axis(log_p, chosen[..., None], -1)[..., 0].sum(axis=1),
                               rtol=1e-12)


def test_gradient_matches_finite_differences(panel):
    V, Z, available, chosen, theta, log_w = panel
    th = pt.matrix("th")
    ll = SimulatedLogLikelihood()(V, Z, available, chosen, th, log_w)[0].sum()
    f = pytensor.function([th], [ll, pytensor.grad(ll, th)])
    value, grad = f(theta)
    h = 1e-6
    for r, d in [(0, 0), (3, 1), (8, 2)]:
        step = np.zeros_like(theta)
        step[r, d] = h
        numeric = (f(theta + step)[0] - f(theta - step)[0]) / (2 * h)
        np.testing.assert_allclose(grad[r, d], numeric, rtol=1e-5, atol=1e-8)
