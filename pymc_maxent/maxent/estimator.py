"""Fitting by maximum entropy: the compiled population problem over a model's data containers
(:class:`MaxEntEstimator`), and :func:`fit_maxent`, which runs the stages a tier asks for
(population → individuals → situations) and returns one :class:`~pymc_maxent.MaxEntResult`.
A fit's :class:`Recipe` (its frozen settings) refits it and saves it; :func:`load_fit` reads a
saved fit back without refitting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy.special import logsumexp

from pymc_maxent.data.choice_data import ALTERNATIVE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.data.containers import (
    NEW_INDIVIDUAL,
    ChoiceContainers,
    register_choice_data,
    require_observed_choices,
    restored_containers,
    set_choice_data,
)
from pymc_maxent.exceptions import ConvergenceWarning, IdentificationWarning, MaxEntError, SpecificationError
from pymc_maxent.maxent.group_dual import (
    GroupProblem,
    centre_features,
    choice_fit,
    random_features,
    separated,
)
from pymc_maxent.maxent.mixing import learn_mixing, mixing_problem, mixing_stage, saved_mixing
from pymc_maxent.maxent.moments import (
    Moment,
    MomentSet,
    default_moments,
    moment_sequence,
    population_name,
    population_spec,
    twin_moments,
)
from pymc_maxent.maxent.options import ChunkOptions, SolverOptions, SupportOptions, split_options
from pymc_maxent.maxent.population_dual import DualProblem, check_reach, single_thread_blas
from pymc_maxent.maxent.primal import PrimalProblem
from pymc_maxent.maxent.result import MaxEntResult, parameter_names
from pymc_maxent.maxent.stages import (
    GroupStage,
    PopulationStage,
    group_stage,
    likelihood_correction,
    population_stage,
    solve_dual,
    solve_groups,
)
from pymc_maxent.maxent.supports import (
    check_centre_noise,
    default_error_support,
    group_support,
    make_supports,
)
from pymc_maxent.numerics import Identification
from pymc_maxent.specification import ModelSpec, as_spec, resolve


def model_containers(data: ChoiceData, model: pm.Model | None) -> tuple[pm.Model, ChoiceContainers]:
    """The model's registered containers, registering ``data`` when it has none; when they hold
    other data (after a prediction, say), ``data`` is swapped in, so the fit is always of it."""
    if model is None:
        model = pm.Model(coords=data.coords)
    if "X" not in model.named_vars:
        return model, register_choice_data(data, model)
    containers = ChoiceContainers(X=model["X"], available=model["available"], chosen=model["chosen_index"],
                                  individual=model["individual_index"])
    held = (containers.X.get_value(), containers.available.get_value(), containers.chosen.get_value())
    if any(h.shape != d.shape or not np.array_equal(h, d)
           for h, d in zip(held, (data.X, data.available, data.chosen), strict=True)):
        set_choice_data(data, model)
    return model, containers


# ---------------------------------------------------------------------- stage 1 over the containers
class MaxEntEstimator:
    """A MaxEnt (GME) choice model over the data containers of a PyMC model: the population
    problem, compiled once.

    :meth:`fit` solves for the data currently in the containers, so after
    :func:`~pymc_maxent.set_choice_data` (or ``pm.set_data``) a new fit or prediction needs no
    recompilation.

    Parameters
    ----------
    data : ChoiceData
    moments : sequence of Moment, optional
        Constraint families (:mod:`pymc_maxent.maxent.moments`); default
        :func:`~pymc_maxent.maxent.moments.default_moments`, the twin of ``MNL-2``.
    model : pm.Model, optional
        A model whose containers to use (e.g. a Bayesian model from
        :func:`~pymc_maxent.build_model`), so that ``pm.set_data`` moves both.
    reference : alternative label, optional
        Reference alternative of the default moments.
    support_options : SupportOptions, optional
    chunk_options : ChunkOptions, optional
    **settings
        Their fields by name: ``error_support`` (``"default"``: 3 points on ``±1/√N``; None: no
        noise term), ``w0``, ``probability_support`` (the note's ``p = Σ s π``; default None: ``p``
        entered directly, GJP 1996), ``pi0``, ``p0`` (prior choice probabilities), ``centre_noise``
        (True: the noise sees each feature centred within each situation, so that no estimate
        depends on an attribute's origin; False: GJP 1996 as written, with an
        :class:`~pymc_maxent.maxent.supports.OriginWarning`), ``chunk_size``.

    Attributes
    ----------
    data, model, containers
    moments : MomentSet
    supports : Supports
    dual : DualProblem or None
        None with a constraint nonlinear in ``(p, ε)`` (the primal solver only).
    options : dict
        The supports, priors, ``chunk_size`` and ``centre_noise`` as JSON-ready values.

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
                 model: pm.Model | None = None, reference=None, support_options: SupportOptions | None = None,
                 chunk_options: ChunkOptions | None = None, **settings):
        _, supports, chunks = split_options(None, support_options, chunk_options, **settings)
        self.data = data
        self.model, self.containers = model_containers(data, model)
        moments = default_moments(data, reference) if moments is None else list(moment_sequence(moments))
        self.moments = MomentSet(moments, data, self.containers)
        self.supports = make_supports(np.asarray(data.available), **supports.population())
        self.centre_noise = check_centre_noise(supports.centre_noise, self.supports.error is not None)
        self.support_options = dataclasses.replace(supports, centre_noise=self.centre_noise)
        self.chunk_options = chunks
        self.dual = (DualProblem(self.moments, self.containers, self.supports, chunks.chunk_size,
                                 self.centre_noise)
                     if self.moments.user_linear else None)
        population = {k: v for k, v in self.support_options.to_dict().items()
                      if k not in ("individual_support", "situation_support")}
        self.options = population | {"chunk_size": chunks.chunk_size}

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
        return (np.asarray(self.containers.chosen.get_value()),
                np.asarray(self.containers.available.get_value(), dtype=bool))

    def prior_p0(self, available):
        """The prior ``p0``, or None when it is uniform over the available alternatives."""
        if self.dual is not None and self.dual.log_p0 is None:
            return None
        if self.supports.p0.shape != available.shape:  # new data in the containers: uniform unless given
            if self.dual is not None and self.dual.log_p0 is not None:
                self.dual.refresh()  # raises: a per-situation p0 does not carry over
            return None
        return self.supports.p0

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

    def coords(self) -> dict[str, list]:
        """Situation and alternative labels of the data now in the containers."""
        return {dim: list(self.model.coords[dim]) for dim in (SITUATION, ALTERNATIVE)}

    # ------------------------------------------------------------------ fitting
    def fit(self, data: ChoiceData | None = None, *, solver_options: SolverOptions | None = None,
            **settings) -> MaxEntResult:
        """Solve for ``data``, or for the data now in the containers.

        Parameters
        ----------
        data : ChoiceData, optional
            Swapped into the containers first; default whatever they hold.
        solver_options : SolverOptions, optional
        **settings
            Its fields by name: ``solver`` (``"dual"``, default, or ``"primal"``, the problem as
            written, for small N), ``tol`` (largest moment residual relative to the moment's
            reachable range), ``maxiter``, ``on_unidentified`` (``"warn"`` or ``"raise"``: a
            near-singular scaled Hessian or choice information), ``dual_method`` (``"newton"``, or
            SciPy's ``"trust-exact"``).

        Raises
        ------
        MaxEntError
            A moment with no variation within any situation, or out of reach (infeasible); an
            unknown ``solver`` or ``dual_method``.
        ChoiceDataError
            Data built for prediction (``chosen=None``).
        """
        options = split_options(solver_options, **settings)[0]
        if data is not None:
            data.require_choices("a MaxEnt fit")
            set_choice_data(data, self.model)
        require_observed_choices(self.model, "a MaxEnt fit")
        fitted = self.data_in_containers() if data is None else data
        stage = self.solve(options)
        recipe = Recipe(moments=tuple(self.moments.moments), spec=None, reference=None, solver=options,
                        supports=self.support_options, chunks=self.chunk_options)
        return MaxEntResult(model=self.model, data=fitted, spec=tuple(self.moments.moments), stages=(stage,),
                            problem=self, recipe=recipe)

    def solve(self, options: SolverOptions) -> PopulationStage:
        """Stage 1 for the data in the containers."""
        chosen, available = self.observed()
        if options.solver == "dual":
            self.require_dual()
            solved, primal, violation = self._solve_dual(options)
        else:
            solved, primal, violation = self._solve_primal(chosen)
        violation = max(violation, float(np.abs(primal["p"].sum(axis=1) - 1.0).max()))
        if "w" in primal:
            violation = max(violation, float(np.abs(primal["w"].sum(axis=-1)[available] - 1.0).max()))
        dual = self.dual
        return population_stage(
            terms=self.moments.terms, names=parameter_names(self.moments.terms), solved=solved, primal=primal,
            meat=None if dual is None else partial(dual.meat, mu=primal.get("mu")), solver=options.solver,
            likelihood=None if dual is None else self.likelihood_terms,
            on_unidentified=options.on_unidentified, chosen=chosen, available=available,
            p0=self.prior_p0(available), w0=self.supports.w0, error_support=self.current_error_support(),
            probability_support=self.supports.probability, n_situations=len(chosen), violation=violation)

    def likelihood_terms(self, lam) -> tuple[np.ndarray, np.ndarray]:
        """The gradient and Hessian (the choice information) of the dual without its noise term
        at ``lam``, for the data in the containers: ``∇D + Σ F̃ε̂`` and ``I``."""
        dual = self.dual
        mu = None if dual.direct else dual.solve_mu(lam, np.zeros(dual.n_situations))
        _, grad, _ = dual.evaluate(lam, dual.target_adjustment(), mu)
        primal = dual.primal(lam, mu)
        return grad + primal["noise_moment"], primal["information"]

    def _solve_dual(self, options: SolverOptions):
        dual = self.dual
        with single_thread_blas():
            dual.refresh()
            adjust = dual.target_adjustment()
            mu = None if dual.direct else np.zeros(dual.n_situations)

            def evaluate(lam):
                return dual.evaluate(lam, adjust, None if mu is None else dual.solve_mu(lam, mu))

            solved = solve_dual(evaluate, lambda: dual.reach(adjust), dual.C, self.moments.labels,
                                tol=options.tol, maxiter=options.maxiter, method=options.dual_method)
            mu = None if mu is None else dual.solve_mu(solved[0], mu).copy()
        primal = dual.primal(solved[0], mu) | ({} if mu is None else {"mu": mu})
        return solved, primal, float(np.abs(solved[2]).max())

    def _solve_primal(self, chosen):
        """The primal solve, with the dual's value, gradient and Hessian at its multipliers."""
        if self.dual is not None:  # the same checks of the moments as the dual's
            self.dual.refresh()
            check_reach(self.dual.reach(self.dual.target_adjustment()), self.moments.labels)
        psol = PrimalProblem(self.moments, self.containers, self.supports, self.centre_noise).solve()
        primal = {"p": psol.p, "e": psol.e} | {k: v for k, v in (("w", psol.w), ("pi",
                                                                                 psol.pi)) if v is not None}
        C = self.moments.n
        value, grad, hess = np.nan, np.full(C, np.nan), np.full((C, C), np.nan)
        if self.dual is not None:
            mu = None if self.dual.direct else self.dual.solve_mu(psol.lam, np.zeros(chosen.shape[0]))
            value, grad, hess = self.dual.evaluate(psol.lam, self.dual.target_adjustment(), mu)
            primal["information"] = self.dual.primal(psol.lam, mu)["information"]
            primal |= {} if mu is None else {"mu": mu}
        solved = (psol.lam, value, grad, hess, psol.converged, psol.message, psol.nit)
        return solved, primal, psol.max_violation

    # ------------------------------------------------------------------ prediction
    def predict(self, lam, new_data: ChoiceData | None = None) -> xr.DataArray:
        """Choice probabilities at multipliers ``lam`` (``(C,)`` or ``(sample, C)``) for
        ``new_data`` (swapped in, and the containers put back exactly as they were), or for the
        data in the containers."""
        self.require_dual()
        lam = np.asarray(lam, dtype=float)
        context = contextlib.nullcontext() if new_data is None else restored_containers(self.model)
        try:
            with context:
                if new_data is not None:
                    set_choice_data(new_data, self.model)
                self.dual.refresh()
                coords = self.coords()
                p = np.stack([self._probabilities(row) for row in np.atleast_2d(lam)])
        finally:
            if new_data is not None:
                self.dual.refresh()  # the default error support follows the restored N
        if lam.ndim == 1:
            return xr.DataArray(p[0], dims=(SITUATION, ALTERNATIVE), coords=coords, name="p")
        return xr.DataArray(p, dims=("sample", SITUATION, ALTERNATIVE), coords=coords, name="p")

    def _probabilities(self, lam) -> np.ndarray:
        mu = None if self.dual.direct else self.dual.solve_mu(lam, np.zeros(self.dual.n_situations))
        return self.dual.primal(lam, mu)["p"]


# ---------------------------------------------------------------------- the recipe of a fit
@dataclass(frozen=True)
class Recipe:
    """What a MaxEnt fit was fitted with: its moments or tier and its three records of settings
    (frozen), so that a refit or a reload is the same fit of other data."""

    moments: tuple | None
    spec: ModelSpec | None
    reference: object
    solver: SolverOptions
    supports: SupportOptions
    chunks: ChunkOptions

    def refit(self, data: ChoiceData) -> MaxEntResult:
        """The same fit of ``data`` (the separation check is skipped at the mixed tiers)."""
        given = [name for name in ("p0", "pi0") if getattr(self.supports, name) is not None]
        if given:
            raise SpecificationError(f"{given} were given per situation: they do not carry over to new data")
        solver = dataclasses.replace(self.solver,
                                     check_separation=False) if self.spec is not None else self.solver
        moments = None if self.moments is None or self.spec is not None else list(self.moments)
        return fit_maxent(data, moments, tier=self.spec, reference=self.reference, solver_options=solver,
                          support_options=self.supports, chunk_options=self.chunks)

    def settings(self) -> dict:
        """The three records as JSON-ready values (:func:`load_fit` takes them back)."""
        return {"solver": self.solver.to_dict(), "supports": self.supports.to_dict(),
                "chunks": self.chunks.to_dict()}

    def solve_options(self) -> dict:
        s = self.solver
        return {"tol": s.tol, "maxiter": s.maxiter, "on_unidentified": s.on_unidentified,
                "dual_method": s.dual_method}

    def stage_options(self) -> dict:
        """Every setting by name (supports, solver, chunks), as given."""
        return self.supports.to_dict() | self.solver.to_dict() | self.chunks.to_dict()

    @property
    def population(self) -> Recipe:
        """The recipe of stage 1 alone (the tier's fixed twin)."""
        return dataclasses.replace(self, spec=None, moments=None if self.spec is None else self.moments)


# ---------------------------------------------------------------------- the entry point
def fit_maxent(data: ChoiceData, moments: Sequence[Moment] | None = None, *, tier=None,
               model: pm.Model | None = None, reference=None, solver_options: SolverOptions | None = None,
               support_options: SupportOptions | None = None, chunk_options: ChunkOptions | None = None,
               **settings) -> MaxEntResult:
    """Fit a choice model by maximum entropy: the population GME of ``moments`` (or of a tier's
    fixed twin), and at the mixed tiers the MaxEnt mixed logit.

    Parameters
    ----------
    data : ChoiceData
    moments : sequence of Moment, optional
        Constraint families; default the twin of ``MNL-2`` (attribute sums and shares).
    tier : str or ModelSpec, optional
        A tier (``"MNL-1"`` … ``"MXL-4"``, over all attributes of ``data``) or a
        :class:`~pymc_maxent.ModelSpec`, instead of ``moments``. A tier without random
        components is fitted by its twin's moments. A mixed tier (``MXL-1`` to ``MXL-3``) is
        fitted in two stages (``shared/design/maxent-tiers.md``): stage 1, the population GME of
        its fixed twin; stage 2, per individual, the GCE of the random components' moments with
        stage 1's ``p̂`` as prior, all individuals solved together by the batched Newton solver.
        ``MXL-4`` (any specification with situation-level components) adds stage 3: per
        situation, the GCE of the situation-level components' moments with stage 2's ``p^(i)``
        as prior. One choice per situation says little beyond the individual's: expect a
        situation information index far below the individual one.
    model : pm.Model, optional
        A model whose containers to use, so that ``pm.set_data`` moves both.
    reference : alternative label, optional
    solver_options, support_options, chunk_options : SolverOptions, SupportOptions, ChunkOptions
        The settings as records (:mod:`~pymc_maxent.maxent.options`), or:
    **settings
        Their fields by name (:mod:`~pymc_maxent.maxent.options`): ``solver``, ``dual_method``,
        ``tol``, ``maxiter``, ``on_unidentified``, ``check_separation``; ``error_support``,
        ``w0``, ``probability_support``, ``pi0``, ``p0``, ``centre_noise``; ``individual_support``
        (``"learn"``, the default: the pooling learnt with the mixing distribution ``N(μ, Σ)``,
        :mod:`~pymc_maxent.maxent.mixing`; ``"fixed"``: 3 points on ``±1/√n_i``, the design
        note's rule, also spelt ``"default"``; a number ``c`` for ``±c/√n_i``; an array; None; or
        ``"select"``: the width with the best held-out log score on situations held out within
        individuals, :func:`select_individual_support`, whose table the fit keeps as
        ``support_selection``), ``situation_support`` (stage 3's, by the fixed rule at
        ``n = 1``; None is refused); ``mixing_tol``, ``mixing_maxiter``, ``mixing_points``,
        ``mixing_individuals`` (the learnt pooling's); ``chunk_size``, ``individual_chunk``.

    Returns
    -------
    MaxEntResult

    Raises
    ------
    SpecificationError
        ``tier`` with ``moments``; ``situation_support`` for a tier without situation-level
        components; an unknown setting.
    ChoiceDataError
        Data built for prediction (``chosen=None``).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> res = pmx.fit_maxent(pmx.load_travel_mode())
    >>> res.converged, res.identified, res.max_violation < 1e-8, round(res.hit_rate, 2)
    (True, True, True, 0.69)
    """
    data.require_choices("a MaxEnt fit")
    solver, supports, chunks = split_options(solver_options, support_options, chunk_options, **settings)
    if tier is not None:
        if moments is not None:
            raise SpecificationError("give moments or a tier, not both")
        spec = as_spec(tier, data.attributes.tolist(), reference=reference)
        if spec.nests or spec.space != "preference":  # not linear in the parameters (docs/theory.md)
            raise MaxEntError(f"{spec.name}: MaxEnt has no twin of a nested logit or of WTP space")
        if _has_random(spec):
            return fit_mixed_maxent(data, spec, model=model, solver=solver, supports=supports, chunks=chunks)
        moments = twin_moments(spec, data)
    estimator = MaxEntEstimator(data, moments, model=model, reference=reference, support_options=supports,
                                chunk_options=chunks)
    return estimator.fit(solver_options=solver)


def _has_random(spec: ModelSpec) -> bool:
    return spec.constants == "random" or any(c.random for c in spec.coefficients)


# ---------------------------------------------------------------------- stages 2 and 3
#: ``individual_support`` of the learnt pooling (the default at the mixed tiers).
LEARN = "learn"


def mixed_model(data: ChoiceData, model: pm.Model | None = None) -> pm.Model:
    """``model`` (default a new one with the data's coords) with a ``new_individual`` dim: with
    it, ``set_choice_data`` gives new individuals their own index past the known ones, and the
    prediction graph gives them ``δ = 0`` (the population)."""
    if model is None:
        return pm.Model(coords=data.coords | {NEW_INDIVIDUAL: []})
    if NEW_INDIVIDUAL not in model.coords:
        model.add_coord(NEW_INDIVIDUAL, [])
    return model


def individual_problem(X, available, chosen, individual, n_individuals: int, resolved, p0, individual_support,
                       centre_noise: bool = True, function=None) -> GroupProblem:
    """Stage 2's arrays: the random components' features, stage 1's ``ln p̂`` (``p0``, of the same
    situations) as the prior and the individual error supports; ``individual`` positions in
    ``0..n_individuals-1`` and (optionally) the compiled function of
    :func:`~pymc_maxent.maxent.group_dual.random_utility_function`."""
    available = np.asarray(available, dtype=bool)
    G = random_features(X, available, resolved, function)
    individual = np.asarray(individual)
    support, scale = group_support(individual_support, np.bincount(individual, minlength=n_individuals))
    with np.errstate(divide="ignore"):  # log 0 where unavailable
        log_p0 = np.where(available, np.log(p0), -np.inf)
    return GroupProblem(G=G, G_noise=centre_features(G, available) if centre_noise else G, log_p0=log_p0,
                        chosen=np.asarray(chosen), available=available, group=individual,
                        n_groups=n_individuals, support=support, scale=scale)


def data_individual_problem(data: ChoiceData, resolved, p0, individual_support,
                            centre_noise: bool) -> GroupProblem:
    """:func:`individual_problem` of a data object."""
    return individual_problem(data.X, data.available, data.chosen, data.individual, data.n_individuals,
                              resolved,
                              p0, individual_support, centre_noise)


def situation_problem(individual: GroupProblem, p_individual: np.ndarray, components,
                      situation_support="default") -> GroupProblem:
    """Stage 3's arrays: every situation its own group, with the features of the situation-level
    ``components`` (positions among the random components), stage 2's ``ln p^(i)`` as the prior
    and the error support of ``situation_support`` at ``n = 1``.

    Raises
    ------
    MaxEntError
        ``situation_support=None`` (a single choice is always separated: without a noise term
        its deviation runs off to infinity) or a bad support.
    """
    components = np.asarray(components, dtype=int)
    N = len(individual.chosen)
    support, scale = situation_support_scale(situation_support, N)
    G = individual.G[..., components]
    G_noise = G if individual.G_noise is individual.G else individual.G_noise[..., components]
    with np.errstate(divide="ignore"):  # log 0 where unavailable
        log_p = np.where(individual.available, np.log(p_individual), -np.inf)
    return GroupProblem(G=G, G_noise=G_noise, log_p0=log_p, chosen=individual.chosen,
                        available=individual.available,
                        group=np.arange(N), n_groups=N, support=support, scale=scale)


def situation_support_scale(situation_support, n_situations: int):
    """:func:`~pymc_maxent.maxent.supports.group_support` at ``n = 1`` for each situation,
    refusing ``None``."""
    if situation_support is None:
        raise MaxEntError("situation_support=None: a situation has one choice, which a deviation "
                          "without a noise term fits exactly by running off to infinity; give a support")
    return group_support(situation_support, np.ones(n_situations), name="situation_support")


def fit_mixed_maxent(data: ChoiceData, spec: ModelSpec, *, model=None, solver: SolverOptions,
                     supports: SupportOptions, chunks: ChunkOptions) -> MaxEntResult:
    """Stages 1 and 2 (and at ``MXL-4`` stage 3) of the MaxEnt mixed logit; see :func:`fit_maxent`."""
    resolved = resolve(spec, data)
    supports, selection = _individual_support(data, spec, resolved, solver, supports, chunks)
    estimator = MaxEntEstimator(data, twin_moments(population_spec(spec), data), model=mixed_model(data,
                                                                                                   model),
                                support_options=supports, chunk_options=chunks)
    population = estimator.solve(solver)
    names = parameter_names(population.terms)
    missing = [label for label in resolved.random_labels if population_name(label) not in names]
    if missing:
        raise SpecificationError(f"{spec.name}: the population fit has no parameter for the random "
                                 f"components {missing}")
    stages = [population, *_group_stages(data, resolved, population, solver, supports, chunks,
                                         estimator.centre_noise)]
    recipe = Recipe(moments=tuple(estimator.moments.moments), spec=spec, reference=None, solver=solver,
                    supports=supports, chunks=chunks)
    result = MaxEntResult(model=estimator.model, data=data, spec=spec, stages=tuple(stages),
                          problem=estimator,
                          recipe=recipe, resolved=resolved, support_selection=selection)
    if not result.converged:
        warnings.warn(f"MaxEnt mixed logit: {result.convergence_message()}", ConvergenceWarning, stacklevel=3)
    return result


def _individual_support(data, spec, resolved, solver, supports, chunks):
    """The supports with the individual width checked (or selected: ``"select"``), before stage 1."""
    situation_level = len(resolved.situation_components) > 0
    if not resolved.n_random:
        raise SpecificationError(f"{spec.name}: no random components; fit it with the population moments")
    if not situation_level and not (isinstance(supports.situation_support, str)
                                    and supports.situation_support == "default"):
        raise SpecificationError(f"{spec.name} has no situation-level components: situation_support="
                                 f"{supports.situation_support!r} applies to MXL-4 only")
    for name in ("probability_support", "p0", "pi0"):
        if getattr(supports, name) is not None:
            raise MaxEntError(f"{name} is not available with a mixed tier: stage 2 needs the direct form "
                              "of p with the population fit as its prior")
    selection = None
    if learns(supports):
        if situation_level:
            situation_support_scale(supports.situation_support, 1)
        return supports, selection
    if isinstance(supports.individual_support, str) and supports.individual_support == "select":
        selection = select_individual_support(data, spec, solver_options=solver, chunk_options=chunks,
                                              support_options=dataclasses.replace(supports,
                                                                                  individual_support=1.0))
        supports = dataclasses.replace(supports,
                                       individual_support=float(selection.index[selection["best"]][0]))
    group_support(supports.individual_support, np.ones(1))  # checked before stage 1 runs
    if situation_level:
        situation_support_scale(supports.situation_support, 1)
    return supports, selection


def learns(supports: SupportOptions) -> bool:
    """Whether the individual stage's pooling is learnt (``individual_support="learn"``)."""
    return isinstance(supports.individual_support, str) and supports.individual_support == LEARN


def learnt_individuals(data, resolved, population: PopulationStage, solver: SolverOptions,
                       chunks: ChunkOptions, centre_noise: bool):
    """The mixing stage (:func:`~pymc_maxent.maxent.mixing.learn_mixing`, from every individual
    or a seeded sample of ``mixing_individuals``), stage 2's problem at it, and a warm start."""
    base = data_individual_problem(data, resolved, population.p, None, centre_noise)
    names = parameter_names(population.terms)
    mp = mixing_problem(data, resolved.spec, resolved, base, names, -population.lam)
    present = np.flatnonzero(base.n_situations > 0)
    learn_on = mp
    if len(present) > solver.mixing_individuals or len(present) < base.n_groups:
        chosen = np.random.default_rng(0).choice(present, min(len(present), solver.mixing_individuals),
                                                 replace=False)
        learn_on = mp.subset(np.sort(chosen))
        present = np.sort(chosen)
    learnt = learn_mixing(learn_on, tol=solver.mixing_tol, maxiter=solver.mixing_maxiter,
                          n_points=solver.mixing_points, chunk=chunks.individual_chunk,
                          solve={"tol": solver.tol, "maxiter": solver.maxiter},
                          keys=data.individuals[present].tolist())
    stage = mixing_stage(learn_on, learnt, resolved.random_labels, solver.mixing_points,
                         data.individuals[present].tolist())
    if not stage.converged:
        warnings.warn(f"MaxEnt mixed logit: the mixing distribution did not converge in {stage.nit} "
                      f"iterations (mixing_maxiter)", ConvergenceWarning, stacklevel=4)
    if not stage.identified:
        message = (f"MaxEnt mixed logit: the mixing distribution is NOT identified by the choices (its "
                   f"information has condition number {stage.identification.condition_number:.3g}, nearly "
                   f"flat along {stage.identification.describe()}): those standard errors are inf; fewer "
                   "random components, an uncorrelated specification or more situations per individual "
                   "identify it")
        if solver.on_unidentified == "raise":
            raise SpecificationError(message)
        warnings.warn(message, IdentificationWarning, stacklevel=4)
    x0 = learnt["delta"] if learn_on is mp else None
    return stage, mp.individual_problem(stage.fixed, stage.mu, stage.cov), x0


def _group_stages(data, resolved, population, solver, supports, chunks, centre_noise) -> list:
    """The mixing stage where the pooling is learnt, stage 2, and stage 3 where the tier has
    situation-level components."""
    stages, x0 = [], None
    if learns(supports):
        mixing, problem, x0 = learnt_individuals(data, resolved, population, solver, chunks, centre_noise)
        stages.append(mixing)
    else:
        problem = data_individual_problem(data, resolved, population.p, supports.individual_support,
                                          centre_noise)
    solved = solve_groups(problem, tol=solver.tol, maxiter=solver.maxiter, chunk_size=chunks.individual_chunk,
                          x0=x0)
    sep = separated(problem) if solver.check_separation else None
    labels = data.individuals.tolist()
    stages.append(group_stage("individual", labels, resolved.random_labels, problem, solved, sep))
    components = np.asarray(resolved.situation_components, dtype=int)
    if components.size:
        third = situation_problem(problem, solved["p"], components, supports.situation_support)
        third_solved = solve_groups(third, tol=solver.tol, maxiter=solver.maxiter,
                                    chunk_size=chunks.individual_chunk)
        labels = [resolved.random_labels[c] for c in components]
        stages.append(group_stage("situation", data.situations.tolist(), labels, third, third_solved, None))
    return stages


# ---------------------------------------------------------------------- the width by held-out score
def split_within_individuals(data: ChoiceData, test_fraction: float = 0.25, seed: int = 0):
    """Train and test data with situations held out within individuals: each individual with at
    least two situations gives ``round(test_fraction · n_i)`` of them (at least one, and never
    all) to the test set.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import split_within_individuals
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=10, n_situations=8, seed=0)
    >>> train, test = split_within_individuals(data, 0.25)
    >>> train.n_situations, test.n_situations, test.n_individuals
    (60, 20, 10)
    """
    if not 0.0 < test_fraction < 1.0:
        raise SpecificationError(f"test_fraction must lie strictly between 0 and 1; got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    is_test = np.zeros(data.n_situations, dtype=bool)
    for i in range(data.n_individuals):
        rows = np.flatnonzero(data.individual == i)
        if len(rows) < 2:
            continue
        k = min(len(rows) - 1, max(1, int(round(test_fraction * len(rows)))))
        is_test[rng.choice(rows, k, replace=False)] = True
    if not is_test.any():
        raise SpecificationError("no individual has two situations: nothing to hold out within individuals")
    return data.subset(~is_test), data.subset(is_test)


#: The widths ``c`` (support ``±c/√n_i``) that ``individual_support="select"`` chooses among.
SUPPORT_WIDTHS = (0.25, 0.5, 1.0, 2.0, 4.0)


def select_individual_support(data: ChoiceData, tier="MXL-1", widths=SUPPORT_WIDTHS, *,
                              test_fraction: float = 0.25, seed: int = 0,
                              solver_options: SolverOptions | None = None,
                              support_options: SupportOptions | None = None,
                              chunk_options: ChunkOptions | None = None, **settings) -> pd.DataFrame:
    """The width of the individual error support by held-out log score, on situations held out
    within individuals (:func:`split_within_individuals`).

    Stage 1 is fitted once on the training situations (it does not depend on the individual
    support); stage 2 is solved again for each width ``c`` (support ``±c/√n_i``, ``c = 1`` being
    the default rule) and scored on the held-out situations with each individual's ``δ_i``.

    Returns
    -------
    DataFrame
        Index ``width`` (and ``inf``: the population alone, ``δ = 0``); columns
        ``heldout_log_score``, ``heldout_log_score_mean`` (per held-out situation), ``n_converged``
        and ``best`` (the highest score among the finite widths).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import select_individual_support
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=12, seed=0)
    >>> table = select_individual_support(data, "MXL-1", widths=(0.5, 1.0, 2.0))
    >>> table.index.tolist(), int(table["best"].sum())
    ([0.5, 1.0, 2.0, inf], 1)
    """
    if "individual_support" in settings:
        raise SpecificationError("select_individual_support chooses individual_support: leave it out")
    solver, supports, chunks = split_options(solver_options, support_options, chunk_options, **settings)
    widths = [float(c) for c in widths]
    for c in widths:
        group_support(c, np.ones(1))
    train, test = split_within_individuals(data, test_fraction, seed)
    fit = fit_maxent(train, tier=tier, solver_options=dataclasses.replace(solver, check_separation=False),
                     chunk_options=chunks, support_options=dataclasses.replace(supports,
                                                                               individual_support=1.0))
    known = {label: k for k, label in enumerate(train.individuals.tolist())}
    position = np.array([known[label] for label in test.individuals[test.individual].tolist()])
    with np.errstate(divide="ignore"):
        log_p0 = np.where(test.available, np.log(fit.population.predict(test).values[0, 0]), -np.inf)
    G_test = random_features(test.X, test.available, fit.resolved)
    rows = {}
    for c in [*widths, np.inf]:
        if np.isfinite(c):
            solved = solve_groups(fit.individual_problem.with_support(np.array([-c, 0.0, c])), tol=solver.tol,
                                  maxiter=solver.maxiter)
            delta, converged = solved["delta"], int(solved["converged"].sum())
        else:
            delta, converged = np.zeros_like(fit.delta), fit.n_individuals
        logits = log_p0 - np.einsum("njr,nr->nj", G_test, delta[position])
        log_p = logits - logsumexp(logits, axis=1, keepdims=True)
        score = float(log_p[np.arange(test.n_situations), test.chosen].sum())
        rows[c] = {"heldout_log_score": score, "heldout_log_score_mean": score / test.n_situations,
                   "n_converged": converged}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "width"
    finite = table.index[np.isfinite(table.index)]
    table["best"] = table.index == table.loc[finite, "heldout_log_score"].idxmax()
    return table


# ---------------------------------------------------------------------- saved fits
#: What :func:`load_fit` reads of a group stage.
SAVED_GROUP = ("delta", "grad", "hessian", "information", "value", "iterations", "converged", "reach", "kl",
               "information_index", "p", "eps")


def load_fit(tree, data: ChoiceData, spec, *, model: pm.Model | None = None, solver: dict | None = None,
             supports: dict | None = None, chunks: dict | None = None) -> MaxEntResult:
    """The fit saved by :meth:`MaxEntResult.to_datatree <pymc_maxent.MaxEntResult.to_datatree>`,
    without refitting: the population problem is rebuilt (and compiled) from ``data``, ``spec``
    (the moments, or the tier) and the settings of :meth:`MaxEntResult.settings
    <pymc_maxent.MaxEntResult.settings>`; the stages are read from their groups.

    Raises
    ------
    MaxEntError
        A tree without the stages' groups or variables, or whose arrays do not match ``data``.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import load_fit
    >>> data = pmx.load_travel_mode()
    >>> res = pmx.fit_maxent(data)
    >>> again = load_fit(res.to_datatree(), data, res.spec, **res.settings())
    >>> bool((again.estimates() == res.estimates()).all().all())
    True
    """
    solver, supports, chunks = (kind(**(values or {})) for kind, values in
                                ((SolverOptions, solver), (SupportOptions, supports), (ChunkOptions, chunks)))
    mixed = isinstance(spec, ModelSpec) and _has_random(spec)
    if not mixed:
        moments = twin_moments(spec, data) if isinstance(spec, ModelSpec) else list(spec)
        estimator = MaxEntEstimator(data, moments, model=model, support_options=supports,
                                    chunk_options=chunks)
        stage = _saved_population(_group(tree, "maxent", ("lam", "cov", "cov_robust", "p", "eps")), estimator)
        recipe = Recipe(moments=tuple(moments), spec=None, reference=None, solver=solver, supports=supports,
                        chunks=chunks)
        return MaxEntResult(model=estimator.model, data=data, spec=tuple(moments), stages=(stage,),
                            problem=estimator, recipe=recipe)
    resolved = resolve(spec, data)
    individual_group = _group(tree, "maxent", SAVED_GROUP)
    shape = (data.n_individuals, resolved.n_random)
    if individual_group["delta"].shape != shape:  # before anything is compiled
        raise MaxEntError(f"the saved individual stage has delta {individual_group['delta'].shape}; the data "
                          "and "
                          f"{spec.name} need {shape}")
    estimator = MaxEntEstimator(data, twin_moments(population_spec(spec), data), model=mixed_model(data,
                                                                                                   model),
                                support_options=supports, chunk_options=chunks)
    population = _saved_population(_group(tree, "maxent_population", ("lam", "cov", "cov_robust", "p",
                                                                      "eps")),
                                   estimator)
    stages = [population]
    if learns(supports):
        stages.append(saved_mixing(_group(tree, "maxent_mixing", ("mu", "cov", "fixed", "information"))))
        base = data_individual_problem(data, resolved, population.p, None, estimator.centre_noise)
        mp = mixing_problem(data, spec, resolved, base, parameter_names(population.terms), -population.lam)
        problem = mp.individual_problem(stages[1].fixed, stages[1].mu, stages[1].cov)
    else:
        problem = data_individual_problem(data, resolved, population.p, supports.individual_support,
                                          estimator.centre_noise)
    labels = data.individuals.tolist()
    stages.append(_saved_group(individual_group, "individual", labels, resolved.random_labels, problem))
    components = np.asarray(resolved.situation_components, dtype=int)
    if components.size:
        third = situation_problem(problem, stages[-1].p, components, supports.situation_support)
        stages.append(_saved_group(_group(tree, "maxent_situation", SAVED_GROUP), "situation",
                                   data.situations.tolist(), [resolved.random_labels[c] for c in components],
                                   third))
    recipe = Recipe(moments=tuple(estimator.moments.moments), spec=spec, reference=None, solver=solver,
                    supports=supports, chunks=chunks)
    return MaxEntResult(model=estimator.model, data=data, spec=spec, stages=tuple(stages), problem=estimator,
                        recipe=recipe, resolved=resolved)


def _group(tree, name: str, variables) -> xr.Dataset:
    try:
        node = tree[name]
    except KeyError:
        raise MaxEntError(f"the tree has no {name!r} group: not a saved MaxEnt fit of this tier") from None
    group = node.to_dataset() if hasattr(node, "to_dataset") else node
    missing = [var for var in variables if var not in group]
    if missing:
        raise MaxEntError(f"the {name!r} group lacks the variables {missing}: not a saved MaxEnt fit")
    return group


def _saved_population(point: xr.Dataset, estimator: MaxEntEstimator) -> PopulationStage:
    attrs = point.attrs
    chosen, available = estimator.observed()
    if point["p"].shape != available.shape or point["lam"].size != estimator.moments.n:
        raise MaxEntError(f"the saved population stage has p {point['p'].shape} and {point['lam'].size} "
                          f"multipliers; the data and moments need {available.shape} and "
                          f"{estimator.moments.n}")
    ident = Identification(bool(attrs["identified"]), float(attrs["condition_number"]),
                           float(attrs["information_condition_number"]))
    mu = point["mu"].values if "mu" in point else None
    correction = {}
    if estimator.dual is not None:
        estimator.dual.refresh()
        correction = likelihood_correction(point["lam"].values, estimator.likelihood_terms,
                                           partial(estimator.dual.meat, mu=mu))
    return PopulationStage(
        terms=tuple(estimator.moments.terms), lam=point["lam"].values, mu=mu,
        dual_value=float(attrs["dual_value"]), grad=None, hess=None, **correction, cov=point["cov"].values,
        cov_robust=point["cov_robust"].values, identification=ident, solver=str(attrs["solver"]),
        converged=bool(attrs["converged"]), message=str(attrs["message"]), nit=int(attrs["iterations"]),
        max_violation=float(attrs["max_violation"]), p=point["p"].values, eps=point["eps"].values,
        w=point["w"].values if "w" in point else None, pi=point["pi"].values if "pi" in point else None,
        chosen=chosen, available=available, p0=estimator.prior_p0(available), w0=estimator.supports.w0,
        error_support=estimator.current_error_support(), probability_support=estimator.supports.probability,
        n_situations=len(chosen))


def _saved_group(point: xr.Dataset, level: str, labels, components, problem: GroupProblem) -> GroupStage:
    shape = (problem.n_groups, len(components))
    if point["delta"].shape != shape or point["p"].shape != problem.available.shape:
        raise MaxEntError(f"the saved {level} stage has delta {point['delta'].shape} and p "
                          f"{point['p'].shape}; "
                          f"the data and tier need {shape} and {problem.available.shape}")
    arrays = {name: point[name].values for name in ("delta", "grad", "hessian", "information", "value",
                                                    "reach",
                                                    "kl", "information_index", "p", "eps")}
    loglik, hits = choice_fit(arrays["p"], problem.chosen)
    sep = point["separated"].values.astype(bool) if "separated" in point else None
    return GroupStage(level=level, labels=tuple(labels), components=tuple(components), **arrays,
                      nit=point["iterations"].values, converged=point["converged"].values.astype(bool),
                      loglik=loglik, hits=hits, n=len(problem.chosen), n_situations=problem.n_situations,
                      separated=sep, support=problem.support, scale=problem.scale, problem=problem)
