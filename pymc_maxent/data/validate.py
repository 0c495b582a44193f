"""Checks on long-format choice data; each raises :class:`ChoiceDataError` naming the fault."""

from __future__ import annotations

import numbers
import os
import warnings

import numpy as np
import pandas as pd

from pymc_maxent.exceptions import (
    ChoiceDataError,
    ScaleWarning,
    SpecificationError,
    describe_ids,
    plain,
)

#: Attribute values beyond this magnitude overflow products and sums of squares.
MAX_MAGNITUDE = 1e150
#: An attribute's standard deviation should lie in this range ...
SCALE_RANGE = (1e-6, 1e6)
#: ... and the largest should not pass the smallest by more than this factor.
MAX_SCALE_RATIO = 1e6
#: Environment variable overriding the memory limit of the dense arrays, in bytes.
MAX_BYTES_ENV = "PYMC_MAXENT_MAX_BYTES"
GIB = 2.0**30
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def require_columns(df: pd.DataFrame, columns: list[str]) -> None:
    """Every column named is in ``df`` once (a name that appears twice is ambiguous: pandas
    returns a frame for it, not a column)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ChoiceDataError(
            f"missing column(s) {missing}; the data has columns {list(df.columns)}"
        )
    for c in dict.fromkeys(columns):
        count = int((df.columns == c).sum())
        if count > 1:
            raise ChoiceDataError(f"column {c!r} appears {count} times in the data frame: its name is "
                                  "duplicated; give each column a distinct name")


def missing_values(values: pd.Series) -> str:
    """The kinds of missing value in ``values`` as text (``NaN``, ``None``, ``<NA>``, ``NaT``)."""
    found = values[values.isna()].tolist()
    texts = ("NaN" if isinstance(v, float) and np.isnan(v) else repr(v) for v in found)
    return ", ".join(dict.fromkeys(texts))


def require_no_missing_ids(df: pd.DataFrame, columns: list[str]) -> None:
    for col in columns:
        missing = df[col].isna()
        if missing.any():
            raise ChoiceDataError(f"column {col!r} has missing values ({missing_values(df[col])}) in rows "
                                  f"{describe_ids(df.index[missing])}")


def require_numeric_attributes(df: pd.DataFrame, attributes: list[str]) -> None:
    for col in attributes:
        if not pd.api.types.is_numeric_dtype(df[col]):  # bool counts as numeric
            raise ChoiceDataError(
                f"attribute column {col!r} is not numeric (dtype {df[col].dtype}); "
                "encode categories as dummy columns first"
            )


def require_finite_attributes(
    df: pd.DataFrame, attributes: list[str], situation: str, available: np.ndarray
) -> None:
    for col in attributes:
        values = df[col].to_numpy(dtype=float)
        bad = ~np.isfinite(values) & available
        if bad.any():
            raise ChoiceDataError(
                f"attribute column {col!r} has NaN or infinite values on available rows, "
                f"in situation(s) {describe_ids(pd.unique(df[situation].to_numpy()[bad]))}"
            )


def require_binary_chosen(df: pd.DataFrame, chosen: str, situation: str | None = None) -> np.ndarray:
    """A 0/1 or boolean column as a boolean array; missing values (``NaN``, ``pd.NA``) are refused."""
    values = df[chosen]
    missing = values.isna().to_numpy()
    if missing.any():
        where = f"rows {describe_ids(df.index[missing])}"
        if situation is not None:
            where = f"situation(s) {describe_ids(pd.unique(df[situation][missing]))} ({where})"
        raise ChoiceDataError(
            f"column {chosen!r} has missing values ({missing_values(values)}) in {where}; it must be 0/1 or "
            "boolean in every row"
        )
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=bool)
    numeric = pd.to_numeric(values, errors="coerce")
    bad = ~numeric.isin([0, 1])
    if bad.any():
        raise ChoiceDataError(
            f"column {chosen!r} must be 0/1 or boolean; found {describe_ids(pd.unique(values[bad]))}"
        )
    return numeric.to_numpy() == 1


def require_unique_rows(df: pd.DataFrame, situation: str, alternative: str) -> None:
    dup = df.duplicated([situation, alternative], keep=False)
    if dup.any():
        pairs = list(df.loc[dup, [situation, alternative]].drop_duplicates().itertuples(index=False))
        raise ChoiceDataError(
            f"duplicate ({situation}, {alternative}) rows: {describe_ids([tuple(p) for p in pairs])}"
        )


def require_constant_within_situation(df: pd.DataFrame, situation: str, column: str) -> None:
    n_values = df.groupby(situation, sort=False)[column].nunique(dropna=False)
    bad = n_values.index[n_values > 1]
    if len(bad):
        raise ChoiceDataError(
            f"column {column!r} changes within situation(s) {describe_ids(bad)}; "
            "each choice situation belongs to one individual"
        )


def require_one_chosen(chosen: np.ndarray, available: np.ndarray, situation_ids, column: str) -> None:
    """``chosen`` and ``available`` are dense ``(situation, alternative)`` boolean arrays."""
    n_chosen = chosen.sum(axis=1)
    for count, what in ((n_chosen == 0, "no"), (n_chosen > 1, "several")):
        if count.any():
            raise ChoiceDataError(
                f"situation(s) {describe_ids(situation_ids[count])} have {what} chosen "
                f"alternative in column {column!r}; exactly one is required"
            )
    bad = (chosen & ~available).any(axis=1)
    if bad.any():
        raise ChoiceDataError(
            f"situation(s) {describe_ids(situation_ids[bad])}: the chosen alternative is "
            f"marked unavailable (column {column!r})"
        )


def require_two_available(available: np.ndarray, situation_ids, column: str | None = None) -> None:
    bad = available.sum(axis=1) < 2
    if bad.any():
        where = "" if column is None else f" in column {column!r}"
        raise ChoiceDataError(
            f"situation(s) {describe_ids(situation_ids[bad])} have fewer than two available "
            f"alternatives{where}, so they carry no information about the choice"
        )


def require_varying_attributes(X: np.ndarray, available: np.ndarray, attributes) -> None:
    """An attribute constant over every available row cannot be told apart from a constant."""
    for k, name in enumerate(attributes):
        values = X[..., k][available]
        if values.size and np.all(values == values[0]):
            raise ChoiceDataError(
                f"attribute {plain(name)!r} is constant ({plain(values[0])!r}) over the whole data, "
                "so its coefficient is not identified"
            )


# ---------------------------------------------------------------------- labels
def _kind(cls: type) -> str:
    """The label kind of a Python/NumPy type: bool, number, text or the type's own name."""
    if issubclass(cls, (bool, np.bool_)):
        return "bool"
    if issubclass(cls, numbers.Number):
        return "number"
    if issubclass(cls, str):
        return "text"
    return cls.__name__


def normalize_labels(values, what: str) -> np.ndarray:
    """Coordinate labels under the package's rule: values kept, text forms distinct.

    Labels of one kind (all numbers, all text, all booleans, all of one other type) keep
    their values, numbers held in an object array becoming one numeric dtype. Labels that mix
    kinds keep their values in an object array; a store of one type per coordinate (netCDF,
    CSV, xarray coordinates built from lists) holds them as their text, so if two different
    labels share a text form (``1`` and ``"1"``), which would merge them there,
    :class:`ChoiceDataError` names ``what`` and the colliding labels.

    Examples
    --------
    >>> normalize_labels(np.array([1, 2.5], dtype=object), "column 'alt'").tolist()
    [1.0, 2.5]
    >>> normalize_labels([1, "b"], "column 'alt'").tolist()
    [1, 'b']
    >>> normalize_labels([1, "1"], "column 'alt'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pymc_maxent.exceptions.ChoiceDataError: column 'alt' mixes label types ...: 1 (int) and '1' (str); ...
    """
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values
    objects = np.asarray(values, dtype=object)
    if objects.ndim != 1:
        return np.asarray(values)
    kinds = {_kind(cls) for cls in set(map(type, objects))}
    if len(kinds) <= 1:
        if kinds & {"number", "bool"} and isinstance(values, np.ndarray):
            return _native(objects)  # an object array of numbers: one numeric dtype
        return np.asarray(values)
    _require_distinct_texts(objects, what)
    return objects


def _native(objects: np.ndarray) -> np.ndarray:
    try:
        return np.array(objects.tolist())
    except OverflowError:
        return objects


def _require_distinct_texts(objects: np.ndarray, what: str) -> None:
    labels_of: dict[str, list] = {}
    for value in pd.unique(objects):
        labels_of.setdefault(str(value), []).append(value)
    clashes = [group for group in labels_of.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(
            " and ".join(f"{plain(v)!r} ({type(plain(v)).__name__})" for v in group) for group in clashes[:3]
        )
        more = f" ({len(clashes)} groups in all)" if len(clashes) > 3 else ""
        raise ChoiceDataError(
            f"{what} mixes label types whose text forms collide: {shown}{more}; "
            "give it one type (e.g. .astype(str))"
        )


# ---------------------------------------------------------------------- magnitudes
def require_bounded_attributes(X: np.ndarray, available: np.ndarray, attributes, situations,
                               alternatives) -> None:
    """Refuse attribute values whose products or sums of squares would overflow.

    A value beyond ``±1e150``, or a column whose standard deviation over the available
    alternatives is not finite, raises :class:`ChoiceDataError` naming the column and value.
    """
    for k, name in enumerate(attributes):
        column = X[..., k]
        big = available & (np.abs(column) > MAX_MAGNITUDE)
        if big.any():
            s, j = (int(i[0]) for i in np.nonzero(big))
            value = float(column[s, j])
            raise ChoiceDataError(
                f"attribute {plain(name)!r} has the value {value:.6g} (situation {plain(situations[s])!r}, "
                f"alternative {plain(alternatives[j])!r}), beyond ±{MAX_MAGNITUDE:.0e}, where products "
                f"and sums overflow; rescale the column (e.g. divide it by 1e{_exponent(value)})"
            )
        values = column[available]
        with np.errstate(over="ignore", invalid="ignore"):
            sd = values.std() if values.size else 0.0
        if not np.isfinite(sd):
            largest = float(values[np.argmax(np.abs(values))])
            raise ChoiceDataError(
                f"attribute {plain(name)!r}: its standard deviation over the available alternatives "
                f"overflows (largest value {largest:.6g}); rescale the column (e.g. divide it by "
                f"1e{_exponent(largest)})"
            )


def _exponent(value: float) -> int:
    return int(np.floor(np.log10(abs(value))))


def attribute_scales(X: np.ndarray, available: np.ndarray, attributes) -> dict:
    """Each non-constant attribute's standard deviation over the available alternatives (the
    scale the default priors use); constant columns have no scale and are left out."""
    scales = {}
    for k, name in enumerate(attributes):
        values = X[..., k][available]
        if values.size and values.max() > values.min():
            scales[plain(name)] = float(values.std())
    return scales


def warn_if_badly_scaled(X: np.ndarray, available: np.ndarray, attributes) -> None:
    """One :class:`ScaleWarning` listing every column's scale when a scale lies outside
    ``[1e-6, 1e6]`` or the scales differ by more than a factor ``1e6``."""
    scales = attribute_scales(X, available, attributes)
    if not scales:
        return
    low, high = min(scales.values()), max(scales.values())
    outside = low < SCALE_RANGE[0] or high > SCALE_RANGE[1]
    if outside or high > MAX_SCALE_RATIO * low:
        listed = ", ".join(f"{name!r}: {sd:.3g}" for name, sd in scales.items())
        warnings.warn(
            f"badly scaled attributes (standard deviation over the available alternatives: {listed}); "
            f"scales should lie within [{SCALE_RANGE[0]:.0e}, {SCALE_RANGE[1]:.0e}] and differ by less "
            f"than a factor {MAX_SCALE_RATIO:.0e}: rescale the columns (e.g. divide each by a round "
            "number near its scale) to keep the samplers and the MaxEnt solver accurate",
            ScaleWarning,
            skip_file_prefixes=(PACKAGE_DIR,),  # attributed to the caller outside the package
        )


# ---------------------------------------------------------------------- memory
def dense_bytes(n_situations: int, n_alternatives: int, n_attributes: int) -> int:
    """Bytes of the dense arrays: ``X`` (float64), ``available`` and the chosen grid (bool),
    and the chosen and individual positions (int64)."""
    cells = n_situations * n_alternatives
    return cells * n_attributes * 8 + 2 * cells + 2 * n_situations * 8


def memory_limit(max_bytes: float | None = None) -> tuple[float | None, str]:
    """The byte limit of the dense arrays and where it comes from: ``max_bytes``, else the
    environment variable ``PYMC_MAXENT_MAX_BYTES``, else half the available memory (psutil,
    else ``os.sysconf``; no limit where neither tells)."""
    if max_bytes is not None:
        return float(max_bytes), "max_bytes"
    text = os.environ.get(MAX_BYTES_ENV)
    if text:
        try:
            return float(text), f"${MAX_BYTES_ENV}"
        except ValueError:
            raise SpecificationError(
                f"environment variable {MAX_BYTES_ENV}={text!r} is not a number of bytes"
            ) from None
    available = _available_memory()
    if available is None:
        return None, "no limit"
    return available / 2, "half the available memory"


def _available_memory() -> float | None:
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def require_fits_in_memory(n_situations: int, n_alternatives: int, n_attributes: int,
                           max_bytes: float | None = None) -> None:
    """Refuse dense arrays larger than :func:`memory_limit` before allocating them.

    Examples
    --------
    >>> require_fits_in_memory(1000, 4, 3, max_bytes=1e9)
    >>> require_fits_in_memory(10**6, 4, 3, max_bytes=1e6)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pymc_maxent.exceptions.ChoiceDataError: the dense arrays of ... need 0.112 GiB, more than ...
    """
    limit, source = memory_limit(max_bytes)
    need = dense_bytes(n_situations, n_alternatives, n_attributes)
    if limit is not None and need > limit:
        raise ChoiceDataError(
            f"the dense arrays of {n_situations} situations × {n_alternatives} alternatives × "
            f"{n_attributes} attributes need {need / GIB:.3g} GiB, more than the limit of "
            f"{limit / GIB:.3g} GiB ({source}); raise it with max_bytes= or the environment variable "
            f"{MAX_BYTES_ENV}, or fit without the dense arrays: "
            "pymc_maxent.maxent.dask_backend.fit_maxent_dask takes X as chunked dask arrays, and "
            "pymc_maxent.bayes.minibatch.fit_minibatch fits by minibatch ADVI on data built in parts"
        )
