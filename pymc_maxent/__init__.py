"""pymc-maxent: discrete-choice models in PyMC, and their maximum-entropy twin.

The public surface: the data (:class:`ChoiceData`, :func:`load_travel_mode`,
:func:`simulate_choices`), the specification (:class:`ModelSpec`, :class:`Coefficient`,
:func:`tier_table`), the estimators (:class:`ChoiceModel`; the functional core
:func:`build_model`, :func:`sample`, :func:`fit_maxent` and its moment families), the fits
(:class:`PosteriorFit`, :class:`MaxEntResult`: one :class:`~pymc_maxent.fit.Fit` surface), and
the :mod:`~pymc_maxent.diagnostics` and :mod:`~pymc_maxent.plots` that take any fit. Errors are
:class:`~pymc_maxent.exceptions.PymcMaxentError`\\ s.
"""

from pymc_maxent import diagnostics, plots
from pymc_maxent._version import __version__  # noqa: F401 (the package version)
from pymc_maxent.bayes import Coefficient, ModelSpec, PosteriorFit, build_model, sample, tier_table
from pymc_maxent.data import ChoiceData, load_travel_mode
from pymc_maxent.maxent import (
    AlternativeShares,
    AttributeSums,
    Constraint,
    CrossMoments,
    MaxEntResult,
    Revenue,
    fit_maxent,
)
from pymc_maxent.model import ChoiceModel
from pymc_maxent.simulate import simulate_choices

__all__ = [
    "AlternativeShares",
    "AttributeSums",
    "ChoiceData",
    "ChoiceModel",
    "Coefficient",
    "Constraint",
    "CrossMoments",
    "MaxEntResult",
    "ModelSpec",
    "PosteriorFit",
    "Revenue",
    "build_model",
    "diagnostics",
    "fit_maxent",
    "load_travel_mode",
    "plots",
    "sample",
    "simulate_choices",
    "tier_table",
]
