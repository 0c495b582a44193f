"""Simulation-based calibration of every tier, and the coverage of MaxEnt's standard errors.

Run: ``make calibrate`` or ``.venv/bin/python benchmarks/calibrate.py [--sims 200] [--tiers MNL-2 MXL-1]
[--workers 2] [--output reports/calibration]``. For each tier (MNL-1 … MXL-4, a correlated MXL-1
and an MXL-1 with a negative-lognormal price coefficient) it prints a table: each top-level
parameter's uniformity p-values (χ² on binned ranks, ``pot_c``), the coverage of the 50% and 94%
central intervals, and the fits' convergence; then the MaxEnt table: coverage of the Hessian and
sandwich intervals of GME (default error support) and of the logit MLE, with the shrinkage the
support implies. With ``--output`` it writes each tier's DataTree (``<tier>.nc``), the tables
(``*.csv``) and the rank-histogram and ECDF-difference figures (``figures/``).

Designs: attributes on real scales (``price`` in the hundreds, ``time`` in minutes), 3
or 2 alternatives; small enough for ~200 simulations per tier in about an hour on two cores
(``--workers 2``); ``CONFIGS`` has the sizes and NUTS settings.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from pymc_maxent.calibration import (
    calibration_design,
    calibration_summary,
    maxent_coverage,
    maxent_coverage_summary,
    simulation_based_calibration,
)

#: Per configuration: the tier, its options, the design (individuals, situations each,
#: alternatives, attributes) and the NUTS settings.
CONFIGS = {
    "MNL-1": {"tier": "MNL-1", "design": (150, 1, 3, ("price", "time")), "tune": 300, "draws": 300},
    "MNL-2": {"tier": "MNL-2", "design": (150, 1, 3, ("price", "time")), "tune": 300, "draws": 300},
    "MNL-3": {"tier": "MNL-3", "design": (200, 1, 3, ("price",)), "tune": 300, "draws": 300},
    "MXL-1": {"tier": "MXL-1", "design": (25, 4, 3, ("price", "time")), "tune": 400, "draws": 300},
    "MXL-2": {"tier": "MXL-2", "design": (25, 4, 3, ("price",)), "tune": 400, "draws": 300},
    # alternative-specific random coefficients: two alternatives, and a price centred on 0 (an
    # uncentred one ties each individual's constant to their price coefficient a posteriori:
    # 40 s per MXL-3 fit with ESS near 30)
    "MXL-3": {"tier": "MXL-3", "design": (20, 5, 2, ("price_change",)), "tune": 400, "draws": 300},
    # situation-level deviations: a funnel with sigma_situation, hence target_accept 0.9; a fit
    # on 15 x 4 with 400 + 300 steps took ~40 s under load, on 10 x 4 with 300 + 200 about 1 s
    "MXL-4": {"tier": "MXL-4", "design": (10, 4, 2, ("price_change",)), "tune": 300, "draws": 200,
              "sampler_kwargs": {"adaptation": "low_rank", "target_accept": 0.9}},
    "MXL-1 correlated": {"tier": "MXL-1", "correlated": True, "design": (25, 4, 3, ("price", "time")),
                         "tune": 400, "draws": 300},
    "MXL-1 lognormal": {"tier": "MXL-1", "random": {"price": "neg_lognormal"},
                        "design": (25, 4, 3, ("price", "time")), "tune": 400, "draws": 300},
}
MAXENT_DESIGNS = (100, 400)  # situations: small and moderate N


def calibrate(config: dict, sims: int, workers: int, seed: int):
    I, T, J, attributes = config["design"]
    design = calibration_design(I, T, J, attributes=attributes, seed=seed)
    options = {k: config[k] for k in ("correlated", "random", "sampler_kwargs") if k in config}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tree = simulation_based_calibration(config["tier"], design, sims, draws=config["draws"],
                                            tune=config["tune"], n_workers=workers, random_seed=seed,
                                            progress=True, **options)
    notes = list(dict.fromkeys(str(w.message) for w in caught if "calibration" in str(w.message)))
    return design, tree, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sims", type=int, default=200, help="simulations per tier (default 200)")
    parser.add_argument("--tiers", nargs="*", default=list(CONFIGS), help=f"among {list(CONFIGS)}")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--maxent-sims", type=int, default=None, help="MaxEnt simulations (default --sims)")
    parser.add_argument("--no-maxent", action="store_true", help="skip the MaxEnt coverage table")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--output", type=Path, default=None, help="folder for DataTrees, tables, figures")
    args = parser.parse_args()
    unknown = [t for t in args.tiers if t not in CONFIGS]
    if unknown:
        parser.error(f"unknown tiers {unknown}; choose from {list(CONFIGS)}")
    pd.set_option("display.width", 200)
    if args.output:
        (args.output / "figures").mkdir(parents=True, exist_ok=True)
    overview = []
    for name in args.tiers:
        config = CONFIGS[name]
        start = time.perf_counter()
        design, tree, notes = calibrate(config, args.sims, args.workers, args.seed)
        seconds = time.perf_counter() - start
        table = calibration_summary(tree)
        stats = tree["sample_stats"].to_dataset()
        I, T, J, attributes = config["design"]
        print(f"\n{name}: {I} individuals x {T} situations, {J} alternatives, attributes {list(attributes)}; "
              f"{tree['pit'].sizes['sim']} simulations fitted in {seconds:.0f} s "
              f"(nutpie, {tree.attrs['chains']} chains x {config['tune']} tune + {config['draws']} draws)")
        shown = table[["p_chi2", "p_pot_c", "coverage_50", "coverage_94"]]
        print(shown.round(3).to_string())
        print(f"  fits: divergent {int((stats['divergences'] > 0).sum())}, R-hat > 1.01 "
              f"{int((stats['max_rhat'] > 1.01).sum())}, "
              f"median thinned draws {int(stats['n_draws'].median())}, "
              f"failed {tree.attrs['n_failed']}; MC s.e. of a coverage: "
              f"{table['mcse_50'].iloc[0]:.3f} (50%), {table['mcse_94'].iloc[0]:.3f} (94%)")
        for note in notes:
            print(f"  warning: {note}")
        overview.append({"config": name, "parameters": len(table), "min_p_chi2": table["p_chi2"].min(),
                         "min_p_pot_c": table["p_pot_c"].min(), "coverage_50": table["coverage_50"].mean(),
                         "coverage_94": table["coverage_94"].mean(), "seconds": round(seconds)})
        if args.output:
            save(args.output, name, tree, table)
    if overview:
        print("\nOverview (coverage: mean over the tier's parameters)")
        print(pd.DataFrame(overview).set_index("config").round(3).to_string())
    if not args.no_maxent:
        maxent_table(args.maxent_sims or args.sims, args.seed, args.output)


def maxent_table(sims: int, seed: int, output: Path | None) -> None:
    for n in MAXENT_DESIGNS:
        start = time.perf_counter()
        coverage = maxent_coverage(calibration_design(n, 1, 3, seed=seed), sims, random_seed=seed)
        table = maxent_coverage_summary(coverage)
        print(f"\nMaxEnt (GME, default support ±1/√N) and logit MLE: {n} situations, 3 alternatives, "
              f"price and time; {sims} simulations ({coverage.attrs['converged']} converged), "
              f"{time.perf_counter() - start:.0f} s")
        print(table.drop(columns="n_sims").round(3).to_string())
        if output:
            table.to_csv(output / f"maxent_{n}.csv")


def save(output: Path, name: str, tree, table) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from pymc_maxent.plots import plot_ecdf_difference, plot_rank_histogram

    stem = name.replace(" ", "_")
    tree.to_netcdf(output / f"{stem}.nc")
    table.to_csv(output / f"{stem}.csv")
    plot_rank_histogram(tree).savefig(output / "figures" / f"{stem}_ranks.png", dpi=90)
    plot_ecdf_difference(tree).savefig(output / "figures" / f"{stem}_ecdf.png", dpi=90)


if __name__ == "__main__":
    main()
