"""One evaluator of choice probabilities ``p`` and their derivatives ``∂p/∂x``, shared by the
posterior of a Bayesian model and a MaxEnt fit, and what it needs of a fit: the graph of ``p``
over the data containers and the fit's parameters (:class:`ProbabilityGraph`), and the
parameter values to evaluate it at (:class:`ParameterSamples`).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pytensor.graph.replace import clone_replace, vectorize_graph

from pymc_maxent.arguments import optional_count, require_count
from pymc_maxent.compilation import interpreted_function, is_small
from pymc_maxent.data.choice_data import (
    ALTERNATIVE,
    ATTRIBUTE,
    INDIVIDUAL,
    SITUATION,
    ChoiceData,
    label_position,
)
from pymc_maxent.data.containers import (
    NEW_INDIVIDUAL,
    ChoiceContainers,
    restored_containers,
    set_choice_data,
)
from pymc_maxent.exceptions import ChoiceDataError


@dataclass(frozen=True)
class ProbabilityGraph:
    """The symbolic choice probabilities of a fit.

    Attributes
    ----------
    containers : ChoiceContainers
        The model's data containers that ``p`` and ``utility`` read.
    p, utility : TensorVariable
        ``p`` and ``U`` (situation × alternative) as graphs of the containers and ``parameters``.
    parameters : tuple of TensorVariable
        The inputs that :class:`ParameterSamples` gives values to.
    new_individual : TensorVariable, optional
        A parameter holding standard-normal deviations of individuals the fit has not seen
        (``new_individual × random_coefficient``): redrawn for each sample.
    situation : TensorVariable, optional
        A parameter holding situation-level deviations (``situation × situation_coefficient``):
        kept for the fitted situations (matched by label); the others get what
        ``new_situations`` says.
    new_situations : {"draw", "zero"}
        Situations the fit was not fitted on: fresh standard-normal deviations for each sample
        (a posterior's ``z_situation``), or none (MaxEnt's situation stage has no population
        distribution of its deviations to draw from).
    """

    containers: ChoiceContainers
    p: Any
    utility: Any
    parameters: tuple
    new_individual: Any = None
    situation: Any = None
    new_situations: str = "draw"


@dataclass(frozen=True)
class ParameterSamples:
    """Values of a fit's parameters at which ``p`` is evaluated.

    Attributes
    ----------
    values : tuple of ndarray
        One array per :attr:`ProbabilityGraph.parameters`, samples on the first axis.
    dims : tuple of str
        The sample dims (``("chain", "draw")``, or ``("delta",)`` for the delta method).
    coords : dict
        Their coordinates (their sizes multiply to the number of samples).
    weights : ndarray
        Weight of each sample in an average over samples.
    situations : list, optional
        Labels of the situations of the ``situation`` parameter's values.
    summarize : callable, optional
        Turns a statistic computed per sample into what the user sees (the delta method's
        ``estimate`` and ``se``); ``None`` keeps the samples.
    """

    values: tuple
    dims: tuple
    coords: dict
    weights: np.ndarray
    situations: list | None = None
    summarize: Callable[[xr.DataArray], xr.DataArray | xr.Dataset] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(np.prod([len(c) for c in self.coords.values()]))


#: The alternative whose attribute changes, in ``∂p_ij/∂x_im`` (``alternative`` is ``j``).
CHANGED_ALTERNATIVE = "changed_alternative"
CONTAINERS = ("X", "available", "chosen_index", "individual_index")


class CompiledProbabilities:
    """A fit's ``p`` compiled once, for every evaluator of the fit.

    The graph's parameters and containers are replaced by free inputs, so one compiled
    function serves any draws (posterior, delta method, a refit's) and any loaded data; the
    compiled functions are kept per kind of output (``p``; ``∂p/∂X`` of every attribute or of
    one; the coefficients). ``interpreted``: linked by the Python linker, not compiled (a fit's
    are when its data are small, :func:`~pymc_maxent.compilation.is_small`).
    """

    def __init__(self, graph: ProbabilityGraph, interpreted: bool = False):
        self.parameters = [v.type() for v in graph.parameters]
        replace = dict(zip(graph.parameters, self.parameters, strict=True))
        c = graph.containers
        self.data_inputs = [v.type() for v in (c.X, c.available, c.chosen, c.individual)]
        replace |= dict(zip((c.X, c.available, c.chosen, c.individual), self.data_inputs, strict=True))
        self.p, self.utility = clone_replace([graph.p, graph.utility], replace)
        self.roles = {"new_individual": _position(graph.parameters, graph.new_individual),
                      "situation": _position(graph.parameters, graph.situation)}
        self.new_situations = graph.new_situations
        self.interpreted = bool(interpreted)
        self.functions = {}

    def function(self, derivatives, n_alternatives: int):
        """Compiled ``X, available, chosen, individual, *params -> p[, ∂p/∂X]``, batched over
        draws; ``derivatives``: False, True (every attribute), ``"coefficients"`` or one
        attribute's position."""
        key = (derivatives if isinstance(derivatives, bool | str)
               else ("attribute", int(derivatives)))
        if key not in self.functions:
            X = self.data_inputs[0]
            outputs = [self.p]
            if derivatives == "coefficients":  # U is linear in x: ∂U_ij/∂x_ijk is the coefficient
                outputs = [pytensor.grad(self.utility.sum(), X)]
            elif derivatives is not False:
                grads = [pytensor.grad(self.p[:, j].sum(), X) for j in range(n_alternatives)]
                if derivatives is not True:
                    grads = [g[:, :, key[1]] for g in grads]
                outputs.append(pt.stack(grads, axis=1))
            batched = [pt.tensor(dtype=v.dtype, shape=(None, *v.type.shape), name=f"{v.name}_draws")
                       for v in self.parameters]
            outputs = vectorize_graph(outputs, replace=dict(zip(self.parameters, batched, strict=True)))
            build = interpreted_function if self.interpreted else pytensor.function
            self.functions[key] = build([*self.data_inputs, *batched], outputs, on_unused_input="ignore")
        return self.functions[key]


def compile_probabilities(fit) -> CompiledProbabilities:
    """A new :class:`CompiledProbabilities` of ``fit``, interpreted when the fitted data are
    small (:func:`~pymc_maxent.compilation.is_small`: decided by the fit, not by what its
    containers hold at the time)."""
    small = is_small(fit.data.n_situations, fit.data.n_alternatives)
    return CompiledProbabilities(fit.probability_graph(), interpreted=small)


class ChoiceEvaluator:
    """Compiled ``p`` and ``∂p/∂x`` of a fit, for the situations it has loaded.

    Parameters
    ----------
    fit : Fit
        A :class:`~pymc_maxent.PosteriorFit` or a :class:`~pymc_maxent.MaxEntResult` (direct
        form, the default): anything with ``probability_graph()`` and ``parameter_samples()``.
    data : ChoiceData, optional
        Situations to evaluate; default the fitted data. They are swapped into the model's
        containers only to match individuals, and the containers are put back at once.
    draws : int, optional
        Passed to ``fit.parameter_samples``: for a MaxEnt fit, ``draws`` draws of ``N(λ̂, Cov)``
        (dims ``chain, draw``) instead of the delta method.
    robust : bool
        MaxEnt: the sandwich covariance instead of the inverse dual Hessian.
    random_seed : int
        Seeds the population draws of individuals the fit has not seen and of situation-level
        deviations of situations it was not fitted on (one draw per sample, fixed at
        :meth:`load`, so that repeated evaluations, e.g. of an optimiser, see the same draws),
        and the MaxEnt pseudo-posterior.
    max_bytes : int
        Bound on the Jacobian held per chunk of samples.

    Notes
    -----
    Known individuals keep their posterior deviations; situations the model was fitted on
    (matched by label) keep their situation-level deviations (a counterfactual of a fitted
    situation is of that situation). New individuals and new situations integrate over the
    population distribution by averaging over samples (MaxEnt's situation stage: new situations
    get no situation deviation). A situation with a fitted situation's label but another
    individual (new data labelled ``0, 1, …`` by default) is a
    :class:`~pymc_maxent.exceptions.ChoiceDataError`, not a silent reuse of that deviation.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> data = pmx.load_travel_mode()
    >>> p, dpdx = pmx.fit_maxent(data).evaluator().effects()
    >>> dict(dpdx.sizes)
    {'delta': 13, 'situation': 210, 'alternative': 4, 'changed_alternative': 4, 'attribute': 3}
    """

    def __init__(self, fit, data: ChoiceData | None = None, *, draws: int | None = None,
                 robust: bool = False, random_seed=0, max_bytes: int = 1 << 27,
                 compiled: CompiledProbabilities | None = None):
        self.max_bytes = require_count(max_bytes, "max_bytes")
        optional_count(draws, "draws")
        self.random_seed = random_seed
        self.fit = fit
        self.model = fit.model
        self.compiled = compile_probabilities(fit) if compiled is None else compiled
        self._set_samples(fit.parameter_samples(draws=draws, robust=robust, random_seed=random_seed))
        self.alternatives = list(self.model.coords[ALTERNATIVE])
        self.attributes = list(self.model.coords[ATTRIBUTE])
        self.load(data)

    def _set_samples(self, samples) -> None:
        self.samples = samples
        self.sample_dims = tuple(samples.dims)
        self.sample_coords = dict(samples.coords)
        self.n_samples = samples.n
        self.weights = np.asarray(samples.weights, dtype=float)

    def _attribute_position(self, attribute: str) -> int:
        return label_position(self.attributes, attribute, "attribute")

    def _function(self, derivatives):
        return self.compiled.function(derivatives, len(self.alternatives))

    # ------------------------------------------------------------------ data
    def load(self, data: ChoiceData | None = None) -> ChoiceEvaluator:
        """Load situations to evaluate (default: the fitted data); returns ``self``."""
        data = self.fit.data if data is None else data
        model = self.model
        with restored_containers(model):
            set_choice_data(data, model)
            held = [np.asarray(model[name].get_value()) for name in CONTAINERS]
            new = list(model.coords[NEW_INDIVIDUAL]) if NEW_INDIVIDUAL in model.coords else []
        self.situations = data.situations.tolist()
        self.situation_individuals = data.individuals[data.individual].tolist()
        self.X = np.array(held[0], dtype=float)
        self.X.setflags(write=False)
        self.available = held[1].astype(bool)
        self._held = [h.astype(v.dtype) for h, v in zip(held, self.compiled.data_inputs, strict=True)]
        self._values = self._sample_values(new)
        return self

    def with_data(self, data: ChoiceData, *, random_seed=None) -> ChoiceEvaluator:
        """A copy loaded with ``data`` that shares the compiled functions; ``random_seed``, when
        given, seeds its population draws of new individuals and situations instead."""
        evaluator = copy.copy(self)
        if random_seed is not None:
            evaluator.random_seed = random_seed
        return evaluator.load(data)

    def with_samples(self, samples, data: ChoiceData | None = None) -> ChoiceEvaluator:
        """A copy at other values of the same parameters (a refit's posterior draws:
        :class:`~pymc_maxent.fit.ParameterSamples` of a fit of the same model), loaded with
        ``data`` (default the fitted data), sharing the compiled functions."""
        evaluator = copy.copy(self)
        evaluator._set_samples(samples)
        return evaluator.load(data)

    def _sample_values(self, new: list) -> list[np.ndarray]:
        """The fit's parameter values, with fresh standard-normal deviations for the individuals
        it has not seen and for the situations it was not fitted on (or none for those, where
        the graph's ``new_situations`` is ``"zero"``)."""
        rng = np.random.default_rng(self.random_seed)
        S = self.n_samples
        values = list(self.samples.values)
        k = self.compiled.roles["new_individual"]
        if k is not None:
            values[k] = rng.normal(size=(S, len(new), values[k].shape[-1]))
        k = self.compiled.roles["situation"]
        if k is not None:
            fitted = {label: n for n, label in enumerate(self.samples.situations)}
            shape = (S, len(self.situations), values[k].shape[-1])
            fresh = rng.normal(size=shape) if self.compiled.new_situations == "draw" else np.zeros(shape)
            pos = np.array([fitted.get(s, -1) for s in self.situations], dtype=int)
            known = pos >= 0
            self._check_situation_owners(known)
            fresh[:, known] = values[k][:, pos[known]]
            values[k] = fresh
        return values

    def _check_situation_owners(self, known: np.ndarray) -> None:
        """A loaded situation that keeps a fitted situation's deviation (same label) must belong
        to the same individual: otherwise the labels collide (new data labelled ``0, 1, …`` by
        default, say) and a fitted deviation would land on another individual's choice."""
        fitted = self.fit.data
        owners = fitted.individuals[fitted.individual].tolist()
        owner = dict(zip(fitted.situations.tolist(), owners, strict=True))
        clash = [(s, i) for s, i, k in zip(self.situations, self.situation_individuals, known, strict=True)
                 if k and owner.get(s, i) != i]
        if clash:
            (s, i), n = clash[0], len(clash)
            raise ChoiceDataError(
                f"situation {s!r} of individual {i!r} has the label of a fitted situation of individual "
                f"{owner[s]!r} ({n} such situation{'s' if n > 1 else ''}): its fitted situation-level "
                "deviation would be applied to another individual's choice; give new situations labels "
                "of their own (ChoiceData `situations=`), or keep the fitted situations' individuals")

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
                CHANGED_ALTERNATIVE: self.alternatives, ATTRIBUTE: self.attributes}

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
        d_dims = (*dims, CHANGED_ALTERNATIVE) + ((ATTRIBUTE,) if attribute is None else ())
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
    def finish(self, da: xr.DataArray) -> xr.Dataset:
        """A statistic computed per sample, as the user sees it, the same type for every fit: a
        Dataset of its ``estimate`` and ``sd`` (posterior mean and SD; MaxEnt estimate and
        delta-method SE), with the per-sample values as ``draws`` when there are draws."""
        summarize = self.samples.summarize
        if summarize is not None:
            out = summarize(da)
            return out.rename({"se": "sd"}) if "se" in out else out
        dims = list(self.sample_dims)
        out = xr.Dataset({"estimate": da.mean(dims), "sd": da.std(dims), "draws": da}, attrs=dict(da.attrs))
        return out


def _position(parameters, variable) -> int | None:
    """Position of ``variable`` among ``parameters`` (None when absent)."""
    if variable is None:
        return None
    for k, v in enumerate(parameters):
        if v is variable:
            return k
    return None


def _add(a, b):
    """Sum of two reductions (arrays, or tuples of them)."""
    return tuple(x + y for x, y in zip(a, b, strict=True)) if isinstance(a, tuple) else a + b


class CachedEvaluator:
    """Mixin of the fits: :meth:`evaluator` builds the evaluator once per setting and keeps it;
    all of them share one compiled ``p``."""

    def evaluator(self, data: ChoiceData | None = None, **kwargs):
        """The fit's :class:`ChoiceEvaluator` (compiled once per
        ``kwargs`` and cached), loaded with ``data`` (default: the fitted data).

        Parameters
        ----------
        data : ChoiceData, optional
        **kwargs
            ``draws``, ``robust``, ``random_seed``, ``max_bytes`` of the evaluator.
        """
        cache = self.__dict__.setdefault("_evaluators", {})
        key = tuple(sorted(kwargs.items()))
        if key not in cache:
            cache[key] = ChoiceEvaluator(self, **kwargs, compiled=self.compiled_probabilities())
        return cache[key] if data is None else cache[key].with_data(data)

    def compiled_probabilities(self) -> CompiledProbabilities:
        """The fit's one :class:`CompiledProbabilities`, shared by all its evaluators (any
        ``draws``, ``robust``, seed or data): elasticities, counterfactuals, pricing, WTP and
        model selection compile ``p`` once per fit."""
        if "_compiled" not in self.__dict__:
            self.__dict__["_compiled"] = compile_probabilities(self)
        return self.__dict__["_compiled"]


# ---------------------------------------------------------------------- log-likelihood per unit
def units_of(data: ChoiceData, level: str) -> np.ndarray:
    """Each situation's unit (position among ``data.individuals``, or its own position)."""
    return np.asarray(data.individual) if level == INDIVIDUAL else np.arange(data.n_situations)


def unit_log_likelihood_array(p: np.ndarray, data: ChoiceData, units: np.ndarray, n_units: int) -> np.ndarray:
    """``Σ_{t ∈ unit} log p_s(y_t)`` (sample, unit) from ``p`` (sample, situation, alternative)."""
    with np.errstate(divide="ignore"):
        log_p = np.log(p[:, np.arange(data.n_situations), data.chosen])
    out = np.zeros((p.shape[0], n_units))
    np.add.at(out, (slice(None), units), log_p)
    return out


def as_unit_log_likelihood(values: np.ndarray, dims, coords, level: str, labels) -> xr.DataArray:
    """(sample, unit) values as (``dims``..., unit) with the unit labels."""
    shape = tuple(len(coords[d]) for d in dims)
    return xr.DataArray(values.reshape(*shape, values.shape[-1]), dims=(*dims, level),
                        coords={**{d: coords[d] for d in dims}, level: list(labels)})


def unit_log_likelihood(p: np.ndarray, data: ChoiceData, level: str, dims, coords) -> xr.DataArray:
    """``Σ_{t ∈ unit} log p_s(y_t)`` (``dims``..., unit) of probabilities ``p`` (sample,
    situation, alternative) of ``data``'s choices, per unit of ``level``."""
    labels = data.individuals if level == INDIVIDUAL else data.situations
    ll = unit_log_likelihood_array(p, data, units_of(data, level), len(labels))
    return as_unit_log_likelihood(ll, dims, coords, level, labels)
