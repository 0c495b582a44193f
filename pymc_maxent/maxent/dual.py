"""The concentrated (dual) MaxEnt problem in the multipliers, as compiled PyTensor graphs.

Direct probabilities (GJP 1996), with ``η_ij = Σ_c λ_c F_ijc``::

    D(λ) = Σ_c λ_c m_c + Σ_i ln Σ_j p0_ij e^{−η_ij} + Σ_ij ln Σ_h w0_h e^{−u_h η_ij}

is smooth, convex and unconstrained; ``p = softmax(−η + ln p0)`` over the available
alternatives is built with the package's utility graph (``U = linear_utility(F, β)``,
``β = −λ``, ``log p = log_choice_probabilities(U + log p0, available)``). Its gradient is the
constraint residual ``m − Σ F (p + ε)``; gradient and per-situation scores come from
``pytensor.grad`` of the graph. The Hessian ``F'(diag p − pp')F + F' diag(σ²) F`` is
assembled in the same pass (its agreement with ``pytensor.gradient.hessian`` of the graph
is tested). Everything is compiled once, over the ``pm.Data`` containers, and evaluated in
chunks of situations so that no ``N × J × C`` temporary is ever built. SciPy's
``trust-exact`` (Newton with a trust region) converges in a handful of passes.

The note's support-point form ``p_ij = Σ_m s_m π_ijm`` adds one adding-up multiplier
``μ_i`` per situation; the μ block is separable, so ``μ(λ)`` is solved per situation by a
vectorised damped Newton and concentrated out (Schur complement for the Hessian).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.tensor.extra_ops import to_one_hot
from scipy import optimize

from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError
from pymc_maxent.maxent.features import MomentSet
from pymc_maxent.maxent.supports import Supports, default_error_support
from pymc_maxent.utility import linear_utility, log_choice_probabilities, mask_unavailable

#: Situations per chunk: bounds the temporaries to ~``CHUNK × J × C`` floats (cache-sized).
CHUNK = 4096
COMPILE_MODE = "FAST_RUN"


_CONTROLLER = []


def single_thread_blas():
    """Limit BLAS to one thread: the dual's products are tall and thin (``C`` ≈ 10 columns),
    where OpenBLAS threading costs far more than it gains. A no-op without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


@dataclass
class DualSolution:
    """Raw output of a dual solve (wrapped by :class:`~pymc_maxent.maxent.result.MaxEntResult`)."""

    lam: np.ndarray
    mu: np.ndarray | None
    value: float
    grad: np.ndarray
    hess: np.ndarray
    converged: bool
    message: str
    nit: int
    nfev: int


class DualProblem:
    """Compiled dual of one MaxEnt problem over a model's data containers.

    Parameters
    ----------
    moments : MomentSet
    containers : ChoiceContainers
    supports : Supports
    chunk_size : int
        Situations per evaluation chunk.
    """

    def __init__(self, moments: MomentSet, containers, supports: Supports, chunk_size: int = CHUNK):
        moments.require_linear()
        self.moments = moments
        self.c = containers
        self.supports = supports
        self.chunk_size = int(chunk_size)
        self.C = moments.n
        self.direct = supports.direct
        self.noise = supports.error is not None
        if self.noise:
            self.u = pytensor.shared(supports.error, name="error_support")
            self.log_w0 = pytensor.shared(np.log(supports.w0), name="log_w0")
        if not self.direct:
            self.s = pytensor.shared(supports.probability, name="probability_support")
            self.log_pi0 = pytensor.shared(np.log(supports.pi0), name="log_pi0")
        uniform = np.allclose(supports.p0, supports.p0.max(axis=1, keepdims=True) * (supports.p0 > 0))
        self.log_p0 = None if uniform else pytensor.shared(
            np.log(np.where(supports.p0 > 0, supports.p0, 1.0)), name="log_p0"
        )
        self._compile()
        self._warm_up()

    # ------------------------------------------------------------------ graphs
    def _slice(self, start, stop):
        c = self.c
        X = c.X[start:stop]
        avail = c.available[start:stop]
        chosen = c.chosen[start:stop]
        Fp, Fe = self.moments.features(X, avail, start, stop)
        y = to_one_hot(chosen, avail.shape[1])
        return X, avail.astype("bool"), y, Fp, Fe

    @staticmethod
    def _support_terms(log_prior, support, index, avail):
        """``(ln Z, mean, variance, weights)`` of weights ``∝ prior_h e^{−support_h · index_ij}``
        over a discrete support: the error weights ``w`` (index ``ζ``, normaliser ``Ψ``) and
        the note's support-point weights ``π`` (index ``η + μ``, normaliser ``Φ``)."""
        a = log_prior[None, None, :] - index[:, :, None] * support[None, None, :]
        log_z = pt.special.logsumexp(a, axis=-1)
        weights = pt.exp(a - log_z[:, :, None]) * avail[:, :, None]
        mean = (weights * support).sum(axis=-1)
        var = (weights * support**2).sum(axis=-1) - mean**2
        return pt.switch(avail, log_z, 0.0), mean, var, weights

    def terms(self, lam, start=None, stop=None, mu=None):
        """Symbolic pieces of the dual for situations ``start:stop``.

        ``lam`` is ``(C,)``, or ``(n, C)`` with one (equal) row per situation, whose gradient
        is then the per-situation score.
        """
        X, avail, y, Fp, Fe = self._slice(start, stop)
        coef = lam if lam.ndim == 1 else lam[:, None, :]
        U = linear_utility(Fp, -coef)  # = −η: the logit utility with β = −λ
        m = (Fp * y[:, :, None]).sum(axis=1)  # (n, C) per-situation moments
        lam_m = (m * lam).sum() if lam.ndim == 2 else pt.dot(m.sum(axis=0), lam)
        out = {"avail": avail, "y": y, "Fp": Fp, "Fe": Fe, "m": m.sum(axis=0), "U": U}
        if self.direct:
            logits = U if self.log_p0 is None else U + self.log_p0[start:stop]
            log_omega = pt.special.logsumexp(mask_unavailable(logits, avail), axis=-1)
            log_p = log_choice_probabilities(logits, avail)
            p = pt.exp(log_p)
            value = lam_m + log_omega.sum()
            if self.log_p0 is None:  # uniform p0 = 1/J_i
                value = value - pt.log(avail.sum(axis=1)).sum()
            pvar = None
        else:
            log_phi, p, pvar, pi = self._support_terms(self.log_pi0, self.s, mu[:, None] - U, avail)
            value = lam_m + mu.sum() + log_phi.sum()
            out["pi"] = pi
        e = pt.zeros_like(p)
        evar = None
        if self.noise:
            zeta = -U if Fe is Fp else -linear_utility(Fe, -coef)
            log_psi, e, evar, w = self._support_terms(self.log_w0, self.u, zeta, avail)
            value = value + log_psi.sum()
            out["w"] = w
        out.update(value=value, p=p, e=e, pvar=pvar, evar=evar)
        return out

    def _hessian(self, t):
        """``∂²D/∂λ²`` (and the μ blocks) from the closed form, in one pass."""
        Fp, Fe, p = t["Fp"], t["Fe"], t["p"]
        C = self.C

        def weighted_gram(F, weight):  # Σ_ij weight_ij F_ij F_ij' as one (C × nJ)(nJ × C) product
            F2 = F.reshape((-1, C))
            return pt.dot((F2 * weight.reshape((-1,))[:, None]).T, F2)

        # with the same features for p and ε, one weighted product covers both blocks
        shared = self.noise and Fe is Fp
        if self.direct:
            G = (Fp * p[:, :, None]).sum(axis=1)  # (n, C)
            H = weighted_gram(Fp, p + t["evar"] if shared else p) - pt.dot(G.T, G)
            extra = ()
        else:
            v = t["pvar"]
            H = weighted_gram(Fp, v + t["evar"] if shared else v)
            H_lm = (Fp * v[:, :, None]).sum(axis=1)  # (n, C): ∂²D/∂λ∂μ_i
            h_mm = v.sum(axis=1)
            extra = (H_lm, h_mm)
        if self.noise and not shared:
            H = H + weighted_gram(Fe, t["evar"])
        return H, extra

    def _compile(self):
        lam = pt.vector("lam", dtype="float64")
        start = pt.iscalar("start")
        stop = pt.iscalar("stop")
        mu = None if self.direct else pt.vector("mu", dtype="float64")
        t = self.terms(lam, start, stop, mu)
        g = pytensor.grad(t["value"], lam)
        H, extra = self._hessian(t)
        inputs = [lam, start, stop] + ([] if self.direct else [mu])
        outs = [t["value"], g, H]
        if not self.direct:
            outs += [pytensor.grad(t["value"], mu), *extra]
        self._f_all = pytensor.function(inputs, outs, mode=COMPILE_MODE, on_unused_input="ignore")
        # per-situation scores from pytensor.grad of the dual with one λ row per situation
        lam_rows = pt.matrix("lam_rows", dtype="float64")
        tr = self.terms(lam_rows, start, stop, mu)
        scores = pytensor.grad(tr["value"], lam_rows)
        self._f_scores = pytensor.function([lam_rows, start, stop] + inputs[3:], scores,
                                           mode=COMPILE_MODE, on_unused_input="ignore")
        # the primal solution and the support check
        pieces = [t["p"], t["e"]] + [t[k] for k in ("w", "pi") if k in t]
        self._pieces = [k for k in ("p", "e", "w", "pi") if k in t]
        self._f_primal = pytensor.function(inputs, pieces, mode=COMPILE_MODE, on_unused_input="ignore")
        X, avail, y, Fp, Fe = self._slice(start, stop)
        big = np.inf
        lo = pt.switch(avail[:, :, None], Fp, big).min(axis=1).sum(axis=0)
        hi = pt.switch(avail[:, :, None], Fp, -big).max(axis=1).sum(axis=0)
        m = (Fp * y[:, :, None]).sum(axis=(0, 1))
        reach = [m, lo, hi]
        if self.noise:
            u = self.u
            Fea = pt.switch(avail[:, :, None], Fe, 0.0)
            reach += [pt.minimum(Fea * u.min(), Fea * u.max()).sum(axis=(0, 1)),
                      pt.maximum(Fea * u.min(), Fea * u.max()).sum(axis=(0, 1))]
        self._f_reach = pytensor.function([start, stop], reach, mode=COMPILE_MODE,
                                          on_unused_input="ignore")
        if self.moments.user:
            self._f_user_adjust = pytensor.function([], self.moments.user_target_adjustment(),
                                                    mode=COMPILE_MODE)

    def _warm_up(self):
        """Call each compiled function once on two situations: the first call's set-up cost
        belongs to the build, not to the first fit."""
        n = min(2, self.n_situations)
        lam = np.zeros(self.C)
        extra = () if self.direct else (np.zeros(n),)
        with single_thread_blas():
            self._f_all(lam, 0, n, *extra)
            self._f_primal(lam, 0, n, *extra)
            self._f_scores(np.zeros((n, self.C)), 0, n, *extra)
            self._f_reach(0, n)

    # ------------------------------------------------------------------ data-dependent state
    @property
    def n_situations(self) -> int:
        return int(self.c.available.get_value().shape[0])

    def _chunks(self):
        N = self.n_situations
        step = self.chunk_size
        return [(s, min(s + step, N)) for s in range(0, N, step)]

    def refresh(self):
        """Re-read the containers' size: the default error support follows N."""
        if self.noise and self.supports.default_error:
            self.u.set_value(default_error_support(self.n_situations, self.supports.error.size))
        if self.log_p0 is not None and self.log_p0.get_value().shape[0] != self.n_situations:
            raise MaxEntError(
                f"the prior p0 was given for {self.log_p0.get_value().shape[0]} situations; the data "
                f"now has {self.n_situations}: refit with a p0 for the new data"
            )

    def target_adjustment(self) -> np.ndarray:
        """Added to the observed moments: zeros, or user targets that differ from ``g(y, 0)``."""
        adj = np.zeros(self.C)
        if self.moments.user:
            adj[self.C - len(self.moments.user):] = self._f_user_adjust()
        return adj

    def check_reach(self, adjust: np.ndarray, check: bool = True) -> np.ndarray:
        """Raise if a moment lies outside (or on the edge of) what ``p`` and ``ε`` can reach.

        Returns each moment's scale ``max(1, |lo| + |hi|)`` of its reachable range ``[lo, hi]``.
        """
        acc = None
        for s, e in self._chunks():
            parts = self._f_reach(s, e)
            acc = parts if acc is None else [a + b for a, b in zip(acc, parts, strict=True)]
        m, lo, hi = acc[0] + adjust, acc[1], acc[2]
        if self.noise:
            lo, hi = lo + acc[3], hi + acc[4]
        scale = np.maximum(1.0, np.abs(lo) + np.abs(hi))
        bad = (m <= lo + 1e-12 * scale) | (m >= hi - 1e-12 * scale)
        if check and bad.any():
            c = int(np.flatnonzero(bad)[0])
            raise MaxEntError(
                f"moment {self.moments.labels[c]!r} = {m[c]:.6g} is outside, or on the edge of, "
                f"the range [{lo[c]:.6g}, {hi[c]:.6g}] that any admissible (p, eps) can reach: "
                "the constraints are infeasible and the multipliers would diverge (e.g. an "
                "alternative never chosen while its share is a moment and there is no noise term)"
            )
        return scale

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, lam, adjust, mu=None):
        """``(D, ∇D, ∇²D)`` at ``lam`` over all chunks (μ concentrated out in the support form)."""
        lam = np.asarray(lam, dtype=float)
        value, grad, hess = -float(lam @ adjust), -adjust.copy(), np.zeros((self.C, self.C))
        for s, e in self._chunks():
            if self.direct:
                v, g, H = self._f_all(lam, s, e)
            else:
                v, g, H, _, H_lm, h_mm = self._f_all(lam, s, e, mu[s:e])
                H = H - (H_lm / h_mm[:, None]).T @ H_lm
            value += float(v)
            grad += g
            hess += H
        return value, grad, hess

    def solve_mu(self, lam, mu, tol=1e-12, maxiter=100):
        """Support form: the adding-up multipliers ``μ_i(λ)``, per situation (damped Newton)."""
        for s, e in self._chunks():
            m = mu[s:e].copy()
            lo = np.full(m.shape, -np.inf)
            hi = np.full(m.shape, np.inf)
            for _ in range(maxiter):
                *_, g_mu, _, h_mm = self._f_all(lam, s, e, m)
                if np.abs(g_mu).max(initial=0.0) < tol:
                    break
                # ∂D/∂μ_i increases in μ_i (D is convex in each μ_i): keep a bracket of the
                # root, take capped Newton steps, and bisect when a step leaves the bracket
                lo = np.where(g_mu < 0, m, lo)
                hi = np.where(g_mu > 0, m, hi)
                step = m - np.clip(g_mu / np.maximum(h_mm, 1e-300), -5.0, 5.0)
                inside = (step > lo) & (step < hi)
                bounded = np.isfinite(lo) & np.isfinite(hi)
                mid = 0.5 * (np.where(bounded, lo, 0.0) + np.where(bounded, hi, 0.0))
                m = np.where(inside | ~bounded, step, mid)
            mu[s:e] = m
        return mu

    def solve(self, lam0=None, *, tol=1e-10, maxiter=100, check=True) -> DualSolution:
        """Minimise the dual with SciPy's ``trust-exact`` (exact Hessian).

        Converged means ``|m_c − Σ F (p + ε)| ≤ tol · scale_c`` for every moment, with
        ``scale_c = max(1, |lo_c| + |hi_c|)`` from its reachable range ``[lo_c, hi_c]``; otherwise a
        :class:`~pymc_maxent.exceptions.ConvergenceWarning` and ``converged=False``.
        """
        with single_thread_blas():
            return self._solve(lam0, tol=tol, maxiter=maxiter, check=check)

    def _solve(self, lam0, *, tol, maxiter, check) -> DualSolution:
        self.refresh()
        N = self.n_situations
        adjust = self.target_adjustment()
        scale = self.check_reach(adjust, check)
        lam0 = np.zeros(self.C) if lam0 is None else np.asarray(lam0, dtype=float)
        mu = None if self.direct else np.zeros(N)
        cache = {}

        def pieces(lam):
            key = lam.tobytes()
            if key not in cache:
                if len(cache) >= 3:
                    cache.pop(next(iter(cache)))
                m = None
                if not self.direct:
                    m = self.solve_mu(lam, mu)
                cache[key] = self.evaluate(lam, adjust, m)
            return cache[key]

        # precondition: λ = θ / d with d the root of the Hessian's diagonal at the start, so
        # that moments on very different scales (costs in dollars, shares) are balanced
        d = np.sqrt(np.clip(np.diag(pieces(lam0)[2]), 1e-12, None))
        gtol = tol * (scale / d).min()
        _, g0, H0 = pieces(lam0)
        try:  # start with the trust radius of a full Newton step: the dual is convex
            radius = float(np.sqrt(max(g0 @ np.linalg.solve(H0, g0), 1e-16)))
        except np.linalg.LinAlgError:
            radius = 1.0
        radius = radius if np.isfinite(radius) else 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = optimize.minimize(
                lambda th: pieces(th / d)[0], lam0 * d, jac=lambda th: pieces(th / d)[1] / d,
                hess=lambda th: pieces(th / d)[2] / np.outer(d, d), method="trust-exact",
                options={"gtol": gtol, "maxiter": maxiter, "initial_trust_radius": radius,
                         "max_trust_radius": max(1e3 * radius, 1e6)},
            )
        res.x = res.x / d
        # polish: plain Newton steps, kept while they shrink the residual (the trust region
        # stalls once value differences drown in round-off, before the residual does)
        lam = res.x
        for _ in range(3):
            _, g, H = pieces(lam)
            if (np.abs(g) / scale).max() <= 1e-3 * tol:
                break
            try:
                step = np.linalg.solve(H, g)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)):
                break
            cand = lam - step
            if np.abs(pieces(cand)[1] / scale).max() >= np.abs(g / scale).max():
                break
            lam = cand
        value, grad, hess = pieces(lam)
        ok = bool(np.all(np.isfinite(lam))) and (np.abs(grad) / scale).max() <= tol
        message = res.message if ok else f"{res.message} (max |constraint residual| {np.abs(grad).max():.3g})"
        if not ok:
            warnings.warn(
                f"MaxEnt dual did not converge after {res.nit} iterations: {message}",
                ConvergenceWarning, stacklevel=3,
            )
        return DualSolution(
            lam=lam, mu=None if mu is None else mu.copy(), value=value, grad=grad, hess=hess,
            converged=ok, message=str(message), nit=int(res.nit), nfev=int(res.nfev),
        )

    # ------------------------------------------------------------------ the primal solution
    def primal(self, lam, mu=None) -> dict[str, np.ndarray]:
        """``p̂, ε̂, ŵ, π̂`` at the multipliers (all situations)."""
        out = {k: [] for k in self._pieces}
        with single_thread_blas():
            chunks = [self._f_primal(*((lam, s, e) if self.direct else (lam, s, e, mu[s:e])))
                      for s, e in self._chunks()]
        for values in chunks:
            for k, v in zip(self._pieces, values, strict=True):
                out[k].append(v)
        return {k: np.concatenate(v) for k, v in out.items()}

    def meat(self, lam, mu=None) -> np.ndarray:
        """``Σ_i g_i g_i'`` of the per-situation scores, accumulated chunk by chunk."""
        out = np.zeros((self.C, self.C))
        with single_thread_blas():
            for s, e in self._chunks():
                rows = np.broadcast_to(lam, (e - s, self.C)).copy()
                g = self._f_scores(*((rows, s, e) if self.direct else (rows, s, e, mu[s:e])))
                out += g.T @ g
        return out
