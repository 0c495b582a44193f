"""Per-attribute model specifications, the tier presets, and their resolution against data.

A specification says, for every attribute, whether its coefficient is generic or
alternative-specific and whether (and how) it is random; and whether the alternative-specific
constants are absent, fixed or random. The seven tiers of the design note are presets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import SpecificationError

#: Mixing distributions of random coefficients; the value is the sign applied to ``exp``
#: for the lognormal family (``None``: normal, no transform).
MIXING = {"normal": None, "lognormal": 1.0, "neg_lognormal": -1.0}
LEVELS = ("individual", "situation")
CONSTANTS = ("none", "fixed", "random")


@dataclass(frozen=True)
class Coefficient:
    """How one attribute enters utility.

    Parameters
    ----------
    attribute : str
    alternative_specific : bool
        One coefficient per alternative (the reference's fixed at 0 when the attribute
        does not vary across alternatives, e.g. income).
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
    """

    coefficients: tuple[Coefficient, ...]
    constants: str = "fixed"
    reference: object = None
    correlated: bool = False
    name: str = "custom"
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "coefficients", tuple(self.coefficients))
        if self.constants not in CONSTANTS:
            raise SpecificationError(f"constants must be one of {CONSTANTS}; got {self.constants!r}")
        names = [c.attribute for c in self.coefficients]
        if len(set(names)) != len(names):
            raise SpecificationError(f"an attribute appears twice in the specification: {names}")
        if not names and self.constants == "none":
            raise SpecificationError("the specification has no parameters")


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


def tier_spec(
    tier: str,
    attributes: Sequence[str],
    *,
    random: str | Mapping[str, str] = "normal",
    correlated: bool = False,
    reference=None,
) -> ModelSpec:
    """The specification of one tier of the logit ladder.

    Parameters
    ----------
    tier : str
        One of ``MNL-1, MNL-2, MNL-3, MXL-1, MXL-2, MXL-3, MXL-4``.
    attributes : sequence of str
    random : str or mapping
        Mixing distribution of the random coefficients, one for all or per attribute (the
        others ``"normal"``); ignored by the MNL tiers.
    correlated : bool
        LKJ-correlated random components (mixed tiers only).
    reference : alternative label, optional

    Raises
    ------
    SpecificationError
        An unknown tier or mixing distribution, ``random`` naming attributes not in
        ``attributes``, or ``correlated`` on an MNL tier.

    Examples
    --------
    >>> from pymc_maxent.bayes import tier_spec
    >>> spec = tier_spec("MXL-1", ["price", "time"], random={"price": "neg_lognormal"})
    >>> [(c.attribute, c.random) for c in spec.coefficients]
    [('price', 'neg_lognormal'), ('time', 'normal')]
    """
    if tier not in TIERS:
        raise SpecificationError(f"unknown tier {tier!r}; choose from {list(TIERS)}")
    preset = TIERS[tier]
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
    coefficients = tuple(
        Coefficient(
            a,
            alternative_specific=preset.alternative_specific,
            random=mixing.get(a, "normal") if preset.random else None,
            level=preset.level,
        )
        for a in attributes
    )
    return ModelSpec(
        coefficients,
        constants=preset.constants,
        reference=reference,
        correlated=correlated,
        name=tier + (" (correlated)" if correlated else ""),
        description=preset.description,
    )


def as_spec(
    spec: str | ModelSpec,
    attributes: Sequence[str],
    *,
    random: str | Mapping[str, str] = "normal",
    correlated: bool = False,
    reference=None,
) -> ModelSpec:
    """The :class:`ModelSpec` of a tier name, or a :class:`ModelSpec` as given.

    The one place where what the user asked for becomes a specification: every builder,
    :func:`~pymc_maxent.data.simulate.simulate_choices` and :class:`~pymc_maxent.ChoiceModel`
    go through it.

    Parameters
    ----------
    spec : str or ModelSpec
        A tier name (see :func:`tier_table`) or a full specification.
    attributes : sequence of str
        Attributes entering utility (tier names only).
    random, correlated, reference
        As in :func:`tier_spec`, for tier names; a :class:`ModelSpec` carries its own, so
        these must be left at their defaults with one.

    Raises
    ------
    SpecificationError
        What :func:`tier_spec` raises; ``random``, ``correlated`` or ``reference`` given
        with a :class:`ModelSpec`; a ``spec`` of another type.

    Examples
    --------
    >>> from pymc_maxent.bayes.specification import as_spec
    >>> as_spec("MNL-2", ["price", "time"], reference="car").reference
    'car'
    >>> spec = as_spec("MXL-1", ["price"], correlated=False)
    >>> as_spec(spec, ["ignored"]) is spec
    True
    """
    if isinstance(spec, ModelSpec):
        given = {name: value for name, value, default in
                 (("random", random, "normal"), ("correlated", correlated, False),
                  ("reference", reference, None)) if not _same(value, default)}
        if given:
            raise SpecificationError(
                f"{', '.join(given)} apply to tier names; the ModelSpec {spec.name!r} carries its own "
                "(set them in the ModelSpec and its Coefficients)")
        return spec
    if isinstance(spec, str):
        return tier_spec(spec, list(attributes), random=random, correlated=correlated, reference=reference)
    raise SpecificationError(f"spec must be a tier name ({', '.join(TIERS)}) or a ModelSpec; "
                             f"got {type(spec).__name__}")


def _same(value, default) -> bool:
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

    @property
    def n_random(self) -> int:
        return len(self.random_labels)


def resolve(spec: ModelSpec, data: ChoiceData) -> ResolvedSpec:
    """Check a specification against the data and lay out its parameters."""
    J = data.n_alternatives
    alternatives = data.alternatives.tolist()
    reference = J - 1 if spec.reference is None else data.alternative_index(spec.reference)
    varies = data.varies_across_alternatives()
    sd = np.array([data.X[..., k][data.available].std() for k in range(data.n_attributes)])

    fixed, random = Block(), Block()
    random_asc: list[str] = []
    if spec.constants == "random":
        random_asc = [f"asc[{a}]" for j, a in enumerate(alternatives) if j != reference]
    random_sign: list[float] = [0.0] * len(random_asc)
    random_scale: list[float] = [1.0] * len(random_asc)
    situation_level: list[int] = []

    for coef in spec.coefficients:
        k = data.attribute_index(coef.attribute)
        block = random if coef.random else fixed
        if not coef.alternative_specific and not varies[k]:
            raise SpecificationError(
                f"attribute {coef.attribute!r} does not vary across alternatives within any "
                "situation, so a generic coefficient is not identified; make it "
                "alternative-specific (the reference alternative's is fixed at 0)"
            )
        block.columns.append(k)
        if coef.alternative_specific:
            row = []
            for j, alt in enumerate(alternatives):
                if j == reference and not varies[k]:
                    row.append(-1)  # identification: reference coefficient fixed at 0
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

    if spec.constants == "fixed":
        asc_labels = [a for j, a in enumerate(alternatives) if j != reference]
        asc_layout = _constant_layout(J, reference)
    else:
        asc_labels, asc_layout = [], None
    random_asc_layout = _constant_layout(J, reference) if random_asc else None
    if spec.correlated and len(random_asc) + len(random.labels) < 2:
        raise SpecificationError("`correlated=True` needs at least two random components")
    return ResolvedSpec(
        spec=spec,
        alternatives=alternatives,
        reference=reference,
        asc_labels=asc_labels,
        asc_layout=asc_layout,
        fixed=fixed,
        random=random,
        random_labels=random_asc + random.labels,
        random_asc_layout=random_asc_layout,
        random_sign=np.array(random_sign),
        random_scale=np.array(random_scale),
        situation_components=np.array(situation_level, dtype=np.int64),
    )


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
    population = len(resolved.asc_labels) + len(resolved.fixed.labels) + 2 * D + S
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


def tier_table(data: ChoiceData, attributes: Sequence[str] | None = None) -> pd.DataFrame:
    """Every tier's name, description and parameter counts on ``data``.

    Columns: ``seed_count`` (the design note's count), ``identified`` population-level
    parameters after identification (a common constant cancels, one reference
    alternative), ``latent`` individual/situation-level parameters, and ``total``.
    Attributes that do not vary across alternatives get alternative-specific
    coefficients in every tier, since a generic one is not identified.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> pmx.tier_table(pmx.load_travel_mode()).loc["MNL-2", "identified"]
    np.int64(6)
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
    return pd.DataFrame(rows).set_index("tier")
