"""The fused log-likelihood Op against the graph formulation: value, gradient and pointwise
log-likelihood for every tier (correlated and lognormal components included), on unbalanced
panels with unavailable alternatives and real-data scales."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import pymc_maxent as pmx
from pymc_maxent.bayes.build import choice_graph
from pymc_maxent.bayes.likelihood import ChoiceLogLikelihood, reference_outputs
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.simulate import simulate_electricity_panel

TIERS = ["MNL-1", "MNL-2", "MNL-3", "MXL-1", "MXL-2", "MXL-3", "MXL-4"]


@pytest.fixture(scope="module")
def panel():
    """An unbalanced panel (3 to 7 situations each) with unavailable alternatives and
    attributes on real-data scales (a price in the hundreds, a dummy)."""
    rng = np.random.default_rng(5)
    counts = rng.integers(3, 8, 25)
    individual = np.repeat(np.arange(25), counts)
    N = individual.size
    X = np.stack([rng.uniform(100, 900, (N, 4)), rng.random((N, 4)) < 0.4, rng.normal(10, 3, (N, 4))],
                 axis=-1)
    available = rng.random((N, 4)) > 0.25
    available[np.arange(N), rng.integers(0, 4, N)] = True
    available[:, 0] |= available.sum(axis=1) < 2
    chosen = np.array([rng.choice(np.flatnonzero(a)) for a in available])
    return ChoiceData.from_arrays(X, chosen, available=available, individual=individual,
                                  attributes=["price", "dummy", "time"])


def likelihood_terms(model):
    """The model's pointwise log-likelihood (the fused Op) and the graph formulation's
    ``log p[chosen]`` from the prediction graph, as functions of the model's value variables
    (the Op's node and its inputs found in the logp graph)."""
    graph = choice_graph(model)
    fused = model.logp(vars=[model["chosen"]], sum=False)[0]
    p = graph.p
    c = graph.containers
    N = c.X.shape[0]
    reference = pt.log(p[pt.arange(N), c.chosen])
    z_new = graph.new_individual
    reference = model.replace_rvs_by_values([reference])[0]
    if z_new is not None:
        no_new = pt.zeros((0, z_new.type.shape[1]))
        reference = pytensor.graph.replace.clone_replace(reference, {z_new: no_new})
    return fused, reference


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("correlated", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_fused_equals_graph_every_tier(panel, tier, correlated):
    if correlated and not tier.startswith("MXL"):
        pytest.skip("correlation is for mixed tiers")
    random = {"price": "neg_lognormal", "dummy": "normal", "time": "normal"}
    model = pmx.build_model(panel, tier, random=random if tier.startswith("MXL") else "normal",
                            correlated=correlated, reference=1)
    fused, reference = likelihood_terms(model)
    values = model.value_vars
    f = pytensor.function(values, [fused, reference, *pytensor.grad(fused.sum(), values),
                                   *pytensor.grad(reference.sum(), values)], on_unused_input="ignore")
    rng = np.random.default_rng(1)
    point = model.initial_point()
    for _ in range(3):
        x = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in point.items()}
        if "beta" in x:  # coefficients on the price's scale: utilities of order 1-10
            x["beta"] = x["beta"] / 100
        out = f(**{v.name: x[v.name] for v in values})
        ll, ref = out[0], out[1]
        n = len(values)
        assert np.isfinite(ll).all() and ll.shape == (panel.n_situations,)
        np.testing.assert_allclose(ll, ref, rtol=0, atol=1e-10)
        for g, g_ref in zip(out[2:2 + n], out[2 + n:], strict=True):
            np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-10)


def fused_op(model):
    """The model's :class:`ChoiceLogLikelihood`, found in its logp graph."""
    return next(n.op for n in pytensor.graph.traversal.applys_between(model.value_vars, [model.logp()])
                if isinstance(n.op, ChoiceLogLikelihood))


def test_op_outputs_equal_the_reference_with_large_utilities():
    """Means near ±10, SDs near 2.5 and prices at 9: utilities in the tens, where a softmax
    without log-sum-exp overflows."""
    data, spec, truth = simulate_electricity_panel(30, seed=4)
    layout = fused_op(pmx.build_model(data, spec)).layout
    theta = pt.matrix("theta")
    args = [data.X, data.available, data.chosen, data.individual, pt.zeros(0), pt.zeros(0), theta]
    f = pytensor.function([theta], [*ChoiceLogLikelihood(layout)(*args), *reference_outputs(layout, *args)])
    big = truth["theta"] * 50  # utilities past 700, where exp overflows
    assert np.abs(np.einsum("njk,nk->nj", data.X, big[data.individual])).max() > 710
    out = f(big)
    for a, b in zip(out[:4], out[4:], strict=True):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_second_derivatives_through_the_graph(panel):
    """Hessians (the MAP's) differentiate the Op's gradients through the graph formulation."""
    # non-centred: the likelihood's own second derivatives (test_geometry checks the centring's)
    model = pmx.build_model(panel, "MXL-1", reference=1, parameterization="non-centred")
    fused, reference = likelihood_terms(model)
    mu = model.rvs_to_values[model["mu"]]
    H = pytensor.gradient.hessian(fused.sum(), mu)
    H_ref = pytensor.gradient.hessian(reference.sum(), mu)
    f = pytensor.function(model.value_vars, [H, H_ref], on_unused_input="ignore")
    point = model.initial_point()
    a, b = f(**{v.name: point[v.name] + 0.01 for v in model.value_vars})
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-8)


def test_an_individual_index_past_the_coefficients_raises():
    data, spec, truth = simulate_electricity_panel(5, seed=1)
    op = fused_op(pmx.build_model(data, spec))
    ll = op(data.X, data.available, data.chosen, data.individual + 3, np.zeros(0), np.zeros(0),
            truth["theta"])[0]
    with pytest.raises(IndexError, match="individual_index"):
        pytensor.function([], ll)()


def test_jax_backend_equals_numba(panel):
    """numpyro and blackjax run the Op through PyTensor's JAX backend (the graph formulation)."""
    pytest.importorskip("jax")
    from pymc_maxent.bayes.likelihood import register_jax

    register_jax()
    model = pmx.build_model(panel, "MXL-2", random={"price": "neg_lognormal"}, reference=1)
    point = {k: v + 0.05 for k, v in model.initial_point().items()}  # every coefficient random
    for compile_ in (model.compile_logp, model.compile_dlogp):
        np.testing.assert_allclose(compile_(mode="JAX")(point), compile_()(point), rtol=1e-10, atol=1e-9)
