"""The main job: the logit ladder and its MaxEnt twin on TravelMode, compared.

Run with ``python -m pymc_maxent.demo`` (``make demo``). ``PYMC_MAXENT_DRAWS`` sets the
draws per chain (default 500).
"""

from __future__ import annotations

import os
import time

import arviz as az
import pandas as pd
import pymc as pm

from pymc_maxent.bayes import build_model, sample, tier_table
from pymc_maxent.data import load_travel_mode
from pymc_maxent.diagnostics import (
    compare_estimates,
    compare_information,
    elasticities,
    model_selection,
    optimal_prices,
    posterior_information_gain,
    split_by_individual,
    willingness_to_pay,
)
from pymc_maxent.maxent import fit_maxent

TIERS = ("MNL-1", "MNL-2", "MXL-1")
REFERENCE = "car"
PRICE = "gc"  # generalized cost


def section(title: str, table: pd.DataFrame | str, digits: int = 4) -> None:
    text = table if isinstance(table, str) else table.round(digits).to_string()
    print(f"== {title}\n{text}\n")


def main(draws: int | None = None, seed: int = 1) -> dict[str, pd.DataFrame]:
    draws = draws or int(os.environ.get("PYMC_MAXENT_DRAWS", 500))
    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 30)
    data = load_travel_mode()
    train, test = split_by_individual(data, test_fraction=0.25, seed=seed)
    print(f"TravelMode: {data.dims}; fitted on {train.n_situations} situations, "
          f"{test.n_situations} held out (whole individuals)\n")
    section("tier ladder (parameter counts on TravelMode)", tier_table(data).drop(columns="description"))

    fits = {}
    for tier in TIERS:
        model = build_model(train, tier, reference=REFERENCE)
        start = time.perf_counter()
        idata = sample(model, draws=draws, tune=draws, chains=2, cores=1, random_seed=seed,
                       progressbar=False, nuts_sampler="pymc", compute_convergence_checks=False)
        names = [v for v in ("alpha", "beta", "mu", "sigma") if v in idata["posterior"]]
        summary = az.summary(idata, var_names=names, kind="all", ci_prob=0.94)
        section(f"{tier}: {time.perf_counter() - start:.1f} s, "
                f"{int(idata['sample_stats']['diverging'].sum())} divergences",
                summary[["mean", "sd", "eti94_lb", "eti94_ub", "ess_bulk", "r_hat"]])
        fits[tier] = (model, idata)

    # MNL-2 under the Zellner g-prior that GME's default noise term amounts to (g = 1.5 N)
    model = build_model(train, "MNL-2", reference=REFERENCE, g_prior="gme")
    fits["MNL-2 g-prior"] = (model, sample(model, draws=draws, tune=draws, chains=2, cores=1,
                                           random_seed=seed, progressbar=False, nuts_sampler="pymc",
                                           compute_convergence_checks=False))

    start = time.perf_counter()
    maxent = fit_maxent(train, reference=REFERENCE)  # attribute sums + shares: MNL-2's twin
    section(f"MaxEnt (GME, default error support): {time.perf_counter() - start:.2f} s\n{maxent!r}",
            maxent.summary())
    fits["MaxEnt"] = maxent

    tables = {
        "comparison": compare_estimates(fits["MNL-2"][1], maxent),
        "comparison_g_prior": compare_estimates(fits["MNL-2 g-prior"][1], maxent),
        "selection": model_selection(fits, train, test, random_seed=seed),
    }
    section("posterior (MNL-2) vs MaxEnt; difference in posterior SDs", tables["comparison"])
    section("posterior (MNL-2 under the GME g-prior) vs MaxEnt", tables["comparison_g_prior"])
    tables |= analysis(fits, seed)
    section("model selection (best first; LOO per situation on this cross-section, Pareto k > 0.7 "
            "marks unreliable PSIS; held-out scores on the held-out individuals)", tables["selection"], 3)
    return tables


def analysis(fits, seed: int) -> dict[str, pd.DataFrame]:
    """Information gain, elasticities, willingness to pay and the revenue-maximising price of air,
    from MNL-2's posterior and from MaxEnt."""
    model, idata = fits["MNL-2"]
    maxent = fits["MaxEnt"]
    prior = pm.sample_prior_predictive(draws=1000, model=model, random_seed=seed)
    tables = {
        "parameter_information": posterior_information_gain(idata, prior, random_seed=seed),
        "choice_information": compare_information(fits, random_seed=seed),
    }
    section("MNL-2: KL(posterior || prior) per parameter", tables["parameter_information"], 3)
    section("information gain on the choice probabilities, KL(predicted || uniform) per situation",
            tables["choice_information"], 3)

    E = elasticities((model, idata), PRICE)
    E_maxent = elasticities(maxent, PRICE)
    tables["elasticities"] = E.mean(("chain", "draw")).to_pandas()
    tables["elasticities_maxent"] = E_maxent["estimate"].to_pandas()
    section(f"MNL-2 aggregate elasticities of demand (rows) to {PRICE} (columns), posterior mean",
            tables["elasticities"], 3)
    section(f"MaxEnt aggregate elasticities to {PRICE} (delta-method SEs below)",
            tables["elasticities_maxent"].round(3).astype(str) + " ± "
            + E_maxent["se"].to_pandas().round(3).astype(str))

    wtp = willingness_to_pay((model, idata), PRICE, ["ttme"]).isel(individual=0).sel(alternative=REFERENCE)
    wtp_maxent = willingness_to_pay(maxent, PRICE, ["ttme"]).isel(individual=0).sel(alternative=REFERENCE)
    band = wtp.quantile([0.03, 0.97], dim=("chain", "draw"))
    tables["wtp"] = pd.DataFrame({
        "MNL-2 mean": wtp.mean(("chain", "draw")).to_pandas(),
        "MNL-2 eti94_lb": band.sel(quantile=0.03).to_pandas(),
        "MNL-2 eti94_ub": band.sel(quantile=0.97).to_pandas(),
        "MaxEnt": wtp_maxent["estimate"].to_pandas(), "MaxEnt se": wtp_maxent["se"].to_pandas(),
    })
    section(f"willingness to pay ({PRICE} units per unit of attribute)", tables["wtp"], 3)

    rows = {}
    for name, fit in (("MNL-2", (model, idata)), ("MaxEnt", maxent)):
        opt = optimal_prices(fit, PRICE, "air", bounds=(0.5, 2.0))
        rows[name] = {"air price multiplier": opt.x[0], "revenue": opt.revenue,
                      "revenue at status quo": opt.revenue_observed, "converged": opt.success}
    tables["pricing"] = pd.DataFrame.from_dict(rows, orient="index")
    section(f"revenue-maximising {PRICE} of air (multiplier of observed prices, expected revenue)",
            tables["pricing"], 3)
    return tables


if __name__ == "__main__":
    main()
