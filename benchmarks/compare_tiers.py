"""The posterior against MaxEnt, tier by tier, on a simulated panel and on TravelMode (issue 15).

For every tier, both estimators are fitted to the same training data and compared (at the mixed
tiers MaxEnt twice: the learnt pooling, the default, as ``maxent``, and the design note's fixed
rule as ``fixed``):

* ``pop max|d|/sd``: the largest difference between MaxEnt's population estimates and the
  posterior means, in posterior SDs (``alpha``, ``beta``; ``mu``, ``sigma`` at the mixed tiers,
  the learnt mixing distribution's; with the fixed rule, ``individual_support="fixed"``, the
  mean and SD of its individual estimates), and ``mu,sigma max|d|/sd`` over those alone;
* ``beta_i r``: the individual coefficients of MaxEnt and the posterior
  (:func:`~pymc_maxent.diagnostics.compare_individuals`: the smallest correlation over the
  random components);
* ``truth r``: on simulated data, the smallest correlation of each fit's ``beta_i`` with the
  true individual coefficients;
* held-out log score per situation: on situations held out within the training individuals
  (individual effects used) and on held-out individuals (the population only);
* ``KL_i``: the total individual information ``sum_i KL(p_i || p0_i)`` of each fit, in nats.

The simulated panel is an MXL-2 with realistic scales: ``x0`` a quality index of SD 0.25
(coefficient mean -10, SD 2.4) and ``x1`` a price in the hundreds (``100 x + 300``).

Usage: ``python benchmarks/compare_tiers.py [--individuals 150 --situations 20 --draws 500]``
(a few minutes per tier on two cores).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import pymc_maxent as pmx
from pymc_maxent import diagnostics as dx
from pymc_maxent.diagnostics.counterfactuals import change_attribute
from pymc_maxent.maxent import split_within_individuals

TIERS = ("MNL-1", "MNL-2", "MNL-3", "MXL-1", "MXL-2", "MXL-3", "MXL-4")
#: The simulated panel's truth on the simulator's standard-normal attributes (random constants
#: of alt0 and alt1, then x0 and x1); the attributes are rescaled afterwards (``rescaled_truth``).
MU = np.array([0.8, -0.5, -2.5, -1.5])
SIGMA = np.array([1.0, 1.0, 0.6, 0.6])
#: ``x → scale·x + shift`` per attribute: a choice set's common shift leaves the logit unchanged,
#: so the true coefficient is divided by the scale.
RESCALE = {"x0": (0.25, 0.0), "x1": (100.0, 300.0)}


def simulated_panel(n_individuals: int, n_situations: int, seed: int):
    """An MXL-2 panel at realistic scales, and its true individual coefficients (individual ×
    random component of the MXL-2 labels)."""
    data, truth = pmx.simulate_choices("MXL-2", n_individuals=n_individuals, n_situations=n_situations,
                                       n_alternatives=3, n_attributes=2, truth={"mu": MU, "sigma": SIGMA},
                                       seed=seed)
    theta = truth["theta"].copy()
    for k, (attribute, (scale, shift)) in enumerate(RESCALE.items()):
        data = change_attribute(data, attribute, scale=scale, shift=shift)
        theta[:, 2 + k] /= scale
    labels = ["asc[alt0]", "asc[alt1]", *RESCALE]
    return data, pd.DataFrame(theta, index=data.individuals, columns=labels)


def three_way_split(data, within: bool, seed: int):
    """Training data, situations held out within its individuals (None on a cross-section) and
    held-out individuals."""
    rest, new_individuals = dx.split_by_individual(data, 0.2, seed=seed)
    if not within:
        return rest, None, new_individuals
    train, test = split_within_individuals(rest, 0.25, seed=seed)
    return train, test, new_individuals


def log_score(fit, test) -> float:
    """Mean log probability of the chosen alternatives of ``test`` (the posterior predictive mean)."""
    if test is None:
        return np.nan
    p = fit.predict(test, random_seed=0).mean(("chain", "draw")).to_numpy()
    return float(np.log(p[np.arange(test.n_situations), test.chosen]).mean())


def truth_correlation(fit, truth: pd.DataFrame | None) -> float:
    if truth is None:
        return np.nan
    est = fit.individual_estimates()["estimate"].to_pandas()
    shared = [c for c in est.columns if c in truth.columns]
    return min(np.corrcoef(est[c], truth.loc[est.index, c])[0, 1] for c in shared)


def total_information(fit) -> float:
    return float(dx.individual_information_gain(fit)["kl_nats"].sum())


def compare_tier(tier: str, train, test, new_individuals, truth, draws: int, seed: int) -> dict:
    row = {"tier": tier}
    model = pmx.ChoiceModel(train, tier)
    start = time.perf_counter()
    posterior = model.fit(draws=draws, tune=draws, random_seed=seed, progressbar=False)
    row["bayes s"] = time.perf_counter() - start
    start = time.perf_counter()
    maxent = pmx.ChoiceModel(train, tier).fit(method="maxent")
    row["maxent s"] = time.perf_counter() - start
    mixed = tier.startswith("MXL")
    fits = {"bayes": posterior, "maxent": maxent}
    if mixed:  # the design note's fixed rule beside the learnt pooling (the default)
        fits["fixed"] = pmx.fit_maxent(train, tier=tier, individual_support="fixed")
    for name in ("maxent", "fixed") if mixed else ("maxent",):
        table = dx.compare_estimates(posterior, fits[name], var_names=("alpha", "beta", "mu", "sigma"))
        row[f"pop max|d|/sd {name}"] = float(table["difference_sd"].abs().max())
        if mixed:
            mixing = table.filter(regex=r"^(mu|sigma)\[", axis=0)
            row[f"mu,sigma max|d|/sd {name}"] = float(mixing["difference_sd"].abs().max())
    if mixed:
        for name in ("maxent", "fixed"):
            individuals = dx.compare_individuals(posterior, fits[name])
            row[f"beta_i r {name}"] = float(individuals["correlation"].min())
        for name, fit in fits.items():
            row[f"truth r {name}"] = truth_correlation(fit, truth)
            row[f"KL_i {name}"] = total_information(fit)
        row["mixing"] = maxent.mixing_stage.method
    for name, fit in fits.items():
        row[f"within {name}"] = log_score(fit, test)
        row[f"new ind. {name}"] = log_score(fit, new_individuals)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=150)
    parser.add_argument("--situations", type=int, default=20)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tiers", nargs="+", default=list(TIERS))
    parser.add_argument("--datasets", nargs="+", default=["simulated", "travel_mode"],
                        choices=["simulated", "travel_mode"])
    args = parser.parse_args(argv)
    pd.set_option("display.width", 250, "display.max_columns", 30)
    for dataset in args.datasets:
        if dataset == "simulated":
            data, truth = simulated_panel(args.individuals, args.situations, args.seed)
            within = True
        else:
            data, truth, within = pmx.load_travel_mode(), None, False
        train, test, new_individuals = three_way_split(data, within, args.seed)
        rows = []
        for tier in args.tiers:
            if dataset == "travel_mode" and tier == "MXL-4":
                continue  # one situation per individual: the situation level is the individual level
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows.append(compare_tier(tier, train, test, new_individuals, truth, args.draws, args.seed))
            print(f"{dataset} {tier}: {rows[-1]['bayes s']:.1f} s + {rows[-1]['maxent s']:.1f} s", flush=True)
        print(f"\n{dataset}: {train.n_individuals} training individuals, {train.n_situations} situations")
        print(pd.DataFrame(rows).set_index("tier").to_string(float_format=lambda v: f"{v:.3g}"))
        print(flush=True)


if __name__ == "__main__":
    main()
