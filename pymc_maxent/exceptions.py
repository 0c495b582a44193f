"""The package's exception types."""


class ChoiceDataError(ValueError):
    """Bad choice data or a model specification that the data cannot support.

    Every message names the column, id, attribute or value at fault.
    """


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


class MaxEntError(ChoiceDataError):
    """A MaxEnt problem that cannot be solved as posed: a bad support, prior weights that are
    not a probability distribution, or moment constraints that no admissible ``(p, ε)`` meets.

    The message names the support, prior or moment at fault.
    """


class ConvergenceWarning(UserWarning):
    """An estimator stopped before meeting its convergence criteria; the result says
    ``converged=False``."""
