"""``pmx.sample`` with its default NUTS (nutpie, compiled with numba) recovers MNL-2's truth."""

import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.bayes.sample import DEFAULT_SAMPLER


@pytest.mark.slow
def test_default_sampler_recovers_mnl2():
    assert DEFAULT_SAMPLER == "nutpie"
    # 600 situations, 3 alternatives: constants in (-1, 1), coefficients of ±(0.5-1.5) per SD of x
    data, truth = pmx.simulate_choices("MNL-2", n_individuals=600, n_alternatives=3, n_attributes=2, seed=21)
    model = pmx.build_model(data, "MNL-2", store_probabilities=False)
    # ~40 s on two cores, most of it numba compiling the model
    idata = pmx.sample(model, draws=500, tune=500, chains=2, random_seed=21, progressbar=False)
    assert idata["posterior"].attrs["inference_library"] == "nutpie"
    posterior = idata["posterior"]
    for name in ("alpha", "beta"):
        mean = posterior[name].mean(("chain", "draw")).values
        sd = posterior[name].std(("chain", "draw")).values
        z = np.abs(mean - truth[name]) / sd
        assert (z < 3.5).all(), f"{name}: truth {truth[name]}, mean {mean}, sd {sd}"
        assert (sd < 0.3).all(), f"{name}: uninformative posterior sd {sd}"
    assert int(idata["sample_stats"]["diverging"].sum()) == 0
    assert idata["log_likelihood"]["chosen"].sizes["situation"] == 600
