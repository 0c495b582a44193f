"""The MaxEnt mixed-logit fit: individual coefficients, their population summary, the
information each individual adds, prediction, DataTree; a :class:`~pymc_maxent.fit.Fit`."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import xarray as xr
from scipy import stats
from scipy.special import rel_entr

from pymc_maxent.arguments import optional_count, require_count
from pymc_maxent.data.choice_data import ALTERNATIVE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.exceptions import MaxEntError
from pymc_maxent.fit import CachedEvaluator, ParameterSamples, ProbabilityGraph
from pymc_maxent.maxent.delta import DELTA, delta_method, delta_points, delta_steps
from pymc_maxent.maxent.individual import linear_resolved
from pymc_maxent.maxent.mixed import population_name
from pymc_maxent.utility import choice_probabilities

RANDOM = "random_coefficient"
RANDOM_ = "random_coefficient_"
#: Settings holding an error support (an array is saved as a list).
SUPPORTS = ("individual_support", "situation_support")
#: What :meth:`IndividualMaxEntResult.from_datatree` reads from the ``maxent`` group (and the
#: situation stage's from ``maxent_situation``).
SAVED = ("delta", "grad", "hessian", "information", "value", "iterations", "converged", "reach", "p", "eps")


def _normal_table(estimate, sd, hdi_prob, index) -> pd.DataFrame:
    half = stats.norm.ppf(0.5 + hdi_prob / 2) * np.asarray(sd)
    return pd.DataFrame({"estimate": estimate, "sd": sd, "lower": estimate - half, "upper": estimate + half},
                        index=pd.Index(index, name="parameter"))


class IndividualEstimates:
    """What a MaxEnt mixed-logit fit reports per individual and over individuals, from its
    per-individual arrays alone: shared by :class:`IndividualMaxEntResult` and the Dask fit
    (:class:`~pymc_maxent.maxent.distributed_individual.DaskIndividualMaxEntResult`).

    Needs ``population`` (stage 1), ``random_labels``, ``individual_labels``,
    ``n_individuals``, ``beta_population``, ``beta_individual``, ``beta_individual_se``,
    ``nit_individual``, ``violation_individual``, ``n_converged``, ``n_separated``,
    ``converged`` and ``max_violation``.
    """

    def convergence_message(self) -> str:
        """Both stages' convergence in words."""
        I = self.n_individuals
        worst = int(np.argmax(self.violation_individual)) if I else 0
        parts = [f"{self.n_converged} of {I} individuals converged",
                 f"worst constraint violation {self.violation_individual.max(initial=0.0):.2e} "
                 f"(individual {self.individual_labels[worst]})"]
        if self.n_separated is not None:
            parts.append(f"{self.n_separated} with separated choices (kept finite by the noise term)")
        if not self.population.converged:
            parts.append(f"population stage NOT converged: {self.population.message}")
        return "; ".join(parts)

    def convergence(self) -> dict:
        """Solver health as plain numbers: ``converged`` (both stages), ``identified`` (stage 1),
        ``max_violation``, ``iterations`` (the most any individual took), ``n_individuals``,
        ``n_converged``, ``n_separated`` and stage 1's ``population_converged``."""
        return {"converged": self.converged, "identified": self.population.identified,
                "max_violation": self.max_violation, "iterations": int(self.nit_individual.max(initial=0)),
                "n_individuals": int(self.n_individuals), "n_converged": self.n_converged,
                "n_separated": self.n_separated, "population_converged": self.population.converged,
                "condition_number": self.population.condition_number}

    # ------------------------------------------------------------------ individual coefficients
    def individual_estimates(self) -> xr.Dataset:
        """``β_i``: ``estimate`` and ``sd`` (individual × random_coefficient), with the
        Bayesian tier's dims and coords (those of its ``z``).

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=8, seed=2)
        >>> dict(pmx.fit_maxent(data, tier="MXL-1").individual_estimates()["estimate"].sizes)
        {'individual': 20, 'random_coefficient': 2}
        """
        coords = {INDIVIDUAL: list(self.individual_labels), RANDOM: self.random_labels}
        dims = (INDIVIDUAL, RANDOM)
        return xr.Dataset({"estimate": xr.DataArray(self.beta_individual, dims=dims, coords=coords),
                           "sd": xr.DataArray(self.beta_individual_se, dims=dims, coords=coords)})

    def population_summary(self) -> pd.DataFrame:
        """Mean, SD and the share with the opposite sign to the population coefficient, of the
        individual estimates, per random component; and stage 1's ``β̂``. Like posterior means
        of ``β_i``, the individual estimates are shrunk toward the population, so their SD
        understates ``σ`` at few situations per individual."""
        b = self.beta_individual
        opposite = (np.sign(b) != np.sign(self.beta_population)[None, :]).mean(axis=0)
        return pd.DataFrame({"mean": b.mean(axis=0), "sd": b.std(axis=0, ddof=1),
                             "population": self.beta_population, "opposite_sign_share": opposite},
                            index=pd.Index(self.random_labels, name=RANDOM))

    def population_corr(self) -> pd.DataFrame:
        """The correlation matrix of the individual estimates."""
        corr = np.corrcoef(self.beta_individual, rowvar=False).reshape(len(self.random_labels), -1)
        return pd.DataFrame(corr, index=self.random_labels, columns=self.random_labels)

    # ------------------------------------------------------------------ estimates
    def estimates(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """One row per population parameter, named as the Bayesian tier's: stage 1's fixed
        ``alpha`` / ``beta`` (estimate and SE), then ``mu`` and ``sigma`` (mean and SD of the
        individual estimates) and ``corr`` (their correlations, above the diagonal), with
        normal-theory SEs of those sample moments over individuals (``σ/√I``, ``σ/√(2(I−1))``,
        ``(1 − r²)/√(I − 3)``) that leave out the estimation error of each ``β_i``.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=8, seed=2)
        >>> pmx.fit_maxent(data, tier="MXL-1").estimates().index.tolist()[-4:]
        ['mu[x1]', 'sigma[x0]', 'sigma[x1]', 'corr[x0, x1]']
        """
        if not 0 < hdi_prob < 1:
            raise MaxEntError(f"hdi_prob must lie in (0, 1); got {hdi_prob!r}")
        fixed = self.population.estimates(hdi_prob)[["estimate", "sd", "lower", "upper"]]
        random_names = {population_name(lab) for lab in self.random_labels}
        fixed = fixed.loc[[k for k in fixed.index if k not in random_names]]
        I = self.n_individuals
        b = self.beta_individual
        mean, sd = b.mean(axis=0), b.std(axis=0, ddof=1)
        labels = self.random_labels
        tables = [fixed, _normal_table(mean, sd / np.sqrt(I), hdi_prob, [f"mu[{lab}]" for lab in labels]),
                  _normal_table(sd, sd / np.sqrt(2.0 * max(I - 1, 1)), hdi_prob,
                                [f"sigma[{lab}]" for lab in self.random_labels])]
        R = len(self.random_labels)
        if R > 1:
            corr = self.population_corr().to_numpy()
            upper = [(a, c) for a in range(R) for c in range(a + 1, R)]
            r = np.array([corr[a, c] for a, c in upper])
            tables.append(_normal_table(r, (1 - r**2) / np.sqrt(max(I - 3, 1)), hdi_prob,
                                        [f"corr[{self.random_labels[a]}, {self.random_labels[c]}]"
                                         for a, c in upper]))
        return pd.concat(tables)


class IndividualMaxEntResult(IndividualEstimates, CachedEvaluator):
    """A fitted MaxEnt mixed logit (``MXL-1`` to ``MXL-3``): stage 1's population GME and
    stage 2's individual GCE; a :class:`~pymc_maxent.fit.Fit` like a posterior.

    Attributes
    ----------
    model : pm.Model
        The model holding the data containers (``pm.set_data`` moves the predictions).
    spec : ModelSpec
        The tier fitted.
    data : ChoiceData
    estimator : str
        ``"maxent"``.
    population : MaxEntResult
        Stage 1: the tier's fixed twin, whose ``p̂`` is every individual's prior ``p⁰``.
    random_labels : list of str
        The random components (dim ``random_coefficient``, as the Bayesian tier's ``z``).
    beta_population : ndarray (random_coefficient,)
        Stage 1's coefficients of the random components, ``β̂``.
    delta : ndarray (individual, random_coefficient)
        ``δ_i``: ``β_i = β̂ − δ_i``.
    beta_individual, beta_individual_se : ndarray (individual, random_coefficient)
        ``β_i`` and standard errors from the inverse of the individual's dual Hessian,
        conditional on stage 1.
    kl_individual : ndarray (individual,)
        ``KL(p^(i) ‖ p⁰)`` over the individual's situations: the information the individual's
        own choices add beyond the population, in nats.
    information_index_individual : ndarray (individual,)
        ``KL(p^(i) ‖ p⁰) / KL(y_i ‖ p⁰)``: the share of the information the individual's choices
        carry beyond the population (``−Σ_t ln p⁰_t,chosen``) that the fit takes up; 0 at
        ``δ_i = 0``, towards 1 as ``p^(i)`` approaches the observed choices.
    kl_total, information_index_total : float
        The sum of ``kl_individual``, and its share of ``Σ_i KL(y_i ‖ p⁰)``.
    converged_individual, separated : ndarray (individual,) bool
        Per individual: met the tolerance; own choices (quasi-)separated in the random
        components (their zero-noise MLE is infinite: the noise term keeps ``δ_i`` finite).
        ``separated`` is None with ``check_separation=False``.
    nit_individual : ndarray (individual,)
    violation_individual : ndarray (individual,)
        Largest absolute violation of the individual's moment constraints.
    converged : bool
        Stage 1 converged and every individual converged.
    n_converged, n_separated : int
    max_violation : float
        Over both stages.
    p, eps : ndarray (situation, alternative)
        ``p^(i)`` and ``ε̂`` of stage 2.
    support : ndarray or None
        The base individual error support; individual ``i``'s is ``support * support_scale[i]``.
    loglik, hit_rate : float
        Of the fitted choices with the individual effects.
    support_selection : DataFrame or None
        With ``individual_support="select"``: the held-out scores of the widths
        (:func:`~pymc_maxent.maxent.mixed.select_individual_support`); the width chosen is
        ``options["individual_support"]``.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> data, truth = pmx.simulate_choices("MXL-1", n_individuals=30, n_situations=10, seed=1)
    >>> fit = pmx.fit_maxent(data, tier="MXL-1")
    >>> fit.converged, fit.beta_individual.shape
    (True, (30, 2))
    """

    estimator = "maxent"

    def __init__(self, *, population, spec, resolved, problem, solution, separated, options):
        self.population = population
        self.model = population.model
        self.spec = spec
        self.data = population.data
        self.resolved = resolved
        self.problem = problem
        self.solution = solution
        self.options = dict(options)
        self.support_selection = None  # set by individual_support="select"
        self.random_labels = list(resolved.random_labels)
        self.individual_labels = self.data.individuals
        self.n_individuals = problem.n_individuals
        names = population.parameter_names()
        self._random_index = np.array([names.index(population_name(lab)) for lab in self.random_labels])
        self.beta_population = population.beta[self._random_index]
        self.delta = solution.delta
        self.beta_individual = self.beta_population[None, :] - self.delta
        self.cov_individual = _batched_inverse(solution.hessian)
        self.beta_individual_se = np.sqrt(np.clip(np.einsum("irr->ir", self.cov_individual), 0.0, None))
        self.p, self.eps = solution.p, solution.eps
        self.support = problem.support
        self.support_scale = problem.scale
        self.converged_individual = solution.converged
        self.nit_individual = solution.nit
        self.violation_individual = solution.violation
        self.separated = separated
        self.n_converged = int(solution.converged.sum())
        self.n_separated = None if separated is None else int(separated.sum())
        self.converged = bool(population.converged and solution.converged.all())
        self.max_violation = float(max(population.max_violation, solution.violation.max(initial=0.0)))
        self._information()

    # ------------------------------------------------------------------ diagnostics
    def _information(self):
        (self.kl_individual, self.information_index_individual, self.kl_total,
         self.information_index_total) = information(self.p, self.problem)
        self._fit_statistics()

    def _fit_statistics(self):
        self.loglik, hits = choice_fit(self.p, self.problem.chosen)
        self.hit_rate = hits / len(self.problem.chosen)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.spec.name}, converged={self.converged}, "
                f"{self.convergence_message()})")

    def parameter_count(self) -> dict[str, int]:
        """Free parameters: stage 1's multipliers, and one ``δ_i`` per individual and random
        component (latent)."""
        return {"parameters": int(self.population.lam.size), "latent": int(self.delta.size)}

    def lppd(self) -> float:
        """The log-likelihood of the fitted choices with the individual effects."""
        return self.loglik

    def loo(self):
        """None: a MaxEnt fit has no draws to leave observations out of."""
        return None

    def refit(self, data: ChoiceData) -> IndividualMaxEntResult:
        """The same tier, supports and solver settings fitted to other ``data`` (cross-validation's
        refits; the separation check is skipped)."""
        from pymc_maxent.maxent.estimator import fit_maxent

        population = {k: v for k, v in self.population.problem.options.items()
                      if k not in ("probability_support", "pi0", "p0")}
        return fit_maxent(data, tier=self.spec, check_separation=False, **population, **self.options)

    def prior_probabilities(self, draws: int = 500, random_seed=0) -> np.ndarray:
        """Stage 1's prior (uniform over the available alternatives)."""
        return self.population.prior_probabilities(draws, random_seed)

    # ------------------------------------------------------------------ draws
    def _delta_draws(self, n: int, rng) -> np.ndarray:
        """``n`` draws ``(n, individual, R)`` of ``δ_i ~ N(δ̂_i, H_i⁺)`` (``H_i⁻¹`` where the
        individual identifies every component)."""
        L = pseudo_inverse_factor(self.solution.hessian)
        z = rng.standard_normal((n, *self.delta.shape))
        return self.delta[None] + np.einsum("irs,nis->nir", L, z)

    def parameter_draws(self, draws: int = 1000, random_seed=0) -> xr.Dataset:
        """Draws ``(chain=1, draw)`` of an asymptotic-normal pseudo-posterior (not a Bayesian
        one): stage 1's ``λ ~ N(λ̂, Cov)`` and, independently, each ``δ_i ~ N(δ̂_i, H_i⁻¹)``;
        ``alpha`` / ``beta`` (fixed), and ``mu`` / ``sigma`` as the mean and SD over individuals
        of ``β_i = β̂(λ) − δ_i`` at each draw."""
        n = require_count(draws, "draws")
        rng = np.random.default_rng(random_seed)
        lam = self.population.multiplier_draws(n, random_seed=rng.integers(2**32))
        ds = self.population.parameter_dataset(-lam[None], {"chain": [0], "draw": np.arange(n)})
        random_names = [population_name(lab) for lab in self.random_labels]
        out = {}
        for name, da in ds.items():
            keep = [lab for lab in da[da.dims[-1]].values.tolist() if f"{name}[{lab}]" not in random_names]
            if keep:
                out[name] = da.sel({da.dims[-1]: keep}).transpose("chain", "draw", ...)
        mu, sigma = np.empty((n, len(self.random_labels))), np.empty((n, len(self.random_labels)))
        step = max(1, (1 << 24) // max(self.delta.size, 1))
        for s in range(0, n, step):
            k = min(step, n - s)
            b = -lam[s:s + k, self._random_index][:, None, :] - self._delta_draws(k, rng)
            mu[s:s + k], sigma[s:s + k] = b.mean(axis=1), b.std(axis=1, ddof=1)
        coords = {"chain": [0], "draw": np.arange(n), RANDOM: self.random_labels}
        for name, v in (("mu", mu), ("sigma", sigma)):
            out[name] = xr.DataArray(v[None], dims=("chain", "draw", RANDOM), coords=coords)
        return xr.Dataset(out, attrs={"pseudo_posterior": "asymptotic normal of both MaxEnt stages; NOT a "
                                                          "Bayesian posterior", "estimator": "maxent"})

    # ------------------------------------------------------------------ the Fit protocol
    def probability_graph(self) -> ProbabilityGraph:
        """``p`` and ``U`` as graphs of the containers, stage 1's multipliers ``lam`` and the
        individual deviations ``delta`` (individual × random_coefficient): ``U = U⁰(λ) −
        δ_i'G``, with ``δ = 0`` for individuals the fit has not seen (the population)."""
        from pymc_maxent.bayes.build import component_utility

        problem = self.population.problem
        problem.require_dual()
        lam = pt.vector("lam", dtype="float64")
        delta = pt.matrix("delta", dtype="float64")
        c = problem.containers
        U0 = problem.dual.terms(lam)["U"]
        index = c.individual
        padded = pt.concatenate([delta, pt.zeros((index.shape[0], delta.shape[1]))], axis=0)
        U = U0 + component_utility(c.X, -padded[index], linear_resolved(self.resolved))
        return ProbabilityGraph(c, choice_probabilities(U, c.available), U, parameters=(lam, delta))

    def parameter_samples(self, *, draws: int | None = None, robust: bool = False,
                          random_seed=0) -> ParameterSamples:
        """Values of ``(lam, delta)`` at which to evaluate :meth:`probability_graph`.

        ``draws=None``: the delta method over stage 1's multipliers at ``δ̂`` (SEs conditional
        on the individual estimates); else that many draws of the pseudo-posterior of
        :meth:`parameter_draws` (dims ``chain, draw``).
        """
        draws = optional_count(draws, "draws")
        pop = self.population
        cov = pop.covariance_matrix(robust)
        if draws is None:
            steps = delta_steps(pop.lam, cov)
            points = delta_points(pop.lam, steps)
            deltas = np.broadcast_to(self.delta, (len(points), *self.delta.shape))
            return ParameterSamples(
                values=(points, deltas), dims=(DELTA,), coords={DELTA: np.arange(len(points))},
                weights=np.eye(1, len(points))[0],
                summarize=partial(delta_method, steps=steps, cov=cov, labels=list(pop.labels)),
            )
        rng = np.random.default_rng(random_seed)
        n = int(draws)
        lam = pop.multiplier_draws(n, robust=robust, random_seed=rng.integers(2**32))
        return ParameterSamples(values=(lam, self._delta_draws(n, rng)), dims=("chain", "draw"),
                                coords={"chain": np.arange(1), "draw": np.arange(n)},
                                weights=np.full(n, 1.0 / n))

    def predict(self, new_data=None, *, draws: int | None = None, random_seed=None) -> xr.DataArray:
        """Choice probabilities ``(chain, draw, situation, alternative)``: known individuals
        with their ``δ_i``, new ones with ``δ = 0`` (the population fit); at the estimate
        (``draws=None``) or over draws of the pseudo-posterior. ``new_data`` defaults to what
        the containers hold (the fitted data, or what ``pm.set_data`` put there since); the
        containers are left as they were.

        Examples
        --------
        >>> import numpy as np, pymc_maxent as pmx
        >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=20, n_situations=8, seed=2)
        >>> fit = pmx.fit_maxent(data, tier="MXL-1")
        >>> bool(np.allclose(fit.predict().values[0, 0], fit.p))
        True
        """
        draws = optional_count(draws, "draws")
        seed = 0 if random_seed is None else random_seed
        if new_data is None:
            held = self.population.problem.data_in_containers()
            new_data = None if held is self.data else held
        if draws is None:
            ev = self.evaluator()
            ev = ev if new_data is None else ev.with_data(new_data)
            p = ev.evaluate(samples=[0])
            coords = {"chain": [0], "draw": [0], SITUATION: ev.situations, ALTERNATIVE: ev.alternatives}
            return xr.DataArray(p[None], dims=("chain", "draw", SITUATION, ALTERNATIVE), coords=coords,
                                name="p")
        ev = self.evaluator(draws=draws, random_seed=seed)
        ev = ev if new_data is None else ev.with_data(new_data)
        return ev.probabilities()

    # ------------------------------------------------------------------ save and load
    def settings(self) -> dict:
        """Both stages' settings as JSON-ready values: with the data and the tier,
        :meth:`from_datatree` rebuilds the fit.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=10, n_situations=6, seed=2)
        >>> settings = pmx.fit_maxent(data, tier="MXL-1", individual_support=2.0).settings()
        >>> sorted(settings), settings["individual"]["individual_support"]
        (['individual', 'population'], 2.0)
        """
        individual = {key: value if isinstance(value, str | None) or key not in SUPPORTS
                      else np.asarray(value, dtype=float).tolist() for key, value in self.options.items()}
        return {"population": self.population.settings(), "individual": individual}

    @classmethod
    def from_datatree(cls, tree, data: ChoiceData, spec, *, model=None, population: dict,
                      individual: dict) -> IndividualMaxEntResult:
        """The fit saved by :meth:`to_datatree`, without refitting: stage 1 from the
        ``maxent_population`` group (:meth:`MaxEntResult.from_datatree
        <pymc_maxent.maxent.MaxEntResult.from_datatree>`), stage 2's arrays rebuilt from ``data``
        and its solution read from the ``maxent`` group; ``population`` and ``individual`` are
        :meth:`settings`.

        Raises
        ------
        MaxEntError
            A tree without those groups or variables, or whose arrays do not match ``data`` and
            ``spec``.

        Examples
        --------
        >>> import numpy as np, pymc_maxent as pmx
        >>> from pymc_maxent.maxent import IndividualMaxEntResult
        >>> data, _ = pmx.simulate_choices("MXL-1", n_individuals=10, n_situations=6, seed=2)
        >>> fit = pmx.fit_maxent(data, tier="MXL-1")
        >>> again = IndividualMaxEntResult.from_datatree(fit.to_datatree(draws=10), data, fit.spec,
        ...                                              **fit.settings())
        >>> bool((again.beta_individual == fit.beta_individual).all())
        True
        """
        from pymc_maxent.bayes.specification import resolve
        from pymc_maxent.maxent.situation_result import SituationMaxEntResult

        if len(resolve(spec, data).situation_components) and not issubclass(cls, SituationMaxEntResult):
            return SituationMaxEntResult.from_datatree(tree, data, spec, model=model, population=population,
                                                       individual=individual)
        return cls(**cls._stages_from_datatree(tree, data, spec, model, population, individual))

    @staticmethod
    def _stages_from_datatree(tree, data, spec, model, population, individual) -> dict:
        """Stages 1 and 2 of a saved fit, as the constructor's keyword arguments."""
        from pymc_maxent.bayes.specification import resolve
        from pymc_maxent.maxent.mixed import individual_problem, mixed_model, population_spec
        from pymc_maxent.maxent.result import MaxEntResult
        from pymc_maxent.model import maxent_moments

        groups = {name: _group(tree, name) for name in ("maxent", "maxent_population")}
        point = groups["maxent"]
        resolved = resolve(spec, data)
        shape = (data.n_individuals, resolved.n_random)
        if point["delta"].shape != shape or point["p"].shape != (data.n_situations, data.n_alternatives):
            raise MaxEntError(f"the saved fit has delta {point['delta'].shape} and p {point['p'].shape}; "
                              f"the data and {spec.name} need {shape} and "
                              f"{(data.n_situations, data.n_alternatives)}")
        model = mixed_model(data, model)
        moments = maxent_moments(population_spec(spec), data)
        pop = MaxEntResult.from_datatree({"maxent": groups["maxent_population"]}, data, moments, model=model,
                                         **population)
        individual = dict(individual)
        problem = individual_problem(data, resolved, pop, individual["individual_support"])
        solution = saved_solution(point)
        sep = point["separated"].values.astype(bool) if "separated" in point else None
        return {"population": pop, "spec": spec, "resolved": resolved, "problem": problem,
                "solution": solution, "separated": sep, "options": individual}

    # ------------------------------------------------------------------ DataTree
    def to_datatree(self, *, draws: int = 500, random_seed=0) -> xr.DataTree:
        """ArviZ-style groups with the Bayesian tier's dims and coords.

        Notes
        -----
        ``posterior``
            The pseudo-posterior of :meth:`parameter_draws` (``alpha``, ``beta``, ``mu``,
            ``sigma``), labelled as such in its ``attrs``.
        ``maxent``
            ``beta_individual`` and ``beta_individual_se`` (individual × random_coefficient, the
            coords of the Bayesian ``z``), ``delta``, ``beta_population``, per-individual
            ``kl``, ``information_index``, ``converged``, ``iterations``, ``violation``,
            ``separated``, ``n_situations``; stage 2's dual at the solution (``grad``, ``value``,
            ``hessian``, ``information``, ``reach``); ``p`` and ``eps``; stage 1's ``lam`` and
            ``cov``; the diagnostics in ``attrs``.
        ``maxent_population``
            Stage 1's ``maxent`` group (:meth:`MaxEntResult.point_dataset
            <pymc_maxent.maxent.MaxEntResult.point_dataset>`).
        ``observed_data``
            ``chosen`` (situation).
        """
        ind = {INDIVIDUAL: self.data.individuals.tolist()}
        both = ind | {RANDOM: self.random_labels}
        sit = {SITUATION: self.data.situations.tolist(), ALTERNATIVE: self.data.alternatives.tolist()}
        pop = self.population
        pair = {"dims": (INDIVIDUAL, RANDOM), "coords": both}
        point = {
            "beta_individual": xr.DataArray(self.beta_individual, **pair),
            "beta_individual_se": xr.DataArray(self.beta_individual_se, **pair),
            "delta": xr.DataArray(self.delta, **pair),
            "beta_population": xr.DataArray(self.beta_population, dims=(RANDOM,),
                                            coords={RANDOM: self.random_labels}),
            "kl": xr.DataArray(self.kl_individual, dims=(INDIVIDUAL,), coords=ind),
            "information_index": xr.DataArray(self.information_index_individual, dims=(INDIVIDUAL,),
                                              coords=ind),
            "converged": xr.DataArray(self.converged_individual, dims=(INDIVIDUAL,), coords=ind),
            "iterations": xr.DataArray(self.nit_individual, dims=(INDIVIDUAL,), coords=ind),
            "violation": xr.DataArray(self.violation_individual, dims=(INDIVIDUAL,), coords=ind),
            "n_situations": xr.DataArray(self.problem.n_situations, dims=(INDIVIDUAL,), coords=ind),
            "grad": xr.DataArray(self.solution.grad, **pair),
            "reach": xr.DataArray(self.solution.reach, **pair),
            "value": xr.DataArray(self.solution.value, dims=(INDIVIDUAL,), coords=ind),
            "hessian": xr.DataArray(self.solution.hessian, dims=(INDIVIDUAL, RANDOM, RANDOM_),
                                    coords=both | {RANDOM_: self.random_labels}),
            "information": xr.DataArray(self.solution.information, dims=(INDIVIDUAL, RANDOM, RANDOM_),
                                        coords=both | {RANDOM_: self.random_labels}),
            "p": xr.DataArray(self.solution.p, dims=(SITUATION, ALTERNATIVE), coords=sit),
            "eps": xr.DataArray(self.solution.eps, dims=(SITUATION, ALTERNATIVE), coords=sit),
            "lam": xr.DataArray(pop.lam, dims=("moment",), coords={"moment": pop.labels}),
            "cov": xr.DataArray(pop.cov, dims=("moment", "moment_"),
                                coords={"moment": pop.labels, "moment_": pop.labels}),
        }
        if self.separated is not None:
            point["separated"] = xr.DataArray(self.separated, dims=(INDIVIDUAL,), coords=ind)
        attrs = {"estimator": "MaxEnt mixed logit: population GME, then individual GCE with the population "
                              "fit as prior", "tier": self.spec.name}
        attrs |= {k: (int(v) if isinstance(v, bool) else v) for k, v in self.convergence().items()
                  if v is not None}
        attrs |= {"kl_total": self.kl_total, "information_index_total": self.information_index_total,
                  "loglik": self.loglik, "hit_rate": self.hit_rate, "population_loglik": pop.loglik}
        chosen = np.asarray(self.data.alternatives)[self.problem.chosen]
        return xr.DataTree.from_dict({
            "posterior": self.parameter_draws(draws, random_seed=random_seed),
            "maxent": xr.Dataset(point, attrs=attrs),
            "maxent_population": pop.point_dataset(),
            "observed_data": xr.Dataset({"chosen": xr.DataArray(chosen, dims=(SITUATION,),
                                                                coords={SITUATION: sit[SITUATION]})}),
        })


def choice_fit(p: np.ndarray, chosen: np.ndarray) -> tuple[float, int]:
    """The log-likelihood of the choices under ``p`` and the number of situations whose most
    probable alternative was chosen."""
    rows = np.arange(len(chosen)), chosen
    with np.errstate(divide="ignore"):
        loglik = float(np.log(p[rows]).sum())
    return loglik, int((p.argmax(axis=1) == chosen).sum())


def _group(tree, name: str) -> xr.Dataset:
    try:
        node = tree[name]
    except KeyError:
        raise MaxEntError(f"the tree has no {name!r} group: not a saved MaxEnt mixed-logit fit") from None
    group = node.to_dataset() if hasattr(node, "to_dataset") else node
    missing = [var for var in SAVED if var not in group]
    if name != "maxent_population" and missing:
        raise MaxEntError(f"the {name!r} group lacks the variables {missing}: not a saved MaxEnt "
                          "mixed-logit fit")
    return group


def saved_solution(point: xr.Dataset):
    """An :class:`~pymc_maxent.maxent.individual.IndividualSolution` from the variables
    :data:`SAVED` of a saved stage."""
    from pymc_maxent.maxent.individual import IndividualSolution

    arrays = {name: point[name].values for name in SAVED}
    return IndividualSolution(
        delta=arrays["delta"], grad=arrays["grad"], hessian=arrays["hessian"],
        information=arrays["information"], value=arrays["value"], nit=arrays["iterations"],
        converged=arrays["converged"].astype(bool), reach=arrays["reach"], p=arrays["p"], eps=arrays["eps"])


def information(p: np.ndarray, problem) -> tuple:
    """Per group of ``problem`` (an individual, or a situation at stage 3): ``KL(p ‖ p⁰)`` over
    its situations, the information index ``KL(p ‖ p⁰) / KL(y ‖ p⁰)`` (``KL(y ‖ p⁰) =
    −Σ_t ln p⁰_t,chosen``), and the sum of the first and its share of the summed
    ``KL(y ‖ p⁰)``."""
    p0 = np.exp(problem.log_p0)
    kl_sit = rel_entr(p, np.where(problem.available, p0, 1.0)).sum(axis=1)
    chosen = np.arange(len(problem.chosen)), problem.chosen
    kl = np.bincount(problem.individual, kl_sit, minlength=problem.n_individuals)
    data_kl = np.bincount(problem.individual, -problem.log_p0[chosen], minlength=problem.n_individuals)
    index = np.divide(kl, data_kl, out=np.zeros_like(data_kl), where=data_kl > 0)
    total = float(kl.sum())
    return kl, index, total, total / data_kl.sum() if data_kl.sum() > 0 else 0.0


def _spectrum(H: np.ndarray):
    """Eigenvectors of ``(…, R, R)`` positive semi-definite blocks, the inverses of their
    eigenvalues (0 for the directions the block does not identify) and which are identified."""
    from pymc_maxent.maxent.individual import SINGULAR

    values, vectors = np.linalg.eigh(H)
    keep = values > SINGULAR * np.maximum(values[..., -1:], 1e-300)
    return vectors, np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0), keep


def _batched_inverse(H: np.ndarray) -> np.ndarray:
    """Inverses of ``(…, R, R)`` positive semi-definite blocks; a (numerically) singular block
    gets ``inf`` on the diagonal of every component its null space involves (unidentified for
    that individual) rather than NaN or a pseudo-inverse's finite, understated variance."""
    vectors, inverse, keep = _spectrum(H)
    singular = ~keep.all(axis=-1)
    out = np.empty_like(H)
    out[~singular] = np.linalg.inv(H[~singular])
    out[singular] = np.einsum("nrs,ns,nts->nrt", vectors[singular], inverse[singular], vectors[singular])
    involved = ((np.abs(vectors) > 1e-8) & ~keep[..., None, :]).any(axis=-1)  # (…, component)
    block, component = np.nonzero(involved)
    out[block, component, component] = np.inf
    return out


def pseudo_inverse_factor(H: np.ndarray) -> np.ndarray:
    """``L`` with ``L L' = H⁺`` for ``(…, R, R)`` positive semi-definite blocks: normal draws
    ``δ̂ + L z`` move only along the directions ``H`` identifies (the others stay at the
    estimate: no choice of that individual or situation moves them)."""
    vectors, inverse, _ = _spectrum(H)
    return vectors * np.sqrt(inverse)[..., None, :]
