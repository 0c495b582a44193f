"""How the sampler sees the random components: non-centred, or centred as far as each
individual's data inform them (``parameterization="auto"``, the default).

The model is the same whatever the parameterisation: the latent deviations ``z`` (individual ×
random_coefficient) are standard normal, ``θ_i = μ + σ ∘ z_i`` (``μ + L z_i`` when correlated),
and the posterior draws of ``z`` are the same variable. What changes is the coordinate NUTS moves
in, a PyMC value transform of ``z`` (and of ``mu``):

- ``"non-centred"``: ``z`` itself. Right when an individual's choices say little about their
  coefficients against the population spread ``σ``; when they say much, ``σ`` and every ``z_i``
  must move together (a funnel turned inside out) and NUTS takes long trajectories.
- ``"auto"``: the Laplace (Gaussian) approximation of each individual's likelihood,
  ``ℓ_i(θ) ≈ bᵢ'θ − θ'Hᵢθ/2``, computed once from the data, gives the conditional posterior
  ``θ_i | μ, Σ ≈ N(m_i, P_i⁻¹)`` with ``P_i = H_i + Σ⁻¹`` and ``m_i = P_i⁻¹(b_i + Σ⁻¹μ)``; NUTS
  moves in ``u_i = K_i'(θ_i − m_i)`` (``K_i K_i' = P_i``), at the current ``μ, Σ``. Where
  ``H_i = 0`` this is the non-centred parameterisation; where ``H_i ≫ Σ⁻¹`` it is the centred
  one, whitened by the individual's own information (which decorrelates coefficients that the
  design confounds, like a price and the dummies of offers without a price). Between the two
  it is the partial centring that makes ``u_i`` independent of ``μ, σ`` for a Gaussian
  likelihood, per individual and component, decided by the data and by the current ``σ``
  (the plain centred parameterisation, ``θ_i`` itself, is its limit and is not offered: a
  funnel in ``σ`` wherever the data are weak).
  The population means are sampled as ``μ = a + R ν`` with ``R R'`` the approximate posterior
  covariance of ``μ`` (the same Laplace approximation): their correlations, which the
  diagonal mass matrix of NUTS cannot learn, are taken out.

The cost: one Cholesky factorisation of ``P_i`` per individual and gradient, in one numba Op
(:class:`LaplaceCentring`) with an analytic pullback (``D³/6`` flops a row when ``Σ`` is
diagonal). Lognormal components (no information is computed for them) stay non-centred, and
so do models with situation-level deviations (MXL-4: one choice per situation informs little
against ``σ_situation``, and the deviations flatten each individual's likelihood below the
logit's information, which over-centres) and models in willingness-to-pay space.

``H_i, b_i`` come from :func:`laplace_approximation`: the pooled logit, then a few rounds of
Laplace-EM (each individual's mode under the current population, then the population's mean and
SDs from the modes and their curvatures). They are constants of the model's graph, computed from
the data it is built on; any value gives the same posterior (an exact change of variables with
its Jacobian), so only the sampler's efficiency depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.replace import graph_replace
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

from pymc_maxent.exceptions import SpecificationError

#: Parameterisations of the random components (:func:`~pymc_maxent.build_model`).
PARAMETERIZATIONS = ("auto", "non-centred")
#: :func:`~pymc_maxent.build_model`'s parameterisation.
DEFAULT_PARAMETERIZATION = "non-centred"
#: Laplace-EM rounds of :func:`laplace_approximation`, each one Newton step per individual.
EM_ROUNDS = 12


# ---------------------------------------------------------------------- the transform's kernel
@numba.njit(cache=True, nogil=True)
def _cholesky_into(K, H, Lam):
    """``K`` ← the lower Cholesky factor of ``H + Lam``; returns ``Σ log K_jj`` (NaN if not
    positive definite)."""
    D = K.shape[0]
    logdet = 0.0
    for a in range(D):
        for c in range(a + 1):
            s = H[a, c] + Lam[a, c]
            for k in range(c):
                s -= K[a, k] * K[c, k]
            if a == c:
                if not s > 0.0:
                    return np.nan
                K[a, a] = np.sqrt(s)
                logdet += np.log(K[a, a])
            else:
                K[a, c] = s / K[c, c]
        for c in range(a + 1, D):
            K[a, c] = 0.0
    return logdet


@numba.njit(cache=True, nogil=True)
def _lower_solve(K, x):
    """``x`` ← ``K⁻¹ x`` (``K`` lower triangular)."""
    D = K.shape[0]
    for a in range(D):
        s = x[a]
        for k in range(a):
            s -= K[a, k] * x[k]
        x[a] = s / K[a, a]


@numba.njit(cache=True, nogil=True)
def _upper_solve(K, x):
    """``x`` ← ``K'⁻¹ x`` (``K`` lower triangular)."""
    D = K.shape[0]
    for a in range(D - 1, -1, -1):
        s = x[a]
        for k in range(a + 1, D):
            s -= K[k, a] * x[k]
        x[a] = s / K[a, a]


@numba.njit(cache=True, nogil=True)
def laplace_centring_kernel(u, loc, Lam, H, b):
    """``θ_i = m_i + K_i'⁻¹ u_i`` and ``Σ_i log |K_i|`` with ``K_i K_i' = H_i + Λ`` and
    ``m_i = (H_i + Λ)⁻¹ (b_i + Λ loc_i)``, per row ``i``."""
    n, D = u.shape
    theta = np.empty((n, D))
    K = np.empty((D, D))
    q = np.empty(D)
    total = 0.0
    for i in range(n):
        total += _cholesky_into(K, H[i], Lam)
        for a in range(D):
            s = b[i, a]
            for c in range(D):
                s += Lam[a, c] * loc[i, c]
            q[a] = s
        _lower_solve(K, q)
        for a in range(D):
            q[a] += u[i, a]
        _upper_solve(K, q)
        theta[i] = q
    return theta, total


@numba.njit(cache=True, nogil=True)
def laplace_centring_inverse_kernel(theta, loc, Lam, H, b):
    """``u_i = K_i'(θ_i − m_i)``: the inverse of :func:`laplace_centring_kernel`."""
    n, D = theta.shape
    u = np.empty((n, D))
    K = np.empty((D, D))
    q = np.empty(D)
    for i in range(n):
        _cholesky_into(K, H[i], Lam)
        for a in range(D):
            s = b[i, a]
            for c in range(D):
                s += Lam[a, c] * loc[i, c]
            q[a] = s
        _lower_solve(K, q)
        _upper_solve(K, q)  # m_i
        for a in range(D):
            s = 0.0
            for k in range(a, D):
                s += K[k, a] * (theta[i, k] - q[k])
            u[i, a] = s
    return u


@numba.njit(cache=True, nogil=True)
def laplace_centring_pullback_kernel(u, loc, Lam, H, b, g_theta, g_logdet):
    """The vector-Jacobian product of :func:`laplace_centring_kernel`: the gradients of
    ``Σ g_theta ∘ θ + g_logdet Σ_i log|K_i|`` with respect to ``u``, ``loc`` and ``Λ``
    (symmetrised: ``Λ`` is symmetric).

    Per row, with ``ū = K⁻¹ θ̄`` and ``r̄ = K'⁻¹ ū = P⁻¹ θ̄``: ``∂/∂u = ū``, ``∂/∂loc = Λ r̄``,
    and ``∂/∂Λ = sym(r̄ (loc − m)') + sym(K'⁻¹ Φ(K' K̄) K⁻¹)``, where ``K̄ = tril(−w ū') +
    g_logdet diag(1/K_jj)`` (``w = K'⁻¹ u``) is the gradient with respect to the Cholesky
    factor and ``Φ`` keeps the lower triangle with half its diagonal (Murray 2016)."""
    n, D = u.shape
    g_u = np.empty((n, D))
    g_loc = np.empty((n, D))
    g_Lam = np.zeros((D, D))
    K = np.empty((D, D))
    m = np.empty(D)
    w = np.empty(D)
    ub = np.empty(D)
    rb = np.empty(D)
    x = np.empty(D)
    A = np.empty((D, D))
    for i in range(n):
        _cholesky_into(K, H[i], Lam)
        for a in range(D):
            s = b[i, a]
            for c in range(D):
                s += Lam[a, c] * loc[i, c]
            m[a] = s
            w[a] = u[i, a]
            ub[a] = g_theta[i, a]
        _lower_solve(K, m)
        _upper_solve(K, m)  # m = P⁻¹ (b + Λ loc)
        _upper_solve(K, w)  # w = K'⁻¹ u
        _lower_solve(K, ub)  # ū = K⁻¹ θ̄
        for a in range(D):
            rb[a] = ub[a]
        _upper_solve(K, rb)  # r̄ = K'⁻¹ ū
        for a in range(D):
            g_u[i, a] = ub[a]
            s = 0.0
            for c in range(D):
                s += Lam[a, c] * rb[c]
            g_loc[i, a] = s
        # A = Φ(K' K̄), K̄ = tril(−w ū') + g_logdet diag(1/K_jj)
        for a in range(D):
            for c in range(a + 1):
                s = 0.0
                for k in range(a, D):  # Σ_k K[k, a] K̄[k, c]; K[k, a] = 0 for k < a
                    s -= K[k, a] * w[k] * ub[c]
                if a == c:
                    s += g_logdet  # K[a, a] · g_logdet / K[a, a]
                    s *= 0.5
                A[a, c] = s
            for c in range(a + 1, D):
                A[a, c] = 0.0
        # A ← K'⁻¹ A K⁻¹: each column by K'⁻¹, then each row by K'⁻¹ (rows of (A K⁻¹)')
        for c in range(D):
            for a in range(D):
                x[a] = A[a, c]
            _upper_solve(K, x)
            for a in range(D):
                A[a, c] = x[a]
        for a in range(D):
            for c in range(D):
                x[c] = A[a, c]
            _upper_solve(K, x)
            for c in range(D):
                A[a, c] = x[c]
        for a in range(D):
            for c in range(D):
                g_Lam[a, c] += 0.5 * (A[a, c] + A[c, a]) + 0.5 * (
                    rb[a] * (loc[i, c] - m[c]) + rb[c] * (loc[i, a] - m[a]))
    return g_u, g_loc, g_Lam


@numba.njit(cache=True, nogil=True)
def laplace_centring_diagonal_pullback_kernel(u, loc, lam, H, b, g_theta, g_logdet):
    """:func:`laplace_centring_pullback_kernel` for a diagonal ``Λ = diag(lam)``: the gradient
    with respect to ``lam`` alone, from ``V = K⁻¹`` (``D³/6`` flops a row instead of ``2D³``).

    ``∂/∂lam_a = Σ_i ½ g_logdet (P⁻¹)_aa + r̄_a (loc_a − m_a) − (V'SV)_aa`` with
    ``S = Φ(u ū')``, ``P⁻¹ = V'V`` (the Cholesky factor's derivative, ``dK = K Φ(K⁻¹ dP K'⁻¹)``).
    """
    n, D = u.shape
    g_u = np.empty((n, D))
    g_loc = np.empty((n, D))
    g_lam = np.zeros(D)
    K = np.empty((D, D))
    V = np.empty((D, D))
    m = np.empty(D)
    ub = np.empty(D)
    rb = np.empty(D)
    Lam = np.diag(lam)
    for i in range(n):
        _cholesky_into(K, H[i], Lam)
        for a in range(D):
            m[a] = b[i, a] + lam[a] * loc[i, a]
            ub[a] = g_theta[i, a]
        _lower_solve(K, m)
        _upper_solve(K, m)
        _lower_solve(K, ub)  # ū = K⁻¹ θ̄
        for a in range(D):
            rb[a] = ub[a]
        _upper_solve(K, rb)  # r̄ = P⁻¹ θ̄
        for a in range(D):  # V = K⁻¹, lower triangular, column by column
            for p in range(a):
                V[p, a] = 0.0
            V[a, a] = 1.0 / K[a, a]
            for p in range(a + 1, D):
                s = 0.0
                for k in range(a, p):
                    s -= K[p, k] * V[k, a]
                V[p, a] = s / K[p, p]
        for a in range(D):
            g_u[i, a] = ub[a]
            g_loc[i, a] = lam[a] * rb[a]
            inverse_aa = 0.0
            quadratic = 0.0
            running = 0.0  # Σ_{q<p} V_qa ū_q
            for p in range(a, D):
                inverse_aa += V[p, a] * V[p, a]
                vu = V[p, a] * ub[p]
                quadratic += V[p, a] * u[i, p] * (running + 0.5 * vu)
                running += vu
            g_lam[a] += 0.5 * g_logdet * inverse_aa + rb[a] * (loc[i, a] - m[a]) - quadratic
    return g_u, g_loc, g_lam


def reference_centring(u, loc, Lam, H, b):
    """:class:`LaplaceCentring`'s outputs as a PyTensor graph (batched Cholesky and triangular
    solves): the Op's reference and the path of second derivatives. ``Lam``: ``(D, D)``, or
    ``(D,)`` for a diagonal ``Λ``."""
    Lam = pt.diag(Lam) if Lam.ndim == 1 else Lam
    P = H + Lam[None]
    K = pt.linalg.cholesky(P)
    r = b + loc @ Lam  # Λ symmetric
    y = pt.linalg.solve_triangular(K, r[..., None], lower=True, b_ndim=2)
    theta = pt.linalg.solve_triangular(pt.swapaxes(K, -1, -2), y + u[..., None], lower=False, b_ndim=2)
    return theta[..., 0], pt.log(pt.diagonal(K, axis1=-2, axis2=-1)).sum()


class LaplaceCentring(Op):
    """``(u, loc, Λ, H, b) -> (θ, Σ_i log|K_i|)``: ``θ_i = m_i + K_i'⁻¹ u_i`` with
    ``K_i K_i' = H_i + Λ`` and ``m_i = (H_i + Λ)⁻¹ (b_i + Λ loc_i)``, row by row (``u``, ``loc``,
    ``b``: ``(n, D)``; ``Λ``: ``(D, D)``, symmetric positive definite; ``H``: ``(n, D, D)``,
    symmetric positive semi-definite).

    One numba kernel for the values and one for their vector-Jacobian product (no batched
    factorisations in the graph); ``H`` and ``b`` are data (no gradient).

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.bayes.geometry import LaplaceCentring
    >>> theta, logdet = LaplaceCentring()(np.ones((1, 1)), np.zeros((1, 1)), np.eye(1),
    ...                                   np.full((1, 1, 1), 3.0), np.full((1, 1), 8.0))
    >>> theta.eval().round(6).tolist(), bool(np.isclose(logdet.eval(), np.log(2.0)))  # (8 + 0)/4 + 1/2
    ([[2.5]], True)
    """

    __props__ = ()

    def make_node(self, u, loc, Lam, H, b):
        u, loc, Lam, H, b = (pt.as_tensor_variable(v, dtype="float64") for v in (u, loc, Lam, H, b))
        if (u.ndim, loc.ndim, H.ndim, b.ndim) != (2, 2, 3, 2) or Lam.ndim not in (1, 2):
            raise TypeError("LaplaceCentring: u, loc, b (n, D), Lam (D, D) or (D,), H (n, D, D)")
        return Apply(self, [u, loc, Lam, H, b], [pt.matrix(dtype="float64"), pt.scalar(dtype="float64")])

    def perform(self, node, inputs, output_storage):
        u, loc, Lam, H, b = (np.ascontiguousarray(v) for v in inputs)
        theta, logdet = laplace_centring_kernel(u, loc, np.diag(Lam) if Lam.ndim == 1 else Lam, H, b)
        output_storage[0][0] = theta
        output_storage[1][0] = np.asarray(logdet)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], ()]

    def connection_pattern(self, node):
        return [[True, True], [True, True], [True, True], [False, False], [False, False]]

    def pullback(self, inputs, outputs, output_grads):
        u, loc, Lam, H, b = inputs
        g_theta, g_logdet = output_grads
        if isinstance(g_theta.type, DisconnectedType):
            g_theta = pt.zeros_like(u)
        if isinstance(g_logdet.type, DisconnectedType):
            g_logdet = pt.zeros(())
        g_u, g_loc, g_Lam = LaplaceCentringPullback()(u, loc, Lam, H, b, g_theta, g_logdet)
        return [g_u, g_loc, g_Lam, DisconnectedType()(), DisconnectedType()()]


def pullback_kernel(lam_ndim: int):
    """The pullback kernel for a full (``2``) or diagonal (``1``) ``Λ``."""
    return laplace_centring_diagonal_pullback_kernel if lam_ndim == 1 else laplace_centring_pullback_kernel


class LaplaceCentringPullback(Op):
    """The vector-Jacobian product of :class:`LaplaceCentring` (its kernel); its own
    derivatives (the Hessians of :func:`~pymc_maxent.bayes.point.map_estimate`) go through
    the graph formulation :func:`reference_centring`."""

    __props__ = ()

    def make_node(self, u, loc, Lam, H, b, g_theta, g_logdet):
        inputs = [pt.as_tensor_variable(v, dtype="float64") for v in (u, loc, Lam, H, b, g_theta, g_logdet)]
        return Apply(self, inputs, [pt.matrix(dtype="float64"), pt.matrix(dtype="float64"),
                                    inputs[2].type()])

    def perform(self, node, inputs, output_storage):
        arrays = [np.ascontiguousarray(v) for v in inputs[:-1]]
        kernel = pullback_kernel(arrays[2].ndim)
        for storage, value in zip(output_storage, kernel(*arrays, float(inputs[-1])), strict=True):
            storage[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], shapes[1], shapes[2]]

    def connection_pattern(self, node):
        return [[True] * 3] * 3 + [[False] * 3] * 2 + [[True] * 3] * 2

    def pullback(self, inputs, outputs, output_grads):
        # on stand-ins of the inputs: the inputs may depend on one another (g_theta on θ, on u),
        # and those paths are the caller's to follow
        free = [v.type() for v in inputs]
        u, loc, Lam, H, b, g_theta, g_logdet = free
        theta, logdet = reference_centring(u, loc, Lam, H, b)
        vjp = pytensor.grad(None, [u, loc, Lam], known_grads={theta: g_theta, logdet: g_logdet})
        known = {v: g for v, g in zip(vjp, output_grads, strict=True)
                 if not isinstance(g.type, DisconnectedType)}
        grads = pytensor.grad(None, [u, loc, Lam, g_theta, g_logdet], known_grads=known,
                              disconnected_inputs="ignore", return_disconnected="zero")
        grads = graph_replace(grads, dict(zip(free, inputs, strict=True)), strict=False)
        return [*grads[:3], DisconnectedType()(), DisconnectedType()(), *grads[3:]]


class LaplaceCentringInverse(Op):
    """``(θ, loc, Λ, H, b) -> u``, the inverse map of :class:`LaplaceCentring` (initial
    points; no gradient)."""

    __props__ = ()

    def make_node(self, theta, loc, Lam, H, b):
        inputs = [pt.as_tensor_variable(v, dtype="float64") for v in (theta, loc, Lam, H, b)]
        return Apply(self, inputs, [pt.matrix(dtype="float64")])

    def perform(self, node, inputs, output_storage):
        theta, loc, Lam, H, b = (np.ascontiguousarray(v) for v in inputs)
        Lam = np.diag(Lam) if Lam.ndim == 1 else Lam
        output_storage[0][0] = laplace_centring_inverse_kernel(theta, loc, Lam, H, b)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]


def _numba_full_precision(ndim: int):
    """A numba function of ``Λ`` (``(D, D)``, or ``(D,)`` for its diagonal) to the full matrix."""
    if ndim == 1:
        return numba_njit(lambda lam: np.diag(lam))
    return numba_njit(lambda Lam: np.ascontiguousarray(Lam))


@register_funcify_default_op_cache_key(LaplaceCentring)
def _numba_centring(op, node=None, **kwargs):
    kernel = laplace_centring_kernel
    full = _numba_full_precision(node.inputs[2].ndim)

    @numba_njit
    def laplace_centring(u, loc, Lam, H, b):
        theta, logdet = kernel(np.ascontiguousarray(u), np.ascontiguousarray(loc), full(Lam),
                               np.ascontiguousarray(H), np.ascontiguousarray(b))
        return theta, np.asarray(logdet)

    return laplace_centring


@register_funcify_default_op_cache_key(LaplaceCentringPullback)
def _numba_pullback(op, node=None, **kwargs):
    kernel = pullback_kernel(node.inputs[2].ndim)

    @numba_njit
    def laplace_centring_pullback(u, loc, Lam, H, b, g_theta, g_logdet):
        return kernel(np.ascontiguousarray(u), np.ascontiguousarray(loc), np.ascontiguousarray(Lam),
                      np.ascontiguousarray(H), np.ascontiguousarray(b), np.ascontiguousarray(g_theta),
                      g_logdet.item())

    return laplace_centring_pullback


@register_funcify_default_op_cache_key(LaplaceCentringInverse)
def _numba_inverse(op, node=None, **kwargs):
    kernel = laplace_centring_inverse_kernel
    full = _numba_full_precision(node.inputs[2].ndim)

    @numba_njit
    def laplace_centring_inverse(theta, loc, Lam, H, b):
        return kernel(np.ascontiguousarray(theta), np.ascontiguousarray(loc), full(Lam),
                      np.ascontiguousarray(H), np.ascontiguousarray(b))

    return laplace_centring_inverse


# ---------------------------------------------------------------------- the data's information
@dataclass(frozen=True)
class LaplaceApproximation:
    """Each individual's log-likelihood to second order, ``ℓ_i(θ) ≈ bᵢ'θ − θ'Hᵢθ/2``, and the
    population it implies.

    Attributes
    ----------
    information : np.ndarray
        ``H_i``, ``(individual, D, D)``: the observed information at the individual's mode.
    score : np.ndarray
        ``b_i = H_i θ̂_i + g_i``, ``(individual, D)``.
    mu, sigma : np.ndarray
        The population's means and SDs at the last round of Laplace-EM (shrunk towards 0: the
        approximation is rough, and only the sampler's efficiency depends on it).
    mu_covariance : np.ndarray
        The approximate posterior covariance of ``μ``.
    """

    information: np.ndarray
    score: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    mu_covariance: np.ndarray


def _log_probabilities(U, available):
    U = np.where(available, U, -np.inf)
    U = U - U.max(axis=1, keepdims=True)
    return U - np.log(np.exp(U).sum(axis=1, keepdims=True))


def _logit_derivatives(F, U, available, chosen):
    """Per situation: the score ``F_chosen − F̄`` and the information ``Σ_j p_j (F_j − F̄)(F_j − F̄)'``."""
    p = np.exp(_log_probabilities(U, available))
    centred = F - np.einsum("nj,njd->nd", p, F)[:, None, :]
    return centred[np.arange(len(F)), chosen], np.einsum("nj,njd,nje->nde", p, centred, centred)


def pooled_logit(F, available, chosen, prior_sd, iterations=30):
    """The pooled logit's posterior mode on the design ``F`` (``(situation, alternative, P)``),
    independent normal priors of SD ``prior_sd``: Newton's method."""
    theta = np.zeros(F.shape[-1])
    for _ in range(iterations):
        g, H = _logit_derivatives(F, F @ theta, available, chosen)
        step = np.linalg.solve(H.sum(0) + np.diag(prior_sd**-2.0), g.sum(0) - theta / prior_sd**2)
        theta = theta + step
        if np.abs(step).max() < 1e-9:
            break
    return theta


def laplace_approximation(fixed, random, available, chosen, individual, n_individuals, prior_sd,
                          rounds=EM_ROUNDS) -> LaplaceApproximation:
    """Laplace-EM on the random components: the pooled logit on the whole design, then each
    round one Newton step per individual towards its mode under the current population
    ``N(μ, diag(s²))``, and ``μ, s²`` from the modes and their curvatures (the fixed
    parameters held at their pooled values).

    Parameters
    ----------
    fixed, random : np.ndarray
        The designs of the fixed parameters and of the random components, ``(situation,
        alternative, ·)`` (:func:`~pymc_maxent.specification.utility_design`).
    available, chosen, individual : np.ndarray
        Situations with no observed choice (``chosen < 0``) or of new individuals are left out.
    n_individuals : int
    prior_sd : np.ndarray
        The prior SDs of the fixed parameters and of ``μ`` (the pooled fit's ridge, and the
        prior of ``mu_covariance``).
    rounds : int

    Returns
    -------
    LaplaceApproximation
    """
    keep = (chosen >= 0) & (individual < n_individuals)
    fixed, F, available, chosen, individual = (
        v[keep] for v in (fixed, random, available, chosen, individual))
    n, k, D = n_individuals, fixed.shape[-1], F.shape[-1]
    pooled = pooled_logit(np.concatenate([fixed, F], axis=-1), available, chosen, prior_sd)
    offset, mu, s2 = fixed @ pooled[:k], pooled[k:], np.ones(D)
    theta = np.tile(mu, (n, 1))
    for _ in range(rounds):
        H, g = _individual_derivatives(F, offset, available, chosen, individual, theta, n)
        P = H + np.diag(1.0 / s2)
        theta = theta + np.linalg.solve(P, (g - (theta - mu) / s2)[..., None])[..., 0]
        mu = theta.mean(0)
        s2 = np.maximum(((theta - mu) ** 2 + np.diagonal(np.linalg.inv(P), 0, 1, 2)).mean(0), 1e-6)
    H, g = _individual_derivatives(F, offset, available, chosen, individual, theta, n)
    W = np.linalg.solve(np.eye(D) + H * s2, H)  # (H_i⁻¹ + S)⁻¹ = (I + H_i S)⁻¹ H_i
    covariance = np.linalg.inv(W.sum(0) + np.diag(prior_sd[k:] ** -2.0))
    return LaplaceApproximation(H, np.einsum("nde,ne->nd", H, theta) + g, mu, np.sqrt(s2), covariance)


def _individual_derivatives(F, offset, available, chosen, individual, theta, n):
    U = offset + np.einsum("njd,nd->nj", F, theta[individual])
    g_n, H_n = _logit_derivatives(F, U, available, chosen)
    H, g = np.zeros((n, *H_n.shape[1:])), np.zeros((n, g_n.shape[1]))
    np.add.at(H, individual, H_n)
    np.add.at(g, individual, g_n)
    return H, g


# ---------------------------------------------------------------------- the value transforms
class IndividualCentring(Transform):
    """The coordinates NUTS moves in for the individuals' deviations ``z`` under ``"auto"``:
    ``u_i = K_i'(θ_i − m_i)`` (module docstring), with ``θ_i = μ + σ ∘ z_i`` (``μ + L z_i``).

    The random variable's inputs are ``μ`` and ``σ`` (or the Cholesky factor ``L``); ``H_i``
    and ``b_i`` are constants of the transform.
    """

    name = "centred"

    def __init__(self, information, score, correlated: bool):
        self.information = pt.as_tensor_variable(np.asarray(information, dtype=float))
        self.score = pt.as_tensor_variable(np.asarray(score, dtype=float))
        self.correlated = correlated

    def _parts(self, inputs):
        mu, scale = inputs[1], inputs[2]
        loc = pt.broadcast_to(mu, self.score.shape)
        if self.correlated:
            inverse = pt.linalg.solve_triangular(scale, pt.eye(scale.shape[0]), lower=True)
            return mu, scale, loc, inverse.T @ inverse
        return mu, scale, loc, scale**-2.0

    def _deviations(self, theta, mu, scale):
        if self.correlated:
            return pt.linalg.solve_triangular(scale, (theta - mu).T, lower=True).T
        return (theta - mu) / scale

    def forward(self, value, *inputs):
        mu, scale, loc, precision = self._parts(inputs)
        theta = mu + (value @ scale.T if self.correlated else scale * value)
        return LaplaceCentringInverse()(theta, loc, precision, self.information, self.score)

    def backward(self, value, *inputs):
        mu, scale, loc, precision = self._parts(inputs)
        theta, _ = LaplaceCentring()(value, loc, precision, self.information, self.score)
        return self._deviations(theta, mu, scale)

    def log_jac_det(self, value, *inputs):
        mu, scale, loc, precision = self._parts(inputs)
        _, logdet = LaplaceCentring()(value, loc, precision, self.information, self.score)
        log_scale = pt.log(pt.diagonal(scale)) if self.correlated else pt.log(scale)
        return -value.shape[0] * log_scale.sum() - logdet


class LinearWhitening(Transform):
    """``μ = a + R ν`` with constant ``a`` and lower-triangular ``R``: NUTS moves in ``ν``,
    where the approximate posterior of ``μ`` is standard normal (its correlations, which a
    diagonal mass matrix cannot learn, taken out)."""

    name = "whitened"

    def __init__(self, shift, factor):
        self.shift = np.asarray(shift, dtype=float)
        self.factor = np.asarray(factor, dtype=float)
        self.inverse = np.linalg.inv(self.factor)

    def forward(self, value, *inputs):
        return (value - self.shift) @ self.inverse.T

    def backward(self, value, *inputs):
        return self.shift + value @ self.factor.T

    def log_jac_det(self, value, *inputs):
        return pt.zeros_like(value[..., 0]) + np.log(np.abs(np.diag(self.factor))).sum()


def centred_deviations(name, mu, scale, approximation: LaplaceApproximation, dims, correlated: bool):
    """The individuals' standard-normal deviations ``z`` (``(individual, D)``) as a random
    variable whose value NUTS sees through :class:`IndividualCentring`."""
    n, D = approximation.score.shape

    def dist(mu, scale, size):
        return pm.Normal.dist(0.0, 1.0, size=(n, D))

    def logp(value, mu, scale):
        return pm.logp(pm.Normal.dist(0.0, 1.0), value).sum()

    signature = "(d),(d,d)->(n,d)" if correlated else "(d),(d)->(n,d)"
    return pm.CustomDist(name, mu, scale, dist=dist, logp=logp, signature=signature, dims=dims,
                         transform=IndividualCentring(approximation.information, approximation.score,
                                                      correlated))


def check_parameterization(parameterization: str) -> str:
    """``parameterization`` if known, else a :class:`~pymc_maxent.exceptions.SpecificationError`."""
    if parameterization not in PARAMETERIZATIONS:
        raise SpecificationError(f"unknown parameterization {parameterization!r}; "
                                 f"choose from {PARAMETERIZATIONS}")
    return parameterization


def reference_inverse(theta, loc, Lam, H, b):
    """:class:`LaplaceCentringInverse` as a PyTensor graph (its JAX implementation)."""
    Lam = pt.diag(Lam) if Lam.ndim == 1 else Lam
    K = pt.linalg.cholesky(H + Lam[None])
    m = pt.linalg.cho_solve((K, True), (b + loc @ Lam)[..., None], b_ndim=2)
    return (pt.swapaxes(K, -1, -2) @ (theta[..., None] - m))[..., 0]


def reference_pullback(u, loc, Lam, H, b, g_theta, g_logdet):
    """:class:`LaplaceCentringPullback` as a PyTensor graph (its JAX implementation)."""
    theta, logdet = reference_centring(u, loc, Lam, H, b)
    return pytensor.grad(None, [u, loc, Lam], known_grads={theta: g_theta, logdet: g_logdet})


_JAX_REGISTERED = False


def register_jax() -> None:
    """Teach PyTensor's JAX backend the centring's Ops (their graph formulations, jitted by
    JAX); called by :func:`~pymc_maxent.sample` for numpyro and blackjax."""
    global _JAX_REGISTERED
    if _JAX_REGISTERED:
        return
    from pytensor.graph.fg import FunctionGraph
    from pytensor.link.jax.dispatch import jax_funcify

    def as_graph(reference):
        def funcify(op, node=None, **kwargs):
            inputs = [v.type() for v in node.inputs]
            outputs = reference(*inputs)
            outputs = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
            return jax_funcify(FunctionGraph(inputs, outputs, clone=True))
        return funcify

    jax_funcify.register(LaplaceCentring)(as_graph(reference_centring))
    jax_funcify.register(LaplaceCentringPullback)(as_graph(reference_pullback))
    jax_funcify.register(LaplaceCentringInverse)(as_graph(reference_inverse))
    _JAX_REGISTERED = True
