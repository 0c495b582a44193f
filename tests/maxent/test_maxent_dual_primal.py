"""Dual and primal MaxEnt solutions agree; the constraints hold; the Hessian is the graph's."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pymc_maxent.maxent import AlternativeShares, AttributeSums, Constraint, MaxEntEstimator, Revenue
from pymc_maxent.simulate import simulate_choices


@pytest.fixture(scope="module")
def small():
    data, _ = simulate_choices("MNL-2", n_individuals=20, n_alternatives=3, n_attributes=2, seed=3)
    return data


def _moment_residual(data, res, features):
    y = data.chosen_onehot
    return np.abs(np.einsum("ijc,ij->c", features, y - res.p - res.eps))


@pytest.mark.parametrize("support", [None, [0.0, 0.5, 1.0]], ids=["direct", "support-points"])
@pytest.mark.parametrize("family", ["revenue", "moments"])
def test_dual_and_primal_agree(small, support, family):
    moments = [Revenue("x0")] if family == "revenue" else [AttributeSums(), AlternativeShares()]
    est = MaxEntEstimator(small, moments, probability_support=support)
    dual = est.fit()
    primal = est.fit(solver="primal")
    assert dual.converged and primal.converged
    np.testing.assert_allclose(dual.p, primal.p, atol=1e-6)
    np.testing.assert_allclose(dual.eps, primal.eps, atol=1e-6)
    np.testing.assert_allclose(dual.lam, primal.lam, rtol=1e-4, atol=1e-5)
    # constraints at the dual solution, recomputed here from the data
    F = small.X[..., :1] if family == "revenue" else np.concatenate(
        [small.X, np.broadcast_to(np.eye(3)[:, :2], (small.n_situations, 3, 2))], axis=-1)
    assert _moment_residual(small, dual, F).max() < 1e-8
    assert np.abs(dual.p.sum(axis=1) - 1).max() < 1e-8
    assert np.abs(dual.w.sum(axis=-1) - 1).max() < 1e-8
    assert dual.max_violation < 1e-8
    if support is not None:  # p is the support expectation of π
        np.testing.assert_allclose((dual.pi * np.asarray(support)).sum(-1), dual.p, atol=1e-12)
        np.testing.assert_allclose(dual.pi, primal.pi, atol=1e-5)


def test_support_point_zero_noise_is_not_a_softmax(small):
    """In the note's form the zero-noise solution differs from the logit (and from GJP's)."""
    est = MaxEntEstimator(small, [AttributeSums(), AlternativeShares()], probability_support=[0, 0.5, 1],
                          error_support=None)
    res = est.fit()
    gjp = MaxEntEstimator(small, [AttributeSums(), AlternativeShares()], error_support=None).fit()
    assert res.converged and np.abs(res.p - gjp.p).max() > 1e-3
    np.testing.assert_allclose(res.p, est.fit(solver="primal").p, atol=1e-6)


def test_user_constraint_dual_primal(small):
    """A linear user constraint (the share of alternative 0 weighted by x1) in both solvers."""
    def weighted(c, p, eps):
        return (c.X[:, 0, 1] * (p + eps)[:, 0]).sum()

    est = MaxEntEstimator(small, [AttributeSums(["x0"]), Constraint("w0", weighted)])
    dual, primal = est.fit(), est.fit(solver="primal")
    np.testing.assert_allclose(dual.p, primal.p, atol=1e-6)
    target = (small.X[:, 0, 1] * small.chosen_onehot[:, 0]).sum()
    assert abs((small.X[:, 0, 1] * (dual.p + dual.eps)[:, 0]).sum() - target) < 1e-8
    assert dual.parameter_names() == ["beta[x0]", "gamma[w0]"]


def first_price_share(c, p, eps):
    """A user constraint: the first attribute of alternative 0, weighted by its share."""
    return (c.X[:, 0, 0] * (p + eps)[:, 0]).sum()


@pytest.mark.parametrize("user, centre_noise", [(False, True), (False, False), (True, True)],
                         ids=["centred", "uncentred", "user-constraint"])
def test_hessian_is_the_graphs(small, user, centre_noise):
    """The closed-form Hessian (one weighted product about the fitted mean; the noise's features
    centred or not; a user constraint's own noise features) is the graph's."""
    import warnings

    moments = [AttributeSums(), AlternativeShares()]
    moments += [Constraint("x0a", first_price_share)] if user else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # centre_noise=False warns
        est = MaxEntEstimator(small, moments, centre_noise=centre_noise)
    lam_value = np.array([0.3, -0.2, 0.1, 0.5, -0.4][:len(est.moments.labels)])
    lam = pt.vector("lam")
    value = est.dual.terms(lam, 0, small.n_situations)["value"]
    H_graph = pytensor.function([lam], pytensor.gradient.hessian(value, lam))(lam_value)
    _, g, H = est.dual.evaluate(lam_value, np.zeros(lam_value.size))
    np.testing.assert_allclose(H, H_graph, rtol=1e-10, atol=1e-12)
    g_graph = pytensor.function([lam], pytensor.grad(value, lam))(lam_value)
    np.testing.assert_allclose(g, g_graph, atol=1e-12)
    # the gradient is the constraint residual m − Σ F (p + ε), ε as it enters the moments
    res_p = est.dual.primal(lam_value)
    F = np.concatenate([small.X, np.broadcast_to(np.eye(3)[:, :2], (small.n_situations, 3, 2))], -1)
    if user:
        F = np.concatenate([F, (small.X[:, :, 0] * (np.arange(3) == 0))[:, :, None]], -1)
    np.testing.assert_allclose(g, np.einsum("ijc,ij->c", F, small.chosen_onehot - res_p["p"] - res_p["e"]),
                               atol=1e-10)
    if centre_noise:
        np.testing.assert_allclose(res_p["e"].sum(axis=1), 0.0, atol=1e-15)


def test_nonlinear_user_constraint_primal(small):
    """A nonlinear constraint, (Σ_i (p + ε)_i0)² = (Σ_i y_i0)², pins down the same set as the
    linear share of alternative 0: the primal meets it and finds the dual's linear solution."""
    def squared_share(c, p, eps):
        return (p + eps)[:, 0].sum() ** 2

    est = MaxEntEstimator(small, [AttributeSums(["x0"]), Constraint("sq", squared_share)])
    assert est.dual is None  # nonlinear: no dual
    res = est.fit(solver="primal")
    def share(c, p, eps):
        return (p + eps)[:, 0].sum()

    linear = MaxEntEstimator(small, [AttributeSums(["x0"]), Constraint("share", share)]).fit()
    assert res.converged and res.max_violation < 1e-8
    np.testing.assert_allclose(res.p, linear.p, atol=1e-6)


def test_primal_converges_on_travel_mode(travel_mode):
    """All 210 situations of TravelMode: with the constraint rows scaled to a largest coefficient
    of 1, trust-constr stops on its own criteria (status 2, measured) with the moments met to
    ~1e-11; it is the dual's solution. (Unscaled, it stopped on a collapsed trust region, status
    4, whose Lagrangian gradient, 1.8e-6 with the centred noise, missed the 1e-6 criterion.)"""
    import warnings

    from pymc_maxent.exceptions import ConvergenceWarning
    from pymc_maxent.maxent import fit_maxent

    data = travel_mode
    dual = fit_maxent(data, reference="car")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        primal = fit_maxent(data, reference="car", solver="primal")
    assert primal.converged and primal.max_violation < 1e-8
    assert primal.message.startswith("converged: max constraint violation")
    np.testing.assert_allclose(primal.p, dual.p, atol=1e-6)
    np.testing.assert_allclose(primal.beta, dual.beta, rtol=1e-5)
