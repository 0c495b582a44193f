"""Per-attribute model specifications, the tier presets, and their resolution against data.

A specification says, for every attribute, whether its coefficient is generic or
alternative-specific and whether (and how) it is random; and whether the alternative-specific
constants are absent, fixed or random. The seven tiers of the design note are presets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import SpecificationError

#: Mixing distributions of random coefficients; the value is the sign applied to ``exp``
#: for the lognormal family (``None``: normal, no transform).
MIXING = {"normal": None, "lognormal": 1.0, "neg_lognormal": -1.0}
LEVELS = ("individual", "situation")
CONSTANTS = ("none", "fixed", "random")
#: Where the parameters live: preference space (coefficients of utility) or willingness-to-pay
#: space (``U = −exp(scale)·(price − Σ_k wtp_k x_k − wtp_j)``: the WTPs are the parameters).
SPACES = ("preference", "wtp")


@dataclass(frozen=True)
class Coefficient:
    """How one attribute enters utility.

    Parameters
    ----------
    attribute : str
    alternative_specific : bool
        One coefficient per alternative (the reference's fixed at 0 when the attribute
        does not vary across alternatives, e.g. income; and none for an alternative whose
        attribute is always 0, e.g. an interaction with another alternative's dummy).
    random : {None, "normal", "lognormal", "neg_lognormal"}
        Mixing distribution over individuals; ``neg_lognormal`` keeps a price-like
        coefficient negative (``β = -exp(θ)``, ``θ`` normal).
    level : {"individual", "situation"}
        ``"situation"`` adds a deviation per choice situation on top of the individual's.
    """

    attribute: str
    alternative_specific: bool = False
    random: str | None = None
    level: str = "individual"

    def __post_init__(self):
        if self.random is not None and self.random not in MIXING:
            raise SpecificationError(
                f"coefficient of {self.attribute!r}: unknown mixing distribution "
                f"{self.random!r}; choose from {list(MIXING)}"
            )
        if self.level not in LEVELS:
            raise SpecificationError(f"coefficient of {self.attribute!r}: level must be one of {LEVELS}")
        if self.level == "situation" and self.random is None:
            raise SpecificationError(
                f"coefficient of {self.attribute!r}: a situation-level coefficient must be random"
            )


@dataclass(frozen=True)
class ModelSpec:
    """A full utility specification.

    Parameters
    ----------
    coefficients : sequence of Coefficient
    constants : {"none", "fixed", "random"}
        Alternative-specific constants: absent (a common constant cancels in the softmax),
        fixed, or random over individuals (normal); the reference alternative's is 0.
    reference : alternative label, optional
        Reference alternative; default the last one.
    correlated : bool
        Random components (coefficients and random constants) share a full covariance,
        ``θ_i = μ + L z_i`` with ``L`` the Cholesky factor of an LKJ prior.
    name, description : str
    nests : mapping of str to sequence of alternative labels, optional
        A two-level nested logit: each nest's alternatives (``{"public": ["bus", "train"]}``),
        with one dissimilarity parameter ``λ_k ∈ (0, 1]`` per nest of two or more alternatives
        (``lambda``, dim ``nest``). An alternative named in no nest is a nest of its own (its
        ``λ`` cancels). ``λ = 1`` for every nest is the logit.
    space : {"preference", "wtp"}
        ``"wtp"``: willingness-to-pay space, ``U = −exp(s)·(price − Σ_k w_k x_k − w_j)``; the
        WTPs ``w`` (and the constants' ``w_j``) are the parameters, ``s`` the log of the price
        coefficient's magnitude (``scale``: random over individuals when the price's
        :class:`Coefficient` is ``"neg_lognormal"``, the price coefficient ``−exp(s)`` then
        lognormal).
    price : str, optional
        The price attribute of WTP space (a generic coefficient of the specification).

    Raises
    ------
    SpecificationError
        An alternative in two nests, a nest without alternatives, two nests of one name, an
        unknown ``space``, ``space="wtp"`` without a price (or a price without it), a price
        not among the coefficients, alternative-specific, or with a mixing distribution other
        than ``"neg_lognormal"``.

    Examples
    --------
    >>> from pymc_maxent import Coefficient, ModelSpec
    >>> spec = ModelSpec((Coefficient("gc"), Coefficient("ttme")), nests={"ground": ["train", "bus"]})
    >>> spec.nests
    (('ground', ('train', 'bus')),)
    >>> ModelSpec((Coefficient("gc"),), nests={"a": ["bus"], "b": ["bus", "car"]})
    Traceback (most recent call last):
    ...
    pymc_maxent.exceptions.SpecificationError: alternative 'bus' is in two nests, 'a' and 'b'
    """

    coefficients: tuple[Coefficient, ...]
    constants: str = "fixed"
    reference: object = None
    correlated: bool = False
    name: str = "custom"
    description: str = ""
    nests: tuple = ()
    space: str = "preference"
    price: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "coefficients", tuple(self.coefficients))
        if self.constants not in CONSTANTS:
            raise SpecificationError(f"constants must be one of {CONSTANTS}; got {self.constants!r}")
        names = [c.attribute for c in self.coefficients]
        if len(set(names)) != len(names):
            raise SpecificationError(f"an attribute appears twice in the specification: {names}")
        if not names and self.constants == "none":
            raise SpecificationError("the specification has no parameters")
        object.__setattr__(self, "nests", _as_nests(self.nests))
        _check_space(self)


def _as_nests(nests) -> tuple:
    """Nests as ``((name, (alternative, ...)), ...)``, checked: names unique and non-empty, each
    nest with alternatives, no alternative twice."""
    if nests is None:
        return ()
    pairs = list(nests.items()) if isinstance(nests, Mapping) else list(nests)
    out, seen, owner = [], set(), {}
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise SpecificationError(f"nests: give a mapping of nest name to alternatives; got {pair!r}")
        name, alternatives = pair
        if not isinstance(name, str) or not name.strip():
            raise SpecificationError(f"nest names must be non-empty strings; got {name!r}")
        if name in seen:
            raise SpecificationError(f"two nests are named {name!r}")
        seen.add(name)
        if isinstance(alternatives, str) or not isinstance(alternatives, Sequence | np.ndarray):
            raise SpecificationError(f"nest {name!r}: give a list of alternatives; got {alternatives!r}")
        members = tuple(a.item() if hasattr(a, "item") else a for a in alternatives)
        if not members:
            raise SpecificationError(f"nest {name!r} has no alternatives")
        for a in members:
            if a in owner:
                where = (f"nest {name!r} twice" if owner[a] == name
                         else f"two nests, {owner[a]!r} and {name!r}")
                raise SpecificationError(f"alternative {a!r} is in {where}")
            owner[a] = name
        out.append((name, members))
    return tuple(out)


def _check_space(spec: ModelSpec) -> None:
    if spec.space not in SPACES:
        raise SpecificationError(f"space must be one of {SPACES}; got {spec.space!r}")
    if spec.space == "preference":
        if spec.price is not None:
            raise SpecificationError(f"price {spec.price!r} is for space='wtp'; a preference-space "
                                     "model takes its price from the attributes (leave price unset)")
        return
    if spec.price is None:
        raise SpecificationError("space='wtp' needs the price attribute: give price=")
    coefficient = {c.attribute: c for c in spec.coefficients}.get(spec.price)
    if coefficient is None:
        raise SpecificationError(f"price {spec.price!r} is not among the specification's attributes "
                                 f"{[c.attribute for c in spec.coefficients]}")
    if coefficient.alternative_specific:
        raise SpecificationError(f"price {spec.price!r}: in WTP space the price coefficient is generic "
                                 "(−exp(scale) for every alternative)")
    if coefficient.random not in (None, "neg_lognormal"):
        raise SpecificationError(
            f"price {spec.price!r}: in WTP space the price coefficient is −exp(scale); its mixing "
            f"distribution is 'neg_lognormal' (scale normal) or none (fixed); got {coefficient.random!r}")


@dataclass(frozen=True)
class Tier:
    """One rung of the logit ladder: a preset of :class:`ModelSpec`.

    Attributes
    ----------
    description : str
    constants : {"none", "fixed", "random"}
    alternative_specific : bool
        Alternative-specific coefficients (else generic).
    random : bool
        Coefficients random over individuals.
    level : {"individual", "situation"}
    seed_formula : str
        The design note's parameter count (``j`` alternatives, ``k`` attributes, ``i``
        individuals, ``t`` situations).
    """

    description: str
    constants: str
    alternative_specific: bool
    random: bool
    level: str
    seed_formula: str


#: The tiers of the design note, by name.
TIERS: dict[str, Tier] = {
    "MNL-1": Tier("common constant (cancels), generic fixed coefficients", "none", False, False,
                  "individual", "1 + k"),
    "MNL-2": Tier("alternative constants, generic fixed coefficients", "fixed", False, False,
                  "individual", "j + k"),
    "MNL-3": Tier("alternative constants, alternative-specific fixed coefficients", "fixed", True,
                  False, "individual", "j + kj"),
    "MXL-1": Tier("alternative constants, generic coefficients random over individuals", "fixed",
                  False, True, "individual", "j + ki"),
    "MXL-2": Tier("constants random over individuals, generic random coefficients", "random",
                  False, True, "individual", "ji + ki"),
    "MXL-3": Tier("random constants, alternative-specific coefficients random over individuals",
                  "random", True, True, "individual", "ji + kij"),
    "MXL-4": Tier("random constants, alternative-specific coefficients random over individuals "
                  "and situations", "random", True, True, "situation", "ji + kijt"),
}


#: Named models beyond the ladder: the tier whose utility they take, and what they add.
NESTED_TIERS = {"NL": "MNL-2"}


def tier_spec(
    tier: str,
    attributes: Sequence[str],
    *,
    random: str | Mapping[str, str] = "normal",
    correlated: bool = False,
    reference=None,
    nests: Mapping[str, Sequence] | None = None,
    space: str = "preference",
    price: str | None = None,
) -> ModelSpec:
    """The specification of one tier of the logit ladder.

    Parameters
    ----------
    tier : str
        One of ``MNL-1, MNL-2, MNL-3, MXL-1, MXL-2, MXL-3, MXL-4``, or ``NL``: the nested
        logit of ``MNL-2``'s utility (``nests`` required).
    attributes : sequence of str
    random : str or mapping
        Mixing distribution of the random coefficients, one for all or per attribute (the
        others ``"normal"``); ignored by the MNL tiers. In WTP space the price's is
        ``"neg_lognormal"`` (a random scale) unless given.
    correlated : bool
        LKJ-correlated random components (mixed tiers only).
    reference : alternative label, optional
    nests : mapping, optional
        Nest name → alternatives: any tier becomes a nested logit (:class:`ModelSpec`).
    space : {"preference", "wtp"}
    price : str, optional
        The price attribute of WTP space.

    Raises
    ------
    SpecificationError
        An unknown tier or mixing distribution, ``random`` naming attributes not in
        ``attributes``, ``correlated`` on an MNL tier, ``NL`` without nests, or what
        :class:`ModelSpec` raises.

    Examples
    --------
    >>> from pymc_maxent.bayes import tier_spec
    >>> spec = tier_spec("MXL-1", ["price", "time"], random={"price": "neg_lognormal"})
    >>> [(c.attribute, c.random) for c in spec.coefficients]
    [('price', 'neg_lognormal'), ('time', 'normal')]
    >>> tier_spec("NL", ["gc"], nests={"ground": ["train", "bus"]}).name
    'NL'
    >>> tier_spec("MXL-1", ["cost", "time"], space="wtp", price="cost").name
    'MXL-1 (WTP space)'
    """
    base = NESTED_TIERS.get(tier, tier)
    if base not in TIERS:
        raise SpecificationError(f"unknown tier {tier!r}; choose from {[*TIERS, *NESTED_TIERS]}")
    if tier in NESTED_TIERS and not nests:
        raise SpecificationError(f"tier {tier} is a nested logit: give nests (nest name -> alternatives)")
    preset = TIERS[base]
    if correlated and not preset.random:
        raise SpecificationError(f"tier {tier} has no random coefficients to correlate")
    if isinstance(random, Mapping):
        unknown = [a for a in random if a not in attributes]
        if unknown:
            raise SpecificationError(f"random names {unknown}, not among the model's attributes "
                                     f"{list(attributes)}")
        mixing = dict(random)
    else:
        mixing = dict.fromkeys(attributes, random)
    if space == "wtp" and price is not None and not (isinstance(random, Mapping) and price in random):
        mixing[price] = "neg_lognormal"  # the random scale: price coefficient −exp(s), s normal
    coefficients = tuple(
        Coefficient(
            a,
            alternative_specific=preset.alternative_specific,
            random=mixing.get(a, "normal") if preset.random else None,
            level=preset.level,
        )
        for a in attributes
    )
    name = tier + (" (correlated)" if correlated else "")
    if nests and tier not in NESTED_TIERS:
        name += " nested"
    if space == "wtp":
        name += " (WTP space)"
    return ModelSpec(
        coefficients,
        constants=preset.constants,
        reference=reference,
        correlated=correlated,
        name=name,
        description=preset.description + ("; nested logit" if nests else "")
        + ("; willingness-to-pay space" if space == "wtp" else ""),
        nests=nests,
        space=space,
        price=price,
    )


def as_spec(
    spec: str | ModelSpec,
    attributes: Sequence[str],
    *,
    random: str | Mapping[str, str] = "normal",
    correlated: bool = False,
    reference=None,
    nests: Mapping[str, Sequence] | None = None,
    space: str = "preference",
    price: str | None = None,
) -> ModelSpec:
    """The :class:`ModelSpec` of a tier name, or a :class:`ModelSpec` as given.

    The one place where what the user asked for becomes a specification: every builder,
    :func:`~pymc_maxent.simulate.simulate_choices` and :class:`~pymc_maxent.ChoiceModel`
    go through it.

    Parameters
    ----------
    spec : str or ModelSpec
        A tier name (see :func:`tier_table`) or a full specification.
    attributes : sequence of str
        Attributes entering utility (tier names only).
    random, correlated, reference, nests, space, price
        As in :func:`tier_spec`, for tier names; a :class:`ModelSpec` carries its own, so
        these must be left at their defaults with one.

    Raises
    ------
    SpecificationError
        What :func:`tier_spec` raises; ``random``, ``correlated``, ``reference``, ``nests``,
        ``space`` or ``price`` given with a :class:`ModelSpec`; a ``spec`` of another type.

    Examples
    --------
    >>> from pymc_maxent.specification import as_spec
    >>> as_spec("MNL-2", ["price", "time"], reference="car").reference
    'car'
    >>> spec = as_spec("MXL-1", ["price"], correlated=False)
    >>> as_spec(spec, ["ignored"]) is spec
    True
    """
    if isinstance(spec, ModelSpec):
        given = {name: value for name, value, default in
                 (("random", random, "normal"), ("correlated", correlated, False),
                  ("reference", reference, None), ("nests", nests, None),
                  ("space", space, "preference"), ("price", price, None)) if not _same(value, default)}
        if given:
            raise SpecificationError(
                f"{', '.join(given)} apply to tier names; the ModelSpec {spec.name!r} carries its own "
                "(set them in the ModelSpec and its Coefficients)")
        return spec
    if isinstance(spec, str):
        return tier_spec(spec, list(attributes), random=random, correlated=correlated, reference=reference,
                         nests=nests, space=space, price=price)
    raise SpecificationError(f"spec must be a tier name ({', '.join([*TIERS, *NESTED_TIERS])}) or a "
                             f"ModelSpec; got {type(spec).__name__}")


def _same(value, default) -> bool:
    if default is None and isinstance(value, Mapping | Sequence) and not isinstance(value, str):
        return not len(value)
    return value is default or (isinstance(value, str | bool) and value == default)


@dataclass
class Block:
    """Free parameters laid out into a ``(alternative, column)`` coefficient matrix.

    ``layout[j, c]`` indexes the parameters; ``-1`` is a coefficient fixed at 0 (a reference
    alternative's), i.e. the last slot of ``concat(parameters, [0])``.
    """

    labels: list[str] = field(default_factory=list)
    columns: list[int] = field(default_factory=list)   # attribute positions in X
    layout: list[list[int]] = field(default_factory=list)  # one row per column, J entries
    scales: list[float] = field(default_factory=list)  # attribute sd, for default priors

    def add(self, label: str, scale: float) -> int:
        self.labels.append(label)
        self.scales.append(scale)
        return len(self.labels) - 1

    def matrix(self, n_alternatives: int) -> np.ndarray:
        """``(alternative, column)`` layout, ``-1`` for a coefficient fixed at 0 (the layout of
        :func:`~pymc_maxent.utility.block_utility`)."""
        return np.array(self.layout, dtype=np.int64).reshape(len(self.columns), n_alternatives).T


@dataclass
class ResolvedSpec:
    """A specification resolved against one dataset: what is sampled and where it goes."""

    spec: ModelSpec
    alternatives: list
    reference: int
    asc_labels: list[str]              # fixed constants (dim "asc")
    asc_layout: np.ndarray | None      # (alternative,) into alpha, -1 for the reference
    fixed: Block                       # dim "coefficient"
    random: Block                      # dim "random_coefficient" (without random constants)
    random_labels: list[str]           # all random components: constants first, then coefficients
    random_asc_layout: np.ndarray | None  # (alternative,) into the random constants, -1: reference
    random_sign: np.ndarray            # per random component: 0 normal, ±1 (neg_)lognormal
    random_scale: np.ndarray
    situation_components: np.ndarray   # random components with a situation-level deviation
    n_attributes: int = 0              # X's last axis
    n_random_asc: int = 0              # random constants leading the random components
    # nested logit: each alternative's nest, all nests' names, and the nests with a free λ
    nest_of: np.ndarray | None = None  # (alternative,) into nest_names
    nest_names: list = field(default_factory=list)
    nest_labels: list = field(default_factory=list)   # dim "nest": nests of two or more alternatives
    nest_lambda: np.ndarray | None = None  # (nest,) into lambda, -1: λ = 1 (a nest of one)
    # WTP space: the price's column in X, and the scale's place (a fixed scalar or the last
    # random component); the blocks hold the WTPs (the price is not among them)
    price_column: int | None = None
    price_sd: float = 1.0
    price_position: int = 0            # the price's place among the preference-space coefficients
    scale_random: bool = False

    @property
    def n_random(self) -> int:
        return len(self.random_labels)

    @property
    def nested(self) -> bool:
        return self.nest_of is not None

    @property
    def wtp_space(self) -> bool:
        return self.price_column is not None


def resolve(spec: ModelSpec, data: ChoiceData) -> ResolvedSpec:
    """Check a specification against the data and lay out its parameters.

    Raises
    ------
    SpecificationError
        What :func:`check_identified` raises; a nest naming an unknown alternative or named
        like an alternative, nests that leave no dissimilarity parameter or put every
        alternative in one nest; a WTP-space price that is not an attribute of the data.
    """
    J = data.n_alternatives
    alternatives = data.alternatives.tolist()
    reference = J - 1 if spec.reference is None else data.alternative_index(spec.reference)
    varies = data.varies_across_alternatives()
    sd = np.array([data.X[..., k][data.available].std() for k in range(data.n_attributes)])
    price_column, price_sd, price_position = None, 1.0, 0
    if spec.space == "wtp":
        if spec.price not in data.attributes:
            raise SpecificationError(f"price {spec.price!r} is not an attribute of the data; the attributes "
                                     f"are {data.attributes.tolist()}")
        # identified in WTP space exactly when its preference-space twin is
        resolve(replace(spec, space="preference", price=None, nests=()), data)
        price_column = data.attribute_index(spec.price)
        price_sd = float(sd[price_column]) if sd[price_column] > 0 else 1.0
        sd = sd / price_sd  # a WTP's prior scale: sd(price)/sd(x) (see priors.random_scales)

    fixed, random = Block(), Block()
    random_asc: list[str] = []
    if spec.constants == "random":
        random_asc = [f"asc[{a}]" for j, a in enumerate(alternatives) if j != reference]
    random_sign: list[float] = [0.0] * len(random_asc)
    random_scale: list[float] = [1.0] * len(random_asc)
    situation_level: list[int] = []

    for coef in spec.coefficients:
        k = data.attribute_index(coef.attribute)
        if k == price_column:
            price_position = len(fixed.labels)  # where the price's coefficient goes in beta
            continue  # WTP space: the price's coefficient is −exp(scale)
        block = random if coef.random else fixed
        if not coef.alternative_specific and not varies[k]:
            raise SpecificationError(
                f"attribute {coef.attribute!r} does not vary across alternatives within any "
                "situation, so a generic coefficient is not identified; make it "
                "alternative-specific (the reference alternative's is fixed at 0)"
            )
        block.columns.append(k)
        if coef.alternative_specific:
            own = data.alternative_specific_columns(k, reference)
            if not own:
                raise SpecificationError(f"attribute {coef.attribute!r} is 0 for every alternative")
            row = []
            for j, alt in enumerate(alternatives):
                if j not in own:
                    row.append(-1)  # identification: reference (or absent) coefficient fixed at 0
                else:
                    row.append(block.add(f"{coef.attribute}[{alt}]", sd[k]))
                    if coef.random:
                        random_sign.append(MIXING[coef.random] or 0.0)
                        if coef.level == "situation":
                            situation_level.append(len(random_asc) + len(block.labels) - 1)
        else:
            index = block.add(coef.attribute, sd[k])
            row = [index] * J
            if coef.random:
                random_sign.append(MIXING[coef.random] or 0.0)
                if coef.level == "situation":
                    situation_level.append(len(random_asc) + index)
        block.layout.append(row)
    random_scale += random.scales
    scale_random = False
    if price_column is not None:
        price = next(c for c in spec.coefficients if c.attribute == spec.price)
        if price.random:  # the scale: the last random component, exp(s) its natural scale
            scale_random = True
            if price.level == "situation":
                situation_level.append(len(random_asc) + len(random.labels))
            random_sign.append(1.0)
            random_scale.append(price_sd)

    if spec.constants == "fixed":
        asc_labels = [a for j, a in enumerate(alternatives) if j != reference]
        asc_layout = _constant_layout(J, reference)
    else:
        asc_labels, asc_layout = [], None
    random_asc_layout = _constant_layout(J, reference) if random_asc else None
    random_labels = random_asc + random.labels + (["scale"] if scale_random else [])
    if spec.correlated and len(random_labels) < 2:
        raise SpecificationError("`correlated=True` needs at least two random components")
    resolved = ResolvedSpec(
        spec=spec,
        alternatives=alternatives,
        reference=reference,
        asc_labels=asc_labels,
        asc_layout=asc_layout,
        fixed=fixed,
        random=random,
        random_labels=random_labels,
        random_asc_layout=random_asc_layout,
        random_sign=np.array(random_sign),
        random_scale=np.array(random_scale),
        situation_components=np.array(situation_level, dtype=np.int64),
        n_attributes=data.n_attributes,
        n_random_asc=len(random_asc),
        price_column=price_column,
        price_sd=price_sd,
        price_position=price_position,
        scale_random=scale_random,
    )
    if spec.nests:
        resolved.nest_of, resolved.nest_names, resolved.nest_labels, resolved.nest_lambda = \
            resolve_nests(spec.nests, alternatives)
    if price_column is None:
        check_identified(resolved, data)
    return resolved


def resolve_nests(nests, alternatives: list):
    """Each alternative's nest (those named in no nest: a nest of their own, named after them),
    the nests' names, the nests of two or more alternatives (one ``λ`` each) and each nest's
    position among them (``-1``: ``λ = 1``).

    Raises
    ------
    SpecificationError
        A nest naming an alternative the data do not have, a nest named like an alternative, no
        nest of two or more alternatives, or one nest holding every alternative.

    Examples
    --------
    >>> from pymc_maxent.specification import resolve_nests
    >>> nest_of, names, labels, index = resolve_nests((("ground", ("train", "bus", "car")),),
    ...                                               ["air", "train", "bus", "car"])
    >>> nest_of.tolist(), names, labels, index.tolist()
    ([1, 0, 0, 0], ['ground', 'air'], ['ground'], [0, -1])
    """
    labels = [str(a) for a in alternatives]
    position = {}
    for name, members in nests:
        if name in labels:
            raise SpecificationError(f"nest {name!r} is named like an alternative; name the nests apart from "
                                     f"the alternatives {labels}")
        for a in members:
            if a in alternatives:
                position[a] = alternatives.index(a)
            elif str(a) in labels:
                position[a] = labels.index(str(a))
            else:
                raise SpecificationError(f"nest {name!r}: unknown alternative {a!r}; the alternatives are "
                                         f"{labels}")
    nest_of = np.full(len(alternatives), -1, dtype=np.int64)
    names = []
    for m, (name, members) in enumerate(nests):
        names.append(name)
        nest_of[[position[a] for a in members]] = m
    for j in np.flatnonzero(nest_of < 0):  # alternatives in no nest: a nest of their own
        nest_of[j] = len(names)
        names.append(labels[j])
    sizes = np.bincount(nest_of, minlength=len(names))
    free = [m for m in range(len(names)) if sizes[m] >= 2]
    if not free:
        raise SpecificationError(f"no nest holds two or more alternatives ({dict(nests)}): a nested logit "
                                 "of single-alternative nests is the logit; drop nests")
    if sizes.max() == len(alternatives):
        raise SpecificationError(f"nest {names[int(sizes.argmax())]!r} holds every alternative: its λ only "
                                 "rescales utility and is not identified; nest a subset")
    index = np.full(len(names), -1, dtype=np.int64)
    index[free] = np.arange(len(free))
    return nest_of, names, [names[m] for m in free], index


#: Smallest eigenvalue, relative to the largest, of the scaled Gram matrix of the centred
#: design below which its rank is taken as deficient (a singular-value ratio of ~3e-5: only
#: relations that hold to rounding, not merely strong correlations).
RANK_TOLERANCE = 1e-9
_CHUNK = 1 << 15  # situations per pass over the design


def check_identified(resolved: ResolvedSpec, data: ChoiceData) -> None:
    """Raise when the utility's design does not identify the parameters.

    Choice probabilities depend on utility differences within a situation only, so the
    parameters (constants, coefficients, and the means of random ones) are identified when
    their design ``F_ijm = ∂U_ij/∂θ_m``, centred within each situation over its available
    alternatives, has full column rank. A null vector ``w`` of the centred design is a
    direction ``θ + t w`` along which no utility difference, hence no choice, changes: e.g.
    ``x2 = 2·x1`` (or ``x2 = 2·x1 + 3`` in every situation) leaves ``(beta[x1], beta[x2])``
    undetermined along ``(2, −1)``.
    Alternative-specific coefficients of an attribute that is constant within situations
    (income) are identified by its variation across situations, which the centred design keeps.

    Raises
    ------
    SpecificationError
        Naming the parameters of each null direction and the relation among their columns.

    Examples
    --------
    >>> import numpy as np, pymc_maxent as pmx
    >>> from pymc_maxent.data.choice_data import ChoiceData
    >>> from pymc_maxent.specification import as_spec, resolve
    >>> from pymc_maxent.exceptions import SpecificationError
    >>> x1 = np.random.default_rng(0).normal(size=(50, 3))
    >>> data = ChoiceData.from_arrays(np.stack([x1, 2 * x1 + 3], axis=-1), np.zeros(50, dtype=int),
    ...                               attributes=np.array(["x1", "x2"]))
    >>> try:
    ...     resolve(as_spec("MNL-2", ["x1", "x2"]), data)
    ... except SpecificationError as error:
    ...     print(str(error).split("(")[1].split(")")[0])
    2·x1 - x2 is constant within every situation
    """
    # a design of full rank on some situations has full rank on all: try the first ones first
    for situations in (slice(0, _CHUNK), slice(None)):
        null, labels = _null_space(resolved, data, situations)
        if not null or situations.stop is None or situations.stop >= data.n_situations:
            break
    if null:
        raise SpecificationError(_identification_message(labels, _sparse_basis(np.array(null))))


def _null_space(resolved: ResolvedSpec, data: ChoiceData, situations: slice):
    """Null directions of the centred design on some situations (on the parameters' own scales)."""
    labels, gram, raw = centred_gram(resolved, data, situations)
    if not labels:
        return [], labels
    scale = np.sqrt(np.diag(gram))
    flat = (scale**2 <= 1e-20 * raw) | (raw == 0)
    null = [np.eye(len(labels))[m] for m in np.flatnonzero(flat)]
    keep = np.flatnonzero(~flat)
    if len(keep):
        corr = gram[np.ix_(keep, keep)] / np.outer(scale[keep], scale[keep])
        values, vectors = np.linalg.eigh(corr)
        for v in vectors[:, values < RANK_TOLERANCE * max(values.max(), 1.0)].T:
            w = np.zeros(len(labels))
            w[keep] = v / scale[keep]  # on the attributes' own scales
            null.append(w)
    return null, labels


def _sparse_basis(null: np.ndarray) -> np.ndarray:
    """The reduced row echelon form of a basis of the null space (one row per relation): one
    relation per pivot, as few parameters in each as the space allows."""
    rows = null / np.abs(null).max(axis=1, keepdims=True)
    rows[np.abs(rows) < 1e-9] = 0.0
    pivot_row = 0
    for col in range(rows.shape[1]):
        if pivot_row == len(rows):
            break
        best = pivot_row + np.argmax(np.abs(rows[pivot_row:, col]))
        if abs(rows[best, col]) < 1e-9:
            continue
        rows[[pivot_row, best]] = rows[[best, pivot_row]]
        rows[pivot_row] /= rows[pivot_row, col]
        others = np.arange(len(rows)) != pivot_row
        rows[others] -= np.outer(rows[others, col], rows[pivot_row])
        pivot_row += 1
    rows[np.abs(rows) < 1e-8] = 0.0
    return rows[:pivot_row]


def _identification_message(labels: list[str], relations: np.ndarray) -> str:
    involved = [labels[m] for m in np.flatnonzero(np.abs(relations).sum(axis=0))]
    parts = []
    for w in relations:
        nonzero = np.flatnonzero(w)
        if len(nonzero) == 1:
            parts.append(f"{labels[nonzero[0]]} does not vary across the available alternatives of any "
                         "situation")
            continue
        w = w / np.abs(w[nonzero]).min() * np.sign(w[nonzero[0]])
        terms = " ".join(f"{'-' if w[m] < 0 else '+'} {_coefficient(abs(w[m]))}{labels[m]}" for m in nonzero)
        parts.append(f"{terms.removeprefix('+ ')} is constant within every situation")
    if any(label.startswith("asc[") for label in involved):
        parts.append("asc[a] stands for alternative a's dummy")
    return (f"the parameters {', '.join(involved)} are not identified: choices depend on utility "
            f"differences within a situation only, and there their columns are linearly dependent "
            f"({'; '.join(parts)}). Drop or combine attributes, or change the coefficients' "
            "specification")


def _coefficient(value: float) -> str:
    return "" if abs(value - 1.0) < 1e-6 else f"{value:.4g}·"


def centred_gram(resolved: ResolvedSpec, data: ChoiceData, situations: slice = slice(None)):
    """Labels of the parameters in utility, the Gram matrix of their design centred within
    situations over the available alternatives, and the uncentred design's squared norms."""
    labels = design_labels(resolved)
    P = len(labels)
    gram, raw = np.zeros((P, P)), np.zeros(P)
    X_all, available_all = data.X[situations], data.available[situations]
    for start in range(0, len(X_all), _CHUNK):
        available = available_all[start:start + _CHUNK, :, None]
        F = np.concatenate(utility_design(resolved, X_all[start:start + _CHUNK]), axis=-1) * available
        centred = (F - F.sum(axis=1, keepdims=True) / np.maximum(available.sum(axis=1, keepdims=True), 1))
        centred = (centred * available).reshape(-1, P)
        gram += centred.T @ centred
        raw += (F**2).sum(axis=(0, 1))
    return labels, gram, raw


def design_labels(resolved: ResolvedSpec) -> list[str]:
    """Labels of the columns of :func:`utility_design`'s fixed and random parts, in order."""
    labels = [f"asc[{a}]" for a in resolved.asc_labels] + resolved.fixed.labels
    return labels + resolved.random_labels[:resolved.n_random_asc] + resolved.random.labels


def utility_design(resolved: ResolvedSpec, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The design of the utility's parameters, ``F[n, j, m] = ∂U_nj/∂θ_m`` (natural scale):
    ``(situation, alternative, ·)`` arrays of the fixed parameters (constants, then
    coefficients) and of the random components (random constants, then coefficients), in the
    order of :func:`design_labels`."""
    J = len(resolved.alternatives)
    n = len(X)

    def constants(layout, k):
        return np.broadcast_to(_one_hot(layout[:, None], k)[:, 0], (n, J, k))

    def block(b):
        one_hot = _one_hot(b.matrix(J), len(b.labels))
        cols = np.asarray(b.columns)
        # F[n, j, m] = Σ_c X[n, j, column c] [layout[j, c] = m]: one matmul per alternative
        return np.stack([X[:, j, cols] @ one_hot[j] for j in range(J)], axis=1)

    fixed, random = [np.zeros((n, J, 0))], [np.zeros((n, J, 0))]
    if resolved.asc_labels:
        fixed.append(constants(resolved.asc_layout, len(resolved.asc_labels)))
    if resolved.n_random_asc:
        random.append(constants(resolved.random_asc_layout, resolved.n_random_asc))
    if resolved.fixed.labels:
        fixed.append(block(resolved.fixed))
    if resolved.random.labels:
        random.append(block(resolved.random))
    return np.concatenate(fixed, axis=-1), np.concatenate(random, axis=-1)


def _one_hot(layout: np.ndarray, n: int) -> np.ndarray:
    """``(…, n)`` indicators of ``layout``'s entries (``-1``, a zero, has none)."""
    return (layout[..., None] == np.arange(n)).astype(float)


def _constant_layout(n_alternatives: int, reference: int) -> np.ndarray:
    """``(alternative,)`` positions of the constants, ``-1`` for the reference (fixed at 0)."""
    layout = np.arange(n_alternatives)
    layout[reference:] -= 1
    layout[reference] = -1
    return layout


def parameter_counts(resolved: ResolvedSpec, data: ChoiceData) -> dict[str, int]:
    """Free parameters of a resolved specification.

    ``population``: constants, fixed coefficients, means, SDs and correlations;
    ``latent``: individual- and situation-level standardised deviations.
    """
    D = resolved.n_random
    S = len(resolved.situation_components)
    population = len(resolved.asc_labels) + len(resolved.fixed.labels) + 2 * D + S + len(resolved.nest_labels)
    population += int(resolved.wtp_space and not resolved.scale_random)  # a fixed scale
    if resolved.spec.correlated:
        population += D * (D - 1) // 2
    latent = D * data.n_individuals + S * data.n_situations
    return {"population": population, "latent": latent, "total": population + latent}


def seed_count(tier: str, data: ChoiceData, n_attributes: int) -> int:
    """The design note's parameter count, evaluated on the data (``it`` = situations)."""
    j, k, i = data.n_alternatives, n_attributes, data.n_individuals
    return {
        "MNL-1": 1 + k, "MNL-2": j + k, "MNL-3": j + k * j, "MXL-1": j + k * i,
        "MXL-2": j * i + k * i, "MXL-3": j * i + k * i * j,
        "MXL-4": j * i + k * j * data.n_situations,
    }[tier]


def tier_table(data: ChoiceData, attributes: Sequence[str] | None = None, *,
               nests: Mapping[str, Sequence] | None = None, price: str | None = None) -> pd.DataFrame:
    """Every tier's name, description and parameter counts on ``data``.

    Columns: ``seed_count`` (the design note's count), ``identified`` population-level
    parameters after identification (a common constant cancels, one reference
    alternative), ``latent`` individual/situation-level parameters, and ``total``.
    Attributes that do not vary across alternatives get alternative-specific
    coefficients in every tier, since a generic one is not identified.

    With ``nests``, the rows ``NL`` (MNL-2's utility, one ``λ`` per nest of two or more
    alternatives, ``m`` of them) and ``MXL-1 nested``; with ``price``, ``MNL-2 (WTP space)``
    and ``MXL-1 (WTP space)`` (the WTPs and the scale in place of the coefficients: the same
    counts).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> pmx.tier_table(pmx.load_travel_mode()).loc["MNL-2", "identified"]
    np.int64(6)
    >>> table = pmx.tier_table(pmx.load_travel_mode(), nests={"public": ["train", "bus"]}, price="gc")
    >>> table.loc[["NL", "MXL-1 nested", "MNL-2 (WTP space)"], "identified"].tolist()
    [7, 10, 6]
    """
    attributes = data.attributes.tolist() if attributes is None else list(attributes)
    varies = data.varies_across_alternatives()
    rows = []
    for tier, preset in TIERS.items():
        spec = tier_spec(tier, attributes)
        spec = ModelSpec(
            tuple(
                c if varies[data.attribute_index(c.attribute)]
                else Coefficient(c.attribute, True, c.random, c.level)
                for c in spec.coefficients
            ),
            spec.constants, spec.reference, spec.correlated, spec.name, spec.description,
        )
        counts = parameter_counts(resolve(spec, data), data)
        rows.append({
            "tier": tier, "description": preset.description, "seed_formula": preset.seed_formula,
            "seed_count": seed_count(tier, data, len(attributes)),
            "identified": counts["population"], "latent": counts["latent"],
            "total": counts["total"],
        })
    extra = []
    if nests:
        extra += [("NL", "MNL-2", {"nests": nests}), ("MXL-1 nested", "MXL-1", {"nests": nests})]
    if price is not None:
        extra += [(f"{t} (WTP space)", t, {"space": "wtp", "price": price}) for t in ("MNL-2", "MXL-1")]
    for name, tier, options in extra:
        base = next(r for r in rows if r["tier"] == tier)
        spec = tier_spec(tier, [a for a in attributes if varies[data.attribute_index(a)] or a == price],
                         **options)
        spec = replace(spec, coefficients=spec.coefficients + tuple(
            Coefficient(a, True, "normal" if TIERS[tier].random else None) for a in attributes
            if not varies[data.attribute_index(a)] and a != price))
        resolved = resolve(spec, data)
        counts = parameter_counts(resolved, data)
        m = len(resolved.nest_labels)
        rows.append({
            "tier": name, "description": spec.description,
            "seed_formula": base["seed_formula"] + (" + m" if m else ""),
            "seed_count": base["seed_count"] + m, "identified": counts["population"],
            "latent": counts["latent"], "total": counts["total"],
        })
    return pd.DataFrame(rows).set_index("tier")
