"""The package's exception types.

Every error the package raises on purpose is a :class:`PymcMaxentError`; each also derives from
``ValueError``, since bad input is what causes them.

- :class:`ChoiceDataError`: the choice data (a column, id, label or value);
- :class:`SpecificationError`: a model specification, prior or setting the data cannot support;
- :class:`MaxEntError`: a MaxEnt problem that cannot be solved as posed.
"""


class PymcMaxentError(ValueError):
    """Base class of the package's errors. Every message names the column, id, attribute,
    parameter or value at fault."""


class ChoiceDataError(PymcMaxentError):
    """Bad choice data: a missing or malformed column, an unknown id or label, a value out of range."""


class SpecificationError(PymcMaxentError):
    """A model specification, prior or setting that is invalid or that the data cannot support
    (an unknown tier or mixing distribution, an unidentified coefficient, a prior for an unknown
    parameter, a saved model from another version)."""


class MaxEntError(PymcMaxentError):
    """A MaxEnt problem that cannot be solved as posed: a bad support, prior weights that are
    not a probability distribution, or moment constraints that no admissible ``(p, ε)`` meets.

    The message names the support, prior or moment at fault.
    """


class ConvergenceWarning(UserWarning):
    """An estimator stopped before meeting its convergence criteria; the result says
    ``converged=False``."""


class ScaleWarning(UserWarning):
    """Attributes on badly spread scales (a standard deviation outside ``[1e-6, 1e6]``, or
    scales differing by more than a factor ``1e6``): estimates lose precision; rescale them."""


class IdentificationWarning(UserWarning):
    """A fit whose parameters the data do not identify (near-collinear moments or regressors);
    the result says ``identified=False`` and names the parameters in the near-null direction."""


def plain(value):
    """A NumPy scalar as the Python value it holds (for readable messages)."""
    return value.item() if hasattr(value, "item") else value


def describe_ids(ids, limit: int = 5) -> str:
    """Render offending ids for an error message: the first few, then the count."""
    ids = list(ids)
    shown = ", ".join(repr(plain(i)) for i in ids[:limit])
    if len(ids) > limit:
        shown += f", ... ({len(ids)} in all)"
    return shown
