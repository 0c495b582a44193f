"""What the fits say: information gain, effects and elasticities, counterfactual prices and
revenue, one fit against another, and model selection. Each function takes any
:class:`~pymc_maxent.fit.Fit` (a :class:`~pymc_maxent.PosteriorFit` or a
:class:`~pymc_maxent.MaxEntResult`) through the same call and returns the same type for both:
statistics as a Dataset of ``estimate`` and ``sd`` (with the per-sample ``draws`` when the fit
has draws), tables as DataFrames."""

from pymc_maxent.diagnostics.comparison import compare_estimates
from pymc_maxent.diagnostics.counterfactuals import (
    PricingResult,
    change_attribute,
    choice_shares,
    expected_revenue,
    optimal_prices,
    revenue_curve,
)
from pymc_maxent.diagnostics.cross_validation import fold_splits, individual_folds
from pymc_maxent.diagnostics.effects import (
    aggregate_elasticities,
    elasticities,
    marginal_effects,
    point_elasticities,
    willingness_to_pay,
)
from pymc_maxent.diagnostics.individual_comparison import (
    KnownCoefficients,
    compare_individual_elasticities,
    compare_individual_statistics,
    compare_individual_wtp,
    compare_individuals,
)
from pymc_maxent.diagnostics.individual_information import (
    compare_individual_information,
    individual_information_gain,
)
from pymc_maxent.diagnostics.information import (
    choice_information_gain,
    compare_information,
    maxent_information,
    posterior_information_gain,
)
from pymc_maxent.diagnostics.selection import model_selection, split_by_individual
from pymc_maxent.evaluation import ChoiceEvaluator
from pymc_maxent.fit import choice_evaluator, fitted_probabilities

__all__ = [
    "ChoiceEvaluator",
    "PricingResult",
    "aggregate_elasticities",
    "change_attribute",
    "choice_evaluator",
    "choice_information_gain",
    "choice_shares",
    "compare_estimates",
    "compare_individual_elasticities",
    "compare_individual_information",
    "compare_individual_statistics",
    "compare_individual_wtp",
    "compare_individuals",
    "KnownCoefficients",
    "compare_information",
    "elasticities",
    "expected_revenue",
    "fold_splits",
    "fitted_probabilities",
    "individual_folds",
    "individual_information_gain",
    "marginal_effects",
    "maxent_information",
    "model_selection",
    "optimal_prices",
    "point_elasticities",
    "posterior_information_gain",
    "revenue_curve",
    "split_by_individual",
    "willingness_to_pay",
]
