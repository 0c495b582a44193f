"""Supports and prior weights of the GME unknowns, and their validation.

The errors ``ε_ij = Σ_h u_h w_ijh`` live on an error support ``u`` (default: 3 points on
``±1/√N``); in the note's form the probabilities ``p_ij = Σ_m s_m π_ijm`` live on a
probability support ``s ⊂ [0, 1]``. Prior weights ``p0`` (over the available alternatives of
each situation), ``w0`` (over ``u``) and ``π0`` (over ``s``) turn the entropy objective into
the cross entropy ``KL(p‖p0) + KL(w‖w0)``; they default to uniform.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pymc_maxent.data.validate import PACKAGE_DIR
from pymc_maxent.exceptions import MaxEntError, ScaleWarning

#: Tolerance on prior weights summing to one.
PRIOR_SUM_TOL = 1e-8


class OriginWarning(ScaleWarning):
    """The uncentred noise term (``centre_noise=False``, GJP 1996 as written) weighs the moments
    by the features' levels: the estimates then depend on the attributes' origins (adding a
    constant to a price in every alternative changes them)."""


class SupportWarning(UserWarning):
    """An error support whose prior mean of the noise, ``Σ_h w0_h u_h``, is not 0 (an asymmetric
    support, or asymmetric prior weights): the cross entropy then pulls ``ε`` toward that mean,
    which shifts every moment the noise sees and biases the estimates; GME's noise is meant to
    be centred on 0."""


def warn_if_noise_mean_not_zero(u: np.ndarray, w0: np.ndarray | None, name: str) -> None:
    """A :class:`SupportWarning` naming ``name``, the support and the prior mean of the noise
    when that mean is not 0 (relative to the support's width, 1e-12)."""
    weights = np.full(u.size, 1.0 / u.size) if w0 is None else np.asarray(w0, dtype=float)
    mean = float(weights @ u)
    if abs(mean) > 1e-12 * float(u.max() - u.min()):
        warnings.warn(
            f"{name} {u.tolist()} with prior weights {np.round(weights, 6).tolist()} has a prior mean of "
            f"the noise of {mean:.6g}, not 0: the noise is then pulled toward that mean, which shifts the "
            "moments it sees and biases the estimates; give a support symmetric about 0 (or weights that "
            "centre it)",
            SupportWarning, skip_file_prefixes=(PACKAGE_DIR,))  # attributed to the caller


def check_centre_noise(centre_noise, noise: bool, stacklevel: int = 3) -> bool:
    """``centre_noise`` as a bool; an :class:`OriginWarning` when it is False with a noise term.

    Raises
    ------
    MaxEntError
        If it is not a bool.

    Examples
    --------
    >>> import warnings
    >>> from pymc_maxent.maxent.supports import OriginWarning, check_centre_noise
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_centre_noise(False, noise=True), caught[0].category is OriginWarning
    (False, True)
    """
    if not isinstance(centre_noise, bool | np.bool_):
        raise MaxEntError(f"centre_noise must be True or False; got {centre_noise!r}")
    if noise and not centre_noise:
        warnings.warn(
            "centre_noise=False: the noise term weighs each moment by its features' levels (GJP 1996 as "
            "written), so the estimates depend on the attributes' origins: adding a constant to an "
            "attribute in every alternative changes them, and can change a coefficient's sign; the "
            "default (centre_noise=True) centres the features the noise sees within each situation",
            OriginWarning, stacklevel=stacklevel,
        )
    return bool(centre_noise)


def default_error_support(n_situations: int, n_points: int = 3) -> np.ndarray:
    """The GME-logit default: ``n_points`` equally spaced on ``±1/√N``.

    Examples
    --------
    >>> from pymc_maxent.maxent.supports import default_error_support
    >>> default_error_support(100).tolist()
    [-0.1, 0.0, 0.1]
    """
    bound = 1.0 / np.sqrt(n_situations)
    return np.linspace(-bound, bound, n_points)


def validate_error_support(support) -> np.ndarray | None:
    """An error support as a float array, or None for no noise term (``ε ≡ 0``).

    Raises
    ------
    MaxEntError
        If it is not a finite 1-d array of at least two distinct points with 0 strictly
        inside its range (else ``ε = 0``, i.e. the observed moments, may be unreachable).
    """
    if support is None:
        return None
    u = np.asarray(support, dtype=float)
    if u.ndim != 1 or u.size < 2:
        raise MaxEntError(f"error support must be a 1-d array of at least 2 points; got shape {u.shape}")
    if not np.isfinite(u).all():
        raise MaxEntError(f"error support has non-finite points: {u.tolist()}")
    if np.unique(u).size != u.size:
        raise MaxEntError(f"error support has repeated points: {u.tolist()}")
    if not (u.min() < 0.0 < u.max()):
        raise MaxEntError(
            f"error support {u.tolist()} must have 0 strictly inside its range (points on "
            "both sides of zero); use error_support=None for no noise"
        )
    return u


def validate_probability_support(support, n_available: np.ndarray) -> np.ndarray | None:
    """A probability support ``s ⊂ [0, 1]`` (the note's form), or None for direct ``p``.

    Raises
    ------
    MaxEntError
        If a point is outside ``[0, 1]``, there are fewer than two distinct points, or the
        adding-up ``Σ_j p_ij = 1`` is out of reach (``J_i·min s < 1 < J_i·max s`` fails for a
        situation with ``J_i`` available alternatives).
    """
    if support is None:
        return None
    s = np.asarray(support, dtype=float)
    if s.ndim != 1 or s.size < 2:
        raise MaxEntError(
            f"probability support must be a 1-d array of at least 2 points; got shape {s.shape}"
        )
    if not np.isfinite(s).all() or s.min() < 0.0 or s.max() > 1.0:
        raise MaxEntError(f"probability support points must lie in [0, 1]; got {s.tolist()}")
    if np.unique(s).size != s.size:
        raise MaxEntError(f"probability support has repeated points: {s.tolist()}")
    lo, hi = n_available.min(), n_available.max()
    if not (hi * s.min() < 1.0 < lo * s.max()):
        raise MaxEntError(
            f"probability support {s.tolist()} cannot make the probabilities of {lo}..{hi} "
            "available alternatives add up to 1 (need J·min s < 1 < J·max s)"
        )
    return s


def validate_weights(name: str, weights, n_points: int) -> np.ndarray:
    """Prior weights over a support: positive, summing to one. Default uniform.

    Examples
    --------
    >>> from pymc_maxent.maxent.supports import validate_weights
    >>> validate_weights("w0", [0.25, 0.5, 0.25], 3).tolist()
    [0.25, 0.5, 0.25]
    """
    if weights is None:
        return np.full(n_points, 1.0 / n_points)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n_points,):
        raise MaxEntError(
            f"prior weights {name} must have shape ({n_points},) like the support; got {w.shape}"
        )
    if not np.isfinite(w).all() or (w <= 0).any():
        raise MaxEntError(f"prior weights {name} must be positive and finite; got {w.tolist()}")
    if abs(w.sum() - 1.0) > PRIOR_SUM_TOL:
        raise MaxEntError(f"prior weights {name} must sum to one; they sum to {w.sum()!r}")
    return w


def validate_p0(p0, available: np.ndarray) -> np.ndarray:
    """Prior choice probabilities ``p0[situation, alternative]`` (or one row for all).

    Positive on the available alternatives and summing to one over them in each situation;
    default uniform over the available alternatives. Unavailable entries are set to 0.
    """
    N, J = available.shape
    if p0 is None:
        return available / available.sum(axis=1, keepdims=True)
    p = np.asarray(p0, dtype=float)
    if p.shape not in ((J,), (N, J)):
        raise MaxEntError(f"prior probabilities p0 must have shape ({J},) or ({N}, {J}); got {p.shape}")
    p = np.broadcast_to(p, (N, J))
    bad = available & ~(np.isfinite(p) & (p > 0))
    if bad.any():
        raise MaxEntError(
            "prior probabilities p0 must be positive on every available alternative; "
            f"not so in situation position(s) {np.flatnonzero(bad.any(axis=1))[:5].tolist()}"
        )
    p = np.where(available, p, 0.0)
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > PRIOR_SUM_TOL
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise MaxEntError(
            "prior probabilities p0 must sum to one over the available alternatives of each "
            f"situation; situation position {i} sums to {sums[i]!r} ({int(off.sum())} situation(s) off)"
        )
    return p


@dataclass(frozen=True)
class Supports:
    """Validated supports and priors of one MaxEnt problem.

    Attributes
    ----------
    error : ndarray or None
        Error support ``u`` (None: no noise term).
    w0 : ndarray or None
        Prior weights over ``error``.
    probability : ndarray or None
        Probability support ``s`` (None: ``p`` entered directly, GJP 1996).
    pi0 : ndarray or None
        Prior weights over ``probability``.
    p0 : ndarray
        Prior choice probabilities (situation, alternative), direct form only.
    default_error : bool
        True when ``error`` is the default for the data's N (recomputed when new data
        of another size is set).
    """

    error: np.ndarray | None
    w0: np.ndarray | None
    probability: np.ndarray | None
    pi0: np.ndarray | None
    p0: np.ndarray
    default_error: bool = False

    @property
    def direct(self) -> bool:
        return self.probability is None


def make_supports(
    available: np.ndarray,
    *,
    error_support="default",
    w0=None,
    probability_support=None,
    pi0=None,
    p0=None,
) -> Supports:
    """Validate the user's supports and priors against the data's availability.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.supports import make_supports
    >>> s = make_supports(np.ones((4, 2), bool))
    >>> s.error.tolist(), s.direct
    ([-0.5, 0.0, 0.5], True)
    """
    N = available.shape[0]
    default = isinstance(error_support, str)
    if default:
        if error_support != "default":
            raise MaxEntError(f"error_support must be 'default', None or an array; got {error_support!r}")
        u = default_error_support(N)
    else:
        u = validate_error_support(error_support)
    if u is None and w0 is not None:
        raise MaxEntError("prior weights w0 given without an error support")
    s = validate_probability_support(probability_support, available.sum(axis=1))
    if s is None and pi0 is not None:
        raise MaxEntError("prior weights pi0 given without a probability support")
    if s is not None and p0 is not None:
        raise MaxEntError("p0 is the prior of the direct form; with a probability support give pi0")
    w0 = None if u is None else validate_weights("w0", w0, u.size)
    if u is not None:
        warn_if_noise_mean_not_zero(u, w0, "error_support")
    return Supports(
        error=u,
        w0=w0,
        probability=s,
        pi0=None if s is None else validate_weights("pi0", pi0, s.size),
        p0=validate_p0(p0, available),
        default_error=default,
    )


#: Names of the design note's rule, 3 points on ``±1/√n_i`` (``"default"``: its earlier name).
FIXED_RULE = ("fixed", "default")


def group_support(individual_support, n_situations: np.ndarray, name: str = "individual_support"):
    """``(base support, per-group scale)`` of the error supports of stages 2 and 3.

    ``"fixed"`` (or ``"default"``, its earlier name): 3 points on ``±1/√n_i`` (note §3); a
    positive number ``c``: 3 points on ``±c/√n_i``; an array: that support for every individual;
    None: no noise term. ``name``: the argument named in the messages (stage 3 passes
    ``"situation_support"``).

    Raises
    ------
    MaxEntError
        A support that is not finite, has fewer than two points, or does not have 0 strictly
        inside its range; a width that is not a positive number.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.supports import group_support
    >>> base, scale = group_support("default", np.array([4, 100]))
    >>> (base * scale[:, None]).tolist()
    [[-0.5, 0.0, 0.5], [-0.1, 0.0, 0.1]]
    """
    n = np.maximum(np.asarray(n_situations, dtype=float), 1.0)
    if individual_support is None:
        return None, np.ones_like(n)
    if isinstance(individual_support, str):
        if individual_support not in FIXED_RULE:
            raise MaxEntError(f'{name} must be "fixed", a positive width, an array of '
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
