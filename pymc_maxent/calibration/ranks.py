"""Rank statistics of simulation-based calibration: ranks, PIT values, interval coverage and
uniformity tests.

For one simulated data set, the rank of a true parameter value among ``L`` near-independent
posterior draws is uniform on ``{0, …, L}`` when the posterior is calibrated (Talts et al.
2018); ``(rank + U) / (L + 1)`` with ``U ~ Uniform(0, 1)`` is then uniform on ``(0, 1)`` whatever
``L``, so simulations thinned to different lengths pool into one PIT sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import arviz_stats  # noqa: F401  (registers the .azstats accessors)
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from pymc_maxent.arguments import require_count
from pymc_maxent.exceptions import SpecificationError

SIM = "sim"
#: Central interval probabilities whose coverage is recorded.
INTERVALS = (0.5, 0.94)
SAMPLE_DIMS = ("chain", "draw")


def thinning_factor(posterior: xr.Dataset) -> int:
    """The step that leaves near-independent draws: total draws over the smallest bulk or tail
    ESS of any element of ``posterior`` (Säilynoja et al. 2022).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from pymc_maxent.calibration.ranks import thinning_factor
    >>> iid = xr.Dataset({"a": (("chain", "draw"), np.random.default_rng(0).normal(size=(2, 500)))})
    >>> thinning_factor(iid) <= 2
    True
    """
    ess = [posterior.azstats.ess(sample_dims=SAMPLE_DIMS, method=m) for m in ("bulk", "tail")]
    smallest = min(float(e[v].min()) for e in ess for v in e.data_vars)
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    if not np.isfinite(smallest) or smallest < 1:
        return n // 2 or 1  # a stuck chain: keep two draws per chain at most
    return max(1, int(np.ceil(n / smallest)))


def rank_statistics(posterior: xr.Dataset, truth: xr.Dataset, *, intervals: Sequence[float] = INTERVALS,
                    rng: np.random.Generator | None = None) -> dict:
    """Rank, PIT and interval coverage of each true value among one posterior's draws.

    Parameters
    ----------
    posterior : Dataset
        Draws with dims ``chain``, ``draw`` (and each parameter's own).
    truth : Dataset
        The true values, with the parameters' dims (no sample dims).
    intervals : sequence of float
        Central (equal-tailed) interval probabilities.
    rng : Generator, optional
        For the PIT's jitter.

    Returns
    -------
    dict
        ``rank`` (Dataset, ints in ``0..n_draws``) among the draws thinned by
        :func:`thinning_factor`; ``n_draws`` (int) kept; ``thin`` (int); ``pit`` (Dataset in
        ``(0, 1)``); ``covered`` (Dataset of bools with dim ``interval``; intervals from all
        draws).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from pymc_maxent.calibration.ranks import rank_statistics
    >>> draws = xr.Dataset({"a": (("chain", "draw"), np.random.default_rng(0).normal(size=(2, 200)))})
    >>> out = rank_statistics(draws, xr.Dataset({"a": 10.0}))
    >>> int(out["rank"]["a"]) == out["n_draws"], bool(out["covered"]["a"].any())
    (True, False)
    """
    rng = np.random.default_rng() if rng is None else rng
    missing = sorted(set(truth.data_vars) - set(posterior.data_vars))
    if missing:
        raise SpecificationError(f"the posterior has no draws of {missing}")
    posterior = posterior[list(truth.data_vars)]
    thin = thinning_factor(posterior)
    thinned = posterior.isel(draw=slice(None, None, thin))
    n_draws = thinned.sizes["chain"] * thinned.sizes["draw"]
    rank = (thinned < truth).sum(SAMPLE_DIMS).astype(np.int64)
    pit = rank.map(lambda r: (r + rng.uniform(size=r.shape)) / (n_draws + 1))
    covered = []
    for prob in intervals:
        low, high = (posterior.quantile(q, dim=SAMPLE_DIMS).drop_vars("quantile")
                     for q in ((1 - prob) / 2, (1 + prob) / 2))
        covered.append((low <= truth) & (truth <= high))
    covered = xr.concat(covered, dim=pd.Index(list(intervals), name="interval"))
    return {"rank": rank, "n_draws": n_draws, "thin": thin, "pit": pit, "covered": covered}


def chi2_uniformity(pit: np.ndarray, bins: int | None = None) -> float:
    """p-value of Pearson's χ² test that ``pit`` (values in ``(0, 1)``) is uniform, on
    ``bins`` equal bins (default: about 5 expected per bin, at most 20).

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.calibration.ranks import chi2_uniformity
    >>> round(chi2_uniformity(np.linspace(0.01, 0.99, 100)), 3)
    1.0
    >>> chi2_uniformity(np.full(100, 0.5)) < 1e-10
    True
    """
    pit = np.asarray(pit, dtype=float).ravel()
    bins = default_bins(pit.size) if bins is None else require_count(bins, "bins", minimum=1)
    if bins < 2:
        raise SpecificationError(f"a uniformity test needs at least 2 bins (bins must be an integer >= 2); "
                                 f"got {bins} (from {pit.size} simulations)")
    counts = np.histogram(pit, bins=bins, range=(0.0, 1.0))[0]
    return float(stats.chisquare(counts).pvalue)


def default_bins(n: int) -> int:
    """Equal bins with about 5 expected counts each, between 2 and 20."""
    return int(np.clip(n // 5, 2, 20))


def pot_c_uniformity(pit: np.ndarray) -> float:
    """p-value of arviz-stats' pointwise order test with Cauchy combination (``pot_c``) that
    ``pit`` is uniform: sensitive to local departures (a pile in one tail) that binning blurs.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.calibration.ranks import pot_c_uniformity
    >>> pot_c_uniformity(np.random.default_rng(1).uniform(size=200)) > 0.05
    True
    """
    pit = xr.DataArray(np.asarray(pit, dtype=float).ravel(), dims=SIM)
    p_value, _, _ = pit.azstats.uniformity_test(dim=SIM, method="pot_c")
    return float(p_value)


def uniformity_tests(pit: xr.Dataset, *, bins: int | None = None) -> xr.Dataset:
    """Per parameter element, the χ² (``chi2``) and ``pot_c`` p-values of its PIT over ``sim``.

    Returns
    -------
    Dataset
        Each parameter's p-values, with its own dims and a ``test`` dim (``chi2``, ``pot_c``).
    """
    if SIM not in pit.dims or pit.sizes[SIM] < 10:
        raise SpecificationError(f"uniformity tests need at least 10 simulations along {SIM!r}; got "
                                 f"{pit.sizes.get(SIM, 0)}")
    tests = []
    for test in (lambda a: chi2_uniformity(a, bins), pot_c_uniformity):
        tests.append(pit.map(lambda da, t=test: xr.apply_ufunc(t, da, input_core_dims=[[SIM]],
                                                                 vectorize=True)))
    return xr.concat(tests, dim=pd.Index(["chi2", "pot_c"], name="test"))


def calibration_summary(tree: xr.DataTree, *, bins: int | None = None) -> pd.DataFrame:
    """One row per parameter element: the uniformity p-values of its ranks (χ² and ``pot_c``),
    the coverage of each central interval with its Monte Carlo SE, and the number of simulations.

    Parameters
    ----------
    tree : DataTree
        From :func:`~pymc_maxent.calibration.simulation_based_calibration` (groups ``pit`` and
        ``covered``).
    bins : int, optional
        Bins of the χ² test (default :func:`default_bins`).

    Returns
    -------
    DataFrame
        Index ``parameter`` (``beta[price]``, ``corr[price, time]``); columns ``p_chi2``,
        ``p_pot_c``, ``coverage_50``, ``coverage_94`` (one per interval), ``mcse_50``, …,
        ``n_sims``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from pymc_maxent.calibration.ranks import calibration_summary
    >>> u = np.random.default_rng(0).uniform(size=(100, 2))
    >>> tree = xr.DataTree.from_dict({
    ...     "pit": xr.Dataset({"beta": (("sim", "coefficient"), u)}, coords={"coefficient": ["a", "b"]}),
    ...     "covered": xr.Dataset({"beta": (("interval", "sim", "coefficient"),
    ...                                     np.stack([abs(u - 0.5) < 0.25, abs(u - 0.5) < 0.47]))},
    ...                           coords={"interval": [0.5, 0.94], "coefficient": ["a", "b"]})})
    >>> table = calibration_summary(tree)
    >>> list(table.index), bool((table["p_chi2"] > 0.01).all())
    (['beta[a]', 'beta[b]'], True)
    """
    pit, covered = tree["pit"].to_dataset(), tree["covered"].to_dataset()
    p = uniformity_tests(pit, bins=bins)
    coverage = covered.mean(SIM)
    n = pit.sizes[SIM]
    rows = []
    for name in pit.data_vars:
        for label, index in element_labels(pit[name].isel({SIM: 0}, drop=True)):
            row = {"parameter": f"{name}{label}", "p_chi2": float(p[name].sel(test="chi2").sel(index)),
                   "p_pot_c": float(p[name].sel(test="pot_c").sel(index))}
            for prob in coverage["interval"].values:
                c = float(coverage[name].sel(interval=prob).sel(index))
                key = f"{round(100 * prob)}"
                row[f"coverage_{key}"] = c
                row[f"mcse_{key}"] = float(np.sqrt(prob * (1 - prob) / n))
            row["n_sims"] = n
            rows.append(row)
    return pd.DataFrame(rows).set_index("parameter")


def element_labels(da: xr.DataArray) -> list[tuple[str, dict]]:
    """``("[a, b]", {dim: a, dim2: b})`` for every element of ``da`` (``("", {})`` for a scalar)."""
    if not da.dims:
        return [("", {})]
    stacked = da.stack(__element__=da.dims)
    out = []
    for values in stacked["__element__"].values:
        values = values if isinstance(values, tuple) else (values,)
        out.append((f"[{', '.join(str(v) for v in values)}]", dict(zip(da.dims, values, strict=True))))
    return out
