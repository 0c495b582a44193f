"""Moment features ``F[situation, alternative, moment]`` as PyTensor graphs of the data containers,
and each tier's twin moments.

Every constraint family of the design note is a moment ``Σ_ij F_ijc y_ij = Σ_ij F_ijc (p_ij + ε_ij)``:

==================  =========================  ===================================
family              feature ``F_ijc``           multiplier maps to
==================  =========================  ===================================
:class:`Revenue`    ``price_ij``                ``beta[price]`` (``β = −λ``)
:class:`AttributeSums`  ``x_ijk``               ``beta[k]`` (generic coefficients)
:class:`AlternativeShares`  ``1[j = j']``       ``alpha[j']``, ``j'`` ≠ reference
:class:`CrossMoments`  ``x_ijk · 1[j = j']``    ``beta[k[j']]`` (alternative-specific)
:class:`Constraint`  any graph of the containers and ``(p, ε)``   ``gamma[name]``
==================  =========================  ===================================

The labels follow the Bayesian builder (:func:`pymc_maxent.build_model`): constants on dim
``asc`` labelled by alternative, coefficients on dim ``coefficient`` labelled by attribute or
``attribute[alternative]``, so MaxEnt and posterior estimates line up parameter by parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors
from pytensor.tensor.extra_ops import to_one_hot

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import MaxEntError, SpecificationError
from pymc_maxent.specification import ModelSpec

ASC, COEFFICIENT, CONSTRAINT = "asc", "coefficient", "constraint"


@dataclass(frozen=True)
class Term:
    """One resolved moment: its label, the parameter it identifies, and its dim."""

    moment: str
    parameter: str
    dim: str


def centre_within_situations(x, available):
    """``x`` less its mean over each situation's available alternatives (0 where unavailable).

    ``x`` is ``(situation, alternative)`` or ``(situation, alternative, moment)``. It is how the
    noise enters the moments (GME's noise term, centred): ``Σ_j F_ij ε̃_ij = Σ_j F̃_ij ε_ij``
    with both ``ε̃`` and ``F̃`` centred so, which adding the same constant to a feature over the
    alternatives of a situation leaves unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.moments import centre_within_situations
    >>> x = np.array([[1.0, 2.0, 6.0], [5.0, 7.0, 0.0]])
    >>> available = np.array([[True, True, True], [True, True, False]])
    >>> centre_within_situations(x, available).eval().tolist()
    [[-2.0, -1.0, 3.0], [-1.0, 1.0, 0.0]]
    """
    x = pt.as_tensor_variable(x)
    mask = pt.as_tensor_variable(available).astype("bool")
    mask = mask if x.ndim == 2 else mask[:, :, None]
    inside = pt.switch(mask, x, 0.0)
    mean = inside.sum(axis=1, keepdims=True) / mask.sum(axis=1, keepdims=True)
    return pt.switch(mask, x - mean, 0.0)


def _index(positions):
    """Attribute positions as a shared int vector: an input of the compiled graphs rather than
    a constant baked into their C code, so that the compiled code is reused across problems."""
    return pytensor.shared(np.asarray(positions, dtype=np.int64), name="attribute_index")


def _indicator(n_alternatives: int, keep: list[int], name: str):
    """Columns ``keep`` of the ``J × J`` identity (``1[j = j']``), as a shared matrix."""
    return pytensor.shared(np.eye(n_alternatives)[:, keep], name=name)


@dataclass(frozen=True, eq=False)
class ResolvedMoment:
    """A moment resolved against one data set: its terms and the inputs of its feature graph.

    :meth:`Moment.resolve` returns a new one for every data set, so that a moment object can
    be re-used on data whose attributes or alternatives come in another order: nothing is
    ever written into the moment itself.

    Attributes
    ----------
    moment : Moment
        The moment it resolves.
    terms : tuple of Term
        One per feature column.
    index : shared int vector, optional
        Positions of the attributes whose values are the features (``x_ijk``).
    indicator : shared matrix (alternative, column), optional
        Alternative indicators ``1[j = j']``; with ``index`` (of one attribute), they multiply
        that attribute.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import Revenue
    >>> r = Revenue("gc").resolve(pmx.load_travel_mode())
    >>> [t.moment for t in r.terms], r.index.get_value().tolist()
    (['revenue[gc]'], [0])
    """

    moment: Moment
    terms: tuple
    index: object = None
    indicator: object = None

    @property
    def n(self) -> int:
        return len(self.terms)

    def features(self, X, available):
        """``F[n, J, c]`` of the situations in ``X`` (``available`` is not needed by the
        standard families: unavailable alternatives are masked where ``F`` is used)."""
        if self.index is None and self.indicator is None:
            raise MaxEntError(f"moment {self.moment!r} has no feature columns (a user constraint: "
                              "its features come from its graph)")
        if self.index is None:
            E = self.indicator
            return pt.broadcast_to(E[None], (X.shape[0], E.shape[0], E.shape[1]))
        if self.indicator is None:
            return X[:, :, self.index]
        return X[:, :, self.index[0]][:, :, None] * self.indicator[None]  # one attribute


class Moment:
    """A family of moment constraints (base class).

    Subclasses are frozen: :meth:`resolve` returns a :class:`ResolvedMoment` for one data set
    and leaves the moment unchanged.
    """

    def resolve(self, data: ChoiceData) -> ResolvedMoment:
        raise NotImplementedError


@dataclass(frozen=True)
class Revenue(Moment):
    """The note's revenue constraint ``Σ_ij price_ij y_ij = Σ_ij price_ij (p_ij + ε_ij)``.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import Revenue
    >>> [t.parameter for t in Revenue("gc").resolve(pmx.load_travel_mode()).terms]
    ['gc']
    """

    price: str

    def resolve(self, data):
        term = Term(f"revenue[{self.price}]", self.price, COEFFICIENT)
        return ResolvedMoment(self, (term,), index=_index([data.attribute_index(self.price)]))


@dataclass(frozen=True)
class AttributeSums(Moment):
    """Attribute sums ``Σ_ij x_ijk y_ij`` (conditional logit, generic coefficients).

    ``attributes=None`` takes every attribute of the data.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import AttributeSums
    >>> [t.moment for t in AttributeSums(["ttme", "gc"]).resolve(pmx.load_travel_mode()).terms]
    ['sum[ttme]', 'sum[gc]']
    """

    attributes: Sequence[str] | None = None

    def resolve(self, data):
        names = data.attributes.tolist() if self.attributes is None else list(self.attributes)
        varies = data.varies_across_alternatives()
        ks = [data.attribute_index(a) for a in names]
        for a, k in zip(names, ks, strict=True):
            if not varies[k]:
                raise MaxEntError(
                    f"attribute {a!r} does not vary across alternatives within any situation, so "
                    "its sum is the same for every p; use CrossMoments (alternative-specific)"
                )
        terms = tuple(Term(f"sum[{a}]", str(a), COEFFICIENT) for a in names)
        return ResolvedMoment(self, terms, index=_index(ks))


@dataclass(frozen=True)
class AlternativeShares(Moment):
    """Alternative shares ``Σ_i y_ij'`` for ``j'`` ≠ reference (alternative-specific constants).

    ``reference`` defaults to the last alternative, as in :func:`pymc_maxent.build_model`.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import AlternativeShares
    >>> [t.parameter for t in AlternativeShares("car").resolve(pmx.load_travel_mode()).terms]
    ['air', 'train', 'bus']
    """

    reference: object = None

    def resolve(self, data):
        J = data.n_alternatives
        ref = J - 1 if self.reference is None else data.alternative_index(self.reference)
        keep = [j for j in range(J) if j != ref]
        terms = tuple(Term(f"share[{data.alternatives[j]}]", str(data.alternatives[j]), ASC) for j in keep)
        return ResolvedMoment(self, terms, indicator=_indicator(J, keep, "share_features"))


@dataclass(frozen=True)
class CrossMoments(Moment):
    """Attribute × alternative cross moments ``Σ_i x_ij'k y_ij'`` (GJP 1996's multinomial form).

    One coefficient of ``attribute`` per alternative (or per alternative of ``alternatives``);
    the reference alternative's is left out when the attribute does not vary across
    alternatives (income, age), as in the Bayesian builder's alternative-specific coefficients.
    A tier's twin (``fit_maxent(tier=...)``) passes the alternatives where the attribute is
    present (:meth:`~pymc_maxent.ChoiceData.alternative_specific_columns`); given explicitly, an
    alternative where it is always 0 is an error, not dropped.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import CrossMoments
    >>> [t.parameter for t in CrossMoments("gc").resolve(pmx.load_travel_mode()).terms]
    ['gc[air]', 'gc[train]', 'gc[bus]', 'gc[car]']
    """

    attribute: str
    reference: object = None
    alternatives: tuple | None = None

    def resolve(self, data):
        J = data.n_alternatives
        k = data.attribute_index(self.attribute)
        ref = J - 1 if self.reference is None else data.alternative_index(self.reference)
        varies = data.varies_across_alternatives()[k]
        chosen = (range(J) if self.alternatives is None
                  else sorted(data.alternative_index(a) for a in self.alternatives))
        keep = [j for j in chosen if varies or j != ref]
        terms = tuple(
            Term(f"cross[{self.attribute}][{data.alternatives[j]}]",
                 f"{self.attribute}[{data.alternatives[j]}]", COEFFICIENT)
            for j in keep
        )
        return ResolvedMoment(self, terms, index=_index([k]), indicator=_indicator(J, keep, "cross_features"))


@dataclass(frozen=True)
class Constraint(Moment):
    """A user constraint ``g(containers, p, ε) = target``.

    ``fn(containers, p, eps)`` returns a scalar PyTensor expression of the data containers
    (:class:`~pymc_maxent.data.containers.ChoiceContainers`) and the ``(situation,
    alternative)`` tensors ``p`` and ``eps``. The default target is its value at the observed
    choices, ``g(containers, y, 0)``. The dual solver needs ``g`` linear in ``(p, ε)``; the
    primal takes any smooth ``g``. Its features (``∂g/∂p``, a graph of the containers) are
    built by :class:`MomentSet`.
    """

    name: str
    fn: Callable
    target: float | None = None

    def __post_init__(self):
        if self.target is None:
            return
        try:
            target = float(self.target)
        except (TypeError, ValueError):
            target = None
        if target is None or not np.isfinite(target):
            raise MaxEntError(f"constraint {self.name!r} has target {self.target!r}: a target must be a "
                              "finite number (or None for its value at the observed choices)")

    def resolve(self, data):
        return ResolvedMoment(self, (Term(f"constraint[{self.name}]", self.name, CONSTRAINT),))


def default_moments(data: ChoiceData, reference=None) -> list[Moment]:
    """The MaxEnt twin of ``MNL-2``: attribute sums and alternative shares; attributes that do
    not vary across alternatives get cross moments instead (alternative-specific)."""
    varies = data.varies_across_alternatives()
    generic = [str(a) for a, v in zip(data.attributes, varies, strict=True) if v]
    moments: list[Moment] = [AttributeSums(generic)] if generic else []
    moments += [
        CrossMoments(str(a), reference) for a, v in zip(data.attributes, varies, strict=True) if not v
    ]
    return [*moments, AlternativeShares(reference)]


def moment_sequence(moments) -> tuple:
    """``moments`` as a tuple of :class:`Moment` (one given alone is wrapped).

    Raises
    ------
    SpecificationError
        A string (a tier's name given where moments go), something not iterable, or an element
        that is not a :class:`Moment`.
    """
    if isinstance(moments, str):
        raise SpecificationError(f"moments must be a sequence of Moment objects; got the string {moments!r}: "
                                 f"a tier is passed by name, tier={moments!r}")
    if isinstance(moments, Moment):
        return (moments,)
    try:
        moments = tuple(moments)
    except TypeError:
        raise SpecificationError(f"moments must be a sequence of Moment objects; got {moments!r}") from None
    stray = [m for m in moments if not isinstance(m, Moment)]
    if stray:
        raise SpecificationError("moments must be Moment objects (Revenue, AttributeSums, AlternativeShares, "
                                 f"CrossMoments, Constraint); got {stray[0]!r}")
    return moments


class MomentSet:
    """The resolved moments of one problem: labels, and the feature graphs.

    Parameters
    ----------
    moments : sequence of Moment
    data : ChoiceData
        Resolves attribute and alternative names to positions.
    containers : ChoiceContainers
        The registered data containers; user constraints are graphs of these.

    Attributes
    ----------
    moments : tuple of Moment
        The moments as given (never modified).
    standard : list of ResolvedMoment
        The standard families, resolved against ``data``.
    user : list of Constraint
        The user constraints (their features come after the standard ones).
    terms : list of Term
    """

    def __init__(self, moments: Sequence[Moment], data: ChoiceData, containers):
        self.moments = moment_sequence(moments)
        if not self.moments:
            raise MaxEntError("no moment constraints given")
        self.standard = [m.resolve(data) for m in self.moments if not isinstance(m, Constraint)]
        self.user = [m for m in self.moments if isinstance(m, Constraint)]
        self.terms = [t for r in self.standard for t in r.terms]
        self.terms += [t for m in self.user for t in m.resolve(data).terms]
        labels = [t.moment for t in self.terms]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        params = [(t.dim, t.parameter) for t in self.terms]
        dup += sorted({f"{d}:{p}" for d, p in params if params.count((d, p)) > 1})
        if dup:
            raise MaxEntError(f"moments given twice (their multipliers are not identified): {dup}")
        self.containers = containers
        self._user_linear = None
        if self.user:
            self._build_user()

    @property
    def n(self) -> int:
        return len(self.terms)

    @property
    def labels(self) -> list[str]:
        return [t.moment for t in self.terms]

    # ------------------------------------------------------------------ user constraints
    def _build_user(self):
        c = self.containers
        shape = c.available.shape
        p = pt.matrix("p_user", dtype="float64")
        e = pt.matrix("eps_user", dtype="float64")
        self.user_p, self.user_e = p, e
        self.user_graphs = [pt.as_tensor_variable(m.fn(c, p, e)) for m in self.user]
        for m, g in zip(self.user, self.user_graphs, strict=True):
            if g.ndim != 0:
                raise MaxEntError(f"constraint {m.name!r} must return a scalar; got ndim {g.ndim}")
        A, B = [], []
        zero = {p: pt.zeros(shape), e: pt.zeros(shape)}
        grads = []
        for g in self.user_graphs:
            ga, gb = pytensor.grad(g, [p, e], disconnected_inputs="ignore", return_disconnected="zero")
            grads += [ga, gb]
            # ∂g/∂p and ∂g/∂ε at (0, 0): graphs of the containers only
            A.append(pt.broadcast_to(clone_replace(ga, zero), shape))
            B.append(pt.broadcast_to(clone_replace(gb, zero), shape))
        # linear in (p, ε) iff the gradients do not change with (p, ε): compare two points
        linear = True
        if set(ancestors(grads)) & {p, e}:
            f = pytensor.function([p, e], grads, on_unused_input="ignore")
            N, J = self.containers.available.get_value().shape
            rng = np.random.default_rng(0)
            first = f(rng.random((N, J)), rng.random((N, J)) - 0.5)
            second = f(rng.random((N, J)), rng.random((N, J)) - 0.5)
            finite = [all(np.isfinite(x[i]).all() for x in (first, second) for i in (2 * k, 2 * k + 1))
                      for k in range(len(self.user))]
            bad = [m.name for m, ok in zip(self.user, finite, strict=True) if not ok]
            if bad:
                raise MaxEntError(f"constraint(s) {bad}: the derivatives in (p, eps) are not finite (NaN or "
                                  "infinite) at admissible (p, eps)")
            linear = all(
                np.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(first, second, strict=True)
            )
        self._user_linear = linear
        y = to_one_hot(c.chosen, shape[1])
        targets = []
        for m, g in zip(self.user, self.user_graphs, strict=True):
            if m.target is None:
                targets.append(clone_replace(g, {p: y, e: pt.zeros_like(y)}))
            else:
                targets.append(pt.as_tensor_variable(float(m.target)))
        self.user_targets = pt.stack(targets)
        if linear:
            self.user_A = pt.stack(A, axis=-1)  # (N, J, c_user)
            self.user_B = pt.stack(B, axis=-1)
            zero = {p: pt.zeros(shape), e: pt.zeros(shape)}
            # g(0, 0): the constant part, so that Σ A p + Σ B ε = target − g(0, 0)
            self.user_offset = pt.stack([clone_replace(g, zero) for g in self.user_graphs])

    @property
    def user_linear(self) -> bool:
        return self._user_linear is not False

    def require_linear(self):
        if not self.user_linear:
            names = [m.name for m in self.user]
            raise MaxEntError(
                f"the dual solver needs constraints linear in (p, eps); {names} are not: "
                "use solver='primal'"
            )

    # ------------------------------------------------------------------ features
    def standard_features(self, X, available):
        """``F[n, J, c]`` of the standard families, for a slice of situations."""
        parts = [m.features(X, available) for m in self.standard]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else pt.concatenate(parts, axis=-1)

    def features(self, X, available, start=None, stop=None):
        """``(F_p, F_e)``: features of ``p`` and of ``ε``, for situations ``start:stop``.

        They are the same tensor unless a user constraint weighs ``p`` and ``ε`` differently.
        """
        F = self.standard_features(X, available)
        if not self.user:
            return F, F
        self.require_linear()
        A = self.user_A[start:stop]
        B = self.user_B[start:stop]
        if F is None:
            return A, B
        return pt.concatenate([F, A], axis=-1), pt.concatenate([F, B], axis=-1)

    def user_target_adjustment(self):
        """Per user constraint: ``target − g(0, 0) − Σ A y`` (0 for the default target)."""
        y = to_one_hot(self.containers.chosen, self.containers.available.shape[1])
        Ay = (self.user_A * y[:, :, None]).sum(axis=(0, 1))
        return self.user_targets - self.user_offset - Ay


# ---------------------------------------------------------------------- the tiers' twins
def twin_moments(spec: ModelSpec, data: ChoiceData) -> list[Moment]:
    """The MaxEnt twin of a specification without random components: attribute sums for
    generic coefficients, cross moments for alternative-specific ones (the Bayesian builders'
    columns: none where the attribute is absent), alternative shares for the constants.

    Raises
    ------
    SpecificationError
        A specification with random components (its twin is :func:`population_spec`'s).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent.moments import twin_moments
    >>> from pymc_maxent.specification import tier_spec
    >>> data = pmx.load_travel_mode()
    >>> [type(m).__name__ for m in twin_moments(tier_spec("MNL-3", data.attributes.tolist()), data)]
    ['CrossMoments', 'CrossMoments', 'CrossMoments', 'AlternativeShares']
    """
    random = [c.attribute for c in spec.coefficients if c.random]
    random += ["constants"] if spec.constants == "random" else []
    if random:
        raise SpecificationError(f"{spec.name}: the twin moments are of a fixed-coefficient specification; "
                                 f"{random} are random: fit the tier with fit_maxent(data, tier=...)")
    generic = [c.attribute for c in spec.coefficients if not c.alternative_specific]
    moments: list[Moment] = [AttributeSums(generic)] if generic else []
    reference = data.n_alternatives - 1 if spec.reference is None else data.alternative_index(spec.reference)
    for c in spec.coefficients:
        if c.alternative_specific:
            own = data.alternative_specific_columns(data.attribute_index(c.attribute), reference)
            moments.append(CrossMoments(c.attribute, spec.reference, tuple(data.alternatives[own].tolist())))
    if spec.constants == "fixed":
        moments.append(AlternativeShares(spec.reference))
    return moments


def population_spec(spec: ModelSpec) -> ModelSpec:
    """The tier's fixed twin: every random component fixed at its population value (random
    constants become fixed constants).

    Examples
    --------
    >>> from pymc_maxent.specification import tier_spec
    >>> from pymc_maxent.maxent.moments import population_spec
    >>> twin = population_spec(tier_spec("MXL-2", ["x0"]))
    >>> twin.constants, twin.coefficients[0].random
    ('fixed', None)
    """
    coefficients = tuple(dataclasses.replace(c, random=None, level="individual") for c in spec.coefficients)
    constants = "fixed" if spec.constants == "random" else spec.constants
    return dataclasses.replace(spec, coefficients=coefficients, constants=constants, correlated=False,
                               name=f"{spec.name} population")


def population_name(label: str) -> str:
    """The stage-1 parameter name of a random component's label (``asc[a]`` → ``alpha[a]``,
    ``x0`` → ``beta[x0]``, ``x0[a]`` → ``beta[x0[a]]``)."""
    return f"alpha[{label[4:-1]}]" if label.startswith("asc[") else f"beta[{label}]"
