"""The concentrated (dual) MaxEnt problem in the multipliers, as compiled PyTensor graphs.

Direct probabilities (GJP 1996), with ``η_ij = Σ_c λ_c F_ijc``::

    D(λ) = Σ_c λ_c m_c + Σ_i ln Σ_j p0_ij e^{−η_ij} + Σ_ij ln Σ_h w0_h e^{−u_h η̃_ij}

is smooth, convex and unconstrained; ``p = softmax(−η + ln p0)`` over the available
alternatives is built with the package's utility graph (``U = linear_utility(F, β)``,
``β = −λ``, ``log p = log_choice_probabilities(U + log p0, available)``). The noise sees the
features centred within each situation over its available alternatives,
``F̃_ijc = F_ijc − mean_{l∈C_i} F_ilc`` and ``η̃ = Σ_c λ_c F̃_ijc`` (``centre_noise=True``,
the default; ``F̃ = F`` is GJP 1996 as written, whose estimates depend on the attributes'
origins). Its gradient is the constraint residual ``m − Σ F p − Σ F̃ ε``; gradient and
per-situation scores come from ``pytensor.grad`` of the graph. The Hessian
``Σ_i (F_i − p_i'F_i)' diag(p_i) (F_i − p_i'F_i) + F̃' diag(σ²) F̃`` (the choice part centred
at the fitted mean, which is ``F'(diag p − pp')F`` without its cancellation) is assembled in
the same pass (its agreement with ``pytensor.gradient.hessian`` of the graph is tested).
Everything is compiled once, over the ``pm.Data`` containers, and evaluated in chunks of
situations so that no ``N × J × C`` temporary is ever built. The Newton solver
(:func:`~pymc_maxent.maxent.stages.solve_dual`) converges in about five passes, on realistic
designs as on standard-normal ones.

The note's support-point form ``p_ij = Σ_m s_m π_ijm`` adds one adding-up multiplier
``μ_i`` per situation; the μ block is separable, so ``μ(λ)`` is solved per situation by a
vectorised damped Newton and concentrated out (Schur complement for the Hessian).
"""

from __future__ import annotations

import contextlib
import threading
from typing import NamedTuple

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace
from pytensor.tensor.extra_ops import to_one_hot

from pymc_maxent.compilation import interpreted_function, is_small
from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.maxent.moments import MomentSet, centre_within_situations
from pymc_maxent.maxent.options import CHUNK
from pymc_maxent.maxent.supports import Supports, default_error_support
from pymc_maxent.utility import linear_utility, log_choice_probabilities, mask_unavailable

#: Most ``situation × alternative × moment`` cells of one chunk's temporaries (of float64
#: each, 2 MiB): with many alternatives (and so many share moments, ``C ≈ J``) a chunk holds fewer
#: situations, ``max(1, CHUNK_CELLS // (J·C))``, so the dual's memory stays near that of the data
#: whatever ``J``. Its limit is one situation's ``J × C`` cells per temporary.
CHUNK_CELLS = 1 << 18
COMPILE_MODE = "FAST_RUN"
#: Calls a structure's interpreted functions may take (about twenty fits: a second or two): the
#: next problem of that structure (a refit, a bootstrap replicate, a fold) is compiled
#: (:data:`COMPILE_MODE`). A count, not a time, so that a sequence of fits gives the same digits
#: on every run (interpreted and compiled agree to about 1e-12, not to the last bit).
PROMOTE_AFTER_CALLS = 200


_CONTROLLER = []

#: Compiled duals by :meth:`DualProblem.structure` and thread, for the life of the process: a
#: repeated fit of the same moments on data of the same shape compiles nothing.
_COMPILED: dict = {}


class CompiledDual:
    """One structure's dual functions, how they were built (``"interpreted"`` or
    ``"compiled"``) and how many times they were called."""

    def __init__(self, functions: dict, kind: str):
        self.functions = functions
        self.kind = kind
        self.calls = 0

    def promote(self) -> bool:
        """Whether a new problem of this structure should compile it rather than reuse it."""
        return self.kind == "interpreted" and self.calls >= PROMOTE_AFTER_CALLS


class _BoundFunction:
    """A compiled dual function called with one problem's shared values appended (counted in
    its structure's calls)."""

    def __init__(self, fn, shared, owner: CompiledDual):
        self.fn = fn
        self.shared = shared
        self.owner = owner

    def __call__(self, *args):
        self.owner.calls += 1
        return self.fn(*args, *[v.get_value(borrow=True) for v in self.shared])


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


class Reach(NamedTuple):
    """What the moments can reach, summed over situations (and over blocks: ``Reach`` sums
    element-wise).

    Attributes
    ----------
    observed : ndarray (C,)
        The moments ``m`` to match (observed, or user targets).
    lo, hi : ndarray (C,)
        The reachable range of ``Σ F (p + ε)`` over admissible ``(p, ε)``.
    spread : ndarray (C,)
        ``Σ_i (max_j F_ijc − min_j F_ijc)`` over the available alternatives: 0 exactly when a
        moment's feature has no variation within any situation, so that ``p`` cannot move it.
    """

    observed: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    spread: np.ndarray

    def __add__(self, other):  # element-wise, not tuple concatenation
        return Reach(*(a + b for a, b in zip(self, other, strict=True)))


def check_reach(reach: Reach, labels) -> np.ndarray:
    """Raise if a moment says nothing about ``p``, or lies outside (or on the edge of) what
    ``p`` and ``ε`` can reach; return each moment's scale ``hi − lo``, the width of its
    reachable range (which adding a constant to a feature within situations leaves unchanged).

    Raises
    ------
    MaxEntError
        Naming the first moment at fault.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.population_dual import Reach, check_reach
    >>> check_reach(Reach(*map(np.array, ([1.0], [0.0], [4.0], [4.0]))), ["share[a]"]).tolist()
    [4.0]
    """
    m, lo, hi, spread = (np.asarray(a, dtype=float) for a in reach)
    flat = np.flatnonzero(spread <= 0)
    if flat.size:
        c = int(flat[0])
        raise MaxEntError(
            f"moment {labels[c]!r} has no variation within any situation: its feature is the same "
            "for every available alternative of each situation, so no choice probability can move "
            "it and its multiplier would be fitted through the noise term alone; drop it (a price "
            "equal across the alternatives of every situation says nothing about its coefficient)"
        )
    scale = hi - lo
    bad = (m <= lo + 1e-12 * scale) | (m >= hi - 1e-12 * scale)
    if bad.any():
        c = int(np.flatnonzero(bad)[0])
        raise MaxEntError(
            f"moment {labels[c]!r} = {m[c]:.6g} is outside, or on the edge of, "
            f"the range [{lo[c]:.6g}, {hi[c]:.6g}] that any admissible (p, eps) can reach: "
            "the constraints are infeasible and the multipliers would diverge (e.g. an "
            "alternative never chosen while its share is a moment and there is no noise term)"
        )
    return scale


class DualProblem:
    """Compiled dual of one MaxEnt problem over a model's data containers.

    Parameters
    ----------
    moments : MomentSet
    containers : ChoiceContainers
    supports : Supports
    chunk_size : int
        Situations per evaluation chunk, at most (fewer with many alternatives and moments:
        :data:`CHUNK_CELLS`).
    centre_noise : bool
        The noise term sees the features centred within each situation (default), so that the
        estimates do not depend on the attributes' origins; False: GJP 1996 as written.
    """

    def __init__(self, moments: MomentSet, containers, supports: Supports, chunk_size: int = CHUNK,
                 centre_noise: bool = True):
        moments.require_linear()
        self.moments = moments
        self.c = containers
        self.supports = supports
        self.C = moments.n
        J = int(containers.X.get_value(borrow=True).shape[1])
        self.chunk_size = min(int(chunk_size), max(1, CHUNK_CELLS // (J * self.C)))
        self.direct = supports.direct
        self.noise = supports.error is not None
        self.centre_noise = bool(centre_noise)
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

    # ------------------------------------------------------------------ graphs
    def _slice(self, start, stop):
        c = self.c
        X = c.X[start:stop]
        avail = c.available[start:stop]
        chosen = c.chosen[start:stop]
        Fp, Fe = self.moments.features(X, avail, start, stop)
        y = to_one_hot(chosen, avail.shape[1])
        avail = avail.astype("bool")
        if self.noise and self.centre_noise:
            Fe = centre_within_situations(Fe, avail)
        return X, avail, y, Fp, Fe

    def _noise_index(self, U, Fe, coef, avail):
        """``η̃ = Σ_c λ_c F̃_ijc``, the index of the error weights. Without user constraints the
        noise's features are the moments' own, and ``η̃`` is ``−U`` (centred: centring commutes
        with ``Σ_c λ_c``)."""
        if self.moments.user:
            return -linear_utility(Fe, -coef)
        return centre_within_situations(-U, avail) if self.centre_noise else -U

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
            zeta = self._noise_index(U, Fe, coef, avail)
            log_psi, e, evar, w = self._support_terms(self.log_w0, self.u, zeta, avail)
            value = value + log_psi.sum()
            out["w"] = w
            if self.centre_noise:  # ε as it enters the moments: Σ_j F_ij ε̃_ij = Σ_j F̃_ij ε_ij
                e = centre_within_situations(e, avail)
        out.update(value=value, p=p, e=e, pvar=pvar, evar=evar)
        return out

    def _hessian(self, t, noise: bool = True):
        """``∂²D/∂λ²`` (and the μ blocks) from the closed form, in one pass; ``noise=False``
        leaves out the noise term (the choice information)."""
        Fp, Fe, p = t["Fp"], t["Fe"], t["p"]
        C = self.C
        noise = noise and self.noise

        def weighted_gram(F, weight):  # Σ_ij weight_ij F_ij F_ij' as one (C × nJ)(nJ × C) product
            F2 = F.reshape((-1, C))
            return pt.dot((F2 * weight.reshape((-1,))[:, None]).T, F2)

        if self.direct:
            # F'(diag p − pp')F as a covariance about the fitted mean G_i = Σ_j p_ij F_ij: the
            # same sum without the cancellation of F'diag(p)F − G'G when F is far from 0
            G = (Fp * p[:, :, None]).sum(axis=1)  # (n, C)
            Fc = Fp - G[:, None, :]
            if noise and not self.moments.user:  # ε's features are F (centred or not): one product
                return self._direct_hessian_shared(t, Fc, G, weighted_gram), ()
            H = weighted_gram(Fc, p)  # p = 0 where unavailable
            extra = ()
        else:
            v = t["pvar"]
            H = weighted_gram(Fp, v)
            H_lm = (Fp * v[:, :, None]).sum(axis=1)  # (n, C): ∂²D/∂λ∂μ_i
            h_mm = v.sum(axis=1)
            extra = (H_lm, h_mm)
        if noise:
            H = H + weighted_gram(Fe, t["evar"])
        return H, extra

    def _direct_hessian_shared(self, t, Fc, G, weighted_gram):
        """``Σ p (F − G)(F − G)' + Σ σ² (F − c)(F − c)'`` in one weighted product about ``G``:
        with ``D_i = c_i − G_i`` (``c`` the situation's mean of ``F``, or 0 uncentred) and
        ``S_i = Σ_j σ²_ij (F_ij − G_i)``, the noise part is ``Σ σ² (F − G)(F − G)' − D'S − S'D
        + D' diag(Σ_j σ²) D``."""
        avail, p, evar = t["avail"], t["p"], t["evar"]
        if self.centre_noise:
            D = pt.switch(avail[:, :, None], Fc, 0.0).sum(axis=1) / avail.sum(axis=1)[:, None]
        else:
            D = -G
        S = (Fc * evar[:, :, None]).sum(axis=1)
        SD = pt.dot(S.T, D)
        return weighted_gram(Fc, p + evar) - SD - SD.T + pt.dot(D.T, D * evar.sum(axis=1)[:, None])

    def _shared_inputs(self) -> list:
        """The shared variables the dual's graphs read, in a fixed order of roles: the data
        containers, the supports and priors, and the moments' resolved positions."""
        c = self.c
        shared = [c.X, c.available, c.chosen]
        if self.noise:
            shared += [self.u, self.log_w0]
        if not self.direct:
            shared += [self.s, self.log_pi0]
        if self.log_p0 is not None:
            shared.append(self.log_p0)
        for r in self.moments.standard:
            shared += [v for v in (r.index, r.indicator) if v is not None]
        return shared

    def structure(self):
        """What the compiled graphs depend on besides the values of :meth:`_shared_inputs`
        (hashable), or None with user constraints (arbitrary graphs: never shared)."""
        if self.moments.user:
            return None
        # the feature graph of a moment depends on which inputs it has and how many columns, not
        # on its attributes' names or positions (inputs) nor on the chunks (start and stop are)
        moments = tuple((r.index is None, r.indicator is None, len(r.terms)) for r in self.moments.standard)
        X = self.c.X.get_value(borrow=True)
        return (moments, self.C, self.direct, self.noise, self.centre_noise, self.log_p0 is None,
                X.shape[1:], X.dtype.str)

    def _compile(self):
        """The compiled dual: taken from :data:`_COMPILED` when a problem of the same
        :meth:`structure` compiled it before in this process (the functions take the shared
        variables' values as inputs, so any problem of that structure can call them). A small
        problem's first functions are interpreted (:func:`~pymc_maxent.compilation.is_small`) until its
        structure has called them :data:`PROMOTE_AFTER_CALLS` times."""
        structure = self.structure()
        # a compiled function's storage is its own: threads (the Dask backend's) never share one
        key = None if structure is None else (structure, threading.get_ident())
        entry = _COMPILED.get(key) if key is not None else None
        self.reused = entry is not None and not entry.promote()
        if not self.reused:
            small = is_small(self.n_situations, int(self.c.X.get_value(borrow=True).shape[1]))
            kind = "interpreted" if entry is None and small else "compiled"
            entry = CompiledDual(self._compile_functions(kind), kind)
            if key is not None:
                _COMPILED[key] = entry
        self.compiled = entry
        shared = self._shared_inputs()
        for name, fn in entry.functions.items():
            setattr(self, name, _BoundFunction(fn, shared if name != "_f_user_adjust" else [], entry))
        self._pieces = ["p", "e"] + [k for k, kept in (("w", self.noise), ("pi", not self.direct)) if kept]

    def _compile_functions(self, kind: str) -> dict:
        # the graphs are the package's own: no user line to trace in them (a third of the build)
        with pytensor.config.change_flags(traceback__limit=0):
            return self._build_functions(kind)

    def _build_functions(self, kind: str) -> dict:
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
        shared = self._shared_inputs()
        values = [v.type() for v in shared]

        def compile_(inputs, outputs, data=True):
            if data:
                outputs = clone_replace(outputs, dict(zip(shared, values, strict=True)))
                inputs = [*inputs, *values]
            if kind == "compiled":
                return pytensor.function(inputs, outputs, mode=COMPILE_MODE, on_unused_input="ignore")
            return interpreted_function(inputs, outputs, on_unused_input="ignore")

        functions = {"_f_all": compile_(inputs, outs)}
        # per-situation scores from pytensor.grad of the dual with one λ row per situation
        lam_rows = pt.matrix("lam_rows", dtype="float64")
        tr = self.terms(lam_rows, start, stop, mu)
        scores = pytensor.grad(tr["value"], lam_rows)
        functions["_f_scores"] = compile_([lam_rows, start, stop] + inputs[3:], scores)
        # the primal solution, and the choice information (the Hessian without the noise term)
        pieces = [t["p"], t["e"]] + [t[k] for k in ("w", "pi") if k in t]
        info, info_extra = self._hessian(t, noise=False)
        # the noise's share of the moments, Σ_ij F̃_ij ε_ij: the likelihood's gradient less the dual's
        noise_moment = (t["Fe"] * t["e"][:, :, None]).sum(axis=(0, 1))
        functions["_f_primal"] = compile_(inputs, [*pieces, info, noise_moment, *info_extra])
        # the support check: the moments' reachable range, and their spread within situations
        X, avail, y, Fp, Fe = self._slice(start, stop)
        big = np.inf
        lo_i = pt.switch(avail[:, :, None], Fp, big).min(axis=1)
        hi_i = pt.switch(avail[:, :, None], Fp, -big).max(axis=1)
        m = (Fp * y[:, :, None]).sum(axis=(0, 1))
        reach = [m, lo_i.sum(axis=0), hi_i.sum(axis=0), (hi_i - lo_i).sum(axis=0)]
        if self.noise:
            u = self.u
            Fea = pt.switch(avail[:, :, None], Fe, 0.0)
            reach += [pt.minimum(Fea * u.min(), Fea * u.max()).sum(axis=(0, 1)),
                      pt.maximum(Fea * u.min(), Fea * u.max()).sum(axis=(0, 1))]
        functions["_f_reach"] = compile_([start, stop], reach)
        if self.moments.user:
            functions["_f_user_adjust"] = compile_([], self.moments.user_target_adjustment(), data=False)
        self._warm_up(functions)
        return functions

    def _warm_up(self, functions):
        """Call each compiled function once on two situations: the first call's set-up cost
        belongs to the build, not to the first fit."""
        n = min(2, self.n_situations)
        lam = np.zeros(self.C)
        extra = () if self.direct else (np.zeros(n),)
        data = [v.get_value(borrow=True) for v in self._shared_inputs()]
        with single_thread_blas():
            functions["_f_all"](lam, 0, n, *extra, *data)
            functions["_f_primal"](lam, 0, n, *extra, *data)
            functions["_f_scores"](np.zeros((n, self.C)), 0, n, *extra, *data)
            functions["_f_reach"](0, n, *data)

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
            user = np.asarray(self._f_user_adjust(), dtype=float)
            bad = [m.name for m, v in zip(self.moments.user, user, strict=True) if not np.isfinite(v)]
            if bad:
                raise MaxEntError(f"constraint(s) {bad}: the target or the constraint's value at the "
                                  "observed choices is not finite (NaN or infinite): nothing to solve for")
            adj[self.C - len(self.moments.user):] = user
        return adj

    def reach(self, adjust: np.ndarray | None = None) -> Reach:
        """The moments' :class:`Reach` over the data in the containers (``adjust`` is added
        to the observed moments: :meth:`target_adjustment`)."""
        acc = None
        with single_thread_blas():
            for s, e in self._chunks():
                parts = self._f_reach(s, e)
                acc = parts if acc is None else [a + b for a, b in zip(acc, parts, strict=True)]
        m, lo, hi, spread = acc[:4]
        if self.noise:
            lo, hi = lo + acc[4], hi + acc[5]
        return Reach(m if adjust is None else m + adjust, lo, hi, spread)

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

    # ------------------------------------------------------------------ the primal solution
    def primal(self, lam, mu=None) -> dict[str, np.ndarray]:
        """``p̂, ε̂, ŵ, π̂`` at the multipliers (all situations), the choice ``information``
        there (the dual Hessian without the noise term, μ concentrated out) and the
        ``noise_moment`` ``Σ_ij F̃_ij ε̂_ij`` (the dual's gradient plus it is the gradient of the
        dual without the noise term: the negative log-likelihood's, in the direct form)."""
        out = {k: [] for k in self._pieces}
        information, noise_moment = np.zeros((self.C, self.C)), np.zeros(self.C)
        n = len(self._pieces)
        with single_thread_blas():
            for s, e in self._chunks():
                values = self._f_primal(*((lam, s, e) if self.direct else (lam, s, e, mu[s:e])))
                for k, v in zip(self._pieces, values[:n], strict=True):
                    out[k].append(v)
                info = values[n]
                if not self.direct:
                    H_lm, h_mm = values[n + 2:]
                    info = info - (H_lm / h_mm[:, None]).T @ H_lm
                information += info
                noise_moment += values[n + 1]
        return {k: np.concatenate(v) for k, v in out.items()} | {"information": information,
                                                                  "noise_moment": noise_moment}

    def meat(self, lam, mu=None) -> np.ndarray:
        """``Σ_i g_i g_i'`` of the per-situation scores, accumulated chunk by chunk."""
        out = np.zeros((self.C, self.C))
        with single_thread_blas():
            for s, e in self._chunks():
                rows = np.broadcast_to(lam, (e - s, self.C)).copy()
                g = self._f_scores(*((rows, s, e) if self.direct else (rows, s, e, mu[s:e])))
                out += g.T @ g
        return out
