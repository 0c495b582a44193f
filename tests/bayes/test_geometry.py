"""The sampling geometry of the random components (``parameterization``): the centring's
kernels and derivatives, its transform, and that it leaves the posterior as it was."""

import arviz as az
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import pymc_maxent as pmx
from pymc_maxent.bayes.geometry import (
    IndividualCentring,
    LaplaceCentring,
    laplace_centring_diagonal_pullback_kernel,
    laplace_centring_inverse_kernel,
    laplace_centring_kernel,
    laplace_centring_pullback_kernel,
    reference_centring,
)
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.simulate import RECOVERY_SIZES, simulate_electricity_panel

#: Small graphs evaluated once: Python's linker, no compilation.
FAST = pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile")


def problem(n=5, D=3, seed=0):
    rng = np.random.default_rng(seed)
    u, loc, b = (rng.normal(size=(n, D)) for _ in range(3))
    A = rng.normal(size=(D, D))
    H = np.stack([B @ B.T for B in rng.normal(size=(n, D, D))])
    H[0] = 0.0  # an individual without information: non-centred
    return u, loc, A @ A.T + np.eye(D), H, b


def numeric_gradient(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        g[idx] = (f(x + step) - f(x - step)) / (2 * eps)
    return g


def test_kernel_is_the_conditional_posterior_and_inverts():
    u, loc, Lam, H, b = problem()
    theta, logdet = laplace_centring_kernel(u, loc, Lam, H, b)
    for i in range(len(u)):
        P = H[i] + Lam
        K = np.linalg.cholesky(P)
        expected = np.linalg.solve(P, b[i] + Lam @ loc[i]) + np.linalg.solve(K.T, u[i])
        np.testing.assert_allclose(theta[i], expected)
    assert np.isclose(logdet, sum(np.linalg.slogdet(H[i] + Lam)[1] / 2 for i in range(len(u))))
    np.testing.assert_allclose(laplace_centring_inverse_kernel(theta, loc, Lam, H, b), u, atol=1e-12)


def test_pullback_kernels_match_finite_differences():
    u, loc, Lam, H, b = problem()
    lam = np.diag(Lam).copy()
    g_theta = np.random.default_rng(1).normal(size=u.shape)

    def objective(u, loc, Lam):
        theta, logdet = laplace_centring_kernel(u, loc, Lam, H, b)
        return (g_theta * theta).sum() + 0.7 * logdet

    g_u, g_loc, g_Lam = laplace_centring_pullback_kernel(u, loc, Lam, H, b, g_theta, 0.7)
    np.testing.assert_allclose(g_u, numeric_gradient(lambda v: objective(v, loc, Lam), u), atol=1e-6)
    np.testing.assert_allclose(g_loc, numeric_gradient(lambda v: objective(u, v, Lam), loc), atol=1e-6)
    d_u, d_loc, d_lam = laplace_centring_diagonal_pullback_kernel(u, loc, lam, H, b, g_theta, 0.7)
    numeric = numeric_gradient(lambda v: objective(u, loc, np.diag(v)), lam)
    np.testing.assert_allclose(d_lam, numeric, atol=1e-6)
    diagonal = laplace_centring_pullback_kernel(u, loc, np.diag(lam), H, b, g_theta, 0.7)
    np.testing.assert_allclose(d_u, diagonal[0])
    np.testing.assert_allclose(d_loc, diagonal[1])
    np.testing.assert_allclose(g_Lam, g_Lam.T)


@pytest.mark.parametrize("diagonal", [True, False])
def test_op_derivatives_match_the_graph_to_second_order(diagonal):
    _, _, _, H, b = problem(n=4, D=2)
    u, mu, s = pt.matrix("u"), pt.vector("mu"), pt.vector("s")
    Lam = s**-2.0 if diagonal else pt.diag(s**-2.0) + 0.1
    loc = pt.broadcast_to(mu, b.shape)
    rng = np.random.default_rng(2)
    values = [rng.normal(size=b.shape), rng.normal(size=2), rng.uniform(0.5, 2.0, 2)]
    results = []
    for centring in (LaplaceCentring(), reference_centring):
        theta, logdet = centring(u, loc, Lam, pt.as_tensor(H), pt.as_tensor(b))
        f = (theta**2).sum() + (theta * np.arange(b.size).reshape(b.shape)).sum() + 0.3 * logdet
        grads = pt.grad(f, [u, mu, s])
        hessian = pytensor.gradient.jacobian(pt.grad(f, s), [s, mu])
        results.append(pytensor.function([u, mu, s], [f, *grads, *hessian], mode=FAST)(*values))
    for op, graph in zip(*results, strict=True):
        np.testing.assert_allclose(op, graph, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("correlated", [False, True])
def test_transform_inverts_with_the_log_jacobian(correlated):
    u, _, _, H, b = problem(n=3, D=2)
    mu = np.array([0.3, -1.0])
    scale = np.array([[1.2, 0.0], [0.4, 0.7]]) if correlated else np.array([1.2, 0.7])
    transform = IndividualCentring(H, b, correlated)
    inputs = (None, pt.as_tensor(mu), pt.as_tensor(scale))
    value = pt.matrix("value")
    z = transform.backward(value, *inputs)
    back, log_det, jacobian = pytensor.function(
        [value], [transform.forward(z, *inputs), transform.log_jac_det(value, *inputs),
                  pytensor.gradient.jacobian(z.ravel(), value)], mode=FAST)(u)
    np.testing.assert_allclose(back, u, atol=1e-10)
    jacobian = jacobian.reshape(u.size, u.size)
    assert np.isclose(log_det, np.linalg.slogdet(jacobian)[1])


def test_parameterization_is_checked_and_wtp_space_stays_non_centred():
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=3, seed=1)
    with pytest.raises(SpecificationError, match="parameterization"):
        pmx.build_model(data, "MXL-1", parameterization="centered")
    default = pmx.build_model(data, "MXL-1")  # non-centred unless asked: "auto" is opt-in
    assert default.rvs_to_transforms[default["z"]] is None
    auto = pmx.build_model(data, "MXL-1", parameterization="auto")
    assert auto.rvs_to_transforms[auto["z"]].name == "centred"
    assert auto.rvs_to_transforms[auto["mu"]].name == "whitened"
    plain = pmx.build_model(data, "MXL-1", parameterization="non-centred")
    assert plain.rvs_to_transforms[plain["z"]] is None
    wtp = pmx.build_model(data, "MXL-1", space="wtp", price="x0", parameterization="auto")
    assert wtp.rvs_to_transforms[wtp["z"]] is None
    situation, _ = pmx.simulate_choices("MXL-4", n_individuals=20, n_situations=3, n_attributes=1, seed=1)
    mxl4 = pmx.build_model(situation, "MXL-4", parameterization="auto")  # situation deviations: non-centred
    assert mxl4.rvs_to_transforms[mxl4["z"]] is None


def sample(data, spec, seed, **build):
    model = pmx.build_model(data, spec, **build)
    return pmx.sample(model, draws=500, chains=2, random_seed=seed, progressbar=False,
                      idata_kwargs={"log_likelihood": False})


@pytest.mark.slow
def test_auto_gives_the_non_centred_posterior():
    """The same posterior of every μ and σ within Monte Carlo error (4 MCSEs of the
    difference), on a panel with known truth and informative individuals."""
    data, truth = pmx.simulate_choices("MXL-1", n_individuals=80, n_situations=10, n_alternatives=3,
                                       n_attributes=2, truth={"mu": [1.5, -1.0], "sigma": [1.0, 0.8]},
                                       seed=3)
    fits = [sample(data, "MXL-1", 3, parameterization=p) for p in ("auto", "non-centred")]
    for name in ("mu", "sigma"):
        (a, b) = (f["posterior"][name].mean(("chain", "draw")).values for f in fits)
        mcse = np.hypot(*(az.mcse(f["posterior"][name].to_dataset())[name].values for f in fits))
        assert (np.abs(a - b) < 4 * mcse).all(), f"{name}: auto {a}, non-centred {b}, MCSE {mcse}"
        sd = fits[1]["posterior"][name].std(("chain", "draw")).values
        assert (np.abs(a - truth[name]) < 3.5 * sd).all(), f"{name}: truth {truth[name]}, auto {a}"
    for fit in fits:
        assert int(fit["sample_stats"]["diverging"].sum()) <= 10


@pytest.mark.slow
def test_mxl4_defaults_recover_with_few_divergences():
    """MXL-4 under ``pmx.sample``'s defaults: the truth recovered, at most 1% of the
    transitions divergent."""
    I, T, J, K = RECOVERY_SIZES["MXL-4"]
    data, truth = pmx.simulate_choices("MXL-4", n_individuals=I, n_situations=T, n_alternatives=J,
                                       n_attributes=K, seed=11)
    model = pmx.build_model(data, "MXL-4")
    idata = pmx.sample(model, draws=500, chains=2, random_seed=11, progressbar=False)
    divergent = float(idata["sample_stats"]["diverging"].mean())
    assert divergent <= 0.01, f"{divergent:.1%} divergent"
    health = pmx.PosteriorFit(model, idata, data).convergence()  # leapfrog steps and depth reported
    assert health["steps_per_draw"] == pytest.approx(float(idata["sample_stats"]["n_steps"].mean()))
    assert 1 <= health["tree_depth"] <= 10
    assert health["divergences"] == int(idata["sample_stats"]["diverging"].sum())
    for name in ("mu", "sigma", "sigma_situation"):
        post = idata["posterior"][name]
        z = np.abs(post.mean(("chain", "draw")).values - truth[name]) / post.std(("chain", "draw")).values
        assert (z < 3.5).all(), f"{name}: truth {truth[name]}, z {z}"


@pytest.mark.slow
def test_defaults_recover_realistic_scales_with_prices_in_the_hundreds():
    """The electricity design with the price in hundreds (``pf`` × 25: 175–225) under
    ``pmx.sample``'s defaults: means near ±10, SDs near 2.5, a price coefficient near −0.04;
    the truth recovered, at most 1% of the transitions divergent, and fewer leapfrog steps
    than the non-centred tree depth of 5."""
    data, spec, truth = simulate_electricity_panel(150, seed=5)
    data = data.with_attribute("pf", data.X[..., list(data.attributes).index("pf")] * 25.0)
    truth = {name: np.asarray(truth[name], dtype=float) / np.array([25.0, 1, 1, 1, 1, 1])
             for name in ("mu", "sigma")}
    idata = sample(data, spec, 5, parameterization="auto")
    assert float(idata["sample_stats"]["diverging"].mean()) <= 0.01
    assert float(idata["sample_stats"]["n_steps"].mean()) < 31
    for name in ("mu", "sigma"):
        post = idata["posterior"][name]
        z = np.abs(post.mean(("chain", "draw")).values - truth[name]) / post.std(("chain", "draw")).values
        assert (z < 3.5).all(), f"{name}: truth {truth[name]}, z {z}"
