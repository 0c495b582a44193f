"""The MaxEnt dual as a Dask map-reduce equals the in-memory dual (λ̂, SEs, p̂ to 1e-8)."""

import dask.array as da
import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.maxent import AlternativeShares, AttributeSums, Constraint, CrossMoments, Revenue
from pymc_maxent.maxent.dask_backend import fit_maxent_dask

distributed = pytest.importorskip("distributed")

ROWS = 3000  # situations per block: 4 blocks over the 2 workers, each evaluated in 2 chunks


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def data():
    d, _ = pmx.simulate_choices("MNL-2", n_individuals=12_000, n_alternatives=3, n_attributes=2,
                                unavailable=0.15, seed=11)
    return d


def dask_fit(d, client, **kw):
    return fit_maxent_dask(
        da.from_array(d.X, chunks=(ROWS, -1, -1)), da.from_array(d.available, chunks=ROWS),
        da.from_array(d.chosen, chunks=ROWS), alternatives=d.alternatives, attributes=d.attributes,
        client=client, chunk_size=1500, **kw,
    )


def assert_same(res, ref):
    assert res.converged and ref.converged
    assert res.parameter_names() == ref.parameter_names()
    np.testing.assert_allclose(res.lam, ref.lam, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.se, ref.se, rtol=1e-8)
    np.testing.assert_allclose(res.se_robust, ref.se_robust, rtol=1e-8)
    np.testing.assert_allclose(res.p.compute(), ref.p, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.dual_value, ref.dual_value, rtol=1e-10)
    assert res.identified and ref.identified and res.message.startswith("converged")
    np.testing.assert_allclose(res.condition_number, ref.condition_number, rtol=1e-6)
    np.testing.assert_allclose(res.information_condition_number, ref.information_condition_number, rtol=1e-6)
    np.testing.assert_allclose(res.estimates().drop(columns="moment"), ref.estimates().drop(columns="moment"),
                               rtol=1e-8)


@pytest.mark.parametrize(
    "moments, error_support",
    [
        (None, "default"),  # attribute sums + shares, the twin of MNL-2
        ([Revenue("x0")], "default"),
        ([AttributeSums(["x0"]), CrossMoments("x1"), AlternativeShares("alt0")], None),
    ],
    ids=["default", "revenue", "cross-no-noise"],
)
def test_dask_dual_equals_in_memory(client, data, moments, error_support):
    ref = pmx.fit_maxent(data, moments, error_support=error_support)
    res = dask_fit(data, client, moments=moments, error_support=error_support)
    assert_same(res, ref)
    assert res.summary().index.tolist() == ref.summary().index.tolist()


def test_compiled_once_per_worker(client, data):
    dask_fit(data, client)
    from pymc_maxent.maxent import dask_backend as mod

    counts = client.run(lambda: len(mod._PROBLEMS))
    # one compiled problem per configuration fitted in this module (3), never per task
    assert all(n <= 3 for n in counts.values()), counts


def test_unsupported_and_bad_input(data):
    X = da.from_array(data.X, chunks=(ROWS, -1, -1))
    kw = dict(alternatives=data.alternatives, attributes=data.attributes)
    with pytest.raises(MaxEntError, match="user constraints"):
        fit_maxent_dask(X, data.available, data.chosen,
                        moments=[Constraint("c", lambda c, p, e: p.sum())], **kw)
    chosen = np.array(data.chosen)
    chosen[5] = 7
    with pytest.raises(MaxEntError, match="out of range"):
        fit_maxent_dask(X, data.available, chosen, **kw)
    Xbad = np.array(data.X)
    Xbad[3, 0, 1] = np.nan
    with pytest.raises(MaxEntError, match="'x1'"):
        fit_maxent_dask(Xbad, np.ones_like(data.available), data.chosen, **kw)
