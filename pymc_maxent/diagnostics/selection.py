"""One model-selection table across tiers and estimators."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import arviz as az
import numpy as np
import pandas as pd
from scipy.special import entr

from pymc_maxent.arguments import require_count
from pymc_maxent.data.choice_data import SITUATION, ChoiceData
from pymc_maxent.diagnostics.cross_validation import (
    Refits,
    exact_refits,
    individual_folds,
    kfold,
    unit_level,
)
from pymc_maxent.exceptions import ChoiceDataError, SpecificationError
from pymc_maxent.fit import fitted_probabilities


def split_by_individual(data: ChoiceData, test_fraction: float = 0.25, seed: int = 0):
    """Train and test data with whole individuals on one side (panels stay intact).

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import split_by_individual
    >>> train, test = split_by_individual(pmx.load_travel_mode(), 0.25, seed=1)
    >>> train.n_situations, test.n_situations
    (158, 52)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ChoiceDataError(f"test_fraction must lie strictly between 0 and 1; got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    n_test = int(round(test_fraction * data.n_individuals))
    if not 0 < n_test < data.n_individuals:
        raise ChoiceDataError(f"test_fraction {test_fraction} of {data.n_individuals} individuals "
                              "leaves one side empty")
    is_test = np.zeros(data.n_individuals, dtype=bool)
    is_test[rng.choice(data.n_individuals, n_test, replace=False)] = True
    in_test = is_test[data.individual]
    return data.subset(~in_test), data.subset(in_test)


def _normalized_entropy(p: np.ndarray, available: np.ndarray) -> float:
    """``Σ_i H(p_i) / Σ_i ln J_i`` (``0 ln 0 = 0``)."""
    return float(entr(p).sum() / np.log(available.sum(axis=1)).sum())


def _heldout_scores(p, test: ChoiceData, name: str = "") -> dict[str, float]:
    """Log score (sum and mean) and hit rate of predicted probabilities ``p`` on ``test``; a
    chosen alternative predicted with probability 0 (log score ``-inf``) is warned about."""
    p = np.asarray(p)
    chosen = p[np.arange(test.n_situations), test.chosen]
    with np.errstate(divide="ignore"):
        log_p = np.log(chosen)
    impossible = np.flatnonzero(chosen <= 0)
    if impossible.size:
        warnings.warn(f"{name}: {impossible.size} held-out choice(s) predicted with probability 0 (first: "
                      f"situation {test.situations[impossible[0]]!r}): its held-out log score is -inf",
                      UserWarning, stacklevel=4)
    log_score = float(log_p.sum())
    return {"_heldout_log_p": log_p,
            "heldout_log_score": log_score, "heldout_log_score_mean": log_score / test.n_situations,
            # inf, not NaN, when a choice was predicted impossible (warned above)
            "heldout_log_score_se": np.inf if impossible.size else float(np.sqrt(log_p.size * np.var(log_p))),
            "heldout_hit_rate": float((p.argmax(axis=1) == test.chosen).mean())}


def _row(name: str, fit, loo, data: ChoiceData, test: ChoiceData | None, random_seed) -> dict:
    row = fit.parameter_count() | {"estimator": fit.estimator, "loglik": fit.lppd()}
    if loo is not None:
        elpd, level = loo
        row |= {"elpd_loo": float(elpd.elpd), "elpd_loo_se": float(elpd.se), "p_loo": float(elpd.p),
                "loo_level": level, "pareto_k_bad": int((np.asarray(elpd.pareto_k) > elpd.good_k).sum())}
    row["information_index"] = 1.0 - _normalized_entropy(fitted_probabilities(fit, data), data.available)
    if test is not None:
        p_test = fit.predict(test, random_seed=random_seed)
        row |= _heldout_scores(p_test.mean(("chain", "draw")), test, name)
    return row


def _criteria(loos: dict, names: list, cv: str, max_reloo: int) -> dict[str, str]:
    """The criterion of each fit: ``loo`` where PSIS-LOO is reliable, ``reloo`` where at most
    ``max_reloo`` units need an exact refit, else ``kfold``; MaxEnt fits (no LOO) ``kfold``
    (``None`` under ``cv="loo"``)."""
    if cv == "none":
        return dict.fromkeys(names, "heldout")
    if cv == "kfold":
        return dict.fromkeys(names, "kfold")
    need = {}
    for name in names:
        if name not in loos:
            need[name] = "kfold" if cv == "auto" else None
            continue
        bad = int((np.asarray(loos[name].pareto_k) > loos[name].good_k).sum())
        need[name] = "loo" if bad == 0 or cv == "loo" else "reloo" if bad <= max_reloo else "kfold"
    return need


def model_selection(
    fits: Mapping[str, object],
    data: ChoiceData,
    test: ChoiceData | None = None,
    *,
    cv: str = "auto",
    folds: int = 10,
    max_reloo: int = 5,
    sample_kwargs: Mapping | None = None,
    random_seed: int = 0,
) -> pd.DataFrame:
    """Tiers and estimators side by side, ranked by a predictive score that can be trusted.

    Parameters
    ----------
    fits : mapping
        Name → :class:`~pymc_maxent.fit.Fit` (a :class:`~pymc_maxent.PosteriorFit` sampled with
        its log-likelihood, or a MaxEnt fit), all fitted to ``data``.
    data : ChoiceData
        The data every model was fitted to.
    test : ChoiceData, optional
        Held-out situations (e.g. from :func:`split_by_individual`): adds the held-out log
        score (sum, its SE and mean per situation) and hit rate. Individuals absent from
        ``data`` are integrated over the population distribution.
    cv : {"auto", "kfold", "loo", "none"}
        How each fit's expected log predictive density (``elpd``) of a left-out unit (an
        individual on panel data, a situation on a cross-section) is estimated:

        * ``"auto"``: per fit, the cheapest reliable estimate: PSIS-LOO where every Pareto k is
          good (``loo``); exact refits of the units with bad k where there are at most
          ``max_reloo`` of them (``reloo``); else ``folds``-fold CV grouped by individual
          (``kfold``). MaxEnt fits (no posterior) are scored by K-fold. All K-fold rows share
          the same folds.
        * ``"kfold"``: K-fold for every fit: one currency, so stacking weights for all.
        * ``"loo"``: PSIS-LOO only, no refits: a fit with bad Pareto k is reported, not ranked.
        * ``"none"``: no cross-validation: rank by the held-out log score on ``test``.
    folds : int
        K of K-fold (folds drawn per individual with ``random_seed``).
    max_reloo : int
        Most units a posterior is refitted for in ``reloo``.
    sample_kwargs : mapping, optional
        Sampler settings of the posteriors' refits (default: each fit's own,
        :attr:`PosteriorFit.sample_kwargs`), e.g. fewer draws.
    random_seed : int

    Returns
    -------
    DataFrame
        One row per fit, best first:

        * ``criterion`` (``loo``, ``reloo``, ``kfold`` or ``heldout``), ``level`` (its unit),
          ``elpd`` and ``elpd_se``: the score the table ranks by (higher is better);
          ``reliable``: False for a PSIS-LOO with bad Pareto k (``cv="loo"``), which is not ranked;
          ``rank`` (0 best; only where scores are comparable: the same unit level);
          ``elpd_diff`` and ``dse``: the difference to the best and its SE, from the paired
          pointwise scores (:func:`arviz_stats.compare`); ``weight``: stacking weights, only
          when every ranked fit has the same criterion family (all LOO, or all K-fold on the
          same folds), else NaN; ``refits`` and ``refit_divergences``; ``note``: why a row has
          its criterion, or no weight;
        * ``estimator``, ``parameters`` (population level), ``latent`` (individual and situation
          level), ``loglik`` (in-sample: the log pointwise predictive density of a posterior, the
          log-likelihood at the estimate for MaxEnt);
        * the PSIS-LOO diagnostics of posteriors: ``elpd_loo``, ``elpd_loo_se``, ``p_loo``,
          ``loo_level``, ``pareto_k_bad`` (units with Pareto k above
          ``min(1 - 1/log10(S), 0.7)``);
        * held-out scores, and the ``information_index`` ``1 − S(p̄)`` of the in-sample predictions.

        The models' containers hold ``data`` again afterwards.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import model_selection
    >>> data = pmx.load_travel_mode()
    >>> table = model_selection({"MaxEnt": pmx.fit_maxent(data)}, data, folds=5)
    >>> table.loc["MaxEnt", "criterion"], int(table.loc["MaxEnt", "parameters"])
    ('kfold', 6)
    """
    if cv not in CV:
        raise SpecificationError(f"cv must be one of {CV}; got {cv!r}")
    if not isinstance(fits, Mapping) or not fits:
        raise SpecificationError(f"model_selection needs a mapping of at least one name to a fit; "
                                 f"got {fits!r}")
    folds = require_count(folds, "folds", minimum=2)
    max_reloo = require_count(max_reloo, "max_reloo", minimum=0)
    data.require_choices("model selection")
    if test is not None:
        test.require_choices("the held-out score of model selection")
    if cv == "none" and test is None:
        raise SpecificationError("cv='none' ranks by the held-out log score: give test data")
    names = list(fits)
    psis = {name: fit.loo() for name, fit in fits.items()}
    rows = {name: _row(name, fit, psis[name], data, test, random_seed) for name, fit in fits.items()}
    loos = {name: loo[0] for name, loo in psis.items() if loo is not None}
    level = unit_level(data)
    # a PSIS-LOO of other units than the data's (a panel fit without its per-individual
    # log-likelihood) can neither be compared nor refitted unit by unit: K-fold instead
    loos = {name: loo for name, loo in loos.items() if psis[name][1] == level}
    criteria = _criteria(loos, names, cv, max_reloo)
    fold_of = individual_folds(data, folds, random_seed) if "kfold" in criteria.values() else None
    scores = {}
    for name, fit in fits.items():
        criterion = criteria[name]
        row = rows[name]
        row |= {"criterion": criterion, "level": SITUATION if criterion == "heldout" else level,
                "reliable": criterion is not None, "refits": 0, "refit_divergences": 0}
        if criterion is None:
            row["note"] = "no PSIS-LOO (not a posterior): not ranked under cv='loo'"
            continue
        if criterion == "heldout":
            row |= {"elpd": row["heldout_log_score"], "elpd_se": row["heldout_log_score_se"],
                    "note": "held-out log score on test (cv='none')"}
            continue
        if criterion in ("reloo", "kfold"):
            wrapper = Refits(fit, level, random_seed=random_seed, sample_kwargs=sample_kwargs)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
                scores[name] = (kfold(wrapper, fold_of) if criterion == "kfold"
                                else exact_refits(wrapper, loos[name], loos[name].good_k))
            row |= {"refits": wrapper.n_refits, "refit_divergences": wrapper.divergences}
            if wrapper.divergences:
                warnings.warn(f"{name}: {wrapper.divergences} divergences in its {wrapper.n_refits} "
                              "cross-validation refits", UserWarning, stacklevel=2)
        else:
            scores[name] = loos[name]
        note = _note(name, criterion, loos, folds)
        if row["refits"] and sample_kwargs and wrapper.refit_settings:  # a sampler's settings, where used
            note += "; refits: " + ", ".join(f"{k}={v}" for k, v in sample_kwargs.items())
        row |= {"elpd": float(scores[name].elpd), "elpd_se": float(scores[name].se), "note": note}
        if criterion == "loo" and name in loos and rows[name]["pareto_k_bad"]:
            row |= {"reliable": False, "note": f"PSIS-LOO unreliable ({rows[name]['pareto_k_bad']} bad "
                                               "Pareto k): not ranked (cv='loo')"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table = _rank(table, scores)
    first = ["criterion", "level", "elpd", "elpd_se", "rank", "elpd_diff", "dse", "weight", "estimator",
             "parameters", "latent", "loglik"]
    first = [c for c in first if c in table]
    return table[first + [c for c in table.columns if c not in first]]


CV = ("auto", "kfold", "loo", "none")


def _note(name: str, criterion: str, loos: dict, folds: int) -> str:
    if criterion == "kfold":
        if name not in loos:
            return (f"{folds}-fold CV by individual (no PSIS-LOO of the data's units: not a posterior, "
                    "or no per-individual log-likelihood)")
        bad = int((np.asarray(loos[name].pareto_k) > loos[name].good_k).sum())
        why = f"PSIS-LOO unreliable here ({bad} bad Pareto k)" if bad else "cv='kfold'"
        return f"{folds}-fold CV by individual: {why}"
    if criterion == "reloo":
        bad = int((np.asarray(loos[name].pareto_k) > loos[name].good_k).sum())
        return f"PSIS-LOO with exact refits for the {bad} unit(s) of bad Pareto k"
    return "PSIS-LOO, every Pareto k good"


def _rank(table: pd.DataFrame, scores: dict) -> pd.DataFrame:
    """``rank``, and ``elpd_diff``, ``dse`` and ``weight`` where the scores are comparable."""
    ranked = table.index[table["reliable"].astype(bool) & table["elpd"].notna()] if "elpd" in table else []
    table["rank"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    for column in ("elpd_diff", "dse", "weight"):
        table[column] = np.nan
    if not len(ranked):
        table = table.sort_values([c for c in ("heldout_log_score", "loglik") if c in table], ascending=False)
        return table.drop(columns="_heldout_log_p", errors="ignore")
    order = table.loc[ranked, "elpd"].sort_values(ascending=False).index
    table.loc[order, "rank"] = np.arange(len(order))
    families = {"loo" if c in ("loo", "reloo") else c for c in table.loc[ranked, "criterion"]}
    compared = [n for n in order if n in scores]
    if len(compared) > 1:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Comparing LOO-CV to K-fold-CV")
            comparison = az.compare({n: scores[n] for n in compared}, round_to="none")
        table.loc[compared, ["elpd_diff", "dse"]] = comparison.loc[compared, ["elpd_diff", "dse"]].to_numpy()
        if len(families) == 1:
            table.loc[compared, "weight"] = comparison.loc[compared, "weight"].to_numpy()
        else:
            table.loc[compared, "note"] += "; no stacking weight: criteria differ (cv='kfold': one for all)"
    elif families == {"heldout"} and len(order) > 1:  # paired over the held-out situations
        best = table.loc[order[0], "_heldout_log_p"]
        for name in order:
            log_p = table.loc[name, "_heldout_log_p"]
            diff = np.where(log_p == best, 0.0, log_p - best)  # -inf against -inf: no difference
            dse = np.sqrt(diff.size * np.var(diff)) if np.isfinite(diff).all() else np.inf
            table.loc[name, ["elpd_diff", "dse"]] = diff.sum(), dse
    if len(order) == 1:  # the one ranked fit: no difference, all the weight
        table.loc[order, ["elpd_diff", "dse", "weight"]] = 0.0, 0.0, 1.0
    unranked = [n for n in table.index if n not in order]
    return table.loc[list(order) + unranked].drop(columns="_heldout_log_p", errors="ignore")
