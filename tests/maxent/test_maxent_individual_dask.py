"""The MaxEnt mixed logit over Dask blocks of individuals equals the in-memory fit (1e-8)."""

import dask
import dask.array as da
import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import ConvergenceWarning, MaxEntError, SpecificationError
from pymc_maxent.maxent import Constraint
from pymc_maxent.maxent.dask_backend import fit_mixed_maxent_dask, individual_chunks
from pymc_maxent.simulate import simulate_electricity_panel


@pytest.fixture(scope="module")
def electricity():
    """Train's electricity design and scales (coefficients near ±10), unbalanced: 4 to 12
    situations per individual."""
    data, spec, _ = simulate_electricity_panel(150, n_situations=12, short=0.3, seed=3)
    return data, spec


@pytest.fixture(scope="module")
def priced():
    """MXL-3 with a price in the hundreds and a fifth of the alternatives unavailable."""
    d, _ = pmx.simulate_choices("MXL-3", n_individuals=120, n_situations=10, n_attributes=1,
                                unavailable=0.2, seed=5)
    return ChoiceData.from_arrays(100.0 * d.X, d.chosen, available=d.available, individual=d.individual,
                                  alternatives=d.alternatives, attributes=["price"],
                                  individuals=d.individuals)


def unaligned(a):
    """A copy of ``a`` at an odd address, as arrays unpickled from a buffer on a worker can be."""
    out = np.empty(a.nbytes + 1, dtype=np.uint8)[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def dask_fit(data, rows, aligned=True, **kw):
    X = da.from_array(data.X, chunks=(rows, -1, -1))
    return fit_mixed_maxent_dask(
        X if aligned else X.map_blocks(unaligned),
        da.from_array(data.available, chunks=rows),
        da.from_array(data.chosen, chunks=rows), da.from_array(data.individual, chunks=rows),
        alternatives=data.alternatives, attributes=data.attributes, individuals=data.individuals, **kw)


def assert_same(res, ref):
    np.testing.assert_allclose(res.population.lam, ref.population.lam, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.beta_population, ref.beta_population, rtol=1e-8)
    np.testing.assert_allclose(res.beta_individual, ref.beta_individual, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.beta_individual_se, ref.beta_individual_se, rtol=1e-8)
    np.testing.assert_allclose(res.kl_individual, ref.kl_individual, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.information_index_individual, ref.information_index_individual,
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(res.converged_individual, ref.converged_individual)
    np.testing.assert_array_equal(res.nit_individual, ref.nit_individual)
    np.testing.assert_array_equal(res.n_situations_individual, ref.individual_problem.n_situations)
    np.testing.assert_allclose(res.violation_individual, ref.violation_individual, atol=1e-9)
    assert res.convergence() == pytest.approx(ref.convergence(), rel=1e-6, abs=1e-9)
    np.testing.assert_allclose([res.loglik, res.hit_rate, res.kl_total],
                               [ref.loglik, ref.hit_rate, ref.kl_total], rtol=1e-9)
    a, b = res.individual_estimates(), ref.individual_estimates()
    assert a["estimate"].dims == b["estimate"].dims == ("individual", "random_coefficient")
    for dim in a["estimate"].dims:
        assert a[dim].values.tolist() == b[dim].values.tolist()
    np.testing.assert_allclose(a["sd"], b["sd"], rtol=1e-8)
    np.testing.assert_allclose(res.population_summary(), ref.population_summary(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.estimates()[["estimate", "sd"]], ref.estimates()[["estimate", "sd"]],
                               rtol=1e-7)
    assert res.estimates().index.tolist() == ref.estimates().index.tolist()


@pytest.mark.slow  # ~10 s: both fits compile their graphs
def test_mxl1_blocks_cut_mid_individual_are_moved_to_boundaries(electricity):
    data, spec = electricity
    ref = pmx.fit_maxent(data, tier=spec, individual_support="fixed")  # the Dask path's pooling
    with dask.config.set(scheduler="synchronous"):
        res = dask_fit(data, rows=250, tier=spec, individual_chunk=16)
    assert ref.converged and res.converged and ref.n_separated > 0  # separated ones are counted
    assert_same(res, ref)
    np.testing.assert_array_equal(res.separated, ref.separated)
    # several blocks, every boundary at the start of an individual, none left empty
    bounds = np.cumsum(res.chunks)[:-1]
    assert len(res.chunks) >= 5 and min(res.chunks) > 0 and sum(res.chunks) == data.n_situations
    assert (data.individual[bounds] != data.individual[bounds - 1]).all()


def test_mxl3_on_threads_equals_in_memory(priced):
    ref = pmx.fit_maxent(priced, tier="MXL-3", individual_support=2.0)
    assert abs(ref.population.beta).max() > 1e-3 and np.ptp(priced.X) > 300  # price in the hundreds
    with dask.config.set(scheduler="threads", num_workers=2):
        res = dask_fit(priced, rows=300, aligned=False, tier="MXL-3", individual_support=2.0)
    assert res.random_labels == ref.random_labels and len(res.random_labels) == 5  # asc, price[a]
    assert len(res.chunks) == 4
    assert_same(res, ref)
    # what needs the situations in memory is one clear error of the package, not an AttributeError
    from pymc_maxent import diagnostics as dx

    for call in (lambda f: f.predict(priced), lambda f: dx.elasticities(f, "price"),
                 lambda f: dx.model_selection({"dask": f}, priced, folds=2), lambda f: f.to_datatree()):
        for fit in (res, res.population):
            with pytest.raises(MaxEntError, match="fit_maxent"):
                call(fit)


@pytest.mark.filterwarnings("ignore:MaxEnt dual did not converge")
def test_non_convergence_is_reported(electricity):
    data, spec = electricity
    with pytest.warns(ConvergenceWarning):
        ref = pmx.fit_maxent(data, tier=spec, maxiter=3, check_separation=False, individual_support="default")
    with dask.config.set(scheduler="synchronous"), pytest.warns(ConvergenceWarning, match="of 150 indiv"):
        res = dask_fit(data, rows=600, tier=spec, maxiter=3, check_separation=False)
    assert not res.converged and 0 < res.n_converged < res.n_individuals
    assert res.n_converged == ref.n_converged and res.separated is None
    assert "population stage NOT converged" in res.convergence_message()  # stage 1 stopped too
    np.testing.assert_array_equal(res.converged_individual, ref.converged_individual)
    assert res.convergence()["n_converged"] == ref.n_converged


def test_individual_chunks_and_scattered_individuals(electricity):
    data, spec = electricity
    layout = lambda ind: {"n": len(ind), "starts": np.flatnonzero(np.r_[True, ind[1:] != ind[:-1]]),  # noqa: E731
                          "ids": ind[np.flatnonzero(np.r_[True, ind[1:] != ind[:-1]])]}
    ind = np.repeat([0, 1, 2, 3], [5, 2, 9, 3])  # rows 7..15 are individual 2
    chunks = individual_chunks([layout(ind[:6]), layout(ind[6:10]), layout(ind[10:])], list("abcd"))
    assert chunks == (5, 2, 12)  # boundaries 6 and 10 move back to 5 and 7
    chunks = individual_chunks([layout(ind[:8]), layout(ind[8:12]), layout(ind[12:])], list("abcd"))
    assert chunks == (7, 12)  # the middle block holds part of individual 2 only: merged
    order = np.r_[np.arange(20, data.n_situations), np.arange(20)]  # the first individual is split
    assert data.individual[19] == data.individual[20]
    split = data.individuals[data.individual[20]].tolist()
    with pytest.raises(MaxEntError, match=f"individual {split!r} has situations in separate places"):
        fit_mixed_maxent_dask(da.from_array(data.X[order], chunks=(400, -1, -1)), data.available[order],
                              data.chosen[order], data.individual[order], tier=spec,
                              alternatives=data.alternatives, attributes=data.attributes,
                              individuals=data.individuals)


def test_unsupported_specifications(electricity, priced, monkeypatch):
    data, spec = electricity
    with pytest.raises(SpecificationError, match="no random components"):
        dask_fit(priced, rows=300, tier="MNL-2")
    with pytest.raises(SpecificationError, match="MXL-4"):
        dask_fit(priced, rows=300, tier="MXL-4")
    with pytest.raises(MaxEntError, match="individual_support"):
        dask_fit(priced, rows=300, tier="MXL-1", individual_support=-1.0)
    import pymc_maxent.maxent.dask_backend

    monkeypatch.setattr(pymc_maxent.maxent.dask_backend, "twin_moments",
                        lambda spec, data: [Constraint("budget", lambda c, p, e: p.sum())])
    with pytest.raises(MaxEntError, match=r"moments \['Constraint'\] are not supported by the Dask path"):
        dask_fit(priced, rows=300, tier="MXL-1")



def test_tier_is_laid_out_as_on_the_whole_data(priced, electricity):
    """The Dask fit resolves the tier against a template with the data's pattern only."""
    from pymc_maxent.maxent.dask_backend import _layout_template
    from pymc_maxent.specification import as_spec, resolve

    X = np.array(priced.X)
    X[:, 1, 0] = 0.0  # no price for alt1: its alternative-specific coefficient drops out
    absent = ChoiceData.from_arrays(X, priced.chosen, available=priced.available, attributes=["price"],
                                    alternatives=priced.alternatives, individual=priced.individual)
    electric, spec = electricity
    for data, tier in ((absent, "MXL-3"), (absent, "MXL-2"), (electric, spec)):
        nonzero = ((data.X != 0) & data.available[..., None]).any(axis=0)
        template = _layout_template(data.alternatives, data.attributes.tolist(),
                                    data.varies_across_alternatives(), nonzero)
        spec_ = as_spec(tier, data.attributes.tolist())
        a, b = resolve(spec_, template), resolve(spec_, data)
        assert a.random_labels == b.random_labels and a.asc_labels == b.asc_labels
        assert a.random.layout == b.random.layout and a.fixed.layout == b.fixed.layout
    assert "price[alt1]" not in resolve(as_spec("MXL-3", ["price"]), absent).random_labels
    # an attribute constant within situations, yet 0 for alt0 only: not laid out, refused
    with pytest.raises(MaxEntError, match=r"attributes \['income'\] are constant within situations"):
        _layout_template(priced.alternatives, ["income"], np.array([False]),
                         np.array([[False], [True], [True]]))
