"""Standard errors of the dual agree with a bootstrap on simulated data."""

import numpy as np

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.containers import set_choice_data
from pymc_maxent.maxent import MaxEntEstimator
from pymc_maxent.simulate import simulate_choices


def test_standard_errors_match_bootstrap():
    data, _ = simulate_choices("MNL-2", n_individuals=1000, n_alternatives=3, n_attributes=2, seed=5)
    est = MaxEntEstimator(data)
    res = est.fit()
    rng = np.random.default_rng(2024)
    draws = []
    for _ in range(150):
        idx = rng.integers(0, data.n_situations, data.n_situations)
        boot = ChoiceData.from_arrays(data.X[idx], data.chosen[idx], available=data.available[idx],
                                      alternatives=data.alternatives, attributes=data.attributes)
        set_choice_data(boot, est.model)  # same containers, no recompilation
        fit = est.fit()
        assert fit.converged
        draws.append(fit.beta)
    sd = np.std(draws, axis=0, ddof=1)
    # 150 replicates: the bootstrap SD is within ~6% of its own expectation
    np.testing.assert_array_less(np.abs(sd / res.se - 1.0), 0.2)
    np.testing.assert_array_less(np.abs(sd / res.se_robust - 1.0), 0.2)
    # and the bootstrap mean sits on the estimate
    np.testing.assert_array_less(np.abs(np.mean(draws, axis=0) - res.beta), 3 * res.se / np.sqrt(150) + 0.02)
