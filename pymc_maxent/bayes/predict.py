"""Out-of-sample choice probabilities of a model and its posterior draws."""

from __future__ import annotations

import pymc as pm
import xarray as xr

from pymc_maxent.bayes.posterior import PosteriorFit
from pymc_maxent.data.choice_data import ChoiceData


def predict_choice_probabilities(
    model: pm.Model, idata, data: ChoiceData, *, random_seed=None
) -> xr.DataArray:
    """Posterior choice probabilities for the situations of ``data``:
    :meth:`PosteriorFit.predict <pymc_maxent.PosteriorFit.predict>` of ``model`` and ``idata``.

    Known individuals keep their own coefficients; individuals absent from the fitted data,
    and situation-level deviations (``MXL-4``), get a fresh draw from the population
    distribution at every posterior draw, so averaging over draws integrates over it.
    The model's containers and coords are left exactly as they were.

    Returns
    -------
    DataArray
        ``(chain, draw, situation, alternative)``.

    Examples
    --------
    >>> import pymc as pm, pymc_maxent as pmx
    >>> from pymc_maxent.bayes.predict import predict_choice_probabilities
    >>> data = pmx.load_travel_mode()
    >>> model = pmx.build_model(data, "MNL-2")
    >>> with model:
    ...     idata = pm.sample(20, tune=20, chains=1, progressbar=False, random_seed=1,
    ...                       nuts_sampler="pymc", compute_convergence_checks=False)
    >>> predict_choice_probabilities(model, idata, data.subset(slice(0, 3))).dims
    ('chain', 'draw', 'situation', 'alternative')
    """
    return PosteriorFit(model, idata).predict(data, random_seed=random_seed)
