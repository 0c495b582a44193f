"""Checks on long-format choice data; each raises :class:`ChoiceDataError` naming the fault."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pymc_maxent.exceptions import ChoiceDataError, describe_ids, plain


def require_columns(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ChoiceDataError(
            f"missing column(s) {missing}; the data has columns {list(df.columns)}"
        )


def require_no_missing_ids(df: pd.DataFrame, columns: list[str]) -> None:
    for col in columns:
        bad = df.index[df[col].isna()]
        if len(bad):
            raise ChoiceDataError(f"column {col!r} has missing values in rows {describe_ids(bad)}")


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


def require_binary_chosen(df: pd.DataFrame, chosen: str) -> np.ndarray:
    values = df[chosen]
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
            "marked unavailable"
        )


def require_two_available(available: np.ndarray, situation_ids) -> None:
    bad = available.sum(axis=1) < 2
    if bad.any():
        raise ChoiceDataError(
            f"situation(s) {describe_ids(situation_ids[bad])} have fewer than two available "
            "alternatives, so they carry no information about the choice"
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
