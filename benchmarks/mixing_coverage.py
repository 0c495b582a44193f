"""Coverage of the learnt mixing distribution's intervals (issue 24, part 3): ``mu`` and ``sigma``
of the MaxEnt mixed logit (``individual_support="learn"``, the default) on simulated MXL-1
panels at realistic scales, with known truth.

Each simulation draws a panel of ``N`` individuals x ``T`` situations (3 alternatives, fixed
constants, ``x0`` a quality index of SD 0.25 with coefficient mean -10 and SD 2.5, ``x1`` a price
in the hundreds with mean -0.015 and SD 0.006), fits it, and checks whether the normal interval
``estimate ± z·se`` (Louis' observed information, and the sandwich ``se_robust``) covers the
truth, at the 50/80/94% levels. Prints per parameter: coverage, mean signed error in SEs, the
mean estimate over the truth, and how often the Laplace estimate was kept.

Usage: ``python benchmarks/mixing_coverage.py [--sims 200 --individuals 100 400 --situations 10]``
(about 2 s per simulation at N = 100 on two cores).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

import pymc_maxent as pmx
from pymc_maxent.diagnostics.counterfactuals import change_attribute

RESCALE = {"x0": (0.25, 0.0), "x1": (100.0, 300.0)}
MU, SIGMA = np.array([-2.5, -1.5]), np.array([0.625, 0.6])
ALPHA = np.array([0.5, -0.5])
LEVELS = (0.5, 0.8, 0.94)
NAMES = ("mu[x0]", "mu[x1]", "sigma[x0]", "sigma[x1]")


def panel(n_individuals: int, n_situations: int, seed: int):
    data, _ = pmx.simulate_choices("MXL-1", n_individuals=n_individuals, n_situations=n_situations,
                                   n_alternatives=3, n_attributes=2,
                                   truth={"alpha": ALPHA, "mu": MU, "sigma": SIGMA}, seed=seed)
    for attribute, (scale, shift) in RESCALE.items():
        data = change_attribute(data, attribute, scale=scale, shift=shift)
    scales = np.array([s for s, _ in RESCALE.values()])
    return data, np.concatenate([MU / scales, SIGMA / scales])


def run(n_individuals: int, n_situations: int, sims: int) -> pd.DataFrame:
    rows = []
    for sim in range(sims):
        data, truth = panel(n_individuals, n_situations, seed=10_000 + sim)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = pmx.fit_maxent(data, tier="MXL-1")
        table = fit.estimates().loc[list(NAMES)]
        for k, name in enumerate(NAMES):
            rows.append({"sim": sim, "parameter": name, "truth": truth[k],
                         "estimate": table.loc[name, "estimate"], "sd": table.loc[name, "sd"],
                         "se_robust": table.loc[name, "se_robust"],
                         "laplace": fit.mixing_stage.method == "laplace"})
    return pd.DataFrame(rows)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name, g in frame.groupby("parameter", sort=False):
        row = {}
        for se in ("sd", "se_robust"):
            z = (g["estimate"] - g["truth"]) / g[se]
            for level in LEVELS:
                row[f"{se} {level:.0%}"] = float((np.abs(z) <= stats.norm.ppf(0.5 + level / 2)).mean())
            row[f"{se} bias/se"] = float(z.mean())
        row["mean est/truth"] = float((g["estimate"] / g["truth"]).mean())
        row["laplace share"] = float(g["laplace"].mean())
        out[name] = row
    return pd.DataFrame(out).T


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--individuals", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--situations", type=int, default=10)
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200, "display.max_columns", 20)
    for n in args.individuals:
        start = time.perf_counter()
        frame = run(n, args.situations, args.sims)
        seconds = time.perf_counter() - start
        print(f"\nN = {n} individuals x {args.situations} situations, {args.sims} simulations, "
              f"{seconds:.0f} s (simulation SE of a 94% coverage: "
              f"{np.sqrt(0.94 * 0.06 / args.sims):.3f})")
        print(summary(frame).to_string(float_format=lambda v: f"{v:.3f}"), flush=True)


if __name__ == "__main__":
    main()
