"""B1: a panel mixed logit on a realistic design, the builder against the hand-written PyMC
model and simulated maximum likelihood.

Designs (rows): ``electricity``, the design and scales of Train's electricity-supplier panel
(:func:`~pymc_maxent.simulate.simulate_electricity_panel`: 361 individuals, up to 12
situations each, 4 unlabelled suppliers, attributes ``pf`` (7 or 9, 0 for time-of-day and
seasonal offers), ``cl`` (0/1/5), ``loc``, ``wk``, ``tod``, ``seas`` dummies; means about
(−1.0, −0.22, 2.3, 1.7, −9.7, −9.7), SDs (0.22, 0.41, 1.8, 1.2, 2.3, 1.5)), and ``standard
normal`` (360 × 12 × 4, six standard-normal attributes and coefficients).

Fits, each timed from building the model to the returned result (compilation, sampling and
everything the call does by default, the pointwise log-likelihood included):
- ``hand-written``: what a PyMC user writes (non-centred ``β_i = μ + σ z_i``, ``β[individual]``,
  ``pm.Categorical(logit_p=U)``), ``pm.sample(nuts_sampler="nutpie")`` with PyMC's defaults
  (1000 tuning steps), the builder's default priors;
- ``builder``: ``pmx.build_model(data, spec)`` + ``pmx.sample(model, chains=2)`` with its defaults;
- ``msl``: simulated maximum likelihood, 600 scrambled Halton draws, analytic gradient, BFGS
  (``benchmarks/msl.py``; NumPy/SciPy: xlogit does not install here), a point estimate.

Columns: wall s, min ESS_bulk and max R-hat over every ``μ`` and ``σ``, ESS/s (min ESS_bulk per
wall second), leapfrog steps per draw, divergences, and agreement: the largest
``|mean − other| / posterior SD`` over ``μ`` and ``σ`` against the MSL estimate and against
the hand-written posterior (nutpie rows; ``--samplers`` adds rows for PyMC's NUTS, numpyro and
blackjax, ``benchmarks/gpu_b1.sh`` runs those on a GPU). Ratios in the last table: the
builder's ESS/s over the hand-written model's, and its wall time over the MSL fit's.

Run: ``.venv/bin/python benchmarks/bench_b1_mixed_logit.py [--designs electricity "standard normal"]
[--draws 1000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

sys.path.insert(0, os.path.dirname(__file__))
from msl import fit_msl  # noqa: E402

import pymc_maxent as pmx  # noqa: E402
from pymc_maxent.bayes.priors import random_scales  # noqa: E402
from pymc_maxent.simulate import simulate_electricity_panel  # noqa: E402
from pymc_maxent.specification import Coefficient, ModelSpec, resolve  # noqa: E402

DESIGNS = ("electricity", "standard normal")


def design(name: str, seed: int = 20):
    """``(data, spec)`` of a design."""
    if name == "electricity":
        data, spec, _ = simulate_electricity_panel(seed=seed)
        return data, spec
    attributes = [f"x{k}" for k in range(6)]
    spec = ModelSpec(tuple(Coefficient(a, random="normal") for a in attributes), constants="none",
                     name="MXL-1, standard normal")
    data, _ = pmx.simulate_choices(spec, n_individuals=360, n_situations=12, n_alternatives=4,
                                   n_attributes=6, seed=seed)
    return data, spec


def hand_written_model(data, spec) -> pm.Model:
    """The model a PyMC user writes by hand, with the builder's default priors."""
    _, mu_scale, sd_scale = random_scales(resolve(spec, data))
    coords = {"individual": data.individuals, "random_coefficient": data.attributes.tolist()}
    with pm.Model(coords=coords) as model:
        X = pm.Data("X", data.X)
        individual = pm.Data("individual_index", data.individual)
        mu = pm.Normal("mu", 0.0, mu_scale, dims="random_coefficient")
        sigma = pm.HalfNormal("sigma", sd_scale, dims="random_coefficient")
        z = pm.Normal("z", 0.0, 1.0, dims=("individual", "random_coefficient"))
        beta = mu + sigma * z
        U = (X * beta[individual][:, None, :]).sum(axis=-1)
        pm.Categorical("chosen", logit_p=U, observed=data.chosen)
    return model


def posterior_row(label, idata, wall):
    posterior = idata["posterior"].to_dataset()[["mu", "sigma"]]
    ess = float(az.ess(posterior, method="bulk").to_dataarray().min())
    rhat = float(az.rhat(posterior).to_dataarray().max())
    stats = idata["sample_stats"]
    steps = stats["n_steps"] if "n_steps" in stats else stats.get("tree_size")
    return {"fit": label, "wall_s": round(wall, 1), "min_ess_bulk": round(ess), "max_rhat": round(rhat, 3),
            "ess_per_s": round(ess / wall, 2),
            "steps_per_draw": round(float(steps.mean()), 1) if steps is not None else np.nan,
            "divergences": int(stats["diverging"].sum()),
            "full_posterior": bool(ess >= 400 and rhat <= 1.01)}


def summary(idata):
    """Posterior means and SDs of ``(μ, σ)``."""
    post = idata["posterior"].to_dataset()[["mu", "sigma"]]
    return (np.concatenate([v.values for v in post.mean(("chain", "draw")).data_vars.values()]),
            np.concatenate([v.values for v in post.std(("chain", "draw")).data_vars.values()]))


def run_design(name, args):
    data, spec = design(name)
    rows, means = [], {}
    start = time.perf_counter()
    mu, sigma, result = fit_msl(data, n_draws=600)
    msl = np.concatenate([mu, sigma])
    status = "converged" if result.success else result.message
    rows.append({"fit": "msl", "wall_s": round(time.perf_counter() - start, 1),
                 "note": f"BFGS {result.nit} iterations, {status}"})
    print(rows[-1], file=sys.stderr, flush=True)
    for sampler in args.samplers:
        kwargs = {"draws": args.draws, "chains": 2, "cores": 2, "random_seed": 7, "progressbar": False,
                  "nuts_sampler": sampler}
        if sampler in ("numpyro", "blackjax"):
            kwargs["nuts_sampler_kwargs"] = {"chain_method": args.chain_method}
        for label in args.models:
            start = time.perf_counter()
            if label == "builder":
                idata = pmx.sample(pmx.build_model(data, spec), **kwargs)
            else:
                with hand_written_model(data, spec):
                    idata = pm.sample(**kwargs)
            fit_name = label if sampler == "nutpie" else f"{label} ({sampler})"
            row = posterior_row(fit_name, idata, time.perf_counter() - start)
            mean, sd = summary(idata)
            means[fit_name] = (mean, sd)
            row["vs_msl_sd"] = round(float(np.max(np.abs(mean - msl) / sd)), 2)
            rows.append(row)
            print(rows[-1], file=sys.stderr, flush=True)
    if {"builder", "hand-written"} <= set(means):
        (b, sd), (h, _) = means["builder"], means["hand-written"]
        builder = [r["fit"] for r in rows].index("builder")
        rows[builder]["vs_hand_sd"] = round(float(np.max(np.abs(b - h) / sd)), 2)
    table = pd.DataFrame(rows).assign(design=name).set_index(["design", "fit"])
    return table, data


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=DESIGNS)
    models = ["hand-written", "builder"]
    parser.add_argument("--models", nargs="+", default=models, choices=models)
    parser.add_argument("--samplers", nargs="+", default=["nutpie"],
                        choices=["nutpie", "pymc", "numpyro", "blackjax"])
    parser.add_argument("--jax-platform", default=None, help="cpu or gpu (JAX samplers)")
    parser.add_argument("--chain-method", default="parallel", help="numpyro/blackjax: parallel or vectorized")
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.jax_platform:
        import jax

        jax.config.update("jax_platforms", args.jax_platform)
    tables = []
    for name in args.designs:
        table, data = run_design(name, args)
        tables.append(table)
        print(f"B1 {name}: {data.n_situations} situations, {data.n_individuals} individuals, "
              f"{data.n_alternatives} alternatives, 6 normal random coefficients; "
              f"2 chains x {args.draws} draws", flush=True)
    table = pd.concat(tables)
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"pymc {pm.__version__}, pymc_maxent {pmx.__version__}")
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(table.fillna("").to_string())
        ratios = {}
        for name in args.designs:
            t = table.loc[name]
            if {"builder", "hand-written", "msl"} <= set(t.index):
                ratios[name] = {
                    "builder ESS/s ÷ hand-written ESS/s":
                        round(t.loc["builder", "ess_per_s"] / t.loc["hand-written", "ess_per_s"], 2),
                    "builder wall ÷ MSL wall": round(t.loc["builder", "wall_s"] / t.loc["msl", "wall_s"], 2)}
        if ratios:
            print(pd.DataFrame(ratios).T.to_string())
    return table


if __name__ == "__main__":
    main()
