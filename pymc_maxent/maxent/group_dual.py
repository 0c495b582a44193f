"""The duals of stages 2 and 3 of the MaxEnt mixed logit, one per group: an individual's GCE
with the population fit as its prior (stage 2), or a situation's with its individual's fit as
prior (stage 3) (``shared/design/maxent-tiers.md`` §2).

For group ``g`` with random-component features ``G_tj ∈ R^R`` (the derivative of the tier's
utility with respect to its random components, taken from the one utility graph,
:func:`~pymc_maxent.utility.component_utility`), prior probabilities ``p⁰`` and an error
support ``u_g``, the dual (note §2) is

    D_g(δ) = δ'm_g + Σ_t ln Σ_j p⁰_tj e^{−δ'G_tj} + Σ_tj ln Σ_h w0_h e^{−u_gh δ'G̃_tj}

with ``m_g = Σ_tj G_tj y_tj`` and ``G̃`` the features centred within situations (as stage 1's
``centre_noise``). Its minimiser gives ``p_tj ∝ p⁰_tj e^{−δ_g'G_tj}`` and ``β_g = β̂ − δ_g``.

The groups are independent given the earlier stage, so they are solved together
(:func:`~pymc_maxent.maxent.stages.solve_groups`, the batched Newton solver). Each
:class:`GroupChunk` gives the values, gradients and ``R × R`` Hessians of its groups at once:
the per-situation terms are elementwise, the per-group sums are segment sums over situations
sorted by group (``np.add.reduceat``). NumPy rather than a PyTensor graph: these duals need only
``G`` and ``p⁰`` (both evaluated once from the compiled graphs), their sums are ragged over
groups, and there is nothing to differentiate or compile.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pytensor
import pytensor.tensor as pt
from scipy import sparse
from scipy.optimize import linprog
from scipy.special import logsumexp, rel_entr

from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.utility import component_utility


def linear_resolved(resolved):
    """The resolved specification with every random component on its linear (normal) scale:
    MaxEnt's ``β_i`` are coefficients, with no lognormal sign imposed."""
    return dataclasses.replace(resolved, random_sign=np.zeros_like(resolved.random_sign))


def random_utility_function(resolved):
    """The compiled ``(X, θ) ↦`` utility of the random components on the linear scale."""
    Xv = pt.tensor3("X", dtype="float64")
    theta = pt.vector("theta", dtype="float64")
    U = component_utility(Xv, theta, linear_resolved(resolved)) + pt.zeros(Xv.shape[:-1])
    return pytensor.function([Xv, theta], U)


def random_features(X, available, resolved, function=None) -> np.ndarray:
    """``G[n, j, r] = ∂U_nj/∂θ_r`` of the tier's random components (0 where unavailable).

    The utility of the random components is linear in ``θ`` on the linear scale, so ``G[..., r]``
    is that utility at the unit vector ``e_r``: one evaluation per component of the compiled
    :func:`~pymc_maxent.utility.component_utility`, the graph the Bayesian models use
    (``function``: that compiled function, :func:`random_utility_function`, to reuse it).

    Examples
    --------
    >>> import numpy as np, pymc_maxent as pmx
    >>> from pymc_maxent.specification import as_spec, resolve
    >>> from pymc_maxent.maxent.group_dual import random_features
    >>> data, _ = pmx.simulate_choices("MXL-2", n_individuals=3, n_situations=2, seed=0)
    >>> r = resolve(as_spec("MXL-2", data.attributes.tolist()), data)
    >>> G = random_features(data.X, data.available, r)
    >>> r.random_labels, G.shape, bool(np.allclose(G[..., 2:], data.X))
    (['asc[alt0]', 'asc[alt1]', 'x0', 'x1'], (6, 3, 4), True)
    """
    f = random_utility_function(resolved) if function is None else function
    X = np.asarray(X, dtype=float)
    G = np.stack([f(X, e) for e in np.eye(resolved.n_random)], axis=-1)
    return np.where(np.asarray(available, dtype=bool)[..., None], G, 0.0)


def centre_features(G: np.ndarray, available: np.ndarray) -> np.ndarray:
    """``G̃ = G − mean over the available alternatives`` (0 where unavailable)."""
    avail = np.asarray(available, dtype=bool)
    mean = G.sum(axis=1, keepdims=True) / avail.sum(axis=1)[:, None, None]
    return np.where(avail[..., None], G - mean, 0.0)


def _weighted_gram(weight: np.ndarray, F: np.ndarray) -> np.ndarray:
    """``Σ_j weight_nj F_nj F_nj'`` per row ``n``, as one batched matrix product."""
    return np.matmul((F * weight[..., None]).transpose(0, 2, 1), F)


@dataclass(frozen=True, eq=False)
class GroupProblem:
    """The arrays of the group duals (stage 2: groups are individuals; stage 3: situations),
    situations in their data order.

    Attributes
    ----------
    G, G_noise : ndarray (situation, alternative, component)
        Features of the random components; those the noise term sees (centred or not).
    log_p0 : ndarray (situation, alternative)
        ``ln p⁰`` of the earlier stage (``-inf`` where unavailable).
    chosen : ndarray (situation,)
    available : ndarray (situation, alternative) bool
    group : ndarray (situation,)
        Position of each situation's group (``0..n_groups-1``).
    n_groups : int
    support : ndarray or None
        Base error support ``u`` (scaled per group by ``scale``), or None: no noise.
    scale : ndarray (group,)
    precision : ndarray (component, component) or None
        ``A``: noise on each group's moments with a normal reference ``N(0, A)``, which adds
        ``½ δ'Aδ`` to every group's dual (the learnt individual level: ``A = Σ⁻¹``, a normal
        prior ``N(0, Σ)`` on the group's coefficient deviations); None: none.
    """

    G: np.ndarray
    G_noise: np.ndarray
    log_p0: np.ndarray
    chosen: np.ndarray
    available: np.ndarray
    group: np.ndarray
    n_groups: int
    support: np.ndarray | None
    scale: np.ndarray
    precision: np.ndarray | None = None

    @property
    def R(self) -> int:
        return self.G.shape[-1]

    @cached_property
    def n_situations(self) -> np.ndarray:
        """Situations per group."""
        return np.bincount(self.group, minlength=self.n_groups)

    @cached_property
    def log_w0(self) -> np.ndarray | None:
        """The uniform prior weights over the support, logged."""
        return None if self.support is None else np.full(self.support.size, -np.log(self.support.size))

    @cached_property
    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.group, kind="stable")
        return order, np.concatenate([[0], np.cumsum(self.n_situations)])

    def rows_of(self, g: int) -> np.ndarray:
        """The situations of group ``g``."""
        order, starts = self._order
        return order[starts[g]:starts[g + 1]]

    def rows_of_groups(self, ids: np.ndarray) -> np.ndarray:
        """The situations of groups ``ids``, group after group (``rows_of`` of each, concatenated,
        without a Python loop over the groups)."""
        order, starts = self._order
        ids = np.asarray(ids, dtype=int)
        counts = starts[ids + 1] - starts[ids]
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return order[np.repeat(starts[ids], counts) + offsets]

    def with_support(self, support) -> GroupProblem:
        """The same problem with another base support (the width search)."""
        return dataclasses.replace(self, support=support)

    def chunk(self, ids: np.ndarray) -> GroupChunk:
        """The situations of groups ``ids`` (each with at least one situation)."""
        rows = self.rows_of_groups(ids)
        counts = self.n_situations[ids]
        local = np.repeat(np.arange(len(ids)), counts)
        u = None if self.support is None else self.support[None, :] * self.scale[ids][local][:, None]
        y = np.zeros(self.available[rows].shape)
        y[np.arange(len(rows)), self.chosen[rows]] = 1.0
        return GroupChunk(G=self.G[rows], Gn=self.G_noise[rows], log_p0=self.log_p0[rows], y=y,
                          avail=self.available[rows], local=local, u=u, log_w0=self.log_w0, rows=rows,
                          precision=self.precision)


@dataclass(frozen=True, eq=False)
class GroupChunk:
    """The situations of some groups, sorted by group: their duals evaluated together."""

    G: np.ndarray
    Gn: np.ndarray
    log_p0: np.ndarray
    y: np.ndarray
    avail: np.ndarray
    local: np.ndarray  # position of each situation's group in the chunk
    u: np.ndarray | None
    log_w0: np.ndarray | None
    rows: np.ndarray
    precision: np.ndarray | None = None

    @cached_property
    def seg(self) -> np.ndarray:
        """Where each group's situations start."""
        return np.flatnonzero(np.r_[True, self.local[1:] != self.local[:-1]])

    @cached_property
    def m(self) -> np.ndarray:
        return self.sum(np.einsum("nj,njr->nr", self.y, self.G))

    @cached_property
    def reach(self) -> np.ndarray:
        """``(group, R)``: each moment's reachable range, ``Σ_t (max_j G − min_j G)``."""
        lo = np.where(self.avail[..., None], self.G, np.inf).min(axis=1)
        hi = np.where(self.avail[..., None], self.G, -np.inf).max(axis=1)
        return self.sum(hi - lo)

    def select(self, ids: np.ndarray) -> GroupChunk:
        """The chunk of its groups ``ids`` (positions in this chunk)."""
        if len(ids) == len(self.seg):
            return self
        keep = np.isin(self.local, ids)
        counts = np.bincount(self.local, minlength=len(self.seg))[ids]
        return GroupChunk(G=self.G[keep], Gn=self.Gn[keep], log_p0=self.log_p0[keep], y=self.y[keep],
                          avail=self.avail[keep], local=np.repeat(np.arange(len(ids)), counts),
                          u=None if self.u is None else self.u[keep], log_w0=self.log_w0,
                          rows=self.rows[keep], precision=self.precision)

    def sum(self, x):
        """Per-group sums of per-situation rows (situations sorted by group)."""
        return np.add.reduceat(x, self.seg, axis=0)

    def terms(self, delta, hessian=True) -> dict:
        """``p``, ``ε`` and, per group, ``D_g``, ``∇D_g`` (and ``∇²D_g``, and its part without the
        noise term, the choice ``information``) at ``delta`` (group, R)."""
        d = delta[self.local]
        logits = self.log_p0 - np.einsum("njr,nr->nj", self.G, d)
        lse = logsumexp(logits, axis=1)
        p = np.where(self.avail, np.exp(logits - lse[:, None]), 0.0)
        value, e, w = lse, None, None
        if self.u is not None:
            zeta = np.einsum("njr,nr->nj", self.Gn, d)
            a = self.log_w0[None, None, :] - self.u[:, None, :] * zeta[..., None]
            lz = logsumexp(a, axis=-1)
            w = np.exp(a - lz[..., None])
            e = np.where(self.avail, (w * self.u[:, None, :]).sum(axis=-1), 0.0)
            value = value + np.where(self.avail, lz, 0.0).sum(axis=1)
        grad = self.m - self.sum(np.einsum("nj,njr->nr", p, self.G))
        if e is not None:
            grad = grad - self.sum(np.einsum("nj,njr->nr", e, self.Gn))
        out = {"p": p, "e": e, "w": w, "grad": grad, "value": self.sum(value) + (delta * self.m).sum(axis=1)}
        if self.precision is not None:  # the moments' normal noise: ½ δ'Aδ
            A_delta = delta @ self.precision
            out["grad"] = grad + A_delta
            out["value"] = out["value"] + 0.5 * (A_delta * delta).sum(axis=1)
        if hessian:
            # Σ_t G_t'(diag p − pp')G_t as a covariance about Ḡ_t = Σ_j p G (note §2's Hessian)
            H = _weighted_gram(p, self.G - np.einsum("nj,njr->nr", p, self.G)[:, None, :])
            out["information"] = self.sum(H)
            if e is not None:
                var = np.where(self.avail, (w * self.u[:, None, :] ** 2).sum(axis=-1), 0.0) - e**2
                H = H + _weighted_gram(var, self.Gn)
            out["hessian"] = self.sum(H) + (0.0 if self.precision is None else self.precision)
        return out


def separated(problem: GroupProblem, tol: float = 1e-9, chunk_size: int = 2048) -> np.ndarray:
    """Groups whose own choices are (quasi-)separated in the random components: some direction
    ``d`` has ``d'(G_t,chosen − G_tj) ≥ 0`` for all their situations and available ``j``, and
    ``> 0`` somewhere, so that their conditional-logit MLE (the zero-noise limit) runs off to
    infinity; the noise term keeps their ``δ`` finite.

    Per group, the linear program ``max Σ_rows A d`` s.t. ``A d ≥ 0``, ``|d| ≤ 1`` (rows ``A`` the
    differences above, each group's scaled to a largest entry of 1) has a positive optimum
    exactly when the choices are separated. The programs of ``chunk_size`` groups are solved as
    one block-diagonal program (HiGHS): its optimum is the sum of theirs.

    Returns
    -------
    ndarray (group,) bool

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.group_dual import GroupProblem, separated
    >>> G = np.array([[[1.0], [0.0]], [[0.0], [1.0]], [[2.0], [0.0]]])  # 3 situations, 2 alternatives
    >>> problem = GroupProblem(G=G, G_noise=G, log_p0=np.log(np.full((3, 2), 0.5)),
    ...                        chosen=np.array([0, 0, 0]), available=np.ones((3, 2), bool),
    ...                        group=np.array([0, 0, 1]), n_groups=2, support=None, scale=np.ones(2))
    >>> separated(problem).tolist()  # 0 took the larger G once, the smaller once: not separated
    [False, True]
    """
    out = np.zeros(problem.n_groups, dtype=bool)
    R, N = problem.R, len(problem.chosen)
    diff = problem.G[np.arange(N), problem.chosen][:, None, :] - problem.G  # (situation, j, R)
    mask = problem.available.copy()
    mask[np.arange(N), problem.chosen] = False
    mask &= np.abs(diff).max(axis=-1) > 0
    present = np.flatnonzero(problem.n_situations > 0)
    for s in range(0, len(present), chunk_size):
        ids = present[s:s + chunk_size]
        blocks, owners = [], []
        for k, g in enumerate(ids):
            rows = problem.rows_of(g)
            A = diff[rows][mask[rows]]
            if len(A):
                blocks.append(A / np.abs(A).max())
                owners.append(k)
        if not blocks:
            continue
        sizes = np.array([len(b) for b in blocks])
        A = np.concatenate(blocks)
        cols = np.repeat(np.arange(len(blocks)), sizes)[:, None] * R + np.arange(R)[None, :]
        A_ub = sparse.csr_matrix((-A.ravel(), (np.repeat(np.arange(len(A)), R), cols.ravel())),
                                 shape=(len(A), len(blocks) * R))
        c = -np.concatenate([b.sum(axis=0) for b in blocks])
        res = linprog(c, A_ub=A_ub, b_ub=np.zeros(len(A)), bounds=(-1.0, 1.0), method="highs")
        if res.status != 0:
            raise MaxEntError(f"the separation check's linear program failed: {res.message}")
        gain = -(c * res.x).reshape(len(blocks), R).sum(axis=1)  # each block's own optimum
        out[ids[owners]] = gain > tol * sizes
    return out


def information(p: np.ndarray, problem: GroupProblem) -> tuple:
    """Per group: ``KL(p ‖ p⁰)`` over its situations, the information index ``KL(p ‖ p⁰) /
    KL(y ‖ p⁰)`` (``KL(y ‖ p⁰) = −Σ_t ln p⁰_t,chosen``), and the sum of the first and its share of
    the summed ``KL(y ‖ p⁰)``."""
    p0 = np.exp(problem.log_p0)
    kl_sit = rel_entr(p, np.where(problem.available, p0, 1.0)).sum(axis=1)
    chosen = np.arange(len(problem.chosen)), problem.chosen
    kl = np.bincount(problem.group, kl_sit, minlength=problem.n_groups)
    data_kl = np.bincount(problem.group, -problem.log_p0[chosen], minlength=problem.n_groups)
    index = np.divide(kl, data_kl, out=np.zeros_like(data_kl), where=data_kl > 0)
    total = float(kl.sum())
    return kl, index, total, total / data_kl.sum() if data_kl.sum() > 0 else 0.0


def choice_fit(p: np.ndarray, chosen: np.ndarray) -> tuple[float, int]:
    """The log-likelihood of the choices under ``p`` and the number of situations whose most
    probable alternative was chosen."""
    rows = np.arange(len(chosen)), chosen
    with np.errstate(divide="ignore"):
        loglik = float(np.log(p[rows]).sum())
    return loglik, int((p.argmax(axis=1) == chosen).sum())
