"""Sampling time and divergences of every tier on its recovery-test data.

Run: ``.venv/bin/python benchmarks/bench_tiers.py [--sampler pymc|nutpie]``. Prints a table:
tier, data size, wall time (compile included), divergences, minimum bulk ESS over the
top-level parameters, and ESS per second.
"""

from __future__ import annotations

import argparse
import time

import arviz as az
import pandas as pd

import pymc_maxent as pmx
from pymc_maxent.bayes.priors import TOP_LEVEL_PARAMETERS
from pymc_maxent.simulate import RECOVERY_SIZES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sampler", default="pymc")
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    rows = []
    for tier, (I, T, J, K) in RECOVERY_SIZES.items():
        data, _ = pmx.simulate_choices(tier, n_individuals=I, n_situations=T, n_alternatives=J,
                                       n_attributes=K, seed=11)
        model = pmx.build_model(data, tier, store_probabilities=False)
        start = time.perf_counter()
        idata = pmx.sample(model, draws=args.draws, tune=700, chains=2, cores=1, random_seed=11,
                           progressbar=False, nuts_sampler=args.sampler,
                           compute_convergence_checks=False)
        seconds = time.perf_counter() - start
        # corr (its diagonal is 1) is not among these tiers' parameters
        names = [v for v in TOP_LEVEL_PARAMETERS if v in idata["posterior"] and v != "corr"]
        ess = float(az.ess(idata["posterior"].to_dataset()[names]).to_dataarray().min())
        rows.append({"tier": tier, "situations": data.n_situations, "individuals": I,
                     "alternatives": J, "attributes": K, "seconds": round(seconds, 1),
                     "divergences": int(idata["sample_stats"]["diverging"].sum()),
                     "min_ess_bulk": round(ess), "ess_per_s": round(ess / seconds, 1)})
    print(pd.DataFrame(rows).set_index("tier").to_string())


if __name__ == "__main__":
    main()
