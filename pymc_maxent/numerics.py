"""The numerical core both estimators share: scale-invariant inversion and identification of
Hessians, spectral (minimum-norm) inverses of batches of small blocks, and the one Newton
solver.

*Scale invariance.* Parameters on very different scales (a price in cents, a share) give a
Hessian whose entries span many orders of magnitude, so a plain inverse, or a condition-number
test on ``H`` itself, depends on the units of the data. Both are done on the Jacobi-scaled
matrix ``S = D⁻¹ H D⁻¹`` (``D = √diag H``, unit diagonal), the same whatever the units:
``H⁻¹ = D⁻¹ S⁻¹ D⁻¹``, and the condition number of ``S`` measures how nearly collinear the
parameters are, not how they are scaled.

*Identification.* A MaxEnt multiplier is identified by the choices when the *choice
information*, the dual Hessian without its noise term (the conditional logit's Fisher
information at ``p̂``), is non-singular; the noise term alone makes the dual's Hessian regular.

*The Newton solver* (:func:`newton`) minimises a batch of independent smooth functions at
once (a MaxEnt population dual is a batch of one; the individual and situation duals are
batches of thousands; a MAP's polish is a batch of one): per problem, a Newton step from the
minimum-norm (spectral) inverse of its Hessian, a backtracking (Armijo) line search that also
accepts a step within rounding of sufficient decrease when it shrinks the residual, and one
polishing step once the residual is within tolerance. :func:`trust_exact` is SciPy's trust
region with the exact Hessian, kept as an option (and for non-convex objectives).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.stats import qmc

from pymc_maxent.arguments import require_count
from pymc_maxent.exceptions import IdentificationWarning, MaxEntError, SpecificationError

#: Condition number of a Jacobi-scaled matrix above which it is treated as singular: its
#: smallest eigenvalue is then below ~1e-10 of its largest, where the inverse has lost most of
#: its significant digits (and where collinear parameters end up after round-off).
MAX_CONDITION = 1e10
#: Components of a near-null direction named in a warning.
NAMED_COMPONENTS = 4
ON_UNIDENTIFIED = ("warn", "raise")
#: Eigenvalues of a block below this share of its largest count as 0 (directions it does not
#: identify): the minimum-norm inverse leaves them out.
SINGULAR = 1e-12
#: Sufficient decrease of the Newton line search, and its most step halvings.
ARMIJO = 1e-4
MAX_HALVINGS = 60
#: A decrease within this share of the function's magnitude is rounding (sums of many terms).
ROUNDING = 1e-12


# ---------------------------------------------------------------------- scaling and inversion
def jacobi_scaled(H) -> tuple[np.ndarray, np.ndarray]:
    """``(S, d)`` with ``d = √diag H`` and ``S = H / (d d')`` (unit diagonal), for one matrix or
    a batch ``(..., R, R)``.

    A non-positive diagonal entry (no curvature) gets ``d = 1``: its row of ``S`` is then not
    scaled, and its pivot stays non-positive.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.numerics import jacobi_scaled
    >>> S, d = jacobi_scaled(np.array([[4.0, 1e3], [1e3, 1e6]]))
    >>> S.round(3).tolist(), d.tolist()
    ([[1.0, 0.5], [0.5, 1.0]], [2.0, 1000.0])
    """
    H = np.asarray(H, dtype=float)
    diag = np.diagonal(H, axis1=-2, axis2=-1)
    d = np.where(diag > 0, np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
    return H / (d[..., :, None] * d[..., None, :]), d


def _eigen(S):
    """Eigenvalues (ascending) and vectors of the symmetric part of ``S``."""
    return np.linalg.eigh(0.5 * (S + np.swapaxes(S, -1, -2)))


def _condition(eigenvalues) -> float:
    lo, hi = float(eigenvalues[0]), float(eigenvalues[-1])
    return hi / lo if lo > 0 and np.isfinite(hi) else np.inf


def condition_number(H) -> float:
    """Condition number of the Jacobi-scaled ``H`` (``inf`` with a non-positive pivot).

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.numerics import condition_number
    >>> bool(condition_number(np.diag([1e-12, 1e12])) == 1.0)
    True
    """
    S, _ = jacobi_scaled(H)
    if not np.all(np.isfinite(S)):
        return np.inf
    return _condition(_eigen(S)[0])


def covariance(H) -> tuple[np.ndarray, float]:
    """``(H⁻¹, condition number)``, inverting the Jacobi-scaled ``H`` and scaling back.

    Exact to round-off in the scaled problem, whatever the units. A singular scaled matrix (a
    non-positive eigenvalue) gets its pseudo-inverse: the variances in the null direction then
    mean nothing, which the condition number (``inf``) says.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.numerics import covariance
    >>> H = np.array([[2e12, 1.0], [1.0, 2e-12]])  # S = [[1, 1/2], [1/2, 1]]
    >>> cov, cond = covariance(H)
    >>> (cov * np.array([[2e12, 1.0], [1.0, 2e-12]])).round(6).tolist(), round(cond, 6)
    ([[1.333333, -0.333333], [-0.333333, 1.333333]], 3.0)
    """
    S, d = jacobi_scaled(H)
    if not np.all(np.isfinite(S)):
        raise MaxEntError("the Hessian has non-finite entries: no covariance")
    w, V = _eigen(S)
    cond = _condition(w)
    inv = (V / w) @ V.T if np.isfinite(cond) else np.linalg.pinv(S, hermitian=True)
    return inv / np.outer(d, d), cond


def spectrum(H: np.ndarray):
    """Eigenvectors of ``(…, R, R)`` positive semi-definite blocks, the inverses of their
    eigenvalues (0 for the directions a block does not identify: below :data:`SINGULAR` of its
    largest) and which are identified."""
    values, vectors = np.linalg.eigh(H)
    keep = values > SINGULAR * np.maximum(values[..., -1:], 1e-300)
    return vectors, np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0), keep


def minimum_norm_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``H_b⁺ g_b`` for a batch ``(B, R, R)``, ``(B, R)``: the minimum-norm solution, which does
    not move along the directions a block does not identify."""
    vectors, inverse, _ = spectrum(H)
    return np.einsum("brs,bs,bs->br", vectors, inverse, np.einsum("brs,br->bs", vectors, g))


def batched_inverse(H: np.ndarray) -> np.ndarray:
    """Inverses of ``(…, R, R)`` positive semi-definite blocks; a (numerically) singular block
    gets ``inf`` on the diagonal of every component its null space involves (unidentified there)
    rather than NaN or a pseudo-inverse's finite, understated variance."""
    vectors, inverse, keep = spectrum(H)
    singular = ~keep.all(axis=-1)
    out = np.empty_like(H)
    out[~singular] = np.linalg.inv(H[~singular])
    out[singular] = np.einsum("nrs,ns,nts->nrt", vectors[singular], inverse[singular], vectors[singular])
    involved = ((np.abs(vectors) > 1e-8) & ~keep[..., None, :]).any(axis=-1)  # (…, component)
    block, component = np.nonzero(involved)
    out[block, component, component] = np.inf
    return out


def pseudo_inverse_factor(H: np.ndarray) -> np.ndarray:
    """``L`` with ``L L' = H⁺`` for ``(…, R, R)`` positive semi-definite blocks: normal draws
    ``x̂ + L z`` move only along the directions ``H`` identifies."""
    vectors, inverse, _ = spectrum(H)
    return vectors * np.sqrt(inverse)[..., None, :]


# ---------------------------------------------------------------------- identification
@dataclass(frozen=True)
class Identification:
    """The outcome of :func:`identification`.

    Attributes
    ----------
    identified : bool
        Both the Hessian and the information are well conditioned once scaled.
    condition_number : float
        Of the Jacobi-scaled Hessian.
    information_condition_number : float
        Of the Jacobi-scaled information (the dual Hessian without the noise term).
    direction : tuple of (str, float)
        When not identified: the largest components (normalised to a largest of 1) of the
        eigenvector of the smallest eigenvalue of the scaled matrix that failed.
    """

    identified: bool
    condition_number: float
    information_condition_number: float
    direction: tuple = ()

    def describe(self) -> str:
        """The near-null direction as ``"+1 beta[x1] -1 beta[x2]"`` (unit-free)."""
        return " ".join(f"{c:+.3g} {name}" for name, c in self.direction)


def near_null_direction(H, names, n: int = NAMED_COMPONENTS) -> tuple:
    """The ``n`` largest components of the eigenvector of the smallest eigenvalue of the
    Jacobi-scaled ``H``, as ``(name, component)`` with the largest component ``+1``.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.numerics import near_null_direction
    >>> H = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    >>> [(name, round(c, 3)) for name, c in near_null_direction(H, ["a", "b", "c"], n=2)]
    [('a', 1.0), ('b', -1.0)]
    """
    S, _ = jacobi_scaled(H)
    v = _eigen(S)[1][:, 0]
    v = v / v[np.argmax(np.abs(v))]
    order = np.argsort(-np.abs(v), kind="stable")[:n]
    return tuple((str(names[i]), float(v[i])) for i in order if abs(v[i]) > 1e-3)


def identification(hessian, information, names, *, threshold: float = MAX_CONDITION) -> Identification:
    """Check that fitted parameters are identified: the Jacobi-scaled ``information`` (None: the
    ``hessian``) and ``hessian`` both have condition numbers within ``threshold``.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.numerics import identification
    >>> H = np.array([[1.0, 2.0], [2.0, 4.0 + 1e-13]])
    >>> ident = identification(H, None, ["beta[x1]", "beta[x2]"])
    >>> ident.identified, ident.describe()
    (False, '+1 beta[x1] -1 beta[x2]')
    """
    cond_h = condition_number(hessian)
    cond_i = cond_h if information is None else condition_number(information)
    for matrix, cond in ((information, cond_i), (hessian, cond_h)):
        if matrix is not None and not cond <= threshold:
            return Identification(False, cond_h, cond_i, near_null_direction(matrix, names))
    return Identification(True, cond_h, cond_i)


def report_unidentified(ident: Identification, on_unidentified: str = "warn") -> str:
    """Warn (:class:`~pymc_maxent.exceptions.IdentificationWarning`) or raise
    (:class:`~pymc_maxent.exceptions.SpecificationError`) about unidentified multipliers;
    returns the message ("" when identified)."""
    if ident.identified:
        return ""
    message = (
        "the multipliers are not identified by the choices: the scaled choice information has "
        f"condition number {ident.information_condition_number:.3g} (dual Hessian "
        f"{ident.condition_number:.3g}; threshold {MAX_CONDITION:.0e}), nearly flat along "
        f"{ident.describe()}: these moments are (nearly) collinear within situations, and their "
        "estimates and standard errors mean nothing; drop or combine them"
    )
    if on_unidentified == "raise":
        raise SpecificationError(message)
    warnings.warn(message, IdentificationWarning, stacklevel=4)
    return message


def check_on_unidentified(value: str) -> str:
    if value not in ON_UNIDENTIFIED:
        raise MaxEntError(f"on_unidentified must be one of {ON_UNIDENTIFIED}; got {value!r}")
    return value


# ---------------------------------------------------------------------- the Newton solver
@dataclass(frozen=True)
class NewtonResult:
    """Where :func:`newton` stopped, one row per problem of the batch.

    Attributes
    ----------
    x, grad : ndarray (B, R)
    value : ndarray (B,)
    hess : ndarray (B, R, R)
        At ``x``.
    residual : ndarray (B,)
        The convergence measure at ``x`` (largest ``|g| / scale``, or ``|step| / scale``).
    nit : ndarray (B,) of int
        Newton steps taken.
    converged : ndarray (B,) of bool
        ``residual <= tol``.
    note : tuple of str
        Per problem, why it stopped short ("" when it did not).
    """

    x: np.ndarray
    value: np.ndarray
    grad: np.ndarray
    hess: np.ndarray
    residual: np.ndarray
    nit: np.ndarray
    converged: np.ndarray
    note: tuple


def _direction(H, g, metric: str):
    """The minimum-norm Newton direction per problem, and whether its Hessian is positive
    definite (well conditioned once scaled); ``metric="jacobi"`` solves the Jacobi-scaled system
    (unit-free), ``"plain"`` the system as it is (minimum norm in the parameters' own units)."""
    if metric == "jacobi":
        S, d = jacobi_scaled(H)
        step = minimum_norm_solve(S, g / d) / d
        values = np.linalg.eigvalsh(S)
    else:
        step = minimum_norm_solve(H, g)
        values = np.linalg.eigvalsh(H)
    definite = values[:, 0] > values[:, -1] / MAX_CONDITION
    return step, definite


def newton_direction(g, H) -> np.ndarray:
    """The Newton direction ``H⁺ g`` of one problem, on its Jacobi-scaled system: the exact step
    where ``H`` is regular, the minimum-norm (finite, descending) one where it is singular.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.numerics import newton_direction
    >>> newton_direction(np.array([1.0, 1.0]), np.array([[2.0, 0.0], [0.0, 4.0]])).tolist()
    [0.5, 0.25]
    """
    step, _ = _direction(np.asarray(H, dtype=float)[None], np.asarray(g, dtype=float)[None], "jacobi")
    return step[0]


def newton(evaluate: Callable, x0, scale, *, tol: float, maxiter: int, metric: str = "plain",
           criterion: str = "gradient", max_step: float | None = None,
           require_definite: bool = False) -> NewtonResult:
    """Minimise a batch of independent smooth functions by damped Newton steps.

    Newton steps are invariant to any linear reparametrisation of a problem (a rescaled or
    recentred moment moves ``H`` and ``g`` so that the step is the same), so the full step is
    taken as soon as the quadratic model is good. Near the optimum a function's changes drown
    in rounding (a dual sums ``N`` terms), so a step is also taken when its value is within
    rounding of sufficient decrease and it shrinks the residual. Once the residual is within
    ``tol``, one more step puts it at rounding level (quadratic convergence).

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x, rows, hessian) -> (value, grad, hess)`` of the problems ``rows``
        (positions in the batch) at ``x`` (``len(rows) × R``); ``hess`` may be None when
        ``hessian`` is False (the line search).
    x0 : ndarray (B, R)
    scale : ndarray (B, R)
        Units of the convergence measure, per problem and component.
    tol : float
        Converged: ``max |g| / scale <= tol`` (``criterion="gradient"``), or ``max |step| /
        scale <= tol`` (``"step"``: the Newton step in those units).
    maxiter : int
        Newton steps per problem.
    metric : {"plain", "jacobi"}
        The norm of the minimum-norm step where a Hessian is singular: the parameters' own, or
        that of the Jacobi-scaled Hessian (unit-free).
    max_step : float, optional
        Largest component of a step (a coefficient moves at most this far per iteration).
    require_definite : bool
        Stop a problem whose scaled Hessian is singular or indefinite instead of stepping along
        its identified directions (a non-convex objective, where such a step may not descend).

    Returns
    -------
    NewtonResult
    """
    x = np.array(x0, dtype=float, copy=True)
    B, R = x.shape
    scale = np.broadcast_to(np.asarray(scale, dtype=float), (B, R))
    all_rows = np.arange(B)
    value, grad, hess = evaluate(x, all_rows, True)
    value, grad, hess = np.array(value, dtype=float), np.array(grad, dtype=float), np.array(hess, dtype=float)
    nit = np.zeros(B, dtype=int)
    notes = [""] * B
    step = np.zeros((B, R))
    stopped = np.zeros(B, dtype=bool)
    polished = np.zeros(B, dtype=bool)

    def measure(rows, g, s):
        return (np.abs(g if criterion == "gradient" else s) / scale[rows]).max(axis=1, initial=0.0)

    while True:
        rows = all_rows[~stopped]
        if not rows.size:
            break
        step[rows], definite = _direction(hess[rows], grad[rows], metric)
        r = measure(rows, grad[rows], step[rows])
        finite = np.isfinite(r)
        done = finite & (r <= tol) & (polished[rows] | (r <= 1e-3 * tol))
        out_of_steps = nit[rows] >= maxiter + (r <= tol)  # one polishing step past maxiter
        blocked = require_definite & ~definite
        for i in rows[out_of_steps & ~done]:
            notes[i] = f"maxiter={maxiter} Newton steps reached"
        for i in rows[blocked & ~done & ~out_of_steps]:
            notes[i] = "no Newton step: the scaled Hessian is nearly singular or indefinite"
        stop = done | ~finite | out_of_steps | blocked
        stopped[rows[stop]] = True
        rows, r = rows[~stop], r[~stop]
        if not rows.size:
            break
        polished[rows] |= r <= tol
        s = step[rows]
        if max_step is not None:
            big = np.abs(s).max(axis=1, keepdims=True)
            s = s * np.minimum(1.0, max_step / np.maximum(big, 1e-300))
        accepted = _line_search(evaluate, x, value, grad, rows, s, scale)
        lost = rows[~accepted]
        for i in lost:
            notes[i] = "the line search found no decrease (rounding level reached)"
        stopped[lost] = True
        moved = rows[accepted]
        if moved.size:
            nit[moved] += 1
            value[moved], grad[moved], hess[moved] = evaluate(x[moved], moved, True)
    step, _ = _direction(hess, grad, metric)
    residual = measure(all_rows, grad, step)
    converged = np.isfinite(residual) & (residual <= tol) & np.all(np.isfinite(x), axis=1)
    return NewtonResult(x=x, value=value, grad=grad, hess=hess, residual=residual, nit=nit,
                        converged=converged, note=tuple(notes))


def _line_search(evaluate, x, value, grad, rows, step, scale) -> np.ndarray:
    """Halve each problem's step until Armijo's sufficient decrease holds, or the decrease is
    within rounding of it and the gradient shrinks; writes the accepted points into ``x`` and
    returns which problems moved."""
    slope = (grad[rows] * step).sum(axis=1)  # the decrease rate along −step
    length = np.ones(len(rows))
    pending = np.ones(len(rows), dtype=bool)
    start, v_now = x[rows].copy(), value[rows]
    g_now = (np.abs(grad[rows]) / scale[rows]).max(axis=1, initial=0.0)
    rounding = ROUNDING * (1.0 + np.abs(v_now))
    for _ in range(MAX_HALVINGS):
        idx = np.flatnonzero(pending)
        trial = start[idx] - length[idx, None] * step[idx]
        v, g, _ = evaluate(trial, rows[idx], False)
        decrease = v_now[idx] - v
        wanted = ARMIJO * length[idx] * slope[idx]
        shrinks = (np.abs(g) / scale[rows[idx]]).max(axis=1, initial=0.0) < g_now[idx]
        ok = np.isfinite(v) & np.all(np.isfinite(g), axis=1) & (
            (decrease >= wanted) | ((decrease >= wanted - rounding[idx]) & shrinks))
        x[rows[idx[ok]]] = trial[ok]
        pending[idx[ok]] = False
        if not pending.any():
            break
        length[pending] *= 0.5
    return ~pending


def trust_exact(fgh: Callable, x0, d, *, gtol: float, maxiter: int, radius: float | None = None):
    """SciPy's ``trust-exact`` on ``θ = d·x`` (``d`` each parameter's scale, e.g. the root of the
    Hessian's diagonal at the start, so that the spherical region is not stretched by the units).

    Returns
    -------
    x, nit, message
    """
    def scaled(theta):
        return fgh(theta / d)

    options = {"gtol": gtol, "maxiter": maxiter}
    if radius is not None:
        options |= {"initial_trust_radius": radius, "max_trust_radius": max(1e3 * radius, 1e6)}
    try:
        res = optimize.minimize(lambda th: scaled(th)[0], np.asarray(x0, dtype=float) * d,
                                jac=lambda th: scaled(th)[1] / d,
                                hess=lambda th: scaled(th)[2] / np.outer(d, d), method="trust-exact",
                                options=options)
    except np.linalg.LinAlgError as error:  # a Hessian SciPy cannot factorise: Newton takes over
        return np.asarray(x0, dtype=float), 0, f"trust-exact stopped: {error}"
    x = res.x / d
    if not np.all(np.isfinite(x)):
        message = f"trust-exact stepped to non-finite values: {res.message}"
        return np.asarray(x0, dtype=float), int(res.nit), message
    return x, int(res.nit), f"trust-exact: {res.message}"


# ---------------------------------------------------------------------- quasi-Monte Carlo
def qmc_normal_points(dim: int, n_points: int, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scrambled Sobol points mapped to ``N(0, I_dim)`` by the normal inverse CDF, for
    ``E f(z) ≈ mean_r f(z_r)``: points ``(n_points, dim)`` and equal weights.

    Quasi-Monte Carlo, as maximum simulated likelihood integrates mixed logits: the number of
    points does not have to grow with ``dim`` (a product rule's ``nodes**dim`` does). Shared by
    the Bayesian minibatch fit's integrated likelihood and the MaxEnt mixing distribution.

    Examples
    --------
    >>> from pymc_maxent.numerics import qmc_normal_points
    >>> z, w = qmc_normal_points(6, 1024, seed=1)
    >>> z.shape, bool(abs(z.mean(axis=0)).max() < 0.01), bool(abs(z.var(axis=0) - 1).max() < 0.02)
    ((1024, 6), True, True)
    """
    dim, n_points = require_count(dim, "dim"), require_count(n_points, "n_points", minimum=2)
    sobol = qmc.Sobol(dim, scramble=True, rng=seed)
    # the first 2^m points of the Sobol sequence, then the leading n_points (no balance warning)
    n_base2 = 2 ** int(np.ceil(np.log2(n_points)))
    points = qmc.MultivariateNormalQMC(np.zeros(dim), engine=sobol).random(n_base2)
    return points[:n_points], np.full(n_points, 1.0 / n_points)
