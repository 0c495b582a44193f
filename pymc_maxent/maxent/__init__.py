"""The Maximum-Entropy (GME) estimator: PyTensor graphs over the shared data containers.

Modules, in the order of the flow: :mod:`~pymc_maxent.maxent.supports` (supports, priors,
validation), :mod:`~pymc_maxent.maxent.features` (moment features of the data),
:mod:`~pymc_maxent.maxent.dual` (the concentrated dual, compiled once) and
:mod:`~pymc_maxent.maxent.primal` (the problem as written, as a check),
:mod:`~pymc_maxent.maxent.result` (estimates, diagnostics, prediction, DataTree) and
:mod:`~pymc_maxent.maxent.estimator` (:func:`fit_maxent`).
"""

from pymc_maxent.maxent.estimator import MaxEntEstimator, fit_maxent
from pymc_maxent.maxent.features import (
    AlternativeShares,
    AttributeSums,
    Constraint,
    CrossMoments,
    Moment,
    Revenue,
    default_moments,
)
from pymc_maxent.maxent.result import MaxEntResult
from pymc_maxent.maxent.supports import default_error_support

__all__ = [
    "AlternativeShares",
    "AttributeSums",
    "Constraint",
    "CrossMoments",
    "MaxEntEstimator",
    "MaxEntResult",
    "Moment",
    "Revenue",
    "default_error_support",
    "default_moments",
    "fit_maxent",
]
