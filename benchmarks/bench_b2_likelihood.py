"""B2: log-likelihood + gradient evaluations per second, every tier, at B1's realistic size.

Data: B1's electricity design (361 individuals, up to 12 situations each, 4 alternatives, 6
attributes). Every tier is built over the six attributes (normal random components); each
cell times ``(Σ_n ℓ_n, ∂/∂(α, β, θ))`` at a random point, the likelihood term alone:

- ``fused``: the builder's likelihood, :class:`~pymc_maxent.bayes.likelihood.ChoiceLogLikelihood`
  and its pullback (PyTensor's numba backend: what nutpie and PyMC's NUTS run);
- ``graph``: the graph formulation of the same function
  (:func:`~pymc_maxent.bayes.likelihood.reference_outputs`, the Op's reference and the
  likelihood the builder used before), PyTensor's numba backend;
- ``jax``: the graph formulation jitted by JAX (what numpyro/blackjax run; needs the ``bench`` extra);
- ``numba_ref``: a hand-written numba function, the throughput limit (generic coefficients
  only: MNL-1 and MXL-1): one loop per situation, libm's ``exp``;
- ``max_err``: the largest difference between ``fused`` and ``graph`` (value and gradient).

Run: ``.venv/bin/python benchmarks/bench_b2_likelihood.py [--seconds 1.0]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import numba
import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt

import pymc_maxent as pmx
from pymc_maxent.bayes.build import utility_layout
from pymc_maxent.bayes.likelihood import ChoiceLogLikelihood, reference_outputs, register_jax
from pymc_maxent.simulate import simulate_electricity_panel
from pymc_maxent.specification import as_spec, resolve

TIERS = ["MNL-1", "MNL-2", "MNL-3", "MXL-1", "MXL-2", "MXL-3", "MXL-4"]


def best_rate(f, args, seconds):
    """Calls per second of ``f(*args)``: the best of 10 repeats of about ``seconds / 10``."""
    f(*args)
    best = 0.0
    for _ in range(10):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 10:
            f(*args)
            n += 1
        best = max(best, n / elapsed)
    return best


@numba.njit(cache=True)
def numba_reference(X, available, chosen, individual, theta):
    """``Σ ℓ`` and ``∂/∂θ`` (individual × attribute) of a logit with a generic coefficient per
    attribute and individual: a plain loop, as one writes it by hand."""
    N, J, K = X.shape
    grad = np.zeros_like(theta)
    total = 0.0
    u = np.empty(J)
    for n in range(N):
        i = individual[n]
        top = -np.inf
        for j in range(J):
            s = 0.0
            for k in range(K):
                s += X[n, j, k] * theta[i, k]
            u[j] = s if available[n, j] else -np.inf
            top = max(top, u[j])
        z = 0.0
        for j in range(J):
            u[j] = np.exp(u[j] - top)
            z += u[j]
        y = chosen[n]
        total += np.log(u[y] / z)
        for j in range(J):
            r = (1.0 if j == y else 0.0) - u[j] / z
            for k in range(K):
                grad[i, k] += r * X[n, j, k]
    return total, grad


def cell(data, tier, seconds, has_jax):
    spec = as_spec(tier, data.attributes.tolist())
    resolved = resolve(spec, data)
    layout = utility_layout(resolved)
    n_alpha, n_beta, n_theta = layout.sizes()
    situation_level = len(resolved.situation_components) > 0
    rows = data.n_situations if situation_level else data.n_individuals
    individual = np.arange(data.n_situations) if situation_level else data.individual
    if not n_theta:
        rows, individual = 1, np.zeros(data.n_situations, dtype=np.int64)
    rng = np.random.default_rng(1)
    values = [rng.normal(scale=0.3, size=n_alpha), rng.normal(scale=0.3, size=n_beta),
              rng.normal(scale=0.3, size=(rows, n_theta))]
    params = [pt.vector("alpha"), pt.vector("beta"), pt.matrix("theta")]
    args = [data.X, data.available, data.chosen, individual, *params]
    fused = ChoiceLogLikelihood(layout)(*args)[0].sum()
    graph = reference_outputs(layout, *args)[0].sum()
    outputs = {name: [v, *pytensor.grad(v, params, disconnected_inputs="ignore")]
               for name, v in (("fused", fused), ("graph", graph))}
    fns = {name: pytensor.function(params, out, trust_input=True) for name, out in outputs.items()}
    row = {"tier": tier, "parameters": n_alpha + n_beta + rows * n_theta}
    for name, fn in fns.items():
        row[name] = best_rate(fn, values, seconds)
    a, b = fns["fused"](*values), fns["graph"](*values)
    row["max_err"] = max(float(np.max(np.abs(x - y), initial=0.0)) for x, y in zip(a, b, strict=True))
    if has_jax:
        register_jax()
        f = pytensor.function(params, outputs["graph"], mode="JAX")
        row["jax"] = best_rate(f, values, seconds)
    if tier in ("MNL-1", "MXL-1"):  # generic coefficients only, no constants
        theta = values[2] if n_theta else values[1][None, :]
        ref_args = (data.X, data.available, data.chosen, individual, theta)
        row["numba_ref"] = best_rate(numba_reference, ref_args, seconds)
    return row


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per cell")
    parser.add_argument("--tiers", nargs="+", default=TIERS)
    args = parser.parse_args(argv)
    data, _, _ = simulate_electricity_panel(seed=20)
    has_jax = importlib.util.find_spec("jax") is not None
    rows = []
    for tier in args.tiers:
        rows.append(cell(data, tier, args.seconds, has_jax))
        print(rows[-1], file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).set_index("tier")
    table["fused/graph"] = table["fused"] / table["graph"]
    if "numba_ref" in table:
        table["fused/numba_ref"] = table["fused"] / table["numba_ref"]
    print(f"B2 likelihood + gradient evaluations per second (best of 10), {data.n_situations} "
          f"situations x {data.n_alternatives} alternatives x {data.n_attributes} attributes; load "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; pymc_maxent {pmx.__version__}")
    shown = table.copy()
    for c in ("fused", "graph", "jax", "numba_ref"):
        if c in shown:
            shown[c] = shown[c].round(0)
    for c in ("fused/graph", "fused/numba_ref"):
        if c in shown:
            shown[c] = shown[c].round(2)
    shown["max_err"] = shown["max_err"].map("{:.1e}".format)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.to_string(na_rep="-"))
    return table


if __name__ == "__main__":
    main()
