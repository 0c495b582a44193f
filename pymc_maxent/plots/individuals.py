"""Individual coefficients of two fits against each other (posterior means against MaxEnt)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from pymc_maxent.diagnostics.comparison import compare_individuals, matched_individual_estimates, pair_labels


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
    a, b = pair_labels(fit, other, labels)
    table = compare_individuals(fit, other, labels=(a, b))
    first, second = matched_individual_estimates(fit, other)
    components = table.index.tolist()
    ncols = max(1, min(int(ncols), len(components)))
    nrows = -(-len(components) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.4 * nrows), squeeze=False,
                             layout="constrained")
    for ax, component in zip(axes.ravel(), components, strict=False):
        x = first["estimate"].sel(random_coefficient=component).values
        y = second["estimate"].sel(random_coefficient=component).values
        ax.scatter(x, y, s=12, alpha=0.7, color="C0")
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=0.8, zorder=0)
        row = table.loc[component]
        ax.set_title(f"{component}: r = {row['correlation']:.3f}, RMSE {row['rmse_sd']:.2f} sd",
                     fontsize="medium")
        ax.set_xlabel(f"{a} β_i")
        ax.set_ylabel(f"{b} β_i")
    for ax in axes.ravel()[len(components):]:
        ax.remove()
    return fig
