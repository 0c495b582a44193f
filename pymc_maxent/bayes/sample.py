"""Sampling with the log-likelihood the model comparisons need."""

from __future__ import annotations

import contextlib
import weakref

import numpy as np
import nutpie
import pymc as pm
import xarray as xr

from pymc_maxent.arguments import require_count
from pymc_maxent.bayes import geometry
from pymc_maxent.bayes.likelihood import register_jax
from pymc_maxent.data.choice_data import INDIVIDUAL, SITUATION
from pymc_maxent.data.containers import require_observed_choices

#: nutpie's compiled model of each PyMC model sampled with nutpie by :func:`pymc_maxent.sample`.
_COMPILED = weakref.WeakKeyDictionary()
INDIVIDUAL_LOG_LIKELIHOOD = "chosen_by_individual"
#: The NUTS implementation of :func:`sample` (see ``docs/performance.md`` for why).
DEFAULT_SAMPLER = "nutpie"
#: Tuning steps per chain of :func:`sample`: nutpie's adaptation settles well before PyMC's
#: 1000 on benchmark B1 (``docs/performance.md``: R-hat and ESS of every μ, σ at 500).
DEFAULT_TUNE = 500


def sample(model: pm.Model, *, nuts_sampler: str = DEFAULT_SAMPLER, tune: int = DEFAULT_TUNE, **kwargs):
    """``pm.sample`` that records the pointwise log-likelihood (per situation, and for
    panel data per individual as ``chosen_by_individual``).

    Parameters
    ----------
    model : pm.Model
    nuts_sampler : {"nutpie", "pymc", "numpyro", "blackjax"}
        The NUTS implementation. The default, nutpie (compiled with numba), was the fastest
        on the mixed-logit benchmark B1 (``docs/performance.md``); ``"pymc"`` is PyMC's own
        NUTS (C backend); ``"numpyro"`` and ``"blackjax"`` run through JAX, on a GPU where
        JAX sees one (pass ``nuts={"chain_method": "vectorized"}`` for several chains on
        one device).
    tune : int
        Tuning steps per chain (:data:`DEFAULT_TUNE`).
    **kwargs
        Passed to :func:`pymc.sample`. ``idata_kwargs={"log_likelihood": False}`` skips
        the log-likelihood.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> model = pmx.build_model(pmx.load_travel_mode(), "MNL-2")
    >>> idata = pmx.sample(model, draws=20, tune=20, chains=1, progressbar=False,
    ...                    nuts_sampler="pymc", compute_convergence_checks=False)
    >>> idata["log_likelihood"]["chosen"].dims
    ('chain', 'draw', 'situation')
    """
    require_observed_choices(model, "sampling the posterior")
    tune = require_count(tune, "tune", minimum=0)
    for name, minimum in (("draws", 1), ("chains", 1), ("cores", 1)):
        if name in kwargs:
            kwargs[name] = require_count(kwargs[name], name, minimum=minimum)
    if nuts_sampler in ("numpyro", "blackjax"):
        register_jax()
        geometry.register_jax()
    idata_kwargs = dict(kwargs.pop("idata_kwargs", None) or {})
    log_likelihood = idata_kwargs.pop("log_likelihood", True)
    with model, _keeping_nutpie_compilation(model, nuts_sampler):
        idata = pm.sample(nuts_sampler=nuts_sampler, tune=tune, idata_kwargs=idata_kwargs or None, **kwargs)
        if log_likelihood:
            # the same pointwise log-likelihood whatever the sampler (PyMC deprecates asking
            # the samplers for it)
            pm.compute_log_likelihood(idata, var_names=["chosen"], extend_inferencedata=True,
                                      progressbar=False)
    if log_likelihood:
        add_individual_log_likelihood(idata, model.coords[INDIVIDUAL],
                                      model["individual_index"].get_value())
    return idata


@contextlib.contextmanager
def _keeping_nutpie_compilation(model: pm.Model, nuts_sampler: str):
    """Keep nutpie's compiled ``model`` (:func:`compiled_nutpie_model`):
    cross-validation refits then sample without compiling again."""
    if nuts_sampler != "nutpie":
        yield
        return
    compile_pymc_model = nutpie.compile_pymc_model

    def compile_and_keep(compiled_model, *args, **kwargs):
        compiled = compile_pymc_model(compiled_model, *args, **kwargs)
        if compiled_model is model and not kwargs.get("var_names"):
            keep_compiled(model, compiled)
        return compiled

    nutpie.compile_pymc_model = compile_and_keep
    try:
        yield
    finally:
        nutpie.compile_pymc_model = compile_pymc_model


def keep_compiled(model: pm.Model, compiled) -> None:
    """Remember nutpie's compiled ``model`` for later refits."""
    _COMPILED[model] = compiled


def compiled_nutpie_model(model: pm.Model):
    """nutpie's compiled ``model``: the one kept by :func:`pymc_maxent.sample`, else compiled now
    (with the numba backend) and kept."""
    if model not in _COMPILED:
        _COMPILED[model] = nutpie.compile_pymc_model(model, backend="numba")
    return _COMPILED[model]


def individual_log_likelihood(idata, individuals, index=None) -> xr.DataArray:
    """Log-likelihood per individual: the sum over each individual's situations.

    ``individuals`` are the labels (``model.coords["individual"]``); ``index`` the
    situations' positions among them (default: the ``individual_index`` constant data).
    """
    log_lik = idata["log_likelihood"]["chosen"]
    if index is None:
        index = idata["constant_data"]["individual_index"]
    index = xr.DataArray(np.asarray(index), dims=SITUATION, coords={SITUATION: log_lik[SITUATION].values},
                         name="individual_index")
    summed = log_lik.groupby(index).sum(SITUATION).rename(individual_index=INDIVIDUAL)
    labels = list(individuals)
    return summed.assign_coords({INDIVIDUAL: [labels[i] for i in summed[INDIVIDUAL].values]})


def add_individual_log_likelihood(idata, individuals, index=None) -> None:
    """Add ``chosen_by_individual`` to the log-likelihood group of panel data, for
    leave-one-individual-out (``az.loo(idata, var_name="chosen_by_individual")``)."""
    if len(individuals) < idata["log_likelihood"]["chosen"].sizes[SITUATION]:
        idata["log_likelihood"][INDIVIDUAL_LOG_LIKELIHOOD] = individual_log_likelihood(
            idata, individuals, index
        )
