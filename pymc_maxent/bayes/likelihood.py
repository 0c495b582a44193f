"""The utility of random components, in a fast and a plain formulation.

The plain formulation lays the random coefficients out as a ``(situation, alternative,
attribute)`` tensor (``θ[index][:, layout]``) and contracts it with ``X``; its gradient
scatters that whole tensor back. The fast one (the default) contracts the generic
coefficients, the common case, per situation without the layout gather
(``U_ij += Σ_k x_ijk θ_ik``, broadcast over alternatives), slices ``X`` instead of copying
columns when they are contiguous, and keeps the gather only for alternative-specific
coefficients. Both give the same utility to rounding; ``tests/test_fast_likelihood.py``
compares their logp and gradient for every tier. Tried and dropped (docs/performance.md):
gathering θ from its flattened matrix, which made the gradient's scatter-add ~10x faster on
the Python/C backends but the whole evaluation 12% slower under numba (PyTensor 3's
default); ``pt.matmul`` for the batched contraction (20x slower).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pytensor.tensor as pt

from pymc_maxent.utility import linear_utility

_FAST = ContextVar("pymc_maxent_fast_likelihood", default=True)


@contextmanager
def plain_likelihood():
    """Build models with the plain formulation inside this block (for checks and benchmarks).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.bayes.likelihood import plain_likelihood, uses_fast_likelihood
    >>> with plain_likelihood():
    ...     uses_fast_likelihood()
    False
    """
    token = _FAST.set(False)
    try:
        yield
    finally:
        _FAST.reset(token)


def uses_fast_likelihood() -> bool:
    return _FAST.get()


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
    if not _FAST.get():
        return linear_utility(X[:, :, block.columns], pt.concatenate([coefficients, zero], 1)[:, layout])

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

