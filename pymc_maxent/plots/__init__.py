"""Figures of the diagnostics. Each function returns its matplotlib figure and never shows it."""

from pymc_maxent.plots.calibration import plot_ecdf_difference, plot_rank_histogram
from pymc_maxent.plots.comparison import plot_posterior_vs_maxent
from pymc_maxent.plots.effects import plot_elasticity_heatmap
from pymc_maxent.plots.individual_comparison import (
    plot_individual_coefficients,
    plot_individual_comparison,
    plot_individual_information,
)
from pymc_maxent.plots.information import plot_information_gain
from pymc_maxent.plots.pricing import plot_revenue_curve

__all__ = [
    "plot_ecdf_difference",
    "plot_elasticity_heatmap",
    "plot_individual_coefficients",
    "plot_individual_comparison",
    "plot_individual_information",
    "plot_information_gain",
    "plot_posterior_vs_maxent",
    "plot_rank_histogram",
    "plot_revenue_curve",
]
