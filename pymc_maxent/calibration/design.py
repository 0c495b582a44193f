"""Choice designs for calibration: attributes on realistic scales, no choices yet."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pymc_maxent.arguments import require_count, require_counts
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import SpecificationError

#: Attributes a calibration design can hold: how each is drawn per (situation, alternative).
DESIGN_ATTRIBUTES = {
    "price": lambda rng, shape: rng.uniform(100.0, 400.0, shape),   # currency units, hundreds
    "price_change": lambda rng, shape: rng.uniform(-100.0, 100.0, shape),  # against a usual price
    "time": lambda rng, shape: rng.uniform(10.0, 90.0, shape),      # minutes
    "comfort": lambda rng, shape: (rng.random(shape) < 0.5).astype(float),  # a dummy
}


def calibration_design(n_individuals: int = 30, n_situations: int = 5, n_alternatives: int = 3, *,
                       attributes: Sequence[str] = ("price", "time"), seed: int = 0) -> ChoiceData:
    """A panel design without choices: each individual faces ``n_situations`` choices among
    ``n_alternatives`` labelled alternatives (``alt0, alt1, …``).

    Attributes are drawn on the scales of real data (:data:`DESIGN_ATTRIBUTES`: ``price`` in
    the hundreds, ``price_change`` the same spread around 0, ``time`` in minutes, ``comfort`` a
    dummy), so that the default priors, which
    scale with each attribute's spread, are calibrated on realistic coefficients.

    Parameters
    ----------
    n_individuals, n_situations, n_alternatives : int
    attributes : sequence of str
        Among :data:`DESIGN_ATTRIBUTES`.
    seed : int

    Returns
    -------
    ChoiceData
        With ``has_choices=False``; models built on it simulate the choices.

    Raises
    ------
    SpecificationError
        An unknown attribute, or fewer than 2 alternatives or 1 individual or situation.

    Examples
    --------
    >>> from pymc_maxent.calibration import calibration_design
    >>> design = calibration_design(20, 4)
    >>> design.dims, design.has_choices
    ({'situation': 80, 'alternative': 3, 'attribute': 2, 'individual': 20}, False)
    """
    unknown = [a for a in attributes if a not in DESIGN_ATTRIBUTES]
    if unknown or not attributes:
        raise SpecificationError(f"calibration design attributes {unknown or list(attributes)} unknown or "
                                 f"missing; choose from {list(DESIGN_ATTRIBUTES)}")
    counts = require_counts(n_individuals=n_individuals, n_situations=n_situations)
    n_individuals, n_situations = counts["n_individuals"], counts["n_situations"]
    n_alternatives = require_count(n_alternatives, "n_alternatives", minimum=2)
    rng = np.random.default_rng(seed)
    N, J = n_individuals * n_situations, n_alternatives
    X = np.stack([DESIGN_ATTRIBUTES[a](rng, (N, J)) for a in attributes], axis=-1)
    return ChoiceData.from_arrays(
        X, np.zeros(N, dtype=int), individual=np.repeat(np.arange(n_individuals), n_situations),
        individuals=np.arange(n_individuals), alternatives=[f"alt{j}" for j in range(J)],
        attributes=list(attributes), occasion=np.tile(np.arange(n_situations), n_individuals),
        has_choices=False)
