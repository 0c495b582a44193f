"""Posterior against MaxEnt, parameter by parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd

from pymc_maxent.exceptions import ChoiceDataError
from pymc_maxent.maxent.result import MaxEntResult


def compare_estimates(
    idata,
    maxent: MaxEntResult,
    *,
    var_names: Sequence[str] = ("alpha", "beta"),
    ci_prob: float = 0.94,
    robust: bool = False,
    rename: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per parameter: posterior mean, sd and HDI beside the MaxEnt estimate and SE.

    Parameters are matched by name (``alpha[air]``, ``beta[gc]``): the Bayesian builders and
    the MaxEnt moments use the same labels. Parameters only one side has are left out.

    Parameters
    ----------
    idata : DataTree
        With a ``posterior`` group.
    maxent : MaxEntResult
    var_names : sequence of str
        Posterior variables to compare.
    ci_prob : float
        Probability of the HDI.
    robust : bool
        Use MaxEnt's sandwich standard errors instead of the inverse dual Hessian.
    rename : mapping, optional
        Posterior name → MaxEnt name, e.g. ``{"mu[gc]": "beta[gc]"}`` to set the population
        mean of a normal random coefficient beside MaxEnt's fixed coefficient.

    Returns
    -------
    DataFrame
        Columns ``posterior_mean``, ``posterior_sd``, ``hdi_lower``, ``hdi_upper``,
        ``maxent_estimate``, ``maxent_se``, ``difference_sd`` (MaxEnt minus posterior mean, in
        posterior SDs) and ``maxent_in_hdi``.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import compare_estimates
    >>> data = pmx.load_travel_mode()
    >>> maxent = pmx.fit_maxent(data)
    >>> table = compare_estimates(maxent.to_datatree(), maxent)  # its own pseudo-posterior
    >>> bool(table["difference_sd"].abs().max() < 0.1)
    True
    """
    names = [v for v in var_names if v in idata["posterior"]]
    if not names:
        raise ChoiceDataError(f"the posterior has none of the variables {list(var_names)}")
    summary = az.summary(idata, var_names=names, kind="stats", ci_kind="hdi", ci_prob=ci_prob,
                         round_to="none")
    pct = f"{100 * ci_prob:g}"
    summary = summary.rename(columns={"mean": "posterior_mean", "sd": "posterior_sd",
                                      f"hdi{pct}_lb": "hdi_lower", f"hdi{pct}_ub": "hdi_upper"})
    summary.index = [(rename or {}).get(k, k) for k in summary.index]
    estimates = maxent.summary()
    shared = [k for k in summary.index if k in estimates.index]
    if not shared:
        raise ChoiceDataError(f"no parameter in common: posterior {list(summary.index)}, "
                              f"MaxEnt {list(estimates.index)}")
    table = summary.loc[shared, ["posterior_mean", "posterior_sd", "hdi_lower", "hdi_upper"]].astype(float)
    table["maxent_estimate"] = estimates.loc[shared, "estimate"]
    table["maxent_se"] = estimates.loc[shared, "se_robust" if robust else "se"]
    table["difference_sd"] = (table["maxent_estimate"] - table["posterior_mean"]) / table["posterior_sd"]
    table["maxent_in_hdi"] = table["maxent_estimate"].between(table["hdi_lower"], table["hdi_upper"])
    table.index.name = "parameter"
    if not np.isfinite(table.drop(columns="maxent_in_hdi").to_numpy(float)).all():
        raise ChoiceDataError("a posterior SD or MaxEnt SE is not finite; check convergence of both fits")
    return table
