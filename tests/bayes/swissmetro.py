"""The Swissmetro stated-preference data of Biogeme's documented examples (Bierlaire, Axhausen
and Abay 2001), as the examples use them: commuters and business trips (``PURPOSE`` 1 or 3),
known choices; 6768 situations of 752 respondents over train, Swissmetro and car.

``tests/data/files/swissmetro_commute.csv.gz`` holds those rows of ``swissmetro.dat`` (as shipped
in the ``biogeme`` package) and the columns the examples use.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from pymc_maxent.data.choice_data import ChoiceData

FILE = Path(__file__).parent.parent / "data" / "files" / "swissmetro_commute.csv.gz"
ALTERNATIVES = ["train", "swissmetro", "car"]


def load_swissmetro() -> ChoiceData:
    """Times and costs in hundreds (``*_SCALED``); a yearly pass (``GA``) makes train and
    Swissmetro free; train and car are available in the SP survey only where ``*_AV``."""
    df = pd.read_csv(FILE)
    no_pass = (df["GA"] == 0).to_numpy()
    time = np.stack([df["TRAIN_TT"], df["SM_TT"], df["CAR_TT"]], axis=1) / 100
    cost = np.stack([df["TRAIN_CO"] * no_pass, df["SM_CO"] * no_pass, df["CAR_CO"]], axis=1) / 100
    sp = (df["SP"] != 0).to_numpy()
    available = np.stack([df["TRAIN_AV"] * sp, df["SM_AV"], df["CAR_AV"] * sp], axis=1).astype(bool)
    individual, individuals = pd.factorize(df["ID"])
    return ChoiceData.from_arrays(np.stack([time, cost], axis=-1), df["CHOICE"].to_numpy() - 1,
                                  available=available, individual=individual,
                                  individuals=np.asarray(individuals),
                                  alternatives=ALTERNATIVES, attributes=["time", "cost"])
