"""The MaxEnt mixed logit: population GME (stage 1), then every individual's GCE with the
population solution as prior (stage 2), for the tiers ``MXL-1`` to ``MXL-3``
(``shared/design/maxent-tiers.md``)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pymc as pm

from pymc_maxent.bayes.specification import ModelSpec, as_spec, resolve
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.containers import NEW_INDIVIDUAL, NEW_INDIVIDUAL_PLACEHOLDER
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
    return as_spec(tier, data.attributes.tolist(), reference=reference)


def fit_mixed_maxent(data: ChoiceData, spec: ModelSpec, *, individual_support="default",
                     model: pm.Model | None = None, tol: float = 1e-10, maxiter: int = 100,
                     individual_chunk: int = INDIVIDUAL_CHUNK, check_separation: bool = True,
                     on_unidentified: str = "warn", **population_options):
    """Stage 1 and stage 2 of the MaxEnt mixed logit; see :func:`~pymc_maxent.fit_maxent`.

    Raises
    ------
    SpecificationError
        A specification without random components, or with situation-level ones (``MXL-4``:
        the situation-level stage is not built yet).
    MaxEntError
        A probability support or a prior ``p0`` for stage 1 (stage 2 needs the direct form and
        the population fit as its prior).
    """
    from pymc_maxent.maxent.estimator import MaxEntEstimator
    from pymc_maxent.maxent.individual_result import IndividualMaxEntResult
    from pymc_maxent.model import maxent_moments

    resolved = resolve(spec, data)
    if not resolved.n_random:
        raise SpecificationError(f"{spec.name}: no random components; fit it with the population moments")
    if len(resolved.situation_components):
        labels = [resolved.random_labels[c] for c in resolved.situation_components]
        raise SpecificationError(
            f"{spec.name}: situation-level random components {labels} (MXL-4) need a third, "
            "situation-level MaxEnt stage, which is not built yet; fit MXL-3 for the individual level")
    for name in ("probability_support", "p0", "pi0"):
        if population_options.get(name) is not None:
            raise MaxEntError(f"{name} is not available with a mixed tier: stage 2 needs the direct form "
                              "of p with the population fit as its prior")
    support_scale(individual_support, np.ones(1))  # checked before stage 1 runs
    if model is None:
        model = pm.Model(coords=data.coords | {NEW_INDIVIDUAL: [NEW_INDIVIDUAL_PLACEHOLDER]})
    elif NEW_INDIVIDUAL not in model.coords:  # new individuals get the population (δ = 0)
        model.add_coord(NEW_INDIVIDUAL, [NEW_INDIVIDUAL_PLACEHOLDER])
    twin = population_spec(spec)
    estimator = MaxEntEstimator(data, maxent_moments(twin, data), model=model, **population_options)
    population = estimator.fit(tol=tol, maxiter=maxiter, on_unidentified=on_unidentified)
    names = population.parameter_names()
    missing = [lab for lab in resolved.random_labels if population_name(lab) not in names]
    if missing:
        raise SpecificationError(f"{spec.name}: the population fit has no parameter for the random "
                                 f"components {missing}")

    G = random_features(data.X, data.available, resolved)
    counts = np.bincount(np.asarray(data.individual), minlength=data.n_individuals)
    support, scale = support_scale(individual_support, counts)
    with np.errstate(divide="ignore"):  # log 0 where unavailable
        log_p0 = np.where(data.available, np.log(population.p), -np.inf)
    problem = IndividualProblem(
        G=G, G_noise=centre_features(G, data.available) if estimator.centre_noise else G, log_p0=log_p0,
        chosen=np.asarray(data.chosen), available=np.asarray(data.available, dtype=bool),
        individual=np.asarray(data.individual), n_individuals=data.n_individuals, support=support,
        scale=scale,
    )
    solution = solve_individuals(problem, tol=tol, maxiter=maxiter, chunk_size=individual_chunk)
    sep = separated(problem) if check_separation else None
    if support is None and sep is not None:
        # without a noise term a separated individual's MLE does not exist: its gradient only
        # fades as δ_i runs off, so a small residual is not convergence
        solution.converged &= ~sep
    result = IndividualMaxEntResult(
        population=population, spec=spec, resolved=resolved, problem=problem, solution=solution,
        separated=sep, options={"individual_support": individual_support, "tol": tol, "maxiter": maxiter,
                                "individual_chunk": individual_chunk},
    )
    if not result.converged:
        warnings.warn(f"MaxEnt individual stage: {result.convergence_message()}", ConvergenceWarning,
                      stacklevel=3)
    return result

