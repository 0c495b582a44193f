"""``individual_support="select"``: the width by held-out log score, where the design note's
default pools too little (several random components per individual, few situations)."""

import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.diagnostics.counterfactuals import change_attribute
from pymc_maxent.maxent import SUPPORT_WIDTHS, split_within_individuals


@pytest.fixture(scope="module")
def over_parameterised():
    """An MXL-2 panel at realistic scales (a quality index whose coefficient has mean -10, a
    price in the hundreds) fitted as MXL-3: 8 random components, 12 situations per individual."""
    data, _ = pmx.simulate_choices("MXL-2", n_individuals=100, n_situations=16, n_alternatives=3,
                                   truth={"mu": np.array([0.8, -0.5, -2.5, -1.5]),
                                          "sigma": np.array([1.0, 1.0, 0.6, 0.6])}, seed=7)
    data = change_attribute(change_attribute(data, "x0", scale=0.25), "x1", scale=100.0, shift=300.0)
    return split_within_individuals(data, 0.25, seed=7)


def log_score(fit, test):
    p = fit.predict(test).values[0, 0]
    return float(np.log(p[np.arange(test.n_situations), test.chosen]).mean())


def test_selected_width_predicts_the_individuals_held_out_choices_better(over_parameterised):
    train, test = over_parameterised
    default = pmx.fit_maxent(train, tier="MXL-3", individual_support="default")  # the design note's rule
    chosen = pmx.fit_maxent(train, tier="MXL-3", individual_support="select")
    table = chosen.support_selection
    width = chosen.options["individual_support"]
    assert list(table.index[:-1]) == list(SUPPORT_WIDTHS) and table.loc[width, "best"]
    assert width > 1.0  # more pooling than the default rule
    same = pmx.fit_maxent(train, tier="MXL-3", individual_support=width)
    # equal to the last digits (one may run the interpreted dual and the other the compiled one)
    np.testing.assert_allclose(chosen.beta_individual, same.beta_individual, rtol=1e-10, atol=1e-12)
    # on situations the selection never saw, the chosen width beats the default clearly
    assert log_score(chosen, test) > log_score(default, test) + 0.03
    assert chosen.refit(train).options["individual_support"] == width  # refits keep the width
