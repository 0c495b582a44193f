"""One surface for a fitted choice model, whichever estimator made it.

A :class:`Fit` is what :meth:`ChoiceModel.fit <pymc_maxent.ChoiceModel.fit>` returns: a
:class:`~pymc_maxent.PosteriorFit` (a PyMC posterior) or a :class:`~pymc_maxent.MaxEntResult`
(a MaxEnt fit). Every diagnostic, plot, the workflow and the report take a ``Fit`` and return
the same type for both; none of them asks which estimator made it.

The evaluator of ``p`` and ``∂p/∂x`` (:class:`~pymc_maxent.diagnostics.ChoiceEvaluator`) needs
two things of a fit: the graph of ``p`` over the data containers and the fit's parameters
(:class:`ProbabilityGraph`), and the parameter values to evaluate it at
(:class:`ParameterSamples`): posterior draws, draws of MaxEnt's asymptotic normal, or the
MaxEnt estimate with a step ``±h`` in each multiplier (the delta method).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.containers import ChoiceContainers


@dataclass(frozen=True)
class ProbabilityGraph:
    """The symbolic choice probabilities of a fit.

    Attributes
    ----------
    containers : ChoiceContainers
        The model's data containers that ``p`` and ``utility`` read.
    p, utility : TensorVariable
        ``p`` and ``U`` (situation × alternative) as graphs of the containers and ``parameters``.
    parameters : tuple of TensorVariable
        The inputs that :class:`ParameterSamples` gives values to.
    new_individual : TensorVariable, optional
        A parameter holding standard-normal deviations of individuals the fit has not seen
        (``new_individual × random_coefficient``): redrawn for each sample.
    situation : TensorVariable, optional
        A parameter holding situation-level deviations (``situation × situation_coefficient``):
        kept for the fitted situations (matched by label); the others get what
        ``new_situations`` says.
    new_situations : {"draw", "zero"}
        Situations the fit was not fitted on: fresh standard-normal deviations for each sample
        (a posterior's ``z_situation``), or none (MaxEnt's situation stage has no population
        distribution of its deviations to draw from).
    """

    containers: ChoiceContainers
    p: Any
    utility: Any
    parameters: tuple
    new_individual: Any = None
    situation: Any = None
    new_situations: str = "draw"


@dataclass(frozen=True)
class ParameterSamples:
    """Values of a fit's parameters at which ``p`` is evaluated.

    Attributes
    ----------
    values : tuple of ndarray
        One array per :attr:`ProbabilityGraph.parameters`, samples on the first axis.
    dims : tuple of str
        The sample dims (``("chain", "draw")``, or ``("delta",)`` for the delta method).
    coords : dict
        Their coordinates (their sizes multiply to the number of samples).
    weights : ndarray
        Weight of each sample in an average over samples.
    situations : list, optional
        Labels of the situations of the ``situation`` parameter's values.
    summarize : callable, optional
        Turns a statistic computed per sample into what the user sees (the delta method's
        ``estimate`` and ``se``); ``None`` keeps the samples.
    """

    values: tuple
    dims: tuple
    coords: dict
    weights: np.ndarray
    situations: list | None = None
    summarize: Callable[[xr.DataArray], xr.DataArray | xr.Dataset] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(np.prod([len(c) for c in self.coords.values()]))


@runtime_checkable
class Fit(Protocol):
    """What every fitted choice model offers (:class:`~pymc_maxent.PosteriorFit`,
    :class:`~pymc_maxent.MaxEntResult`).

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
    """

    model: pm.Model
    spec: Any
    data: ChoiceData
    estimator: str

    def estimates(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """One row per parameter (``alpha[air]``, ``beta[gc]``, ``mu[gc]``, ...): ``estimate``,
        ``sd``, ``lower``, ``upper``."""

    def parameter_draws(self, draws: int | None = None, random_seed=0) -> xr.Dataset:
        """Draws ``(chain, draw, ...)`` of the top-level parameters: the posterior, or draws from
        MaxEnt's asymptotic normal."""

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

    def evaluator(self, data: ChoiceData | None = None, **kwargs):
        """The fit's :class:`~pymc_maxent.diagnostics.ChoiceEvaluator`, compiled once and cached."""


class CachedEvaluator:
    """Mixin of the fits: :meth:`evaluator` compiles the evaluator once per setting and keeps it."""

    def evaluator(self, data: ChoiceData | None = None, **kwargs):
        """The fit's :class:`~pymc_maxent.diagnostics.ChoiceEvaluator` (compiled once per
        ``kwargs`` and cached), loaded with ``data`` (default: the fitted data).

        Parameters
        ----------
        data : ChoiceData, optional
        **kwargs
            ``draws``, ``robust``, ``random_seed``, ``max_bytes`` of the evaluator.
        """
        from pymc_maxent.diagnostics.probabilities import ChoiceEvaluator

        cache = self.__dict__.setdefault("_evaluators", {})
        key = tuple(sorted(kwargs.items()))
        if key not in cache:
            cache[key] = ChoiceEvaluator(self, **kwargs)
        return cache[key] if data is None else cache[key].with_data(data)
