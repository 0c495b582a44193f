"""Minibatch ADVI for many choice situations (10⁶–10⁷): ``pm.Minibatch`` + ``pm.fit``.

The models are the tier ladder's, with the builder's parameter names and dims (``alpha[asc]``,
``beta[coefficient]``, ``mu``/``sigma[random_coefficient]``) and default priors, so their
draws line up with the NUTS posteriors of :func:`~pymc_maxent.build_model`.

Fixed-coefficient models (MNL tiers) minibatch situations: the observed ``chosen`` of a batch
carries ``total_size`` = the number of situations, which scales its log-likelihood to the
whole data.

Random-coefficient models (MXL-1…3 and any ``ModelSpec`` whose random components vary by
individual, uncorrelated or correlated, normal or lognormal) have individual-level latents
``z_i``. A minibatch ADVI with one variational factor per ``z_i`` would update each factor only
when its individual is drawn, and a factor shared by the batch positions would not belong to
any individual. Instead ``z`` is integrated out of each individual's likelihood,
``P(y_i) = ∫ Π_t P(y_it | μ + L z) φ(z) dz``, so every remaining parameter is global and the
minibatches are of whole *individuals* (all their situations; an unbalanced panel is padded with
situations that add nothing, :func:`padded_panel`; a cross section is the case of one situation
each), scaled by ``n_individuals / batch_size``. The ELBO is then that of the NUTS model with
``z`` marginalised out: the same posterior of ``alpha, beta, mu, sigma`` (and ``corr``).

The integral is a Gauss–Hermite product rule for one or two components (deterministic, accurate
to ~1e-6 for the smooth logit integrand, but ``nodes**D`` points) and scrambled-Sobol
quasi-Monte Carlo beyond (:func:`qmc_normal_points`, 256 points whatever ``D``, as maximum
simulated likelihood does). The integrated likelihood and its gradient are one fused Op
(:class:`~pymc_maxent.bayes.integrated_likelihood.SimulatedLogLikelihood`): the cost of a step grows
linearly in ``D`` and not at all in the number of individuals. Situation-level components are
refused (an integral per situation inside the individual's).

Measured (``benchmarks/bench_scale.py``; 2 shared cores): cross sections, 3 alternatives × 2
attributes, batch 1000, 10⁴ Adam steps: at 10⁶ situations MNL-2 fits in 13 s, MXL-1 (100
nodes) in 68 s, peak RSS 0.57 and 0.64 GiB; at 10⁷, 20 s and 84 s, 1.8 and 2.0 GiB. Panels:
see ``docs/performance.md`` (the electricity-like design, six components).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc_extras.prior import Prior
from pytensor.compile.mode import Mode

from pymc_maxent.arguments import optional_count, require_count, require_positive
from pymc_maxent.bayes.build import fixed_parameters, parameter_coords, population_distribution
from pymc_maxent.bayes.integrated_likelihood import SimulatedLogLikelihood
from pymc_maxent.bayes.priors import check_priors
from pymc_maxent.data.choice_data import ALTERNATIVE, ATTRIBUTE, ChoiceData
from pymc_maxent.data.containers import NEW_INDIVIDUAL
from pymc_maxent.exceptions import ConvergenceWarning, SpecificationError
from pymc_maxent.numerics import qmc_normal_points
from pymc_maxent.specification import ModelSpec, as_spec, resolve
from pymc_maxent.utility import fixed_utility, mask_unavailable, natural_scale, utility_layout

__all__ = ["MinibatchFit", "fit_minibatch", "gauss_hermite_grid", "minibatch_model", "padded_panel",
           "qmc_normal_points"]

#: Largest number of quadrature nodes (``nodes ** D``) of the default rule.
MAX_NODES = 100
#: How the integrated-likelihood models compile: the C virtual machine. With the fused Op,
#: PyTensor's default numba linker took 41 ms an ADVI step where this takes 11-15 (electricity
#: panel, batch 100, 256 nodes; the kernel alone 13).
INTEGRATED_MODE = Mode(linker="cvm", optimizer="fast_run")
#: Quasi-Monte Carlo points per individual of the default rule.
DEFAULT_QMC_POINTS = 256
#: The parameters of the models minibatch ADVI fits (individual-level components).
MINIBATCH_PRIORS = ("alpha", "beta", "mu", "sigma")


@dataclass
class MinibatchFit:
    """A minibatch ADVI fit.

    Attributes
    ----------
    approx : pymc.variational.approximations.MeanField
    idata : xarray.DataTree
        ``approx.sample(draws)``: ``posterior`` with the builder's names and dims.
    model : pm.Model
    losses : ndarray
        ``−ELBO`` per iteration (noisy: one minibatch each).
    converged : bool
        No drift of the loss over the second half of the iterations: the mean loss of the last
        tenth is within 3 standard errors of that of the tenth from 40% to 50% (else iterate
        longer). Fewer than 200 iterations never count as converged.
    batch_size, n_units : int
        Units per batch and in all: situations (fixed-coefficient models) or individuals.
    n_nodes : int
        Integration nodes per individual (1 without random components).
    integration : str or None
        ``"gauss-hermite"`` or ``"qmc"`` (None without random components).
    n_padded : int
        Situations added to individuals with fewer than the most (they add nothing).
    """

    approx: object
    idata: object
    model: pm.Model
    losses: np.ndarray
    converged: bool
    batch_size: int
    n_units: int
    n_nodes: int
    integration: str | None = None
    n_padded: int = 0

    def mean(self, name: str) -> np.ndarray:
        """Posterior mean of one parameter over the draws."""
        return self.idata["posterior"][name].mean(("chain", "draw")).values


def gauss_hermite_grid(dim: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Product Gauss–Hermite rule for ``E f(z)``, ``z ~ N(0, I_dim)``: points ``(nodes**dim, dim)``
    and weights summing to 1.

    Examples
    --------
    >>> from pymc_maxent.bayes.minibatch import gauss_hermite_grid
    >>> z, w = gauss_hermite_grid(2, 5)
    >>> z.shape, round(float(w.sum()), 12), round(float(w @ z[:, 0] ** 2), 12)
    ((25, 2), 1.0, 1.0)
    """
    dim, nodes = require_count(dim, "dim"), require_count(nodes, "nodes")
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    points = np.array(list(itertools.product(x, repeat=dim)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=dim))), axis=1)
    return points, weights


def padded_panel(data: ChoiceData):
    """``(X, available, chosen, n_padded)`` with individual as the leading axis, ``(I, T, ...)``,
    ``T`` the most situations of an individual.

    Individuals with fewer situations are padded with situations whose only available
    alternative is the first, chosen: their log-probability is exactly 0 whatever the
    parameters, so they add nothing to the individual's likelihood. ``n_padded`` counts them.
    """
    counts = np.bincount(data.individual, minlength=data.n_individuals)
    I, T = data.n_individuals, int(counts.max())
    J, K = data.n_alternatives, data.n_attributes
    order = np.argsort(data.individual, kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(data.n_situations) - np.repeat(start, counts)  # position within its individual
    rows = (data.individual[order], slot)
    X = np.zeros((I, T, J, K))
    available = np.zeros((I, T, J), dtype=bool)
    available[..., 0] = True
    chosen = np.zeros((I, T), dtype=data.chosen.dtype)
    X[rows], available[rows], chosen[rows] = data.X[order], data.available[order], data.chosen[order]
    return X, available, chosen, I * T - data.n_situations


def fit_minibatch(
    data: ChoiceData,
    spec: str | ModelSpec = "MNL-2",
    *,
    n: int | None = None,
    learning_rate: float = 0.01,
    draws: int = 1000,
    random_seed: int | None = None,
    progressbar: bool = False,
    **model_kwargs,
) -> MinibatchFit:
    """Fit a tier of the logit ladder by minibatch ADVI (mean-field) of :func:`minibatch_model`.

    Parameters
    ----------
    data : ChoiceData
    spec : str or ModelSpec
    n : int, optional
        ADVI iterations (``pm.fit``), Adam with ``learning_rate``: default 20,000 (situations),
        5,000 (individuals; 3,000 settled on the electricity-like panels of ``bench_scale``).
    draws : int
        Draws from the approximation into ``idata``.
    random_seed : int, optional
        Seeds ADVI, the draws and the quasi-Monte Carlo scrambling.
    **model_kwargs
        ``attributes``, ``random``, ``reference``, ``priors``, ``batch_size``,
        ``integration``, ``nodes``: as in :func:`minibatch_model`.

    Returns
    -------
    MinibatchFit

    Notes
    -----
    ADVI's mean-field posterior SDs are too small; the means are the point estimates. With
    quasi-Monte Carlo the likelihood is simulated at fixed points, as in maximum simulated
    likelihood: ``log mean_r Π_t P`` is biased downwards by ``O(1/nodes)`` per individual.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.bayes.minibatch import fit_minibatch
    >>> data, truth = pmx.simulate_choices("MNL-2", n_individuals=2000, seed=1)
    >>> fit = fit_minibatch(data, "MNL-2", batch_size=200, n=1500, draws=100, random_seed=1)
    >>> bool(abs(fit.mean("beta") - truth["beta"]).max() < 0.3)
    True
    """
    data.require_choices("fit_minibatch")
    n = optional_count(n, "n")
    draws = require_count(draws, "draws")
    learning_rate = require_positive(learning_rate, "learning_rate")
    model, details = minibatch_model(data, spec, random_seed=random_seed, **model_kwargs)
    if n is None:
        n = 5_000 if details["integration"] else 20_000
    fn_kwargs = {"mode": INTEGRATED_MODE} if details["integration"] else {}
    with model:
        approx = pm.fit(n, method="advi", random_seed=random_seed, progressbar=progressbar,
                        obj_optimizer=pm.adam(learning_rate=learning_rate), fn_kwargs=fn_kwargs)
    idata = approx.sample(draws, random_seed=random_seed)
    losses = np.asarray(approx.hist)
    converged = _no_drift(losses)
    if not converged:
        warnings.warn(f"minibatch ADVI did not settle in {n} iterations: the mean loss of the last "
                      "tenth still drifts (or is not finite, or n < 200); raise n or lower learning_rate",
                      ConvergenceWarning, stacklevel=2)
    return MinibatchFit(approx=approx, idata=idata, model=model, losses=losses, converged=converged,
                        **details)


def minibatch_model(
    data: ChoiceData,
    spec: str | ModelSpec = "MNL-2",
    *,
    attributes: Sequence[str] | None = None,
    random: str | dict[str, str] = "normal",
    reference=None,
    priors: Mapping[str, Prior] | None = None,
    batch_size: int | None = None,
    integration: str = "auto",
    nodes: int | None = None,
    random_seed: int | None = None,
) -> tuple[pm.Model, dict]:
    """The model :func:`fit_minibatch` fits, and how it batches and integrates:
    ``{"batch_size", "n_units", "n_nodes", "integration", "n_padded"}``.

    Parameters
    ----------
    data : ChoiceData
        Panels may be unbalanced: individuals with fewer situations are padded with
        situations that add nothing to their likelihood (:func:`padded_panel`).
    spec, attributes, random, reference, priors
        As in :func:`~pymc_maxent.build_model`: MNL-1…3, and random components that vary by
        individual, uncorrelated or ``correlated=True`` (LKJ), normal or lognormal.
        Situation-level components are refused (use ``build_model`` and NUTS, or
        ``fit_maxent``).
    batch_size : int, optional
        Situations per batch (default 1000); individuals per batch for models with random
        components (default 100).
    integration : {"auto", "gauss-hermite", "qmc"}
        How the random components are integrated out of each individual's likelihood:
        a Gauss–Hermite product rule (``nodes**D`` nodes: accurate, exponential in the number
        ``D`` of components) or scrambled-Sobol quasi-Monte Carlo (``nodes`` points, default
        256, whatever ``D``: the cost of a step is linear in ``D``). ``"auto"``: Gauss–Hermite
        for ``D ≤ 2``, quasi-Monte Carlo beyond.
    nodes : int, optional
        Gauss–Hermite nodes per component (default the most with ``nodes**D ≤ 100``, from 3
        to 20; ``nodes**D`` at most 10⁴), or quasi-Monte Carlo points (default 256).
    random_seed : int, optional
        Seeds the quasi-Monte Carlo scrambling.

    Returns
    -------
    model : pm.Model
    details : dict

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.bayes.minibatch import minibatch_model
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=50, n_situations=3, n_attributes=4, seed=1)
    >>> model, details = minibatch_model(data, "MXL-1", batch_size=10)
    >>> details["integration"], details["n_nodes"], details["n_units"]
    ('qmc', 256, 50)
    """
    batch_size = optional_count(batch_size, "batch_size")
    nodes = optional_count(nodes, "nodes")
    spec = as_spec(spec, data.attributes.tolist() if attributes is None else list(attributes),
                   random=random, reference=reference)
    resolved = resolve(spec, data)
    if resolved.nested or resolved.wtp_space:
        raise SpecificationError(f"{spec.name}: fit_minibatch fits preference-space logits without nests; "
                                 "a nested logit or WTP space needs build_model")
    priors = check_priors(priors, names=MINIBATCH_PRIORS + (("lkj_eta",) if spec.correlated else ()))
    if len(resolved.situation_components):
        raise SpecificationError(
            "fit_minibatch integrates random components that vary by individual; situation-level "
            f"components ({', '.join(resolved.random_labels[i] for i in resolved.situation_components)}) "
            "need build_model and NUTS, or fit_maxent at that tier")
    D = resolved.n_random
    n_padded = 0
    if D:
        X, available, chosen, n_padded = padded_panel(data)
        grid, weights, integration = _integration_rule(D, integration, nodes, random_seed)
    else:
        X, available, chosen = data.X, data.available, data.chosen
    chosen = chosen.astype(np.int32)  # Categorical's dtype: a cast would hide the observed minibatch
    n_units = X.shape[0]
    batch_size = int(min(batch_size or (100 if D else 1000), n_units))
    coords = {ALTERNATIVE: data.alternatives.tolist(), ATTRIBUTE: data.attributes.tolist()}
    coords |= {k: v for k, v in parameter_coords(resolved).items()
               if k != NEW_INDIVIDUAL}
    with pm.Model(coords=coords) as model:
        alpha, beta = fixed_parameters(resolved, priors)
        has_fixed = alpha is not None or beta is not None
        if D:  # the fixed utility needs X; the random components, their design Z
            layout = utility_layout(resolved)
            arrays = {"X": X} if has_fixed else {}
            arrays |= {"Z": layout.random_design(X), "available": available, "chosen_index": chosen}
        else:
            arrays = {"X": X, "available": available, "chosen_index": chosen}
        # shared (not pm.Data): no situation dim, so no 10⁷ coordinate labels are held
        tensors = [pytensor.shared(np.asarray(a), name=name, borrow=True) for name, a in arrays.items()]
        batch = dict(zip(arrays, pm.Minibatch(*tensors, batch_size=batch_size), strict=True))
        mA, mC = batch["available"].astype("bool"), batch["chosen_index"]
        if not D:
            U = fixed_utility(batch["X"], resolved, alpha, beta)
            pm.Categorical("chosen", logit_p=mask_unavailable(U, mA), observed=mC, total_size=n_units)
        else:
            V = fixed_utility(batch["X"], resolved, alpha, beta) if has_fixed else pt.zeros(mA.shape)
            theta = natural_scale(population_distribution(resolved, priors)(pt.as_tensor(grid)), resolved)
            log_lik, _, _ = SimulatedLogLikelihood()(V, batch["Z"], mA, mC, theta, np.log(weights))
            pm.Potential("log_likelihood", log_lik.sum() * (n_units / batch_size))
    details = {"batch_size": batch_size, "n_units": n_units, "n_nodes": len(weights) if D else 1,
               "integration": integration if D else None, "n_padded": n_padded}
    return model, details


def _integration_rule(D: int, integration: str, nodes: int | None, seed):
    """Points, weights and the rule's name for integrating ``D`` standard-normal components."""
    if integration not in ("auto", "gauss-hermite", "qmc"):
        raise SpecificationError(f"integration must be 'auto', 'gauss-hermite' or 'qmc'; got {integration!r}")
    if integration == "auto":
        integration = "gauss-hermite" if D <= 2 else "qmc"
    if integration == "qmc":
        if nodes is not None and nodes < 2:
            raise SpecificationError("nodes must be an integer >= 2: quasi-Monte Carlo needs 2 or more "
                                     f"points; got {nodes}")
        grid, weights = qmc_normal_points(D, DEFAULT_QMC_POINTS if nodes is None else nodes, seed)
        return grid, weights, integration
    nodes = nodes if nodes is not None else max(3, min(20, int(np.floor(MAX_NODES ** (1.0 / D) + 1e-9))))
    if nodes < 2 or nodes**D > 10_000:
        raise SpecificationError(f"nodes must be an integer >= 2 with at most 10⁴ nodes in all; got {nodes} "
                                 f"Gauss–Hermite nodes for {D} random components ({nodes ** D} in all): "
                                 "give fewer, or integration='qmc'")
    grid, weights = gauss_hermite_grid(D, nodes)
    return grid, weights, integration


def _no_drift(losses: np.ndarray) -> bool:
    """Mean loss of the last tenth within 3 standard errors of that of the fifth tenth (40–50%):
    the loss no longer falls over the second half. Closer windows hid a loss still falling
    (a 300-step electricity-panel fit fell by 27 against a standard error of 72 over its last
    two tenths, by 513 over its second half, with μ at a fifth of its value)."""
    k = len(losses) // 10
    if k < 20:
        return False
    a, b = losses[-k:], losses[4 * k:5 * k]
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return False
    return bool(abs(a.mean() - b.mean()) <= 3.0 * np.sqrt(a.var() / k + b.var() / k))
