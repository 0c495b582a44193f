"""One model-selection table across tiers and estimators."""

from __future__ import annotations

from collections.abc import Mapping

import arviz as az
import numpy as np
import pandas as pd
from scipy.special import entr

from pymc_maxent.bayes.sample import INDIVIDUAL_LOG_LIKELIHOOD
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import ChoiceDataError

#: Pareto k above which PSIS-LOO's estimate for an observation is unreliable.
PARETO_K_BAD = 0.7


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


def _heldout_scores(p, test: ChoiceData) -> dict[str, float]:
    """Log score (sum and mean) and hit rate of predicted probabilities ``p`` on ``test``."""
    p = np.asarray(p)
    chosen = p[np.arange(test.n_situations), test.chosen]
    with np.errstate(divide="ignore"):
        log_score = float(np.log(chosen).sum())
    return {"heldout_log_score": log_score, "heldout_log_score_mean": log_score / test.n_situations,
            "heldout_hit_rate": float((p.argmax(axis=1) == test.chosen).mean())}


def fitted_probabilities(fit, data: ChoiceData | None = None) -> np.ndarray:
    """Mean choice probabilities (situation, alternative) over the fit's samples: the posterior
    mean of ``p``, or ``p`` at the MaxEnt estimate."""
    ev = fit.evaluator() if data is None else fit.evaluator(data)
    return np.tensordot(ev.weights, ev.evaluate(), axes=1)


def _row(fit, data: ChoiceData, test: ChoiceData | None, random_seed) -> dict:
    row = fit.parameter_count() | {"estimator": fit.estimator, "loglik": fit.lppd()}
    loo = fit.loo()
    if loo is not None:
        elpd, level = loo
        row |= {"elpd_loo": float(elpd.elpd), "elpd_loo_se": float(elpd.se), "p_loo": float(elpd.p),
                "loo_level": level, "pareto_k_bad": int((np.asarray(elpd.pareto_k) > PARETO_K_BAD).sum())}
    row["information_index"] = 1.0 - _normalized_entropy(fitted_probabilities(fit, data), data.available)
    if test is not None:
        p_test = fit.predict(test, random_seed=random_seed)
        row |= _heldout_scores(p_test.mean(("chain", "draw")), test)
    return row


def model_selection(
    fits: Mapping[str, object],
    data: ChoiceData,
    test: ChoiceData | None = None,
    *,
    random_seed: int = 0,
) -> pd.DataFrame:
    """Tiers and estimators side by side, best first.

    Parameters
    ----------
    fits : mapping
        Name → :class:`~pymc_maxent.fit.Fit` (a :class:`~pymc_maxent.PosteriorFit` sampled with
        its log-likelihood, or a :class:`~pymc_maxent.MaxEntResult`), all fitted to ``data``.
    data : ChoiceData
        The data every model was fitted to.
    test : ChoiceData, optional
        Held-out situations (e.g. from :func:`split_by_individual`): adds the held-out log
        score (sum and mean per situation) and hit rate. Individuals absent from ``data`` are
        integrated over the population distribution.

    Returns
    -------
    DataFrame
        ``estimator``, ``parameters`` (population level), ``latent`` (individual and
        situation level), ``loglik`` (in-sample: the log pointwise predictive density of a
        posterior, the log-likelihood at the estimate for MaxEnt), PSIS-LOO ``elpd_loo``,
        ``elpd_loo_se``, ``p_loo``, ``loo_level`` (leave one *individual* out on panel data,
        where leaving one situation out of a mixed logit is unreliable), ``pareto_k_bad``
        (observations with Pareto k > 0.7), ``elpd_diff``, ``dse`` and stacking ``weight`` from
        :func:`arviz_stats.compare` (posteriors only), held-out scores, and the
        ``information_index`` ``1 − S(p̄)`` of the in-sample predicted probabilities.
        MaxEnt has no LOO (it is not a posterior): its rows rank by held-out log score.
        The models' containers hold ``data`` again afterwards.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.diagnostics import model_selection
    >>> data = pmx.load_travel_mode()
    >>> table = model_selection({"MaxEnt": pmx.fit_maxent(data)}, data)
    >>> table.loc["MaxEnt", "estimator"], int(table.loc["MaxEnt", "parameters"])
    ('maxent', 6)
    """
    rows = {name: _row(fit, data, test, random_seed) for name, fit in fits.items()}
    trees = {name: fit.to_datatree() for name, fit in fits.items() if "elpd_loo" in rows[name]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    levels = set(table.get("loo_level", pd.Series(dtype=object)).dropna())
    if len(trees) > 1 and len(levels) == 1:
        var = INDIVIDUAL_LOG_LIKELIHOOD if levels == {"individual"} else "chosen"
        compared = az.compare(trees, var_name=var, round_to="none")
        table = table.join(compared[["elpd_diff", "dse", "weight"]])
    order = [c for c in ("elpd_loo", "heldout_log_score", "loglik") if c in table]
    table = table.sort_values(order, ascending=False, na_position="last")
    first = ["estimator", "parameters", "latent", "loglik"]
    return table[first + [c for c in table.columns if c not in first]]
