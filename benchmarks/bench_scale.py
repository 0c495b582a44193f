"""Benchmark past one machine: minibatch ADVI at 10⁶–10⁷ situations, and the Dask MaxEnt dual.

* ``advi``: :func:`pymc_maxent.bayes.minibatch.fit_minibatch` on simulated MNL-2 and MXL-1
  (cross section: one situation per individual), 3 alternatives × 2 attributes, batch 1000,
  ``--iterations`` Adam steps. Each case runs in its own process; reported: time to simulate
  the data, time of the fit (model build + compile + ADVI + 1000 draws), the process's RSS
  with the data loaded, and the peak RSS during the fit (psutil, sampled every 20 ms), and the
  largest error of the posterior means against the truth.
* ``dask``: :func:`pymc_maxent.maxent.dask_backend.fit_maxent_dask` on a
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
    stop = peak_rss()
    t = time.perf_counter()
    fit = fit_minibatch(data, tier, batch_size=1000, n=iterations, draws=1000, random_seed=1)
    t_fit = time.perf_counter() - t
    peak = stop()
    names = [k for k in ("alpha", "beta", "mu", "sigma") if k in truth]
    err = max(float(np.abs(fit.mean(k) - truth[k]).max()) for k in names)
    return {"tier": tier, "N": n, "simulate_s": t_sim, "fit_s": t_fit, "rss_data_gb": rss_data,
            "peak_rss_fit_gb": peak, "max_abs_error": err, "converged": fit.converged,
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


def panel_case(n: int, iterations: int, seed: int = 0) -> dict:
    """Minibatch mixed logit on the electricity-like panel of ``n`` individuals (in this process)."""
    import logging
    import warnings

    from pymc_maxent.bayes.minibatch import fit_minibatch
    from pymc_maxent.simulate import simulate_electricity_panel

    logging.getLogger("pymc").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    t = time.perf_counter()
    data, spec, truth = simulate_electricity_panel(n_individuals=n, seed=seed)
    t_sim = time.perf_counter() - t
    stop = peak_rss()
    t = time.perf_counter()
    fit = fit_minibatch(data, spec, **PANEL_SETTINGS, n=iterations, random_seed=1)
    t_fit = time.perf_counter() - t
    out = {"N": n, "situations": data.n_situations, "simulate_s": t_sim, "fit_s": t_fit,
           "peak_rss_gb": stop(), "converged": fit.converged, "padded": fit.n_padded}
    for k in ("mu", "sigma"):
        out[k] = fit.mean(k).tolist()
        out[f"{k}_truth"] = np.asarray(truth[k]).tolist()
    return out


def peak_rss():
    """Start sampling this process's RSS every 20 ms; the returned function stops and gives the peak."""
    peak = [rss_gb()]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_gb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def stop():
        done.set()
        sampler.join()
        return max(peak[0], rss_gb())

    return stop


def nuts_case(seed: int = 0) -> dict:
    """The full NUTS posterior (``pmx.sample`` defaults) of the 361-individual panel."""
    import logging
    import warnings

    import pymc_maxent as pmx
    from pymc_maxent.simulate import simulate_electricity_panel

    logging.getLogger("pymc").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    data, spec, _ = simulate_electricity_panel(seed=seed)
    t = time.perf_counter()
    post = pmx.sample(pmx.build_model(data, spec), chains=2, random_seed=1, progressbar=False)["posterior"]
    out = {"fit_s": time.perf_counter() - t}
    for k in ("mu", "sigma"):
        out[k] = post[k].mean(("chain", "draw")).values.tolist()
        out[f"{k}_sd"] = post[k].std(("chain", "draw")).values.tolist()
    return out


def gradient_case(D: int, integration: str) -> dict:
    """ms per gradient of the minibatch log-density, ``D`` random components."""
    import pymc_maxent as pmx
    from pymc_maxent.bayes.minibatch import INTEGRATED_MODE, minibatch_model

    data, _ = pmx.simulate_choices("MXL-1", n_individuals=2000, n_situations=8, n_alternatives=4,
                                   n_attributes=D, seed=2)
    nodes = 3 if integration == "gauss-hermite" else None
    model, details = minibatch_model(data, "MXL-1", batch_size=PANEL_SETTINGS["batch_size"],
                                     integration=integration, nodes=nodes, random_seed=1)
    dlogp = model.compile_dlogp(mode=INTEGRATED_MODE)  # as fit_minibatch compiles its steps
    point = model.initial_point()
    dlogp(point)
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < 3.0:
        dlogp(point)
        reps += 1
    return {"D": D, "integration": integration, "nodes": details["n_nodes"],
            "ms": 1000 * (time.perf_counter() - t) / reps}


#: The minibatch mixed logit's settings in these rows (100 individuals a batch, 256 Sobol points).
PANEL_SETTINGS = {"batch_size": 100, "learning_rate": 0.02, "integration": "qmc", "nodes": 256, "draws": 1000}


def _case(name: str, *args) -> dict | None:
    out = subprocess.run([sys.executable, __file__, "--case", name, *map(str, args)], capture_output=True,
                         text=True)
    if out.returncode:
        print(f"  {name} {args} failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_panel(sizes, iterations, components):
    print(f"\nMinibatch mixed logit, electricity-like panel (6 normal random coefficients, 3% of individuals "
          f"with fewer situations): batch {PANEL_SETTINGS['batch_size']} individuals, "
          f"{PANEL_SETTINGS['nodes']} Sobol points, {iterations} Adam steps")
    nuts = _case("nuts") if 361 in sizes else None
    if nuts:
        print(f"NUTS (pmx.sample defaults, 2 chains), 361 individuals: {nuts['fit_s']:.1f} s")
    print(f"{'individuals':>11} {'situations':>10} {'simulate s':>10} {'fit s':>7} {'vs NUTS':>7} "
          f"{'peak RSS GB':>11} {'max|dmu|/sd':>11} {'max|dsigma|/sd':>14} {'max|mu-true|':>12} "
          f"{'max|sigma-true|':>15} {'conv':>5}")
    for n in sizes:
        r = _case("panel", n, iterations)
        if r is None:
            continue
        vs = dmu = dsd = ""
        if nuts and n == 361:
            vs = f"{r['fit_s'] / nuts['fit_s']:.2f}x"
            dmu = f"{np.max(np.abs(np.subtract(r['mu'], nuts['mu'])) / nuts['mu_sd']):.2f}"
            dsd = f"{np.max(np.abs(np.subtract(r['sigma'], nuts['sigma'])) / nuts['sigma_sd']):.2f}"
        err_mu = np.abs(np.subtract(r["mu"], r["mu_truth"])).max()
        err_sd = np.abs(np.subtract(r["sigma"], r["sigma_truth"])).max()
        print(f"{n:>11} {r['situations']:>10} {r['simulate_s']:>10.1f} {r['fit_s']:>7.1f} {vs:>7} "
              f"{r['peak_rss_gb']:>11.2f} {dmu:>11} {dsd:>14} {err_mu:>12.3f} {err_sd:>15.3f} "
              f"{str(r['converged']):>5}", flush=True)
    print("\nCost per gradient by random components (2000 individuals × 8 situations × 4 alternatives, "
          f"batch {PANEL_SETTINGS['batch_size']})")
    print(f"{'D':>3} {'qmc nodes':>9} {'qmc ms':>7} {'ms per D':>8} {'GH nodes':>8} {'GH ms':>8}")
    for D in components:
        q = _case("gradient", D, "qmc")
        g = _case("gradient", D, "gauss-hermite") if 3**D <= 10_000 else None
        if q is None:
            continue
        gh = (f"{g['nodes']:>8} {g['ms']:>8.1f}" if g else f"{'':>8} {'':>8}")
        print(f"{D:>3} {q['nodes']:>9} {q['ms']:>7.1f} {q['ms'] / D:>8.2f} {gh}", flush=True)


def run_dask(sizes):
    import dask.array as da
    import distributed

    import pymc_maxent as pmx
    from pymc_maxent.maxent.dask_backend import fit_maxent_dask

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
    parser.add_argument("--panel-sizes", type=int, nargs="*", default=[361, 10_000, 100_000])
    parser.add_argument("--panel-iterations", type=int, default=3000)
    parser.add_argument("--components", type=int, nargs="+", default=[2, 4, 6, 8])
    parser.add_argument("--skip-panel", action="store_true")
    parser.add_argument("--advi-case", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.advi_case:
        tier, n, iterations = args.advi_case
        print(json.dumps(advi_case(tier, int(n), int(iterations))))
        return
    if args.case:
        name, *rest = args.case
        cases = {"panel": lambda n, it: panel_case(int(n), int(it)), "nuts": nuts_case,
                 "gradient": lambda D, how: gradient_case(int(D), how)}
        print(json.dumps(cases[name](*rest)))
        return
    if not args.skip_panel:
        run_panel(args.panel_sizes, args.panel_iterations, args.components)
    if not args.skip_advi:
        run_advi(args.advi_sizes, args.iterations)
    if not args.skip_dask:
        run_dask(args.dask_sizes)


if __name__ == "__main__":
    main()
