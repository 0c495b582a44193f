"""MaxEntResult as a Fit: estimates, parameter draws, predictions that leave the containers as
they were, the probability graph and the parameter samples of the evaluator."""

import numpy as np
import pandas as pd
import pytensor
import pytest
import xarray as xr
from scipy import stats

import pymc_maxent as pmx
from pymc_maxent.evaluation import ParameterSamples, ProbabilityGraph
from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.fit import Fit
from pymc_maxent.maxent import AttributeSums, Constraint, MaxEntEstimator, fit_maxent, load_fit

CONTAINERS = ("X", "available", "chosen_index", "individual_index")


@pytest.fixture(scope="module")
def shared(travel_mode):
    """MaxEnt fitted on the containers of a Bayesian MNL-2."""
    model = pmx.build_model(travel_mode, "MNL-2")
    return travel_mode, model, fit_maxent(travel_mode, model=model)


def held(model):
    return {name: model[name].get_value().copy() for name in CONTAINERS} | {
        "situation": list(model.coords["situation"])}


def assert_held(model, before):
    after = held(model)
    assert after["situation"] == before["situation"]
    for name in CONTAINERS:
        assert after[name].dtype == before[name].dtype, name
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def logit(data, res):
    """The default moments' choice probabilities by hand: softmax of ``X β + α`` (α_car = 0)."""
    names = res.parameter_names()
    beta = np.array([res.beta[names.index(f"beta[{a}]")] for a in data.attributes])
    alpha = np.array([res.beta[names.index(f"alpha[{a}]")] if f"alpha[{a}]" in names else 0.0
                      for a in data.alternatives])
    U = np.where(data.available, data.X @ beta + alpha, -np.inf)
    p = np.exp(U - U.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def test_fit_attributes(shared):
    data, model, res = shared
    assert isinstance(res, Fit)
    assert res.model is model and res.data is data and res.estimator == "maxent"
    assert isinstance(res.problem, MaxEntEstimator) and res.problem.model is model
    assert res.spec == tuple(res.problem.moments.moments)
    assert [type(m).__name__ for m in res.spec] == ["AttributeSums", "AlternativeShares"]


def test_estimates(shared):
    _, _, res = shared
    table = res.estimates(hdi_prob=0.9)
    assert list(table.index) == res.parameter_names()
    assert list(table.columns) == ["estimate", "sd", "lower", "upper", "se_robust", "z", "p_value", "moment",
                                   "gme", "sd_gme"]
    # the bias-corrected centre and its standard errors; GME as written beside them
    np.testing.assert_allclose(table["estimate"], res.beta_corrected)
    np.testing.assert_allclose(table["sd"], res.se_corrected)
    np.testing.assert_allclose(table["upper"] - table["estimate"], stats.norm.ppf(0.95) * res.se_corrected)
    np.testing.assert_allclose(table["estimate"] - table["lower"], stats.norm.ppf(0.95) * res.se_corrected)
    assert list(table["moment"]) == res.labels
    np.testing.assert_allclose(table["se_robust"], res.se_corrected_robust)
    np.testing.assert_allclose(table["gme"], res.beta)
    np.testing.assert_allclose(table["sd_gme"], res.se)
    with pytest.raises(MaxEntError, match="hdi_prob"):
        res.estimates(hdi_prob=1.5)


def test_parameter_draws(shared):
    data, model, res = shared
    ds = res.parameter_draws(draws=4000, random_seed=3)
    assert ds["beta"].dims == ("chain", "draw", "coefficient")
    assert ds["alpha"].dims == ("chain", "draw", "asc")
    assert dict(ds["beta"].sizes) == {"chain": 1, "draw": 4000, "coefficient": 3}
    assert list(ds["beta"]["coefficient"].values) == list(model.coords["coefficient"])
    assert list(ds["alpha"]["asc"].values) == list(model.coords["asc"])
    # draws of GME's multipliers, the solution its predictions use (estimates()'s gme columns)
    est = res.estimates().loc[[f"beta[{c}]" for c in model.coords["coefficient"]]]
    mean, sd = ds["beta"].mean(("chain", "draw")).values, ds["beta"].std(("chain", "draw")).values
    np.testing.assert_array_less(np.abs(mean - est["gme"].values), 4 * est["sd_gme"].values / np.sqrt(4000))
    np.testing.assert_allclose(sd, est["sd_gme"].values, rtol=0.1)
    # the same draws as the pseudo-posterior of to_datatree (one chain)
    post = res.to_datatree(chains=1, draws=4000, random_seed=3)["posterior"].to_dataset()
    xr.testing.assert_allclose(post["beta"], ds["beta"])
    robust = res.parameter_draws(draws=4000, random_seed=3, robust=True)
    np.testing.assert_allclose(robust["beta"].std(("chain", "draw")), res.se_robust[:3], rtol=0.1)


def test_predict_leaves_the_shared_containers_as_they_were(shared):
    data, model, res = shared
    before = held(model)
    sub = data.subset(np.arange(0, 210, 7))
    p = res.predict(sub)
    assert p.dims == ("chain", "draw", "situation", "alternative")
    assert p.shape == (1, 1, sub.n_situations, 4)
    assert list(p["chain"].values) == [0] and list(p["draw"].values) == [0]
    assert list(p["situation"].values) == sub.situations.tolist()
    np.testing.assert_allclose(p.values[0, 0], logit(sub, res), atol=1e-12)
    assert_held(model, before)
    # the estimator's own prediction restores them too, and the fit is unchanged afterwards
    res.problem.predict(res.lam, sub)
    assert_held(model, before)
    np.testing.assert_allclose(res.predict().values[0, 0], res.p, atol=1e-14)
    np.testing.assert_allclose(res.problem.fit().beta, res.beta, rtol=1e-12)


def test_predict_draws(shared):
    data, model, res = shared
    before = held(model)
    sub = data.subset(slice(0, 4))
    p = res.predict(sub, draws=300, random_seed=5)
    assert dict(p.sizes) == {"chain": 1, "draw": 300, "situation": 4, "alternative": 4}
    np.testing.assert_array_equal(p.values, res.predict(sub, draws=300, random_seed=5).values)
    np.testing.assert_allclose(p.sum("alternative"), 1.0, atol=1e-12)
    assert p.std("draw").min() > 0
    np.testing.assert_allclose(p.mean(("chain", "draw")), logit(sub, res), atol=0.03)
    assert_held(model, before)


def test_probability_graph(shared):
    data, model, res = shared
    graph = res.probability_graph()
    assert isinstance(graph, ProbabilityGraph) and len(graph.parameters) == 1
    assert graph.containers is res.problem.containers
    p, U = pytensor.function(list(graph.parameters), [graph.p, graph.utility])(res.lam)
    np.testing.assert_allclose(p, res.p, atol=1e-12)
    np.testing.assert_allclose(U - U[:, -1:], np.log(res.p / res.p[:, -1:]), atol=1e-9)


def test_probability_graph_needs_the_direct_dual(travel_mode):
    support = fit_maxent(travel_mode, probability_support=[0.0, 0.5, 1.0])
    with pytest.raises(MaxEntError, match="direct form"):
        support.probability_graph()
    data = pmx.simulate_choices("MNL-2", n_individuals=20, n_alternatives=3, n_attributes=2, seed=3)[0]

    def squared_share(c, p, eps):
        return (p + eps)[:, 0].sum() ** 2

    primal = fit_maxent(data, [AttributeSums(["x0"]), Constraint("sq", squared_share)], solver="primal")
    with pytest.raises(MaxEntError, match="nonlinear"):
        primal.probability_graph()
    with pytest.raises(MaxEntError, match="no finite covariance"):
        primal.parameter_samples()


@pytest.mark.parametrize("robust", [False, True])
def test_parameter_samples_delta(shared, robust):
    _, _, res = shared
    cov = res.cov_robust if robust else res.cov
    s = res.parameter_samples(robust=robust)
    assert isinstance(s, ParameterSamples)
    C = res.lam.size
    lam = s.values[0]
    assert s.dims == ("delta",) and list(s.coords["delta"]) == list(range(1 + 2 * C)) and s.n == 1 + 2 * C
    np.testing.assert_array_equal(s.weights, np.eye(1, 1 + 2 * C)[0])
    h = 1e-4 * np.sqrt(np.diag(cov))
    np.testing.assert_array_equal(lam[0], res.lam)
    np.testing.assert_allclose(lam[1:C + 1] - res.lam, np.diag(h), rtol=1e-9, atol=0)
    np.testing.assert_allclose(lam[C + 1:] - res.lam, -np.diag(h), rtol=1e-9, atol=0)
    # the delta method of a linear statistic a'λ: a'λ̂ and √(a' Cov a)
    a = np.arange(1.0, C + 1)
    out = s.summarize(xr.DataArray(lam @ a, dims="delta"))
    assert float(out["estimate"]) == pytest.approx(a @ res.lam, rel=1e-12)
    assert float(out["se"]) == pytest.approx(np.sqrt(a @ cov @ a), rel=1e-6)


def test_parameter_samples_draws(shared):
    _, _, res = shared
    s = res.parameter_samples(draws=50, random_seed=2)
    assert s.dims == ("chain", "draw") and s.values[0].shape == (50, res.lam.size)
    assert list(s.coords["chain"]) == [0] and list(s.coords["draw"]) == list(range(50))
    assert s.summarize is None and s.weights.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(s.values[0], res.parameter_samples(draws=50, random_seed=2).values[0])


def test_saved_fit_is_rebuilt_without_refitting(shared, tmp_path):
    data, _, res = shared
    path = tmp_path / "maxent.nc"
    res.to_datatree().to_netcdf(path, engine="h5netcdf")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    again = load_fit(tree, data, res.spec, **res.settings())
    assert again.problem is not res.problem and again.solver == res.solver
    assert (again.converged, again.identified, again.message) == (res.converged, res.identified, res.message)
    assert again.condition_number == res.condition_number
    pd.testing.assert_frame_equal(again.estimates(), res.estimates())
    np.testing.assert_array_equal(again.p, res.p)
    sub = data.subset(slice(3, 9))
    # to the last bit but one: an interpreted evaluator's products may round differently once
    # it has been called on other shapes (BLAS picks its kernel by shape)
    np.testing.assert_allclose(again.predict(sub).values, res.predict(sub).values, rtol=1e-15, atol=0)
    assert again.kl == res.kl and again.hit_rate == res.hit_rate


def test_selection_and_health_numbers(shared):
    data, _, res = shared
    assert res.parameter_count() == {"parameters": 6, "latent": 0}
    p_chosen = res.p[np.arange(data.n_situations), data.chosen]
    assert res.lppd() == pytest.approx(np.log(p_chosen).sum(), rel=1e-12)
    assert res.loo() is None
    health = res.convergence()
    assert health["converged"] is True and health["identified"] is True
    assert health["max_violation"] == res.max_violation and health["iterations"] == res.nit
    uniform = data.available / data.available.sum(1, keepdims=True)
    np.testing.assert_allclose(res.prior_probabilities(), uniform)
