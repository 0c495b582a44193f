"""Scale-invariant inversion of the dual Hessian, and the identification check.

Moments on very different scales (a price in cents, a share) give a Hessian whose entries span
many orders of magnitude, so that a plain inverse (or a condition-number test on ``H`` itself)
depends on the units of the data. Both are done on the Jacobi-scaled matrix
``S = D⁻¹ H D⁻¹`` (``D = √diag H``, unit diagonal), which is the same whatever the units:
``H⁻¹ = D⁻¹ S⁻¹ D⁻¹``, and the condition number of ``S`` measures how nearly collinear the
moments are, not how they are scaled.

A multiplier is identified by the choices when the *choice information*, the dual Hessian
without its noise term (``F'(diag p − pp')F`` in the direct form: the conditional logit's
Fisher information at ``p̂``), is non-singular. The noise term alone makes the dual's Hessian
regular, so a direction that only the noise term pins down (two moments that differ by a
constant within every situation) is caught on the information, not on the Hessian.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pymc_maxent.exceptions import IdentificationWarning, MaxEntError, SpecificationError

#: Condition number of a Jacobi-scaled matrix above which it is treated as singular: its
#: smallest eigenvalue is then below ~1e-10 of its largest, where the inverse has lost most of
#: its significant digits (and where collinear moments end up after round-off).
MAX_CONDITION = 1e10

#: Components of the near-null direction named in a warning.
NAMED_COMPONENTS = 4

ON_UNIDENTIFIED = ("warn", "raise")


def jacobi_scaled(H) -> tuple[np.ndarray, np.ndarray]:
    """``(S, d)`` with ``d = √diag H`` and ``S = H / (d d')`` (unit diagonal).

    A non-positive diagonal entry (a moment with no curvature) gets ``d = 1``: its row of
    ``S`` is then not scaled, and its pivot stays non-positive.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.covariance import jacobi_scaled
    >>> S, d = jacobi_scaled(np.array([[4.0, 1e3], [1e3, 1e6]]))
    >>> S.round(3).tolist(), d.tolist()
    ([[1.0, 0.5], [0.5, 1.0]], [2.0, 1000.0])
    """
    H = np.asarray(H, dtype=float)
    diag = np.diag(H)
    d = np.where(diag > 0, np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
    return H / np.outer(d, d), d


def _eigen(S):
    """Eigenvalues (ascending) and vectors of the symmetric part of ``S``."""
    return np.linalg.eigh(0.5 * (S + S.T))


def _condition(eigenvalues) -> float:
    lo, hi = float(eigenvalues[0]), float(eigenvalues[-1])
    return hi / lo if lo > 0 and np.isfinite(hi) else np.inf


def condition_number(H) -> float:
    """Condition number of the Jacobi-scaled ``H`` (``inf`` with a non-positive pivot).

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.covariance import condition_number
    >>> bool(condition_number(np.diag([1e-12, 1e12])) == 1.0)
    True
    """
    S, _ = jacobi_scaled(H)
    if not np.all(np.isfinite(S)):
        return np.inf
    return _condition(_eigen(S)[0])


def covariance(H) -> tuple[np.ndarray, float]:
    """``(H⁻¹, condition number)``, inverting the Jacobi-scaled ``H`` and scaling back.

    The inverse is exact to round-off in the scaled problem, whatever the units of the moments.
    When the scaled matrix is singular (a non-positive eigenvalue) its pseudo-inverse is used:
    the variances of the parameters in the null direction then mean nothing, which the
    condition number (``inf``) says; :func:`identification` turns that into a warning.

    Parameters
    ----------
    H : ndarray (C, C)
        A symmetric positive (semi-)definite matrix: the dual Hessian.

    Returns
    -------
    cov : ndarray (C, C)
    condition_number : float
        Of ``D⁻¹ H D⁻¹`` (``D = √diag H``).

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.covariance import covariance
    >>> H = np.array([[2e12, 1.0], [1.0, 2e-12]])  # S = [[1, 1/2], [1/2, 1]]
    >>> cov, cond = covariance(H)
    >>> (cov * np.array([[2e12, 1.0], [1.0, 2e-12]])).round(6).tolist(), round(cond, 6)
    ([[1.333333, -0.333333], [-0.333333, 1.333333]], 3.0)
    """
    S, d = jacobi_scaled(H)
    if not np.all(np.isfinite(S)):
        raise MaxEntError("the dual Hessian has non-finite entries: no covariance")
    w, V = _eigen(S)
    cond = _condition(w)
    if np.isfinite(cond):
        inv = (V / w) @ V.T
    else:
        inv = np.linalg.pinv(S, hermitian=True)
    return inv / np.outer(d, d), cond


@dataclass(frozen=True)
class Identification:
    """The outcome of :func:`identification`.

    Attributes
    ----------
    identified : bool
        Both the dual Hessian and the choice information are well conditioned once scaled.
    condition_number : float
        Of the Jacobi-scaled dual Hessian.
    information_condition_number : float
        Of the Jacobi-scaled choice information (the Hessian without the noise term).
    direction : tuple of (str, float)
        When not identified: the largest components (normalised to a largest of 1) of the
        eigenvector of the smallest eigenvalue of the scaled matrix that failed.
    """

    identified: bool
    condition_number: float
    information_condition_number: float
    direction: tuple = ()

    def describe(self) -> str:
        """The near-null direction as ``"+1 beta[x1] -1 beta[x2]"`` (components of the scaled
        eigenvector of the Jacobi-scaled matrix: unit-free)."""
        return " ".join(f"{c:+.3g} {name}" for name, c in self.direction)


def near_null_direction(H, names, n: int = NAMED_COMPONENTS) -> tuple:
    """The ``n`` largest components of the eigenvector of the smallest eigenvalue of the
    Jacobi-scaled ``H``, as ``(name, component)`` with the largest component ``+1``.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.covariance import near_null_direction
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
    """Check that the fitted multipliers are identified by the choices.

    Parameters
    ----------
    hessian : ndarray (C, C)
        The dual Hessian at the solution.
    information : ndarray (C, C) or None
        The choice information there (the Hessian without the noise term); None: ``hessian``.
    names : sequence of str
        Parameter names, for the near-null direction.
    threshold : float
        Largest condition number (of a Jacobi-scaled matrix) accepted.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.covariance import identification
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


def report_unidentified(ident: Identification, on_unidentified: str = "warn", stacklevel: int = 3) -> str:
    """Warn (:class:`~pymc_maxent.exceptions.IdentificationWarning`) or raise
    (:class:`~pymc_maxent.exceptions.SpecificationError`) about an unidentified fit; returns
    the message ("" when identified)."""
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
    warnings.warn(message, IdentificationWarning, stacklevel=stacklevel)
    return message


def check_on_unidentified(value: str) -> str:
    if value not in ON_UNIDENTIFIED:
        raise MaxEntError(f"on_unidentified must be one of {ON_UNIDENTIFIED}; got {value!r}")
    return value
