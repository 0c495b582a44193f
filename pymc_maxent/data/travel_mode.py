"""Greene & Hensher's TravelMode data, bundled as a CSV."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import pandas as pd

from pymc_maxent.data.choice_data import ChoiceData

MODES = {1: "air", 2: "train", 3: "bus", 4: "car"}


def travel_mode_frame() -> pd.DataFrame:
    """TravelMode in long format, one row per individual × mode (840 rows).

    Columns: ``individual``, ``mode`` (air, train, bus, car), ``choice`` (0/1),
    ``ttme`` terminal waiting time (minutes, 0 for car), ``invc`` in-vehicle cost ($),
    ``invt`` in-vehicle time (minutes), ``gc`` generalised cost ($), ``hinc`` household
    income ($1000s), ``psize`` party size, and ``hinc_air = hinc × 1[mode = air]``, the
    income interaction of Greene's conditional-logit example.

    Notes
    -----
    A 1987 survey of 210 non-business intercity trips between Sydney, Canberra and
    Melbourne; choice-based sample (air, train, bus over-sampled). Source: Greene, W.H.
    and D. Hensher (1997), "Multinomial logit and discrete choice models", in Greene, W.H.,
    LIMDEP version 7.0 user's manual; Greene, *Econometric Analysis*, 7th ed., data table
    F18-2. Public domain; the file is the copy distributed with statsmodels
    (``statsmodels.datasets.modechoice``).
    """
    with resources.files("pymc_maxent.data").joinpath("travel_mode.csv").open() as fh:
        df = pd.read_csv(fh, sep=";")
    df = df.astype({"individual": int, "mode": int, "choice": int})
    df["mode"] = df["mode"].map(MODES)
    df["hinc_air"] = df["hinc"] * (df["mode"] == "air")
    return df


def load_travel_mode(
    attributes: Sequence[str] = ("gc", "ttme", "hinc_air"),
) -> ChoiceData:
    """TravelMode as :class:`ChoiceData` (210 situations, 4 modes, one per individual).

    Parameters
    ----------
    attributes : sequence of str
        Columns of :func:`travel_mode_frame` to use; the default is Greene's
        conditional-logit specification (generic ``gc``, ``ttme`` and ``hinc × air``).

    Examples
    --------
    >>> from pymc_maxent import load_travel_mode
    >>> data = load_travel_mode()
    >>> data.alternatives.tolist(), data.attributes.tolist()
    (['air', 'train', 'bus', 'car'], ['gc', 'ttme', 'hinc_air'])
    """
    return ChoiceData.from_long(
        travel_mode_frame(),
        situation="individual",
        alternative="mode",
        chosen="choice",
        attributes=list(attributes),
        individual="individual",
        alternatives=list(MODES.values()),
    )
