"""The builder's record of what it put into a model: specification, graph and latent deviations,
found from the model alone (no variable-name lookups)."""

import gc
import weakref

import numpy as np
import pymc as pm
import pytest
from pymc_extras.prior import Prior

import pymc_maxent as pmx
from pymc_maxent.bayes.build import ChoiceGraph, choice_graph
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.specification import as_spec


@pytest.fixture(scope="module")
def panel():
    data, _ = pmx.simulate_choices("MNL-2", n_individuals=8, n_situations=3, seed=2)
    return data


def evaluate(model, outputs, point, extra=()):
    """The graphs (of the model's random variables) at the values of ``point`` (and of the
    plain inputs ``extra``, name -> value)."""
    outputs = model.replace_rvs_by_values(outputs)
    inputs = [*model.value_vars, *(v for v, _ in extra)]
    return model.compile_fn(outputs, inputs=inputs, on_unused_input="ignore")(
        point | {v.name: value for v, value in extra})


def test_mixed_model_graph(panel):
    priors = {"mu": Prior("Normal", mu=0, sigma=2)}
    # non-centred: the point below gives ``mu`` itself (under "auto" NUTS sees it whitened)
    model = pmx.build_model(panel, "MXL-4", attributes=["x0"], priors=priors, reference="alt0",
                            store_probabilities=True, parameterization="non-centred")
    graph = choice_graph(model)
    assert isinstance(graph, ChoiceGraph)
    assert graph.spec == as_spec("MXL-4", ["x0"], reference="alt0")
    assert graph.resolved.random_labels == ["asc[alt1]", "asc[alt2]", "x0[alt0]", "x0[alt1]", "x0[alt2]"]
    assert graph.priors == priors and graph.g_prior is None
    assert graph.containers.X is model["X"] and graph.containers.individual is model["individual_index"]
    assert (graph.individual, graph.situation) == (model["z"], model["z_situation"])
    # new individuals' deviations are an input of the prediction graph, not sampled
    assert graph.new_individual.name == "z_new" and "z_new" not in model.named_vars
    assert graph.new_individual not in model.free_RVs
    point = model.initial_point() | {"mu": np.array([0.5, -0.5, 1.0, -1.0, 0.3])}
    U, p, stored = evaluate(model, [graph.utility, graph.p, model["p"]], point,
                            [(graph.new_individual, np.zeros((0, 5)))])
    np.testing.assert_allclose(stored, p, rtol=1e-14)  # the stored p: the fitted situations' prediction
    # at z = 0 every situation's coefficients are mu: U is the population utility
    asc = np.array([0.0, 0.5, -0.5])
    expected = asc + panel.X[:, :, 0] * np.array([1.0, -1.0, 0.3])
    np.testing.assert_allclose(U, expected, rtol=1e-12)
    e = np.exp(expected - expected.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-12)


def test_fixed_model_graph_without_stored_probabilities(panel):
    model = pmx.build_model(panel, "MNL-2", g_prior=50.0, store_probabilities=False)
    graph = choice_graph(model)
    assert "p" not in model.named_vars and graph.p is not None
    assert graph.g_prior == 50.0 and graph.priors == {}
    assert graph.individual is graph.new_individual is graph.situation is None
    point = model.initial_point() | {"theta": np.array([0.2, -0.1, 1.0, 2.0])}
    p = evaluate(model, [graph.p], point)[0]
    U = np.array([0.2, -0.1, 0.0]) + panel.X @ np.array([1.0, 2.0])
    e = np.exp(U)
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-12)


def test_models_not_built_here_are_refused():
    with pm.Model() as model:
        pm.Normal("x")
    with pytest.raises(SpecificationError, match="was not built by pymc_maxent"):
        choice_graph(model)


def test_the_record_goes_with_its_model(panel):
    """The record holds no reference to its model: both go when the model does."""
    model = pmx.build_model(panel, "MXL-1")
    record = weakref.ref(choice_graph(model))
    model_ref = weakref.ref(model)
    del model
    gc.collect()
    assert model_ref() is None and record() is None
