"""The choice data as ``pm.Data`` containers: one registration feeds every model."""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass

import numpy as np
import pymc as pm

from pymc_maxent.data.choice_data import ALTERNATIVE, ATTRIBUTE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.exceptions import ChoiceDataError

#: The ``pm.Data`` names of the containers, as :func:`register_choice_data` registers them.
CONTAINERS = ("X", "available", "chosen_index", "individual_index")
NEW_INDIVIDUAL = "new_individual"

# Per model, the array of placeholder choices its ``chosen_index`` holds while it holds data built
# for prediction (``chosen=None``); any other array there (observed choices, or one a user set with
# ``pm.set_data``) counts as observed. Entries go with their model.
_PLACEHOLDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ChoiceContainers:
    """Symbolic handles of the registered containers."""

    X: object            # (situation, alternative, attribute)
    available: object    # (situation, alternative) bool
    chosen: object       # (situation,) int
    individual: object   # (situation,) int: known individuals first, then new ones


def register_choice_data(data: ChoiceData, model: pm.Model | None = None) -> ChoiceContainers:
    """Register ``data`` as ``pm.Data`` containers (``X``, ``available``, ``chosen_index``,
    ``individual_index``) in the model on the context stack.

    Examples
    --------
    >>> import pymc as pm, pymc_maxent as pmx
    >>> from pymc_maxent.data.containers import register_choice_data
    >>> data = pmx.load_travel_mode()
    >>> with pm.Model(coords=data.coords):
    ...     containers = register_choice_data(data)
    >>> containers.X.get_value().shape
    (210, 4, 3)
    """
    model = pm.modelcontext(model)
    for dim, labels in data.coords.items():
        if dim not in model.coords:
            model.add_coord(dim, labels)
    with model:
        containers = ChoiceContainers(
            X=pm.Data("X", data.X, dims=(SITUATION, ALTERNATIVE, ATTRIBUTE)),
            available=pm.Data("available", data.available, dims=(SITUATION, ALTERNATIVE)),
            chosen=pm.Data("chosen_index", data.chosen, dims=SITUATION),
            individual=pm.Data("individual_index", data.individual, dims=SITUATION),
        )
    # pm.Data copies its value; ChoiceData's arrays are read-only, so the container can share
    # the largest one instead of holding a second copy of X.
    containers.X.set_value(data.X, borrow=True)
    _mark_choices(data, model)
    return containers


def _mark_choices(data: ChoiceData, model: pm.Model) -> None:
    if data.has_choices:
        _PLACEHOLDERS.pop(model, None)
    else:
        _PLACEHOLDERS[model] = model["chosen_index"].get_value(borrow=True)


def require_observed_choices(model: pm.Model, purpose: str) -> None:
    """Refuse to fit a model whose ``chosen_index`` holds the placeholders of data built for
    prediction (``chosen=None``): they are no choices, and a fit of them is a silent wrong answer.

    Raises
    ------
    ChoiceDataError
        Naming ``purpose``.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.data.containers import require_observed_choices
    >>> d = pmx.load_travel_mode()
    >>> new = pmx.ChoiceData.from_arrays(d.X, d.chosen, has_choices=False)
    >>> require_observed_choices(pmx.build_model(new, "MNL-1"), "sampling")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pymc_maxent.exceptions.ChoiceDataError: sampling needs observed choices; ...
    """
    held = _PLACEHOLDERS.get(model)
    if held is not None and held is model["chosen_index"].get_value(borrow=True):
        raise ChoiceDataError(
            f"{purpose} needs observed choices; the data were built for prediction (chosen=None): the "
            "model's chosen_index holds placeholders, not choices; build the data with its column of "
            "choices (or swap such data in with set_choice_data)")


def set_choice_data(data: ChoiceData, model: pm.Model | None = None) -> list:
    """Swap new choice situations into a model's containers with ``pm.set_data``.

    Individuals are matched by id to those the model was fitted on; the others are
    *new*, and models with random coefficients integrate over the population
    distribution for them. Returns the ids of the new individuals.

    Raises
    ------
    ChoiceDataError
        If the alternatives or attributes differ from the model's.
    """
    model = pm.modelcontext(model)
    for dim, labels in ((ALTERNATIVE, data.alternatives), (ATTRIBUTE, data.attributes)):
        if list(model.coords[dim]) != labels.tolist():
            raise ChoiceDataError(
                f"new data has {dim}s {labels.tolist()}; the model has {list(model.coords[dim])}"
            )
    known = {label: i for i, label in enumerate(model.coords[INDIVIDUAL])}
    ids = data.individuals[data.individual]
    new_ids = [i for i in dict.fromkeys(ids.tolist()) if i not in known]
    if NEW_INDIVIDUAL in model.coords:
        lookup = known | {label: len(known) + n for n, label in enumerate(new_ids)}
        model.set_dim(NEW_INDIVIDUAL, len(new_ids), coord_values=new_ids)
    else:  # no individual-level parameters: the index is not used
        lookup = known | dict.fromkeys(new_ids, 0)
    pm.set_data(
        {
            "X": data.X,
            "available": data.available,
            "chosen_index": data.chosen,
            "individual_index": np.array([lookup[i] for i in ids.tolist()], dtype=np.int64),
        },
        model=model,
        coords={SITUATION: data.situations.tolist()},
    )
    _mark_choices(data, model)
    return new_ids


@contextlib.contextmanager
def restored_containers(model: pm.Model):
    """Put the model's data containers (``X``, ``available``, ``chosen_index``,
    ``individual_index``) and its ``situation`` and ``new_individual`` coords back exactly as
    they were on leaving the block (the same arrays: ``X`` still shares the fitted data's).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.data.containers import restored_containers, set_choice_data
    >>> data = pmx.load_travel_mode()
    >>> model = pmx.build_model(data, "MNL-2")
    >>> with restored_containers(model):
    ...     _ = set_choice_data(data.subset(slice(0, 5)), model)
    ...     model["X"].get_value().shape
    (5, 4, 3)
    >>> model["X"].get_value().shape, len(model.coords["situation"])
    ((210, 4, 3), 210)
    """
    # set_data replaces a container's array rather than writing into it: the held ones stay intact
    held = {name: model[name].get_value(borrow=True) for name in CONTAINERS}
    situations = list(model.coords[SITUATION])
    new = list(model.coords[NEW_INDIVIDUAL]) if NEW_INDIVIDUAL in model.coords else None
    placeholders = _PLACEHOLDERS.get(model)
    try:
        yield
    finally:
        _PLACEHOLDERS.pop(model, None)
        if placeholders is not None:
            _PLACEHOLDERS[model] = placeholders
        if new is not None:
            model.set_dim(NEW_INDIVIDUAL, len(new), coord_values=new)
        pm.set_data(held, model=model, coords={SITUATION: situations})
        for name, value in held.items():
            model[name].set_value(value, borrow=True)
