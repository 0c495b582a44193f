"""Greene's conditional logit on TravelMode (Greene, Econometric Analysis, and the
LIMDEP manual): the MNL-2 builder at the MAP under flat priors is the MLE."""

import numpy as np
from pymc_extras.prior import Prior

import pymc_maxent as pmx
from pymc_maxent.bayes.point import map_estimate

# Published estimates, to their printed digits.
PUBLISHED = {
    "gc": -0.01550, "ttme": -0.09612, "hinc_air": 0.01329,
    "air": 5.2074, "train": 3.8690, "bus": 3.1632,
}
PUBLISHED_LOGLIK = -199.128


def test_mnl2_map_reproduces_greene():
    data = pmx.load_travel_mode(["gc", "ttme", "hinc_air"])
    model = pmx.build_model(data, "MNL-2", reference="car", store_probabilities=True,
                            priors={"alpha": Prior("Flat"), "beta": Prior("Flat")})
    point = map_estimate(model).x
    estimates = dict(zip(model.coords["coefficient"], point["beta"], strict=True))
    estimates |= dict(zip(model.coords["asc"], point["alpha"], strict=True))
    for name, value in PUBLISHED.items():
        decimals = len(f"{value}".split(".")[1])
        assert round(estimates[name], decimals) == value, (name, estimates[name])
    free = {"alpha": point["alpha"], "beta": point["beta"]}
    loglik = model.compile_logp(vars=[model["chosen"]])(free)
    assert round(float(loglik), 3) == PUBLISHED_LOGLIK
    # the likelihood is a masked softmax: probabilities of every situation sum to one
    p = model.compile_fn(model["p"], inputs=[model["alpha"], model["beta"]])(free)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
