"""Out-of-sample choice probabilities through the models' data containers."""

from __future__ import annotations

import pymc as pm
import xarray as xr

from pymc_maxent.bayes.build import choice_graph
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.containers import restored_containers, set_choice_data
from pymc_maxent.exceptions import SpecificationError


def predict_choice_probabilities(
    model: pm.Model, idata, data: ChoiceData, *, random_seed=None
) -> xr.DataArray:
    """Posterior choice probabilities for the situations of ``data``.

    Swaps ``data`` into the model's containers (:func:`~pymc_maxent.set_choice_data`, i.e.
    ``pm.set_data``) and evaluates the deterministic ``p`` over the posterior draws.
    Known individuals keep their own coefficients; individuals absent from the fitted
    data, and situation-level deviations (``MXL-4``), get a fresh draw from the population
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
    graph = choice_graph(model)
    if model.named_vars.get("p") is not graph.p:
        raise SpecificationError("the model was built with store_probabilities=False; rebuild it with True")
    # latent draws tied to the fitted individuals and situations: redrawn for the new data
    redrawn = [v.name for v in (graph.new_individual, graph.situation, graph.p) if v is not None]
    posterior = idata["posterior"]
    posterior = posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior
    posterior = posterior.drop_vars([v for v in redrawn if v in posterior])
    with restored_containers(model), model:
        set_choice_data(data)
        pp = pm.sample_posterior_predictive(
            posterior, var_names=["p"], random_seed=random_seed, progressbar=False
        )
    return pp["posterior_predictive"]["p"]
