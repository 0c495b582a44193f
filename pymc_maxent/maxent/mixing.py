"""The mixing distribution of the MaxEnt mixed logit, learnt from its individual stage
(``individual_support="learn"``, opt-in at the mixed tiers; ``docs/theory.md``, "The
pooling learnt from the data").

Stage 2 with a normal reference ``N(0, A)`` for the noise on each individual's moments adds
``½ δ'Aδ`` to every individual's dual: its solution is the mode of the individual's logit
likelihood under the prior ``β_i ~ N(μ, Σ)`` with ``A = Σ⁻¹``, centred on the population's
``p⁰`` at ``μ`` (and at the fixed coefficients ``f``). The population stage learns ``(f, μ, Σ)``
by maximising the marginal likelihood ``Σ_i ln ∫ L_i(f, β) N(β; μ, Σ) dβ`` (empirical Bayes),
each integral by importance sampling around the individual's stage-2 solution:

1. stage 2 at the current ``(f, μ, Σ)`` (warm-started): each individual's mode ``β̂_i`` and
   ``V_i = H_i⁻¹``;
2. quasi-Monte Carlo points ``β_iq`` of the proposal ``⅞ N(β̂_i, 1.2² V_i) + ⅛ N(μ, Σ)`` (the
   second, the prior, bounds the weights) and their log-likelihoods;
3. ``(μ, Σ)`` maximised with those points held: the EM fixed point of the law of total
   variance, ``μ = mean_i E[β_i | y_i]``,
   ``Σ = mean_i (Cov[β_i | y_i] + (E[β_i | y_i] − μ)(E[β_i | y_i] − μ)')``, accelerated by
   SQUAREM; then one Newton step in ``f``;

until no parameter moves by more than ``tol`` of its standard error. The standard errors come
from the observed information of the marginal likelihood by Louis' formula (the complete-data
information less the posterior variance of the complete-data score), on the same points.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import xarray as xr
from scipy import stats
from scipy.special import gammaln, logsumexp, ndtri
from scipy.stats import qmc

from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.maxent.group_dual import GroupProblem, random_features
from pymc_maxent.maxent.moments import population_name
from pymc_maxent.maxent.stages import solve_groups
from pymc_maxent.numerics import covariance
from pymc_maxent.specification import resolve

#: Inflation of the proposal's scale over ``V_i``, and its Student t's degrees of freedom
#: (posteriors of logits are skewed, with heavier tails than their Laplace approximation).
PROPOSAL_SCALE = 1.2
PROPOSAL_DOF = 5.0
#: Share of the points drawn from the prior ``N(μ, Σ)`` (defensive importance sampling).
PRIOR_SHARE = 0.125
#: Smallest variance of a component, relative to its starting value (``σ → 0`` is a boundary).
VARIANCE_FLOOR = 1e-8
#: Inner EM evaluations per outer iteration at most, and their tolerance.
INNER_MAXITER = 500
INNER_TOL = 1e-9
#: Largest Newton step of a fixed coefficient, in its standard errors.
FIXED_STEP = 10.0
#: Dims of the saved stage (those of the random components are the individual stage's).
RANDOM, RANDOM_ = "random_coefficient", "random_coefficient_"
HYPER, HYPER_ = "hyperparameter", "hyperparameter_"
FIXED, MIXING_INDIVIDUAL = "fixed_parameter", "mixing_individual"


# ---------------------------------------------------------------------- what is learnt from
def component_features(data, spec):
    """``G[n, j, c]`` of every component of ``spec``'s fixed twin (constants and coefficients,
    random or not) and their labels, in :func:`~pymc_maxent.specification.resolve`'s order."""
    coefficients = tuple(dataclasses.replace(c, random="normal", level="individual")
                         for c in spec.coefficients)
    constants = "random" if spec.constants in ("fixed", "random") else "none"
    every = dataclasses.replace(spec, coefficients=coefficients, constants=constants, correlated=False)
    resolved = resolve(every, data)
    return random_features(data.X, data.available, resolved), list(resolved.random_labels)


@dataclass(frozen=True, eq=False)
class MixingProblem:
    """The arrays the mixing distribution is learnt from.

    Attributes
    ----------
    problem : GroupProblem
        Stage 2's arrays without a noise term, ``ln p⁰`` stage 1's ``ln p̂``.
    F : ndarray (situation, alternative, fixed)
        Features of the fixed components.
    beta_random, beta_fixed : ndarray
        Stage 1's coefficients of the random and the fixed components (``ln p⁰`` is at them).
    fixed_names : tuple of str
        Stage-1 parameter names of the fixed components.
    correlated : bool
        A full ``Σ`` (LKJ-correlated specifications); else diagonal.
    """

    problem: GroupProblem
    F: np.ndarray
    beta_random: np.ndarray
    beta_fixed: np.ndarray
    fixed_names: tuple
    correlated: bool

    @property
    def R(self) -> int:
        return self.problem.R

    def log_prior(self, fixed, mu) -> np.ndarray:
        """``ln p⁰`` of the population at fixed coefficients ``fixed`` and random ones ``mu``."""
        b = self.problem
        U = b.log_p0 + self.F @ (fixed - self.beta_fixed) + b.G @ (mu - self.beta_random)
        U = np.where(b.available, U, -np.inf)
        return U - logsumexp(U, axis=1, keepdims=True)

    def individual_problem(self, fixed, mu, cov) -> GroupProblem:
        """Stage 2 centred on ``(fixed, mu)`` with the normal reference ``A = Σ⁻¹``."""
        return dataclasses.replace(self.problem, log_p0=self.log_prior(fixed, mu),
                                   precision=np.linalg.inv(cov))

    def subset(self, groups: np.ndarray) -> MixingProblem:
        """The problem of individuals ``groups`` alone (renumbered ``0..len(groups)-1``)."""
        b = self.problem
        rows = np.concatenate([b.rows_of(g) for g in groups])
        local = np.repeat(np.arange(len(groups)), b.n_situations[groups])
        sub = dataclasses.replace(b, G=b.G[rows], G_noise=b.G[rows], log_p0=b.log_p0[rows],
                                  chosen=b.chosen[rows], available=b.available[rows], group=local,
                                  n_groups=len(groups), scale=np.ones(len(groups)))
        return dataclasses.replace(self, problem=sub, F=self.F[rows])


def mixing_problem(data, spec, resolved, problem: GroupProblem, names, beta) -> MixingProblem:
    """:class:`MixingProblem` of a fit: ``problem`` stage 2's arrays, ``names`` and ``beta``
    stage 1's parameter names and coefficients.

    Raises
    ------
    MaxEntError
        A stage-1 parameter that is not a component of the specification's utility.
    """
    G_all, labels = component_features(data, spec)
    fixed = [label for label in labels if label not in resolved.random_labels]
    known = {population_name(label) for label in labels}
    stray = [name for name in names if name not in known]
    if stray:
        raise MaxEntError(f"{spec.name}: the population parameters {stray} are not components of the "
                          "utility: the mixing distribution cannot be learnt; give an individual support "
                          "(individual_support='default')")
    position = {name: k for k, name in enumerate(names)}
    fixed_names = tuple(population_name(label) for label in fixed)
    base = dataclasses.replace(problem, support=None, G_noise=problem.G, precision=None,
                               scale=np.ones(problem.n_groups))
    return MixingProblem(problem=base, F=G_all[..., [labels.index(label) for label in fixed]],
                         beta_random=np.array([beta[position[population_name(label)]]
                                               for label in resolved.random_labels]),
                         beta_fixed=np.array([beta[position[name]] for name in fixed_names]),
                         fixed_names=fixed_names, correlated=bool(resolved.spec.correlated))


# ---------------------------------------------------------------------- importance sampling
@dataclass
class _Points:
    """Importance points of every individual: ``theta`` (individual, point, R), ``base`` their
    log-likelihood less the proposal's log density, ``score`` the fixed components'
    complete-data score ``Σ_t F'(y − p)`` per point and ``fixed_information`` the sum over
    individuals of its expected complete-data information (weights of the prior the points
    were drawn under)."""

    theta: np.ndarray
    base: np.ndarray
    score: np.ndarray
    fixed_information: np.ndarray


def shifted_points(n_groups: int, n_points: int, dim: int, seed: int = 0) -> np.ndarray:
    """Uniform points ``(group, point, dim)``: one scrambled Sobol set, shifted modulo 1 by a
    seeded uniform vector per group (a Cranley-Patterson rotation), so that each group's
    integral is a randomised quasi-Monte Carlo estimate independent of the others' (their errors
    average out over individuals rather than add up)."""
    base = qmc.Sobol(dim, scramble=True, rng=seed).random(2 ** int(np.ceil(np.log2(n_points))))[:n_points]
    shift = np.random.default_rng(seed).random((n_groups, 1, dim))
    return (base[None] + shift) % 1.0


def _proposal(mode, V, mu, cov, u):
    """Points ``(I, Q, R)`` and their log density under the defensive mixture of a multivariate
    Student t around each individual's solution (``PROPOSAL_DOF`` degrees of freedom: a
    posterior of a logit has a heavier tail than its Laplace approximation along the directions
    its choices nearly separate) and the prior. ``u``: uniform points ``(I, Q, R + 1)``, the
    last coordinate giving the t's scale."""
    Q, R = u.shape[1], u.shape[2] - 1
    n_prior = max(1, int(round(PRIOR_SHARE * Q)))
    z = ndtri(np.clip(u[..., :R], 1e-15, 1 - 1e-15))
    L = np.linalg.cholesky(V * PROPOSAL_SCALE**2)
    Lp = np.linalg.cholesky(cov)
    scale = np.sqrt(PROPOSAL_DOF / stats.chi2.ppf(np.clip(u[:, :Q - n_prior, R], 1e-15, 1.0), PROPOSAL_DOF))
    own_points = mode[:, None, :] + np.matmul(z[:, :Q - n_prior] * scale[..., None], L.transpose(0, 2, 1))
    theta = np.concatenate([own_points, mu + z[:, Q - n_prior:] @ Lp.T], axis=1)
    own = _log_student(theta - mode[:, None, :], L, PROPOSAL_DOF)
    prior = _log_normal(theta - mu, np.broadcast_to(Lp, L.shape))
    share = n_prior / Q
    return theta, np.logaddexp(np.log1p(-share) + own, np.log(share) + prior)


def _log_student(d, L, dof: float) -> np.ndarray:
    """``ln t_dof(d; 0, LL')`` for points ``d`` (I, Q, R) and factors ``L`` (I, R, R)."""
    R = d.shape[-1]
    x = np.matmul(d, np.linalg.inv(L).transpose(0, 2, 1))
    logdet = np.log(np.einsum("irr->ir", L)).sum(axis=1)
    const = gammaln((dof + R) / 2) - gammaln(dof / 2) - 0.5 * R * np.log(dof * np.pi)
    return const - logdet[:, None] - 0.5 * (dof + R) * np.log1p((x**2).sum(axis=-1) / dof)


def _log_normal(d, L) -> np.ndarray:
    """``ln N(d; 0, LL')`` for points ``d`` (I, Q, R) and factors ``L`` (I, R, R) or (R, R)."""
    L = np.broadcast_to(L, (d.shape[0], *L.shape[-2:]))
    x = np.matmul(d, np.linalg.inv(L).transpose(0, 2, 1))
    logdet = np.log(np.einsum("irr->ir", L)).sum(axis=1)
    return -0.5 * (x**2).sum(axis=-1) - logdet[:, None] - 0.5 * d.shape[-1] * np.log(2 * np.pi)


def _lse(x, axis: int = -1) -> np.ndarray:
    """``ln Σ exp x`` along ``axis`` (``-inf`` entries allowed, not a whole row of them)."""
    m = x.max(axis=axis, keepdims=True)
    return np.log(np.exp(x - m).sum(axis=axis)) + np.squeeze(m, axis=axis)


def importance_points(mp: MixingProblem, mode, V, fixed, mu, cov, z, chunk: int) -> _Points:
    """The points, in chunks of individuals (about ``chunk`` situation × point × alternative
    cells each), with their log-likelihoods and the fixed components' scores."""
    b = mp.problem
    theta, log_q = _proposal(mode, V, mu, cov, z)
    I, Q, _ = theta.shape
    nf = mp.F.shape[-1]
    base, score, info = np.empty((I, Q)), np.zeros((I, Q, nf)), np.zeros((nf, nf))
    log_p0 = mp.log_prior(fixed, mu)
    prior = _log_normal(theta - mu, np.broadcast_to(np.linalg.cholesky(cov), (I, len(mu), len(mu))))
    per_individual = Q * b.available.shape[1] * max(1.0, float(b.n_situations.mean()))
    step = max(1, int(chunk // per_individual))
    for s in range(0, I, step):
        ids = np.arange(s, min(s + step, I))
        rows = np.concatenate([b.rows_of(g) for g in ids])
        local = np.repeat(np.arange(len(ids)), b.n_situations[ids])
        starts, n = _starts(local), np.arange(len(rows))
        G, F, chosen = b.G[rows], mp.F[rows], b.chosen[rows]
        d = theta[ids][local] - mu  # (n, Q, R)
        U = np.repeat(log_p0[rows, None, :], Q, axis=1)
        for r in range(d.shape[-1]):
            U += d[..., r, None] * G[:, None, :, r]
        top = U.max(axis=2, keepdims=True)
        p = np.exp(U - top)
        total = p.sum(axis=2, keepdims=True)
        p /= total
        ll = U[n, :, chosen] - (np.log(total) + top)[..., 0]
        base[ids] = np.add.reduceat(ll, starts, axis=0) - log_q[ids]
        if nf:
            p[n, :, chosen] -= 1.0  # −(y − p)
            score[ids] = -np.add.reduceat(sum(p[..., j, None] * F[:, None, j, :] for j in range(F.shape[1])),
                                          starts, axis=0)
            p[n, :, chosen] += 1.0
            info += _fixed_information(p, F, _weights(base[ids] + prior[ids])[local])
    return _Points(theta=theta, base=base, score=score, fixed_information=info)


def _fixed_information(p, F, w) -> np.ndarray:
    """``Σ_nq w_nq F_n'(diag p_nq − p_nq p_nq')F_n``: the fixed components' complete-data
    information, weighted over the points."""
    Fbar = sum(p[..., j, None] * F[:, None, j, :] for j in range(F.shape[1]))  # (n, Q, fixed)
    pw = np.einsum("nq,nqj->nj", w, p)
    wF = (Fbar * w[..., None]).reshape(-1, F.shape[-1])
    return np.einsum("nj,njf,njg->fg", pw, F, F) - wF.T @ Fbar.reshape(-1, F.shape[-1])


def _starts(local: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, local[1:] != local[:-1]])


def _weights(log_w: np.ndarray) -> np.ndarray:
    """Normalised weights over the last axis."""
    w = np.exp(log_w - log_w.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------- (μ, Σ) given the points
def _unpack(x, R: int, correlated: bool):
    """``(μ, L)`` from the unconstrained vector: ``μ``, then ``ln σ²`` (diagonal) or the
    Cholesky factor's lower triangle with its diagonal logged."""
    mu = x[:R]
    if not correlated:
        return mu, np.diag(np.exp(0.5 * x[R:]))
    L = np.zeros((R, R))
    L[np.tril_indices(R)] = x[R:]
    L[np.diag_indices(R)] = np.exp(L[np.diag_indices(R)])
    return mu, L


def _pack(mu, cov, correlated: bool):
    if not correlated:
        return np.concatenate([mu, np.log(np.diag(cov))])
    L = np.linalg.cholesky(cov)
    L[np.diag_indices(len(mu))] = np.log(np.diag(L))
    return np.concatenate([mu, L[np.tril_indices(len(mu))]])


def _prior_log_density(theta, mu, L) -> np.ndarray:
    """``ln N(θ_iq; μ, LL')`` (I, Q)."""
    x = (theta - mu) @ np.linalg.inv(L).T
    return -0.5 * (x**2).sum(axis=-1) - np.log(np.diag(L)).sum() - 0.5 * len(mu) * np.log(2 * np.pi)


def _em_map(x, points: _Points, floor, correlated: bool):
    """One EM step of ``(μ, Σ)`` with the points held, and the marginal log-likelihood at ``x``."""
    R = points.theta.shape[-1]
    mu, L = _unpack(x, R, correlated)
    log_w = points.base + _prior_log_density(points.theta, mu, L)
    top = log_w.max(axis=1, keepdims=True)
    w = np.exp(log_w - top)
    total = w.sum(axis=1, keepdims=True)
    w /= total
    mean = np.einsum("iq,iqr->ir", w, points.theta)
    new_mu = mean.mean(axis=0)
    d = points.theta - new_mu
    cov = (d * w[..., None]).reshape(-1, R).T @ d.reshape(-1, R) / len(mean)
    cov = cov if correlated else np.diag(np.diag(cov))
    cov = cov + np.diag(np.maximum(floor - np.diag(cov), 0.0))
    value = float((np.log(total) + top).sum())
    return _pack(new_mu, cov, correlated), value


def maximise_prior(points: _Points, mu, cov, floor, correlated: bool):
    """``(μ, Σ)`` maximising the marginal likelihood with the points held: EM steps accelerated by
    SQUAREM (Varadhan & Roland 2008, its third step length), each extrapolation kept only where
    it does not lower the likelihood. Returns ``μ, Σ`` and the EM maps evaluated."""
    x = _pack(mu, cov, correlated)
    R = len(mu)
    evaluations = 0
    for _ in range(INNER_MAXITER // 3):
        x1, value0 = _em_map(x, points, floor, correlated)
        x2, value1 = _em_map(x1, points, floor, correlated)
        r, v = x1 - x, x2 - 2 * x1 + x
        alpha = -np.sqrt((r @ r) / max(v @ v, 1e-300))
        alpha = min(alpha, -1.0)
        candidate = x - 2 * alpha * r + alpha**2 * v
        x3, value3 = _em_map(candidate, points, floor, correlated)
        _, value2 = _em_map(x2, points, floor, correlated)
        evaluations += 4
        new = x3 if np.isfinite(value3) and value3 >= value2 - 1e-12 * abs(value2) else x2
        done = np.abs(new - x).max() < INNER_TOL
        x = new
        if done:
            break
    mu, L = _unpack(x, R, correlated)
    return mu, L @ L.T, evaluations


# ---------------------------------------------------------------------- the standard errors
def _directions(R: int, correlated: bool) -> list[tuple[int, int]]:
    """The free elements of ``Σ``: its diagonal, or its lower triangle, as ``(r, s)``, r ≥ s."""
    return [(r, r) for r in range(R)] if not correlated else [(r, s) for r in range(R) for s in range(r + 1)]


def _direction_matrix(R: int, r: int, s: int) -> np.ndarray:
    E = np.zeros((R, R))
    E[r, s] = E[s, r] = 1.0
    return E


def _complete_scores(points: _Points, w, mu, cov, pairs) -> np.ndarray:
    """Each point's complete-data score ``(I, Q, P)``: fixed components, ``μ``, ``Σ``'s free
    elements (``½ K_rr``, ``K_rs`` with ``K = Σ⁻¹(dd' − Σ)Σ⁻¹``)."""
    P_inv = np.linalg.inv(cov)
    d = points.theta - mu
    a = d @ P_inv  # Σ⁻¹ d
    rows, cols = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    K = a[..., rows] * a[..., cols] - P_inv[rows, cols]
    K = np.where(rows == cols, 0.5 * K, K)
    return np.concatenate([points.score, a, K], axis=-1)


def hyper_information(points: _Points, mu, cov, correlated: bool):
    """The observed information of ``(f, μ, Σ's free elements)`` by Louis' formula, the outer
    product of the individuals' scores (for the sandwich), the scores, and the complete-data
    information (Louis' first term), at the points' weights."""
    I, R = points.theta.shape[0], len(mu)
    pairs = _directions(R, correlated)
    w = _weights(points.base + _prior_log_density(points.theta, mu, np.linalg.cholesky(cov)))
    c = _complete_scores(points, w, mu, cov, pairs)
    P = c.shape[-1]
    cbar = np.einsum("iq,iqp->ip", w, c)
    spread = (c * w[..., None]).reshape(-1, P).T @ c.reshape(-1, P) - cbar.T @ cbar
    d = points.theta - mu
    m = np.einsum("iq,iqr->ir", w, d).sum(axis=0)
    S = (d * w[..., None]).reshape(-1, R).T @ d.reshape(-1, R)
    Pi = np.linalg.inv(cov)
    E = [Pi @ _direction_matrix(R, r, s) @ Pi for r, s in pairs]
    nf = points.score.shape[-1]
    B = np.zeros((P, P))
    B[:nf, :nf] = points.fixed_information
    B[nf:nf + R, nf:nf + R] = I * Pi
    for k, Ek in enumerate(E):
        B[nf:nf + R, nf + R + k] = B[nf + R + k, nf:nf + R] = Ek @ m
        for j, Ej in enumerate(E):
            B[nf + R + k, nf + R + j] = (-0.5 * I * np.trace(Ek @ cov @ Ej @ cov)
                                         + 0.5 * np.trace((Ek @ cov @ Ej + Ej @ cov @ Ek) @ S))
    return B - spread, cbar.T @ cbar, cbar, B


# ---------------------------------------------------------------------- the loop
def start_covariance(mp: MixingProblem) -> np.ndarray:
    """The starting ``Σ``: each component's spread one unit of utility per situation
    (``Σ_rr = n / Σ_i I_i,rr``, the choice information at stage 1's ``p̂``), whatever its units."""
    b = mp.problem
    ids = np.flatnonzero(b.n_situations > 0)
    info = b.chunk(ids).terms(np.zeros((len(ids), b.R)))["information"].sum(axis=0)
    return np.diag(b.n_situations.sum() / np.maximum(np.diag(info), 1e-300))


def _fixed_step(points: _Points, mu, cov):
    """The Newton step of the fixed coefficients (observed information where it is positive
    definite, else the expected one) and its standard errors."""
    nf = points.score.shape[-1]
    if not nf:
        return np.zeros(0), np.zeros(0)
    w = _weights(points.base + _prior_log_density(points.theta, mu, np.linalg.cholesky(cov)))
    sbar = np.einsum("iq,iqf->if", w, points.score)
    spread = (points.score * w[..., None]).reshape(-1, nf).T @ points.score.reshape(-1, nf) - sbar.T @ sbar
    info = points.fixed_information - spread
    if np.linalg.eigvalsh(info).min() <= 0:
        info = points.fixed_information
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    step = np.linalg.solve(info, sbar.sum(axis=0))
    return np.clip(step, -FIXED_STEP * se, FIXED_STEP * se), se


def _change(old: np.ndarray, new: np.ndarray, information: np.ndarray) -> float:
    """The move of ``(f, μ, Σ's free elements)`` in the metric of their information,
    ``√(Δ'IΔ)``: in standard errors along the direction moved, whatever the units and however
    correlated the parameters (Louis' information where it is positive definite, else its
    complete-data part)."""
    step = new - old
    return float(np.sqrt(max(step @ information @ step, 0.0)))


def _metric(points: _Points, mu, cov, correlated: bool) -> np.ndarray:
    """Louis' information of the hyperparameters where positive definite, else its complete-data
    part (always positive definite): the metric of :func:`_change`."""
    information, _, _, complete = hyper_information(points, mu, cov, correlated)
    return information if np.linalg.eigvalsh(information)[0] > 0 else complete


def _hyper_vector(fixed, mu, cov, correlated: bool) -> np.ndarray:
    return np.concatenate([fixed, mu, [cov[r, c] for r, c in _directions(len(mu), correlated)]])


def _proposal_covariance(H: np.ndarray) -> np.ndarray:
    """``H⁻¹`` of positive definite blocks (the individual duals' Hessians with the normal
    reference), inverted Jacobi-scaled so that the units do not matter."""
    d = np.sqrt(np.einsum("irr->ir", H))
    return np.linalg.inv(H / (d[:, :, None] * d[:, None, :])) / (d[:, :, None] * d[:, None, :])


def learn_mixing(mp: MixingProblem, *, tol: float = 0.02, maxiter: int = 50, n_points: int = 128,
                 chunk: int = 4096, seed: int = 0, cells: int = 1 << 20, solve: dict | None = None) -> dict:
    """``(f, μ, Σ)`` by maximum marginal likelihood (module docstring), until no parameter moves
    by more than ``tol`` standard errors; ``solve``: the individual duals' ``tol`` and ``maxiter``.

    Returns
    -------
    dict
        ``fixed``, ``mu``, ``cov``, ``information`` and ``outer`` (Louis' information and the
        scores' outer product of ``(f, μ, Σ's free elements)``), ``scores`` (per individual),
        ``delta`` (the last stage-2 solution, centred on ``mu``), ``ess`` (per individual),
        ``loglik`` (the marginal log-likelihood), ``nit``, ``converged``, ``at_floor``.
    """
    b = mp.problem
    fixed, mu, cov = mp.beta_fixed.copy(), mp.beta_random.copy(), start_covariance(mp)
    floor = VARIANCE_FLOOR * np.diag(cov)
    z = shifted_points(b.n_groups, n_points, b.R + 1, seed)
    delta, converged = np.zeros((b.n_groups, b.R)), False
    nit = 0
    while nit < maxiter:
        nit += 1
        solved = solve_groups(mp.individual_problem(fixed, mu, cov), chunk_size=chunk, x0=delta,
                              **(solve or {}))
        points = importance_points(mp, mu - solved["delta"], _proposal_covariance(solved["hessian"]), fixed,
                                   mu, cov, z, cells)
        new_mu, new_cov, _ = maximise_prior(points, mu, cov, floor, mp.correlated)
        step, _ = _fixed_step(points, new_mu, new_cov)
        information = _metric(points, new_mu, new_cov, mp.correlated)
        change = _change(_hyper_vector(fixed, mu, cov, mp.correlated),
                         _hyper_vector(fixed + step, new_mu, new_cov, mp.correlated), information)
        delta = solved["delta"] + (new_mu - mu)  # the same β_i, centred on the new μ
        fixed, mu, cov = fixed + step, new_mu, new_cov
        if change <= tol:
            converged = True
            break
    information, outer, scores, _ = hyper_information(points, mu, cov, mp.correlated)
    w = _weights(points.base + _prior_log_density(points.theta, mu, np.linalg.cholesky(cov)))
    loglik = float((logsumexp(points.base + _prior_log_density(points.theta, mu, np.linalg.cholesky(cov)),
                              axis=1) - np.log(n_points)).sum())
    return {"fixed": fixed, "mu": mu, "cov": cov, "information": information, "outer": outer,
            "scores": scores, "delta": delta, "ess": 1.0 / (w**2).sum(axis=1), "loglik": loglik, "nit": nit,
            "converged": converged, "at_floor": np.diag(cov) <= floor * (1 + 1e-9)}


# ---------------------------------------------------------------------- the stage
@dataclass(frozen=True, eq=False)
class MixingStage:
    """The population stage of a mixed tier with learnt pooling: the fixed coefficients and the
    mixing distribution ``N(μ, Σ)`` of the random components, by maximum marginal likelihood
    (:func:`learn_mixing`).

    Attributes
    ----------
    components : tuple of str
        The random components (the individual stage's).
    fixed_names : tuple of str
        Stage-1 names of the fixed components (``alpha[a]``, ``beta[x]``).
    fixed, mu, cov : ndarray
        Their estimates: fixed coefficients, ``μ`` and ``Σ`` (diagonal unless ``correlated``).
    correlated : bool
    information, outer : ndarray (P, P)
        Louis' observed information of ``(fixed, μ, Σ's free elements)`` and the outer product
        of the individuals' scores.
    ess : ndarray (individual,)
        Effective number of importance points per individual it was learnt from.
    loglik : float
        The marginal log-likelihood (importance-sampled).
    nit : int
        Outer iterations.
    converged : bool
    n_points : int
        Importance points per individual.
    individuals : tuple
        The individuals it was learnt from (all, or a seeded sample of ``mixing_individuals``).
    at_floor : ndarray (component,) bool
        Components whose variance reached the floor (no heterogeneity found).
    """

    components: tuple
    fixed_names: tuple
    fixed: np.ndarray
    mu: np.ndarray
    cov: np.ndarray
    correlated: bool
    information: np.ndarray
    outer: np.ndarray
    ess: np.ndarray
    loglik: float
    nit: int
    converged: bool
    n_points: int
    individuals: tuple
    at_floor: np.ndarray

    level = "mixing"

    @property
    def n_individuals(self) -> int:
        return len(self.individuals)

    @property
    def hyper_names(self) -> list[str]:
        """Names of ``(fixed, μ, Σ's free elements)``, the rows of :attr:`information`."""
        labels = list(self.components)
        return [*self.fixed_names, *(f"mu[{c}]" for c in labels),
                *(f"cov[{labels[c]}, {labels[r]}]" for r, c in self.pairs)]

    def to_dataset(self) -> xr.Dataset:
        """The stage as the ``maxent_mixing`` group of a fit's DataTree."""
        one, hyper = {RANDOM: list(self.components)}, self.hyper_names
        both = {"dims": (HYPER, HYPER_), "coords": {HYPER: hyper, HYPER_: hyper}}
        out = {"mu": xr.DataArray(self.mu, dims=(RANDOM,), coords=one),
               "sigma": xr.DataArray(self.sigma, dims=(RANDOM,), coords=one),
               "cov": xr.DataArray(self.cov, dims=(RANDOM, RANDOM_),
                                   coords=one | {RANDOM_: list(self.components)}),
               "fixed": xr.DataArray(self.fixed, dims=(FIXED,), coords={FIXED: list(self.fixed_names)}),
               "information": xr.DataArray(self.information, **both),
               "outer": xr.DataArray(self.outer, **both),
               "at_floor": xr.DataArray(self.at_floor, dims=(RANDOM,), coords=one),
               "ess": xr.DataArray(self.ess, dims=(MIXING_INDIVIDUAL,),
                                   coords={MIXING_INDIVIDUAL: list(self.individuals)})}
        attrs = {"stage": "mixing distribution by maximum marginal likelihood, importance-sampled around the "
                          "individual stage", "loglik": self.loglik, "iterations": self.nit,
                 "converged": int(self.converged), "n_points": self.n_points,
                 "correlated": int(self.correlated)}
        return xr.Dataset(out, attrs=attrs)

    @property
    def sigma(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    @property
    def corr(self) -> np.ndarray:
        return self.cov / np.outer(self.sigma, self.sigma)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return _directions(len(self.mu), self.correlated)

    @cached_property
    def covariance(self) -> np.ndarray:
        """Of ``(fixed, μ, Σ's free elements)``: the inverse observed information."""
        return covariance(self.information)[0]

    @cached_property
    def covariance_robust(self) -> np.ndarray:
        """The sandwich ``I⁻¹ (Σ_i s_i s_i') I⁻¹``."""
        return self.covariance @ self.outer @ self.covariance

    def coefficients(self, names) -> np.ndarray:
        """The centre of the individual stage as coefficients in the order of stage 1's ``names``:
        the fixed estimates, and ``μ`` for the random components."""
        value = dict(zip(self.fixed_names, self.fixed, strict=True))
        value |= dict(zip([population_name(label) for label in self.components], self.mu, strict=True))
        return np.array([value[name] for name in names])

    def centre_covariance(self, names, robust: bool = False) -> np.ndarray:
        """The covariance of :meth:`coefficients` (stage 1's order)."""
        order = [*self.fixed_names, *(population_name(label) for label in self.components)]
        idx = [order.index(name) for name in names]
        cov = self.covariance_robust if robust else self.covariance
        return cov[np.ix_(idx, idx)]

    def table(self, robust: bool = False) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Names (the Bayesian tier's: the fixed ``alpha``/``beta``, ``mu[c]``, ``sigma[c]``, and
        ``corr[c, d]`` when correlated), estimates and standard errors (the delta method from
        the covariance of ``Σ``'s elements)."""
        R, nf, labels = len(self.mu), len(self.fixed), list(self.components)
        pairs = self.pairs
        estimate, J = [*self.fixed, *self.mu, *self.sigma], np.zeros((nf + 2 * R, nf + R + len(pairs)))
        J[:nf + R, :nf + R] = np.eye(nf + R)
        for k, (r, c) in enumerate(pairs):
            if r == c:
                J[nf + R + r, nf + R + k] = 0.5 / self.sigma[r]
        names = [*self.fixed_names, *(f"mu[{c}]" for c in labels), *(f"sigma[{c}]" for c in labels)]
        rows = []
        for k, (r, c) in enumerate(pairs):
            if r != c:
                row = np.zeros(J.shape[1])
                rho, sr, sc = self.corr[r, c], self.sigma[r], self.sigma[c]
                row[nf + R + k] = 1.0 / (sr * sc)
                row[nf + R + pairs.index((r, r))] = -0.5 * rho / sr**2
                row[nf + R + pairs.index((c, c))] = -0.5 * rho / sc**2
                rows.append(row)
                estimate.append(rho)
                names.append(f"corr[{labels[c]}, {labels[r]}]")
        J = np.vstack([J, *rows]) if rows else J
        cov = self.covariance_robust if robust else self.covariance
        se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", J, cov, J), 0.0, None))
        return names, np.array(estimate), se


def mixing_stage(mp: MixingProblem, learnt: dict, components, n_points: int, individuals) -> MixingStage:
    """A :class:`MixingStage` from :func:`learn_mixing`'s output (``individuals``: the labels of
    ``mp``'s groups)."""
    return MixingStage(components=tuple(components), fixed_names=mp.fixed_names, fixed=learnt["fixed"],
                       mu=learnt["mu"], cov=learnt["cov"], correlated=mp.correlated,
                       information=learnt["information"], outer=learnt["outer"], ess=learnt["ess"],
                       loglik=learnt["loglik"], nit=int(learnt["nit"]), converged=bool(learnt["converged"]),
                       n_points=int(n_points), individuals=tuple(individuals), at_floor=learnt["at_floor"])


def saved_mixing(group: xr.Dataset) -> MixingStage:
    """A :class:`MixingStage` from its DataTree group (:meth:`MixingStage.to_dataset`)."""
    attrs = group.attrs
    return MixingStage(components=tuple(group[RANDOM].values.tolist()),
                       fixed_names=tuple(group[FIXED].values.tolist()), fixed=group["fixed"].values,
                       mu=group["mu"].values, cov=group["cov"].values, correlated=bool(attrs["correlated"]),
                       information=group["information"].values, outer=group["outer"].values,
                       ess=group["ess"].values, loglik=float(attrs["loglik"]), nit=int(attrs["iterations"]),
                       converged=bool(attrs["converged"]), n_points=int(attrs["n_points"]),
                       individuals=tuple(group[MIXING_INDIVIDUAL].values.tolist()),
                       at_floor=group["at_floor"].values.astype(bool))
