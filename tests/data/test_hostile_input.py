"""Hostile input to the choice-data constructors: each case either builds the right data or
raises ChoiceDataError naming the column and value at fault (never a silent wrong answer)."""

import os
import re
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import pymc_maxent as pmx
from pymc_maxent import ChoiceData
from pymc_maxent.data import validate
from pymc_maxent.exceptions import ChoiceDataError, ScaleWarning, SpecificationError

ARGS = dict(situation="sit", alternative="alt", chosen="y", attributes=["price", "time"], individual="person")


def frame(**columns):
    """Four situations of three individuals, alternatives 1..3 (ints), every one available."""
    df = pd.DataFrame(
        {
            "sit": np.repeat([10, 11, 12, 13], 3),
            "alt": np.tile([1, 2, 3], 4),
            "y": [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0],
            "price": [1.0, 2.0, 3.0, 1.5, 2.5, 0.5, 2.0, 1.0, 4.0, 3.0, 2.0, 1.0],
            "time": [10.0, 20.0, 30.0, 15.0, 5.0, 25.0, 12.0, 8.0, 9.0, 7.0, 6.0, 5.0],
            "person": ["p1"] * 6 + ["p2"] * 3 + ["p3"] * 3,
        }
    )
    return df.assign(**columns)


def half_as_text(values, positions):
    """An object column whose values at ``positions`` are their text (``1`` -> ``"1"``)."""
    out = pd.Series(values, dtype=object)
    out.iloc[positions] = [str(v) for v in out.iloc[positions]]
    return out


def netcdf_round_trip(data, path):
    """The data's coordinates written with h5netcdf and read back."""
    xr.Dataset(coords=data.coords).to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        return {name: back[name].values.tolist() for name in data.coords}


# ---------------------------------------------------------------------- labels
@pytest.mark.parametrize(
    ("column", "positions", "value"),
    [("alt", [0, 3, 9], 1), ("sit", [3, 4], 11), ("person", None, 1)],
)
def test_labels_whose_text_forms_collide_are_refused(column, positions, value):
    df = frame()
    if column == "person":  # individual ids 1 and "1": two people, one text
        df["person"] = pd.Series([1] * 6 + ["1"] * 3 + [2] * 3, dtype=object)
    else:
        df[column] = half_as_text(df[column], positions)
    with pytest.raises(ChoiceDataError, match=rf"column '{column}' mixes label types whose text forms "
                                              "collide: ") as err:
        ChoiceData.from_long(df, **ARGS)
    assert f"{value} (int)" in str(err.value) and f"'{value}' (str)" in str(err.value)


def test_colliding_labels_in_wide_and_array_constructors():
    wide = pd.DataFrame({"choice": [1, 2], "p_1": [1.0, 2.0], "p_2": [2.0, 1.0], "p_1s": [1.0, 1.0]})
    with pytest.raises(ChoiceDataError, match=r"`alternatives` mixes label types .*1 \(int\) and '1'"):
        ChoiceData.from_wide(wide, choice="choice", alternatives=[1, "1"],
                             attributes={"p": {1: "p_1", "1": "p_1s"}})
    wide["trip"] = pd.Series([7, "7"], dtype=object)
    with pytest.raises(ChoiceDataError, match=r"column 'trip' mixes label types .*7 \(int\) and '7'"):
        ChoiceData.from_wide(wide, choice="choice", alternatives=[1, 2], attributes=["p"], situation="trip")
    X = np.arange(4.0).reshape(2, 2, 1)
    with pytest.raises(ChoiceDataError, match=r"`situations` mixes label types .*0 \(int\) and '0'"):
        ChoiceData.from_arrays(X, [0, 1], situations=[0, "0"])


def test_mixed_but_distinct_labels_keep_their_values_and_texts_survive_netcdf(tmp_path):
    df = frame(alt=pd.Series(np.tile([1, "b", "c"], 4), dtype=object))  # alternatives 1, "b", "c"
    df["alt"] = np.tile(pd.Series([1, "b", "c"], dtype=object), 4)
    df["sit"] = half_as_text(df["sit"], [6, 7, 8])  # situations 10, 11, "12", 13
    data = ChoiceData.from_long(df, **ARGS)
    assert data.alternatives.tolist() == [1, "b", "c"] and data.alternative_index(1) == 0
    assert data.situations.tolist() == [10, 11, "12", 13]
    np.testing.assert_array_equal(data.chosen, [0, 1, 2, 0])
    back = netcdf_round_trip(data, tmp_path / "coords.nc")  # coords as lists: stored as text
    assert back == {name: [str(v) for v in labels] if name in ("situation", "alternative") else labels
                    for name, labels in data.coords.items()}
    assert all(len(set(labels)) == len(labels) for labels in back.values())
    with pytest.raises(ValueError, match="mixed native types"):  # an object array: refused, not merged
        xr.Dataset(coords={"alternative": data.alternatives}).to_netcdf(tmp_path / "x.nc", engine="h5netcdf")


@pytest.mark.parametrize(
    "columns",
    [
        {},  # int situations and alternatives, text individuals
        {"alt": np.tile(["air", "bus", "car"], 4), "person": np.repeat([7, 8], 6)},
        {"sit": pd.Categorical(np.repeat(["d", "c", "b", "a"], 3)), "alt": np.tile([0.5, 1.5, 2.5], 4)},
    ],
)
def test_labels_of_one_kind_keep_their_values_through_netcdf(columns, tmp_path):
    df = frame(**columns)
    data = ChoiceData.from_long(df, **ARGS)
    for name, column in (("situation", "sit"), ("alternative", "alt"), ("individual", "person")):
        assert data.coords[name] == list(pd.unique(np.asarray(df[column])))
    back = netcdf_round_trip(data, tmp_path / "coords.nc")
    assert back == data.coords
    assert all(len(set(labels)) == len(labels) for labels in back.values())


# ---------------------------------------------------------------------- magnitudes
@pytest.mark.parametrize("value", [1e300, -3e200, 2e150])
def test_overflowing_attribute_value_is_refused(value):
    df = frame()
    df.loc[4, "price"] = value
    with pytest.raises(ChoiceDataError, match=re.escape(f"attribute 'price' has the value {value:.6g} "
                                                        "(situation 11, alternative 2), beyond ±1e+150")):
        ChoiceData.from_long(df, **ARGS)


def test_largest_allowed_magnitude_builds():
    df = frame()
    df.loc[4, "price"] = 1e150
    with pytest.warns(ScaleWarning):
        data = ChoiceData.from_long(df, **ARGS)
    assert data.X[1, 1, 0] == 1e150


def test_attribute_whose_sd_overflows_is_refused(monkeypatch):
    monkeypatch.setattr(validate, "MAX_MAGNITUDE", np.inf)  # reach the second line of defence
    X = np.array([[[1e200], [-1e200]], [[1e200], [-1e200]]])
    with pytest.raises(ChoiceDataError, match=r"attribute 'x0': its standard deviation .* overflows "
                                              r"\(largest value 1e\+200\)"):
        ChoiceData.from_arrays(X, [0, 1])


def test_counterfactual_cannot_overflow():
    data = ChoiceData.from_long(frame(), **ARGS)
    with pytest.raises(ChoiceDataError, match=r"attribute 'time' has the value 1e\+300"):
        data.with_attribute("time", 1e300)


@pytest.mark.parametrize(
    "factors",
    [
        {"price": 1e-9},  # sd ~ 1e-9: below 1e-6
        {"time": 1e7},  # sd ~ 7e7: above 1e6
        {"price": 1e-3, "time": 1e4},  # each inside, a factor ~1e8 apart
    ],
)
def test_badly_scaled_design_warns_once_with_every_scale(factors):
    df = frame()
    for column, factor in factors.items():
        df[column] = df[column] * factor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ChoiceData.from_long(df, **ARGS)
    scale_warnings = [w for w in caught if issubclass(w.category, ScaleWarning)]
    assert len(scale_warnings) == 1
    message = str(scale_warnings[0].message)
    for column in ("price", "time"):
        assert f"'{column}': {df[column].std(ddof=0):.3g}" in message
    assert "rescale the columns" in message
    assert scale_warnings[0].filename == __file__  # points at the caller, not the package


def test_travel_mode_and_simulated_data_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScaleWarning)
        pmx.load_travel_mode()
        pmx.load_travel_mode(["ttme", "invc", "invt", "gc", "hinc", "psize", "hinc_air"])
        pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=3, unavailable=0.3, seed=3)


def test_constant_columns_have_no_scale():
    X = np.stack([np.array([[1.0, 2.0], [2.0, 1.0]]), np.full((2, 2), 5e-9)], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScaleWarning)
        data = ChoiceData.from_arrays(X, [0, 1], check_identified=False)
    assert validate.attribute_scales(data.X, data.available, data.attributes) == {"x0": 0.5}


# ---------------------------------------------------------------------- size
SIZE_HINT = (r"fit_maxent_dask.*fit_minibatch|fit_minibatch.*fit_maxent_dask")


def test_size_guard_with_max_bytes():
    df = frame()
    need = validate.dense_bytes(4, 3, 2)
    assert need == 4 * 3 * 2 * 8 + 2 * 4 * 3 + 2 * 4 * 8
    with pytest.raises(ChoiceDataError, match=rf"4 situations × 3 alternatives × 2 attributes need "
                                              rf"{need / 2**30:.3g} GiB, more than .*max_bytes.*"):
        ChoiceData.from_long(df, max_bytes=need - 1, **ARGS)
    assert ChoiceData.from_long(df, max_bytes=need, **ARGS).dims["situation"] == 4


def test_size_guard_message_points_to_out_of_memory_estimators():
    with pytest.raises(ChoiceDataError, match=SIZE_HINT) as err:
        ChoiceData.from_long(frame(), max_bytes=100, **ARGS)
    assert "pymc_maxent.bayes.minibatch.fit_minibatch" in str(err.value)
    assert "pymc_maxent.maxent.dask_backend.fit_maxent_dask" in str(err.value)  # the module's new name


def test_size_guard_from_environment_and_keyword_precedence(monkeypatch):
    monkeypatch.setenv("PYMC_MAXENT_MAX_BYTES", "100")
    with pytest.raises(ChoiceDataError, match=r"GiB \(\$PYMC_MAXENT_MAX_BYTES\)"):
        ChoiceData.from_long(frame(), **ARGS)
    assert ChoiceData.from_long(frame(), max_bytes=1e6, **ARGS).n_situations == 4
    monkeypatch.setenv("PYMC_MAXENT_MAX_BYTES", "1 GB")
    with pytest.raises(SpecificationError, match=r"PYMC_MAXENT_MAX_BYTES='1 GB' is not a number"):
        ChoiceData.from_long(frame(), **ARGS)


def test_size_guard_before_copying_arrays_and_wide_frames():
    # a broadcast view of 8e13 bytes: refused from its shape, before np.asarray copies it
    huge = np.broadcast_to(0.0, (10**9, 100, 100))
    need = validate.dense_bytes(10**9, 100, 100) / 2**30
    with pytest.raises(ChoiceDataError, match=re.escape(f"1000000000 situations × 100 alternatives × "
                                                        f"100 attributes need {need:.3g} GiB")):
        ChoiceData.from_arrays(huge, [])
    wide = pd.DataFrame({"choice": ["a", "b"], "p_a": [1.0, 2.0], "p_b": [2.0, 1.0]})
    with pytest.raises(ChoiceDataError, match=r"2 situations × 2 alternatives × 1 attributes"):
        ChoiceData.from_wide(wide, choice="choice", alternatives=["a", "b"], attributes="p", max_bytes=10)


def test_default_limit_is_half_the_available_memory(monkeypatch):
    monkeypatch.delenv("PYMC_MAXENT_MAX_BYTES", raising=False)
    psutil = pytest.importorskip("psutil")

    class Memory:
        available = 6 * 2**30

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory)
    assert validate.memory_limit() == (3 * 2**30, "half the available memory")
    monkeypatch.setitem(sys.modules, "psutil", None)  # not importable: os.sysconf
    pages = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", pages.__getitem__)
    assert validate.memory_limit() == (1000 * 4096 / 2, "half the available memory")


# ---------------------------------------------------------------------- weaker messages
@pytest.mark.parametrize("column", ["y", "av"])
def test_nullable_boolean_with_na(column):
    df = frame(av=True)
    df[column] = df[column].astype("boolean")
    df.loc[7, column] = pd.NA
    with pytest.raises(ChoiceDataError, match=rf"column '{column}' has missing values \(<NA>\) in "
                                              r"situation\(s\) 12 \(rows 7\); it must be 0/1 or boolean"):
        ChoiceData.from_long(df, availability="av", **ARGS)


def test_nullable_boolean_without_na_builds():
    df = frame(y=frame()["y"].astype(bool).astype("boolean"))
    assert ChoiceData.from_long(df, **ARGS).chosen.tolist() == [0, 1, 2, 0]


def test_empty_inputs_name_the_columns():
    with pytest.raises(ChoiceDataError, match=r"the data frame has no rows \(columns 'sit', 'alt', "
                                              r"'person', 'price', 'time', 'y' are empty\)"):
        ChoiceData.from_long(frame().iloc[:0], **ARGS)
    wide = pd.DataFrame({"choice": pd.Series([], dtype=object), "p_a": [], "p_b": []})
    with pytest.raises(ChoiceDataError, match=r"no rows \(columns 'p_a', 'p_b', 'choice' are empty\)"):
        ChoiceData.from_wide(wide, choice="choice", alternatives=["a", "b"], attributes=["p"])
    with pytest.raises(ChoiceDataError, match=r"X has shape \(0, 3, 2\)"):
        ChoiceData.from_arrays(np.zeros((0, 3, 2)), np.zeros(0, dtype=int))


def test_string_attributes_is_one_attribute():
    one = ChoiceData.from_long(frame(), **(ARGS | {"attributes": "price"}))
    listed = ChoiceData.from_long(frame(), **(ARGS | {"attributes": ["price"]}))
    assert one.attributes.tolist() == ["price"]
    np.testing.assert_array_equal(one.X, listed.X)
    wide = pd.DataFrame({"choice": ["a", "b"], "price_a": [1.0, 2.0], "price_b": [2.0, 1.0],
                         "inc": [3.0, 5.0]})
    data = ChoiceData.from_wide(wide, choice="choice", alternatives=["a", "b"], attributes="price",
                                situation_attributes="inc", check_identified=False)
    assert data.attributes.tolist() == ["price", "inc"]
    X = np.arange(4.0).reshape(2, 2, 1)
    assert ChoiceData.from_arrays(X, [0, 1], attributes="price").attributes.tolist() == ["price"]
