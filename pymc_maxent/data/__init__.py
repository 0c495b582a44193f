"""Data: the choice-data object, bundled data and a simulator."""

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.data.travel_mode import load_travel_mode, travel_mode_frame

__all__ = ["ChoiceData", "load_travel_mode", "travel_mode_frame"]
