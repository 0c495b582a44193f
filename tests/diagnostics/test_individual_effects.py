"""Elasticities and willingness to pay per individual, and their comparison across two fits:
against each individual's closed-form MNL elasticities and coefficient ratios, on the electricity
panel's scales (coefficients near ±10, price coefficients near −1)."""

import numpy as np
import pytest
import xarray as xr

from pymc_maxent.diagnostics import (
    compare_individual_statistics,
    compare_individual_wtp,
    elasticities,
    willingness_to_pay,
)
from pymc_maxent.exceptions import ChoiceDataError, SpecificationError


@pytest.fixture(scope="module")
def electricity(electricity_maxent):
    return electricity_maxent[:3]


def test_individual_elasticities_are_each_individuals_own(electricity):
    data, _, fit = electricity
    E = elasticities(fit, "pf", kind="individual")
    assert E["estimate"].dims == ("individual", "alternative", "changed_alternative")
    assert E["individual"].values.tolist() == data.individuals.tolist()
    beta = fit.beta_individual[:, fit.random_labels.index("pf")]
    x, p = data.X[:, :, data.attributes.tolist().index("pf")], fit.p
    J = data.n_alternatives
    for i in (0, 7, 39):
        rows = data.individual == i
        # MNL at β_i: ∂p_j/∂x_m = β_i p_j (δ_jm − p_m)
        dp = beta[i] * p[rows][:, :, None] * (np.eye(J)[None] - p[rows][:, None, :])
        expected = (dp * x[rows][:, None, :]).sum(axis=0) / p[rows].sum(axis=0)[:, None]
        np.testing.assert_allclose(E["estimate"].isel(individual=i).values, expected, rtol=1e-8, atol=1e-12)
    assert np.isfinite(E["sd"]).all() and (E["sd"] > 0).any()
    # the aggregate elasticity is the demand-weighted mean of the individuals'
    aggregate = elasticities(fit, "pf")["estimate"]
    demand = np.stack([p[data.individual == i].sum(axis=0) for i in range(data.n_individuals)])
    weighted = (E["estimate"] * xr.DataArray(demand, dims=("individual", "alternative"))).sum("individual")
    np.testing.assert_allclose(weighted / demand.sum(axis=0)[:, None], aggregate, rtol=1e-8)
    with pytest.raises(ChoiceDataError, match="kind"):
        elasticities(fit, "pf", kind="person")


def test_individual_wtp_is_the_ratio_of_each_individuals_coefficients(electricity):
    data, _, fit = electricity
    wtp = willingness_to_pay(fit, "pf", ["tod", "cl"])
    labels = fit.random_labels
    b = fit.beta_individual
    for attribute in ["tod", "cl"]:
        expected = -b[:, labels.index(attribute)] / b[:, labels.index("pf")]
        got = wtp["estimate"].sel(attribute=attribute).isel(alternative=0).values
        np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_comparison_keeps_dims_and_matches_by_individual(electricity_maxent):
    data, spec, fit, wide = electricity_maxent
    out = compare_individual_wtp(fit, wide, "pf", ["tod"], labels=("narrow", "wide"))
    assert out["narrow_estimate"].dims == ("individual", "alternative", "attribute")
    assert out["correlation"].dims == ("alternative", "attribute") and out.attrs["n_individuals"] == 40
    x = out["narrow_estimate"].isel(alternative=0, attribute=0).values
    y = out["wide_estimate"].isel(alternative=0, attribute=0).values
    np.testing.assert_allclose(out["correlation"].isel(alternative=0, attribute=0), np.corrcoef(x, y)[0, 1])
    np.testing.assert_allclose(out["difference"].isel(alternative=0, attribute=0), y - x)
    assert bool(out["comparable"].all()) and np.isfinite(out["rmse_sd"]).all()
    # the wider support pools toward the population: its WTP vary less over individuals
    assert y.std() < x.std()


def test_comparison_of_statistics_refuses_and_flags():
    a = xr.Dataset({"estimate": (("individual", "alternative"), [[1.0, 5.0], [2.0, 5.0], [4.0, 5.0]]),
                    "sd": (("individual", "alternative"), np.ones((3, 2)))},
                   coords={"individual": ["u", "v", "w"], "alternative": ["a", "b"]})
    b = a.assign(estimate=a["estimate"] * 2).isel(individual=[2, 0, 1])  # another order
    out = compare_individual_statistics(a, b, labels=("one", "two"))
    assert out["individual"].values.tolist() == ["u", "v", "w"]  # the first fit's order
    np.testing.assert_allclose(out["difference"].sel(alternative="a"), [1.0, 2.0, 4.0])
    assert out["comparable"].values.tolist() == [True, False]  # b is the same for everyone
    assert out["correlation"].values.tolist() == [pytest.approx(1.0), 0.0]
    with pytest.raises(SpecificationError, match="individual"):
        compare_individual_statistics(a.isel(individual=0), b)
    with pytest.raises(SpecificationError, match="1 individuals in common"):
        compare_individual_statistics(a, b.isel(individual=[0]))
    with pytest.raises(SpecificationError, match="not finite"):
        compare_individual_statistics(a, b.assign(estimate=b["estimate"] * np.inf))
