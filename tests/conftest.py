"""Shared fixtures and settings of the test suite.

``pytest -m "not slow"`` (``make test-fast``) skips the recovery fits, the notebooks, the docs
build and the command-line demo; ``make test`` (CI) runs everything.
"""

import pytest

import pymc_maxent as pmx

#: PyMC's own NUTS, quiet, without the convergence checks that small test runs would fail.
PYMC_NUTS = {"cores": 1, "progressbar": False, "nuts_sampler": "pymc", "compute_convergence_checks": False}


def sample_settings(draws: int, tune: int, chains: int = 2, **extra) -> dict:
    """Keyword arguments of a small test fit with PyMC's NUTS (``pmx.sample`` / ``ChoiceModel.fit``)."""
    return {"draws": draws, "tune": tune, "chains": chains, **PYMC_NUTS, **extra}


@pytest.fixture(scope="session")
def travel_mode():
    """Greene & Hensher's TravelMode, bundled: 210 situations, 4 alternatives, 3 attributes."""
    return pmx.load_travel_mode()


@pytest.fixture(scope="session")
def small_panel():
    """A seeded MXL-1 panel: 60 individuals x 6 situations x 3 alternatives, 2 attributes, with
    coefficients on realistic scales, and its true parameters."""
    data, truth = pmx.simulate_choices(
        "MXL-1", n_individuals=60, n_situations=6, n_alternatives=3, n_attributes=2, seed=11
    )
    return data, truth


@pytest.fixture(scope="session")
def electricity_maxent():
    """Train's electricity design (coefficients near ±10, an unbalanced panel of 40 individuals)
    and two MaxEnt mixed logits of it: the default individual support and a wide one (4.0, more
    pooling toward the population)."""
    from pymc_maxent.simulate import simulate_electricity_panel

    data, spec, _ = simulate_electricity_panel(40, n_situations=12, seed=3)
    return (data, spec, pmx.fit_maxent(data, tier=spec, individual_support="default"),
            pmx.fit_maxent(data, tier=spec, individual_support=4.0))
