"""B1: a panel mixed logit, the project's builder against the hand-written PyMC model.

The data are simulated at the size of Train's electricity-supplier panel (361 people, 12
situations, 4 unlabelled suppliers, 6 attributes): 360 individuals x 12 situations x 4
alternatives, six attributes with normal random coefficients and, as in that panel, no
alternative constants (the suppliers are unlabelled). The builder's model is
``pmx.build_model(data, spec)`` sampled with ``pmx.sample``; the hand-written one is what a
PyMC user writes (non-centred ``beta_i = mu + sigma * z_i`` indexed by individual,
``pm.Categorical(logit_p=U)``) sampled with ``pm.sample``. Same priors.

Run: ``.venv/bin/python benchmarks/bench_b1_mixed_logit.py [--samplers pymc nutpie numpyro]
[--draws 1000 --tune 1000] [--jax-platform gpu]``. Prints one row per (model, sampler), and
one for the builder with shorter tuning (``--short-tune``, 400 steps: nutpie's and numpyro's
adaptation settle well before 1000; the goal is a converged posterior, checked by R-hat and
ESS in the same row). Columns: the overhead (compilation, and for the builder the
pointwise log-likelihood), the sampling wall time (2 chains, tuning included; for the JAX
samplers it includes XLA compilation, which PyMC does not time separately), the total wall
time, the minimum ESS_bulk and maximum R-hat over every ``mu`` and ``sigma``, divergences,
and the figure of merit: minimum ESS_bulk per second of sampling. A sampler that is not
installed gets a row saying so.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")  # 2 CPU chains in parallel

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402

import pymc_maxent as pmx  # noqa: E402
from pymc_maxent.bayes.specification import Coefficient, ModelSpec  # noqa: E402

SIZE = {"n_individuals": 360, "n_situations": 12, "n_alternatives": 4, "n_attributes": 6}
ATTRIBUTES = [f"x{k}" for k in range(SIZE["n_attributes"])]
SAMPLERS = ("pymc", "nutpie", "numpyro", "blackjax")
PACKAGE = {"pymc": "pymc", "nutpie": "nutpie", "numpyro": "numpyro", "blackjax": "blackjax"}


def b1_data(seed: int = 20):
    spec = ModelSpec(tuple(Coefficient(a, random="normal") for a in ATTRIBUTES), constants="none",
                     name="B1: MXL-1, 6 normal random coefficients, no constants")
    data, truth = pmx.simulate_choices(spec, **SIZE, seed=seed)
    return data, spec, truth


def hand_written_model(data) -> pm.Model:
    """The model a PyMC user writes by hand (same priors as the builder's: attributes are
    standard normal, so the builder's scales are ~1)."""
    coords = {"individual": data.individuals, "coefficient": ATTRIBUTES}
    with pm.Model(coords=coords) as model:
        X = pm.Data("X", data.X)
        individual = pm.Data("individual_index", data.individual)
        mu = pm.Normal("mu", 0.0, 2.5, dims="coefficient")
        sigma = pm.HalfNormal("sigma", 2.5, dims="coefficient")
        z = pm.Normal("z", 0.0, 1.0, dims=("individual", "coefficient"))
        beta = mu + sigma * z
        U = (X * beta[individual][:, None, :]).sum(axis=-1)
        pm.Categorical("chosen", logit_p=U, observed=data.chosen)
    return model


def run(label, model, sampler, args, via_pmx, tune=None):
    row = {"model": label, "sampler": sampler}
    if importlib.util.find_spec(PACKAGE[sampler]) is None:
        return row | {"note": "not installed"}
    kwargs = {"draws": args.draws, "tune": tune or args.tune, "chains": 2, "cores": 2, "random_seed": 7,
              "progressbar": False, "nuts_sampler": sampler, "compute_convergence_checks": False}
    if sampler in ("numpyro", "blackjax"):
        kwargs["nuts"] = {"chain_method": args.chain_method}
    start = time.perf_counter()
    try:
        if via_pmx:
            idata = pmx.sample(model, **kwargs)
        else:
            with model:
                idata = pm.sample(**kwargs)
    except Exception as error:  # a broken backend must not stop the table
        return row | {"note": f"failed: {type(error).__name__}: {str(error)[:60]}"}
    total = time.perf_counter() - start
    attrs = idata["posterior"].attrs | idata["sample_stats"].attrs
    sampling = float(attrs.get("sampling_time", total))
    posterior = idata["posterior"].to_dataset()[["mu", "sigma"]]
    ess = float(az.ess(posterior, method="bulk").to_dataarray().min())
    rhat = float(az.rhat(posterior).to_dataarray().max())
    full = ess >= 400 and rhat <= 1.01
    return row | {
        "overhead_s": round(total - sampling, 1), "sampling_s": round(sampling, 1),
        "total_s": round(total, 1), "min_ess_bulk": round(ess), "max_rhat": round(rhat, 3),
        "divergences": int(idata["sample_stats"]["diverging"].sum()),
        "ess_per_s": round(ess / sampling, 1), "full_posterior": full, "note": "",
    }


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", nargs="+", default=["pymc", "nutpie", "numpyro"], choices=SAMPLERS)
    parser.add_argument("--models", nargs="+", default=["hand-written", "builder"],
                        choices=["hand-written", "builder"])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--short-tune", type=int, default=400,
                        help="also run the builder with this many tuning steps (0: no)")
    parser.add_argument("--short-tune-samplers", nargs="+", default=["nutpie", "numpyro"])
    parser.add_argument("--jax-platform", default=None, help="cpu or gpu (JAX samplers)")
    parser.add_argument("--chain-method", default=None, help="numpyro/blackjax: parallel or vectorized")
    args = parser.parse_args(argv)
    if args.chain_method is None:
        args.chain_method = "vectorized" if args.jax_platform == "gpu" else "parallel"
    if args.jax_platform and importlib.util.find_spec("jax"):
        import jax

        jax.config.update("jax_platforms", args.jax_platform)
    data, spec, _ = b1_data()
    rows = []
    for sampler in args.samplers:
        for label in args.models:
            if label == "builder":
                model, via_pmx = pmx.build_model(data, spec, store_probabilities=False), True
            else:
                model, via_pmx = hand_written_model(data), False
            rows.append(run(label, model, sampler, args, via_pmx))
            print(rows[-1], file=sys.stderr, flush=True)
        if args.short_tune and sampler in args.short_tune_samplers and "builder" in args.models:
            model = pmx.build_model(data, spec, store_probabilities=False)
            rows.append(run(f"builder, tune {args.short_tune}", model, sampler, args, True, args.short_tune))
            print(rows[-1], file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).set_index(["sampler", "model"])
    print(f"B1 mixed logit: {data.n_situations} situations ({SIZE['n_individuals']} individuals x "
          f"{SIZE['n_situations']}) x {SIZE['n_alternatives']} alternatives, {len(ATTRIBUTES)} normal "
          f"random coefficients; 2 chains x {args.draws} draws after {args.tune} tuning")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} CPUs; numpy {np.__version__}, pymc {pm.__version__}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.fillna("").to_string())
    return table


if __name__ == "__main__":
    main()
