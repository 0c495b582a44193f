"""Calibration of the package's intervals: simulation-based calibration of the Bayesian tiers
(:func:`simulation_based_calibration`, :func:`calibration_summary`) and the coverage of MaxEnt's
standard errors (:func:`maxent_coverage`). The figures are in :mod:`pymc_maxent.plots`
(:func:`~pymc_maxent.plots.plot_rank_histogram`, :func:`~pymc_maxent.plots.plot_ecdf_difference`).
"""

from pymc_maxent.calibration.design import calibration_design
from pymc_maxent.calibration.maxent import maxent_coverage, maxent_coverage_summary
from pymc_maxent.calibration.ranks import (
    calibration_summary,
    chi2_uniformity,
    pot_c_uniformity,
    rank_statistics,
    thinning_factor,
    uniformity_tests,
)
from pymc_maxent.calibration.sbc import simulation_based_calibration

__all__ = [
    "calibration_design",
    "calibration_summary",
    "chi2_uniformity",
    "maxent_coverage",
    "maxent_coverage_summary",
    "pot_c_uniformity",
    "rank_statistics",
    "simulation_based_calibration",
    "thinning_factor",
    "uniformity_tests",
]
