"""B2: log-likelihood + gradient evaluations per second, every tier, at B1's size.

Data: B1's panel (360 individuals x 12 situations x 4 alternatives, 6 attributes); every
tier is built over all six attributes with normal random coefficients (uncorrelated).
Columns, in evaluations of (log-likelihood, gradient) per second on one core:

- ``numba``: the builder's graph on PyTensor's default backend (numba since PyTensor 3),
  what ``nuts_sampler="pymc"`` and nutpie evaluate (full model logp: likelihood and priors);
- ``c``: the same graph on the C backend (``Mode(linker="cvm")``);
- ``jax``: the same graph through PyTensor's JAX backend (jitted value_and_grad), what
  numpyro/blackjax evaluate (``not installed`` without JAX);
- ``numpy_ref``: a direct NumPy implementation of the log-likelihood and its analytic
  gradient with respect to every parameter (priors left out: they are O(parameters));
  ``ref_err`` is its largest absolute difference from the graph's (likelihood term only,
  gradient with respect to the same parameters), a check that it computes the same thing.

Run: ``.venv/bin/python benchmarks/bench_b2_likelihood.py [--seconds 1.0]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
from scipy.special import logsumexp

sys.path.insert(0, os.path.dirname(__file__))
from bench_b1_mixed_logit import ATTRIBUTES, b1_data  # noqa: E402

import pymc_maxent as pmx  # noqa: E402
from pymc_maxent.bayes.specification import as_spec, resolve  # noqa: E402

C_MODE = Mode(linker="cvm", optimizer="fast_run")
TIERS = ["MNL-1", "MNL-2", "MNL-3", "MXL-1", "MXL-2", "MXL-3", "MXL-4"]


def rate(f, x, seconds):
    """Calls per second of ``f(x)`` over about ``seconds``."""
    f(x)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            f(x)
        n += 20
    return n / elapsed


def graph_rate(model, point, seconds, mode=None):
    f = model.logp_dlogp_function(ravel_inputs=True, mode=mode)
    f.set_extra_values({})
    x = np.concatenate([np.ravel(point[v.name]) for v in f._grad_vars])
    f.trust_input = True
    return rate(f, x, seconds)


def jax_rate(model, point, seconds):
    import jax
    from pymc.sampling.jax import get_jaxified_logp

    logp = get_jaxified_logp(model, negative_logp=False)
    names = [v.name for v in model.value_vars]
    value_and_grad = jax.jit(jax.value_and_grad(lambda xs: logp(xs)))
    xs = [np.asarray(point[n]) for n in names]
    return rate(lambda a: jax.block_until_ready(value_and_grad(a)), xs, seconds)


def reference(data, r):
    """NumPy log-likelihood and gradient of a tier with normal random components.

    Parameters (a dict): ``alpha``, ``beta``, ``mu``, ``sigma``, ``z`` (individual x
    component), ``sigma_situation``, ``z_situation``; returns ``(loglik, gradients)``.
    """
    X, avail, chosen, ind = data.X, data.available, data.chosen, data.individual
    N, J, _ = X.shape
    rows = np.arange(N)
    y = np.zeros((N, J))
    y[rows, chosen] = 1.0
    f_cols, f_layout = r.fixed.columns, r.fixed.matrix(J)
    r_cols, r_layout = r.random.columns, r.random.matrix(J)
    D, S = r.n_random, r.situation_components
    n_asc = D - len(r.random.labels)
    Dr = len(r.random.labels)
    Xf, Xr = X[:, :, f_cols], X[:, :, r_cols]

    def f(p):
        U = np.zeros((N, J))
        if r.asc_labels:
            U += np.append(p["alpha"], 0.0)[r.asc_layout]
        if r.fixed.labels:
            U += np.einsum("njk,jk->nj", Xf, np.append(p["beta"], 0.0)[f_layout])
        if D:
            th = (p["mu"] + p["sigma"] * p["z"])[ind]
            if len(S):
                th[:, S] += p["sigma_situation"] * p["z_situation"]
            if n_asc:
                U += np.concatenate([th[:, :n_asc], np.zeros((N, 1))], 1)[:, r.random_asc_layout]
            if Dr:
                C = np.concatenate([th[:, n_asc:], np.zeros((N, 1))], 1)[:, r_layout]
                U += (Xr * C).sum(-1)
        U = np.where(avail, U, -np.inf)
        lse = logsumexp(U, axis=1)
        loglik = (U[rows, chosen] - lse).sum()
        G = y - np.exp(U - lse[:, None])  # d loglik / dU, 0 where unavailable
        grads = {}
        if r.asc_labels:
            grads["alpha"] = np.bincount(r.asc_layout % J, G.sum(0), minlength=J)[:-1]  # -1: reference
        if r.fixed.labels:
            W = np.einsum("nj,njk->jk", G, Xf)
            n = len(r.fixed.labels) + 1  # -1 in the layout: a zero, the last slot
            grads["beta"] = np.bincount(f_layout.ravel() % n, W.ravel(), n)[:-1]
        if D:
            dth = np.zeros((N, D))
            if n_asc:
                dth[:, :n_asc] = np.stack([G[:, r.random_asc_layout == a].sum(1) for a in range(n_asc)], 1)
            if Dr:
                dC = (G[:, :, None] * Xr).reshape(N, -1)  # (situation, alternative x column)
                flat = (rows[:, None] * (Dr + 1) + r_layout.ravel()[None, :] % (Dr + 1)).ravel()
                dth[:, n_asc:] = np.bincount(flat, dC.ravel(), N * (Dr + 1)).reshape(N, Dr + 1)[:, :Dr]
            if len(S):
                grads["sigma_situation"] = (dth[:, S] * p["z_situation"]).sum(0)
                grads["z_situation"] = dth[:, S] * p["sigma_situation"]
            I = p["z"].shape[0]
            dind = np.stack([np.bincount(ind, dth[:, d], I) for d in range(D)], 1)
            grads["mu"] = dind.sum(0)
            grads["sigma"] = (dind * p["z"]).sum(0)
            grads["z"] = dind * p["sigma"]
        return loglik, grads

    return f


def parameter_values(model, point):
    """The free parameters on their own scale (``sigma``, not its log) at ``point``."""
    outputs = model.unobserved_value_vars
    values = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore")(point)
    return dict(zip([v.name for v in outputs], values, strict=True))


def reference_error(model, point, ref):
    """Largest |difference| between the graph's likelihood term and gradient and the
    reference's (chained to the sampler's log-scale SDs)."""
    names = [n for n in ("alpha", "beta", "mu", "sigma", "z", "sigma_situation", "z_situation")
             if n in model.named_vars]
    values = parameter_values(model, point)
    loglik = model.logp(vars=[model["chosen"]], sum=True, jacobian=False)
    value_vars = [model.rvs_to_values[model[n]] for n in names]
    fn = pytensor.function(model.value_vars, [loglik, *pt.grad(loglik, value_vars)],
                           on_unused_input="ignore")
    out = fn(**{v.name: point[v.name] for v in model.value_vars})
    ll, grads = ref(values)
    errors = [abs(out[0] - ll)]
    for n, g in zip(names, out[1:], strict=True):
        expected = grads[n] * values[n] if n.startswith("sigma") else grads[n]  # d/d log(sigma)
        errors.append(np.abs(g - expected).max())
    return max(errors)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per cell")
    parser.add_argument("--tiers", nargs="+", default=TIERS)
    args = parser.parse_args(argv)
    data, _, _ = b1_data()
    has_jax = importlib.util.find_spec("jax") is not None
    rows = []
    for tier in args.tiers:
        spec = as_spec(tier, ATTRIBUTES)
        model = pmx.build_model(data, spec, store_probabilities=False)
        rng = np.random.default_rng(1)
        point = {k: rng.normal(scale=0.3, size=v.shape) for k, v in model.initial_point().items()}
        ref = reference(data, resolve(spec, data))
        values = parameter_values(model, point)
        row = {"tier": tier, "parameters": sum(v.size for v in point.values()),
               "numba": graph_rate(model, point, args.seconds),
               "c": graph_rate(model, point, args.seconds, mode=C_MODE),
               "jax": jax_rate(model, point, args.seconds) if has_jax else np.nan,
               "numpy_ref": rate(ref, values, args.seconds),
               "ref_err": reference_error(model, point, ref)}
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).set_index("tier")
    table["best/numpy"] = table[["numba", "c", "jax"]].max(axis=1) / table["numpy_ref"]
    print(f"B2 logp+gradient evaluations per second, {data.n_situations} situations x "
          f"{data.n_alternatives} alternatives x {data.n_attributes} attributes; load "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rates = ["numba", "c", "jax", "numpy_ref"]
    shown = table.copy()
    shown[rates] = shown[rates].round(0)
    shown["best/numpy"] = shown["best/numpy"].round(2)
    shown["ref_err"] = shown["ref_err"].map("{:.1e}".format)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.to_string(na_rep="not installed"))
    return table


if __name__ == "__main__":
    main()
