import numpy as np
import pandas as pd
import pytest

import pymc_maxent as pmx
from pymc_maxent import ChoiceData
from pymc_maxent.data import travel_mode_frame
from pymc_maxent.exceptions import ChoiceDataError


def long_frame():
    """Three situations of two individuals; situation 12 lacks alternative 'c'."""
    return pd.DataFrame(
        {
            "sit": [10, 10, 10, 11, 11, 11, 12, 12],
            "alt": ["a", "b", "c", "a", "b", "c", "a", "b"],
            "y": [0, 1, 0, 1, 0, 0, 0, 1],
            "price": [1.0, 2.0, 3.0, 1.5, 2.5, 0.5, 2.0, 1.0],
            "time": [10.0, 20.0, 30.0, 15.0, 5.0, 25.0, 12.0, 8.0],
            "person": ["p1", "p1", "p1", "p1", "p1", "p1", "p2", "p2"],
        }
    )


def build(df, **kw):
    args = dict(situation="sit", alternative="alt", chosen="y", attributes=["price", "time"],
                individual="person")
    return ChoiceData.from_long(df, **(args | kw))


def test_from_long_dense_arrays_and_coords():
    data = build(long_frame())
    assert data.dims == {"situation": 3, "alternative": 3, "attribute": 2, "individual": 2}
    assert data.chosen.tolist() == [1, 0, 1]
    assert data.available.tolist() == [[True, True, True], [True, True, True], [True, True, False]]
    assert data.individual.tolist() == [0, 0, 1]
    assert data.is_panel
    np.testing.assert_array_equal(data.attribute("price")[2], [2.0, 1.0, 0.0])
    assert data.coords["individual"] == ["p1", "p2"]
    np.testing.assert_array_equal(data.chosen_onehot.sum(axis=1), 1.0)


def test_long_round_trip_is_exact():
    data = build(long_frame())
    back = ChoiceData.from_long(
        data.to_long(), situation="situation", alternative="alternative", chosen="chosen",
        attributes=["price", "time"], individual="individual",
    )
    for name in ("X", "chosen", "available", "individual", "situations", "alternatives", "individuals"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))


def test_availability_column_and_missing_attribute_of_unavailable_row():
    df = long_frame()
    df["av"] = 1
    df.loc[5, ["av", "price"]] = [0, np.nan]  # situation 11, alternative c: not offered
    data = build(df, availability="av")
    assert not data.available[1, 2] and data.X[1, 2, 0] == 0.0


def test_from_wide_matches_long():
    wide = pd.DataFrame(
        {
            "choice": ["b", "a", "b"],
            "price_a": [1.0, 1.5, 2.0], "price_b": [2.0, 2.5, 1.0], "price_c": [3.0, 0.5, 9.0],
            "time_a": [10.0, 15.0, 12.0], "time_b": [20.0, 5.0, 8.0], "time_c": [30.0, 25.0, 9.0],
            "avail_c": [1, 1, 0], "sit": [10, 11, 12], "person": ["p1", "p1", "p2"],
        }
    )
    data = ChoiceData.from_wide(
        wide, choice="choice", alternatives=["a", "b", "c"], attributes=["price", "time"],
        situation="sit", individual="person", availability={"c": "avail_c"},
    )
    expected = build(long_frame())
    np.testing.assert_array_equal(data.X, expected.X)
    np.testing.assert_array_equal(data.available, expected.available)
    np.testing.assert_array_equal(data.chosen, expected.chosen)
    np.testing.assert_array_equal(data.individual, expected.individual)


def test_from_arrays_defaults():
    X = np.arange(12.0).reshape(2, 3, 2)
    data = ChoiceData.from_arrays(X, np.array([2, 0]), available=[[1, 1, 1], [1, 1, 0]])
    assert data.X[1, 2].tolist() == [0.0, 0.0]
    assert data.attributes.tolist() == ["x0", "x1"] and not data.is_panel


@pytest.mark.parametrize(
    ("mutate", "kwargs", "match"),
    [
        (lambda df: df.drop(columns="time"), {}, r"missing column.*'time'"),
        (lambda df: df.assign(y=[0, 0, 0, 1, 0, 0, 0, 1]), {}, r"situation\(s\) 10 have no chosen"),
        (lambda df: df.assign(y=[1, 1, 0, 1, 0, 0, 0, 1]), {}, r"situation\(s\) 10 have several chosen"),
        (lambda df: df.assign(y=[0, 2, 0, 1, 0, 0, 0, 1]), {}, r"column 'y' must be 0/1.*2"),
        (lambda df: df.assign(price=[1.0, np.nan, 3, 1, 2, 1, 2, 1]), {},
         r"'price' has NaN or infinite values.*situation\(s\) 10"),
        (lambda df: df.assign(time=[1.0, np.inf, 3, 1, 2, 1, 2, 1]), {},
         r"'time' has NaN or infinite.*10"),
        (lambda df: pd.concat([df, df.iloc[[3]]]), {}, r"duplicate \(sit, alt\) rows: \(11, 'a'\)"),
        (lambda df: df.iloc[[0, 1, 2, 3, 4, 5, 7]], {}, r"situation\(s\) 12 have fewer than two"),
        (lambda df: df.assign(person=["p1", "p9", "p1", "p1", "p1", "p1", "p2", "p2"]), {},
         r"column 'person' changes within situation\(s\) 10"),
        (lambda df: df.assign(price=list("abcdefgh")), {}, r"attribute column 'price' is not numeric"),
        (lambda df: df.assign(time=7.0), {}, r"attribute 'time' is constant"),
        (lambda df: df.assign(av=[1, 0, 1, 1, 1, 1, 1, 1]), {"availability": "av"},
         r"situation\(s\) 10: the chosen alternative is marked unavailable"),
        (lambda df: df, {"alternatives": ["a", "b"]}, r"alternatives not in `alternatives`: 'c'"),
        (lambda df: df.assign(sit=[10, 10, None, 11, 11, 11, 12, 12]), {}, r"column 'sit' has missing"),
    ],
)
def test_bad_input_names_the_fault(mutate, kwargs, match):
    with pytest.raises(ChoiceDataError, match=match):
        build(mutate(long_frame()), **kwargs)


def test_bad_wide_choice_label():
    wide = pd.DataFrame({"choice": ["a", "z"], "p_a": [1.0, 2.0], "p_b": [2.0, 1.0]})
    with pytest.raises(ChoiceDataError, match=r"situation\(s\) 1: 'z'"):
        ChoiceData.from_wide(wide, choice="choice", alternatives=["a", "b"], attributes=["p"])


def test_bad_arrays():
    X = np.ones((2, 2, 1)) * np.array([[[1.0], [2.0]]])
    with pytest.raises(ChoiceDataError, match=r"chosen positions out of range 0..1.*situation\(s\) 1"):
        ChoiceData.from_arrays(X, np.array([0, 5]))
    with pytest.raises(ChoiceDataError, match="chosen alternative is marked unavailable"):
        ChoiceData.from_arrays(np.ones((1, 3, 1)) * [[[1.0], [2.0], [3.0]]], np.array([0]),
                               available=[[0, 1, 1]])


def test_travel_mode_bundle():
    df = travel_mode_frame()
    assert df.shape == (840, 10) and df["choice"].sum() == 210
    data = pmx.load_travel_mode(["gc", "ttme", "hinc"])
    assert data.dims == {"situation": 210, "alternative": 4, "attribute": 3, "individual": 210}
    # Greene's sample: air 58, train 63, bus 30, car 59.
    assert np.bincount(data.chosen).tolist() == [58, 63, 30, 59]
    assert data.varies_across_alternatives().tolist() == [True, True, False]


def test_simulator_unbalanced_panel():
    data, truth = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=4, unavailable=0.3,
                                       n_alternatives=4, seed=2)
    assert data.n_situations == 120 and data.n_individuals == 30 and data.is_panel
    assert (~data.available).any() and (data.available.sum(axis=1) >= 2).all()
    assert data.available[np.arange(120), data.chosen].all()
    assert truth["theta"].shape == (30, 2)


def test_counterfactual_attribute_keeps_unavailable_at_zero():
    data = build(long_frame())
    new = data.with_attribute("price", data.attribute("price") * 1.1)
    np.testing.assert_allclose(new.attribute("price"), data.attribute("price") * 1.1)
    assert new.X[2, 2, 0] == 0.0
    with pytest.raises(ChoiceDataError, match="'price' are not all finite"):
        data.with_attribute("price", np.nan)


def test_subset_keeps_labels_and_rejects_repeats():
    data = build(long_frame())
    sub = data.subset([2, 0])
    assert sub.situations.tolist() == [12, 10] and sub.individuals.tolist() == ["p1", "p2"]
    assert sub.individual.tolist() == [1, 0]
    with pytest.raises(ChoiceDataError, match="subset repeats situations"):
        data.subset([0, 0])


def test_select_attributes_reorders():
    data = build(long_frame())
    sub = data.select_attributes(["time", "price"])
    np.testing.assert_array_equal(sub.X, data.X[..., ::-1])
    assert sub.attributes.tolist() == ["time", "price"]
    with pytest.raises(ChoiceDataError, match="unknown attribute 'cost'"):
        data.select_attributes(["cost"])
