"""Exact cross-validation of a fit by refitting: K-fold grouped by individual, and exact refits of
the units where PSIS-LOO fails (``reloo``).

The refits go through :func:`arviz_stats.loo_kfold` and :func:`arviz_stats.reloo` with a
:class:`arviz_stats.SamplingWrapper` per kind of fit:

* a posterior (:class:`~pymc_maxent.PosteriorFit`) is refitted by the same model, priors and sampler
  settings with the held-out situations removed from its likelihood
  (:meth:`~pymc_maxent.PosteriorFit.posterior_without`); a held-out individual's choices are then
  scored at its deviations' prior draws, i.e. under the population distribution;
* a MaxEnt fit is refitted to the training situations (``fit.refit``) and scores the held-out ones
  with :meth:`predict` (new individuals: the population fit).

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
from pymc_maxent.exceptions import ChoiceDataError, SpecificationError


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


def _units(data: ChoiceData, level: str) -> np.ndarray:
    """Each situation's unit (position among ``data.individuals``, or its own position)."""
    return np.asarray(data.individual) if level == INDIVIDUAL else np.arange(data.n_situations)


def _unit_log_likelihood(p: np.ndarray, data: ChoiceData, units: np.ndarray, n_units: int) -> np.ndarray:
    """``Σ_{t ∈ unit} log p_s(y_t)`` (sample, unit) from ``p`` (sample, situation, alternative)."""
    with np.errstate(divide="ignore"):
        log_p = np.log(p[:, np.arange(data.n_situations), data.chosen])
    out = np.zeros((p.shape[0], n_units))
    np.add.at(out, (slice(None), units), log_p)
    return out


def _as_log_likelihood(values: np.ndarray, dims, coords, level: str, labels) -> xr.DataArray:
    """(sample, unit) values as (``dims``..., unit) with the unit labels."""
    shape = tuple(len(coords[d]) for d in dims)
    return xr.DataArray(values.reshape(*shape, values.shape[-1]), dims=(*dims, level),
                        coords={**{d: coords[d] for d in dims}, level: list(labels)})


class _Refits(SamplingWrapper):
    """What both wrappers share: the units, the fold count, the refits' health."""

    def __init__(self, fit, idata, level: str):
        super().__init__(model=None, idata_orig=idata)
        self.fit, self.data, self.level = fit, fit.data, level
        self.units = _units(self.data, level)
        self.labels = self.data.individuals if level == INDIVIDUAL else self.data.situations
        self.n_refits = 0
        self.divergences = 0

    def sel_observations(self, idx):
        idx = np.atleast_1d(np.asarray(idx, dtype=int))
        return np.isin(self.units, idx), idx

    def get_inference_data(self, fitted_model):
        return fitted_model


class PosteriorRefits(_Refits):
    """:class:`arviz_stats.SamplingWrapper` of a :class:`~pymc_maxent.PosteriorFit`: refits with
    the held-out situations out of the likelihood (one sampling run each; nutpie compiles once)."""

    def __init__(self, fit, level: str, *, random_seed=0, **sample_kwargs):
        super().__init__(fit, fit.idata, level)
        self.random_seed = random_seed
        self.sample_kwargs = sample_kwargs
        self.seeds = []
        self._evaluator = fit.evaluator()

    def sample(self, modified_observed_data):
        seed = int(np.random.default_rng([self.random_seed, self.n_refits]).integers(2**31))
        self.seeds.append(seed)
        refit = self.fit.posterior_without(modified_observed_data, random_seed=seed, **self.sample_kwargs)
        self.n_refits += 1
        stats = refit.idata["sample_stats"] if "sample_stats" in refit.idata.children else {}
        self.divergences += int(stats["diverging"].sum()) if "diverging" in stats else 0
        return refit

    def log_likelihood__i(self, excluded_obs, idata__i):
        samples = idata__i.parameter_samples()
        p = self._evaluator.with_samples(samples).evaluate()
        ll = _unit_log_likelihood(p, self.data, self.units, len(self.labels))[:, excluded_obs]
        return _as_log_likelihood(ll, samples.dims, samples.coords, self.level, self.labels[excluded_obs])


class MaxEntRefits(_Refits):
    """:class:`arviz_stats.SamplingWrapper` of a MaxEnt fit: ``fit.refit`` on the training
    situations, the held-out ones scored at the refit's estimate (new individuals: the population)."""

    def __init__(self, fit, level: str):
        data = fit.data
        units = _units(data, level)
        labels = data.individuals if level == INDIVIDUAL else data.situations
        ll = _unit_log_likelihood(fitted_probabilities(fit)[None], data, units, len(labels))
        var = INDIVIDUAL_LOG_LIKELIHOOD if level == INDIVIDUAL else "chosen"
        coords = {"chain": [0], "draw": [0]}
        tree = xr.DataTree.from_dict({"log_likelihood": xr.Dataset(
            {var: _as_log_likelihood(ll, ("chain", "draw"), coords, level, labels)})})
        super().__init__(fit, tree, level)

    def sample(self, modified_observed_data):
        self.n_refits += 1
        return self.fit.refit(self.data.subset(~modified_observed_data))

    def log_likelihood__i(self, excluded_obs, idata__i):
        held_out = np.isin(self.units, excluded_obs)
        test = self.data.subset(held_out)
        p = idata__i.predict(test).mean(("chain", "draw")).to_numpy()  # at the estimate
        units = self.units[held_out]
        ll = _unit_log_likelihood(p[None], test, units, len(self.labels))[:, excluded_obs]
        return _as_log_likelihood(ll, ("chain", "draw"), {"chain": [0], "draw": [0]}, self.level,
                                  self.labels[excluded_obs])


def fitted_probabilities(fit, data: ChoiceData | None = None) -> np.ndarray:
    """Mean choice probabilities (situation, alternative) over the fit's samples: the posterior
    mean of ``p``, or ``p`` at the MaxEnt estimate."""
    ev = fit.evaluator() if data is None else fit.evaluator(data)
    return np.tensordot(ev.weights, ev.evaluate(), axes=1)


def refits_of(fit, level: str, *, random_seed=0, sample_kwargs=None) -> _Refits:
    """The :class:`arviz_stats.SamplingWrapper` that refits ``fit``: a posterior's, or a MaxEnt
    fit's (anything with ``refit(data)``)."""
    if hasattr(fit, "posterior_without"):
        return PosteriorRefits(fit, level, random_seed=random_seed, **(sample_kwargs or {}))
    if hasattr(fit, "refit"):
        return MaxEntRefits(fit, level)
    raise SpecificationError(f"a {type(fit).__name__} cannot be refitted for cross-validation")


def kfold(wrapper: _Refits, folds: np.ndarray):
    """K-fold cross-validation of the wrapped fit (:func:`arviz_stats.loo_kfold`, pointwise), the
    folds given per individual (:func:`individual_folds`)."""
    data, level = wrapper.data, wrapper.level
    per_unit = np.asarray(folds) if level == INDIVIDUAL else np.asarray(folds)[data.individual]
    var = INDIVIDUAL_LOG_LIKELIHOOD if level == INDIVIDUAL else "chosen"
    return loo_kfold(wrapper.idata_orig, wrapper, var_name=var, folds=per_unit, pointwise=True)


def exact_refits(wrapper: _Refits, loo, k_threshold: float):
    """PSIS-LOO ``loo`` with each unit whose Pareto k exceeds ``k_threshold`` replaced by an exact
    refit without it (:func:`arviz_stats.reloo`)."""
    var = INDIVIDUAL_LOG_LIKELIHOOD if wrapper.level == INDIVIDUAL else "chosen"
    return reloo(wrapper, loo_orig=loo, var_name=var, k_threshold=k_threshold, pointwise=True)
