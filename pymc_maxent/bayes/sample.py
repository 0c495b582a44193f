"""Sampling with the log-likelihood the model comparisons need."""

from __future__ import annotations

import pymc as pm
import xarray as xr

from pymc_maxent.data.choice_data import INDIVIDUAL, SITUATION

INDIVIDUAL_LOG_LIKELIHOOD = "chosen_by_individual"


def sample(model: pm.Model, **kwargs):
    """``pm.sample`` that records the pointwise log-likelihood (per situation, and for
    panel data per individual as ``chosen_by_individual``).

    Keyword arguments go to :func:`pymc.sample`.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> model = pmx.build_model(pmx.load_travel_mode(), "MNL-2")
    >>> idata = pmx.sample(model, draws=20, tune=20, chains=1, progressbar=False,
    ...                    nuts_sampler="pymc", compute_convergence_checks=False)
    >>> idata["log_likelihood"]["chosen"].dims
    ('chain', 'draw', 'situation')
    """
    kwargs["idata_kwargs"] = {"log_likelihood": True} | kwargs.get("idata_kwargs", {})
    with model:
        idata = pm.sample(**kwargs)
    add_individual_log_likelihood(idata, model.coords[INDIVIDUAL])
    return idata


def individual_log_likelihood(idata, individuals) -> xr.DataArray:
    """Log-likelihood per individual: the sum over each individual's situations.

    ``individuals`` are the labels (``model.coords["individual"]``).
    """
    log_lik = idata["log_likelihood"]["chosen"]
    index = idata["constant_data"]["individual_index"].rename("individual_index")
    summed = log_lik.groupby(index).sum(SITUATION).rename(individual_index=INDIVIDUAL)
    labels = list(individuals)
    return summed.assign_coords({INDIVIDUAL: [labels[i] for i in summed[INDIVIDUAL].values]})


def add_individual_log_likelihood(idata, individuals) -> None:
    """Add ``chosen_by_individual`` to the log-likelihood group of panel data, for
    leave-one-individual-out (``az.loo(idata, var_name="chosen_by_individual")``)."""
    if len(individuals) < idata["log_likelihood"]["chosen"].sizes[SITUATION]:
        idata["log_likelihood"][INDIVIDUAL_LOG_LIKELIHOOD] = individual_log_likelihood(
            idata, individuals
        )
