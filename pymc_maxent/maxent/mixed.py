"""The MaxEnt mixed logit (``shared/design/maxent-tiers.md``): population GME (stage 1), then
every individual's GCE with the population solution as prior (stage 2), for the tiers ``MXL-1``
to ``MXL-4``; at ``MXL-4``, a third stage of the same form per situation, with stage 2's
probabilities as its prior, for the components with a situation-level deviation.

Stage 3 is stage 2's machinery (:class:`~pymc_maxent.maxent.individual.IndividualProblem`,
:func:`~pymc_maxent.maxent.individual.solve_individuals`) with every situation as its own
"individual": features ``G_t`` of the situation-level components, prior ``ln p^(i)_t`` and the
error support of the same rule at ``n = 1``. One observation per situation carries little
information beyond the individual's: expect a situation information index near zero, and at
most ``J − 1`` identified directions of each situation's deviation.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pymc as pm

from pymc_maxent.bayes.specification import ModelSpec, as_spec, resolve
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.containers import NEW_INDIVIDUAL
from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError, SpecificationError
from pymc_maxent.maxent.individual import (
    INDIVIDUAL_CHUNK,
    IndividualProblem,
    centre_features,
    random_features,
    separated,
    solve_individuals,
    support_scale,
)


def population_spec(spec: ModelSpec) -> ModelSpec:
    """The tier's fixed twin: every random component fixed at its population value (random
    constants become fixed constants).

    Examples
    --------
    >>> from pymc_maxent.bayes.specification import tier_spec
    >>> from pymc_maxent.maxent.mixed import population_spec
    >>> twin = population_spec(tier_spec("MXL-2", ["x0"]))
    >>> twin.constants, twin.coefficients[0].random
    ('fixed', None)
    """
    coefficients = tuple(dataclasses.replace(c, random=None, level="individual") for c in spec.coefficients)
    constants = "fixed" if spec.constants == "random" else spec.constants
    return dataclasses.replace(spec, coefficients=coefficients, constants=constants, correlated=False,
                               name=f"{spec.name} population")


def population_name(label: str) -> str:
    """The stage-1 parameter name of a random component's label (``asc[a]`` → ``alpha[a]``,
    ``x0`` → ``beta[x0]``, ``x0[a]`` → ``beta[x0[a]]``)."""
    return f"alpha[{label[4:-1]}]" if label.startswith("asc[") else f"beta[{label}]"


def tier_spec_of(tier, data: ChoiceData, reference=None) -> ModelSpec:
    """A tier name (over all attributes) or a :class:`~pymc_maxent.ModelSpec`, as a spec."""
    spec = as_spec(tier, data.attributes.tolist(), reference=reference)
    if spec.nests or spec.space != "preference":  # not linear in the parameters (docs/theory.md)
        raise MaxEntError(f"{spec.name}: MaxEnt has no twin of a nested logit or of WTP space")
    return spec


def mixed_model(data: ChoiceData, model: pm.Model | None = None) -> pm.Model:
    """``model`` (default a new one with the data's coords) with a ``new_individual`` dim: with
    it, ``set_choice_data`` gives new individuals their own index past the known ones, and the
    prediction graph gives them ``δ = 0`` (the population)."""
    if model is None:
        return pm.Model(coords=data.coords | {NEW_INDIVIDUAL: []})
    if NEW_INDIVIDUAL not in model.coords:
        model.add_coord(NEW_INDIVIDUAL, [])
    return model


def individual_problem(data: ChoiceData, resolved, population, individual_support) -> IndividualProblem:
    """Stage 2's arrays: the random components' features of ``data``, stage 1's ``ln p̂`` as the
    prior and the individual error supports."""
    return individual_arrays(data.X, data.available, data.chosen, data.individual, data.n_individuals,
                             resolved, population.p, individual_support, population.problem.centre_noise)


def individual_arrays(X, available, chosen, individual, n_individuals: int, resolved, p0,
                      individual_support, centre_noise: bool = True, function=None) -> IndividualProblem:
    """:func:`individual_problem` from plain arrays: ``individual`` positions in
    ``0..n_individuals-1``, stage 1's probabilities ``p0`` of the same situations and
    (optionally) the compiled function of :func:`~pymc_maxent.maxent.individual.random_features`."""
    available = np.asarray(available, dtype=bool)
    G = random_features(X, available, resolved, function)
    counts = np.bincount(np.asarray(individual), minlength=n_individuals)
    support, scale = support_scale(individual_support, counts)
    with np.errstate(divide="ignore"):  # log 0 where unavailable
        log_p0 = np.where(available, np.log(p0), -np.inf)
    return IndividualProblem(
        G=G, G_noise=centre_features(G, available) if centre_noise else G, log_p0=log_p0,
        chosen=np.asarray(chosen), available=available, individual=np.asarray(individual),
        n_individuals=n_individuals, support=support, scale=scale,
    )


def situation_problem(individual: IndividualProblem, p_individual: np.ndarray, components,
                      situation_support="default") -> IndividualProblem:
    """Stage 3's arrays: every situation its own problem, with the features of the
    situation-level ``components`` (positions among the random components), stage 2's
    ``ln p^(i)`` as the prior and the error support of ``situation_support`` at ``n = 1``.

    Raises
    ------
    MaxEntError
        ``situation_support=None`` (a single choice is always separated: without a noise term
        its deviation runs off to infinity) or a bad support.

    Examples
    --------
    >>> import numpy as np, pymc_maxent as pmx
    >>> from pymc_maxent.maxent.mixed import situation_problem
    >>> data, _ = pmx.simulate_choices("MXL-4", n_individuals=4, n_situations=3, seed=0)
    >>> fit = pmx.fit_maxent(data, tier="MXL-4")
    >>> problem = situation_problem(fit.problem, fit.p_individual, [2, 3, 4])
    >>> problem.n_individuals, problem.G.shape, problem.support.tolist()
    (12, (12, 3, 3), [-1.0, 0.0, 1.0])
    """
    components = np.asarray(components, dtype=int)
    N = len(individual.chosen)
    support, scale = situation_support_scale(situation_support, N)
    G = individual.G[..., components]
    G_noise = G if individual.G_noise is individual.G else individual.G_noise[..., components]
    with np.errstate(divide="ignore"):  # log 0 where unavailable
        log_p = np.where(individual.available, np.log(p_individual), -np.inf)
    return IndividualProblem(G=G, G_noise=G_noise, log_p0=log_p, chosen=individual.chosen,
                             available=individual.available, individual=np.arange(N), n_individuals=N,
                             support=support, scale=scale)


def situation_support_scale(situation_support, n_situations: int):
    """:func:`~pymc_maxent.maxent.individual.support_scale` at ``n = 1`` for each of
    ``n_situations`` situations, refusing ``None``."""
    if situation_support is None:
        raise MaxEntError("situation_support=None: a situation has one choice, which a deviation "
                          "without a noise term fits exactly by running off to infinity; give a support")
    return support_scale(situation_support, np.ones(n_situations), name="situation_support")


def fit_mixed_maxent(data: ChoiceData, spec: ModelSpec, *, individual_support="default",
                     situation_support="default", model: pm.Model | None = None, tol: float = 1e-10,
                     maxiter: int = 100, individual_chunk: int = INDIVIDUAL_CHUNK,
                     check_separation: bool = True, on_unidentified: str = "warn",
                     dual_method: str = "newton", **population_options):
    """Stages 1 and 2 (and at ``MXL-4`` stage 3) of the MaxEnt mixed logit; see
    :func:`~pymc_maxent.fit_maxent`.

    Raises
    ------
    SpecificationError
        A specification without random components; ``situation_support`` other than the
        default for one without situation-level components.
    MaxEntError
        A probability support or a prior ``p0`` for stage 1 (stage 2 needs the direct form and
        the population fit as its prior); a bad ``individual_support`` or ``situation_support``.
    """
    from pymc_maxent.maxent.estimator import MaxEntEstimator
    from pymc_maxent.maxent.individual_result import IndividualMaxEntResult
    from pymc_maxent.model import maxent_moments

    resolved = resolve(spec, data)
    if not resolved.n_random:
        raise SpecificationError(f"{spec.name}: no random components; fit it with the population moments")
    situation_level = len(resolved.situation_components) > 0
    if not situation_level and not (isinstance(situation_support, str) and situation_support == "default"):
        raise SpecificationError(f"{spec.name} has no situation-level components: situation_support="
                                 f"{situation_support!r} applies to MXL-4 only")
    for name in ("probability_support", "p0", "pi0"):
        if population_options.get(name) is not None:
            raise MaxEntError(f"{name} is not available with a mixed tier: stage 2 needs the direct form "
                              "of p with the population fit as its prior")
    selection = None
    if isinstance(individual_support, str) and individual_support == "select":
        selection = select_individual_support(
            data, spec, tol=tol, maxiter=maxiter, on_unidentified=on_unidentified, dual_method=dual_method,
            **{k: v for k, v in population_options.items() if k not in ("probability_support", "p0", "pi0")})
        individual_support = float(selection.index[selection["best"]][0])
    support_scale(individual_support, np.ones(1))  # checked before stage 1 runs
    if situation_level:
        situation_support_scale(situation_support, 1)
    model = mixed_model(data, model)
    estimator = MaxEntEstimator(data, maxent_moments(population_spec(spec), data), model=model,
                                **population_options)
    population = estimator.fit(tol=tol, maxiter=maxiter, on_unidentified=on_unidentified,
                               dual_method=dual_method)
    names = population.parameter_names()
    missing = [lab for lab in resolved.random_labels if population_name(lab) not in names]
    if missing:
        raise SpecificationError(f"{spec.name}: the population fit has no parameter for the random "
                                 f"components {missing}")

    problem = individual_problem(data, resolved, population, individual_support)
    support = problem.support
    solution = solve_individuals(problem, tol=tol, maxiter=maxiter, chunk_size=individual_chunk)
    sep = separated(problem) if check_separation else None
    if support is None and sep is not None:
        # without a noise term a separated individual's MLE does not exist: its gradient only
        # fades as δ_i runs off, so a small residual is not convergence
        solution.converged &= ~sep
    options = {"individual_support": individual_support, "tol": tol, "maxiter": maxiter,
               "individual_chunk": individual_chunk, "on_unidentified": on_unidentified,
               "dual_method": dual_method}
    stages = {"population": population, "spec": spec, "resolved": resolved, "problem": problem,
              "solution": solution, "separated": sep}
    if situation_level:
        from pymc_maxent.maxent.situation_result import SituationMaxEntResult

        third = situation_problem(problem, solution.p, resolved.situation_components, situation_support)
        third_solution = solve_individuals(third, tol=tol, maxiter=maxiter, chunk_size=individual_chunk)
        result = SituationMaxEntResult(**stages, situation_problem=third, situation_solution=third_solution,
                                       options=options | {"situation_support": situation_support})
    else:
        result = IndividualMaxEntResult(**stages, options=options)
    result.support_selection = selection
    if not result.converged:
        warnings.warn(f"MaxEnt mixed logit: {result.convergence_message()}", ConvergenceWarning,
                      stacklevel=3)
    return result



def split_within_individuals(data: ChoiceData, test_fraction: float = 0.25, seed: int = 0):
    """Train and test data with situations held out within individuals: each individual with at
    least two situations gives ``round(test_fraction · n_i)`` of them (at least one, and never
    all) to the test set.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent.mixed import split_within_individuals
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
                              test_fraction: float = 0.25, seed: int = 0, **fit_options):
    """The width of the individual error support by held-out log score, on situations held out
    within individuals (:func:`split_within_individuals`).

    Stage 1 is fitted once on the training situations (it does not depend on the individual
    support); stage 2 is solved again for each width ``c`` (support ``±c/√n_i``, ``c = 1`` being
    the default rule) and scored on the held-out situations with each individual's ``δ_i``.

    Parameters
    ----------
    data : ChoiceData
    tier : str or ModelSpec
        A mixed tier.
    widths : sequence of float
    test_fraction, seed
        Of the split.
    **fit_options
        To :func:`~pymc_maxent.fit_maxent`.

    Returns
    -------
    DataFrame
        Index ``width`` (and ``inf``: the population alone, ``δ = 0``); columns
        ``heldout_log_score``, ``heldout_log_score_mean`` (per held-out situation), ``n_converged``
        and ``best`` (the highest score among the finite widths).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent.mixed import select_individual_support
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=12, seed=0)
    >>> table = select_individual_support(data, "MXL-1", widths=(0.5, 1.0, 2.0))
    >>> table.index.tolist(), int(table["best"].sum())
    ([0.5, 1.0, 2.0, inf], 1)
    """
    import pandas as pd

    from pymc_maxent.maxent.estimator import fit_maxent

    if "individual_support" in fit_options:
        raise SpecificationError("select_individual_support chooses individual_support: leave it out")
    widths = [float(c) for c in widths]
    for c in widths:
        support_scale(c, np.ones(1))
    train, test = split_within_individuals(data, test_fraction, seed)
    fit = fit_maxent(train, tier=tier, check_separation=False, **fit_options)
    known = {label: k for k, label in enumerate(train.individuals.tolist())}
    position = np.array([known[label] for label in test.individuals[test.individual].tolist()])
    with np.errstate(divide="ignore"):
        log_p0 = np.where(test.available, np.log(fit.population.predict(test).values[0, 0]), -np.inf)
    G_test = random_features(test.X, test.available, fit.resolved)
    rows = {}
    for c in [*widths, np.inf]:
        if np.isfinite(c):
            problem = dataclasses.replace(fit.problem, support=np.array([-c, 0.0, c]))
            solution = solve_individuals(problem, tol=fit.options["tol"], maxiter=fit.options["maxiter"])
            delta, converged = solution.delta, int(solution.converged.sum())
        else:
            delta, converged = np.zeros_like(fit.delta), fit.problem.n_individuals
        logits = log_p0 - np.einsum("njr,nr->nj", G_test, delta[position])
        log_p = logits - _log_normaliser(logits)
        score = float(log_p[np.arange(test.n_situations), test.chosen].sum())
        rows[c] = {"heldout_log_score": score, "heldout_log_score_mean": score / test.n_situations,
                   "n_converged": converged}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "width"
    finite = table.index[np.isfinite(table.index)]
    table["best"] = table.index == table.loc[finite, "heldout_log_score"].idxmax()
    return table


def _log_normaliser(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=1, keepdims=True)
    return m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
