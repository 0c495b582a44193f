"""Information-gain bars."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pymc_maxent.exceptions import ChoiceDataError


def plot_information_gain(table: pd.DataFrame, *, unit: str = "bits", ax=None, title: str | None = None):
    """Horizontal bars, one per row of an information table, first row on top.

    Parameters
    ----------
    table : DataFrame
        From :func:`~pymc_maxent.diagnostics.information.posterior_information_gain` (per
        parameter and ``joint``), :func:`~pymc_maxent.diagnostics.information.maxent_information`
        or :func:`~pymc_maxent.diagnostics.information.compare_information` (per model): any
        table with a ``kl_bits`` or ``kl_nats`` column.
    unit : {"bits", "nats"}
    ax : matplotlib Axes, optional
        Draw there; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from pymc_maxent.plots.information import plot_information_gain
    >>> table = pd.DataFrame({"kl_bits": [2.0, 0.5]}, index=["MXL-1", "MNL-2"])
    >>> len(plot_information_gain(table).axes[0].patches)
    2
    """
    column = f"kl_{unit}"
    if column not in table:
        raise ChoiceDataError(f"the table has no {column!r} column; columns: {list(table.columns)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 1 + 0.35 * len(table)), layout="constrained")
    y = np.arange(len(table))[::-1]
    colors = ["C1" if str(label) == "joint" else "C0" for label in table.index]
    if "estimator" in table:  # the cross-model table: colour by estimator
        colors = ["C1" if e == "maxent" else "C0" for e in table["estimator"]]
    ax.barh(y, table[column].to_numpy(), color=colors)
    ax.set_yticks(y, [str(label) for label in table.index])
    ax.set_xlabel(f"KL divergence ({unit})")
    ax.axvline(0.0, color="0.5", lw=0.8)
    if title:
        ax.set_title(title)
    return ax.figure
