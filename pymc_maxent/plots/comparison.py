"""Forest plot of a posterior beside a MaxEnt fit."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from pymc_maxent.diagnostics.comparison import compare_estimates
from pymc_maxent.maxent.result import MaxEntResult


def plot_posterior_vs_maxent(
    idata,
    maxent: MaxEntResult,
    *,
    var_names: Sequence[str] = ("alpha", "beta"),
    ci_prob: float = 0.94,
    robust: bool = False,
    labels: Sequence[str] = ("posterior", "MaxEnt"),
):
    """Each parameter's posterior mean and HDI beside the MaxEnt estimate ± z·SE.

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
    >>> maxent = pmx.fit_maxent(pmx.load_travel_mode())
    >>> fig = plot_posterior_vs_maxent(maxent.to_datatree(), maxent)
    >>> len(fig.axes)
    2
    """
    table = compare_estimates(idata, maxent, var_names=var_names, ci_prob=ci_prob, robust=robust)
    groups = table.groupby(table.index.str.split("[").str[0], sort=False)
    fig, axes = plt.subplots(len(groups), 1, figsize=(7, 1 + 0.6 * len(table)), squeeze=False,
                             height_ratios=[len(g) for _, g in groups], layout="constrained")
    z = norm.ppf(0.5 + ci_prob / 2)
    for ax, (name, rows) in zip(axes[:, 0], groups, strict=True):
        y = np.arange(len(rows))[::-1]
        hdi = [rows["posterior_mean"] - rows["hdi_lower"], rows["hdi_upper"] - rows["posterior_mean"]]
        ax.errorbar(rows["posterior_mean"], y + 0.15, xerr=hdi, fmt="o", color="C0",
                    label=f"{labels[0]} ({ci_prob:.0%} HDI)")
        ax.errorbar(rows["maxent_estimate"], y - 0.15, xerr=z * rows["maxent_se"], fmt="s", color="C1",
                    label=f"{labels[1]} (± {z:.2f} SE)")
        ax.set_yticks(y, [label[len(name) + 1:-1] for label in rows.index])
        ax.set_ylabel(name)
        ax.axvline(0.0, color="0.8", lw=0.8, zorder=0)
    axes[0, 0].legend(loc="best", fontsize="small")
    return fig
