"""Bayesian logit models, from multinomial to correlated mixed logit, as PyMC models."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc_extras.prior import Prior
from pytensor.raise_op import Assert

from pymc_maxent.bayes.priors import CORR_DIMS, check_priors, parameter_prior
from pymc_maxent.bayes.specification import ModelSpec, ResolvedSpec, as_spec, resolve
from pymc_maxent.data.choice_data import ALTERNATIVE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.data.containers import (
    NEW_INDIVIDUAL,
    NEW_INDIVIDUAL_PLACEHOLDER,
    ChoiceContainers,
    register_choice_data,
)
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.maxent.supports import default_error_support
from pymc_maxent.utility import block_utility, choice_probabilities, constant_utility, mask_unavailable


@dataclass(frozen=True)
class ChoiceGraph:
    """What :func:`define_choice_model` put into a model: the specification and the graph.

    Diagnostics and fits reach the model's utility, probabilities and latent deviations
    through this record (:func:`choice_graph`), never by variable names.

    Attributes
    ----------
    spec : ModelSpec
    resolved : ResolvedSpec
        The specification laid out on the fitted data (labels, layouts, scales).
    priors : dict
        The user's priors, as given (the defaults fill in the rest).
    g_prior : float or None
        ``g`` of the Zellner g-prior, if the model has one.
    containers : ChoiceContainers
        The data containers the graph reads.
    utility, p : TensorVariable
        ``U`` and the choice probabilities (situation × alternative); ``p`` is the model's
        deterministic ``"p"`` when built with ``store_probabilities=True``, else an unnamed
        tensor of the same graph.
    individual, new_individual, situation : TensorVariable or None
        The standard-normal deviations ``z`` (individual × random_coefficient), ``z_new``
        (new_individual × random_coefficient: redrawn for individuals not in the fitted data)
        and ``z_situation`` (situation × situation_coefficient), where the model has them.
    """

    spec: ModelSpec
    resolved: ResolvedSpec
    priors: dict
    g_prior: float | None
    containers: ChoiceContainers
    utility: Any
    p: Any
    individual: Any = None
    new_individual: Any = None
    situation: Any = None


# Models are hashed by identity; an entry goes when its model does.
_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def choice_graph(model: pm.Model) -> ChoiceGraph:
    """The :class:`ChoiceGraph` of a model built by :func:`build_model` (or
    :func:`define_choice_model`).

    Raises
    ------
    SpecificationError
        If the model was not built by this package.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.bayes.build import choice_graph
    >>> graph = choice_graph(pmx.build_model(pmx.load_travel_mode(), "MXL-1"))
    >>> graph.spec.name, graph.resolved.random_labels, graph.individual.name
    ('MXL-1', ['gc', 'ttme', 'hinc_air'], 'z')
    """
    graph = _GRAPHS.get(model)
    if graph is None:
        raise SpecificationError(
            f"{type(model).__name__} {getattr(model, 'name', '')!r} was not built by pymc_maxent "
            "(build_model or define_choice_model): its utility and parameters are unknown")
    return graph


def build_model(
    data: ChoiceData,
    spec: str | ModelSpec = "MNL-2",
    *,
    attributes: Sequence[str] | None = None,
    random: str | dict[str, str] = "normal",
    correlated: bool = False,
    reference=None,
    priors: Mapping[str, Prior | float] | None = None,
    g_prior: float | str | None = None,
    store_probabilities: bool = True,
) -> pm.Model:
    """A PyMC model of the choices in ``data``.

    Parameters
    ----------
    data : ChoiceData
    spec : str or ModelSpec
        A tier name (``"MNL-1"`` … ``"MXL-4"``, see :func:`tier_table`) or a full
        per-attribute :class:`ModelSpec`.
    attributes : sequence of str, optional
        Attributes entering utility (tier names only); default all.
    random, correlated, reference
        Passed to :func:`~pymc_maxent.bayes.specification.tier_spec` (tier names only; see
        :func:`~pymc_maxent.bayes.specification.as_spec`).
    priors : mapping, optional
        Overrides of the default priors by parameter name (``alpha``, ``beta``, ``mu``,
        ``sigma``, ``sigma_situation``: :class:`pymc_extras.prior.Prior`; ``lkj_eta``: a
        number). ``Prior("Flat")`` gives maximum likelihood at the MAP.
    g_prior : float or "gme", optional
        Models without random components only: a Zellner g-prior on the utility index,
        ``θ = (α, β) ~ N(0, g (F̃'F̃)⁻¹)`` with ``F̃_ij = ∂Ũ_ij/∂θ`` over the available
        alternatives, i.e. the penalty ``Σ_ij Ũ_ij² / 2g`` on the utility centred within each
        situation (``Ũ_ij = U_ij − mean_l U_il``; unchanged by a shift of an attribute's
        origin, as the logit is). ``"gme"`` takes ``g = 1/Var(u)`` of
        the default GME error support (``1.5 N``): the quadratic approximation of GME's noise
        term, so the MAP lands close to the :func:`~pymc_maxent.fit_maxent` estimate.
        ``alpha`` and ``beta`` are then deterministics of the vector ``theta``.
    store_probabilities : bool
        Record the choice probabilities ``p`` (situation × alternative) as a deterministic.

    Returns
    -------
    pm.Model
        Free parameters ``alpha`` (dim ``asc``), ``beta`` (``coefficient``), and for mixed
        models ``mu``, ``sigma`` (``random_coefficient``), standardised deviations ``z``
        (``individual``), ``sigma_situation`` and ``z_situation``; ``corr``
        (``random_coefficient`` × ``random_coefficient_2``) with ``correlated=True``. The
        observed variable ``chosen`` gives the pointwise log-likelihood. :func:`choice_graph`
        gives its :class:`ChoiceGraph` (specification, utility, probabilities, latent
        deviations).

    Notes
    -----
    Utility ``U_ij = α_j(i) + Σ_k x_ijk β_k(i, j)``; probabilities are a softmax over the
    available alternatives. Random components are non-centred:
    ``θ_i = μ + σ ∘ z_i`` or ``θ_i = μ + L z_i`` with ``L`` an LKJ Cholesky factor;
    lognormal coefficients are ``±exp(θ)``.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> model = pmx.build_model(pmx.load_travel_mode(), "MNL-2")
    >>> sorted(model.named_vars_to_dims["beta"])
    ['coefficient']
    """
    spec = as_spec(spec, data.attributes.tolist() if attributes is None else list(attributes),
                   random=random, correlated=correlated, reference=reference)
    resolved = resolve(spec, data)
    priors = check_priors(priors)
    g = None if g_prior is None else g_prior_scale(g_prior, data, resolved, priors)
    with pm.Model(coords=data.coords | parameter_coords(resolved)) as model:
        containers = register_choice_data(data)
        define_choice_model(containers, resolved, priors, store_probabilities, g_prior=g)
    return model


def g_prior_scale(g_prior, data: ChoiceData, resolved: ResolvedSpec, priors) -> float:
    """``g`` of a Zellner g-prior, checked against the model it goes into."""
    if resolved.n_random:
        raise SpecificationError("g_prior applies to models without random components (MNL tiers); "
                              f"this one has {resolved.n_random}: {resolved.random_labels}")
    clash = sorted({"alpha", "beta"} & set(priors))
    if clash:
        raise SpecificationError(
            f"g_prior replaces the priors of alpha and beta; drop the priors for {clash}")
    if isinstance(g_prior, str):
        if g_prior != "gme":
            raise SpecificationError(f'g_prior must be a positive number or "gme"; got {g_prior!r}')
        return 1.0 / np.var(default_error_support(data.n_situations))
    g = float(g_prior)
    if not np.isfinite(g) or g <= 0:
        raise SpecificationError(f'g_prior must be a positive number or "gme"; got {g_prior!r}')
    return g


def parameter_coords(resolved: ResolvedSpec) -> dict[str, list]:
    coords = {"asc": resolved.asc_labels, "coefficient": resolved.fixed.labels}
    if resolved.n_random:
        coords |= {"random_coefficient": resolved.random_labels, NEW_INDIVIDUAL: [NEW_INDIVIDUAL_PLACEHOLDER]}
        if resolved.spec.correlated:
            coords[CORR_DIMS[1]] = resolved.random_labels
    if len(resolved.situation_components):
        coords["situation_coefficient"] = [
            resolved.random_labels[c] for c in resolved.situation_components
        ]
    return {k: v for k, v in coords.items() if len(v)}


def define_choice_model(
    containers: ChoiceContainers,
    resolved: ResolvedSpec,
    priors: Mapping[str, Prior | float],
    store_probabilities: bool = True,
    g_prior: float | None = None,
) -> ChoiceGraph:
    """Add parameters, utility and likelihood to the model on the context stack, and record
    them for :func:`choice_graph`.

    Returns
    -------
    ChoiceGraph
    """
    model = pm.modelcontext(None)
    priors = check_priors(priors)
    if g_prior is None:
        alpha, beta = fixed_parameters(resolved, priors)
    else:
        alpha, beta = g_prior_parameters(containers, resolved, g_prior)
    U = fixed_utility(containers.X, resolved, alpha, beta)
    latent = {}
    if resolved.n_random:
        U_random, latent = random_utility(containers, resolved, priors)
        U = U + U_random
    logit = mask_unavailable(U, containers.available)
    pm.Categorical("chosen", logit_p=logit, observed=containers.chosen, dims=SITUATION)
    p = choice_probabilities(U, containers.available)
    if store_probabilities:
        p = pm.Deterministic("p", p, dims=(SITUATION, ALTERNATIVE))
    graph = ChoiceGraph(spec=resolved.spec, resolved=resolved, priors=priors, g_prior=g_prior,
                        containers=containers, utility=U, p=p, **latent)
    _GRAPHS[model] = graph
    return graph


def fixed_parameters(resolved: ResolvedSpec, priors):
    """``alpha`` and ``beta`` with independent priors (the defaults, or the user's)."""
    alpha = beta = None
    if resolved.asc_labels:
        alpha = parameter_prior("alpha", resolved, priors).create_variable("alpha")
    if resolved.fixed.labels:
        beta = parameter_prior("beta", resolved, priors).create_variable("beta")
    return alpha, beta


def g_prior_parameters(containers: ChoiceContainers, resolved: ResolvedSpec, g: float):
    """``θ = (α, β) ~ N(0, g (F̃'F̃)⁻¹)``, the precision ``F̃'F̃/g`` being the Gram matrix of
    the utility's design centred within each situation over its available alternatives (``U``
    is linear in ``θ``): GME's centred noise term to second order, and unchanged by a shift of
    an attribute's origin."""
    n_asc = len(resolved.asc_labels)
    n = n_asc + len(resolved.fixed.labels)
    theta = pt.vector("theta", shape=(n,))
    U = fixed_utility(containers.X, resolved, theta[:n_asc] if n_asc else None,
                      theta[n_asc:] if n > n_asc else None)
    available = containers.available.astype("bool")
    mean = pt.switch(available, U, 0.0).sum(axis=1, keepdims=True) / available.sum(axis=1, keepdims=True)
    F = pytensor.function([theta], (U - mean)[available.nonzero()])  # Ũ at unit θ: F̃'s columns
    design = np.stack([F(e) for e in np.eye(n)], axis=1)
    gram = design.T @ design
    if np.linalg.matrix_rank(gram) < n:
        raise SpecificationError("g_prior: the centred utility design F̃'F̃ is singular (an attribute or "
                                 "constant is collinear with the others)")
    labels = [f"alpha[{a}]" for a in resolved.asc_labels] + [f"beta[{b}]" for b in resolved.fixed.labels]
    pm.modelcontext(None).add_coord("g_parameter", labels)
    theta = pm.MvNormal("theta", mu=np.zeros(n), tau=gram / g, dims="g_parameter")
    alpha = pm.Deterministic("alpha", theta[:n_asc], dims="asc") if n_asc else None
    beta = pm.Deterministic("beta", theta[n_asc:], dims="coefficient") if n > n_asc else None
    return alpha, beta


def fixed_utility(X, resolved: ResolvedSpec, alpha, beta):
    """``U = α_j + Σ_k x_k β_k(j)`` of the fixed parameters (``None`` where the spec has none)."""
    U = pt.zeros(X.shape[:-1])
    if alpha is not None:
        U = U + constant_utility(alpha, resolved.asc_layout)
    if beta is not None:
        J = len(resolved.alternatives)
        U = U + block_utility(X, beta, resolved.fixed.matrix(J), resolved.fixed.columns)
    return U


def component_utility(X, theta, resolved: ResolvedSpec):
    """Utility of the random components at ``θ``, shape ``(..., component)`` on the normal
    scale (random constants first; lognormal components enter as ``±exp(θ)``), with leading
    axes that broadcast against ``X.shape[:-2]``: one row per situation in the model, one per
    quadrature node in :func:`~pymc_maxent.bayes.minibatch.fit_minibatch`."""
    is_log = resolved.random_sign != 0
    if is_log.any():
        idx = np.flatnonzero(is_log)
        theta = pt.set_subtensor(theta[..., idx], resolved.random_sign[idx] * pt.exp(theta[..., idx]))
    n_asc = resolved.n_random - len(resolved.random.labels)
    U = 0.0
    if n_asc:
        U = U + constant_utility(theta[..., :n_asc], resolved.random_asc_layout)
    if resolved.random.labels:
        J = len(resolved.alternatives)
        U = U + block_utility(X, theta[..., n_asc:], resolved.random.matrix(J), resolved.random.columns)
    return U


def random_utility(containers: ChoiceContainers, resolved: ResolvedSpec, priors):
    """Utility of the random components: constants and coefficients varying by individual
    (and, for situation-level ones, by situation); and the standard-normal deviations
    (``individual``, ``new_individual``, ``situation``: the :class:`ChoiceGraph` fields)."""
    D = resolved.n_random
    mu = parameter_prior("mu", resolved, priors).create_variable("mu")
    sd_prior = parameter_prior("sigma", resolved, priors)

    z = pm.Normal("z", 0.0, 1.0, dims=(INDIVIDUAL, "random_coefficient"))
    # Individuals absent from the fitted data: while fitting, one placeholder whose z is a
    # draw from the population; `predict_choice_probabilities` redraws it per posterior
    # draw for each new individual, which integrates over the population distribution.
    z_new = pm.Normal("z_new", 0.0, 1.0, dims=(NEW_INDIVIDUAL, "random_coefficient"))
    z_all = pt.concatenate([z, z_new], axis=0)
    if resolved.spec.correlated:
        eta = parameter_prior("lkj_eta", resolved, priors)
        sd_dist = sd_prior.pymc_distribution.dist(**sd_prior.parameters, shape=D)
        chol, corr, sigma = pm.LKJCholeskyCov(
            "chol_cov", eta=eta, n=D, sd_dist=sd_dist, compute_corr=True, store_in_trace=False
        )
        pm.Deterministic("sigma", sigma, dims="random_coefficient")
        pm.Deterministic("corr", corr, dims=CORR_DIMS)
        theta = mu + z_all @ chol.T
    else:
        theta = mu + sd_prior.create_variable("sigma") * z_all

    index = Assert("individual_index points past the known and new individuals")(
        containers.individual, pt.all(containers.individual < theta.shape[0])
    )
    theta = theta[index]  # (situation, random_coefficient)
    S = resolved.situation_components
    z_sit = None
    if len(S):
        sd_sit = parameter_prior("sigma_situation", resolved, priors).create_variable("sigma_situation")
        z_sit = pm.Normal("z_situation", 0.0, 1.0, dims=(SITUATION, "situation_coefficient"))
        theta = pt.inc_subtensor(theta[:, S], sd_sit * z_sit)
    latent = {"individual": z, "new_individual": z_new, "situation": z_sit}
    return component_utility(containers.X, theta, resolved), latent
