"""MaxEnt over ``dask.array`` data: the only Dask code of the package (Dask is an optional
dependency, the ``scale`` extra).

*Stage 1* is a map-reduce: ``X`` (situation × alternative × attribute), ``available`` and
``chosen``, chunked along situations only; the dual ``D(λ)``, its gradient and its Hessian are
sums over situations, so each block evaluates the *same* compiled graph as the in-memory
:class:`~pymc_maxent.maxent.population_dual.DualProblem` (over its own containers, in chunks) and
the driver adds the block sums and runs the in-memory solver and covariance on them
(:func:`~pymc_maxent.maxent.stages.solve_dual`, :func:`~pymc_maxent.maxent.stages.population_stage`),
so the estimates equal :func:`~pymc_maxent.fit_maxent`'s up to the order of floating-point sums.
Compiled PyTensor functions do not pickle cheaply, so tasks carry only a small, picklable
:class:`DaskSpec`; each worker thread builds and compiles its problem once per spec (cached)
and then only swaps block data into its containers.

*Stage 2* (``MXL-1`` to ``MXL-3``) is embarrassingly parallel over individuals: one task per
block of whole individuals computes the block's random-component features, stage 1's ``ln p̂``
of its situations (the same compiled graph) and solves its individuals with
:func:`~pymc_maxent.maxent.stages.solve_groups`, as the in-memory fit does. The driver gathers
only per-individual outputs: nothing of the size of the situations. Each individual's
situations must be contiguous (data sorted by individual); the blocks' boundaries are moved back
to the start of the individual they cut through (:func:`individual_chunks`).

The result is a :class:`~pymc_maxent.MaxEntResult` with ``in_memory=False``: its estimates,
convergence and per-individual arrays, and ``p`` as a lazy ``dask.array``; whatever needs the
situations (prediction, the diagnostics, the DataTree, refits) raises one clear error.
Any scheduler works: a ``dask.distributed.Client`` or Dask's local schedulers.

Measured (``benchmarks/bench_scale.py``, LocalCluster of 2 single-thread workers on 2 shared
cores, 5 alternatives × 4 attributes, blocks of 10⁵): at 10⁶ situations 10 s against 7 s in
memory, ``max |Δλ|`` 1e-15.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import dask
import dask.array as da
import numpy as np
import pymc as pm

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.containers import register_choice_data
from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError, SpecificationError
from pymc_maxent.maxent.estimator import LEARN, Recipe, individual_problem
from pymc_maxent.maxent.group_dual import choice_fit, information, random_utility_function, separated
from pymc_maxent.maxent.moments import (
    AlternativeShares,
    AttributeSums,
    Constraint,
    CrossMoments,
    MomentSet,
    Revenue,
    default_moments,
    population_name,
    population_spec,
    twin_moments,
)
from pymc_maxent.maxent.options import SupportOptions, split_options
from pymc_maxent.maxent.population_dual import DualProblem, Reach, single_thread_blas
from pymc_maxent.maxent.result import MaxEntResult, parameter_names
from pymc_maxent.maxent.stages import GroupStage, population_stage, solve_dual, solve_groups
from pymc_maxent.maxent.supports import (
    check_centre_noise,
    default_error_support,
    group_support,
    make_supports,
)
from pymc_maxent.specification import as_spec, resolve

__all__ = ["DaskSpec", "fit_maxent_dask", "fit_mixed_maxent_dask", "individual_chunks"]

#: Moment families the Dask population stage supports.
DASK_MOMENTS = (AttributeSums, AlternativeShares, CrossMoments, Revenue)


@dataclass(frozen=True)
class DaskSpec:
    """Everything a worker needs to build the problem's compiled dual (small and picklable).

    ``varies`` is per attribute whether it varies across alternatives anywhere in the data (it
    decides the default moments); the workers resolve the moments against a two-situation
    template with the same labels and ``varies``.
    """

    alternatives: tuple
    attributes: tuple
    varies: tuple
    moments: tuple
    error: tuple | None  # the error support of the whole data (it depends on the total N)
    w0: tuple | None
    chunk_size: int
    centre_noise: bool = True

    @property
    def key(self) -> str:
        return repr((self.alternatives, self.attributes, self.varies, self.moments,
                     None if self.error is None else len(self.error), self.w0, self.chunk_size,
                     self.centre_noise))

    def template(self) -> ChoiceData:
        J, K = len(self.alternatives), len(self.attributes)
        X = np.where(np.asarray(self.varies)[None, :], np.arange(J, dtype=float)[:, None], 1.0)
        return ChoiceData.from_arrays(
            np.broadcast_to(X, (2, J, K)), np.array([0, 1]), alternatives=np.array(self.alternatives),
            attributes=np.array(self.attributes), check_identified=False,
        )




# ---------------------------------------------------------------------- worker side
_PROBLEMS: dict = {}
_LOCK = threading.Lock()


def _problem(spec: DaskSpec) -> DualProblem:
    """This thread's compiled dual for ``spec``, built on first use (a thread owns its containers)."""
    key = (spec.key, threading.get_ident())
    problem = _PROBLEMS.get(key)
    if problem is None:
        with _LOCK:
            template = spec.template()
            with pm.Model(coords=template.coords) as model:
                containers = register_choice_data(template, model)
            moments = MomentSet(spec.moments, template, containers)
            supports = make_supports(np.asarray(template.available),
                                     error_support=None if spec.error is None else np.asarray(spec.error),
                                     w0=None if spec.w0 is None else np.asarray(spec.w0))
            problem = DualProblem(moments, containers, supports, spec.chunk_size, spec.centre_noise)
            _PROBLEMS[key] = problem
    if problem.noise:
        problem.u.set_value(np.asarray(spec.error))
    return problem


def _load(spec, X, available, chosen) -> DualProblem:
    problem = _problem(spec)
    c = problem.c
    available = np.asarray(available, dtype=bool)
    c.X.set_value(np.where(available[..., None], np.asarray(X, dtype=float), 0.0), borrow=True)
    c.available.set_value(available.astype(c.available.get_value().dtype), borrow=True)
    c.chosen.set_value(np.asarray(chosen).astype(c.chosen.get_value().dtype), borrow=True)
    c.individual.set_value(np.zeros(available.shape[0], dtype=c.individual.get_value().dtype), borrow=True)
    return problem


def _block_scan(X, available, chosen):
    """Size, ``varies`` and input checks of one block (plain NumPy: nothing to compile)."""
    X, available, chosen = np.asarray(X, dtype=float), np.asarray(available, dtype=bool), np.asarray(chosen)
    n, J = available.shape
    hi = np.where(available[..., None], X, -np.inf).max(axis=1)
    lo = np.where(available[..., None], X, np.inf).min(axis=1)
    ok_index = (chosen >= 0) & (chosen < J)
    chosen_ok = ok_index.copy()
    chosen_ok[ok_index] = available[np.flatnonzero(ok_index), chosen[ok_index]]
    return {
        "n": n,
        "varies": (hi > lo).any(axis=0),
        "nonfinite": (~np.isfinite(X) & available[..., None]).sum(axis=(0, 1)),
        "bad_chosen": int((~chosen_ok).sum()),
        "few_available": int((available.sum(axis=1) < 2).sum()),
    }


def _block_reach(spec, X, available, chosen) -> Reach:
    return _load(spec, X, available, chosen).reach()


def _block_evaluate(spec, lam, X, available, chosen):
    problem = _load(spec, X, available, chosen)
    with single_thread_blas():  # np.array: a copy, as arrays unpickled from a buffer may be unaligned
        return problem.evaluate(np.array(lam, dtype=float), np.zeros(problem.C))


def _block_meat(spec, lam, X, available, chosen):
    return _load(spec, X, available, chosen).meat(np.array(lam, dtype=float))


def _block_information(spec, lam, X, available, chosen):
    primal = _load(spec, X, available, chosen).primal(np.array(lam, dtype=float))
    return np.concatenate([primal["information"].ravel(), primal["noise_moment"]])


def _information(summed: np.ndarray, C: int) -> tuple[np.ndarray, np.ndarray]:
    """The noise moment and the choice information from :func:`_block_information`'s sums."""
    return summed[C * C:], summed[:C * C].reshape(C, C)


def _likelihood(passes, C: int, lam) -> tuple[np.ndarray, np.ndarray]:
    """The gradient and the choice information of the dual without its noise term, over the
    blocks (:func:`~pymc_maxent.maxent.stages.likelihood_correction`)."""
    lam = np.asarray(lam, dtype=float)
    noise, information = _information(passes(_block_information, lam), C)
    return passes(_block_evaluate, lam)[1] + noise, information


def _block_probabilities(X, available, chosen, spec=None, lam=None):
    return _load(spec, X, available, chosen).primal(np.array(lam, dtype=float))["p"]


def _add(parts):
    """Element-wise sum of the blocks' results (``Reach``, tuples of arrays, or arrays)."""
    if isinstance(parts[0], Reach):
        return sum(parts[1:], parts[0])
    if isinstance(parts[0], list | tuple):
        return [sum(p[i] for p in parts) for i in range(len(parts[0]))]
    return sum(parts)




@dataclass(frozen=True)
class _MapReduce:
    """Each pass over the data as a map over the blocks and a sum of their results."""

    spec: DaskSpec
    blocks: list
    compute: object

    def __call__(self, fn, *args):
        parts = [dask.delayed(fn, pure=True)(self.spec, *args, *b) for b in self.blocks]
        return self.compute(dask.delayed(_add, pure=True)(parts))




def _as_blocks(X, available, chosen):
    """The three arrays as dask arrays sharing one chunking along situations, whole otherwise."""
    X, available, chosen = (a if isinstance(a, da.Array) else da.asarray(a) for a in (X, available, chosen))
    if X.ndim != 3 or available.ndim != 2 or chosen.ndim != 1:
        raise MaxEntError(f"X, available, chosen must be 3-, 2- and 1-d; got {X.ndim}, {available.ndim}, "
                          f"{chosen.ndim}")
    N, J, K = X.shape
    if available.shape != (N, J) or chosen.shape != (N,):
        raise MaxEntError(f"`available` {available.shape} and `chosen` {chosen.shape} do not match "
                          f"X {X.shape}")
    rows = X.chunks[0]
    X = X.rechunk((rows, J, K))
    return X, available.rechunk((rows, J)), chosen.rechunk((rows,))




def _supported(moments, supports: SupportOptions):
    error_support = supports.error_support
    if isinstance(error_support, str) and error_support != "default":
        raise MaxEntError(f"error_support must be 'default', None or an array; got {error_support!r}")
    if moments is None:
        return None
    moments = list(moments)
    user = [m.name for m in moments if isinstance(m, Constraint)]
    if user:
        raise MaxEntError(f"fit_maxent_dask supports the standard moment families; user constraints {user} "
                          "need the in-memory fit_maxent")
    if not moments:
        raise MaxEntError("no moment constraints given")
    return moments


def _scan_reduce(parts):
    out = {"n": sum(p["n"] for p in parts), "varies": np.any([p["varies"] for p in parts], axis=0)}
    for k in ("nonfinite", "bad_chosen", "few_available"):
        out[k] = sum(p[k] for p in parts)
    return out


def _check_scan(scan, attributes):
    bad = np.flatnonzero(scan["nonfinite"])
    if bad.size:
        raise MaxEntError(f"attribute {attributes[bad[0]]!r} has {int(scan['nonfinite'][bad[0]])} NaN or "
                          "infinite values where available")
    if scan["bad_chosen"]:
        raise MaxEntError(f"`chosen`: {scan['bad_chosen']} situations choose an alternative out of range or "
                          "unavailable")
    if scan["few_available"]:
        raise MaxEntError(f"`available`: {scan['few_available']} situations have fewer than two alternatives")



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
    >>> from pymc_maxent.maxent.dask_backend import individual_chunks
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




# ---------------------------------------------------------------------- stage 1 over blocks
def _population(X, available, chosen, *, alternatives, attributes, moments, reference, compute, solver,
                supports, chunk_size):
    """Stage 1 over the blocks: the scan, the dual's solve, covariance and identification."""
    alternatives = tuple(np.asarray(alternatives).tolist())
    attributes = tuple(np.asarray(attributes).tolist())
    if (len(alternatives), len(attributes)) != X.shape[1:]:
        raise MaxEntError(f"{len(alternatives)} alternatives and {len(attributes)} attributes given for X "
                          f"of shape {X.shape}")
    blocks = list(zip(*(a.to_delayed().ravel() for a in (X, available, chosen)), strict=True))
    scan = compute(dask.delayed(_scan_reduce)([dask.delayed(_block_scan)(*b) for b in blocks]))
    _check_scan(scan, attributes)
    N = scan["n"]
    varies = tuple(bool(v) for v in scan["varies"])
    template = DaskSpec(alternatives, attributes, varies, (), None, None, chunk_size).template()
    moments = default_moments(template, reference) if moments is None else moments
    error, w0 = supports.error_support, supports.w0
    error = default_error_support(N) if isinstance(error, str) else error
    if error is not None:  # validates the support and w0 as the in-memory fit does
        checked = make_supports(np.ones((2, len(alternatives)), bool), error_support=error, w0=w0)
        error, w0 = tuple(checked.error.tolist()), tuple(checked.w0.tolist())
    elif w0 is not None:
        raise MaxEntError("prior weights w0 given without an error support")
    spec = DaskSpec(alternatives, attributes, varies, tuple(moments), error, w0, chunk_size,
                    supports.centre_noise)
    moment_set = MomentSet(moments, template, None)
    passes = _MapReduce(spec, blocks, compute)
    solved = solve_dual(lambda lam: passes(_block_evaluate, np.asarray(lam, dtype=float)),
                        lambda: passes(_block_reach), moment_set.n, moment_set.labels, tol=solver.tol,
                        maxiter=solver.maxiter, method=solver.dual_method)
    primal = {"p": da.blockwise(_block_probabilities, "ij", X, "ijk", available, "ij", chosen, "i",
                                dtype=float,
                                concatenate=True, spec=spec, lam=solved[0]),
              "information": _information(passes(_block_information, solved[0]), moment_set.n)[1]}

    return population_stage(
        terms=moment_set.terms, names=parameter_names(moment_set.terms), solved=solved, primal=primal,
        meat=lambda lam: passes(_block_meat, lam), solver="dual", on_unidentified=solver.on_unidentified,
        chosen=None, available=None, p0=None, w0=None if w0 is None else np.asarray(w0),
        error_support=None if error is None else np.asarray(error), probability_support=None, n_situations=N,
        violation=float(np.abs(solved[2]).max()),
        likelihood=partial(_likelihood, passes, moment_set.n)), tuple(moments)


def _scheduler(client):
    def compute(x):
        return client.compute(x, sync=True) if client else dask.compute(x)[0]
    return compute


def _persisted(client, arrays):
    return client.persist(list(arrays)) if client else dask.persist(*arrays)


def fit_maxent_dask(X, available, chosen, *, alternatives: Sequence, attributes: Sequence, moments=None,
                    reference=None, client=None, persist: bool = True, **settings) -> MaxEntResult:
    """Fit the MaxEnt (GME) dual over ``dask.array`` data, as a map-reduce of the compiled graph.

    Parameters
    ----------
    X : dask array (situation, alternative, attribute)
        Chunked along situations (other axes are made whole); unavailable entries are ignored.
    available : dask array of bool (situation, alternative)
    chosen : dask array of int (situation,)
        Position of the chosen alternative.
    alternatives, attributes : sequence
        Labels, as in :class:`~pymc_maxent.ChoiceData`.
    moments, reference
        As in :func:`~pymc_maxent.fit_maxent` (standard moment families).
    client : dask.distributed.Client, optional
        Where to compute; default Dask's current scheduler (a live Client if there is one).
    persist : bool
        Keep the blocks in the cluster's memory across the ~10 passes of the solve. False
        for data larger than the cluster's memory: each pass then re-reads its source.
    **settings
        As in :func:`~pymc_maxent.fit_maxent`: the solver's, ``error_support``, ``w0``,
        ``centre_noise`` and ``chunk_size`` (direct form, uniform ``p0``).

    Returns
    -------
    MaxEntResult
        With ``in_memory=False`` and ``p`` a lazy ``dask.array``.

    Examples
    --------
    >>> import dask.array as da, pymc_maxent as pmx
    >>> from pymc_maxent.maxent.dask_backend import fit_maxent_dask
    >>> d = pmx.load_travel_mode()
    >>> res = fit_maxent_dask(da.from_array(d.X, chunks=(105, 4, 3)), d.available, d.chosen,
    ...                       alternatives=d.alternatives, attributes=d.attributes, client=None)
    >>> bool(abs(res.beta[0] - pmx.fit_maxent(d).beta[0]) < 1e-10)
    True
    """
    solver, supports, chunks = split_options(**settings)
    moments = _supported(moments, supports)  # before any pass over the data
    supports = _dask_supports(supports)
    X, available, chosen = _as_blocks(X, available, chosen)
    if persist:
        X, available, chosen = _persisted(client, (X, available, chosen))
    stage, moments = _population(X, available, chosen, alternatives=alternatives, attributes=attributes,
                                 moments=moments, reference=reference, compute=_scheduler(client),
                                 solver=solver, supports=supports, chunk_size=chunks.chunk_size)
    recipe = Recipe(moments=moments, spec=None, reference=reference, solver=solver, supports=supports,
                    chunks=chunks)
    return MaxEntResult(model=None, data=None, spec=moments, stages=(stage,), recipe=recipe, in_memory=False)


def _dask_supports(supports: SupportOptions) -> SupportOptions:
    """The supports the Dask path takes: the direct form, a uniform ``p0``."""
    for name in ("probability_support", "pi0", "p0"):
        if getattr(supports, name) is not None:
            raise MaxEntError(f"{name} is not supported by the Dask path; use the in-memory fit_maxent")
    centre = check_centre_noise(supports.centre_noise, supports.error_support is not None)
    return dataclasses.replace(supports, centre_noise=centre)


# ---------------------------------------------------------------------- stage 2 over blocks of individuals
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


#: This process's compiled random-component utilities, by specification and thread (a handful).
_FEATURES: dict = {}
_FEATURES_MAX = 16


def _feature_function(resolved):
    """This thread's compiled random-component utility of ``resolved`` (compiled once)."""
    key = (repr(resolved), threading.get_ident())
    if key not in _FEATURES:
        if len(_FEATURES) >= _FEATURES_MAX:
            _FEATURES.pop(next(iter(_FEATURES)))
        _FEATURES[key] = random_utility_function(resolved)
    return _FEATURES[key]


def _block_individuals(stage: _IndividualStage, X, available, chosen, individual, p0):
    """Stage 2 of one block of whole individuals: their per-individual outputs only."""
    ids, local = np.unique(np.asarray(individual), return_inverse=True)
    X = np.require(X, dtype=float, requirements="A")  # unpickled from a buffer it may be unaligned
    problem = individual_problem(X, available, chosen, local, len(ids), stage.resolved, p0,
                                 stage.individual_support,
                                 stage.centre_noise, _feature_function(stage.resolved))
    solved = solve_groups(problem, tol=stage.tol, maxiter=stage.maxiter, chunk_size=stage.chunk_size)
    sep = separated(problem) if stage.check_separation else None
    converged = solved["converged"]
    if problem.support is None and sep is not None:
        converged = converged & ~sep  # as the in-memory fit: no noise, no finite MLE
    kl, index, _, _ = information(solved["p"], problem)
    loglik, hits = choice_fit(solved["p"], problem.chosen)
    arrays = {k: solved[k] for k in ("delta", "hessian", "grad", "information", "value", "nit", "reach")}
    return arrays | {"ids": ids, "converged": converged, "kl": kl, "information_index": index,
                     "separated": sep,
                     "n_situations": problem.n_situations, "loglik": loglik, "hits": hits,
                     "n": len(problem.chosen)}


def _gathered(parts, I: int, R: int, labels, components, support, scale) -> GroupStage:
    """Stage 2 from the blocks' per-individual outputs."""
    arrays = {"delta": np.zeros((I, R)), "grad": np.zeros((I, R)), "reach": np.zeros((I, R)),
              "hessian": np.zeros((I, R, R)), "information": np.zeros((I, R, R)), "value": np.zeros(I),
              "nit": np.zeros(I, dtype=int), "converged": np.ones(I, dtype=bool), "kl": np.zeros(I),
              "information_index": np.zeros(I), "n_situations": np.zeros(I, dtype=int)}
    checked = bool(parts) and parts[0]["separated"] is not None
    sep = np.zeros(I, dtype=bool) if checked else None
    for part in parts:
        for name, values in arrays.items():
            values[part["ids"]] = part[name]
        if checked:
            sep[part["ids"]] = part["separated"]
    return GroupStage(level="individual", labels=tuple(labels), components=tuple(components), **arrays,
                      loglik=float(sum(p["loglik"] for p in parts)), hits=int(sum(p["hits"] for p in parts)),
                      n=int(sum(p["n"] for p in parts)), separated=sep, support=support, scale=scale)


def fit_mixed_maxent_dask(X, available, chosen, individual, *, tier, alternatives: Sequence,
                          attributes: Sequence,
                          individuals: Sequence | None = None, client=None, persist: bool = True,
                          **settings) -> MaxEntResult:
    """Fit the MaxEnt mixed logit of a tier over ``dask.array`` data: stage 1 as a map-reduce,
    stage 2 as one task per block of whole individuals; equal to :func:`~pymc_maxent.fit_maxent`
    ``(data, tier=...)`` up to the order of floating-point sums.

    Parameters
    ----------
    X, available, chosen : dask arrays
        As in :func:`fit_maxent_dask`, chunked along situations.
    individual : dask or NumPy array of int (situation,)
        Position of each situation's individual; each individual's situations contiguous.
    tier : str or ModelSpec
        ``"MXL-1"``, ``"MXL-2"``, ``"MXL-3"`` (over all attributes) or a specification with
        individual-level random components.
    alternatives, attributes : sequence
    individuals : sequence, optional
        Labels of the individuals (default ``0 … max(individual)``).
    client, persist
        As in :func:`fit_maxent_dask`.
    **settings
        As in :func:`~pymc_maxent.fit_maxent` (``reference`` too), except that the individual
        stage's pooling is not learnt here: ``individual_support`` defaults to ``"fixed"``
        (the design note's 3 points on ``±1/√n_i``) and ``"learn"`` is refused.

    Returns
    -------
    MaxEntResult
        With ``in_memory=False``, its ``chunks`` (situations per stage-2 block) and ``seconds``
        (wall time of ``layout``, ``population`` and ``individuals``).

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
    >>> from pymc_maxent.maxent.dask_backend import fit_mixed_maxent_dask
    >>> d, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=8, seed=1)
    >>> fit = fit_mixed_maxent_dask(da.from_array(d.X, chunks=(100, -1, -1)), d.available, d.chosen,
    ...                             d.individual, tier="MXL-1", alternatives=d.alternatives,
    ...                             attributes=d.attributes, individuals=d.individuals)
    >>> fit.n_converged, fit.chunks  # 100-row blocks cut individuals: moved to their boundaries
    (30, (96, 104, 40))
    >>> dict(fit.individual_estimates()["estimate"].sizes)
    {'individual': 30, 'random_coefficient': 2}
    """
    reference = settings.pop("reference", None)
    given = settings.get("individual_support", "fixed")
    if isinstance(given, str) and given == LEARN:
        raise MaxEntError("individual_support='learn' is not available over Dask yet: the Dask path solves "
                          "stage 2 with a given support (default: the design note's 3 points on ±1/√n_i); "
                          "learn the mixing distribution in memory (fit_maxent), on a sample if need be")
    settings.setdefault("individual_support", "fixed")
    solver, supports, chunks = split_options(**settings)
    spec = as_spec(tier, [str(a) for a in np.asarray(attributes).tolist()], reference=reference)
    group_support(supports.individual_support, np.ones(1))  # checked before any pass over the data
    supports = _dask_supports(supports)
    compute = _scheduler(client)
    start = time.perf_counter()
    X, available, chosen, individual, labels, chunk_rows, layouts = _individual_blocks(
        X, available, chosen, individual, individuals, compute)
    if persist:
        X, available, chosen, individual = _persisted(client, (X, available, chosen, individual))
    template = _layout_template(alternatives, np.asarray(attributes).tolist(),
                                np.any([lay["varies"] for lay in layouts], axis=0),
                                np.any([lay["nonzero"] for lay in layouts], axis=0))
    resolved = resolve(spec, template)
    moments = twin_moments(population_spec(spec), template)  # the alternatives each attribute has
    _check_tier(spec, resolved, moments)
    seconds = {"layout": time.perf_counter() - start}
    start = time.perf_counter()
    population, moments = _population(X, available, chosen, alternatives=alternatives, attributes=attributes,
                                      moments=moments, reference=reference, compute=compute, solver=solver,
                                      supports=supports, chunk_size=chunks.chunk_size)
    names = parameter_names(population.terms)
    missing = [label for label in resolved.random_labels if population_name(label) not in names]
    if missing:
        raise MaxEntError(f"{spec.name}: the Dask population fit has no parameter for the random components "
                          f"{missing}")
    seconds["population"] = time.perf_counter() - start
    start = time.perf_counter()
    task = _IndividualStage(resolved, supports.individual_support, supports.centre_noise, solver.tol,
                            solver.maxiter, chunks.individual_chunk, solver.check_separation)
    blocks = zip(*(a.to_delayed().ravel() for a in (X, available, chosen, individual, population.p)),
                 strict=True)
    parts = compute([dask.delayed(_block_individuals, pure=True)(task, *b) for b in blocks])
    seconds["individuals"] = time.perf_counter() - start
    counts = np.concatenate([p["n_situations"] for p in parts]) if parts else np.ones(0)
    support, scale = group_support(supports.individual_support, counts)
    stage = _gathered(parts, len(labels), resolved.n_random, labels, resolved.random_labels, support, scale)
    recipe = Recipe(moments=moments, spec=spec, reference=reference, solver=solver, supports=supports,
                    chunks=chunks)
    result = MaxEntResult(model=None, data=None, spec=spec, stages=(population, stage), recipe=recipe,
                          resolved=resolved, in_memory=False, chunks=chunk_rows, seconds=seconds)
    if not result.converged:
        warnings.warn(f"MaxEnt individual stage (Dask): {result.convergence_message()}", ConvergenceWarning,
                      stacklevel=2)
    return result


def _individual_blocks(X, available, chosen, individual, individuals, compute):
    """The arrays rechunked at individual boundaries, the individuals' labels, the row chunks and
    the blocks' layouts."""
    X, available, chosen = _as_blocks(X, available, chosen)
    individual = individual if isinstance(individual, da.Array) else da.asarray(individual)
    if individual.shape != chosen.shape:
        raise MaxEntError(f"`individual` {individual.shape} does not match `chosen` {chosen.shape}")
    individual = individual.rechunk(chosen.chunks)
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
    return X, available, chosen, individual, labels, chunks, layouts


def _check_tier(spec, resolved, moments) -> None:
    unsupported = [type(m).__name__ for m in moments if not isinstance(m, DASK_MOMENTS)]
    if unsupported:
        raise MaxEntError(f"{spec.name}: the fixed twin's moments {unsupported} are not supported by the "
                          "Dask path; use the in-memory fit_maxent")
    if not resolved.n_random:
        raise SpecificationError(f"{spec.name}: no random components; fit it with fit_maxent_dask")
    if len(resolved.situation_components):
        labels = [resolved.random_labels[c] for c in resolved.situation_components]
        raise SpecificationError(f"{spec.name}: situation-level random components {labels} (MXL-4) are not "
                                 "on the Dask path; fit MXL-3 for the individual level")
