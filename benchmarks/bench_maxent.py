"""Benchmark of the MaxEnt (GME) dual: PyTensor graphs vs a minimal NumPy/SciPy L-BFGS dual.

Simulated conditional-logit data, N situations × J = 5 alternatives × K = 5 attributes, the
default moments (attribute sums and alternative shares: C = 9) and the default error support
(3 points on ±1/√N). For each N, in the same run:

* ``pytensor``: :class:`pymc_maxent.maxent.MaxEntEstimator` (compiled once: ``build``), then
  ``fit``: the whole fit (feasibility check, Newton / trust-region dual solve with the exact
  Hessian, primal recovery of p̂, ε̂, ŵ, both covariance matrices);
* ``numpy``: the same dual objective and gradient in plain NumPy on the full arrays,
  minimised with SciPy's L-BFGS-B (no Hessian, no standard errors).

Time is wall-clock; peak memory is the tracemalloc peak during the fit (a second run), also
as a multiple of the ``X`` array. A last table compares the primal (trust-constr over all p and w)
with the dual at N = 200.

``--designs electricity`` (on by default): the realistic design of B1
(:func:`~pymc_maxent.simulate.simulate_electricity_panel`: 4 suppliers, prices 7/9 or 0
beside dummies, coefficients near −10; default moments, C = 9) and its situations repeated 10×
and 100× (panels of seeds 0 and 3), fitted by the damped Newton dual (default) and by the
former scaled trust region (``dual_method="trust-exact"``), beside B3's standard-normal design
at the same N: Newton
iterations, evaluations of the dual, time of the dual solve and of the whole fit, time per
situation and its ratio to B3's (goals: ≤ 8 iterations, within 1.5× of B3's time per situation).

Run: ``python benchmarks/bench_maxent.py [--sizes 10000 100000 1000000] [--designs b3 electricity]
[--tilings 1 10 100] [--seeds 0 3]``
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings

import numpy as np
from scipy import optimize

from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.maxent import MaxEntEstimator
from pymc_maxent.maxent.supports import default_error_support
from pymc_maxent.simulate import simulate_electricity_panel

J, K = 5, 5


def simulate(N: int, seed: int = 0) -> ChoiceData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, J, K))
    beta = rng.uniform(-1.0, 1.0, K)
    asc = np.append(rng.uniform(-1.0, 1.0, J - 1), 0.0)
    chosen = (X @ beta + asc + rng.gumbel(size=(N, J))).argmax(axis=1)
    return ChoiceData.from_arrays(X, chosen, check_identified=False)


def tile_situations(data: ChoiceData, reps: int) -> ChoiceData:
    """``data``'s situations repeated ``reps`` times, each copy with its own individuals."""
    n_ind = data.n_individuals
    individual = np.concatenate([data.individual + r * n_ind for r in range(reps)])
    return ChoiceData.from_arrays(
        np.tile(data.X, (reps, 1, 1)), np.tile(data.chosen, reps),
        available=np.tile(data.available, (reps, 1)), individual=individual,
        individuals=np.arange(reps * n_ind), alternatives=data.alternatives, attributes=data.attributes,
        check_identified=False,
    )


def timed_fit(data: ChoiceData, methods=("newton", "trust-exact")) -> dict:
    """``{method: (fit s, dual-solve s, Newton iterations, evaluations, converged, residual, lam)}``."""
    est = MaxEntEstimator(data)
    solve, timing = est.dual.solve, {}

    def timed_solve(*args, **kwargs):
        t = time.perf_counter()
        sol = solve(*args, **kwargs)
        timing["solve"], timing["sol"] = time.perf_counter() - t, sol
        return sol

    est.dual.solve = timed_solve
    out = {}
    for method in methods:
        gc.collect()
        t = time.perf_counter()
        res = est.fit(dual_method=method)
        sol = timing["sol"]
        out[method] = (time.perf_counter() - t, timing["solve"], sol.nit, sol.nfev, res.converged,
                       sol.residual, sol.lam)
    return out


def electricity_rows(tilings, seeds=(0, 3)):
    """B3 rows on the electricity design (one panel per seed) and its tilings, each beside
    B3's design at the same N (at the first seed's N)."""
    print("MaxEnt dual on the electricity design (J = 4, C = 9, ~4,300 situations per panel) tiled, "
          "against B3's standard-normal design (J = 5, C = 9) at the same N")
    head = (f"{'design':>16} {'N':>8} {'method':>11} | {'it':>3} {'evals':>5} {'solve s':>7} {'fit s':>6} "
            f"{'us/sit':>7} {'vs B3':>6} | {'conv':>5} {'residual':>8} {'max|dlam|':>9}")
    print(head)
    print("-" * len(head))
    panels = {seed: simulate_electricity_panel(seed=seed)[0] for seed in seeds}
    for reps in tilings:
        b3 = None
        for seed, base in panels.items():
            data = tile_situations(base, reps)
            N = data.n_situations
            if b3 is None:
                b3 = (N, timed_fit(simulate(N), methods=("newton",))["newton"])
            fits = timed_fit(data)
            newton_lam = fits["newton"][6]
            rows = [(f"electric s{seed} x{reps}", N, m, *fits[m]) for m in ("newton", "trust-exact")]
            if seed == seeds[-1]:
                rows.append(("B3", b3[0], "newton", *b3[1]))
            for label, n, method, fit_s, solve_s, nit, nfev, conv, resid, lam in rows:
                dlam = np.abs(lam - newton_lam).max() if label != "B3" else np.nan
                ratio = (fit_s / n) / (b3[1][0] / b3[0])
                print(f"{label:>16} {n:>8d} {method:>11} | {nit:>3d} {nfev:>5d} {solve_s:>7.2f} "
                      f"{fit_s:>6.2f} {fit_s / n * 1e6:>7.2f} {ratio:>5.2f}x | {conv!s:>5} {resid:>8.1e} "
                      f"{dlam:>9.1e}")
            del data, fits
            gc.collect()
    print("it: Newton (trust-region) iterations; evals: passes over the data; fit: dual solve, primal, "
          "both covariances; vs B3: time per situation of the fit over B3's at the same N; "
          "max|dlam|: against the Newton multipliers")
    print()


def numpy_dual(data: ChoiceData, tol: float = 1e-10):
    """Minimal NumPy/SciPy dual: same objective (attribute sums + shares, default support)."""
    X, y = data.X, data.chosen_onehot
    N = X.shape[0]
    u = default_error_support(N)
    m = np.concatenate([np.einsum("ijk,ij->k", X, y), y.sum(axis=0)[: J - 1]])
    scale = N * 10.0

    def dual(lam):
        eta = X @ lam[:K]
        eta[:, : J - 1] += lam[K:]
        a = -eta - (-eta).max(axis=1, keepdims=True)
        p = np.exp(a)
        omega = p.sum(axis=1, keepdims=True)
        p /= omega
        log_omega = np.log(omega[:, 0]) + (-eta).max(axis=1) - np.log(J)
        b = -eta[..., None] * u  # (N, J, H)
        bmax = b.max(axis=-1, keepdims=True)
        w = np.exp(b - bmax)
        psi = w.sum(axis=-1, keepdims=True)
        w /= psi
        log_psi = np.log(psi[..., 0]) + bmax[..., 0] - np.log(u.size)
        e = w @ u
        q = p + e
        value = lam @ m + log_omega.sum() + log_psi.sum()
        grad = m - np.concatenate([np.einsum("ijk,ij->k", X, q), q.sum(axis=0)[: J - 1]])
        return value / scale, grad / scale

    res = optimize.minimize(dual, np.zeros(K + J - 1), jac=True, method="L-BFGS-B",
                            options={"gtol": tol, "ftol": 1e-15, "maxiter": 500})
    return res


def measure(fn):
    """``(seconds, result)``, then the tracemalloc peak (bytes) of a second call."""
    gc.collect()
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    del out
    gc.collect()
    tracemalloc.start()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak, out


def main(sizes, designs=("b3", "electricity"), tilings=(1, 10, 100), seeds=(0, 3)):
    warnings.simplefilter("ignore")
    if "electricity" in designs:
        electricity_rows(tilings, tuple(seeds))
    if "b3" not in designs:
        return
    rows = []
    for N in sizes:
        data = simulate(N)
        x_mb = data.X.nbytes / 2**20
        t = time.perf_counter()
        est = MaxEntEstimator(data)
        build = time.perf_counter() - t
        t_pt, mem_pt, res = measure(est.fit)
        t_np, mem_np, npres = measure(lambda data=data: numpy_dual(data))
        beta_np = -npres.x
        rows.append((N, x_mb, build, t_pt, res.nit, mem_pt / 2**20, t_np, npres.nit, mem_np / 2**20,
                     t_np / t_pt, np.abs(beta_np - res.beta).max(), res.converged))
        del est, res, data
        gc.collect()

    print(f"MaxEnt dual, J = {J}, K = {K}, C = {K + J - 1} moments, default error support")
    head = (f"{'N':>9} {'X MB':>7} | {'build s':>7} {'fit s':>6} {'it':>3} {'peak MB':>8} {'xX':>5} | "
            f"{'numpy s':>7} {'it':>3} {'peak MB':>8} {'xX':>5} | {'speed-up':>8} {'max|dβ|':>8} "
            f"{'conv':>5}")
    print(head)
    print("-" * len(head))
    for N, x_mb, build, t_pt, it_pt, m_pt, t_np, it_np, m_np, speed, d, conv in rows:
        print(f"{N:>9d} {x_mb:>7.0f} | {build:>7.2f} {t_pt:>6.2f} {it_pt:>3d} {m_pt:>8.0f} "
              f"{m_pt / x_mb:>5.2f} | {t_np:>7.2f} {it_np:>3d} {m_np:>8.0f} {m_np / x_mb:>5.2f} | "
              f"{speed:>7.1f}x {d:>8.1e} {conv!s:>5}")
    if len(rows) > 1:
        print("time per situation, pytensor fit: "
              + ", ".join(f"N={r[0]}: {r[3] / r[0] * 1e6:.2f} us" for r in rows))

    # the primal at N = 200 against the dual
    data = simulate(200, seed=1)
    est = MaxEntEstimator(data)
    t = time.perf_counter()
    dual = est.fit()
    t_dual = time.perf_counter() - t
    t = time.perf_counter()
    primal = est.fit(solver="primal")
    t_primal = time.perf_counter() - t
    n_unknowns = data.available.sum() * (1 + 3)
    print()
    print(f"primal vs dual at N = 200 (J = {J}, K = {K}; primal unknowns: {n_unknowns})")
    print(f"{'solver':>7} {'time s':>8} {'it':>5} {'max violation':>14} {'converged':>10}")
    print(f"{'dual':>7} {t_dual:>8.3f} {dual.nit:>5d} {dual.max_violation:>14.1e} {dual.converged!s:>10}")
    print(f"{'primal':>7} {t_primal:>8.3f} {primal.nit:>5d} {primal.max_violation:>14.1e} "
          f"{primal.converged!s:>10}")
    print(f"max |p_dual - p_primal| = {np.abs(dual.p - primal.p).max():.1e}, "
          f"max |beta_dual - beta_primal| = {np.abs(dual.beta - primal.beta).max():.1e}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--designs", nargs="+", choices=["b3", "electricity"], default=["b3", "electricity"])
    parser.add_argument("--tilings", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 3],
                        help="electricity panels (seed 3: one the trust region needed 20 iterations on)")
    args = parser.parse_args()
    main(args.sizes, args.designs, args.tilings, args.seeds)
