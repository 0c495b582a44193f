"""The MaxEnt fit: one immutable result for every tier and backend, a
:class:`~pymc_maxent.fit.Fit` like a posterior.

A fit is its stages (:mod:`~pymc_maxent.maxent.stages`): the population GME alone (the MNL tiers'
twins and any moments), then each individual's GCE (``MXL-1`` to ``MXL-3``), then each
situation's (``MXL-4``). Everything a user reads (estimates, standard errors, information
measures, predictions, the DataTree with one group per stage) is derived from them; nothing is
set on a fit after it is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import xarray as xr
from scipy import stats
from scipy.special import entr

from pymc_maxent.arguments import optional_count, require_count
from pymc_maxent.data.choice_data import ALTERNATIVE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.evaluation import CachedEvaluator, ParameterSamples, ProbabilityGraph, unit_log_likelihood
from pymc_maxent.exceptions import MaxEntError, SpecificationError
from pymc_maxent.maxent.delta import DELTA, delta_method, delta_points, delta_steps
from pymc_maxent.maxent.group_dual import choice_fit, linear_resolved
from pymc_maxent.maxent.mixing import MixingStage
from pymc_maxent.maxent.moments import ASC, COEFFICIENT, CONSTRAINT, population_name
from pymc_maxent.maxent.stages import GroupStage, PopulationStage
from pymc_maxent.numerics import pseudo_inverse_factor, qmc_normal_points
from pymc_maxent.utility import choice_probabilities, component_utility

#: Names of the coefficient variables by dim, as in the Bayesian builder.
PARAMETER_NAMES = {ASC: "alpha", COEFFICIENT: "beta", CONSTRAINT: "gamma"}
RANDOM, RANDOM_ = "random_coefficient", "random_coefficient_"
#: The Bayesian tier's dim of its situation-level deviations (``z_situation``).
SITUATION_COEFFICIENT, SITUATION_COEFFICIENT_ = "situation_coefficient", "situation_coefficient_"
#: Draws of the asymptotic normal when none are asked for.
DEFAULT_DRAWS = 1000
#: Quasi-Monte Carlo points (and their seed) of the integral over the learnt mixing
#: distribution that predicts individuals a fit has not seen.
NEWCOMER_POINTS = 256
NEWCOMER_SEED = 20240


def parameter_names(terms) -> list[str]:
    """``alpha[air]``, ``beta[gc]``, ``gamma[name]``: the Bayesian models' names, one per term.

    Examples
    --------
    >>> from pymc_maxent.maxent.moments import Term
    >>> from pymc_maxent.maxent.result import parameter_names
    >>> parameter_names([Term("share[air]", "air", "asc"), Term("sum[gc]", "gc", "coefficient")])
    ['alpha[air]', 'beta[gc]']
    """
    return [f"{PARAMETER_NAMES[t.dim]}[{t.parameter}]" for t in terms]


def _entropy_rows(x, chunk: int = 1 << 16) -> np.ndarray:
    """``−Σ x ln x`` over all but the first axis, per row (``0 ln 0 = 0``), in row chunks."""
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], chunk):
        e = entr(x[s:s + chunk])
        out[s:s + chunk] = e.reshape(e.shape[0], -1).sum(axis=1)
    return out


def normal_table(estimate, sd, hdi_prob, index) -> pd.DataFrame:
    """``estimate``, ``sd`` and the normal interval with probability ``hdi_prob``."""
    half = stats.norm.ppf(0.5 + hdi_prob / 2) * np.asarray(sd)
    return pd.DataFrame({"estimate": estimate, "sd": sd, "lower": estimate - half, "upper": estimate + half},
                        index=pd.Index(index, name="parameter"))


def _check_hdi(hdi_prob) -> None:
    if not 0 < hdi_prob < 1:
        raise MaxEntError(f"hdi_prob must lie in (0, 1); got {hdi_prob!r}")


@dataclass(frozen=True, eq=False)
class MaxEntResult(CachedEvaluator):
    """A fitted MaxEnt choice model, at any tier, in memory or of Dask data; in the style of
    ``scipy.optimize.OptimizeResult``, and a :class:`~pymc_maxent.fit.Fit` like a posterior.

    Attributes
    ----------
    model : pm.Model
        The model holding the data containers (None for Dask data).
    data : ChoiceData
        The fitted data (None for Dask data).
    spec : tuple of Moment, or ModelSpec
        The moments fitted, or the tier of a MaxEnt mixed logit.
    stages : tuple
        The :class:`~pymc_maxent.maxent.stages.PopulationStage`, then the
        :class:`~pymc_maxent.maxent.stages.GroupStage` of the individuals and of the situations,
        where the tier has them.
    problem : MaxEntEstimator or None
        The compiled population problem (refit it, predict at other multipliers).
    recipe : object
        The fit's settings: :meth:`refit` and :meth:`settings` go through it.
    resolved : ResolvedSpec or None
        A mixed tier's layout on the data (its random components).
    in_memory : bool
        False for a fit of Dask data: it holds no situation-sized arrays, and whatever needs them
        (prediction, the diagnostics, the DataTree, refits) raises one clear error.
    support_selection : DataFrame or None
        With ``individual_support="select"``: the held-out scores of the widths
        (:func:`~pymc_maxent.maxent.estimator.select_individual_support`).
    chunks, seconds
        A fit of Dask data: situations per stage-2 block, and the wall time of its steps.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> res = pmx.fit_maxent(pmx.load_travel_mode())
    >>> res.converged, res.identified, res.summary().loc["beta[gc]", "estimate"].round(3)
    (True, True, np.float64(-0.015))
    """

    model: object
    data: ChoiceData | None
    spec: object
    stages: tuple
    problem: object = None
    recipe: object = None
    resolved: object = None
    in_memory: bool = True
    support_selection: pd.DataFrame | None = None
    chunks: tuple = ()
    seconds: dict = field(default_factory=dict)

    estimator = "maxent"

    # ------------------------------------------------------------------ the stages
    @property
    def population_stage(self) -> PopulationStage:
        return self.stages[0]

    @property
    def individual_stage(self) -> GroupStage:
        return self._stage("individual")

    @property
    def situation_stage(self) -> GroupStage:
        return self._stage("situation")

    @property
    def tier(self) -> str:
        """The tier's name (``MXL-1`` …), or ``"moments"`` for a fit of given moments."""
        return getattr(self.spec, "name", "moments")

    def _stage(self, level: str) -> GroupStage:
        for stage in self.stages[1:]:
            if stage.level == level:
                return stage
        how = {"situation": "fit MXL-4 for it", "mixing": "its individual pooling was given, not learnt "
               "(individual_support='learn', the default at the mixed tiers, learns it)"}
        raise MaxEntError(f"this MaxEnt fit ({self.tier}) has no {level} stage: "
                          f"{how.get(level, 'fit a mixed tier (MXL-1 to MXL-4) for it')}")

    def has_stage(self, level: str) -> bool:
        return any(stage.level == level for stage in self.stages[1:])

    @property
    def group_stages(self) -> tuple:
        """The :class:`~pymc_maxent.maxent.stages.GroupStage` of the individuals (and situations)."""
        return tuple(s for s in self.stages[1:] if isinstance(s, GroupStage))

    @property
    def mixing_stage(self) -> MixingStage:
        """The learnt mixing distribution (``individual_support="learn"``)."""
        return self._stage("mixing")

    @property
    def learnt(self) -> bool:
        """Whether the individual stage's pooling was learnt (a :class:`MixingStage`)."""
        return self.has_stage("mixing")

    def _in_memory(self, what: str) -> None:
        if not self.in_memory:
            raise MaxEntError(f"a fit of Dask data cannot {what}: it holds no situation-sized arrays or data "
                              "containers; fit the data (or a sample of it) in memory with fit_maxent for "
                              "prediction and the diagnostics")

    @cached_property
    def population(self) -> MaxEntResult:
        """Stage 1 as a fit of its own (the tier's fixed twin); the fit itself when it is one."""
        if len(self.stages) == 1:
            return self
        return MaxEntResult(model=self.model, data=self.data, spec=tuple(self.problem.moments.moments)
                            if self.problem is not None else (), stages=self.stages[:1], problem=self.problem,
                            recipe=getattr(self.recipe, "population", None), in_memory=self.in_memory)

    # ------------------------------------------------------------------ stage 1: multipliers
    @property
    def terms(self) -> list:
        return list(self.population_stage.terms)

    @property
    def labels(self) -> list[str]:
        return self.population_stage.labels

    @property
    def lam(self) -> np.ndarray:
        return self.population_stage.lam

    @property
    def mu(self):
        return self.population_stage.mu

    @property
    def dual_value(self) -> float:
        return self.population_stage.dual_value

    @property
    def cov(self) -> np.ndarray:
        return self.population_stage.cov

    @property
    def cov_robust(self) -> np.ndarray:
        return self.population_stage.cov_robust

    @property
    def solver(self) -> str:
        return self.population_stage.solver

    @property
    def identified(self) -> bool:
        return bool(self.population_stage.identification.identified)

    @property
    def condition_number(self) -> float:
        return float(self.population_stage.identification.condition_number)

    @property
    def information_condition_number(self) -> float:
        return float(self.population_stage.identification.information_condition_number)

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

    @property
    def solve_options(self) -> dict:
        """``tol``, ``maxiter``, ``on_unidentified`` and ``dual_method`` of the solve."""
        return self.recipe.solve_options()

    @property
    def options(self) -> dict:
        """The later stages' settings (supports, solver, chunks) as given."""
        return self.recipe.stage_options()

    def parameter_names(self) -> list[str]:
        """``alpha[air]``, ``beta[gc]``: the Bayesian models' names, one per moment."""
        return parameter_names(self.terms)

    # ------------------------------------------------------------------ convergence
    @property
    def converged(self) -> bool:
        """Every stage met its criterion (stage 1: every moment residual within ``tol`` of its
        reachable range; later stages: every group's)."""
        return bool(self.population_stage.converged and all(np.all(s.converged) for s in self.stages[1:]))

    @property
    def max_violation(self) -> float:
        """Largest violation of a constraint (moments, adding-up, normalisations), every stage."""
        worst = [s.violation.max(initial=0.0) for s in self.group_stages]
        return float(max([self.population_stage.max_violation, *worst]))

    @property
    def nit(self) -> int:
        """Iterations of stage 1's solver."""
        return self.population_stage.nit

    @property
    def message(self) -> str:
        if len(self.stages) == 1:
            return self.population_stage.message
        return self.convergence_message()

    def convergence_message(self) -> str:
        """Every stage's convergence in words."""
        if len(self.stages) == 1:
            return self.population_stage.message
        ind = self.individual_stage
        worst = int(np.argmax(ind.violation)) if len(ind.violation) else 0
        parts = [f"{ind.n_converged} of {len(ind.labels)} individuals converged",
                 f"worst constraint violation {ind.violation.max(initial=0.0):.2e} (individual "
                 f"{ind.labels[worst] if len(ind.labels) else ''})"]
        if ind.separated is not None:
            parts.append(f"{ind.n_separated} with separated choices (kept finite by the noise term)")
        if not self.population_stage.converged:
            parts.append(f"population stage NOT converged: {self.population_stage.message}")
        if self.learnt:
            parts.append(self.mixing_stage.describe())
        if self.has_stage("situation"):
            sit = self.situation_stage
            worst = int(np.argmax(sit.violation)) if len(sit.violation) else 0
            parts.append(f"{sit.n_converged} of {len(sit.labels)} situations converged, worst situation "
                         "constraint "
                         f"violation {sit.violation.max(initial=0.0):.2e} (situation "
                         f"{sit.labels[worst] if len(sit.labels) else ''})")
        return "; ".join(parts)

    def convergence(self) -> dict:
        """Solver health as plain numbers: ``converged`` (every stage), ``identified`` (stage 1),
        ``max_violation``, ``iterations``, the scaled Hessian's ``condition_number``; and per later
        stage the counts of groups and of those that converged or were separated."""
        pop = self.population_stage
        out = {"converged": self.converged, "identified": self.identified,
               "max_violation": self.max_violation,
               "iterations": pop.nit, "condition_number": self.condition_number}
        if self.has_stage("individual"):
            ind = self.individual_stage
            out |= {"iterations": int(ind.nit.max(initial=0)), "n_individuals": len(ind.labels),
                    "n_converged": ind.n_converged, "n_separated": ind.n_separated,
                    "population_converged": pop.converged}
        if self.learnt:
            mix = self.mixing_stage
            out |= {"mixing_converged": mix.converged, "mixing_iterations": mix.nit,
                    "mixing_individuals": mix.n_individuals, "mixing_identified": mix.identified,
                    "mixing_method": mix.method, "mixing_mc_shift": mix.mc_shift,
                    "mixing_ess_min": float(mix.ess.min(initial=np.inf))}
        if self.has_stage("situation"):
            sit = self.situation_stage
            out |= {"n_situations": len(sit.labels), "n_converged_situations": sit.n_converged,
                    "situation_iterations": int(sit.nit.max(initial=0)),
                    "situation_max_violation": float(sit.violation.max(initial=0.0))}
        return out

    def __repr__(self) -> str:
        if len(self.stages) == 1:
            return "\n".join([
                f"MaxEntResult(solver={self.solver!r}, converged={self.converged}, "
                f"identified={self.identified}, "
                f"nit={self.nit}, max_violation={self.max_violation:.2e})",
                *([] if not self.in_memory else [
                    f"  normalized entropy {self.normalized_entropy:.4f}, information index "
                    f"{self.information_index:.4f}, ER {self.entropy_ratio:.2f} "
                    f"(dof {self.entropy_ratio_dof}, "
                    f"p {self.entropy_ratio_pvalue:.3g}), pseudo-R2 {self.pseudo_r2:.4f}, "
                    f"hit rate {self.hit_rate:.3f}"])])
        return f"MaxEntResult({self.tier}, converged={self.converged}, {self.convergence_message()})"

    # ------------------------------------------------------------------ the primal solution
    @property
    def p(self):
        """``p̂`` (situation, alternative) of the last stage (0 where unavailable; lazy for Dask)."""
        last = self.stages[-1]
        return last.p

    @property
    def eps(self) -> np.ndarray:
        """``ε̂`` as it enters the moments: stage 1's, or stage 2's at the mixed tiers."""
        return self.individual_stage.eps if len(self.stages) > 1 else self.population_stage.eps

    @property
    def w(self):
        return self.population_stage.w

    @property
    def pi(self):
        return self.population_stage.pi

    @property
    def available(self) -> np.ndarray:
        return self.population_stage.available

    @property
    def p0(self):
        return self.population_stage.p0

    @property
    def error_support(self):
        return self.population_stage.error_support

    @property
    def probability_support(self):
        return self.population_stage.probability_support

    # ------------------------------------------------------------------ stage 1: information
    def _population_statistic(self, name: str):
        if len(self.stages) > 1:
            raise MaxEntError(f"{name} is a statistic of a population fit; this is a MaxEnt mixed logit "
                              f"({self.tier}): read fit.population.{name}")
        self._in_memory(f"compute {name}")

    @cached_property
    def _entropy(self) -> dict:
        self._population_statistic("the entropy")
        pop = self.population_stage
        p, available = pop.p, pop.available
        log_j = np.log(available.sum(axis=1))
        h_i = _entropy_rows(p)
        entropy = float(h_i.sum())
        if pop.p0 is None:  # uniform over the available alternatives: Σ p ln p0 = −Σ_i ln J_i
            kl_p = float(log_j.sum() - entropy)
        else:
            kl_p = float(-entropy - (p * np.log(np.where(pop.p0 > 0, pop.p0, 1.0))).sum())
        kl_w, error = 0.0, np.nan
        if pop.w is not None:
            h_w = float(_entropy_rows(pop.w).sum())
            error = h_w / (available.sum() * np.log(pop.w.shape[-1]))
            kl_w = -h_w - float(pop.w.sum(axis=(0, 1)) @ np.log(pop.w0))
        return {"entropy": entropy, "situation": h_i / log_j, "normalized": float(h_i.sum() / log_j.sum()),
                "kl_p": kl_p, "kl_w": kl_w, "error": error, "log_j": log_j}

    @property
    def entropy(self) -> float:
        """``S(p̂) = −Σ p̂ ln p̂``."""
        return self._entropy["entropy"]

    @property
    def normalized_entropy(self) -> float:
        """``S(p̂) / Σ_i ln J_i``."""
        return self._entropy["normalized"]

    @property
    def normalized_entropy_situation(self) -> np.ndarray:
        return self._entropy["situation"]

    @property
    def normalized_entropy_error(self) -> float:
        return self._entropy["error"]

    @property
    def information_index(self) -> float:
        """``1 − S``."""
        return 1.0 - self.normalized_entropy

    @property
    def kl_p(self) -> float:
        """``KL(p̂‖p0)``."""
        return self._entropy["kl_p"]

    @property
    def kl_w(self) -> float:
        """``KL(ŵ‖w0)`` (0 without an error support)."""
        return self._entropy["kl_w"]

    @property
    def kl(self) -> float:
        """The objective ``KL(p̂‖p0) + KL(ŵ‖w0)``."""
        return self.kl_p + self.kl_w

    @property
    def entropy_ratio(self) -> float:
        """``ER = 2 KL(p̂‖p0)`` (χ² with as many degrees of freedom as moments)."""
        return 2.0 * self.kl_p

    @property
    def entropy_ratio_dof(self) -> int:
        return len(self.terms)

    @property
    def entropy_ratio_pvalue(self) -> float:
        return float(stats.chi2.sf(self.entropy_ratio, self.entropy_ratio_dof))

    @property
    def loglik_null(self) -> float:
        self._population_statistic("loglik_null")
        return float(-self._entropy["log_j"].sum())

    @property
    def pseudo_r2(self) -> float:
        """McFadden's ``1 − ln L(p̂) / ln L(uniform)``."""
        return 1.0 - self.loglik / self.loglik_null

    @cached_property
    def _choice_fit(self) -> tuple[float, int, int]:
        last = self.stages[-1]
        if len(self.stages) > 1 and not self.in_memory:
            return last.loglik, last.hits, last.n
        self._in_memory("compute the log-likelihood")
        chosen = self.population_stage.chosen
        loglik, hits = choice_fit(self.p, chosen)
        return loglik, hits, len(chosen)

    @property
    def loglik(self) -> float:
        """The log-likelihood of the fitted choices at the estimate (with the individual effects at
        the mixed tiers)."""
        return self._choice_fit[0]

    @property
    def hit_rate(self) -> float:
        """The share of situations whose most probable alternative was chosen."""
        _, hits, n = self._choice_fit
        return hits / max(n, 1)

    # ------------------------------------------------------------------ stage 1: tables and draws
    def summary(self) -> pd.DataFrame:
        """Stage 1's estimates (``−λ``), standard errors (inverse Hessian and sandwich), z and
        p-values, indexed by parameter name, beside the moment each multiplier enforces: GME as
        written, which :meth:`predict` and :meth:`parameter_draws` use. :meth:`estimates` is
        centred on the bias-corrected estimate instead (and keeps GME's as ``gme``)."""
        z = self.beta / np.where(self.se > 0, self.se, np.nan)
        return pd.DataFrame({"moment": self.labels, "estimate": self.beta, "se": self.se,
                             "se_robust": self.se_robust, "z": z, "p_value": 2 * stats.norm.sf(np.abs(z))},
                            index=pd.Index(self.parameter_names(), name="parameter"))

    @property
    def beta_gme(self) -> np.ndarray:
        """GME's estimate as written, ``−λ̂`` (shrunk toward 0 by the noise term): :attr:`beta`."""
        return self.beta

    @property
    def beta_corrected(self) -> np.ndarray:
        """The bias-corrected estimate, ``−λ̃``: Newton steps of the dual without its noise term
        from ``λ̂`` (:func:`~pymc_maxent.maxent.stages.likelihood_correction`), the centre of
        :meth:`estimates`.

        Raises
        ------
        MaxEntError
            A fit whose dual cannot be evaluated (a nonlinear constraint).
        """
        return -self._corrected("lam_corrected")

    @property
    def se_corrected(self) -> np.ndarray:
        """Standard errors of :attr:`beta_corrected`: the inverse choice information's."""
        return np.sqrt(np.clip(np.diag(self._corrected("cov_corrected")), 0.0, None))

    @property
    def se_corrected_robust(self) -> np.ndarray:
        """Sandwich standard errors of :attr:`beta_corrected`."""
        return np.sqrt(np.clip(np.diag(self._corrected("cov_corrected_robust")), 0.0, None))

    def _corrected(self, name: str) -> np.ndarray:
        stage = self.population_stage
        if not stage.correctable:
            raise MaxEntError("this fit has no bias-corrected estimate (its dual cannot be evaluated: a "
                              "nonlinear constraint, or a non-finite choice information); use beta (GME's)")
        return getattr(stage, name)

    def _population_estimates(self, hdi_prob: float) -> pd.DataFrame:
        """Stage 1's table: the bias-corrected centre and its standard errors where the dual can
        be evaluated (``attrs["centre"]`` ``"corrected"``), else GME's (``"gme"``); GME's own
        estimate and standard error as ``gme`` and ``sd_gme``."""
        table = self.summary()
        if self.population_stage.correctable:
            estimate, se, robust, centre = (self.beta_corrected, self.se_corrected, self.se_corrected_robust,
                                            "corrected")
        else:
            estimate, se, robust, centre = table["estimate"], table["se"], table["se_robust"], "gme"
        estimate, se, robust = (np.asarray(v, dtype=float) for v in (estimate, se, robust))
        z = estimate / np.where(se > 0, se, np.nan)
        out = normal_table(estimate, se, hdi_prob, table.index).assign(
            se_robust=robust, z=z, p_value=2 * stats.norm.sf(np.abs(z)), moment=table["moment"],
            gme=table["estimate"], sd_gme=table["se"])
        out.attrs["centre"] = centre
        return out

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
        return rng.multivariate_normal(self.lam, self.covariance_matrix(robust), size=n, method="eigh")

    def parameter_dataset(self, values, sample_dims: dict) -> dict[str, xr.DataArray]:
        """Coefficient values ``(*samples, C)`` (``β``, not ``λ``) as ``alpha`` (dim ``asc``),
        ``beta`` (``coefficient``) and ``gamma`` (``constraint``), with the sample dims first."""
        values = np.asarray(values)
        blocks: dict[str, list[int]] = {}
        for i, t in enumerate(self.terms):
            blocks.setdefault(t.dim, []).append(i)
        return {PARAMETER_NAMES[dim]: xr.DataArray(values[..., idx], dims=(*sample_dims, dim),
                                                   coords=sample_dims | {dim: [self.terms[i].parameter
                                                                               for i in idx]})
                for dim, idx in blocks.items()}

    def normal_draws(self, chains: int, draws: int, *, robust: bool = False, random_seed=0) -> xr.Dataset:
        """Draws ``(chain, draw)`` of stage 1's ``alpha``, ``beta``, ``gamma`` from the asymptotic
        normal ``N(β̂, Cov)``."""
        chains, draws = require_count(chains, "chains"), require_count(draws, "draws")
        rng = np.random.default_rng(random_seed)
        sample = rng.multivariate_normal(self.beta, self.covariance_matrix(robust), size=(chains, draws),
                                         method="eigh")
        dims = {"chain": np.arange(chains), "draw": np.arange(draws)}
        return xr.Dataset(self.parameter_dataset(sample, dims), attrs={
            "pseudo_posterior": "asymptotic normal N(estimate, covariance) of the MaxEnt coefficients; "
                                "NOT a Bayesian posterior",
            "covariance": "sandwich" if robust else "inverse dual Hessian", "estimator": "maxent"})

    # ------------------------------------------------------------------ stage 2: individuals
    @property
    def random_labels(self) -> list[str]:
        return list(self.individual_stage.components)

    @property
    def individual_labels(self) -> np.ndarray:
        return np.asarray(self.individual_stage.labels)

    @property
    def n_individuals(self) -> int:
        return len(self.individual_stage.labels)

    @cached_property
    def _random_index(self) -> np.ndarray:
        names = self.parameter_names()
        return np.array([names.index(population_name(label)) for label in self.random_labels])

    @property
    def beta_population(self) -> np.ndarray:
        """Stage 1's coefficients of the random components, ``β̂`` (the fixed twin's)."""
        return self.beta[self._random_index]

    @property
    def centre_lam(self) -> np.ndarray:
        """The multipliers (``−`` coefficients, stage 1's order) the individual stage is centred
        on: with learnt pooling the fixed coefficients and ``μ`` of the mixing distribution, else
        stage 1's ``λ̂``. The probability graph's ``lam`` is evaluated there."""
        if self.learnt:
            return -self.mixing_stage.coefficients(self.parameter_names())
        return self.lam

    def centre_covariance(self, robust: bool = False) -> np.ndarray:
        """The covariance of :attr:`centre_lam` (the mixing stage's, or stage 1's)."""
        if self.learnt:
            return self.mixing_stage.centre_covariance(self.parameter_names(), robust)
        return self.covariance_matrix(robust)

    def centre_draws(self, n: int, *, robust: bool = False, random_seed=0) -> np.ndarray:
        """``n`` draws ``(n, C)`` of the centre's multipliers from their asymptotic normal."""
        if not self.learnt:
            return self.multiplier_draws(n, robust=robust, random_seed=random_seed)
        n = require_count(n, "draws")
        rng = np.random.default_rng(random_seed)
        return rng.multivariate_normal(self.centre_lam, self.centre_covariance(robust), size=n, method="eigh")

    @property
    def beta_centre(self) -> np.ndarray:
        """The random components' coefficients the individual stage is centred on: ``μ`` of the
        learnt mixing distribution, else stage 1's ``β̂``."""
        return -self.centre_lam[self._random_index]

    @property
    def delta(self) -> np.ndarray:
        """``δ_i`` (individual × random_coefficient): ``β_i = β_centre − δ_i``."""
        return self.individual_stage.delta

    @property
    def beta_individual(self) -> np.ndarray:
        """``β_i`` (individual × random_coefficient)."""
        return self.beta_centre[None, :] - self.delta

    @property
    def cov_individual(self) -> np.ndarray:
        """Each individual's ``H_i⁻¹`` (conditional on stage 1; ``inf`` where not identified)."""
        return self.individual_stage.cov

    @property
    def beta_individual_se(self) -> np.ndarray:
        return self.individual_stage.se

    @property
    def kl_individual(self) -> np.ndarray:
        """``KL(p^(i) ‖ p⁰)`` over each individual's situations: what their own choices add, in nats."""
        return self.individual_stage.kl

    @property
    def information_index_individual(self) -> np.ndarray:
        """``KL(p^(i) ‖ p⁰) / KL(y_i ‖ p⁰)``: 0 at ``δ_i = 0``, towards 1 as ``p^(i)`` approaches the
        observed choices."""
        return self.individual_stage.information_index

    @property
    def kl_total(self) -> float:
        return self.individual_stage.kl_total

    @property
    def information_index_total(self) -> float:
        return self.individual_stage.total_index()

    @property
    def converged_individual(self) -> np.ndarray:
        return self.individual_stage.converged

    @property
    def separated(self):
        """Per individual: own choices (quasi-)separated in the random components (None: not checked)."""
        return self.individual_stage.separated

    @property
    def nit_individual(self) -> np.ndarray:
        return self.individual_stage.nit

    @property
    def violation_individual(self) -> np.ndarray:
        return self.individual_stage.violation

    @property
    def n_situations_individual(self) -> np.ndarray:
        return self.individual_stage.n_situations

    @property
    def n_converged(self) -> int:
        return self.individual_stage.n_converged

    @property
    def n_separated(self):
        return self.individual_stage.n_separated

    @property
    def support(self):
        """The base individual error support; individual ``i``'s is ``support * support_scale[i]``."""
        return self.individual_stage.support

    @property
    def support_scale(self) -> np.ndarray:
        return self.individual_stage.scale

    @property
    def individual_problem(self):
        """Stage 2's arrays (:class:`~pymc_maxent.maxent.group_dual.GroupProblem`)."""
        return self.individual_stage.problem

    @property
    def p_individual(self) -> np.ndarray:
        """Stage 2's ``p^(i)`` (stage 3's prior at ``MXL-4``)."""
        return self.individual_stage.p

    def individual_estimates(self) -> xr.Dataset:
        """``β_i``: ``estimate`` and ``sd`` (individual × random_coefficient), with the Bayesian
        tier's dims and coords (those of its ``z``).

        Raises
        ------
        SpecificationError
            A fit without an individual stage.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=8, seed=2)
        >>> dict(pmx.fit_maxent(data, tier="MXL-1").individual_estimates()["estimate"].sizes)
        {'individual': 20, 'random_coefficient': 2}
        """
        if not self.has_stage("individual"):
            raise SpecificationError(f"{type(self).__name__} has no individual coefficients (a fixed-"
                                     "coefficient fit); use a mixed tier")
        coords = {INDIVIDUAL: self.individual_labels.tolist(), RANDOM: self.random_labels}
        dims = (INDIVIDUAL, RANDOM)
        return xr.Dataset({"estimate": xr.DataArray(self.beta_individual, dims=dims, coords=coords),
                           "sd": xr.DataArray(self.beta_individual_se, dims=dims, coords=coords)})

    def individual_coefficient_draws(self, *, population_draws: int = 0, random_seed=0):
        """None: a MaxEnt fit has no draws of its individual coefficients (a posterior has)."""
        return None

    def population_summary(self) -> pd.DataFrame:
        """Mean, SD and the share with the opposite sign to the population coefficient, of the
        individual estimates, per random component; and the population coefficient
        (:attr:`beta_centre`: ``μ`` with learnt pooling, else stage 1's ``β̂``). Like posterior
        means of ``β_i``, the individual estimates are shrunk toward the population, so their SD
        understates ``σ`` at few situations per individual: with learnt pooling the mixing
        distribution's ``mu`` and ``sigma`` (deconvolved) follow as columns."""
        b = self.beta_individual
        opposite = (np.sign(b) != np.sign(self.beta_centre)[None, :]).mean(axis=0)
        table = pd.DataFrame({"mean": b.mean(axis=0), "sd": b.std(axis=0, ddof=1),
                              "population": self.beta_centre, "opposite_sign_share": opposite},
                             index=pd.Index(self.random_labels, name=RANDOM))
        if self.learnt:
            table["mu"], table["sigma"] = self.mixing_stage.mu, self.mixing_stage.sigma
        return table

    def population_corr(self) -> pd.DataFrame:
        """The correlation matrix of the individual estimates."""
        corr = np.corrcoef(self.beta_individual, rowvar=False).reshape(len(self.random_labels), -1)
        return pd.DataFrame(corr, index=self.random_labels, columns=self.random_labels)

    # ------------------------------------------------------------------ stage 3: situations
    @cached_property
    def situation_components(self) -> np.ndarray:
        """Positions of the situation-level components among the random components."""
        labels = self.situation_stage.components
        return np.array([self.random_labels.index(label) for label in labels], dtype=int)

    @property
    def situation_labels(self) -> list[str]:
        return list(self.situation_stage.components)

    @property
    def situation_problem(self):
        """Stage 3's arrays (:class:`~pymc_maxent.maxent.group_dual.GroupProblem`)."""
        return self.situation_stage.problem

    @property
    def delta_situation(self) -> np.ndarray:
        """``δ_t`` of stage 3's duals (situation × situation_coefficient)."""
        return self.situation_stage.delta

    @property
    def deviation_situation(self) -> np.ndarray:
        """``d_t = −δ_t``: the situation's coefficients are ``β_it = β_i + d_t``."""
        return -self.delta_situation

    @property
    def cov_situation(self) -> np.ndarray:
        return self.situation_stage.cov

    @property
    def deviation_situation_se(self) -> np.ndarray:
        """SEs from the inverse of each situation's dual Hessian (``inf`` where not identified:
        one choice identifies at most ``J − 1`` directions)."""
        return self.situation_stage.se

    @property
    def eps_situation(self) -> np.ndarray:
        return self.situation_stage.eps

    @property
    def kl_situation(self) -> np.ndarray:
        return self.situation_stage.kl

    @property
    def information_index_situation(self) -> np.ndarray:
        return self.situation_stage.information_index

    @property
    def kl_situation_total(self) -> float:
        return self.situation_stage.kl_total

    @property
    def information_index_situation_total(self) -> float:
        return self.situation_stage.total_index()

    @property
    def converged_situation(self) -> np.ndarray:
        return self.situation_stage.converged

    @property
    def nit_situation(self) -> np.ndarray:
        return self.situation_stage.nit

    @property
    def violation_situation(self) -> np.ndarray:
        return self.situation_stage.violation

    @property
    def n_converged_situations(self) -> int:
        return self.situation_stage.n_converged

    def situation_estimates(self) -> xr.Dataset:
        """Per situation: the deviation ``d_t`` (``estimate``) and its ``sd``, and the situation's
        coefficients ``beta = β_i + d_t`` (situation × situation_coefficient, the dims of the
        Bayesian ``z_situation``); ``kl``, ``information_index``, ``converged`` (situation).

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data, _ = pmx.simulate_choices("MXL-4", n_individuals=10, n_situations=4, n_attributes=1, seed=2)
        >>> dict(pmx.fit_maxent(data, tier="MXL-4").situation_estimates()["estimate"].sizes)
        {'situation': 40, 'situation_coefficient': 3}
        """
        sit = {SITUATION: self.data.situations.tolist()}
        pair = {"dims": (SITUATION, SITUATION_COEFFICIENT),
                "coords": sit | {SITUATION_COEFFICIENT: self.situation_labels}}
        beta = self.beta_individual[self.individual_problem.group][:, self.situation_components]
        one = {"dims": (SITUATION,), "coords": sit}
        return xr.Dataset({
            "estimate": xr.DataArray(self.deviation_situation, **pair),
            "sd": xr.DataArray(self.deviation_situation_se, **pair),
            "beta": xr.DataArray(beta + self.deviation_situation, **pair),
            "kl": xr.DataArray(self.kl_situation, **one),
            "information_index": xr.DataArray(self.information_index_situation, **one),
            "converged": xr.DataArray(self.converged_situation, **one),
        })

    # ------------------------------------------------------------------ estimates
    def estimates(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """One row per parameter, named as the Bayesian tier's.

        A population fit: ``estimate`` (the bias-corrected estimate :attr:`beta_corrected`),
        ``sd`` (its standard error, the inverse choice information's), ``lower`` and ``upper``
        (the normal interval with probability ``hdi_prob``: 94 % intervals cover 0.92-0.96 in
        :func:`~pymc_maxent.calibration.maxent_coverage`, ``docs/calibration.md``), then
        ``se_robust``, ``z``, ``p_value`` and ``moment``: a posterior's columns first, so that the
        two line up; then GME as written, ``gme`` (``−λ̂``, shrunk toward 0 by the noise term) and
        ``sd_gme`` (the inverse dual Hessian's); ``attrs["centre"]`` says ``"corrected"``, or
        ``"gme"`` where the dual cannot be evaluated and the first columns are GME's.

        A MaxEnt mixed logit with learnt pooling (the default): the mixing stage's fixed
        ``alpha`` / ``beta``, ``mu`` and ``sigma`` of the mixing distribution (and ``corr`` above
        the diagonal for a correlated specification), deconvolved from the individual stage by
        maximum marginal likelihood, with standard errors from its observed information
        (``se_robust``: the sandwich over individuals); they estimate what the posterior's
        ``mu``, ``sigma`` and ``corr`` do. With a given individual support
        (``individual_support="fixed"``, a width, an array, None or ``"select"``): stage 1's
        fixed ``alpha`` / ``beta``, then ``mu`` and ``sigma`` as the mean and SD of the (shrunk)
        individual estimates and ``corr`` their correlations, with normal-theory SEs of those
        sample moments over individuals (``σ/√I``, ``σ/√(2(I−1))``, ``(1 − r²)/√(I − 3)``) that
        leave out the estimation error of each ``β_i``. At ``MXL-4`` also ``sigma_situation``,
        the SD over situations of the deviations, set by ``situation_support`` more than by the
        data (no estimate of the Bayesian ``sigma_situation``).

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> res = pmx.fit_maxent(pmx.load_travel_mode())
        >>> table = res.estimates(hdi_prob=0.9)
        >>> list(table.columns[:4]), bool((table["lower"] < table["estimate"]).all())
        (['estimate', 'sd', 'lower', 'upper'], True)
        """
        _check_hdi(hdi_prob)
        table = self._population_estimates(hdi_prob)
        if not self.has_stage("individual"):
            return table
        tables = self._learnt_estimates(hdi_prob) if self.learnt else self._summary_estimates(table, hdi_prob)
        if self.has_stage("situation"):
            sd = self.deviation_situation.std(axis=0, ddof=1)
            N = len(self.deviation_situation)
            tables.append(normal_table(sd, sd / np.sqrt(2.0 * max(N - 1, 1)), hdi_prob,
                                       [f"sigma_situation[{label}]" for label in self.situation_labels]))
        return pd.concat(tables)

    def _learnt_estimates(self, hdi_prob: float) -> list[pd.DataFrame]:
        """The mixing stage's fixed coefficients, ``mu``, ``sigma`` (and ``corr``), with the
        standard errors of the marginal likelihood's observed information (``se_robust``: the
        sandwich over individuals)."""
        names, estimate, se = self.mixing_stage.table()
        _, _, se_robust = self.mixing_stage.table(robust=True)
        order = {name: k for k, name in enumerate(self.parameter_names())}
        first = sorted(range(len(self.mixing_stage.fixed)), key=lambda k: order[names[k]])
        keep = first + list(range(len(self.mixing_stage.fixed), len(names)))
        table = normal_table(estimate[keep], se[keep], hdi_prob, [names[k] for k in keep])
        return [table.assign(se_robust=se_robust[keep])]

    def _summary_estimates(self, table: pd.DataFrame, hdi_prob: float) -> list[pd.DataFrame]:
        """Stage 1's fixed coefficients and the mean, SD and correlations of the ``β_i`` (a fit
        with a given individual support)."""
        fixed = table[["estimate", "sd", "lower", "upper"]]
        random_names = {population_name(label) for label in self.random_labels}
        tables = [fixed.loc[[k for k in fixed.index if k not in random_names]]]
        I, b, labels = self.n_individuals, self.beta_individual, self.random_labels
        mean, sd = b.mean(axis=0), b.std(axis=0, ddof=1)
        tables += [normal_table(mean, sd / np.sqrt(I), hdi_prob, [f"mu[{label}]" for label in labels]),
                   normal_table(sd, sd / np.sqrt(2.0 * max(I - 1, 1)), hdi_prob,
                                [f"sigma[{label}]" for label in labels])]
        R = len(labels)
        if R > 1:
            corr = self.population_corr().to_numpy()
            upper = [(a, c) for a in range(R) for c in range(a + 1, R)]
            r = np.array([corr[a, c] for a, c in upper])
            tables.append(normal_table(r, (1 - r**2) / np.sqrt(max(I - 3, 1)), hdi_prob,
                                       [f"corr[{labels[a]}, {labels[c]}]" for a, c in upper]))
        return tables

    def parameter_count(self) -> dict[str, int]:
        """Free parameters: stage 1's multipliers (and, with learnt pooling, the free elements of
        ``Σ``); latent: one ``δ`` per group and component of the later stages."""
        extra = len(self.mixing_stage.pairs) if self.learnt else 0
        return {"parameters": int(self.lam.size) + extra,
                "latent": int(sum(s.delta.size for s in self.group_stages))}

    def lppd(self) -> float:
        """The log-likelihood of the fitted choices at the estimate (``loglik``)."""
        return self.loglik

    def loo(self):
        """None: a MaxEnt fit has no draws to leave observations out of."""
        return None

    def prior_probabilities(self, draws: int = 500, random_seed=0) -> np.ndarray:
        """The prior ``p0`` (situation, alternative) of stage 1: uniform over the available
        alternatives unless one was given (``draws`` and ``random_seed`` are there for a
        posterior's prior predictive mean; a MaxEnt prior is fixed).

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> pmx.fit_maxent(pmx.load_travel_mode()).prior_probabilities()[0].tolist()
        [0.25, 0.25, 0.25, 0.25]
        """
        require_count(draws, "draws")
        self._in_memory("give its prior probabilities")
        if self.p0 is not None:
            return np.array(self.p0, dtype=float)
        return self.available / self.available.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ draws
    def _group_draws(self, stage: GroupStage, n: int, rng) -> np.ndarray:
        """``n`` draws ``(n, group, R)`` of ``δ_g ~ N(δ̂_g, H_g⁺)``: the pseudo-inverse, so that the
        directions a group's choices do not identify stay at the estimate."""
        L = pseudo_inverse_factor(stage.hessian)
        z = rng.standard_normal((n, *stage.delta.shape))
        return stage.delta[None] + np.einsum("irs,nis->nir", L, z)

    def _delta_draws(self, n: int, rng) -> np.ndarray:
        return self._group_draws(self.individual_stage, n, rng)

    def parameter_draws(self, draws: int | None = None, random_seed=0, robust: bool = False) -> xr.Dataset:
        """``draws`` (default 1000) draws ``(chain=1, draw)`` of an asymptotic-normal
        pseudo-posterior (not a Bayesian one): stage 1's ``alpha`` / ``beta`` / ``gamma`` from
        ``N(β̂, Cov)`` (``robust``: the sandwich covariance); at the mixed tiers, independently,
        each ``δ_i ~ N(δ̂_i, H_i⁺)``, and ``mu`` / ``sigma`` as the mean and SD over individuals of
        ``β_i = β̂(λ) − δ_i`` at each draw (and ``sigma_situation``, the SD over situations of the
        deviations, at ``MXL-4``).

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> ds = pmx.fit_maxent(pmx.load_travel_mode()).parameter_draws(draws=50)
        >>> dict(ds["beta"].sizes)
        {'chain': 1, 'draw': 50, 'coefficient': 3}
        """
        n = DEFAULT_DRAWS if draws is None else require_count(draws, "draws")
        if not self.has_stage("individual"):
            return self.normal_draws(1, n, robust=robust, random_seed=random_seed)
        rng = np.random.default_rng(random_seed)
        if self.learnt:
            lam, mu, sigma = self._mixing_draws(n, robust, rng)
        else:
            lam = self.multiplier_draws(n, robust=robust, random_seed=rng.integers(2**32))
            mu, sigma = self._summary_draws(lam, rng)
        ds = self.parameter_dataset(-lam[None], {"chain": [0], "draw": np.arange(n)})
        random_names = [population_name(label) for label in self.random_labels]
        out = {}
        for name, da in ds.items():
            keep = [lab for lab in da[da.dims[-1]].values.tolist() if f"{name}[{lab}]" not in random_names]
            if keep:
                out[name] = da.sel({da.dims[-1]: keep}).transpose("chain", "draw", ...)
        coords = {"chain": [0], "draw": np.arange(n), RANDOM: self.random_labels}
        for name, v in (("mu", mu), ("sigma", sigma)):
            out[name] = xr.DataArray(v[None], dims=("chain", "draw", RANDOM), coords=coords)
        if self.has_stage("situation"):
            out["sigma_situation"] = self._situation_sigma_draws(n, random_seed)
        return xr.Dataset(out, attrs={"pseudo_posterior": "asymptotic normal of the MaxEnt stages; NOT a "
                                                          "Bayesian posterior", "estimator": "maxent"})

    def _summary_draws(self, lam, rng) -> tuple[np.ndarray, np.ndarray]:
        """Mean and SD over individuals of ``β_i = β̂(λ) − δ_i`` at each draw (a given support)."""
        n, R = len(lam), len(self.random_labels)
        mu, sigma = np.empty((n, R)), np.empty((n, R))
        step = max(1, (1 << 24) // max(self.delta.size, 1))
        for s in range(0, n, step):
            k = min(step, n - s)
            b = -lam[s:s + k, self._random_index][:, None, :] - self._delta_draws(k, rng)
            mu[s:s + k], sigma[s:s + k] = b.mean(axis=1), b.std(axis=1, ddof=1)
        return mu, sigma

    def _mixing_draws(self, n: int, robust: bool, rng):
        """Draws of the mixing stage's ``(fixed, μ, Σ)`` from their asymptotic normal, as the
        centre's multipliers ``(n, C)``, ``μ`` and ``σ`` (``(n, R)``; ``σ`` of a draw's ``Σ``)."""
        mix = self.mixing_stage
        cov = mix.draw_covariance(robust)
        nf, R = len(mix.fixed), len(mix.mu)
        centre = np.concatenate([mix.fixed, mix.mu, [mix.cov[r, c] for r, c in mix.pairs]])
        h = rng.multivariate_normal(centre, cov, size=n, method="eigh")
        order = [*mix.fixed_names, *(population_name(label) for label in mix.components)]
        idx = [order.index(name) for name in self.parameter_names()]
        diagonal = [k for k, (r, c) in enumerate(mix.pairs) if r == c]
        sigma = np.sqrt(np.clip(h[:, nf + R + np.array(diagonal)], 0.0, None))
        return -h[:, idx], h[:, nf:nf + R], sigma

    def _situation_sigma_draws(self, n: int, random_seed) -> xr.DataArray:
        """The SD over situations of the deviations at each draw of the ``δ_t`` (each draw's
        deviations carry their own sampling noise, large at one choice per situation)."""
        rng = np.random.default_rng(np.random.default_rng(random_seed).integers(2**63, size=2))
        stage = self.situation_stage
        sigma = np.empty((n, len(stage.components)))
        step = max(1, (1 << 24) // max(stage.delta.size, 1))
        for s in range(0, n, step):
            k = min(step, n - s)
            sigma[s:s + k] = self._group_draws(stage, k, rng).std(axis=1, ddof=1)
        return xr.DataArray(sigma[None], dims=("chain", "draw", SITUATION_COEFFICIENT),
                            coords={"chain": [0], "draw": np.arange(n),
                                    SITUATION_COEFFICIENT: self.situation_labels})

    # ------------------------------------------------------------------ the Fit protocol
    def probability_graph(self) -> ProbabilityGraph:
        """``p`` and ``U`` (situation × alternative) as graphs of the containers: stage 1's
        softmax of the dual at fresh multipliers ``lam`` (``β = −lam``); at the mixed tiers
        ``U = U⁰(λ) − δ_i'G`` with the individual deviations ``delta`` and ``λ`` at the individual
        stage's centre (:attr:`centre_lam`), and at ``MXL-4`` ``− δ_t'G_S`` with the situation
        deviations ``delta_situation`` of the fitted situations (matched by label; other
        situations get none). Individuals the fit has not seen: with learnt pooling (the default)
        their ``p`` is the integral over the mixing distribution ``N(μ, Σ)``
        (:data:`NEWCOMER_POINTS` quasi-Monte Carlo points), else ``δ = 0`` (the population fit).

        Raises
        ------
        MaxEntError
            With a nonlinear constraint (no dual), a probability support (``p`` is then an
            implicit function of the data), or a fit of Dask data.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> graph = pmx.fit_maxent(pmx.load_travel_mode()).probability_graph()
        >>> [v.name for v in graph.parameters], graph.p.ndim
        (['lam'], 2)
        """
        self._in_memory("give the graph of p over the data containers")
        problem = self.problem
        problem.require_dual()
        if not problem.dual.direct:
            raise MaxEntError("effects of a MaxEnt fit need the direct form of p (probability_support="
                              "None): in the support-point form p is an implicit function of x")
        lam = pt.vector("lam", dtype="float64")
        U0 = problem.dual.terms(lam)["U"]
        c = problem.containers
        if not self.has_stage("individual"):
            p = problem.dual.terms(lam)["p"]
            return ProbabilityGraph(c, p, U0, parameters=(lam,))
        delta = pt.matrix("delta", dtype="float64")
        padded = pt.concatenate([delta, pt.zeros((c.individual.shape[0], delta.shape[1]))], axis=0)
        theta = -padded[c.individual]
        parameters, situation = (lam, delta), None
        if self.has_stage("situation"):
            situation = pt.matrix("delta_situation", dtype="float64")
            theta = pt.inc_subtensor(theta[:, self.situation_components], -situation)
            parameters = (lam, delta, situation)
        U = U0 + component_utility(c.X, theta, linear_resolved(self.resolved))
        p = choice_probabilities(U, c.available)
        if self.learnt:
            p = self._newcomer_probabilities(p, U0, delta.shape[0])
        return ProbabilityGraph(c, p, U, parameters=parameters, situation=situation, new_situations="zero")

    def _newcomer_probabilities(self, p, U0, n_known):
        """``p`` with the rows of individuals the fit has not seen replaced by the integral over
        the learnt mixing distribution, ``∫ softmax(U⁰ + θ'G) N(θ; 0, Σ) dθ`` (``U⁰`` at ``μ``), by
        :data:`NEWCOMER_POINTS` quasi-Monte Carlo points (the same for every sample)."""
        c = self.problem.containers
        z, _ = qmc_normal_points(len(self.random_labels), NEWCOMER_POINTS, seed=NEWCOMER_SEED)
        points = pt.constant(z @ np.linalg.cholesky(self.mixing_stage.cov).T)  # (Q, R)
        new = pt.nonzero(pt.ge(c.individual, n_known))[0]
        U = U0[new][None] + component_utility(c.X[new][None], points[:, None, :],
                                              linear_resolved(self.resolved))
        p_new = choice_probabilities(U, c.available[new][None]).mean(axis=0)
        return pt.set_subtensor(p[new], p_new)

    def parameter_samples(self, *, draws: int | None = None, robust: bool = False,
                          random_seed=0) -> ParameterSamples:
        """Values of the probability graph's parameters.

        ``draws=None``: the delta method over stage 1's multipliers, the later stages' deviations
        at their estimates (dim ``delta``: the estimate, then ``λ̂ ± h_c e_c``, weights on the
        estimate only; summarised as ``estimate`` and ``se`` by
        :func:`~pymc_maxent.maxent.delta.delta_method`); else that many draws of the
        pseudo-posterior (dims ``chain, draw``), kept as they are.

        Raises
        ------
        MaxEntError
            If the covariance is not finite.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> res = pmx.fit_maxent(pmx.load_travel_mode())
        >>> s = res.parameter_samples()
        >>> s.dims, s.n, s.values[0].shape
        (('delta',), 13, (13, 6))
        """
        draws = optional_count(draws, "draws")
        mixed = self.has_stage("individual")
        cov = self.centre_covariance(robust) if mixed else self.covariance_matrix(robust)
        if draws is None:
            lam = self.centre_lam if mixed else self.lam
            steps = delta_steps(lam, cov)
            points = delta_points(lam, steps)
            values = (points, *(np.broadcast_to(s.delta, (len(points),
                                                          *s.delta.shape)) for s in self.group_stages))
            return ParameterSamples(values=values, dims=(DELTA,), coords={DELTA: np.arange(len(points))},
                                    weights=np.eye(1, len(points))[0], situations=self._situation_labels(),
                                    summarize=partial(delta_method, steps=steps, cov=cov,
                                                      labels=list(self.labels)))
        rng = np.random.default_rng(random_seed)
        values = [self.centre_draws(draws, robust=robust, random_seed=rng.integers(2**32))]
        if self.has_stage("individual"):
            values.append(self._delta_draws(draws, rng))
        if self.has_stage("situation"):
            situation_rng = np.random.default_rng(np.random.default_rng(random_seed).integers(2**63, size=2))
            values.append(self._group_draws(self.situation_stage, draws, situation_rng))
        return ParameterSamples(values=tuple(values), dims=("chain", "draw"),
                                coords={"chain": np.arange(1), "draw": np.arange(draws)},
                                weights=np.full(draws, 1.0 / draws), situations=self._situation_labels())

    def _situation_labels(self):
        return self.data.situations.tolist() if self.has_stage("situation") else None

    def predict(self, new_data: ChoiceData | None = None, *, draws: int | None = None,
                random_seed=None) -> xr.DataArray:
        """Choice probabilities ``(chain, draw, situation, alternative)``, at the estimate
        (``draws=None``) or over draws of the pseudo-posterior; known individuals with their
        ``δ_i``, new ones with ``δ = 0`` (the population fit).

        Parameters
        ----------
        new_data : ChoiceData, optional
            Situations to predict; swapped into the shared containers and put back exactly as
            they were afterwards. Default: what the containers hold now (the fitted data, or
            what ``pm.set_data`` put there since).
        draws : int, optional
        random_seed : int, optional
            Seeds the draws.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data = pmx.load_travel_mode()
        >>> res = pmx.fit_maxent(data)
        >>> dict(res.predict(data.subset(slice(0, 5)), draws=20, random_seed=1).sizes)
        {'chain': 1, 'draw': 20, 'situation': 5, 'alternative': 4}
        """
        self._in_memory("predict")
        draws = optional_count(draws, "draws")
        if not self.has_stage("individual"):
            lam = self.lam[None] if draws is None else self.multiplier_draws(draws, random_seed=random_seed)
            p = self.problem.predict(lam, new_data)
            return (p.rename(sample="draw").expand_dims(chain=[0])
                    .assign_coords(draw=np.arange(lam.shape[0])).transpose("chain", "draw", ...))
        seed = 0 if random_seed is None else random_seed
        if new_data is None:
            held = self.problem.data_in_containers()
            new_data = None if held is self.data else held
        if draws is None:
            ev = self.evaluator() if new_data is None else self.evaluator(new_data)
            coords = {"chain": [0], "draw": [0], SITUATION: ev.situations, ALTERNATIVE: ev.alternatives}
            return xr.DataArray(ev.evaluate(samples=[0])[None], dims=("chain", "draw", SITUATION,
                                                                      ALTERNATIVE),
                                coords=coords, name="p")
        ev = self.evaluator(draws=draws, random_seed=seed)
        return (ev if new_data is None else ev.with_data(new_data)).probabilities()

    def evaluator(self, data: ChoiceData | None = None, **kwargs):
        self._in_memory("evaluate choice probabilities (the diagnostics need them)")
        return super().evaluator(data, **kwargs)

    # ------------------------------------------------------------------ refits
    def refit(self, data: ChoiceData) -> MaxEntResult:
        """The same moments or tier, supports and solver settings fitted to other ``data``
        (cross-validation's refits; the separation check is skipped). A prior ``p0`` or ``pi0``
        given per situation does not carry over to other situations: a
        :class:`~pymc_maxent.exceptions.SpecificationError`.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data = pmx.load_travel_mode()
        >>> res = pmx.fit_maxent(data)
        >>> res.refit(data.subset(slice(0, 150))).data.n_situations
        150
        """
        self._in_memory("refit for cross-validation")
        return self.recipe.refit(data)

    def refit_without(self, held_out, *, random_seed=None, sample_kwargs=None) -> MaxEntResult:
        """:meth:`refit` on the situations not ``held_out`` (a boolean mask over the fitted ones);
        ``random_seed`` and ``sample_kwargs`` are a sampler's and mean nothing here."""
        held_out = np.asarray(held_out, dtype=bool)
        if held_out.shape != (self.data.n_situations,):
            raise SpecificationError(f"held_out has shape {held_out.shape}; the fit has "
                                     f"{self.data.n_situations} situations")
        return self.refit(self.data.subset(~held_out))

    def pointwise_log_likelihood(self, level: str) -> xr.DataArray:
        """The log-likelihood of the fitted choices at the estimate, per unit: ``(chain=1, draw=1,
        situation)``, or per individual (the sum over its situations) at ``level="individual"``."""
        self._in_memory("give its log-likelihood")
        return unit_log_likelihood(self.p[None], self.data, level, ("chain", "draw"), {"chain": [0],
                                                                                       "draw": [0]})

    @property
    def sample_kwargs(self) -> dict:
        """A sampler's settings: none (the protocol's; a posterior's refits reuse its own)."""
        return {}

    def settings(self) -> dict:
        """The fit's settings as JSON-ready values: with the data and the moments or tier,
        :func:`~pymc_maxent.maxent.load_fit` rebuilds the fit."""
        return self.recipe.settings()

    # ------------------------------------------------------------------ DataTree
    def to_datatree(self, *, draws: int = 500, chains: int = 2, robust: bool = False,
                    random_seed=0) -> xr.DataTree:
        """ArviZ-style groups with the Bayesian models' dims and coords, one group per stage.

        Notes
        -----
        ``posterior``
            An **asymptotic-normal pseudo-posterior**, labelled as such in its ``attrs``: draws
            from ``N(β̂, Cov)`` of ``alpha``, ``beta``, ``gamma`` (``chains × draws``); at the
            mixed tiers the draws of :meth:`parameter_draws` (one chain), with ``mu``, ``sigma``.
        ``maxent``
            The last individual-level stage: stage 1 for a population fit (estimates,
            multipliers, standard errors, covariances, ``p``, ``eps``, ``w``, ``pi``,
            per-situation normalised entropy; the diagnostics in ``attrs``), stage 2 at the mixed
            tiers (``beta_individual``, ``beta_individual_se``, ``delta`` with the coords of the
            Bayesian ``z``, per-individual ``kl``, ``information_index``, ``converged``, ...).
        ``maxent_population``
            Stage 1, at the mixed tiers.
        ``maxent_situation``
            Stage 3 at ``MXL-4``: ``deviation`` and ``deviation_se`` with the coords of the
            Bayesian ``z_situation``, and that stage's arrays.
        ``observed_data``
            ``chosen`` (situation).
        """
        self._in_memory("build a DataTree with the data's dims")
        if self.has_stage("individual"):
            posterior = self.parameter_draws(draws, random_seed=random_seed)
        else:
            posterior = self.normal_draws(chains, draws, robust=robust, random_seed=random_seed)
        groups = {"posterior": posterior}
        groups |= {name: dataset for name, dataset in self._stage_datasets()}
        chosen = self.data.alternatives[self.population_stage.chosen]
        groups["observed_data"] = xr.Dataset({"chosen": xr.DataArray(
            chosen, dims=(SITUATION,), coords={SITUATION: self.data.situations.tolist()})})
        return xr.DataTree.from_dict(groups)

    def _stage_datasets(self):
        pop = self.population.point_dataset()
        if not self.has_stage("individual"):
            yield "maxent", pop
            return
        yield "maxent", self._individual_dataset()
        yield "maxent_population", pop
        if self.learnt:
            yield "maxent_mixing", self.mixing_stage.to_dataset()
        if self.has_stage("situation"):
            yield "maxent_situation", self._situation_dataset()

    def point_dataset(self) -> xr.Dataset:
        """Stage 1's group of :meth:`to_datatree`: estimates, multipliers, covariances,
        ``p̂, ε̂, ŵ, π̂`` and the diagnostics in ``attrs``."""
        pop = self.population_stage
        point = {}
        for values, suffix in ((self.beta, ""), (self.se, "_se"), (self.se_robust, "_se_robust")):
            for name, da in self.parameter_dataset(values, {}).items():
                point[f"{name}{suffix}"] = da
        sit = {SITUATION: self.data.situations.tolist(), ALTERNATIVE: self.data.alternatives.tolist()}
        moments = {"moment": self.labels, "moment_": self.labels}
        point["lam"] = xr.DataArray(self.lam, dims=("moment",), coords={"moment": self.labels})
        point["cov"] = xr.DataArray(self.cov, dims=("moment", "moment_"), coords=moments)
        point["cov_robust"] = xr.DataArray(self.cov_robust, dims=("moment", "moment_"), coords=moments)
        point["p"] = xr.DataArray(pop.p, dims=(SITUATION, ALTERNATIVE), coords=sit)
        point["eps"] = xr.DataArray(pop.eps, dims=(SITUATION, ALTERNATIVE), coords=sit)
        one = {"dims": (SITUATION,), "coords": {SITUATION: sit[SITUATION]}}
        if pop.mu is not None:
            point["mu"] = xr.DataArray(pop.mu, **one)
        point["normalized_entropy"] = xr.DataArray(self.normalized_entropy_situation, **one)
        if pop.w is not None:
            point["w"] = xr.DataArray(pop.w, dims=(SITUATION, ALTERNATIVE, "error_support"),
                                      coords=sit | {"error_support": pop.error_support})
        if pop.pi is not None:
            point["pi"] = xr.DataArray(pop.pi, dims=(SITUATION, ALTERNATIVE, "probability_support"),
                                       coords=sit | {"probability_support": pop.probability_support})
        attrs = {
            "estimator": "generalized maximum entropy (GME) multinomial choice",
            "solver": pop.solver, "converged": int(pop.converged), "message": pop.message,
            "identified": int(self.identified), "condition_number": self.condition_number,
            "information_condition_number": self.information_condition_number, "iterations": pop.nit,
            "dual_value": pop.dual_value, "max_violation": pop.max_violation,
            "normalized_entropy": self.normalized_entropy, "information_index": self.information_index,
            "entropy_ratio": self.entropy_ratio, "entropy_ratio_dof": self.entropy_ratio_dof,
            "entropy_ratio_pvalue": self.entropy_ratio_pvalue, "loglik": self.loglik,
            "pseudo_r2": self.pseudo_r2, "hit_rate": self.hit_rate, "kl": self.kl,
        } | {f"solve_{key}": value for key, value in self.solve_options.items()}
        return xr.Dataset(point, attrs=attrs)

    def _group_arrays(self, stage: GroupStage, dims: tuple, dims_: str) -> dict:
        """A group stage's arrays (what :func:`~pymc_maxent.maxent.load_fit` reads back)."""
        groups = {dims[0]: list(stage.labels)}
        both = groups | {dims[1]: list(stage.components)}
        pair = {"dims": dims, "coords": both}
        one = {"dims": dims[:1], "coords": groups}
        blocks = {"dims": (*dims, dims_), "coords": both | {dims_: list(stage.components)}}
        grid = {"dims": (SITUATION, ALTERNATIVE),
                "coords": {SITUATION: self.data.situations.tolist(),
                           ALTERNATIVE: self.data.alternatives.tolist()}}
        out = {"delta": xr.DataArray(stage.delta, **pair), "grad": xr.DataArray(stage.grad, **pair),
               "reach": xr.DataArray(stage.reach, **pair), "hessian": xr.DataArray(stage.hessian, **blocks),
               "information": xr.DataArray(stage.information, **blocks),
               "kl": xr.DataArray(stage.kl,
                                  **one), "information_index": xr.DataArray(stage.information_index, **one),
               "converged": xr.DataArray(stage.converged, **one), "iterations": xr.DataArray(stage.nit,
                                                                                             **one),
               "violation": xr.DataArray(stage.violation, **one), "value": xr.DataArray(stage.value, **one),
               "p": xr.DataArray(stage.p, **grid), "eps": xr.DataArray(stage.eps, **grid)}
        if stage.separated is not None:
            out["separated"] = xr.DataArray(stage.separated, **one)
        return out

    def _individual_dataset(self) -> xr.Dataset:
        stage = self.individual_stage
        point = self._group_arrays(stage, (INDIVIDUAL, RANDOM), RANDOM_)
        pair = {"dims": (INDIVIDUAL, RANDOM), "coords": {INDIVIDUAL: list(stage.labels),
                                                         RANDOM: self.random_labels}}
        pop = self.population
        point |= {"beta_individual": xr.DataArray(self.beta_individual, **pair),
                  "beta_individual_se": xr.DataArray(self.beta_individual_se, **pair),
                  "beta_population": xr.DataArray(self.beta_population, dims=(RANDOM,),
                                                  coords={RANDOM: self.random_labels}),
                  "n_situations": xr.DataArray(stage.n_situations, dims=(INDIVIDUAL,),
                                               coords={INDIVIDUAL: list(stage.labels)}),
                  "lam": xr.DataArray(pop.lam, dims=("moment",), coords={"moment": pop.labels}),
                  "cov": xr.DataArray(pop.cov, dims=("moment", "moment_"),
                                      coords={"moment": pop.labels, "moment_": pop.labels})}
        attrs = {"estimator": "MaxEnt mixed logit: population GME, then individual GCE with the population "
                              "fit as prior" + (" and a learnt normal reference (the mixing distribution)"
                                                if self.learnt else ""), "tier": self.tier}
        attrs |= {k: (int(v) if isinstance(v, bool) else v) for k, v in self.convergence().items()
                  if v is not None}
        attrs |= {"kl_total": self.kl_total, "information_index_total": self.information_index_total,
                  "loglik": self.loglik, "hit_rate": self.hit_rate, "population_loglik": pop.loglik}
        return xr.Dataset(point, attrs=attrs)

    def _situation_dataset(self) -> xr.Dataset:
        stage = self.situation_stage
        point = self._group_arrays(stage, (SITUATION, SITUATION_COEFFICIENT), SITUATION_COEFFICIENT_)
        pair = {"dims": (SITUATION, SITUATION_COEFFICIENT),
                "coords": {SITUATION: list(stage.labels), SITUATION_COEFFICIENT: self.situation_labels}}
        point |= {"deviation": xr.DataArray(self.deviation_situation, **pair),
                  "deviation_se": xr.DataArray(self.deviation_situation_se, **pair)}
        attrs = {"stage": "situation GCE with stage 2's probabilities as prior",
                 "kl_total": self.kl_situation_total,
                 "information_index_total": self.information_index_situation_total}
        return xr.Dataset(point, attrs=attrs)
