"""A PyMC posterior of a built choice model, as a :class:`~pymc_maxent.fit.Fit`."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from pytensor.graph.traversal import ancestors
from scipy.special import logsumexp

from pymc_maxent.arguments import optional_count, require_count
from pymc_maxent.bayes.build import choice_graph
from pymc_maxent.bayes.priors import TOP_LEVEL_PARAMETERS
from pymc_maxent.bayes.refit import pymc_nuts, sample_without
from pymc_maxent.bayes.sample import DEFAULT_SAMPLER, INDIVIDUAL_LOG_LIKELIHOOD
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.serialize import choice_data_from_model
from pymc_maxent.evaluation import CachedEvaluator, ParameterSamples, ProbabilityGraph, unit_log_likelihood
from pymc_maxent.exceptions import SpecificationError

SAMPLE_DIMS = ("chain", "draw")


def _posterior(idata) -> xr.Dataset:
    if "posterior" not in getattr(idata, "children", {}):
        raise SpecificationError("the DataTree has no 'posterior' group")
    return idata["posterior"].to_dataset()


class PosteriorFit(CachedEvaluator):
    """A model from :func:`~pymc_maxent.build_model` and its posterior DataTree.

    Parameters
    ----------
    model : pm.Model
        Built by :func:`~pymc_maxent.build_model` (or a :class:`~pymc_maxent.ChoiceModel`).
    idata : DataTree
        Its posterior (from :func:`~pymc_maxent.sample`, or :func:`pymc.sample`).
    data : ChoiceData, optional
        The fitted data; default what the model's containers hold.
    sample_kwargs : dict, optional
        How the posterior was sampled (the settings of :func:`~pymc_maxent.sample`), for the
        refits of cross-validation (:meth:`posterior_without`); default the posterior's chains and
        draws with :func:`~pymc_maxent.sample`'s defaults.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> data = pmx.load_travel_mode()
    >>> model = pmx.build_model(data, "MNL-2")
    >>> idata = pmx.sample(model, draws=50, tune=100, chains=1, progressbar=False, random_seed=1,
    ...                    nuts_sampler="pymc", compute_convergence_checks=False)
    >>> fit = pmx.PosteriorFit(model, idata)
    >>> fit.estimates().loc["beta[gc]", "estimate"] < 0
    np.True_
    """

    estimator = "bayes"

    def __init__(self, model: pm.Model, idata, data: ChoiceData | None = None, *,
                 sample_kwargs: dict | None = None, compiled_by: PosteriorFit | None = None):
        self.graph = choice_graph(model)
        self._compiled_by = compiled_by  # a fit of the same model whose compiled evaluators this one reuses
        self.model = model
        self.idata = idata
        self.data = choice_data_from_model(model) if data is None else data
        self.posterior = _posterior(idata)
        missing = [v.name for v in self._parameters() if v.name not in self.posterior]
        if missing:
            raise SpecificationError(f"the posterior has no draws of {missing}")
        sizes = self.posterior.sizes
        self.sample_kwargs = {"draws": sizes["draw"], "chains": sizes["chain"]} | dict(sample_kwargs or {})

    @property
    def spec(self):
        """The :class:`~pymc_maxent.ModelSpec` of the model."""
        return self.graph.spec

    def __repr__(self) -> str:
        sizes = self.posterior.sizes
        return (f"PosteriorFit({self.spec.name}, {sizes['chain']} chains x {sizes['draw']} draws, "
                f"{self.data.n_situations} situations)")

    # ------------------------------------------------------------------ estimates
    def top_level(self) -> list[str]:
        """The population-level variables in the posterior (``alpha``, ``beta``, ``mu``, ...)."""
        return [v for v in TOP_LEVEL_PARAMETERS if v in self.posterior]

    def estimates(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """Posterior mean, sd, HDI (``lower``, ``upper``), ``ess_bulk`` and ``r_hat`` of each
        top-level parameter (``alpha[air]``, ``mu[gc]``; ``corr`` above the diagonal)."""
        names = self.top_level()
        table = az.summary(self.idata, var_names=names, ci_kind="hdi", ci_prob=hdi_prob, round_to="none")
        pct = f"{100 * hdi_prob:g}"
        table = table.rename(columns={"mean": "estimate", f"hdi{pct}_lb": "lower", f"hdi{pct}_ub": "upper"})
        table = table.loc[[k for k in table.index if k not in self._redundant_corr()]]
        table.index.name = "parameter"
        cols = ["estimate", "sd", "lower", "upper"]
        return table[cols + [c for c in ("ess_bulk", "r_hat") if c in table]].astype(float)

    def _redundant_corr(self) -> set[str]:
        """``corr[a, b]`` on or below the diagonal (1, or a repeat of one above it)."""
        if "corr" not in self.posterior:
            return set()
        labels = self.posterior["corr"]["random_coefficient"].values.tolist()
        return {f"corr[{a}, {b}]" for i, a in enumerate(labels) for b in labels[:i + 1]}

    def parameter_draws(self, draws: int | None = None, random_seed=0) -> xr.Dataset:
        """The posterior draws of the top-level parameters (all of them, or ``draws`` per chain
        taken evenly)."""
        draws = optional_count(draws, "draws")
        post = self.posterior[self.top_level()]
        if draws is not None and draws < post.sizes["draw"]:
            post = post.isel(draw=np.linspace(0, post.sizes["draw"] - 1, int(draws)).round().astype(int))
        return post

    def predict(self, new_data: ChoiceData | None = None, *, random_seed=None) -> xr.DataArray:
        """Posterior choice probabilities ``(chain, draw, situation, alternative)`` of ``new_data``
        (default: the fitted data). Known individuals keep their coefficients; new ones get a
        draw from the population distribution at every posterior draw. The model's containers
        are left as they were."""
        ev = self.evaluator(random_seed=0 if random_seed is None else random_seed)
        return ev.probabilities() if new_data is None else ev.with_data(new_data).probabilities()

    def to_datatree(self):
        return self.idata

    def individual_estimates(self) -> xr.Dataset:
        """Posterior mean (``estimate``) and SD (``sd``) of each individual's random components
        ``β_i`` (individual × random_coefficient, the dims of ``z``), on the coefficient scale:
        ``θ_i = μ + σ ∘ z_i`` (``μ + L z_i`` when correlated), lognormal components as
        ``±exp(θ_i)``.

        Raises
        ------
        SpecificationError
            If the model has no individual-level random components.
        """
        theta = self.individual_coefficient_draws()["theta"]
        sign = xr.DataArray(self.graph.resolved.random_sign, dims=("random_coefficient",))
        beta = xr.where(sign != 0, sign * np.exp(theta), theta).transpose(*theta.dims)
        return xr.Dataset({"estimate": beta.mean(SAMPLE_DIMS), "sd": beta.std(SAMPLE_DIMS)})

    def individual_coefficient_draws(self, *, population_draws: int = 0, random_seed=0) -> xr.Dataset:
        """Posterior draws of the random components on their normal scale, ``θ_i = μ + σ ∘ z_i``
        (``μ + L z_i`` when correlated; a lognormal component is ``±exp(θ)``).

        Parameters
        ----------
        population_draws : int
            Draws per posterior draw of a new individual's ``θ = μ + L z``, ``z ~ N(0, I)``: the
            population distribution integrated over the posterior of ``μ, σ, corr``.
        random_seed : int
            Seeds those ``z``.

        Returns
        -------
        Dataset
            ``theta`` (chain, draw, individual, random_coefficient) and, with
            ``population_draws``, ``theta_population`` (chain, draw, population_draw,
            random_coefficient).

        Raises
        ------
        SpecificationError
            If the model has no individual-level random components.
        """
        population_draws = require_count(population_draws, "population_draws", minimum=0)
        if self.graph.individual is None or not self.graph.resolved.n_random:
            raise SpecificationError(f"{self.spec.name} has no individual-level random components")
        post = self.posterior
        z = post["z"].transpose(*SAMPLE_DIMS, "individual", "random_coefficient")
        mu = post["mu"].transpose(*SAMPLE_DIMS, "random_coefficient").values[:, :, None, :]
        sigma = post["sigma"].transpose(*SAMPLE_DIMS, "random_coefficient").values
        chol = sigma[..., :, None] * np.linalg.cholesky(post["corr"].transpose(*SAMPLE_DIMS, ...).values) \
            if "corr" in post else None

        def theta(zv):
            if chol is None:
                return mu + sigma[:, :, None, :] * zv
            return mu + np.einsum("cdrs,cdis->cdir", chol, zv)

        out = xr.Dataset({"theta": xr.DataArray(theta(z.values), dims=z.dims, coords=z.coords)})
        if population_draws:
            rng = np.random.default_rng(random_seed)
            fresh = rng.standard_normal((*z.shape[:2], int(population_draws), z.shape[-1]))
            out["theta_population"] = xr.DataArray(theta(fresh), dims=(*SAMPLE_DIMS, "population_draw",
                                                                        "random_coefficient"))
        return out

    # ------------------------------------------------------------------ evaluator inputs
    def _parameters(self) -> list:
        in_graph = set(ancestors([self.graph.p]))
        return [rv for rv in self.model.free_RVs if rv in in_graph]

    def _inputs(self) -> list:
        """The probability graph's parameters: the free variables behind it, and ``z_new``
        (the new individuals' deviations, drawn by the evaluator) where the model has one."""
        new = self.graph.new_individual
        return self._parameters() + ([new] if new is not None else [])

    def probability_graph(self) -> ProbabilityGraph:
        g = self.graph
        return ProbabilityGraph(containers=g.containers, p=g.p, utility=g.utility,
                                parameters=tuple(self._inputs()), new_individual=g.new_individual,
                                situation=g.situation)

    def parameter_samples(self, *, draws: int | None = None, robust: bool = False,
                          random_seed=0) -> ParameterSamples:
        """The posterior draws of every free variable behind ``p`` (``draws`` and ``robust`` are
        for MaxEnt fits and ignored here)."""
        optional_count(draws, "draws")
        post = self.posterior
        S = post.sizes["chain"] * post.sizes["draw"]
        values = tuple(post[v.name].transpose(*SAMPLE_DIMS, ...).values.reshape(S, *post[v.name].shape[2:])
                       for v in self._parameters())
        if self.graph.new_individual is not None:  # no new individual yet (the evaluator draws them)
            values += (np.zeros((S, 0, self.graph.new_individual.type.shape[-1])),)
        situation = self.graph.situation
        situations = post[situation.name]["situation"].values.tolist() if situation is not None else None
        return ParameterSamples(values=values, dims=SAMPLE_DIMS,
                                coords={d: post[d].values for d in SAMPLE_DIMS},
                                weights=np.full(S, 1.0 / S), situations=situations)

    def convergence(self) -> dict:
        """Sampler health: divergences, the largest R-hat and the smallest bulk ESS of the
        top-level parameters (NaN for a one-chain or one-draw fit), and where the sampler
        records them its leapfrog steps per draw and mean tree depth (``steps_per_draw``,
        ``tree_depth``)."""
        table = self.estimates()
        stats = self.idata["sample_stats"] if "sample_stats" in self.idata.children else None
        divergences = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
        report = {"divergences": divergences, "max_r_hat": float(table["r_hat"].max()),
                  "min_ess_bulk": float(table["ess_bulk"].min())}
        for key, names in (("steps_per_draw", ("n_steps", "tree_size")),
                           ("tree_depth", ("depth", "tree_depth"))):
            name = next((n for n in names if stats is not None and n in stats), None)
            if name is not None:
                report[key] = float(stats[name].mean())
        return report

    # ------------------------------------------------------------------ model selection
    def parameter_count(self) -> dict[str, int]:
        """Free parameters: population level, and latent (individual and situation deviations)."""
        latent_vars = {v for v in (self.graph.individual, self.graph.situation) if v is not None}
        skip = {self.graph.new_individual}
        point = self.model.initial_point()
        values = self.model.rvs_to_values
        sizes = {rv: int(np.prod(point[values[rv].name].shape)) for rv in self.model.free_RVs}
        return {"parameters": sum(n for rv, n in sizes.items() if rv not in latent_vars | skip),
                "latent": sum(n for rv, n in sizes.items() if rv in latent_vars)}

    def lppd(self) -> float:
        """Log pointwise predictive density of the fitted choices."""
        ll = self.pointwise_log_likelihood("situation").to_numpy()
        ll = ll.reshape(-1, ll.shape[-1])
        return float((logsumexp(ll, axis=0) - np.log(ll.shape[0])).sum())

    def loo(self):
        """PSIS-LOO, leaving one individual out on panel data (one situation otherwise), and the
        level used (``"individual"`` or ``"situation"``)."""
        log_lik = self._log_likelihood()
        var = INDIVIDUAL_LOG_LIKELIHOOD if INDIVIDUAL_LOG_LIKELIHOOD in log_lik else "chosen"
        return az.loo(self.idata, var_name=var), "individual" if var != "chosen" else "situation"

    def posterior_without(self, held_out, *, random_seed=None, **sample_kwargs) -> PosteriorFit:
        """The posterior refitted without the situations ``held_out`` (boolean mask over the
        fitted situations), by the same model, priors and sampler settings
        (:func:`~pymc_maxent.bayes.refit.sample_without`; ``sample_kwargs`` override
        :attr:`sample_kwargs`). Individuals left without situations keep draws from their
        prior. A point estimate (MAP) has no posterior to refit: a :class:`SpecificationError`."""
        if "point_estimate" in self.posterior.attrs:
            raise SpecificationError(f"a {self.posterior.attrs['point_estimate']} fit has no posterior to "
                                     "refit: cross-validate a sampled fit")
        held_out = np.asarray(held_out, dtype=bool)
        if held_out.shape != (self.data.n_situations,):
            raise SpecificationError(f"held_out has shape {held_out.shape}; the fit has "
                                     f"{self.data.n_situations} situations")
        settings = {k: v for k, v in (self.sample_kwargs | sample_kwargs).items() if k != "random_seed"}
        step = {}
        if settings.get("nuts_sampler", DEFAULT_SAMPLER) == "pymc" and "step" not in settings:
            steps = self.__dict__.setdefault("_refit_steps", {})  # compiled once per fit
            target_accept = settings.get("target_accept")
            if target_accept not in steps:
                steps[target_accept] = pymc_nuts(self.model, target_accept)
            step = {"step": steps[target_accept]}
        run = {k: v for k, v in (settings | step).items() if not (step and k == "target_accept")}
        tree = sample_without(self.model, held_out, random_seed=random_seed, **run)
        return PosteriorFit(self.model, tree, self.data, sample_kwargs=settings)

    def refit_without(self, held_out, *, random_seed=None, sample_kwargs=None) -> PosteriorFit:
        """:meth:`posterior_without` (the protocol's refit), the refit reusing this fit's compiled
        evaluators."""
        refit = self.posterior_without(held_out, random_seed=random_seed, **dict(sample_kwargs or {}))
        return PosteriorFit(self.model, refit.idata, self.data, sample_kwargs=refit.sample_kwargs,
                            compiled_by=self)

    def compiled_probabilities(self):
        """The fit's compiled ``p`` (:meth:`~pymc_maxent.evaluation.CachedEvaluator.compiled_probabilities`);
        a refit's is its parent's: nothing is compiled again."""
        if self._compiled_by is None:
            return super().compiled_probabilities()
        return self._compiled_by.compiled_probabilities()

    def pointwise_log_likelihood(self, level: str) -> xr.DataArray:
        """The stored log-likelihood per unit, ``(chain, draw, situation)`` or ``(chain, draw,
        individual)`` at ``level`` ``"individual"`` (the sum over each individual's situations)."""
        if "log_likelihood" not in self.idata.children:  # a MAP's one-draw tree: from p at its draws
            ev = self.evaluator()
            return unit_log_likelihood(ev.evaluate(), self.data, level, ev.sample_dims, ev.sample_coords)
        log_lik = self._log_likelihood()
        if level == "individual":
            if INDIVIDUAL_LOG_LIKELIHOOD not in log_lik:
                raise SpecificationError("the posterior has no log-likelihood per individual: sample it with "
                                         "pymc_maxent.sample")
            return log_lik[INDIVIDUAL_LOG_LIKELIHOOD]
        return log_lik["chosen"]

    def _log_likelihood(self) -> xr.Dataset:
        if "log_likelihood" not in self.idata.children:
            raise SpecificationError("the posterior has no log_likelihood group: sample it with "
                                     "pymc_maxent.sample (or idata_kwargs={'log_likelihood': True})")
        return self.idata["log_likelihood"].to_dataset()

    def prior_probabilities(self, draws: int = 500, random_seed=0) -> np.ndarray:
        """Prior predictive mean of ``p`` (situation, alternative) of the fitted data."""
        draws = require_count(draws, "draws")
        names = [v.name for v in self._parameters()]
        prior = pm.sample_prior_predictive(draws, model=self.model, var_names=names, random_seed=random_seed)
        as_posterior = xr.DataTree.from_dict({"posterior": prior["prior"].to_dataset()})
        p = PosteriorFit(self.model, as_posterior, self.data).evaluator().evaluate()
        return p.mean(axis=0)
