"""The utility graph shared by the Bayesian builders and the MaxEnt estimator.

``U[i, j] = α[i, j] + Σ_k x[i, j, k] β[i, j, k]`` with coefficient tensors that broadcast
against ``x`` (a vector for generic coefficients, a ``(alternative, attribute)`` matrix for
alternative-specific ones, ``(situation, alternative, attribute)`` for random ones), and
choice probabilities a softmax over the available alternatives only.

:func:`block_utility` and :func:`constant_utility` lay a block of free coefficients out over
the alternatives (generic, alternative-specific, a reference alternative's fixed zero) and
contract it with ``x``: the one place the models' utility is written, for fixed coefficients
(a vector) and random ones (a row per situation). The minibatch mixed logit's integration nodes
use the same layout as a design matrix (:meth:`UtilityLayout.random_design`).
:func:`utility_layout` lays out a resolved specification (:func:`~pymc_maxent.specification.resolve`);
:func:`fixed_utility` and :func:`component_utility` are the utility of its fixed parameters and
of its random components, the graph both estimators use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pytensor.tensor as pt

if TYPE_CHECKING:  # annotations only
    from pymc_maxent.specification import ResolvedSpec


def linear_utility(X, coefficients, constants=None):
    """``U = α + Σ_k X[..., k] β[..., k]``.

    Parameters
    ----------
    X : tensor, shape (situation, alternative, attribute)
    coefficients : tensor broadcastable to ``X``, or 1-d (attribute,)
    constants : tensor broadcastable to (situation, alternative), optional

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.utility import linear_utility
    >>> linear_utility(np.ones((1, 2, 2)), np.array([1.0, -2.0]), np.array([0.5, 0.0])).eval()
    array([[-0.5, -1. ]])
    """
    X = pt.as_tensor_variable(X)
    coefficients = pt.as_tensor_variable(coefficients)
    if coefficients.ndim == 1:
        U = pt.dot(X, coefficients)
    else:
        U = (X * coefficients).sum(axis=-1)
    return U if constants is None else U + constants


def _with_zero(coefficients):
    """``concat(θ, 0)`` on the last axis: its last slot is a coefficient fixed at 0."""
    return pt.concatenate([coefficients, pt.zeros_like(coefficients[..., :1])], axis=-1)


def _gather_index(layout: np.ndarray, coefficients) -> np.ndarray:
    """``layout`` as indices into :func:`_with_zero` of ``coefficients``: ``-1`` becomes the zero
    slot ``n`` (a non-negative index: numba gathers and scatters those ~10% faster), ``n`` being
    ``layout.max() + 1`` since every coefficient appears in the layout."""
    layout = np.asarray(layout, dtype=np.int64)
    n = int(layout.max()) + 1
    static = coefficients.type.shape[-1]
    if static is not None and static != n:
        raise ValueError(f"the layout uses {n} coefficients; the coefficients have {static}")
    return np.where(layout < 0, n, layout)


def _columns(X, columns: np.ndarray):
    """``X[..., columns]``: a view (basic slice) when the columns are a contiguous range."""
    start = int(columns[0])
    if columns.tolist() == list(range(start, start + len(columns))):
        return X[..., start:start + len(columns)]
    return X[..., columns]


def constant_utility(constants, layout):
    """``U[..., j] = α[..., layout[j]]``, ``-1`` in ``layout`` being a constant fixed at 0.

    Parameters
    ----------
    constants : tensor, shape (..., n)
        A vector of fixed constants, or one row per situation (or node) of random ones.
    layout : array of int, shape (alternative,)
        Position of each alternative's constant in ``constants``; ``-1`` for the reference.
        Every constant appears.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.utility import constant_utility
    >>> constant_utility(np.array([0.5, -1.0]), np.array([1, -1, 0])).eval()
    array([-1. ,  0. ,  0.5])
    """
    constants = pt.as_tensor_variable(constants)
    return _with_zero(constants)[..., _gather_index(layout, constants)]


def block_utility(X, coefficients, layout, columns=None):
    """``U[..., j] = Σ_c X[..., j, columns[c]] θ[..., layout[j, c]]``: the utility of a block of
    coefficients laid out over the alternatives.

    Parameters
    ----------
    X : tensor, shape (..., alternative, attribute)
    coefficients : tensor, shape (..., n)
        ``θ``: a vector (fixed coefficients), one row per situation (random coefficients:
        ``(situation, n)``), or any leading axes that broadcast against ``X.shape[:-2]``.
    layout : array of int, shape (alternative, column)
        ``layout[j, c]``: which coefficient multiplies column ``c`` for alternative ``j``;
        ``-1`` for a coefficient fixed at 0 (the reference alternative's). A column with the
        same coefficient for every alternative is generic. Every coefficient appears somewhere
        (``coefficients`` has ``layout.max() + 1`` on its last axis).
    columns : array of int, optional
        Positions of the block's columns in ``X``'s last axis; default all.

    Returns
    -------
    tensor
        ``U``, shape ``broadcast(X.shape[:-2], θ.shape[:-1]) + (alternative,)``.

    Notes
    -----
    Generic columns are contracted without laying ``θ`` out over the alternatives
    (``Σ_c x_ijc θ_c``, a ``dot`` for a vector ``θ``); only alternative-specific columns go
    through the ``(..., alternative, column)`` gather, whose gradient is a scatter-add.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.utility import block_utility
    >>> X = np.arange(6.0).reshape(1, 3, 2)       # one situation, 3 alternatives, 2 attributes
    >>> layout = np.array([[0, 1], [0, 2], [0, -1]])  # column 0 generic; column 1 specific, alt 2 at 0
    >>> block_utility(X, np.array([1.0, 10.0, 100.0]), layout).eval()
    array([[ 10., 302.,   4.]])
    """
    X = pt.as_tensor_variable(X)
    theta = pt.as_tensor_variable(coefficients)
    layout = np.asarray(layout, dtype=np.int64)
    columns = np.arange(layout.shape[1]) if columns is None else np.asarray(columns, dtype=np.int64)
    index = _gather_index(layout, theta)
    n = int(layout.max()) + 1
    generic = (layout == layout[:1]).all(axis=0) & (layout[0] >= 0)
    U = 0.0
    if generic.any():
        g = np.flatnonzero(generic)
        params = layout[0, g]
        theta_g = theta if params.tolist() == list(range(n)) else theta[..., params]
        Xg = _columns(X, columns[g])
        U = U + (pt.dot(Xg, theta_g) if theta.ndim == 1 else (Xg * theta_g[..., None, :]).sum(axis=-1))
    if not generic.all():
        s = np.flatnonzero(~generic)
        specific = _with_zero(theta)[..., index[:, s]]  # (..., alternative, column)
        U = U + (_columns(X, columns[s]) * specific).sum(axis=-1)
    return U


def mask_unavailable(U, available):
    """Utilities with unavailable alternatives at ``-inf`` (they get probability 0)."""
    return pt.switch(available, U, -np.inf)


def log_choice_probabilities(U, available):
    """Masked log-softmax over the alternative axis (last): ``-inf`` where unavailable."""
    return pt.special.log_softmax(mask_unavailable(U, available), axis=-1)


def choice_probabilities(U, available):
    """Masked softmax over the alternative axis (last): exactly 0 where unavailable."""
    return pt.special.softmax(mask_unavailable(U, available), axis=-1)


@dataclass(frozen=True)
class UtilityLayout:
    """Where every parameter enters ``U``: constants and coefficient blocks over the
    alternatives, for the fixed parameters ``α``, ``β`` and the random components ``θ``.

    Hashable (tuples), so that it can be an Op's property
    (:class:`~pymc_maxent.bayes.likelihood.ChoiceLogLikelihood`).

    Attributes
    ----------
    n_alternatives, n_attributes : int
        ``X``'s last two axes.
    asc : tuple of int, shape (alternative,)
        Position of each alternative's fixed constant in ``α``; ``-1``: none (fixed at 0).
    fixed, fixed_columns : tuple
        The fixed coefficients' ``(alternative, column)`` layout into ``β`` and the columns'
        positions in ``X`` (:func:`block_utility`).
    random_asc, random, random_columns : tuple
        The same for the random components ``θ`` (random constants first, then coefficients).
    n_random_asc : int
        How many random constants lead ``θ``.
    """

    n_alternatives: int
    n_attributes: int
    asc: tuple = ()
    fixed: tuple = ()
    fixed_columns: tuple = ()
    random_asc: tuple = ()
    random: tuple = ()
    random_columns: tuple = ()
    n_random_asc: int = 0

    def utility(self, X, alpha=None, beta=None, theta=None):
        """``U`` (..., alternative): ``α``, ``β`` vectors or rows broadcasting against
        ``X.shape[:-2]``, ``θ`` rows (one per situation) on the natural scale."""
        U = self.fixed_utility(X, alpha, beta)
        return U if theta is None else U + self.random_utility(X, theta)

    def fixed_utility(self, X, alpha=None, beta=None):
        """``α_j + Σ_k x_k β_k(j)``: the fixed parameters' part of ``U``."""
        X = pt.as_tensor_variable(X)
        U = pt.zeros(X.shape[:-1])
        if self.asc:
            U = U + constant_utility(alpha, np.array(self.asc))
        if self.fixed:
            U = U + block_utility(X, beta, np.array(self.fixed), np.array(self.fixed_columns))
        return U

    def random_utility(self, X, theta):
        """The random components' part of ``U`` at ``θ`` (natural scale; leading axes broadcast
        against ``X.shape[:-2]``)."""
        U = 0.0
        if self.random_asc:
            U = U + constant_utility(theta[..., :self.n_random_asc], np.array(self.random_asc))
        if self.random:
            U = U + block_utility(X, theta[..., self.n_random_asc:], np.array(self.random),
                                  np.array(self.random_columns))
        return U

    def sizes(self) -> tuple[int, int, int]:
        """How many fixed constants, fixed coefficients and random components the layout uses
        (the lengths of ``α``, ``β`` and of ``θ``'s rows)."""
        def used(layout):
            return int(np.max(layout)) + 1 if len(layout) else 0

        return used(self.asc), used(self.fixed), self.n_random_asc + used(self.random)

    def random_design(self, X: np.ndarray) -> np.ndarray:
        """``Z`` (..., alternative, random component) with ``random_utility(X, θ) = Z θ``
        (natural-scale ``θ``): the random components' utility is linear in them.

        Examples
        --------
        >>> import numpy as np
        >>> from pymc_maxent.utility import UtilityLayout
        >>> layout = UtilityLayout(2, 1, random_asc=(0, -1), n_random_asc=1, random=((0,), (0,)),
        ...                        random_columns=(0,))
        >>> layout.random_design(np.array([[[3.0], [5.0]]]))
        array([[[1., 3.],
                [0., 5.]]])
        """
        _, _, constants, coefficients = self.dense()
        D = self.sizes()[2]
        X = np.asarray(X, dtype=np.float64)
        Z = np.zeros(X.shape[:-1] + (D,))
        for d in range(D):
            Z[..., d] = (X * (coefficients == d)).sum(axis=-1) + (constants == d)
        return Z

    def dense(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The layout as four int64 arrays, ``-1`` where nothing enters: fixed constants
        (alternative,) into ``α``, fixed coefficients (alternative, attribute) into ``β``,
        random constants (alternative,) and random coefficients (alternative, attribute) into
        ``θ``'s columns (the kernels' form)."""
        J = self.n_alternatives

        def constants(layout, offset=0):
            out = np.full(J, -1, dtype=np.int64)
            if layout:
                out[:] = np.where(np.array(layout) >= 0, np.array(layout) + offset, -1)
            return out

        def coefficients(layout, columns, offset=0):
            out = np.full((J, self.n_attributes), -1, dtype=np.int64)
            if layout:
                m = np.array(layout)
                out[:, list(columns)] = np.where(m >= 0, m + offset, -1)
            return out

        return (constants(self.asc), coefficients(self.fixed, self.fixed_columns),
                constants(self.random_asc), coefficients(self.random, self.random_columns, self.n_random_asc))


# ---------------------------------------------------------------------- a specification's utility
def utility_layout(resolved: ResolvedSpec) -> UtilityLayout:
    """Where the specification's parameters enter the utility (the fused likelihood's and
    the prediction graph's layout)."""
    J = len(resolved.alternatives)

    def rows(m):
        return tuple(tuple(int(v) for v in row) for row in m)

    def vector(v):
        return () if v is None else tuple(int(x) for x in v)

    n_random_asc = resolved.n_random_asc
    return UtilityLayout(
        n_alternatives=J, n_attributes=resolved.n_attributes,
        asc=vector(resolved.asc_layout) if resolved.asc_labels else (),
        fixed=rows(resolved.fixed.matrix(J)) if resolved.fixed.labels else (),
        fixed_columns=tuple(resolved.fixed.columns),
        random_asc=vector(resolved.random_asc_layout) if n_random_asc else (),
        random=rows(resolved.random.matrix(J)) if resolved.random.labels else (),
        random_columns=tuple(resolved.random.columns), n_random_asc=n_random_asc)


def fixed_utility(X, resolved: ResolvedSpec, alpha, beta):
    """``U = α_j + Σ_k x_k β_k(j)`` of the fixed parameters (``None`` where the spec has none)."""
    return utility_layout(resolved).fixed_utility(X, alpha, beta)


def component_utility(X, theta, resolved: ResolvedSpec):
    """Utility of the random components at ``θ``, shape ``(..., component)`` on the normal
    scale (random constants first; lognormal components enter as ``±exp(θ)``), with leading
    axes that broadcast against ``X.shape[:-2]``."""
    return utility_layout(resolved).random_utility(X, natural_scale(theta, resolved))


def natural_scale(theta, resolved: ResolvedSpec):
    """Random components on the utility's scale: lognormal components as ``±exp(θ)``."""
    is_log = resolved.random_sign != 0
    if not is_log.any():
        return theta
    idx = np.flatnonzero(is_log)
    return pt.set_subtensor(theta[..., idx], resolved.random_sign[idx] * pt.exp(theta[..., idx]))


# ---------------------------------------------------------------------- nested logit
def nested_log_probabilities(U, available, nest_of, lambdas):
    """Log choice probabilities of a two-level nested logit (random-utility form, RU2).

    ``log P_j = (V_j/λ_k − I_k) + (λ_k I_k − log Σ_m exp(λ_m I_m))`` for ``j`` in nest ``k``,
    ``I_k = log Σ_{l ∈ B_k, available} exp(V_l/λ_k)`` (the inclusive value). Every
    log-sum-exp is taken over the available alternatives only: ``-inf`` where unavailable, and
    a nest none of whose alternatives is available in a situation drops out of the upper level
    (its ``exp(λ_k I_k)`` is 0) without a NaN in the value or the gradient. With every
    ``λ_k = 1`` it is the multinomial logit's masked log-softmax.

    Parameters
    ----------
    U : tensor (..., alternative)
    available : tensor (..., alternative) of bool
    nest_of : array of int, shape (alternative,)
        Each alternative's nest (``0 … M−1``; every alternative in exactly one).
    lambdas : tensor (..., M)
        Dissimilarity parameters ``λ_k ∈ (0, 1]`` (``1`` for a nest of one alternative, where
        it cancels), broadcasting against ``U``'s leading axes.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.utility import nested_log_probabilities
    >>> U, available = np.array([[1.0, 0.5, -0.3]]), np.ones((1, 3), bool)
    >>> p = np.exp(nested_log_probabilities(U, available, np.array([0, 0, 1]), np.array([0.5, 1.0])).eval())
    >>> I = np.log(np.exp(U[0, :2] / 0.5).sum())              # the first nest's inclusive value
    >>> top = np.exp(0.5 * I) + np.exp(U[0, 2])
    >>> expected = np.append(np.exp(U[0, :2] / 0.5 - I) * np.exp(0.5 * I), np.exp(U[0, 2])) / top
    >>> bool(np.allclose(p[0], expected)), bool(np.isclose(p.sum(), 1.0))
    (True, True)
    """
    U = pt.as_tensor_variable(U)
    available = pt.as_tensor_variable(available).astype("bool")
    nest_of = np.asarray(nest_of, dtype=np.int64)
    M = int(nest_of.max()) + 1
    lambdas = pt.as_tensor_variable(lambdas)
    members = (nest_of[:, None] == np.arange(M)[None, :])  # (alternative, nest)
    lam_j = lambdas[..., nest_of]                           # (..., alternative)
    scaled = pt.switch(available, U / lam_j, -np.inf)
    # inclusive values: a log-sum-exp per nest over its available members, guarded so that an
    # empty nest gives -inf with a zero (not NaN) gradient
    inside = pt.switch(members, scaled[..., :, None], -np.inf)  # (..., alternative, nest)
    top_in = inside.max(axis=-2)                                  # (..., nest)
    present = pt.isfinite(top_in)
    shift = pt.switch(present, top_in, 0.0)
    total = pt.exp(inside - shift[..., None, :]).sum(axis=-2)
    inclusive = shift + pt.log(pt.switch(present, total, 1.0))    # 0 for an empty nest (masked below)
    upper = pt.switch(present, lambdas * inclusive, -np.inf)     # (..., nest)
    upper_top = upper.max(axis=-1, keepdims=True)
    log_denominator = upper_top[..., 0] + pt.log(pt.exp(upper - upper_top).sum(axis=-1))
    within = scaled - inclusive[..., nest_of]                   # log P(j | nest)
    log_p = within + upper[..., nest_of] - log_denominator[..., None]
    return pt.switch(available, log_p, -np.inf)


@dataclass(frozen=True)
class ChoiceStructure:
    """Utility and choice probabilities of a specification: its :class:`UtilityLayout`, and what
    the logit ladder's tiers lack: nests (a nested logit) and willingness-to-pay space.

    Hashable, like the layout. In WTP space the layout's coefficients are the WTPs ``w`` and
    ``U = λ·(W − price)``, ``W`` the layout's utility and ``λ = exp(s)`` the scale: a fixed
    ``scale`` (the log ``s``) or the last column of ``θ`` (random, on its natural scale ``exp(s)``).

    Attributes
    ----------
    layout : UtilityLayout
    nest_of : tuple of int
        Each alternative's nest; ``()``: no nests.
    nest_lambda : tuple of int
        Each nest's position in ``λ`` (``-1``: a nest of one alternative, ``λ = 1``).
    price_column : int or None
        WTP space: the price's column in ``X``.
    scale_random : bool
        WTP space: the scale is ``θ``'s last column.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.utility import ChoiceStructure, UtilityLayout
    >>> layout = UtilityLayout(2, 2, fixed=((0,), (0,)), fixed_columns=(1,))   # w·x, x in column 1
    >>> wtp = ChoiceStructure(layout, price_column=0)
    >>> X = np.array([[[100.0, 2.0], [80.0, 1.0]]])                          # price, quality
    >>> wtp.utility(X, beta=np.array([15.0]), scale=np.log(0.1)).eval()    # 0.1·(15 x − price)
    array([[-7. , -6.5]])
    """

    layout: UtilityLayout
    nest_of: tuple = ()
    nest_lambda: tuple = ()
    price_column: int | None = None
    scale_random: bool = False

    @property
    def fused(self) -> bool:
        """The plain (multinomial or mixed) logit in preference space: the fused likelihood Op's."""
        return not self.nest_of and self.price_column is None

    def utility(self, X, alpha=None, beta=None, theta=None, scale=None):
        """``U`` (..., alternative) at fixed ``α``, ``β`` (WTP space: the WTPs), random rows ``θ``
        (natural scale) and, in WTP space with a fixed scale, its log ``scale``."""
        if self.price_column is None:
            return self.layout.utility(X, alpha, beta, theta)
        X = pt.as_tensor_variable(X)
        if self.scale_random:
            theta = pt.as_tensor_variable(theta)
            lam = theta[..., -1]
            theta = theta[..., :-1] if self.layout.sizes()[2] else None
        else:
            lam = pt.exp(pt.as_tensor_variable(scale))
        W = self.layout.utility(X, alpha, beta, theta)
        return lam[..., None] * (W - X[..., self.price_column])

    def full_lambdas(self, lambdas):
        """``λ`` of every nest (..., nest): the free ones, and 1 for nests of one alternative."""
        lambdas = pt.as_tensor_variable(lambdas)
        index = np.asarray(self.nest_lambda, dtype=np.int64)
        padded = pt.concatenate([lambdas, pt.ones_like(lambdas[..., :1])], axis=-1)  # last: λ = 1
        return padded[..., np.where(index >= 0, index, -1)]

    def log_probabilities(self, U, available, lambdas=None):
        """Log choice probabilities (..., alternative): the masked log-softmax, or the nested
        logit's (:func:`nested_log_probabilities`) at the free ``λ``."""
        if not self.nest_of:
            return log_choice_probabilities(U, available)
        return nested_log_probabilities(U, available, np.asarray(self.nest_of), self.full_lambdas(lambdas))

    def probabilities(self, U, available, lambdas=None):
        """Choice probabilities (..., alternative), exactly 0 where unavailable."""
        if not self.nest_of:
            return choice_probabilities(U, available)
        return pt.exp(self.log_probabilities(U, available, lambdas))
