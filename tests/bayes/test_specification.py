import numpy as np
import pytest
from pymc_extras.prior import Prior

import pymc_maxent as pmx
from pymc_maxent import ChoiceDataError, Coefficient, ModelSpec
from pymc_maxent.bayes.specification import resolve


@pytest.fixture(scope="module")
def panel():
    data, _ = pmx.simulate_choices("MNL-2", n_individuals=10, n_situations=3, n_alternatives=3,
                                   n_attributes=2, seed=0)
    return data


def test_tier_table_counts(panel):
    table = pmx.tier_table(panel)
    j, k, i, n = 3, 2, 10, 30
    assert table["seed_count"].to_dict() == {
        "MNL-1": 1 + k, "MNL-2": j + k, "MNL-3": j + k * j, "MXL-1": j + k * i,
        "MXL-2": j * i + k * i, "MXL-3": j * i + k * i * j, "MXL-4": j * i + k * j * n,
    }
    # identified population parameters: the common constant cancels, one reference
    assert table.loc["MNL-1", "identified"] == k
    assert table.loc["MNL-2", "identified"] == (j - 1) + k
    assert table.loc["MNL-3", "identified"] == (j - 1) + k * j
    assert table.loc["MXL-1", "identified"] == (j - 1) + 2 * k
    assert table.loc["MXL-1", "latent"] == k * i
    assert table.loc["MXL-3", "latent"] == ((j - 1) + k * j) * i
    assert table.loc["MXL-4", "latent"] == ((j - 1) + k * j) * i + k * j * n


def test_income_like_attribute_gets_reference_zero():
    data = pmx.load_travel_mode(["gc", "hinc"])
    spec = ModelSpec([Coefficient("gc"), Coefficient("hinc", alternative_specific=True)],
                     reference="car")
    r = resolve(spec, data)
    assert r.fixed.labels == ["gc", "hinc[air]", "hinc[train]", "hinc[bus]"]
    layout = r.fixed.matrix(4)
    assert layout[:, 0].tolist() == [0, 0, 0, 0]          # generic gc
    assert layout[:, 1].tolist() == [1, 2, 3, -1]         # car: fixed at 0
    assert r.asc_labels == ["air", "train", "bus"]
    # A varying attribute keeps all its alternative-specific coefficients.
    r3 = resolve(pmx.tier_spec("MNL-3", ["gc"]), data)
    assert r3.fixed.labels == ["gc[air]", "gc[train]", "gc[bus]", "gc[car]"]


def test_generic_coefficient_of_income_is_rejected():
    data = pmx.load_travel_mode(["gc", "hinc"])
    with pytest.raises(ChoiceDataError, match="'hinc' does not vary across alternatives"):
        pmx.build_model(data, "MNL-2")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: pmx.tier_spec("MNL-9", ["x0"]), "unknown tier 'MNL-9'"),
        (lambda: pmx.tier_spec("MNL-2", ["x0"], correlated=True), "no random coefficients"),
        (lambda: Coefficient("x0", random="gamma"), "unknown mixing distribution 'gamma'"),
        (lambda: Coefficient("x0", level="situation"), "must be random"),
        (lambda: ModelSpec([Coefficient("x0"), Coefficient("x0")]), "appears twice"),
        (lambda: ModelSpec([Coefficient("x0")], constants="some"), "constants must be one of"),
    ],
)
def test_bad_specifications(make, match):
    with pytest.raises(ChoiceDataError, match=match):
        make()


def test_bad_model_arguments(panel):
    with pytest.raises(ChoiceDataError, match="unknown attribute 'price'"):
        pmx.build_model(panel, "MNL-2", attributes=["price"])
    with pytest.raises(ChoiceDataError, match="unknown alternative 'bike'"):
        pmx.build_model(panel, "MNL-2", reference="bike")
    with pytest.raises(ChoiceDataError, match=r"priors for unknown parameters \['gamma'\]"):
        pmx.build_model(panel, "MNL-2", priors={"gamma": 1.0})
    with pytest.raises(ChoiceDataError, match="at least two random components"):
        pmx.build_model(panel, ModelSpec([Coefficient("x0", random="normal")], constants="fixed",
                                         correlated=True))


def test_model_dims_and_named_parameters(panel):
    model = pmx.build_model(panel, "MXL-1", correlated=True,
                            random={"x0": "neg_lognormal", "x1": "normal"})
    dims = model.named_vars_to_dims
    assert dims["alpha"] == ("asc",) and dims["mu"] == ("random_coefficient",)
    assert dims["z"] == ("individual", "random_coefficient")
    assert dims["corr"] == ("random_coefficient", "random_coefficient_")
    assert dims["chosen"] == ("situation",) and dims["p"] == ("situation", "alternative")
    assert model.coords["random_coefficient"] == ("x0", "x1")
    assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_prior_override_keeps_transform_and_gets_dims(panel):
    model = pmx.build_model(panel, "MNL-2", priors={"beta": Prior("Normal", mu=0, sigma=1,
                                                                  transform="exp")})
    assert model.named_vars_to_dims["beta"] == ("coefficient",)
    beta = model.compile_fn(model["beta"], inputs=model.value_vars,
                            on_unused_input="ignore")(model.initial_point())
    assert (beta > 0).all()  # the exp transform took effect
