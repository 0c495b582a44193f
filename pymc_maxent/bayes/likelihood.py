"""The utility of random coefficients.

The generic coefficients, the common case, are contracted per situation without a layout
gather (``U_ij += Σ_k x_ijk θ_ik``, broadcast over alternatives), ``X`` is sliced rather than
copied where the columns are contiguous, and only alternative-specific coefficients go
through the ``(situation, alternative, attribute)`` gather. Tried and dropped
(docs/performance.md): gathering θ from its flattened matrix, which made the gradient's
scatter-add ~10x faster on the Python/C backends but the whole evaluation 12% slower under
numba (PyTensor 3's default); ``pt.matmul`` for the batched contraction (20x slower).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pymc_maxent.utility import linear_utility


def columns(X, cols):
    """``X[:, :, cols]``: a view (basic slice) when ``cols`` is a contiguous range."""
    cols = [int(c) for c in cols]
    if cols == list(range(cols[0], cols[0] + len(cols))):
        return X[:, :, cols[0]:cols[0] + len(cols)]
    return X[:, :, cols]


def random_coefficient_utility(X, theta, resolved, n_asc: int):
    """``Σ_k x_ijk θ_i,k(j)`` of the random coefficients; ``theta`` is (situation, component)
    with the random constants first."""
    J = len(resolved.alternatives)
    block = resolved.random
    layout = block.matrix(J)  # (alternative, column)
    coefficients = theta[:, n_asc:]
    zero = pt.zeros((theta.shape[0], 1))
    zero_slot = len(block.labels)
    generic = (layout == layout[:1]).all(axis=0) & (layout[0] < zero_slot)
    U = 0.0
    if generic.any():
        g = np.flatnonzero(generic)
        params = layout[0, g]
        all_params = params.tolist() == list(range(len(block.labels)))
        theta_g = coefficients if all_params else coefficients[:, params]
        Xg = columns(X, np.asarray(block.columns)[g])
        U = U + (Xg * theta_g[:, None, :]).sum(axis=-1)
    if not generic.all():
        s = np.flatnonzero(~generic)
        U = U + linear_utility(columns(X, np.asarray(block.columns)[s]),
                               pt.concatenate([coefficients, zero], 1)[:, layout[:, s]])
    return U
