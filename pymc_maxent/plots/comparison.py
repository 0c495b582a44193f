"""Forest plot of a posterior beside a MaxEnt fit."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from pymc_maxent.diagnostics.comparison import compare_estimates


def plot_posterior_vs_maxent(
    fit,
    other,
    *,
    var_names: Sequence[str] = ("alpha", "beta"),
    ci_prob: float = 0.94,
    labels: Sequence[str] = ("posterior", "MaxEnt"),
):
    """Each parameter's estimate and interval in ``fit`` (a posterior's mean and HDI) beside
    ``other``'s (a MaxEnt estimate ± z·SE): any two fits.

    One panel per variable, each on its own scale (constants and price coefficients differ by
    orders of magnitude). The numbers are those of :func:`~pymc_maxent.diagnostics.compare_estimates`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.plots import plot_posterior_vs_maxent
    >>> data = pmx.load_travel_mode()
    >>> fig = plot_posterior_vs_maxent(pmx.fit_maxent(data, error_support=None), pmx.fit_maxent(data),
    ...                                labels=("MLE", "GME"))
    >>> len(fig.axes)
    2
    """
    table = compare_estimates(fit, other, var_names=var_names, ci_prob=ci_prob, labels=("a", "b"))
    groups = table.groupby(table.index.str.split("[").str[0], sort=False)
    fig, axes = plt.subplots(len(groups), 1, figsize=(7, 1 + 0.6 * len(table)), squeeze=False,
                             height_ratios=[len(g) for _, g in groups], layout="constrained")
    z = norm.ppf(0.5 + ci_prob / 2)
    for ax, (name, rows) in zip(axes[:, 0], groups, strict=True):
        y = np.arange(len(rows))[::-1]
        interval = [rows["a_estimate"] - rows["a_lower"], rows["a_upper"] - rows["a_estimate"]]
        ax.errorbar(rows["a_estimate"], y + 0.15, xerr=interval, fmt="o", color="C0",
                    label=f"{labels[0]} ({ci_prob:.0%} interval)")
        ax.errorbar(rows["b_estimate"], y - 0.15, xerr=z * rows["b_sd"], fmt="s", color="C1",
                    label=f"{labels[1]} (± {z:.2f} sd)")
        ax.set_yticks(y, [label[len(name) + 1:-1] for label in rows.index])
        ax.set_ylabel(name)
        ax.axvline(0.0, color="0.8", lw=0.8, zorder=0)
    axes[0, 0].legend(loc="best", fontsize="small")
    return fig
