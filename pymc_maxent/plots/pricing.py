"""Revenue over a price grid, with its band and the optimum."""

from __future__ import annotations

import numpy as np


def plot_revenue_curve(curve, *, optimum=None, ax=None, color: str = "C0", label: str | None = None):
    """Revenue curve with its credible band (MaxEnt: delta-method band) and, when given, the
    revenue-maximising price.

    Parameters
    ----------
    curve : Dataset
        From :func:`~pymc_maxent.diagnostics.counterfactuals.revenue_curve`.
    optimum : PricingResult, optional
        From :func:`~pymc_maxent.diagnostics.counterfactuals.optimal_prices` for the same
        alternative: marked on the curve.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics.counterfactuals import revenue_curve
    >>> curve = revenue_curve(pmx.fit_maxent(pmx.load_travel_mode()), "gc", "air", [0.8, 1.0, 1.2])
    >>> len(plot_revenue_curve(curve).axes[0].lines)
    1
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    grid = curve["price_grid"].values
    ci = curve.attrs.get("ci_prob", np.nan)
    ax.fill_between(grid, curve["lower"].values, curve["upper"].values, color=color, alpha=0.25,
                    label=f"{ci:.0%} band")
    ax.plot(grid, curve["estimate"].values, color=color, label=label or "expected revenue")
    alternative = curve.attrs.get("alternative", "")
    if optimum is not None:
        names = [str(a) for a in optimum.prices.index]
        x = float(optimum.prices.iloc[names.index(alternative)] if alternative in names else optimum.x[0])
        ax.axvline(x, color="k", lw=0.8, ls="--")
        ax.plot([x], [optimum.revenue], "o", color="k", label=f"optimum {x:.3g}")
    mode = curve.attrs.get("mode", "scale")
    price = curve.attrs.get("price", "price")
    ax.set_xlabel(f"{price} of {alternative}: " + ("multiplier of observed" if mode == "scale" else "level"))
    ax.set_ylabel("revenue")
    ax.legend(frameon=False)
    return ax.figure
