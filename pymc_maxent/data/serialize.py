"""Choice data to and from an xarray Dataset (a DataTree's ``constant_data`` group) and a model's
containers: what :meth:`ChoiceModel.save <pymc_maxent.ChoiceModel.save>` writes and ``load`` reads."""

from __future__ import annotations

import numpy as np
import pymc as pm
import xarray as xr

from pymc_maxent.data.choice_data import ALTERNATIVE, ATTRIBUTE, INDIVIDUAL, SITUATION, ChoiceData
from pymc_maxent.exceptions import ChoiceDataError

#: The variables of a choice-data Dataset, as the model's containers name them.
VARIABLES = ("X", "available", "chosen_index", "individual_index")


def choice_data_to_dataset(data: ChoiceData) -> xr.Dataset:
    """``X``, ``available``, ``chosen_index`` and ``individual_index`` with the data's coords.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.data.serialize import choice_data_from_dataset, choice_data_to_dataset
    >>> data = pmx.load_travel_mode()
    >>> back = choice_data_from_dataset(choice_data_to_dataset(data))
    >>> bool((back.X == data.X).all()), back.alternatives.tolist() == data.alternatives.tolist()
    (True, True)
    """
    coords = {SITUATION: data.situations, ALTERNATIVE: data.alternatives, ATTRIBUTE: data.attributes,
              INDIVIDUAL: data.individuals}
    ds = xr.Dataset(
        {
            "X": ((SITUATION, ALTERNATIVE, ATTRIBUTE), np.asarray(data.X)),
            "available": ((SITUATION, ALTERNATIVE), np.asarray(data.available, dtype=np.int8)),
            "chosen_index": ((SITUATION,), np.asarray(data.chosen, dtype=np.int64)),
            "individual_index": ((SITUATION,), np.asarray(data.individual, dtype=np.int64)),
        },
        coords=coords,
        attrs={"has_choices": int(data.has_choices)},
    )
    if data.occasion is not None:
        ds["occasion"] = ((SITUATION,), np.asarray(data.occasion))
    return ds


def choice_data_from_dataset(ds: xr.Dataset) -> ChoiceData:
    """The :class:`~pymc_maxent.ChoiceData` of :func:`choice_data_to_dataset` (exact round trip)."""
    missing = [v for v in VARIABLES if v not in ds]
    if missing:
        raise ChoiceDataError(f"the choice-data group lacks the variables {missing}")
    for dim in (SITUATION, ALTERNATIVE, ATTRIBUTE, INDIVIDUAL):
        if dim not in ds.coords:
            raise ChoiceDataError(f"the choice-data group lacks the coordinate {dim!r}")
    return ChoiceData(
        X=np.array(ds["X"].transpose(SITUATION, ALTERNATIVE, ATTRIBUTE).values, dtype=float),
        chosen=np.array(ds["chosen_index"].values, dtype=np.int64),
        available=np.array(ds["available"].transpose(SITUATION, ALTERNATIVE).values, dtype=bool),
        individual=np.array(ds["individual_index"].values, dtype=np.int64),
        situations=np.asarray(ds[SITUATION].values),
        alternatives=np.asarray(ds[ALTERNATIVE].values),
        attributes=np.asarray(ds[ATTRIBUTE].values),
        individuals=np.asarray(ds[INDIVIDUAL].values),
        occasion=np.array(ds["occasion"].values) if "occasion" in ds else None,
        has_choices=bool(ds.attrs.get("has_choices", 1)),
    )


def choice_data_from_model(model: pm.Model) -> ChoiceData:
    """The choice data a model's containers hold now, with the model's coords."""
    try:
        held = {name: np.asarray(model[name].get_value()) for name in VARIABLES}
    except KeyError as err:
        raise ChoiceDataError(f"the model has no choice-data container {err}: build it with "
                              "pymc_maxent.build_model") from None
    coords = {dim: np.asarray(model.coords[dim]) for dim in (SITUATION, ALTERNATIVE, ATTRIBUTE, INDIVIDUAL)}
    if held["X"].shape[0] != len(coords[SITUATION]):
        raise ChoiceDataError("the model's containers and its situation coordinate differ in size")
    known = held["individual_index"] < len(coords[INDIVIDUAL])
    if not known.all():
        raise ChoiceDataError("the model's containers hold individuals it was not fitted on; pass data=")
    return ChoiceData(
        X=np.array(held["X"], dtype=float), chosen=held["chosen_index"].astype(np.int64),
        available=held["available"].astype(bool), individual=held["individual_index"].astype(np.int64),
        situations=coords[SITUATION], alternatives=coords[ALTERNATIVE], attributes=coords[ATTRIBUTE],
        individuals=coords[INDIVIDUAL],
    )
