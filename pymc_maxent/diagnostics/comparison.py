"""Two fits side by side, parameter by parameter (the posterior against MaxEnt, say)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pymc_maxent.exceptions import SpecificationError


def pair_labels(fit, other, labels) -> tuple[str, str]:
    """Column prefixes or axis labels of two fits: ``labels``, else their ``estimator`` (``fit``
    and ``other`` when the same)."""
    if labels is not None:
        return tuple(labels)
    return (fit.estimator, other.estimator) if fit.estimator != other.estimator else ("fit", "other")


def compare_estimates(
    fit,
    other,
    *,
    var_names: Sequence[str] = ("alpha", "beta"),
    ci_prob: float = 0.94,
    rename: Mapping[str, str] | None = None,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per parameter: each fit's estimate, sd and interval, and their difference.

    Parameters are matched by name (``alpha[air]``, ``beta[gc]``): the Bayesian builders and
    the MaxEnt moments use the same labels. Parameters only one side has are left out.

    Parameters
    ----------
    fit, other : Fit
        Typically a :class:`~pymc_maxent.PosteriorFit` and a :class:`~pymc_maxent.MaxEntResult`;
        any two fits work (two tiers, two priors).
    var_names : sequence of str
        Variables to compare.
    ci_prob : float
        Probability of the intervals (posterior HDI; normal interval of a MaxEnt fit).
    rename : mapping, optional
        Name in ``fit`` → name in ``other``, e.g. ``{"mu[gc]": "beta[gc]"}`` to set the population
        mean of a normal random coefficient beside MaxEnt's fixed coefficient.
    labels : pair of str, optional
        Column prefixes; default the two fits' ``estimator`` (``bayes``, ``maxent``), or
        ``fit`` and ``other`` when they are the same.

    Returns
    -------
    DataFrame
        Columns ``{a}_estimate``, ``{a}_sd``, ``{a}_lower``, ``{a}_upper``, ``{b}_estimate``,
        ``{b}_sd``, ``difference_sd`` (``b`` minus ``a``, in ``a``'s sds) and ``{b}_in_interval``
        (``b``'s estimate inside ``a``'s interval), with ``a, b`` the labels.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import compare_estimates
    >>> data = pmx.load_travel_mode()
    >>> gme, mle = pmx.fit_maxent(data), pmx.fit_maxent(data, error_support=None)
    >>> table = compare_estimates(mle, gme, labels=("mle", "gme"))
    >>> list(table.columns[:2]), bool(table["gme_in_interval"].all())
    (['mle_estimate', 'mle_sd'], True)
    """
    a, b = pair_labels(fit, other, labels)
    first = fit.estimates(ci_prob)
    second = other.estimates(ci_prob)
    keep = [k for k in first.index if str(k).split("[")[0] in var_names]
    if not keep:
        raise SpecificationError(f"the first fit has none of the variables {list(var_names)}; "
                                 f"it has {sorted({str(k).split('[')[0] for k in first.index})}")
    first = first.loc[keep, ["estimate", "sd", "lower", "upper"]].astype(float)
    first.index = [(rename or {}).get(k, k) for k in first.index]
    shared = [k for k in first.index if k in second.index]
    if not shared:
        raise SpecificationError(f"no parameter in common: {list(first.index)} and {list(second.index)}")
    table = first.loc[shared].add_prefix(f"{a}_")
    table[f"{b}_estimate"] = second.loc[shared, "estimate"].astype(float)
    table[f"{b}_sd"] = second.loc[shared, "sd"].astype(float)
    table["difference_sd"] = (table[f"{b}_estimate"] - table[f"{a}_estimate"]) / table[f"{a}_sd"]
    table[f"{b}_in_interval"] = table[f"{b}_estimate"].between(table[f"{a}_lower"], table[f"{a}_upper"])
    table.index.name = "parameter"
    if not np.isfinite(table.drop(columns=f"{b}_in_interval").to_numpy(float)).all():
        raise SpecificationError("an estimate or sd is not finite; check the convergence of both fits")
    return table
