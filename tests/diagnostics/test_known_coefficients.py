"""A fit's individual coefficients against a simulation's truth, and the priced panel the demo
and notebook 05 simulate."""

import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.diagnostics import KnownCoefficients, compare_individuals
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.simulate import simulate_priced_panel


def test_priced_panel_is_the_standard_panel_in_market_units():
    """Same choices as simulate_choices with the same seed and truth, and the same utility
    differences: X·beta_i on the market scale equals the standard panel's."""
    data, truth = simulate_priced_panel(25, 6, mu=(-1.2, 0.5), sigma=(0.4, 0.9), seed=8)
    standard, st = pmx.simulate_choices("MXL-1", n_individuals=25, n_situations=6, n_attributes=2, seed=8,
                                        truth={"mu": [-1.2, 0.5], "sigma": [0.4, 0.9]})
    np.testing.assert_array_equal(data.chosen, standard.chosen)
    utility = np.einsum("njk,nk->nj", data.X, truth["theta"][data.individual])
    utility_standard = np.einsum("njk,nk->nj", standard.X, st["theta"][standard.individual])
    difference, difference_standard = utility - utility[:, :1], utility_standard - utility_standard[:, :1]
    np.testing.assert_allclose(difference, difference_standard, atol=1e-9)
    assert 20 < data.attribute("price").mean() < 40 and truth["mu"][0] == pytest.approx(-1.2 / 6.0)


def test_comparison_with_the_truth_is_correlation_and_error_in_the_fit_sds():
    data, truth = simulate_priced_panel(40, 8, seed=2)
    fit = pmx.fit_maxent(data, tier="MXL-1")
    # rows in reverse order: matched by label
    known = KnownCoefficients(truth["theta"][::-1], data.individuals[::-1], ["price", "quality"])
    table = compare_individuals(fit, known)
    estimate, sd = fit.beta_individual, fit.beta_individual_se
    for r, name in enumerate(["price", "quality"]):
        correlation = np.corrcoef(estimate[:, r], truth["theta"][:, r])[0, 1]
        assert table.loc[name, "correlation"] == pytest.approx(correlation)
        rmse = np.sqrt(np.mean(((truth["theta"][:, r] - estimate[:, r]) / sd[:, r]) ** 2))
        assert table.loc[name, "rmse_sd"] == pytest.approx(rmse)
    assert (table["correlation"] > 0.4).all() and table["rmse_sd"].between(0.5, 2.0).all()


def test_known_coefficients_refuse_a_shape_that_does_not_match_the_labels():
    with pytest.raises(SpecificationError, match=r"\(3, 2\)"):
        KnownCoefficients(np.zeros((3, 2)), ["a", "b"], ["x0", "x1"])
