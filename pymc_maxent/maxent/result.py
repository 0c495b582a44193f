"""The MaxEnt fit: estimates, standard errors, information measures, prediction, DataTree."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytensor.tensor as pt
import xarray as xr
from scipy import stats
from scipy.special import entr

from pymc_maxent.arguments import optional_count
from pymc_maxent.data.choice_data import ALTERNATIVE, SITUATION, ChoiceData
from pymc_maxent.exceptions import MaxEntError, SpecificationError
from pymc_maxent.fit import CachedEvaluator, ParameterSamples, ProbabilityGraph
from pymc_maxent.maxent.covariance import Identification
from pymc_maxent.maxent.delta import DELTA, delta_method, delta_points, delta_steps
from pymc_maxent.maxent.dual import DualSolution
from pymc_maxent.maxent.estimates import MaxEntEstimates


def _entropy_rows(x, chunk: int = 1 << 16) -> np.ndarray:
    """``−Σ x ln x`` over all but the first axis, per row (``0 ln 0 = 0``), in row chunks."""
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], chunk):
        e = entr(x[s:s + chunk])
        out[s:s + chunk] = e.reshape(e.shape[0], -1).sum(axis=1)
    return out


class MaxEntResult(MaxEntEstimates, CachedEvaluator):
    """A fitted MaxEnt (GME) choice model, in the style of ``scipy.optimize.OptimizeResult``;
    a :class:`~pymc_maxent.fit.Fit` like a posterior.

    Attributes
    ----------
    model : pm.Model
        The model holding the data containers (a Bayesian model passed as ``model=``, or the
        estimator's own).
    spec : tuple of Moment
        The moments fitted.
    data : ChoiceData
        The fitted data.
    estimator : str
        ``"maxent"``.
    problem : MaxEntEstimator
        The compiled problem (refit, predict at other multipliers).
    converged : bool
        The solver met its criterion (the dual: every moment residual within ``tol`` of its
        reachable range; see ``message``).
    identified : bool
        False when the Jacobi-scaled dual Hessian or choice information is near-singular
        (condition number above :data:`~pymc_maxent.maxent.covariance.MAX_CONDITION`): an
        :class:`~pymc_maxent.exceptions.IdentificationWarning` named the parameters concerned.
    condition_number : float
        Of the Jacobi-scaled dual Hessian ``D⁻¹HD⁻¹`` (``D = √diag H``): the same whatever the
        units of the moments. ``information_condition_number``: of the choice information (the
        Hessian without the noise term).
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
        Covariance of ``lam`` (and of ``−lam``): inverse Hessian of the dual (inverted on the
        Jacobi-scaled Hessian, :func:`~pymc_maxent.maxent.covariance.covariance`), and the
        sandwich ``H⁻¹ (Σ_i g_i g_i') H⁻¹``.
    p, eps : ndarray (situation, alternative)
        ``p̂`` (0 where unavailable) and ``ε̂`` as it enters the moments, ``Σ F (p̂ + ε̂) = m``:
        ``Σ_h u_h ŵ_ijh`` less its mean over the situation's available alternatives (adding up
        to 0, as ``y = p + ε`` implies), or as it is with ``centre_noise=False``.
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
    >>> res.converged, res.identified, res.summary().loc["beta[gc]", "estimate"].round(3)
    (True, True, np.float64(-0.015))
    """

    estimator = "maxent"

    def __init__(self, *, problem, data, solution, primal, cov, cov_robust, identification, data_coords,
                 chosen, available, p0, w0, solver, converged, message, nit, max_violation,
                 solve_options=None):
        self.problem = problem
        self.model = problem.model
        self.spec = tuple(problem.moments.moments)
        self.data = data
        self.terms = list(problem.moments.terms)
        self.labels = [t.moment for t in self.terms]
        self.solver = solver
        #: ``tol``, ``maxiter``, ``on_unidentified`` and ``dual_method`` of the solve, for :meth:`refit`
        self.solve_options = dict(solve_options or {})
        self.converged = bool(converged)
        self.identified = bool(identification.identified)
        self.condition_number = float(identification.condition_number)
        self.information_condition_number = float(identification.information_condition_number)
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
        self.error_support = problem.current_error_support()
        self.probability_support = problem.supports.probability
        self._chosen = chosen
        self._diagnostics(chosen, available, p0, w0)

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
            f"MaxEntResult(solver={self.solver!r}, converged={self.converged}, identified={self.identified}, "
            f"nit={self.nit}, max_violation={self.max_violation:.2e})",
            f"  normalized entropy {self.normalized_entropy:.4f}, information index "
            f"{self.information_index:.4f}, ER {self.entropy_ratio:.2f} (dof {self.entropy_ratio_dof}, "
            f"p {self.entropy_ratio_pvalue:.3g}), pseudo-R2 {self.pseudo_r2:.4f}, "
            f"hit rate {self.hit_rate:.3f}",
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ prediction
    def predict(self, new_data=None, *, draws: int | None = None, random_seed=None) -> xr.DataArray:
        """Choice probabilities, at the estimate or over draws of ``N(λ̂, Cov)``.

        Parameters
        ----------
        new_data : ChoiceData, optional
            Situations to predict; swapped into the shared containers and put back exactly as
            they were afterwards (a Bayesian model passed as ``model=`` is left untouched).
            Default: the data the containers hold now (e.g. after ``pm.set_data``).
        draws : int, optional
            None: the estimate alone (``chain=[0], draw=[0]``); else that many draws of the
            multipliers from their asymptotic normal.
        random_seed : int, optional
            Seeds the draws.

        Returns
        -------
        DataArray (chain, draw, situation, alternative)

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data = pmx.load_travel_mode()
        >>> res = pmx.fit_maxent(data)
        >>> dict(res.predict(data.subset(slice(0, 5)), draws=20, random_seed=1).sizes)
        {'chain': 1, 'draw': 20, 'situation': 5, 'alternative': 4}
        """
        if draws is None:
            lam = self.lam[None]
        else:
            lam = self.multiplier_draws(draws, random_seed=random_seed)
        p = self.problem.predict(lam, new_data)
        return (p.rename(sample="draw").expand_dims(chain=[0])
                .assign_coords(draw=np.arange(lam.shape[0])).transpose("chain", "draw", ...))

    # ------------------------------------------------------------------ the Fit protocol
    def probability_graph(self) -> ProbabilityGraph:
        """``p`` and ``U`` (situation × alternative) as graphs of the containers and a fresh
        multiplier vector ``lam`` (``β = −lam``), the direct form's softmax of the dual.

        Raises
        ------
        MaxEntError
            With a nonlinear constraint (no dual) or a probability support (``p`` is then an
            implicit function of the data).

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> graph = pmx.fit_maxent(pmx.load_travel_mode()).probability_graph()
        >>> [v.name for v in graph.parameters], graph.p.ndim
        (['lam'], 2)
        """
        problem = self.problem
        problem.require_dual()
        if not problem.dual.direct:
            raise MaxEntError("effects of a MaxEnt fit need the direct form of p (probability_support="
                              "None): in the support-point form p is an implicit function of x")
        lam = pt.vector("lam", dtype="float64")
        terms = problem.dual.terms(lam)
        return ProbabilityGraph(problem.containers, terms["p"], terms["U"], parameters=(lam,))

    def parameter_samples(self, *, draws: int | None = None, robust: bool = False,
                          random_seed=0) -> ParameterSamples:
        """Multiplier values at which to evaluate :meth:`probability_graph`.

        Parameters
        ----------
        draws : int, optional
            None: the estimate, then ``λ̂ + h_c e_c``, then ``λ̂ − h_c e_c`` for each moment
            (dim ``delta``, weights on the estimate only), summarised by the delta method
            (:func:`~pymc_maxent.maxent.delta.delta_method`: ``estimate`` and ``se``); else that
            many draws of ``N(λ̂, Cov)`` (dims ``chain, draw``), kept as they are.
        robust : bool
            The sandwich covariance instead of the inverse Hessian.
        random_seed : int
            Seeds the draws.

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
        cov = self.covariance_matrix(robust)
        C = self.lam.size
        if draws is None:
            steps = delta_steps(self.lam, cov)
            return ParameterSamples(
                values=(delta_points(self.lam, steps),), dims=(DELTA,),
                coords={DELTA: np.arange(1 + 2 * C)}, weights=np.eye(1, 1 + 2 * C)[0],
                summarize=partial(delta_method, steps=steps, cov=cov, labels=list(self.labels)),
            )
        n = int(draws)
        return ParameterSamples(
            values=(self.multiplier_draws(n, robust=robust, random_seed=random_seed),),
            dims=("chain", "draw"), coords={"chain": np.arange(1), "draw": np.arange(n)},
            weights=np.full(n, 1.0 / n),
        )

    def convergence(self) -> dict:
        """Solver health as plain numbers: ``converged``, ``identified``, ``max_violation``,
        ``iterations`` and the scaled Hessian's ``condition_number``."""
        return {"converged": self.converged, "identified": self.identified,
                "max_violation": self.max_violation, "iterations": self.nit,
                "condition_number": self.condition_number}

    # ------------------------------------------------------------------ model selection
    def parameter_count(self) -> dict[str, int]:
        """Free parameters: one multiplier per moment, and no latent ones."""
        return {"parameters": int(self.lam.size), "latent": 0}

    def lppd(self) -> float:
        """The log-likelihood of the fitted choices at the estimate (``loglik``)."""
        return self.loglik

    def loo(self):
        """None: a MaxEnt fit has no draws to leave observations out of."""
        return None

    def prior_probabilities(self, draws: int = 500, random_seed=0) -> np.ndarray:
        """The prior ``p0`` (situation, alternative) of the fitted data: uniform over the
        available alternatives unless one was given (``draws`` and ``random_seed`` are there
        for a posterior's prior predictive mean; a MaxEnt prior is fixed).

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> pmx.fit_maxent(pmx.load_travel_mode()).prior_probabilities()[0].tolist()
        [0.25, 0.25, 0.25, 0.25]
        """
        if self.p0 is not None:
            return np.array(self.p0, dtype=float)
        return self.available / self.available.sum(axis=1, keepdims=True)

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
        posterior = self.normal_draws(chains, draws, robust=robust, random_seed=random_seed)
        chosen = np.asarray(self.coords[ALTERNATIVE])[self._y_index()]
        return xr.DataTree.from_dict({
            "posterior": posterior,
            "maxent": self.point_dataset(),
            "observed_data": xr.Dataset({"chosen": xr.DataArray(chosen, dims=(SITUATION,),
                                                                coords={SITUATION: self.coords[SITUATION]})}),
        })

    def point_dataset(self) -> xr.Dataset:
        """The ``maxent`` group of :meth:`to_datatree`: estimates, multipliers, covariances,
        ``p̂, ε̂, ŵ, π̂`` and the diagnostics in ``attrs`` (what :meth:`from_datatree` reads)."""
        point = {}
        for values, suffix in ((self.beta, ""), (self.se, "_se"), (self.se_robust, "_se_robust")):
            for name, da in self.parameter_dataset(values, {}).items():
                point[f"{name}{suffix}"] = da
        sit = {SITUATION: self.coords[SITUATION], ALTERNATIVE: self.coords[ALTERNATIVE]}
        point["lam"] = xr.DataArray(self.lam, dims=("moment",), coords={"moment": self.labels})
        point["cov"] = xr.DataArray(self.cov, dims=("moment", "moment_"),
                                    coords={"moment": self.labels, "moment_": self.labels})
        point["cov_robust"] = xr.DataArray(self.cov_robust, dims=("moment", "moment_"),
                                           coords={"moment": self.labels, "moment_": self.labels})
        point["p"] = xr.DataArray(self.p, dims=(SITUATION, ALTERNATIVE), coords=sit)
        point["eps"] = xr.DataArray(self.eps, dims=(SITUATION, ALTERNATIVE), coords=sit)
        if self.mu is not None:
            point["mu"] = xr.DataArray(self.mu, dims=(SITUATION,), coords={SITUATION: sit[SITUATION]})
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
            "solver": self.solver, "converged": int(self.converged), "message": self.message,
            "identified": int(self.identified), "condition_number": self.condition_number,
            "information_condition_number": self.information_condition_number, "iterations": self.nit,
            "dual_value": self.dual_value,
            "max_violation": self.max_violation, "normalized_entropy": self.normalized_entropy,
            "information_index": self.information_index, "entropy_ratio": self.entropy_ratio,
            "entropy_ratio_dof": self.entropy_ratio_dof, "entropy_ratio_pvalue": self.entropy_ratio_pvalue,
            "loglik": self.loglik, "pseudo_r2": self.pseudo_r2, "hit_rate": self.hit_rate, "kl": self.kl,
        } | {f"solve_{key}": value for key, value in self.solve_options.items()}
        return xr.Dataset(point, attrs=attrs)

    def refit(self, data: ChoiceData) -> MaxEntResult:
        """The same moments, supports and solver (with its ``tol``, ``maxiter``, ``on_unidentified``
        and ``dual_method``) fitted to other ``data`` (cross-validation's refits). A prior ``p0``
        or ``pi0`` given per situation does not carry over to other situations: a
        :class:`~pymc_maxent.exceptions.SpecificationError`.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data = pmx.load_travel_mode()
        >>> res = pmx.fit_maxent(data)
        >>> res.refit(data.subset(slice(0, 150))).data.n_situations
        150
        """
        from pymc_maxent.maxent.estimator import fit_maxent

        settings = self.settings()
        given = [name for name in ("p0", "pi0") if settings.get(name) is not None]
        if given:
            raise SpecificationError(f"{given} were given per situation: they do not carry over to new data")
        return fit_maxent(data, list(self.spec), **settings, **self.solve_options)

    # ------------------------------------------------------------------ save and load
    def settings(self) -> dict:
        """The estimator's settings (supports, priors, ``chunk_size``, ``centre_noise``) and the
        solver, as JSON-ready values: with the data and the moments, :meth:`from_datatree`
        rebuilds the fit."""
        return dict(self.problem.options) | {"solver": self.solver}

    @classmethod
    def from_datatree(cls, tree, data, moments, *, model=None, solver: str = "dual",
                      **options) -> MaxEntResult:
        """The fit saved by :meth:`to_datatree`, without refitting: the estimator is rebuilt (and
        compiled) from ``data``, ``moments`` and ``options`` (:meth:`settings`), the estimates,
        covariances and ``p̂, ε̂, ŵ, π̂`` are read from the tree's ``maxent`` group.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> from pymc_maxent.maxent import MaxEntResult
        >>> data = pmx.load_travel_mode()
        >>> res = pmx.fit_maxent(data)
        >>> again = MaxEntResult.from_datatree(res.to_datatree(), data, res.spec, **res.settings())
        >>> bool((again.estimates() == res.estimates()).all().all())
        True
        """
        from pymc_maxent.maxent.estimator import MaxEntEstimator

        point = tree["maxent"].to_dataset() if hasattr(tree["maxent"], "to_dataset") else tree["maxent"]
        attrs = point.attrs
        problem = MaxEntEstimator(data, list(moments), model=model, **options)
        chosen, available = problem.observed()
        mu = point["mu"].values if "mu" in point else None
        solution = DualSolution(lam=point["lam"].values, mu=mu, value=float(attrs["dual_value"]),
                                grad=np.full(point["lam"].size, np.nan), hess=None,
                                converged=bool(attrs["converged"]), message=str(attrs["message"]),
                                nit=int(attrs["iterations"]), nfev=0)
        primal = {"p": point["p"].values, "e": point["eps"].values}
        primal |= {k: point[k].values for k in ("w", "pi") if k in point}
        ident = Identification(bool(attrs["identified"]), float(attrs["condition_number"]),
                               float(attrs["information_condition_number"]))
        return cls(problem=problem, data=data, solution=solution, primal=primal, cov=point["cov"].values,
                   cov_robust=point["cov_robust"].values, identification=ident, data_coords=problem.coords(),
                   chosen=chosen, available=available, p0=problem.prior_p0(available), w0=problem.supports.w0,
                   solver=solver, converged=solution.converged, message=solution.message, nit=solution.nit,
                   max_violation=float(attrs["max_violation"]),
                   solve_options={key[len("solve_"):]: value for key, value in attrs.items()
                                  if key.startswith("solve_")})

    def _y_index(self):
        return self._chosen
