"""The mixing distribution of the MaxEnt mixed logit, learnt from its individual stage
(``individual_support="learn"``, the default at the mixed tiers; ``docs/theory.md``, "The
pooling learnt from the data").

Stage 2 with a normal reference ``N(0, A)`` for the noise on each individual's moments adds
``½ δ'Aδ`` to every individual's dual: its solution is the mode of the individual's logit
likelihood under the prior ``β_i ~ N(μ, Σ)`` with ``A = Σ⁻¹``, centred on the population's
``p⁰`` at ``μ`` (and at the fixed coefficients ``f``). The population stage learns ``(f, μ, Σ)``
by maximising the penalised marginal likelihood
``Σ_i ln ∫ L_i(f, β) N(β; μ, Σ) dβ + c ln|Σ|`` (empirical Bayes; the penalty, a Wishart prior's
log density, keeps ``Σ`` positive definite: ``BOUNDARY_PENALTY``), in two phases:

1. **Laplace**: each individual's posterior replaced by ``N(β̂_i, V_i)``, its stage-2 mode and
   inverse Hessian; the EM map of the law of total variance, ``μ = mean_i β̂_i``,
   ``Σ = Σ_i (V_i + (β̂_i − μ)(β̂_i − μ)') / (I − 2c)``, and a Newton step in ``f``, accelerated by
   SQUAREM. Deterministic and cheap (a stage-2 solve per map); biased toward 0 where each
   individual's choices say little (one situation each).
2. **Importance sampling**: quasi-Monte Carlo points ``β_iq`` of the proposal
   ``⅞ t₅(β̂_i, 1.2² V_i) + ⅛ N(μ, Σ)`` held while Newton steps on Louis' information maximise
   the importance-sampled likelihood; then the points are re-centred on the new modes and
   again, until the estimate moves by at most ``IMPORTANCE_TOL`` standard errors per
   parameter. If it still moves by more than ``MC_SHIFT_LIMIT`` (many random components, few
   situations: a few points carry each individual's weight), the Laplace estimate is kept
   and the stage says so.

The standard errors come from the observed information by Louis' formula (the complete-data
information less the posterior variance of the complete-data score) on the last points, or
from the outer product of the individuals' scores where that is not positive definite.
"""

from __future__ import annotations

import dataclasses
import zlib
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
from pymc_maxent.numerics import Identification, identification, jacobi_scaled, spectrum
from pymc_maxent.specification import resolve

#: Inflation of the proposal's scale over ``V_i``, and its Student t's degrees of freedom
#: (posteriors of logits are skewed, with heavier tails than their Laplace approximation).
PROPOSAL_SCALE = 1.2
PROPOSAL_DOF = 5.0
#: Share of the points drawn from the prior ``N(μ, Σ)`` (defensive importance sampling).
PRIOR_SHARE = 0.125
#: Smallest variance of a component, relative to its starting value (``σ → 0`` is a boundary).
VARIANCE_FLOOR = 1e-8
#: Weight ``c`` of the boundary-avoiding penalty ``c ln|Σ|`` on the marginal likelihood: the log
#: density of a Wishart prior with ``R + 2.5`` degrees of freedom and an infinite scale, ``c =
#: (ν − R − 1)/2`` (Chung, Gelman, Rabe-Hesketh, Liu & Dorie 2015, blme's default). It keeps ``Σ``
#: positive definite when the data cannot tell a variance from 0, at a cost of order ``1/I``.
BOUNDARY_PENALTY = 0.75
#: The importance-sampled estimate is kept when re-centring its points moves it by at most this
#: many standard errors per parameter (root mean square); else the points decide it more than the
#: data do (a few points carry each individual's weight) and the Laplace estimate is kept.
MC_SHIFT_LIMIT = 0.5
#: The Laplace phase's tolerance as a share of ``mixing_tol``: its end is the importance points'
#: centre, so a loose end would let round-off move the final estimate by a share of ``tol``.
LAPLACE_TOL_SHARE = 0.1
#: Passes of the importance-sampled phase (each re-centres the points on the last estimate's
#: modes), and the move (standard errors per parameter, root mean square) below which they stop
#: early. A fixed count, not a tolerance of the order of the Monte Carlo error, so that the
#: estimate does not jump when a rescaled input's round-off flips a stopping decision.
IMPORTANCE_PASSES = 3
IMPORTANCE_TOL = 0.01
#: Largest Newton step of a fixed coefficient, in its standard errors.
FIXED_STEP = 10.0
#: A parameter is unidentified when it loads more than this on a null direction of the scaled
#: information (a unit vector): a null direction has round-off loadings on every parameter.
NULL_LOADING = 1e-2
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
        rows = b.rows_of_groups(groups)
        local = np.repeat(np.arange(len(groups)), b.n_situations[groups])
        G_noise = b.G[rows] if b.G_noise is b.G else b.G_noise[rows]  # stage 3 reads its centring
        sub = dataclasses.replace(b, G=b.G[rows], G_noise=G_noise, log_p0=b.log_p0[rows],
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
                          "(individual_support='fixed')")
    position = {name: k for k, name in enumerate(names)}
    fixed_names = tuple(population_name(label) for label in fixed)
    base = dataclasses.replace(problem, support=None, precision=None, scale=np.ones(problem.n_groups))
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


def shifted_points(n_groups: int, n_points: int, dim: int, seed: int = 0, keys=None) -> np.ndarray:
    """Uniform points ``(group, point, dim)``: one scrambled Sobol set, shifted modulo 1 by a
    seeded uniform vector per group (a Cranley-Patterson rotation), so that each group's
    integral is a randomised quasi-Monte Carlo estimate independent of the others' (their errors
    average out over individuals rather than add up). With ``keys`` (a label per group) each
    shift is seeded by its group's label, not its position: the points, and so the estimates,
    do not depend on the order of the individuals."""
    base = qmc.Sobol(dim, scramble=True, rng=seed).random(2 ** int(np.ceil(np.log2(n_points))))[:n_points]
    if keys is None:
        shift = np.random.default_rng(seed).random((n_groups, 1, dim))
    else:
        shift = np.array([np.random.default_rng([seed, zlib.crc32(str(key).encode())]).random((1, dim))
                          for key in keys])
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
    prior = _log_normal(theta - mu, Lp)
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
    """``ln N(d; 0, LL')`` for points ``d`` (I, Q, R) and factors ``L``, one per individual
    (I, R, R) or one for all (R, R)."""
    x = np.matmul(d, np.swapaxes(np.linalg.inv(L), -1, -2))
    logdet = np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
    logdet = logdet[:, None] if np.ndim(logdet) else logdet
    return -0.5 * (x**2).sum(axis=-1) - logdet - 0.5 * d.shape[-1] * np.log(2 * np.pi)


def importance_points(mp: MixingProblem, mode, V, fixed, mu, cov, z, chunk: int, proposal=None) -> _Points:
    """The points, in chunks of individuals (about ``chunk`` situation × point × alternative
    cells each), with their log-likelihoods and the fixed components' scores; ``proposal``:
    the ``(μ, Σ)`` of the proposal's prior part (default ``mu, cov``)."""
    b = mp.problem
    theta, log_q = _proposal(mode, V, *(proposal or (mu, cov)), z)
    I, Q, _ = theta.shape
    nf = mp.F.shape[-1]
    base, score, info = np.empty((I, Q)), np.zeros((I, Q, nf)), np.zeros((nf, nf))
    log_p0 = mp.log_prior(fixed, mu)
    prior = _log_normal(theta - mu, np.linalg.cholesky(cov))
    per_individual = Q * b.available.shape[1] * max(1.0, float(b.n_situations.mean()))
    step = max(1, int(chunk // per_individual))
    for s in range(0, I, step):
        ids = np.arange(s, min(s + step, I))
        rows = b.rows_of_groups(ids)
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


# ---------------------------------------------------------------------- the standard errors
def _directions(R: int, correlated: bool) -> list[tuple[int, int]]:
    """The free elements of ``Σ``: its diagonal, or its lower triangle, as ``(r, s)``, r ≥ s."""
    return [(r, r) for r in range(R)] if not correlated else [(r, s) for r in range(R) for s in range(r + 1)]


def _direction_matrix(R: int, r: int, s: int) -> np.ndarray:
    E = np.zeros((R, R))
    E[r, s] = E[s, r] = 1.0
    return E


def _complete_scores(points: _Points, mu, cov, pairs) -> np.ndarray:
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
    w = _weights(points.base + _log_normal(points.theta - mu, np.linalg.cholesky(cov)))
    c = _complete_scores(points, mu, cov, pairs)
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
            B[nf + R + k, nf + R + j] = (-0.5 * (I - 2 * BOUNDARY_PENALTY) * np.trace(Ek @ cov @ Ej @ cov)
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


# ---------------------------------------------------------------------- the Laplace phase
@dataclass
class _LaplaceStep:
    """One step of the Laplace EM from ``(f, μ, Σ)``: the image ``(fixed, mu, cov)``, the fixed
    coefficients' profile information at the step's start, and stage 2's solution there."""

    fixed: np.ndarray
    mu: np.ndarray
    cov: np.ndarray
    fixed_information: np.ndarray
    solved: dict


def laplace_step(mp: MixingProblem, fixed, mu, cov, floor, x0, solve: dict, chunk: int) -> _LaplaceStep:
    """The EM map of ``(f, μ, Σ)`` with each individual's posterior replaced by its Laplace
    approximation ``N(β̂_i, V_i)`` (stage 2 at the prior ``N(μ, Σ)``: its mode and inverse
    Hessian): ``μ ← mean β̂_i``, ``Σ ← (Σ_i V_i + (β̂_i − μ)(β̂_i − μ)') / (I − 2c)`` (the law of
    total variance, penalised: ``BOUNDARY_PENALTY``), and a Newton step in ``f`` on the profile
    information ``Σ_t F'WF − Σ_i C_i H_i⁻¹ C_i'`` (``C_i = Σ_t F'WG``, ``W = diag p − pp'``)."""
    solved = solve_groups(mp.individual_problem(fixed, mu, cov), chunk_size=chunk, x0=x0, **solve)
    delta, H = solved["delta"], solved["hessian"]
    modes, V = mu - delta, _proposal_covariance(H)
    I, R = modes.shape
    d = modes - modes.mean(axis=0)
    new_cov = (V.sum(axis=0) + d.T @ d) / (I - 2 * BOUNDARY_PENALTY)
    new_cov = new_cov if mp.correlated else np.diag(np.diag(new_cov))
    new_cov = new_cov + np.diag(np.maximum(floor - np.diag(new_cov), 0.0))
    step, information = _laplace_fixed_step(mp, solved["p"], H)
    return _LaplaceStep(fixed=fixed + step, mu=modes.mean(axis=0), cov=new_cov, fixed_information=information,
                        solved=solved)


def _laplace_fixed_step(mp: MixingProblem, p, H):
    """The fixed coefficients' Newton step at the individuals' modes (:func:`laplace_step`) and
    their profile information."""
    b, F = mp.problem, mp.F
    nf = F.shape[-1]
    if not nf:
        return np.zeros(0), np.zeros((0, 0))
    rows = np.arange(len(b.chosen))
    Fbar = np.einsum("nj,njf->nf", p, F)
    score = (F[rows, b.chosen] - Fbar).sum(axis=0)
    Gbar = np.einsum("nj,njr->nr", p, b.G)
    FWF = np.einsum("nj,njf,njg->fg", p, F, F) - Fbar.T @ Fbar
    FWG = np.einsum("nj,njf,njr->nfr", p, F, b.G) - Fbar[:, :, None] * Gbar[:, None, :]
    C = np.zeros((b.n_groups, nf, b.R))
    np.add.at(C, b.group, FWG)
    information = FWF - np.einsum("ifr,irs,igs->fg", C, np.linalg.inv(H), C)
    if np.linalg.eigvalsh(information)[0] <= 0:
        information = FWF
    se = np.sqrt(np.diag(np.linalg.inv(information)))
    return np.clip(np.linalg.solve(information, score), -FIXED_STEP * se, FIXED_STEP * se), information


def _laplace_vector(fixed, mu, cov, correlated: bool) -> np.ndarray:
    return np.concatenate([fixed, _pack(mu, cov, correlated)])


def _laplace_parts(x, nf: int, R: int, correlated: bool):
    mu, L = _unpack(x[nf:], R, correlated)
    return x[:nf], mu, L @ L.T


def _complete_metric(I: int, fixed_information, cov, correlated: bool) -> np.ndarray:
    """The complete-data information of ``(f, μ, Σ's free elements)`` (as if each ``β_i`` were
    seen): block diagonal, ``f``'s, ``I Σ⁻¹`` and ``½ I tr(Σ⁻¹E_kΣ⁻¹E_j)``. It overstates the
    observed information, so a move below ``tol`` in its metric is below ``tol`` standard errors."""
    R, nf = len(cov), len(fixed_information)
    pairs = _directions(R, correlated)
    Pi = np.linalg.inv(cov)
    E = [_direction_matrix(R, r, s) for r, s in pairs]
    M = np.zeros((nf + R + len(pairs),) * 2)
    M[:nf, :nf] = fixed_information
    M[nf:nf + R, nf:nf + R] = I * Pi
    for k, Ek in enumerate(E):
        for j, Ej in enumerate(E):
            M[nf + R + k, nf + R + j] = 0.5 * I * np.trace(Pi @ Ek @ Pi @ Ej)
    return M


def laplace_mixing(mp: MixingProblem, fixed, mu, cov, floor, *, tol: float, maxiter: int, solve: dict,
                   chunk: int):
    """The fixed point ``(f, μ, Σ)`` of the Laplace EM map :func:`laplace_step`,
    accelerated by SQUAREM (Varadhan & Roland 2008, third step length; an extrapolation is kept
    only where it does not raise the map's residual), until no parameter moves by more than ``tol``
    in the complete-data metric (:func:`_complete_metric`). Returns ``fixed, mu, cov``, stage 2's
    solution at them, the cycles and whether it converged."""
    nf, R, correlated = len(fixed), len(mu), mp.correlated
    x = _laplace_vector(fixed, mu, cov, correlated)
    delta = np.zeros((mp.problem.n_groups, R))

    def image(x, delta):
        step = laplace_step(mp, *_laplace_parts(x, nf, R, correlated), floor, delta, solve, chunk)
        moved = step.solved["delta"] + (step.mu - _laplace_parts(x, nf, R, correlated)[1])
        return _laplace_vector(step.fixed, step.mu, step.cov, correlated), step, moved

    converged, nit = False, 0
    while nit < maxiter:
        nit += 1
        x1, _, d1 = image(x, delta)
        x2, s2, d2 = image(x1, d1)
        r, v = x1 - x, x2 - 2 * x1 + x
        alpha = min(-np.sqrt((r @ r) / max(v @ v, 1e-300)), -1.0)
        candidate = x - 2 * alpha * r + alpha**2 * v
        information = _complete_metric(len(delta), s2.fixed_information,
                                       _laplace_parts(x, nf, R, correlated)[2], correlated)

        def moved(a, b, information=information):
            return _change(_hyper_vector(*_laplace_parts(a, nf, R, correlated), correlated),
                           _hyper_vector(*_laplace_parts(b, nf, R, correlated), correlated), information)

        try:  # SQUAREM's stabilised extrapolation, kept where its residual is below the last map's
            x3, s3, d3 = image(candidate, d2)
            better = moved(candidate, x3) <= moved(x1, x2)
        except (np.linalg.LinAlgError, FloatingPointError):
            better = False
        new, new_delta, last = (x3, d3, s3) if better else (x2, d2, s2)
        change = moved(x, new)
        x, delta = new, new_delta
        if change <= tol:
            converged = True
            break
    fixed, mu, cov = _laplace_parts(x, nf, R, correlated)
    return fixed, mu, cov, last.solved, nit, converged


def _penalised_loglik(points: _Points, mu, cov) -> float:
    """The importance-sampled marginal log-likelihood (less ``n ln Q``) plus ``c ln|Σ|``."""
    L = np.linalg.cholesky(cov)
    log_w = points.base + _log_normal(points.theta - mu, L)
    return float(logsumexp(log_w, axis=1).sum()) + 2 * BOUNDARY_PENALTY * float(np.log(np.diag(L)).sum())


def _penalty_gradient(cov, pairs) -> np.ndarray:
    """``∂ c ln|Σ| / ∂Σ_rs`` over ``Σ``'s free elements (``c tr(Σ⁻¹E_rs)``)."""
    Pi = np.linalg.inv(cov)
    return np.array([BOUNDARY_PENALTY * (Pi[r, r] if r == s else 2 * Pi[r, s]) for r, s in pairs])


def _with_step(x, nf: int, R: int, pairs):
    """``(f, μ, Σ)`` from the vector of :func:`_hyper_vector`."""
    cov = np.zeros((R, R))
    for k, (r, s) in enumerate(pairs):
        cov[r, s] = cov[s, r] = x[nf + R + k]
    return x[:nf], x[nf:nf + R], cov


def _newton_direction(information, gradient) -> np.ndarray:
    """``H⁻¹g`` with ``H`` the Jacobi-scaled ``information``, its eigenvalues below ``1e-3`` of
    the largest raised to their absolute value (at least that floor): a Newton step where the
    likelihood is concave, an ascent direction where it is not (the step is then halved)."""
    d = np.sqrt(np.abs(np.diag(information)))
    d = np.where(d > 0, d, 1.0)
    values, vectors = np.linalg.eigh(information / np.outer(d, d))
    values = np.maximum(np.abs(values), 1e-3 * np.abs(values).max())
    return (vectors @ ((vectors.T @ (gradient / d)) / values)) / d


def importance_mixing(mp: MixingProblem, fixed, mu, cov, floor, delta, *, tol: float, maxiter: int,
                      z, solve: dict, chunk: int, cells: int):
    """``(f, μ, Σ)`` maximising the importance-sampled marginal likelihood (penalised), its
    points drawn once around the individuals' modes at the starting ``(f, μ, Σ)`` and held:
    Newton steps on Louis' observed information (its complete-data part where Louis' is not
    positive definite), halved until the likelihood does not fall and ``Σ`` stays positive
    definite above the floor, until no parameter moves by more than ``tol`` of its standard
    errors. Returns ``fixed, mu, cov``, the points at them, the iterations and whether it
    converged."""
    solved = solve_groups(mp.individual_problem(fixed, mu, cov), chunk_size=chunk, x0=delta, **solve)
    mode, V, centre = mu - solved["delta"], _proposal_covariance(solved["hessian"]), (mu.copy(), cov.copy())
    nf, R, pairs = len(fixed), len(mu), _directions(len(mu), mp.correlated)

    def at(fixed, mu, cov):
        points = importance_points(mp, mode, V, fixed, mu, cov, z, cells, proposal=centre)
        return points, _penalised_loglik(points, mu, cov)

    points, value = at(fixed, mu, cov)
    converged, nit = False, 0
    while nit < maxiter:
        nit += 1
        information, _, cbar, complete = hyper_information(points, mu, cov, mp.correlated)
        gradient = cbar.sum(axis=0)
        gradient[nf + R:] += _penalty_gradient(cov, pairs)
        metric = information if np.linalg.eigvalsh(information)[0] > 0 else complete
        step = _newton_direction(information, gradient)
        x = _hyper_vector(fixed, mu, cov, mp.correlated)
        for _ in range(30):
            f_new, mu_new, cov_new = _with_step(x + step, nf, R, pairs)
            if np.linalg.eigvalsh(cov_new)[0] > 0 and np.all(np.diag(cov_new) >= floor):
                new_points, new_value = at(f_new, mu_new, cov_new)
                if new_value >= value - 1e-10 * abs(value):
                    break
            step = step / 2
        else:
            converged = True  # no step along the ascent direction raises the likelihood: at its top
            break
        change = _change(x, x + step, metric)
        fixed, mu, cov, points, value = f_new, mu_new, cov_new, new_points, new_value
        if change <= tol:
            converged = True
            break
    return fixed, mu, cov, points, nit, converged


def learn_mixing(mp: MixingProblem, *, tol: float = 0.02, maxiter: int = 50, n_points: int = 128,
                 chunk: int = 4096, seed: int = 0, cells: int = 1 << 20, solve: dict | None = None,
                 keys=None) -> dict:
    """``(f, μ, Σ)`` by maximum penalised marginal likelihood: first under each individual's
    Laplace approximation (:func:`laplace_mixing`, deterministic), then importance-sampled
    (:func:`importance_mixing`, ``n_points`` per individual around their modes), twice: the
    second pass re-centres the points on the first's solution, and its move from the first
    (``mc_shift``, in standard errors) measures what the points still decide. The standard
    errors are Louis' (the last points); ``solve``: the individual duals' ``tol`` and ``maxiter``.

    Returns
    -------
    dict
        ``fixed``, ``mu``, ``cov``, ``information`` and ``outer`` (Louis' information, or the
        scores' outer product where Louis' is not positive definite, as at the Laplace estimate;
        and the scores' outer product, of ``(f, μ, Σ's free elements)``), ``scores`` (per
        individual), ``delta`` (the last stage-2 solution, centred on ``mu``), ``ess`` (per
        individual), ``loglik`` (the marginal log-likelihood), ``nit``, ``converged``,
        ``at_floor``, ``mc_shift``, ``method``.
    """
    b = mp.problem
    solve = solve or {}
    fixed, mu, cov = mp.beta_fixed.copy(), mp.beta_random.copy(), start_covariance(mp)
    floor = VARIANCE_FLOOR * np.diag(cov)
    fixed, mu, cov, solved, nit, laplace_converged = laplace_mixing(mp, fixed, mu, cov, floor,
                                                                    tol=LAPLACE_TOL_SHARE * tol,
                                                                    maxiter=maxiter, solve=solve, chunk=chunk)
    laplace = (fixed, mu, cov)
    z = shifted_points(b.n_groups, n_points, b.R + 1, seed, keys)
    delta, previous, mc_shift = solved["delta"], _hyper_vector(fixed, mu, cov, mp.correlated), np.inf
    for _ in range(IMPORTANCE_PASSES):
        fixed, mu, cov, points, n, ok = importance_mixing(mp, fixed, mu, cov, floor, delta, tol=tol,
                                                          maxiter=maxiter, z=z, solve=solve, chunk=chunk,
                                                          cells=cells)
        nit += n
        current = _hyper_vector(fixed, mu, cov, mp.correlated)
        mc_shift = _change(previous, current, _metric(points, mu, cov, mp.correlated)) / np.sqrt(len(current))
        previous = current
        if mc_shift <= IMPORTANCE_TOL:
            break
    method, converged = "importance", ok  # the Laplace phase only started it
    if mc_shift > MC_SHIFT_LIMIT or not ok:
        (fixed, mu, cov), method, converged = laplace, "laplace", laplace_converged
    solved = solve_groups(mp.individual_problem(fixed, mu, cov), chunk_size=chunk, x0=delta, **solve)
    if method == "laplace":  # the points around the Laplace estimate's modes, for its information
        points = importance_points(mp, mu - solved["delta"], _proposal_covariance(solved["hessian"]), fixed,
                                   mu, cov, z, cells)
    information, outer, scores, _ = hyper_information(points, mu, cov, mp.correlated)
    kind = "louis"
    if np.linalg.eigvalsh(jacobi_scaled(information)[0])[0] <= 0:  # not at the importance-sampled maximum
        information, kind = outer, "outer product"  # of the individuals' scores (BHHH)
    log_w = points.base + _log_normal(points.theta - mu, np.linalg.cholesky(cov))
    w = _weights(log_w)
    loglik = float((logsumexp(log_w, axis=1) - np.log(n_points)).sum())
    return {"fixed": fixed, "mu": mu, "cov": cov, "information": information, "outer": outer,
            "scores": scores, "delta": solved["delta"], "ess": 1.0 / (w**2).sum(axis=1), "loglik": loglik,
            "nit": nit, "converged": converged, "at_floor": np.diag(cov) <= floor * (1 + 1e-9),
            "mc_shift": mc_shift, "method": method, "information_kind": kind}


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
    method : {"importance", "laplace"}
        The estimate kept: importance-sampled, or the Laplace approximation's where re-centring
        the importance points still moved the importance-sampled one by more than
        ``MC_SHIFT_LIMIT`` standard errors per parameter.
    mc_shift : float
        That last move (standard errors per parameter, root mean square).
    information_kind : {"louis", "outer product"}
        :attr:`information` is Louis' observed information, or, where that is not positive
        definite (at the Laplace estimate, which does not maximise the importance-sampled
        likelihood), the outer product of the individuals' scores.
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
    method: str = "importance"
    mc_shift: float = 0.0
    information_kind: str = "louis"

    level = "mixing"

    @cached_property
    def identification(self) -> Identification:
        """Whether Louis' information identifies ``(fixed, μ, Σ's free elements)`` (its
        Jacobi-scaled condition number within the package's limit)."""
        return identification(self.information, None, self.hyper_names)

    @property
    def identified(self) -> bool:
        return bool(self.identification.identified)

    def describe(self) -> str:
        """How it was learnt, in words."""
        how = ("importance-sampled" if self.method == "importance" else
               f"Laplace approximation (the importance-sampled estimate still moved {self.mc_shift:.2g} "
               "standard errors per parameter when its points were re-centred)")
        text = (f"mixing distribution learnt from {self.n_individuals} individuals in {self.nit} iterations, "
                f"{how}{'' if self.converged else ' (NOT converged)'}")
        if self.information_kind != "louis":
            text += "; standard errors from the outer product of the individuals' scores"
        if not self.identified:
            text += (f"; NOT identified by the choices (condition number "
                     f"{self.identification.condition_number:.3g}; near-null direction "
                     f"{self.identification.describe()}): their standard errors are inf")
        return text

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
        attrs = {"stage": "mixing distribution by maximum penalised marginal likelihood, importance-sampled "
                          "around the individual stage", "loglik": self.loglik, "iterations": self.nit,
                 "converged": int(self.converged), "n_points": self.n_points,
                 "correlated": int(self.correlated), "method": self.method, "mc_shift": float(self.mc_shift),
                 "information_kind": self.information_kind}
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
        """Of ``(fixed, μ, Σ's free elements)``: the inverse observed information, ``inf`` on the
        diagonal of every parameter a (numerically) singular information leaves unidentified."""
        S, d = jacobi_scaled(self.information)
        vectors, inverse, keep = spectrum(S)
        out = np.einsum("rs,s,ts->rt", vectors, inverse, vectors) / np.outer(d, d)
        lost = (np.abs(vectors[:, ~keep]) > NULL_LOADING).any(axis=1)
        out[lost, lost] = np.inf
        return out

    @cached_property
    def covariance_robust(self) -> np.ndarray:
        """The sandwich ``I⁻¹ (Σ_i s_i s_i') I⁻¹`` (``inf`` where :attr:`covariance` is)."""
        lost = ~np.isfinite(np.diag(self.covariance))
        finite = np.where(np.isfinite(self.covariance), self.covariance, 0.0)
        out = finite @ self.outer @ finite
        out[lost, lost] = np.inf
        return out

    def draw_covariance(self, robust: bool = False) -> np.ndarray:
        """:attr:`covariance` (or the sandwich) with the unidentified parameters' rows and columns
        0: draws from it move only along the directions the information identifies."""
        cov = self.covariance_robust if robust else self.covariance
        lost = ~np.isfinite(np.diag(cov))
        out = np.where(np.isfinite(cov), cov, 0.0)
        out[lost, :] = out[:, lost] = 0.0
        return out

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
        return self.draw_covariance(robust)[np.ix_(idx, idx)]

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
        lost = ~np.isfinite(np.diag(cov))
        finite = np.where(np.isfinite(cov), cov, 0.0)
        se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", J, finite, J), 0.0, None))
        se[(J[:, lost] != 0).any(axis=1)] = np.inf
        return names, np.array(estimate), se


def mixing_stage(mp: MixingProblem, learnt: dict, components, n_points: int, individuals) -> MixingStage:
    """A :class:`MixingStage` from :func:`learn_mixing`'s output (``individuals``: the labels of
    ``mp``'s groups)."""
    return MixingStage(components=tuple(components), fixed_names=mp.fixed_names, fixed=learnt["fixed"],
                       mu=learnt["mu"], cov=learnt["cov"], correlated=mp.correlated,
                       information=learnt["information"], outer=learnt["outer"], ess=learnt["ess"],
                       loglik=learnt["loglik"], nit=int(learnt["nit"]), converged=bool(learnt["converged"]),
                       n_points=int(n_points), individuals=tuple(individuals), at_floor=learnt["at_floor"],
                       method=learnt["method"], mc_shift=float(learnt["mc_shift"]),
                       information_kind=learnt["information_kind"])


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
                       at_floor=group["at_floor"].values.astype(bool),
                       method=str(attrs.get("method", "importance")),
                       mc_shift=float(attrs.get("mc_shift", 0.0)),
                       information_kind=str(attrs.get("information_kind", "louis")))
