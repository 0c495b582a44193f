"""The package's exception types."""


class ChoiceDataError(ValueError):
    """Bad choice data or a model specification that the data cannot support.

    Every message names the column, id, attribute or value at fault.
    """


def describe_ids(ids, limit: int = 5) -> str:
    """Render offending ids for an error message: the first few, then the count."""
    ids = list(ids)
    shown = ", ".join(repr(i.item() if hasattr(i, "item") else i) for i in ids[:limit])
    if len(ids) > limit:
        shown += f", ... ({len(ids)} in all)"
    return shown
