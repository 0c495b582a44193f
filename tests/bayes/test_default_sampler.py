"""``pmx.sample`` with its default NUTS (nutpie, compiled with numba) recovers MNL-2's truth."""

import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.bayes.sample import DEFAULT_SAMPLER


def assert_recovered(idata, truth, name, z_max=3.5):
    """Assert the truth within ``z_max`` posterior SDs of the posterior mean; return the SDs."""
    posterior = idata["posterior"][name]
    mean, sd = posterior.mean(("chain", "draw")).values, posterior.std(("chain", "draw")).values
    z = np.abs(mean - truth[name]) / sd
    assert (z < z_max).all(), f"{name}: truth {truth[name]}, mean {mean}, sd {sd}"
    return sd


@pytest.mark.slow
def test_default_sampler_recovers_mnl2():
    assert DEFAULT_SAMPLER == "nutpie"
    # 600 situations, 3 alternatives: constants in (-1, 1), coefficients of ±(0.5-1.5) per SD of x
    data, truth = pmx.simulate_choices("MNL-2", n_individuals=600, n_alternatives=3, n_attributes=2, seed=21)
    model = pmx.build_model(data, "MNL-2", store_probabilities=False)
    # ~40 s on two cores, most of it numba compiling the model
    idata = pmx.sample(model, draws=500, tune=500, chains=2, random_seed=21, progressbar=False)
    assert idata["posterior"].attrs["inference_library"] == "nutpie"
    for name in ("alpha", "beta"):
        sd = assert_recovered(idata, truth, name)
        assert (sd < 0.3).all(), f"{name}: uninformative posterior sd {sd}"
    assert int(idata["sample_stats"]["diverging"].sum()) == 0
    assert idata["log_likelihood"]["chosen"].sizes["situation"] == 600


@pytest.mark.slow
def test_default_sampler_recovers_a_realistic_mixed_logit():
    """The fused likelihood under ``pmx.sample``'s defaults (nutpie, 500 tuning steps) on the
    electricity design: prices of 7-9, means near ±10 and SDs near 2.5."""
    from pymc_maxent.simulate import simulate_electricity_panel

    data, spec, truth = simulate_electricity_panel(150, seed=5)
    model = pmx.build_model(data, spec)
    idata = pmx.sample(model, draws=500, chains=2, random_seed=5, progressbar=False)
    for name in ("mu", "sigma"):
        assert_recovered(idata, truth, name)
    tod_seas = idata["posterior"]["mu"].mean(("chain", "draw")).values[4:]
    assert np.abs(tod_seas - truth["mu"][4:]).max() < 3.0  # means near -9.7
    assert int(idata["sample_stats"]["diverging"].sum()) <= 5
    assert idata["log_likelihood"]["chosen"].sizes["situation"] == data.n_situations
