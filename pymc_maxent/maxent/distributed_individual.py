"""The MaxEnt mixed logit (``MXL-1`` to ``MXL-3``) over ``dask.array`` data.

Stage 1 is :func:`~pymc_maxent.maxent.distributed.fit_maxent_dask` of the tier's fixed twin
(the map-reduce of the population dual). Stage 2 is embarrassingly parallel over individuals:
one task per block of whole individuals computes the block's random-component features
``G`` (:func:`~pymc_maxent.maxent.individual.random_features`), stage 1's ``ln p̂`` of its
situations (the same compiled graph, in the same task graph) and solves its individuals with
:func:`~pymc_maxent.maxent.individual.solve_individuals`, as the in-memory fit does. The driver
gathers only per-individual outputs (``δ_i``, the ``R × R`` Hessian, residuals, iterations,
convergence, KL, information index, separation): nothing of the size of the situations.

Blocks and individuals: each individual's situations must be contiguous (data sorted by
individual). The blocks' boundaries are then moved back to the start of the individual they
cut through (:func:`individual_chunks`), so that no block splits an individual; an individual
whose situations lie in separate places raises a :class:`~pymc_maxent.exceptions.MaxEntError`
naming it (sorting needs a shuffle, which is the caller's choice).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np

from pymc_maxent.arguments import require_counts
from pymc_maxent.bayes.specification import as_spec, resolve
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError, SpecificationError
from pymc_maxent.maxent.distributed import OutOfMemoryFit, _as_blocks, _block_scan, fit_maxent_dask
from pymc_maxent.maxent.dual import CHUNK
from pymc_maxent.maxent.features import AlternativeShares, AttributeSums, CrossMoments, Revenue
from pymc_maxent.maxent.individual import (
    INDIVIDUAL_CHUNK,
    random_utility_function,
    separated,
    solve_individuals,
    support_scale,
)
from pymc_maxent.maxent.individual_result import (
    IndividualEstimates,
    _batched_inverse,
    choice_fit,
    information,
)
from pymc_maxent.maxent.mixed import individual_arrays, population_name, population_spec

__all__ = ["DaskIndividualMaxEntResult", "fit_mixed_maxent_dask", "individual_chunks"]

#: Moment families of a fixed twin that the Dask population stage supports.
DASK_MOMENTS = (AttributeSums, AlternativeShares, CrossMoments, Revenue)


@dataclass(frozen=True)
class _IndividualStage:
    """What a stage-2 task needs besides its block (small and picklable)."""

    resolved: object
    individual_support: object
    centre_noise: bool
    tol: float
    maxiter: int
    chunk_size: int
    check_separation: bool


def _block_layout(X, available, chosen, individual):
    """Per block: where each individual's run of situations starts, per attribute whether it
    varies across alternatives, and per alternative and attribute whether it is ever non-zero
    where available."""
    varies = _block_scan(X, available, chosen)["varies"]
    available = np.asarray(available, dtype=bool)
    ind = np.asarray(individual)
    if not np.issubdtype(ind.dtype, np.integer):
        raise MaxEntError(f"`individual` must hold integer positions; got dtype {ind.dtype}")
    starts = np.flatnonzero(np.r_[True, ind[1:] != ind[:-1]]) if ind.size else np.zeros(0, int)
    return {"n": ind.size, "starts": starts, "ids": ind[starts], "varies": varies,
            "nonzero": ((np.asarray(X) != 0) & available[..., None]).any(axis=0)}


_FEATURES: dict = {}


def _feature_function(resolved):
    """This thread's compiled random-component utility of ``resolved`` (compiled once)."""
    key = (repr(resolved), threading.get_ident())
    if key not in _FEATURES:
        _FEATURES[key] = random_utility_function(resolved)
    return _FEATURES[key]


def _block_individuals(stage: _IndividualStage, X, available, chosen, individual, p0):
    """Stage 2 of one block of whole individuals: their per-individual outputs only."""
    ids, local = np.unique(np.asarray(individual), return_inverse=True)
    X = np.require(X, dtype=float, requirements="A")  # unpickled from a buffer it may be unaligned
    problem = individual_arrays(X, available, chosen, local, len(ids), stage.resolved, p0,
                                stage.individual_support, stage.centre_noise,
                                _feature_function(stage.resolved))
    sol = solve_individuals(problem, tol=stage.tol, maxiter=stage.maxiter, chunk_size=stage.chunk_size)
    sep = separated(problem) if stage.check_separation else None
    if problem.support is None and sep is not None:
        sol.converged &= ~sep  # as the in-memory fit: no noise, no finite MLE
    kl, index, _, _ = information(sol.p, problem)
    loglik, hits = choice_fit(sol.p, problem.chosen)
    return {"ids": ids, "delta": sol.delta, "hessian": sol.hessian, "grad": sol.grad, "nit": sol.nit,
            "converged": sol.converged, "kl": kl, "information_index": index,
            "separated": sep, "n_situations": problem.n_situations, "loglik": loglik,
            "hits": hits, "n": len(problem.chosen)}


def individual_chunks(layouts: Sequence[dict], individuals: Sequence) -> tuple[int, ...]:
    """Row chunks whose boundaries fall between individuals: each old boundary moves back to
    the start of the individual it cuts through (blocks holding only part of one individual
    merge with the next).

    Parameters
    ----------
    layouts : sequence of dict
        Per block in order, ``n`` (rows), ``starts`` (row of each run of one individual,
        within the block) and ``ids`` (that individual's position).
    individuals : sequence
        Labels, to name an individual in an error.

    Raises
    ------
    MaxEntError
        An individual whose situations are not contiguous.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.distributed_individual import individual_chunks
    >>> ind = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    >>> layouts = [{"n": 4, "starts": np.array([0, 3]), "ids": np.array([0, 1])},
    ...            {"n": 4, "starts": np.array([0, 1]), "ids": np.array([1, 2])}]
    >>> individual_chunks(layouts, ["a", "b", "c"])
    (3, 5)
    """
    sizes = np.array([lay["n"] for lay in layouts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    starts = np.concatenate([lay["starts"] + off for lay, off in zip(layouts, offsets, strict=False)])
    ids = np.concatenate([lay["ids"] for lay in layouts])
    new_run = np.r_[True, ids[1:] != ids[:-1]]  # a run continued across a block boundary is one run
    starts, ids = starts[new_run], ids[new_run]
    order = np.argsort(ids, kind="stable")
    repeated = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if repeated.size:
        first, second = order[repeated[0]], order[repeated[0] + 1]
        label = np.asarray(individuals)[ids[first]].tolist()
        raise MaxEntError(
            f"individual {label!r} has situations in separate places (rows "
            f"{starts[first]} and {starts[second]}): blocks of whole individuals need each individual's "
            "situations contiguous; sort the data by individual")
    N = int(offsets[-1])
    bounds = starts[np.searchsorted(starts, offsets[1:-1], side="right") - 1]
    bounds = np.unique(np.concatenate([[0], bounds, [N]]))
    return tuple(int(n) for n in np.diff(bounds))


def _layout_template(alternatives, attributes, varies, nonzero) -> ChoiceData:
    """A small synthetic ChoiceData with the data's pattern (which attributes vary across
    alternatives, which are ever non-zero for each alternative) against which the tier is
    resolved: the layout of its components depends on nothing else (the data's SDs scale only
    Bayesian priors; the identification of the whole design is checked by stage 1)."""
    J, K = nonzero.shape
    partial = [attributes[k] for k in range(K) if not varies[k] and 0 < nonzero[:, k].sum() < J]
    if partial:
        raise MaxEntError(f"attributes {partial} are constant within situations yet 0 for some alternatives: "
                          "the Dask path cannot lay out their coefficients; use the in-memory fit_maxent")
    rng = np.random.default_rng(0)
    T = 8 * J * (K + 1)
    X = rng.normal(size=(T, J, K))
    X = np.where(np.asarray(varies)[None, None, :], X, X[:, :1, :]) * nonzero[None]
    return ChoiceData.from_arrays(X, np.arange(T) % J, alternatives=np.asarray(alternatives),
                                  attributes=np.asarray(attributes), check_identified=False)


class DaskIndividualMaxEntResult(OutOfMemoryFit, IndividualEstimates):
    """A MaxEnt mixed-logit fit of Dask data, holding per-individual arrays only.

    The estimates of :class:`~pymc_maxent.maxent.IndividualMaxEntResult` that do not need the
    situations: :meth:`individual_estimates`, :meth:`population_summary`,
    :meth:`population_corr`, :meth:`estimates`, :meth:`convergence` and
    :meth:`convergence_message`, on the same dims, coords and names. Nothing of the size of the
    situations is held (no ``p``, ``eps``): prediction and ``to_datatree`` need the in-memory
    fit; ``individual_estimates().to_netcdf(...)`` saves the individual estimates.

    Attributes
    ----------
    population : DaskMaxEntResult
        Stage 1 (its ``p`` is a lazy ``dask.array``).
    spec : ModelSpec
    random_labels : list of str
    individual_labels : ndarray
    n_individuals : int
    beta_population : ndarray (random_coefficient,)
    delta, beta_individual, beta_individual_se : ndarray (individual, random_coefficient)
    cov_individual, hessian_individual : ndarray (individual, random_coefficient, random_coefficient)
    kl_individual, information_index_individual : ndarray (individual,)
    converged_individual, separated : ndarray (individual,) bool
        ``separated`` is None with ``check_separation=False``.
    nit_individual, violation_individual, n_situations_individual : ndarray (individual,)
    converged : bool
        Stage 1 converged and every individual converged.
    n_converged, n_separated : int
    max_violation, kl_total, loglik, hit_rate : float
    chunks : tuple of int
        Situations per stage-2 block (whole individuals).
    seconds : dict
        Wall time of the fit's steps: ``layout`` (the pass that finds the individuals' runs and
        the data's pattern, then the persisting of the blocks), ``population`` (stage 1) and
        ``individuals`` (stage 2).
    """

    estimator = "maxent"

    def __init__(self, *, population, spec, random_labels, individual_labels, parts, n_individuals, chunks,
                 seconds=None):
        self.population, self.spec = population, spec
        self.random_labels = list(random_labels)
        self.individual_labels = np.asarray(individual_labels)
        self.n_individuals = I = int(n_individuals)
        self.chunks = tuple(chunks)
        self.seconds = dict(seconds or {})
        names = population.parameter_names()
        self.beta_population = population.beta[[names.index(population_name(lab)) for lab in random_labels]]
        R = len(self.random_labels)
        self.delta, self.hessian_individual = np.zeros((I, R)), np.zeros((I, R, R))
        grad = np.zeros((I, R))
        self.nit_individual, self.n_situations_individual = np.zeros(I, dtype=int), np.zeros(I, dtype=int)
        self.converged_individual = np.ones(I, dtype=bool)
        self.kl_individual, self.information_index_individual = np.zeros(I), np.zeros(I)
        checked = parts[0]["separated"] is not None if parts else False
        self.separated = np.zeros(I, dtype=bool) if checked else None
        for part in parts:
            ids = part["ids"]
            self.delta[ids], self.hessian_individual[ids] = part["delta"], part["hessian"]
            grad[ids] = part["grad"]
            self.nit_individual[ids], self.converged_individual[ids] = part["nit"], part["converged"]
            self.n_situations_individual[ids] = part["n_situations"]
            self.kl_individual[ids] = part["kl"]
            self.information_index_individual[ids] = part["information_index"]
            if checked:
                self.separated[ids] = part["separated"]
        self.beta_individual = self.beta_population[None, :] - self.delta
        self.cov_individual = _batched_inverse(self.hessian_individual)
        self.beta_individual_se = np.sqrt(np.clip(np.einsum("irr->ir", self.cov_individual), 0.0, None))
        self.violation_individual = np.abs(grad).max(axis=1, initial=0.0)
        self.n_converged = int(self.converged_individual.sum())
        self.n_separated = None if self.separated is None else int(self.separated.sum())
        self.converged = bool(population.converged and self.converged_individual.all())
        self.max_violation = float(max(population.max_violation, self.violation_individual.max(initial=0.0)))
        self.kl_total = float(self.kl_individual.sum())
        self.loglik = float(sum(part["loglik"] for part in parts))
        self.hit_rate = sum(part["hits"] for part in parts) / max(sum(part["n"] for part in parts), 1)

    def __repr__(self) -> str:
        return (f"DaskIndividualMaxEntResult({self.spec.name}, converged={self.converged}, "
                f"{self.convergence_message()}, blocks={len(self.chunks)})")


def fit_mixed_maxent_dask(
    X, available, chosen, individual, *, tier, alternatives: Sequence, attributes: Sequence,
    individuals: Sequence | None = None, reference=None, individual_support="default",
    error_support="default", w0=None, client=None, persist: bool = True, tol: float = 1e-10,
    maxiter: int = 100, chunk_size: int = CHUNK, individual_chunk: int = INDIVIDUAL_CHUNK,
    check_separation: bool = True, on_unidentified: str = "warn", centre_noise: bool = True,
) -> DaskIndividualMaxEntResult:
    """Fit the MaxEnt mixed logit of a tier over ``dask.array`` data: stage 1 as a map-reduce,
    stage 2 as one task per block of whole individuals.

    Equal to :func:`~pymc_maxent.fit_maxent` ``(data, tier=...)`` up to the order of
    floating-point sums.

    Parameters
    ----------
    X, available, chosen : dask arrays
        As in :func:`~pymc_maxent.maxent.distributed.fit_maxent_dask`, chunked along situations.
    individual : dask or NumPy array of int (situation,)
        Position of each situation's individual; each individual's situations contiguous.
        Row chunks are moved to individual boundaries (:func:`individual_chunks`).
    tier : str or ModelSpec
        ``"MXL-1"``, ``"MXL-2"``, ``"MXL-3"`` (over all attributes) or a specification with
        individual-level random components.
    alternatives, attributes : sequence
        Labels.
    individuals : sequence, optional
        Labels of the individuals (default ``0 … max(individual)``).
    reference, individual_support, error_support, w0, tol, maxiter, chunk_size,
    individual_chunk, check_separation, on_unidentified, centre_noise
        As in :func:`~pymc_maxent.fit_maxent`.
    client : dask.distributed.Client, optional
        Where to compute; default Dask's current scheduler.
    persist : bool
        Keep the (rechunked) blocks in memory across stage 1's passes and stage 2.

    Returns
    -------
    DaskIndividualMaxEntResult

    Raises
    ------
    SpecificationError
        A tier without random components, or with situation-level ones (``MXL-4``).
    MaxEntError
        A twin whose moments the Dask path does not support; an individual whose situations
        are not contiguous; individual positions out of range.

    Examples
    --------
    >>> import dask.array as da, pymc_maxent as pmx
    >>> from pymc_maxent.maxent.distributed_individual import fit_mixed_maxent_dask
    >>> d, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=8, seed=1)
    >>> fit = fit_mixed_maxent_dask(da.from_array(d.X, chunks=(100, -1, -1)), d.available, d.chosen,
    ...                             d.individual, tier="MXL-1", alternatives=d.alternatives,
    ...                             attributes=d.attributes, individuals=d.individuals)
    >>> fit.n_converged, fit.chunks  # 100-row blocks cut individuals: moved to their boundaries
    (30, (96, 104, 40))
    >>> dict(fit.individual_estimates()["estimate"].sizes)
    {'individual': 30, 'random_coefficient': 2}
    """
    from pymc_maxent.model import maxent_moments

    spec = as_spec(tier, [str(a) for a in np.asarray(attributes).tolist()], reference=reference)
    require_counts(maxiter=maxiter, chunk_size=chunk_size, individual_chunk=individual_chunk)
    support_scale(individual_support, np.ones(1))  # checked before any pass over the data
    X, available, chosen = _as_blocks(X, available, chosen)
    individual = (individual if isinstance(individual, da.Array) else da.asarray(individual))
    if individual.shape != chosen.shape:
        raise MaxEntError(f"`individual` {individual.shape} does not match `chosen` {chosen.shape}")
    individual = individual.rechunk(chosen.chunks)

    def compute(x):
        return client.compute(x, sync=True) if client else dask.compute(x)[0]

    start = time.perf_counter()
    layouts = compute([dask.delayed(_block_layout)(*b) for b in zip(
        *(a.to_delayed().ravel() for a in (X, available, chosen, individual)), strict=True)])
    high = max((int(lay["ids"].max()) for lay in layouts if lay["n"]), default=-1)
    low = min((int(lay["ids"].min()) for lay in layouts if lay["n"]), default=0)
    I = high + 1 if individuals is None else len(individuals)
    labels = np.arange(I) if individuals is None else np.asarray(individuals)
    if low < 0 or high >= I:
        raise MaxEntError(f"`individual` holds position {low if low < 0 else high}, outside 0..{I - 1} "
                          f"({I} individuals)")
    chunks = individual_chunks(layouts, labels)
    if chunks != chosen.chunks[0]:
        J, K = X.shape[1:]
        X, available = X.rechunk((chunks, J, K)), available.rechunk((chunks, J))
        chosen, individual = chosen.rechunk((chunks,)), individual.rechunk((chunks,))
    if persist:
        arrays = [X, available, chosen, individual]
        X, available, chosen, individual = client.persist(arrays) if client else dask.persist(*arrays)

    varies = np.any([lay["varies"] for lay in layouts], axis=0)
    nonzero = np.any([lay["nonzero"] for lay in layouts], axis=0)
    template = _layout_template(alternatives, np.asarray(attributes).tolist(), varies, nonzero)
    resolved = resolve(spec, template)
    moments = maxent_moments(population_spec(spec), template)  # the alternatives each attribute has
    unsupported = [type(m).__name__ for m in moments if not isinstance(m, DASK_MOMENTS)]
    if unsupported:
        raise MaxEntError(f"{spec.name}: the fixed twin's moments {unsupported} are not supported by the "
                          "Dask path; use the in-memory fit_maxent")
    if not resolved.n_random:
        raise SpecificationError(f"{spec.name}: no random components; fit it with fit_maxent_dask")
    if len(resolved.situation_components):
        labels_ = [resolved.random_labels[c] for c in resolved.situation_components]
        raise SpecificationError(f"{spec.name}: situation-level random components {labels_} (MXL-4) are not "
                                 "on the Dask path; fit MXL-3 for the individual level")

    seconds = {"layout": time.perf_counter() - start}
    start = time.perf_counter()
    population = fit_maxent_dask(
        X, available, chosen, alternatives=alternatives, attributes=attributes, moments=moments,
        error_support=error_support, w0=w0, client=client, persist=False, tol=tol, maxiter=maxiter,
        chunk_size=chunk_size, on_unidentified=on_unidentified, centre_noise=centre_noise)
    names = population.parameter_names()
    missing = [lab for lab in resolved.random_labels if population_name(lab) not in names]
    if missing:
        raise MaxEntError(f"{spec.name}: the Dask population fit has no parameter for the random components "
                          f"{missing}")
    seconds["population"] = time.perf_counter() - start
    start = time.perf_counter()
    stage = _IndividualStage(resolved, individual_support, centre_noise, tol, maxiter, individual_chunk,
                             check_separation)
    blocks = zip(*(a.to_delayed().ravel() for a in (X, available, chosen, individual, population.p)),
                 strict=True)
    parts = compute([dask.delayed(_block_individuals, pure=True)(stage, *b) for b in blocks])
    seconds["individuals"] = time.perf_counter() - start
    result = DaskIndividualMaxEntResult(
        population=population, spec=spec, random_labels=resolved.random_labels, individual_labels=labels,
        parts=parts, n_individuals=I, chunks=chunks, seconds=seconds)
    if not result.converged:
        warnings.warn(f"MaxEnt individual stage (Dask): {result.convergence_message()}", ConvergenceWarning,
                      stacklevel=2)
    return result
