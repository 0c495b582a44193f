"""Benchmark B4: the individual stage of the MaxEnt mixed logit, linear in the number of individuals.

The electricity-panel design (:func:`~pymc_maxent.simulate.simulate_electricity_panel`:
4 suppliers, prices 7/9 cents or 0 beside dummies, coefficients near ±10 and SDs near 2), 10
situations per individual, MXL-1 with 5 normal random components (``pf, cl, loc, tod, seas``;
``wk`` left out of the model), at 10³, 10⁴ and 10⁵ individuals. Per size, in the same run:

* ``fit s``: the whole ``fit_maxent(data, tier=spec)`` (stage 1's population GME, compiled,
  the learnt mixing distribution (the default pooling), then stage 2; the separation LPs
  skipped);
* ``stage 2 s``: stage 2 alone, :func:`~pymc_maxent.maxent.stages.solve_groups` on the
  fitted problem again; ``µs/ind`` and ``× first``: its time per individual and that over the
  smallest size's (1.0 = linear in the number of individuals);
* ``peak MB``: the tracemalloc peak of stage 2 (a third call), and as a multiple of its
  features array ``G`` (``xG``);
* Newton iterations per individual (mean, max), individuals converged, the worst constraint
  violation.

Then the posterior of the same MXL-1 at the smallest size (NUTS, nutpie by default): sampling
time, and the ratio to the MaxEnt fit's time. ``--posterior-draws 0`` skips it.

Then the Dask path (:func:`~pymc_maxent.maxent.dask_backend.fit_mixed_maxent_dask`)
at ``--dask-sizes`` individuals on a ``LocalCluster(n_workers=2, threads_per_worker=1)``,
blocks of ``--dask-block`` situations (moved to individual boundaries), against the in-memory
row of the same size: time to persist the blocks on the workers, the Dask fit's stage 1
(population map-reduce) and stage 2 (one task per block: ``G``, ``ln p⁰`` and the individual
duals) and the whole fit, the in-memory fit and its stage 2, and ``max |Δβ_i|`` and the largest
relative difference of the SEs. ``--dask-sizes`` with no size skips it.

Run: ``python benchmarks/bench_b4_maxent_individual.py [--sizes 1000 10000 100000]
[--posterior-draws 500] [--sampler nutpie] [--dask-sizes 100000] [--dask-block 250000]``
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import time
import tracemalloc
import warnings

import numpy as np

import pymc_maxent as pmx
from pymc_maxent.maxent.stages import solve_groups
from pymc_maxent.simulate import simulate_electricity_panel

SITUATIONS = 10
LEFT_OUT = "wk"


def panel(n_individuals: int, seed: int = 0):
    data, spec, _ = simulate_electricity_panel(n_individuals, n_situations=SITUATIONS, short=0.0, seed=seed)
    coefficients = tuple(c for c in spec.coefficients if c.attribute != LEFT_OUT)
    return data, dataclasses.replace(spec, coefficients=coefficients, name="MXL-1")


def maxent_row(n_individuals: int, keep_fit: bool = False) -> dict:
    data, spec = panel(n_individuals)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        fit = pmx.fit_maxent(data, tier=spec, check_separation=False)
        fit_s = time.perf_counter() - start
    options = {"tol": fit.options["tol"], "maxiter": fit.options["maxiter"],
               "chunk_size": fit.options["individual_chunk"]}
    start = time.perf_counter()
    solution = solve_groups(fit.individual_problem, **options)
    stage2_s = time.perf_counter() - start
    gc.collect()
    tracemalloc.start()
    solve_groups(fit.individual_problem, **options)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"I": n_individuals, "R": fit.individual_problem.R, "fit_s": fit_s, "stage2_s": stage2_s,
            "us_per_ind": 1e6 * stage2_s / n_individuals, "peak_mb": peak / 2**20,
            "x_g": peak / fit.individual_problem.G.nbytes, "nit_mean": solution["nit"].mean(),
            "nit_max": solution["nit"].max(), "converged": int(solution["converged"].sum()),
            "violation": np.abs(solution["grad"]).max(),
            "delta_diff": float(np.abs(solution["delta"] - fit.delta).max()),
            "fit": fit if keep_fit else None}


def posterior_row(n_individuals: int, draws: int, sampler: str) -> dict:
    from pymc_maxent.bayes.sample import sample

    data, spec = panel(n_individuals)
    model = pmx.build_model(data, spec)
    start = time.perf_counter()
    idata = sample(model, draws=draws, tune=draws, chains=2, nuts_sampler=sampler, random_seed=1,
                   progressbar=False, idata_kwargs={"log_likelihood": False})
    seconds = time.perf_counter() - start
    divergences = int(idata["sample_stats"]["diverging"].sum()) if "sample_stats" in idata.children else -1
    return {"seconds": seconds, "divergences": divergences}


def dask_row(n_individuals: int, block: int, reference: dict) -> dict:
    import dask.array as da
    import distributed

    from pymc_maxent.maxent.dask_backend import fit_mixed_maxent_dask

    data, spec = panel(n_individuals)
    fit = reference["fit"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        start = time.perf_counter()
        warnings.filterwarnings("ignore", message="Sending large graph")  # the data, sent once
        arrays = client.persist([da.from_array(data.X, chunks=(block, -1, -1)),
                                 da.from_array(data.available, chunks=block),
                                 da.from_array(data.chosen, chunks=block),
                                 da.from_array(data.individual, chunks=block)])
        distributed.wait(arrays)
        load_s = time.perf_counter() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            res = fit_mixed_maxent_dask(*arrays, tier=spec, alternatives=data.alternatives,
                                        attributes=data.attributes, individuals=data.individuals,
                                        client=client, check_separation=False)
            fit_s = time.perf_counter() - start
    finite = np.isfinite(fit.beta_individual_se)  # inf: a component the individual's data leave unidentified
    ref_se = fit.beta_individual_se[finite]
    se = np.abs(res.beta_individual_se[finite] - ref_se) / ref_se
    return {"I": n_individuals, "blocks": len(res.chunks), "load_s": load_s, "fit_s": fit_s,
            "stage1_s": res.seconds["population"], "stage2_s": res.seconds["individuals"],
            "memory_fit_s": reference["fit_s"], "memory_stage2_s": reference["stage2_s"],
            "beta": np.abs(res.beta_individual - fit.beta_individual).max(), "se": se.max(initial=0.0),
            "inf_se": f"{int((~finite).sum())}/{int((~np.isfinite(res.beta_individual_se)).sum())}",
            "converged": res.n_converged}


def main(sizes, posterior_draws: int, sampler: str, dask_sizes=(), dask_block: int = 250_000) -> None:
    rows = [maxent_row(n, keep_fit=n in dask_sizes) for n in sizes]
    first = rows[0]["us_per_ind"]
    print(f"B4: MaxEnt mixed logit, stage 2 (individual GCE), {SITUATIONS} situations x 4 alternatives x "
          f"{rows[0]['R']} random components")
    print(f"{'individuals':>11} | {'fit s':>7} {'stage 2 s':>9} {'µs/ind':>7} {'× first':>7} | "
          f"{'peak MB':>8} {'xG':>5} | {'it mean':>7} {'max':>4} {'converged':>10} {'max viol':>9}")
    for r in rows:
        print(f"{r['I']:>11} | {r['fit_s']:>7.2f} {r['stage2_s']:>9.3f} {r['us_per_ind']:>7.1f} "
              f"{r['us_per_ind'] / first:>7.2f} | {r['peak_mb']:>8.1f} {r['x_g']:>5.1f} | "
              f"{r['nit_mean']:>7.2f} {r['nit_max']:>4d} {r['converged']:>10d} {r['violation']:>9.1e}")
        if r["delta_diff"] > 1e-6:  # the fit's stage 2 starts from the mixing stage's solution
            print(f"   (stage 2 re-solved from δ = 0 differs from the fit's by up to {r['delta_diff']:.1e})")
    if posterior_draws > 0:
        post = posterior_row(sizes[0], posterior_draws, sampler)
        maxent = rows[0]["fit_s"]
        print(f"\nposterior of MXL-1 at {sizes[0]} individuals ({sampler}, 2 chains x {posterior_draws} "
              f"tune + {posterior_draws} draws): {post['seconds']:.1f} s, {post['divergences']} divergences; "
              f"MaxEnt fit {maxent:.2f} s: MaxEnt/posterior time {maxent / post['seconds']:.3g}")
    by_size = {r["I"]: r for r in rows}
    dask_rows = [dask_row(n, dask_block, by_size[n] if n in by_size else maxent_row(n, keep_fit=True))
                 for n in dask_sizes]
    if dask_rows:
        print(f"\nDask path (LocalCluster 2 workers x 1 thread, blocks of {dask_block} situations at "
              "individual boundaries) vs in memory, separation check off")
        print(f"{'individuals':>11} {'blocks':>6} | {'load s':>6} {'stage 1 s':>9} {'stage 2 s':>9} "
              f"{'fit s':>7} | {'mem fit s':>9} {'mem st.2 s':>10} | {'max|dbeta_i|':>12} "
              f"{'max rel dSE':>11} {'inf SE mem/dask':>15} {'converged':>9}")
    for r in dask_rows:
        print(f"{r['I']:>11} {r['blocks']:>6} | {r['load_s']:>6.2f} {r['stage1_s']:>9.2f} "
              f"{r['stage2_s']:>9.2f} {r['fit_s']:>7.2f} | {r['memory_fit_s']:>9.2f} "
              f"{r['memory_stage2_s']:>10.2f} | {r['beta']:>12.1e} {r['se']:>11.1e} {r['inf_se']:>15} "
              f"{r['converged']:>9d}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--posterior-draws", type=int, default=500)
    parser.add_argument("--sampler", default="nutpie")
    parser.add_argument("--dask-sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--dask-block", type=int, default=250_000)
    args = parser.parse_args()
    main(args.sizes, args.posterior_draws, args.sampler, args.dask_sizes, args.dask_block)
