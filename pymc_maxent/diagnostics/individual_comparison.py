"""Per-individual statistics of two fits side by side: the individual coefficients, and the
elasticities and willingness to pay of each individual, from the posterior against those from
the MaxEnt mixed logit (or against a simulation's known truth, :class:`KnownCoefficients`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import rankdata

from pymc_maxent.data.choice_data import INDIVIDUAL, ChoiceData
from pymc_maxent.diagnostics.comparison import pair_labels
from pymc_maxent.diagnostics.effects import elasticities, willingness_to_pay
from pymc_maxent.exceptions import SpecificationError

#: Relative spread over individuals below which a statistic counts as the same for everyone.
SAME_FOR_ALL = 1e-10


def compare_individual_statistics(first: xr.Dataset, second: xr.Dataset, *,
                                  labels: Sequence[str] = ("fit", "other")) -> xr.Dataset:
    """Two fits' per-individual statistics (Datasets of ``estimate`` and, optionally, ``sd``
    with an ``individual`` dim, as :func:`~pymc_maxent.diagnostics.elasticities` with
    ``kind="individual"``, :func:`~pymc_maxent.diagnostics.willingness_to_pay` and the fits'
    ``individual_estimates()`` give them), matched by individual label.

    Returns
    -------
    Dataset
        Per individual, with the statistics' other dims: ``{a}_estimate``, ``{a}_sd``,
        ``{b}_estimate``, ``{b}_sd`` (where given) and ``difference`` (``b − a``); over
        individuals: ``correlation`` (Pearson), ``rank_correlation`` (Spearman: do both fits
        order the individuals alike?), ``rmse`` and, when every ``{a}_sd`` is positive,
        ``rmse_sd`` (the RMSE of the difference in ``a``'s SDs); ``comparable``: the element
        varies over individuals in both fits. Where it does not (a fixed coefficient's WTP, an
        alternative nobody has) a correlation is undefined: both correlations are 0 there and
        ``comparable`` False.

    Raises
    ------
    SpecificationError
        A statistic without an ``individual`` dim, fewer than two individuals in common, or an
        estimate that is not finite.

    Examples
    --------
    >>> import xarray as xr
    >>> from pymc_maxent.diagnostics import compare_individual_statistics
    >>> a = xr.Dataset({"estimate": ("individual", [1.0, 2.0, 3.0]), "sd": ("individual", [1.0, 1.0, 1.0])},
    ...                coords={"individual": ["u", "v", "w"]})
    >>> b = a.assign(estimate=a["estimate"] * 2)
    >>> out = compare_individual_statistics(a, b, labels=("bayes", "maxent"))
    >>> float(out["correlation"]), float(out["rank_correlation"]), out["difference"].values.tolist()
    (1.0, 1.0, [1.0, 2.0, 3.0])
    """
    a, b = labels
    for ds, name in ((first, a), (second, b)):
        if INDIVIDUAL not in ds.dims or "estimate" not in ds.data_vars:
            raise SpecificationError(f"{name}: expected a Dataset of 'estimate' (and 'sd') with an "
                                     f"'individual' dim; got dims {dict(ds.sizes)}")
    known = set(second[INDIVIDUAL].values.tolist())
    individuals = [i for i in first[INDIVIDUAL].values.tolist() if i in known]
    if len(individuals) < 2:
        raise SpecificationError(f"the fits have {len(individuals)} individuals in common; a comparison "
                                 "over individuals needs at least two")
    x = first["estimate"].sel({INDIVIDUAL: individuals})
    y = second["estimate"].sel({INDIVIDUAL: individuals}).transpose(*x.dims)
    for name, v in ((a, x), (b, y)):
        if not bool(np.isfinite(v).all()):
            raise SpecificationError(f"{name}: an individual estimate is not finite; check its convergence")
    difference = y - x
    out = xr.Dataset({f"{a}_estimate": x, f"{b}_estimate": y, "difference": difference})
    for name, ds in ((a, first), (b, second)):
        if "sd" in ds:
            out[f"{name}_sd"] = ds["sd"].sel({INDIVIDUAL: individuals}).transpose(*x.dims)

    def varies(v):
        return v.std(INDIVIDUAL) > SAME_FOR_ALL * np.maximum(abs(v).max(INDIVIDUAL), 1.0)

    comparable = varies(x) & varies(y)
    out["comparable"] = comparable
    out["correlation"] = xr.corr(x, y, dim=INDIVIDUAL).where(comparable, 0.0)
    out["rank_correlation"] = xr.corr(_ranks(x), _ranks(y), dim=INDIVIDUAL).where(comparable, 0.0)
    out["rmse"] = np.sqrt((difference**2).mean(INDIVIDUAL))
    if f"{a}_sd" in out and bool((out[f"{a}_sd"] > 0).all()):
        out["rmse_sd"] = np.sqrt(((difference / out[f"{a}_sd"]) ** 2).mean(INDIVIDUAL))
    out.attrs = {"n_individuals": len(individuals), "labels": [a, b]}
    return out


def _ranks(v: xr.DataArray) -> xr.DataArray:
    """Ranks over individuals (ties averaged)."""
    return xr.apply_ufunc(rankdata, v, input_core_dims=[[INDIVIDUAL]], output_core_dims=[[INDIVIDUAL]],
                          kwargs={"axis": -1})


def compare_individual_elasticities(fit, other, attribute: str, data: ChoiceData | None = None, *,
                                    labels: Sequence[str] | None = None, **kwargs) -> xr.Dataset:
    """Each individual's elasticities to ``attribute`` (:func:`~pymc_maxent.diagnostics.elasticities`
    with ``kind="individual"``) from two fits, by :func:`compare_individual_statistics`.

    Parameters
    ----------
    fit, other : Fit
        Typically a :class:`~pymc_maxent.PosteriorFit` of a mixed tier and an
        :class:`~pymc_maxent.IndividualMaxEntResult` of the same data.
    attribute : str
    data : ChoiceData, optional
        Whose individuals and situations (default each fit's data in its model).
    labels : pair of str, optional
        Variable prefixes; default the fits' ``estimator``.
    **kwargs
        To both fits' evaluators (``draws``, ``random_seed``).

    Returns
    -------
    Dataset (individual, alternative, changed_alternative)

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import compare_individual_elasticities
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=3)
    >>> a = pmx.fit_maxent(data, tier="MXL-1")
    >>> b = pmx.fit_maxent(data, tier="MXL-1", individual_support=2.0)
    >>> out = compare_individual_elasticities(a, b, "x0", labels=("narrow", "wide"))
    >>> dict(out["narrow_estimate"].sizes), bool((out["correlation"] > 0.8).all())
    ({'individual': 30, 'alternative': 3, 'changed_alternative': 3}, True)
    """
    a, b = pair_labels(fit, other, labels)
    first, second = (elasticities(f, attribute, data, kind="individual", **kwargs) for f in (fit, other))
    out = compare_individual_statistics(first, second, labels=(a, b))
    out.attrs |= {"statistic": "elasticity", "attribute": attribute}
    return out


def compare_individual_wtp(fit, other, price: str, attributes=None, data: ChoiceData | None = None, *,
                           labels: Sequence[str] | None = None, **kwargs) -> xr.Dataset:
    """Each individual's willingness to pay (:func:`~pymc_maxent.diagnostics.willingness_to_pay`,
    ``by="individual"``) from two fits, by :func:`compare_individual_statistics`.

    Parameters
    ----------
    fit, other : Fit
    price : str
    attributes : list of str, optional
        Default every other attribute.
    data : ChoiceData, optional
    labels : pair of str, optional
    **kwargs
        To both fits' evaluators.

    Returns
    -------
    Dataset (individual, alternative, attribute)

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import compare_individual_wtp
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=3)
    >>> a = pmx.fit_maxent(data, tier="MXL-1")
    >>> out = compare_individual_wtp(a, pmx.fit_maxent(data, tier="MXL-1", individual_support=2.0), "x1")
    >>> sorted(out.data_vars)[:3], out.attrs["statistic"]
    (['comparable', 'correlation', 'difference'], 'willingness to pay')
    """
    a, b = pair_labels(fit, other, labels)
    first, second = (willingness_to_pay(f, price, attributes, data, by="individual", **kwargs)
                     for f in (fit, other))
    out = compare_individual_statistics(first, second, labels=(a, b))
    out.attrs |= {"statistic": "willingness to pay", "price": price}
    return out


def compare_individuals(fit, other, *, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Individual coefficients of two fits, component by component: how well ``other``'s
    ``β_i`` (a MaxEnt mixed logit, say) line up with ``fit``'s (the posterior means of a mixed
    logit's ``β_i``).

    Both fits give their ``individual_estimates()`` (``estimate`` and ``sd``, individual ×
    random_coefficient: :meth:`~pymc_maxent.PosteriorFit.individual_estimates`,
    :meth:`~pymc_maxent.MaxEntResult.individual_estimates`); individuals and components
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
    first, second = fit.individual_estimates(), other.individual_estimates()
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
