"""The model's choice probabilities equal a plain NumPy evaluation of the design formula,
``U_ij = α_j(i) + Σ_k x_ijk β_k(i, j)`` with a softmax over available alternatives, for
every tier at random parameter values."""

import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.specification import resolve, tier_spec
from pymc_maxent.utility import block_utility

TIERS = ["MNL-1", "MNL-2", "MNL-3", "MXL-1", "MXL-2", "MXL-3", "MXL-4"]


def reference_probabilities(data, resolved, values):
    """Loops over alternatives and labels: slow, obvious, independent of the graph."""
    N, J = data.available.shape
    alts = resolved.alternatives
    ind = data.individual
    theta = None
    if resolved.n_random:
        D = resolved.n_random
        z = values["z"]
        if "chol_cov" in values:
            L = np.zeros((D, D))
            L[np.tril_indices(D)] = values["chol_cov"]
            theta = values["mu"] + z @ L.T
        else:
            theta = values["mu"] + values["sigma"] * z
        theta = theta[ind]
        for n, c in enumerate(resolved.situation_components):
            theta[:, c] += values["sigma_situation"][n] * values["z_situation"][:, n]
        sign = resolved.random_sign
        theta = np.where(sign != 0, sign * np.exp(theta), theta)
    labels = {lab: n for n, lab in enumerate(resolved.random_labels)}
    fixed = {lab: n for n, lab in enumerate(resolved.fixed.labels)}
    U = np.zeros((N, J))
    for j, alt in enumerate(alts):
        if resolved.asc_labels and j != resolved.reference:
            U[:, j] += values["alpha"][resolved.asc_labels.index(alt)]
        if f"asc[{alt}]" in labels:
            U[:, j] += theta[:, labels[f"asc[{alt}]"]]
        for k, name in enumerate(data.attributes.tolist()):
            for label in (name, f"{name}[{alt}]"):
                if label in fixed:
                    U[:, j] += data.X[:, j, k] * values["beta"][fixed[label]]
                if label in labels:
                    U[:, j] += data.X[:, j, k] * theta[:, labels[label]]
    U = np.where(data.available, U, -np.inf)
    expU = np.exp(U - U.max(axis=1, keepdims=True))
    return expU / expU.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("correlated", [False, True])
@pytest.mark.parametrize("tier", TIERS)
def test_probabilities_match_reference(tier, correlated):
    if correlated and tier.startswith("MNL"):
        pytest.skip("no random coefficients")
    data, _ = pmx.simulate_choices("MNL-2", n_individuals=7, n_situations=3, n_alternatives=4,
                                   n_attributes=2, unavailable=0.3, seed=4)
    spec = tier_spec(tier, ["x0", "x1"], correlated=correlated,
                         random={"x0": "neg_lognormal", "x1": "normal"}, reference="alt1")
    model = pmx.build_model(data, spec, store_probabilities=True)
    rng = np.random.default_rng(0)
    point = {k: rng.normal(scale=0.7, size=v.shape) for k, v in model.initial_point().items()}
    outputs = model.unobserved_value_vars  # free RVs on their own scale, and deterministics
    evaluated = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore")(point)
    values = dict(zip([v.name for v in outputs], evaluated, strict=True))
    p = values["p"]
    expected = reference_probabilities(data, resolve(spec, data), values)
    np.testing.assert_allclose(p, expected, rtol=1e-10, atol=1e-12)
    assert (p[~data.available] == 0).all()
    # the observed node's log-likelihood is the log of the chosen alternative's probability
    loglik = model.compile_logp(vars=[model["chosen"]], sum=False)(point)[0]
    np.testing.assert_allclose(loglik, np.log(expected[np.arange(data.n_situations), data.chosen]))


@pytest.mark.parametrize("shape", ["vector", "situation", "nodes"])
def test_block_utility_matches_loops(shape):
    """One contraction for fixed coefficients (a vector), random ones (a row per situation) and
    the minibatch quadrature (a row per node against ``X[:, :, None]``), with generic,
    alternative-specific and reference-zero columns, in and out of ``X``'s order."""
    rng = np.random.default_rng(5)
    b, T, J, K, Q = 3, 2, 4, 5, 6
    columns = np.array([4, 0, 2])
    layout = np.array([[2, 0, 4], [2, 1, 5], [2, 3, 6], [2, -1, -1]])  # (alternative, column)
    X = rng.normal(size=(b, T, J, K))
    theta = rng.normal(size={"vector": (7,), "situation": (b, T, 7), "nodes": (Q, 7)}[shape])
    x = X[:, :, None] if shape == "nodes" else X
    got = block_utility(x, theta, layout, columns).eval()
    padded = np.concatenate([theta, np.zeros((*theta.shape[:-1], 1))], axis=-1)
    expected = np.zeros(np.broadcast_shapes(x.shape[:-2], theta.shape[:-1]) + (J,))
    for j in range(J):
        for c, k in enumerate(columns):
            expected[..., j] += x[..., j, k] * padded[..., layout[j, c]]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_block_utility_refuses_coefficients_the_layout_does_not_use():
    with pytest.raises(ValueError, match="the layout uses 2 coefficients; the coefficients have 3"):
        block_utility(np.ones((1, 2, 2)), np.ones(3), np.array([[0, 1], [0, -1]]))
