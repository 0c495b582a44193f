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

from pymc_maxent.bayes.geometry import (
    DEFAULT_PARAMETERIZATION,
    LinearWhitening,
    centred_deviations,
    check_parameterization,
    laplace_approximation,
)
from pymc_maxent.bayes.likelihood import ChoiceLogLikelihood
from pymc_maxent.bayes.priors import CORR_DIMS, check_priors, parameter_prior, random_scales
from pymc_maxent.data.choice_data import ALTERNATIVE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.data.containers import (
    NEW_INDIVIDUAL,
    ChoiceContainers,
    register_choice_data,
)
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.specification import ModelSpec, ResolvedSpec, as_spec, resolve, utility_design
from pymc_maxent.utility import (
    ChoiceStructure,
    UtilityLayout,
    fixed_utility,
    mask_unavailable,
    natural_scale,
    utility_layout,
)


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
        ``U`` and the choice probabilities (situation × alternative) of the prediction graph:
        the known individuals' coefficients, and the population draws ``z_new`` for new ones.
        (The model's deterministic ``"p"``, when built with ``store_probabilities=True``, is
        of the fitted situations.)
    individual, new_individual, situation : TensorVariable or None
        The standard-normal deviations ``z`` (individual × random_coefficient), ``z_new``
        (new_individual × random_coefficient: redrawn for individuals not in the fitted data)
        and ``z_situation`` (situation × situation_coefficient), where the model has them.
    structure : ChoiceStructure, optional
        Nests and WTP space: how ``utility`` and ``p`` are computed from the parameters.
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
    structure: Any = None


#: ``g`` per situation of the g-prior that matches GME's default error support: 3 points on
#: ``±1/√N``, of variance ``2/(3N)``, so ``g = 1/var = 1.5 N`` (``shared/design/maxent-dual.md``).
GME_G_PER_SITUATION = 1.5

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
    store_probabilities: bool = False,
    nests: Mapping[str, Sequence] | None = None,
    space: str = "preference",
    price: str | None = None,
    parameterization: str = DEFAULT_PARAMETERIZATION,
) -> pm.Model:
    """A PyMC model of the choices in ``data``.

    Parameters
    ----------
    data : ChoiceData
    spec : str or ModelSpec
        A tier name (``"MNL-1"`` … ``"MXL-4"``, ``"NL"``, see :func:`tier_table`) or a full
        per-attribute :class:`ModelSpec`.
    attributes : sequence of str, optional
        Attributes entering utility (tier names only); default all.
    random, correlated, reference, nests, space, price
        Passed to :func:`~pymc_maxent.specification.tier_spec` (tier names only; see
        :func:`~pymc_maxent.specification.as_spec`): ``nests`` makes the tier a nested
        logit, ``space="wtp"`` with ``price`` puts it in willingness-to-pay space.
    parameterization : {"auto", "non-centred"}
        The coordinates NUTS moves in for the individuals' random components (the model and
        its posterior are the same): ``"non-centred"``, ``z_i`` of ``θ_i = μ + σ ∘ z_i``;
        ``"auto"``, centred as far as each individual's data inform ``θ_i`` relative to
        ``σ``, from a Laplace approximation of their likelihood
        (:mod:`pymc_maxent.bayes.geometry`). Models in WTP space are non-centred either way.
        ``"non-centred"`` is the default: ``"auto"`` is opt-in until its build-time Laplace
        step handles individuals whose choices are separated (there it overflows).
    priors : mapping, optional
        Overrides of the default priors by parameter name (``alpha``, ``beta``, ``mu``,
        ``sigma``, ``sigma_situation``, ``lambda``, ``scale``, ``wtp``, ``wtp_asc``:
        :class:`pymc_extras.prior.Prior`; ``lkj_eta``: a number). ``Prior("Flat")`` gives
        maximum likelihood at the MAP.
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
        Record the choice probabilities ``p`` (situation × alternative) as a deterministic at
        every draw (off by default: ``situation × alternative`` floats per draw; fits predict
        them on demand, :meth:`PosteriorFit.predict <pymc_maxent.PosteriorFit.predict>`).

    Returns
    -------
    pm.Model
        Free parameters ``alpha`` (dim ``asc``), ``beta`` (``coefficient``), and for mixed
        models ``mu``, ``sigma`` (``random_coefficient``), standardised deviations ``z``
        (``individual``), ``sigma_situation`` and ``z_situation``; ``corr``
        (``random_coefficient`` × ``random_coefficient_2``) with ``correlated=True``. The
        observed variable ``chosen`` gives the pointwise log-likelihood. :func:`choice_graph`
        gives its :class:`ChoiceGraph` (specification, utility, probabilities, latent
        deviations). A nested logit adds ``lambda`` (dim ``nest``: the nests of two or more
        alternatives). In WTP space the fixed parameters are ``wtp_asc`` (``asc``), ``wtp``
        (``wtp_coefficient``) and ``scale`` (the log of the price coefficient's magnitude), or
        the random component ``"scale"``; a model without random components also records
        its preference-space twin ``alpha``, ``beta`` (``beta[price] = −exp(scale)``).

    Notes
    -----
    Utility ``U_ij = α_j(i) + Σ_k x_ijk β_k(i, j)``; probabilities are a softmax over the
    available alternatives (a nested logit's: :func:`~pymc_maxent.utility.nested_log_probabilities`).
    In WTP space ``U_ij = −exp(s_i)·(p_ij − Σ_k w_ik x_ijk − w_ij)``. Random components are
    ``θ_i = μ + σ ∘ z_i`` or ``θ_i = μ + L z_i`` with ``L`` an LKJ Cholesky factor and
    ``z_i`` standard normal (sampled in the coordinates ``parameterization`` says);
    lognormal coefficients are ``±exp(θ)``.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> model = pmx.build_model(pmx.load_travel_mode(), "MNL-2")
    >>> sorted(model.named_vars_to_dims["beta"])
    ['coefficient']
    """
    spec = as_spec(spec, data.attributes.tolist() if attributes is None else list(attributes),
                   random=random, correlated=correlated, reference=reference, nests=nests, space=space,
                   price=price)
    resolved = resolve(spec, data)
    priors = check_priors(priors)
    parameterization = check_parameterization(parameterization)
    g = None if g_prior is None else g_prior_scale(g_prior, data, resolved, priors)
    with pm.Model(coords=data.coords | parameter_coords(resolved)) as model:
        containers = register_choice_data(data)
        define_choice_model(containers, resolved, priors, store_probabilities, g_prior=g,
                            parameterization=parameterization)
    return model


def g_prior_scale(g_prior, data: ChoiceData, resolved: ResolvedSpec, priors) -> float:
    """``g`` of a Zellner g-prior, checked against the model it goes into."""
    if resolved.n_random:
        raise SpecificationError("g_prior applies to models without random components (MNL tiers); "
                              f"this one has {resolved.n_random}: {resolved.random_labels}")
    if resolved.nested or resolved.wtp_space:
        raise SpecificationError("g_prior applies to preference-space logits without nests (GME's noise "
                                 "term of a utility linear in its parameters)")
    clash = sorted({"alpha", "beta"} & set(priors))
    if clash:
        raise SpecificationError(
            f"g_prior replaces the priors of alpha and beta; drop the priors for {clash}")
    if isinstance(g_prior, str):
        if g_prior != "gme":
            raise SpecificationError(f'g_prior must be a positive number or "gme"; got {g_prior!r}')
        return GME_G_PER_SITUATION * data.n_situations
    g = float(g_prior)
    if not np.isfinite(g) or g <= 0:
        raise SpecificationError(f'g_prior must be a positive number or "gme"; got {g_prior!r}')
    return g


def parameter_coords(resolved: ResolvedSpec) -> dict[str, list]:
    coords = {"asc": resolved.asc_labels, "coefficient": resolved.fixed.labels, "nest": resolved.nest_labels}
    if resolved.wtp_space:
        coords["wtp_coefficient"] = resolved.fixed.labels
        coords["coefficient"] = preference_labels(resolved) if not resolved.n_random else []
    if resolved.n_random:
        coords |= {"random_coefficient": resolved.random_labels, NEW_INDIVIDUAL: []}
        if resolved.spec.correlated:
            coords[CORR_DIMS[1]] = resolved.random_labels
    if len(resolved.situation_components):
        coords["situation_coefficient"] = [
            resolved.random_labels[c] for c in resolved.situation_components
        ]
    return {k: v for k, v in coords.items() if len(v) or k == NEW_INDIVIDUAL}


def preference_labels(resolved: ResolvedSpec) -> list[str]:
    """WTP space: the labels of the preference-space coefficients (the WTPs' and the price's)."""
    labels = list(resolved.fixed.labels)
    labels.insert(resolved.price_position, resolved.spec.price)
    return labels


def choice_structure(resolved: ResolvedSpec) -> ChoiceStructure:
    """The :class:`~pymc_maxent.utility.ChoiceStructure` of a resolved specification."""
    nested = resolved.nested
    return ChoiceStructure(
        utility_layout(resolved),
        nest_of=tuple(int(m) for m in resolved.nest_of) if nested else (),
        nest_lambda=tuple(int(m) for m in resolved.nest_lambda) if nested else (),
        price_column=resolved.price_column, scale_random=resolved.scale_random)


def define_choice_model(
    containers: ChoiceContainers,
    resolved: ResolvedSpec,
    priors: Mapping[str, Prior | float],
    store_probabilities: bool = True,
    g_prior: float | None = None,
    parameterization: str = "non-centred",
) -> ChoiceGraph:
    """Add parameters, utility and likelihood to the model on the context stack, and record
    them for :func:`choice_graph` (``parameterization``: :func:`build_model`'s).

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
    lambdas, scale = structural_parameters(resolved, priors)
    structure = choice_structure(resolved)
    latent, theta, rows, predicted_rows = {}, None, containers.individual, None
    if resolved.n_random:
        theta, rows, predicted_rows, latent = random_components(containers, resolved, priors,
                                                                parameterization)
    if resolved.wtp_space and not resolved.n_random:
        preference_twin(resolved, alpha, beta, scale)
    if structure.fused:
        observe_choices(structure.layout, containers, alpha, beta, theta, rows)
    else:
        observe_choices_graph(structure, containers, alpha, beta, theta, rows, lambdas, scale)
    U = structure.utility(containers.X, alpha, beta, predicted_rows, scale)
    p = structure.probabilities(U, containers.available, lambdas)
    if store_probabilities:  # of the fitted situations (new individuals have no draws of z)
        fitted = U if theta is None else structure.utility(containers.X, alpha, beta, theta[rows], scale)
        pm.Deterministic("p", structure.probabilities(fitted, containers.available, lambdas),
                         dims=(SITUATION, ALTERNATIVE))
    graph = ChoiceGraph(spec=resolved.spec, resolved=resolved, priors=priors, g_prior=g_prior,
                        containers=containers, utility=U, p=p, structure=structure, **latent)
    _GRAPHS[model] = graph
    return graph


def structural_parameters(resolved: ResolvedSpec, priors):
    """A nested logit's ``lambda`` (dim ``nest``) and a WTP-space model's fixed ``scale``
    (``None`` where the model has none)."""
    lambdas = scale = None
    if resolved.nest_labels:
        lambdas = parameter_prior("lambda", resolved, priors).create_variable("lambda")
    if resolved.wtp_space and not resolved.scale_random:
        scale = parameter_prior("scale", resolved, priors).create_variable("scale")
    return lambdas, scale


def preference_twin(resolved: ResolvedSpec, wtp_asc, wtp, scale) -> None:
    """WTP space without random components: the preference-space coefficients as deterministics,
    ``alpha = exp(s)·wtp_asc`` and ``beta = exp(s)·wtp`` with ``beta[price] = −exp(s)``."""
    lam = pt.exp(scale)
    if wtp_asc is not None:
        pm.Deterministic("alpha", lam * wtp_asc, dims="asc")
    parts = [] if wtp is None else [lam * wtp]
    price = -lam[None]
    k = resolved.price_position
    beta = pt.concatenate([parts[0][:k], price, parts[0][k:]]) if parts else price
    pm.Deterministic("beta", beta, dims="coefficient")


def observe_choices_graph(structure: ChoiceStructure, containers: ChoiceContainers, alpha, beta, theta, rows,
                          lambdas, scale):
    """The observed ``chosen`` of a nested logit or a WTP-space model: the log-likelihood from the
    graph of :class:`~pymc_maxent.utility.ChoiceStructure` (log-sum-exps over the available
    alternatives), draws from the categorical of its probabilities."""
    alpha = pt.zeros(0) if alpha is None else alpha
    beta = pt.zeros(0) if beta is None else beta
    lambdas = pt.zeros(0) if lambdas is None else lambdas
    scale = pt.zeros(()) if scale is None else scale
    if theta is None:
        theta, rows = pt.zeros((1, 0)), pt.zeros_like(containers.individual)
    layout = structure.layout

    def log_p(X, available, rows, alpha, beta, theta, lambdas, scale):
        U = structure.utility(X, alpha if layout.asc else None, beta if layout.fixed else None,
                              theta[rows] if theta.type.shape[-1] != 0 else None, scale)
        return structure.log_probabilities(U, available, lambdas)

    def logp(value, *inputs):
        return log_p(*inputs)[pt.arange(value.shape[0]), value]

    def dist(X, available, rows, alpha, beta, theta, lambdas, scale, size):
        return pm.Categorical.dist(logit_p=log_p(X, available, rows, alpha, beta, theta, lambdas, scale))

    return pm.CustomDist("chosen", containers.X, containers.available, rows, alpha, beta, theta, lambdas,
                         scale, dist=dist, logp=logp, observed=containers.chosen, dims=SITUATION,
                         signature="(n,j,k),(n,j),(n),(a),(b),(m,r),(l),()->(n)")


def observe_choices(layout: UtilityLayout, containers: ChoiceContainers, alpha, beta, theta, rows):
    """The observed ``chosen``: log-likelihood by the fused Op
    (:class:`~pymc_maxent.bayes.likelihood.ChoiceLogLikelihood`, pointwise per situation),
    draws (prior and posterior predictive) from the categorical of the utility graph.
    ``theta``: the random components' rows on the natural scale, ``rows[n]`` the one of
    situation ``n``."""
    alpha = pt.zeros(0) if alpha is None else alpha
    beta = pt.zeros(0) if beta is None else beta
    if theta is None:
        theta, rows = pt.zeros((1, 0)), pt.zeros_like(containers.individual)

    def logp(value, X, available, rows, alpha, beta, theta):
        return ChoiceLogLikelihood(layout)(X, available, value, rows, alpha, beta, theta)[0]

    def dist(X, available, rows, alpha, beta, theta, size):
        U = layout.utility(X, alpha if layout.asc else None, beta if layout.fixed else None, theta[rows])
        return pm.Categorical.dist(logit_p=mask_unavailable(U, available))

    return pm.CustomDist("chosen", containers.X, containers.available, rows, alpha, beta, theta,
                         dist=dist, logp=logp, observed=containers.chosen, dims=SITUATION,
                         signature="(n,j,k),(n,j),(n),(a),(b),(m,r)->(n)")


def fixed_parameters(resolved: ResolvedSpec, priors):
    """``alpha`` and ``beta`` with independent priors (the defaults, or the user's); in WTP
    space the WTPs ``wtp_asc`` and ``wtp`` in their place."""
    alpha = beta = None
    names = ("wtp_asc", "wtp") if resolved.wtp_space else ("alpha", "beta")
    if resolved.asc_labels:
        alpha = parameter_prior(names[0], resolved, priors).create_variable(names[0])
    if resolved.fixed.labels:
        beta = parameter_prior(names[1], resolved, priors).create_variable(names[1])
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


def population_distribution(resolved: ResolvedSpec, priors, whitening: LinearWhitening | None = None):
    """The population of the random components, ``θ = μ + σ ∘ z`` (or ``μ + L z`` with an LKJ
    Cholesky factor ``L``, ``correlated=True``), on the normal scale.

    Creates ``mu`` and ``sigma`` (and ``chol_cov``, ``corr``) in the model in context and
    returns the map from standard-normal deviations ``z`` (``(..., random_coefficient)``: the
    individuals' latents, or integration nodes) to ``θ`` and the scale (``σ``, or ``L``).
    ``whitening``: the value transform of a normal prior of ``mu``.
    """
    D = resolved.n_random
    mu_prior = parameter_prior("mu", resolved, priors)
    if whitening is not None and mu_prior.distribution == "Normal":
        mu = pm.Normal("mu", **mu_prior.parameters, dims="random_coefficient", default_transform=whitening)
    else:
        mu = mu_prior.create_variable("mu")
    sd_prior = parameter_prior("sigma", resolved, priors)
    if resolved.spec.correlated:
        eta = parameter_prior("lkj_eta", resolved, priors)
        sd_dist = sd_prior.pymc_distribution.dist(**sd_prior.parameters, shape=D)
        chol, corr, sigma = pm.LKJCholeskyCov(
            "chol_cov", eta=eta, n=D, sd_dist=sd_dist, compute_corr=True, store_in_trace=False
        )
        pm.Deterministic("sigma", sigma, dims="random_coefficient")
        pm.Deterministic("corr", corr, dims=CORR_DIMS)

        def population(deviations):
            return mu + deviations @ chol.T

        population.scale = chol
    else:
        sigma = sd_prior.create_variable("sigma")

        def population(deviations):
            return mu + sigma * deviations

        population.scale = sigma
    population.mu = mu
    return population


def random_components(containers: ChoiceContainers, resolved: ResolvedSpec, priors,
                      parameterization: str = "non-centred"):
    """The random components: ``θ_i = μ + σ ∘ z_i`` (or ``μ + L z_i``) per individual, ``z_i``
    sampled in the coordinates of ``parameterization`` (:func:`build_model`).

    Returns
    -------
    theta, rows
        The likelihood's rows of ``θ`` on the natural scale and each situation's row: one row
        per individual, or one per situation with situation-level components.
    predicted_rows
        ``θ`` per situation for the prediction graph, over the fitted individuals and the new
        ones, whose deviations ``z_new`` are an input (not sampled: the evaluator draws them
        from the population for each posterior draw).
    latent : dict
        ``individual`` (``z``), ``new_individual`` (``z_new``), ``situation`` (``z_situation``).
    """
    approximation = None
    if parameterization == "auto" and not resolved.wtp_space and centred_components(resolved).any():
        approximation = individual_approximation(containers, resolved)
    whitening = None if approximation is None else LinearWhitening(
        approximation.mu, np.linalg.cholesky(approximation.mu_covariance))
    population = population_distribution(resolved, priors, whitening)
    if approximation is None:
        z = pm.Normal("z", 0.0, 1.0, dims=(INDIVIDUAL, "random_coefficient"))
    else:
        z = centred_deviations("z", population.mu, population.scale, approximation,
                               (INDIVIDUAL, "random_coefficient"), resolved.spec.correlated)
    z_new = pt.matrix("z_new", shape=(None, resolved.n_random))
    theta, theta_all = population(z), population(pt.concatenate([z, z_new], axis=0))
    index = Assert("individual_index points past the known and new individuals")(
        containers.individual, pt.all(containers.individual < theta_all.shape[0])
    )
    predicted = theta_all[index]  # (situation, random_coefficient)
    rows = containers.individual
    S = resolved.situation_components
    z_sit = None
    if len(S):
        sd_sit = parameter_prior("sigma_situation", resolved, priors).create_variable("sigma_situation")
        z_sit = pm.Normal("z_situation", 0.0, 1.0, dims=(SITUATION, "situation_coefficient"))
        theta = pt.inc_subtensor(theta[rows][:, S], sd_sit * z_sit)
        rows = pt.arange(theta.shape[0])
        predicted = pt.inc_subtensor(predicted[:, S], sd_sit * z_sit)
    latent = {"individual": z, "new_individual": z_new, "situation": z_sit}
    return natural_scale(theta, resolved), rows, natural_scale(predicted, resolved), latent


def individual_approximation(containers: ChoiceContainers, resolved: ResolvedSpec):
    """The Laplace approximation of each individual's likelihood in the random components
    (:func:`~pymc_maxent.bayes.geometry.laplace_approximation`) on the data in ``containers``;
    components outside :func:`centred_components` get none (they stay non-centred)."""
    X, available, chosen, individual = (np.asarray(c.get_value()) for c in (
        containers.X, containers.available, containers.chosen, containers.individual))
    available = available.astype(bool)
    fixed, random = utility_design(resolved, X)
    random = np.where(centred_components(resolved), random, 0.0)
    _, mu_scale, _ = random_scales(resolved)
    spread = np.sqrt(np.maximum(np.var(fixed, axis=(0, 1)), 1e-12))
    n = len(pm.modelcontext(None).coords[INDIVIDUAL])
    prior_sd = np.concatenate([5.0 / spread, np.where(resolved.random_sign != 0, 1.0, mu_scale)])
    return laplace_approximation(fixed, random, available, chosen, individual, n, prior_sd)


def centred_components(resolved: ResolvedSpec) -> np.ndarray:
    """Which random components ``parameterization="auto"`` centres: the normal ones, and none
    in a model with situation-level deviations. A lognormal component's likelihood is not the
    logit's in ``θ``, and situation-level deviations (MXL-4) flatten each individual's
    likelihood below the logit's information, which over-centres (measured on MXL-4, seed 12:
    the smallest ESS of ``σ_situation`` fell from 57 to 9)."""
    return (resolved.random_sign == 0) & (len(resolved.situation_components) == 0)
