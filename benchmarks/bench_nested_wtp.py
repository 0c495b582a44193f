"""B6: log-likelihood + gradient evaluations per second of the models beyond the ladder, against
the logit they extend.

Data: a simulated nested-logit sample of 6768 situations (the size of Biogeme's Swissmetro
example) over four alternatives in two nests (``simulate_nested_choices``), and a WTP-space
panel of 1500 situations (``simulate_wtp_panel``). Each row times the model's joint log density
and its gradient (``model.logp_dlogp_function``, what PyMC's NUTS calls) at the initial point:

- ``MNL-2``: the fused likelihood Op (:class:`~pymc_maxent.bayes.likelihood.ChoiceLogLikelihood`);
- ``NL``: the nested logit's graph (:func:`~pymc_maxent.utility.nested_log_probabilities`);
- ``MNL-2 (WTP space)``, ``MXL-1``, ``MXL-1 (WTP space)``: the graph of WTP space against the
  fused Op of the same tier in preference space.

Run: ``.venv/bin/python benchmarks/bench_nested_wtp.py [--seconds 1.0]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import pymc_maxent as pmx
from pymc_maxent.simulate import simulate_nested_choices, simulate_wtp_panel


def rate(model, seconds: float) -> float:
    """Calls per second of the log density and its gradient: the best of 5 repeats."""
    f = model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    x = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
    f(x)
    best = 0.0
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            f(x)
            n += 1
        best = max(best, n / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    nested, truth = simulate_nested_choices(0.5, n_situations=6768, seed=0)
    panel, _ = simulate_wtp_panel(150, 10, seed=0)
    cases = {
        "MNL-2": (nested, "MNL-2", {}),
        "NL": (nested, "NL", {"nests": truth["nests"]}),
        "MNL-2, panel": (panel, "MNL-2", {}),
        "MNL-2 (WTP space)": (panel, "MNL-2", {"space": "wtp", "price": "price"}),
        "MXL-1": (panel, "MXL-1", {}),
        "MXL-1 (WTP space)": (panel, "MXL-1", {"space": "wtp", "price": "price"}),
    }
    rows = {}
    for name, (data, tier, options) in cases.items():
        model = pmx.build_model(data, tier, **options)
        rows[name] = {"situations": data.n_situations, "evals_per_s": rate(model, args.seconds)}
    print(pd.DataFrame.from_dict(rows, orient="index").round(1).to_string())


if __name__ == "__main__":
    main()
