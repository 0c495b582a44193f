"""The Maximum-Entropy (GME) estimator: PyTensor graphs over the shared data containers.

Modules, in the order of the flow:

- :mod:`~pymc_maxent.maxent.supports`, :mod:`~pymc_maxent.maxent.moments` and
  :mod:`~pymc_maxent.maxent.options`: what is fitted (supports and priors; the moment families
  and each tier's twin) and how (three frozen records of settings);
- the problems: :mod:`~pymc_maxent.maxent.population_dual` (stage 1's concentrated dual,
  compiled once over the containers), :mod:`~pymc_maxent.maxent.group_dual` (the individuals'
  and situations' duals of stages 2 and 3, evaluated in batches) and
  :mod:`~pymc_maxent.maxent.primal` (the problem as written, as a check);
- :mod:`~pymc_maxent.maxent.stages`: each stage a frozen solution, solved by the one Newton
  solver (:func:`pymc_maxent.numerics.newton`);
- :mod:`~pymc_maxent.maxent.result`: :class:`MaxEntResult`, the one fit of every tier, a
  :class:`~pymc_maxent.fit.Fit`;
- :mod:`~pymc_maxent.maxent.estimator`: :class:`MaxEntEstimator` (stage 1 over a model's
  containers), :func:`fit_maxent` (the stages a tier asks for), :func:`load_fit`;
- :mod:`~pymc_maxent.maxent.dask_backend`: the same over ``dask.array`` data (Dask is optional).
"""

from pymc_maxent.maxent.estimator import (
    SUPPORT_WIDTHS,
    MaxEntEstimator,
    Recipe,
    fit_maxent,
    load_fit,
    select_individual_support,
    split_within_individuals,
)
from pymc_maxent.maxent.moments import (
    AlternativeShares,
    AttributeSums,
    Constraint,
    CrossMoments,
    Moment,
    ResolvedMoment,
    Revenue,
    default_moments,
    twin_moments,
)
from pymc_maxent.maxent.options import ChunkOptions, SolverOptions, SupportOptions
from pymc_maxent.maxent.result import MaxEntResult
from pymc_maxent.maxent.supports import OriginWarning, SupportWarning, default_error_support

__all__ = [
    "SUPPORT_WIDTHS",
    "AlternativeShares",
    "AttributeSums",
    "ChunkOptions",
    "Constraint",
    "CrossMoments",
    "MaxEntEstimator",
    "MaxEntResult",
    "Moment",
    "OriginWarning",
    "Recipe",
    "ResolvedMoment",
    "Revenue",
    "SolverOptions",
    "SupportOptions",
    "SupportWarning",
    "default_error_support",
    "default_moments",
    "fit_maxent",
    "load_fit",
    "select_individual_support",
    "split_within_individuals",
    "twin_moments",
]
