"""Figures of simulation-based calibration: rank histograms and ECDF differences with
simultaneous bands, one panel per parameter element."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from arviz_stats.ecdf_utils import ecdf_pit
from scipy import stats

from pymc_maxent.calibration.ranks import SIM, default_bins, element_labels
from pymc_maxent.exceptions import SpecificationError


def _panels(tree: xr.DataTree, var_names):
    if "pit" not in tree.children:
        raise SpecificationError("the tree has no 'pit' group: pass the result of "
                                 "simulation_based_calibration")
    pit = tree["pit"].to_dataset()
    names = list(pit.data_vars) if var_names is None else list(var_names)
    unknown = [n for n in names if n not in pit]
    if unknown:
        raise SpecificationError(f"no ranks of {unknown}; the tree has {list(pit.data_vars)}")
    panels = [(f"{name}{label}", pit[name].sel(index).values)
              for name in names for label, index in element_labels(pit[name].isel({SIM: 0}, drop=True))]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False,
                             sharex=True, layout="constrained")
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    return panels, axes.ravel(), fig


def _label(axes, panels) -> None:
    for ax, (title, _) in zip(axes, panels, strict=False):
        ax.set_title(title, fontsize=9)
        ax.set_xlim(0, 1)
    for ax in axes[len(panels) - min(4, len(panels)):len(panels)]:
        ax.set_xlabel("normalised rank")


def plot_rank_histogram(tree: xr.DataTree, *, var_names=None, bins: int | None = None, prob: float = 0.99):
    """Histograms of the normalised ranks (PIT) of each parameter element, with the band that
    each bin's count stays within with probability ``prob`` when the ranks are uniform
    (binomial; Talts et al. 2018).

    A ∪ shape: posteriors too narrow (over-confident); ∩: too wide; a slope: biased.

    Parameters
    ----------
    tree : DataTree
        From :func:`~pymc_maxent.calibration.simulation_based_calibration`.
    var_names : sequence of str, optional
        Parameters to draw (default all).
    bins : int, optional
        Default about 5 simulations per bin, at most 20.
    prob : float

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> from pymc_maxent.plots import plot_rank_histogram
    >>> pit = xr.Dataset({"beta": (("sim", "coefficient"), np.random.default_rng(0).uniform(size=(60, 2)))},
    ...                  coords={"coefficient": ["price", "time"]})
    >>> fig = plot_rank_histogram(xr.DataTree.from_dict({"pit": pit}))
    >>> [ax.get_title() for ax in fig.axes]
    ['beta[price]', 'beta[time]']
    """
    panels, axes, fig = _panels(tree, var_names)
    n = len(panels[0][1])
    bins = default_bins(n) if bins is None else int(bins)
    low, high = stats.binom.ppf([(1 - prob) / 2, (1 + prob) / 2], n, 1 / bins)
    for ax, (_, pit) in zip(axes, panels, strict=False):
        ax.axhspan(low, high, color="0.85", zorder=0)
        ax.axhline(n / bins, color="0.5", lw=0.8)
        ax.hist(pit, bins=bins, range=(0, 1), color="C0", edgecolor="white")
    _label(axes, panels)
    fig.suptitle(f"Rank histograms, {n} simulations (band: {prob:.0%} per bin under uniformity)", fontsize=10)
    return fig


def plot_ecdf_difference(tree: xr.DataTree, *, var_names=None, prob: float = 0.95, random_seed: int = 0):
    """ECDF of each parameter element's normalised ranks minus the uniform CDF, with the
    simultaneous band that the whole curve of a uniform sample stays within with probability
    ``prob`` (Säilynoja et al. 2022; arviz-stats' ``ecdf_pit``).

    A curve that leaves the band rejects uniformity at level ``1 − prob``. Above zero at the
    left and below at the right: ranks piled at both ends, posteriors too narrow; the reverse:
    too wide; wholly below zero: truths above the posterior draws (posteriors biased down);
    wholly above: biased up.

    Parameters
    ----------
    tree : DataTree
        From :func:`~pymc_maxent.calibration.simulation_based_calibration`.
    var_names : sequence of str, optional
    prob : float
    random_seed : int
        Of the simulated band.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> from pymc_maxent.plots import plot_ecdf_difference
    >>> pit = xr.Dataset({"mu": (("sim",), np.random.default_rng(0).uniform(size=60))})
    >>> [ax.get_title() for ax in plot_ecdf_difference(xr.DataTree.from_dict({"pit": pit})).axes]
    ['mu']
    """
    panels, axes, fig = _panels(tree, var_names)
    n = len(panels[0][1])
    # the band depends on n only: from any sample of size n
    x, _, lower, upper = ecdf_pit(np.linspace(0, 1, n), prob, 1000, rng=np.random.default_rng(random_seed))
    for ax, (_, pit) in zip(axes, panels, strict=False):
        ax.fill_between(x, lower - x, upper - x, step="post", color="0.85", zorder=0)
        ax.axhline(0.0, color="0.5", lw=0.8)
        grid = np.linspace(0, 1, 201)
        ecdf = np.searchsorted(np.sort(pit), grid, side="right") / n
        ax.step(grid, ecdf - grid, where="post", color="C0")
    _label(axes, panels)
    fig.suptitle(f"ECDF − uniform, {n} simulations ({prob:.0%} simultaneous band)", fontsize=10)
    return fig
