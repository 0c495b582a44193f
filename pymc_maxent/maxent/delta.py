"""The delta method over the samples of :meth:`MaxEntResult.parameter_samples
<pymc_maxent.maxent.result.MaxEntResult.parameter_samples>`: a statistic ``g(λ)`` evaluated at
``λ̂`` and at ``λ̂ ± h_c e_c`` (dim ``delta``) gives ``g(λ̂)`` and ``se = √(∇g' Cov ∇g)``, the
gradient by central differences."""

from __future__ import annotations

import numpy as np
import xarray as xr

#: The sample dim of the delta method: the estimate, then the ``+h_c`` steps, then the ``−h_c``.
DELTA = "delta"


def delta_steps(lam, cov) -> np.ndarray:
    """Steps ``h_c`` of the central differences: ``1e-4`` of each multiplier's standard error
    (the differences are then exact to ~1e-8 relative whatever the units of the moments),
    ``1e-6 max(1, |λ_c|)`` where the standard error is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.maxent.delta import delta_steps
    >>> delta_steps(np.array([2.0, -3.0]), np.diag([4.0, 0.0])).tolist()
    [0.0002, 3e-06]
    """
    lam = np.asarray(lam, dtype=float)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return np.where(se > 0, 1e-4 * se, 1e-6 * np.maximum(1.0, np.abs(lam)))


def delta_points(lam, steps) -> np.ndarray:
    """``λ̂``, then ``λ̂ + h_c e_c`` and ``λ̂ − h_c e_c`` for each ``c``: ``(1 + 2C, C)``."""
    E = np.diag(steps)
    return np.vstack([lam, lam + E, lam - E])


def delta_method(da: xr.DataArray, steps, cov, labels) -> xr.Dataset:
    """``estimate`` and ``se = √(∇g' Cov ∇g)`` of a statistic ``g`` evaluated at ``λ̂`` and at
    ``λ̂ ± h_c e_c`` (dim ``delta``), the gradient by central differences.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from pymc_maxent.maxent.delta import delta_method, delta_points
    >>> lam, steps, cov = np.array([1.0, 2.0]), np.array([1e-3, 1e-3]), np.diag([0.04, 0.09])
    >>> g = xr.DataArray([3 * x - y for x, y in delta_points(lam, steps)], dims="delta")
    >>> out = delta_method(g, steps, cov, ["a", "b"])
    >>> round(float(out["estimate"]), 6), round(float(out["se"]), 6)
    (1.0, 0.67082)
    """
    C = len(steps)
    moment = {"moment": list(labels)}
    plus = da.isel({DELTA: slice(1, C + 1)}).rename({DELTA: "moment"}).assign_coords(moment)
    minus = da.isel({DELTA: slice(C + 1, 2 * C + 1)}).rename({DELTA: "moment"}).assign_coords(moment)
    grad = (plus - minus) / xr.DataArray(2.0 * np.asarray(steps), dims="moment", coords=moment)
    cov = xr.DataArray(cov, dims=("moment", "moment_"), coords=moment | {"moment_": list(labels)})
    var = xr.dot(grad, cov, grad.rename(moment="moment_"), dim=["moment", "moment_"])
    estimate = da.isel({DELTA: 0}, drop=True)
    return xr.Dataset({"estimate": estimate, "se": np.sqrt(var.clip(min=0.0))}, attrs=dict(da.attrs))
