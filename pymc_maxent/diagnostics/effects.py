"""Marginal effects ``∂p/∂x`` and elasticities, per situation, averaged and aggregate.

Small functions over DataArrays with named dims (:func:`point_elasticities`,
:func:`aggregate_elasticities`, :func:`mean_over_situations`, :func:`individual_effects`) and the
fit-level :func:`marginal_effects` and :func:`elasticities`, which take a posterior
``(model, idata)``, a :class:`~pymc_maxent.MaxEntResult` or a
:class:`~pymc_maxent.evaluation.ChoiceEvaluator` alike. Posteriors give full
distributions over ``(chain, draw)``; MaxEnt fits a Dataset of the ``estimate`` and its
delta-method ``se``. ``alternative`` is the alternative whose probability responds,
``changed_alternative`` the one whose attribute changes. Unavailable alternatives get 0, never NaN.
"""

from __future__ import annotations

import xarray as xr

from pymc_maxent.data.choice_data import ALTERNATIVE, ATTRIBUTE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.evaluation import CHANGED_ALTERNATIVE
from pymc_maxent.exceptions import ChoiceDataError
from pymc_maxent.fit import choice_evaluator

KINDS = ("situation", "mean", "aggregate", "individual")


def _safe_ratio(num, den):
    """``num / den`` with 0 where ``den`` is 0 (unavailable alternatives)."""
    return xr.where(den != 0, num / den.where(den != 0, 1.0), 0.0)


def point_elasticities(p, dp_dx, x) -> xr.DataArray:
    """``E_ijm = ∂p_ij/∂x_im · x_im / p_ij`` per situation.

    Parameters
    ----------
    p : DataArray (..., situation, alternative)
    dp_dx : DataArray (..., situation, alternative, ``changed_alternative``) of one attribute
    x : DataArray (situation, alternative) of that attribute

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from pymc_maxent.diagnostics.effects import point_elasticities
    >>> p = xr.DataArray([[0.5, 0.5]], dims=("situation", "alternative"))
    >>> beta, x = -1.0, xr.DataArray([[2.0, 1.0]], dims=("situation", "alternative"))
    >>> delta = xr.DataArray(np.eye(2), dims=("alternative", "changed_alternative"))
    >>> dp = beta * p * (delta - p.rename(alternative="changed_alternative"))  # MNL: β p_j (δ_jm − p_m)
    >>> point_elasticities(p, dp, x).values.round(2).tolist()  # own: β x (1 − p); cross: −β x_m p_m
    [[[-1.0, 0.5], [1.0, -0.5]]]
    """
    return _safe_ratio(dp_dx * x.rename({ALTERNATIVE: CHANGED_ALTERNATIVE}), p)


def aggregate_elasticities(p, dp_dx, x) -> xr.DataArray:
    """Elasticity of the aggregate demand ``Σ_i p_ij`` to a uniform 1% change of ``x`` for
    alternative ``m``: ``Σ_i ∂p_ij/∂x_im x_im / Σ_i p_ij`` (the share-weighted mean of
    :func:`point_elasticities`)."""
    num = (dp_dx * x.rename({ALTERNATIVE: CHANGED_ALTERNATIVE})).sum(SITUATION)
    return _safe_ratio(num, p.sum(SITUATION))


def sum_by_individual(values, individuals) -> xr.DataArray:
    """Sums over each individual's situations: dim ``situation`` becomes ``individual``
    (labels ``individuals``, one per situation), individuals in order of first appearance."""
    order = list(dict.fromkeys(individuals))
    grouped = values.assign_coords({INDIVIDUAL: (SITUATION, list(individuals))}).groupby(INDIVIDUAL)
    return grouped.sum(SITUATION).sel({INDIVIDUAL: order})


def mean_over_situations(values, available) -> xr.DataArray:
    """Mean over the situations in which the alternatives involved are available (0 where
    there are none)."""
    mask = available
    if CHANGED_ALTERNATIVE in values.dims:
        mask = available & available.rename({ALTERNATIVE: CHANGED_ALTERNATIVE})
    return values.where(mask).mean(SITUATION).fillna(0.0)


def individual_effects(dp_dx) -> xr.DataArray:
    """``∂p_ij/∂x_i`` of an attribute of the decision maker (the same for every alternative,
    such as income): the sum of ``∂p_ij/∂x_im`` over ``m``."""
    return dp_dx.sum(CHANGED_ALTERNATIVE)


def _individual_value(x, available) -> xr.DataArray:
    """``x_i`` of an attribute of the decision maker: its value at an available alternative."""
    return x.where(available).max(ALTERNATIVE).fillna(0.0)


def marginal_effects(fit, data: ChoiceData | None = None, *, attributes=None, **kwargs):
    """``∂p_ij/∂x_imk`` for every situation.

    Parameters
    ----------
    fit : (pm.Model, DataTree), MaxEntResult or ChoiceEvaluator
    data : ChoiceData, optional
        Situations to evaluate (default those the model holds); the containers are restored.
    attributes : list of str, optional
        Default all.
    **kwargs
        To :class:`~pymc_maxent.evaluation.ChoiceEvaluator` (``draws``,
        ``random_seed``).

    Returns
    -------
    DataArray (chain, draw, situation, alternative, ``changed_alternative``, attribute), or for MaxEnt a
    Dataset of ``estimate`` and ``se`` without the sample dims. For an attribute of the decision
    maker, :func:`individual_effects` sums over ``changed_alternative``.
    """
    ev = choice_evaluator(fit, data, **kwargs)
    _, dp = ev.effects()
    if attributes is not None:
        dp = dp.sel({ATTRIBUTE: list(attributes)})
    return ev.finish(dp)


def elasticities(fit, attribute: str, data: ChoiceData | None = None, *, kind: str = "aggregate",
                 **kwargs):
    """Elasticities of choice probabilities to ``attribute``.

    For an attribute that varies across alternatives (a price), a ``J × J`` matrix
    ``(alternative, changed_alternative)``: the response of ``alternative``'s probability to a 1%
    change of ``changed_alternative``'s attribute. For an attribute of the decision maker (the same
    for every alternative, e.g. income) a vector over ``alternative``: the response to a 1%
    change of that value.

    Parameters
    ----------
    fit : (pm.Model, DataTree), MaxEntResult or ChoiceEvaluator
    attribute : str
    data : ChoiceData, optional
    kind : {"aggregate", "mean", "situation", "individual"}
        ``"aggregate"``: of the aggregate demand (:func:`aggregate_elasticities`);
        ``"mean"``: per-situation elasticities averaged over the situations where both
        alternatives are available; ``"situation"``: per situation; ``"individual"``: per
        individual (dim ``individual``), of that individual's expected demand over their own
        situations, ``Σ_t ∂p_tj/∂x_tm x_tm / Σ_t p_tj`` (with individual coefficients: at each
        individual's own ``β_i``).
    **kwargs
        To :class:`~pymc_maxent.evaluation.ChoiceEvaluator`.

    Returns
    -------
    DataArray with the posterior dims ``(chain, draw)`` first, or for MaxEnt a Dataset of
    ``estimate`` and delta-method ``se``.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> res = pmx.fit_maxent(pmx.load_travel_mode())
    >>> E = elasticities(res, "gc")
    >>> float(E["estimate"].sel(alternative="air", changed_alternative="air")) < 0, sorted(E.data_vars)
    (True, ['estimate', 'sd'])
    """
    if kind not in KINDS:
        raise ChoiceDataError(f"kind must be one of {KINDS}; got {kind!r}")
    ev = choice_evaluator(fit, data, **kwargs)
    x = ev.attribute_values(attribute)
    available = ev.available_array()
    p, dp = ev.effects(attribute=attribute)
    personal = not bool((x.where(available).max(ALTERNATIVE) > x.where(available).min(ALTERNATIVE)).any())
    if personal:  # the same value for every alternative: one change moves them all
        dp, x = individual_effects(dp), _individual_value(x, available)
        if kind == "aggregate":
            E = _safe_ratio((dp * x).sum(SITUATION), p.sum(SITUATION))
        elif kind == "individual":
            by = ev.situation_individuals
            E = _safe_ratio(sum_by_individual(dp * x, by), sum_by_individual(p, by))
        else:
            E = _safe_ratio(dp * x, p)
    elif kind == "aggregate":
        E = aggregate_elasticities(p, dp, x)
    elif kind == "individual":
        by = ev.situation_individuals
        E = _safe_ratio(sum_by_individual(dp * x.rename({ALTERNATIVE: CHANGED_ALTERNATIVE}), by),
                        sum_by_individual(p, by))
    else:
        E = point_elasticities(p, dp, x)
    if kind == "mean":
        E = mean_over_situations(E, available)
    E = E.rename("elasticity")
    E.attrs = {"attribute": attribute, "kind": kind, "individual_attribute": int(personal)}
    return ev.finish(E)


WTP_BY = ("individual", "situation")


def willingness_to_pay(fit, price: str, attributes=None, data: ChoiceData | None = None, *,
                       by: str = "individual", **kwargs):
    """Willingness to pay ``WTP_k = −β_k / β_price``: the price change that leaves utility
    unchanged after a unit change of attribute ``k``.

    Ratios of the utility's coefficients at each individual's own values, so random
    coefficients give each individual's WTP at every posterior draw; the spread over
    ``individual`` is the population distribution (individuals new to the model get
    population draws). Alternative-specific coefficients give one WTP per alternative.

    Parameters
    ----------
    fit : (pm.Model, DataTree), MaxEntResult or ChoiceEvaluator
    price : str
        The price (cost) attribute.
    attributes : list of str, optional
        Default every other attribute.
    data : ChoiceData, optional
        Whose individuals (situations) to evaluate; default the data in the model.
    by : {"individual", "situation"}
        ``"individual"``: each individual's first situation (coefficients vary by situation
        only in MXL-4); ``"situation"``: every situation.
    **kwargs
        To :class:`~pymc_maxent.evaluation.ChoiceEvaluator`.

    Returns
    -------
    DataArray (chain, draw, individual | situation, alternative, attribute), or for MaxEnt a
    Dataset of ``estimate`` and delta-method ``se``.

    Raises
    ------
    ChoiceDataError
        If the price coefficient is exactly 0 for an alternative (e.g. an alternative-specific
        price coefficient of the reference alternative).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import willingness_to_pay
    >>> res = pmx.fit_maxent(pmx.load_travel_mode())
    >>> wtp = willingness_to_pay(res, "gc", ["ttme"]).isel(individual=0)
    >>> est = res.summary()["estimate"]
    >>> bool(abs(wtp["estimate"].sel(alternative="air", attribute="ttme")
    ...          + est["beta[ttme]"] / est["beta[gc]"]) < 1e-9)
    True
    """
    if by not in WTP_BY:
        raise ChoiceDataError(f"by must be one of {WTP_BY}; got {by!r}")
    ev = choice_evaluator(fit, data, **kwargs)
    if price not in ev.attributes:
        raise ChoiceDataError(f"unknown price attribute {price!r}; the data have {ev.attributes}")
    others = [a for a in ev.attributes if a != price] if attributes is None else list(attributes)
    unknown = sorted(set(others) - set(ev.attributes))
    if unknown:
        raise ChoiceDataError(f"unknown attributes {unknown}; the data have {ev.attributes}")
    b = ev.coefficients()
    if by == "individual":
        labels = ev.situation_individuals
        first = sorted({label: n for n, label in reversed(list(enumerate(labels)))}.values())
        b = b.isel({SITUATION: first}).rename({SITUATION: "individual"})
        b = b.assign_coords(individual=[labels[n] for n in first])
    b_price = b.sel({ATTRIBUTE: price}, drop=True)
    zero = (b_price == 0).any([d for d in b_price.dims if d != ALTERNATIVE])
    if bool(zero.any()):
        raise ChoiceDataError(f"the coefficient of {price!r} is 0 for alternatives "
                              f"{zero[ALTERNATIVE].values[zero.values].tolist()}: no WTP there")
    return ev.finish(-b.sel({ATTRIBUTE: others}) / b_price)
