"""What each individual's own choices add beyond the population, for any fit with individual
effects (a mixed-tier :class:`~pymc_maxent.PosteriorFit`, an
:class:`~pymc_maxent.IndividualMaxEntResult`), in one currency: choice probabilities.

``KL_i = Σ_t KL(p_it ‖ p⁰_it)`` compares the fit's prediction for the known individual with its
prediction for the same situations as a new individual (the population). Parameter spaces differ
between estimators, so the posterior's ``KL(posterior of θ_i ‖ population distribution of θ)``
is reported beside it, never in its place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy.special import rel_entr

from pymc_maxent.arguments import require_count
from pymc_maxent.data.choice_data import ALTERNATIVE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.diagnostics.comparison import pair_labels
from pymc_maxent.diagnostics.individual_comparison import compare_individual_statistics
from pymc_maxent.diagnostics.information import LN2, knn_kl
from pymc_maxent.exceptions import SpecificationError

RANDOM = "random_coefficient"
PARAMETER_KL_METHODS = ("gaussian", "knn")
#: Floor of a population probability of an available alternative (an underflow to 0 would make
#: the KL infinite).
TINY = np.finfo(float).tiny
#: Posterior draws per random component below which no parameter-space KL is estimated.
MIN_DRAWS = 20


def _unseen_labels(labels: np.ndarray, known, prefix: str) -> np.ndarray:
    """``labels`` prefixed so that none is among ``known``."""
    known = {str(k) for k in np.asarray(known).tolist()}
    while any(f"{prefix}{label}" in known for label in labels.tolist()):
        prefix = "_" + prefix
    return np.array([f"{prefix}{label}" for label in labels.tolist()], dtype=object)


def _as_new_individuals(data: ChoiceData, known) -> ChoiceData:
    """``data`` with every individual relabelled to one the fit has not seen."""
    return data.with_labels(individuals=_unseen_labels(data.individuals, known, "population "))


def _as_new_situations(data: ChoiceData, known) -> ChoiceData:
    """``data`` with every situation relabelled to one the fit has not seen (no fitted
    situation-level deviation applies)."""
    return data.with_labels(situations=_unseen_labels(data.situations, known, "unseen "))


def _mean_probabilities(evaluator) -> np.ndarray:
    """``Σ_s w_s p_s`` (situation, alternative): the posterior mean, or MaxEnt at its estimate."""
    return np.tensordot(evaluator.weights, evaluator.evaluate(), axes=1)


def _gaussian_kl(x: np.ndarray, population: np.ndarray) -> np.ndarray:
    """``KL(N(m_i, S_i) ‖ N(m_0, S_0))`` of moment-matched Gaussians: ``x`` (sample, individual,
    R), ``population`` (sample, R)."""
    R = x.shape[-1]
    m0 = population.mean(axis=0)
    S0 = np.atleast_2d(np.cov(population, rowvar=False))
    m = x.mean(axis=0)
    centred = x - m
    S = np.einsum("nir,nis->irs", centred, centred) / (x.shape[0] - 1)
    S0_inv = np.linalg.inv(S0)
    d = m - m0
    _, logdet0 = np.linalg.slogdet(S0)
    sign, logdet = np.linalg.slogdet(S)
    kl = 0.5 * (np.einsum("rs,isr->i", S0_inv, S) + np.einsum("ir,rs,is->i", d, S0_inv, d) - R
                + logdet0 - logdet)
    return np.where(sign > 0, np.maximum(kl, 0.0), np.inf)


def _parameter_kl(fit, individuals: list, method: str, population_draws: int,
                  random_seed) -> tuple[np.ndarray | None, str]:
    """``KL(posterior of θ_i ‖ population distribution of θ)`` per individual of ``individuals``
    (0 for those the fit has not seen: their posterior is the population), or None with the
    reason for a fit without draws of its individual coefficients (MaxEnt: no reason given) or
    with too few to estimate it (a point estimate)."""
    draws = fit.individual_coefficient_draws(population_draws=population_draws, random_seed=random_seed)
    if draws is None:
        return None, ""
    theta = draws["theta"].stack(sample=("chain", "draw")).transpose("sample", INDIVIDUAL, RANDOM)
    if theta.sizes["sample"] < MIN_DRAWS * theta.sizes[RANDOM]:
        return None, (f"not estimated: fewer than {MIN_DRAWS} draws per random component (a point "
                      "estimate has no posterior spread)")
    population = draws["theta_population"].stack(sample=("chain", "draw", "population_draw"))
    population = population.transpose("sample", RANDOM).values
    if method == "gaussian":
        kl = _gaussian_kl(theta.values, population)
    else:
        kl = np.array([knn_kl(theta.values[:, i], population, random_seed)
                       for i in range(theta.sizes[INDIVIDUAL])])
    kl = np.maximum(kl, 0.0)
    position = {label: n for n, label in enumerate(theta[INDIVIDUAL].values.tolist())}
    return np.array([kl[position[i]] if i in position else 0.0 for i in individuals]), ""


def individual_information_gain(fit, data: ChoiceData | None = None, *, parameter_kl: str = "gaussian",
                                population_draws: int = 4, random_seed: int = 0) -> xr.Dataset:
    """Per individual, how far the fit's prediction for that individual moves from its
    prediction for a new individual in the same situations (the population).

    ``KL_i = Σ_{t ∈ T_i} Σ_j p_itj ln(p_itj / p⁰_itj)``, with ``p_it`` the fit's choice
    probabilities for the known individual (posterior mean, or MaxEnt at its estimate) and
    ``p⁰_it`` its probabilities for the same situations as a new individual (the posterior
    mean of the population-integrated predictive, or MaxEnt's population fit). The
    information index is ``KL_i / (−Σ_t ln p⁰_t,chosen)``, as
    :attr:`~pymc_maxent.IndividualMaxEntResult.information_index_individual`. For a MaxEnt mixed
    logit both equal its stored ``kl_individual`` and ``information_index_individual``. With a
    situation level (``MXL-4``) the situations are predicted as unseen ones (no fitted
    situation deviation), so that ``KL_i`` is the individual level's alone, for both estimators;
    MaxEnt reports its situation stage's own information
    (:class:`~pymc_maxent.maxent.SituationMaxEntResult`).

    Parameters
    ----------
    fit : Fit
        A fit with individual effects: a :class:`~pymc_maxent.PosteriorFit` of a mixed tier or an
        :class:`~pymc_maxent.IndividualMaxEntResult`.
    data : ChoiceData, optional
        Whose situations and individuals; default the fitted data. Individuals the fit has not
        seen are the population: ``KL_i = 0`` up to Monte Carlo error.
    parameter_kl : {"gaussian", "knn"}
        For a fit with draws of its individual coefficients (a posterior): how to estimate
        ``KL(posterior of θ_i ‖ population distribution of θ)``, on the normal scale ``θ`` of the
        random components (a lognormal one before its ``±exp``; KL is invariant under that
        bijection). ``"gaussian"``: both sides moment-matched by Gaussians, exact for Gaussians;
        the population distribution integrated over the posterior of ``μ, σ`` is a scale mixture,
        heavier-tailed than its match, and a posterior of ``θ_i`` from few situations can be
        skewed, so read it as an approximation. ``"knn"``: the nearest-neighbour estimate of
        :func:`~pymc_maxent.diagnostics.posterior_information_gain` (unbiased for any shape,
        noisier; slower, one call per individual).
    population_draws : int
        New-individual draws per posterior draw, for ``p⁰`` and for the population distribution
        of ``θ`` (a MaxEnt population prediction has no such draws).
    random_seed : int

    Returns
    -------
    Dataset
        Dim ``individual`` (the data's individuals): ``kl_nats``, ``kl_bits``, ``n_situations``,
        ``information_index`` (when the data have choices) and, for a posterior,
        ``parameter_kl_nats`` and ``parameter_kl_bits`` (left out, with a note in ``attrs``, for a
        point estimate: fewer than 20 draws per random component); dims (situation,
        alternative): ``p`` and ``p_population``. Unavailable alternatives count ``0 ln 0 = 0``.

    Raises
    ------
    SpecificationError
        A fit without individual effects (an MNL tier, a MaxEnt fit without stage 2), or an
        unknown ``parameter_kl``.

    Notes
    -----
    The two KLs measure different things. ``KL_i`` lives in choice space, the same for every
    estimator: how differently the individual is predicted to choose in their own situations,
    so it grows with the number of situations and with how much the individual's choices
    differ from the population's. The parameter-space KL measures how much the individual's
    choices narrowed and moved the posterior of ``θ_i`` from the population distribution; it is
    in nats of another space and needs draws of ``θ_i``, which a MaxEnt fit does not have.

    ``p⁰`` is the fit's prediction for a newcomer. For a MaxEnt fit with the fixed rule that is
    stage 1's ``p̂``, so ``KL_i`` equals the fit's ``kl_individual``; with learnt pooling it is
    the integral over the mixing distribution, while ``kl_individual`` is measured from
    ``p⁰`` at ``μ`` (stage 2's reference).

    Examples
    --------
    >>> import numpy as np, pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import individual_information_gain
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=8, seed=2)
    >>> fit = pmx.fit_maxent(data, tier="MXL-1", individual_support="fixed")
    >>> info = individual_information_gain(fit)
    >>> dict(info["kl_nats"].sizes), bool(np.allclose(info["kl_nats"], fit.kl_individual))
    ({'individual': 20}, True)
    """
    if parameter_kl not in PARAMETER_KL_METHODS:
        raise SpecificationError(f"parameter_kl must be one of {PARAMETER_KL_METHODS}; got {parameter_kl!r}")
    population_draws = require_count(population_draws, "population_draws")
    fit.individual_estimates()  # a fit without individual effects raises here
    data = fit.data if data is None else data
    if fit.probability_graph().situation is not None:
        # the individual level alone: the fitted situations' own deviations (MXL-4) stay out
        data = _as_new_situations(data, fit.data.situations)
    evaluator = fit.evaluator(random_seed=random_seed)
    p = _mean_probabilities(evaluator.with_data(data))
    new = _as_new_individuals(data, fit.data.individuals)
    redraws = 1 if fit.probability_graph().new_individual is None else population_draws
    seeds = [None if random_seed is None else (random_seed, k) for k in range(redraws)]
    p0 = np.mean([_mean_probabilities(evaluator.with_data(new, random_seed=seed)) for seed in seeds], axis=0)
    available = np.asarray(data.available, dtype=bool)
    p0 = np.where(available, np.maximum(p0, TINY), 0.0)
    p = np.where(available, p, 0.0)
    index, n_individuals = np.asarray(data.individual), data.n_individuals
    kl = np.bincount(index, rel_entr(p, p0).sum(axis=1), minlength=n_individuals)
    individuals = data.individuals.tolist()

    def per_individual(values, name):
        return xr.DataArray(values, dims=(INDIVIDUAL,), coords={INDIVIDUAL: individuals}, name=name)

    out = xr.Dataset({"kl_nats": per_individual(kl, "kl_nats"),
                      "kl_bits": per_individual(kl / LN2, "kl_bits"),
                      "n_situations": per_individual(np.bincount(index, minlength=n_individuals),
                                                     "n_situations")},
                     attrs={"estimator": fit.estimator, "population_draws": redraws})
    if data.has_choices:
        surprise = np.bincount(index, -np.log(p0[np.arange(data.n_situations), data.chosen]),
                               minlength=n_individuals)
        out["information_index"] = per_individual(
            np.divide(kl, surprise, out=np.zeros_like(kl), where=surprise > 0), "information_index")
    parameter, reason = _parameter_kl(fit, individuals, parameter_kl, population_draws, random_seed)
    if parameter is not None:
        out["parameter_kl_nats"] = per_individual(parameter, "parameter_kl_nats")
        out["parameter_kl_bits"] = per_individual(parameter / LN2, "parameter_kl_bits")
        out.attrs["parameter_kl_method"] = parameter_kl
    elif reason:
        out.attrs["parameter_kl"] = reason
    sit = {SITUATION: data.situations.tolist(), ALTERNATIVE: data.alternatives.tolist()}
    out["p"] = xr.DataArray(p, dims=(SITUATION, ALTERNATIVE), coords=sit)
    out["p_population"] = xr.DataArray(p0, dims=(SITUATION, ALTERNATIVE), coords=sit)
    return out


def compare_individual_information(fit, other, data: ChoiceData | None = None, *,
                                   statistic: str | Sequence[str] = "kl_nats",
                                   labels: Sequence[str] | None = None, **kwargs) -> xr.Dataset:
    """Two fits' per-individual information (:func:`individual_information_gain`) side by side,
    by :func:`~pymc_maxent.diagnostics.compare_individual_statistics`: correlation, rank
    correlation (do both fits single out the same individuals?) and RMSE over individuals.

    Parameters
    ----------
    fit, other : Fit
        Fits with individual effects, typically a mixed-tier posterior and its MaxEnt twin.
    data : ChoiceData, optional
    statistic : str or pair of str
        A variable of :func:`individual_information_gain` (``kl_nats``, ``kl_bits``,
        ``information_index``, ``parameter_kl_nats``), or one for each fit: e.g.
        ``("parameter_kl_nats", "kl_nats")`` sets a posterior's parameter-space KL beside
        MaxEnt's choice-space KL (rank agreement only: their nats are of different spaces).
    labels : pair of str, optional
        Default the fits' ``estimator``.
    **kwargs
        To :func:`individual_information_gain`.

    Returns
    -------
    Dataset
        As :func:`~pymc_maxent.diagnostics.compare_individual_statistics` (no ``sd``).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import compare_individual_information
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=3)
    >>> a = pmx.fit_maxent(data, tier="MXL-1")
    >>> b = pmx.fit_maxent(data, tier="MXL-1", individual_support=2.0)
    >>> out = compare_individual_information(a, b, labels=("narrow", "wide"))
    >>> bool(out["rank_correlation"] > 0.8), out.attrs["statistic"]
    (True, 'kl_nats')
    """
    a, b = pair_labels(fit, other, labels)
    first, second = (individual_information_gain(f, data, **kwargs) for f in (fit, other))
    return information_comparison(first, second, statistic, (a, b))


def information_comparison(first: xr.Dataset, second: xr.Dataset, statistic, labels) -> xr.Dataset:
    """:func:`compare_individual_statistics` of two :func:`individual_information_gain` results."""
    names = (statistic, statistic) if isinstance(statistic, str) else tuple(statistic)
    for ds, name, label in zip((first, second), names, labels, strict=True):
        if name not in ds or ds[name].dims != (INDIVIDUAL,):
            have = [v for v in ds.data_vars if ds[v].dims == (INDIVIDUAL,)]
            raise SpecificationError(f"{label}: no per-individual statistic {name!r}; it has {have}")
    out = compare_individual_statistics(xr.Dataset({"estimate": first[names[0]]}),
                                        xr.Dataset({"estimate": second[names[1]]}), labels=labels)
    out.attrs |= {"statistic": names[0] if names[0] == names[1] else " vs ".join(names)}
    return out
