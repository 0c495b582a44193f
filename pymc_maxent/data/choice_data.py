"""The choice-data object: dense arrays and named coordinates, shared by every estimator."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pymc_maxent.data import validate
from pymc_maxent.exceptions import ChoiceDataError, describe_ids, plain

#: Names of the dimensions every model and estimator of the package uses.
SITUATION, ALTERNATIVE, ATTRIBUTE, INDIVIDUAL = "situation", "alternative", "attribute", "individual"


@dataclass(frozen=True, eq=False)
class ChoiceData:
    """Discrete-choice data as dense arrays with named coordinates.

    Parameters
    ----------
    X : ndarray, shape (situation, alternative, attribute)
        Attributes; entries of unavailable alternatives are 0.
    chosen : ndarray of int, shape (situation,)
        Position of the chosen alternative in ``alternatives``.
    available : ndarray of bool, shape (situation, alternative)
        Availability mask (unbalanced choice sets).
    individual : ndarray of int, shape (situation,)
        Position of each situation's decision maker in ``individuals``.
    situations, alternatives, attributes, individuals : array-like
        Coordinate labels.
    occasion : ndarray, optional
        Occasion (time) of each situation within its individual's panel.
    has_choices : bool
        False for data built for prediction only (``chosen`` is then a placeholder).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> data = pmx.load_travel_mode()
    >>> data.dims
    {'situation': 210, 'alternative': 4, 'attribute': 3, 'individual': 210}
    """

    X: np.ndarray
    chosen: np.ndarray
    available: np.ndarray
    individual: np.ndarray
    situations: np.ndarray
    alternatives: np.ndarray
    attributes: np.ndarray
    individuals: np.ndarray
    occasion: np.ndarray | None = None
    has_choices: bool = True

    def __post_init__(self):
        for arr in (self.X, self.chosen, self.available, self.individual):
            arr.setflags(write=False)

    # ------------------------------------------------------------------ shape and coords
    @property
    def n_situations(self) -> int:
        return self.X.shape[0]

    @property
    def n_alternatives(self) -> int:
        return self.X.shape[1]

    @property
    def n_attributes(self) -> int:
        return self.X.shape[2]

    @property
    def n_individuals(self) -> int:
        return len(self.individuals)

    @property
    def is_panel(self) -> bool:
        """True when some individual faces more than one choice situation."""
        return self.n_individuals < self.n_situations

    @property
    def dims(self) -> dict[str, int]:
        return {
            SITUATION: self.n_situations,
            ALTERNATIVE: self.n_alternatives,
            ATTRIBUTE: self.n_attributes,
            INDIVIDUAL: self.n_individuals,
        }

    @property
    def coords(self) -> dict[str, list]:
        """Coordinates that become PyMC dims and DataTree coords."""
        return {
            SITUATION: self.situations.tolist(),
            ALTERNATIVE: self.alternatives.tolist(),
            ATTRIBUTE: self.attributes.tolist(),
            INDIVIDUAL: self.individuals.tolist(),
        }

    @property
    def chosen_onehot(self) -> np.ndarray:
        """``y[situation, alternative]``: 1 for the chosen alternative."""
        y = np.zeros(self.available.shape)
        y[np.arange(self.n_situations), self.chosen] = 1.0
        return y

    def attribute(self, name: str) -> np.ndarray:
        """One attribute as a ``(situation, alternative)`` array."""
        return self.X[..., self.attribute_index(name)]

    def attribute_index(self, name) -> int:
        """Position of an attribute, by its label or its label's text (``3`` or ``"3"``)."""
        return label_position(self.attributes, name, "attribute")

    def alternative_index(self, name) -> int:
        """Position of an alternative, by its label or its label's text."""
        return label_position(self.alternatives, name, "alternative")

    def varies_across_alternatives(self) -> np.ndarray:
        """Per attribute: does it take more than one value within some situation?

        Attributes of the decision maker (income, age) do not, so they identify only
        alternative-specific coefficients relative to a reference alternative.
        """
        masked_max = np.where(self.available[..., None], self.X, -np.inf).max(axis=1)
        masked_min = np.where(self.available[..., None], self.X, np.inf).min(axis=1)
        return (masked_max > masked_min).any(axis=0)

    def alternative_specific_columns(self, attribute: int, reference: int) -> list[int]:
        """Positions of the alternatives that get their own coefficient of attribute position
        ``attribute``: those where it is ever non-zero (an attribute absent from an alternative,
        e.g. car's terminal time, says nothing about its coefficient), less the ``reference``
        when it does not vary within situations (income: identified relative to a reference).
        The one rule of the Bayesian builders and MaxEnt's cross moments.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> data = pmx.load_travel_mode()  # ttme is 0 for car; hinc_air is income on air only
        >>> [data.alternative_specific_columns(data.attribute_index(a), reference=3)
        ...  for a in ("gc", "ttme", "hinc_air")]
        [[0, 1, 2, 3], [0, 1, 2], [0]]
        """
        present = ((self.X[..., attribute] != 0) & self.available).any(axis=0)
        varies = self.varies_across_alternatives()[attribute]
        return [j for j in range(self.n_alternatives) if present[j] and (varies or j != reference)]

    def require_choices(self, purpose: str) -> None:
        """Refuse data built for prediction (``chosen=None``) where observed choices are needed:
        its ``chosen`` holds placeholders (the first available alternative), and a fit of them is
        a silent wrong answer.

        Raises
        ------
        ChoiceDataError
            Naming ``purpose``.

        Examples
        --------
        >>> import pymc_maxent as pmx
        >>> d = pmx.load_travel_mode()
        >>> pmx.ChoiceData.from_arrays(d.X, d.chosen, has_choices=False).require_choices("a fit")
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pymc_maxent.exceptions.ChoiceDataError: a fit needs observed choices; the data were built ...
        """
        if not self.has_choices:
            raise ChoiceDataError(f"{purpose} needs observed choices; the data were built for prediction "
                                  "(chosen=None): its chosen positions are placeholders, not choices")

    # ------------------------------------------------------------------ views
    def select_attributes(self, attributes: Sequence[str]) -> ChoiceData:
        """The same data restricted to (and ordered by) ``attributes``."""
        idx = [self.attribute_index(a) for a in attributes]
        return self._replace(X=self.X[..., idx], attributes=self.attributes[idx])

    def subset(self, situations) -> ChoiceData:
        """The data of some situations, given as positions or a boolean mask.

        Individuals keep their labels; those without a situation left are dropped
        from ``individuals`` (and the index is renumbered).
        """
        idx = np.atleast_1d(np.arange(self.n_situations)[situations])
        if idx.size == 0:
            raise ChoiceDataError(f"subset selects no situations (of {self.n_situations}): a choice data "
                                  "object needs at least one")
        if len(np.unique(idx)) < len(idx):
            raise ChoiceDataError(
                "subset repeats situations; for a resample with replacement build new data "
                "with ChoiceData.from_arrays (situation labels must stay unique)"
            )
        keep_ind, new_individual = np.unique(self.individual[idx], return_inverse=True)
        return self._replace(
            X=self.X[idx],
            chosen=self.chosen[idx],
            available=self.available[idx],
            individual=new_individual,
            situations=self.situations[idx],
            individuals=self.individuals[keep_ind],
            occasion=None if self.occasion is None else self.occasion[idx],
        )

    def with_attribute(self, name: str, values) -> ChoiceData:
        """A copy with attribute ``name`` replaced (counterfactuals: a new price)."""
        values = np.broadcast_to(np.asarray(values, dtype=float), self.available.shape)
        if not np.isfinite(values[self.available]).all():
            raise ChoiceDataError(f"new values of attribute {name!r} are not all finite")
        k = self.attribute_index(name)
        X = self.X.copy()
        X[..., k] = np.where(self.available, values, 0.0)
        validate.require_bounded_attributes(
            X[..., [k]], self.available, [name], self.situations, self.alternatives
        )
        return self._replace(X=X)

    def _replace(self, **changes) -> ChoiceData:
        return dataclasses.replace(self, **changes)

    def with_labels(self, *, situations=None, individuals=None) -> ChoiceData:
        """The same data under other situation or individual labels (one per situation, or per
        individual, and unique).

        Raises
        ------
        ChoiceDataError
            Labels of the wrong number, or repeated.
        """
        changes = {}
        for name, labels, n in (("situations", situations, self.n_situations),
                                ("individuals", individuals, self.n_individuals)):
            if labels is None:
                continue
            labels = validate.normalize_labels(np.asarray(labels), f"`{name}`")
            if len(labels) != n or len(pd.unique(labels)) != n:
                raise ChoiceDataError(f"`{name}` needs {n} unique labels; got {list(labels)[:10]}")
            changes[name] = labels
        return self._replace(**changes)

    def to_long(self) -> pd.DataFrame:
        """Long format (one row per available situation × alternative): a round trip of
        :meth:`from_long`."""
        s, j = np.nonzero(self.available)
        out = {
            SITUATION: self.situations[s],
            ALTERNATIVE: self.alternatives[j],
            "chosen": (self.chosen[s] == j).astype(int),
            INDIVIDUAL: self.individuals[self.individual[s]],
        }
        for k, name in enumerate(self.attributes):
            out[str(name)] = self.X[s, j, k]
        return pd.DataFrame(out)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_long(
        cls,
        df: pd.DataFrame,
        *,
        situation: str,
        alternative: str,
        chosen: str | None,
        attributes: Sequence[str],
        individual: str | None = None,
        occasion: str | None = None,
        availability: str | None = None,
        alternatives: Sequence | None = None,
        check_identified: bool = True,
        max_bytes: float | None = None,
    ) -> ChoiceData:
        """Build from long format: one row per choice situation × alternative.

        A (situation, alternative) pair without a row is unavailable in that situation;
        so is a row whose ``availability`` column is 0/False.

        Parameters
        ----------
        df : DataFrame
        situation, alternative : str
            Columns identifying the choice situation and the alternative.
        chosen : str or None
            0/1 (or boolean) column marking the chosen alternative; None for data that is
            only predicted.
        attributes : sequence of str, or str
            Numeric attribute columns; a single string is one column (``"price"`` means
            ``["price"]``).
        individual : str, optional
            Decision-maker id (panel data); default: one individual per situation.
        occasion : str, optional
            Occasion/time column within an individual's panel.
        availability : str, optional
            0/1 column; attribute values of unavailable rows may be missing.
        alternatives : sequence, optional
            Order of the alternatives; default: order of first appearance.
        check_identified : bool
            Reject attributes that are constant over the whole data (off for prediction data).
        max_bytes : float, optional
            Largest size of the dense arrays; see Notes.

        Raises
        ------
        ChoiceDataError
            Naming the column and the ids at fault.

        Notes
        -----
        *Labels.* Situation, alternative and individual ids (and ``alternatives``) keep their
        values: ids of one kind (all numbers, all strings, all booleans) as a NumPy array of
        that kind, ids that mix kinds (``1`` and ``"b"``) as an object array, so that lookups by
        value (``alternative_index(1)``, known individuals in prediction data) still match.
        Stores of one type per coordinate (netCDF, CSV, xarray coordinates built from lists)
        hold mixed ids as their text, ``str(id)``; so when two different ids share a text form
        (``1`` and ``"1"``), which would merge them there, :class:`~pymc_maxent.ChoiceDataError`
        names the column and the colliding ids. (xarray refuses to write an object array of
        mixed types to netCDF: convert such ids with ``.astype(str)`` first, safe since their
        texts differ.)

        *Magnitudes.* An attribute value beyond ``±1e150`` on an available row, or a column
        whose standard deviation over the available alternatives overflows, raises
        ``ChoiceDataError`` naming the column and value. Non-constant columns whose standard
        deviations lie outside ``[1e-6, 1e6]`` or differ by more than a factor ``1e6`` give one
        :class:`~pymc_maxent.exceptions.ScaleWarning` listing every column's scale.

        *Size.* The dense arrays (``situations × alternatives × attributes × 8`` bytes, and the
        masks) are estimated before they are allocated; past ``max_bytes``, else the environment
        variable ``PYMC_MAXENT_MAX_BYTES``, else half the available memory, ``ChoiceDataError``
        gives the size in GiB and points to the out-of-memory estimators.

        Examples
        --------
        >>> import pandas as pd
        >>> from pymc_maxent import ChoiceData
        >>> df = pd.DataFrame({"sit": [1, 1, 2, 2], "alt": ["a", "b", "a", "b"],
        ...                    "y": [1, 0, 0, 1], "price": [1.0, 2.0, 1.5, 1.0]})
        >>> ChoiceData.from_long(df, situation="sit", alternative="alt", chosen="y",
        ...                      attributes=["price"]).chosen.tolist()
        [0, 1]
        """
        attributes = _as_list(attributes)
        if not attributes:
            raise ChoiceDataError("no attribute columns given")
        id_cols = [situation, alternative] + [c for c in (individual, occasion) if c]
        columns = id_cols + attributes + [c for c in (chosen, availability) if c]
        validate.require_columns(df, columns)
        _require_rows(df, columns)
        df = df.reset_index(drop=True)
        validate.require_no_missing_ids(df, id_cols)
        validate.require_numeric_attributes(df, attributes)
        validate.require_unique_rows(df, situation, alternative)

        row_available = np.ones(len(df), dtype=bool)
        if availability is not None:
            row_available = validate.require_binary_chosen(df, availability, situation)
        validate.require_finite_attributes(df, attributes, situation, row_available)

        situation_ids, s_idx = _codes(df[situation])
        situation_ids = validate.normalize_labels(situation_ids, f"column {situation!r}")
        if alternatives is None:
            alternative_ids, j_idx = _codes(df[alternative])
            alternative_ids = validate.normalize_labels(alternative_ids, f"column {alternative!r}")
        else:
            lookup = pd.Index(list(alternatives), dtype=object)
            if not lookup.is_unique:
                raise ChoiceDataError(f"`alternatives` has repeated labels: {list(alternatives)}")
            alternative_ids = validate.normalize_labels(list(alternatives), "`alternatives`")
            j_idx = lookup.get_indexer(df[alternative])
            if (j_idx < 0).any():
                unknown = pd.unique(df[alternative][j_idx < 0])
                raise ChoiceDataError(
                    f"column {alternative!r} has alternatives not in `alternatives`: "
                    f"{describe_ids(unknown)}"
                )
        N, J, K = len(situation_ids), len(alternative_ids), len(attributes)
        validate.require_fits_in_memory(N, J, K, max_bytes)

        available = np.zeros((N, J), dtype=bool)
        available[s_idx, j_idx] = row_available
        X = np.zeros((N, J, K))
        values = df[attributes].to_numpy(dtype=float)
        X[s_idx, j_idx] = np.where(row_available[:, None], values, 0.0)

        has_choices = chosen is not None
        if has_choices:
            chosen_rows = validate.require_binary_chosen(df, chosen, situation)
            chosen_grid = np.zeros((N, J), dtype=bool)
            chosen_grid[s_idx, j_idx] = chosen_rows
            validate.require_one_chosen(chosen_grid, available, situation_ids, chosen)
            chosen_idx = chosen_grid.argmax(axis=1)
        else:
            chosen_idx = available.argmax(axis=1)
        validate.require_two_available(available, situation_ids, alternative)

        if individual is not None:
            validate.require_constant_within_situation(df, situation, individual)
            first_rows = np.unique(s_idx, return_index=True)[1]
            individual_ids, ind_idx = _codes(df[individual].iloc[first_rows])
            individual_ids = validate.normalize_labels(individual_ids, f"column {individual!r}")
        else:
            individual_ids, ind_idx = situation_ids, np.arange(N)
        occ = None
        if occasion is not None:
            validate.require_constant_within_situation(df, situation, occasion)
            occ = df[occasion].to_numpy()[np.unique(s_idx, return_index=True)[1]]

        return cls.from_arrays(
            X,
            chosen_idx,
            available=available,
            individual=ind_idx,
            situations=situation_ids,
            alternatives=alternative_ids,
            attributes=attributes,
            individuals=individual_ids,
            occasion=occ,
            has_choices=has_choices,
            check_identified=check_identified,
            max_bytes=max_bytes,
        )

    @classmethod
    def from_wide(
        cls,
        df: pd.DataFrame,
        *,
        choice: str | None,
        alternatives: Sequence,
        attributes: Mapping[str, Mapping] | Sequence[str],
        situation_attributes: Sequence[str] = (),
        situation: str | None = None,
        individual: str | None = None,
        availability: Mapping | None = None,
        sep: str = "_",
        check_identified: bool = True,
        max_bytes: float | None = None,
    ) -> ChoiceData:
        """Build from wide format: one row per choice situation.

        Parameters
        ----------
        choice : str or None
            Column holding the label of the chosen alternative.
        alternatives : sequence
            Alternative labels.
        attributes : mapping, sequence of str, or str
            ``{attribute: {alternative: column}}``, or attribute names whose columns are
            ``f"{attribute}{sep}{alternative}"`` (a single string is one attribute). A missing
            alternative in the mapping means the attribute is 0 for it.
        situation_attributes : sequence of str, or str
            Columns describing the situation or decision maker (income), the same for
            every alternative (a single string is one column).
        situation, individual : str, optional
            Id columns; default situation id is the row number.
        availability : mapping, optional
            ``{alternative: column}`` of 0/1 availability flags.
        check_identified, max_bytes
            As in :meth:`from_long`.

        Notes
        -----
        Labels, magnitudes and size follow :meth:`from_long`'s rules: ``alternatives`` and the
        situation and individual ids keep their values (mixed kinds as an object array), and
        two that share a text form (``1`` and ``"1"``) raise ``ChoiceDataError`` naming the
        argument or column; the size (``len(df) × len(alternatives) × attributes``) is checked
        before the long frame is built.

        Examples
        --------
        >>> import pandas as pd
        >>> from pymc_maxent import ChoiceData
        >>> wide = pd.DataFrame({"choice": ["a", "b"], "price_a": [1.0, 2.0],
        ...                      "price_b": [2.0, 1.0]})
        >>> ChoiceData.from_wide(wide, choice="choice", alternatives=["a", "b"],
        ...                      attributes=["price"]).X[..., 0].tolist()
        [[1.0, 2.0], [2.0, 1.0]]
        """
        alternatives = list(alternatives)
        situation_attributes = _as_list(situation_attributes)
        if not isinstance(attributes, Mapping):
            attributes = {a: {alt: f"{a}{sep}{alt}" for alt in alternatives} for a in _as_list(attributes)}
        columns = [col for cols in attributes.values() for col in cols.values()]
        columns += situation_attributes + list((availability or {}).values())
        columns += [c for c in (choice, situation, individual) if c]
        validate.require_columns(df, columns)
        _require_rows(df, columns)
        df = df.reset_index(drop=True)
        _check_wide_ids(df, alternatives, situation, individual, availability)
        validate.require_fits_in_memory(
            len(df), len(alternatives), len(attributes) + len(situation_attributes), max_bytes
        )
        sit = df[situation] if situation else pd.Series(np.arange(len(df)))
        if choice is not None:
            unknown = ~df[choice].isin(alternatives)
            if unknown.any():
                raise ChoiceDataError(
                    f"column {choice!r} names alternatives not in `alternatives`, in situation(s) "
                    f"{describe_ids(sit[unknown])}: {describe_ids(pd.unique(df[choice][unknown]))}"
                )
        frames = []
        for alt in alternatives:
            part = {"_situation": sit.to_numpy(), "_alternative": alt}
            if choice is not None:
                part["_chosen"] = (df[choice] == alt).to_numpy().astype(int)
            for a, cols in attributes.items():
                part[a] = df[cols[alt]].to_numpy() if alt in cols else 0.0
            for a in situation_attributes:
                part[a] = df[a].to_numpy()
            if individual:
                part["_individual"] = df[individual].to_numpy()
            part["_available"] = (
                df[availability[alt]].to_numpy() if availability and alt in availability else 1
            )
            frames.append(pd.DataFrame(part))
        long = pd.concat(frames, ignore_index=True)
        return cls.from_long(
            long,
            situation="_situation",
            alternative="_alternative",
            chosen="_chosen" if choice is not None else None,
            attributes=list(attributes) + situation_attributes,
            individual="_individual" if individual else None,
            availability="_available",
            alternatives=alternatives,
            check_identified=check_identified,
            max_bytes=max_bytes,
        )

    @classmethod
    def from_arrays(
        cls,
        X,
        chosen,
        *,
        available=None,
        individual=None,
        situations=None,
        alternatives=None,
        attributes=None,
        individuals=None,
        occasion=None,
        has_choices: bool = True,
        check_identified: bool = True,
        max_bytes: float | None = None,
    ) -> ChoiceData:
        """Build from arrays: ``X[situation, alternative, attribute]`` and chosen positions.

        Parameters
        ----------
        X : array-like, shape (situation, alternative, attribute) or (situation, alternative)
            Attributes; entries of unavailable alternatives are ignored (set to 0).
        chosen : array-like of int, shape (situation,)
            Position of the chosen alternative.
        available : array-like of bool, shape (situation, alternative), optional
            Availability; default all available.
        individual : array-like, shape (situation,), optional
            Positions in ``individuals``, or (without ``individuals``) the individuals' labels.
        situations, alternatives, attributes, individuals : sequence, optional
            Labels; default positions (``x0, x1, …`` for attributes). A single string is one
            attribute.
        occasion : array-like, optional
        has_choices, check_identified : bool
            As in :class:`ChoiceData` and :meth:`from_long`.
        max_bytes : float, optional
            Largest size of the dense arrays, checked from ``X.shape`` before ``X`` is copied.

        Notes
        -----
        Labels, magnitudes and size follow :meth:`from_long`'s rules: labels keep their values
        (mixed kinds as an object array; individual labels given without ``individuals`` are
        then numbered in order of first appearance instead of sorted), and two labels sharing a
        text form (``1`` and ``"1"``) raise ``ChoiceDataError`` naming the argument.

        Examples
        --------
        >>> import numpy as np
        >>> from pymc_maxent import ChoiceData
        >>> X = np.array([[[1.0], [2.0]], [[2.0], [1.0]]])
        >>> ChoiceData.from_arrays(X, [0, 0]).coords["alternative"]
        [0, 1]
        """
        if not hasattr(X, "shape"):
            X = np.asarray(X, dtype=float)
        if len(X.shape) in (2, 3):
            N, J, *K = X.shape
            validate.require_fits_in_memory(N, J, K[0] if K else 1, max_bytes)
        X = np.asarray(X, dtype=float)
        if X.ndim == 2:
            X = X[..., None]
        if X.ndim != 3:
            raise ChoiceDataError(f"X must be (situation, alternative, attribute); got shape {X.shape}")
        N, J, K = X.shape
        if N == 0 or J == 0:
            raise ChoiceDataError(
                f"X has shape {X.shape}: it needs at least one situation and two alternatives"
            )
        available = np.ones((N, J), dtype=bool) if available is None else np.asarray(available)
        if available.shape != (N, J):
            raise ChoiceDataError(f"`available` has shape {available.shape}; expected {(N, J)}")
        available = available.astype(bool)
        chosen = np.asarray(chosen)
        if chosen.shape != (N,) or not np.issubdtype(chosen.dtype, np.integer):
            raise ChoiceDataError(
                f"`chosen` must be {N} integer positions; got {chosen.dtype} {chosen.shape}"
            )
        situations = _labels(situations, N, "`situations`")
        alternatives = _labels(alternatives, J, "`alternatives`")
        if attributes is None:
            attributes = np.array([f"x{k}" for k in range(K)])
        attributes = validate.normalize_labels(_as_list(attributes), "`attributes`")
        if individual is None:
            individual, individuals = np.arange(N), situations
        elif individuals is None:
            individuals, individual = _unique_inverse(validate.normalize_labels(individual, "`individual`"))
        else:
            individual = np.asarray(individual)
            individuals = validate.normalize_labels(individuals, "`individuals`")
        for name, labels, n in (
            ("situations", situations, N),
            ("alternatives", alternatives, J),
            ("attributes", attributes, K),
        ):
            if len(labels) != n or len(pd.unique(labels)) != n:
                raise ChoiceDataError(f"`{name}` needs {n} unique labels; got {list(labels)[:10]}")
        if individual.shape != (N,) or individual.min(initial=0) < 0 or (
            individual.max(initial=0) >= len(individuals)
        ):
            raise ChoiceDataError("`individual` must give each situation a position in `individuals`")

        bad = ~np.isfinite(X) & available[..., None]
        if bad.any():
            s, _, k = np.nonzero(bad)
            raise ChoiceDataError(
                f"attribute {plain(attributes[k[0]])!r} has NaN or infinite values in situation(s) "
                f"{describe_ids(pd.unique(situations[s]))}"
            )
        if (chosen < 0).any() or (chosen >= J).any():
            raise ChoiceDataError(
                f"chosen positions out of range 0..{J - 1} in situation(s) "
                f"{describe_ids(situations[(chosen < 0) | (chosen >= J)])}"
            )
        if has_choices:
            onehot = np.zeros((N, J), dtype=bool)
            onehot[np.arange(N), chosen] = True
            validate.require_one_chosen(onehot, available, situations, "chosen")
        validate.require_two_available(available, situations)
        X = np.where(available[..., None], X, 0.0)
        validate.require_bounded_attributes(X, available, attributes, situations, alternatives)
        if check_identified:
            validate.require_varying_attributes(X, available, attributes)
        validate.warn_if_badly_scaled(X, available, attributes)
        return cls(
            X=X,
            chosen=chosen.astype(np.int64),
            available=available,
            individual=individual.astype(np.int64),
            situations=situations,
            alternatives=alternatives,
            attributes=attributes,
            individuals=individuals,
            occasion=None if occasion is None else np.asarray(occasion),
            has_choices=has_choices,
        )


def label_position(labels, name, what: str) -> int:
    """Position of ``name`` among ``labels``: the label itself, else the one whose text is
    ``str(name)``. Labels of a data object have distinct texts (:func:`validate.normalize_labels`),
    so the text names one label: an integer column name ``3`` is found as ``3`` and as ``"3"``,
    the form it takes in parameter names (``beta[3]``) and on the command line.

    Raises
    ------
    ChoiceDataError
        Naming ``what``, ``name`` and the labels.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.data.choice_data import label_position
    >>> label_position(np.array([3, 4]), "4", "attribute"), label_position(np.array([3, 4]), 4, "attribute")
    (1, 1)
    """
    labels = np.asarray(labels)
    hits = np.flatnonzero([label == name for label in labels.tolist()])
    if not hits.size:
        hits = np.flatnonzero([str(label) == str(name) for label in labels.tolist()])
    if not hits.size:
        raise ChoiceDataError(f"unknown {what} {name!r}; the data has {labels.tolist()}")
    return int(hits[0])


def _as_list(names) -> list:
    """Column or attribute names as a list; a single string is one name, not its letters."""
    if isinstance(names, str):
        return [names]
    return names.tolist() if isinstance(names, np.ndarray) else list(names)


def _unique_inverse(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique labels and each label's position; labels of mixed kinds, which do not
    sort, in order of first appearance."""
    try:
        return np.unique(labels, return_inverse=True)
    except TypeError:
        codes, uniques = pd.factorize(labels, sort=False)
        return np.asarray(uniques, dtype=object), codes


def _labels(values, n: int, what: str) -> np.ndarray:
    return np.arange(n) if values is None else validate.normalize_labels(values, what)


def _require_rows(df: pd.DataFrame, columns: list) -> None:
    if df.empty:
        raise ChoiceDataError(
            f"the data frame has no rows (columns {describe_ids(columns, limit=8)} are empty); "
            "each choice situation needs its alternatives' rows"
        )


def _check_wide_ids(df, alternatives, situation, individual, availability) -> None:
    """The checks of :meth:`ChoiceData.from_long` that would otherwise name its internal columns."""
    validate.normalize_labels(alternatives, "`alternatives`")
    ids = [c for c in (situation, individual) if c]
    validate.require_no_missing_ids(df, ids)
    for col in ids:
        validate.normalize_labels(np.asarray(pd.unique(df[col]), dtype=object), f"column {col!r}")
    for col in (availability or {}).values():
        validate.require_binary_chosen(df, col, situation)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Labels in order of first appearance, and each value's position among them."""
    codes, labels = pd.factorize(values, sort=False)
    return np.asarray(labels), codes
