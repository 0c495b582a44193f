"""Settings shared by the example notebooks: one call instead of a pasted cell.

``PYMC_MAXENT_FAST=1`` (what the docs build and CI set) selects a quick pass: PyMC's own NUTS,
2 chains × 250 draws after 750 tuning steps. Otherwise nutpie, 4 chains × 1000 draws after 1000
(enough for publication-grade summaries). PyMC's NUTS compiles in a second or two and nutpie in
several: on short runs PyMC's wins, on long ones nutpie's faster sampling does.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field

import pandas as pd

FAST_VARIABLE = "PYMC_MAXENT_FAST"


@dataclass(frozen=True)
class NotebookSettings:
    """What a notebook needs to know about the run it is part of.

    Attributes
    ----------
    fast : bool
        The quick pass (``PYMC_MAXENT_FAST=1``).
    seed : int
    sample : dict
        Keyword arguments of :func:`~pymc_maxent.sample` / ``ChoiceModel.fit``.
    """

    fast: bool
    seed: int
    sample: dict = field(repr=False)


def notebook_settings(seed: int = 1, *, fast: bool | None = None) -> NotebookSettings:
    """Read ``PYMC_MAXENT_FAST``, quieten PyMC's logging and the Pareto-k warning (the
    model-selection table reports it per model), set pandas' display, and return the sampler
    settings.

    Examples
    --------
    >>> from pymc_maxent.notebook import notebook_settings
    >>> s = notebook_settings(fast=True)
    >>> s.fast, s.sample["draws"], s.sample["nuts_sampler"]
    (True, 250, 'pymc')
    """
    fast = os.environ.get(FAST_VARIABLE, "0") == "1" if fast is None else bool(fast)
    draws, tune, chains = (250, 750, 2) if fast else (1000, 1000, 4)
    sample = {"draws": draws, "tune": tune, "chains": chains, "nuts_sampler": "pymc" if fast else "nutpie",
              "progressbar": not fast, "quiet": fast, "compute_convergence_checks": False}
    if fast:
        sample["cores"] = 1  # two short chains: starting worker processes costs more than it saves
    logging.getLogger("pymc").setLevel(logging.WARNING)  # PyMC logs every sampling call at INFO level
    warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
    pd.set_option("display.precision", 3)
    pd.set_option("display.width", 120)
    return NotebookSettings(fast=fast, seed=seed, sample=sample)
