"""Hostile inputs, round two: each class of bad input to the fitting entry points gets one
package error naming the argument, column, constraint or file at fault, before any numerical
work (the size and count arguments are swept in ``test_public_arguments.py``, random frames in
``data/test_random_frames_fit.py``)."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest

import pymc_maxent as pmx
from pymc_maxent import diagnostics as dx
from pymc_maxent.bayes.minibatch import fit_minibatch
from pymc_maxent.bayes.point import map_estimate
from pymc_maxent.exceptions import ChoiceDataError, MaxEntError, SpecificationError
from pymc_maxent.maxent import Constraint, MaxEntEstimator, Revenue
from pymc_maxent.maxent.supports import SupportWarning

NOT_CHOICES = "needs observed choices; the data were built for prediction"


@pytest.fixture(scope="module")
def travel():
    return pmx.load_travel_mode()


@pytest.fixture(scope="module")
def for_prediction(travel):
    """TravelMode's situations built for prediction: ``chosen`` holds placeholders."""
    return pmx.ChoiceData.from_arrays(travel.X, travel.chosen, available=travel.available,
                                      alternatives=travel.alternatives, attributes=travel.attributes,
                                      has_choices=False)


# ---------------------------------------------------------------------- data without choices
@pytest.mark.parametrize("fitter", [
    lambda d: pmx.fit_maxent(d),
    lambda d: pmx.fit_maxent(d, tier="MNL-3"),
    lambda d: MaxEntEstimator(d).fit(),
    lambda d: pmx.ChoiceModel(d, "MNL-2").fit(method="maxent"),
    lambda d: pmx.ChoiceModel(d, "MNL-2").fit(method="map"),
    lambda d: map_estimate(pmx.build_model(d, "MNL-2")),
    lambda d: pmx.sample(pmx.build_model(d, "MNL-1"), draws=5, tune=5, chains=1),
    lambda d: fit_minibatch(d, "MNL-2", n=200),
], ids=["fit_maxent", "fit_maxent_tier", "MaxEntEstimator", "ChoiceModel_maxent", "ChoiceModel_map",
        "map_estimate", "sample", "fit_minibatch"])
def test_every_fitter_refuses_data_without_choices(fitter, for_prediction):
    with pytest.raises(ChoiceDataError, match=NOT_CHOICES):
        fitter(for_prediction)


def test_a_mixed_fit_refuses_data_without_choices():
    panel, _ = pmx.simulate_choices("MXL-1", n_individuals=10, n_situations=4, seed=1)
    blind = pmx.ChoiceData.from_arrays(panel.X, panel.chosen, individual=panel.individual,
                                       individuals=panel.individuals, has_choices=False)
    with pytest.raises(ChoiceDataError, match=NOT_CHOICES):
        pmx.fit_maxent(blind, tier="MXL-1")


def test_prediction_data_swapped_into_a_model_is_refused_until_choices_return(travel, for_prediction):
    """``set_choice_data`` marks the containers: a MaxEnt refit of the containers is refused while
    they hold placeholders, and works again once observed choices are back."""
    est = MaxEntEstimator(travel)
    reference = est.fit()
    with pytest.raises(ChoiceDataError, match=NOT_CHOICES):
        est.fit(for_prediction)
    pmx.data.containers.set_choice_data(for_prediction, est.model)
    with pytest.raises(ChoiceDataError, match=NOT_CHOICES):
        est.fit()
    np.testing.assert_array_equal(est.fit(travel).lam, reference.lam)


def test_prediction_data_still_predict_and_simulate(travel, for_prediction):
    """What prediction data are for keeps working: predicting with a fit, and a model built on a
    design without choices simulating them (SBC's generator)."""
    res = pmx.fit_maxent(travel)
    np.testing.assert_allclose(res.predict(for_prediction).values[0, 0], res.p, rtol=1e-12)
    design = pmx.calibration.calibration_design(20, 2)
    prior = pmx.ChoiceModel(design, "MNL-2").sample_prior_predictive(draws=5, random_seed=1)
    assert prior["prior_predictive"]["chosen"].shape == (1, 5, 40)


def test_model_selection_refuses_test_data_without_choices(travel, for_prediction):
    res = pmx.fit_maxent(travel)
    with pytest.raises(ChoiceDataError, match="the held-out score of model selection " + NOT_CHOICES):
        dx.model_selection({"MaxEnt": res}, travel, for_prediction, cv="none")


# ---------------------------------------------------------------------- empty inputs
def test_empty_mappings_of_fits_are_refused(travel):
    with pytest.raises(SpecificationError, match="model_selection needs a mapping of at least one"):
        dx.model_selection({}, travel)
    with pytest.raises(SpecificationError, match="compare_information needs a mapping of at least one"):
        dx.compare_information({})


@pytest.mark.parametrize("selection", [np.zeros(210, dtype=bool), slice(0, 0), []])
def test_a_subset_of_no_situations_is_refused(travel, selection):
    with pytest.raises(ChoiceDataError, match="subset selects no situations"):
        travel.subset(selection)


def test_a_subset_of_one_situation_keeps_its_dims(travel):
    one = travel.subset(5)
    assert one.X.shape == (1, 4, 3) and one.situations.tolist() == [travel.situations[5]]


# ---------------------------------------------------------------------- user constraints
@pytest.mark.parametrize("target", [np.nan, np.inf, "high"])
def test_a_constraint_whose_target_is_not_a_finite_number_is_named(travel, target):
    with pytest.raises(MaxEntError, match=r"constraint 'air share' has target .*must be a finite number"):
        Constraint("air share", lambda c, p, e: (p[:, 0] + e[:, 0]).sum(), target=target)


def test_a_constraint_whose_derivatives_are_nan_is_named_before_solving(travel):
    broken = Constraint("broken", lambda c, p, e: np.nan * (p[:, 0] + e[:, 0]).sum())
    with pytest.raises(MaxEntError, match=r"constraint\(s\) \['broken'\]: the derivatives"):
        pmx.fit_maxent(travel, [Revenue("gc"), broken])


def test_a_constraint_whose_features_are_nan_is_named_before_solving(travel):
    """Linear in (p, ε), but its weights (a graph of the data) are NaN: refused before the dual
    runs (a NaN target ran the dual for 0 iterations and returned β = −0)."""
    def fn(c, p, e):
        return ((p[:, 0] + e[:, 0]) * pt.log(c.X[:, 0, 0] - 1e6)).sum()  # log of a negative: NaN

    with pytest.raises(MaxEntError, match=r"constraint\(s\) \['log'\]: the (derivatives|target)"):
        pmx.fit_maxent(travel, [Revenue("gc"), Constraint("log", fn)])


# ---------------------------------------------------------------------- damaged files
@pytest.mark.parametrize("damage", ["truncated", "text", "empty"])
def test_a_damaged_saved_model_names_the_file(travel, tmp_path, damage):
    path = tmp_path / "model.nc"
    if damage == "truncated":
        cm = pmx.ChoiceModel(travel, "MNL-2")
        cm.fit(method="maxent")
        cm.save(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "text":
        path.write_text("alternative,price\nair,100\n")
    else:
        path.write_bytes(b"")
    with pytest.raises(SpecificationError, match=rf"{path} is not a readable saved pymc-maxent choice model"):
        pmx.ChoiceModel.load(path)


def test_a_missing_saved_model_is_a_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model at"):
        pmx.ChoiceModel.load(tmp_path / "absent.nc")


# ---------------------------------------------------------------------- messages that name the value
def test_a_nan_in_the_availability_column_is_named(travel):
    df = travel.to_long().assign(av=1.0)
    df.loc[3, "av"] = np.nan
    with pytest.raises(ChoiceDataError, match=r"column 'av' has missing values \(NaN\) in situation"):
        pmx.ChoiceData.from_long(df, situation="situation", alternative="alternative", chosen="chosen",
                                 attributes=["gc"], availability="av")


def test_a_missing_id_names_its_kind(travel):
    df = travel.to_long().astype({"situation": object})
    df.loc[5, "situation"] = None
    with pytest.raises(ChoiceDataError, match=r"column 'situation' has missing values \(None\) in rows 5"):
        pmx.ChoiceData.from_long(df, situation="situation", alternative="alternative", chosen="chosen",
                                 attributes=["gc"])


@pytest.mark.parametrize(("support", "w0"), [([-0.1, 0.0, 0.3], None), ([-0.1, 0.0, 0.1], [0.2, 0.3, 0.5])])
def test_a_noise_support_whose_prior_mean_is_not_zero_warns(travel, support, w0):
    with pytest.warns(SupportWarning, match=r"error_support .* has a prior mean of the noise of"):
        pmx.fit_maxent(travel, error_support=support, w0=w0)


def test_a_symmetric_noise_support_does_not_warn(travel):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SupportWarning)
        pmx.fit_maxent(travel, error_support=[-0.2, -0.1, 0.0, 0.1, 0.2])


def test_an_asymmetric_individual_support_warns():
    panel, _ = pmx.simulate_choices("MXL-1", n_individuals=10, n_situations=4, seed=1)
    with pytest.warns(SupportWarning, match=r"individual_support \[-1.0, 0.0, 2.0\]"):
        pmx.fit_maxent(panel, tier="MXL-1", individual_support=[-1.0, 0.0, 2.0])


# ---------------------------------------------------------------------- many alternatives
def test_many_alternatives_keep_the_dual_near_the_size_of_the_data():
    """60 alternatives, 2 available per situation: the share moments' one-hot features are
    situation × 60 × 59 per chunk. Chunks sized by ``J × C`` keep a refit's peak under 20× the
    data's ``X`` (it was 66× with chunks of 4096 situations, 257× at 200 alternatives)."""
    rng = np.random.default_rng(0)
    N, J = 600, 60
    X = rng.normal(size=(N, J, 2)) * [25.0, 1.0] + [100.0, 0.0]
    available = np.zeros((N, J), dtype=bool)
    for i in range(N):
        available[i, [i % J, (i + 1 + rng.integers(J - 1)) % J]] = True
    chosen = np.array([rng.choice(np.flatnonzero(row)) for row in available])
    data = pmx.ChoiceData.from_arrays(X, chosen, available=available)
    first = pmx.fit_maxent(data)  # compiles
    tracemalloc.start()
    try:
        again = pmx.fit_maxent(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert first.converged and again.converged
    np.testing.assert_array_equal(first.lam, again.lam)
    assert peak < 20 * data.X.nbytes, peak / data.X.nbytes


def test_estimates_are_the_same_whatever_the_chunks(travel):
    """Chunking changes nothing but the memory: chunks of 1, 7 and 4096 situations agree."""
    fits = [pmx.fit_maxent(travel, chunk_size=size) for size in (1, 7, 4096)]
    for fit in fits[1:]:
        np.testing.assert_allclose(fit.lam, fits[0].lam, rtol=1e-10, atol=1e-12)


def test_workflow_price_names_an_unknown_attribute(travel):
    from pymc_maxent.workflow import Settings, check_settings

    with pytest.raises(ChoiceDataError, match="unknown price attribute 'cost'"):
        check_settings(travel, Settings(price="cost"))
    check_settings(travel, Settings(price="gc"))
    assert pd.Index(travel.attributes).tolist() == ["gc", "ttme", "hinc_air"]
