"""Coverage of MaxEnt's standard errors across data sets simulated from a logit with known
coefficients, beside the conditional-logit MLE's and the shrinkage the default error support
implies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from pymc_maxent.arguments import require_count
from pymc_maxent.calibration.ranks import INTERVALS, SIM
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.maxent.estimator import MaxEntEstimator
from pymc_maxent.maxent.supports import default_error_support
from pymc_maxent.specification import centred_gram, resolve, tier_spec

#: GME as written (shrunk by its noise term), its bias-corrected centre (the one-step estimate
#: :meth:`~pymc_maxent.maxent.result.MaxEntResult.estimates` reports), and the conditional-logit MLE.
ESTIMATORS = ("gme", "corrected", "mle")
COVARIANCES = ("hessian", "sandwich")


def logit_truth(design: ChoiceData, *, scale: float = 1.5, asc: float = 1.0) -> dict[str, np.ndarray]:
    """Coefficients of a plain MNL-2 logit on ``design``'s scales: each attribute's coefficient
    ``±scale / sd(x)`` (alternating signs, the first negative: a price), constants spread over
    ``±asc`` (the reference, the last alternative, at 0)."""
    sd = np.array([design.X[..., k][design.available].std() for k in range(design.n_attributes)])
    signs = np.where(np.arange(design.n_attributes) % 2 == 0, -1.0, 1.0)
    return {"alpha": np.linspace(asc, -asc, design.n_alternatives - 1) if design.n_alternatives > 2
            else np.array([asc]), "beta": signs * scale / sd}


def simulate_logit(design: ChoiceData, alpha, beta, rng: np.random.Generator) -> ChoiceData:
    """``design`` with choices drawn from the MNL-2 logit ``U = α_j + x'β + Gumbel`` (the last
    alternative the reference)."""
    U = np.append(alpha, 0.0)[None, :] + design.X @ np.asarray(beta, dtype=float)
    U = np.where(design.available, U + rng.gumbel(size=U.shape), -np.inf)
    return ChoiceData.from_arrays(design.X, U.argmax(axis=1), available=design.available,
                                  individual=design.individual, individuals=design.individuals,
                                  alternatives=design.alternatives, attributes=design.attributes,
                                  check_identified=False)


def maxent_coverage(design: ChoiceData, n_sims: int = 200, *,
                    truth: Mapping[str, Sequence[float]] | None = None,
                    intervals: Sequence[float] = INTERVALS, random_seed: int = 0) -> xr.Dataset:
    """Coverage of MaxEnt's (GME, default error support) Hessian and sandwich intervals, those of
    its bias-corrected centre (what ``estimates()`` reports) and the conditional-logit MLE's
    (``error_support=None``), for the coefficients of a logit.

    Each simulation draws choices from the MNL-2 logit with coefficients ``truth`` on
    ``design`` and fits both estimators (each compiled once; the choices swapped in). The
    normal interval ``estimate ± z·se`` covers the truth or not, for each standard error.

    Parameters
    ----------
    design : ChoiceData
        Attributes and choice sets (its choices are not used).
    n_sims : int
        At least 10.
    truth : mapping, optional
        ``alpha`` (one per non-reference alternative; the last is the reference) and ``beta``
        (one per attribute); default :func:`logit_truth`.
    intervals : sequence of float
    random_seed : int

    Returns
    -------
    Dataset
        ``estimate``, ``se`` (dims ``sim``, ``estimator`` (``gme``, ``corrected``, ``mle``), ``covariance``
        (``hessian``, ``sandwich``) for ``se``, ``parameter``), ``truth`` (``parameter``),
        ``covered`` (``interval``, ``sim``, ``estimator``, ``covariance``, ``parameter``) and
        ``implied_estimate`` (``sim``, ``parameter``): the GME estimate that the default
        support's quadratic approximation predicts from the MLE, ``(H + P)⁻¹ H β̂_MLE``
        with ``H`` the MLE's information and ``P = F̃'F̃ / g`` the noise term's penalty
        (``g = 1.5 N``, Zellner's g-prior on the utility centred within situations). Attributes:
        ``converged`` (fits that met the solver's criterion) and ``n_situations``.

    Raises
    ------
    SpecificationError
        ``n_sims`` below 10, or ``truth`` of the wrong lengths.

    Examples
    --------
    >>> from pymc_maxent.calibration import calibration_design, maxent_coverage, maxent_coverage_summary
    >>> cover = maxent_coverage(calibration_design(200, 1), n_sims=10)  # doctest: +SKIP
    >>> maxent_coverage_summary(cover)[["coverage_94_hessian", "shrinkage"]]  # doctest: +SKIP
    """
    n_sims = require_count(n_sims, "n_sims", minimum=10)
    if truth is None:
        truth = logit_truth(design)
    truth = {k: np.asarray(v, dtype=float) for k, v in truth.items()}
    sizes = {"alpha": design.n_alternatives - 1, "beta": design.n_attributes}
    for name, size in sizes.items():
        if name not in truth or truth[name].shape != (size,):
            raise SpecificationError(f"truth[{name!r}] must hold {size} values (the {design.n_alternatives} "
                                     f"alternatives less the reference, or the attributes); got "
                                     f"{truth.get(name)!r}")
    # a spawned stream: default_rng(random_seed) would replay the uniforms of a design drawn with
    # the same seed, and the Gumbel noise would follow the attributes
    rng = np.random.default_rng(np.random.SeedSequence(random_seed).spawn(1)[0])
    first = simulate_logit(design, truth["alpha"], truth["beta"], rng)
    estimators = {"gme": MaxEntEstimator(first), "mle": MaxEntEstimator(first, error_support=None)}
    names = estimators["gme"].fit().parameter_names()
    by_name = {f"alpha[{a}]": v for a, v in zip(design.alternatives[:-1], truth["alpha"], strict=True)}
    by_name |= {f"beta[{x}]": v for x, v in zip(design.attributes, truth["beta"], strict=True)}
    true = np.array([by_name[n] for n in names])
    penalty = noise_penalty(design, names)
    estimate = np.empty((n_sims, len(ESTIMATORS), len(names)))
    se = np.empty((n_sims, len(ESTIMATORS), 2, len(names)))
    implied = np.empty((n_sims, len(names)))
    converged = np.empty(n_sims, dtype=bool)
    for s in range(n_sims):
        data = first if s == 0 else simulate_logit(design, truth["alpha"], truth["beta"], rng)
        fits = [estimators[e].fit(data, on_unidentified="warn") for e in ("gme", "mle")]
        converged[s] = all(f.converged and np.isfinite(f.cov).all() for f in fits)
        gme, mle = fits
        estimate[s] = gme.beta, gme.beta_corrected, mle.beta
        se[s] = (gme.se, gme.se_robust), (gme.se_corrected, gme.se_corrected_robust), (mle.se, mle.se_robust)
        # GME's estimate to second order, (H + P)⁻¹ H β̂_MLE, with H = cov_MLE⁻¹
        implied[s] = (np.linalg.solve(np.eye(len(names)) + mle.cov @ penalty, mle.beta)
                      if converged[s] else np.nan)
    coords = {SIM: np.arange(n_sims), "estimator": list(ESTIMATORS), "covariance": list(COVARIANCES),
              "parameter": names}
    ds = xr.Dataset(
        {"estimate": ((SIM, "estimator", "parameter"), estimate),
         "se": ((SIM, "estimator", "covariance", "parameter"), se),
         "truth": ("parameter", true),
         "implied_estimate": ((SIM, "parameter"), implied),
         "converged": (SIM, converged)},
        coords=coords, attrs={"converged": int(converged.sum()), "n_situations": design.n_situations})
    half = [stats.norm.ppf(0.5 + p / 2) * ds["se"] for p in intervals]
    ds["covered"] = xr.concat([abs(ds["estimate"] - ds["truth"]) <= h for h in half],
                              dim=pd.Index(list(intervals), name="interval"))
    return ds


def noise_penalty(design: ChoiceData, names: Sequence[str]) -> np.ndarray:
    """``F̃'F̃ / g``: the default error support's noise term to second order, on the MNL-2
    parameters ``names`` (``alpha[a]``, ``beta[x]``), with ``g = 1 / Var(u) = 1.5 N``."""
    resolved = resolve(tier_spec("MNL-2", design.attributes.tolist()), design)
    labels, gram, _ = centred_gram(resolved, design)
    as_named = [f"alpha[{label[4:-1]}]" if label.startswith("asc[") else f"beta[{label}]" for label in labels]
    order = [as_named.index(n) for n in names]
    g = 1.0 / np.var(default_error_support(design.n_situations))
    return gram[np.ix_(order, order)] / g


def maxent_coverage_summary(coverage: xr.Dataset) -> pd.DataFrame:
    """One row per (parameter, estimator): truth, mean estimate, bias in SEs, the coverage of
    each interval by the Hessian and sandwich SEs, and the measured shrinkage against the MLE (the slope
    ``Σ β̂_GME β̂_MLE / Σ β̂_MLE²`` over simulations: a ratio per simulation explodes where the
    truth is near 0) beside the one the default support implies (the same slope of its
    second-order estimate). Only simulations where both fits converged with finite standard
    errors count (``n_sims``; ``n_excluded`` the others).

    Parameters
    ----------
    coverage : Dataset
        From :func:`maxent_coverage`.

    Returns
    -------
    DataFrame
        Index (``parameter``, ``estimator``).
    """
    n_all = coverage.sizes[SIM]
    coverage = coverage.sel({SIM: coverage["converged"].values})
    n = coverage.sizes[SIM]
    if n == 0:
        raise SpecificationError(f"none of the {n_all} simulations converged with finite standard errors")

    def slope(estimate, mle):
        return float((estimate * mle).sum(SIM) / (mle**2).sum(SIM))

    rows = []
    for parameter in coverage["parameter"].values:
        one = coverage.sel(parameter=parameter)
        for estimator in ESTIMATORS:
            fit = one.sel(estimator=estimator)
            se = fit["se"].sel(covariance="hessian")
            row = {"parameter": parameter, "estimator": estimator, "truth": float(one["truth"]),
                   "mean": float(fit["estimate"].mean()),
                   "bias_se": float((fit["estimate"].mean() - one["truth"]) / se.mean()),
                   "sd_over_se": float(fit["estimate"].std() / se.mean())}
            for prob in fit["interval"].values:
                for cov in COVARIANCES:
                    row[f"coverage_{round(100 * prob)}_{cov}"] = float(
                        fit["covered"].sel(interval=prob, covariance=cov).mean())
            mle = one["estimate"].sel(estimator="mle")
            row["shrinkage"] = slope(fit["estimate"], mle)
            # the default support's second-order shrinkage; the corrected centre and the MLE: none
            row["implied_shrinkage"] = slope(one["implied_estimate"], mle) if estimator == "gme" else 1.0
            row["n_sims"], row["n_excluded"] = n, n_all - n
            rows.append(row)
    return pd.DataFrame(rows).set_index(["parameter", "estimator"])
