"""Per-individual statistics of two fits against each other (posterior against MaxEnt):
coefficients, elasticities, willingness to pay, information; one scatter per element, each
with the identity line, the correlation and the RMSE over individuals."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from pymc_maxent.arguments import require_count
from pymc_maxent.data.choice_data import INDIVIDUAL
from pymc_maxent.diagnostics.comparison import pair_labels
from pymc_maxent.diagnostics.individual_comparison import (
    compare_individual_statistics,
    matched_individual_estimates,
)
from pymc_maxent.diagnostics.individual_information import individual_information_gain, information_comparison
from pymc_maxent.exceptions import SpecificationError

#: Statistics of :func:`~pymc_maxent.diagnostics.individual_information_gain` in words.
INFORMATION_NAMES = {"kl_nats": "KL_i (nats)", "kl_bits": "KL_i (bits)",
                     "information_index": "information index",
                     "parameter_kl_nats": "KL(θ_i ‖ population) (nats)",
                     "parameter_kl_bits": "KL(θ_i ‖ population) (bits)"}


def _panels(comparison: xr.Dataset, quantity: str | None = None) -> list[dict]:
    """One panel per element of a :func:`~pymc_maxent.diagnostics.compare_individual_statistics`
    result that varies over individuals; a dim along which both fits' values are all the same
    (a generic coefficient's WTP over alternatives) is shown once."""
    a, b = comparison.attrs["labels"]
    x, y = comparison[f"{a}_estimate"], comparison[f"{b}_estimate"]
    for dim in [d for d in x.dims if d != INDIVIDUAL]:
        if x.sizes[dim] > 1 and all(_same_along(v, dim) for v in (x, y)):
            comparison = comparison.isel({dim: 0})
            x, y = comparison[f"{a}_estimate"], comparison[f"{b}_estimate"]
    quantity = quantity or comparison.attrs.get("statistic", "estimate")
    rest = [d for d in x.dims if d != INDIVIDUAL]
    panels = []
    for index in np.ndindex(*(x.sizes[d] for d in rest)):
        at = dict(zip(rest, index, strict=True))
        if not bool(comparison["comparable"].isel(at)):
            continue
        element = comparison.isel(at)
        name = ", ".join(str(x[d].values[i]) if d in x.coords else f"{d} {i}" for d, i in at.items())
        rmse = (f"RMSE {float(element['rmse_sd']):.2f} sd" if "rmse_sd" in element
                else f"RMSE {float(element['rmse']):.3g}")
        title = f"r = {float(element['correlation']):.3f}, {rmse}"
        panels.append({"x": x.isel(at).values, "y": y.isel(at).values,
                       "title": f"{name}: {title}" if name else title,
                       "xlabel": f"{a} {quantity}", "ylabel": f"{b} {quantity}"})
    return panels


def _same_along(v: xr.DataArray, dim: str) -> bool:
    values = v.transpose(dim, ...).values
    return bool(np.allclose(values, values[:1], rtol=1e-10, atol=0.0))


def _scatter_grid(panels: list[dict], *, ncols: int = 3, max_panels: int = 16):
    """A figure of scatters, one per panel (``x``, ``y``, ``title``, labels), each with the
    identity line unless the panel says ``identity=False``."""
    if not panels:
        raise SpecificationError("nothing to plot: no statistic varies over individuals in both fits")
    ncols, max_panels = require_count(ncols, "ncols"), require_count(max_panels, "max_panels")
    if len(panels) > max_panels:
        raise SpecificationError(f"{len(panels)} panels (more than max_panels={max_panels}): select some "
                                 "with .sel() on the comparison, or raise max_panels")
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.4 * nrows), squeeze=False,
                             layout="constrained")
    for ax, panel in zip(axes.ravel(), panels, strict=False):
        x, y = panel["x"], panel["y"]
        ax.scatter(x, y, s=12, alpha=0.7, color="C0")
        if panel.get("identity", True):
            lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
            pad = 0.05 * (hi - lo) if hi > lo else 1.0
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=0.8, zorder=0)
        ax.set_title(panel["title"], fontsize="medium")
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel["ylabel"])
    for ax in axes.ravel()[len(panels):]:
        ax.remove()
    return fig


def plot_individual_comparison(comparison: xr.Dataset, *, quantity: str | None = None, ncols: int = 3,
                               max_panels: int = 16):
    """Two fits' per-individual statistics against each other, one scatter per element that
    varies over individuals, each with the identity line and, in its title, the correlation
    and the RMSE over individuals (in the first fit's SDs where it has them).

    Parameters
    ----------
    comparison : Dataset
        From :func:`~pymc_maxent.diagnostics.compare_individual_statistics`,
        :func:`~pymc_maxent.diagnostics.compare_individual_elasticities` (a panel per pair of
        alternatives), :func:`~pymc_maxent.diagnostics.compare_individual_wtp` (a panel per
        attribute, and per alternative where the WTP differ by alternative) or
        :func:`~pymc_maxent.diagnostics.compare_individual_information`.
    quantity : str, optional
        The axis labels' noun; default the comparison's ``statistic``.
    ncols : int
        Panels per row.
    max_panels : int
        More panels than this raise: select elements with ``comparison.sel(...)`` first.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SpecificationError
        No element that varies over individuals in both fits, or too many panels.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import compare_individual_wtp
    >>> from pymc_maxent.plots import plot_individual_comparison
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=3)
    >>> narrow = pmx.fit_maxent(data, tier="MXL-1")
    >>> wide = pmx.fit_maxent(data, tier="MXL-1", individual_support=2.0)
    >>> fig = plot_individual_comparison(compare_individual_wtp(narrow, wide, "x1"))
    >>> [ax.get_title().split(":")[0] for ax in fig.axes]  # x0's WTP, the same for every alternative
    ['x0']
    """
    return _scatter_grid(_panels(comparison, quantity), ncols=ncols, max_panels=max_panels)


def plot_individual_coefficients(fit, other, *, labels: Sequence[str] | None = None, ncols: int = 3):
    """``other``'s ``β_i`` (a MaxEnt mixed logit, say) against ``fit``'s (the posterior means of
    the Bayesian tier's ``β_i``), one panel per random coefficient, each individual a point.

    Each panel has the identity line and, in its title, the correlation over individuals and the
    RMSE of the difference in ``fit``'s SDs: the numbers of
    :func:`~pymc_maxent.diagnostics.compare_individuals`.

    Parameters
    ----------
    fit, other : Fit
        Two fits with individual coefficients (:class:`~pymc_maxent.PosteriorFit` of a mixed
        tier, :class:`~pymc_maxent.IndividualMaxEntResult`), matched by individual and component.
    labels : pair of str, optional
        Axis labels; default the fits' ``estimator``.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SpecificationError
        A fit without individual coefficients, or nothing in common.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.plots import plot_individual_coefficients
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=3)
    >>> narrow = pmx.fit_maxent(data, tier="MXL-1")
    >>> wide = pmx.fit_maxent(data, tier="MXL-1", individual_support=2.0)
    >>> fig = plot_individual_coefficients(narrow, wide, labels=("narrow", "wide"))
    >>> [ax.get_title().split(":")[0] for ax in fig.axes]
    ['x0', 'x1']
    """
    labels = pair_labels(fit, other, labels)
    comparison = compare_individual_statistics(*matched_individual_estimates(fit, other), labels=labels)
    return _scatter_grid(_panels(comparison, "β_i"), ncols=ncols,
                         max_panels=comparison.sizes["random_coefficient"])


def plot_individual_information(fit, other, data=None, *,
                                statistics: Sequence = ("kl_nats", "information_index"),
                                labels: Sequence[str] | None = None, ncols: int = 3, **kwargs):
    """Each individual's information (:func:`~pymc_maxent.diagnostics.individual_information_gain`)
    from two fits against each other: one panel per statistic, each with the identity line, the
    correlation and the RMSE over individuals (the rank correlation is in
    :func:`~pymc_maxent.diagnostics.compare_individual_information`).

    Parameters
    ----------
    fit, other : Fit
        Fits with individual effects (a mixed-tier posterior, a MaxEnt mixed logit).
    data : ChoiceData, optional
    statistics : sequence
        Each a variable of :func:`~pymc_maxent.diagnostics.individual_information_gain`, or a
        pair (one per fit), e.g. ``("parameter_kl_nats", "kl_nats")``: two quantities, drawn
        without the identity line and titled with the correlation and the rank correlation.
    labels : pair of str, optional
    ncols : int
    **kwargs
        To :func:`~pymc_maxent.diagnostics.individual_information_gain`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.plots import plot_individual_information
    >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=3)
    >>> narrow = pmx.fit_maxent(data, tier="MXL-1")
    >>> wide = pmx.fit_maxent(data, tier="MXL-1", individual_support=2.0)
    >>> fig = plot_individual_information(narrow, wide, labels=("narrow", "wide"))
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['narrow KL_i (nats)', 'narrow information index']
    """
    labels = pair_labels(fit, other, labels)
    first, second = (individual_information_gain(f, data, **kwargs) for f in (fit, other))
    panels = []
    for statistic in statistics:
        names = (statistic, statistic) if isinstance(statistic, str) else tuple(statistic)
        comparison = information_comparison(first, second, statistic, labels)
        found = _panels(comparison, "")
        if not found:
            raise SpecificationError(f"{statistic!r} does not vary over individuals in both fits")
        panel = found[0]
        if names[0] != names[1]:  # two quantities: no identity line, no RMSE, the ranks
            panel |= {"identity": False, "title": f"r = {float(comparison['correlation']):.3f}, "
                                                  f"rank r = {float(comparison['rank_correlation']):.3f}"}
        panel["xlabel"] = f"{labels[0]} {INFORMATION_NAMES.get(names[0], names[0])}"
        panel["ylabel"] = f"{labels[1]} {INFORMATION_NAMES.get(names[1], names[1])}"
        panels.append(panel)
    return _scatter_grid(panels, ncols=ncols, max_panels=len(panels))
