"""Property-based tests of ChoiceData.from_long: random long-format frames (shuffled rows,
integer, text, categorical or mixed ids, unbalanced availability, panels with single-situation
individuals, extreme but finite scales) either build data whose arrays give the frame back
exactly, or raise ChoiceDataError naming a column."""

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pymc_maxent import ChoiceData
from pymc_maxent.exceptions import ChoiceDataError, ScaleWarning

SIT, ALT, CHOSEN, PERSON, AVAIL = "trip_id", "mode_lbl", "picked", "person_id", "offered"
ATTRS = ["attr_a", "attr_b", "attr_c"]
COLUMNS = [SIT, ALT, CHOSEN, PERSON, AVAIL, *ATTRS]
SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------- strategies
@st.composite
def labels(draw, n: int, prefix: str):
    """``n`` distinct ids of one kind (int, text, categorical) or of mixed kinds whose texts
    differ (ints and prefixed text)."""
    kind = draw(st.sampled_from(["int", "text", "category", "mixed"]))
    numbers = draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n, unique=True))
    if kind == "int":
        return kind, numbers
    if kind == "mixed":
        as_text = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        return kind, [f"{prefix}{v}" if t else v for v, t in zip(numbers, as_text, strict=True)]
    return kind, [f"{prefix}{v}" for v in numbers]


def id_column(kind: str, values: list) -> pd.Series:
    if kind == "category":
        return pd.Series(pd.Categorical(values))
    return pd.Series(values, dtype=object if kind == "mixed" else None)


@st.composite
def long_frames(draw):
    """A valid long frame: every situation offers >= 2 alternatives and picks one of them."""
    n_sit, n_alt, n_attr = draw(st.integers(1, 6)), draw(st.integers(2, 4)), draw(st.integers(1, 3))
    sit_kind, sits = draw(labels(n_sit, "s"))
    alt_kind, alts = draw(labels(n_alt, "m"))
    ind_kind, people = draw(labels(n_sit, "p"))
    owner = draw(st.lists(st.integers(0, n_sit - 1), min_size=n_sit, max_size=n_sit))
    rows = []
    for s in range(n_sit):
        present = draw(st.lists(st.integers(0, n_alt - 1), min_size=2, max_size=n_alt, unique=True))
        offered = draw(st.lists(st.booleans(), min_size=len(present), max_size=len(present)))
        offered[:2] = [True, True]  # at least two offered, the rest may be listed but not offered
        pick = draw(st.integers(0, 1))
        for r, (j, on) in enumerate(zip(present, offered, strict=True)):
            rows.append({SIT: sits[s], ALT: alts[j], CHOSEN: int(r == pick), PERSON: people[owner[s]],
                         AVAIL: on})
    df = pd.DataFrame(rows)
    for k, name in enumerate(ATTRS[:n_attr]):
        exponent = draw(st.integers(-150, 140))  # extreme but finite: |x| <= ~3e142
        noise = draw(st.lists(st.floats(-5, 5), min_size=len(df), max_size=len(df)))
        ramp = 11.0 * np.arange(len(df)) * (-1) ** k  # distinct values: never a constant column
        df[name] = (np.asarray(noise) + ramp) * 10.0**exponent
        df.loc[~df[AVAIL], name] = draw(st.sampled_from([np.nan, 0.0, 1e300]))  # ignored when not offered
    df[SIT], df[ALT], df[PERSON] = (id_column(k, df[c].tolist()) for k, c in
                                    ((sit_kind, SIT), (alt_kind, ALT), (ind_kind, PERSON)))
    df[CHOSEN] = df[CHOSEN].astype(draw(st.sampled_from(["int64", "bool", "boolean", "float64"])))
    order = draw(st.permutations(range(len(df))))
    df = df.iloc[order]
    df.index = draw(st.permutations(range(100, 100 + len(df))))  # a scrambled index
    return df, ATTRS[:n_attr]


def corrupt(df: pd.DataFrame, attributes: list, how: str, row: int) -> pd.DataFrame:
    """One hostile edit of a valid frame."""
    df = df.copy()
    at = df.index[row % len(df)]
    if how == "duplicate_row":
        return pd.concat([df, df.loc[[at]]])
    if how == "drop_row":
        return df.drop(index=at)
    if how == "chosen_two":
        df[CHOSEN] = df[CHOSEN].astype(float)
        df.loc[at, CHOSEN] = 2.0
    elif how == "chosen_na":
        df[CHOSEN] = df[CHOSEN].astype("boolean")
        df.loc[at, CHOSEN] = pd.NA
    elif how in ("id_text", "id_missing"):
        for col in (SIT, ALT, PERSON):
            df[col] = df[col].astype(object)
        col = [SIT, ALT, PERSON][row % 3]
        df.loc[at, col] = str(df.loc[at, col]) if how == "id_text" else None
    elif how == "huge":
        df.loc[at, attributes[0]] = 1e300
        df.loc[at, AVAIL] = True
    elif how == "infinite":
        df.loc[at, attributes[-1]] = -np.inf
        df.loc[at, AVAIL] = True
    elif how == "constant":
        df[attributes[0]] = 3.0
    elif how == "text_attribute":
        df[attributes[0]] = df[attributes[0]].astype(str)
    elif how == "unoffer":
        df.loc[at, AVAIL] = False
    return df


HOSTILE = ["duplicate_row", "drop_row", "chosen_two", "chosen_na", "id_text", "id_missing", "huge",
           "infinite", "constant", "text_attribute", "unoffer"]


# ---------------------------------------------------------------------- the property
def build(df: pd.DataFrame, attributes: list) -> ChoiceData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScaleWarning)  # extreme scales warn; the values stay exact
        return ChoiceData.from_long(df, situation=SIT, alternative=ALT, chosen=CHOSEN,
                                    attributes=attributes, individual=PERSON, availability=AVAIL)


def assert_round_trip(df: pd.DataFrame, attributes: list, data: ChoiceData) -> None:
    """``data.to_long()`` holds exactly the offered rows of ``df``, with the expected labels."""
    offered = df[df[AVAIL].astype(bool)]
    want = pd.DataFrame({  # ids keep their values, whatever their kinds
        "situation": offered[SIT].tolist(), "alternative": offered[ALT].tolist(),
        "chosen": offered[CHOSEN].astype(int).to_numpy(), "individual": offered[PERSON].tolist(),
        **{a: offered[a].to_numpy() for a in attributes},
    })
    got = data.to_long()
    key = ["situation", "alternative"]
    want = want.assign(_k=want[key].astype(str).agg("|".join, axis=1)).sort_values("_k")
    got = got.assign(_k=got[key].astype(str).agg("|".join, axis=1)).sort_values("_k")
    assert want["_k"].tolist() == got["_k"].tolist()
    for col in ["situation", "alternative", "chosen", "individual", *attributes]:
        assert want[col].tolist() == got[col].tolist(), col  # exact: labels, flags and floats
        if col not in attributes:
            assert [type(v) for v in want[col].tolist()] == [type(v) for v in got[col].tolist()], col
    for name in ("situation", "alternative", "individual"):
        assert len(set(data.coords[name])) == len(data.coords[name])


def assert_names_a_column(err: ChoiceDataError) -> None:
    assert any(col in str(err) for col in COLUMNS), str(err)


@SETTINGS
@given(long_frames())
def test_valid_frames_round_trip_exactly(case):
    df, attributes = case
    data = build(df, attributes)
    assert_round_trip(df, attributes, data)
    with tempfile.TemporaryDirectory() as tmp:  # the labels survive netCDF: unique and equal
        path = Path(tmp) / "coords.nc"
        xr.Dataset(coords=data.coords).to_netcdf(path, engine="h5netcdf")
        with xr.open_dataset(path, engine="h5netcdf") as back:
            for name, labels in data.coords.items():
                read = back[name].values.tolist()
                assert len(set(read)) == len(read)
                one_type = len({type(v) for v in labels}) == 1
                assert read == (labels if one_type else [str(v) for v in labels]), name  # mixed: text


@SETTINGS
@given(long_frames(), st.sampled_from(HOSTILE), st.integers(0, 10**6))
def test_hostile_frames_round_trip_or_name_a_column(case, how, row):
    df, attributes = case
    bad = corrupt(df, attributes, how, row)
    try:
        data = build(bad, attributes)
    except ChoiceDataError as err:
        event(f"{how}: refused")  # --hypothesis-show-statistics counts the outcomes
        assert_names_a_column(err)
        return
    event(f"{how}: built")
    assert how in ("drop_row", "unoffer", "id_text"), how  # the only edits that may leave valid data
    assert_round_trip(bad, attributes, data)


@pytest.mark.parametrize("how", HOSTILE)
def test_every_hostile_edit_is_exercised(how):
    """The edits do something: on a fixed valid frame (two situations of two alternatives,
    the first row chosen), every edit of the first row makes the data invalid."""
    df = pd.DataFrame({SIT: [1, 1, 2, 2], ALT: ["a", "b", "a", "b"], CHOSEN: [1, 0, 0, 1],
                       PERSON: [7, 7, 8, 8], AVAIL: True, "attr_a": [1.0, 2.0, 4.0, 3.0]})
    assert_round_trip(df, ["attr_a"], build(df, ["attr_a"]))
    with pytest.raises(ChoiceDataError) as err:
        build(corrupt(df, ["attr_a"], how, 0), ["attr_a"])
    assert_names_a_column(err.value)
    if how == "id_text":  # situation 1 and "1"
        assert f"column '{SIT}' mixes label types" in str(err.value)
