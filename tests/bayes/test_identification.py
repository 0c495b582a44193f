"""Unidentified designs are refused when the model is specified, naming the parameters: the
rank of the design centred within situations (choices depend on utility differences only)."""

import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent import specification
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.specification import Coefficient, ModelSpec, as_spec, resolve

N, J = 80, 3


def choice_data(**attributes):
    X = np.stack(list(attributes.values()), axis=-1)
    return ChoiceData.from_arrays(X, np.arange(N) % J, attributes=np.array(list(attributes)),
                                  alternatives=np.array(["a", "b", "c"]))


@pytest.fixture(scope="module")
def x1():
    return np.random.default_rng(0).normal(size=(N, J))


@pytest.mark.parametrize("offset", [0.0, 3.0])
@pytest.mark.parametrize("tier", ["MNL-1", "MNL-2", "MXL-1"])
def test_collinear_attributes_are_refused(x1, tier, offset):
    """x2 = 2·x1, or 2·x1 + 3 (the same within every situation): only β1 + 2β2 is identified."""
    x3 = np.random.default_rng(1).normal(size=(N, J))
    data = choice_data(x1=x1, x2=2 * x1 + offset, x3=x3)
    with pytest.raises(SpecificationError, match=r"the parameters x1, x2 are not identified: .*"
                                                 r"\(2·x1 - x2 is constant within every situation\)"):
        pmx.build_model(data, tier)
    pmx.build_model(data, tier, attributes=["x1", "x3"])  # without x2: identified


def test_alternative_specific_coefficients_name_each_relation(x1):
    data = choice_data(x1=x1, x2=2 * x1)
    with pytest.raises(SpecificationError) as error:
        resolve(as_spec("MNL-3", ["x1", "x2"]), data)
    message = str(error.value)
    assert "x1[a], x1[b], x1[c], x2[a], x2[b], x2[c] are not identified" in message
    for alt in "abc":
        assert f"2·x1[{alt}] - x2[{alt}] is constant within every situation" in message


def test_an_offset_varying_across_situations_leaves_alternative_specific_ones_identified_but_one(x1):
    """x2 = 2·x1 + c_i: per alternative (2, −1) changes utility differences, the joint one does not."""
    c = np.random.default_rng(2).normal(size=(N, 1))
    data = choice_data(x1=x1, x2=2 * x1 + c)
    with pytest.raises(SpecificationError,
                       match=r"\(2·x1\[a\] \+ 2·x1\[b\] \+ 2·x1\[c\] - x2\[a\] - x2\[b\] - x2\[c\] is "
                             r"constant within every situation\)"):
        resolve(as_spec("MNL-3", ["x1", "x2"]), data)


def test_an_alternative_dummy_is_a_constant(x1):
    dummy = np.tile([0.0, 1.0, 0.0], (N, 1))
    data = choice_data(x1=x1, is_b=dummy)
    with pytest.raises(SpecificationError, match=r"asc\[b\], is_b are not identified: .*asc\[b\] - is_b is "
                                                 r"constant within every situation; asc\[a\] stands for"):
        resolve(as_spec("MNL-2", ["x1", "is_b"], reference="c"), data)
    resolve(as_spec("MNL-1", ["x1", "is_b"]), data)  # no constants: is_b is the constant of b


def test_legitimately_alternative_specific_attributes(x1):
    """Income (the same for every alternative of a situation) with alternative-specific
    coefficients and an interaction with one alternative's dummy are identified: their
    variation across situations is kept by the centring; an alternative whose attribute is
    always 0 gets no coefficient."""
    income = np.repeat(np.random.default_rng(3).uniform(1, 5, size=(N, 1)), J, axis=1)
    data = choice_data(x1=x1, income=income, income_a=income * [1.0, 0.0, 0.0])
    r = resolve(ModelSpec([Coefficient("x1"), Coefficient("income", alternative_specific=True)],
                          reference="c"), data)
    assert r.fixed.labels == ["x1", "income[a]", "income[b]"] and r.asc_labels == ["a", "b"]
    for generic in (True, False):
        r = resolve(ModelSpec([Coefficient("x1"), Coefficient("income_a", alternative_specific=not generic)],
                              reference="c"), data)
        assert r.fixed.labels == ["x1", "income_a" if generic else "income_a[a]"]
    # both: for alternative a, income and income_a are the same column
    with pytest.raises(SpecificationError, match=r"income\[a\], income_a\[a\] are not identified: .*"
                                                 r"\(income\[a\] - income_a\[a\] is constant"):
        resolve(ModelSpec([Coefficient("income", alternative_specific=True),
                           Coefficient("income_a", alternative_specific=True)], reference="c"), data)


def test_strong_but_inexact_correlation_is_accepted(x1):
    noise = 1e-3 * np.random.default_rng(4).normal(size=(N, J))
    resolve(as_spec("MNL-2", ["x1", "x2"]), choice_data(x1=x1, x2=2 * x1 + noise))


def test_travel_mode_tiers_are_identified(travel_mode):
    """TravelMode's ttme is 0 for car and hinc_air 0 but for air: no coefficients there."""
    r = resolve(as_spec("MNL-3", ["gc", "ttme", "hinc_air"], reference="car"), travel_mode)
    assert r.fixed.labels == ["gc[air]", "gc[train]", "gc[bus]", "gc[car]", "ttme[air]", "ttme[train]",
                              "ttme[bus]", "hinc_air[air]"]
    assert pmx.tier_table(travel_mode)["identified"].tolist() == [3, 6, 11, 9, 12, 22, 30]


def test_a_deficient_first_chunk_is_checked_on_all_situations(x1, monkeypatch):
    """The check tries the first situations, and only refuses once all of them agree."""
    monkeypatch.setattr(specification, "_CHUNK", 16)
    x2 = 2 * x1
    x2[40:] = np.random.default_rng(5).normal(size=(N - 40, J))
    resolve(as_spec("MNL-2", ["x1", "x2"]), choice_data(x1=x1, x2=x2))  # identified by situations 40+
    with pytest.raises(SpecificationError, match="x1, x2 are not identified"):
        resolve(as_spec("MNL-2", ["x1", "x2"]), choice_data(x1=x1, x2=2 * x1))
