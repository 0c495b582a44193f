"""The main job: fit a few tiers of the logit ladder to TravelMode and compare them.

Run with ``python -m pymc_maxent.demo`` (``make demo``).
"""

from __future__ import annotations

import os
import time

import arviz as az
import pandas as pd

from pymc_maxent.bayes import build_model, sample, tier_table
from pymc_maxent.data import load_travel_mode
from pymc_maxent.maxent import fit_maxent

TIERS = ("MNL-1", "MNL-2", "MXL-1")


def main(draws: int | None = None, seed: int = 1) -> pd.DataFrame:
    draws = draws or int(os.environ.get("PYMC_MAXENT_DRAWS", 500))
    data = load_travel_mode()
    pd.set_option("display.width", 140)
    print(f"TravelMode: {data.dims}\n")
    print(tier_table(data).drop(columns="description").to_string(), "\n")
    rows = []
    for tier in TIERS:
        model = build_model(data, tier, reference="car", store_probabilities=False)
        start = time.perf_counter()
        idata = sample(model, draws=draws, tune=draws, chains=2, cores=1, random_seed=seed,
                       progressbar=False, nuts_sampler="pymc", compute_convergence_checks=False)
        seconds = time.perf_counter() - start
        names = [v for v in ("alpha", "beta", "mu", "sigma") if v in idata["posterior"]]
        summary = az.summary(idata, var_names=names, kind="all", ci_prob=0.94, round_to=4)
        print(f"== {tier}: {seconds:.1f} s, divergences "
              f"{int(idata['sample_stats']['diverging'].sum())}")
        print(summary[["mean", "sd", "eti94_lb", "eti94_ub", "ess_bulk", "r_hat"]].to_string(), "\n")
        loo = az.loo(idata, var_name="chosen")
        rows.append({"tier": tier, "elpd_loo": loo.elpd, "se": loo.se, "p_loo": loo.p,
                     "pareto_k>0.7": int((loo.pareto_k > 0.7).sum()), "seconds": seconds})
    start = time.perf_counter()
    maxent = fit_maxent(data, reference="car")  # attribute sums + shares: MNL-2's MaxEnt twin
    print(f"== MaxEnt (GME, default error support): {time.perf_counter() - start:.1f} s")
    print(repr(maxent))
    print(maxent.summary().round(4).to_string(), "\n")
    table = pd.DataFrame(rows).set_index("tier")
    print("== model comparison (LOO; Pareto k > 0.7 marks situations where PSIS-LOO is unreliable)\n"
          + table.round(2).to_string())
    return table


if __name__ == "__main__":
    main()
