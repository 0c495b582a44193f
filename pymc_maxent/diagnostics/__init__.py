"""What the fits say: information gain, effects and elasticities, counterfactual prices and
revenue, posterior against MaxEnt, and model selection. Each function takes a posterior
(a PyMC model and its DataTree) or a :class:`~pymc_maxent.MaxEntResult` alike."""

from pymc_maxent.diagnostics.comparison import compare_estimates
from pymc_maxent.diagnostics.selection import model_selection, parameter_count, split_by_individual

__all__ = ["compare_estimates", "model_selection", "parameter_count", "split_by_individual"]
