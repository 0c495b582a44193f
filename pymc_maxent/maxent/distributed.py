"""The MaxEnt dual as a map-reduce over the blocks of ``dask.array`` data.

For data larger than one machine's memory, or already spread over a Dask cluster: ``X``
(situation × alternative × attribute), ``available`` and ``chosen``, chunked along situations
only. The dual ``D(λ)``, its gradient and its Hessian are sums over situations, so each block
evaluates the *same* compiled graph as the in-memory :class:`~pymc_maxent.maxent.dual.DualProblem`
(over its own containers, in chunks) and the driver adds the block sums. The driver then runs
the in-memory solver itself (:func:`~pymc_maxent.maxent.dual.solve_dual`: reach check,
damped Newton) on those sums, and the same covariance and
identification check (:mod:`~pymc_maxent.maxent.covariance`), so the estimates equal
:func:`~pymc_maxent.fit_maxent`'s up to the order of floating-point sums.

Compiled PyTensor functions do not pickle cheaply, so tasks carry only a small, picklable
:class:`DaskSpec`; each worker thread builds and compiles its ``DualProblem`` once per spec
(cached) and then only swaps block data into its containers. Any scheduler works: a
``dask.distributed.Client`` (a ``LocalCluster`` or a real cluster), or Dask's local schedulers.

Supported: the direct form (no probability support), standard moment families
(:class:`~pymc_maxent.maxent.features.AttributeSums`, ``AlternativeShares``, ``CrossMoments``,
``Revenue``), the default or a given error support with uniform or given ``w0``, uniform
``p0``. The rest raises :class:`~pymc_maxent.exceptions.MaxEntError`.

Measured (``benchmarks/bench_scale.py``, LocalCluster of 2 single-thread workers on 2 shared
cores, 5 alternatives × 4 attributes, blocks of 10⁵): at 10⁶ situations 10 s against 7 s in
memory, ``max |Δλ|`` 1e-15; a pass costs one compiled evaluation per block plus ~0.1 s of
scheduling, and the first fit on a cluster adds each worker's compilation (~3 s, from
PyTensor's disk cache).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pymc as pm

from pymc_maxent.arguments import require_count
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.containers import register_choice_data
from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.maxent.covariance import (
    check_on_unidentified,
    covariance,
    identification,
    report_unidentified,
)
from pymc_maxent.maxent.dual import CHUNK, DualProblem, Reach, single_thread_blas, solve_dual
from pymc_maxent.maxent.estimates import MaxEntEstimates, parameter_names
from pymc_maxent.maxent.features import Constraint, Moment, MomentSet, default_moments
from pymc_maxent.maxent.supports import check_centre_noise, default_error_support, make_supports

__all__ = ["DaskMaxEntResult", "DaskSpec", "OutOfMemoryFit", "fit_maxent_dask"]


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
    return _load(spec, X, available, chosen).primal(np.array(lam, dtype=float))["information"]


def _block_probabilities(X, available, chosen, spec=None, lam=None):
    return _load(spec, X, available, chosen).primal(np.array(lam, dtype=float))["p"]


def _add(parts):
    """Element-wise sum of the blocks' results (``Reach``, tuples of arrays, or arrays)."""
    if isinstance(parts[0], Reach):
        return sum(parts[1:], parts[0])
    if isinstance(parts[0], list | tuple):
        return [sum(p[i] for p in parts) for i in range(len(parts[0]))]
    return sum(parts)


# ---------------------------------------------------------------------- driver side
@dataclass(frozen=True)
class _MapReduce:
    """Each pass over the data as a map over the blocks and a sum of their results."""

    spec: DaskSpec
    blocks: list
    compute: object

    def __call__(self, fn, *args):
        parts = [dask.delayed(fn, pure=True)(self.spec, *args, *b) for b in self.blocks]
        return self.compute(dask.delayed(_add, pure=True)(parts))


class OutOfMemoryFit:
    """What a fit of Dask data cannot do: it holds no situation-sized arrays and no data
    containers, so everything that evaluates ``p`` on data (prediction, the diagnostics, the
    DataTree, refits) raises one clear :class:`~pymc_maxent.exceptions.MaxEntError` instead of
    an ``AttributeError`` deep inside a diagnostic."""

    def _in_memory_only(self, what: str):
        raise MaxEntError(f"{type(self).__name__} cannot {what}: a fit of Dask data holds no situation-"
                          "sized arrays or data containers; fit the data (or a sample of it) in memory with "
                          "fit_maxent for prediction and the diagnostics")

    def predict(self, *args, **kwargs):
        self._in_memory_only("predict")

    def evaluator(self, *args, **kwargs):
        self._in_memory_only("evaluate choice probabilities (the diagnostics need them)")

    def probability_graph(self, *args, **kwargs):
        self._in_memory_only("give the graph of p over the data containers")

    def parameter_samples(self, *args, **kwargs):
        self._in_memory_only("give parameter samples for the graph of p")

    def to_datatree(self, *args, **kwargs):
        self._in_memory_only("build a DataTree with the data's dims")

    def refit(self, *args, **kwargs):
        self._in_memory_only("refit for cross-validation")

    def loo(self, *args, **kwargs):
        self._in_memory_only("be scored for model selection")


class DaskMaxEntResult(OutOfMemoryFit, MaxEntEstimates):
    """A MaxEnt fit of Dask data: the estimates of :class:`~pymc_maxent.maxent.MaxEntResult`
    (``lam``, ``beta``, ``cov``, ``cov_robust``, ``se``, ``se_robust``, ``summary()``,
    ``estimates()``, ``parameter_names()``, ``parameter_draws()``, ``converged``,
    ``identified``, ``condition_number``, ``message``, ``nit``, ``max_violation``,
    ``dual_value``) and ``p`` as a lazy ``dask.array`` (situation × alternative, chunked as the
    data). ``max_violation`` is the largest moment residual."""

    estimator = "maxent"

    def __init__(self, *, terms, solution, cov, cov_robust, identification, message, p, error_support,
                 n_situations):
        self.terms = list(terms)
        self.labels = [t.moment for t in self.terms]
        self.lam = np.asarray(solution.lam, dtype=float)
        self.dual_value = float(solution.value)
        self.converged, self.message, self.nit = bool(solution.converged), message, solution.nit
        self.identified = bool(identification.identified)
        self.condition_number = float(identification.condition_number)
        self.information_condition_number = float(identification.information_condition_number)
        self.max_violation = float(np.abs(solution.grad).max())
        self.cov, self.cov_robust, self.p = cov, cov_robust, p
        self.error_support = error_support
        self.n_situations = n_situations

    def __repr__(self) -> str:
        return (f"DaskMaxEntResult(converged={self.converged}, identified={self.identified}, "
                f"nit={self.nit}, max_violation={self.max_violation:.2e}, n_situations={self.n_situations})")


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


def fit_maxent_dask(
    X, available, chosen, *, alternatives: Sequence, attributes: Sequence,
    moments: Sequence[Moment] | None = None, error_support="default", w0=None, reference=None,
    client=None, persist: bool = True, tol: float = 1e-10, maxiter: int = 100, chunk_size: int = CHUNK,
    on_unidentified: str = "warn", centre_noise: bool = True,
) -> DaskMaxEntResult:
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
    moments, error_support, w0, reference, tol, maxiter, chunk_size, on_unidentified, centre_noise
        As in :func:`~pymc_maxent.fit_maxent` (direct form, uniform ``p0``, standard moments).
    client : dask.distributed.Client, optional
        Where to compute; default Dask's current scheduler (a live Client if there is one).
    persist : bool
        Keep the blocks in the cluster's memory across the ~10 passes of the solve. False
        for data larger than the cluster's memory: each pass then re-reads its source.

    Returns
    -------
    DaskMaxEntResult

    Examples
    --------
    >>> import dask.array as da, pymc_maxent as pmx
    >>> from pymc_maxent.maxent.distributed import fit_maxent_dask
    >>> d = pmx.load_travel_mode()
    >>> res = fit_maxent_dask(da.from_array(d.X, chunks=(105, 4, 3)), d.available, d.chosen,
    ...                       alternatives=d.alternatives, attributes=d.attributes, client=None)
    >>> bool(abs(res.beta[0] - pmx.fit_maxent(d).beta[0]) < 1e-10)
    True
    """
    maxiter, chunk_size = require_count(maxiter, "maxiter"), require_count(chunk_size, "chunk_size")
    spec_moments = _supported(moments, error_support)  # before any pass over the data
    check_on_unidentified(on_unidentified)
    centre_noise = check_centre_noise(centre_noise, error_support is not None)
    X, available, chosen = _as_blocks(X, available, chosen)
    if persist:
        X, available, chosen = client.persist([X, available, chosen]) if client else dask.persist(
            X, available, chosen)

    def compute(x):
        return client.compute(x, sync=True) if client else dask.compute(x)[0]

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
    spec = DaskSpec(alternatives, attributes, varies, (), None, None, chunk_size)
    template = spec.template()
    spec_moments = default_moments(template, reference) if spec_moments is None else spec_moments
    error = default_error_support(N) if isinstance(error_support, str) else error_support
    if error is not None:  # validates the support and w0 as the in-memory fit does
        supports = make_supports(np.ones((2, len(alternatives)), bool), error_support=error, w0=w0)
        error, w0 = tuple(supports.error.tolist()), tuple(supports.w0.tolist())
    elif w0 is not None:
        raise MaxEntError("prior weights w0 given without an error support")
    spec = DaskSpec(alternatives, attributes, spec.varies, tuple(spec_moments), error, w0, int(chunk_size),
                    centre_noise)
    moment_set = MomentSet(spec_moments, template, None)
    passes = _MapReduce(spec, blocks, compute)
    sol = solve_dual(lambda lam: passes(_block_evaluate, np.asarray(lam, dtype=float)),
                     lambda: passes(_block_reach), moment_set.n, moment_set.labels, tol=tol, maxiter=maxiter)
    cov, _ = covariance(sol.hess)
    cov_robust = cov @ passes(_block_meat, sol.lam) @ cov
    ident = identification(sol.hess, passes(_block_information, sol.lam), parameter_names(moment_set.terms))
    message = sol.message
    if not ident.identified:
        message = f"{message}; NOT identified: {report_unidentified(ident, on_unidentified)}"
    p = da.blockwise(_block_probabilities, "ij", X, "ijk", available, "ij", chosen, "i", dtype=float,
                     concatenate=True, spec=spec, lam=sol.lam)
    return DaskMaxEntResult(terms=moment_set.terms, solution=sol, cov=cov, cov_robust=cov_robust,
                            identification=ident, message=message, p=p,
                            error_support=None if error is None else np.asarray(error), n_situations=N)


def _supported(moments, error_support):
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

