"""One surface for a fitted choice model, whichever estimator made it.

A :class:`Fit` is what :meth:`ChoiceModel.fit <pymc_maxent.ChoiceModel.fit>` returns: a
:class:`~pymc_maxent.PosteriorFit` (a PyMC posterior, or a MAP as a one-draw posterior) or a
:class:`~pymc_maxent.MaxEntResult` (a MaxEnt fit at any tier). Every diagnostic, plot, the
workflow and the report take a ``Fit`` and return the same type for both; none of them asks
which estimator made it, and none calls a method the protocol does not list.

The evaluator of ``p`` and ``∂p/∂x`` (:class:`~pymc_maxent.evaluation.ChoiceEvaluator`) needs
two things of a fit: the graph of ``p`` over the data containers and the fit's parameters
(:class:`~pymc_maxent.evaluation.ProbabilityGraph`), and the parameter values to evaluate it at
(:class:`~pymc_maxent.evaluation.ParameterSamples`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.evaluation import ChoiceEvaluator, ParameterSamples, ProbabilityGraph
from pymc_maxent.exceptions import SpecificationError


@runtime_checkable
class Fit(Protocol):
    """What every fitted choice model offers (:class:`~pymc_maxent.PosteriorFit`,
    :class:`~pymc_maxent.MaxEntResult`): everything the diagnostics, plots, workflow and report
    call.

    Attributes
    ----------
    model : pm.Model
        The PyMC model whose data containers the fit reads (``pm.set_data`` moves them).
    spec : object
        What was fitted: a :class:`~pymc_maxent.ModelSpec`, or the MaxEnt moments.
    data : ChoiceData
        The fitted data.
    estimator : {"bayes", "maxent"}
        A label for tables; diagnostics never branch on it.
    sample_kwargs : dict
        The sampler settings a refit reuses (empty for a MaxEnt fit).
    """

    model: pm.Model
    spec: Any
    data: ChoiceData
    estimator: str
    sample_kwargs: dict

    def estimates(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """One row per parameter (``alpha[air]``, ``beta[gc]``, ``mu[gc]``, ...): ``estimate``,
        ``sd``, ``lower``, ``upper``."""

    def parameter_draws(self, draws: int | None = None, random_seed=0) -> xr.Dataset:
        """Draws ``(chain, draw, ...)`` of the top-level parameters: the posterior (all of them, or
        ``draws`` per chain), or ``draws`` draws (default 1000) from MaxEnt's asymptotic normal."""

    def predict(self, new_data: ChoiceData | None = None, *, random_seed=None) -> xr.DataArray:
        """Choice probabilities ``(chain, draw, situation, alternative)``; the containers are
        left as they were."""

    def to_datatree(self) -> xr.DataTree:
        """The fit as a DataTree with the Bayesian models' dims and coords."""

    def probability_graph(self) -> ProbabilityGraph:
        """The graph of ``p`` over the containers and the fit's parameters."""

    def parameter_samples(self, *, draws: int | None = None, robust: bool = False,
                          random_seed=0) -> ParameterSamples:
        """Parameter values to evaluate ``p`` at."""

    def evaluator(self, data: ChoiceData | None = None, **kwargs) -> ChoiceEvaluator:
        """The fit's :class:`~pymc_maxent.evaluation.ChoiceEvaluator`, compiled once and cached."""

    def individual_estimates(self) -> xr.Dataset:
        """``β_i`` (``estimate``, ``sd``; individual × random_coefficient); a
        :class:`~pymc_maxent.exceptions.SpecificationError` for a fit without them."""

    def individual_coefficient_draws(self, *, population_draws: int = 0, random_seed=0) -> xr.Dataset | None:
        """Draws of the individuals' random components (``theta``), or None for a fit without
        such draws (MaxEnt)."""

    def refit_without(self, held_out: np.ndarray, *, random_seed=None, sample_kwargs=None) -> Fit:
        """The same model and settings fitted without the situations ``held_out`` (a boolean mask
        over the fitted ones): cross-validation's refits."""

    def loo(self):
        """``(PSIS-LOO, level)`` of a posterior, or None for a fit without draws."""

    def lppd(self) -> float:
        """In-sample log pointwise predictive density (MaxEnt: the log-likelihood at the estimate)."""

    def parameter_count(self) -> dict[str, int]:
        """``{"parameters": population level, "latent": individual and situation level}``."""

    def prior_probabilities(self, draws: int = 500, random_seed=0) -> np.ndarray:
        """The prior's choice probabilities (situation, alternative) of the fitted data."""

    def convergence(self) -> dict:
        """The estimator's health as plain numbers."""


def choice_evaluator(fit, data: ChoiceData | None = None, **kwargs) -> ChoiceEvaluator:
    """The evaluator of ``fit`` (passed through when it is one already, loaded with ``data``
    when given): the fit's cached :meth:`Fit.evaluator`.

    Raises
    ------
    SpecificationError
        Anything but a :class:`Fit` or an evaluator.
    """
    if isinstance(fit, ChoiceEvaluator):
        return fit if data is None else fit.with_data(data)
    if not isinstance(fit, Fit):
        raise SpecificationError(f"expected a fit (PosteriorFit, MaxEntResult) or a ChoiceEvaluator; got "
                                 f"{type(fit).__name__}: wrap a PyMC model and its posterior as "
                                 "pmx.PosteriorFit(model, idata)")
    return fit.evaluator(data, **kwargs)


def fitted_probabilities(fit, data: ChoiceData | None = None) -> np.ndarray:
    """Mean choice probabilities (situation, alternative) over the fit's samples: the posterior
    mean of ``p``, or ``p`` at the MaxEnt estimate."""
    ev = fit.evaluator() if data is None else fit.evaluator(data)
    return np.tensordot(ev.weights, ev.evaluate(), axes=1)
