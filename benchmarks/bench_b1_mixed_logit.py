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
- ``builder``: ``pmx.build_model(data, spec)`` + ``pmx.sample(model, chains=2)`` with its defaults
  (``parameterization="auto"``: each individual's random components centred as far as their
  data inform them, :mod:`pymc_maxent.bayes.geometry`);
- ``builder (non-centred)``: the same with ``parameterization="non-centred"``, the old default;
- ``pymc-marketing``: pymc-marketing's ``MixedLogit`` (the peer a PyMC user would pick) on the
  same panel, wide format, every attribute random, its default priors (``μ ~ N(0, 0.5)``,
  ``σ ~ Exponential(1)``, constants ``N(0, 5)``), with nutpie (its default sampler is numpyro)
  and PyMC's 1000 tuning steps; ``pymc-marketing (our priors)``: the same with the builder's
  priors of ``μ`` and ``σ``, for the agreement of the means (a row saying it is not installed
  where it is not: ``pip install pymc-maxent[bench]``);
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
import xarray as xr
from pymc_extras.prior import Prior

sys.path.insert(0, os.path.dirname(__file__))
from msl import fit_msl  # noqa: E402

try:
    from pymc_marketing.customer_choice import MixedLogit
except ImportError:  # the bench extra: the peer row says it is missing
    MixedLogit = None

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


def marketing_frame(data):
    """The panel in pymc-marketing's wide format: one row per situation, columns
    ``s<alternative>_<attribute>``, the chosen alternative and the individual; and the utility
    equations (every attribute random, no fixed covariates)."""
    alternatives = [f"s{a}" for a in data.alternatives]
    attributes = [str(a) for a in data.attributes]
    columns = {f"{a}_{k}": data.X[:, j, m]
               for j, a in enumerate(alternatives) for m, k in enumerate(attributes)}
    frame = pd.DataFrame({"choice": np.asarray(alternatives)[data.chosen], "person": data.individual,
                          **columns})
    terms = [" + ".join(f"{a}_{k}" for k in attributes) for a in alternatives]
    return frame, [f"{a} ~ {t} | | {t}" for a, t in zip(alternatives, terms, strict=True)], attributes


def marketing_idata(data, spec, kwargs, our_priors: bool):
    """pymc-marketing's ``MixedLogit`` fitted with nutpie (PyMC's tuning); renamed to ``mu``
    and ``sigma``."""
    frame, equations, attributes = marketing_frame(data)
    config = None
    if our_priors:
        _, mu_scale, sd_scale = random_scales(resolve(spec, data))
        config = {"mu_random": Prior("Normal", mu=0, sigma=mu_scale, dims="random_covariates"),
                  "sigma_random": Prior("HalfNormal", sigma=sd_scale, dims="random_covariates")}
    model = MixedLogit(frame, equations, "choice", attributes, model_config=config, group_id="person")
    kwargs = {k: v for k, v in kwargs.items() if k not in ("nuts_sampler", "cores")}
    idata = model.fit(nuts_sampler="nutpie", **kwargs)
    posterior = idata["posterior"].to_dataset()[["mu_random", "sigma_random"]]
    posterior = posterior.rename({"mu_random": "mu", "sigma_random": "sigma"})
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": idata["sample_stats"].to_dataset()})


def fit_idata(label, data, spec, kwargs):
    """Fit ``label``'s model; the inference data."""
    if label == "builder":
        return pmx.sample(pmx.build_model(data, spec), **kwargs)
    if label == "builder (non-centred)":
        return pmx.sample(pmx.build_model(data, spec, parameterization="non-centred"), **kwargs)
    if label.startswith("pymc-marketing"):
        return marketing_idata(data, spec, kwargs, our_priors=label.endswith("(our priors)"))
    with hand_written_model(data, spec):
        return pm.sample(**kwargs)


def posterior_row(label, idata, wall):
    posterior = idata["posterior"].to_dataset()[["mu", "sigma"]]
    ess = float(az.ess(posterior, method="bulk").to_dataarray().min())
    rhat = float(az.rhat(posterior).to_dataarray().max())
    stats = idata["sample_stats"]
    steps = stats["n_steps"] if "n_steps" in stats else stats.get("tree_size")
    return {"fit": label, "wall_s": round(wall, 1), "min_ess_bulk": round(ess), "max_rhat": round(rhat, 3),
            "ess_per_s": round(ess / wall, 2),
            "steps_per_draw": round(float(steps.mean()), 1) if steps is not None else np.nan,
            "tree_depth": round(float(stats["depth"].mean()), 2) if "depth" in stats else np.nan,
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
            if label.startswith("pymc-marketing") and (sampler != "nutpie" or MixedLogit is None):
                if MixedLogit is None:
                    rows.append({"fit": label, "note": "pymc-marketing is not installed (the bench extra)"})
                continue
            start = time.perf_counter()
            idata = fit_idata(label, data, spec, kwargs)
            fit_name = label if sampler == "nutpie" else f"{label} ({sampler})"
            row = posterior_row(fit_name, idata, time.perf_counter() - start)
            mean, sd = summary(idata)
            means[fit_name] = (mean, sd)
            row["vs_msl_sd"] = round(float(np.max(np.abs(mean - msl) / sd)), 2)
            rows.append(row)
            print(rows[-1], file=sys.stderr, flush=True)
    if "hand-written" in means:
        h, _ = means["hand-written"]
        for row in rows:
            if row["fit"] in means and row["fit"] != "hand-written":
                b, sd = means[row["fit"]]
                row["vs_hand_sd"] = round(float(np.max(np.abs(b - h) / sd)), 2)
    table = pd.DataFrame(rows).assign(design=name).set_index(["design", "fit"])
    return table, data


def ratio_row(t: pd.DataFrame) -> dict:
    """The builder's ESS/s over each other fit's, and its wall time over theirs."""
    ratios = {}
    if "builder" not in t.index:
        return ratios
    builder = t.loc["builder"]
    for other in ("hand-written", "builder (non-centred)", "pymc-marketing", "pymc-marketing (our priors)",
                  "msl"):
        if other in t.index and pd.notna(t.loc[other, "wall_s"]):
            if other != "msl":
                ratios[f"ESS/s ÷ {other}"] = round(builder["ess_per_s"] / t.loc[other, "ess_per_s"], 2)
            ratios[f"wall ÷ {other}"] = round(builder["wall_s"] / t.loc[other, "wall_s"], 2)
    return ratios


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=DESIGNS)
    models = ["hand-written", "builder", "builder (non-centred)", "pymc-marketing",
              "pymc-marketing (our priors)"]
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
        ratios = {name: ratio_row(table.loc[name]) for name in args.designs}
        if any(ratios.values()):
            print(pd.DataFrame(ratios).T.to_string())
    return table


if __name__ == "__main__":
    main()
