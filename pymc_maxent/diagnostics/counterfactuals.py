"""Counterfactual shares and revenue, revenue curves and revenue-maximising prices.

Every function takes a posterior ``(model, idata)``, a :class:`~pymc_maxent.MaxEntResult` or a
:class:`~pymc_maxent.evaluation.ChoiceEvaluator`, and evaluates the situations of
``data`` (default: those the model's containers hold), which are swapped into the shared
containers to match individuals and then put back: the model keeps its fitted data.
Posteriors give distributions over ``(chain, draw)``; MaxEnt fits the estimate with a
delta-method ``se`` (or a pseudo-posterior with ``draws=``).

Prices are one attribute (``price``, e.g. ``"gc"``) of some alternatives. Revenue is
``Σ_i price_ij p_ij`` summed over situations (one unit of demand per situation) and over the
alternatives whose revenue counts. A price change is, by ``mode``:

* ``"scale"`` (default): the observed prices of the alternative times a multiplier (keeps the
  variation of prices across situations; ``1`` is the status quo);
* ``"level"``: the same price in every situation where the alternative is available.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import eti, hdi
from scipy import optimize, stats

from pymc_maxent.data.choice_data import ALTERNATIVE, SITUATION, ChoiceData, label_position
from pymc_maxent.exceptions import ChoiceDataError, ConvergenceWarning
from pymc_maxent.fit import choice_evaluator

MODES = ("scale", "level")
DEFAULT_SCALE_BOUNDS = (0.5, 2.0)


def change_attribute(data: ChoiceData, attribute: str, *, alternatives=None, scale: float = 1.0,
                     shift: float = 0.0, value: float | None = None) -> ChoiceData:
    """``data`` with ``attribute`` of some alternatives changed: ``x * scale + shift``, or set
    to ``value``. Unavailable alternatives keep 0.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics.counterfactuals import change_attribute
    >>> data = pmx.load_travel_mode()
    >>> new = change_attribute(data, "gc", alternatives=["air"], scale=1.1)
    >>> float((new.attribute("gc") / data.attribute("gc"))[0, 0].round(6))
    1.1
    """
    x = data.attribute(attribute)
    alts = list(data.alternatives) if alternatives is None else list(np.atleast_1d(alternatives))
    cols = [data.alternative_index(a) for a in alts]
    new = x.copy()
    new[:, cols] = value if value is not None else x[:, cols] * scale + shift
    return data.with_attribute(attribute, new)


def choice_shares(fit, data: ChoiceData | None = None, **kwargs):
    """Predicted shares: the mean over situations of ``p`` (…, alternative).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> res = pmx.fit_maxent(pmx.load_travel_mode())
    >>> float(choice_shares(res)["estimate"].sum().round(10))
    1.0
    """
    ev = choice_evaluator(fit, data, **kwargs)
    return ev.finish(ev.probabilities().mean(SITUATION).rename("share"))


def expected_revenue(fit, price: str, data: ChoiceData | None = None, *, alternatives=None, **kwargs):
    """Predicted revenue ``Σ_i price_ij p_ij`` of each of ``alternatives`` (default all);
    ``.sum("alternative")`` is the total."""
    ev = choice_evaluator(fit, data, **kwargs)
    x = ev.attribute_values(price)
    rev = (ev.probabilities() * x).sum(SITUATION)
    if alternatives is not None:
        rev = rev.sel({ALTERNATIVE: list(np.atleast_1d(alternatives))})
    rev = rev.rename("revenue")
    rev.attrs = {"price": price}
    return ev.finish(rev)


class _Pricing:
    """Prices of some alternatives as a function of the decision variables ``θ`` (multipliers or
    levels), and the revenue and its gradient over the samples of an evaluator."""

    def __init__(self, ev, price, alternatives, revenue_of, mode):
        if mode not in MODES:
            raise ChoiceDataError(f"mode must be one of {MODES}; got {mode!r}")
        self.ev, self.mode = ev, mode
        self.k, self.price = label_position(ev.attributes, price, "price attribute"), price
        self.alternatives = [str(a) for a in np.atleast_1d(alternatives)]
        J = len(ev.alternatives)
        self.cols = [self._alt(a) for a in self.alternatives]
        if len(set(self.cols)) < len(self.cols):
            raise ChoiceDataError(f"alternatives repeated in {self.alternatives}")
        counted = self.alternatives if revenue_of is None else np.atleast_1d(revenue_of)
        self.counted = np.zeros(J, dtype=bool)
        self.counted[[self._alt(a) for a in counted]] = True
        base = ev.X[:, :, self.k]
        avail = ev.available
        # ∂price_ia/∂θ_a: the observed price (scale) or 1 where available (level)
        self.dprice = np.where(avail, base, 0.0) if mode == "scale" else avail.astype(float)
        self.base = np.where(avail, base, 0.0)
        for a, c in zip(self.alternatives, self.cols, strict=True):
            if not avail[:, c].any():
                raise ChoiceDataError(f"alternative {a!r} is not available in any situation")

    def _alt(self, a):
        return label_position(self.ev.alternatives, a, "alternative")

    def observed(self) -> np.ndarray:
        """``θ`` of the status quo: multipliers 1, or each alternative's mean observed price."""
        if self.mode == "scale":
            return np.ones(len(self.cols))
        return np.array([self.base[self.ev.available[:, c], c].mean() for c in self.cols])

    def X(self, theta) -> np.ndarray:
        X = np.array(self.ev.X)
        for t, c in zip(np.atleast_1d(theta), self.cols, strict=True):
            X[:, c, self.k] = t * self.dprice[:, c]
        return X

    def revenue_samples(self, theta) -> np.ndarray:
        """Revenue per sample (flattened)."""
        X = self.X(theta)
        p = self.ev.evaluate(X)
        return np.einsum("sij,ij,j->s", p, X[:, :, self.k], self.counted)

    def value_and_grad(self, theta):
        """Expected revenue over the samples' weights, and its gradient in ``θ``."""
        X = self.X(theta)
        price = X[:, :, self.k]
        counted = self.counted

        def reduce(p, dp, w):
            value = np.einsum("s,sij,ij,j->", w, p, price, counted)
            # ∂R/∂θ_a = Σ_i dprice_ia [1(a counted) p_ia + Σ_m counted price_im ∂p_im/∂x_ia]
            through_p = np.einsum("s,im,sima,m->ia", w, price, dp, counted)
            return value, through_p + np.einsum("s,sia->ia", w, p) * counted

        keep = np.flatnonzero(self.ev.weights > 0)  # MaxEnt delta samples: the estimate alone
        value, d = self.ev.evaluate(X, derivatives=self.price, samples=keep, reduce=reduce)
        return value, (d * self.dprice)[:, self.cols].sum(axis=0)


def _band(ev, da, ci_prob, method):
    """Estimate, sd, lower and upper of a per-sample statistic: an interval of the draws
    (ETI or HDI), or a normal interval of the delta method."""
    out = ev.finish(da)
    if "draws" not in out:
        est, half = out["estimate"], stats.norm.ppf(0.5 + ci_prob / 2) * out["sd"]
        return out.assign(lower=est - half, upper=est + half)
    interval = (eti if method == "eti" else hdi)(da, prob=ci_prob, dim=list(ev.sample_dims))
    return out.assign(lower=interval.sel(ci_bound="lower", drop=True),
                      upper=interval.sel(ci_bound="upper", drop=True))


def revenue_curve(fit, price: str, alternative, grid, data: ChoiceData | None = None, *,
                  mode: str = "scale", revenue_of=None, ci_prob: float = 0.94, method: str = "eti",
                  **kwargs) -> xr.Dataset:
    """Revenue over a grid of prices of one alternative, with a credible band.

    Parameters
    ----------
    fit : (pm.Model, DataTree), MaxEntResult or ChoiceEvaluator
    price : str
        The price attribute.
    alternative : label
        Whose price moves along ``grid`` (multipliers or levels, by ``mode``).
    grid : array-like
    revenue_of : labels, optional
        Alternatives whose revenue counts (default ``alternative``'s alone).
    ci_prob, method
        Band: equal-tailed (``"eti"``) or highest-density (``"hdi"``) interval of the posterior
        (arviz-stats); for MaxEnt ``estimate ± z se`` (delta method).

    Returns
    -------
    Dataset over dim ``price_grid``: ``mean``, ``lower``, ``upper`` and the draws ``revenue``
    (MaxEnt: ``se``); attrs ``price``, ``alternative``, ``mode``, ``ci_prob``.
    """
    if method not in ("eti", "hdi") or not 0 < ci_prob < 1:
        raise ChoiceDataError(f'method must be "eti" or "hdi" and 0 < ci_prob < 1; got {method!r}, {ci_prob}')
    ev = choice_evaluator(fit, data, **kwargs)
    pricing = _Pricing(ev, price, [alternative], revenue_of, mode)
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or not grid.size or not np.isfinite(grid).all():
        raise ChoiceDataError("grid must be a non-empty 1-d array of finite prices")
    rev = np.stack([pricing.revenue_samples([g]) for g in grid], axis=-1)
    da = ev.to_dataarray(rev, ("price_grid",), {"price_grid": grid}, name="revenue")
    out = _band(ev, da, ci_prob, method)
    out.attrs = {"price": price, "alternative": str(alternative), "mode": mode, "ci_prob": ci_prob,
                 "revenue_of": [ev.alternatives[j] for j in np.flatnonzero(pricing.counted)]}
    return out


class PricingResult(optimize.OptimizeResult):
    """Revenue-maximising prices, in the style of :class:`scipy.optimize.OptimizeResult`.

    Attributes
    ----------
    x : ndarray
        The optimal multipliers (``mode="scale"``) or price levels (``"level"``).
    prices : pandas.Series
        ``x`` named by alternative.
    revenue : float
        Expected revenue at ``x`` (posterior mean; MaxEnt: at the estimate).
    revenue_observed : float
        The same at the status quo.
    revenue_samples : Dataset
        Revenue at ``x``: its ``estimate`` and ``sd`` (and the posterior ``draws``).
    fun, jac : float, ndarray
        The minimised objective (``−revenue / |revenue_observed|``) and its gradient.
    success, message, nit, nfev, mode, bounds
    """


def optimal_prices(fit, price: str, alternatives, data: ChoiceData | None = None, *,
                   mode: str = "scale", bounds=None, revenue_of=None, x0=None, options=None,
                   **kwargs) -> PricingResult:
    """Prices of ``alternatives`` that maximise expected revenue.

    Maximises the revenue averaged over posterior draws (MaxEnt: at the estimate) with SciPy's
    bounded ``L-BFGS-B``, the gradient from the autodiff ``∂p/∂x``. Revenue need not be
    concave in prices; start points (``x0``) and bounds are worth a look at
    :func:`revenue_curve`.

    Parameters
    ----------
    fit : (pm.Model, DataTree), MaxEntResult or ChoiceEvaluator
    price : str
    alternatives : label or list of labels
        Whose prices are set.
    mode : {"scale", "level"}
    bounds : (low, high) or a list of them, optional
        Default ``(0.5, 2)`` times the status quo (multipliers, or the mean observed price).
    revenue_of : labels, optional
        Alternatives whose revenue counts (default ``alternatives``).
    x0 : array-like, optional
        Start (default the status quo).
    options : dict, optional
        To :func:`scipy.optimize.minimize`.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> res = pmx.fit_maxent(pmx.load_travel_mode())
    >>> opt = optimal_prices(res, "gc", "air", bounds=(0.2, 3.0))
    >>> bool(opt.success), bool(opt.revenue >= opt.revenue_observed)
    (True, True)
    """
    ev = choice_evaluator(fit, data, **kwargs)
    pricing = _Pricing(ev, price, alternatives, revenue_of, mode)
    status_quo = pricing.observed()
    n = len(pricing.cols)
    if bounds is None:
        bounds = [(DEFAULT_SCALE_BOUNDS[0] * s, DEFAULT_SCALE_BOUNDS[1] * s) for s in status_quo]
    elif np.ndim(bounds) == 1:
        bounds = [tuple(bounds)] * n
    bounds = [tuple(map(float, b)) for b in bounds]
    if len(bounds) != n or any(not lo < hi for lo, hi in bounds):
        raise ChoiceDataError(f"bounds must be one (low, high) with low < high, or one per alternative "
                              f"of {pricing.alternatives}; got {bounds}")
    x0 = np.clip(status_quo if x0 is None else np.asarray(x0, dtype=float).reshape(n),
                 [b[0] for b in bounds], [b[1] for b in bounds])
    revenue_observed, _ = pricing.value_and_grad(status_quo)
    scale = abs(revenue_observed) if revenue_observed else 1.0

    def objective(theta):
        value, grad = pricing.value_and_grad(theta)
        return -value / scale, -grad / scale

    res = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-12, "gtol": 1e-9} | (options or {}))
    if not res.success:
        warnings.warn(f"optimal_prices: L-BFGS-B stopped without converging ({res.message}) at "
                      f"{res.x.tolist()}", ConvergenceWarning, stacklevel=2)
    samples = ev.to_dataarray(pricing.revenue_samples(res.x), (), name="revenue")
    return PricingResult(
        x=res.x, prices=pd.Series(res.x, index=pd.Index(pricing.alternatives, name=ALTERNATIVE), name=price),
        revenue=float(-res.fun * scale), revenue_observed=float(revenue_observed),
        revenue_samples=ev.finish(samples), fun=float(res.fun), jac=res.jac, success=bool(res.success),
        message=str(res.message), nit=int(res.nit), nfev=int(res.nfev), mode=mode, bounds=bounds,
    )
