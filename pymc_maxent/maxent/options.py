"""The settings of a MaxEnt fit, as three small frozen records checked once: how to solve
(:class:`SolverOptions`), which supports and priors (:class:`SupportOptions`) and how to chunk
(:class:`ChunkOptions`). :func:`~pymc_maxent.fit_maxent` takes them, or their fields by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pymc_maxent.arguments import require_count, require_positive
from pymc_maxent.exceptions import MaxEntError, SpecificationError
from pymc_maxent.numerics import check_on_unidentified

SOLVERS = ("dual", "primal")
#: Methods of the population dual (:func:`~pymc_maxent.maxent.stages.solve_dual`).
DUAL_METHODS = ("newton", "trust-exact")
#: Situations per chunk of the population dual: bounds its temporaries to ~``CHUNK × J × C``
#: floats (and fewer with many alternatives, :data:`~pymc_maxent.maxent.population_dual.CHUNK_CELLS`).
CHUNK = 4096
#: Individuals (or situations, at stage 3) per chunk of the batched Newton iteration.
INDIVIDUAL_CHUNK = 4096


def _plain(value):
    """An array setting as nested lists (JSON), anything else as it is."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return np.asarray(value, dtype=float).tolist()


class _Options:
    """JSON-ready values and construction from a mapping, for the records below."""

    def to_dict(self) -> dict:
        """The settings as JSON-ready values (arrays as lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class SolverOptions(_Options):
    """How the MaxEnt problems are solved.

    Attributes
    ----------
    solver : {"dual", "primal"}
        The concentrated dual (default; any N) or the primal as written (small N).
    dual_method : {"newton", "trust-exact"}
        The population dual's solver: damped Newton (default) or SciPy's scaled trust region.
    tol : float
        Largest moment residual relative to the moment's reachable range.
    maxiter : int
        Newton iterations per problem.
    on_unidentified : {"warn", "raise"}
        What a near-singular scaled Hessian or choice information does.
    check_separation : bool
        Count the individuals whose own choices are separated (one small LP each).
    mixing_tol : float
        Learnt pooling (``individual_support="learn"``): the mixing distribution's Newton
        iterations stop when no parameter moves by more than this many of its standard errors
        (its Laplace phase at a tenth of that).
    mixing_maxiter : int
        Iterations of each of its phases at most.
    mixing_points : int
        Importance (quasi-Monte Carlo) points per individual of its marginal likelihood.
    mixing_individuals : int
        The most individuals it is learnt from: beyond, a seeded random sample of that many
        (the individual stage then solves every individual at the learnt distribution).
    """

    solver: str = "dual"
    dual_method: str = "newton"
    tol: float = 1e-10
    maxiter: int = 100
    on_unidentified: str = "warn"
    check_separation: bool = True
    mixing_tol: float = 0.02
    mixing_maxiter: int = 50
    mixing_points: int = 128
    mixing_individuals: int = 20000

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise MaxEntError(f"solver must be one of {SOLVERS}; got {self.solver!r}")
        if self.dual_method not in DUAL_METHODS:
            raise MaxEntError(f"method must be one of {DUAL_METHODS}; got {self.dual_method!r}")
        object.__setattr__(self, "tol", require_positive(self.tol, "tol"))
        object.__setattr__(self, "maxiter", require_count(self.maxiter, "maxiter"))
        check_on_unidentified(self.on_unidentified)
        if not isinstance(self.check_separation, bool | np.bool_):
            raise SpecificationError(f"check_separation must be True or False; got {self.check_separation!r}")
        object.__setattr__(self, "mixing_tol", require_positive(self.mixing_tol, "mixing_tol"))
        for name, minimum in (("mixing_maxiter", 1), ("mixing_points", 8), ("mixing_individuals", 10)):
            object.__setattr__(self, name, require_count(getattr(self, name), name, minimum=minimum))


@dataclass(frozen=True, eq=False)
class SupportOptions(_Options):
    """Supports and priors of the MaxEnt unknowns (validated against the data when fitted,
    :func:`~pymc_maxent.maxent.supports.make_supports`).

    Attributes
    ----------
    error_support : "default", None or array
        The population stage's noise support: ``"default"`` 3 points on ``±1/√N``; None: no
        noise term (the conditional-logit MLE).
    w0, probability_support, pi0, p0 : array, optional
        Prior weights over the error support; the note's probability support and its prior
        weights; prior choice probabilities (direct form).
    centre_noise : bool
        The noise term sees the features centred within each situation (default): no estimate
        depends on where an attribute's origin lies.
    individual_support : "learn", "fixed", "select", float, array or None
        Stage 2's pooling. ``"learn"`` (the default): a normal reference for the noise on each
        individual's moments whose covariance, the mixing distribution's ``Σ``, is learnt with
        ``μ`` and the fixed coefficients by maximum penalised marginal likelihood
        (:mod:`~pymc_maxent.maxent.mixing`). Else a noise support as the design note has it
        (:func:`~pymc_maxent.maxent.supports.group_support`: ``"fixed"``, 3 points on
        ``±1/√n_i``, the note's rule, also spelt ``"default"``, its earlier name; a width; an
        array; None), or ``"select"``: the width by held-out log score.
    situation_support : "default", float or array
        Stage 3's (``MXL-4``).
    """

    error_support: object = "default"
    w0: object = None
    probability_support: object = None
    pi0: object = None
    p0: object = None
    centre_noise: bool = True
    individual_support: object = "learn"
    situation_support: object = "default"

    def population(self) -> dict:
        """The keyword arguments of the population stage's supports."""
        return {name: getattr(self, name) for name in ("error_support", "w0", "probability_support", "pi0",
                                                        "p0")}


@dataclass(frozen=True)
class ChunkOptions(_Options):
    """How the problems are evaluated in chunks (memory, not results).

    Attributes
    ----------
    chunk_size : int
        Situations per chunk of the population dual (at most).
    individual_chunk : int
        Individuals (and situations, at stage 3) per chunk of the batched Newton iteration.
    """

    chunk_size: int = CHUNK
    individual_chunk: int = INDIVIDUAL_CHUNK

    def __post_init__(self):
        object.__setattr__(self, "chunk_size", require_count(self.chunk_size, "chunk_size"))
        object.__setattr__(self, "individual_chunk", require_count(self.individual_chunk, "individual_chunk"))


OPTION_TYPES = (SolverOptions, SupportOptions, ChunkOptions)


def split_options(solver_options=None, support_options=None, chunk_options=None, **settings):
    """The three records from records given whole and fields given by name (``tol=1e-8``,
    ``error_support=None``, ``chunk_size=1000``): a field goes to the record that has it.

    Raises
    ------
    SpecificationError
        An unknown setting, or a field given both by name and in its record.

    Examples
    --------
    >>> from pymc_maxent.maxent.options import split_options
    >>> solver, supports, chunks = split_options(tol=1e-8, error_support=None)
    >>> solver.tol, supports.error_support, chunks.chunk_size
    (1e-08, None, 4096)
    """
    given = {SolverOptions: solver_options, SupportOptions: support_options, ChunkOptions: chunk_options}
    known = {name: kind for kind in OPTION_TYPES for name in kind.names()}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise SpecificationError(f"unknown MaxEnt settings {unknown}; the settings are {sorted(known)}")
    out = []
    for kind, record in given.items():
        fields = {name: value for name, value in settings.items() if known[name] is kind}
        if record is not None and not isinstance(record, kind):
            raise SpecificationError(f"expected a {kind.__name__}; got {type(record).__name__}")
        if record is not None and fields:
            raise SpecificationError(f"{sorted(fields)} given both by name and in the {kind.__name__}")
        out.append(record if record is not None else kind(**fields))
    return tuple(out)


def options_from_dict(values: Mapping) -> tuple:
    """:func:`split_options` of saved settings (JSON values)."""
    return split_options(**dict(values))
