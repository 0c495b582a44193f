"""The Bayesian tier ladder: specifications, model builders, sampling, prediction, posterior fits
and posterior modes to round-off (:func:`~pymc_maxent.bayes.point.map_estimate`)."""

from pymc_maxent.bayes.build import ChoiceGraph, build_model, choice_graph, define_choice_model
from pymc_maxent.bayes.priors import TOP_LEVEL_PARAMETERS
from pymc_maxent.specification import (
    TIERS,
    Coefficient,
    ModelSpec,
    Tier,
    as_spec,
    resolve,
    tier_spec,
    tier_table,
)

__all__ = [
    "TIERS",
    "TOP_LEVEL_PARAMETERS",
    "ChoiceGraph",
    "Coefficient",
    "ModelSpec",
    "Tier",
    "as_spec",
    "build_model",
    "choice_graph",
    "define_choice_model",
    "resolve",
    "tier_spec",
    "tier_table",
]

from pymc_maxent.bayes.predict import predict_choice_probabilities  # noqa: E402
from pymc_maxent.bayes.sample import individual_log_likelihood, sample  # noqa: E402

__all__ += ["individual_log_likelihood", "predict_choice_probabilities", "sample"]

from pymc_maxent.bayes.posterior import PosteriorFit  # noqa: E402

__all__ += ["PosteriorFit"]

from pymc_maxent.bayes.point import PointEstimate, map_estimate, ml_estimate  # noqa: E402

__all__ += ["PointEstimate", "map_estimate", "ml_estimate"]
