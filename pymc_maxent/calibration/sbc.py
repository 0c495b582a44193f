"""Simulation-based calibration (Talts et al. 2018; Modrák et al. 2023) of the Bayesian tiers.

Parameters are drawn from the prior the model uses and choices from the model given them, both
by ``pm.sample_prior_predictive`` on the built model; each simulated data set is fitted by NUTS
(the model compiled once per worker, the choices swapped in as data), and the rank of each true
top-level parameter among the near-independent posterior draws is recorded.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import pickle
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from pymc_maxent.arguments import require_count
from pymc_maxent.bayes.build import build_model
from pymc_maxent.bayes.priors import CORR_DIMS, TOP_LEVEL_PARAMETERS
from pymc_maxent.calibration.ranks import INTERVALS, SAMPLE_DIMS, SIM, rank_statistics
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import ConvergenceWarning, SpecificationError
from pymc_maxent.specification import ModelSpec, as_spec

SAMPLERS = ("nutpie", "pymc")
#: Simulations per task handed to a worker process (each worker compiles its model once).
TASK_SIZE = 5
CORRELATION = "correlation"
#: Sampler settings by default: nutpie's low-rank mass matrix adapts to the posterior
#: correlation of constants and coefficients that attributes on real scales (prices in the
#: hundreds, never centred) induce; with a diagonal one, 300 draws gave ESS near 20.
DEFAULT_SAMPLER_KWARGS = {"nutpie": {"adaptation": "low_rank"}, "pymc": {}}

# per process: the last fitting models compiled, by what defines them (calls that fit the same
# model, e.g. on another fit_design, compile it once)
_COMPILED: dict = {}
_CACHED_MODELS = 2


def simulation_based_calibration(
    spec: str | ModelSpec,
    design: ChoiceData,
    n_sims: int = 100,
    *,
    attributes: Sequence[str] | None = None,
    random: str | Mapping[str, str] = "normal",
    correlated: bool = False,
    reference=None,
    priors: Mapping | None = None,
    fit_priors: Mapping | None = None,
    fit_design: ChoiceData | None = None,
    draws: int = 300,
    tune: int = 300,
    chains: int = 2,
    nuts_sampler: str = "nutpie",
    sampler_kwargs: Mapping | None = None,
    intervals: Sequence[float] = INTERVALS,
    n_workers: int = 1,
    random_seed: int = 0,
    progress: bool = False,
) -> xr.DataTree:
    """Simulation-based calibration of a tier (or :class:`~pymc_maxent.ModelSpec`) on a design.

    For each of ``n_sims`` simulations, the top-level parameters (``alpha``, ``beta``, ``mu``,
    ``sigma``, ``sigma_situation``, ``corr``) and the individuals' deviations are drawn from the
    model's prior and the choices from its likelihood (``pm.sample_prior_predictive``); the
    model is fitted to those choices by NUTS, and the rank of each true top-level parameter
    among the posterior draws, thinned to near-independence by their smallest bulk or tail ESS,
    is recorded. For a calibrated posterior the ranks are uniform, and each central interval
    covers the truth in its nominal share of simulations.

    Parameters
    ----------
    spec : str or ModelSpec
        A tier name or a full specification.
    design : ChoiceData
        Attributes, choice sets and panel structure (its choices, if any, are not used), e.g.
        :func:`~pymc_maxent.calibration.calibration_design`.
    n_sims : int
        Simulated data sets (at least 10).
    attributes, random, correlated, reference
        As in :func:`~pymc_maxent.build_model` (tier names only).
    priors : mapping, optional
        Priors the parameters are drawn from (default: the model's default priors).
    fit_priors : mapping, optional
        Priors of the fitted model, when they differ from ``priors``: a deliberately
        mis-specified fit, to see what a miscalibrated one looks like (default: ``priors``).
    fit_design : ChoiceData, optional
        Attributes the fitted model sees instead of ``design``'s (same situations, alternatives,
        attributes and choice sets; swapped into the compiled model's ``X``, the priors staying
        those built on ``design``): a mis-specified likelihood, e.g. an attribute in the wrong
        units (default: ``design``).
    draws, tune, chains : int
        NUTS settings per fit.
    nuts_sampler : {"nutpie", "pymc"}
        ``"nutpie"`` compiles the model once per worker and swaps the choices in with
        ``CompiledModel.with_data``; ``"pymc"`` swaps them with ``pm.set_data``.
    sampler_kwargs : mapping, optional
        Passed to ``nutpie.sample`` or ``pm.sample`` (e.g. ``target_accept``); default
        :data:`DEFAULT_SAMPLER_KWARGS`.
    intervals : sequence of float
        Central interval probabilities whose coverage is recorded.
    n_workers : int
        Processes fitting simulations in parallel (1: in this process).
    random_seed : int
    progress : bool
        Print a line as each batch of simulations finishes.

    Returns
    -------
    DataTree
        Groups (dim ``sim`` first, then each parameter's dims; ``corr`` as its upper triangle,
        dim ``correlation``): ``truth``; ``rank`` (ints ``0..n_draws``); ``pit``
        (``(rank + U)/(n_draws + 1)``, uniform on ``(0, 1)`` under calibration); ``covered``
        (dim ``interval``); ``sample_stats``: ``n_draws``, ``thin``, ``divergences``,
        ``max_rhat``, ``min_ess`` and ``seconds`` per simulation. Attributes: the
        specification's name, the settings, and ``n_failed`` and ``failed`` (JSON: the
        simulations whose fit raised, with the error; they are left out, and a warning says so).
        :func:`~pymc_maxent.calibration.calibration_summary` tabulates it.

    Raises
    ------
    SpecificationError
        ``n_sims`` below 10, an unknown sampler, a non-positive ``n_workers``, or what
        :func:`~pymc_maxent.build_model` raises.

    Warns
    -----
    ConvergenceWarning
        When fits diverged, did not mix (R-hat above 1.01) or failed: their ranks are suspect.

    Examples
    --------
    >>> from pymc_maxent.calibration import (calibration_design, calibration_summary,
    ...                                      simulation_based_calibration)
    >>> tree = simulation_based_calibration("MNL-2", calibration_design(40, 1), n_sims=10,
    ...                                     draws=100, tune=100)  # doctest: +SKIP
    >>> calibration_summary(tree)[["p_chi2", "coverage_94"]]  # doctest: +SKIP
    """
    n_sims = require_count(n_sims, "n_sims", minimum=10)
    n_workers = require_count(n_workers, "n_workers")
    draws, chains = require_count(draws, "draws"), require_count(chains, "chains")
    tune = require_count(tune, "tune", minimum=0)
    if nuts_sampler not in SAMPLERS:
        raise SpecificationError(f"nuts_sampler must be one of {SAMPLERS}; got {nuts_sampler!r}")
    spec = as_spec(spec, design.attributes.tolist() if attributes is None else list(attributes),
                   random=random, correlated=correlated, reference=reference)
    check_fit_design(design, fit_design)
    generator = build_model(design, spec, priors=priors)
    names = [v for v in TOP_LEVEL_PARAMETERS if v in generator.named_vars]
    seeds = np.random.SeedSequence(random_seed).spawn(n_sims + 1)
    prior = pm.sample_prior_predictive(draws=n_sims, model=generator, var_names=[*names, "chosen"],
                                       random_seed=_int_seed(seeds[0]))
    truth = upper_triangle(prior["prior"].to_dataset()[names].isel(chain=0, drop=True))
    truth.attrs = {}
    chosen = prior["prior_predictive"]["chosen"].isel(chain=0, drop=True).values

    settings = {"draws": draws, "tune": tune, "chains": chains, "nuts_sampler": nuts_sampler,
                "sampler_kwargs": dict(DEFAULT_SAMPLER_KWARGS[nuts_sampler] if sampler_kwargs is None
                                       else sampler_kwargs),
                # always set: the cached fitting model is shared across runs on this design
                "intervals": tuple(intervals), "X": (design if fit_design is None else fit_design).X}
    tasks = [[(s, chosen[s], truth.isel(draw=s, drop=True), _int_seed(seeds[s + 1]))
              for s in range(start, min(start + TASK_SIZE, n_sims))]
             for start in range(0, n_sims, TASK_SIZE)]
    payload = (design, spec, fit_priors if fit_priors is not None else priors, settings)
    results, started = [], time.perf_counter()
    if n_workers == 1:
        for task in tasks:
            results += _fit_batch(payload, task)
            _report(progress, spec.name, len(results), n_sims, started)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
            for batch in pool.map(_fit_batch, [payload] * len(tasks), tasks):
                results += batch
                _report(progress, spec.name, len(results), n_sims, started)
    return _assemble(results, truth, spec, settings, n_sims)


def check_fit_design(design: ChoiceData, fit_design: ChoiceData | None) -> None:
    """Raise unless ``fit_design`` differs from ``design`` in its attribute values only."""
    if fit_design is None:
        return
    same = (fit_design.X.shape == design.X.shape and np.array_equal(fit_design.available, design.available)
            and np.array_equal(fit_design.individual, design.individual)
            and fit_design.attributes.tolist() == design.attributes.tolist())
    if not same:
        raise SpecificationError(
            f"fit_design must have the design's situations, alternatives, attributes and choice sets "
            f"(X of shape {design.X.shape}, attributes {design.attributes.tolist()}); got X of shape "
            f"{fit_design.X.shape}, attributes {fit_design.attributes.tolist()}")


def upper_triangle(ds: xr.Dataset) -> xr.Dataset:
    """``corr`` as its elements above the diagonal, along dim ``correlation`` (``"a, b"``):
    the free correlations, each once."""
    if "corr" not in ds:
        return ds
    corr = ds["corr"]
    labels = corr[CORR_DIMS[0]].values
    i, j = np.triu_indices(len(labels), k=1)
    pairs = corr.isel({CORR_DIMS[0]: xr.DataArray(i, dims=CORRELATION),
                       CORR_DIMS[1]: xr.DataArray(j, dims=CORRELATION)}).drop_vars(list(CORR_DIMS))
    names = [f"{labels[a]}, {labels[b]}" for a, b in zip(i, j, strict=True)]
    pairs = pairs.assign_coords({CORRELATION: names})
    return ds.drop_vars("corr").drop_dims(CORR_DIMS[1], errors="ignore").assign(corr=pairs)


def _int_seed(sequence: np.random.SeedSequence) -> int:
    return int(sequence.generate_state(1)[0])


def _report(progress: bool, name: str, done: int, total: int, started: float) -> None:
    if progress:
        print(f"  {name}: {done}/{total} simulations, {time.perf_counter() - started:.0f} s", flush=True)


def _fit_batch(payload, task) -> list[dict]:
    """Fit a batch of simulations (in a worker process or this one), compiling the model on the
    first batch of the run."""
    design, spec, priors, settings = payload
    model, compiled = _fitting_model(design, spec, priors, settings["nuts_sampler"])
    out = []
    for sim, chosen, truth, seed in task:
        started = time.perf_counter()
        try:
            posterior, stats = _fit(model, compiled, chosen, seed, settings)
            ranks = rank_statistics(posterior, truth, intervals=settings["intervals"],
                                    rng=np.random.default_rng(seed))
        except Exception as error:  # noqa: BLE001  (reported with the simulation's id)
            out.append({"sim": sim, "error": f"{type(error).__name__}: {error}"})
            continue
        stats |= {"n_draws": ranks["n_draws"], "thin": ranks["thin"],
                  "seconds": time.perf_counter() - started}
        out.append({"sim": sim, "rank": ranks["rank"], "pit": ranks["pit"], "covered": ranks["covered"],
                    "stats": stats})
    return out


def _fitting_model(design: ChoiceData, spec: ModelSpec, priors, sampler: str):
    """The fitting model and its nutpie compilation, built on the first call for this design,
    specification, priors and sampler in this process."""
    key = hashlib.sha256(pickle.dumps((design.X, design.available, design.individual, spec, priors,
                                       sampler))).hexdigest()
    if key not in _COMPILED:
        model = build_model(design, spec, priors=priors)
        compiled = None
        if sampler == "nutpie":
            import nutpie

            compiled = nutpie.compile_pymc_model(model)
        while len(_COMPILED) >= _CACHED_MODELS:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = (model, compiled)
    return _COMPILED[key]


def _fit(model, compiled, chosen, seed, settings):
    """One NUTS fit to ``chosen``: the top-level posterior and its convergence figures."""
    names = [v for v in TOP_LEVEL_PARAMETERS if v in model.named_vars]
    kwargs = settings["sampler_kwargs"]
    if compiled is not None:
        import nutpie

        data = {"chosen_index": chosen, "X": settings["X"]}
        trace = nutpie.sample(compiled.with_data(**data), draws=settings["draws"],
                              tune=settings["tune"], chains=settings["chains"], cores=1, seed=seed,
                              progress_bar=False, **kwargs)
    else:
        with model:
            pm.set_data({"chosen_index": chosen, "X": settings["X"]})
            trace = pm.sample(draws=settings["draws"], tune=settings["tune"], chains=settings["chains"],
                              cores=1, random_seed=seed, progressbar=False, var_names=names,
                              compute_convergence_checks=False, **kwargs)
    posterior = trace["posterior"].to_dataset()[names]
    posterior.attrs = {}
    top = upper_triangle(posterior)  # the draws the ranks are taken among
    rhat = top.azstats.rhat(sample_dims=SAMPLE_DIMS)
    ess = top.azstats.ess(sample_dims=SAMPLE_DIMS, method="bulk")
    stats = {"divergences": int(trace["sample_stats"]["diverging"].sum()),
             "max_rhat": max(float(rhat[v].max()) for v in rhat.data_vars),
             "min_ess": min(float(ess[v].min()) for v in ess.data_vars)}
    return top, stats


def _assemble(results: list[dict], truth: xr.Dataset, spec: ModelSpec, settings: dict, n_sims: int):
    results = sorted(results, key=lambda r: r["sim"])
    failed = {r["sim"]: r["error"] for r in results if "error" in r}
    done = [r for r in results if "error" not in r]
    if len(done) < 10:
        raise SpecificationError(f"{spec.name}: only {len(done)} of {n_sims} simulations were fitted; "
                                 f"errors: {list(failed.values())[:3]}")
    sims = pd.Index([r["sim"] for r in done], name=SIM)

    def stack(key):
        return xr.concat([r[key] for r in done], dim=sims)

    stats = pd.DataFrame([r["stats"] for r in done], index=sims)
    tree = xr.DataTree.from_dict({
        "truth": truth.rename(draw=SIM).sel({SIM: sims.values}).assign_coords({SIM: sims}),
        "rank": stack("rank"), "pit": stack("pit"),
        "covered": stack("covered").transpose("interval", SIM, ...),
        "sample_stats": xr.Dataset.from_dataframe(stats),
    })
    tree.attrs = {"spec": spec.name, "n_sims": n_sims, "draws": settings["draws"], "tune": settings["tune"],
                  "chains": settings["chains"], "nuts_sampler": settings["nuts_sampler"],
                  "n_failed": len(failed), "failed": json.dumps({str(k): v for k, v in failed.items()})}
    problems = []
    if failed:
        problems.append(f"{len(failed)} fits failed and are left out ({next(iter(failed.values()))})")
    diverged = int((stats["divergences"] > 0).sum())
    if diverged:
        problems.append(f"{diverged} fits had divergent transitions")
    unmixed = int((stats["max_rhat"] > 1.01).sum())
    if unmixed:
        problems.append(f"{unmixed} fits had an R-hat above 1.01")
    if problems:
        warnings.warn(f"{spec.name} calibration: {'; '.join(problems)} of {n_sims}: their ranks are suspect "
                      "(sample_stats has the figures per simulation)", ConvergenceWarning, stacklevel=3)
    return tree
