"""Stage 2 of the MaxEnt mixed logit: each individual's GCE dual, with the population fit as
its prior, solved for all individuals at once (``shared/design/maxent-tiers.md`` §2).

For individual ``i`` with random-component features ``G_itj ∈ R^R`` (the derivative of the
tier's utility with respect to its random components, taken from the one utility graph,
:func:`~pymc_maxent.bayes.build.component_utility`), the population probabilities ``p⁰`` of
stage 1 and an error support ``u_i``, the dual (note §2) is

    D_i(δ) = δ'm_i + Σ_t ln Σ_j p⁰_itj e^{−δ'G_itj} + Σ_tj ln Σ_h w0_h e^{−u_ih δ'G̃_itj}

with ``m_i = Σ_tj G_itj y_itj`` and ``G̃`` the features centred within situations (as stage 1's
``centre_noise``). Its minimiser gives ``p_itj ∝ p⁰_itj e^{−δ_i'G_itj}`` and ``β_i = β̂ − δ_i``.

The ``I`` problems are independent given stage 1. They are solved as one damped Newton
iteration over individuals in NumPy: per chunk of individuals, the per-situation terms are
elementwise, the per-individual sums are segment sums over situations sorted by individual
(``np.add.reduceat``), and the ``R × R`` Newton systems are one batched ``np.linalg.solve``.
NumPy rather than a PyTensor graph: stage 2 needs only ``G`` and ``p⁰`` (both evaluated once
from the compiled graphs), its sums are ragged over individuals, and a batched solve over
individuals with per-individual line searches is plain array code; there is nothing to
differentiate and nothing to compile.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from scipy.optimize import linprog

from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.maxent.supports import warn_if_noise_mean_not_zero

#: Individuals per chunk of the batched Newton iteration.
INDIVIDUAL_CHUNK = 4096
#: Armijo constant and the largest number of step halvings of the line search.
ARMIJO = 1e-4
MAX_HALVINGS = 60
#: Eigenvalues of an individual's Hessian below this share of its largest count as 0.
SINGULAR = 1e-12
#: Largest Newton step in any component (a coefficient moves at most this far per iteration).
MAX_STEP = 10.0


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """``ln Σ e^a`` along ``axis`` (``-inf`` entries drop out; each row has a finite one)."""
    m = a.max(axis=axis, keepdims=True)
    return np.log(np.exp(a - m).sum(axis=axis)) + np.squeeze(m, axis=axis)


def _weighted_gram(weight: np.ndarray, F: np.ndarray) -> np.ndarray:
    """``Σ_j weight_nj F_nj F_nj'`` per row ``n``, as one batched matrix product."""
    return np.matmul((F * weight[..., None]).transpose(0, 2, 1), F)


def linear_resolved(resolved):
    """The resolved specification with every random component on its linear (normal) scale:
    MaxEnt's ``β_i`` are coefficients, with no lognormal sign imposed."""
    return dataclasses.replace(resolved, random_sign=np.zeros_like(resolved.random_sign))


def random_features(X, available, resolved, function=None) -> np.ndarray:
    """``G[n, j, r] = ∂U_nj/∂θ_r`` of the tier's random components (0 where unavailable).

    The utility of the random components is linear in ``θ`` on the linear scale, so ``G[..., r]``
    is that utility at the unit vector ``e_r``: one evaluation per component of the compiled
    :func:`~pymc_maxent.bayes.build.component_utility`, the graph the Bayesian models use
    (``function``: that compiled function, :func:`random_utility_function`, to reuse it).

    Examples
    --------
    >>> import numpy as np, pymc_maxent as pmx
    >>> from pymc_maxent.bayes.specification import as_spec, resolve
    >>> from pymc_maxent.maxent.individual import random_features
    >>> data, _ = pmx.simulate_choices("MXL-2", n_individuals=3, n_situations=2, seed=0)
    >>> r = resolve(as_spec("MXL-2", data.attributes.tolist()), data)
    >>> G = random_features(data.X, data.available, r)
    >>> r.random_labels, G.shape, bool(np.allclose(G[..., 2:], data.X))
    (['asc[alt0]', 'asc[alt1]', 'x0', 'x1'], (6, 3, 4), True)
    """
    f = random_utility_function(resolved) if function is None else function
    X = np.asarray(X, dtype=float)
    R = resolved.n_random
    G = np.stack([f(X, e) for e in np.eye(R)], axis=-1)
    return np.where(np.asarray(available, dtype=bool)[..., None], G, 0.0)


def random_utility_function(resolved):
    """The compiled ``(X, θ) ↦`` utility of the random components on the linear scale."""
    from pymc_maxent.bayes.build import component_utility

    Xv = pt.tensor3("X", dtype="float64")
    theta = pt.vector("theta", dtype="float64")
    U = component_utility(Xv, theta, linear_resolved(resolved)) + pt.zeros(Xv.shape[:-1])
    return pytensor.function([Xv, theta], U)


def centre_features(G: np.ndarray, available: np.ndarray) -> np.ndarray:
    """``G̃ = G − mean over the available alternatives`` (0 where unavailable)."""
    avail = np.asarray(available, dtype=bool)
    mean = G.sum(axis=1, keepdims=True) / avail.sum(axis=1)[:, None, None]
    return np.where(avail[..., None], G - mean, 0.0)


def support_scale(individual_support, n_situations: np.ndarray, name: str = "individual_support"):
    """``(base support, per-individual scale)`` of the individual error supports.

    ``"default"``: 3 points on ``±1/√n_i`` (note §3); a positive number ``c``: 3 points on
    ``±c/√n_i``; an array: that support for every individual; None: no noise term. ``name``:
    the argument named in the messages (stage 3 passes ``"situation_support"``).

    Raises
    ------
    MaxEntError
        A support that is not finite, has fewer than two points, or does not have 0 strictly
        inside its range; a width that is not a positive number.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.individual import support_scale
    >>> base, scale = support_scale("default", np.array([4, 100]))
    >>> (base * scale[:, None]).tolist()
    [[-0.5, 0.0, 0.5], [-0.1, 0.0, 0.1]]
    """
    n = np.maximum(np.asarray(n_situations, dtype=float), 1.0)
    if individual_support is None:
        return None, np.ones_like(n)
    if isinstance(individual_support, str):
        if individual_support != "default":
            raise MaxEntError(f'{name} must be "default", a positive width, an array of '
                              f"support points or None; got {individual_support!r}")
        return np.array([-1.0, 0.0, 1.0]), 1.0 / np.sqrt(n)
    if np.ndim(individual_support) == 0:
        c = float(individual_support)
        if not np.isfinite(c) or c <= 0:
            raise MaxEntError(f"{name} as a width must be a positive number; got "
                              f"{individual_support!r}")
        return np.array([-c, 0.0, c]), 1.0 / np.sqrt(n)
    u = np.asarray(individual_support, dtype=float)
    if u.ndim != 1 or u.size < 2 or not np.isfinite(u).all() or not (u.min() < 0 < u.max()):
        raise MaxEntError(f"{name} must be a finite 1-d array of at least two points with 0 "
                          f"strictly inside its range; got {individual_support!r}")
    warn_if_noise_mean_not_zero(u, None, name)
    return u, np.ones_like(n)


@dataclass
class IndividualProblem:
    """The arrays of stage 2, situations in their data order.

    Attributes
    ----------
    G, G_noise : ndarray (situation, alternative, component)
        Features of the random components; those the noise term sees (centred or not).
    log_p0 : ndarray (situation, alternative)
        ``ln p⁰`` of stage 1 (``-inf`` where unavailable).
    chosen : ndarray (situation,)
    available : ndarray (situation, alternative) bool
    individual : ndarray (situation,)
        Position of each situation's individual (``0..I-1``).
    n_individuals : int
    support : ndarray or None
        Base error support ``u`` (scaled per individual by ``scale``), or None: no noise.
    scale : ndarray (individual,)
    w0 : ndarray
        Prior weights over the support (uniform).
    """

    G: np.ndarray
    G_noise: np.ndarray
    log_p0: np.ndarray
    chosen: np.ndarray
    available: np.ndarray
    individual: np.ndarray
    n_individuals: int
    support: np.ndarray | None
    scale: np.ndarray
    w0: np.ndarray | None = None

    def __post_init__(self):
        if self.support is not None and self.w0 is None:
            self.w0 = np.full(self.support.size, 1.0 / self.support.size)
        self.n_situations = np.bincount(self.individual, minlength=self.n_individuals)
        self.order = np.argsort(self.individual, kind="stable")
        self.starts = np.concatenate([[0], np.cumsum(self.n_situations)])
        y = np.zeros(self.available.shape)
        y[np.arange(len(y)), self.chosen] = 1.0
        self.y = y

    @property
    def R(self) -> int:
        return self.G.shape[-1]

    def chunk(self, ids: np.ndarray) -> _Chunk:
        """The situations of individuals ``ids`` (each with at least one situation)."""
        rows = np.concatenate([self.order[self.starts[i]:self.starts[i + 1]] for i in ids])
        counts = self.n_situations[ids]
        seg = np.concatenate([[0], np.cumsum(counts)[:-1]])
        local = np.repeat(np.arange(len(ids)), counts)
        u = None if self.support is None else self.support[None, :] * self.scale[ids][local][:, None]
        return _Chunk(G=self.G[rows], Gn=self.G_noise[rows], log_p0=self.log_p0[rows],
                      y=self.y[rows], avail=self.available[rows], seg=seg, local=local, u=u,
                      log_w0=None if self.w0 is None else np.log(self.w0), rows=rows)


@dataclass
class _Chunk:
    G: np.ndarray
    Gn: np.ndarray
    log_p0: np.ndarray
    y: np.ndarray
    avail: np.ndarray
    seg: np.ndarray
    local: np.ndarray
    u: np.ndarray | None
    log_w0: np.ndarray | None
    rows: np.ndarray

    def __post_init__(self):
        self.m = self.sum(np.einsum("nj,njr->nr", self.y, self.G))
        lo = np.where(self.avail[..., None], self.G, np.inf).min(axis=1)
        hi = np.where(self.avail[..., None], self.G, -np.inf).max(axis=1)
        self.reach = self.sum(hi - lo)  # (individual, R): the moments' reachable range

    def select(self, ids: np.ndarray) -> _Chunk:
        """The chunk of its individuals ``ids`` (positions in this chunk)."""
        counts = np.diff(np.append(self.seg, len(self.local)))[ids]
        keep = np.isin(self.local, ids)
        return _Chunk(G=self.G[keep], Gn=self.Gn[keep], log_p0=self.log_p0[keep], y=self.y[keep],
                      avail=self.avail[keep], seg=np.concatenate([[0], np.cumsum(counts)[:-1]]),
                      local=np.repeat(np.arange(len(ids)), counts),
                      u=None if self.u is None else self.u[keep], log_w0=self.log_w0, rows=self.rows[keep])

    def sum(self, x):
        """Per-individual sums of per-situation rows (situations sorted by individual)."""
        return np.add.reduceat(x, self.seg, axis=0)

    def terms(self, delta, hessian=True):
        """``p``, ``ε`` and, per individual, ``D_i``, ``∇D_i`` (and ``∇²D_i``) at ``delta``
        (individual, R)."""
        d = delta[self.local]
        logits = self.log_p0 - np.einsum("njr,nr->nj", self.G, d)
        lse = _logsumexp(logits, axis=1)
        p = np.where(self.avail, np.exp(logits - lse[:, None]), 0.0)
        value = lse
        e = var = None
        if self.u is not None:
            zeta = np.einsum("njr,nr->nj", self.Gn, d)
            a = self.log_w0[None, None, :] - self.u[:, None, :] * zeta[..., None]
            lz = _logsumexp(a, axis=-1)
            w = np.exp(a - lz[..., None])
            e = np.where(self.avail, (w * self.u[:, None, :]).sum(axis=-1), 0.0)
            value = value + np.where(self.avail, lz, 0.0).sum(axis=1)
        out = {"p": p, "e": e}
        out["value"] = self.sum(value) + (delta * self.m).sum(axis=1)
        grad = self.m - self.sum(np.einsum("nj,njr->nr", p, self.G))
        if e is not None:
            grad = grad - self.sum(np.einsum("nj,njr->nr", e, self.Gn))
        out["grad"] = grad
        if hessian:
            # Σ_t G_t'(diag p − pp')G_t as a covariance about Ḡ_t = Σ_j p G (note §2's Hessian)
            Gd = self.G - np.einsum("nj,njr->nr", p, self.G)[:, None, :]
            H = _weighted_gram(p, Gd)
            out["information"] = self.sum(H)
            if e is not None:
                var = np.where(self.avail, (w * self.u[:, None, :] ** 2).sum(axis=-1), 0.0) - e**2
                H = H + _weighted_gram(var, self.Gn)
            out["hessian"] = self.sum(H)
            out["w"] = None if e is None else w
        return out


@dataclass
class IndividualSolution:
    """Stage 2's solution, one row per individual.

    Attributes
    ----------
    delta : ndarray (individual, component)
        ``δ_i`` (``β_i = β̂ − δ_i``).
    grad : ndarray (individual, component)
        ``∇D_i(δ_i)``: the residual of the individual's moment constraints.
    hessian, information : ndarray (individual, component, component)
        ``∇²D_i`` and its part without the noise term (the choice information).
    value : ndarray (individual,)
        ``D_i(δ_i)``.
    nit : ndarray (individual,)
        Newton iterations.
    converged : ndarray (individual,) bool
    reach : ndarray (individual, component)
        Reachable range of each moment, ``Σ_t (max_j G − min_j G)``.
    p, eps : ndarray (situation, alternative)
        ``p̂`` and ``ε̂`` as it enters the moments (data order).
    """

    delta: np.ndarray
    grad: np.ndarray
    hessian: np.ndarray
    information: np.ndarray
    value: np.ndarray
    nit: np.ndarray
    converged: np.ndarray
    reach: np.ndarray
    p: np.ndarray
    eps: np.ndarray

    @property
    def violation(self) -> np.ndarray:
        """Largest absolute violation of each individual's moment constraints."""
        return np.abs(self.grad).max(axis=1, initial=0.0)


def newton_steps(H: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """``H_i⁻¹ g_i`` for a batch, by eigen-decomposition of the ``R × R`` blocks; where ``H_i`` is
    (numerically) singular, because components are collinear in the individual's own situations
    (e.g. every fixed-price offer at the same price beside the rate dummies), the minimum-norm
    step: ``δ_i`` does not move along directions the individual's choices say nothing about."""
    values, vectors = np.linalg.eigh(H)
    keep = values > SINGULAR * np.maximum(values[..., -1:], 1e-300)
    inverse = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    return np.einsum("irs,is,is->ir", vectors, inverse, np.einsum("irs,ir->is", vectors, grad))


def _solve_chunk(ch: _Chunk, R: int, tol: float, maxiter: int):
    n = len(ch.seg)
    delta = np.zeros((n, R))
    t = ch.terms(delta)
    value, grad, H = t["value"], t["grad"], t["hessian"]
    nit = np.zeros(n, dtype=int)
    threshold = tol * np.maximum(ch.reach, 1.0)
    done = (np.abs(grad) <= threshold).all(axis=1)
    stalled = np.zeros(n, dtype=bool)
    polished = np.zeros(n, dtype=bool)
    for _ in range(maxiter + 1):
        # one more Newton step once within tolerance: quadratic convergence then puts the
        # residuals at rounding level rather than just under the threshold
        active = ~((done & polished) | stalled)
        if not active.any():
            break
        polished |= done
        idx = np.flatnonzero(active)
        sub = ch if len(idx) == n else ch.select(idx)  # evaluate only the individuals still moving
        # a component with no variation for this individual has a zero eigenvalue: newton_steps
        # leaves it out (minimum-norm step), and its gradient is 0
        step = newton_steps(H[idx], grad[idx])
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-300))
        slope = (grad[idx] * step).sum(axis=1)
        length = np.ones(len(idx))
        pending = np.ones(len(idx), dtype=bool)
        start, v_now = delta[idx], value[idx]
        new = start.copy()
        for _ in range(MAX_HALVINGS):
            trial = start - length[:, None] * step
            v_trial = sub.terms(trial, hessian=False)["value"]
            ok = pending & np.isfinite(v_trial) & (
                v_trial <= v_now - ARMIJO * length * slope + 1e-13 * (1.0 + np.abs(v_now)))
            new[ok] = trial[ok]
            pending &= ~ok
            if not pending.any():
                break
            length = np.where(pending, 0.5 * length, length)
        stalled[idx[pending]] = True
        nit[idx] += 1
        delta[idx] = new
        ts = sub.terms(new)
        value[idx], grad[idx], H[idx] = ts["value"], ts["grad"], ts["hessian"]
        done = (np.abs(grad) <= threshold).all(axis=1)
    t = ch.terms(delta)  # p, ε and the Hessians of every individual at the solution
    done = (np.abs(t["grad"]) <= threshold).all(axis=1)
    return delta, t, nit, done, ch.reach


def solve_individuals(problem: IndividualProblem, *, tol: float = 1e-10, maxiter: int = 100,
                      chunk_size: int = INDIVIDUAL_CHUNK) -> IndividualSolution:
    """Minimise every individual's dual by one damped Newton iteration over individuals.

    Each iteration solves the ``R × R`` Newton systems of all individuals of a chunk in one
    batched solve, then halves each individual's step until it decreases ``D_i`` enough
    (Armijo); an individual stops when every moment residual is within ``tol`` of the moment's
    reachable range (at least 1), or when no step decreases its dual any more.

    Parameters
    ----------
    problem : IndividualProblem
    tol : float
    maxiter : int
        Newton iterations per individual.
    chunk_size : int
        Individuals per chunk.

    Returns
    -------
    IndividualSolution
    """
    if chunk_size < 1:
        raise MaxEntError(f"chunk_size must be a positive number of individuals; got {chunk_size!r}")
    I, R = problem.n_individuals, problem.R
    N, J = problem.available.shape
    sol = IndividualSolution(
        delta=np.zeros((I, R)), grad=np.zeros((I, R)), hessian=np.zeros((I, R, R)),
        information=np.zeros((I, R, R)), value=np.zeros(I), nit=np.zeros(I, dtype=int),
        converged=np.ones(I, dtype=bool), reach=np.zeros((I, R)), p=np.exp(problem.log_p0),
        eps=np.zeros((N, J)),
    )
    present = np.flatnonzero(problem.n_situations > 0)
    for s in range(0, len(present), chunk_size):
        ids = present[s:s + chunk_size]
        ch = problem.chunk(ids)
        delta, t, nit, done, reach = _solve_chunk(ch, R, tol, maxiter)
        sol.delta[ids], sol.grad[ids], sol.value[ids] = delta, t["grad"], t["value"]
        sol.hessian[ids], sol.information[ids] = t["hessian"], t["information"]
        sol.nit[ids], sol.converged[ids], sol.reach[ids] = nit, done, reach
        sol.p[ch.rows] = t["p"]
        if t["e"] is not None:
            e = t["e"]
            if problem.G_noise is not problem.G:  # centred: ε as it enters the moments
                avail = ch.avail
                e = np.where(avail, e - e.sum(axis=1, keepdims=True) / avail.sum(axis=1, keepdims=True), 0.0)
            sol.eps[ch.rows] = e
    sol.p = np.where(problem.available, sol.p, 0.0)
    return sol


def separated(problem: IndividualProblem, tol: float = 1e-9, chunk_size: int = 2048) -> np.ndarray:
    """Individuals whose own choices are (quasi-)separated in the random components: some
    direction ``d`` has ``d'(G_it,chosen − G_itj) ≥ 0`` for all their situations and available
    ``j``, and ``> 0`` somewhere, so that their conditional-logit MLE (the zero-noise limit) runs
    off to infinity; the noise term keeps their ``δ_i`` finite.

    Per individual, the linear program ``max Σ_rows A d`` s.t. ``A d ≥ 0``, ``|d| ≤ 1`` (rows
    ``A`` the differences above, each individual's scaled to a largest entry of 1) has a positive
    optimum exactly when the choices are separated. The programs of ``chunk_size`` individuals
    are solved as one block-diagonal program (HiGHS): its optimum is the sum of theirs.

    Returns
    -------
    ndarray (individual,) bool

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.individual import IndividualProblem, separated
    >>> G = np.array([[[1.0], [0.0]], [[0.0], [1.0]], [[2.0], [0.0]]])  # 3 situations, 2 alternatives
    >>> problem = IndividualProblem(G=G, G_noise=G, log_p0=np.log(np.full((3, 2), 0.5)),
    ...                             chosen=np.array([0, 0, 0]), available=np.ones((3, 2), bool),
    ...                             individual=np.array([0, 0, 1]), n_individuals=2, support=None,
    ...                             scale=np.ones(2))
    >>> separated(problem).tolist()  # 0 took the larger G once, the smaller once: not separated
    [False, True]
    """
    from scipy import sparse

    out = np.zeros(problem.n_individuals, dtype=bool)
    R = problem.R
    N = len(problem.chosen)
    diff = problem.G[np.arange(N), problem.chosen][:, None, :] - problem.G  # (situation, j, R)
    mask = problem.available.copy()
    mask[np.arange(N), problem.chosen] = False
    mask &= np.abs(diff).max(axis=-1) > 0
    present = np.flatnonzero(problem.n_situations > 0)
    for s in range(0, len(present), chunk_size):
        ids = present[s:s + chunk_size]
        blocks, owners = [], []
        for k, i in enumerate(ids):
            rows = problem.order[problem.starts[i]:problem.starts[i + 1]]
            A = diff[rows][mask[rows]]
            if len(A):
                blocks.append(A / np.abs(A).max())
                owners.append(k)
        if not blocks:
            continue
        sizes = np.array([len(b) for b in blocks])
        A = np.concatenate(blocks)
        row_block = np.repeat(np.arange(len(blocks)), sizes)
        cols = row_block[:, None] * R + np.arange(R)[None, :]
        A_ub = sparse.csr_matrix((-A.ravel(), (np.repeat(np.arange(len(A)), R), cols.ravel())),
                                 shape=(len(A), len(blocks) * R))
        c = -np.concatenate([b.sum(axis=0) for b in blocks])
        res = linprog(c, A_ub=A_ub, b_ub=np.zeros(len(A)), bounds=(-1.0, 1.0), method="highs")
        if res.status != 0:
            raise MaxEntError(f"the separation check's linear program failed: {res.message}")
        gain = -(c * res.x).reshape(len(blocks), R).sum(axis=1)  # each block's own optimum
        out[ids[owners]] = gain > tol * sizes
    return out
