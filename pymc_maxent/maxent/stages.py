"""The stages of a MaxEnt fit, each a frozen solution, and how each is solved.

Stage 1, the population (:class:`PopulationStage`): the GME dual of the fixed moments, a batch
of one for the Newton solver (:func:`solve_dual`), evaluated in memory or over Dask blocks alike
(its callables are all it sees), then the estimates' covariances and the identification check
(:func:`population_stage`). Stages 2 and 3, the groups (:class:`GroupStage`): every individual's
(stage 2) or situation's (stage 3) cross-entropy dual with the earlier stage as prior, all solved
together by the same Newton solver (:func:`solve_groups`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError
from pymc_maxent.maxent.group_dual import GroupChunk, GroupProblem, centre_features, choice_fit, information
from pymc_maxent.maxent.options import DUAL_METHODS
from pymc_maxent.maxent.population_dual import Reach, check_reach
from pymc_maxent.numerics import (
    Identification,
    batched_inverse,
    covariance,
    identification,
    jacobi_scaled,
    minimum_norm_solve,
    newton,
    report_unidentified,
    trust_exact,
)

#: Largest Newton step of a group's deviation in any component (a coefficient moves at most
#: this far per iteration).
MAX_GROUP_STEP = 10.0
#: Newton steps that polish a trust-region solution.
POLISH_STEPS = 3


# ---------------------------------------------------------------------- stage 1
@dataclass(frozen=True, eq=False)
class PopulationStage:
    """Stage 1: the population GME of the fixed moments.

    Attributes
    ----------
    terms : tuple of Term
        One per moment (labels, parameter names and dims).
    lam : ndarray (C,)
        Multipliers; ``β = −λ``.
    mu : ndarray (situation,) or None
        The adding-up multipliers of the probability-support form.
    dual_value : float
    grad, hess : ndarray
        The dual's gradient (the moment residual) and Hessian at ``lam`` (NaN: the primal
        solver with a nonlinear constraint; None: loaded from a file).
    cov, cov_robust : ndarray (C, C)
        Inverse dual Hessian (Jacobi-scaled inversion) and the sandwich.
    identification : Identification
    solver : {"dual", "primal"}
    converged : bool
    message : str
    nit : int
    max_violation : float
        Largest violation of a constraint by the recovered primal solution.
    p, eps, w, pi : ndarray or None
        The primal solution (``p`` lazy for Dask data; the others None there).
    chosen, available, p0 : ndarray or None
        The fitted choices and choice sets (None for Dask data) and the prior ``p0`` (None:
        uniform over the available alternatives).
    w0, error_support, probability_support : ndarray or None
    n_situations : int
    lam_corrected : ndarray (C,) or None
        The bias-corrected multipliers (:func:`likelihood_correction`), None where the dual
        cannot be evaluated (a nonlinear constraint).
    cov_corrected, cov_corrected_robust : ndarray (C, C) or None
        Their covariance (the inverse choice information there) and sandwich.
    """

    terms: tuple
    lam: np.ndarray
    mu: np.ndarray | None
    dual_value: float
    grad: np.ndarray | None
    hess: np.ndarray | None
    cov: np.ndarray
    cov_robust: np.ndarray
    identification: Identification
    solver: str
    converged: bool
    message: str
    nit: int
    max_violation: float
    p: object
    eps: np.ndarray | None
    w: np.ndarray | None
    pi: np.ndarray | None
    chosen: np.ndarray | None
    available: np.ndarray | None
    p0: np.ndarray | None
    w0: np.ndarray | None
    error_support: np.ndarray | None
    probability_support: np.ndarray | None
    n_situations: int
    lam_corrected: np.ndarray | None = None
    cov_corrected: np.ndarray | None = None
    cov_corrected_robust: np.ndarray | None = None

    @property
    def labels(self) -> list[str]:
        return [t.moment for t in self.terms]

    @property
    def correctable(self) -> bool:
        """Whether the fit has a bias-corrected estimate."""
        return self.lam_corrected is not None


def solve_dual(evaluate: Callable, reach: Callable, n_moments: int, labels, *, lam0=None,
               tol: float = 1e-10, maxiter: int = 100, method: str = "newton"):
    """Minimise a MaxEnt population dual given as callables: the reach check, then the Newton
    solver (or SciPy's scaled ``trust-exact`` with a Newton polish).

    Parameters
    ----------
    evaluate : callable
        ``evaluate(lam) -> (D, ∇D, ∇²D)``: the dual (μ concentrated out), its gradient (the
        moment residual) and Hessian, summed over all situations (in memory or over blocks).
    reach : callable
        ``reach() -> Reach`` of the moments.
    n_moments : int
    labels : sequence of str
        Moment labels, for messages.
    lam0 : array, optional
        Starting multipliers (default 0: the prior).
    tol : float
        Converged means ``|m_c − Σ F (p + ε)| ≤ tol · scale_c`` for every moment, with
        ``scale_c = hi_c − lo_c`` the width of its reachable range: a criterion that depends on
        neither the units nor the origins of the moments.
    maxiter : int
    method : {"newton", "trust-exact"}
        ``"newton"`` (default): :func:`~pymc_maxent.numerics.newton` on the Jacobi-scaled
        system (affine invariant: it needs no scaling of the moments). ``"trust-exact"``:
        SciPy's trust region on multipliers scaled by the root of the Hessian's diagonal at the
        start, then Newton steps; its spherical region is not affine invariant and takes 20 or
        more iterations on designs whose Hessian changes much on the way.

    Returns
    -------
    lam, value, grad, hess, converged, message, nit
        Not converged: a :class:`~pymc_maxent.exceptions.ConvergenceWarning` too.

    Raises
    ------
    MaxEntError
        An unknown ``method``; a moment out of reach (:func:`check_reach`).

    Examples
    --------
    A two-alternative logit in one multiplier, ``D(λ) = λ m + Σ_i ln(½ e^{−λ x_i1} + ½ e^{−λ x_i2})``:

    >>> import numpy as np
    >>> from pymc_maxent.maxent.population_dual import Reach
    >>> from pymc_maxent.maxent.stages import solve_dual
    >>> x = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]]); m = 2.0
    >>> def evaluate(lam):
    ...     p = np.exp(-lam[0] * x); p /= p.sum(axis=1, keepdims=True)
    ...     mean = (p * x).sum(axis=1)
    ...     value = lam[0] * m + np.log(np.exp(-lam[0] * x).mean(axis=1)).sum()
    ...     return value, np.array([m - mean.sum()]), np.array([[(p * (x - mean[:, None])**2).sum()]])
    >>> reach = lambda: Reach(np.array([m]), np.array([0.0]), np.array([6.0]), np.array([6.0]))
    >>> lam, value, grad, hess, converged, message, nit = solve_dual(evaluate, reach, 1, ["x"])
    >>> converged, nit <= 6
    (True, True)
    """
    if method not in DUAL_METHODS:
        raise MaxEntError(f"method must be one of {DUAL_METHODS}; got {method!r}")
    scale = check_reach(reach(), labels)
    lam0 = np.zeros(n_moments) if lam0 is None else np.asarray(lam0, dtype=float)
    cache: dict = {}

    def pieces(lam):  # the line search and the next step evaluate the same point: once
        key = lam.tobytes()
        if key not in cache:
            if len(cache) >= 3:
                cache.pop(next(iter(cache)))
            cache[key] = evaluate(lam)
        return cache[key]

    def batch(x, rows, hessian):
        value, grad, hess = pieces(np.ascontiguousarray(x[0]))
        return np.array([value]), grad[None], hess[None]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        note, nit = "", 0
        if method == "trust-exact":
            d = jacobi_scaled(pieces(lam0)[2])[1]
            lam0, nit, note = trust_exact(pieces, lam0, d, gtol=tol * (scale / d).min(), maxiter=maxiter)
        result = newton(batch, lam0[None], scale[None], tol=tol,
                        maxiter=maxiter if method == "newton" else POLISH_STEPS, metric="jacobi")
    lam, value, grad, hess = result.x[0], float(result.value[0]), result.grad[0], result.hess[0]
    residual, converged = float(result.residual[0]), bool(result.converged[0])
    nit += int(result.nit[0])
    note = "; ".join(n for n in (note if not converged else "", result.note[0]) if n)
    if converged:
        message = f"converged: max relative moment residual {residual:.3g} <= tol {tol:g}"
    else:
        message = (f"not converged: max relative moment residual {residual:.3g} > tol {tol:g} "
                   f"(max |moment residual| {np.abs(grad).max():.3g}); {method}: {note or 'stopped'}")
        warnings.warn(f"MaxEnt dual did not converge after {nit} iterations: {message}",
                      ConvergenceWarning, stacklevel=3)
    return lam, value, grad, hess, converged, message, nit


def population_stage(*, terms, names, solved, primal: dict, meat: Callable | None, solver: str,
                     on_unidentified: str, chosen, available, p0, w0, error_support,
                     probability_support, n_situations: int, violation: float,
                     likelihood: Callable | None = None) -> PopulationStage:
    """Stage 1 from a solved dual (the output of :func:`solve_dual`, or the primal's multipliers
    with the dual evaluated there) and its primal solution: covariance, sandwich (``meat(lam)``:
    ``Σ_i g_i g_i'`` of the per-situation scores), identification check and report, and the
    bias-corrected estimate (``likelihood``, :func:`likelihood_correction`), the same whether the
    data were in memory or on Dask."""
    lam, value, grad, hess, converged, message, nit = solved
    C = len(terms)
    correction = ({} if likelihood is None or meat is None or not np.all(np.isfinite(lam))
                  else likelihood_correction(lam, likelihood, meat))
    if meat is not None and hess is not None and np.all(np.isfinite(hess)):
        cov, _ = covariance(hess)
        cov_robust = cov @ meat(lam) @ cov
        ident = identification(hess, primal.get("information"), names)
        if not ident.identified:
            message = f"{message}; NOT identified: {report_unidentified(ident, on_unidentified)}"
    else:
        cov = cov_robust = np.full((C, C), np.nan)
        ident = Identification(True, np.nan, np.nan)
    return PopulationStage(
        terms=tuple(terms), lam=np.asarray(lam, dtype=float), mu=primal.get("mu"), dual_value=float(value),
        grad=grad, hess=hess, cov=cov, cov_robust=cov_robust, identification=ident, solver=solver,
        converged=bool(converged), message=message, nit=int(nit), max_violation=float(violation),
        p=primal.get("p"), eps=primal.get("e"), w=primal.get("w"), pi=primal.get("pi"), chosen=chosen,
        available=available, p0=p0, w0=w0, error_support=error_support,
        probability_support=probability_support, n_situations=int(n_situations), **correction)


#: Newton steps of the likelihood from GME's solution that make its bias-corrected estimate.
CORRECTION_STEPS = 2


def likelihood_correction(lam, likelihood: Callable, meat: Callable, steps: int = CORRECTION_STEPS) -> dict:
    """GME's bias-corrected estimate: ``steps`` Newton steps of the dual without its noise term
    (the negative log-likelihood, in the direct form) from GME's ``λ̂``, and its covariance, the
    inverse choice information there, with the sandwich ``I⁻¹ M I⁻¹`` (``M = meat(λ̃)``).

    GME's noise term is a ridge on the utility index: it shrinks ``λ̂`` toward 0 (0.84× at
    N = 100), while the inverse dual Hessian has the width of an unshrunk estimate, so the
    intervals centred on ``λ̂`` under-cover. Each Newton step of the likelihood from ``λ̂``
    removes that shrinkage to the next order (the first is Le Cam's one-step estimator), and it
    stays finite where the choices separate and the likelihood has no root
    (``docs/calibration.md``: the coverage of each).

    Parameters
    ----------
    lam : ndarray (C,)
    likelihood : callable
        ``likelihood(lam) -> (gradient, information)`` of the dual without its noise term.
    meat : callable
        ``meat(lam) -> Σ_i g_i g_i'``.
    steps : int

    Returns
    -------
    dict
        ``lam_corrected``, ``cov_corrected``, ``cov_corrected_robust``; empty where the
        information is not finite.
    """
    lam = np.asarray(lam, dtype=float)
    for _ in range(steps):
        gradient, information = likelihood(lam)
        if not (np.all(np.isfinite(gradient)) and np.all(np.isfinite(information))):
            return {}
        cov, _ = covariance(information)
        lam = lam - cov @ gradient
    _, information = likelihood(lam)
    if not np.all(np.isfinite(information)):
        return {}
    cov, _ = covariance(information)
    return {"lam_corrected": lam, "cov_corrected": cov, "cov_corrected_robust": cov @ meat(lam) @ cov}


# ---------------------------------------------------------------------- stages 2 and 3
@dataclass(frozen=True, eq=False)
class GroupStage:
    """Stage 2 (individuals) or 3 (situations): every group's deviation from the earlier stage.

    Attributes
    ----------
    level : {"individual", "situation"}
    labels : tuple
        The groups' labels (individuals, or situations).
    components : tuple of str
        The deviation's components (the random components, or the situation-level ones).
    delta : ndarray (group, component)
        ``δ_g``: the group's coefficients are the earlier stage's less ``δ_g``.
    grad, hessian, information, value, nit, converged, reach
        The group duals at the solution: residuals, Hessians and their part without the noise
        term, values, Newton steps, convergence, and each moment's reachable range.
    kl, information_index : ndarray (group,)
        ``KL(p_g ‖ p⁰_g)`` and its share of ``KL(y_g ‖ p⁰_g)``.
    loglik : float
        Of the fitted choices at this stage.
    hits, n : int
        Situations whose most probable alternative was chosen; situations.
    n_situations : ndarray (group,)
    separated : ndarray (group,) bool or None
        Groups whose own choices are separated (None: not checked).
    support, scale
        The base error support (None: no noise) and its scale per group.
    problem : GroupProblem or None
        The arrays of the duals (None for a fit of Dask data).
    p, eps : ndarray or None
        The stage's ``p̂`` and ``ε̂`` (None for a fit of Dask data).
    """

    level: str
    labels: tuple
    components: tuple
    delta: np.ndarray
    grad: np.ndarray
    hessian: np.ndarray
    information: np.ndarray
    value: np.ndarray
    nit: np.ndarray
    converged: np.ndarray
    reach: np.ndarray
    kl: np.ndarray
    information_index: np.ndarray
    loglik: float
    hits: int
    n: int
    n_situations: np.ndarray
    separated: np.ndarray | None
    support: np.ndarray | None
    scale: np.ndarray
    problem: GroupProblem | None = None
    p: np.ndarray | None = None
    eps: np.ndarray | None = None

    @cached_property
    def cov(self) -> np.ndarray:
        """Each group's ``H_g⁻¹`` (``inf`` on the components a singular block leaves unidentified)."""
        return batched_inverse(self.hessian)

    @cached_property
    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.einsum("grr->gr", self.cov), 0.0, None))

    @property
    def violation(self) -> np.ndarray:
        """Largest absolute violation of each group's moment constraints."""
        return np.abs(self.grad).max(axis=1, initial=0.0)

    @property
    def n_converged(self) -> int:
        return int(self.converged.sum())

    @property
    def n_separated(self) -> int | None:
        return None if self.separated is None else int(self.separated.sum())

    @property
    def kl_total(self) -> float:
        return float(self.kl.sum())

    def total_index(self) -> float:
        """``Σ KL(p ‖ p⁰) / Σ KL(y ‖ p⁰)`` over the groups (from the arrays, when held)."""
        if self.problem is None or self.p is None:
            raise MaxEntError("the total information index needs the situations' arrays (a fit in memory)")
        return information(self.p, self.problem)[3]


def solve_groups(problem: GroupProblem, *, tol: float = 1e-10, maxiter: int = 100,
                 chunk_size: int = 4096, x0: np.ndarray | None = None) -> dict:
    """Every group's dual minimised by the Newton solver, ``chunk_size`` groups at a time.

    A group stops when every moment residual is within ``tol`` of the moment's reachable range
    (at least 1), when no step decreases its dual any more, or after ``maxiter + 1`` steps (the
    first from ``δ = 0``, the earlier stage's fit, then ``maxiter``). A component a group's situations
    do not move (a zero eigenvalue of its Hessian) gets no step: the minimum-norm step.
    ``x0`` (group, component): where to start instead (a warm start of the learnt pooling's
    iterations).

    Returns
    -------
    dict
        ``delta, grad, hessian, information, value, nit, converged, reach`` (one row per group)
        and ``p, eps`` (situation, alternative; ``ε̂`` as it enters the moments).
    """
    I, R = problem.n_groups, problem.R
    N, J = problem.available.shape
    out = {"delta": np.zeros((I, R)), "grad": np.zeros((I, R)), "hessian": np.zeros((I, R, R)),
           "information": np.zeros((I, R, R)), "value": np.zeros(I), "nit": np.zeros(I, dtype=int),
           "converged": np.ones(I, dtype=bool), "reach": np.zeros((I, R)), "p": np.exp(problem.log_p0),
           "eps": np.zeros((N, J))}
    present = np.flatnonzero(problem.n_situations > 0)
    for s in range(0, len(present), chunk_size):
        ids = present[s:s + chunk_size]
        ch = problem.chunk(ids)

        def evaluate(x, rows, hessian, ch=ch):
            t = ch.select(rows).terms(x, hessian=hessian)
            return t["value"], t["grad"], t.get("hessian")

        start = np.zeros((len(ids), R)) if x0 is None else x0[ids]
        solved = newton(evaluate, start, np.maximum(ch.reach, 1.0), tol=tol,
                        maxiter=maxiter + 1, metric="plain", max_step=MAX_GROUP_STEP)
        t = ch.terms(solved.x)  # p, ε and the Hessians of every group at the solution
        out["delta"][ids], out["grad"][ids], out["value"][ids] = solved.x, t["grad"], t["value"]
        out["hessian"][ids], out["information"][ids] = t["hessian"], t["information"]
        out["nit"][ids], out["converged"][ids], out["reach"][ids] = solved.nit, solved.converged, ch.reach
        out["p"][ch.rows] = t["p"]
        if t["e"] is not None:
            e = t["e"]
            if problem.G_noise is not problem.G:  # centred: ε as it enters the moments
                e = np.where(ch.avail, e - e.sum(axis=1, keepdims=True) / ch.avail.sum(axis=1,
                                                                                       keepdims=True), 0.0)
            out["eps"][ch.rows] = e
        if problem.precision is not None:
            out["eps"][ch.rows] += moment_noise_cells(ch, solved.x @ problem.precision)
    out["p"] = np.where(problem.available, out["p"], 0.0)
    return out


def moment_noise_cells(ch: GroupChunk, A_delta: np.ndarray) -> np.ndarray:
    """The cell noise ``ε̂`` (situation, alternative) that carries each group's moment noise
    ``e_g = −Aδ_g``: the least-norm ``ε`` centred within situations with ``Σ_tj G_tj ε_tj = e_g``,
    ``ε_t = G̃_t c_g`` with ``(Σ_t G̃_t'G̃_t) c_g = e_g`` (``e_g`` lies in that span: it equals the
    moments' residual ``Σ G(p̂ − y)``)."""
    Gc = centre_features(ch.G, ch.avail)
    gram = ch.sum(np.matmul(Gc.transpose(0, 2, 1), Gc))
    d = np.sqrt(np.einsum("grr->gr", gram))
    d = np.where(d > 0, d, 1.0)  # Jacobi-scaled, so that the solve does not depend on the units
    c = minimum_norm_solve(gram / (d[:, :, None] * d[:, None, :]), -A_delta / d) / d
    return np.einsum("njr,nr->nj", Gc, c[ch.local])


def group_stage(level: str, labels, components, problem: GroupProblem, solved: dict,
                separated: np.ndarray | None) -> GroupStage:
    """A :class:`GroupStage` from :func:`solve_groups`' arrays (in memory); without a noise
    term a separated group's MLE does not exist (its gradient only fades as ``δ`` runs off), so
    a small residual is not convergence there."""
    unbounded = problem.support is None and problem.precision is None  # no noise term at all
    converged = solved["converged"] & ~separated if unbounded and separated is not None \
        else solved["converged"]
    kl, index, _, _ = information(solved["p"], problem)
    loglik, hits = choice_fit(solved["p"], problem.chosen)
    arrays = {k: solved[k] for k in ("delta", "grad", "hessian", "information", "value", "nit", "reach")}
    return GroupStage(level=level, labels=tuple(labels), components=tuple(components), **arrays,
                      converged=converged, kl=kl, information_index=index, loglik=loglik, hits=hits,
                      n=len(problem.chosen), n_situations=problem.n_situations, separated=separated,
                      support=problem.support, scale=problem.scale, problem=problem, p=solved["p"],
                      eps=solved["eps"])


def reach_of(parts) -> Reach:
    """The element-wise sum of :class:`Reach` parts (Dask blocks)."""
    return sum(parts[1:], parts[0])
