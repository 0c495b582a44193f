"""Benchmark past one machine: minibatch ADVI at 10⁶–10⁷ situations, and the Dask MaxEnt dual.

* ``advi``: :func:`pymc_maxent.bayes.minibatch.fit_minibatch` on simulated MNL-2 and MXL-1
  (cross section: one situation per individual), 3 alternatives × 2 attributes, batch 1000,
  ``--iterations`` Adam steps. Each case runs in its own process; reported: time to simulate
  the data, time of the fit (model build + compile + ADVI + 1000 draws), the process's RSS
  with the data loaded, and the peak RSS during the fit (psutil, sampled every 20 ms), and the
  largest error of the posterior means against the truth.
* ``dask``: :func:`pymc_maxent.maxent.distributed.fit_maxent_dask` on a
  ``LocalCluster(n_workers=2, threads_per_worker=1)`` against the in-memory
  :func:`pymc_maxent.fit_maxent` (default moments and error support), 5 alternatives ×
  4 attributes, blocks of 10⁵ situations: wall time of each fit (the Dask one twice: the
  first includes the workers' compilation; the blocks are persisted on the workers before, and
  that load is timed apart), and ``max |Δλ|``. The in-memory time includes its compilation
  (cached on disk after the first size).

Run: ``python benchmarks/bench_scale.py [--advi-sizes 1000000 10000000] [--dask-sizes 10000 100000
1000000] [--iterations 10000] [--skip-advi] [--skip-dask]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np


def rss_gb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**30


def advi_case(tier: str, n: int, iterations: int) -> dict:
    """One ADVI fit, in this process (called through a subprocess)."""
    import logging

    import pymc_maxent as pmx
    from pymc_maxent.bayes.minibatch import fit_minibatch

    logging.getLogger("pymc").setLevel(logging.WARNING)
    t = time.perf_counter()
    data, truth = pmx.simulate_choices(tier, n_individuals=n, n_alternatives=3, n_attributes=2, seed=7)
    t_sim = time.perf_counter() - t
    rss_data = rss_gb()
    peak = [rss_data]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_gb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    fit = fit_minibatch(data, tier, batch_size=1000, n=iterations, draws=1000, random_seed=1)
    t_fit = time.perf_counter() - t
    done.set()
    sampler.join()
    names = [k for k in ("alpha", "beta", "mu", "sigma") if k in truth]
    err = max(float(np.abs(fit.mean(k) - truth[k]).max()) for k in names)
    return {"tier": tier, "N": n, "simulate_s": t_sim, "fit_s": t_fit, "rss_data_gb": rss_data,
            "peak_rss_fit_gb": max(peak[0], rss_gb()), "max_abs_error": err, "converged": fit.converged,
            "nodes": fit.n_nodes}


def run_advi(sizes, iterations):
    print(f"\nMinibatch ADVI (batch 1000, {iterations} iterations, 1000 draws)")
    print(f"{'tier':6} {'N':>9} {'simulate s':>10} {'fit s':>7} {'RSS data GB':>11} {'peak RSS fit GB':>15} "
          f"{'max|err|':>8} {'conv':>5}")
    for n in sizes:
        for tier in ("MNL-2", "MXL-1"):
            out = subprocess.run([sys.executable, __file__, "--advi-case", tier, str(n), str(iterations)],
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"{tier:6} {n:>9} failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{tier:6} {n:>9} {r['simulate_s']:>10.1f} {r['fit_s']:>7.1f} {r['rss_data_gb']:>11.2f} "
                  f"{r['peak_rss_fit_gb']:>15.2f} {r['max_abs_error']:>8.3f} {str(r['converged']):>5}",
                  flush=True)


def run_dask(sizes):
    import dask.array as da
    import distributed

    import pymc_maxent as pmx
    from pymc_maxent.maxent.distributed import fit_maxent_dask

    print("\nMaxEnt dual: Dask map-reduce (LocalCluster 2 workers × 1 thread, blocks of 1e5) vs in memory")
    print(f"{'N':>9} {'in-memory s':>11} {'load s':>7} {'dask 1st s':>10} {'dask 2nd s':>10} "
          f"{'max|dlam|':>10} {'nit':>4}")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        for n in sizes:
            data, _ = pmx.simulate_choices("MNL-2", n_individuals=n, n_alternatives=5, n_attributes=4,
                                           seed=3)
            t = time.perf_counter()
            ref = pmx.fit_maxent(data)
            t_mem = time.perf_counter() - t
            rows = min(100_000, n)
            t = time.perf_counter()  # the blocks into the workers' memory, once
            arrays = client.persist([da.from_array(data.X, chunks=(rows, -1, -1)),
                                     da.from_array(data.available, chunks=rows),
                                     da.from_array(data.chosen, chunks=rows)])
            distributed.wait(arrays)
            t_load = time.perf_counter() - t
            times = []
            for _ in range(2):
                t = time.perf_counter()
                res = fit_maxent_dask(*arrays, alternatives=data.alternatives, attributes=data.attributes,
                                      client=client)
                times.append(time.perf_counter() - t)
            client.cancel(arrays)
            print(f"{n:>9} {t_mem:>11.2f} {t_load:>7.2f} {times[0]:>10.2f} {times[1]:>10.2f} "
                  f"{np.abs(res.lam - ref.lam).max():>10.1e} {res.nit:>4}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--advi-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--dask-sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--skip-advi", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--advi-case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.advi_case:
        tier, n, iterations = args.advi_case
        print(json.dumps(advi_case(tier, int(n), int(iterations))))
        return
    if not args.skip_advi:
        run_advi(args.advi_sizes, args.iterations)
    if not args.skip_dask:
        run_dask(args.dask_sizes)


if __name__ == "__main__":
    main()
