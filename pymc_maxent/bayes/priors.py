"""The parameters of the Bayesian choice models: their names, dims and default priors.

Every builder (:func:`~pymc_maxent.build_model`, :func:`~pymc_maxent.bayes.minibatch.fit_minibatch`)
takes its parameter names, dims and default priors from here, and checks the user's priors
with :func:`check_priors`.

Default priors are weakly informative on the scale of the data: a coefficient's prior SD is
``2.5 / sd(x)`` (a one-SD change of the attribute moves utility by about ±2.5 at most), a
constant's is 5; a lognormal coefficient's ``mu`` is centred on ``−log sd(x)`` with SD 1.5
(its SD 1) on the log scale; random constants' ``mu`` has SD 5 and ``sigma`` scale 2.5.
A nested logit's dissimilarity parameters ``λ`` are uniform on ``(0, 1)``. In WTP space the
scales are those of money: a WTP's SD is ``2.5 sd(price)/sd(x)``, a constant's WTP
``5 sd(price)``, and the scale ``s`` (price coefficient ``−exp(s)``) is centred on
``−log sd(price)`` with SD 1.5.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pymc_extras.prior import Prior

from pymc_maxent.exceptions import SpecificationError

#: Dims of each parameter that takes a prior (``lkj_eta``, a number, has none).
PARAMETER_DIMS: dict[str, tuple[str, ...]] = {
    "alpha": ("asc",),
    "beta": ("coefficient",),
    "mu": ("random_coefficient",),
    "sigma": ("random_coefficient",),
    "sigma_situation": ("situation_coefficient",),
    "lkj_eta": (),
    "lambda": ("nest",),
    "scale": (),
    "wtp": ("wtp_coefficient",),
    "wtp_asc": ("asc",),
}
#: Names the ``priors`` argument accepts.
PRIOR_NAMES = tuple(PARAMETER_DIMS)
#: The population-level parameters of a posterior, as named in its DataTree (``corr``: the
#: correlations of correlated random components, dims ``random_coefficient`` ×
#: ``random_coefficient_2``).
TOP_LEVEL_PARAMETERS = ("alpha", "beta", "mu", "sigma", "sigma_situation", "corr", "lambda", "scale", "wtp",
                        "wtp_asc")
#: Dims of ``corr``, the correlation matrix of correlated random components.
CORR_DIMS = ("random_coefficient", "random_coefficient_2")
#: The LKJ shape of the correlations of correlated random components (``> 1``: towards 0).
DEFAULT_LKJ_ETA = 2.0


def check_priors(priors: Mapping | None, names: tuple[str, ...] = PRIOR_NAMES) -> dict:
    """The user's priors, checked: known names, a :class:`~pymc_extras.prior.Prior` each
    (``lkj_eta``: a positive number).

    Parameters
    ----------
    priors : mapping or None
    names : tuple of str
        The parameters the caller accepts priors for.

    Raises
    ------
    SpecificationError
        Naming the unknown parameters (and the known ones) or the prior of the wrong type.

    Examples
    --------
    >>> from pymc_extras.prior import Prior
    >>> from pymc_maxent.bayes.priors import check_priors
    >>> check_priors({"beta": Prior("Normal", mu=0, sigma=1)})["beta"].distribution
    'Normal'
    >>> check_priors({"gamma": Prior("Normal")}, names=("alpha", "beta"))
    Traceback (most recent call last):
    ...
    pymc_maxent.exceptions.SpecificationError: priors for unknown parameters ['gamma']; known: alpha, beta
    """
    priors = dict(priors or {})
    unknown = sorted(set(priors) - set(names))
    if unknown:
        raise SpecificationError(f"priors for unknown parameters {unknown}; known: {', '.join(names)}")
    for name, prior in priors.items():
        if name == "lkj_eta":
            if isinstance(prior, bool | str) or not np.isscalar(prior) or not float(prior) > 0:
                raise SpecificationError(f"prior 'lkj_eta' must be a positive number; got {prior!r}")
        elif not isinstance(prior, Prior):
            raise SpecificationError(f"prior for {name!r} must be a pymc_extras Prior; got {prior!r}")
    return priors


def random_scales(resolved) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Default location of ``mu`` and scales of ``mu`` and ``sigma``, per random component: on
    the attributes' scales (a lognormal component's on the log scale; random constants on the
    utility's)."""
    is_log = resolved.random_sign != 0
    scale = resolved.random_scale
    n_asc = resolved.n_random_asc
    mu_loc = np.where(is_log, -np.log(scale), 0.0)
    mu_scale = np.where(is_log, 1.5, 2.5 / scale)
    sd_scale = np.where(is_log, 1.0, 2.5 / scale)
    mu_scale[:n_asc], sd_scale[:n_asc] = 5.0 * resolved.price_sd, 2.5 * resolved.price_sd
    return mu_loc, mu_scale, sd_scale


def default_prior(name: str, resolved) -> Prior | float:
    """The default prior of parameter ``name`` of a resolved specification.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.bayes.priors import default_prior
    >>> from pymc_maxent.specification import resolve, tier_spec
    >>> data = pmx.load_travel_mode()
    >>> default_prior("alpha", resolve(tier_spec("MNL-2", ["gc"]), data))
    Prior("Normal", mu=0, sigma=5)
    """
    if name == "alpha":
        return Prior("Normal", mu=0, sigma=5)
    if name == "beta":
        return Prior("Normal", mu=0, sigma=2.5 / np.asarray(resolved.fixed.scales))
    if name == "lkj_eta":
        return DEFAULT_LKJ_ETA
    if name == "lambda":
        return Prior("Uniform", lower=0.0, upper=1.0)
    if name == "scale":
        return Prior("Normal", mu=-np.log(resolved.price_sd), sigma=1.5)
    if name == "wtp":
        return Prior("Normal", mu=0, sigma=2.5 / np.asarray(resolved.fixed.scales))
    if name == "wtp_asc":
        return Prior("Normal", mu=0, sigma=5 * resolved.price_sd)
    mu_loc, mu_scale, sd_scale = random_scales(resolved)
    if name == "mu":
        return Prior("Normal", mu=mu_loc, sigma=mu_scale)
    if name == "sigma":
        return Prior("HalfNormal", sigma=sd_scale)
    if name == "sigma_situation":
        return Prior("HalfNormal", sigma=sd_scale[resolved.situation_components])
    raise SpecificationError(f"no prior for {name!r}; known: {', '.join(PRIOR_NAMES)}")


def parameter_prior(name: str, resolved, priors: Mapping) -> Prior | float:
    """The prior of ``name``: the user's (from checked ``priors``) or the default, with the
    parameter's dims (a copy: the user's transform and centring are kept)."""
    if name not in priors:
        prior = default_prior(name, resolved)
    else:
        prior = priors[name]
    if name == "lkj_eta":
        return float(prior)
    prior = prior.deepcopy()
    prior.dims = PARAMETER_DIMS[name]
    return prior
