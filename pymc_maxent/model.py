"""``ChoiceModel``: data, specification, priors, the PyMC model and its fit, kept together.

A thin layer over the functional core (:func:`~pymc_maxent.build_model`,
:func:`~pymc_maxent.sample`, :func:`~pymc_maxent.fit_maxent`), in the spirit of pymc-marketing's
model builders: ``fit`` by sampling, MAP or MaxEnt, prior and posterior predictive choices, and
``save`` / ``load`` of one netCDF file from which the identical model is rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pymc as pm
import xarray as xr
from pymc_extras.prior import Prior

from pymc_maxent._version import __version__
from pymc_maxent.arguments import require_count
from pymc_maxent.bayes.build import build_model
from pymc_maxent.bayes.point import map_estimate
from pymc_maxent.bayes.posterior import PosteriorFit
from pymc_maxent.bayes.sample import sample
from pymc_maxent.data.choice_data import ALTERNATIVE, ChoiceData
from pymc_maxent.data.serialize import choice_data_from_dataset, choice_data_to_dataset
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.maxent import fit_maxent, load_fit
from pymc_maxent.specification import Coefficient, ModelSpec, as_spec

METHODS = ("nuts", "map", "maxent")
FORMAT = "pymc-maxent choice model"


class ChoiceModel:
    """A discrete-choice model of ``data``: one specification, fitted by either estimator.

    Parameters
    ----------
    data : ChoiceData
    spec : str or ModelSpec
        A tier (``"MNL-1"`` … ``"MXL-4"``) or a full :class:`~pymc_maxent.ModelSpec`.
    attributes, random, correlated, reference, nests, space, price
        With a tier name: the attributes entering utility (default all), the mixing
        distributions, LKJ correlation, the reference alternative, the nests of a nested logit
        and willingness-to-pay space with its price
        (:func:`~pymc_maxent.specification.tier_spec`).
    priors : mapping, optional
        Overrides of the default priors (:func:`~pymc_maxent.build_model`).
    g_prior : float or "gme", optional
        A Zellner g-prior on the MNL tiers (:func:`~pymc_maxent.build_model`).

    Attributes
    ----------
    model : pm.Model
        The PyMC model (its data containers are shared by every fit).
    fit_result : Fit or None
        The last fit (:class:`~pymc_maxent.PosteriorFit` or :class:`~pymc_maxent.MaxEntResult`).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> cm = pmx.ChoiceModel(pmx.load_travel_mode(), "MNL-2")
    >>> fit = cm.fit(method="maxent")
    >>> fit.estimator, fit.converged
    ('maxent', True)
    """

    def __init__(self, data: ChoiceData, spec: str | ModelSpec = "MNL-2", *,
                 attributes: Sequence[str] | None = None, random: str | Mapping[str, str] = "normal",
                 correlated: bool = False, reference=None, priors: Mapping[str, Prior | float] | None = None,
                 g_prior: float | str | None = None, nests: Mapping[str, Sequence] | None = None,
                 space: str = "preference", price: str | None = None):
        self.data = data
        self.spec = as_spec(spec, data.attributes.tolist() if attributes is None else list(attributes),
                            random=dict(random) if isinstance(random, Mapping) else random,
                            correlated=correlated, reference=reference, nests=nests, space=space, price=price)
        self.priors = dict(priors or {})
        self.g_prior = g_prior
        self.model = build_model(data, self.spec, priors=self.priors, g_prior=g_prior,
                                 store_probabilities=False)
        self.fit_result = None

    def __repr__(self) -> str:
        state = "not fitted" if self.fit_result is None else f"fitted by {self.fit_result.estimator}"
        return f"ChoiceModel({self.spec.name}, {self.data.n_situations} situations, {state})"

    # ------------------------------------------------------------------ fitting
    def fit(self, method: str = "nuts", **kwargs):
        """Fit the model and keep the result as :attr:`fit_result`.

        Parameters
        ----------
        method : {"nuts", "map", "maxent"}
            ``"nuts"``: :func:`~pymc_maxent.sample` (keyword arguments go there);
            ``"map"``: :func:`~pymc_maxent.bayes.point.map_estimate` (keyword arguments go
            there), kept as a one-draw posterior;
            ``"maxent"``: :func:`~pymc_maxent.fit_maxent` with the specification's moments (its
            MaxEnt twin; keyword arguments go there), over the same data containers; at the
            mixed tiers ``MXL-1`` to ``MXL-4``, the MaxEnt mixed logit (``fit_maxent(data,
            tier=spec)``: population GME, then individual GCE, and at ``MXL-4`` situation GCE).
            Not for a nested logit or WTP space (the theory page says why).

        Returns
        -------
        PosteriorFit or MaxEntResult
        """
        if method not in METHODS:
            raise SpecificationError(f"method must be one of {METHODS}; got {method!r}")
        if method == "maxent" and (self.spec.nests or self.spec.space != "preference"):
            raise SpecificationError(
                f"{self.spec.name}: MaxEnt has no twin of a nested logit or of WTP space (their utilities "
                "are not linear in the parameters; docs/theory.md); fit it by NUTS or MAP")
        if method == "nuts":
            fit = PosteriorFit(self.model, sample(self.model, **kwargs), self.data, sample_kwargs=kwargs)
        elif method == "map":
            fit = PosteriorFit(self.model, _map_tree(self.model, **kwargs), self.data)
        else:  # the tier's twin, or at the mixed tiers the MaxEnt mixed logit, over the same containers
            fit = fit_maxent(self.data, tier=self.spec, model=self.model, **kwargs)
        self.fit_result = fit
        return fit

    def _fitted(self):
        if self.fit_result is None:
            raise SpecificationError("the model is not fitted: call fit() first")
        return self.fit_result

    # ------------------------------------------------------------------ predictive
    def sample_prior_predictive(self, draws: int = 500, *, random_seed=None) -> xr.DataTree:
        """Prior draws of the parameters and simulated choices ``chosen`` (chain, draw, situation)."""
        draws = require_count(draws, "draws")
        return pm.sample_prior_predictive(draws, model=self.model, random_seed=random_seed)

    def sample_posterior_predictive(self, new_data: ChoiceData | None = None, *,
                                    random_seed=None) -> xr.Dataset:
        """Simulated choices, one per sample of the fit and situation, with their probabilities.

        Parameters
        ----------
        new_data : ChoiceData, optional
            Situations to simulate (default the fitted ones); new individuals get draws from the
            population distribution.
        random_seed : int, optional

        Returns
        -------
        Dataset
            ``chosen`` (chain, draw, situation): the simulated alternative's label;
            ``chosen_index``: its position; ``p`` (chain, draw, situation, alternative).
            A MaxEnt fit gives one sample, at its estimate.
        """
        fit = self._fitted()
        p = fit.predict(new_data, random_seed=random_seed)
        index = sample_choices(p.to_numpy(), np.random.default_rng(random_seed))
        dims = p.dims[:-1]
        labels = np.asarray(p[ALTERNATIVE].values)
        coords = {d: p[d].values for d in dims}
        return xr.Dataset({
            "chosen": xr.DataArray(labels[index], dims=dims, coords=coords),
            "chosen_index": xr.DataArray(index, dims=dims, coords=coords),
            "p": p,
        })

    def predict(self, new_data: ChoiceData | None = None, *, random_seed=None) -> xr.DataArray:
        """Choice probabilities of the fit (:meth:`Fit.predict <pymc_maxent.fit.Fit.predict>`)."""
        return self._fitted().predict(new_data, random_seed=random_seed)

    # ------------------------------------------------------------------ save and load
    def save(self, path) -> Path:
        """Write the fit, the data, the specification, the priors and the package version to one
        netCDF file; :meth:`load` rebuilds the identical model from it."""
        fit = self._fitted()
        tree = fit.to_datatree().copy()
        tree["constant_data"] = xr.DataTree(choice_data_to_dataset(self.data))
        settings = {
            "spec": spec_to_dict(self.spec),
            "priors": {name: _prior_to_dict(p) for name, p in self.priors.items()},
            "g_prior": self.g_prior,
            "estimator": fit.estimator,
        }
        if fit.estimator == "maxent":
            settings["maxent"] = fit.settings()
        tree.attrs = dict(tree.attrs) | {"format": FORMAT, "pymc_maxent_version": __version__,
                                          "settings": json.dumps(settings)}
        path = Path(path)
        tree.to_netcdf(path, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path) -> ChoiceModel:
        """The model saved by :meth:`save`, with its fit: it predicts without refitting.

        Raises
        ------
        SpecificationError
            A file that is not a readable saved model (damaged, or something else), or one saved
            by another version of the package (naming it).
        FileNotFoundError
            No file at ``path``.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved model at {path}")
        try:
            opened = xr.open_datatree(path, engine="h5netcdf")
        except (OSError, ValueError) as err:  # HDF5 and netCDF readers' errors of a damaged file
            raise SpecificationError(f"{path} is not a readable saved pymc-maxent choice model (it is not a "
                                     f"complete netCDF/HDF5 file: {err})") from err
        try:
            tree = opened.load()  # into memory: the file is closed (and can be written again) on return
        except (OSError, ValueError) as err:
            raise SpecificationError(f"{path} is not a readable saved pymc-maxent choice model (its "
                                     f"arrays cannot be read: {err})") from err
        finally:
            opened.close()
        if tree.attrs.get("format") != FORMAT:
            raise SpecificationError(f"{path} is not a saved pymc-maxent choice model")
        saved = tree.attrs.get("pymc_maxent_version")
        if saved != __version__:
            raise SpecificationError(f"{path} was saved by pymc-maxent {saved}; this is {__version__}: "
                                     "refit the model with this version")
        if "constant_data" not in tree.children:
            raise SpecificationError(f"{path} has no 'constant_data' group (the choice data)")
        try:
            settings = json.loads(tree.attrs["settings"])
        except (KeyError, TypeError, ValueError) as err:
            raise SpecificationError(f"{path}: its 'settings' attribute is missing or damaged "
                                     f"({err})") from err
        data = choice_data_from_dataset(tree["constant_data"].to_dataset())
        priors = {name: _prior_from_dict(d) for name, d in settings["priors"].items()}
        cm = cls(data, spec_from_dict(settings["spec"]), priors=priors, g_prior=settings["g_prior"])
        if settings["estimator"] == "maxent":
            cm.fit_result = load_fit(tree, data, cm.spec, model=cm.model, **settings["maxent"])
        else:
            if "posterior" not in tree.children:
                raise SpecificationError(f"{path} has no 'posterior' group")
            cm.fit_result = PosteriorFit(cm.model, tree, data)
        return cm


# ---------------------------------------------------------------------- helpers
def sample_choices(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``p`` (last axis: alternatives), by inverse CDF."""
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(p.shape[:-1] + (1,)) * cdf[..., -1:]
    index = (u > cdf).sum(axis=-1)
    # an alternative of probability 0 is never drawn, even at u equal to a CDF step
    return np.minimum(index, p.shape[-1] - 1)


def _map_tree(model: pm.Model, **kwargs) -> xr.DataTree:
    """:func:`~pymc_maxent.bayes.point.map_estimate` as a one-chain, one-draw posterior."""
    point = map_estimate(model, **kwargs).x
    names = [rv.name for rv in model.free_RVs] + [d.name for d in model.deterministics]
    dims = model.named_vars_to_dims
    post = {}
    for name in names:
        value = np.asarray(point[name])[None, None]
        var_dims = ("chain", "draw", *dims.get(name, [f"{name}_dim_{i}" for i in range(value.ndim - 2)]))
        coords = {d: list(model.coords[d]) for d in var_dims[2:] if d in model.coords}  # not tuples
        post[name] = xr.DataArray(value, dims=var_dims, coords=coords)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(post, attrs={"point_estimate": "MAP"})})


def spec_to_dict(spec: ModelSpec) -> dict:
    """A :class:`~pymc_maxent.ModelSpec` as plain JSON-able values."""
    out = dataclasses.asdict(spec)
    out["reference"] = _plain(spec.reference)
    out["nests"] = [[name, [_plain(a) for a in members]] for name, members in spec.nests]
    return out


def spec_from_dict(d: Mapping) -> ModelSpec:
    fields = dict(d)
    fields["coefficients"] = tuple(Coefficient(**c) for c in d["coefficients"])
    fields["nests"] = tuple((name, tuple(members)) for name, members in d.get("nests", ()))
    return ModelSpec(**fields)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _prior_to_dict(prior) -> dict:
    if not isinstance(prior, Prior):
        return {"value": float(prior)}
    return prior.to_dict()


def _prior_from_dict(d: Mapping):
    if "value" in d:
        return d["value"]
    return Prior.from_dict(dict(d))

