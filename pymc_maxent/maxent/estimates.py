"""Estimates of a MaxEnt fit: ``β = −λ``, standard errors, tables and normal draws.

Shared by the in-memory :class:`~pymc_maxent.maxent.result.MaxEntResult` and the Dask
:class:`~pymc_maxent.maxent.distributed.DaskMaxEntResult` through :class:`MaxEntEstimates`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from pymc_maxent.arguments import require_count
from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.maxent.features import ASC, COEFFICIENT, CONSTRAINT

#: Names of the coefficient variables by dim, as in the Bayesian builder.
PARAMETER_NAMES = {ASC: "alpha", COEFFICIENT: "beta", CONSTRAINT: "gamma"}


def parameter_names(terms) -> list[str]:
    """``alpha[air]``, ``beta[gc]``, ``gamma[name]``: the Bayesian models' names, one per term.

    Examples
    --------
    >>> from pymc_maxent.maxent.estimates import parameter_names
    >>> from pymc_maxent.maxent.features import Term
    >>> parameter_names([Term("share[air]", "air", "asc"), Term("sum[gc]", "gc", "coefficient")])
    ['alpha[air]', 'beta[gc]']
    """
    return [f"{PARAMETER_NAMES[t.dim]}[{t.parameter}]" for t in terms]


class MaxEntEstimates:
    """Estimates and standard errors of a MaxEnt fit (a base class).

    Subclasses set ``terms`` (one :class:`~pymc_maxent.maxent.features.Term` per moment),
    ``labels``, ``lam``, ``cov`` and ``cov_robust``.
    """

    terms: list
    labels: list
    lam: np.ndarray
    cov: np.ndarray
    cov_robust: np.ndarray

    @property
    def beta(self) -> np.ndarray:
        """``−λ``: every multiplier as a logit coefficient."""
        return -self.lam

    @property
    def se(self) -> np.ndarray:
        """Standard errors from the inverse dual Hessian."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    @property
    def se_robust(self) -> np.ndarray:
        """Standard errors from the sandwich ``H⁻¹ (Σ_i g_i g_i') H⁻¹``."""
        return np.sqrt(np.clip(np.diag(self.cov_robust), 0.0, None))

    def parameter_names(self) -> list[str]:
        """``alpha[air]``, ``beta[gc]``: the Bayesian models' names, one per moment."""
        return parameter_names(self.terms)

    def summary(self) -> pd.DataFrame:
        """Estimates (``−λ``), standard errors (inverse Hessian and sandwich), z and p-values,
        indexed by parameter name."""
        z = self.beta / np.where(self.se > 0, self.se, np.nan)
        return pd.DataFrame(
            {
                "moment": self.labels,
                "estimate": self.beta,
                "se": self.se,
                "se_robust": self.se_robust,
                "z": z,
                "p_value": 2 * stats.norm.sf(np.abs(z)),
            },
            index=pd.Index(self.parameter_names(), name="parameter"),
        )

    def estimates(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """One row per parameter: ``estimate`` (``−λ``), ``sd`` (the Hessian standard error),
        ``lower`` and ``upper`` (the normal interval with probability ``hdi_prob``), then
        ``se_robust``, ``z``, ``p_value`` and ``moment``: the columns of a posterior's
        estimates first, so that the two line up.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> res = pmx.fit_maxent(pmx.load_travel_mode())
        >>> table = res.estimates(hdi_prob=0.9)
        >>> list(table.columns[:4]), bool((table["lower"] < table["estimate"]).all())
        (['estimate', 'sd', 'lower', 'upper'], True)
        """
        if not 0 < hdi_prob < 1:
            raise MaxEntError(f"hdi_prob must lie in (0, 1); got {hdi_prob!r}")
        table = self.summary()
        half = stats.norm.ppf(0.5 + hdi_prob / 2) * table["se"]
        return pd.DataFrame(
            {
                "estimate": table["estimate"],
                "sd": table["se"],
                "lower": table["estimate"] - half,
                "upper": table["estimate"] + half,
                "se_robust": table["se_robust"],
                "z": table["z"],
                "p_value": table["p_value"],
                "moment": table["moment"],
            },
            index=table.index,
        )

    def covariance_matrix(self, robust: bool = False) -> np.ndarray:
        """The covariance of ``λ`` (and of ``β = −λ``): the inverse dual Hessian, or the sandwich.

        Raises
        ------
        MaxEntError
            If it is not finite (the primal solver with a nonlinear constraint has none).
        """
        cov = self.cov_robust if robust else self.cov
        if not np.all(np.isfinite(cov)):
            raise MaxEntError("the fit has no finite covariance of the multipliers (primal solver with a "
                              "nonlinear constraint?): no standard errors")
        return cov

    def multiplier_draws(self, n: int, *, robust: bool = False, random_seed=0) -> np.ndarray:
        """``n`` draws ``(n, C)`` of ``λ`` from ``N(λ̂, Cov)``."""
        n = require_count(n, "draws")
        rng = np.random.default_rng(random_seed)
        return rng.multivariate_normal(self.lam, self.covariance_matrix(robust), size=int(n), method="eigh")

    def coefficient_draws(self, size, *, robust: bool = False, random_seed=0) -> np.ndarray:
        """Draws ``(*size, C)`` of ``β = −λ`` from ``N(β̂, Cov)``."""
        rng = np.random.default_rng(random_seed)
        return rng.multivariate_normal(self.beta, self.covariance_matrix(robust), size=size, method="eigh")

    def parameter_dataset(self, values, sample_dims: dict) -> dict[str, xr.DataArray]:
        """Coefficient values ``(*samples, C)`` (``β``, not ``λ``) as ``alpha`` (dim ``asc``),
        ``beta`` (``coefficient``) and ``gamma`` (``constraint``), with the sample dims and
        coords ``sample_dims`` first."""
        values = np.asarray(values)
        out = {}
        for dim, idx in self._blocks().items():
            labels = [self.terms[i].parameter for i in idx]
            out[PARAMETER_NAMES[dim]] = xr.DataArray(
                values[..., idx], dims=(*sample_dims, dim), coords=sample_dims | {dim: labels},
            )
        return out

    def normal_draws(self, chains: int, draws: int, *, robust: bool = False,
                     random_seed=0) -> xr.Dataset:
        """Draws ``(chain, draw)`` of ``alpha``, ``beta``, ``gamma`` from the asymptotic normal
        ``N(β̂, Cov)``: the pseudo-posterior of :meth:`parameter_draws` and ``to_datatree``."""
        chains, draws = require_count(chains, "chains"), require_count(draws, "draws")
        sample = self.coefficient_draws((chains, draws), robust=robust, random_seed=random_seed)
        dims = {"chain": np.arange(chains), "draw": np.arange(draws)}
        attrs = {
            "pseudo_posterior": "asymptotic normal N(estimate, covariance) of the MaxEnt coefficients; "
                                "NOT a Bayesian posterior",
            "covariance": "sandwich" if robust else "inverse dual Hessian",
            "estimator": "maxent",
        }
        return xr.Dataset(self.parameter_dataset(sample, dims), attrs=attrs)

    def parameter_draws(self, draws: int = 1000, random_seed=0, robust: bool = False) -> xr.Dataset:
        """``draws`` draws ``(chain=1, draw)`` of ``alpha`` / ``beta`` / ``gamma`` from the
        asymptotic normal ``N(β̂, Cov)`` (``robust``: the sandwich covariance).

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> ds = pmx.fit_maxent(pmx.load_travel_mode()).parameter_draws(draws=50)
        >>> dict(ds["beta"].sizes)
        {'chain': 1, 'draw': 50, 'coefficient': 3}
        """
        return self.normal_draws(1, draws, robust=robust, random_seed=random_seed)

    def _blocks(self) -> dict[str, list[int]]:
        """Positions of the moments by parameter dim: ``{"asc": [...], ...}``."""
        out: dict[str, list[int]] = {}
        for i, t in enumerate(self.terms):
            out.setdefault(t.dim, []).append(i)
        return out
