"""Fixtures shared by the diagnostics tests."""

import pytest

import pymc_maxent as pmx
from pymc_maxent.data.simulate import simulate_electricity_panel


@pytest.fixture(scope="session")
def electricity_maxent():
    """Train's electricity design (coefficients near ±10, an unbalanced panel of 40 individuals)
    and two MaxEnt mixed logits of it: the default individual support and a wide one (4.0, more
    pooling toward the population)."""
    data, spec, _ = simulate_electricity_panel(40, n_situations=12, seed=3)
    return (data, spec, pmx.fit_maxent(data, tier=spec),
            pmx.fit_maxent(data, tier=spec, individual_support=4.0))
