"""Checks of the public functions' count and size arguments (draws, chunks, folds, workers, ...).

Every public function that takes a number of things checks it here before any numerical work,
so that ``0``, a negative number, a fraction or a flag gives one
:class:`~pymc_maxent.exceptions.SpecificationError` naming the argument and the value, never a
``range()`` or NumPy error from deep inside, nor a silent default.
"""

from __future__ import annotations

import numbers

from pymc_maxent.exceptions import SpecificationError


def require_count(value, name: str, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` of at least ``minimum``.

    Integers of any kind (Python, NumPy) pass; booleans, fractions, floats (even ``1000.0``)
    and text do not.

    Raises
    ------
    SpecificationError
        Naming ``name`` and the value.

    Examples
    --------
    >>> from pymc_maxent.arguments import require_count
    >>> require_count(3, "draws")
    3
    >>> require_count(0, "chunk_size")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pymc_maxent.exceptions.SpecificationError: chunk_size must be an integer >= 1; got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecificationError(
            f"{name} must be an integer >= {minimum}; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise SpecificationError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def optional_count(value, name: str, *, minimum: int = 1) -> int | None:
    """``None``, or :func:`require_count` of ``value``."""
    return None if value is None else require_count(value, name, minimum=minimum)


def require_counts(minimum: int = 1, /, **values) -> dict[str, int]:
    """:func:`require_count` of several arguments at once, by name.

    Examples
    --------
    >>> from pymc_maxent.arguments import require_counts
    >>> require_counts(draws=10, chains=2)
    {'draws': 10, 'chains': 2}
    """
    return {name: require_count(value, name, minimum=minimum) for name, value in values.items()}


def require_positive(value, name: str) -> float:
    """``value`` as a finite ``float`` above 0 (a rate, a tolerance, a width).

    Examples
    --------
    >>> from pymc_maxent.arguments import require_positive
    >>> require_positive(0.01, "learning_rate")
    0.01
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < float("inf"):
        raise SpecificationError(f"{name} must be a positive finite number; got {value!r}")
    return float(value)
