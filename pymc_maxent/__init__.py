"""pymc-maxent: discrete-choice models in PyMC, and their maximum-entropy twin."""

from pymc_maxent.bayes import (
    TIERS,
    Coefficient,
    ModelSpec,
    build_model,
    individual_log_likelihood,
    predict_choice_probabilities,
    sample,
    tier_spec,
    tier_table,
)
from pymc_maxent.data import ChoiceData, load_travel_mode, travel_mode_frame
from pymc_maxent.data.containers import register_choice_data, set_choice_data
from pymc_maxent.data.simulate import simulate_choices
from pymc_maxent.exceptions import ChoiceDataError, ConvergenceWarning, MaxEntError
from pymc_maxent.maxent import (
    AlternativeShares,
    AttributeSums,
    Constraint,
    CrossMoments,
    MaxEntEstimator,
    MaxEntResult,
    Revenue,
    fit_maxent,
)

__all__ = [
    "TIERS",
    "AlternativeShares",
    "AttributeSums",
    "Constraint",
    "ConvergenceWarning",
    "CrossMoments",
    "MaxEntError",
    "MaxEntEstimator",
    "MaxEntResult",
    "Revenue",
    "fit_maxent",
    "ChoiceData",
    "ChoiceDataError",
    "Coefficient",
    "ModelSpec",
    "build_model",
    "individual_log_likelihood",
    "load_travel_mode",
    "predict_choice_probabilities",
    "sample",
    "register_choice_data",
    "set_choice_data",
    "simulate_choices",
    "tier_spec",
    "tier_table",
    "travel_mode_frame",
]
__version__ = "0.1.0"
