"""The MaxEnt fit of ``MXL-4``: the mixed logit's two stages, then a third, per situation, for
the components with a situation-level deviation (``shared/design/maxent-tiers.md`` §1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import xarray as xr

from pymc_maxent.data.choice_data import ALTERNATIVE, SITUATION
from pymc_maxent.fit import ParameterSamples, ProbabilityGraph
from pymc_maxent.maxent.individual import linear_resolved
from pymc_maxent.maxent.individual_result import (
    IndividualMaxEntResult,
    _batched_inverse,
    _group,
    _normal_table,
    information,
    pseudo_inverse_factor,
    saved_solution,
)
from pymc_maxent.utility import choice_probabilities

#: The Bayesian tier's dim of its situation-level deviations (``z_situation``).
SITUATION_COEFFICIENT = "situation_coefficient"
SITUATION_COEFFICIENT_ = "situation_coefficient_"


class SituationMaxEntResult(IndividualMaxEntResult):
    """A fitted MaxEnt ``MXL-4``: stage 1's population GME, stage 2's individual GCE over every
    random component, and stage 3: per situation, the GCE of the situation-level components'
    moments with stage 2's ``p^(i)`` as prior and the error support of the same rule at one
    situation (``situation_support``). The situation's coefficients are ``β_it = β_i + d_t``
    with the deviation ``d_t = −δ_t`` on the situation-level components.

    One choice per situation carries little information beyond the individual's: the
    situation information index is expected near zero, and a situation's deviation has at most
    ``J − 1`` identified directions (its ``J`` utilities up to a constant): the deviation is
    the minimum-norm solution, 0 along the directions the choice says nothing about, and the
    SE of every component those directions involve is ``inf``.

    Everything of :class:`~pymc_maxent.maxent.individual_result.IndividualMaxEntResult` (stage
    2's ``beta_individual``, ``kl_individual``, ``eps``, ...) holds, except that ``p``,
    ``loglik`` and ``hit_rate`` are stage 3's and ``converged`` / ``max_violation`` cover all
    three stages.

    Attributes
    ----------
    situation_labels : list of str
        The situation-level components (dim ``situation_coefficient``, as the Bayesian
        ``z_situation``).
    p_individual : ndarray (situation, alternative)
        Stage 2's ``p^(i)``: stage 3's prior.
    delta_situation : ndarray (situation, situation_coefficient)
        ``δ_t`` of stage 3's duals.
    deviation_situation, deviation_situation_se : ndarray (situation, situation_coefficient)
        ``d_t = −δ_t`` and its SEs from the inverse of the situation's dual Hessian, conditional
        on stages 1 and 2 (``inf`` where not identified).
    eps_situation : ndarray (situation, alternative)
        Stage 3's ``ε̂``.
    kl_situation, information_index_situation : ndarray (situation,)
        ``KL(p_t ‖ p_t^(i))`` and its share of ``−ln p^(i)_t,chosen``.
    kl_situation_total, information_index_situation_total : float
        Their sum, and its share of ``−Σ_t ln p^(i)_t,chosen``.
    converged_situation, nit_situation, violation_situation : ndarray (situation,)
    n_converged_situations : int

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> data, _ = pmx.simulate_choices("MXL-4", n_individuals=20, n_situations=6, n_attributes=1, seed=1)
    >>> fit = pmx.fit_maxent(data, tier="MXL-4")
    >>> fit.converged, fit.situation_labels
    (True, ['x0[alt0]', 'x0[alt1]', 'x0[alt2]'])
    >>> bool(fit.information_index_situation_total < fit.information_index_total)
    True
    """

    def __init__(self, *, situation_problem, situation_solution, **stages):
        super().__init__(**stages)
        self.situation_problem = situation_problem
        self.situation_solution = sol = situation_solution
        self.situation_components = np.asarray(self.resolved.situation_components)
        self.situation_labels = [self.random_labels[c] for c in self.situation_components]
        self.p_individual = self.p
        self.p, self.eps_situation = sol.p, sol.eps
        self.delta_situation = sol.delta
        self.deviation_situation = -sol.delta
        self.cov_situation = _batched_inverse(sol.hessian)
        self.deviation_situation_se = np.sqrt(np.clip(np.einsum("nrr->nr", self.cov_situation), 0.0, None))
        self.converged_situation = sol.converged
        self.nit_situation = sol.nit
        self.violation_situation = sol.violation
        self.n_converged_situations = int(sol.converged.sum())
        self.converged = bool(self.converged and sol.converged.all())
        self.max_violation = float(max(self.max_violation, sol.violation.max(initial=0.0)))
        (self.kl_situation, self.information_index_situation, self.kl_situation_total,
         self.information_index_situation_total) = information(self.p, situation_problem)
        self._fit_statistics()

    # ------------------------------------------------------------------ diagnostics
    def convergence_message(self) -> str:
        """The three stages' convergence in words."""
        N = len(self.converged_situation)
        worst = int(np.argmax(self.violation_situation)) if N else 0
        return (f"{super().convergence_message()}; {self.n_converged_situations} of {N} situations "
                f"converged, worst situation constraint violation "
                f"{self.violation_situation.max(initial=0.0):.2e} (situation {self.data.situations[worst]})")

    def convergence(self) -> dict:
        """:meth:`IndividualMaxEntResult.convergence
        <pymc_maxent.maxent.IndividualMaxEntResult.convergence>` over the three stages, with
        stage 3's ``n_situations``, ``n_converged_situations``, ``situation_iterations`` and
        ``situation_max_violation``."""
        return super().convergence() | {
            "n_situations": len(self.converged_situation),
            "n_converged_situations": self.n_converged_situations,
            "situation_iterations": int(self.nit_situation.max(initial=0)),
            "situation_max_violation": float(self.violation_situation.max(initial=0.0))}

    # ------------------------------------------------------------------ estimates
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
        beta = self.beta_individual[self.problem.individual][:, self.situation_components]
        one = {"dims": (SITUATION,), "coords": sit}
        return xr.Dataset({
            "estimate": xr.DataArray(self.deviation_situation, **pair),
            "sd": xr.DataArray(self.deviation_situation_se, **pair),
            "beta": xr.DataArray(beta + self.deviation_situation, **pair),
            "kl": xr.DataArray(self.kl_situation, **one),
            "information_index": xr.DataArray(self.information_index_situation, **one),
            "converged": xr.DataArray(self.converged_situation, **one),
        })

    def estimates(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """:meth:`IndividualMaxEntResult.estimates
        <pymc_maxent.maxent.IndividualMaxEntResult.estimates>` and ``sigma_situation``: the SD
        over situations of the deviations, with the SE ``σ/√(2(N−1))`` over situations. It is
        set by ``situation_support`` more than by the data (one choice per situation), and is
        no estimate of the Bayesian ``sigma_situation``: on simulated ``MXL-4`` data with a
        situation SD of 0.5 it came out at 1.2-1.6 with the default support, 0.4-0.5 with
        ``situation_support=2``."""
        sd = self.deviation_situation.std(axis=0, ddof=1)
        N = len(self.deviation_situation)
        return pd.concat([super().estimates(hdi_prob),
                          _normal_table(sd, sd / np.sqrt(2.0 * max(N - 1, 1)), hdi_prob,
                                        [f"sigma_situation[{lab}]" for lab in self.situation_labels])])

    def parameter_count(self) -> dict[str, int]:
        """Stage 1's multipliers; latent: the ``δ_i`` and the ``δ_t``."""
        count = super().parameter_count()
        return count | {"latent": count["latent"] + int(self.delta_situation.size)}

    # ------------------------------------------------------------------ draws
    def _situation_draws(self, n: int, rng) -> np.ndarray:
        """``n`` draws ``(n, situation, S)`` of ``δ_t ~ N(δ̂_t, H_t⁺)``: the pseudo-inverse, so
        that the directions a situation's choice does not identify stay at the estimate (they
        do not move that situation's probabilities)."""
        L = pseudo_inverse_factor(self.situation_solution.hessian)
        z = rng.standard_normal((n, *self.delta_situation.shape))
        return self.delta_situation[None] + np.einsum("irs,nis->nir", L, z)

    def parameter_draws(self, draws: int = 1000, random_seed=0) -> xr.Dataset:
        """:meth:`IndividualMaxEntResult.parameter_draws
        <pymc_maxent.maxent.IndividualMaxEntResult.parameter_draws>` and ``sigma_situation``:
        the SD over situations of the deviations at each draw of the ``δ_t``; each draw's
        deviations carry their own sampling noise (large at one choice per situation), so these
        sit above the estimate of :meth:`estimates`."""
        out = super().parameter_draws(draws, random_seed=random_seed)
        rng = np.random.default_rng(np.random.default_rng(random_seed).integers(2**63, size=2))
        n = draws
        sigma = np.empty((n, len(self.situation_labels)))
        step = max(1, (1 << 24) // max(self.delta_situation.size, 1))
        for s in range(0, n, step):
            k = min(step, n - s)
            sigma[s:s + k] = self._situation_draws(k, rng).std(axis=1, ddof=1)
        out["sigma_situation"] = xr.DataArray(
            sigma[None], dims=("chain", "draw", SITUATION_COEFFICIENT),
            coords={"chain": [0], "draw": np.arange(n), SITUATION_COEFFICIENT: self.situation_labels})
        return out

    # ------------------------------------------------------------------ the Fit protocol
    def probability_graph(self) -> ProbabilityGraph:
        """``U = U⁰(λ) − δ_i'G − δ_t'G_S``: the individual deviations ``delta`` (``δ = 0`` for
        individuals the fit has not seen) and the situation deviations ``delta_situation``
        (situation × situation_coefficient) of the fitted situations, matched by label; other
        situations get none."""
        from pymc_maxent.bayes.build import component_utility

        problem = self.population.problem
        problem.require_dual()
        lam = pt.vector("lam", dtype="float64")
        delta = pt.matrix("delta", dtype="float64")
        delta_situation = pt.matrix("delta_situation", dtype="float64")
        c = problem.containers
        U0 = problem.dual.terms(lam)["U"]
        padded = pt.concatenate([delta, pt.zeros((c.individual.shape[0], delta.shape[1]))], axis=0)
        theta = pt.inc_subtensor((-padded[c.individual])[:, self.situation_components], -delta_situation)
        U = U0 + component_utility(c.X, theta, linear_resolved(self.resolved))
        return ProbabilityGraph(c, choice_probabilities(U, c.available), U,
                                parameters=(lam, delta, delta_situation), situation=delta_situation,
                                new_situations="zero")

    def parameter_samples(self, *, draws: int | None = None, robust: bool = False,
                          random_seed=0) -> ParameterSamples:
        """Values of ``(lam, delta, delta_situation)``: stage 2's
        (:meth:`IndividualMaxEntResult.parameter_samples
        <pymc_maxent.maxent.IndividualMaxEntResult.parameter_samples>`) with ``δ̂_t`` at the
        estimate, or draws of ``δ_t ~ N(δ̂_t, H_t⁺)``."""
        base = super().parameter_samples(draws=draws, robust=robust, random_seed=random_seed)
        if draws is None:
            situation = np.broadcast_to(self.delta_situation, (base.n, *self.delta_situation.shape))
        else:
            rng = np.random.default_rng(np.random.default_rng(random_seed).integers(2**63, size=2))
            situation = self._situation_draws(draws, rng)
        return ParameterSamples(values=(*base.values, situation), dims=base.dims, coords=base.coords,
                                weights=base.weights, situations=self.data.situations.tolist(),
                                summarize=base.summarize)

    # ------------------------------------------------------------------ save and load
    @classmethod
    def from_datatree(cls, tree, data, spec, *, model=None, population: dict,
                      individual: dict) -> SituationMaxEntResult:
        """:meth:`IndividualMaxEntResult.from_datatree
        <pymc_maxent.maxent.IndividualMaxEntResult.from_datatree>`, with stage 3 read from the
        ``maxent_situation`` group.

        Raises
        ------
        MaxEntError
            As there, and for a ``maxent_situation`` group that is missing, lacks variables or
            does not match ``data``.
        """
        from pymc_maxent.exceptions import MaxEntError
        from pymc_maxent.maxent.mixed import situation_problem

        stages = cls._stages_from_datatree(tree, data, spec, model, population, individual)
        point = _group(tree, "maxent_situation")
        components = stages["resolved"].situation_components
        shape = (data.n_situations, len(components))
        if point["delta"].shape != shape:
            raise MaxEntError(f"the saved situation stage has delta {point['delta'].shape}; the data and "
                              f"{spec.name} need {shape}")
        third = situation_problem(stages["problem"], stages["solution"].p, components,
                                  stages["options"].get("situation_support", "default"))
        return cls(**stages, situation_problem=third, situation_solution=saved_solution(point))

    def to_datatree(self, *, draws: int = 500, random_seed=0) -> xr.DataTree:
        """:meth:`IndividualMaxEntResult.to_datatree
        <pymc_maxent.maxent.IndividualMaxEntResult.to_datatree>` (whose ``maxent`` group holds
        stage 2's ``p`` and ``eps``) and the group ``maxent_situation``: ``deviation`` and
        ``deviation_se`` (situation × situation_coefficient, the dims and coords of the Bayesian
        ``z_situation``), ``delta``, per-situation ``kl``, ``information_index``, ``converged``,
        ``iterations``, ``violation``; stage 3's dual at the solution (``grad``, ``value``,
        ``hessian``, ``information``, ``reach``), ``p`` and ``eps``; its totals in ``attrs``."""
        tree = super().to_datatree(draws=draws, random_seed=random_seed)
        sol = self.situation_solution
        sit = {SITUATION: self.data.situations.tolist()}
        both = sit | {SITUATION_COEFFICIENT: self.situation_labels}
        square = both | {SITUATION_COEFFICIENT_: self.situation_labels}
        pair = {"dims": (SITUATION, SITUATION_COEFFICIENT), "coords": both}
        one = {"dims": (SITUATION,), "coords": sit}
        grid = {"dims": (SITUATION, ALTERNATIVE),
                "coords": sit | {ALTERNATIVE: self.data.alternatives.tolist()}}
        blocks = {"dims": (SITUATION, SITUATION_COEFFICIENT, SITUATION_COEFFICIENT_), "coords": square}
        point = {
            "deviation": xr.DataArray(self.deviation_situation, **pair),
            "deviation_se": xr.DataArray(self.deviation_situation_se, **pair),
            "delta": xr.DataArray(sol.delta, **pair),
            "grad": xr.DataArray(sol.grad, **pair),
            "reach": xr.DataArray(sol.reach, **pair),
            "hessian": xr.DataArray(sol.hessian, **blocks),
            "information": xr.DataArray(sol.information, **blocks),
            "kl": xr.DataArray(self.kl_situation, **one),
            "information_index": xr.DataArray(self.information_index_situation, **one),
            "converged": xr.DataArray(sol.converged, **one),
            "iterations": xr.DataArray(sol.nit, **one),
            "violation": xr.DataArray(sol.violation, **one),
            "value": xr.DataArray(sol.value, **one),
            "p": xr.DataArray(sol.p, **grid),
            "eps": xr.DataArray(sol.eps, **grid),
        }
        attrs = {"stage": "situation GCE with stage 2's probabilities as prior",
                 "kl_total": self.kl_situation_total,
                 "information_index_total": self.information_index_situation_total}
        tree["maxent_situation"] = xr.DataTree(xr.Dataset(point, attrs=attrs))
        return tree
