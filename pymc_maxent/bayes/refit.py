"""Refitting a posterior without some situations, for exact cross-validation.

A situation whose only available alternative is the one chosen adds nothing to the likelihood
(``ℓ = U_y − log exp U_y = 0``, and a zero gradient). Held-out situations are removed that way:
the model keeps its shapes, its priors (scaled to the full data) and, with nutpie, its compiled
sampler, so a refit costs one sampling run. An individual whose situations are all held out keeps
its deviations ``z_i``, which are then drawn from their prior: evaluated at those draws, its
choices are scored under the population distribution, as a new individual's would be.
"""

from __future__ import annotations

import time

import numpy as np
import pymc as pm
import xarray as xr

from pymc_maxent.bayes.sample import DEFAULT_SAMPLER, DEFAULT_TUNE, compiled_nutpie_model
from pymc_maxent.data.containers import restored_containers

#: ``pm.sample`` settings that nutpie takes under another name, or not at all.
_PM_ONLY = {"progressbar", "progressbar_theme", "quiet", "compute_convergence_checks", "idata_kwargs",
            "nuts_sampler", "random_seed", "return_inferencedata", "discard_tuned_samples", "model",
            "blas_cores", "mp_ctx", "keep_warning_stat"}


def held_out_availability(available: np.ndarray, chosen: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """``available`` with the held-out situations' chosen alternative as their only one."""
    out = np.array(available, dtype=bool, copy=True)
    rows = np.flatnonzero(held_out)
    out[rows] = False
    out[rows, np.asarray(chosen)[rows]] = True
    return out


def sample_without(model: pm.Model, held_out: np.ndarray, *, random_seed=None,
                   **sample_kwargs) -> xr.DataTree:
    """Posterior of ``model`` without the situations ``held_out`` (a boolean mask over the
    situations its containers hold): their only available alternative becomes the chosen one.

    Parameters
    ----------
    model : pm.Model
        Built by :func:`~pymc_maxent.build_model` (its containers are left as they were).
    held_out : ndarray of bool (situation,)
    random_seed : int, optional
    **sample_kwargs
        Settings of :func:`pymc_maxent.sample` (``draws``, ``tune``, ``chains``,
        ``nuts_sampler``, ``target_accept``, ...). With nutpie (the default) the model is compiled
        once and reused by every refit; with PyMC's NUTS pass a ``step`` (:func:`pymc_nuts`) to
        reuse its compilation.

    Returns
    -------
    DataTree
        With a ``posterior`` and ``sample_stats`` group (no log-likelihood).
    """

    kwargs = {"tune": DEFAULT_TUNE, "nuts_sampler": DEFAULT_SAMPLER} | dict(sample_kwargs)
    available = held_out_availability(model["available"].get_value(), model["chosen_index"].get_value(),
                                      np.asarray(held_out, dtype=bool))
    if kwargs["nuts_sampler"] == "nutpie" and "initvals" not in kwargs:
        return _nutpie_without(model, available, random_seed, kwargs)
    kwargs |= {"progressbar": False, "compute_convergence_checks": False}
    kwargs.pop("idata_kwargs", None)
    with restored_containers(model):
        pm.set_data({"available": available}, model=model)
        return pm.sample(model=model, random_seed=random_seed, **kwargs)


def pymc_nuts(model: pm.Model, target_accept: float | None = None):
    """PyMC's NUTS step of ``model``, to pass as ``step=`` to every refit: its compiled function
    reads the data containers when called, and each run resets its adaptation."""
    return pm.NUTS(model=model, **({} if target_accept is None else {"target_accept": target_accept}))


def _nutpie_without(model, available, random_seed, kwargs) -> xr.DataTree:
    """``pm.sample(nuts_sampler="nutpie")`` on the kept compiled model, with new availability."""
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    settings = {k: v for k, v in kwargs.items() if k not in _PM_ONLY}
    settings |= settings.pop("nuts_sampler_kwargs", None) or {}
    settings |= settings.pop("nuts", None) or {}
    if "max_treedepth" in settings:
        settings["maxdepth"] = settings.pop("max_treedepth")
    seed = int(np.random.default_rng(random_seed).integers(2**31))
    compiled = compiled_nutpie_model(model).with_data(available=available)
    start = time.perf_counter()
    tree = nutpie.sample(compiled, seed=seed, progress_bar=False, save_warmup=False, **settings)
    patch_nutpie_idata(tree, model, sampling_time=time.perf_counter() - start)
    return tree
