"""The nested logit: Biogeme's documented Swissmetro example reproduced to its printed digits,
the logit at λ = 1 to round-off, the nested-logit elasticities against their closed form, a
nest with no available alternative, the specification's errors, and recovery of λ."""

import numpy as np
import pytest
from pymc_extras.prior import Prior
from swissmetro import load_swissmetro

import pymc_maxent as pmx
from pymc_maxent.bayes.point import ml_estimate
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.simulate import nested_logit_probabilities, simulate_nested_choices

# Biogeme 3.2.7, examples/swissmetro/09nested.html (Bierlaire's report, 2021-07-19): nest
# EXISTING = {train, car} with MU estimated, Swissmetro alone (MU = 1), ASC_SM = 0. Biogeme's
# MU is 1/λ. Value, Std err, Rob. Std err as printed (3 significant digits).
BIOGEME_09NESTED = {
    "alpha[car]": (-0.167, 0.0371, 0.0545),
    "alpha[train]": (-0.512, 0.0452, 0.0791),
    "beta[cost]": (-0.857, 0.0463, 0.06),
    "beta[time]": (-0.899, 0.057, 0.107),
    "MU": (2.05, 0.118, 0.164),
}
BIOGEME_FINAL_LOGLIK = -5236.9
BIOGEME_NULL_LOGLIK = -6964.663
NESTS = {"existing": ["train", "car"]}


def significant(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


@pytest.fixture(scope="module")
def swissmetro_ml():
    data = load_swissmetro()
    model = pmx.build_model(data, "NL", reference="swissmetro", nests=NESTS)
    return data, model, ml_estimate(model)


def sandwich(model, fit):
    """Robust (sandwich) covariance over the raveled value variables: H⁻¹ (Σ_n g_n g_nᵀ) H⁻¹,
    the per-situation scores ``g_n`` by central differences of the pointwise log-likelihood."""
    from pymc.blocking import DictToArrayBijection

    point = {v.name: fit.x[model.values_to_rvs[v].name] for v in model.value_vars if v.name in fit.x}
    lam = fit.x["lambda"]
    point["lambda_interval__"] = np.log(lam / (1 - lam))
    raveled = DictToArrayBijection.map({v.name: point[v.name] for v in model.value_vars})
    pointwise = model.compile_logp(vars=[model["chosen"]], sum=False)
    scores = []
    for k in range(raveled.data.size):
        step = np.zeros_like(raveled.data)
        step[k] = 1e-5
        up, down = (pointwise(DictToArrayBijection.rmap(raveled._replace(data=raveled.data + s)))[0]
                    for s in (step, -step))
        scores.append((up - down) / 2e-5)
    G = np.stack(scores, axis=1)
    H_inv = np.linalg.inv(fit.hess)
    return H_inv @ (G.T @ G) @ H_inv


def test_swissmetro_nested_logit_reproduces_biogeme(swissmetro_ml):
    data, model, fit = swissmetro_ml
    assert fit.converged and fit.identified
    lam = float(fit.x["lambda"][0])
    # value variables: alpha, beta, logit(λ); to (…, λ) and Biogeme's MU = 1/λ by the chain
    # rule (exact at the maximum, where the gradient is 0)
    d_lambda = lam * (1 - lam)
    jacobian = np.diag([1, 1, 1, 1, d_lambda * -1 / lam**2])
    estimates = dict(zip(fit.labels[:4], fit.parameters.iloc[:4], strict=True)) | {"MU": 1 / lam}
    for kind, cov in (("Std err", np.linalg.inv(fit.hess)), ("Rob. Std err", sandwich(model, fit))):
        se = np.sqrt(np.diag(jacobian @ cov @ jacobian.T))
        ours = dict(zip([*fit.labels[:4], "MU"], se, strict=True))
        column = 1 if kind == "Std err" else 2
        for name, printed in BIOGEME_09NESTED.items():
            assert significant(ours[name]) == printed[column], (kind, name, ours[name])  # Biogeme: %.3g
    for name, printed in BIOGEME_09NESTED.items():
        assert significant(estimates[name]) == printed[0], (name, estimates[name])
    assert round(-fit.fun, 1) == BIOGEME_FINAL_LOGLIK
    assert round(float(-np.log(data.available.sum(axis=1)).sum()), 3) == BIOGEME_NULL_LOGLIK


def test_nested_logit_at_lambda_one_is_the_logit():
    data = load_swissmetro().subset(slice(0, 400))   # train, Swissmetro and car, car often unavailable
    nested = pmx.build_model(data, "NL", reference="swissmetro", nests=NESTS, store_probabilities=True)
    logit = pmx.build_model(data, "MNL-2", reference="swissmetro", store_probabilities=True)
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {"alpha": rng.normal(size=2), "beta": rng.normal(size=2) * 2}
        ll_logit = logit.compile_logp(vars=[logit["chosen"]], sum=False)(point)[0]
        p_logit = logit.compile_fn(logit["p"], inputs=[logit["alpha"], logit["beta"]])(point)
        at_one = point | {"lambda_interval__": np.array([np.inf])}  # λ = sigmoid(∞) = 1
        ll_nested = nested.compile_logp(vars=[nested["chosen"]], sum=False)(at_one)[0]
        p_nested = nested.compile_fn(nested["p"], inputs=[nested["alpha"], nested["beta"], nested["lambda"]])(
            point | {"lambda": np.array([1.0])})
        np.testing.assert_allclose(ll_nested, ll_logit, rtol=0, atol=1e-10)
        np.testing.assert_allclose(p_nested, p_logit, rtol=0, atol=1e-10)
        assert (p_nested[~data.available] == 0).all()


def test_a_nest_with_no_available_alternative_drops_out():
    """Situations where the whole nest {a, b} is unavailable: finite log-likelihood and gradient,
    probabilities those of the logit over the rest (the nest drops out of the upper level)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 4, 1))
    available = np.ones((6, 4), bool)
    available[:3, :2] = False
    data = pmx.ChoiceData.from_arrays(X, np.array([2, 3, 2, 0, 1, 3]), available=available,
                                      alternatives=["a", "b", "c", "d"], attributes=["x"])
    model = pmx.build_model(data, "NL", nests={"ab": ["a", "b"], "cd": ["c", "d"]}, store_probabilities=True)
    point = model.initial_point() | {"lambda_interval__": np.array([-1.0, 0.5])}
    logp, grad = model.compile_fn([model.logp(), model.dlogp()], inputs=model.value_vars)(point)
    assert np.isfinite(logp) and np.all(np.isfinite(grad))
    lam = 1 / (1 + np.exp(-np.array([-1.0, 0.5])))
    values = {"alpha": point["alpha"], "beta": point["beta"], "lambda": lam}
    p = model.compile_fn(model["p"], inputs=[model["alpha"], model["beta"], model["lambda"]])(values)
    V = X[..., 0] * values["beta"][0] + np.append(values["alpha"], 0.0)
    expected = nested_logit_probabilities(V, available, [0, 0, 1, 1], values["lambda"])
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    assert (p[:3, :2] == 0).all() and np.allclose(p.sum(axis=1), 1.0)


def test_nested_elasticities_follow_the_closed_form(swissmetro_ml):
    """Point elasticities to cost from the evaluator's ∂p/∂x against the nested logit's formula:
    own ``β x_j (1/λ − (1/λ − 1) P_j|k − P_j)``; within a nest ``−β x_m ((1/λ − 1) P_m|k + P_m)``;
    across nests ``−β x_m P_m`` (IIA's, as in the logit)."""
    data, model, fit = swissmetro_ml
    sub = data.subset(slice(0, 50))
    posterior = pmx.PosteriorFit(model, _one_draw(model, fit), data)
    E = pmx.diagnostics.elasticities(posterior, "cost", sub, kind="situation")["estimate"].values
    lam, beta = float(fit.x["lambda"][0]), float(fit.x["beta"][1])
    p = posterior.predict(sub).values[0, 0]
    x = sub.attribute("cost")
    nest = np.array([0, 1, 0])  # train, Swissmetro, car
    share = np.array([[p[n, nest == nest[m]].sum() for m in range(3)] for n in range(len(p))])
    conditional = np.where(share > 0, p / np.where(share > 0, share, 1), 0)
    for j in range(3):
        for m in range(3):
            if j == m:
                inner = (1 / lam - 1) * conditional[:, j] if nest[j] == 0 else 0.0
                expected = beta * x[:, j] * ((1 / lam if nest[j] == 0 else 1) - inner - p[:, j])
            elif nest[j] == nest[m]:
                expected = -beta * x[:, m] * ((1 / lam - 1) * conditional[:, m] + p[:, m])
            else:
                expected = -beta * x[:, m] * p[:, m]
            both = sub.available[:, j] & sub.available[:, m]
            np.testing.assert_allclose(E[both, j, m], expected[both], rtol=1e-8, atol=1e-12)
    # within the nest the cross-elasticities exceed those across nests (less IIA)
    both = sub.available.all(axis=1)
    assert (E[both, 0, 2] > E[both, 1, 2]).all()


def _one_draw(model, fit):
    """The maximum-likelihood estimate as a one-chain, one-draw posterior."""
    import xarray as xr

    post = {name: xr.DataArray(np.asarray(fit.x[name])[None, None], dims=("chain", "draw", *dims),
                               coords={d: list(model.coords[d]) for d in dims})
            for name, dims in (("alpha", ("asc",)), ("beta", ("coefficient",)), ("lambda", ("nest",)))}
    return xr.DataTree.from_dict({"posterior": xr.Dataset(post)})


@pytest.mark.parametrize(("nests", "message"), [
    ({"public": ["bus", "train"], "private": ["train", "car"]}, "alternative 'train' is in two nests"),
    ({"public": ["bus", "boat"]}, "nest 'public': unknown alternative 'boat'"),
    ({"air": ["bus", "train"]}, "nest 'air' is named like an alternative"),
    ({"public": []}, "nest 'public' has no alternatives"),
    ({"one": ["bus"]}, "no nest holds two or more alternatives"),
    ({"all": ["air", "train", "bus", "car"]}, "nest 'all' holds every alternative"),
    ((("a", ["bus", "train"]), ("a", ["car", "air"])), "two nests are named 'a'"),
])
def test_bad_nests_raise_naming_the_fault(travel_mode, nests, message):
    with pytest.raises(SpecificationError, match=message):
        pmx.build_model(travel_mode, "NL", nests=nests)


def test_nl_needs_nests_and_lambda_is_named_per_nest(travel_mode):
    with pytest.raises(SpecificationError, match="give nests"):
        pmx.build_model(travel_mode, "NL")
    nests = {"public": ["train", "bus"], "private": ["car", "air"]}
    model = pmx.build_model(travel_mode, "MXL-1", nests=nests)
    assert model.named_vars_to_dims["lambda"] == ("nest",)
    assert list(model.coords["nest"]) == ["public", "private"]


@pytest.mark.parametrize("lam", [0.3, 0.6])
def test_maximum_likelihood_recovers_lambda(lam):
    data, truth = simulate_nested_choices(lam, n_situations=2000, seed=3)
    fit = ml_estimate(pmx.build_model(data, "NL", nests=truth["nests"]))
    se = np.sqrt(np.diag(np.linalg.inv(fit.hess)))
    estimate = fit.parameters.to_numpy()
    lambdas = estimate[-2:]
    se[-2:] *= lambdas * (1 - lambdas)  # the logit of λ to λ
    z = (estimate - np.concatenate([truth["alpha"], truth["beta"], truth["lambda"]])) / se
    assert (np.abs(z) < 3.5).all(), z


@pytest.mark.slow
@pytest.mark.parametrize("lam", [0.3, 0.6, 1.0])
def test_posterior_recovers_lambda(lam):
    data, truth = simulate_nested_choices(lam, n_situations=2000, seed=3)
    model = pmx.build_model(data, "NL", nests=truth["nests"])
    idata = pmx.sample(model, draws=400, tune=500, chains=2, cores=1, random_seed=1, progressbar=False,
                       nuts_sampler="pymc", compute_convergence_checks=False)
    post = idata["posterior"]
    for name in ("alpha", "beta", "lambda"):
        mean, sd = (getattr(post[name], f)(("chain", "draw")).values for f in ("mean", "std"))
        z = np.abs(mean - truth[name]) / sd
        assert (z < 3.5).all(), (name, mean, sd, truth[name])
    assert float(post["lambda"].sel(nest="A").std()) < 0.1  # informative at these sizes


@pytest.mark.slow
def test_posterior_with_flat_priors_lands_on_the_maximum_likelihood(swissmetro_ml):
    data, _, fit = swissmetro_ml
    model = pmx.build_model(data, "NL", reference="swissmetro", nests=NESTS,
                            priors={"alpha": Prior("Flat"), "beta": Prior("Flat")})
    idata = pmx.sample(model, draws=500, tune=500, chains=2, cores=1, random_seed=2, progressbar=False,
                       nuts_sampler="pymc", compute_convergence_checks=False)
    post = idata["posterior"]
    for name in ("alpha", "beta", "lambda"):
        mean, sd = (getattr(post[name], f)(("chain", "draw")).values for f in ("mean", "std"))
        assert (np.abs(mean - fit.x[name]) < 0.5 * sd).all(), (name, mean, fit.x[name], sd)
