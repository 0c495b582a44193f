"""Property-based: small random long frames, with random column names (text, integers, names that
collide) and random dtypes (NumPy and pandas nullable integers, floats, booleans, objects,
categories, strings), go through the data constructor and the fitting entry points. Each step
either returns a finite result or raises a PymcMaxentError; never another exception type, never
a NaN."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pymc_maxent as pmx
from pymc_maxent.exceptions import PymcMaxentError

ATTRIBUTE_DTYPES = ["int8", "int64", "uint16", "float32", "float64", "bool", "object", "Int64", "Float64",
                    "boolean", "category", "string"]
ID_DTYPES = ["int64", "object", "category", "string", "float64"]
CHOSEN_DTYPES = ["int64", "bool", "float64", "boolean", "object", "Int8"]


def names():
    return st.one_of(st.text(min_size=1, max_size=4), st.integers(-3, 20))


@st.composite
def frames(draw):
    """A long frame of 3-8 situations of 2-3 alternatives, one chosen each, whose column names
    and dtypes are drawn; the names may collide (two roles, one name)."""
    n_sit, n_alt, n_attr = draw(st.integers(3, 8)), draw(st.integers(2, 3)), draw(st.integers(1, 2))
    roles = ["situation", "alternative", "chosen", *[f"a{k}" for k in range(n_attr)]]
    drawn = draw(st.lists(names(), min_size=len(roles), max_size=len(roles)))
    columns = dict(zip(roles, drawn, strict=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = n_sit * n_alt
    chosen = np.zeros(rows, dtype=int)
    chosen[np.arange(n_sit) * n_alt + rng.integers(0, n_alt, n_sit)] = 1
    values = {
        "situation": np.repeat(np.arange(n_sit), n_alt),
        "alternative": np.tile(np.arange(n_alt), n_sit),
        "chosen": chosen,
        **{f"a{k}": rng.normal(100.0 * (k + 1), 25.0, rows).round(draw(st.integers(0, 2)))
           for k in range(n_attr)},
    }
    series = []
    for role, v in values.items():
        dtypes = ID_DTYPES if role in ("situation", "alternative") else (
            CHOSEN_DTYPES if role == "chosen" else ATTRIBUTE_DTYPES)
        dtype = draw(st.sampled_from(dtypes))
        s = pd.Series(v)
        try:
            s = s.astype(dtype)
        except (TypeError, ValueError):
            s = s.astype(object)
        series.append(s.rename(columns[role]))
    df = pd.concat(series, axis=1)
    return df, columns, [columns[f"a{k}"] for k in range(n_attr)]


def assert_finite_estimates(fit) -> None:
    table = fit.estimates()
    assert np.isfinite(table["estimate"].to_numpy(dtype=float)).all(), table


@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(frames())
def test_random_frames_build_and_fit_or_raise_a_package_error(case):
    df, columns, attributes = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            data = pmx.ChoiceData.from_long(df, situation=columns["situation"],
                                            alternative=columns["alternative"], chosen=columns["chosen"],
                                            attributes=attributes)
        except PymcMaxentError:
            return
        assert np.isfinite(data.X).all()
        for step in (lambda: pmx.fit_maxent(data), lambda: pmx.build_model(data, "MNL-2")):
            try:
                out = step()
            except PymcMaxentError:
                continue
            if hasattr(out, "estimates"):
                assert_finite_estimates(out)


@pytest.mark.parametrize("role", ["price", "y", "sit"])
def test_duplicated_column_names_are_named(role):
    """Two columns of one name (a frame concatenated with a copy of one column)."""
    df = pd.DataFrame({"sit": [1, 1, 2, 2], "alt": ["a", "b", "a", "b"], "y": [1, 0, 0, 1],
                       "price": [1.0, 2.0, 2.5, 1.0]})
    df = pd.concat([df, df[[role]]], axis=1)
    with pytest.raises(pmx.exceptions.ChoiceDataError, match=rf"column '{role}' appears 2 times in the data"):
        pmx.ChoiceData.from_long(df, situation="sit", alternative="alt", chosen="y", attributes=["price"])


def test_integer_attribute_names_fit_by_both_estimators_under_one_name():
    """``attributes=[3, 4]`` keeps the integer labels; the MaxEnt default moments, the Bayesian
    model and the diagnostics all find them, by the label or by its text."""
    d = pmx.load_travel_mode()
    df = d.to_long().rename(columns={"gc": 3, "ttme": 4})
    data = pmx.ChoiceData.from_long(df, situation="situation", alternative="alternative", chosen="chosen",
                                    attributes=[3, 4])
    assert data.attributes.tolist() == [3, 4]
    res = pmx.fit_maxent(data)
    named = pmx.fit_maxent(data.select_attributes(["3", "4"]))
    assert res.estimates().index.tolist() == named.estimates().index.tolist()
    assert "beta[3]" in res.estimates().index
    np.testing.assert_array_equal(res.beta, named.beta)
    model = pmx.build_model(data, "MNL-2")
    assert list(model.coords["attribute"]) == [3, 4]
    e3 = pmx.diagnostics.elasticities(res, 3)["estimate"].values
    np.testing.assert_allclose(pmx.diagnostics.elasticities(res, "3")["estimate"].values, e3)
