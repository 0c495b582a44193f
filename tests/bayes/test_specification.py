import numpy as np
import pytest
from pymc_extras.prior import Prior
from scipy import stats

import pymc_maxent as pmx
from pymc_maxent.bayes.minibatch import fit_minibatch
from pymc_maxent.bayes.priors import random_scales
from pymc_maxent.exceptions import ChoiceDataError, SpecificationError
from pymc_maxent.specification import TIERS, Coefficient, ModelSpec, as_spec, resolve, tier_spec


@pytest.fixture(scope="module")
def panel():
    data, _ = pmx.simulate_choices("MNL-2", n_individuals=10, n_situations=3, n_alternatives=3,
                                   n_attributes=2, seed=0)
    return data


def test_tier_table_counts(panel):
    table = pmx.tier_table(panel)
    assert list(table.columns) == ["description", "seed_formula", "seed_count", "identified", "latent",
                                   "total"]
    assert table.loc["MNL-1", "description"] == "common constant (cancels), generic fixed coefficients"
    assert table["seed_formula"].tolist() == ["1 + k", "j + k", "j + kj", "j + ki", "ji + ki", "ji + kij",
                                              "ji + kijt"]
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
    r3 = resolve(tier_spec("MNL-3", ["gc"]), data)
    assert r3.fixed.labels == ["gc[air]", "gc[train]", "gc[bus]", "gc[car]"]


def test_generic_coefficient_of_income_is_rejected():
    data = pmx.load_travel_mode(["gc", "hinc"])
    with pytest.raises(SpecificationError, match="'hinc' does not vary across alternatives"):
        pmx.build_model(data, "MNL-2")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: tier_spec("MNL-9", ["x0"]), "unknown tier 'MNL-9'"),
        (lambda: tier_spec("MNL-2", ["x0"], correlated=True), "no random coefficients"),
        (lambda: Coefficient("x0", random="gamma"), "unknown mixing distribution 'gamma'"),
        (lambda: Coefficient("x0", level="situation"), "must be random"),
        (lambda: ModelSpec([Coefficient("x0"), Coefficient("x0")]), "appears twice"),
        (lambda: ModelSpec([Coefficient("x0")], constants="some"), "constants must be one of"),
        (lambda: tier_spec("MXL-1", ["x0"], random={"x9": "lognormal"}),
         r"random names \['x9'\], not among the model's attributes \['x0'\]"),
        (lambda: as_spec(ModelSpec([Coefficient("x0")]), ["x0"], reference="alt0"),
         "reference apply to tier names; the ModelSpec 'custom' carries its own"),
        (lambda: as_spec(ModelSpec([Coefficient("x0")]), ["x0"], correlated=True, random="lognormal"),
         "random, correlated apply to tier names"),
        (lambda: as_spec(3, ["x0"]), "spec must be a tier name .* or a ModelSpec; got int"),
    ],
)
def test_bad_specifications(make, match):
    with pytest.raises(SpecificationError, match=match):
        make()


def test_as_spec_resolves_tiers_once():
    spec = as_spec("MXL-3", ["x0", "x1"], random={"x1": "lognormal"}, correlated=True, reference="alt1")
    assert spec == tier_spec("MXL-3", ["x0", "x1"], random={"x1": "lognormal"}, correlated=True,
                             reference="alt1")
    assert [(c.attribute, c.alternative_specific, c.random) for c in spec.coefficients] == [
        ("x0", True, "normal"), ("x1", True, "lognormal")]
    assert (spec.constants, spec.reference, spec.correlated, spec.name) == (
        "random", "alt1", True, "MXL-3 (correlated)")
    assert as_spec(spec, ["other"]) is spec
    preset = TIERS["MXL-4"]
    assert (preset.constants, preset.alternative_specific, preset.random, preset.level) == (
        "random", True, True, "situation")
    with pytest.raises(AttributeError):
        preset.random = False  # frozen


def test_bad_model_arguments(panel):
    with pytest.raises(ChoiceDataError, match="unknown attribute 'price'"):
        pmx.build_model(panel, "MNL-2", attributes=["price"])
    with pytest.raises(ChoiceDataError, match="unknown alternative 'bike'"):
        pmx.build_model(panel, "MNL-2", reference="bike")
    with pytest.raises(SpecificationError, match="at least two random components"):
        pmx.build_model(panel, ModelSpec([Coefficient("x0", random="normal")], constants="fixed",
                                         correlated=True))


@pytest.mark.parametrize(("priors", "match"), [
    ({"gamma": Prior("Normal")}, r"priors for unknown parameters \['gamma'\]; known: alpha, beta, mu, sigma, "
                                 "sigma_situation, lkj_eta"),
    ({"beta": 1.0}, "prior for 'beta' must be a pymc_extras Prior; got 1.0"),
    ({"lkj_eta": -1.0}, "prior 'lkj_eta' must be a positive number; got -1.0"),
    ({"lkj_eta": Prior("Normal")}, "prior 'lkj_eta' must be a positive number"),
])
def test_bad_priors(panel, priors, match):
    with pytest.raises(SpecificationError, match=match):
        pmx.build_model(panel, "MXL-1", correlated=True, priors=priors)


def test_minibatch_takes_the_same_priors(panel):
    with pytest.raises(SpecificationError,
                       match=r"unknown parameters \['sigma_situation'\]; known: alpha, beta, mu, sigma$"):
        fit_minibatch(panel, "MXL-1", priors={"sigma_situation": Prior("HalfNormal")}, n=10)
    with pytest.raises(SpecificationError, match="prior for 'mu' must be a pymc_extras Prior"):
        fit_minibatch(panel, "MXL-1", priors={"mu": 0.0}, n=10)


def test_default_priors_come_from_the_registry(panel):
    """The builder's priors are the registry's, on the data's scales: beta's SD is 2.5 / sd(x)."""
    model = pmx.build_model(panel, "MXL-1", random={"x0": "lognormal", "x1": "normal"},
                            parameterization="non-centred")  # the value of mu is mu itself
    resolved = resolve(tier_spec("MXL-1", ["x0", "x1"], random={"x0": "lognormal"}), panel)
    sd = np.array([panel.X[..., k][panel.available].std() for k in range(2)])
    mu_loc, mu_scale, sd_scale = random_scales(resolved)
    np.testing.assert_allclose(mu_loc, [-np.log(sd[0]), 0.0])
    np.testing.assert_allclose(mu_scale, [1.5, 2.5 / sd[1]])
    np.testing.assert_allclose(sd_scale, [1.0, 2.5 / sd[1]])
    point = model.initial_point() | {"mu": np.array([0.3, -0.2]), "sigma_log__": np.log([0.7, 1.1])}
    logp = model.compile_logp(vars=[model["mu"], model["sigma"]], jacobian=False)
    expected = (stats.norm(mu_loc, mu_scale).logpdf(point["mu"]).sum()
                + stats.halfnorm(scale=sd_scale).logpdf([0.7, 1.1]).sum())
    np.testing.assert_allclose(logp(point), expected)
    beta = pmx.build_model(panel, "MNL-2")["beta"]
    np.testing.assert_allclose(beta.owner.inputs[-1].eval(), 2.5 / sd)


def test_model_dims_and_named_parameters(panel):
    model = pmx.build_model(panel, "MXL-1", correlated=True, store_probabilities=True,
                            random={"x0": "neg_lognormal", "x1": "normal"})
    dims = model.named_vars_to_dims
    assert dims["alpha"] == ("asc",) and dims["mu"] == ("random_coefficient",)
    assert dims["z"] == ("individual", "random_coefficient")
    assert dims["corr"] == ("random_coefficient", "random_coefficient_2")
    assert model.coords["random_coefficient_2"] == model.coords["random_coefficient"]
    assert "random_coefficient_2" not in pmx.build_model(panel, "MXL-1").coords  # only with corr
    assert dims["chosen"] == ("situation",) and dims["p"] == ("situation", "alternative")
    assert "p" not in pmx.build_model(panel, "MXL-1").named_vars  # stored only on request
    assert model.coords["random_coefficient"] == ("x0", "x1")
    assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_prior_override_keeps_transform_and_gets_dims(panel):
    model = pmx.build_model(panel, "MNL-2", priors={"beta": Prior("Normal", mu=0, sigma=1,
                                                                  transform="exp")})
    assert model.named_vars_to_dims["beta"] == ("coefficient",)
    beta = model.compile_fn(model["beta"], inputs=model.value_vars,
                            on_unused_input="ignore")(model.initial_point())
    assert (beta > 0).all()  # the exp transform took effect
