"""The MaxEnt fit: estimates, standard errors, information measures, prediction, DataTree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.special import entr

from pymc_maxent.data.choice_data import ALTERNATIVE, SITUATION
from pymc_maxent.maxent.features import ASC, COEFFICIENT, CONSTRAINT

#: Names of the coefficient variables by dim, as in the Bayesian builder.
PARAMETER_NAMES = {ASC: "alpha", COEFFICIENT: "beta", CONSTRAINT: "gamma"}


def _entropy_rows(x, chunk: int = 1 << 16) -> np.ndarray:
    """``−Σ x ln x`` over all but the first axis, per row (``0 ln 0 = 0``), in row chunks."""
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], chunk):
        e = entr(x[s:s + chunk])
        out[s:s + chunk] = e.reshape(e.shape[0], -1).sum(axis=1)
    return out


def _inverse(H):
    """Inverse of a symmetric Hessian; the pseudo-inverse if it is singular."""
    try:
        return np.linalg.inv(H) if np.linalg.cond(H) < 1e14 else np.linalg.pinv(H)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(H)


class MaxEntResult:
    """A fitted MaxEnt (GME) choice model, in the style of ``scipy.optimize.OptimizeResult``.

    Attributes
    ----------
    converged : bool
    message : str
    nit : int
        Iterations of the solver.
    max_violation : float
        Largest violation of a constraint (moments, adding-up, normalisations) by the
        recovered primal solution.
    solver : {"dual", "primal"}
    lam : ndarray
        Multipliers, one per moment (``labels``); ``beta = −lam`` in GJP's convention.
    cov, cov_robust : ndarray
        Covariance of ``lam`` (and of ``−lam``): inverse Hessian of the dual, and the sandwich
        ``H⁻¹ (Σ_i g_i g_i') H⁻¹``.
    p, eps : ndarray (situation, alternative)
        ``p̂`` (0 where unavailable) and ``ε̂``.
    w, pi : ndarray or None
        Error weights ``ŵ`` (situation, alternative, support) and support-point weights ``π̂``.
    entropy, normalized_entropy, normalized_entropy_situation, information_index,
    entropy_ratio, entropy_ratio_dof, entropy_ratio_pvalue, loglik, loglik_null, pseudo_r2,
    hit_rate, kl : floats (per situation: an array)
        ``S(p̂) = −Σ p̂ ln p̂ / Σ_i ln J_i``, ``1 − S``, ``ER = 2 KL(p̂‖p0)`` (χ² with as many
        degrees of freedom as moments; ``2 N ln J (1 − S)`` for a uniform ``p0``), McFadden's
        ``1 − ln L(p̂)/ln L(uniform)``, the share of situations whose most probable alternative
        was chosen, and the objective ``KL(p̂‖p0) + KL(ŵ‖w0)``.
    kl_p, kl_w : floats
        The two parts of ``kl``: ``KL(p̂‖p0)`` and ``KL(ŵ‖w0)`` (0 without an error support).
    available, p0 : ndarray (situation, alternative)
        The fitted choice sets, and the prior ``p0`` (None: uniform over ``available``).
    dual_value : float
        ``D(λ̂)``; strong duality: ``kl = −dual_value`` (direct form).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.maxent import fit_maxent
    >>> res = fit_maxent(pmx.load_travel_mode())
    >>> res.converged, res.summary().loc["beta[gc]", "estimate"].round(3)
    (True, np.float64(-0.009))
    """

    def __init__(self, *, estimator, solution, primal, cov, cov_robust, data_coords, chosen, available,
                 p0, w0, solver, converged, message, nit, max_violation):
        self._estimator = estimator
        self.terms = list(estimator.moments.terms)
        self.labels = [t.moment for t in self.terms]
        self.solver = solver
        self.converged = bool(converged)
        self.message = message
        self.nit = int(nit)
        self.max_violation = float(max_violation)
        self.lam = np.asarray(solution.lam, dtype=float)
        self.mu = solution.mu
        self.dual_value = float(solution.value)
        self.cov = cov
        self.cov_robust = cov_robust
        self.p = primal["p"]
        self.eps = primal["e"]
        self.w = primal.get("w")
        self.pi = primal.get("pi")
        self.coords = data_coords
        self.error_support = estimator.current_error_support()
        self.probability_support = estimator.supports.probability
        self._chosen = chosen
        self._diagnostics(chosen, available, p0, w0)

    # ------------------------------------------------------------------ estimates
    @property
    def beta(self) -> np.ndarray:
        """``−λ``: every multiplier as a logit coefficient."""
        return -self.lam

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    @property
    def se_robust(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov_robust), 0.0, None))

    def parameter_names(self) -> list[str]:
        """``alpha[air]``, ``beta[gc]``: the Bayesian models' names, one per moment."""
        return [f"{PARAMETER_NAMES[t.dim]}[{t.parameter}]" for t in self.terms]

    def summary(self) -> pd.DataFrame:
        """Estimates (``−λ``), standard errors (inverse Hessian and sandwich), z and p-values."""
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

    def _blocks(self):
        """Positions of the moments by parameter dim: ``{"asc": [...], ...}``."""
        out: dict[str, list[int]] = {}
        for i, t in enumerate(self.terms):
            out.setdefault(t.dim, []).append(i)
        return out

    # ------------------------------------------------------------------ diagnostics
    def _diagnostics(self, chosen, available, p0, w0):
        p = self.p
        N = p.shape[0]
        log_j = np.log(available.sum(axis=1))
        h_i = _entropy_rows(p)
        self.entropy = float(h_i.sum())
        self.normalized_entropy_situation = h_i / log_j
        self.normalized_entropy = float(h_i.sum() / log_j.sum())
        self.information_index = 1.0 - self.normalized_entropy
        if p0 is None:  # uniform over the available alternatives: Σ p ln p0 = −Σ_i ln J_i
            kl_p = float(log_j.sum() - self.entropy)
        else:
            kl_p = float(-self.entropy - (p * np.log(np.where(p0 > 0, p0, 1.0))).sum())
        kl_w = 0.0
        if self.w is not None:
            H = self.w.shape[-1]
            h_w = float(_entropy_rows(self.w).sum())
            self.normalized_entropy_error = h_w / (available.sum() * np.log(H))
            kl_w = -h_w - float(self.w.sum(axis=(0, 1)) @ np.log(w0))
        else:
            self.normalized_entropy_error = np.nan
        self.kl = kl_p + kl_w
        self.kl_p, self.kl_w, self.available, self.p0 = kl_p, kl_w, available, p0
        self.entropy_ratio = 2.0 * kl_p
        self.entropy_ratio_dof = len(self.terms)
        self.entropy_ratio_pvalue = float(stats.chi2.sf(self.entropy_ratio, self.entropy_ratio_dof))
        chosen_p = p[np.arange(N), chosen]
        with np.errstate(divide="ignore"):
            self.loglik = float(np.log(chosen_p).sum())
        self.loglik_null = float(-log_j.sum())
        self.pseudo_r2 = 1.0 - self.loglik / self.loglik_null
        self.hit_rate = float((p.argmax(axis=1) == chosen).mean())

    def __repr__(self) -> str:
        lines = [
            f"MaxEntResult(solver={self.solver!r}, converged={self.converged}, nit={self.nit}, "
            f"max_violation={self.max_violation:.2e})",
            f"  normalized entropy {self.normalized_entropy:.4f}, information index "
            f"{self.information_index:.4f}, ER {self.entropy_ratio:.2f} (dof {self.entropy_ratio_dof}, "
            f"p {self.entropy_ratio_pvalue:.3g}), pseudo-R2 {self.pseudo_r2:.4f}, "
            f"hit rate {self.hit_rate:.3f}",
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ prediction
    def predict(self, new_data=None) -> xr.DataArray:
        """Choice probabilities at the fitted multipliers.

        With ``new_data`` (a :class:`~pymc_maxent.ChoiceData`), it is first swapped into the
        shared containers with :func:`~pymc_maxent.set_choice_data`, which moves every model
        built on them (a Bayesian model passed as ``model=``) too; without it, the containers'
        current contents are used (e.g. after ``pm.set_data``).

        Returns
        -------
        DataArray (situation, alternative)
        """
        return self._estimator.predict(self.lam, new_data)

    # ------------------------------------------------------------------ DataTree
    def to_datatree(self, *, draws: int = 500, chains: int = 2, robust: bool = False, random_seed=0):
        """ArviZ-style groups with the Bayesian models' dims and coords.

        Returns
        -------
        DataTree
            With the groups listed below.

        Notes
        -----
        ``posterior``
            An **asymptotic-normal pseudo-posterior**, draws from ``N(β̂, Cov)`` (inverse dual
            Hessian, or the sandwich with ``robust=True``) of ``alpha`` (dim ``asc``), ``beta``
            (``coefficient``) and ``gamma`` (user constraints), labelled as such in its
            ``attrs``: not a Bayesian posterior, but arviz plots can put it beside one.
        ``maxent``
            Point estimates, multipliers, standard errors, ``p``, ``eps``, ``w``, ``pi``,
            per-situation normalised entropy; the diagnostics in ``attrs``.
        ``observed_data``
            ``chosen`` (situation).
        """
        rng = np.random.default_rng(random_seed)
        cov = self.cov_robust if robust else self.cov
        sample = rng.multivariate_normal(self.beta, cov, size=(chains, draws), method="eigh")
        blocks = self._blocks()
        post, point = {}, {}
        for dim, idx in blocks.items():
            name = PARAMETER_NAMES[dim]
            labels = [self.terms[i].parameter for i in idx]
            post[name] = xr.DataArray(
                sample[..., idx], dims=("chain", "draw", dim),
                coords={"chain": np.arange(chains), "draw": np.arange(draws), dim: labels},
            )
            point[name] = xr.DataArray(self.beta[idx], dims=(dim,), coords={dim: labels})
            point[f"{name}_se"] = xr.DataArray(self.se[idx], dims=(dim,), coords={dim: labels})
            point[f"{name}_se_robust"] = xr.DataArray(self.se_robust[idx], dims=(dim,), coords={dim: labels})
        sit = {SITUATION: self.coords[SITUATION], ALTERNATIVE: self.coords[ALTERNATIVE]}
        point["lam"] = xr.DataArray(self.lam, dims=("moment",), coords={"moment": self.labels})
        point["cov"] = xr.DataArray(self.cov, dims=("moment", "moment_"),
                                    coords={"moment": self.labels, "moment_": self.labels})
        point["cov_robust"] = xr.DataArray(self.cov_robust, dims=("moment", "moment_"),
                                           coords={"moment": self.labels, "moment_": self.labels})
        point["p"] = xr.DataArray(self.p, dims=(SITUATION, ALTERNATIVE), coords=sit)
        point["eps"] = xr.DataArray(self.eps, dims=(SITUATION, ALTERNATIVE), coords=sit)
        point["normalized_entropy"] = xr.DataArray(self.normalized_entropy_situation, dims=(SITUATION,),
                                                   coords={SITUATION: sit[SITUATION]})
        if self.w is not None:
            point["w"] = xr.DataArray(self.w, dims=(SITUATION, ALTERNATIVE, "error_support"),
                                      coords=sit | {"error_support": self.error_support})
        if self.pi is not None:
            point["pi"] = xr.DataArray(self.pi, dims=(SITUATION, ALTERNATIVE, "probability_support"),
                                       coords=sit | {"probability_support": self.probability_support})
        attrs = {
            "estimator": "generalized maximum entropy (GME) multinomial choice",
            "solver": self.solver, "converged": int(self.converged), "iterations": self.nit,
            "max_violation": self.max_violation, "normalized_entropy": self.normalized_entropy,
            "information_index": self.information_index, "entropy_ratio": self.entropy_ratio,
            "entropy_ratio_dof": self.entropy_ratio_dof, "entropy_ratio_pvalue": self.entropy_ratio_pvalue,
            "loglik": self.loglik, "pseudo_r2": self.pseudo_r2, "hit_rate": self.hit_rate, "kl": self.kl,
        }
        post_attrs = {
            "pseudo_posterior": "asymptotic normal N(estimate, covariance) of the MaxEnt coefficients; "
                                "NOT a Bayesian posterior",
            "covariance": "sandwich" if robust else "inverse dual Hessian",
            "estimator": "maxent",
        }
        chosen = np.asarray(self.coords[ALTERNATIVE])[self._y_index()]
        return xr.DataTree.from_dict({
            "posterior": xr.Dataset(post, attrs=post_attrs),
            "maxent": xr.Dataset(point, attrs=attrs),
            "observed_data": xr.Dataset({"chosen": xr.DataArray(chosen, dims=(SITUATION,),
                                                                coords={SITUATION: sit[SITUATION]})}),
        })

    def _y_index(self):
        return self._chosen
