"""Simulated maximum likelihood of a panel mixed logit with independent normal coefficients:
NumPy/SciPy, Halton draws, the analytic gradient, BFGS. The benchmarks' point-estimate
baseline (what xlogit computes; xlogit is not installable here).

``L_i = (1/D) Σ_d Π_t P_it(β_id)`` with ``β_id = μ + σ ∘ e_id`` and ``e_id`` scrambled Halton
normals; maximises ``Σ_i log L_i`` over ``(μ, σ)``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, sparse
from scipy.special import logsumexp, ndtri
from scipy.stats import qmc


def halton_normals(n_individuals: int, n_draws: int, dim: int, seed: int = 0) -> np.ndarray:
    """Scrambled Halton normals, (individual, draw, dim)."""
    u = qmc.Halton(d=dim, scramble=True, seed=seed).random(n_individuals * n_draws)
    return ndtri(np.clip(u, 1e-12, 1 - 1e-12)).reshape(n_individuals, n_draws, dim)


def msl_value_and_gradient(params, X, available, chosen, individual, draws, chunk=50):
    """``-Σ_i log L_i`` and its gradient with respect to ``(μ, σ)``."""
    N, J, K = X.shape
    I, D, _ = draws.shape
    mu, sigma = params[:K], params[K:]
    by_individual = sparse.csr_matrix((np.ones(N), (individual, np.arange(N))), shape=(I, N))
    S = np.empty((I, D))
    dS = np.empty((I, D, K))
    x_chosen = X[np.arange(N), chosen]  # (N, K)
    for d0 in range(0, D, chunk):
        e = draws[:, d0:d0 + chunk]  # (I, d, K)
        beta = (mu + sigma * e)[individual]  # (N, d, K)
        U = np.einsum("njk,ndk->ndj", X, beta)
        U = np.where(available[:, None, :], U, -np.inf)
        lse = logsumexp(U, axis=2, keepdims=True)
        p = np.exp(U - lse)
        log_p = U[np.arange(N), :, chosen] - lse[..., 0]
        G = x_chosen[:, None, :] - np.einsum("ndj,njk->ndk", p, X)  # ∂ log P_nd / ∂β
        S[:, d0:d0 + chunk] = by_individual @ log_p
        dS[:, d0:d0 + chunk] = (by_individual @ G.reshape(N, -1)).reshape(I, -1, K)
    log_L = logsumexp(S, axis=1) - np.log(D)
    w = np.exp(S - logsumexp(S, axis=1, keepdims=True))  # (I, D)
    g_mu = np.einsum("id,idk->k", w, dS)
    g_sigma = np.einsum("id,idk,idk->k", w, dS, draws)
    return -log_L.sum(), -np.concatenate([g_mu, g_sigma])


def fit_msl(data, n_draws: int = 600, seed: int = 0, start=None):
    """``(μ̂, σ̂, result)`` of the simulated maximum likelihood (all attributes random normal,
    no constants)."""
    K = data.n_attributes
    draws = halton_normals(data.n_individuals, n_draws, K, seed)
    x0 = np.concatenate([np.zeros(K), np.full(K, 0.5)]) if start is None else start
    result = optimize.minimize(msl_value_and_gradient, x0, jac=True, method="BFGS",
                               args=(data.X, data.available, data.chosen, data.individual, draws),
                               options={"gtol": 1e-4, "maxiter": 500})
    return result.x[:K], np.abs(result.x[K:]), result
