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
    :func:`~pymc_maxent.simulate.simulate_choices` and :class:`~pymc_maxent.ChoiceModel`
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
    n_attributes: int = 0              # X's last axis

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

    if spec.constants == "fixed":
        asc_labels = [a for j, a in enumerate(alternatives) if j != reference]
        asc_layout = _constant_layout(J, reference)
    else:
        asc_labels, asc_layout = [], None
    random_asc_layout = _constant_layout(J, reference) if random_asc else None
    if spec.correlated and len(random_asc) + len(random.labels) < 2:
        raise SpecificationError("`correlated=True` needs at least two random components")
    resolved = ResolvedSpec(
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
        n_attributes=data.n_attributes,
    )
    check_identified(resolved, data)
    return resolved


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
    labels, gram, raw = _centred_gram(resolved, data, situations)
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


def _centred_gram(resolved: ResolvedSpec, data: ChoiceData, situations: slice = slice(None)):
    """Labels of the parameters in utility, the Gram matrix of their design centred within
    situations over the available alternatives, and the uncentred design's squared norms."""
    J = len(resolved.alternatives)
    n_asc_random = resolved.n_random - len(resolved.random.labels)
    constants, blocks, labels = [], [], []
    if resolved.asc_labels:
        constants.append(_one_hot(resolved.asc_layout[:, None], len(resolved.asc_labels))[:, 0])
        labels += [f"asc[{a}]" for a in resolved.asc_labels]
    if n_asc_random:
        constants.append(_one_hot(resolved.random_asc_layout[:, None], n_asc_random)[:, 0])
        labels += resolved.random_labels[:n_asc_random]
    for block in (resolved.fixed, resolved.random):
        if block.labels:
            blocks.append((np.asarray(block.columns), _one_hot(block.matrix(J), len(block.labels))))
            labels += block.labels
    P = len(labels)
    gram, raw = np.zeros((P, P)), np.zeros(P)
    X_all, available_all = data.X[situations], data.available[situations]
    for start in range(0, len(X_all), _CHUNK):
        X = X_all[start:start + _CHUNK]
        available = available_all[start:start + _CHUNK, :, None]
        F = [np.broadcast_to(c, (len(X), *c.shape)) for c in constants]
        # F[n, j, m] = Σ_c X[n, j, column c] [layout[j, c] = m]: one matmul per alternative
        F += [np.stack([X[:, j, cols] @ one_hot[j] for j in range(J)], axis=1) for cols, one_hot in blocks]
        F = np.concatenate(F, axis=-1) * available
        centred = (F - F.sum(axis=1, keepdims=True) / np.maximum(available.sum(axis=1, keepdims=True), 1))
        centred = (centred * available).reshape(-1, P)
        gram += centred.T @ centred
        raw += (F**2).sum(axis=(0, 1))
    return labels, gram, raw


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
