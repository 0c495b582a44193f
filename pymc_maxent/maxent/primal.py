"""The note's MaxEnt problem solved as written: entropy objective, equality constraints.

Unknowns are the weights of the available (situation, alternative) pairs: ``p`` directly
(GJP 1996) or ``π`` over a probability support, and ``w`` over the error support. The
objective ``KL(p‖p0) + KL(w‖w0)`` (``KL(π‖π0)`` in the support form; ``0 log 0 = 0``), its
gradient, the constraints and their Jacobians are PyTensor graphs of the data containers;
SciPy's ``trust-constr`` (equality-constrained SQP) solves it, with the objective's exact
gradient and diagonal Hessian. Linear constraints (every standard moment, adding-up,
normalisations, linear user constraints) are passed as one sparse ``LinearConstraint`` whose
matrix is the graph's Jacobian, its rows scaled to a largest coefficient of 1 (so that a
moment's units do not decide how closely it is met); nonlinear user constraints as a
``NonlinearConstraint`` with the graph's Jacobian. The noise enters every constraint centred
within each situation over its available alternatives, ``ε̃_ij = ε_ij − mean_{l∈C_i} ε_il``
(``centre_noise=True``, the dual's ``F̃``: ``Σ_j F_ij ε̃_ij = Σ_j F̃_ij ε_ij``), or as it is
(``centre_noise=False``, GJP 1996 as written). The entropy's domain ``z > 0`` is kept by
returning ``+inf`` outside it, which makes the trust region reject such steps (explicit
bounds switch SciPy to its barrier method, which stalls here; SLSQP is exact but needs
minutes at N = 200). ``N·J·(1 + H)`` unknowns: for small problems and as an independent check
of the dual.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace
from scipy import optimize, sparse

from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError
from pymc_maxent.maxent.moments import MomentSet, centre_within_situations
from pymc_maxent.maxent.population_dual import single_thread_blas
from pymc_maxent.maxent.supports import Supports, default_error_support

#: Largest number of primal unknowns accepted (the dense Jacobian graph grows with it).
MAX_UNKNOWNS = 20_000


def _xlogx(x):
    safe = pt.switch(pt.gt(x, 0), x, 1.0)
    return pt.switch(pt.gt(x, 0), x * pt.log(safe), 0.0)


@dataclass
class PrimalSolution:
    p: np.ndarray
    e: np.ndarray
    w: np.ndarray | None
    pi: np.ndarray | None
    lam: np.ndarray
    objective: float
    converged: bool
    message: str
    nit: int
    max_violation: float


def nonlinear_names(problem) -> list[str]:
    return [m.name for m in problem.moments.user] if problem._nonlinear is not None else []


class PrimalProblem:
    """The primal over the current contents of the data containers (``centre_noise``: as in
    :class:`~pymc_maxent.maxent.population_dual.DualProblem`)."""

    def __init__(self, moments: MomentSet, containers, supports: Supports, centre_noise: bool = True):
        self.moments = moments
        self.c = containers
        self.supports = supports
        avail = np.asarray(containers.available.get_value(), dtype=bool)
        N, J = avail.shape
        self.N, self.J = N, J
        self.rows, self.cols = np.nonzero(avail)
        P = self.rows.size
        u = supports.error
        if u is not None and supports.default_error:
            u = default_error_support(N, u.size)
        self.u = u
        H = 0 if u is None else u.size
        M = 0 if supports.direct else supports.probability.size
        self.n_p = P * (1 if supports.direct else M)
        self.n_w = P * H
        n = self.n_p + self.n_w
        if n > MAX_UNKNOWNS:
            raise MaxEntError(
                f"the primal has {n} unknowns (more than {MAX_UNKNOWNS}); use solver='dual'"
            )
        self.P, self.H, self.M = P, H, M
        self.z = pt.vector("z", dtype="float64")
        objective, p, e, pi_mat, w_mat = self._unknowns(avail, centre_noise)
        self._compile(objective, *self._constraints(p, e, pi_mat, w_mat))

    def _unknowns(self, avail, centre_noise):
        """The objective and ``p``, ``ε`` (and ``π``, ``w`` as matrices) as graphs of ``z``."""
        supports, z, u = self.supports, self.z, self.u
        N, J, P, H, M = self.N, self.J, self.P, self.H, self.M
        rows, cols = pt.as_tensor_variable(self.rows), pt.as_tensor_variable(self.cols)
        zp, zw = z[: self.n_p], z[self.n_p:]
        if supports.direct:
            p = pt.set_subtensor(pt.zeros((N, J))[rows, cols], zp)
            log_prior = np.log(supports.p0[self.rows, self.cols])
            objective = (_xlogx(zp) - zp * log_prior).sum()
            pi_mat = None
        else:
            s = supports.probability
            pi_mat = zp.reshape((P, M))
            p = pt.set_subtensor(pt.zeros((N, J))[rows, cols], pt.dot(pi_mat, s))
            objective = (_xlogx(pi_mat) - pi_mat * np.log(supports.pi0)).sum()
        if H:
            w_mat = zw.reshape((P, H))
            e = pt.set_subtensor(pt.zeros((N, J))[rows, cols], pt.dot(w_mat, u))
            objective = objective + (_xlogx(w_mat) - w_mat * np.log(supports.w0)).sum()
            if centre_noise:
                e = centre_within_situations(e, avail)
        else:
            w_mat = None
            e = pt.zeros((N, J))
        self._p_graph, self._e_graph = p, e
        return objective, p, e, pi_mat, w_mat

    def _constraints(self, p, e, pi_mat, w_mat):
        """The constraints: moments (linear in ``p + ε``, or the user's nonlinear ones), adding-up
        and normalisations."""
        moments, containers, J = self.moments, self.c, self.J
        y = pt.eq(pt.arange(J)[None, :], containers.chosen[:, None]).astype("float64")
        linear, nonlinear, targets_nl = [], [], []
        Fs = moments.standard_features(containers.X, containers.available)
        if Fs is not None:
            linear.append((Fs * (p + e)[:, :, None]).sum(axis=(0, 1)) - (Fs * y[:, :, None]).sum(axis=(0, 1)))
        self.user_values = []
        for g in getattr(moments, "user_graphs", []):
            gz = clone_replace(g, {moments.user_p: p, moments.user_e: e})
            target = moments.user_targets[len(self.user_values)]
            self.user_values.append(gz)
            if moments.user_linear:  # checked numerically by MomentSet
                linear.append((gz - target)[None])
            else:
                nonlinear.append(gz)
                targets_nl.append(target)
        linear.append(p.sum(axis=1) - 1.0)  # adding-up, one per situation
        if pi_mat is not None:
            linear.append(pi_mat.sum(axis=1) - 1.0)
        if w_mat is not None:
            linear.append(w_mat.sum(axis=1) - 1.0)
        self.n_moment_rows = moments.n - len(nonlinear)
        return pt.concatenate(linear), nonlinear, targets_nl, p, e

    def _compile(self, objective, c_lin, nonlinear, targets_nl, p, e):
        z = self.z
        J_lin = pytensor.gradient.jacobian(c_lin, z, vectorize=True)
        grad = pytensor.grad(objective, z)
        hdiag = pytensor.grad(grad.sum(), z)  # separable objective: the Hessian's diagonal
        self._f_obj = pytensor.function([z], [objective, grad])
        self._f_hdiag = pytensor.function([z], hdiag)
        self._f_lin = pytensor.function([z], [c_lin, J_lin])
        self._f_pe = pytensor.function([z], [p, e])
        self._nonlinear = None
        if nonlinear:
            c_nl = pt.stack(nonlinear) - pt.stack(targets_nl)
            self._nonlinear = pytensor.function(
                [z], [c_nl, pytensor.gradient.jacobian(c_nl, z, vectorize=True)]
            )

    def start(self) -> np.ndarray:
        """Prior weights: a feasible point of the normalisations."""
        s = self.supports
        if s.direct:
            zp = s.p0[self.rows, self.cols]
        else:
            zp = np.tile(s.pi0, self.P)
        zw = np.tile(s.w0, self.P) if self.H else np.zeros(0)
        return np.concatenate([zp, zw])

    def solve(self, *, tol=1e-12, maxiter=3000) -> PrimalSolution:
        """SciPy ``trust-constr`` with the graphs' exact gradient, Hessian and Jacobians."""
        with single_thread_blas():
            return self._solve(tol=tol, maxiter=maxiter)

    def _solve(self, *, tol, maxiter) -> PrimalSolution:
        z0 = self.start()
        c0, A = self._f_lin(z0)
        b = A @ z0 - c0  # c(z) = A z − b
        # rows scaled to a largest coefficient of 1: a moment's units (or origin) then no longer
        # decide how closely it is met, nor the conditioning of the SQP steps
        row_scale = 1.0 / np.maximum(np.abs(A).max(axis=1), 1e-300)
        constraints = [optimize.LinearConstraint(sparse.csr_matrix(A * row_scale[:, None]), b * row_scale,
                                                 b * row_scale)]
        if self._nonlinear is not None:
            f_nl = self._nonlinear
            constraints.append(optimize.NonlinearConstraint(
                lambda z: f_nl(z)[0], 0.0, 0.0, jac=lambda z: sparse.csr_matrix(f_nl(z)[1]),
                hess=optimize.BFGS(),
            ))

        def fun(z):  # the entropy's domain is z > 0: outside, +inf makes the step rejected
            return self._f_obj(z)[0] if np.all(z > 0) else np.inf

        def hess(z):  # separable objective: diagonal Hessian from the graph
            return sparse.diags(self._f_hdiag(z))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = optimize.minimize(
                fun, z0, jac=lambda z: self._f_obj(z)[1], hess=hess, method="trust-constr",
                constraints=constraints,
                options={"gtol": tol, "xtol": 1e-14, "maxiter": maxiter},
            )
        return self._solution(res, row_scale, c0.size)

    def _solution(self, res, row_scale, n_linear: int) -> PrimalSolution:
        """The primal solution, its multipliers and how well it meets the constraints."""
        z = res.x
        resid = self._f_lin(z)[0]
        scaled = resid * row_scale
        if self._nonlinear is not None:
            resid = np.concatenate([resid, self._nonlinear(z)[0]])
            scaled = np.concatenate([scaled, self._nonlinear(z)[0]])
        violation = float(np.abs(resid).max())
        relative = float(np.abs(scaled).max())
        # trust-constr's multipliers of the moment rows "Σ F (p + ε) = m" are the dual's λ
        # (tested against the dual); rows come in order: linear, then nonlinear
        v = np.concatenate([np.atleast_1d(x) for x in res.v])
        lam = v[: self.n_moment_rows] * row_scale[: self.n_moment_rows]
        if self._nonlinear is not None:
            lam = np.concatenate([lam, v[n_linear:n_linear + len(nonlinear_names(self))]])
        p, e = self._f_pe(z)
        w = z[self.n_p:].reshape(self.P, self.H) if self.H else None
        pi = None if self.supports.direct else z[: self.n_p].reshape(self.P, self.M)
        # KKT met: trust-constr's own stop (gtol/xtol), or its trust region collapsing (status 4:
        # the constraints are met to round-off but not to gtol = 1e-12) with a stationary Lagrangian
        ok = relative < 1e-6 and (res.status in (1, 2) or res.optimality < 1e-6)
        if ok:
            message = (f"converged: max constraint violation {relative:.3g} < 1e-6 (rows scaled to a largest "
                       f"coefficient of 1), Lagrangian gradient {res.optimality:.3g} (trust-constr status "
                       f"{res.status})")
        else:
            message = (f"not converged: {res.message} (max violation {relative:.3g} of rows scaled to a "
                       f"largest coefficient of 1, Lagrangian gradient {res.optimality:.3g})")
            warnings.warn(f"MaxEnt primal did not converge: {message}", ConvergenceWarning, stacklevel=3)
        return PrimalSolution(
            p=p, e=e, w=self._scatter(w), pi=self._scatter(pi), lam=lam,
            objective=float(res.fun), converged=ok, message=message, nit=int(res.nit),
            max_violation=violation,
        )

    def _scatter(self, pairs):
        if pairs is None:
            return None
        out = np.zeros((self.N, self.J, pairs.shape[1]))
        out[self.rows, self.cols] = pairs
        return out
