"""TravelMode: one data object feeds the Bayesian MNL and MaxEnt; pm.set_data moves both."""

import numpy as np
import pymc as pm
import pytest
from pymc_extras.prior import Prior

from pymc_maxent.bayes.build import build_model
from pymc_maxent.data.containers import set_choice_data
from pymc_maxent.data.travel_mode import load_travel_mode
from pymc_maxent.maxent import fit_maxent

FLAT = {"alpha": Prior("Flat"), "beta": Prior("Flat")}


@pytest.fixture(scope="module")
def fitted():
    data = load_travel_mode()
    model = build_model(data, "MNL-2", priors=FLAT, store_probabilities=True)
    mle = pm.find_MAP(model=model, progressbar=False)
    res = fit_maxent(data, model=model)
    res0 = fit_maxent(data, model=model, error_support=None)  # zero noise: the MLE
    return data, model, {"alpha": mle["alpha"], "beta": mle["beta"]}, res, res0


def test_estimates_line_up(fitted):
    data, model, mle, res, _ = fitted
    assert res.converged and res.max_violation < 1e-8
    tree = res.to_datatree()
    post = tree["posterior"]
    assert list(post["beta"].coords["coefficient"].values) == list(model.coords["coefficient"])
    assert list(post["alpha"].coords["asc"].values) == list(model.coords["asc"])
    assert post["beta"].dims == ("chain", "draw", "coefficient")
    assert "NOT a Bayesian posterior" in post.attrs["pseudo_posterior"]
    # default noise 3 points on ±1/√210: close to the MLE, shrunk toward zero
    est = tree["maxent"]["beta"].values
    assert np.all(np.abs(est) <= np.abs(mle["beta"]) + 1e-12)
    np.testing.assert_allclose(est, mle["beta"], atol=3 * res.se[:3].max())
    # the pseudo-posterior is N(β̂, Cov)
    np.testing.assert_allclose(post["beta"].std(("chain", "draw")), res.se[:3], rtol=0.1)
    assert tree["maxent"]["p"].dims == ("situation", "alternative")
    # arviz reads the pseudo-posterior like any posterior
    import arviz as az

    table = az.summary(tree, var_names=["beta"])
    assert list(table.index) == [f"beta[{c}]" for c in model.coords["coefficient"]]
    np.testing.assert_allclose(table["mean"].to_numpy(float), est, atol=3 * res.se[:3].max() / 10)


def test_price_change_moves_both(fitted):
    data, model, mle, res, res0 = fitted
    p_bayes = model.compile_fn(model["p"], inputs=[model["alpha"], model["beta"]], point_fn=False)
    before_b = p_bayes(mle["alpha"], mle["beta"])
    before_m = res.predict().values[0, 0]
    before_0 = res0.predict().values[0, 0]
    np.testing.assert_allclose(before_m, res.p, atol=1e-12)
    gc = data.attribute("gc").copy()
    gc[:, data.alternative_index("air")] *= 1.5
    dearer = data.with_attribute("gc", gc)
    with model:
        pm.set_data({"X": dearer.X})
    after_b = p_bayes(mle["alpha"], mle["beta"])
    after_m = res.predict().values[0, 0]  # the same containers: no new data passed
    after_0 = res0.predict().values[0, 0]
    air = data.alternative_index("air")
    assert after_b[:, air].mean() < before_b[:, air].mean() - 0.01
    assert after_m[:, air].mean() < before_m[:, air].mean() - 0.01
    # zero-noise MaxEnt is the MLE: the same predictions before and after, situation by situation
    np.testing.assert_allclose(before_0, before_b, atol=1e-5)
    np.testing.assert_allclose(after_0, after_b, atol=1e-5)
    # new situations: predicted, and the shared containers left as they were
    sub = data.subset(slice(0, 5))
    pred = res.predict(sub)
    assert pred.dims == ("chain", "draw", "situation", "alternative") and pred.shape == (1, 1, 5, 4)
    assert list(pred.coords["situation"].values) == sub.situations.tolist()
    np.testing.assert_allclose(p_bayes(mle["alpha"], mle["beta"]), after_b, rtol=0, atol=0)
    set_choice_data(data, model)  # restore


def test_fit_uses_data_even_after_the_model_moved(fitted):
    data, model, _, res, _ = fitted
    dearer = data.with_attribute("gc", 1.1 * data.attribute("gc"))
    set_choice_data(dearer, model)  # e.g. left there by a counterfactual prediction
    again = fit_maxent(data, model=model)
    np.testing.assert_allclose(again.beta, res.beta, rtol=1e-8)
    np.testing.assert_array_equal(model["X"].get_value(), data.X)
