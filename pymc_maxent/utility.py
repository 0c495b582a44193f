"""The utility graph shared by the Bayesian builders and the MaxEnt estimator.

``U[i, j] = α[i, j] + Σ_k x[i, j, k] β[i, j, k]`` with coefficient tensors that broadcast
against ``x`` (a vector for generic coefficients, a ``(alternative, attribute)`` matrix for
alternative-specific ones, ``(situation, alternative, attribute)`` for random ones), and
choice probabilities a softmax over the available alternatives only.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt


def linear_utility(X, coefficients, constants=None):
    """``U = α + Σ_k X[..., k] β[..., k]``.

    Parameters
    ----------
    X : tensor, shape (situation, alternative, attribute)
    coefficients : tensor broadcastable to ``X``, or 1-d (attribute,)
    constants : tensor broadcastable to (situation, alternative), optional

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.utility import linear_utility
    >>> linear_utility(np.ones((1, 2, 2)), np.array([1.0, -2.0]), np.array([0.5, 0.0])).eval()
    array([[-0.5, -1. ]])
    """
    X = pt.as_tensor_variable(X)
    coefficients = pt.as_tensor_variable(coefficients)
    if coefficients.ndim == 1:
        U = pt.dot(X, coefficients)
    else:
        U = (X * coefficients).sum(axis=-1)
    return U if constants is None else U + constants


def mask_unavailable(U, available):
    """Utilities with unavailable alternatives at ``-inf`` (they get probability 0)."""
    return pt.switch(available, U, -np.inf)


def log_choice_probabilities(U, available):
    """Masked log-softmax over the alternative axis (last): ``-inf`` where unavailable."""
    return pt.special.log_softmax(mask_unavailable(U, available), axis=-1)


def choice_probabilities(U, available):
    """Masked softmax over the alternative axis (last): exactly 0 where unavailable."""
    return pt.special.softmax(mask_unavailable(U, available), axis=-1)
