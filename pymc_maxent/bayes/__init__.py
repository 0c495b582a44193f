"""The Bayesian tier ladder: specifications, model builders, sampling and prediction."""

from pymc_maxent.bayes.build import build_model, define_choice_model
from pymc_maxent.bayes.specification import (
    TIERS,
    Coefficient,
    ModelSpec,
    resolve,
    tier_spec,
    tier_table,
)

__all__ = [
    "TIERS",
    "Coefficient",
    "ModelSpec",
    "build_model",
    "define_choice_model",
    "resolve",
    "tier_spec",
    "tier_table",
]

from pymc_maxent.bayes.predict import predict_choice_probabilities  # noqa: E402
from pymc_maxent.bayes.sample import individual_log_likelihood, sample  # noqa: E402

__all__ += ["individual_log_likelihood", "predict_choice_probabilities", "sample"]
