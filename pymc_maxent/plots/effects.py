"""Heatmap of a ``J × J`` elasticity matrix."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pymc_maxent.data.choice_data import ALTERNATIVE
from pymc_maxent.evaluation import CHANGED_ALTERNATIVE


def _point_and_spread(elasticities):
    """The estimate and its sd (posterior mean and SD, or MaxEnt estimate and SE), as
    (alternative, changed_alternative); a plain DataArray is taken as the estimate."""
    if isinstance(elasticities, xr.Dataset):
        return elasticities["estimate"], elasticities.get("sd")
    return elasticities, None


def plot_elasticity_heatmap(elasticities, *, ax=None, cmap: str = "RdBu_r", fmt: str = "{:.2f}",
                            title: str | None = None):
    """Heatmap of an elasticity matrix (``alternative`` responds to ``changed_alternative``), each cell
    annotated with the posterior mean (MaxEnt: estimate) and, beneath it, the posterior sd
    (MaxEnt: delta-method se).

    Parameters
    ----------
    elasticities : DataArray or Dataset
        From :func:`~pymc_maxent.diagnostics.effects.elasticities` with ``kind="aggregate"`` or
        ``"mean"``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics.effects import elasticities
    >>> fig = plot_elasticity_heatmap(elasticities(pmx.fit_maxent(pmx.load_travel_mode()), "gc"))
    >>> fig.axes[0].get_xlabel()
    '1% change in gc of'
    """
    import matplotlib.pyplot as plt

    point, spread = _point_and_spread(elasticities)
    if CHANGED_ALTERNATIVE not in point.dims:
        raise ValueError("the heatmap needs a J x J matrix (alternative, changed_alternative); an "
                         "attribute of the decision maker gives a vector")
    point = point.transpose(ALTERNATIVE, CHANGED_ALTERNATIVE)
    values = point.values
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * values.shape[1] + 2.5, 1.0 * values.shape[0] + 1.5))
    limit = float(np.abs(values).max()) or 1.0
    image = ax.imshow(values, cmap=cmap, vmin=-limit, vmax=limit)
    ax.figure.colorbar(image, ax=ax, label="elasticity")
    rows, cols = point[ALTERNATIVE].values, point[CHANGED_ALTERNATIVE].values
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    attribute = elasticities.attrs.get("attribute", "")
    ax.set_xlabel(f"1% change in {attribute} of")
    ax.set_ylabel("response of")
    sd = None if spread is None else spread.transpose(ALTERNATIVE, CHANGED_ALTERNATIVE).values
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = fmt.format(values[i, j]) + ("" if sd is None else "\n(" + fmt.format(sd[i, j]) + ")")
            dark = abs(values[i, j]) > 0.6 * limit
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    kind = elasticities.attrs.get("kind", "")
    ax.set_title(title if title is not None else f"{kind} elasticities".strip())
    return ax.figure
