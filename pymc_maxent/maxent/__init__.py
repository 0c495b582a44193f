"""The Maximum-Entropy (GME) estimator: PyTensor graphs over the shared data containers.

Modules, in the order of the flow: :mod:`~pymc_maxent.maxent.supports` (supports, priors,
validation), :mod:`~pymc_maxent.maxent.features` (moments, resolved per data set into feature
graphs), :mod:`~pymc_maxent.maxent.dual` (the concentrated dual, compiled once, and
:func:`~pymc_maxent.maxent.dual.solve_dual`, the solver it shares with the Dask dual of
:mod:`~pymc_maxent.maxent.distributed`) and :mod:`~pymc_maxent.maxent.primal` (the problem as
written, as a check), :mod:`~pymc_maxent.maxent.covariance` (scale-invariant covariance and
the identification check), :mod:`~pymc_maxent.maxent.estimates` and
:mod:`~pymc_maxent.maxent.result` (estimates, diagnostics, prediction, DataTree: a
:class:`~pymc_maxent.fit.Fit`), :mod:`~pymc_maxent.maxent.delta` (the delta method) and
:mod:`~pymc_maxent.maxent.estimator` (:func:`fit_maxent`); for the mixed tiers,
:mod:`~pymc_maxent.maxent.mixed` (the two stages), :mod:`~pymc_maxent.maxent.individual` (the
individual GCE duals, solved together) and :mod:`~pymc_maxent.maxent.individual_result`; at
``MXL-4``, :mod:`~pymc_maxent.maxent.situation_result` (the third, situation-level stage); over
Dask, :mod:`~pymc_maxent.maxent.distributed_individual` (stage 2 by blocks of individuals).
"""

from pymc_maxent.maxent.estimator import MaxEntEstimator, fit_maxent
from pymc_maxent.maxent.features import (
    AlternativeShares,
    AttributeSums,
    Constraint,
    CrossMoments,
    Moment,
    ResolvedMoment,
    Revenue,
    default_moments,
)
from pymc_maxent.maxent.individual_result import IndividualMaxEntResult
from pymc_maxent.maxent.mixed import select_individual_support, split_within_individuals
from pymc_maxent.maxent.result import MaxEntResult
from pymc_maxent.maxent.situation_result import SituationMaxEntResult
from pymc_maxent.maxent.supports import OriginWarning, default_error_support

__all__ = [
    "AlternativeShares",
    "AttributeSums",
    "Constraint",
    "IndividualMaxEntResult",
    "CrossMoments",
    "MaxEntEstimator",
    "MaxEntResult",
    "Moment",
    "OriginWarning",
    "ResolvedMoment",
    "Revenue",
    "SituationMaxEntResult",
    "default_error_support",
    "default_moments",
    "fit_maxent",
    "select_individual_support",
    "split_within_individuals",
]
