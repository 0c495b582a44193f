"""The MaxEnt estimator: one data object, the shared containers, the dual or the primal."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pymc as pm
import xarray as xr

from pymc_maxent.arguments import require_count
from pymc_maxent.data.choice_data import ALTERNATIVE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.data.containers import (
    ChoiceContainers,
    register_choice_data,
    require_observed_choices,
    restored_containers,
    set_choice_data,
)
from pymc_maxent.exceptions import MaxEntError, SpecificationError
from pymc_maxent.maxent.covariance import (
    Identification,
    check_on_unidentified,
    covariance,
    identification,
    report_unidentified,
)
from pymc_maxent.maxent.dual import CHUNK, DualProblem, DualSolution, check_reach
from pymc_maxent.maxent.estimates import parameter_names
from pymc_maxent.maxent.features import Moment, MomentSet, default_moments
from pymc_maxent.maxent.individual import INDIVIDUAL_CHUNK
from pymc_maxent.maxent.primal import PrimalProblem
from pymc_maxent.maxent.result import MaxEntResult
from pymc_maxent.maxent.supports import check_centre_noise, default_error_support, make_supports

SOLVERS = ("dual", "primal")
def _plain(value):
    """An array setting as nested lists (JSON), None as None."""
    return None if value is None else np.asarray(value, dtype=float).tolist()


def model_containers(data: ChoiceData, model: pm.Model | None) -> tuple[pm.Model, ChoiceContainers]:
    """The model's registered containers, registering ``data`` when it has none.

    When the model's containers hold other data (after a prediction, say), ``data`` is
    swapped in with :func:`~pymc_maxent.set_choice_data`, so the fit is always of ``data``.
    """
    if model is None:
        model = pm.Model(coords=data.coords)
    if "X" not in model.named_vars:
        return model, register_choice_data(data, model)
    containers = ChoiceContainers(
        X=model["X"], available=model["available"], chosen=model["chosen_index"],
        individual=model["individual_index"],
    )
    held = (containers.X.get_value(), containers.available.get_value(), containers.chosen.get_value())
    if any(h.shape != d.shape or not np.array_equal(h, d)
           for h, d in zip(held, (data.X, data.available, data.chosen), strict=True)):
        set_choice_data(data, model)
    return model, containers


class MaxEntEstimator:
    """A MaxEnt (GME) choice model over the data containers of a PyMC model.

    Graphs are built and compiled once; :meth:`fit` solves for the data currently in the
    containers, so after :func:`~pymc_maxent.set_choice_data` (or ``pm.set_data``) a new fit
    or prediction needs no recompilation.

    Parameters
    ----------
    data : ChoiceData
    moments : sequence of Moment, optional
        Constraint families (:mod:`pymc_maxent.maxent.features`); default
        :func:`~pymc_maxent.maxent.features.default_moments`, the twin of ``MNL-2``.
    error_support : "default", None or array
        ``"default"``: 3 points on ``±1/√N``; None: no noise term (``ε ≡ 0``).
    w0 : array, optional
        Prior weights over the error support (default uniform).
    probability_support : array, optional
        Support ``s ⊂ [0, 1]`` of the note's form ``p_ij = Σ_m s_m π_ijm``; default None:
        ``p`` entered directly (GJP 1996).
    pi0 : array, optional
        Prior weights over the probability support.
    p0 : array, optional
        Prior choice probabilities ``(alternative,)`` or ``(situation, alternative)``
        (direct form; default uniform over the available alternatives).
    model : pm.Model, optional
        A model whose containers to use (e.g. a Bayesian model from
        :func:`~pymc_maxent.build_model`), so that ``pm.set_data`` moves both.
    reference : alternative label, optional
        Reference alternative of the default moments.
    chunk_size : int
        Situations per evaluation chunk of the dual.
    centre_noise : bool
        True (default): the noise term sees each feature centred within each situation over
        its available alternatives (``F̃_ijc = F_ijc − mean_{l∈C_i} F_ilc``; equivalently the
        noise enters the moments as ``ε̃_ij = ε_ij − mean_{l∈C_i} ε_il``), so that the
        estimates do not change when a constant is added to an attribute in every alternative.
        False: GJP 1996 as written, whose estimates depend on the attributes' origins (an
        :class:`~pymc_maxent.maxent.supports.OriginWarning`). Without a noise term
        (``error_support=None``) both are the same.

    Attributes
    ----------
    data : ChoiceData
    model : pm.Model
    containers : ChoiceContainers
    moments : MomentSet
    supports : Supports
    dual : DualProblem or None
        None with a constraint nonlinear in ``(p, ε)`` (the primal solver only).
    options : dict
        The keyword settings above (supports, priors, ``chunk_size``, ``centre_noise``) as
        JSON-ready values: with the data and the moments, they rebuild the estimator.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import MaxEntEstimator, Revenue
    >>> est = MaxEntEstimator(pmx.load_travel_mode(), [Revenue("gc")], error_support=None)
    >>> res = est.fit()
    >>> res.parameter_names(), bool(res.beta[0] < 0)
    (['beta[gc]'], True)
    """

    def __init__(self, data: ChoiceData, moments: Sequence[Moment] | None = None, *,
                 error_support="default", w0=None, probability_support=None, pi0=None, p0=None,
                 model: pm.Model | None = None, reference=None, chunk_size: int = CHUNK,
                 centre_noise: bool = True):
        chunk_size = require_count(chunk_size, "chunk_size")
        self.data = data
        self.model, self.containers = model_containers(data, model)
        moments = default_moments(data, reference) if moments is None else list(moments)
        self.moments = MomentSet(moments, data, self.containers)
        self.supports = make_supports(
            np.asarray(data.available), error_support=error_support, w0=w0,
            probability_support=probability_support, pi0=pi0, p0=p0,
        )
        self.centre_noise = check_centre_noise(centre_noise, self.supports.error is not None)
        self.dual = (DualProblem(self.moments, self.containers, self.supports, chunk_size, self.centre_noise)
                     if self.moments.user_linear else None)
        self.options = {
            "error_support": error_support if isinstance(error_support, str) else _plain(error_support),
            "w0": _plain(w0), "probability_support": _plain(probability_support), "pi0": _plain(pi0),
            "p0": _plain(p0), "chunk_size": int(chunk_size), "centre_noise": self.centre_noise,
        }

    # ------------------------------------------------------------------ helpers
    def current_error_support(self):
        u = self.supports.error
        if u is not None and self.supports.default_error:
            u = default_error_support(self.containers.available.get_value().shape[0], u.size)
        return u

    def require_dual(self):
        """Raise :class:`~pymc_maxent.exceptions.MaxEntError` unless the dual is available."""
        if self.dual is None:
            raise MaxEntError("a constraint is nonlinear in (p, eps): only the primal solver applies, "
                              "and the dual's standard errors and predictions are not available")

    def observed(self) -> tuple[np.ndarray, np.ndarray]:
        """``(chosen, available)`` of the data in the containers."""
        available = np.asarray(self.containers.available.get_value(), dtype=bool)
        chosen = np.asarray(self.containers.chosen.get_value())
        return chosen, available

    def prior_p0(self, available):
        """The prior ``p0``, or None when it is uniform over the available alternatives."""
        if self.dual is not None and self.dual.log_p0 is None:
            return None
        p0 = self.supports.p0
        if p0.shape != available.shape:  # new data in the containers: uniform unless given
            if self.dual is not None and self.dual.log_p0 is not None:
                self.dual.refresh()  # raises: a per-situation p0 does not carry over
            return None
        return p0

    # ------------------------------------------------------------------ fitting
    def fit(self, data: ChoiceData | None = None, *, solver: str = "dual", tol: float = 1e-10,
            maxiter: int = 100, on_unidentified: str = "warn", dual_method: str = "newton") -> MaxEntResult:
        """Solve for ``data``, or for the data now in the containers.

        Parameters
        ----------
        data : ChoiceData, optional
            Swapped into the containers first (:func:`~pymc_maxent.set_choice_data`); default
            whatever they hold (the data the estimator was built with, or what ``pm.set_data``
            put there since).
        solver : {"dual", "primal"}
            The concentrated dual (default; any N) or the primal as written (small N).
        tol : float
            Dual: largest moment residual relative to the moment's reachable range (see
            :func:`~pymc_maxent.maxent.dual.solve_dual`).
        maxiter : int
            Iterations of the dual solver.
        on_unidentified : {"warn", "raise"}
            When the scaled Hessian or choice information is near-singular (condition number
            above :data:`~pymc_maxent.maxent.covariance.MAX_CONDITION`, or a non-positive pivot):
            an :class:`~pymc_maxent.exceptions.IdentificationWarning` naming the parameters in
            the near-null direction and ``identified=False``, or a
            :class:`~pymc_maxent.exceptions.SpecificationError`.
        dual_method : {"newton", "trust-exact"}
            The dual's solver (:func:`~pymc_maxent.maxent.dual.solve_dual`): damped Newton
            (default) or the former scaled trust region, kept for comparison.

        Raises
        ------
        MaxEntError
            A moment with no variation within any situation, or out of reach (infeasible); an
            unknown ``solver`` or ``dual_method``.
        """
        if solver not in SOLVERS:
            raise MaxEntError(f"solver must be one of {SOLVERS}; got {solver!r}")
        check_on_unidentified(on_unidentified)
        maxiter = require_count(maxiter, "maxiter")
        if data is not None:
            data.require_choices("a MaxEnt fit")
            set_choice_data(data, self.model)
        require_observed_choices(self.model, "a MaxEnt fit")
        fitted = self.data_in_containers() if data is None else data
        chosen, available = self.observed()
        if solver == "dual":
            self.require_dual()
            sol = self.dual.solve(tol=tol, maxiter=maxiter, method=dual_method)
            primal = self.dual.primal(sol.lam, sol.mu)
            violation = float(np.abs(sol.grad).max())
        else:
            sol, primal, violation = self._fit_primal(chosen)
        violation = max(violation, float(np.abs(primal["p"].sum(axis=1) - 1.0).max()))
        if "w" in primal:
            violation = max(violation, float(np.abs(primal["w"].sum(axis=-1)[available] - 1.0).max()))
        C = self.moments.n
        names = parameter_names(self.moments.terms)
        message = sol.message
        if self.dual is not None and np.all(np.isfinite(sol.hess)):
            cov, _ = covariance(sol.hess)
            cov_robust = cov @ self.dual.meat(sol.lam, sol.mu) @ cov
            ident = identification(sol.hess, primal.get("information"), names)
            if not ident.identified:
                message = f"{message}; NOT identified: {report_unidentified(ident, on_unidentified)}"
        else:
            cov = cov_robust = np.full((C, C), np.nan)
            ident = Identification(True, np.nan, np.nan)
        return MaxEntResult(
            problem=self, data=fitted, solution=sol, primal=primal, cov=cov, cov_robust=cov_robust,
            identification=ident, data_coords=self.coords(), chosen=chosen, available=available,
            p0=self.prior_p0(available), w0=self.supports.w0, solver=solver, converged=sol.converged,
            message=message, nit=sol.nit, max_violation=violation,
            solve_options={"tol": tol, "maxiter": maxiter, "on_unidentified": on_unidentified,
                           "dual_method": dual_method},
        )

    def _fit_primal(self, chosen):
        """The primal solve, with the dual's value, gradient and Hessian at its multipliers."""
        if self.dual is not None:  # the same checks of the moments as the dual's
            self.dual.refresh()
            check_reach(self.dual.reach(self.dual.target_adjustment()), self.moments.labels)
        psol = PrimalProblem(self.moments, self.containers, self.supports, self.centre_noise).solve()
        primal = {"p": psol.p, "e": psol.e}
        if psol.w is not None:
            primal["w"] = psol.w
        if psol.pi is not None:
            primal["pi"] = psol.pi
        C = self.moments.n
        sol = DualSolution(lam=psol.lam, mu=None, value=np.nan, grad=np.full(C, np.nan),
                           hess=np.full((C, C), np.nan), converged=psol.converged,
                           message=psol.message, nit=psol.nit, nfev=0)
        if self.dual is not None:
            mu = None
            if not self.dual.direct:
                mu = self.dual.solve_mu(sol.lam, np.zeros(chosen.shape[0]))
            sol.mu = mu
            sol.value, sol.grad, sol.hess = self.dual.evaluate(sol.lam, self.dual.target_adjustment(), mu)
            primal["information"] = self.dual.primal(sol.lam, mu)["information"]
        return sol, primal, psol.max_violation

    def data_in_containers(self) -> ChoiceData:
        """The data the containers hold: :attr:`data`, unless ``pm.set_data`` moved them."""
        c, d = self.containers, self.data
        X, available, chosen = (np.asarray(v.get_value()) for v in (c.X, c.available, c.chosen))
        situations = list(self.model.coords[SITUATION])
        if (X.shape == d.X.shape and situations == d.situations.tolist() and np.array_equal(X, d.X)
                and np.array_equal(available, d.available) and np.array_equal(chosen, d.chosen)):
            return d
        index = np.asarray(c.individual.get_value())
        known = np.asarray(list(self.model.coords.get(INDIVIDUAL, [])))
        individual = known[index] if index.size and known.size > index.max() else None
        return ChoiceData.from_arrays(X, chosen, available=available, individual=individual,
                                      situations=situations, alternatives=d.alternatives,
                                      attributes=d.attributes, check_identified=False)

    # ------------------------------------------------------------------ prediction
    def predict(self, lam, new_data: ChoiceData | None = None) -> xr.DataArray:
        """Choice probabilities at multipliers ``lam`` for ``new_data``, or for the data in the
        containers.

        ``new_data`` is swapped in with :func:`~pymc_maxent.set_choice_data` and the containers
        (which a Bayesian model passed as ``model=`` shares) are put back exactly as they were.

        Parameters
        ----------
        lam : array (C,) or (sample, C)
        new_data : ChoiceData, optional

        Returns
        -------
        DataArray (situation, alternative), or (sample, situation, alternative)
        """
        self.require_dual()
        lam = np.asarray(lam, dtype=float)
        rows = np.atleast_2d(lam)
        context = contextlib.nullcontext() if new_data is None else restored_containers(self.model)
        try:
            with context:
                if new_data is not None:
                    set_choice_data(new_data, self.model)
                self.dual.refresh()
                coords = self.coords()
                p = np.stack([self._probabilities(row) for row in rows])
        finally:
            if new_data is not None:
                self.dual.refresh()  # the default error support follows the restored N
        if lam.ndim == 1:
            return xr.DataArray(p[0], dims=(SITUATION, ALTERNATIVE), coords=coords, name="p")
        return xr.DataArray(p, dims=("sample", SITUATION, ALTERNATIVE), coords=coords, name="p")

    def _probabilities(self, lam) -> np.ndarray:
        mu = None
        if not self.dual.direct:
            mu = self.dual.solve_mu(lam, np.zeros(self.dual.n_situations))
        return self.dual.primal(lam, mu)["p"]

    def coords(self) -> dict[str, list]:
        """Situation and alternative labels of the data now in the containers."""
        return {dim: list(self.model.coords[dim]) for dim in (SITUATION, ALTERNATIVE)}


def fit_maxent(data: ChoiceData, moments: Sequence[Moment] | None = None, *, tier=None,
               solver: str = "dual", error_support="default", w0=None, probability_support=None,
               pi0=None, p0=None, model: pm.Model | None = None, reference=None, tol: float = 1e-10,
               maxiter: int = 100, chunk_size: int = CHUNK, on_unidentified: str = "warn",
               centre_noise: bool = True, dual_method: str = "newton", individual_support="default",
               situation_support="default", individual_chunk: int = INDIVIDUAL_CHUNK,
               check_separation: bool = True):
    """Fit a MaxEnt (GME) choice model: the one-call form of :class:`MaxEntEstimator`, or, for
    a mixed tier, the MaxEnt mixed logit.

    See :class:`MaxEntEstimator` for the parameters and :meth:`MaxEntEstimator.fit` for
    ``solver``, ``tol``, ``maxiter``, ``on_unidentified`` and ``dual_method``.

    Parameters
    ----------
    tier : str or ModelSpec, optional
        A tier (``"MNL-1"`` … ``"MXL-4"``, over all attributes of ``data``) or a
        :class:`~pymc_maxent.ModelSpec`, instead of ``moments``. A tier without random
        components is fitted by its twin's moments (a :class:`MaxEntResult`). A mixed tier
        (``MXL-1`` to ``MXL-3``) is fitted in two stages (``shared/design/maxent-tiers.md``):
        stage 1, the population GME of its fixed twin; stage 2, per individual, the GCE of the
        random components' moments with stage 1's ``p̂`` as prior, all individuals solved
        together by a batched damped Newton iteration
        (:func:`~pymc_maxent.maxent.individual.solve_individuals`); it returns an
        :class:`~pymc_maxent.maxent.individual_result.IndividualMaxEntResult`. ``MXL-4`` (or
        any specification with situation-level components) adds stage 3: per situation, the
        GCE of the situation-level components' moments with stage 2's ``p^(i)`` as prior,
        solved the same way with every situation as its own problem; it returns a
        :class:`~pymc_maxent.maxent.situation_result.SituationMaxEntResult`. One choice per
        situation says little beyond the individual's choices: expect a situation information
        index far below the individual one.
    individual_support : "default", "select", float, array or None
        Stage 2's error support: ``"default"`` 3 points on ``±1/√n_i`` (``n_i`` the
        individual's situations; the design note's rule), a number ``c`` for ``±c/√n_i`` (wider:
        more pooling toward the population), an array used for every individual, or None (no
        noise: each individual's conditional-logit MLE with the population as offset).
        ``"select"``: the width ``c`` among ``SUPPORT_WIDTHS`` with the best held-out log score
        on situations held out within individuals
        (:func:`~pymc_maxent.maxent.mixed.select_individual_support`, whose table the result
        keeps as ``support_selection``); worth it when a tier has several random components per
        individual and few situations, where the default pools too little. Refits (K-fold)
        keep the width chosen on the whole data.
    situation_support : "default", float or array
        Stage 3's error support (``MXL-4`` only), by the same rule at ``n = 1``: ``"default"``
        ``(−1, 0, 1)``, a number ``c`` for ``±c`` (wider: deviations closer to 0), or an array.
        None is refused: a single choice has no finite zero-noise deviation.
    individual_chunk : int
        Individuals (and situations, at stage 3) per chunk.
    check_separation : bool
        Count the individuals whose own choices are separated (one small LP each).

    Raises
    ------
    SpecificationError
        ``tier`` with ``moments``; ``situation_support`` for a tier without situation-level
        components.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import fit_maxent
    >>> res = fit_maxent(pmx.load_travel_mode())
    >>> res.converged, res.identified, res.max_violation < 1e-8, round(res.hit_rate, 2)
    (True, True, True, 0.69)
    """
    data.require_choices("a MaxEnt fit")
    maxiter = require_count(maxiter, "maxiter")
    chunk_size = require_count(chunk_size, "chunk_size")
    individual_chunk = require_count(individual_chunk, "individual_chunk")
    if tier is not None:
        from pymc_maxent.maxent.mixed import fit_mixed_maxent, tier_spec_of
        from pymc_maxent.model import maxent_moments

        if moments is not None:
            raise SpecificationError("give moments or a tier, not both")
        spec = tier_spec_of(tier, data, reference)
        if not any(c.random for c in spec.coefficients) and spec.constants != "random":
            moments = maxent_moments(spec, data)
        else:
            if solver != "dual":
                raise MaxEntError(f"a mixed tier is fitted by the dual; got solver={solver!r}")
            return fit_mixed_maxent(
                data, spec, individual_support=individual_support, situation_support=situation_support,
                model=model, tol=tol, maxiter=maxiter, dual_method=dual_method,
                individual_chunk=individual_chunk, check_separation=check_separation,
                on_unidentified=on_unidentified, error_support=error_support, w0=w0,
                probability_support=probability_support, pi0=pi0, p0=p0, chunk_size=chunk_size,
                centre_noise=centre_noise,
            )
    estimator = MaxEntEstimator(
        data, moments, error_support=error_support, w0=w0, probability_support=probability_support,
        pi0=pi0, p0=p0, model=model, reference=reference, chunk_size=chunk_size, centre_noise=centre_noise,
    )
    return estimator.fit(solver=solver, tol=tol, maxiter=maxiter, on_unidentified=on_unidentified,
                         dual_method=dual_method)
