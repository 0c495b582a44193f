"""One evaluator of choice probabilities ``p`` and their derivatives ``∂p/∂x``, shared by the
posterior of a Bayesian model and a MaxEnt fit.

The graph of ``p`` is the model's deterministic ``p`` (or the MaxEnt dual's ``p(λ)``). Its free
parameters and the data containers are replaced by inputs, the Jacobian ``∂p_ij/∂x_imk`` comes
from ``pytensor.grad`` of ``Σ_i p_ij`` with respect to ``X`` (one backward pass per alternative
``j``: situations are independent, so the gradient of the sum holds every situation's row),
and the whole is vectorised over parameter draws (``vectorize_graph``) and compiled once.
Evaluations then take any attribute array ``X`` of the loaded situations, in chunks of draws.

Samples are the posterior draws ``(chain, draw)``; for a MaxEnt fit, either the estimate and
central steps ``λ̂ ± h_c e_c`` of each multiplier (dim ``delta``), from which
:meth:`ChoiceEvaluator.finish` gives delta-method standard errors, or draws of the
asymptotic-normal pseudo-posterior ``N(λ̂, Cov)`` (``draws=``).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pytensor.graph.replace import clone_replace, vectorize_graph
from pytensor.graph.traversal import ancestors

from pymc_maxent.bayes.build import UTILITY
from pymc_maxent.bayes.predict import REDRAWN
from pymc_maxent.data.choice_data import ALTERNATIVE, ATTRIBUTE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.data.containers import NEW_INDIVIDUAL, NEW_INDIVIDUAL_PLACEHOLDER, set_choice_data
from pymc_maxent.exceptions import ChoiceDataError, MaxEntError
from pymc_maxent.maxent.result import MaxEntResult

#: The alternative whose attribute changes, in ``∂p_ij/∂x_im`` (``alternative`` is ``j``).
ALTERNATIVE_ = "alternative_"
#: MaxEnt samples: the estimate, then ``+h_c`` and ``−h_c`` steps of each multiplier.
DELTA = "delta"
POSTERIOR_DIMS = ("chain", "draw")
CONTAINERS = ("X", "available", "chosen_index", "individual_index")


@contextmanager
def restored_containers(model: pm.Model):
    """Put the model's data containers (and the situation / new-individual coords) back as
    they were on leaving the block."""
    held = {name: model[name].get_value() for name in CONTAINERS}
    situations = list(model.coords[SITUATION])
    new = list(model.coords[NEW_INDIVIDUAL]) if NEW_INDIVIDUAL in model.coords else None
    try:
        yield
    finally:
        if new is not None:
            model.set_dim(NEW_INDIVIDUAL, len(new), coord_values=new)
        pm.set_data(held, model=model, coords={SITUATION: situations})


class ChoiceEvaluator:
    """Compiled ``p`` and ``∂p/∂x`` of a fit, for the situations it has loaded.

    Parameters
    ----------
    fit : (pm.Model, DataTree) or MaxEntResult
        A model from :func:`~pymc_maxent.build_model` (with ``store_probabilities=True``) and its
        posterior, or a MaxEnt fit (direct form, the default).
    data : ChoiceData, optional
        Situations to evaluate; default the data in the model's containers. They are swapped
        in with :func:`~pymc_maxent.set_choice_data` to match individuals, and the containers
        are put back afterwards.
    draws : int, optional
        MaxEnt only: use ``draws`` draws of ``N(λ̂, Cov)`` (dims ``chain, draw``) instead of the
        delta method.
    robust : bool
        MaxEnt only: the sandwich covariance instead of the inverse dual Hessian.
    random_seed : int
        Seeds the population draws of individuals the model has not seen and of situation-level
        deviations of situations it was not fitted on (``z_new``, ``z_situation``: one draw
        per posterior draw, fixed at :meth:`load`, so that repeated evaluations, e.g. of an
        optimiser, see the same draws), and the MaxEnt pseudo-posterior.
    max_bytes : int
        Bound on the Jacobian held per chunk of draws.

    Notes
    -----
    Known individuals keep their posterior ``z``; situations the model was fitted on (matched
    by label) keep their posterior ``z_situation`` (a counterfactual of a fitted situation is of
    that situation), where :func:`~pymc_maxent.predict_choice_probabilities` redraws them. New
    individuals and new situations integrate over the population distribution by averaging
    over draws, as prediction does.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics.probabilities import ChoiceEvaluator
    >>> data = pmx.load_travel_mode()
    >>> ev = ChoiceEvaluator(pmx.fit_maxent(data))
    >>> p, dpdx = ev.effects()
    >>> dict(dpdx.sizes)
    {'delta': 13, 'situation': 210, 'alternative': 4, 'alternative_': 4, 'attribute': 3}
    """

    def __init__(self, fit, data: ChoiceData | None = None, *, draws: int | None = None,
                 robust: bool = False, random_seed=0, max_bytes: int = 1 << 27):
        self.max_bytes = int(max_bytes)
        self.random_seed = random_seed
        self._functions = {}
        if isinstance(fit, MaxEntResult):
            self._init_maxent(fit, draws, robust)
        else:
            try:
                model, idata = fit
            except (TypeError, ValueError):
                raise ChoiceDataError(
                    "fit must be a MaxEntResult or a (model, idata) pair; got "
                    f"{type(fit).__name__}") from None
            self._init_posterior(model, idata)
        self.alternatives = list(self.model.coords[ALTERNATIVE])
        self.attributes = list(self.model.coords[ATTRIBUTE])
        self.load(data)

    # ------------------------------------------------------------------ set-up
    def _inputs(self, containers):
        """Fresh inputs standing for the containers ``X, available, chosen, individual``."""
        self._data_inputs = [c.type() for c in containers]
        return dict(zip(containers, self._data_inputs, strict=True))

    def _init_posterior(self, model: pm.Model, idata):
        if "p" not in model.named_vars:
            raise ChoiceDataError("the model was built with store_probabilities=False; rebuild it with True")
        self.kind = "posterior"
        self.model = model
        p = model["p"]
        in_graph = set(ancestors([p]))
        self._rvs = [rv for rv in model.free_RVs if rv in in_graph]
        posterior = idata["posterior"]
        self._posterior = posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior
        missing = [rv.name for rv in self._rvs if rv.name not in self._posterior]
        if missing:
            raise ChoiceDataError(f"the posterior has no draws of {missing}")
        params = [rv.type() for rv in self._rvs]
        replace = dict(zip(self._rvs, params, strict=True))
        replace |= self._inputs([model[name] for name in CONTAINERS])
        self._params = params
        self._p, self._U = clone_replace([p, utility_graph(model)], replace)
        sizes = self._posterior.sizes
        self.sample_dims = POSTERIOR_DIMS
        self.sample_coords = {d: self._posterior[d].values for d in POSTERIOR_DIMS}
        self.n_samples = sizes["chain"] * sizes["draw"]
        self.weights = np.full(self.n_samples, 1.0 / self.n_samples)

    def _init_maxent(self, result: MaxEntResult, draws, robust):
        est = result._estimator
        est._require_dual()
        if not est.dual.direct:
            raise MaxEntError("effects of a MaxEnt fit need the direct form of p (probability_support="
                              "None): in the support-point form p is an implicit function of x")
        self.kind = "maxent"
        self.model = est.model
        self.result = result
        self._dual = est.dual
        lam = pt.vector("lam", dtype="float64")
        terms = est.dual.terms(lam)
        c = est.containers
        self._p, self._U = clone_replace([terms["p"], terms["U"]],
                                         self._inputs([c.X, c.available, c.chosen, c.individual]))
        self._params = [lam]
        cov = result.cov_robust if robust else result.cov
        if not np.all(np.isfinite(cov)):
            raise MaxEntError("the fit has no finite covariance of the multipliers (primal solver with a "
                              "nonlinear constraint?): no standard errors")
        self.cov = cov
        self.labels = list(result.labels)
        C = result.lam.size
        if draws is None:
            se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
            # steps on the scale of each multiplier's uncertainty: central differences are then
            # exact to ~1e-8 relative whatever the units of the moments
            self.steps = np.where(se > 0, 1e-4 * se, 1e-6 * np.maximum(1.0, np.abs(result.lam)))
            E = np.diag(self.steps)
            lam_s = np.vstack([result.lam, result.lam + E, result.lam - E])
            self.sample_dims = (DELTA,)
            self.sample_coords = {DELTA: np.arange(1 + 2 * C)}
            self.weights = np.eye(1, 1 + 2 * C)[0]  # the estimate only
        else:
            rng = np.random.default_rng(self.random_seed)
            lam_s = rng.multivariate_normal(result.lam, cov, size=int(draws), method="eigh")
            self.sample_dims = POSTERIOR_DIMS
            self.sample_coords = {"chain": np.arange(1), "draw": np.arange(int(draws))}
            self.weights = np.full(int(draws), 1.0 / int(draws))
        self._lam_samples = lam_s
        self.n_samples = lam_s.shape[0]

    def _attribute_position(self, attribute: str) -> int:
        if attribute not in self.attributes:
            raise ChoiceDataError(f"unknown attribute {attribute!r}; the data have {self.attributes}")
        return self.attributes.index(attribute)

    def _function(self, derivatives):
        """Compiled ``X, available, chosen, individual, *params -> p[, ∂p/∂X]``, batched over
        draws; ``derivatives``: False, True (every attribute) or one attribute's position."""
        key = (derivatives if isinstance(derivatives, bool | str)
               else ("attribute", int(derivatives)))
        if key not in self._functions:
            X = self._data_inputs[0]
            outputs = [self._p]
            if derivatives == "coefficients":  # U is linear in x: ∂U_ij/∂x_ijk is the coefficient
                outputs = [pytensor.grad(self._U.sum(), X)]
            elif derivatives is not False:
                J = len(self.alternatives)
                grads = [pytensor.grad(self._p[:, j].sum(), X) for j in range(J)]
                if derivatives is not True:
                    grads = [g[:, :, key[1]] for g in grads]
                outputs.append(pt.stack(grads, axis=1))
            batched = [pt.tensor(dtype=v.dtype, shape=(None, *v.type.shape), name=f"{v.name}_draws")
                       for v in self._params]
            outputs = vectorize_graph(outputs, replace=dict(zip(self._params, batched, strict=True)))
            self._functions[key] = pytensor.function(
                [*self._data_inputs, *batched], outputs, on_unused_input="ignore")
        return self._functions[key]

    # ------------------------------------------------------------------ data
    def load(self, data: ChoiceData | None = None) -> ChoiceEvaluator:
        """Load situations to evaluate (default: those in the containers); returns ``self``."""
        model = self.model
        with restored_containers(model):
            if data is not None:
                set_choice_data(data, model)
            held = [np.asarray(model[name].get_value()) for name in CONTAINERS]
            self.situations = list(model.coords[SITUATION])
            new = list(model.coords[NEW_INDIVIDUAL]) if NEW_INDIVIDUAL in model.coords else []
            if data is not None:
                self.situation_individuals = data.individuals[data.individual].tolist()
            else:  # the containers' index into the known individuals, then the new ones
                labels = list(model.coords[INDIVIDUAL]) + [n for n in new if n != NEW_INDIVIDUAL_PLACEHOLDER]
                self.situation_individuals = [labels[i] for i in held[3]]
        self.X = np.array(held[0], dtype=float)
        self.X.setflags(write=False)
        self.available = held[1].astype(bool)
        self._held = [h.astype(v.dtype) for h, v in zip(held, self._data_inputs, strict=True)]
        if self.kind == "maxent":
            log_p0 = self._dual.log_p0
            if log_p0 is not None and log_p0.get_value().shape[0] != self.X.shape[0]:
                raise MaxEntError(f"the prior p0 was given for {log_p0.get_value().shape[0]} situations; "
                                  f"these data have {self.X.shape[0]}")
            self._values = [self._lam_samples]
        else:
            self._values = self._posterior_values(new)
        return self

    def with_data(self, data: ChoiceData) -> ChoiceEvaluator:
        """A copy loaded with ``data`` that shares the compiled functions."""
        return copy.copy(self).load(data)

    def _posterior_values(self, new: list) -> list[np.ndarray]:
        rng = np.random.default_rng(self.random_seed)
        S = self.n_samples
        values = []
        for rv in self._rvs:
            da = self._posterior[rv.name]
            draws = da.values.reshape(S, *da.shape[2:])
            if rv.name == REDRAWN[0] and new != [NEW_INDIVIDUAL_PLACEHOLDER]:
                draws = rng.normal(size=(S, len(new), draws.shape[-1]))
            elif rv.name == REDRAWN[1]:
                fitted = {label: n for n, label in enumerate(da[SITUATION].values.tolist())}
                fresh = rng.normal(size=(S, len(self.situations), draws.shape[-1]))
                pos = np.array([fitted.get(s, -1) for s in self.situations], dtype=int)
                known = pos >= 0
                fresh[:, known] = draws[:, pos[known]]
                draws = fresh
            values.append(draws)
        return values

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, X=None, *, derivatives: bool | str = False, samples=None, reduce=None):
        """NumPy core: ``p`` (sample, situation, alternative) and, with ``derivatives=True``,
        ``∂p_ij/∂x_imk`` (sample, situation, alternative j, alternative m, attribute k), the
        samples flattened (``samples``: a selection of them); with ``derivatives`` an
        attribute's name, that attribute's ``∂p_ij/∂x_im`` alone (no last axis). Entries of
        unavailable alternatives are exactly 0.

        ``reduce(p, dp, weights)``, when given, is applied to each chunk of draws (with the
        chunk's sample weights) and the sum of its results returned instead, so that no
        array over all draws is held (the revenue optimiser's path)."""
        index = np.arange(self.n_samples)[slice(None) if samples is None else samples]
        X = self.X if X is None else np.asarray(X, dtype=float)
        if X.shape != self.X.shape:
            raise ChoiceDataError(f"X has shape {X.shape}; the loaded data have {self.X.shape}")
        one = not isinstance(derivatives, bool)
        fn = self._function(self._attribute_position(derivatives) if one else derivatives)
        N, J, K = X.shape
        per_draw = 8 * N * J * (1 + (J * (1 if one else K) if derivatives is not False else 0))
        step = max(1, self.max_bytes // per_draw)
        mask = (self.available[:, :, None] & self.available[:, None, :])[None]
        mask = mask if one else mask[..., None]
        total, parts = None, []
        for s in range(0, index.size, step):
            chunk = index[s:s + step]
            out = fn(X, *self._held[1:], *[v[chunk] for v in self._values])
            out = (out[0], None) if derivatives is False else (out[0], out[1] * mask)
            if reduce is None:
                parts.append(out)
            else:
                r = reduce(*out, self.weights[chunk])
                total = r if total is None else _add(total, r)
        if reduce is not None:
            return total
        p = np.concatenate([o[0] for o in parts])
        return p if derivatives is False else (p, np.concatenate([o[1] for o in parts]))

    def coefficients(self, X=None) -> xr.DataArray:
        """The utility's coefficients ``∂U_ij/∂x_ijk`` per sample and situation (``U`` is linear
        in ``x``): a random coefficient at each individual's (and situation's) value.

        Returns
        -------
        DataArray (sample dims, situation, alternative, attribute)
        """
        X = self.X if X is None else np.asarray(X, dtype=float)
        fn = self._function("coefficients")
        step = max(1, self.max_bytes // (8 * X.size))
        parts = [fn(X, *self._held[1:], *[v[s:s + step] for v in self._values])[0]
                 for s in range(0, self.n_samples, step)]
        c = self._data_coords()
        return self.to_dataarray(np.concatenate(parts), (SITUATION, ALTERNATIVE, ATTRIBUTE),
                                 {k: c[k] for k in (SITUATION, ALTERNATIVE, ATTRIBUTE)}, name="coefficient")

    def to_dataarray(self, values, dims, coords=None, name=None) -> xr.DataArray:
        """Samples (flattened first axis) as a DataArray with the sample dims first."""
        values = np.asarray(values)
        shape = tuple(len(v) for v in self.sample_coords.values())
        return xr.DataArray(values.reshape(shape + values.shape[1:]), dims=(*self.sample_dims, *dims),
                            coords=self.sample_coords | (coords or {}), name=name)

    def _data_coords(self):
        return {SITUATION: self.situations, ALTERNATIVE: self.alternatives,
                ALTERNATIVE_: self.alternatives, ATTRIBUTE: self.attributes}

    def probabilities(self, X=None) -> xr.DataArray:
        """``p`` as (sample dims, situation, alternative)."""
        c = self._data_coords()
        return self.to_dataarray(self.evaluate(X), (SITUATION, ALTERNATIVE),
                                 {k: c[k] for k in (SITUATION, ALTERNATIVE)}, name="p")

    def effects(self, X=None, attribute: str | None = None) -> tuple[xr.DataArray, xr.DataArray]:
        """``p`` and ``∂p_ij/∂x_imk`` as (sample dims, situation, alternative, ``alternative_``,
        attribute); with ``attribute``, that attribute's alone (no ``attribute`` dim)."""
        p, dp = self.evaluate(X, derivatives=True if attribute is None else attribute)
        c = self._data_coords()
        dims = (SITUATION, ALTERNATIVE)
        d_dims = (*dims, ALTERNATIVE_) + ((ATTRIBUTE,) if attribute is None else ())
        return (self.to_dataarray(p, dims, {k: c[k] for k in dims}, name="p"),
                self.to_dataarray(dp, d_dims, {k: c[k] for k in d_dims}, name="dp_dx"))

    def attribute_values(self, attribute: str) -> xr.DataArray:
        """The loaded values of one attribute (situation, alternative)."""
        c = self._data_coords()
        return xr.DataArray(self.X[:, :, self._attribute_position(attribute)], dims=(SITUATION, ALTERNATIVE),
                            coords={k: c[k] for k in (SITUATION, ALTERNATIVE)}, name=attribute)

    def available_array(self) -> xr.DataArray:
        c = self._data_coords()
        return xr.DataArray(self.available, dims=(SITUATION, ALTERNATIVE),
                            coords={k: c[k] for k in (SITUATION, ALTERNATIVE)}, name="available")

    # ------------------------------------------------------------------ summaries
    def finish(self, da: xr.DataArray):
        """A statistic computed per sample, as the user sees it: the posterior (or MaxEnt
        pseudo-posterior) draws as they are; for the MaxEnt delta samples a Dataset of the
        ``estimate`` and its delta-method ``se``."""
        if DELTA not in self.sample_dims:
            return da
        return delta_method(da, self.steps, self.cov, self.labels)


def _add(a, b):
    """Sum of two reductions (arrays, or tuples of them)."""
    return tuple(x + y for x, y in zip(a, b, strict=True)) if isinstance(a, tuple) else a + b


def delta_method(da: xr.DataArray, steps, cov, labels) -> xr.Dataset:
    """``estimate`` and ``se = √(∇g' Cov ∇g)`` of a statistic ``g`` evaluated at ``λ̂`` and at
    ``λ̂ ± h_c e_c`` (dim ``delta``), the gradient by central differences."""
    C = len(steps)
    moment = {"moment": labels}
    plus = da.isel({DELTA: slice(1, C + 1)}).rename({DELTA: "moment"}).assign_coords(moment)
    minus = da.isel({DELTA: slice(C + 1, 2 * C + 1)}).rename({DELTA: "moment"}).assign_coords(moment)
    grad = (plus - minus) / xr.DataArray(2.0 * np.asarray(steps), dims="moment", coords=moment)
    cov = xr.DataArray(cov, dims=("moment", "moment_"), coords=moment | {"moment_": labels})
    var = xr.dot(grad, cov, grad.rename(moment="moment_"), dim=["moment", "moment_"])
    estimate = da.isel({DELTA: 0}, drop=True)
    return xr.Dataset({"estimate": estimate, "se": np.sqrt(var.clip(min=0.0))}, attrs=dict(da.attrs))


def utility_graph(model: pm.Model):
    """The utility tensor ``U`` (situation × alternative) behind a built model's ``p``."""
    found = [v for v in ancestors([model["p"]]) if getattr(v, "name", None) == UTILITY]
    if not found:
        raise ChoiceDataError("the model has no utility tensor named "
                              f"{UTILITY!r}: build it with pymc_maxent.build_model")
    return found[0]


def choice_evaluator(fit, data: ChoiceData | None = None, **kwargs) -> ChoiceEvaluator:
    """The evaluator of ``fit`` (passed through when it is one already, loaded with ``data``
    when given); keyword arguments go to :class:`ChoiceEvaluator`."""
    if isinstance(fit, ChoiceEvaluator):
        return fit if data is None else fit.with_data(data)
    return ChoiceEvaluator(fit, data, **kwargs)
