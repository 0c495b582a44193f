"""Property-based sweep of the public API's count and size arguments (draws, chunks, folds,
workers, nodes, n_sims, ...): every call either returns a finite result or raises a
:class:`~pymc_maxent.exceptions.PymcMaxentError` naming the argument, never another exception
type, and never a NaN.

Invalid values (0, negatives, booleans, fractions, floats, text, ``None`` where no default is
meant) are tried on every entry point: they must be refused before any numerical work, so even
the expensive ones (sampling, SBC, Dask) are cheap to test. Valid values are tried on the entry
points whose call is cheap on a tiny problem.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pymc_maxent as pmx
from pymc_maxent import diagnostics as dx
from pymc_maxent.bayes.minibatch import fit_minibatch, gauss_hermite_grid, minibatch_model, qmc_normal_points
from pymc_maxent.bayes.point import map_estimate
from pymc_maxent.calibration import (
    calibration_design,
    chi2_uniformity,
    maxent_coverage,
    simulation_based_calibration,
)
from pymc_maxent.evaluation import ChoiceEvaluator
from pymc_maxent.exceptions import PymcMaxentError
from pymc_maxent.maxent import MaxEntEstimator
from pymc_maxent.maxent.dask_backend import fit_maxent_dask, fit_mixed_maxent_dask
from pymc_maxent.simulate import simulate_electricity_panel, simulate_priced_panel
from pymc_maxent.workflow import PanelSettings, Settings

SWEEP = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ---------------------------------------------------------------------- tiny problems, built once
@functools.cache
def travel():
    return pmx.load_travel_mode().subset(slice(0, 60))


@functools.cache
def panel():
    return pmx.simulate_choices("MXL-1", n_individuals=12, n_situations=5, seed=3)[0]


@functools.cache
def maxent_fit():
    return pmx.fit_maxent(travel())


@functools.cache
def mixed_fit():
    return pmx.fit_maxent(panel(), tier="MXL-1")


@functools.cache
def map_fit():
    return pmx.ChoiceModel(travel(), "MNL-2").fit(method="map")


@functools.cache
def model():
    return pmx.build_model(travel(), "MNL-2")


def shifted(value, k: int):
    """``value + k`` for a valid count (a larger problem where the smallest would be degenerate),
    any other value as it is."""
    valid = isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0
    return value + k if valid else value


def dask_arrays(data):
    return da.from_array(data.X, chunks=(30, -1, -1)), data.available, data.chosen


# ---------------------------------------------------------------------- the entry points
@dataclass(frozen=True)
class Entry:
    """A public call with one count argument: ``call(value)``; the smallest valid value;
    whether ``None`` is valid (the argument's default); whether a valid call is cheap."""

    name: str
    call: object
    minimum: int = 1
    optional: bool = False
    cheap: bool = True

    def __repr__(self):
        return self.name


ENTRIES = [
    # MaxEnt
    Entry("fit_maxent(chunk_size)", lambda v: pmx.fit_maxent(travel(), chunk_size=v)),
    Entry("fit_maxent(maxiter)", lambda v: pmx.fit_maxent(travel(), maxiter=v)),
    Entry("fit_maxent(tier, individual_chunk)",
          lambda v: pmx.fit_maxent(panel(), tier="MXL-1", individual_chunk=v)),
    Entry("MaxEntEstimator(chunk_size)", lambda v: MaxEntEstimator(travel(), chunk_size=v).fit()),
    Entry("MaxEntResult.parameter_draws", lambda v: maxent_fit().parameter_draws(draws=v), optional=True),
    Entry("MaxEntResult.predict", lambda v: maxent_fit().predict(draws=v, random_seed=1), optional=True),
    Entry("MaxEntResult.parameter_samples", lambda v: maxent_fit().parameter_samples(draws=v).values[0],
          optional=True),
    Entry("MaxEntResult.to_datatree(draws)", lambda v: maxent_fit().to_datatree(draws=v)),
    Entry("MaxEntResult.to_datatree(chains)", lambda v: maxent_fit().to_datatree(draws=5, chains=v)),
    Entry("MaxEntResult(MXL-1).parameter_draws", lambda v: mixed_fit().parameter_draws(draws=v),
          optional=True),
    Entry("MaxEntResult(MXL-1).predict", lambda v: mixed_fit().predict(draws=v), optional=True),
    Entry("MaxEntResult(MXL-1).to_datatree", lambda v: mixed_fit().to_datatree(draws=v)),
    Entry("fit_maxent_dask(chunk_size)", lambda v: fit_maxent_dask(
        *dask_arrays(travel()), alternatives=travel().alternatives, attributes=travel().attributes,
        chunk_size=v), cheap=False),
    Entry("fit_maxent_dask(maxiter)", lambda v: fit_maxent_dask(
        *dask_arrays(travel()), alternatives=travel().alternatives, attributes=travel().attributes,
        maxiter=v), cheap=False),
    Entry("fit_mixed_maxent_dask(individual_chunk)", lambda v: fit_mixed_maxent_dask(
        *dask_arrays(panel()), panel().individual, tier="MXL-1", alternatives=panel().alternatives,
        attributes=panel().attributes, individual_chunk=v), cheap=False),
    # Bayesian
    Entry("sample(draws)", lambda v: pmx.sample(model(), draws=v, tune=5, chains=1), cheap=False),
    Entry("sample(tune)", lambda v: pmx.sample(model(), draws=5, tune=v, chains=1), minimum=0, cheap=False),
    Entry("sample(chains)", lambda v: pmx.sample(model(), draws=5, tune=5, chains=v), cheap=False),
    Entry("map_estimate(maxiter)", lambda v: map_estimate(model(), maxiter=v).x, cheap=False),
    Entry("PosteriorFit.parameter_draws", lambda v: map_fit().parameter_draws(draws=v), optional=True),
    Entry("PosteriorFit.prior_probabilities", lambda v: map_fit().prior_probabilities(draws=v), cheap=False),
    Entry("ChoiceModel.sample_prior_predictive",
          lambda v: pmx.ChoiceModel(travel(), "MNL-1").sample_prior_predictive(draws=v), cheap=False),
    Entry("fit_minibatch(n)", lambda v: fit_minibatch(travel(), "MNL-2", n=v), optional=True, cheap=False),
    Entry("fit_minibatch(draws)", lambda v: fit_minibatch(travel(), "MNL-2", n=200, draws=v), cheap=False),
    Entry("minibatch_model(batch_size)", lambda v: minibatch_model(travel(), "MNL-2", batch_size=v)[1],
          optional=True),
    Entry("minibatch_model(nodes)", lambda v: minibatch_model(panel(), "MXL-1", nodes=v)[1], minimum=2,
          optional=True),
    Entry("gauss_hermite_grid(nodes)", lambda v: gauss_hermite_grid(2, v)),
    Entry("qmc_normal_points(n_points)", lambda v: qmc_normal_points(2, v), minimum=2),
    # data and calibration
    Entry("simulate_choices(n_individuals)",
          lambda v: pmx.simulate_choices("MNL-2", n_individuals=shifted(v, 30))[0]),
    Entry("simulate_choices(n_situations)", lambda v: pmx.simulate_choices("MNL-2", n_situations=v)[0]),
    Entry("simulate_choices(n_alternatives)", lambda v: pmx.simulate_choices("MNL-2", n_alternatives=v)[0],
          minimum=2),
    Entry("simulate_choices(n_attributes)", lambda v: pmx.simulate_choices("MNL-2", n_attributes=v)[0]),
    Entry("simulate_electricity_panel(n_situations)",
          lambda v: simulate_electricity_panel(20, n_situations=shifted(v, 3))[0]),
    Entry("simulate_priced_panel(n_individuals)",
          lambda v: simulate_priced_panel(n_individuals=shifted(v, 5))[0]),
    Entry("calibration_design(n_alternatives)", lambda v: calibration_design(10, 2, v), minimum=2),
    Entry("simulation_based_calibration(n_sims)", lambda v: simulation_based_calibration(
        "MNL-2", calibration_design(20, 1), n_sims=v), minimum=10, cheap=False),
    Entry("simulation_based_calibration(n_workers)", lambda v: simulation_based_calibration(
        "MNL-2", calibration_design(20, 1), n_sims=10, n_workers=v), cheap=False),
    Entry("maxent_coverage(n_sims)", lambda v: maxent_coverage(calibration_design(20, 1), n_sims=v),
          minimum=10, cheap=False),
    Entry("chi2_uniformity(bins)", lambda v: chi2_uniformity(np.linspace(0.01, 0.99, 50), bins=v), minimum=2,
          optional=True),
    # diagnostics
    Entry("individual_folds(k)", lambda v: dx.individual_folds(travel(), k=v), minimum=2),
    Entry("model_selection(folds)", lambda v: dx.model_selection({"m": maxent_fit()}, travel(), folds=v),
          minimum=2, cheap=False),
    Entry("model_selection(max_reloo)", lambda v: dx.model_selection({"m": maxent_fit()}, travel(),
                                                                     max_reloo=v, cv="loo"),
          minimum=0, cheap=False),
    Entry("individual_information_gain(population_draws)",
          lambda v: dx.individual_information_gain(mixed_fit(), population_draws=v)),
    Entry("choice_information_gain(prior_draws)",
          lambda v: dx.choice_information_gain(maxent_fit(), reference="prior", prior_draws=v)),
    Entry("ChoiceEvaluator(draws)", lambda v: ChoiceEvaluator(maxent_fit(), draws=v).evaluate(),
          optional=True),
    Entry("ChoiceEvaluator(max_bytes)",
          lambda v: ChoiceEvaluator(maxent_fit(), max_bytes=shifted(v, 10**6)).evaluate()),
    # workflow settings
    Entry("Settings(draws)", lambda v: Settings(draws=v), minimum=10),
    Entry("Settings(folds)", lambda v: Settings(folds=v), minimum=2),
    Entry("Settings(cv_draws)", lambda v: Settings(cv_draws=v), minimum=10, optional=True),
    Entry("PanelSettings(n_individuals)", lambda v: PanelSettings(n_individuals=v), minimum=4),
]
CHEAP = [e for e in ENTRIES if e.cheap]


def invalid_values(entry: Entry):
    """Values every entry point must refuse: below its minimum, flags, fractions, floats, text."""
    below = st.integers(min_value=-(2**70), max_value=entry.minimum - 1)
    others = st.sampled_from([True, False, 2.5, float(entry.minimum + 1), float("nan"), "3", [3]])
    values = st.one_of(below, others)
    return values if entry.optional else st.one_of(values, st.none())


def assert_finite(result) -> None:
    """No NaN in what came back (arrays, frames, xarray objects, dicts of them, fits)."""
    if isinstance(result, xr.DataTree):
        for node in result.subtree:
            assert_finite(node.to_dataset())
    elif isinstance(result, xr.Dataset | xr.DataArray):
        for v in (result.data_vars.values() if isinstance(result, xr.Dataset) else [result]):
            if np.issubdtype(v.dtype, np.number):
                assert not np.isnan(v.values).any(), v.name
    elif isinstance(result, pd.DataFrame | pd.Series):
        numbers = result.select_dtypes("number") if isinstance(result, pd.DataFrame) else result
        assert not numbers.isna().to_numpy().any()
    elif isinstance(result, dict):
        for value in result.values():
            assert_finite(value)
    elif isinstance(result, tuple | list):
        for value in result:
            assert_finite(value)
    elif isinstance(result, np.ndarray | float | int):
        assert not np.isnan(np.asarray(result, dtype=float)).any()
    elif hasattr(result, "estimates"):  # a fit
        assert np.isfinite(result.estimates()["estimate"]).all()


def quietly(call, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(value)


@SWEEP
@given(st.data())
def test_invalid_counts_raise_a_package_error_naming_the_argument(data):
    entry = data.draw(st.sampled_from(ENTRIES))
    value = data.draw(invalid_values(entry))
    with pytest.raises(PymcMaxentError) as err:
        quietly(entry.call, value)
    assert "must be" in str(err.value) or "needs" in str(err.value), (entry, value, str(err.value))


@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_valid_counts_give_finite_results(data):
    entry = data.draw(st.sampled_from(CHEAP))
    value = data.draw(st.integers(entry.minimum, entry.minimum + 4))
    try:
        result = quietly(entry.call, value)
    except PymcMaxentError:  # a valid count the problem cannot use (k > individuals): named, not raw
        return
    assert_finite(result)


@pytest.mark.parametrize("entry", ENTRIES, ids=repr)
def test_zero_is_refused_by_every_entry_point(entry):
    """The edge the sweep may miss: one below the minimum, for each entry point."""
    with pytest.raises(PymcMaxentError, match="must be an integer >= "):
        quietly(entry.call, entry.minimum - 1)
