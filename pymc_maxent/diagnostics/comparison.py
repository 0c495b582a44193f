"""Two fits side by side, parameter by parameter (the posterior against MaxEnt, say)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

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


def compare_individuals(fit, other, *, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Individual coefficients of two fits, component by component: how well ``other``'s
    ``β_i`` (a MaxEnt mixed logit, say) line up with ``fit``'s (the posterior means of a mixed
    logit's ``β_i``).

    Both fits give their ``individual_estimates()`` (``estimate`` and ``sd``, individual ×
    random_coefficient: :meth:`~pymc_maxent.PosteriorFit.individual_estimates`,
    :meth:`~pymc_maxent.IndividualMaxEntResult.individual_estimates`); individuals and components
    are matched by label, and compared by
    :func:`~pymc_maxent.diagnostics.compare_individual_statistics`.

    Parameters
    ----------
    fit, other : Fit
    labels : pair of str, optional
        Column prefixes; default the fits' ``estimator`` (``fit`` and ``other`` when the same).

    Returns
    -------
    DataFrame
        Index ``random_coefficient``; columns ``correlation`` (Pearson, over individuals; 0
        where a component does not vary over individuals), ``rank_correlation`` (Spearman),
        ``rmse_sd`` (root mean square of ``(other − fit) / fit's sd``: the difference in
        ``fit``'s posterior SDs; left out unless every SD is positive), ``mean_difference``
        (``other − fit``), ``{a}_sd``, ``{b}_sd`` (SDs of the estimates over individuals) and
        ``n_individuals``.

    Raises
    ------
    SpecificationError
        A fit without individual coefficients, or no individual or component in common.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import compare_individuals
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=3)
    >>> a = pmx.fit_maxent(data, tier="MXL-1")
    >>> b = pmx.fit_maxent(data, tier="MXL-1", individual_support=2.0)
    >>> table = compare_individuals(a, b, labels=("narrow", "wide"))
    >>> table.index.tolist(), bool((table["correlation"] > 0.9).all())
    (['x0', 'x1'], True)
    """
    from pymc_maxent.diagnostics.individuals import compare_individual_statistics

    a, b = pair_labels(fit, other, labels)
    out = compare_individual_statistics(*matched_individual_estimates(fit, other), labels=(a, b))
    columns = {name: out[name] for name in ("correlation", "rank_correlation", "rmse_sd") if name in out}
    columns |= {"mean_difference": out["difference"].mean("individual"),
                f"{a}_sd": out[f"{a}_estimate"].std("individual", ddof=1),
                f"{b}_sd": out[f"{b}_estimate"].std("individual", ddof=1)}
    table = pd.DataFrame({k: v.to_series() for k, v in columns.items()})
    table["n_individuals"] = out.attrs["n_individuals"]
    table.index.name = "random_coefficient"
    return table


def individual_estimates_of(fit) -> xr.Dataset:
    """``fit.individual_estimates()``, or a :class:`SpecificationError` for a fit without
    individual coefficients (anything but a mixed-tier posterior or a MaxEnt mixed logit)."""
    if not callable(getattr(fit, "individual_estimates", None)):
        raise SpecificationError(f"{type(fit).__name__} has no individual coefficients (a "
                                 "fixed-coefficient fit); use a mixed tier")
    return fit.individual_estimates()  # a posterior of a tier without them raises here


class KnownCoefficients:
    """Known individual coefficients (a simulation's truth) in the shape
    :func:`compare_individuals` and :func:`~pymc_maxent.plots.plot_individual_coefficients` read:
    as the second fit, ``compare_individuals(fit, KnownCoefficients(...))`` gives each
    component's correlation of ``fit``'s estimates with the truth and the RMSE of the error in
    ``fit``'s SDs (near 1 where those SDs are calibrated).

    Parameters
    ----------
    beta : array (individual, random_coefficient)
        The true ``β_i``.
    individuals : sequence
        Individual labels, in the rows' order.
    random_labels : sequence of str
        Component labels (the fits' ``random_coefficient`` coords).
    estimator : str
        Its label in the tables.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import KnownCoefficients, compare_individuals
    >>> data, truth = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=3)
    >>> fit = pmx.fit_maxent(data, tier="MXL-1")
    >>> known = KnownCoefficients(truth["theta"], data.individuals, ["x0", "x1"])
    >>> bool((compare_individuals(fit, known)["correlation"] > 0.5).all())
    True
    """

    def __init__(self, beta, individuals, random_labels, *, estimator: str = "truth"):
        self.beta = np.asarray(beta, dtype=float)
        self.individuals, self.random_labels = list(individuals), list(random_labels)
        expected = (len(self.individuals), len(self.random_labels))
        if self.beta.shape != expected:
            raise SpecificationError(f"beta has shape {self.beta.shape}; expected (individual, "
                                     f"random_coefficient) = {expected}")
        self.estimator = estimator

    def individual_estimates(self) -> xr.Dataset:
        """``estimate``: the known ``β_i``; ``sd``: zero."""
        dims = ("individual", "random_coefficient")
        coords = {"individual": self.individuals, "random_coefficient": self.random_labels}
        return xr.Dataset({"estimate": (dims, self.beta), "sd": (dims, np.zeros_like(self.beta))},
                          coords=coords)


def matched_individual_estimates(fit, other) -> tuple[xr.Dataset, xr.Dataset]:
    """Both fits' ``individual_estimates()`` on the individuals and random components they share
    (matched by label), dims ``(individual, random_coefficient)``.

    Raises
    ------
    SpecificationError
        A fit without individual coefficients, no individual or component in common, or an
        estimate that is not finite.
    """
    first, second = individual_estimates_of(fit), individual_estimates_of(other)
    known = set(second["individual"].values.tolist())
    individuals = [i for i in first["individual"].values.tolist() if i in known]
    known = set(second["random_coefficient"].values.tolist())
    components = [c for c in first["random_coefficient"].values.tolist() if c in known]
    if not individuals or not components:
        raise SpecificationError("the fits have no individual or random component in common")
    sel = {"individual": individuals, "random_coefficient": components}
    first, second = (ds.sel(sel).transpose("individual", "random_coefficient") for ds in (first, second))
    if not (np.isfinite(first["estimate"]).all() and np.isfinite(second["estimate"]).all()):
        raise SpecificationError("an individual estimate is not finite; check the convergence of both fits")
    return first, second
