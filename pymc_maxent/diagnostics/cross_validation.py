"""Exact cross-validation of a fit by refitting: K-fold grouped by individual, and exact refits of
the units where PSIS-LOO fails (``reloo``).

The refits go through :func:`arviz_stats.loo_kfold` and :func:`arviz_stats.reloo` with one
:class:`arviz_stats.SamplingWrapper` (:class:`Refits`) over the :class:`~pymc_maxent.fit.Fit`
protocol: ``refit_without`` refits without the held-out situations (a posterior by the same
model, priors and sampler settings with them removed from its likelihood, so that a held-out
individual's choices are scored at its deviations' prior draws, under the population
distribution; a MaxEnt fit by its recipe on the training situations, new individuals getting
the population fit), and the refit's ``predict`` scores them.

Units are individuals (on a cross-section, one situation each); the log score of a unit is the
log of its predictive probability of *all* its choices together, averaged over the fit's samples:
``log (1/S) Σ_s Π_t p_s(y_it)``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from arviz_stats import SamplingWrapper, loo_kfold, reloo

from pymc_maxent.arguments import require_count
from pymc_maxent.bayes.sample import INDIVIDUAL_LOG_LIKELIHOOD
from pymc_maxent.data.choice_data import INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.evaluation import as_unit_log_likelihood, unit_log_likelihood_array, units_of
from pymc_maxent.exceptions import ChoiceDataError


def individual_folds(data: ChoiceData, k: int = 10, seed: int = 0) -> np.ndarray:
    """Fold (``1 … k``) of each individual (in ``data.individuals`` order): the individuals in a
    random order dealt out in turn, so fold sizes differ by at most one.

    Examples
    --------
    >>> import numpy as np, pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import individual_folds
    >>> folds = individual_folds(pmx.load_travel_mode(), k=5, seed=1)
    >>> np.bincount(folds)[1:].tolist()
    [42, 42, 42, 42, 42]
    """
    k = require_count(k, "k", minimum=2)
    if k > data.n_individuals:
        raise ChoiceDataError(f"k={k} folds: need 2 <= k <= {data.n_individuals} (the individuals)")
    folds = np.empty(data.n_individuals, dtype=int)
    folds[np.random.default_rng(seed).permutation(data.n_individuals)] = np.arange(data.n_individuals) % k + 1
    return folds


def fold_splits(data: ChoiceData, folds: np.ndarray):
    """``(train, test)`` per fold, whole individuals on one side: the test data of fold ``f`` are
    the situations of the individuals with ``folds == f``."""
    of_situation = np.asarray(folds)[data.individual]
    for fold in np.unique(folds):
        test = of_situation == fold
        yield data.subset(~test), data.subset(test)


def unit_level(data: ChoiceData) -> str:
    """``"individual"`` when some individual has several situations, else ``"situation"``."""
    return INDIVIDUAL if data.n_individuals < data.n_situations else SITUATION


class Refits(SamplingWrapper):
    """:class:`arviz_stats.SamplingWrapper` of any :class:`~pymc_maxent.fit.Fit`: each refit is
    ``fit.refit_without(held_out)`` (the same model and settings without the held-out situations),
    and the held-out units are scored by the refit's ``predict`` of their situations, per sample
    of the refit (a posterior's draws; a MaxEnt fit's estimate)."""

    def __init__(self, fit, level: str, *, random_seed=0, sample_kwargs=None):
        log_lik = fit.pointwise_log_likelihood(level)
        var = INDIVIDUAL_LOG_LIKELIHOOD if level == INDIVIDUAL else "chosen"
        super().__init__(model=None,
                         idata_orig=xr.DataTree.from_dict({"log_likelihood": xr.Dataset({var: log_lik})}))
        self.fit, self.data, self.level = fit, fit.data, level
        self.units = units_of(self.data, level)
        self.labels = self.data.individuals if level == INDIVIDUAL else self.data.situations
        self.random_seed, self.sample_kwargs = random_seed, dict(sample_kwargs or {})
        self.n_refits = self.divergences = 0
        self.seeds = []
        self.refit_settings: dict = {}

    def sel_observations(self, idx):
        idx = np.atleast_1d(np.asarray(idx, dtype=int))
        return np.isin(self.units, idx), idx

    def get_inference_data(self, fitted_model):
        return fitted_model

    def sample(self, modified_observed_data):
        seed = int(np.random.default_rng([self.random_seed, self.n_refits]).integers(2**31))
        self.seeds.append(seed)
        refit = self.fit.refit_without(modified_observed_data, random_seed=seed,
                                       sample_kwargs=self.sample_kwargs)
        self.n_refits += 1
        self.divergences += int(refit.convergence().get("divergences", 0))
        self.refit_settings = dict(refit.sample_kwargs)
        return refit

    def log_likelihood__i(self, excluded_obs, idata__i):
        held_out = np.isin(self.units, excluded_obs)
        test = self.data.subset(held_out)
        p = idata__i.predict(test)  # (chain, draw, situation, alternative): known individuals keep theirs
        values = p.values.reshape(-1, *p.shape[2:])
        ll = unit_log_likelihood_array(values, test, self.units[held_out], len(self.labels))[:, excluded_obs]
        coords = {"chain": p["chain"].values, "draw": p["draw"].values}
        return as_unit_log_likelihood(ll, ("chain", "draw"), coords, self.level, self.labels[excluded_obs])


def kfold(wrapper: Refits, folds: np.ndarray):
    """K-fold cross-validation of the wrapped fit (:func:`arviz_stats.loo_kfold`, pointwise), the
    folds given per individual (:func:`individual_folds`)."""
    data, level = wrapper.data, wrapper.level
    per_unit = np.asarray(folds) if level == INDIVIDUAL else np.asarray(folds)[data.individual]
    var = INDIVIDUAL_LOG_LIKELIHOOD if level == INDIVIDUAL else "chosen"
    return loo_kfold(wrapper.idata_orig, wrapper, var_name=var, folds=per_unit, pointwise=True)


def exact_refits(wrapper: Refits, loo, k_threshold: float):
    """PSIS-LOO ``loo`` with each unit whose Pareto k exceeds ``k_threshold`` replaced by an exact
    refit without it (:func:`arviz_stats.reloo`)."""
    var = INDIVIDUAL_LOG_LIKELIHOOD if wrapper.level == INDIVIDUAL else "chosen"
    return reloo(wrapper, loo_orig=loo, var_name=var, k_threshold=k_threshold, pointwise=True)
