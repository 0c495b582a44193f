"""The MaxEnt estimates do not depend on the attributes' origins or units.

A conditional logit is unchanged when a constant is added to an attribute in every available
alternative of a situation (only utility differences matter), and its coefficient rescales when
the attribute does. GME's noise term sees the features centred within situations
(``centre_noise=True``), so both hold for every moment family with and without noise; the
uncentred form of GJP 1996 (``centre_noise=False``) warns, and is shown here to move.
"""

import warnings

import numpy as np
import pytest

import pymc_maxent as pmx
from pymc_maxent.exceptions import MaxEntError, ScaleWarning
from pymc_maxent.maxent import (
    AlternativeShares,
    AttributeSums,
    Constraint,
    CrossMoments,
    MaxEntEstimator,
    OriginWarning,
    Revenue,
    fit_maxent,
)

SHIFT = 100.0
FACTOR = 1e6
PRICE = "gc"
REFERENCE = "car"  # the last alternative: the default reference of the shares


def price_weighted(c, p, eps):
    """A user constraint: the price sum over every alternative, ``Σ gc (p + ε)``."""
    return (c.X[:, :, 0] * (p + eps)).sum()


FAMILIES = {
    "revenue": [Revenue(PRICE)],
    "default": None,  # attribute sums and alternative shares
    "cross": [CrossMoments(PRICE), AlternativeShares()],
    "constraint": [AttributeSums(["ttme"]), Constraint(PRICE, price_weighted)],
}
NOISE = {"gme": "default", "no-noise": None}


def shifted(data, name=PRICE, shift=SHIFT):
    """``shift`` added to attribute ``name`` in every available alternative."""
    return data.with_attribute(name, data.attribute(name) + shift * data.available)


def rescaled(data, name=PRICE, factor=FACTOR):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScaleWarning)  # 1e8-sized prices: warned, on purpose
        return data.with_attribute(name, data.attribute(name) * factor)


def shift_map(names, shift):
    """``T`` with ``θ(shifted) = T θ``: the coefficients are unchanged, except the constants of a
    model with alternative-specific price coefficients, ``α_j − shift·(β_gc[j] − β_gc[ref])``."""
    T = np.eye(len(names))
    for i, name in enumerate(names):
        if name.startswith("alpha[") and f"beta[{PRICE}[{REFERENCE}]]" in names:
            alt = name[len("alpha["):-1]
            T[i, names.index(f"beta[{PRICE}[{alt}]]")] -= shift
            T[i, names.index(f"beta[{PRICE}[{REFERENCE}]]")] += shift
    return T


def scale_map(names, factor):
    """``T`` with ``θ(rescaled) = T θ``: every price coefficient divided by ``factor``."""
    return np.diag([1.0 / factor if PRICE in name else 1.0 for name in names])


def assert_transformed(res, ref, T, rtol=1e-8):
    """``res`` is ``ref`` mapped by ``T``: estimates, and both covariances (their SEs)."""
    assert res.converged and ref.converged
    assert res.parameter_names() == ref.parameter_names()
    np.testing.assert_allclose(res.beta, T @ ref.beta, rtol=rtol, atol=0)
    np.testing.assert_allclose(res.se, np.sqrt(np.diag(T @ ref.cov @ T.T)), rtol=rtol, atol=0)
    np.testing.assert_allclose(res.se_robust, np.sqrt(np.diag(T @ ref.cov_robust @ T.T)), rtol=rtol, atol=0)


@pytest.fixture(scope="module")
def fits(travel_mode):
    """Per (family, noise): fits of TravelMode, with the price shifted, and rescaled (one
    compiled estimator each: the other data are swapped into its containers)."""
    out = {}
    for family, moments in FAMILIES.items():
        for noise, support in NOISE.items():
            est = MaxEntEstimator(travel_mode, moments, error_support=support)
            out[family, noise] = {"original": est.fit(), "shifted": est.fit(data=shifted(travel_mode)),
                                  "rescaled": est.fit(data=rescaled(travel_mode))}
    return out


@pytest.mark.parametrize("noise", NOISE)
@pytest.mark.parametrize("family", FAMILIES)
def test_location_invariance(fits, family, noise):
    """Adding 100 to the price of every alternative leaves the logit, and the estimates, as they
    were (to 1e-8 relative); with cross moments the constants absorb ``100 β_gc[j]``."""
    f = fits[family, noise]
    names = f["original"].parameter_names()
    assert_transformed(f["shifted"], f["original"], shift_map(names, SHIFT))
    np.testing.assert_allclose(f["shifted"].p, f["original"].p, rtol=0, atol=1e-12)


@pytest.mark.parametrize("noise", NOISE)
@pytest.mark.parametrize("family", FAMILIES)
def test_scale_invariance(fits, family, noise):
    """Prices times 1e6: their coefficients and SEs divided by 1e6, the rest unchanged."""
    f = fits[family, noise]
    T = scale_map(f["original"].parameter_names(), FACTOR)
    assert not np.allclose(T, np.eye(len(T)))
    assert_transformed(f["rescaled"], f["original"], T)
    np.testing.assert_allclose(f["rescaled"].p, f["original"].p, rtol=0, atol=1e-12)


def test_the_noise_enters_the_moments_centred(fits, travel_mode):
    """``ε̂`` as it enters the moments adds up to 0 within each situation, as ``y = p + ε`` implies,
    and the moments hold with it."""
    res = fits["default", "gme"]["original"]
    np.testing.assert_allclose(res.eps.sum(axis=1), 0.0, atol=1e-15)
    assert np.abs(res.eps).max() > 1e-3
    F = travel_mode.X
    resid = np.einsum("ijc,ij->c", F, travel_mode.chosen_onehot - res.p - res.eps)
    assert np.abs(resid).max() < 1e-8 * np.abs(F).sum()


@pytest.fixture(scope="module")
def uncentred(travel_mode):
    """GJP 1996 as written, the revenue constraint: the estimator (built under the warning)."""
    with pytest.warns(OriginWarning, match="depend on the attributes' origins") as caught:
        est = MaxEntEstimator(travel_mode, [Revenue(PRICE)], centre_noise=False)
    assert len(caught) == 1
    return est


def test_uncentred_noise_warns_and_depends_on_the_origin(uncentred, fits, travel_mode):
    """GJP 1996 as written weighs the moments by the features' levels: it warns (a ScaleWarning),
    and the shift moves its price coefficient by more than a standard error (measured: 1.45;
    adding 1000 flips the default moments' sign of beta[gc])."""
    assert issubclass(OriginWarning, ScaleWarning) and uncentred.options["centre_noise"] is False
    original, moved = uncentred.fit(), uncentred.fit(data=shifted(travel_mode))
    assert abs(moved.beta[0] - original.beta[0]) > original.se[0]
    centred = fits["revenue", "gme"]["original"]
    assert abs(centred.beta[0] - original.beta[0]) > centred.se[0]


def test_uncentred_without_noise_is_the_same_and_silent(travel_mode):
    """Without a noise term there is nothing to centre: no warning, the same estimates."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", OriginWarning)
        plain = fit_maxent(travel_mode, [Revenue(PRICE)], error_support=None, centre_noise=False)
    np.testing.assert_allclose(plain.beta, fit_maxent(travel_mode, [Revenue(PRICE)], error_support=None).beta,
                               rtol=1e-12)


def test_centred_equals_uncentred_for_centred_features(travel_mode):
    """Where every feature already averages 0 over each situation's alternatives, the two forms
    are one problem (the equivalence of the docs)."""
    data = travel_mode
    for name in ("gc", "ttme"):
        x = data.attribute(name)
        data = data.with_attribute(name, x - x.mean(axis=1, keepdims=True))
    moments = [AttributeSums(["gc", "ttme"])]
    centred = fit_maxent(data, moments)
    with pytest.warns(OriginWarning):
        uncentred = fit_maxent(data, moments, centre_noise=False)
    np.testing.assert_allclose(centred.beta, uncentred.beta, rtol=1e-10)
    np.testing.assert_allclose(centred.se, uncentred.se, rtol=1e-8)


def test_centre_noise_must_be_a_bool(travel_mode):
    with pytest.raises(MaxEntError, match="centre_noise must be True or False"):
        fit_maxent(travel_mode, [Revenue(PRICE)], centre_noise="no")


@pytest.fixture(scope="module")
def small():
    data, _ = pmx.simulate_choices("MNL-2", n_individuals=40, n_alternatives=3, n_attributes=2, seed=5)
    return data


def test_primal_is_location_invariant(small):
    """The primal solver centres the noise too, in the standard moments and in a user
    constraint's graph: the shifted problem has the same solution (to the primal's own
    tolerance), which is the dual's."""
    def weighted(c, p, eps):
        return (c.X[:, :, 0] * (p + eps)).sum()

    est = MaxEntEstimator(small, [AttributeSums(["x1"]), AlternativeShares(), Constraint("x0", weighted)])
    original = est.fit(solver="primal")
    moved = est.fit(data=shifted(small, "x0"), solver="primal")
    assert original.converged and moved.converged
    np.testing.assert_allclose(moved.p, original.p, atol=1e-6)
    np.testing.assert_allclose(moved.eps, original.eps, atol=1e-6)
    np.testing.assert_allclose(moved.lam, original.lam, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(original.lam, est.fit().lam, rtol=1e-4, atol=1e-6)


def test_dask_centres_like_in_memory(fits, uncentred, travel_mode):
    """The Dask dual builds the in-memory graph, centring included (and not, when asked)."""
    dask = pytest.importorskip("dask")
    import dask.array as da

    from pymc_maxent.maxent.dask_backend import fit_maxent_dask

    d = shifted(travel_mode)

    def dask_fit(**kw):
        with dask.config.set(scheduler="synchronous"):  # one thread: one compiled worker problem
            return fit_maxent_dask(da.from_array(d.X, chunks=(70, 4, 3)), d.available, d.chosen,
                                   alternatives=d.alternatives, attributes=d.attributes,
                                   moments=[Revenue(PRICE)], **kw)

    np.testing.assert_allclose(dask_fit().beta, fits["revenue", "gme"]["original"].beta, rtol=1e-8)
    with pytest.warns(OriginWarning):
        moved = dask_fit(centre_noise=False)
    np.testing.assert_allclose(moved.beta, uncentred.fit(data=d).beta, rtol=1e-8)
