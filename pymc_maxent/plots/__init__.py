"""Figures of the diagnostics. Each function returns its matplotlib figure and never shows it."""

from pymc_maxent.plots.comparison import plot_posterior_vs_maxent

__all__ = ["plot_posterior_vs_maxent"]
